/* dvclient.c - Dataverse Web API GETs over libcurl (dvclient.h). The only
 * place that translates libcurl's and Dataverse's errors for the replica. */
#include "dataverse/dvclient.h"

#include "common/log.h"
#include "dataverse/dvapi.h"
#include "identity/idhttp.h"
#include "map/sink.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct dvclient {
  pthread_mutex_t mu;
  char base[600];
  struct buf scope;
  struct azid *id;
  struct dvclient_options opt;
  CURL *h;
  int64_t not_before_ms; /* no request before this (Retry-After, burst) */
  struct dvclient_stats st;
  dvclient_hook_fn hook;
  void *hook_ctx;
};

void dvclient_set_hook(struct dvclient *c, dvclient_hook_fn fn, void *ctx)
{
  pthread_mutex_lock(&c->mu);
  c->hook = fn;
  c->hook_ctx = ctx;
  pthread_mutex_unlock(&c->mu);
}

enum app_result dvclient_create(const char *base, struct azid *id,
                                const struct dvclient_options *opt, struct dvclient **out,
                                struct app_err *err)
{
  struct dvclient *c = calloc(1, sizeof *c);
  if (!c)
    return app_err_set(err, APP_ERR_NOMEM, "out of memory");
  if (dvapi_base_url(base, c->base, sizeof c->base, err) != APP_OK) {
    free(c);
    return err->code;
  }
  buf_init(&c->scope, 1024);
  if (dvapi_scope(c->base, &c->scope) != APP_OK) {
    buf_cleanup(&c->scope);
    free(c);
    return app_err_set(err, APP_ERR_CONFIG, "DataverseUrl is too long");
  }
  c->id = id;
  if (opt)
    c->opt = *opt;
  if (c->opt.timeout_ms <= 0)
    c->opt.timeout_ms = 30000;
  if (c->opt.max_bytes == 0)
    c->opt.max_bytes = 64u << 20;
  if (c->opt.max_attempts <= 0)
    c->opt.max_attempts = 8;
  if (c->opt.maxpagesize <= 0)
    c->opt.maxpagesize = 5000;
  if (c->opt.backoff_first_ms <= 0)
    c->opt.backoff_first_ms = 250;
  if (c->opt.backoff_max_ms <= 0)
    c->opt.backoff_max_ms = 8000;
  c->st.burst_remaining = -1;
  pthread_mutex_init(&c->mu, NULL);
  *out = c;
  return APP_OK;
}

void dvclient_destroy(struct dvclient *c)
{
  if (!c)
    return;
  if (c->h)
    curl_easy_cleanup(c->h);
  buf_cleanup(&c->scope);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

const char *dvclient_base(const struct dvclient *c)
{
  return c->base;
}

void dvclient_get_stats(struct dvclient *c, struct dvclient_stats *out)
{
  pthread_mutex_lock(&c->mu);
  *out = c->st;
  pthread_mutex_unlock(&c->mu);
}

struct xfer {
  struct idhttp_body b; /* first: the capped body */
  char retry_after[64];
  long burst_remaining;
};

/* header value of line when its name is name, trimmed into out */
static bool header_is(const char *line, size_t n, const char *name, char *out, size_t outsz)
{
  size_t nl = strlen(name), i, j;
  if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return false;
  for (i = nl + 1; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
    ;
  for (j = n; j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' '); j--)
    ;
  if (j - i >= outsz)
    j = i + outsz - 1;
  memcpy(out, line + i, j - i);
  out[j - i] = '\0';
  return true;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *userdata)
{
  struct xfer *x = userdata;
  size_t n = size * nmemb;
  char v[64];
  if (n >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (after 100): forget */
    x->retry_after[0] = '\0';
    x->burst_remaining = -1;
  }
  header_is(p, n, "Retry-After", x->retry_after, sizeof x->retry_after);
  if (header_is(p, n, "x-ms-ratelimit-burst-remaining-xrm-requests", v, sizeof v))
    x->burst_remaining = strtol(v, NULL, 10);
  return n;
}

/* One exchange. Returns APP_OK with *status set, or a transport error. */
static enum app_result exchange(struct dvclient *c, const char *url, const char *auth,
                                const char *prefer, int timeout_ms, struct xfer *x, long *status,
                                struct app_err *err)
{
  struct curl_slist *hdrs = NULL, *t;
  const char *lines[] = {"Accept: application/json",
                         "OData-MaxVersion: 4.0",
                         "OData-Version: 4.0",
                         "If-None-Match: null",
                         auth,
                         prefer};
  CURLcode cc;
  *status = 0;
  if (!c->h) {
    c->h = curl_easy_init();
    if (!c->h)
      return app_err_set(err, APP_ERR_NOMEM, "Dataverse Web API: cannot create a libcurl handle");
  }
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    if (lines[i] && (t = curl_slist_append(hdrs, lines[i])) != NULL)
      hdrs = t;
  curl_easy_reset(c->h); /* keeps the connection cache */
  idhttp_setup(c->h, url, timeout_ms, &x->b);
  curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c->h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c->h, CURLOPT_HEADERDATA, x);
  cc = curl_easy_perform(c->h);
  curl_slist_free_all(hdrs);
  c->st.requests++;
  if (cc != CURLE_OK)
    return idhttp_result(cc, &x->b, "Dataverse Web API", c->opt.max_bytes, err);
  curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, status);
  c->st.bytes += x->b.body->len;
  return APP_OK;
}

static enum app_result status_error(long status, const struct buf *body, struct app_err *err)
{
  char text[200];
  if (dvapi_error_text(body->data, body->len, text, sizeof text))
    return app_err_set(err, APP_ERR_HTTP, "Dataverse Web API answered %ld: %s", status, text);
  return app_err_set(err, APP_ERR_HTTP, "Dataverse Web API answered %ld", status);
}

enum app_result dvclient_get(struct dvclient *c, const char *url, bool track_changes,
                             int64_t deadline_ms, struct buf *body, long *status,
                             struct app_err *err)
{
  struct buf prefer, auth;
  enum app_result r = APP_OK;
  int attempt = 0, backoff = c->opt.backoff_first_ms;
  bool refreshed = false;

  *status = 0;
  body->max = c->opt.max_bytes; /* the cap on every answer */
  buf_init(&prefer, 256);
  buf_init(&auth, 64u << 10);
  pthread_mutex_lock(&c->mu);
  if (buf_printf(&prefer, "Prefer: ") != APP_OK ||
      dvapi_prefer(&prefer, c->opt.maxpagesize, track_changes) != APP_OK) {
    r = app_err_set(err, APP_ERR_LIMIT, "Prefer header too long");
    goto done;
  }
  for (;;) {
    struct xfer x = {{body, false}, "", -1};
    struct azid_token tok = {0};
    int64_t now = sink_now_ms(), left;
    /* throttled earlier: nothing goes out before that time */
    if (c->not_before_ms > now) {
      int64_t wait = c->not_before_ms - now;
      if (c->not_before_ms > deadline_ms) {
        r = app_err_set(err, APP_ERR_TIMEOUT,
                        "Dataverse Web API: throttled for %lld ms more, past this run's budget "
                        "(%lld ms left)",
                        (long long)wait, (long long)(deadline_ms - now));
        goto done;
      }
      c->st.throttle_wait_ms += (uint64_t)wait;
      if (!sink_sleep_ms(wait)) {
        r = app_err_set(err, APP_ERR_TIMEOUT, "Dataverse Web API: shutting down");
        goto done;
      }
      now = sink_now_ms();
    }
    if (c->hook && !c->hook(c->hook_ctx)) {
      r = app_err_set(err, APP_ERR_TIMEOUT, "Dataverse Web API: the caller stopped the call");
      goto done;
    }
    left = deadline_ms - now;
    if (left <= 0) {
      r = app_err_set(err, APP_ERR_TIMEOUT, "Dataverse Web API: out of time");
      goto done;
    }
    buf_reset(&auth);
    if (c->id) {
      r = azid_get(c->id, c->scope.data, deadline_ms, &tok, err);
      if (r != APP_OK) {
        app_err_wrap(err, "Dataverse token");
        goto done;
      }
      if (buf_printf(&auth, "Authorization: Bearer %s", tok.value) != APP_OK) {
        azid_token_cleanup(&tok);
        r = app_err_set(err, APP_ERR_LIMIT, "Dataverse token too long");
        goto done;
      }
    }
    buf_reset(body);
    r = exchange(c, url, auth.len ? auth.data : NULL, prefer.data,
                 (int)(left < c->opt.timeout_ms ? left : c->opt.timeout_ms), &x, status, err);
    /* the token never stays in memory we keep */
    if (auth.data)
      memset(auth.data, 0, auth.len);
    attempt++;
    if (x.burst_remaining >= 0) {
      c->st.burst_remaining = x.burst_remaining;
      if (x.burst_remaining == 0 && c->not_before_ms < sink_now_ms() + 1000)
        c->not_before_ms = sink_now_ms() + 1000;
    }
    if (r == APP_OK && *status >= 200 && *status < 300) {
      azid_token_cleanup(&tok);
      goto done;
    }
    if (r == APP_OK && *status == 401 && c->id && !refreshed) {
      azid_invalidate(c->id, c->scope.data, tok.serial);
      azid_token_cleanup(&tok);
      refreshed = true;
      c->st.token_refreshes++;
      c->st.retries++;
      continue;
    }
    azid_token_cleanup(&tok);
    if (r == APP_OK && (*status == 429 || *status == 503) && x.retry_after[0]) {
      int64_t ms = dvapi_retry_after_ms(x.retry_after, (int64_t)time(NULL));
      if (ms < 0)
        ms = backoff;
      c->st.throttled++;
      c->not_before_ms = sink_now_ms() + ms;
      LOG_INFO("Dataverse Web API: %ld, Retry-After %s: waiting %lld ms", *status, x.retry_after,
               (long long)ms);
    } else if ((r == APP_OK && (*status == 429 || *status == 500 || *status == 502 ||
                                *status == 503 || *status == 504)) ||
               r == APP_ERR_IO || r == APP_ERR_TIMEOUT) {
      int64_t until = sink_now_ms() + backoff;
      if (until > c->not_before_ms)
        c->not_before_ms = until;
      backoff = backoff * 2 > c->opt.backoff_max_ms ? c->opt.backoff_max_ms : backoff * 2;
    } else {
      if (r == APP_OK)
        r = status_error(*status, body, err);
      goto done;
    }
    if (attempt >= c->opt.max_attempts) {
      if (r == APP_OK)
        r = status_error(*status, body, err);
      app_err_wrap(err, "after %d attempts", attempt);
      goto done;
    }
    c->st.retries++;
  }
done:
  buf_cleanup(&prefer);
  if (auth.data)
    memset(auth.data, 0, auth.cap);
  buf_cleanup(&auth);
  pthread_mutex_unlock(&c->mu);
  return r;
}

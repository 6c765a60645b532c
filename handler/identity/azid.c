/* azid.c - the token cache: one entry per scope, single-flight fetches,
 * a refresh thread, backoff. */
#include "identity/azid.h"

#include "common/log.h"
#include "common/metrics.h"
#include "identity/idhttp.h"
#include "map/sink.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFRESH_AHEAD_MS         (5 * 60 * 1000) /* Azure Identity refreshes 5 minutes ahead */
#define MAX_ASSERTION_FILE_BYTES 65536

struct entry {
  struct entry *next;
  char *scope;
  char *token;            /* NULL: none yet (or invalidated) */
  int64_t expires_ms;     /* sink_now_ms clock */
  int64_t refresh_ms;     /* the refresh thread fetches the next one from here */
  int64_t valid_until_ms; /* handed out until here (a margin before expiry) */
  uint64_t serial;
  bool fetching;
  int64_t next_try_ms; /* backoff after a failure */
  int backoff_ms;
  struct app_err last_err;
};

struct azid {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a fetch finished, an entry was added or invalidated, stop */
  pthread_t thread;
  bool has_thread, stop;
  struct entry *entries;
  struct azid_options opt;
  struct idcred cred;
  azid_fetch_fn fetch;
  void *fetch_ctx;
  _Atomic uint64_t serial;
  struct azid_stats st;
};

static void *refresher(void *arg);

/* ---- the real fetch --------------------------------------------------- */

static enum app_result read_small_file(const char *path, const char *what, char **out,
                                       struct app_err *err)
{
  FILE *f = fopen(path, "rb");
  struct buf b;
  char tmp[4096];
  size_t n;
  if (!f)
    return app_err_set(err, APP_ERR_CONFIG, "%s '%s': %s", what, path, strerror(errno));
  buf_init(&b, MAX_ASSERTION_FILE_BYTES);
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
    if (buf_append(&b, tmp, n) != APP_OK) {
      fclose(f);
      buf_cleanup(&b);
      return app_err_set(err, APP_ERR_CONFIG, "%s '%s': larger than %d bytes", what, path,
                         MAX_ASSERTION_FILE_BYTES);
    }
  }
  fclose(f);
  while (b.len &&
         (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' '))
    b.data[--b.len] = '\0';
  if (!b.len) {
    buf_cleanup(&b);
    return app_err_set(err, APP_ERR_CONFIG, "%s '%s' is empty", what, path);
  }
  *out = buf_steal(&b, NULL);
  return APP_OK;
}

/* Key and certificate from a PEM file (key + certificate; the key may be
 * encrypted with the password) or a PFX / PKCS#12 file. */
static void load_cert(FILE *f, const char *password, EVP_PKEY **key, X509 **cert)
{
  int c = fgetc(f);
  rewind(f);
  if (c == '-') { /* "-----BEGIN" */
    *key = PEM_read_PrivateKey(f, NULL, NULL, (void *)(password ? password : ""));
    rewind(f);
    *cert = PEM_read_X509(f, NULL, NULL, NULL);
  } else {
    PKCS12 *p12 = d2i_PKCS12_fp(f, NULL);
    if (p12)
      PKCS12_parse(p12, password ? password : "", key, cert, NULL);
    PKCS12_free(p12);
  }
  ERR_clear_error();
}

/* The certificate's key and certificate, read each time (the file may be
 * renewed in place), and a signed assertion. */
static enum app_result cert_assertion(const struct idcred *c, char **out, struct app_err *err)
{
  FILE *f = fopen(c->cert_path, "rb");
  EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  unsigned char g[16];
  char jti[40];
  struct buf aud, a;
  int64_t now_s = (int64_t)time(NULL);
  enum app_result r;

  if (!f)
    return app_err_set(err, APP_ERR_CONFIG, "AZURE_CLIENT_CERTIFICATE_PATH '%s': %s", c->cert_path,
                       strerror(errno));
  load_cert(f, c->cert_password, &key, &cert);
  fclose(f);
  if (!key || !cert) {
    EVP_PKEY_free(key);
    X509_free(cert);
    return app_err_set(err, APP_ERR_CONFIG,
                       "AZURE_CLIENT_CERTIFICATE_PATH '%s': expected a PEM file with the "
                       "private key and the certificate, or a PFX; %s missing or unreadable "
                       "(wrong or missing AZURE_CLIENT_CERTIFICATE_PASSWORD?)",
                       c->cert_path, !key ? "private key" : "certificate");
  }
  if (RAND_bytes(g, sizeof g) != 1) {
    EVP_PKEY_free(key);
    X509_free(cert);
    return app_err_set(err, APP_ERR_IO, "client assertion: no random bytes for its jti");
  }
  g[6] = (unsigned char)((g[6] & 0x0f) | 0x40);
  g[8] = (unsigned char)((g[8] & 0x3f) | 0x80);
  snprintf(jti, sizeof jti, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13],
           g[14], g[15]);
  buf_init(&aud, 0);
  buf_init(&a, 0);
  r = idtok_token_url(c, &aud);
  if (r == APP_OK)
    r = idtok_jwt_assertion(key, cert, aud.data, c->client_id, jti, now_s, &a, err);
  else
    app_err_set(err, r, "client assertion: out of memory");
  EVP_PKEY_free(key);
  X509_free(cert);
  buf_cleanup(&aud);
  if (r == APP_OK)
    *out = buf_steal(&a, NULL);
  buf_cleanup(&a);
  return r;
}

static enum app_result fetch_real(void *ctx, const char *scope, int timeout_ms, struct idtok *out,
                                  struct app_err *err)
{
  const struct idcred *c = ctx;
  const char *kind =
      c->kind == IDCRED_MANAGED ? "managed identity endpoint" : "Microsoft Entra ID token endpoint";
  char *assertion = NULL;
  struct idreq req;
  struct buf body;
  long status = 0;
  enum app_result r = APP_OK;

  if (c->kind == IDCRED_CLIENT_CERT)
    r = cert_assertion(c, &assertion, err);
  else if (c->kind == IDCRED_WORKLOAD)
    r = read_small_file(c->federated_token_file, "AZURE_FEDERATED_TOKEN_FILE", &assertion, err);
  if (r != APP_OK)
    return r;
  r = idtok_build(c, scope, assertion, &req, err);
  if (assertion) {
    explicit_bzero(assertion, strlen(assertion));
    free(assertion);
  }
  if (r != APP_OK) {
    idreq_cleanup(&req);
    return r;
  }
  buf_init(&body, 0);
  r = idhttp_fetch(&req, kind, timeout_ms, IDTOK_MAX_RESPONSE_BYTES, &status, &body, err);
  idreq_cleanup(&req);
  if (r == APP_OK) {
    r = idtok_parse(status, body.data, body.len, (int64_t)time(NULL), out, err);
    if (r != APP_OK)
      app_err_wrap(err, "%s", kind);
  }
  if (body.data)
    explicit_bzero(body.data, body.len);
  buf_cleanup(&body);
  return r;
}

/* ---- provider ------------------------------------------------------------ */

static enum app_result create(azid_fetch_fn fetch, void *ctx, const struct azid_options *opt,
                              struct azid *p, struct app_err *err)
{
  pthread_condattr_t ca;
  p->fetch = fetch;
  p->fetch_ctx = ctx;
  if (opt)
    p->opt = *opt;
  if (p->opt.timeout_ms <= 0)
    p->opt.timeout_ms = 10000;
  if (p->opt.backoff_first_ms <= 0)
    p->opt.backoff_first_ms = 500;
  if (p->opt.backoff_max_ms <= 0)
    p->opt.backoff_max_ms = 30000;
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&p->serial, 1);
  if (!p->opt.no_thread) {
    if (pthread_create(&p->thread, NULL, refresher, p) != 0) {
      pthread_cond_destroy(&p->cv);
      pthread_mutex_destroy(&p->mu);
      return app_err_set(err, APP_ERR_NOMEM, "token provider: cannot start its refresh thread");
    }
    p->has_thread = true;
  }
  return APP_OK;
}

enum app_result azid_create(const struct idcred *cred, const struct azid_options *opt,
                            struct azid **out, struct app_err *err)
{
  struct azid *p = xcalloc(1, sizeof *p);
  enum app_result r;
  *out = NULL;
  p->cred = *cred;
  p->cred.authority = cred->authority ? xstrdup(cred->authority) : NULL;
  p->cred.tenant_id = cred->tenant_id ? xstrdup(cred->tenant_id) : NULL;
  p->cred.client_id = cred->client_id ? xstrdup(cred->client_id) : NULL;
  p->cred.client_secret = cred->client_secret ? xstrdup(cred->client_secret) : NULL;
  p->cred.cert_path = cred->cert_path ? xstrdup(cred->cert_path) : NULL;
  p->cred.cert_password = cred->cert_password ? xstrdup(cred->cert_password) : NULL;
  p->cred.federated_token_file =
      cred->federated_token_file ? xstrdup(cred->federated_token_file) : NULL;
  p->cred.identity_endpoint = cred->identity_endpoint ? xstrdup(cred->identity_endpoint) : NULL;
  p->cred.identity_header = cred->identity_header ? xstrdup(cred->identity_header) : NULL;
  r = create(fetch_real, &p->cred, opt, p, err);
  if (r != APP_OK) {
    idcred_cleanup(&p->cred);
    free(p);
    return r;
  }
  *out = p;
  return APP_OK;
}

enum app_result azid_create_fetch(azid_fetch_fn fetch, void *ctx, const struct azid_options *opt,
                                  struct azid **out, struct app_err *err)
{
  struct azid *p = xcalloc(1, sizeof *p);
  enum app_result r;
  *out = NULL;
  snprintf(p->cred.source, sizeof p->cred.source, "test fetch");
  r = create(fetch, ctx, opt, p, err);
  if (r != APP_OK) {
    free(p);
    return r;
  }
  *out = p;
  return APP_OK;
}

static void forget_token(struct entry *e)
{
  if (e->token) {
    explicit_bzero(e->token, strlen(e->token));
    free(e->token);
    e->token = NULL;
  }
}

void azid_destroy(struct azid *p)
{
  struct entry *e, *next;
  if (!p)
    return;
  if (p->has_thread) {
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
  }
  for (e = p->entries; e; e = next) {
    next = e->next;
    forget_token(e);
    free(e->scope);
    free(e);
  }
  idcred_cleanup(&p->cred);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

const char *azid_describe(const struct azid *p)
{
  return p->cred.source;
}

void azid_token_cleanup(struct azid_token *t)
{
  if (!t)
    return;
  if (t->value) {
    explicit_bzero(t->value, strlen(t->value));
    free(t->value);
  }
  memset(t, 0, sizeof *t);
}

uint64_t azid_serial(struct azid *p)
{
  return atomic_load_explicit(&p->serial, memory_order_acquire);
}

static struct entry *find(struct azid *p, const char *scope, bool add)
{
  struct entry *e;
  for (e = p->entries; e; e = e->next)
    if (!strcmp(e->scope, scope))
      return e;
  if (!add)
    return NULL;
  e = xcalloc(1, sizeof *e);
  e->scope = xstrdup(scope);
  e->next = p->entries;
  p->entries = e;
  return e;
}

static void wait_until(struct azid *p, int64_t until_ms)
{
  struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000L};
  pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

/* Fetch a token for e; mutex held on entry and exit (dropped during the
 * request). e->fetching must be false. */
static enum app_result refresh(struct azid *p, struct entry *e, int timeout_ms, bool background,
                               struct app_err *err)
{
  struct idtok t = {0};
  struct app_err e2;
  enum app_result r;
  int64_t wall_ms, now;

  e->fetching = true;
  p->st.fetches++;
  if (background)
    p->st.background++;
  pthread_mutex_unlock(&p->mu);
  app_err_clear(&e2);
  r = p->fetch(p->fetch_ctx, e->scope, timeout_ms, &t, &e2);
  now = sink_now_ms();
  {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  }
  metrics_add(M_TOKEN_FETCHES, 1);
  if (r != APP_OK)
    metrics_add(M_TOKEN_FAILURES, 1);
  pthread_mutex_lock(&p->mu);
  e->fetching = false;
  if (r == APP_OK) {
    int64_t life = t.expires_s * 1000 - wall_ms, ahead, margin;
    if (life < 1)
      life = 1;
    ahead = life / 2 < REFRESH_AHEAD_MS ? life / 2 : REFRESH_AHEAD_MS;
    margin = life / 10 < 30000 ? life / 10 : 30000;
    forget_token(e);
    e->token = t.access_token;
    t.access_token = NULL;
    e->expires_ms = now + life;
    e->refresh_ms = t.refresh_s ? now + (t.refresh_s * 1000 - wall_ms) : e->expires_ms - ahead;
    if (e->refresh_ms > e->expires_ms - ahead)
      e->refresh_ms = e->expires_ms - ahead;
    e->valid_until_ms = e->expires_ms - margin;
    e->serial = atomic_fetch_add_explicit(&p->serial, 1, memory_order_acq_rel) + 1;
    e->backoff_ms = 0;
    e->next_try_ms = 0;
    app_err_clear(&e->last_err);
    LOG_DEBUG("token for %s: valid %lld ms, refresh in %lld ms", e->scope, (long long)life,
              (long long)(e->refresh_ms - now));
  } else {
    p->st.failures++;
    e->backoff_ms = e->backoff_ms ? e->backoff_ms * 2 : p->opt.backoff_first_ms;
    if (e->backoff_ms > p->opt.backoff_max_ms)
      e->backoff_ms = p->opt.backoff_max_ms;
    e->next_try_ms = now + e->backoff_ms;
    e->last_err = e2;
    LOG_WARN("token for %s: %s (next attempt in %d ms%s)", e->scope, e2.msg, e->backoff_ms,
             e->token && now < e->valid_until_ms ? "; the current token is still valid" : "");
    if (err)
      *err = e2;
  }
  idtok_cleanup(&t);
  pthread_cond_broadcast(&p->cv);
  return r;
}

static void copy_out(struct entry *e, struct azid_token *out)
{
  out->value = xstrdup(e->token);
  out->expires_ms = e->expires_ms;
  out->serial = e->serial;
}

static bool fresh(const struct entry *e, int64_t now)
{
  return e->token && now < e->valid_until_ms;
}

enum app_result azid_get(struct azid *p, const char *scope, int64_t deadline_ms,
                         struct azid_token *out, struct app_err *err)
{
  struct entry *e;
  bool waited = false;
  enum app_result r = APP_OK;

  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&p->mu);
  e = find(p, scope, true);
  for (;;) {
    int64_t now = sink_now_ms();
    if (fresh(e, now)) {
      /* without a refresh thread the caller refreshes when due, once */
      if (!p->has_thread && now >= e->refresh_ms && !e->fetching && now >= e->next_try_ms &&
          deadline_ms - now > 0)
        (void)refresh(
            p, e,
            (int)(deadline_ms - now < p->opt.timeout_ms ? deadline_ms - now : p->opt.timeout_ms),
            false, NULL);
      if (fresh(e, sink_now_ms())) {
        copy_out(e, out);
        p->st.hits++;
        break;
      }
      continue;
    }
    if (now >= deadline_ms) {
      r = app_err_set(err, APP_ERR_TIMEOUT, "token for %s: the deadline passed %s", scope,
                      e->fetching ? "waiting for the token request in progress"
                                  : "before a token request could start");
      break;
    }
    if (e->fetching) {
      if (!waited)
        p->st.waits++;
      waited = true;
      wait_until(p, deadline_ms);
      continue;
    }
    if (now < e->next_try_ms) {
      if (e->next_try_ms >= deadline_ms) {
        if (err)
          *err = e->last_err;
        r = app_err_wrap(err, "token for %s: backing off (next attempt in %lld ms); last error",
                         scope, (long long)(e->next_try_ms - now));
        if (r == APP_OK)
          r = APP_ERR_IO;
        break;
      }
      wait_until(p, e->next_try_ms);
      continue;
    }
    r = refresh(
        p, e, (int)(deadline_ms - now < p->opt.timeout_ms ? deadline_ms - now : p->opt.timeout_ms),
        false, err);
    if (r != APP_OK)
      break;
  }
  pthread_mutex_unlock(&p->mu);
  return r;
}

bool azid_cached(struct azid *p, const char *scope, struct azid_token *out)
{
  struct entry *e;
  bool ok = false;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&p->mu);
  e = find(p, scope, false);
  if (e && fresh(e, sink_now_ms())) {
    copy_out(e, out);
    ok = true;
  }
  pthread_mutex_unlock(&p->mu);
  return ok;
}

void azid_invalidate(struct azid *p, const char *scope, uint64_t serial)
{
  struct entry *e;
  pthread_mutex_lock(&p->mu);
  e = find(p, scope, false);
  if (e && e->token && e->serial == serial) {
    forget_token(e);
    e->valid_until_ms = 0;
    e->refresh_ms = 0;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
}

void azid_get_stats(struct azid *p, struct azid_stats *out)
{
  pthread_mutex_lock(&p->mu);
  *out = p->st;
  pthread_mutex_unlock(&p->mu);
}

/* The refresh thread: fetch every scope's next token from its refresh
 * time on (and retry failed ones after their backoff), so that callers
 * find a fresh token. */
static void *refresher(void *arg)
{
  struct azid *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    int64_t now = sink_now_ms(), wake = now + 60000;
    struct entry *e, *due = NULL;
    for (e = p->entries; e; e = e->next) {
      int64_t at;
      if (e->fetching)
        continue;
      at = e->token ? e->refresh_ms : now; /* no token: as soon as the backoff allows */
      if (at < e->next_try_ms)
        at = e->next_try_ms;
      if (at <= now) {
        due = e;
        break;
      }
      if (at < wake)
        wake = at;
    }
    if (due) {
      (void)refresh(p, due, p->opt.timeout_ms, true, NULL);
      continue;
    }
    wait_until(p, wake);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* idhttp.c - libcurl easy interface, one handle per call. */
#include "identity/idhttp.h"

#include <curl/curl.h>

#include <string.h>

static size_t on_data(char *p, size_t size, size_t nmemb, void *userdata)
{
  struct idhttp_body *s = userdata;
  size_t n = size * nmemb;
  if (buf_append(s->body, p, n) != APP_OK) {
    s->too_big = true;
    return 0; /* curl stops with CURLE_WRITE_ERROR */
  }
  return n;
}

void idhttp_setup(CURL *h, const char *url, int timeout_ms, struct idhttp_body *b)
{
  if (timeout_ms < 1)
    timeout_ms = 1;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "d365-cdc-handler");
}

enum app_result idhttp_result(CURLcode c, const struct idhttp_body *b, const char *kind,
                              size_t max_bytes, struct app_err *err)
{
  enum app_result r;
  if (c == CURLE_OK)
    return APP_OK;
  if (c == CURLE_WRITE_ERROR && b->too_big)
    return app_err_set(err, APP_ERR_LIMIT, "%s: answer larger than %zu bytes", kind, max_bytes);
  switch (c) {
  case CURLE_OPERATION_TIMEDOUT: r = APP_ERR_TIMEOUT; break;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE: r = APP_ERR_TLS; break;
  case CURLE_OUT_OF_MEMORY: r = APP_ERR_NOMEM; break;
  default: r = APP_ERR_IO;
  }
  return app_err_set(err, r, "%s: %s", kind, curl_easy_strerror(c));
}

enum app_result idhttp_fetch(const struct idreq *req, const char *kind, int timeout_ms,
                             size_t max_bytes, long *status, struct buf *body, struct app_err *err)
{
  CURL *h;
  struct curl_slist *hdrs = NULL, *t;
  struct idhttp_body sc = {body, false};
  CURLcode c;
  enum app_result r;

  *status = 0;
  body->max = max_bytes;
  h = curl_easy_init();
  if (!h)
    return app_err_set(err, APP_ERR_NOMEM, "%s: cannot create a libcurl handle", kind);
  t = curl_slist_append(hdrs, "Accept: application/json");
  if (t)
    hdrs = t;
  if (req->header && (t = curl_slist_append(hdrs, req->header)) != NULL)
    hdrs = t;
  if (req->post &&
      (t = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded")) != NULL)
    hdrs = t;
  idhttp_setup(h, req->url, timeout_ms, &sc);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  if (req->post) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body.data ? req->body.data : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)req->body.len);
  }
  c = curl_easy_perform(h);
  r = idhttp_result(c, &sc, kind, max_bytes, err);
  if (r == APP_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return r;
}

/* idhttp.h - the token service call over libcurl, and the pieces every
 * libcurl call of the handler shares (the Dataverse client's too): the
 * options, the capped body, and the one place where libcurl's errors become
 * enum app_result.
 *
 * curl_global_init must have run (main does it once, before any thread). */
#ifndef D365CDC_IDENTITY_IDHTTP_H
#define D365CDC_IDENTITY_IDHTTP_H

#include "identity/token.h"

#include <curl/curl.h>
#include <stdbool.h>

/* Where a transfer's body goes (CURLOPT_WRITEDATA): appended to body up to
 * body->max; past it the transfer stops and too_big is set. */
struct idhttp_body {
  struct buf *body;
  bool too_big;
};

/* The options every outgoing call uses on h: url, no signals, timeout_ms
 * for the connect and the whole call, no redirects, http and https only,
 * the body into b, the user agent. Headers and the method are the
 * caller's. */
void idhttp_setup(CURL *h, const char *url, int timeout_ms, struct idhttp_body *b);

/* The one translation of a transfer's CURLcode: APP_OK for CURLE_OK;
 * APP_ERR_LIMIT when b's cap stopped it (naming max_bytes); else
 * APP_ERR_TIMEOUT, APP_ERR_TLS, APP_ERR_NOMEM or APP_ERR_IO with "kind: "
 * and curl's reason in err. */
APP_NODISCARD enum app_result idhttp_result(CURLcode c, const struct idhttp_body *b,
                                            const char *kind, size_t max_bytes,
                                            struct app_err *err);

/* Send req (GET, or POST of its form body) and read the response into body
 * (which must be initialised; at most max_bytes: past it APP_ERR_LIMIT).
 * The whole call ends within timeout_ms (CURLOPT_TIMEOUT_MS, no signals);
 * redirects are not followed. *status gets the HTTP status. Results:
 *   APP_OK           a response was read (any status: the caller parses it)
 *   APP_ERR_TIMEOUT  the timeout passed
 *   APP_ERR_TLS      the TLS handshake or certificate check failed
 *   APP_ERR_LIMIT    the response passed max_bytes
 *   APP_ERR_IO       resolution, connect or transfer failed
 * Messages name what (kind, e.g. "managed identity endpoint") and curl's
 * reason, never the URL's query, a header or the body. */
APP_NODISCARD enum app_result idhttp_fetch(const struct idreq *req, const char *kind,
                                           int timeout_ms, size_t max_bytes, long *status,
                                           struct buf *body, struct app_err *err);

#endif

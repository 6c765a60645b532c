/* idhttp.h - the token service call over libcurl: the one place where
 * libcurl's errors become enum app_result.
 *
 * curl_global_init must have run (main does it once, before any thread). */
#ifndef D365CDC_IDENTITY_IDHTTP_H
#define D365CDC_IDENTITY_IDHTTP_H

#include "identity/token.h"

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

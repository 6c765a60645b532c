/* dvclient.h - the Dataverse Web API over libcurl: one GET with the rules
 * Dataverse's service protection limits ask for.
 *
 * Every call: an Entra ID token for "<DataverseUrl>/.default" (azid.h),
 * Prefer (dvapi_prefer), OData-Version 4.0, a timeout (min of the per-call
 * timeout and what is left of the caller's deadline) and a cap on the body.
 * One libcurl handle is kept, so the connection is reused (keep-alive).
 *
 *   429, or 503 with Retry-After  no request goes out before Retry-After has
 *                                 elapsed (for every later call too: the
 *                                 client remembers the time); retried
 *   x-ms-ratelimit-burst-remaining-xrm-requests 0
 *                                 the next request waits 1 s
 *   500, 502, 503, 504, a broken connection or timeout
 *                                 retried after a capped backoff (250 ms
 *                                 doubling to 8 s)
 *   401                           the token is dropped (azid_invalidate) and
 *                                 the call is repeated once with a new one
 *   other statuses                returned to the caller with the OData
 *                                 error's code and message in err
 * Retries stop at the deadline (APP_ERR_TIMEOUT) or after max_attempts.
 * Not thread-safe: one client per worker (a mutex guards misuse). */
#ifndef D365CDC_DVCLIENT_H
#define D365CDC_DVCLIENT_H

#include "common/buf.h"
#include "common/result.h"
#include "identity/azid.h"

#include <stdbool.h>
#include <stdint.h>

struct dvclient;

struct dvclient_options {
  int timeout_ms;       /* one HTTP exchange (default 30000) */
  size_t max_bytes;     /* largest body (default 64 MiB) */
  int max_attempts;     /* attempts per call (default 8) */
  int maxpagesize;      /* Prefer odata.maxpagesize (default 5000) */
  int backoff_first_ms; /* default 250 */
  int backoff_max_ms;   /* default 8000 */
};

/* base: checked with dvapi_base_url. id is borrowed (may be NULL only when
 * the server needs no token: tests of the emulator without tokensvc are not
 * supported; NULL sends no Authorization header). */
APP_NODISCARD enum app_result dvclient_create(const char *base, struct azid *id,
                                              const struct dvclient_options *opt,
                                              struct dvclient **out, struct app_err *err);
void dvclient_destroy(struct dvclient *c);
const char *dvclient_base(const struct dvclient *c);

/* GET url (a URL built by dvapi_* or a link dvapi_link_ok accepted).
 * body gets the answer (reset first). *status gets the final HTTP status.
 * Results: APP_OK (2xx); APP_ERR_HTTP (4xx/5xx after the retries: status
 * and the OData "code: message" in err); APP_ERR_TIMEOUT (the deadline,
 * sink_now_ms clock, came first, including a Retry-After that ends after
 * it); APP_ERR_LIMIT (body over max_bytes); APP_ERR_IO/TLS (transport);
 * the token provider's error. */
APP_NODISCARD enum app_result dvclient_get(struct dvclient *c, const char *url, bool track_changes,
                                           int64_t deadline_ms, struct buf *body, long *status,
                                           struct app_err *err);

/* Called before every attempt (after any wait), e.g. to renew a lock held
 * while working: returning false ends the call with APP_ERR_TIMEOUT (the
 * work must stop). NULL: none. */
typedef bool (*dvclient_hook_fn)(void *ctx);
void dvclient_set_hook(struct dvclient *c, dvclient_hook_fn fn, void *ctx);

struct dvclient_stats {
  uint64_t requests;         /* HTTP exchanges */
  uint64_t throttled;        /* 429/503 answers with Retry-After */
  uint64_t throttle_wait_ms; /* time spent waiting for Retry-After */
  uint64_t retries;          /* attempts after the first */
  uint64_t token_refreshes;  /* 401 answers that dropped the token */
  uint64_t bytes;            /* body bytes received */
  long burst_remaining;      /* last x-ms-ratelimit-burst-remaining-xrm-requests, -1 */
};
void dvclient_get_stats(struct dvclient *c, struct dvclient_stats *out);

#endif

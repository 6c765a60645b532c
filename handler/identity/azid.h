/* azid.h - Microsoft Entra ID access tokens for any scope, cached.
 *
 * One provider per credential (token.h). azid_get(scope) returns a cached
 * token while it is fresh; the first caller for a scope fetches it, and
 * every caller arriving meanwhile waits for that one fetch (no stampede).
 * A background thread fetches the next token ahead of expiry (at the
 * issuer's refresh_in, else 5 minutes - or half the lifetime when shorter -
 * before expires), so callers never wait for a refresh while the current
 * token is still good. Failed fetches back off (500 ms doubling to 30 s,
 * shared by every caller of the scope). Every fetch has a timeout; tokens
 * and secrets are never logged, counted by value or put into messages.
 *
 * Scopes are strings: "https://redis.azure.com/.default" for Redis,
 * "<DataverseUrl>/.default" for the Dataverse Web API. Thread-safe. */
#ifndef D365CDC_IDENTITY_AZID_H
#define D365CDC_IDENTITY_AZID_H

#include "identity/token.h"

#include <stdbool.h>
#include <stdint.h>

struct azid;

struct azid_options {
  int timeout_ms;       /* one token request (default 10000) */
  int backoff_first_ms; /* first wait after a failed fetch (default 500) */
  int backoff_max_ms;   /* longest wait (default 30000) */
  bool no_thread;       /* refresh on the caller's thread instead (tests) */
};

/* How a token is fetched: the real one (libcurl, azid_create) or a test's. */
typedef enum app_result (*azid_fetch_fn)(void *ctx, const char *scope, int timeout_ms,
                                         struct idtok *out, struct app_err *err);

/* A provider for cred (copied). opt may be NULL (defaults). No I/O. */
APP_NODISCARD enum app_result azid_create(const struct idcred *cred, const struct azid_options *opt,
                                          struct azid **out, struct app_err *err);
/* A provider over fetch (unit tests of the cache). */
APP_NODISCARD enum app_result azid_create_fetch(azid_fetch_fn fetch, void *ctx,
                                                const struct azid_options *opt, struct azid **out,
                                                struct app_err *err);
/* Stop the refresh thread (waits for a fetch in progress) and free. NULL-safe. */
void azid_destroy(struct azid *p);

/* Which credential, for logs ("AZURE_CLIENT_SECRET", "managed identity ..."). */
const char *azid_describe(const struct azid *p);

struct azid_token {
  char *value;        /* owned: azid_token_cleanup; secret */
  int64_t expires_ms; /* sink_now_ms clock */
  uint64_t serial;    /* identifies this token (azid_invalidate) */
};
void azid_token_cleanup(struct azid_token *t);

/* A fresh token for scope, fetching (or waiting for the fetch in progress)
 * when none is cached, until deadline_ms (sink_now_ms clock). Results:
 * APP_OK; APP_ERR_TIMEOUT (the deadline passed first); while backing off
 * after a failure, the last fetch's error at once (if the next attempt
 * comes after the deadline); else the fetch's error (idhttp_fetch,
 * idtok_parse). */
APP_NODISCARD enum app_result azid_get(struct azid *p, const char *scope, int64_t deadline_ms,
                                       struct azid_token *out, struct app_err *err);

/* The cached token for scope when it is fresh; never fetches, never waits
 * for a fetch. false when there is none. */
bool azid_cached(struct azid *p, const char *scope, struct azid_token *out);

/* The server refused token serial (e.g. it expired early or was revoked):
 * do not hand it out again; the next azid_get fetches a new one. */
void azid_invalidate(struct azid *p, const char *scope, uint64_t serial);

/* Changes whenever a new token is stored for any scope (lock-free): a
 * holder of a token compares it to know when to look for a newer one. */
uint64_t azid_serial(struct azid *p);

struct azid_stats {
  uint64_t fetches;    /* token requests made */
  uint64_t failures;   /* ... that failed */
  uint64_t background; /* ... made ahead of expiry by the refresh thread */
  uint64_t waits;      /* callers that waited for another caller's fetch */
  uint64_t hits;       /* azid_get answered from the cache */
};
void azid_get_stats(struct azid *p, struct azid_stats *out);

#endif

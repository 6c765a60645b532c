/* readapi.h - the read API over the Redis replica, shaped like the
 * Dataverse Web API (docs/read-api.md).
 *
 *   GET /api/data/v9.2/<entityset>(<guid>)[?$select=a,b]
 *   GET /api/data/v9.2/<entityset>(<guid>)/<relationship>[?$select=a,b]
 *   GET /api/data/v9.2/<entityset>(<guid>)/<property>
 *
 * answered as Dataverse answers: @odata.context, @odata.etag, the columns,
 * annotations when Prefer: odata.include-annotations asks for them;
 * If-None-Match with the current etag gives 304; an absent or deleted
 * record 404; a malformed id or query option 400; an unknown $select column
 * 400 (schema.h decides what is known); Redis unreachable or not answering
 * 503 with Retry-After, within the read timeout. Answers about a record
 * carry x-cdc-freshness-ms: the milliseconds between the record's last
 * change in Dataverse (OperationCreatedOn) and now, so an app can see how
 * current the replica is.
 *
 * Transport-neutral: app.c calls readapi_handle for the default envelope
 * (Data.req in, Outputs.res out) and for forwarded raw requests. Reads run
 * on a connection pool of their own (CDC_REDIS_POOL connections, opened
 * lazily, separate from the writers' pool), so reads never queue behind
 * writes. */
#ifndef D365CDC_READAPI_H
#define D365CDC_READAPI_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/config.h"
#include "map/mapping.h"
#include "common/result.h"
#include "read/schema.h"

#include <stdint.h>

struct readapi;

/* Parse cfg->redis_connection (and CDC_REDIS_CA_FILE) for the read pool;
 * no network I/O. cfg, map and schema are borrowed and must outlive the
 * read API. The time one read may take is the connection string's
 * syncTimeout (default 5000 ms): connecting, waiting for a pooled
 * connection and every round trip of the read fit in it.
 *   APP_ERR_CONFIG  the connection string or CDC_KEY_PREFIX is invalid
 *   APP_ERR_TLS     ssl=true and the TLS context cannot be made
 * Caller frees *out with readapi_destroy. */
APP_NODISCARD enum app_result readapi_create(const struct app_config *cfg,
                                             const struct map_config *map, struct schema *schema,
                                             struct readapi **out, struct app_err *err);
/* All readapi_handle calls must have returned. NULL-safe. */
void readapi_destroy(struct readapi *api);

struct readapi_request {
  const char *method;
  const char *path;          /* URL path as received (percent-encoded) */
  const char *query;         /* raw query string without '?', or NULL */
  const char *prefer;        /* Prefer header or NULL */
  const char *if_none_match; /* If-None-Match header or NULL */
  const char *base_url;      /* scheme://host for @odata.context, or NULL */
};

#define READAPI_MAX_HEADERS 8

struct readapi_response {
  int status;
  struct buf body; /* JSON (empty for 304) */
  size_t nheaders;
  const char *header_names[READAPI_MAX_HEADERS];
  const char *header_values[READAPI_MAX_HEADERS]; /* in the request's arena */
};

/* Answer one request; thread-safe. res->body is initialised here with a
 * ceiling of max_bytes; the caller frees it with buf_cleanup. Header values
 * live in arena a. Always fills *res (errors are answers: 4xx/5xx with an
 * OData error body; 304 and 204 have an empty body); returns APP_ERR_LIMIT
 * only when not even the error answer fits. */
APP_NODISCARD enum app_result readapi_handle(struct readapi *api, struct arena *a,
                                             const struct readapi_request *req, size_t max_bytes,
                                             struct readapi_response *res);

/* Split an absolute URL ("https://host/api/x?y=1") into base
 * ("https://host"), path ("/api/x") and query ("y=1" or NULL), in arena a.
 * A URL without scheme is taken as a path. */
APP_NODISCARD enum app_result readapi_split_url(struct arena *a, const char *url,
                                                const char **out_base, const char **out_path,
                                                const char **out_query);

#endif

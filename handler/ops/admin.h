/* admin.h - the replay admin API (an httpTrigger with authLevel admin).
 *
 * Lists, shows, replays and deletes the poison and dead-letter records of
 * the record stream (redis_ops.h), one or by filter. Paths are what follows
 * ".../cdc/admin/" in the request path:
 *
 *   GET    records[?filters]           list, newest first (no bodies)
 *   GET    records/<id>                one record with its body
 *   POST   records/<id>/replay         replay one
 *   POST   replay?filters              replay every match (up to limit)
 *   DELETE records/<id>                delete one
 *   DELETE records?filters             delete every match (a filter or all=true
 *                                      is required)
 *
 * Filters: kind=poison|deadletter, table=<logical name>, reason=<text>
 * (case-insensitive substring), from=/to= (recorded time: ms since 1970 or
 * ISO 8601), state=open|replayed|all (default open), limit (default 100,
 * at most 1000). A replay puts the body through the pipeline again
 * (pipeline_replay: safe, the writes are version-guarded) and records the
 * outcome in the record (state, outcome, replays, replayed_ms); a record
 * that fails again stays open with its new reason (previous_reason keeps
 * the old one). Each record becomes a new stream entry (a new id); the
 * answer gives it.
 *
 * Answers are JSON; errors {"error":{"code":"...","message":"..."}} with
 * 400 (bad filter/path), 404 (no such record or path), 405, 503 (the store
 * is unreachable: the class only, never an internal host name). */
#ifndef D365CDC_ADMIN_H
#define D365CDC_ADMIN_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/result.h"
#include "redis/redis_pool.h"

#include <stdbool.h>
#include <stddef.h>

struct pipeline;
struct opsstore;

struct admin_target {
  const struct app_config *cfg;
  struct redis_pool *pool; /* NULL: records are not in Redis (answers 501) */
  struct pipeline *pipeline;
  struct opsstore *ops; /* flushed after replays (may be NULL) */
};

/* ---- the request (pure) ---- */

enum admin_op {
  ADMIN_RECORDS = 1, /* records[?filters]: GET list, DELETE by filter */
  ADMIN_RECORD,      /* records/<id>: GET, DELETE */
  ADMIN_REPLAY_ONE,  /* records/<id>/replay: POST */
  ADMIN_REPLAY       /* replay?filters: POST */
};

struct admin_filter {
  const char *kind, *table, *reason, *state; /* decoded, in the arena; state never NULL */
  char from[32], to[32];                     /* stream id bounds: "-" / "+" or ms */
  size_t limit;                              /* 1..1000 */
  bool any;                                  /* a filter other than limit/state was given */
  bool all;                                  /* all=true */
};

struct admin_request {
  enum admin_op op;
  bool del;    /* DELETE */
  char id[48]; /* ADMIN_RECORD, ADMIN_REPLAY_ONE: a stream entry id "<ms>-<seq>" */
  struct admin_filter f;
};

/* Parse method, path (the part after "cdc/admin" is used) and query (may
 * be NULL) into *rq (strings in arena a). False when the request is wrong:
 * *status gets 400 (bad filter or id), 404 (no such path) or 405 (method),
 * why[0..cap) says what; true: *status = 200. */
bool admin_parse(struct arena *a, const char *method, const char *path, const char *query,
                 struct admin_request *rq, int *status, char *why, size_t cap);

/* Handle one request. path: the request path (percent-encoded as
 * received); query: the raw query without '?', or NULL. *status and body
 * get the answer. Returns APP_OK whenever an answer was built (errors
 * included), APP_ERR_LIMIT when body passed its cap. */
APP_NODISCARD enum app_result admin_handle(const struct admin_target *t, struct arena *a,
                                           const char *method, const char *path, const char *query,
                                           const char *invocation_id, int *status,
                                           struct buf *body);

#endif

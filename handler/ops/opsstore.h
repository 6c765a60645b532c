/* opsstore.h - the shared metrics: periodic flush of the local deltas to
 * Redis, and reading them back from any instance.
 *
 * A background thread adds this process's deltas (opsmetrics.h) to the
 * hash <CDC_KEY_PREFIX>:{ops}:metrics every CDC_METRICS_FLUSH_MS, in one
 * pipeline of HINCRBY on that one key (Redis Cluster: one slot); a flush
 * that fails puts the deltas back for the next one. Invocations never wait
 * for it. Reading flushes this process's deltas first, then reads the hash
 * (HGETALL), so what one instance serves is the sum of every instance's
 * work up to their last flush. Without a Redis target (CDC_TARGET=sql or
 * none) the shared part is not available and readers get only the local
 * deltas not yet taken (docs/operations.md). */
#ifndef D365CDC_OPSSTORE_H
#define D365CDC_OPSSTORE_H

#include "common/buf.h"
#include "common/config.h"
#include "common/result.h"
#include "redis/redis_pool.h"

#include <stdbool.h>

struct opsstore;

/* pool may be NULL (no Redis target): nothing is flushed. Starts the
 * flusher thread when pool is set and cfg->metrics_flush_ms > 0. No I/O.
 * Caller frees with opsstore_destroy. */
APP_NODISCARD enum app_result opsstore_create(const struct app_config *cfg, struct redis_pool *pool,
                                              struct opsstore **out, struct app_err *err);

/* Stop the flusher and flush once more (within 1 s). NULL-safe. */
void opsstore_destroy(struct opsstore *s);

/* Flush the local deltas now (deadline: sink_now_ms clock). */
APP_NODISCARD enum app_result opsstore_flush(struct opsstore *s, int64_t deadline_ms,
                                             struct app_err *err);

/* Append the shared metrics as a JSON object ({"scope":"shared",...} from
 * opsm_render_json, or {"scope":"unavailable","error":"..."} when Redis
 * cannot be read) or as Prometheus text (nothing when unavailable, a
 * comment naming the error). */
APP_NODISCARD enum app_result opsstore_render(struct opsstore *s, bool prometheus, struct buf *out);

#endif

/* schema.h - which properties each table has ever had, for $select checks.
 *
 * Dataverse answers $select with an unknown column by 400. The replica
 * only knows the columns it has received, so the pipeline notes every
 * property name it writes, per table, in a Redis set
 *   <prefix>:schema:<table>
 * and the read API checks $select names that a record does not hold against
 * that set: a name never seen for the table is unknown (400); a known one
 * the record lacks is null, as Dataverse returns it. A process-wide memory
 * cache means a name costs one SADD the first time this process writes it
 * and then one more per refresh interval: the set is written again now and
 * then, so it heals when Redis lost it (a flush, a restart without
 * persistence) while this process kept running. What a reader has once
 * confirmed stays known to it (a column does not stop being a column).
 *
 * Writers (the pipeline) use the pool given at creation; readers pass
 * their own pool to schema_known, so a $select check never waits behind
 * writes. */
#ifndef D365CDC_SCHEMA_H
#define D365CDC_SCHEMA_H

#include "map/doc.h"
#include "redis/redis_pool.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

struct schema;

#define SCHEMA_REFRESH_MS_DEFAULT (10 * 60 * 1000)

/* pool (for schema_note) and prefix are borrowed. refresh_ms: how long a
 * name noted by this process is taken as present in Redis before
 * schema_note writes it again (0: SCHEMA_REFRESH_MS_DEFAULT). Caller frees
 * with schema_destroy. */
struct schema *schema_create(struct redis_pool *pool, const char *prefix, int64_t refresh_ms);
void schema_destroy(struct schema *s);

/* Note the property names of docs (one pipelined SADD round trip for the
 * names this process has not written within the refresh interval; none
 * when all are recent). Results: APP_OK; APP_ERR_LIMIT (the command passed
 * its cap); the codes of redis_pool_acquire / redis_conn_exchange, or
 * APP_ERR_REDIS for an error reply. Failures are harmless: the names are
 * tried again with the next document that has them. */
APP_NODISCARD enum app_result schema_note(struct schema *s, const struct doc *const *docs, size_t n,
                                          int64_t deadline_ms, struct app_err *err);

/* For each names[i] set known[i]: whether the table has ever had that
 * property (memory first, then one pipelined round trip of SISMEMBER on a
 * connection of read_pool for the rest; nothing is sent when memory knows
 * them all). Results as schema_note; on failure known[] is unspecified. */
APP_NODISCARD enum app_result schema_known(struct schema *s, struct redis_pool *read_pool,
                                           const char *table, const char *const *names, size_t n,
                                           bool *known, int64_t deadline_ms, struct app_err *err);

#endif

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
 * and nothing afterwards. */
#ifndef D365CDC_SCHEMA_H
#define D365CDC_SCHEMA_H

#include "doc.h"
#include "redis_pool.h"
#include "result.h"

#include <stdbool.h>
#include <stddef.h>

struct schema;

/* pool and prefix are borrowed. Caller frees with schema_destroy. */
struct schema *schema_create(struct redis_pool *pool, const char *prefix);
void schema_destroy(struct schema *s);

/* Note the property names of docs (one pipelined SADD round trip for the
 * names this process has not written before; none when all are known).
 * Failures are returned but harmless: the names are tried again later. */
APP_NODISCARD enum app_result schema_note(struct schema *s, const struct doc *const *docs,
                                          size_t n, int64_t deadline_ms, struct app_err *err);

/* For each names[i] set known[i]: whether the table has ever had that
 * property (memory first, then one pipelined round trip of SISMEMBER for
 * the rest). */
APP_NODISCARD enum app_result schema_known(struct schema *s, const char *table,
                                           const char *const *names, size_t n, bool *known,
                                           int64_t deadline_ms, struct app_err *err);

#endif

/* redis_ops.h - the operations store in Redis: shared metrics and the
 * poison / dead-letter record stream.
 *
 * Every command names one key, so each works on Redis Cluster (one slot per
 * command): the metrics hash <prefix>:{ops}:metrics, and the record stream
 * CDC_POISON_STREAM (d365:poison), which the pipeline's poison records and
 * the dead-letter audit function share. Replacing a record (replay) is one
 * Lua script on the stream key alone.
 *
 * Records are stream entries: the entry id (<ms>-<seq>) is the record id
 * and the time it was recorded; fields are name/value pairs (values are
 * binary-safe; body holds the exact message bytes). No retries here: the
 * caller decides (the audit function fails its invocation, so Service Bus
 * delivers the dead-lettered message again). */
#ifndef D365CDC_REDIS_OPS_H
#define D365CDC_REDIS_OPS_H

#include "common/arena.h"
#include "common/opsmetrics.h"
#include "common/result.h"
#include "redis/redis_pool.h"

#include <stddef.h>
#include <stdint.h>

/* One record field; value is NUL-terminated in the arena (not counted). */
struct redis_ops_kv {
  const char *name;
  const char *value;
  size_t len;
};

struct redis_ops_record {
  char id[48]; /* stream entry id */
  struct redis_ops_kv *f;
  size_t n;
};

/* Value of field name, or NULL (*len gets its length when found). */
const char *redis_ops_field(const struct redis_ops_record *r, const char *name, size_t *len);

/* HINCRBY key field value for every f[0..n), in one pipeline.
 * APP_OK, or the pool's / exchange's errors (REDIS, IO, TIMEOUT, TLS). */
APP_NODISCARD enum app_result redis_ops_hincr(struct redis_pool *p, const char *key,
                                              const struct opsm_field *f, size_t n,
                                              int64_t deadline_ms, struct app_err *err);

/* HGETALL key into *out (malloc'd, caller frees; NULL when empty), *n. */
APP_NODISCARD enum app_result redis_ops_hgetall(struct redis_pool *p, const char *key,
                                                struct opsm_field **out, size_t *n,
                                                int64_t deadline_ms, struct app_err *err);

/* XADD stream MAXLEN ~ maxlen * f... ; id (may be NULL, 48 bytes) gets the
 * new entry id. */
APP_NODISCARD enum app_result redis_ops_xadd(struct redis_pool *p, const char *stream, int maxlen,
                                             const struct redis_ops_kv *f, size_t n,
                                             int64_t deadline_ms, char *id, struct app_err *err);

/* XREVRANGE stream end start COUNT count (newest first) into *out (arena
 * a; *n entries). start/end are stream ids or "-" / "+"; exclusive ends
 * as "(<id>" (Redis >= 6.2). */
APP_NODISCARD enum app_result redis_ops_xrevrange(struct redis_pool *p, const char *stream,
                                                  const char *end, const char *start, size_t count,
                                                  struct arena *a, struct redis_ops_record **out,
                                                  size_t *n, int64_t deadline_ms,
                                                  struct app_err *err);

/* XDEL stream id; *deleted (may be NULL) gets 0 or 1. */
APP_NODISCARD enum app_result redis_ops_xdel(struct redis_pool *p, const char *stream,
                                             const char *id, int *deleted, int64_t deadline_ms,
                                             struct app_err *err);

/* Atomically replace entry old_id with a new entry of fields f[0..n)
 * (XDEL + XADD MAXLEN ~ in one script on the stream key). new_id gets the
 * new entry's id; APP_ERR_NOTFOUND when old_id no longer exists (nothing
 * added). */
APP_NODISCARD enum app_result redis_ops_xreplace(struct redis_pool *p, const char *stream,
                                                 int maxlen, const char *old_id,
                                                 const struct redis_ops_kv *f, size_t n,
                                                 int64_t deadline_ms, char *new_id,
                                                 struct app_err *err);

#endif

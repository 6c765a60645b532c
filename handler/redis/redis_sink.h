/* redis_sink.h - write mapped documents to Redis, version-guarded.
 *
 * Every document becomes one EVALSHA of the apply script (redis_lua.h), an
 * atomic server-side step that applies the version rules: per-property
 * last-writer-wins, full rows dropping older unlisted properties, versioned
 * delete tombstones, versioned relationship member sets in both directions,
 * TTLs, and "re-read needed" markers. A batch goes out as one pipeline: all
 * commands written, then all replies read, one round trip in the normal
 * case. Poison messages go into a capped stream in the same pipeline.
 *
 * Failures: an error reply, a timeout or a broken connection fails the
 * attempt; the commands whose replies were not seen are sent again with
 * exponential backoff and jitter (CDC_RETRY_INITIAL_MS doubling to 5 s)
 * until batch->deadline_ms. A write is reported only after its reply was
 * seen. Errors that retrying cannot fix (WRONGTYPE, NOPERM, failed AUTH,
 * certificate verification, a script error) fail at once.
 *
 * Key layout (docs/redis.md), all Redis Cluster-safe (one hash tag per
 * script call):
 *   <prefix>:{<table>:<id>}                    record hash
 *   <prefix>:{<table>:<id>}:rel:<relationship> related records
 *   <prefix>:reread                            sorted set of records that
 *                                              need a re-read (score: op time)
 *   CDC_POISON_STREAM                          poison messages */
#ifndef D365CDC_REDIS_SINK_H
#define D365CDC_REDIS_SINK_H

#include "common/buf.h"
#include "common/config.h"
#include "redis/redis_pool.h"
#include "map/sink.h"

#include <stdbool.h>

struct redis_sink;

/* Parse cfg->redis_connection (warnings for unknown options are logged,
 * the string itself never), make the TLS context when ssl=True, compute
 * the script's SHA1. No network I/O: connections open on first use.
 *   APP_ERR_CONFIG  the connection string or a setting is invalid
 *   APP_ERR_TLS     the CA file cannot be loaded
 * Caller frees with redis_sink_destroy. Thread-safe after creation. */
APP_NODISCARD enum app_result redis_sink_create(const struct app_config *cfg,
                                                struct redis_sink **out, struct app_err *err);

/* Close the connections and free. Every apply/read must have returned.
 * NULL-safe. */
void redis_sink_destroy(struct redis_sink *s);

/* Write batch->docs and record batch->poison; may be called by several
 * threads at once. *out_stats (may be NULL) gets the counts: applied (the
 * document changed something), stale (older or redelivered), poison,
 * round_trips (pipeline exchanges, retries and NOSCRIPT reloads included;
 * a new connection's handshake is not counted) and retries. Results:
 *   APP_OK           every write and poison record confirmed by the server
 *   APP_ERR_INPUT    a document cannot be written (bad table/id/relationship
 *                    name, bad version text); nothing is retried
 *   APP_ERR_REDIS    an error reply (the server's text, e.g. WRONGTYPE, is in
 *                    err->msg), failed AUTH, or the connection kept breaking
 *                    until the deadline
 *   APP_ERR_TIMEOUT  Redis did not answer in time until the deadline
 *   APP_ERR_TLS      the TLS handshake or certificate check failed
 *   APP_ERR_LIMIT    the pipeline or its replies passed a size cap
 * On failure some writes may have been applied: they are idempotent, so
 * redelivering the batch is safe. */
APP_NODISCARD enum app_result redis_sink_apply(struct redis_sink *s, const struct sink_batch *batch,
                                               struct sink_stats *out_stats, struct app_err *err);

/* Append to out the commands (RESP, exactly the bytes redis_sink_apply
 * would pipeline) that write document d: one EVALSHA of the apply script,
 * or several for a relationship or a re-read marker. For tools: the
 * benchmark replays them with redis-benchmark as the Redis floor. Results:
 * APP_OK, APP_ERR_INPUT (d cannot be written: bad table/id/relationship
 * name), APP_ERR_LIMIT (out reached its ceiling). */
APP_NODISCARD enum app_result redis_sink_doc_commands(const struct redis_sink *s,
                                                      const struct doc *d, struct buf *out,
                                                      struct app_err *err);

/* Streaming a batch: start writing its pipeline while it is still being
 * decoded, so that Redis applies the first documents while the handler
 * decodes the next ones (one batch is one round trip all the same).
 *
 *   st = redis_sink_stream_begin(s);
 *   for each document d, in order: redis_sink_stream_add(st, d);
 *   redis_sink_apply_stream(s, st, &batch, &stats, err);  (or _abort)
 *
 * redis_sink_stream_add plans d's commands and, once 16 KiB are pending,
 * writes what the socket takes at once on an idle pooled connection (it
 * never connects and never waits: without an idle connection it only
 * plans). redis_sink_apply_stream(st, batch) is redis_sink_apply(batch)
 * with the same results, stats and retries: when batch->docs are exactly
 * the documents added, in order, it adds the poison records and its first
 * attempt goes on from what was written; otherwise it plans again (a
 * document refused while streaming is reported as redis_sink_apply does).
 * It frees st. A document written early is applied before the batch is
 * confirmed; writes are idempotent and version-guarded, so a failed
 * invocation's redelivery stays safe. Not thread-safe: one stream per
 * invocation. */
struct redis_sink_stream;
struct redis_sink_stream *redis_sink_stream_begin(struct redis_sink *s);
/* d must stay valid until redis_sink_apply_stream or _abort. */
void redis_sink_stream_add(struct redis_sink_stream *st, const struct doc *d);
/* Frees st (NULL: plain redis_sink_apply). Results as redis_sink_apply. */
APP_NODISCARD enum app_result redis_sink_apply_stream(struct redis_sink *s,
                                                      struct redis_sink_stream *st,
                                                      const struct sink_batch *batch,
                                                      struct sink_stats *out_stats,
                                                      struct app_err *err);
/* Free a stream that will not be applied (the invocation failed before
 * its writes); a connection it wrote on is closed, not reused. NULL-safe. */
void redis_sink_stream_abort(struct redis_sink_stream *st);

/* The connection pool (borrowed, valid until redis_sink_destroy), shared
 * with the read functions (redis_read.h). */
struct redis_pool *redis_sink_pool(struct redis_sink *s);
/* CDC_KEY_PREFIX (borrowed). */
const char *redis_sink_prefix(const struct redis_sink *s);
/* The apply script's SHA1 as 40 hex digits (borrowed). */
const char *redis_sink_script_sha(const struct redis_sink *s);
/* The apply script's source (for tools such as the benchmark). */
const char *redis_sink_script(void);

/* How long one pipeline of ncmds commands and bytes bytes may take to be
 * written and answered: syncTimeout for a small one, plus the time a large
 * one needs to cross the network at a slow 10 MB/s and to run (0.1 ms per
 * command), so a 60 MB batch is not cut off by a timeout sized for one
 * command (issue 17). Pure. */
int64_t redis_sink_pipeline_timeout_ms(int sync_timeout_ms, size_t bytes, size_t ncmds);

/* Can document d be written at all (names usable in keys, a relationship
 * change with at least one related record, every property named)? Pure.
 * The pipeline asks before a batch goes to the sink, so a message the sink
 * could never store becomes that message's poison record instead of
 * failing the whole batch. APP_ERR_INPUT with the reason. */
APP_NODISCARD enum app_result redis_sink_check_doc(const struct doc *d, struct app_err *err);

/* Is s usable in a key: a table logical name or relationship schema name
 * ([A-Za-z0-9_], 1..128 bytes), or with dash=true an id ([A-Za-z0-9-],
 * 1..128 bytes)? Keeps keys unambiguous ("a:b" + "c" vs "a" + "b:c") and
 * hash tags intact. */
bool redis_sink_name_ok(const char *s, bool dash);

/* Append <prefix>:{<table>:<id>} */
APP_NODISCARD enum app_result redis_sink_record_key(struct buf *b, const char *prefix,
                                                    const char *table, const char *id);
/* Append <prefix>:{<table>:<id>}:rel:<relationship> */
APP_NODISCARD enum app_result redis_sink_rel_key(struct buf *b, const char *prefix,
                                                 const char *table, const char *id,
                                                 const char *relationship);

#endif

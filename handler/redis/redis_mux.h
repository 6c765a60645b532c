/* redis_mux.h - concurrent reads share Redis connections, pipelined.
 *
 * When many threads read at once, their commands are sent together on one
 * connection (auto-pipelining), so Redis does one read and one write system
 * call per batch instead of per call. No thread of its own: a caller that
 * finds fewer than max_leaders batches in flight becomes a "leader" and does
 * the I/O for itself and for every caller queued meanwhile (their commands
 * concatenated into one write, the replies split back in order); the others
 * wait on a condition variable. When a leader finishes and callers are
 * queued, it hands the lead to the one among them with the latest deadline,
 * which takes the whole queue (everything due no later than itself).
 *
 * Deadlines: nobody waits past its own deadline. A batch's exchange stops at
 * the leader's deadline, the latest in the batch; a caller whose deadline
 * passes while queued leaves the queue, one whose deadline passes while its
 * batch is in flight leaves too (APP_ERR_TIMEOUT), and the leader reads its
 * replies and frees them: a reply is never handed to another caller.
 *
 * Bounds: at most max_leaders batches in flight (each on a connection of the
 * pool), at most max_batch callers in one batch, at most max_queue callers
 * queued; a caller beyond max_queue is refused at once (APP_ERR_TIMEOUT,
 * "busy"), which the read API answers 503 like any overload. */
#ifndef D365CDC_REDIS_MUX_H
#define D365CDC_REDIS_MUX_H

#include "redis/redis_pool.h"

#include <stddef.h>
#include <stdint.h>

struct redis_mux;

/* A multiplexer over pool (borrowed: it must outlive the mux; its size
 * should be at least max_leaders, or leaders wait for connections). Every
 * limit must be >= 1 (APP_ERR_CONFIG otherwise). Caller frees with
 * redis_mux_destroy. */
APP_NODISCARD enum app_result redis_mux_create(struct redis_pool *pool, size_t max_leaders,
                                               size_t max_batch, size_t max_queue,
                                               struct redis_mux **out, struct app_err *err);

/* Free the mux. No call may be in progress. NULL-safe. */
void redis_mux_destroy(struct redis_mux *m);

/* The pool (borrowed). */
struct redis_pool *redis_mux_pool(struct redis_mux *m);

/* Send cmds[0..len) (n >= 1 complete commands in RESP, redis_cmd_*) and
 * read their n replies into replies[0..n), batched with other callers'
 * commands, by deadline_ms (sink_now_ms clock; 0 means now + the pool's
 * syncTimeout). Error replies are stored like any reply. Results:
 *   APP_OK           all n replies stored; the caller frees each with
 *                    freeReplyObject
 *   APP_ERR_TIMEOUT  the deadline passed (queued, in flight, or while
 *                    waiting for a connection), or the queue was full
 *   anything redis_pool_acquire or redis_conn_exchange returns (IO, TLS,
 *                    CONFIG, REDIS, LIMIT, NOMEM): for every caller of the
 *                    batch when its connection failed
 * On failure nothing is stored in replies. */
APP_NODISCARD enum app_result redis_mux_exchange(struct redis_mux *m, const char *cmds, size_t len,
                                                 size_t n, redisReply **replies,
                                                 int64_t deadline_ms, struct app_err *err);

struct redis_mux_stats {
  size_t calls;     /* redis_mux_exchange calls */
  size_t batches;   /* exchanges done by leaders (calls / batches = mean batch) */
  size_t max_batch; /* most callers in one batch so far */
  size_t abandoned; /* callers that left a batch in flight (their replies dropped) */
  size_t expired;   /* callers whose deadline passed while queued */
  size_t refused;   /* callers refused because the queue was full */
};
void redis_mux_get_stats(struct redis_mux *m, struct redis_mux_stats *out);

#endif

/* redis_pool.h - a fixed-size pool of Redis connections shared by threads.
 *
 * The HTTP worker threads borrow a connection for one batch or one read and
 * give it back; a connection is never used by two threads at once.
 * Connections are opened lazily on first use (so start-up does no network
 * I/O), checked for a peer close before reuse, and discarded when an
 * exchange failed on them. When connecting fails, further connects wait
 * with exponential backoff (100 ms doubling to 5 s), shared by all threads,
 * so an outage does not turn into a connect storm. */
#ifndef D365CDC_REDIS_POOL_H
#define D365CDC_REDIS_POOL_H

#include "redis/redis_conn.h"

struct redis_pool;

/* Create a pool of at most size connections to *ci. The pool takes the
 * strings of *ci (which is left zeroed). setup[0..setup_len) holds nsetup
 * commands sent after AUTH/SELECT on every new connection (e.g. SCRIPT
 * LOAD); copied. No network I/O. APP_ERR_TLS when ci->ssl and the TLS
 * context cannot be made (bad CA file). Caller frees with
 * redis_pool_destroy. */
APP_NODISCARD enum app_result redis_pool_create(struct redis_conninfo *ci, size_t size,
                                                const char *setup, size_t setup_len, size_t nsetup,
                                                struct redis_pool **out, struct app_err *err);

/* Close every idle connection and free the pool. Every borrowed connection
 * must have been released. NULL-safe. */
void redis_pool_destroy(struct redis_pool *p);

/* Borrow a connection, connecting it if needed, waiting for a free one
 * until deadline_ms (sink_now_ms clock). A new connection's connect also
 * stops at ci->connect_timeout_ms. Results:
 *   APP_OK           *out is borrowed until redis_pool_release
 *   APP_ERR_TIMEOUT  every connection stayed busy until the deadline, or
 *                    connecting timed out
 *   anything redis_conn_open returns (IO, TLS, CONFIG, REDIS): connecting
 *                    failed; while the pool backs off, the last connect
 *                    error is returned without a new attempt if the next
 *                    attempt would come after deadline_ms, and at once
 *                    when a shutdown (sink_cancel_all) interrupts the
 *                    wait for the backoff. */
APP_NODISCARD enum app_result redis_pool_acquire(struct redis_pool *p, int64_t deadline_ms,
                                                 struct redis_conn **out, struct app_err *err);

/* An idle, open connection at once, or NULL: never connects, never waits
 * (for work that can do without one, such as starting a batch's pipeline
 * while it is still being decoded). Borrowed until redis_pool_release. */
struct redis_conn *redis_pool_try_acquire(struct redis_pool *p);

/* Give a connection back; a broken one is closed (its slot is reopened
 * lazily). NULL-safe. */
void redis_pool_release(struct redis_pool *p, struct redis_conn *c);

/* Close the idle connections (e.g. after READONLY: they all point at a
 * former primary). */
void redis_pool_drop_idle(struct redis_pool *p);

/* The connection settings (borrowed, valid until redis_pool_destroy). */
const struct redis_conninfo *redis_pool_info(const struct redis_pool *p);

/* The cluster client routing for this pool's users (redis_cluster.h), set
 * once before any concurrent use; NULL (the default): always this pool's
 * node. Not owned. */
struct redis_cluster;
void redis_pool_set_cluster(struct redis_pool *p, struct redis_cluster *cl);
struct redis_cluster *redis_pool_cluster(const struct redis_pool *p);

struct redis_pool_stats {
  size_t size;             /* slots */
  size_t open;             /* connections open now (idle + borrowed) */
  size_t connects;         /* successful connects since creation */
  size_t connect_failures; /* failed connects since creation */
};
void redis_pool_get_stats(struct redis_pool *p, struct redis_pool_stats *out);

#endif

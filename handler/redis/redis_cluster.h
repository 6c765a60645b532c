/* redis_cluster.h - Redis Cluster: hash slots, topology, routing.
 *
 * Azure Managed Redis' default OSS clustering policy (and any Redis
 * Cluster) spreads the keys over several primaries by hash slot; a client
 * must send each command to the primary that owns its key's slot and
 * follow the redirections the cluster answers while slots move.
 *
 * The pure part (no I/O): CRC16 slots with hash tags, which key a command
 * names, MOVED/ASK redirections, and the replies of CLUSTER SHARDS and
 * CLUSTER SLOTS as a list of slot ranges.
 *
 * The I/O part: struct redis_cluster keeps the slot map and one connection
 * pool per primary (redis_pool.h, so every node's connections are made and
 * authenticated by redis_conn_open like the single node's). Topology comes
 * from CLUSTER SHARDS (Redis 7), else CLUSTER SLOTS, asked of any known node
 * or of the seeds in RedisConnection (every endpoint listed). A set of
 * commands is split by node, written to every node before any reply is
 * read (so all nodes work at once: one round trip per node), and
 * redirections are followed: MOVED updates the map and resends, ASK resends
 * after ASKING to the importing node, NOSCRIPT loads the node's setup
 * commands (SCRIPT LOAD) and resends, at most RCL_MAX_REDIRECTS times per
 * command. A connection error or CLUSTERDOWN marks the map stale: the next
 * exchange asks for the topology again.
 *
 * Thread-safe: the map is under a mutex; each exchange borrows pooled
 * connections. */
#ifndef D365CDC_REDIS_CLUSTER_H
#define D365CDC_REDIS_CLUSTER_H

#include "common/result.h"
#include "redis/redis_pool.h"

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RCL_SLOTS         16384
#define RCL_MAX_NODES     128 /* distinct node addresses one process keeps pools for */
#define RCL_MAX_REDIRECTS 5   /* MOVED/ASK/NOSCRIPT resends of one command per exchange */

/* ---- pure ---------------------------------------------------------------- */

/* The hash slot of a key: CRC16 (XMODEM) mod 16384 of the key, or of its
 * hash tag (the bytes between the first '{' and the next '}', when not
 * empty). */
unsigned redis_cluster_key_slot(const char *key, size_t len);

/* The first complete RESP command at cmds[0..len) (an array of bulk
 * strings, as redis_cmd_* write them): *out_len its bytes and *out_slot its
 * key's slot, or -1 for a command without a key (SCRIPT, INFO, PING,
 * CLUSTER, ASKING, EVAL/EVALSHA with 0 keys ...). EVAL and EVALSHA
 * route by their first key. false when cmds does not start with a complete
 * command. */
bool redis_cluster_cmd_slot(const char *cmds, size_t len, size_t *out_len, int *out_slot);

/* An error reply "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>"
 * (host may be an IPv6 literal, or empty: the node that answered):
 * true with the fields filled; false for any other text. */
bool redis_cluster_redirect(const char *s, size_t n, bool *out_ask, int *out_slot, char *host,
                            size_t host_cap, int *out_port);

/* One range of slots and the primary that serves it. */
struct rcl_range {
  int lo, hi; /* inclusive, 0..16383 */
  char host[256];
  int port;
};

struct rcl_topology {
  struct rcl_range *ranges;
  size_t n;
};

/* The reply of CLUSTER SHARDS (RESP2: each shard a flat key/value array
 * with "slots" and "nodes"): the online primary of every shard that has
 * slots. tls: take a node's "tls-port" when it has one. asked_host replaces
 * an empty or "?" address. APP_ERR_REDIS (naming what is wrong) for a
 * reply of another shape or a shard without a usable primary; APP_ERR_NOMEM. */
APP_NODISCARD enum app_result redis_cluster_parse_shards(const redisReply *r, bool tls,
                                                         const char *asked_host,
                                                         struct rcl_topology *out,
                                                         struct app_err *err);
/* The reply of CLUSTER SLOTS: [lo, hi, [host, port, id, ...], replicas...]. */
APP_NODISCARD enum app_result redis_cluster_parse_slots(const redisReply *r, const char *asked_host,
                                                        struct rcl_topology *out,
                                                        struct app_err *err);
void redis_cluster_topology_free(struct rcl_topology *t);

/* ---- the cluster client ---------------------------------------------------- */

enum redis_cluster_mode {
  RCL_MODE_AUTO = 0, /* ask the first node once: INFO cluster, cluster_enabled:1 */
  RCL_MODE_ON,       /* always a cluster */
  RCL_MODE_OFF       /* always one node (the first endpoint), as before */
};

struct redis_cluster;

/* A cluster client beside the single-node pool seed (borrowed; it must
 * outlive the cluster): seed's settings (redis_pool_info: TLS, AUTH, user,
 * timeouts, every endpoint as a seed) are used for every node, each node
 * gets a pool of node_pool_size connections with the setup commands
 * setup[0..setup_len) (nsetup commands, copied; sent after AUTH on every
 * new connection and again after NOSCRIPT). No network I/O. Caller frees
 * with redis_cluster_destroy (before seed). */
APP_NODISCARD enum app_result redis_cluster_create(struct redis_pool *seed,
                                                   enum redis_cluster_mode mode,
                                                   size_t node_pool_size, const char *setup,
                                                   size_t setup_len, size_t nsetup,
                                                   struct redis_cluster **out, struct app_err *err);
void redis_cluster_destroy(struct redis_cluster *cl);

/* After its commands, every node's pipeline ends with WAIT replicas
 * timeout_ms, and the node's replies count only when that many replicas
 * acknowledged them (CDC_REDIS_WAIT_REPLICAS): a write confirmed this way
 * survives the loss of its primary. 0 (the default): no WAIT. Set before
 * any concurrent use. */
void redis_cluster_set_wait(struct redis_cluster *cl, int replicas, int timeout_ms);

/* Parse CDC_REDIS_CLUSTER's text: auto, on, off (case-insensitive). */
bool redis_cluster_mode_parse(const char *s, enum redis_cluster_mode *out);

/* Known to be one node (mode off, or auto found no cluster)? No I/O, no
 * lock: the single-node path asks this first. */
bool redis_cluster_known_single(const struct redis_cluster *cl);

/* Is it a cluster? In auto mode the first call asks the seed pool's node
 * (INFO cluster) and remembers the answer; a failure to ask is returned
 * (as redis_pool_acquire / redis_conn_exchange) and asked again next time. */
APP_NODISCARD enum app_result redis_cluster_active(struct redis_cluster *cl, int64_t deadline_ms,
                                                   bool *out_on, struct app_err *err);

/* One command of an exchange: its RESP bytes, and its key's slot (-1: no
 * key, any node; RCL_SLOT_COMPUTE: from the bytes). */
#define RCL_SLOT_COMPUTE (-2)
struct rcl_cmd {
  const char *p;
  size_t len;
  int slot;
};

struct rcl_exchange_stats {
  size_t node_exchanges; /* round trips to nodes (one per node per round) */
  size_t nodes;          /* distinct nodes written to */
  size_t redirects;      /* MOVED + ASK followed */
};

/* Send cmds[0..n) each to its slot's primary and store each final reply in
 * replies[i] (error replies included: the caller classifies them; MOVED or
 * ASK only when RCL_MAX_REDIRECTS were used up). A command whose node
 * could not be reached, or whose connection broke before its reply, gets
 * NULL: it is not confirmed. Results: APP_OK when every reply is stored;
 * otherwise the first failure (as redis_pool_acquire / redis_conn_exchange
 * return them, APP_ERR_REDIS for a topology that cannot be had), with the
 * replies that did arrive stored all the same (the caller frees every
 * non-NULL one with freeReplyObject). replies[] must be zeroed by the
 * caller. *st (may be NULL) gets the counts. */
APP_NODISCARD enum app_result redis_cluster_exchangev(struct redis_cluster *cl,
                                                      const struct rcl_cmd *cmds, size_t n,
                                                      redisReply **replies, int64_t deadline_ms,
                                                      struct rcl_exchange_stats *st,
                                                      struct app_err *err);

/* cmds[0..len) holds n complete commands: as redis_cluster_exchangev, but
 * all or nothing (redis_conn_exchange's contract): on failure no reply is
 * kept. */
APP_NODISCARD enum app_result redis_cluster_exchange(struct redis_cluster *cl, const char *cmds,
                                                     size_t len, size_t n, redisReply **replies,
                                                     int64_t deadline_ms, struct app_err *err);

struct redis_cluster_stats {
  size_t nodes;     /* node addresses known */
  size_t refreshes; /* topology reads */
  size_t moved, ask, noscript;
  size_t exchanges, node_exchanges;
};
void redis_cluster_get_stats(struct redis_cluster *cl, struct redis_cluster_stats *out);

#endif

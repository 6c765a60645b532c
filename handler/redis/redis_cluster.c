/* redis_cluster.c - Redis Cluster slots, topology and routing (redis_cluster.h). */
#include "redis/redis_cluster.h"

#include "common/buf.h"
#include "common/log.h"
#include "map/sink.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- pure: slots ---------------------------------------------------------- */

/* CRC16-CCITT (XMODEM): poly 0x1021, init 0, no reflection (the cluster
 * specification's crc16). */
static uint16_t crc16(const unsigned char *p, size_t n)
{
  uint16_t crc = 0;
  size_t i;
  int b;
  for (i = 0; i < n; i++) {
    crc ^= (uint16_t)(p[i] << 8);
    for (b = 0; b < 8; b++)
      crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

unsigned redis_cluster_key_slot(const char *key, size_t len)
{
  size_t s, e;
  for (s = 0; s < len && key[s] != '{'; s++)
    ;
  if (s < len) {
    for (e = s + 1; e < len && key[e] != '}'; e++)
      ;
    if (e < len && e != s + 1)
      return crc16((const unsigned char *)key + s + 1, e - s - 1) & (RCL_SLOTS - 1);
  }
  return crc16((const unsigned char *)key, len) & (RCL_SLOTS - 1);
}

/* "<c><digits>\r\n" at p[0..len): the number, and *used the bytes. */
static bool resp_num(const char *p, size_t len, char c, size_t *out, size_t *used)
{
  size_t i = 1, v = 0;
  if (len < 4 || p[0] != c)
    return false;
  while (i < len && p[i] >= '0' && p[i] <= '9') {
    if (v > (SIZE_MAX - 9) / 10)
      return false;
    v = v * 10 + (size_t)(p[i] - '0');
    i++;
  }
  if (i == 1 || i + 1 >= len || p[i] != '\r' || p[i + 1] != '\n')
    return false;
  *out = v;
  *used = i + 2;
  return true;
}

static bool word_is(const char *p, size_t n, const char *w)
{
  return strlen(w) == n && strncasecmp(p, w, n) == 0;
}

/* A host name or IP literal: letters, digits, '.', '-', '_', ':' (IPv6),
 * '%' (an IPv6 zone); nothing that could end a string or a log line. */
static bool host_ok(const char *h, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)h[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_' || c == ':' || c == '%'))
      return false;
  }
  return true;
}

bool redis_cluster_cmd_slot(const char *cmds, size_t len, size_t *out_len, int *out_slot)
{
  size_t argc, k, off, used, n;
  const char *arg[4] = {0};
  size_t alen[4] = {0};

  if (!resp_num(cmds, len, '*', &argc, &used) || argc == 0)
    return false;
  off = used;
  for (k = 0; k < argc; k++) {
    if (!resp_num(cmds + off, len - off, '$', &n, &used))
      return false;
    off += used;
    if (n > len - off || len - off - n < 2 || cmds[off + n] != '\r' || cmds[off + n + 1] != '\n')
      return false;
    if (k < 4) {
      arg[k] = cmds + off;
      alen[k] = n;
    }
    off += n + 2;
  }
  *out_len = off;
  *out_slot = -1;
  /* the scripts the handler sends (Redis 6.0 has no EVAL_RO / FCALL, and
   * the handler never sends them: test_redis_lua checks every literal) */
  if (word_is(arg[0], alen[0], "EVALSHA") || word_is(arg[0], alen[0], "EVAL")) {
    if (argc >= 4 && !(alen[2] == 1 && arg[2][0] == '0'))
      *out_slot = (int)redis_cluster_key_slot(arg[3], alen[3]);
    return true;
  }
  if (argc < 2 || word_is(arg[0], alen[0], "SCRIPT") || word_is(arg[0], alen[0], "INFO") ||
      word_is(arg[0], alen[0], "PING") || word_is(arg[0], alen[0], "CLUSTER") ||
      word_is(arg[0], alen[0], "ASKING") || word_is(arg[0], alen[0], "CLIENT") ||
      word_is(arg[0], alen[0], "ECHO") || word_is(arg[0], alen[0], "AUTH") ||
      word_is(arg[0], alen[0], "HELLO") || word_is(arg[0], alen[0], "SELECT"))
    return true;
  *out_slot = (int)redis_cluster_key_slot(arg[1], alen[1]);
  return true;
}

bool redis_cluster_redirect(const char *s, size_t n, bool *out_ask, int *out_slot, char *host,
                            size_t host_cap, int *out_port)
{
  size_t i, j, colon;
  long slot = 0, port = 0;
  if (n > 6 && !memcmp(s, "MOVED ", 6)) {
    *out_ask = false;
    i = 6;
  } else if (n > 4 && !memcmp(s, "ASK ", 4)) {
    *out_ask = true;
    i = 4;
  } else {
    return false;
  }
  j = i;
  while (j < n && s[j] >= '0' && s[j] <= '9' && slot < RCL_SLOTS)
    slot = slot * 10 + (s[j++] - '0');
  if (j == i || j >= n || s[j] != ' ' || slot >= RCL_SLOTS)
    return false;
  i = j + 1;
  /* host:port, the port after the last ':' (IPv6 hosts have colons) */
  for (colon = n; colon > i && s[colon - 1] != ':'; colon--)
    ;
  if (colon == i)
    return false;
  colon--;
  for (j = colon + 1; j < n && s[j] >= '0' && s[j] <= '9' && port <= 65535; j++)
    port = port * 10 + (s[j] - '0');
  if (j != n || j == colon + 1 || port < 1 || port > 65535)
    return false;
  {
    size_t hs = i, he = colon;
    if (he - hs >= 2 && s[hs] == '[' && s[he - 1] == ']') {
      hs++;
      he--;
    }
    if (he - hs >= host_cap || !host_ok(s + hs, he - hs))
      return false;
    memcpy(host, s + hs, he - hs);
    host[he - hs] = '\0';
  }
  *out_slot = (int)slot;
  *out_port = (int)port;
  return true;
}

/* ---- pure: topology replies ------------------------------------------------- */

void redis_cluster_topology_free(struct rcl_topology *t)
{
  if (!t)
    return;
  free(t->ranges);
  t->ranges = NULL;
  t->n = 0;
}

static bool reply_is_str(const redisReply *r)
{
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static bool reply_int(const redisReply *r, long long *out)
{
  char tmp[32];
  char *end;
  if (!r)
    return false;
  if (r->type == REDIS_REPLY_INTEGER) {
    *out = r->integer;
    return true;
  }
  if (!reply_is_str(r) || r->len == 0 || r->len >= sizeof tmp)
    return false;
  memcpy(tmp, r->str, r->len);
  tmp[r->len] = '\0';
  *out = strtoll(tmp, &end, 10);
  return *end == '\0';
}

/* value of key in a flat key/value array, or NULL */
static const redisReply *kv_get(const redisReply *m, const char *key)
{
  size_t i;
  if (!m || m->type != REDIS_REPLY_ARRAY)
    return NULL;
  for (i = 0; i + 1 < m->elements; i += 2)
    if (reply_is_str(m->element[i]) && m->element[i]->len == strlen(key) &&
        !memcmp(m->element[i]->str, key, m->element[i]->len))
      return m->element[i + 1];
  return NULL;
}

static bool kv_str_is(const redisReply *m, const char *key, const char *want)
{
  const redisReply *v = kv_get(m, key);
  return reply_is_str(v) && v->len == strlen(want) && !memcmp(v->str, want, v->len);
}

static enum app_result add_range(struct rcl_topology *t, size_t *cap, long long lo, long long hi,
                                 const char *host, size_t hostlen, const char *asked_host,
                                 long long port, struct app_err *err)
{
  struct rcl_range *x;
  if (lo < 0 || hi >= RCL_SLOTS || lo > hi)
    return app_err_set(err, APP_ERR_REDIS, "redis cluster: bad slot range %lld-%lld", lo, hi);
  if (port < 1 || port > 65535)
    return app_err_set(err, APP_ERR_REDIS, "redis cluster: bad port %lld for slots %lld-%lld", port,
                       lo, hi);
  if (hostlen == 0 || (hostlen == 1 && host[0] == '?')) {
    host = asked_host ? asked_host : "";
    hostlen = strlen(host);
  }
  if (hostlen == 0 || hostlen >= sizeof x->host || !host_ok(host, hostlen))
    return app_err_set(err, APP_ERR_REDIS, "redis cluster: no usable address for slots %lld-%lld",
                       lo, hi);
  if (t->n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    x = realloc(t->ranges, c * sizeof *x);
    if (!x)
      return app_err_set(err, APP_ERR_NOMEM, "redis cluster: no memory for the slot map");
    t->ranges = x;
    *cap = c;
  }
  x = &t->ranges[t->n++];
  x->lo = (int)lo;
  x->hi = (int)hi;
  memcpy(x->host, host, hostlen);
  x->host[hostlen] = '\0';
  x->port = (int)port;
  return APP_OK;
}

enum app_result redis_cluster_parse_shards(const redisReply *r, bool tls, const char *asked_host,
                                           struct rcl_topology *out, struct app_err *err)
{
  size_t i, j, cap = 0;
  enum app_result rc = APP_OK;

  memset(out, 0, sizeof *out);
  if (!r || r->type != REDIS_REPLY_ARRAY)
    return app_err_set(err, APP_ERR_REDIS, "redis cluster: CLUSTER SHARDS: not an array");
  for (i = 0; i < r->elements && rc == APP_OK; i++) {
    const redisReply *shard = r->element[i];
    const redisReply *slots = kv_get(shard, "slots"), *nodes = kv_get(shard, "nodes");
    const redisReply *primary = NULL;
    const redisReply *addr, *port;
    long long p = 0;
    if (!slots || slots->type != REDIS_REPLY_ARRAY || !nodes || nodes->type != REDIS_REPLY_ARRAY) {
      rc = app_err_set(err, APP_ERR_REDIS,
                       "redis cluster: CLUSTER SHARDS: shard %zu has no slots or nodes", i);
      break;
    }
    if (slots->elements == 0)
      continue; /* a shard without slots (e.g. a new, empty primary) */
    for (j = 0; j < nodes->elements; j++)
      if (kv_str_is(nodes->element[j], "role", "master") &&
          !kv_str_is(nodes->element[j], "health", "fail"))
        primary = nodes->element[j];
    if (!primary) {
      rc = app_err_set(err, APP_ERR_REDIS,
                       "redis cluster: CLUSTER SHARDS: shard %zu has slots but no online primary",
                       i);
      break;
    }
    addr = kv_get(primary, "endpoint");
    if (!reply_is_str(addr) || addr->len == 0 || (addr->len == 1 && addr->str[0] == '?'))
      addr = kv_get(primary, "ip");
    port = tls ? kv_get(primary, "tls-port") : NULL;
    if (!port || !reply_int(port, &p) || p == 0)
      port = kv_get(primary, "port");
    if (!reply_int(port, &p)) {
      rc = app_err_set(err, APP_ERR_REDIS, "redis cluster: CLUSTER SHARDS: shard %zu: no port", i);
      break;
    }
    if (slots->elements % 2) {
      rc = app_err_set(err, APP_ERR_REDIS,
                       "redis cluster: CLUSTER SHARDS: shard %zu: odd slot list", i);
      break;
    }
    for (j = 0; j + 1 < slots->elements && rc == APP_OK; j += 2) {
      long long lo, hi;
      if (!reply_int(slots->element[j], &lo) || !reply_int(slots->element[j + 1], &hi)) {
        rc = app_err_set(err, APP_ERR_REDIS,
                         "redis cluster: CLUSTER SHARDS: shard %zu: slots are not numbers", i);
        break;
      }
      rc = add_range(out, &cap, lo, hi, reply_is_str(addr) ? addr->str : "",
                     reply_is_str(addr) ? addr->len : 0, asked_host, p, err);
    }
  }
  if (rc != APP_OK)
    redis_cluster_topology_free(out);
  return rc;
}

enum app_result redis_cluster_parse_slots(const redisReply *r, const char *asked_host,
                                          struct rcl_topology *out, struct app_err *err)
{
  size_t i, cap = 0;
  enum app_result rc = APP_OK;

  memset(out, 0, sizeof *out);
  if (!r || r->type != REDIS_REPLY_ARRAY)
    return app_err_set(err, APP_ERR_REDIS, "redis cluster: CLUSTER SLOTS: not an array");
  for (i = 0; i < r->elements && rc == APP_OK; i++) {
    const redisReply *e = r->element[i], *node;
    long long lo, hi, port;
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !reply_int(e->element[0], &lo) ||
        !reply_int(e->element[1], &hi)) {
      rc = app_err_set(err, APP_ERR_REDIS, "redis cluster: CLUSTER SLOTS: entry %zu is malformed",
                       i);
      break;
    }
    node = e->element[2];
    if (!node || node->type != REDIS_REPLY_ARRAY || node->elements < 2 ||
        !reply_is_str(node->element[0]) || !reply_int(node->element[1], &port)) {
      rc = app_err_set(err, APP_ERR_REDIS,
                       "redis cluster: CLUSTER SLOTS: entry %zu has no primary address", i);
      break;
    }
    rc = add_range(out, &cap, lo, hi, node->element[0]->str, node->element[0]->len, asked_host,
                   port, err);
  }
  if (rc != APP_OK)
    redis_cluster_topology_free(out);
  return rc;
}

/* ---- the client ---------------------------------------------------------------- */

enum { STATE_UNKNOWN = 0, STATE_SINGLE, STATE_CLUSTER };

struct rcl_node {
  char *host;
  int port;
  struct redis_pool *pool; /* created with the node, lazily connecting */
};

struct redis_cluster {
  struct redis_pool *seed;
  const struct redis_conninfo *ci; /* the seed pool's */
  enum redis_cluster_mode mode;
  _Atomic int state;
  size_t node_pool_size;
  char *setup;
  size_t setup_len, nsetup;
  int wait_replicas, wait_timeout_ms; /* redis_cluster_set_wait */

  pthread_mutex_t mu; /* nodes, slot map, stale, stats */
  struct rcl_node nodes[RCL_MAX_NODES];
  size_t nnodes;
  int16_t slot_node[RCL_SLOTS]; /* node index, -1: unknown */
  bool stale;                   /* ask for the topology before the next exchange */
  bool have_map;
  int64_t refreshed_ms;
  pthread_mutex_t refresh_mu; /* one topology read at a time */
  struct redis_cluster_stats stats;
};

bool redis_cluster_mode_parse(const char *s, enum redis_cluster_mode *out)
{
  if (!s || !*s || !strcasecmp(s, "auto"))
    *out = RCL_MODE_AUTO;
  else if (!strcasecmp(s, "on") || !strcasecmp(s, "true") || !strcasecmp(s, "yes"))
    *out = RCL_MODE_ON;
  else if (!strcasecmp(s, "off") || !strcasecmp(s, "false") || !strcasecmp(s, "no"))
    *out = RCL_MODE_OFF;
  else
    return false;
  return true;
}

enum app_result redis_cluster_create(struct redis_pool *seed, enum redis_cluster_mode mode,
                                     size_t node_pool_size, const char *setup, size_t setup_len,
                                     size_t nsetup, struct redis_cluster **out, struct app_err *err)
{
  struct redis_cluster *cl;
  size_t i;
  (void)err;
  cl = xcalloc(1, sizeof *cl);
  cl->seed = seed;
  cl->ci = redis_pool_info(seed);
  cl->mode = mode;
  atomic_init(&cl->state, mode == RCL_MODE_OFF  ? STATE_SINGLE
                          : mode == RCL_MODE_ON ? STATE_CLUSTER
                                                : STATE_UNKNOWN);
  cl->node_pool_size = node_pool_size ? node_pool_size : 1;
  if (setup_len) {
    cl->setup = xcalloc(1, setup_len);
    memcpy(cl->setup, setup, setup_len);
  }
  cl->setup_len = setup_len;
  cl->nsetup = nsetup;
  pthread_mutex_init(&cl->mu, NULL);
  pthread_mutex_init(&cl->refresh_mu, NULL);
  for (i = 0; i < RCL_SLOTS; i++)
    cl->slot_node[i] = -1;
  cl->stale = true;
  *out = cl;
  return APP_OK;
}

void redis_cluster_destroy(struct redis_cluster *cl)
{
  size_t i;
  if (!cl)
    return;
  for (i = 0; i < cl->nnodes; i++) {
    redis_pool_destroy(cl->nodes[i].pool);
    free(cl->nodes[i].host);
  }
  pthread_mutex_destroy(&cl->mu);
  pthread_mutex_destroy(&cl->refresh_mu);
  free(cl->setup);
  free(cl);
}

void redis_cluster_set_wait(struct redis_cluster *cl, int replicas, int timeout_ms)
{
  cl->wait_replicas = replicas > 0 ? replicas : 0;
  cl->wait_timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
}

bool redis_cluster_known_single(const struct redis_cluster *cl)
{
  return atomic_load_explicit(&((struct redis_cluster *)cl)->state, memory_order_relaxed) ==
         STATE_SINGLE;
}

void redis_cluster_get_stats(struct redis_cluster *cl, struct redis_cluster_stats *out)
{
  pthread_mutex_lock(&cl->mu);
  *out = cl->stats;
  out->nodes = cl->nnodes;
  pthread_mutex_unlock(&cl->mu);
}

static bool is_ip(const char *h)
{
  size_t i;
  if (strchr(h, ':'))
    return true;
  for (i = 0; h[i]; i++)
    if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
      return false;
  return i > 0;
}

/* The node at host:port, added (with its pool) when new; -1 when the table
 * is full. Under cl->mu. */
static int node_find_locked(struct redis_cluster *cl, const char *host, int port,
                            struct app_err *err)
{
  struct redis_conninfo ci;
  const struct redis_conninfo *s = cl->ci;
  struct rcl_node *nd;
  size_t i;
  for (i = 0; i < cl->nnodes; i++)
    if (cl->nodes[i].port == port && !strcasecmp(cl->nodes[i].host, host))
      return (int)i;
  if (cl->nnodes == RCL_MAX_NODES) {
    app_err_set(err, APP_ERR_LIMIT, "redis cluster: more than %d node addresses", RCL_MAX_NODES);
    return -1;
  }
  /* the seed's settings with this node's address; TLS checks the name
   * the seed was reached by when the cluster announces bare addresses */
  redis_conninfo_copy(&ci, s);
  free(ci.host);
  ci.host = xstrdup(host);
  ci.port = port;
  if (!ci.ssl_host && s->ssl && is_ip(host) && !is_ip(s->host))
    ci.ssl_host = xstrdup(s->host);
  ci.database = 0; /* a cluster has database 0 only */
  nd = &cl->nodes[cl->nnodes];
  if (redis_pool_create(&ci, cl->node_pool_size, cl->setup, cl->setup_len, cl->nsetup, &nd->pool,
                        err) != APP_OK) {
    redis_conninfo_cleanup(&ci);
    return -1;
  }
  redis_conninfo_cleanup(&ci);
  nd->host = xstrdup(host);
  nd->port = port;
  return (int)cl->nnodes++;
}

static void mark_stale(struct redis_cluster *cl)
{
  pthread_mutex_lock(&cl->mu);
  cl->stale = true;
  pthread_mutex_unlock(&cl->mu);
}

/* One command on a pooled connection of pool, all replies kept. */
static enum app_result pool_exchange(struct redis_pool *pool, const char *cmds, size_t len,
                                     size_t n, redisReply **replies, int64_t deadline_ms,
                                     struct app_err *err)
{
  struct redis_conn *c = NULL;
  size_t nread = 0, i;
  enum app_result r = redis_pool_acquire(pool, deadline_ms, &c, err);
  if (r != APP_OK)
    return r;
  r = redis_conn_exchange(c, cmds, len, n, replies, &nread, deadline_ms, err);
  redis_pool_release(pool, c);
  if (r != APP_OK)
    for (i = 0; i < nread; i++) {
      freeReplyObject(replies[i]);
      replies[i] = NULL;
    }
  return r;
}

static enum app_result ask_topology(struct redis_cluster *cl, struct redis_pool *pool,
                                    const char *host, int64_t deadline_ms, struct rcl_topology *t,
                                    struct app_err *err)
{
  static const char shards[] = "*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n";
  static const char slots[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
  redisReply *rep = NULL;
  enum app_result r;
  r = pool_exchange(pool, shards, sizeof shards - 1, 1, &rep, deadline_ms, err);
  if (r != APP_OK)
    return r;
  if (rep->type != REDIS_REPLY_ERROR) {
    r = redis_cluster_parse_shards(rep, cl->ci->ssl, host, t, err);
    freeReplyObject(rep);
    return r;
  }
  freeReplyObject(rep); /* before Redis 7: no CLUSTER SHARDS */
  rep = NULL;
  r = pool_exchange(pool, slots, sizeof slots - 1, 1, &rep, deadline_ms, err);
  if (r != APP_OK)
    return r;
  if (rep->type == REDIS_REPLY_ERROR)
    r = redis_reply_error(rep, err, "redis cluster: CLUSTER SLOTS at %s", host);
  else
    r = redis_cluster_parse_slots(rep, host, t, err);
  freeReplyObject(rep);
  return r;
}

/* Read the topology from a known primary or a seed and install it. */
static enum app_result refresh(struct redis_cluster *cl, int64_t deadline_ms, struct app_err *err)
{
  int cand[RCL_MAX_NODES + 16];
  size_t ncand = 0, i, k;
  enum app_result r = APP_ERR_REDIS;
  struct app_err e;
  bool seen[RCL_MAX_NODES];
  int64_t started = sink_now_ms();

  pthread_mutex_lock(&cl->refresh_mu);
  pthread_mutex_lock(&cl->mu);
  if (!cl->stale && cl->have_map) {
    /* another thread refreshed while this one waited */
    pthread_mutex_unlock(&cl->mu);
    pthread_mutex_unlock(&cl->refresh_mu);
    return APP_OK;
  }
  memset(seen, 0, sizeof seen);
  /* the primaries of the current map first, then every seed */
  for (i = 0; i < RCL_SLOTS; i += 1) {
    int x = cl->slot_node[i];
    if (x >= 0 && !seen[x] && ncand < RCL_MAX_NODES) {
      seen[x] = true;
      cand[ncand++] = x;
    }
  }
  for (i = 0; i < cl->ci->nendpoints && ncand < sizeof cand / sizeof cand[0]; i++) {
    int x = node_find_locked(cl, cl->ci->endpoints[i].host, cl->ci->endpoints[i].port, &e);
    if (x >= 0 && !seen[x]) {
      seen[x] = true;
      cand[ncand++] = x;
    }
  }
  pthread_mutex_unlock(&cl->mu);
  app_err_set(&e, APP_ERR_REDIS, "redis cluster: no node to ask for the topology");
  for (k = 0; k < ncand; k++) {
    struct rcl_topology t;
    struct rcl_node *nd = &cl->nodes[cand[k]];
    int16_t map[RCL_SLOTS];
    int left_map[RCL_MAX_NODES];
    size_t j, nleft = 0;
    int s;
    bool ok = true;
    if (sink_now_ms() >= deadline_ms)
      break;
    r = ask_topology(cl, nd->pool, nd->host, deadline_ms, &t, &e);
    if (r != APP_OK) {
      LOG_WARN("redis cluster: topology from %s:%d failed: %s", nd->host, nd->port, e.msg);
      continue;
    }
    for (s = 0; s < RCL_SLOTS; s++)
      map[s] = -1;
    pthread_mutex_lock(&cl->mu);
    for (j = 0; j < t.n && ok; j++) {
      int x = node_find_locked(cl, t.ranges[j].host, t.ranges[j].port, &e);
      if (x < 0) {
        ok = false;
        break;
      }
      for (s = t.ranges[j].lo; s <= t.ranges[j].hi; s++)
        map[s] = (int16_t)x;
    }
    if (ok) {
      int16_t old[RCL_SLOTS];
      bool was[RCL_MAX_NODES], now[RCL_MAX_NODES];
      memcpy(old, cl->slot_node, sizeof old);
      memcpy(cl->slot_node, map, sizeof map);
      cl->stale = false;
      cl->have_map = true;
      cl->refreshed_ms = sink_now_ms();
      cl->stats.refreshes++;
      /* a node that no longer serves slots (a former primary, a moved
       * port): its idle connections are closed rather than kept open
       * until the process ends; the pool reconnects if it serves again */
      memset(was, 0, sizeof was);
      memset(now, 0, sizeof now);
      for (s = 0; s < RCL_SLOTS; s++) {
        if (old[s] >= 0)
          was[old[s]] = true;
        if (map[s] >= 0)
          now[map[s]] = true;
      }
      for (j = 0; j < cl->nnodes; j++)
        if (was[j] && !now[j])
          left_map[nleft++] = (int)j;
    }
    pthread_mutex_unlock(&cl->mu);
    for (j = 0; j < nleft; j++)
      redis_pool_drop_idle(cl->nodes[left_map[j]].pool);
    nleft = 0;
    LOG_DEBUG("redis cluster: topology from %s:%d: %zu ranges in %lld ms", nd->host, nd->port, t.n,
              (long long)(sink_now_ms() - started));
    redis_cluster_topology_free(&t);
    if (ok) {
      r = APP_OK;
      break;
    }
    r = e.code ? e.code : APP_ERR_REDIS;
  }
  pthread_mutex_unlock(&cl->refresh_mu);
  if (r != APP_OK && err)
    *err = e;
  return r;
}

enum app_result redis_cluster_active(struct redis_cluster *cl, int64_t deadline_ms, bool *out_on,
                                     struct app_err *err)
{
  static const char info[] = "*2\r\n$4\r\nINFO\r\n$7\r\ncluster\r\n";
  redisReply *rep = NULL;
  enum app_result r;
  size_t i;
  int st = atomic_load(&cl->state);
  if (st != STATE_UNKNOWN) {
    *out_on = st == STATE_CLUSTER;
    return APP_OK;
  }
  r = pool_exchange(cl->seed, info, sizeof info - 1, 1, &rep, deadline_ms, err);
  /* the first endpoint is down: ask the other seeds (a cluster's nodes) */
  for (i = 1; r != APP_OK && i < cl->ci->nendpoints && sink_now_ms() < deadline_ms; i++) {
    struct app_err e2;
    int x;
    pthread_mutex_lock(&cl->mu);
    x = node_find_locked(cl, cl->ci->endpoints[i].host, cl->ci->endpoints[i].port, &e2);
    pthread_mutex_unlock(&cl->mu);
    if (x >= 0 && pool_exchange(cl->nodes[x].pool, info, sizeof info - 1, 1, &rep, deadline_ms,
                                &e2) == APP_OK)
      r = APP_OK;
  }
  if (r != APP_OK)
    return r;
  if (rep->type == REDIS_REPLY_ERROR) {
    r = redis_reply_error(rep, err, "redis: INFO cluster");
    freeReplyObject(rep);
    return r;
  }
  st = (reply_is_str(rep) && rep->str && strstr(rep->str, "cluster_enabled:1")) ? STATE_CLUSTER
                                                                                : STATE_SINGLE;
  freeReplyObject(rep);
  atomic_store(&cl->state, st);
  LOG_INFO("redis: %s (CDC_REDIS_CLUSTER=auto)",
           st == STATE_CLUSTER ? "Redis Cluster: commands are routed by hash slot to each primary"
                               : "a single node (not a cluster)");
  if (st == STATE_SINGLE && cl->ci->nendpoints > 1)
    LOG_WARN("RedisConnection lists %zu endpoints; a single node uses only the first",
             cl->ci->nendpoints);
  *out_on = st == STATE_CLUSTER;
  return APP_OK;
}

/* ---- exchanges -------------------------------------------------------------------- */

/* What each reply of a node's pipeline answers. */
enum { SLOT_SETUP = -1, SLOT_ASKING = -2, SLOT_WAIT = -3 };

struct node_work {
  struct buf out;
  long *what; /* per reply: command index, SLOT_SETUP or SLOT_ASKING */
  size_t nwhat, cap;
  struct redis_conn *conn;
  redisReply **rep; /* nwhat replies */
  bool oom;         /* out could not grow: the node is skipped this round */
  size_t xi;        /* its entry in the round's transfers */
  bool used;
};

static void work_add(struct node_work *w, long what)
{
  if (w->nwhat == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 64;
    w->what = xrealloc(w->what, w->cap * sizeof *w->what);
  }
  w->what[w->nwhat++] = what;
}

static void keep_first(enum app_result *r, struct app_err *err, enum app_result r2,
                       const struct app_err *e2)
{
  if (*r == APP_OK && r2 != APP_OK) {
    *r = r2;
    if (err)
      *err = *e2;
  }
}

enum app_result redis_cluster_exchangev(struct redis_cluster *cl, const struct rcl_cmd *cmds,
                                        size_t n, redisReply **replies, int64_t deadline_ms,
                                        struct rcl_exchange_stats *st, struct app_err *err)
{
  int *slot = NULL, *target = NULL, *hops = NULL;
  unsigned char *ask = NULL, *pending = NULL, *reload = NULL;
  struct node_work *w = NULL;
  struct redis_conn_xfer *xs = NULL;
  size_t nx, xs_cap;
  int64_t xdeadline;
  enum app_result r = APP_OK;
  struct app_err e;
  size_t i, left, round;
  bool used_node[RCL_MAX_NODES];
  struct rcl_exchange_stats local;

  if (!st)
    st = &local;
  memset(st, 0, sizeof *st);
  memset(used_node, 0, sizeof used_node);
  if (n == 0)
    return APP_OK;
  slot = xcalloc(n, sizeof *slot);
  target = xcalloc(n, sizeof *target);
  hops = xcalloc(n, sizeof *hops);
  ask = xcalloc(n, 1);
  pending = xcalloc(n, 1);
  reload = xcalloc(RCL_MAX_NODES, 1);
  w = xcalloc(RCL_MAX_NODES, sizeof *w);
  xs = xcalloc(4, sizeof *xs);
  xs_cap = 4;
  for (i = 0; i < n; i++) {
    size_t clen;
    slot[i] = cmds[i].slot;
    if (slot[i] == RCL_SLOT_COMPUTE &&
        !redis_cluster_cmd_slot(cmds[i].p, cmds[i].len, &clen, &slot[i]))
      slot[i] = -1;
    target[i] = -1;
    pending[i] = 1;
  }
  left = n;
  pthread_mutex_lock(&cl->mu);
  cl->stats.exchanges++;
  pthread_mutex_unlock(&cl->mu);

  for (round = 0; left > 0 && round <= RCL_MAX_REDIRECTS; round++) {
    size_t x;
    bool need;
    pthread_mutex_lock(&cl->mu);
    need = cl->stale || !cl->have_map;
    pthread_mutex_unlock(&cl->mu);
    if (need) {
      enum app_result r2 = refresh(cl, deadline_ms, &e);
      bool have;
      pthread_mutex_lock(&cl->mu);
      have = cl->have_map;
      pthread_mutex_unlock(&cl->mu);
      if (r2 != APP_OK && !have) {
        keep_first(&r, err, r2, &e);
        break;
      }
    }
    /* targets, under the lock: the map may change under other threads */
    pthread_mutex_lock(&cl->mu);
    for (i = 0; i < n; i++) {
      if (!pending[i] || ask[i])
        continue;
      if (slot[i] >= 0)
        target[i] = cl->slot_node[slot[i]];
      if (target[i] < 0) {
        /* keyless, or a slot nobody serves yet: any primary (a MOVED
         * or CLUSTERDOWN tells more) */
        size_t s;
        for (s = 0; s < RCL_SLOTS && cl->slot_node[s] < 0; s++)
          ;
        target[i] = s < RCL_SLOTS ? cl->slot_node[s] : 0;
      }
    }
    pthread_mutex_unlock(&cl->mu);
    for (x = 0; x < RCL_MAX_NODES; x++) {
      buf_init(&w[x].out, 0);
      w[x].nwhat = 0;
      w[x].used = false;
      w[x].conn = NULL;
      w[x].oom = false;
    }
    for (i = 0; i < n; i++) {
      struct node_work *nw;
      if (!pending[i] || target[i] < 0)
        continue;
      nw = &w[target[i]];
      if (!nw->used && reload[target[i]] && cl->nsetup) {
        size_t k;
        if (buf_append(&nw->out, cl->setup, cl->setup_len) != APP_OK)
          nw->oom = true;
        for (k = 0; k < cl->nsetup; k++)
          work_add(nw, SLOT_SETUP);
      }
      nw->used = true;
      if (ask[i]) {
        if (buf_append(&nw->out, "*1\r\n$6\r\nASKING\r\n", 16) != APP_OK)
          nw->oom = true;
        work_add(nw, SLOT_ASKING);
      }
      if (buf_append(&nw->out, cmds[i].p, cmds[i].len) != APP_OK)
        nw->oom = true;
      work_add(nw, (long)i);
    }
    memset(reload, 0, RCL_MAX_NODES);
    if (cl->wait_replicas > 0)
      for (x = 0; x < RCL_MAX_NODES; x++) {
        struct buf *o = &w[x].out;
        if (!w[x].used)
          continue;
        /* the node's writes count once its replicas have them too */
        if (redis_cmd_begin(o, 3) != APP_OK || redis_cmd_arg_str(o, "WAIT") != APP_OK ||
            redis_cmd_arg_i64(o, cl->wait_replicas) != APP_OK ||
            redis_cmd_arg_i64(o, cl->wait_timeout_ms) != APP_OK)
          w[x].oom = true;
        work_add(&w[x], SLOT_WAIT);
      }
    /* a connection to every node, then one exchange over all of them at
     * once: every node works while the others' replies are read */
    for (x = 0; x < RCL_MAX_NODES; x++) {
      enum app_result r2;
      struct node_work *nw = &w[x];
      if (!nw->used)
        continue;
      if (!used_node[x]) {
        used_node[x] = true;
        st->nodes++;
      }
      if (nw->oom)
        r2 = app_err_set(&e, APP_ERR_NOMEM, "redis cluster: no memory for the pipeline to %s:%d",
                         cl->nodes[x].host, cl->nodes[x].port);
      else
        r2 = redis_pool_acquire(cl->nodes[x].pool, deadline_ms, &nw->conn, &e);
      if (r2 != APP_OK) {
        keep_first(&r, err, r2, &e);
        mark_stale(cl);
        if (nw->conn) {
          redis_pool_release(cl->nodes[x].pool, nw->conn);
          nw->conn = NULL;
        }
        for (i = 0; i < nw->nwhat; i++)
          if (nw->what[i] >= 0 && pending[nw->what[i]]) {
            pending[nw->what[i]] = 0;
            left--;
          }
      }
    }
    nx = 0;
    for (x = 0; x < RCL_MAX_NODES; x++) {
      struct node_work *nw = &w[x];
      if (!nw->conn)
        continue;
      nw->rep = xcalloc(nw->nwhat, sizeof *nw->rep);
      if (nx == xs_cap) {
        xs_cap *= 2;
        xs = xrealloc(xs, xs_cap * sizeof *xs);
      }
      memset(&xs[nx], 0, sizeof xs[nx]);
      xs[nx].c = nw->conn;
      xs[nx].cmds = nw->out.data;
      xs[nx].len = nw->out.len;
      xs[nx].nreplies = nw->nwhat;
      xs[nx].replies = nw->rep;
      nw->xi = nx++;
    }
    /* each node's result is looked at below, failed or not */
    /* connected: the exchange itself gets syncTimeout, as on one node */
    xdeadline = sink_now_ms() + cl->ci->sync_timeout_ms;
    if (xdeadline > deadline_ms)
      xdeadline = deadline_ms;
    if (nx && redis_conn_exchange_many(xs, nx, xdeadline) != APP_OK)
      mark_stale(cl);
    for (x = 0; x < RCL_MAX_NODES; x++) {
      struct node_work *nw = &w[x];
      redisReply **rep = nw->rep;
      size_t nread, j;
      enum app_result r2;
      bool wait_ok;
      if (!nw->conn)
        continue;
      st->node_exchanges++;
      nread = xs[nw->xi].nread;
      r2 = xs[nw->xi].r;
      if (r2 != APP_OK)
        e = xs[nw->xi].err;
      redis_pool_release(cl->nodes[x].pool, nw->conn);
      nw->conn = NULL;
      pthread_mutex_lock(&cl->mu);
      cl->stats.node_exchanges++;
      pthread_mutex_unlock(&cl->mu);
      if (r2 != APP_OK) {
        keep_first(&r, err, r2, &e);
        mark_stale(cl);
      }
      wait_ok = true;
      if (cl->wait_replicas > 0) {
        /* WAIT answers how many replicas have every write before it:
         * fewer than asked (or no answer), and no write of this node
         * counts; redirections are still followed (a former primary, now
         * a replica, answers MOVED and refuses WAIT) */
        redisReply *y = nread == nw->nwhat ? rep[nread - 1] : NULL;
        if (!y || y->type != REDIS_REPLY_INTEGER || y->integer < cl->wait_replicas) {
          wait_ok = false;
          if (y && y->type == REDIS_REPLY_INTEGER)
            app_err_set(&e, APP_ERR_REDIS,
                        "redis cluster: WAIT: %lld of %d replicas of %s:%d acknowledged the "
                        "writes in %d ms",
                        y->integer, cl->wait_replicas, cl->nodes[x].host, cl->nodes[x].port,
                        cl->wait_timeout_ms);
          else if (y)
            redis_reply_error(y, &e, "redis cluster: WAIT on %s:%d", cl->nodes[x].host,
                              cl->nodes[x].port);
          if (y) {
            keep_first(&r, err, APP_ERR_REDIS, &e);
            mark_stale(cl);
          }
        }
      }
      for (j = 0; j < nread; j++) {
        long c = nw->what[j];
        redisReply *y = rep[j];
        bool asked = false;
        int rslot = 0, rport = 0;
        char rhost[256];
        rep[j] = NULL;
        if (c < 0) {
          if (c == SLOT_SETUP && y && y->type == REDIS_REPLY_ERROR) {
            redis_reply_error(y, &e, "redis cluster: setup on %s:%d", cl->nodes[x].host,
                              cl->nodes[x].port);
            keep_first(&r, err, APP_ERR_REDIS, &e);
          }
          freeReplyObject(y);
          continue;
        }
        if (y && y->type == REDIS_REPLY_ERROR && hops[c] >= RCL_MAX_REDIRECTS &&
            (redis_cluster_redirect(y->str, y->len, &asked, &rslot, rhost, sizeof rhost, &rport) ||
             redis_reply_classify(y) == RREPLY_NOSCRIPT)) {
          /* redirected too often (slots still moving): not confirmed, and
           * not a failure of the command either; the caller retries */
          app_err_set(&e, APP_ERR_REDIS,
                      "redis cluster: still redirected after %d redirections (slots moving): "
                      "%.80s",
                      RCL_MAX_REDIRECTS, y->str);
          keep_first(&r, err, APP_ERR_REDIS, &e);
          mark_stale(cl);
          freeReplyObject(y);
          pending[c] = 0;
          ask[c] = 0;
          left--;
          continue;
        }
        if (y && y->type == REDIS_REPLY_ERROR && hops[c] < RCL_MAX_REDIRECTS) {
          if (redis_cluster_redirect(y->str, y->len, &asked, &rslot, rhost, sizeof rhost, &rport)) {
            int to;
            pthread_mutex_lock(&cl->mu);
            if (!rhost[0])
              snprintf(rhost, sizeof rhost, "%s", cl->nodes[x].host);
            to = node_find_locked(cl, rhost, rport, &e);
            if (asked) {
              cl->stats.ask++;
            } else {
              cl->stats.moved++;
              if (to >= 0)
                cl->slot_node[rslot] = (int16_t)to;
              /* more slots probably moved with it: read the whole map,
               * at most every 200 ms */
              if (sink_now_ms() - cl->refreshed_ms > 200)
                cl->stale = true;
            }
            pthread_mutex_unlock(&cl->mu);
            if (to >= 0) {
              hops[c]++;
              st->redirects++;
              ask[c] = asked;
              target[c] = to;
              freeReplyObject(y);
              continue; /* still pending: the next round resends it */
            }
          } else if (redis_reply_classify(y) == RREPLY_NOSCRIPT && cl->nsetup) {
            pthread_mutex_lock(&cl->mu);
            cl->stats.noscript++;
            pthread_mutex_unlock(&cl->mu);
            hops[c]++;
            reload[x] = 1;
            ask[c] = 0;
            freeReplyObject(y);
            continue;
          } else if (y->len >= 11 && !memcmp(y->str, "CLUSTERDOWN", 11)) {
            mark_stale(cl);
          }
        }
        if (y && y->type == REDIS_REPLY_ERROR &&
            !memcmp(y->str, "TRYAGAIN", y->len < 8 ? y->len : 8))
          mark_stale(cl);
        if (wait_ok)
          replies[c] = y; /* confirmed */
        else
          freeReplyObject(y); /* not known to be on a replica: not confirmed */
        pending[c] = 0;
        ask[c] = 0;
        left--;
      }
      /* replies not read: their commands are not confirmed */
      for (j = nread; j < nw->nwhat; j++)
        if (nw->what[j] >= 0 && pending[nw->what[j]]) {
          pending[nw->what[j]] = 0;
          left--;
        }
      free(rep);
      nw->rep = NULL;
    }
    for (x = 0; x < RCL_MAX_NODES; x++)
      buf_cleanup(&w[x].out);
  }
  if (left > 0) {
    app_err_set(&e, APP_ERR_REDIS,
                "redis cluster: %zu command%s still redirected after %d redirections (slots "
                "moving)",
                left, left == 1 ? "" : "s", RCL_MAX_REDIRECTS);
    keep_first(&r, err, APP_ERR_REDIS, &e);
  }
  if (r == APP_OK)
    for (i = 0; i < n; i++)
      if (!replies[i]) {
        app_err_set(&e, APP_ERR_REDIS, "redis cluster: a reply is missing");
        keep_first(&r, err, APP_ERR_REDIS, &e);
        break;
      }
  for (i = 0; i < RCL_MAX_NODES; i++)
    free(w[i].what);
  free(w);
  free(xs);
  free(slot);
  free(target);
  free(hops);
  free(ask);
  free(pending);
  free(reload);
  return r;
}

enum app_result redis_cluster_exchange(struct redis_cluster *cl, const char *cmds, size_t len,
                                       size_t n, redisReply **replies, int64_t deadline_ms,
                                       struct app_err *err)
{
  struct rcl_cmd *v = xcalloc(n ? n : 1, sizeof *v);
  size_t i, off = 0;
  enum app_result r = APP_OK;
  for (i = 0; i < n; i++) {
    size_t clen;
    int s;
    if (!redis_cluster_cmd_slot(cmds + off, len - off, &clen, &s)) {
      free(v);
      return app_err_set(err, APP_ERR_INPUT, "redis cluster: command %zu is not complete RESP", i);
    }
    v[i].p = cmds + off;
    v[i].len = clen;
    v[i].slot = s;
    off += clen;
    replies[i] = NULL;
  }
  r = redis_cluster_exchangev(cl, v, n, replies, deadline_ms, NULL, err);
  if (r != APP_OK)
    for (i = 0; i < n; i++) {
      freeReplyObject(replies[i]);
      replies[i] = NULL;
    }
  free(v);
  return r;
}

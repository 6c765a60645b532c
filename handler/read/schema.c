/* schema.c - per-table property names, in memory and in Redis. */
#include "read/schema.h"

#include "common/buf.h"
#include "redis/redis_cluster.h"
#include "redis/redis_conn.h"
#include "map/sink.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* An open-addressing map of "table\x1fproperty" -> when this process last
 * saw the name confirmed in Redis (its SADD or a SISMEMBER answered). It
 * only grows: a table has at most a few hundred columns, so it stays
 * small. */
struct schema_entry {
  char *key;
  int64_t confirmed_ms; /* sink_now_ms() clock */
};

struct schema {
  struct redis_pool *pool;
  const char *prefix;
  int64_t refresh_ms;
  pthread_mutex_t mu;
  struct schema_entry *slots;
  size_t cap, n;
};

#define SCHEMA_MAX_NAMES 200000

static uint64_t hash_str(const char *s, size_t n)
{
  uint64_t h = 1469598103934665603ULL;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return h;
}

struct schema *schema_create(struct redis_pool *pool, const char *prefix, int64_t refresh_ms)
{
  struct schema *s = xcalloc(1, sizeof *s);
  s->pool = pool;
  s->prefix = prefix;
  s->refresh_ms = refresh_ms > 0 ? refresh_ms : SCHEMA_REFRESH_MS_DEFAULT;
  pthread_mutex_init(&s->mu, NULL);
  s->cap = 256;
  s->slots = xcalloc(s->cap, sizeof *s->slots);
  return s;
}

void schema_destroy(struct schema *s)
{
  size_t i;
  if (!s)
    return;
  for (i = 0; i < s->cap; i++)
    free(s->slots[i].key);
  free(s->slots);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

/* Build the "table\x1fname" key into k (ksz bytes); false if too long. */
static bool make_key(const char *table, const char *name, char *k, size_t ksz, size_t *out_len)
{
  size_t tl = strlen(table), nl = strlen(name);
  if (tl + nl + 2 > ksz)
    return false;
  memcpy(k, table, tl);
  k[tl] = '\x1f';
  memcpy(k + tl + 1, name, nl + 1);
  *out_len = tl + 1 + nl;
  return true;
}

/* The entry for k, or NULL. Caller holds mu. */
static struct schema_entry *find_locked(struct schema *s, const char *k, size_t n)
{
  size_t i = (size_t)hash_str(k, n) & (s->cap - 1);
  while (s->slots[i].key) {
    if (!strcmp(s->slots[i].key, k))
      return &s->slots[i];
    i = (i + 1) & (s->cap - 1);
  }
  return NULL;
}

/* Record that k was confirmed at now_ms. Caller holds mu. */
static void confirm_locked(struct schema *s, const char *k, size_t n, int64_t now_ms)
{
  struct schema_entry *e = find_locked(s, k, n);
  size_t i;
  if (e) {
    if (e->confirmed_ms < now_ms)
      e->confirmed_ms = now_ms;
    return;
  }
  if (s->n >= SCHEMA_MAX_NAMES)
    return;
  if ((s->n + 1) * 2 > s->cap) {
    size_t oldcap = s->cap, j;
    struct schema_entry *old = s->slots;
    s->cap *= 2;
    s->slots = xcalloc(s->cap, sizeof *s->slots);
    for (j = 0; j < oldcap; j++) {
      if (old[j].key) {
        size_t m = (size_t)hash_str(old[j].key, strlen(old[j].key)) & (s->cap - 1);
        while (s->slots[m].key)
          m = (m + 1) & (s->cap - 1);
        s->slots[m] = old[j];
      }
    }
    free(old);
  }
  i = (size_t)hash_str(k, n) & (s->cap - 1);
  while (s->slots[i].key)
    i = (i + 1) & (s->cap - 1);
  s->slots[i].key = xstrndup(k, n);
  s->slots[i].confirmed_ms = now_ms;
  s->n++;
}

static bool has(struct schema *s, const char *table, const char *name)
{
  char k[300];
  size_t n;
  bool r;
  if (!make_key(table, name, k, sizeof k, &n))
    return false;
  pthread_mutex_lock(&s->mu);
  r = find_locked(s, k, n) != NULL;
  pthread_mutex_unlock(&s->mu);
  return r;
}

static void confirm(struct schema *s, const char *table, const char *name, int64_t now_ms)
{
  char k[300];
  size_t n;
  if (!make_key(table, name, k, sizeof k, &n))
    return;
  pthread_mutex_lock(&s->mu);
  confirm_locked(s, k, n, now_ms);
  pthread_mutex_unlock(&s->mu);
}

static enum app_result exchange(struct redis_pool *pool, struct buf *cmds, size_t ncmds,
                                redisReply **replies, int64_t deadline_ms, struct app_err *err)
{
  struct redis_conn *c = NULL;
  size_t nread = 0, i;
  enum app_result r;
  struct redis_cluster *cl = redis_pool_cluster(pool);
  bool on = false;

  if (cl && !redis_cluster_known_single(cl)) {
    /* a Redis Cluster: each set on its slot's primary */
    r = redis_cluster_active(cl, deadline_ms, &on, err);
    if (r != APP_OK)
      return r;
  }
  if (on) {
    r = redis_cluster_exchange(cl, cmds->data, cmds->len, ncmds, replies, deadline_ms, err);
    nread = r == APP_OK ? ncmds : 0;
  } else {
    r = redis_pool_acquire(pool, deadline_ms, &c, err);
    if (r != APP_OK)
      return r;
    r = redis_conn_exchange(c, cmds->data, cmds->len, ncmds, replies, &nread, deadline_ms, err);
    redis_pool_release(pool, c);
  }
  if (r == APP_OK) {
    for (i = 0; i < nread; i++) {
      if (redis_reply_classify(replies[i]) != RREPLY_OK) {
        r = redis_reply_error(replies[i], err, "schema set");
        break;
      }
    }
  }
  if (r != APP_OK) {
    for (i = 0; i < nread; i++)
      freeReplyObject(replies[i]);
    memset(replies, 0, ncmds * sizeof *replies);
  }
  return r;
}

enum app_result schema_note(struct schema *s, const struct doc *const *docs, size_t n,
                            int64_t deadline_ms, struct app_err *err)
{
  struct buf cmds, key;
  size_t i, k, ncmds = 0, nnew_total = 0;
  redisReply **replies = NULL;
  bool *fresh = NULL; /* per (doc, prop): not confirmed within refresh_ms */
  size_t *base = NULL;
  enum app_result r = APP_OK;
  char kb[300];
  size_t kn;
  int64_t now = sink_now_ms();

  /* one pass under the lock: which names are new or due again? A name
   * listed twice in the batch is sent twice; SADD does not mind. */
  base = xcalloc(n + 1, sizeof *base);
  for (i = 0; i < n; i++)
    base[i + 1] = base[i] + docs[i]->nprops;
  fresh = xcalloc(base[n] ? base[n] : 1, sizeof *fresh);
  pthread_mutex_lock(&s->mu);
  for (i = 0; i < n; i++)
    for (k = 0; k < docs[i]->nprops; k++)
      if (make_key(docs[i]->table, docs[i]->props[k].name, kb, sizeof kb, &kn)) {
        const struct schema_entry *e = find_locked(s, kb, kn);
        if (!e || now - e->confirmed_ms >= s->refresh_ms) {
          fresh[base[i] + k] = true;
          nnew_total++;
        }
      }
  pthread_mutex_unlock(&s->mu);
  if (!nnew_total)
    goto done;

  buf_init(&cmds, 0);
  buf_init(&key, 0);
  for (i = 0; i < n && r == APP_OK; i++) {
    const struct doc *d = docs[i];
    size_t nnew = 0;
    for (k = 0; k < d->nprops; k++)
      nnew += fresh[base[i] + k];
    if (!nnew)
      continue;
    buf_reset(&key);
    r = buf_printf(&key, "%s:schema:%s", s->prefix, d->table);
    if (r == APP_OK)
      r = redis_cmd_begin(&cmds, nnew + 2);
    if (r == APP_OK)
      r = redis_cmd_arg_str(&cmds, "SADD");
    if (r == APP_OK)
      r = redis_cmd_arg(&cmds, key.data, key.len);
    for (k = 0; r == APP_OK && k < d->nprops; k++)
      if (fresh[base[i] + k])
        r = redis_cmd_arg_str(&cmds, d->props[k].name);
    ncmds++;
  }
  if (r != APP_OK) {
    app_err_set(err, r, "schema set: command too large");
  } else {
    replies = xcalloc(ncmds, sizeof *replies);
    r = exchange(s->pool, &cmds, ncmds, replies, deadline_ms, err);
    if (r == APP_OK) {
      pthread_mutex_lock(&s->mu);
      for (i = 0; i < n; i++)
        for (k = 0; k < docs[i]->nprops; k++)
          if (fresh[base[i] + k] &&
              make_key(docs[i]->table, docs[i]->props[k].name, kb, sizeof kb, &kn))
            confirm_locked(s, kb, kn, now);
      pthread_mutex_unlock(&s->mu);
    }
    for (i = 0; i < ncmds; i++)
      if (replies[i])
        freeReplyObject(replies[i]);
    free(replies);
  }
  buf_cleanup(&cmds);
  buf_cleanup(&key);
done:
  free(fresh);
  free(base);
  return r;
}

enum app_result schema_known(struct schema *s, struct redis_pool *read_pool, const char *table,
                             const char *const *names, size_t n, bool *known, int64_t deadline_ms,
                             struct app_err *err)
{
  struct buf cmds, key;
  size_t i, nask = 0, j = 0;
  redisReply **replies = NULL;
  enum app_result r = APP_OK;

  for (i = 0; i < n; i++) {
    known[i] = has(s, table, names[i]);
    if (!known[i])
      nask++;
  }
  if (!nask)
    return APP_OK;
  buf_init(&cmds, 0);
  buf_init(&key, 0);
  r = buf_printf(&key, "%s:schema:%s", s->prefix, table);
  for (i = 0; r == APP_OK && i < n; i++) {
    if (known[i])
      continue;
    r = redis_cmd_begin(&cmds, 3);
    if (r == APP_OK)
      r = redis_cmd_arg_str(&cmds, "SISMEMBER");
    if (r == APP_OK)
      r = redis_cmd_arg(&cmds, key.data, key.len);
    if (r == APP_OK)
      r = redis_cmd_arg_str(&cmds, names[i]);
  }
  if (r != APP_OK) {
    app_err_set(err, r, "schema check: command too large");
    goto out;
  }
  replies = xcalloc(nask, sizeof *replies);
  r = exchange(read_pool, &cmds, nask, replies, deadline_ms, err);
  if (r != APP_OK)
    goto out;
  for (i = 0; i < n; i++) {
    if (known[i])
      continue;
    known[i] = replies[j]->type == REDIS_REPLY_INTEGER && replies[j]->integer == 1;
    if (known[i])
      confirm(s, table, names[i], sink_now_ms());
    j++;
  }
out:
  if (replies)
    for (i = 0; i < nask; i++)
      if (replies[i])
        freeReplyObject(replies[i]);
  free(replies);
  buf_cleanup(&cmds);
  buf_cleanup(&key);
  return r;
}

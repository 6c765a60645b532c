/* itest_redis.h - helpers shared by the Redis integration test programs:
 * settings, hand-built documents, raw commands on a private connection. */
#ifndef D365CDC_ITEST_REDIS_H
#define D365CDC_ITEST_REDIS_H

#include "common/arena.h"
#include "common/config.h"
#include "redis/redis_read.h"
#include "redis/redis_sink.h"
#include "../unit/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- settings: defaults plus NAME=VALUE overrides ---- */

static const char *itest_overrides[32];
static size_t itest_noverrides;

static inline const char *itest_lookup(const char *name)
{
  size_t i, n = strlen(name);
  for (i = 0; i < itest_noverrides; i++)
    if (!strncmp(itest_overrides[i], name, n) && itest_overrides[i][n] == '=')
      return itest_overrides[i] + n + 1;
  return getenv(name); /* e.g. CDC_REDIS_CA_FILE from the test script */
}

static inline void itest_set(const char *name_eq_value)
{
  size_t i, n = strcspn(name_eq_value, "=");
  for (i = 0; i < itest_noverrides; i++)
    if (!strncmp(itest_overrides[i], name_eq_value, n + 1)) {
      itest_overrides[i] = name_eq_value;
      return;
    }
  if (itest_noverrides < 32)
    itest_overrides[itest_noverrides++] = name_eq_value;
}

static char itest_conn_buf[512];

/* RedisConnection for 127.0.0.1:$REDIS_PORT, or $REDIS_CONN when set. */
static inline const char *itest_connstr(void)
{
  const char *c = getenv("REDIS_CONN"), *port = getenv("REDIS_PORT");
  if (c && *c)
    snprintf(itest_conn_buf, sizeof itest_conn_buf, "RedisConnection=%s", c);
  else
    snprintf(itest_conn_buf, sizeof itest_conn_buf, "RedisConnection=127.0.0.1:%s",
             port ? port : "6379");
  return itest_conn_buf;
}

static inline struct redis_sink *itest_sink(struct app_config *cfg)
{
  struct app_err err = {0};
  struct redis_sink *s = NULL;
  itest_set(itest_connstr());
  if (config_load(cfg, itest_lookup, &err) != APP_OK) {
    fprintf(stderr, "config: %s\n", err.msg);
    exit(2);
  }
  if (redis_sink_create(cfg, &s, &err) != APP_OK) {
    fprintf(stderr, "redis_sink_create: %s\n", err.msg);
    exit(2);
  }
  return s;
}

/* ---- documents ---- */

static inline void itest_version(struct doc *d, int64_t ts, uint64_t rowver)
{
  d->version.ts_ms = ts;
  d->version.row_version = rowver;
  d->version.tie = 0;
  cdc_version_text(&d->version, d->version_text);
  d->op_time_ms = ts;
}

/* A document with properties given as name, JSON pairs, ending with NULL.
 * A name "name@annotation" adds an annotation to the previous property. */
static inline struct doc *itest_doc(struct arena *a, enum cdc_op op, const char *table,
                                    const char *id, int64_t ts, bool full, ...)
{
  struct doc *d = arena_alloc(a, sizeof *d);
  struct doc_prop *props = arena_alloc(a, 64 * sizeof *props);
  va_list ap;
  const char *name;
  memset(d, 0, sizeof *d);
  memset(props, 0, 64 * sizeof *props);
  d->op = op;
  d->table = table;
  d->entity_set = table;
  d->id = id;
  d->full_row = full;
  itest_version(d, ts, 0);
  va_start(ap, full);
  while ((name = va_arg(ap, const char *)) != NULL) {
    const char *json = va_arg(ap, const char *);
    const char *at = strchr(name, '@');
    if (at && d->nprops) {
      struct doc_prop *p = &props[d->nprops - 1];
      struct doc_annotation *ann = arena_alloc(a, (p->nann + 1) * sizeof *ann);
      if (p->nann)
        memcpy(ann, p->ann, p->nann * sizeof *ann);
      ann[p->nann].name = at + 1;
      ann[p->nann].json = json;
      ann[p->nann].json_len = strlen(json);
      p->ann = ann;
      p->nann++;
      continue;
    }
    props[d->nprops].name = name;
    props[d->nprops].column = name;
    props[d->nprops].json = json;
    props[d->nprops].json_len = strlen(json);
    d->nprops++;
  }
  va_end(ap);
  d->props = props;
  return d;
}

static inline struct doc *itest_rel_doc(struct arena *a, enum cdc_op op, const char *table,
                                        const char *id, const char *relationship, int64_t ts,
                                        const char *rtable, const char *const *rids, size_t n)
{
  struct doc *d = itest_doc(a, op, table, id, ts, false, NULL);
  struct doc_related *r = arena_alloc(a, (n ? n : 1) * sizeof *r);
  size_t i;
  for (i = 0; i < n; i++) {
    r[i].table = rtable;
    r[i].entity_set = rtable;
    r[i].id = rids[i];
  }
  d->relationship = relationship;
  d->related = r;
  d->nrelated = n;
  return d;
}

static inline enum app_result itest_apply(struct redis_sink *s, struct doc **docs, size_t n,
                                          struct sink_stats *st, struct app_err *err)
{
  struct sink_batch b;
  memset(&b, 0, sizeof b);
  b.docs = (const struct doc *const *)docs;
  b.ndocs = n;
  b.function = "itest";
  b.invocation_id = "inv-1";
  b.deadline_ms = 0;
  return redis_sink_apply(s, &b, st, err);
}

/* ---- raw commands ---- */

/* Run one command (argv, NULL-terminated) on a pooled connection; caller
 * frees the reply with freeReplyObject. NULL on failure. */
static inline redisReply *itest_cmd(struct redis_sink *s, ...)
{
  const char *argv[64];
  size_t argc = 0, nread = 0;
  va_list ap;
  struct buf b;
  struct redis_conn *c = NULL;
  redisReply *rep = NULL;
  struct app_err err = {0};
  const char *x;
  va_start(ap, s);
  while ((x = va_arg(ap, const char *)) != NULL && argc < 64)
    argv[argc++] = x;
  va_end(ap);
  buf_init(&b, 0);
  if (redis_cmd_argv(&b, argc, argv, NULL) != APP_OK ||
      redis_pool_acquire(redis_sink_pool(s), sink_now_ms() + 5000, &c, &err) != APP_OK) {
    fprintf(stderr, "itest_cmd %s: %s\n", argv[0], err.msg);
    buf_cleanup(&b);
    return NULL;
  }
  if (redis_conn_exchange(c, b.data, b.len, 1, &rep, &nread, sink_now_ms() + 5000, &err) !=
      APP_OK) {
    fprintf(stderr, "itest_cmd %s: %s\n", argv[0], err.msg);
    if (nread)
      freeReplyObject(rep);
    rep = NULL;
  }
  redis_pool_release(redis_sink_pool(s), c);
  buf_cleanup(&b);
  return rep;
}

static inline long long itest_int(struct redis_sink *s, ...)
{
  const char *argv[16];
  size_t argc = 0;
  va_list ap;
  const char *x;
  redisReply *r;
  long long v = -999999;
  va_start(ap, s);
  while ((x = va_arg(ap, const char *)) != NULL && argc < 15)
    argv[argc++] = x;
  va_end(ap);
  argv[argc] = NULL;
  r = itest_cmd(s, argv[0], argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL,
                argc > 3 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL, NULL);
  if (r && r->type == REDIS_REPLY_INTEGER)
    v = r->integer;
  else if (r && r->type == REDIS_REPLY_STRING)
    v = strtoll(r->str, NULL, 10);
  if (r)
    freeReplyObject(r);
  return v;
}

/* A numeric field of INFO <section>, e.g. ("commandstats", "cmdstat_evalsha:calls"). */
static inline long long itest_info(struct redis_sink *s, const char *section, const char *field)
{
  redisReply *r = itest_cmd(s, "INFO", section, NULL);
  long long v = -1;
  const char *p;
  char pat[128];
  size_t n;
  if (!r)
    return -1;
  n = (size_t)snprintf(pat, sizeof pat, "%s", field);
  /* "cmdstat_evalsha:calls" means the calls= item on the cmdstat_evalsha line */
  {
    const char *colon = strchr(field, ':');
    if (colon && strcmp(section, "commandstats") == 0) {
      char line[96];
      snprintf(line, sizeof line, "%.*s:", (int)(colon - field), field);
      p = r->str ? strstr(r->str, line) : NULL;
      if (p) {
        char item[64];
        snprintf(item, sizeof item, "%s=", colon + 1);
        p = strstr(p, item);
        if (p)
          v = strtoll(p + strlen(item), NULL, 10);
      } else {
        v = 0;
      }
      freeReplyObject(r);
      return v;
    }
  }
  pat[n] = ':';
  pat[n + 1] = '\0';
  p = r->str ? strstr(r->str, pat) : NULL;
  if (p)
    v = strtoll(p + n + 1, NULL, 10);
  freeReplyObject(r);
  return v;
}

/* ---- reads ---- */

/* redis_read_* go through a multiplexer: one over the sink's pool, made on
 * first use and remade when the pool changes; itest_mux_free frees it. */
static struct redis_mux *itest_mux_cached;
static struct redis_pool *itest_mux_pool;

static inline void itest_mux_free(void)
{
  redis_mux_destroy(itest_mux_cached);
  itest_mux_cached = NULL;
  itest_mux_pool = NULL;
}

static inline struct redis_mux *itest_mux(struct redis_sink *s)
{
  struct app_err err;
  if (itest_mux_cached && itest_mux_pool == redis_sink_pool(s))
    return itest_mux_cached;
  itest_mux_free();
  if (redis_mux_create(redis_sink_pool(s), 4, 64, 64, &itest_mux_cached, &err) != APP_OK) {
    fprintf(stderr, "redis_mux_create: %s\n", err.msg);
    exit(1);
  }
  itest_mux_pool = redis_sink_pool(s);
  return itest_mux_cached;
}

static inline const struct redis_read_prop *itest_prop(const struct redis_record *rec,
                                                       const char *name)
{
  size_t i;
  for (i = 0; i < rec->nprops; i++)
    if (!strcmp(rec->props[i].name, name))
      return &rec->props[i];
  return NULL;
}

static inline const char *itest_prop_json(const struct redis_record *rec, const char *name)
{
  const struct redis_read_prop *p = itest_prop(rec, name);
  return p ? p->json : NULL;
}

static inline struct redis_record itest_read(struct redis_sink *s, struct arena *a,
                                             const char *table, const char *id)
{
  struct redis_record rec;
  struct app_err err = {0};
  memset(&rec, 0, sizeof rec);
  if (redis_read_record(itest_mux(s), redis_sink_prefix(s), a, table, id, 0, &rec, &err) != APP_OK)
    fprintf(stderr, "read %s %s: %s\n", table, id, err.msg);
  return rec;
}

#endif

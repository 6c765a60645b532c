/* redis_ops.c - the operations store in Redis (see redis_ops.h). */
#include "redis/redis_ops.h"

#include "redis/redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest command a record may make (the body is capped by
 * CDC_MAX_MESSAGE_BYTES before it gets here; this is a backstop). */
#define OPS_MAX_CMD_BYTES ((size_t)256 << 20)

static const char replace_script[] =
    "if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end\n"
    "return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))";

const char *redis_ops_field(const struct redis_ops_record *r, const char *name, size_t *len)
{
  size_t i;
  for (i = 0; i < r->n; i++)
    if (!strcmp(r->f[i].name, name)) {
      if (len)
        *len = r->f[i].len;
      return r->f[i].value;
    }
  return NULL;
}

/* Send cmds (n commands) on a pooled connection and read n replies into
 * replies[]; the caller frees them. Error replies are returned as errors
 * (the first one). */
static enum app_result exchange(struct redis_pool *p, const struct buf *cmds, size_t n,
                                redisReply **replies, int64_t deadline_ms, struct app_err *err)
{
  struct redis_conn *c = NULL;
  size_t nread = 0, i;
  enum app_result r = redis_pool_acquire(p, deadline_ms, &c, err);
  if (r != APP_OK)
    return r;
  r = redis_conn_exchange(c, cmds->data, cmds->len, n, replies, &nread, deadline_ms, err);
  redis_pool_release(p, c);
  for (i = nread; i < n; i++)
    replies[i] = NULL;
  for (i = 0; r == APP_OK && i < n; i++)
    if (replies[i] && replies[i]->type == REDIS_REPLY_ERROR)
      r = redis_reply_error(replies[i], err, "redis");
  return r;
}

static void free_replies(redisReply **replies, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (replies[i])
      freeReplyObject(replies[i]);
}

enum app_result redis_ops_hincr(struct redis_pool *p, const char *key, const struct opsm_field *f,
                                size_t n, int64_t deadline_ms, struct app_err *err)
{
  struct buf cmds;
  redisReply **replies;
  size_t i;
  enum app_result r = APP_OK;
  if (!n)
    return APP_OK;
  buf_init(&cmds, OPS_MAX_CMD_BYTES);
  for (i = 0; i < n && r == APP_OK; i++) {
    r = redis_cmd_begin(&cmds, 4);
    if (r == APP_OK)
      r = redis_cmd_arg_str(&cmds, "HINCRBY");
    if (r == APP_OK)
      r = redis_cmd_arg_str(&cmds, key);
    if (r == APP_OK)
      r = redis_cmd_arg_str(&cmds, f[i].name);
    if (r == APP_OK)
      r = redis_cmd_arg_i64(&cmds, f[i].value);
  }
  if (r != APP_OK) {
    buf_cleanup(&cmds);
    return app_err_set(err, r, "redis metrics: cannot build the request");
  }
  replies = calloc(n, sizeof *replies);
  if (!replies) {
    buf_cleanup(&cmds);
    return app_err_set(err, APP_ERR_NOMEM, "redis metrics: out of memory");
  }
  r = exchange(p, &cmds, n, replies, deadline_ms, err);
  free_replies(replies, n);
  free(replies);
  buf_cleanup(&cmds);
  return r;
}

enum app_result redis_ops_hgetall(struct redis_pool *p, const char *key, struct opsm_field **out,
                                  size_t *n, int64_t deadline_ms, struct app_err *err)
{
  struct buf cmds;
  redisReply *x = NULL;
  enum app_result r;
  size_t i, k = 0;
  struct opsm_field *f = NULL;

  *out = NULL;
  *n = 0;
  buf_init(&cmds, 0);
  r = redis_cmd_begin(&cmds, 2);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "HGETALL");
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, key);
  if (r == APP_OK)
    r = exchange(p, &cmds, 1, &x, deadline_ms, err);
  buf_cleanup(&cmds);
  if (r != APP_OK)
    goto out;
  if (!x || (x->type != REDIS_REPLY_ARRAY) || x->elements % 2) {
    r = app_err_set(err, APP_ERR_REDIS, "redis metrics: HGETALL %s: unexpected reply", key);
    goto out;
  }
  f = malloc((x->elements / 2 + 1) * sizeof *f);
  if (!f) {
    r = app_err_set(err, APP_ERR_NOMEM, "redis metrics: out of memory");
    goto out;
  }
  for (i = 0; i + 1 < x->elements; i += 2) {
    const redisReply *nm = x->element[i], *v = x->element[i + 1];
    if (nm->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
        nm->len >= OPSM_FIELD_MAX)
      continue;
    memcpy(f[k].name, nm->str, nm->len);
    f[k].name[nm->len] = '\0';
    f[k].value = strtoll(v->str, NULL, 10);
    k++;
  }
  *out = f;
  *n = k;
out:
  if (x)
    freeReplyObject(x);
  return r;
}

static enum app_result add_fields(struct buf *cmds, const struct redis_ops_kv *f, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) {
    APP_RETURN_IF_FAILED(redis_cmd_arg_str(cmds, f[i].name));
    APP_RETURN_IF_FAILED(
        redis_cmd_arg(cmds, f[i].value ? f[i].value : "", f[i].value ? f[i].len : 0));
  }
  return APP_OK;
}

static void copy_id(char *id, const redisReply *x)
{
  if (!id)
    return;
  if (x && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS) && x->len < 48) {
    memcpy(id, x->str, x->len);
    id[x->len] = '\0';
  } else {
    id[0] = '\0';
  }
}

enum app_result redis_ops_xadd(struct redis_pool *p, const char *stream, int maxlen,
                               const struct redis_ops_kv *f, size_t n, int64_t deadline_ms,
                               char *id, struct app_err *err)
{
  struct buf cmds;
  redisReply *x = NULL;
  enum app_result r;
  buf_init(&cmds, OPS_MAX_CMD_BYTES);
  r = redis_cmd_begin(&cmds, 6 + 2 * n);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "XADD");
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, stream);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "MAXLEN");
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "~");
  if (r == APP_OK)
    r = redis_cmd_arg_i64(&cmds, maxlen);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "*");
  if (r == APP_OK)
    r = add_fields(&cmds, f, n);
  if (r != APP_OK) {
    buf_cleanup(&cmds);
    return app_err_set(err, r, "redis record: the record is too large");
  }
  r = exchange(p, &cmds, 1, &x, deadline_ms, err);
  if (r == APP_OK)
    copy_id(id, x);
  if (x)
    freeReplyObject(x);
  buf_cleanup(&cmds);
  return r;
}

/* One stream entry [id, [f1, v1, ...]] into rec (arena a). */
static enum app_result entry(struct arena *a, const redisReply *e, struct redis_ops_record *rec,
                             struct app_err *err)
{
  const redisReply *id, *fv;
  size_t i;
  if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
    return app_err_set(err, APP_ERR_REDIS, "redis record: unexpected stream entry");
  id = e->element[0];
  fv = e->element[1];
  if (id->type != REDIS_REPLY_STRING || id->len >= sizeof rec->id ||
      fv->type != REDIS_REPLY_ARRAY || fv->elements % 2)
    return app_err_set(err, APP_ERR_REDIS, "redis record: unexpected stream entry");
  memcpy(rec->id, id->str, id->len);
  rec->id[id->len] = '\0';
  rec->n = fv->elements / 2;
  rec->f = arena_alloc(a, (rec->n + 1) * sizeof *rec->f);
  if (!rec->f)
    return app_err_set(err, APP_ERR_LIMIT, "redis record: out of request memory");
  for (i = 0; i < rec->n; i++) {
    const redisReply *k = fv->element[2 * i], *v = fv->element[2 * i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
      return app_err_set(err, APP_ERR_REDIS, "redis record %s: a field is not a string", rec->id);
    rec->f[i].name = arena_strndup(a, k->str, k->len);
    rec->f[i].value = arena_strndup(a, v->str, v->len);
    rec->f[i].len = v->len;
    if (!rec->f[i].name || !rec->f[i].value)
      return app_err_set(err, APP_ERR_LIMIT, "redis record: out of request memory");
  }
  return APP_OK;
}

enum app_result redis_ops_xrevrange(struct redis_pool *p, const char *stream, const char *end,
                                    const char *start, size_t count, struct arena *a,
                                    struct redis_ops_record **out, size_t *n, int64_t deadline_ms,
                                    struct app_err *err)
{
  struct buf cmds;
  redisReply *x = NULL;
  enum app_result r;
  size_t i;

  *out = NULL;
  *n = 0;
  buf_init(&cmds, 0);
  r = redis_cmd_begin(&cmds, 6);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "XREVRANGE");
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, stream);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, end);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, start);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "COUNT");
  if (r == APP_OK)
    r = redis_cmd_arg_i64(&cmds, (int64_t)count);
  if (r == APP_OK)
    r = exchange(p, &cmds, 1, &x, deadline_ms, err);
  buf_cleanup(&cmds);
  if (r != APP_OK)
    goto out;
  if (!x || x->type != REDIS_REPLY_ARRAY) {
    r = app_err_set(err, APP_ERR_REDIS, "redis record: XREVRANGE %s: unexpected reply", stream);
    goto out;
  }
  *out = arena_alloc(a, (x->elements + 1) * sizeof **out);
  if (!*out) {
    r = app_err_set(err, APP_ERR_LIMIT, "redis record: out of request memory");
    goto out;
  }
  for (i = 0; i < x->elements && r == APP_OK; i++)
    r = entry(a, x->element[i], &(*out)[i], err);
  if (r == APP_OK)
    *n = x->elements;
out:
  if (x)
    freeReplyObject(x);
  return r;
}

enum app_result redis_ops_xdel(struct redis_pool *p, const char *stream, const char *id,
                               int *deleted, int64_t deadline_ms, struct app_err *err)
{
  struct buf cmds;
  redisReply *x = NULL;
  enum app_result r;
  buf_init(&cmds, 0);
  r = redis_cmd_begin(&cmds, 3);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "XDEL");
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, stream);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, id);
  if (r == APP_OK)
    r = exchange(p, &cmds, 1, &x, deadline_ms, err);
  if (r == APP_OK && deleted)
    *deleted = x && x->type == REDIS_REPLY_INTEGER ? (int)x->integer : 0;
  if (x)
    freeReplyObject(x);
  buf_cleanup(&cmds);
  return r;
}

enum app_result redis_ops_xreplace(struct redis_pool *p, const char *stream, int maxlen,
                                   const char *old_id, const struct redis_ops_kv *f, size_t n,
                                   int64_t deadline_ms, char *new_id, struct app_err *err)
{
  struct buf cmds;
  redisReply *x = NULL;
  enum app_result r;
  buf_init(&cmds, OPS_MAX_CMD_BYTES);
  r = redis_cmd_begin(&cmds, 6 + 2 * n);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "EVAL");
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, replace_script);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, "1");
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, stream);
  if (r == APP_OK)
    r = redis_cmd_arg_str(&cmds, old_id);
  if (r == APP_OK)
    r = redis_cmd_arg_i64(&cmds, maxlen);
  if (r == APP_OK)
    r = add_fields(&cmds, f, n);
  if (r != APP_OK) {
    buf_cleanup(&cmds);
    return app_err_set(err, r, "redis record: the record is too large");
  }
  r = exchange(p, &cmds, 1, &x, deadline_ms, err);
  if (r == APP_OK && x && x->type == REDIS_REPLY_NIL)
    r = app_err_set(err, APP_ERR_NOTFOUND, "record %s no longer exists", old_id);
  else if (r == APP_OK)
    copy_id(new_id, x);
  if (x)
    freeReplyObject(x);
  buf_cleanup(&cmds);
  return r;
}

/* redis_read.c - HGETALL-based reads of the sink's layout into an arena. */
#include "redis/redis_read.h"

#include "common/json.h"
#include "redis/redis_sink.h"
#include "map/sink.h"

#include <stdlib.h>
#include <string.h>

static enum app_result arena_full(struct app_err *err)
{
  return app_err_set(err, APP_ERR_LIMIT, "redis read: the result is larger than the read arena");
}

static int prop_cmp(const void *x, const void *y)
{
  const struct redis_read_prop *a = x, *b = y;
  return strcmp(a->name, b->name);
}

static int member_cmp(const void *x, const void *y)
{
  const struct doc_related *a = x, *b = y;
  int c = strcmp(a->table, b->table);
  return c ? c : strcmp(a->id, b->id);
}

static bool is_version(const char *s, size_t n)
{
  size_t i;
  if (n < CDC_VERSION_TEXT_LEN)
    return false;
  for (i = 0; i < CDC_VERSION_TEXT_LEN; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

static void copy_version(char *dst, const char *s, size_t n)
{
  if (is_version(s, n)) {
    memcpy(dst, s, CDC_VERSION_TEXT_LEN);
    dst[CDC_VERSION_TEXT_LEN] = '\0';
  } else {
    dst[0] = '\0';
  }
}

static enum app_result bad_data(const char *table, const char *id, const char *what,
                                struct app_err *err)
{
  return app_err_set(err, APP_ERR_REDIS, "redis read %s %s: unexpected stored data (%s)", table, id,
                     what);
}

/* annotations: the JSON object text in a p: field */
static enum app_result parse_annotations(struct arena *a, const char *s, size_t n,
                                         struct redis_read_prop *p, const char *table,
                                         const char *id, struct app_err *err)
{
  struct json *root = NULL;
  const struct json *m;
  struct doc_annotation *ann;
  struct buf tmp;
  size_t k = 0;
  enum app_result r;

  r = json_parse(a, s, n, 8, &root, err);
  if (r == APP_ERR_LIMIT)
    return arena_full(err);
  if (r != APP_OK || !json_is(root, JSON_OBJECT))
    return bad_data(table, id, "annotations are not a JSON object", err);
  if (root->len == 0)
    return APP_OK;
  ann = arena_alloc(a, root->len * sizeof *ann);
  if (!ann)
    return arena_full(err);
  buf_init(&tmp, 0);
  for (m = root->child; m; m = m->next) {
    buf_reset(&tmp);
    r = json_write(&tmp, m);
    if (r != APP_OK)
      break;
    ann[k].name = m->key;
    ann[k].json = arena_strndup(a, tmp.data ? tmp.data : "", tmp.len);
    ann[k].json_len = tmp.len;
    if (!ann[k].json) {
      r = APP_ERR_LIMIT;
      break;
    }
    k++;
  }
  buf_cleanup(&tmp);
  if (r != APP_OK)
    return r == APP_ERR_LIMIT ? arena_full(err) : app_err_set(err, r, "redis read: annotations");
  p->ann = ann;
  p->nann = k;
  return APP_OK;
}

/* One p:<prop> field value (redis_lua.h): version (45 digits), the
 * annotations' length n in decimal, ':', n bytes of annotations, then the
 * value JSON. Anything else is refused, naming the record and property. */
static enum app_result decode_prop(struct arena *a, const char *s, size_t len,
                                   struct redis_read_prop *p, const char *table, const char *id,
                                   struct app_err *err)
{
  size_t i = CDC_VERSION_TEXT_LEN, n = 0, digits = 0;

  if (!is_version(s, len))
    return app_err_set(err, APP_ERR_REDIS,
                       "redis read %s %s: unexpected stored data (property '%.128s': version is "
                       "not 45 digits)",
                       table, id, p->name);
  for (; i < len && s[i] >= '0' && s[i] <= '9' && digits < 10; i++, digits++)
    n = n * 10 + (size_t)(s[i] - '0');
  if (!digits || i >= len || s[i] != ':' || n > len - i - 1 || len - i - 1 - n == 0)
    return app_err_set(err, APP_ERR_REDIS,
                       "redis read %s %s: unexpected stored data (property '%.128s': not "
                       "version, annotations length, ':', annotations, value)",
                       table, id, p->name);
  i++;
  copy_version(p->version_text, s, len);
  p->json = arena_strndup(a, s + i + n, len - i - n);
  p->json_len = len - i - n;
  if (!p->json)
    return arena_full(err);
  if (n)
    return parse_annotations(a, s + i, n, p, table, id, err);
  return APP_OK;
}

static bool field_is(const redisReply *f, const char *name)
{
  size_t n = strlen(name);
  return f->len == n && !memcmp(f->str, name, n);
}

static bool field_prefix(const redisReply *f, char c)
{
  return f->len > 2 && f->str[0] == c && f->str[1] == ':';
}

/* Turn an HGETALL reply into *out. */
static enum app_result decode_record(struct arena *a, const char *table, const char *id,
                                     const redisReply *x, struct redis_record *out,
                                     struct app_err *err)
{
  struct redis_read_prop *props = NULL;
  size_t i, nv = 0, np = 0;
  const char *del = NULL;

  memset(out, 0, sizeof *out);
  out->table = table;
  out->id = id;
  if (redis_reply_classify(x) != RREPLY_OK)
    return redis_reply_error(x, err, "redis read %s %s", table, id);
  if (x->type != REDIS_REPLY_ARRAY || x->elements % 2)
    return bad_data(table, id, "not a hash", err);
  for (i = 0; i < x->elements; i += 2) {
    const redisReply *f = x->element[i];
    if (f->type != REDIS_REPLY_STRING || x->element[i + 1]->type != REDIS_REPLY_STRING)
      return bad_data(table, id, "field is not a string", err);
    if (field_prefix(f, 'p'))
      nv++;
    else if (field_prefix(f, 'v') || field_prefix(f, 'm'))
      /* written by a build before one field per property (docs/redis.md):
       * refused rather than read as a record without those properties */
      return app_err_set(err, APP_ERR_REDIS,
                         "redis read %s %s: the record is stored in an older layout (field "
                         "'%.128s'; v:/m: fields instead of p:); delete the record's keys so the "
                         "next change or re-sync writes it again",
                         table, id, f->str);
  }
  if (nv) {
    props = arena_alloc(a, nv * sizeof *props);
    if (!props)
      return arena_full(err);
    memset(props, 0, nv * sizeof *props);
  }
  for (i = 0; i < x->elements; i += 2) {
    const redisReply *f = x->element[i], *v = x->element[i + 1];
    if (field_prefix(f, 'p')) {
      enum app_result r;
      props[np].name = arena_strndup(a, f->str + 2, f->len - 2);
      if (!props[np].name)
        return arena_full(err);
      r = decode_prop(a, v->str, v->len, &props[np], table, id, err);
      if (r != APP_OK)
        return r;
      np++;
    } else if (field_is(f, "_ver")) {
      copy_version(out->version_text, v->str, v->len);
    } else if (field_is(f, "_op")) {
      out->op_time_ms = strtoll(v->str, NULL, 10);
    } else if (field_is(f, "_del")) {
      copy_version(out->deleted_version, v->str, v->len);
      del = out->deleted_version;
    } else if (field_is(f, "_reread")) {
      copy_version(out->reread_version, v->str, v->len);
      out->needs_reread = out->reread_version[0] != '\0';
    }
  }
  if (np > 1)
    qsort(props, np, sizeof *props, prop_cmp);
  out->props = props;
  out->nprops = np;
  if (out->version_text[0] == '\0')
    out->state = RREC_ABSENT;
  else if (del && strcmp(del, out->version_text) >= 0)
    out->state = RREC_DELETED;
  else
    out->state = RREC_LIVE;
  return APP_OK;
}

static void free_replies(redisReply **replies, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    freeReplyObject(replies[i]);
}

/* A connection that broke or refused AUTH is a Redis failure to callers. */
static enum app_result public_code(enum app_result r, struct app_err *err)
{
  if (r != APP_ERR_IO && r != APP_ERR_CONFIG)
    return r;
  if (err)
    err->code = APP_ERR_REDIS;
  return APP_ERR_REDIS;
}

/* Send cmds (n commands) through the multiplexer, read n replies
 * (*out_nread is n on success, 0 on failure). */
static enum app_result roundtrip(struct redis_mux *mux, const struct buf *cmds, size_t n,
                                 int64_t deadline_ms, redisReply **replies, size_t *out_nread,
                                 struct app_err *err)
{
  enum app_result r;
  *out_nread = 0;
  r = redis_mux_exchange(mux, cmds->data, cmds->len, n, replies, deadline_ms, err);
  if (r == APP_OK)
    *out_nread = n;
  return public_code(r, err);
}

static enum app_result check_names(const char *table, const char *id, struct app_err *err)
{
  if (!redis_sink_name_ok(table, false) || !redis_sink_name_ok(id, true))
    return app_err_set(err, APP_ERR_INPUT, "redis read: '%.64s' '%.64s' is not a table and id",
                       table ? table : "", id ? id : "");
  return APP_OK;
}

enum app_result redis_read_records(struct redis_mux *mux, const char *prefix, struct arena *a,
                                   const struct doc_related *refs, size_t n, int64_t deadline_ms,
                                   struct redis_record *out, struct app_err *err)
{
  struct buf cmds, key;
  redisReply **replies = NULL;
  size_t i, nread = 0;
  enum app_result r = APP_OK;

  if (n == 0)
    return APP_OK;
  for (i = 0; i < n; i++)
    APP_RETURN_IF_FAILED(check_names(refs[i].table, refs[i].id, err));
  buf_init(&cmds, 0);
  buf_init(&key, 0);
  for (i = 0; i < n && r == APP_OK; i++) {
    buf_reset(&key);
    r = redis_sink_record_key(&key, prefix, refs[i].table, refs[i].id);
    if (r == APP_OK)
      r = redis_cmd_begin(&cmds, 2);
    if (r == APP_OK)
      r = redis_cmd_arg(&cmds, "HGETALL", 7);
    if (r == APP_OK)
      r = redis_cmd_arg(&cmds, key.data, key.len);
  }
  if (r != APP_OK) {
    r = app_err_set(err, r, "redis read: cannot build the request");
    goto out;
  }
  replies = calloc(n, sizeof *replies);
  if (!replies) {
    r = app_err_set(err, APP_ERR_NOMEM, "redis read: no memory for %zu replies", n);
    goto out;
  }
  r = roundtrip(mux, &cmds, n, deadline_ms, replies, &nread, err);
  for (i = 0; i < nread && r == APP_OK; i++) {
    const char *t = arena_strndup(a, refs[i].table, strlen(refs[i].table));
    const char *d = arena_strndup(a, refs[i].id, strlen(refs[i].id));
    if (!t || !d) {
      r = arena_full(err);
      break;
    }
    r = decode_record(a, t, d, replies[i], &out[i], err);
  }
out:
  if (replies)
    free_replies(replies, nread);
  free(replies);
  buf_cleanup(&cmds);
  buf_cleanup(&key);
  return r;
}

enum app_result redis_read_record(struct redis_mux *mux, const char *prefix, struct arena *a,
                                  const char *table, const char *id, int64_t deadline_ms,
                                  struct redis_record *out, struct app_err *err)
{
  struct doc_related ref;
  ref.table = table;
  ref.id = id;
  ref.entity_set = NULL;
  return redis_read_records(mux, prefix, a, &ref, 1, deadline_ms, out, err);
}

enum app_result redis_read_related(struct redis_mux *mux, const char *prefix, struct arena *a,
                                   const char *table, const char *id, const char *relationship,
                                   int64_t deadline_ms, struct doc_related **out_members,
                                   size_t *out_n, struct app_err *err)
{
  struct buf cmds, key;
  redisReply *x = NULL;
  struct doc_related *m = NULL;
  size_t i, k = 0, nread = 0;
  enum app_result r;

  *out_members = NULL;
  *out_n = 0;
  APP_RETURN_IF_FAILED(check_names(table, id, err));
  if (!redis_sink_name_ok(relationship, false))
    return app_err_set(err, APP_ERR_INPUT, "redis read: '%.64s' is not a relationship name",
                       relationship ? relationship : "");
  buf_init(&cmds, 0);
  buf_init(&key, 0);
  r = redis_sink_rel_key(&key, prefix, table, id, relationship);
  if (r == APP_OK)
    r = redis_cmd_begin(&cmds, 2);
  if (r == APP_OK)
    r = redis_cmd_arg(&cmds, "HGETALL", 7);
  if (r == APP_OK)
    r = redis_cmd_arg(&cmds, key.data, key.len);
  if (r != APP_OK) {
    r = app_err_set(err, r, "redis read: cannot build the request");
    goto out;
  }
  r = roundtrip(mux, &cmds, 1, deadline_ms, &x, &nread, err);
  if (r != APP_OK)
    goto out;
  if (redis_reply_classify(x) != RREPLY_OK) {
    r = redis_reply_error(x, err, "redis read %s %s relationship %s", table, id, relationship);
    goto out;
  }
  if (x->type != REDIS_REPLY_ARRAY || x->elements % 2) {
    r = bad_data(table, id, "relationship is not a hash", err);
    goto out;
  }
  if (x->elements) {
    m = arena_alloc(a, x->elements / 2 * sizeof *m);
    if (!m) {
      r = arena_full(err);
      goto out;
    }
  }
  for (i = 0; i < x->elements; i += 2) {
    const redisReply *f = x->element[i], *v = x->element[i + 1];
    const char *colon;
    if (f->type == REDIS_REPLY_STRING && f->len && f->str[0] == '#')
      continue; /* the script's own bookkeeping (#cursor) */
    /* value: version(45) state(1) applied ms(15) entity set */
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
        v->len < CDC_VERSION_TEXT_LEN + 16 || !(colon = memchr(f->str, ':', f->len))) {
      r = bad_data(table, id, "relationship member", err);
      goto out;
    }
    if (v->str[CDC_VERSION_TEXT_LEN] != '1')
      continue;
    m[k].table = arena_strndup(a, f->str, (size_t)(colon - f->str));
    m[k].id = arena_strndup(a, colon + 1, f->len - (size_t)(colon - f->str) - 1);
    m[k].entity_set =
        arena_strndup(a, v->str + CDC_VERSION_TEXT_LEN + 16, v->len - CDC_VERSION_TEXT_LEN - 16);
    if (!m[k].table || !m[k].id || !m[k].entity_set) {
      r = arena_full(err);
      goto out;
    }
    k++;
  }
  if (k > 1)
    qsort(m, k, sizeof *m, member_cmp);
  *out_members = m;
  *out_n = k;
out:
  if (nread)
    freeReplyObject(x);
  buf_cleanup(&cmds);
  buf_cleanup(&key);
  return r;
}

enum app_result redis_read_set(struct redis_mux *mux, struct arena *a, const char *key,
                               size_t key_len, size_t max, int64_t deadline_ms,
                               const char ***out_members, size_t *out_n, struct app_err *err)
{
  struct buf cmds;
  redisReply *x = NULL;
  const char **m = NULL;
  size_t i, nread = 0;
  enum app_result r;

  *out_members = NULL;
  *out_n = 0;
  buf_init(&cmds, 0);
  r = redis_cmd_begin(&cmds, 3);
  if (r == APP_OK)
    r = redis_cmd_arg(&cmds, "SRANDMEMBER", 11);
  if (r == APP_OK)
    r = redis_cmd_arg(&cmds, key, key_len);
  if (r == APP_OK)
    r = redis_cmd_arg_i64(&cmds, (int64_t)max);
  if (r != APP_OK) {
    r = app_err_set(err, r, "redis read: cannot build the request");
    goto out;
  }
  r = roundtrip(mux, &cmds, 1, deadline_ms, &x, &nread, err);
  if (r != APP_OK)
    goto out;
  if (redis_reply_classify(x) != RREPLY_OK) {
    r = redis_reply_error(x, err, "redis read of a set");
    goto out;
  }
  if (x->type != REDIS_REPLY_ARRAY) {
    r = app_err_set(err, APP_ERR_REDIS, "redis read: an index key is not a set");
    goto out;
  }
  if (x->elements) {
    m = arena_alloc(a, x->elements * sizeof *m);
    if (!m) {
      r = arena_full(err);
      goto out;
    }
  }
  for (i = 0; i < x->elements; i++) {
    const redisReply *v = x->element[i];
    if (v->type != REDIS_REPLY_STRING) {
      r = app_err_set(err, APP_ERR_REDIS, "redis read: an index member is not a string");
      goto out;
    }
    m[i] = arena_strndup(a, v->str, v->len);
    if (!m[i]) {
      r = arena_full(err);
      goto out;
    }
  }
  *out_members = m;
  *out_n = x->elements;
out:
  if (nread)
    freeReplyObject(x);
  buf_cleanup(&cmds);
  return r;
}

/* copy the members of one SRANDMEMBER reply into the arena */
static enum app_result set_members(struct arena *a, const redisReply *x, const char ***out,
                                   size_t *out_n, struct app_err *err)
{
  const char **m = NULL;
  size_t i;
  *out = NULL;
  *out_n = 0;
  if (redis_reply_classify(x) != RREPLY_OK)
    return redis_reply_error(x, err, "redis read of a set");
  if (x->type != REDIS_REPLY_ARRAY)
    return app_err_set(err, APP_ERR_REDIS, "redis read: an index key is not a set");
  if (x->elements && !(m = arena_alloc(a, x->elements * sizeof *m)))
    return arena_full(err);
  for (i = 0; i < x->elements; i++) {
    if (x->element[i]->type != REDIS_REPLY_STRING)
      return app_err_set(err, APP_ERR_REDIS, "redis read: an index member is not a string");
    if (!(m[i] = arena_strndup(a, x->element[i]->str, x->element[i]->len)))
      return arena_full(err);
  }
  *out = m;
  *out_n = x->elements;
  return APP_OK;
}

enum app_result redis_read_record_sets(struct redis_mux *mux, const char *prefix, struct arena *a,
                                       const char *table, const char *id,
                                       const char *const *set_keys, size_t nsets, size_t max,
                                       int64_t deadline_ms, struct redis_record *out,
                                       const char ***members, size_t *nmembers, struct app_err *err)
{
  struct buf cmds, key;
  redisReply **replies = NULL;
  size_t i, nread = 0;
  enum app_result r;

  APP_RETURN_IF_FAILED(check_names(table, id, err));
  buf_init(&cmds, 0);
  buf_init(&key, 0);
  r = redis_sink_record_key(&key, prefix, table, id);
  if (r == APP_OK)
    r = redis_cmd_begin(&cmds, 2);
  if (r == APP_OK)
    r = redis_cmd_arg(&cmds, "HGETALL", 7);
  if (r == APP_OK)
    r = redis_cmd_arg(&cmds, key.data, key.len);
  for (i = 0; i < nsets && r == APP_OK; i++) {
    r = redis_cmd_begin(&cmds, 3);
    if (r == APP_OK)
      r = redis_cmd_arg(&cmds, "SRANDMEMBER", 11);
    if (r == APP_OK)
      r = redis_cmd_arg(&cmds, set_keys[i], strlen(set_keys[i]));
    if (r == APP_OK)
      r = redis_cmd_arg_i64(&cmds, (int64_t)max);
  }
  if (r != APP_OK) {
    r = app_err_set(err, r, "redis read: cannot build the request");
    goto out;
  }
  replies = calloc(nsets + 1, sizeof *replies);
  if (!replies) {
    r = app_err_set(err, APP_ERR_NOMEM, "redis read: no memory for replies");
    goto out;
  }
  r = roundtrip(mux, &cmds, nsets + 1, deadline_ms, replies, &nread, err);
  if (r == APP_OK) {
    const char *t = arena_strndup(a, table, strlen(table));
    const char *d = arena_strndup(a, id, strlen(id));
    r = t && d ? decode_record(a, t, d, replies[0], out, err) : arena_full(err);
  }
  for (i = 0; r == APP_OK && i < nsets; i++)
    r = set_members(a, replies[i + 1], &members[i], &nmembers[i], err);
out:
  if (replies)
    free_replies(replies, nread);
  free(replies);
  buf_cleanup(&cmds);
  buf_cleanup(&key);
  return r;
}

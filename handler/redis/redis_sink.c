/* redis_sink.c - pipelined, version-guarded writes with retry. */
#include "redis/redis_sink.h"

#include "map/altkey.h"

#include "common/log.h"
#include "redis/redis_entra.h"

#include "redis/redis_cluster.h"
#include "redis/redis_lua.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SINK_BACKOFF_MAX_MS     5000
#define SINK_MAX_PIPELINE_BYTES ((size_t)512 * 1024 * 1024)

struct redis_sink {
  struct redis_pool *pool;
  struct redis_cluster *cluster; /* routes by hash slot when the server is a cluster */
  char *prefix;
  char *poison_stream;
  int poison_maxlen;
  int tombstone_ttl_s;
  int retry_initial_ms;
  int retry_budget_ms;
  int sync_timeout_ms;
  int connect_timeout_ms;
  char sha[41];
};

struct redis_pool *redis_sink_pool(struct redis_sink *s)
{
  return s->pool;
}

const char *redis_sink_prefix(const struct redis_sink *s)
{
  return s->prefix;
}

const char *redis_sink_script_sha(const struct redis_sink *s)
{
  return s->sha;
}

const char *redis_sink_script(void)
{
  return redis_lua_apply;
}

bool redis_sink_name_ok(const char *s, bool dash)
{
  size_t i;
  if (!s || !*s)
    return false;
  for (i = 0; s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (dash ? c == '-' : c == '_');
    if (!ok || i >= 128)
      return false;
  }
  return true;
}

enum app_result redis_sink_record_key(struct buf *b, const char *prefix, const char *table,
                                      const char *id)
{
  return buf_printf(b, "%s:{%s:%s}", prefix, table, id);
}

enum app_result redis_sink_rel_key(struct buf *b, const char *prefix, const char *table,
                                   const char *id, const char *relationship)
{
  return buf_printf(b, "%s:{%s:%s}:rel:%s", prefix, table, id, relationship);
}

static void sha1_hex(const char *data, size_t n, char out[41])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0, i;
  static const char hex[] = "0123456789abcdef";
  EVP_Digest(data, n, md, &len, EVP_sha1(), NULL);
  for (i = 0; i < len && i < 20; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[40] = '\0';
}

enum app_result redis_sink_create(const struct app_config *cfg, struct redis_sink **out,
                                  struct app_err *err)
{
  struct redis_sink *s = NULL;
  struct redis_conninfo ci;
  struct buf setup, desc;
  enum app_result r;

  *out = NULL;
  buf_init(&setup, 0);
  buf_init(&desc, 4096);
  r = redis_conninfo_from_config(cfg, &ci, err);
  if (r != APP_OK) {
    redis_conninfo_cleanup(&ci);
    goto out;
  }
  if (!cfg->key_prefix || !*cfg->key_prefix || strchr(cfg->key_prefix, '{') ||
      strchr(cfg->key_prefix, '}') || strchr(cfg->key_prefix, ' ')) {
    r = app_err_set(err, APP_ERR_CONFIG,
                    "setting CDC_KEY_PREFIX: '%s' must be non-empty without '{', '}' or spaces",
                    cfg->key_prefix ? cfg->key_prefix : "");
    redis_conninfo_cleanup(&ci);
    goto out;
  }
  if (ci.warnings[0])
    LOG_WARN("RedisConnection: %s", ci.warnings);
  if (redis_conninfo_redacted(&ci, &desc) == APP_OK)
    LOG_INFO("redis sink: %s, pool %d, key prefix '%s'", desc.data, cfg->redis_pool,
             cfg->key_prefix);

  s = xcalloc(1, sizeof *s);
  s->prefix = xstrdup(cfg->key_prefix);
  s->poison_stream =
      xstrdup(cfg->poison_stream && *cfg->poison_stream ? cfg->poison_stream : "d365:poison");
  s->poison_maxlen = cfg->poison_maxlen > 0 ? cfg->poison_maxlen : 10000;
  s->tombstone_ttl_s = cfg->tombstone_ttl_s > 0 ? cfg->tombstone_ttl_s : 0; /* 0: kept */
  s->retry_initial_ms = cfg->retry_initial_ms > 0 ? cfg->retry_initial_ms : 100;
  s->retry_budget_ms = cfg->retry_budget_ms >= 0 ? cfg->retry_budget_ms : 30000;
  s->sync_timeout_ms = ci.sync_timeout_ms;
  s->connect_timeout_ms = ci.connect_timeout_ms;
  sha1_hex(redis_lua_apply, sizeof redis_lua_apply - 1, s->sha);
  {
    const char *argv[] = {"SCRIPT", "LOAD", redis_lua_apply};
    size_t lens[] = {6, 4, sizeof redis_lua_apply - 1};
    r = redis_cmd_argv(&setup, 3, argv, lens);
    if (r != APP_OK) {
      r = app_err_set(err, r, "redis sink: cannot build SCRIPT LOAD");
      redis_conninfo_cleanup(&ci);
      goto out;
    }
  }
  r = redis_pool_create(&ci, (size_t)(cfg->redis_pool > 0 ? cfg->redis_pool : 1), setup.data,
                        setup.len, 1, &s->pool, err);
  if (r != APP_OK)
    goto out;
  r = redis_cluster_create(s->pool, (enum redis_cluster_mode)cfg->redis_cluster,
                           (size_t)(cfg->redis_pool > 0 ? cfg->redis_pool : 1), setup.data,
                           setup.len, 1, &s->cluster, err);
  if (r != APP_OK)
    goto out;
  redis_cluster_set_wait(s->cluster, cfg->redis_wait_replicas, s->sync_timeout_ms / 2);
  redis_pool_set_cluster(s->pool, s->cluster);
  *out = s;
  s = NULL;
out:
  buf_cleanup(&setup);
  buf_cleanup(&desc);
  redis_sink_destroy(s);
  return r;
}

void redis_sink_destroy(struct redis_sink *s)
{
  if (!s)
    return;
  if (s->cluster) {
    struct redis_cluster_stats cs;
    redis_cluster_get_stats(s->cluster, &cs);
    if (cs.exchanges)
      LOG_INFO("redis cluster (writes): %zu nodes, %zu batches in %zu node round trips, %zu "
               "topology reads, %zu MOVED, %zu ASK, %zu NOSCRIPT",
               cs.nodes, cs.exchanges, cs.node_exchanges, cs.refreshes, cs.moved, cs.ask,
               cs.noscript);
  }
  redis_cluster_destroy(s->cluster);
  redis_pool_destroy(s->pool);
  free(s->prefix);
  free(s->poison_stream);
  free(s);
}

/* ---- building the pipeline ---- */

/* CMD_SCRIPT: a document's write (counted as applied/stale); CMD_MARK: the
 * re-read marker added for a change of uncertain order or a tie (not
 * counted); CMD_ZADD: the record in <prefix>:reread; CMD_XADD: poison;
 * CMD_AKEY: the record in an alternate key's index set (altkey.h). */
enum cmd_kind { CMD_SCRIPT, CMD_MARK, CMD_ZADD, CMD_XADD, CMD_AKEY };

struct cmd {
  size_t off, len; /* bytes in the prepared pipeline */
  size_t item;     /* document or poison index */
  enum cmd_kind kind;
  bool done;     /* reply seen and accepted */
  bool noscript; /* last reply was NOSCRIPT */
  long long result;
};

struct plan {
  struct buf all; /* every command, prepared once */
  struct cmd *cmds;
  size_t ncmds;
  size_t cap; /* room in cmds */
};

/* Commands document d needs: one script call, plus one per related record
 * (the other direction of a relationship), or two for a re-read marker. */
static size_t doc_ncmds(const struct doc *d)
{
  if (d->needs_reread)
    return 2;
  /* a change of uncertain order also marks its record for a re-read */
  if (d->op == CDC_OP_ASSOCIATE || d->op == CDC_OP_DISASSOCIATE)
    return 1 + d->nrelated + (d->order_uncertain ? 2 : 0);
  return 1 + (d->order_uncertain ? 2 : 0) + (d->op == CDC_OP_DELETE ? 0 : d->naltkeys);
}

/* Room for k more commands. */
static bool plan_reserve(struct plan *p, size_t k)
{
  struct cmd *c;
  size_t cap;
  if (p->ncmds + k <= p->cap)
    return true;
  cap = p->cap ? p->cap * 2 : 64;
  while (cap < p->ncmds + k)
    cap *= 2;
  c = realloc(p->cmds, cap * sizeof *c);
  if (!c)
    return false;
  memset(c + p->cap, 0, (cap - p->cap) * sizeof *c);
  p->cmds = c;
  p->cap = cap;
  return true;
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool version_ok(const char *v)
{
  size_t i;
  for (i = 0; i < CDC_VERSION_TEXT_LEN; i++)
    if (v[i] < '0' || v[i] > '9')
      return false;
  return v[CDC_VERSION_TEXT_LEN] == '\0';
}

static enum app_result check_doc(const struct doc *d, size_t i, struct app_err *err)
{
  size_t k;
  if ((d->op == CDC_OP_ASSOCIATE || d->op == CDC_OP_DISASSOCIATE) && !d->needs_reread &&
      d->nrelated == 0)
    return app_err_set(err, APP_ERR_INPUT,
                       "redis sink: document %zu (%s %s): %s of %s with no related records "
                       "(RelatedEntities is empty)",
                       i, d->table ? d->table : "(null)", d->id ? d->id : "(null)",
                       cdc_op_name(d->op), d->relationship ? d->relationship : "(null)");
  if (!redis_sink_name_ok(d->table, false))
    return app_err_set(err, APP_ERR_INPUT,
                       "redis sink: document %zu: table '%.64s' is not a logical name "
                       "([A-Za-z0-9_], at most 128 bytes)",
                       i, d->table ? d->table : "(null)");
  if (!redis_sink_name_ok(d->id, true))
    return app_err_set(err, APP_ERR_INPUT,
                       "redis sink: document %zu (%s): id '%.64s' is not a GUID-like id", i,
                       d->table, d->id ? d->id : "(null)");
  if (d->op == CDC_OP_ASSOCIATE || d->op == CDC_OP_DISASSOCIATE) {
    if (!d->needs_reread && !redis_sink_name_ok(d->relationship, false))
      return app_err_set(err, APP_ERR_INPUT,
                         "redis sink: document %zu (%s %s): relationship name '%.64s' is not "
                         "valid",
                         i, d->table, d->id, d->relationship ? d->relationship : "(null)");
    for (k = 0; k < d->nrelated && !d->needs_reread; k++)
      if (!redis_sink_name_ok(d->related[k].table, false) ||
          !redis_sink_name_ok(d->related[k].id, true))
        return app_err_set(err, APP_ERR_INPUT,
                           "redis sink: document %zu (%s %s): related record %zu (%.64s %.64s) "
                           "has a bad table or id",
                           i, d->table, d->id, k, d->related[k].table ? d->related[k].table : "",
                           d->related[k].id ? d->related[k].id : "");
  }
  for (k = 0; k < d->nprops; k++)
    if (!d->props[k].name || !*d->props[k].name || !d->props[k].json || !d->props[k].json_len)
      return app_err_set(err, APP_ERR_INPUT,
                         "redis sink: document %zu (%s %s): property %zu has no name or value", i,
                         d->table, d->id, k);
  return APP_OK;
}

enum app_result redis_sink_check_doc(const struct doc *d, struct app_err *err)
{
  return check_doc(d, 0, err);
}

/* EVALSHA sha 1 key mode ver op ttl a5 a6 */
static enum app_result script_head(struct buf *b, const struct redis_sink *s, size_t nextra,
                                   const char *key, size_t keylen, const char *mode,
                                   const char *ver, int64_t op_ms, int64_t ttl, const char *a5,
                                   const char *a6)
{
  APP_RETURN_IF_FAILED(redis_cmd_begin(b, 10 + nextra));
  APP_RETURN_IF_FAILED(redis_cmd_arg(b, "EVALSHA", 7));
  APP_RETURN_IF_FAILED(redis_cmd_arg(b, s->sha, 40));
  APP_RETURN_IF_FAILED(redis_cmd_arg(b, "1", 1));
  APP_RETURN_IF_FAILED(redis_cmd_arg(b, key, keylen));
  APP_RETURN_IF_FAILED(redis_cmd_arg_str(b, mode));
  APP_RETURN_IF_FAILED(redis_cmd_arg(b, ver, CDC_VERSION_TEXT_LEN));
  APP_RETURN_IF_FAILED(redis_cmd_arg_i64(b, op_ms));
  APP_RETURN_IF_FAILED(redis_cmd_arg_i64(b, ttl));
  APP_RETURN_IF_FAILED(redis_cmd_arg_str(b, a5));
  return redis_cmd_arg_str(b, a6);
}

static enum app_result add_cmd(struct plan *p, size_t start, size_t item, enum cmd_kind kind)
{
  struct cmd *c = &p->cmds[p->ncmds++];
  c->off = start;
  c->len = p->all.len - start;
  c->item = item;
  c->kind = kind;
  return APP_OK;
}

/* The re-read marker of d's record: the script in mode 'r' on the record,
 * and the record in <prefix>:reread. */
static enum app_result plan_reread(struct plan *p, const struct redis_sink *s, const struct doc *d,
                                   const char *ver, size_t i, struct buf *key, struct buf *tmp,
                                   enum cmd_kind kind)
{
  struct buf *b = &p->all;
  size_t start = b->len;
  int64_t ttl = d->ttl_seconds > 0 ? d->ttl_seconds : 0;
  buf_reset(key);
  APP_RETURN_IF_FAILED(redis_sink_record_key(key, s->prefix, d->table, d->id));
  {
    APP_RETURN_IF_FAILED(
        script_head(b, s, 0, key->data, key->len, "r", ver, d->op_time_ms, ttl, "", ""));
    APP_RETURN_IF_FAILED(add_cmd(p, start, i, kind));
    /* the ops to-do list lives outside the record's slot: a separate
     * command in the same pipeline. NX (Redis 3.0.2; GT is 6.2): the
     * score is the op time of the oldest change that asked for a re-read
     * since the entry was made, so a redelivery does not move it */
    start = b->len;
    buf_reset(tmp);
    APP_RETURN_IF_FAILED(buf_printf(tmp, "%s:%s", d->table, d->id));
    APP_RETURN_IF_FAILED(redis_cmd_begin(b, 5));
    APP_RETURN_IF_FAILED(redis_cmd_arg(b, "ZADD", 4));
    {
      char zkey[300];
      int n = snprintf(zkey, sizeof zkey, "%s:reread", s->prefix);
      APP_RETURN_IF_FAILED(redis_cmd_arg(b, zkey, (size_t)n));
    }
    APP_RETURN_IF_FAILED(redis_cmd_arg(b, "NX", 2));
    APP_RETURN_IF_FAILED(redis_cmd_arg_i64(b, d->op_time_ms));
    APP_RETURN_IF_FAILED(redis_cmd_arg(b, tmp->data, tmp->len));
    return add_cmd(p, start, i, CMD_ZADD);
  }
}

static enum app_result plan_doc_main(struct plan *p, const struct redis_sink *s,
                                     const struct doc *d, const char *ver, size_t i,
                                     struct buf *key, struct buf *tmp)
{
  struct buf *b = &p->all;
  size_t start = b->len, k;
  int64_t ttl = d->ttl_seconds > 0 ? d->ttl_seconds : 0;

  buf_reset(key);
  APP_RETURN_IF_FAILED(redis_sink_record_key(key, s->prefix, d->table, d->id));
  if (d->needs_reread)
    return plan_reread(p, s, d, ver, i, key, tmp, CMD_SCRIPT);
  switch (d->op) {
  case CDC_OP_DELETE: {
    char tomb[24];
    snprintf(tomb, sizeof tomb, "%d", s->tombstone_ttl_s);
    APP_RETURN_IF_FAILED(
        script_head(b, s, 0, key->data, key->len, "d", ver, d->op_time_ms, ttl, tomb, ""));
    return add_cmd(p, start, i, CMD_SCRIPT);
  }
  case CDC_OP_ASSOCIATE:
  case CDC_OP_DISASSOCIATE: {
    const char *mode = d->op == CDC_OP_ASSOCIATE ? "a" : "x";
    char now[24], before[24];
    int64_t w = wall_ms();
    snprintf(now, sizeof now, "%015lld", (long long)w);
    /* disassociations are tombstones too: kept without a TTL */
    snprintf(before, sizeof before, "%lld",
             s->tombstone_ttl_s > 0 ? (long long)(w - (int64_t)s->tombstone_ttl_s * 1000) : 0LL);
    /* this record's set lists every related record */
    buf_reset(key);
    APP_RETURN_IF_FAILED(redis_sink_rel_key(key, s->prefix, d->table, d->id, d->relationship));
    APP_RETURN_IF_FAILED(script_head(b, s, 2 * d->nrelated, key->data, key->len, mode, ver,
                                     d->op_time_ms, ttl, now, before));
    for (k = 0; k < d->nrelated; k++) {
      const struct doc_related *rel = &d->related[k];
      buf_reset(tmp);
      APP_RETURN_IF_FAILED(buf_printf(tmp, "%s:%s", rel->table, rel->id));
      APP_RETURN_IF_FAILED(redis_cmd_arg(b, tmp->data, tmp->len));
      APP_RETURN_IF_FAILED(redis_cmd_arg_str(b, rel->entity_set ? rel->entity_set : ""));
    }
    APP_RETURN_IF_FAILED(add_cmd(p, start, i, CMD_SCRIPT));
    /* each related record's set lists this one: other slots, other calls */
    for (k = 0; k < d->nrelated; k++) {
      const struct doc_related *rel = &d->related[k];
      start = b->len;
      buf_reset(key);
      APP_RETURN_IF_FAILED(
          redis_sink_rel_key(key, s->prefix, rel->table, rel->id, d->relationship));
      APP_RETURN_IF_FAILED(
          script_head(b, s, 2, key->data, key->len, mode, ver, d->op_time_ms, ttl, now, before));
      buf_reset(tmp);
      APP_RETURN_IF_FAILED(buf_printf(tmp, "%s:%s", d->table, d->id));
      APP_RETURN_IF_FAILED(redis_cmd_arg(b, tmp->data, tmp->len));
      APP_RETURN_IF_FAILED(redis_cmd_arg_str(b, d->entity_set ? d->entity_set : ""));
      APP_RETURN_IF_FAILED(add_cmd(p, start, i, CMD_SCRIPT));
    }
    return APP_OK;
  }
  default:
    APP_RETURN_IF_FAILED(script_head(b, s, 2 * d->nprops, key->data, key->len, "u", ver,
                                     d->op_time_ms, ttl, d->full_row ? "1" : "0", ""));
    for (k = 0; k < d->nprops; k++) {
      const struct doc_prop *pr = &d->props[k];
      size_t a, n;
      /* the hash field and its value ready-made ('p:<prop>', then version,
       * annotations length, ':', annotations, value; redis_lua.h): the
       * script builds no strings */
      buf_reset(tmp);
      APP_RETURN_IF_FAILED(buf_append(tmp, "p:", 2));
      APP_RETURN_IF_FAILED(buf_append_str(tmp, pr->name));
      APP_RETURN_IF_FAILED(redis_cmd_arg(b, tmp->data, tmp->len));
      /* the annotations go first into tmp[0..n) to learn their length,
       * then the value is built after them and sent from tmp + n */
      buf_reset(tmp);
      if (pr->nann) {
        APP_RETURN_IF_FAILED(buf_append_char(tmp, '{'));
        for (a = 0; a < pr->nann; a++) {
          if (a)
            APP_RETURN_IF_FAILED(buf_append_char(tmp, ','));
          APP_RETURN_IF_FAILED(buf_append_json_str(tmp, pr->ann[a].name, strlen(pr->ann[a].name)));
          APP_RETURN_IF_FAILED(buf_append_char(tmp, ':'));
          APP_RETURN_IF_FAILED(buf_append(tmp, pr->ann[a].json, pr->ann[a].json_len));
        }
        APP_RETURN_IF_FAILED(buf_append_char(tmp, '}'));
      }
      n = tmp->len;
      /* room for all of it first: copying tmp[0..n) onto its own end
       * must not move the storage */
      APP_RETURN_IF_FAILED(buf_reserve(tmp, CDC_VERSION_TEXT_LEN + 21 + n + pr->json_len));
      APP_RETURN_IF_FAILED(buf_append(tmp, ver, CDC_VERSION_TEXT_LEN));
      APP_RETURN_IF_FAILED(buf_append_u64(tmp, (uint64_t)n));
      APP_RETURN_IF_FAILED(buf_append_char(tmp, ':'));
      if (n)
        APP_RETURN_IF_FAILED(buf_append(tmp, tmp->data, n));
      APP_RETURN_IF_FAILED(buf_append(tmp, pr->json, pr->json_len));
      APP_RETURN_IF_FAILED(redis_cmd_arg(b, tmp->data + n, tmp->len - n));
    }
    return add_cmd(p, start, i, CMD_SCRIPT);
  }
}

/* Alternate keys (issue 14): for each key the mapping declares whose first
 * column this change writes, SADD the record's id to the index set of that
 * value. A separate single-key command in the same pipeline, like the
 * re-read ZADD: the index is in another hash slot than the record (Redis
 * Cluster), and SADD is idempotent and order-free, so duplicated and
 * shuffled deliveries leave the same set. The set may also hold ids of
 * records that held the value once (a key that moved, a stale change, a
 * deleted record): the read API checks every candidate against the record
 * itself, so an entry never answers for the wrong record. */
static enum app_result plan_altkeys(struct plan *p, const struct redis_sink *s, const struct doc *d,
                                    size_t i, struct buf *key, struct buf *tmp)
{
  size_t k, j;
  if (d->needs_reread || d->op == CDC_OP_DELETE || d->op == CDC_OP_ASSOCIATE ||
      d->op == CDC_OP_DISASSOCIATE)
    return APP_OK;
  for (k = 0; k < d->naltkeys; k++) {
    const struct doc_altkey *ak = &d->altkeys[k];
    for (j = 0; j < d->nprops; j++) {
      bool ok = false;
      size_t start;
      if (strcmp(d->props[j].name, ak->props[0]) != 0 &&
          !(ak->is_index && d->props[j].column && !strcmp(d->props[j].column, ak->props[0])))
        continue;
      buf_reset(tmp);
      APP_RETURN_IF_FAILED(altkey_canon_prop(&d->props[j], tmp, &ok));
      if (!ok)
        break;
      buf_reset(key);
      APP_RETURN_IF_FAILED(altkey_set_key(key, s->prefix, d->table, ak, tmp->data, tmp->len));
      start = p->all.len;
      APP_RETURN_IF_FAILED(redis_cmd_begin(&p->all, 3));
      APP_RETURN_IF_FAILED(redis_cmd_arg(&p->all, "SADD", 4));
      APP_RETURN_IF_FAILED(redis_cmd_arg(&p->all, key->data, key->len));
      APP_RETURN_IF_FAILED(redis_cmd_arg_str(&p->all, d->id));
      APP_RETURN_IF_FAILED(add_cmd(p, start, i, CMD_AKEY));
      break;
    }
  }
  return APP_OK;
}

static enum app_result plan_doc(struct plan *p, const struct redis_sink *s, const struct doc *d,
                                const char *ver, size_t i, struct buf *key, struct buf *tmp)
{
  APP_RETURN_IF_FAILED(plan_doc_main(p, s, d, ver, i, key, tmp));
  APP_RETURN_IF_FAILED(plan_altkeys(p, s, d, i, key, tmp));
  if (d->order_uncertain && !d->needs_reread)
    return plan_reread(p, s, d, ver, i, key, tmp, CMD_MARK);
  return APP_OK;
}

static enum app_result plan_poison(struct plan *p, const struct redis_sink *s,
                                   const struct sink_batch *batch, size_t i)
{
  const struct sink_poison *x = &batch->poison[i];
  struct buf *b = &p->all;
  size_t start = b->len;
  char maxlen[24], dc[24], enq[24];
  snprintf(maxlen, sizeof maxlen, "%d", s->poison_maxlen);
  snprintf(dc, sizeof dc, "%d", x->delivery_count);
  snprintf(enq, sizeof enq, "%lld", (long long)x->enqueued_ms);
  {
    const char *argv[] = {"XADD",           s->poison_stream,
                          "MAXLEN",         "~",
                          maxlen,           "*",
                          "reason",         x->reason ? x->reason : "",
                          "message_id",     x->message_id ? x->message_id : "",
                          "function",       batch->function ? batch->function : "",
                          "invocation_id",  batch->invocation_id ? batch->invocation_id : "",
                          "delivery_count", dc,
                          "enqueued_ms",    enq,
                          "content_type",   x->content_type ? x->content_type : "",
                          "body",           x->body ? x->body : ""};
    size_t lens[sizeof argv / sizeof argv[0]];
    size_t k, n = sizeof argv / sizeof argv[0];
    for (k = 0; k < n; k++)
      lens[k] = strlen(argv[k]);
    lens[n - 1] = x->body ? x->body_len : 0; /* binary-safe */
    APP_RETURN_IF_FAILED(redis_cmd_argv(b, n, argv, lens));
  }
  return add_cmd(p, start, i, CMD_XADD);
}

/* The commands of document i (checked already) at the end of the plan. */
static enum app_result plan_one(struct plan *p, const struct redis_sink *s, const struct doc *d,
                                size_t i, struct buf *key, struct buf *tmp, struct app_err *err)
{
  char ver[CDC_VERSION_TEXT_LEN + 1];
  enum app_result r;
  if (version_ok(d->version_text))
    memcpy(ver, d->version_text, sizeof ver);
  else
    cdc_version_text(&d->version, ver);
  r = plan_doc(p, s, d, ver, i, key, tmp);
  if (r != APP_OK)
    r = app_err_set(err, r, "redis sink: document %zu (%s %s): pipeline larger than %zu bytes", i,
                    d->table, d->id, p->all.max);
  return r;
}

static enum app_result plan_poisons(struct plan *p, const struct redis_sink *s,
                                    const struct sink_batch *batch, struct app_err *err)
{
  size_t i;
  enum app_result r = APP_OK;
  for (i = 0; i < batch->npoison && r == APP_OK; i++) {
    r = plan_poison(p, s, batch, i);
    if (r != APP_OK)
      r = app_err_set(err, r, "redis sink: poison record %zu: pipeline too large", i);
  }
  return r;
}

static enum app_result plan_build(struct plan *p, const struct redis_sink *s,
                                  const struct sink_batch *batch, struct app_err *err)
{
  size_t i, n = batch->npoison;
  struct buf key, tmp;
  enum app_result r = APP_OK;

  for (i = 0; i < batch->ndocs; i++) {
    const struct doc *d = batch->docs[i];
    APP_RETURN_IF_FAILED(check_doc(d, i, err));
    n += doc_ncmds(d);
  }
  p->cmds = calloc(n ? n : 1, sizeof *p->cmds);
  if (!p->cmds)
    return app_err_set(err, APP_ERR_NOMEM, "redis sink: no memory for %zu commands", n);
  p->cap = n ? n : 1;
  buf_init(&key, 4096);
  buf_init(&tmp, 0);
  for (i = 0; i < batch->ndocs && r == APP_OK; i++)
    r = plan_one(p, s, batch->docs[i], i, &key, &tmp, err);
  if (r == APP_OK)
    r = plan_poisons(p, s, batch, err);
  buf_cleanup(&key);
  buf_cleanup(&tmp);
  return r;
}

enum app_result redis_sink_doc_commands(const struct redis_sink *s, const struct doc *d,
                                        struct buf *out, struct app_err *err)
{
  const struct doc *docs[1];
  struct sink_batch batch;
  struct plan p;
  enum app_result r;

  docs[0] = d;
  memset(&batch, 0, sizeof batch);
  batch.docs = docs;
  batch.ndocs = 1;
  memset(&p, 0, sizeof p);
  buf_init(&p.all, SINK_MAX_PIPELINE_BYTES);
  r = plan_build(&p, s, &batch, err);
  if (r == APP_OK && buf_append(out, p.all.data ? p.all.data : "", p.all.len) != APP_OK)
    r = app_err_set(err, APP_ERR_LIMIT, "redis sink: commands larger than the output buffer");
  free(p.cmds);
  buf_cleanup(&p.all);
  return r;
}

/* ---- one attempt ---- */

struct attempt {
  enum app_result r; /* first failure of this attempt */
  struct app_err err;
  bool permanent;
  bool reconnect; /* READONLY: drop the idle connections too */
};

static void attempt_fail(struct attempt *a, enum app_result r, const struct app_err *e,
                         bool permanent)
{
  if (a->r != APP_OK && !permanent)
    return; /* keep the first failure, unless this one is worse */
  if (a->permanent)
    return;
  a->r = r;
  if (e)
    a->err = *e;
  a->permanent = permanent;
}

static const char *cmd_what(const struct cmd *c)
{
  return c->kind == CMD_XADD   ? "poison record"
         : c->kind == CMD_ZADD ? "re-read list"
         : c->kind == CMD_AKEY ? "alternate-key index"
         : c->kind == CMD_MARK ? "re-read marker"
                               : "write";
}

/* Is an error reply to a document's script the document's own fault, so
 * that retrying or redelivering can never help and the rest of the batch
 * must not wait for it: WRONGTYPE (its key holds something else), or an
 * error the apply script raised for its input. Everything else (syntax
 * errors of a server too old, NOPERM, MOVED, CROSSSLOT, ...) is the
 * store's and fails the batch. */
static bool message_fault(const redisReply *x)
{
  const char *s = x && x->type == REDIS_REPLY_ERROR && x->str ? x->str : "";
  return !strncmp(s, "WRONGTYPE", 9) || strstr(s, "user_script") != NULL ||
         strstr(s, "Error running script") != NULL;
}

/* Check the replies of cmds[idx[0..n)]. */
static void take_replies(struct cmd *cmds, const size_t *idx, size_t n, redisReply **replies,
                         size_t nread, const struct sink_batch *batch, struct attempt *a)
{
  size_t j;
  for (j = 0; j < nread && j < n; j++) {
    struct cmd *c = &cmds[idx[j]];
    redisReply *x = replies[j];
    enum redis_reply_class k = redis_reply_classify(x);
    struct app_err e;
    const struct doc *d = c->kind == CMD_XADD ? NULL : batch->docs[c->item];
    c->noscript = false;
    if (k == RREPLY_OK) {
      if ((c->kind == CMD_SCRIPT || c->kind == CMD_MARK) && x->type != REDIS_REPLY_INTEGER) {
        app_err_set(&e, APP_ERR_REDIS, "redis: unexpected reply type %d to the apply script",
                    x->type);
        attempt_fail(a, APP_ERR_REDIS, &e, true);
        continue;
      }
      c->done = true;
      c->result = x->type == REDIS_REPLY_INTEGER ? x->integer : 0;
      continue;
    }
    if (k == RREPLY_NOSCRIPT) {
      c->noscript = true;
      continue;
    }
    if (k == RREPLY_FATAL && d && batch->refused && c->kind != CMD_ZADD && c->kind != CMD_AKEY &&
        message_fault(x)) {
      struct sink_refusal *f = &batch->refused[c->item];
      if (!f->refused)
        snprintf(f->reason, sizeof f->reason, "redis %s of %s %s (%s): %.*s", cmd_what(c), d->table,
                 d->id, cdc_op_name(d->op), (int)(x->len > 160 ? 160 : x->len),
                 x->str ? x->str : "");
      f->refused = true;
      c->done = true; /* its message becomes poison; the batch goes on */
      c->result = 0;
      continue;
    }
    if (d)
      redis_reply_error(x, &e, "redis %s of %s %s (%s)", cmd_what(c), d->table, d->id,
                        cdc_op_name(d->op));
    else
      redis_reply_error(x, &e, "redis %s %zu", cmd_what(c), c->item);
    if (k == RREPLY_RETRY_RECONNECT)
      a->reconnect = true;
    attempt_fail(a, APP_ERR_REDIS, &e, k == RREPLY_FATAL);
  }
}

static enum app_result exchange(struct redis_conn *conn, struct plan *p, const size_t *idx,
                                size_t n, const char *prefix, size_t prefix_len, size_t nprefix,
                                int64_t deadline, redisReply **replies, struct buf *out,
                                size_t *out_nread, struct app_err *err)
{
  size_t j;
  buf_reset(out);
  if (prefix_len)
    APP_RETURN_IF_FAILED(buf_append(out, prefix, prefix_len));
  if (!nprefix && n == p->ncmds) {
    /* the common case: everything, as prepared */
    return redis_conn_exchange(conn, p->all.data, p->all.len, n, replies, out_nread, deadline, err);
  }
  for (j = 0; j < n; j++) {
    enum app_result r = buf_append(out, p->all.data + p->cmds[idx[j]].off, p->cmds[idx[j]].len);
    if (r != APP_OK)
      return app_err_set(err, r, "redis sink: pipeline too large");
  }
  return redis_conn_exchange(conn, out->data, out->len, n + nprefix, replies, out_nread, deadline,
                             err);
}

static void free_replies(redisReply **replies, size_t n)
{
  size_t j;
  for (j = 0; j < n; j++) {
    freeReplyObject(replies[j]);
    replies[j] = NULL;
  }
}

static bool conn_error_permanent(enum app_result r)
{
  return r == APP_ERR_TLS || r == APP_ERR_CONFIG || r == APP_ERR_LIMIT || r == APP_ERR_NOMEM;
}

/* An attempt on a Redis Cluster: cmds[idx[0..n)] split by node, written to
 * every node at once, redirections followed (redis_cluster.h); a command
 * whose node failed stays not done, so the next attempt resends only
 * those. */
static void run_attempt_cluster(struct redis_sink *s, struct plan *p,
                                const struct sink_batch *batch, const size_t *idx, size_t n,
                                redisReply **replies, struct sink_stats *st, struct attempt *a)
{
  struct rcl_cmd *v = calloc(n ? n : 1, sizeof *v);
  struct rcl_exchange_stats cst;
  struct app_err e;
  enum app_result r;
  size_t j;

  if (!v) {
    app_err_set(&e, APP_ERR_NOMEM, "redis sink: no memory for %zu commands", n);
    attempt_fail(a, APP_ERR_NOMEM, &e, true);
    return;
  }
  for (j = 0; j < n; j++) {
    v[j].p = p->all.data + p->cmds[idx[j]].off;
    v[j].len = p->cmds[idx[j]].len;
    v[j].slot = RCL_SLOT_COMPUTE;
    replies[j] = NULL;
  }
  r = redis_cluster_exchangev(s->cluster, v, n, replies,
                              sink_now_ms() + s->connect_timeout_ms +
                                  redis_sink_pipeline_timeout_ms(s->sync_timeout_ms, p->all.len, n),
                              &cst, &e);
  st->round_trips += cst.node_exchanges;
  for (j = 0; j < n; j++) {
    if (!replies[j])
      continue;
    take_replies(p->cmds, &idx[j], 1, &replies[j], 1, batch, a);
    freeReplyObject(replies[j]);
    replies[j] = NULL;
    if (p->cmds[idx[j]].noscript) {
      app_err_set(&e, APP_ERR_REDIS, "redis cluster: NOSCRIPT after SCRIPT LOAD");
      attempt_fail(a, APP_ERR_REDIS, &e, false);
    }
  }
  if (r != APP_OK)
    attempt_fail(a, r, &e, conn_error_permanent(r));
  free(v);
}

int64_t redis_sink_pipeline_timeout_ms(int sync_timeout_ms, size_t bytes, size_t ncmds)
{
  return (int64_t)sync_timeout_ms + (int64_t)(bytes / 10000) + (int64_t)(ncmds / 10);
}

/* streamed: the connection on which the first sent bytes of the plan
 * were already written (redis_sink_stream_add), or NULL to borrow one. */
static void run_attempt(struct redis_sink *s, struct plan *p, const struct sink_batch *batch,
                        int64_t budget_deadline, size_t *idx, redisReply **replies, struct buf *out,
                        struct sink_stats *st, struct attempt *a, struct redis_conn *streamed,
                        size_t sent)
{
  struct redis_conn *conn = streamed;
  size_t n = 0, j, nread = 0;
  enum app_result r;
  struct app_err e;
  int64_t deadline = sink_now_ms() + s->connect_timeout_ms;

  for (j = 0; j < p->ncmds; j++)
    if (!p->cmds[j].done)
      idx[n++] = j;
  if (!conn && s->cluster && !redis_cluster_known_single(s->cluster)) {
    bool on = false;
    r = redis_cluster_active(s->cluster, deadline < budget_deadline ? deadline : budget_deadline,
                             &on, &e);
    if (r != APP_OK) {
      attempt_fail(a, r, &e, conn_error_permanent(r));
      return;
    }
    if (on) {
      run_attempt_cluster(s, p, batch, idx, n, replies, st, a);
      return;
    }
  }
  if (!conn) {
    /* waiting for a pooled slot or out the shared reconnect backoff (it
     * grows to 5 s) must not outlast the invocation's retry budget: the
     * attempt fails instead and the invocation answers non-2xx. A connect
     * that does start still gets its full connect timeout (redis_pool.h). */
    if (deadline > budget_deadline)
      deadline = budget_deadline;
    r = redis_pool_acquire(s->pool, deadline, &conn, &e);
    if (r != APP_OK) {
      attempt_fail(a, r, &e, conn_error_permanent(r));
      return;
    }
  }
  deadline = sink_now_ms() + redis_sink_pipeline_timeout_ms(s->sync_timeout_ms, p->all.len, n);
  st->round_trips++;
  if (streamed)
    r = redis_conn_exchange_rest(conn, p->all.data, p->all.len, sent, n, replies, &nread, deadline,
                                 &e);
  else
    r = exchange(conn, p, idx, n, NULL, 0, 0, deadline, replies, out, &nread, &e);
  take_replies(p->cmds, idx, n, replies, nread, batch, a);
  free_replies(replies, nread);
  if (r != APP_OK) {
    attempt_fail(a, r, &e, conn_error_permanent(r));
    goto out;
  }
  /* NOSCRIPT: the server lost the script (restart, failover, SCRIPT
   * FLUSH). Load it again and resend just those commands, in one more
   * round trip on the same connection. */
  n = 0;
  for (j = 0; j < p->ncmds; j++)
    if (p->cmds[j].noscript)
      idx[n++] = j;
  if (n) {
    struct buf load;
    const char *argv[] = {"SCRIPT", "LOAD", redis_lua_apply};
    size_t lens[] = {6, 4, sizeof redis_lua_apply - 1};
    buf_init(&load, 0);
    r = redis_cmd_argv(&load, 3, argv, lens);
    LOG_INFO("redis: server does not have the apply script (NOSCRIPT); loading it again");
    if (r == APP_OK) {
      st->round_trips++;
      r = exchange(conn, p, idx, n, load.data, load.len, 1, sink_now_ms() + s->sync_timeout_ms,
                   replies, out, &nread, &e);
    }
    buf_cleanup(&load);
    if (nread > 0 && redis_reply_classify(replies[0]) != RREPLY_OK) {
      redis_reply_error(replies[0], &e, "redis SCRIPT LOAD");
      attempt_fail(a, APP_ERR_REDIS, &e, redis_reply_classify(replies[0]) == RREPLY_FATAL);
    }
    if (nread > 1)
      take_replies(p->cmds, idx, n, replies + 1, nread - 1, batch, a);
    free_replies(replies, nread);
    if (r != APP_OK) {
      attempt_fail(a, r, &e, conn_error_permanent(r));
      goto out;
    }
    for (j = 0; j < n; j++)
      if (p->cmds[idx[j]].noscript) {
        app_err_set(&e, APP_ERR_REDIS, "redis: NOSCRIPT right after SCRIPT LOAD");
        attempt_fail(a, APP_ERR_REDIS, &e, false);
        break;
      }
  }
out:
  if (a->reconnect)
    redis_conn_mark_broken(conn);
  redis_pool_release(s->pool, conn);
  if (a->reconnect)
    redis_pool_drop_idle(s->pool);
}

/* per-thread xorshift for jitter: no locks, no shared state */
static uint64_t jitter_next(void)
{
  static _Thread_local uint64_t x;
  if (!x) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = (uint64_t)ts.tv_nsec ^ ((uint64_t)(uintptr_t)&x << 16) ^ 0x9e3779b97f4a7c15ull;
  }
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

/* What a caller sees: a connection that broke is a Redis failure; an
 * AUTH/SELECT refusal too (with the server's text). */
static enum app_result public_code(enum app_result r)
{
  return (r == APP_ERR_IO || r == APP_ERR_CONFIG) ? APP_ERR_REDIS : r;
}

static enum app_result apply_plan(struct redis_sink *s, struct plan *pp,
                                  struct redis_conn *streamed, size_t sent,
                                  const struct sink_batch *batch, enum app_result r,
                                  struct sink_stats *out_stats, struct app_err *err);

/* The documents whose write met a tie (state bit 4; not those of uncertain
 * order, which carried their marker already) get their record's re-read
 * marker, in one more round trip; counted in st->ties. */
static enum app_result mark_ties(struct redis_sink *s, const struct sink_batch *batch,
                                 const unsigned char *state, size_t nties, struct sink_stats *st,
                                 struct app_err *err)
{
  struct plan p;
  struct sink_batch b2;
  struct sink_stats st2;
  const struct doc **docs = calloc(nties, sizeof *docs);
  struct buf key, tmp;
  size_t i, k = 0;
  enum app_result r = APP_OK;

  if (!docs)
    return app_err_set(err, APP_ERR_NOMEM, "redis sink: no memory for %zu re-read markers", nties);
  memset(&p, 0, sizeof p);
  buf_init(&p.all, SINK_MAX_PIPELINE_BYTES);
  buf_init(&key, 4096);
  buf_init(&tmp, 0);
  for (i = 0; i < batch->ndocs; i++)
    if ((state[i] & 4) && !(batch->docs[i]->order_uncertain && !batch->docs[i]->needs_reread))
      docs[k++] = batch->docs[i];
  for (i = 0; i < k && r == APP_OK; i++) {
    char ver[CDC_VERSION_TEXT_LEN + 1];
    if (version_ok(docs[i]->version_text))
      memcpy(ver, docs[i]->version_text, sizeof ver);
    else
      cdc_version_text(&docs[i]->version, ver);
    if (!plan_reserve(&p, 2))
      r = app_err_set(err, APP_ERR_NOMEM, "redis sink: no memory for re-read markers");
    else if (plan_reread(&p, s, docs[i], ver, i, &key, &tmp, CMD_MARK) != APP_OK)
      r = app_err_set(err, APP_ERR_LIMIT, "redis sink: re-read markers: pipeline too large");
  }
  buf_cleanup(&key);
  buf_cleanup(&tmp);
  memset(&b2, 0, sizeof b2);
  b2.docs = docs;
  b2.ndocs = k;
  b2.function = batch->function;
  b2.invocation_id = batch->invocation_id;
  b2.deadline_ms = batch->deadline_ms;
  memset(&st2, 0, sizeof st2);
  r = apply_plan(s, &p, NULL, 0, &b2, r, &st2, err);
  st->round_trips += st2.round_trips;
  st->retries += st2.retries;
  if (r == APP_OK)
    st->ties += k;
  free(docs);
  return r;
}

/* Send the planned commands until every reply is seen, retrying as the
 * header says; count the results. Takes p (freed here). streamed/sent: the
 * first attempt goes on with that connection (redis_sink_stream_add wrote
 * the first sent bytes on it); NULL and 0 otherwise. r: the planning's
 * result (with err set); on failure nothing is sent. */
static enum app_result apply_plan(struct redis_sink *s, struct plan *pp,
                                  struct redis_conn *streamed, size_t sent,
                                  const struct sink_batch *batch, enum app_result r,
                                  struct sink_stats *out_stats, struct app_err *err)
{
  struct plan p = *pp;
  struct sink_stats st;
  size_t *idx = NULL;
  redisReply **replies = NULL;
  struct buf out;
  int64_t start = sink_now_ms(), deadline = batch->deadline_ms;
  int attempt_no = 0;
  int64_t delay = s->retry_initial_ms;
  size_t i, j;

  memset(&st, 0, sizeof st);
  buf_init(&out, SINK_MAX_PIPELINE_BYTES);
  if (deadline <= 0)
    deadline = start + s->retry_budget_ms;
  if (r != APP_OK)
    goto out;
  if (p.ncmds == 0)
    goto out;
  idx = calloc(p.ncmds, sizeof *idx);
  replies = calloc(p.ncmds + 1, sizeof *replies);
  if (!idx || !replies) {
    r = app_err_set(err, APP_ERR_NOMEM, "redis sink: no memory for %zu replies", p.ncmds);
    goto out;
  }
  for (;;) {
    struct attempt a;
    bool all = true;
    int64_t now, wait;

    memset(&a, 0, sizeof a);
    attempt_no++;
    run_attempt(s, &p, batch, deadline, idx, replies, &out, &st, &a, streamed, sent);
    streamed = NULL; /* released by run_attempt; later attempts borrow */
    for (j = 0; j < p.ncmds; j++)
      if (!p.cmds[j].done)
        all = false;
    if (all)
      break;
    if (a.r == APP_OK) {
      /* replies missing without a recorded failure cannot happen; be safe */
      a.r = APP_ERR_REDIS;
      app_err_set(&a.err, APP_ERR_REDIS, "redis: replies missing");
    }
    now = sink_now_ms();
    if (a.permanent || now >= deadline || sink_cancelled()) {
      if (err)
        *err = a.err;
      r = app_err_wrap(err, "%s after %d attempt%s in %lld ms",
                       a.permanent        ? "not retryable"
                       : sink_cancelled() ? "shutting down"
                                          : "retry budget exhausted",
                       attempt_no, attempt_no == 1 ? "" : "s", (long long)(now - start));
      r = public_code(a.r);
      if (err)
        err->code = r;
      goto out;
    }
    /* equal jitter: half the delay fixed, half random */
    wait = delay / 2 + (int64_t)(jitter_next() % (uint64_t)(delay / 2 + 1));
    if (now + wait > deadline)
      wait = deadline - now;
    LOG_WARN("redis write attempt %d failed, retrying in %lld ms (%lld ms of budget left): %s",
             attempt_no, (long long)wait, (long long)(deadline - now), a.err.msg);
    if (!sink_sleep_ms(wait)) {
      if (err)
        *err = a.err;
      app_err_wrap(err, "shutting down after %d attempt%s", attempt_no, attempt_no == 1 ? "" : "s");
      r = public_code(a.r);
      if (err)
        err->code = r;
      goto out;
    }
    st.retries++;
    delay = delay * 2 > SINK_BACKOFF_MAX_MS ? SINK_BACKOFF_MAX_MS : delay * 2;
  }
out:
  /* counts from confirmed replies only: a document is applied when any of
   * its scripts changed something, stale when all answered 0 */
  if (p.cmds && batch->ndocs) {
    /* bit 1: answered, bit 2: changed, bit 4: a tie (redis_lua.h) */
    unsigned char *state = calloc(batch->ndocs, 1);
    if (state) {
      size_t nties = 0;
      for (j = 0; j < p.ncmds; j++) {
        if (p.cmds[j].kind != CMD_SCRIPT || !p.cmds[j].done)
          continue;
        state[p.cmds[j].item] |=
            (unsigned char)(1 | (p.cmds[j].result & 1 ? 2 : 0) | (p.cmds[j].result & 2 ? 4 : 0));
      }
      for (i = 0; i < batch->ndocs; i++) {
        const struct doc *d = batch->docs[i];
        if (batch->refused && batch->refused[i].refused)
          continue; /* its message is poison: neither applied nor stale */
        if (state[i] & 2)
          st.applied++;
        else if (state[i] & 1)
          st.stale++;
        if (batch->outcome && (state[i] & 1))
          batch->outcome[i] = (state[i] & 2) ? SINK_DOC_APPLIED : SINK_DOC_STALE;
        if (d->order_uncertain && !d->needs_reread)
          st.ties++;
        else if (state[i] & 4)
          nties++;
      }
      if (nties && r == APP_OK)
        r = mark_ties(s, batch, state, nties, &st, err);
      free(state);
    }
  }
  for (j = 0; j < p.ncmds; j++)
    if (p.cmds[j].kind == CMD_XADD && p.cmds[j].done)
      st.poison++;
  if (out_stats)
    *out_stats = st;
  if (streamed) {
    /* never used (nothing to send, or planning failed): its pipeline is
     * out of step, so it is closed rather than reused */
    redis_conn_mark_broken(streamed);
    redis_pool_release(s->pool, streamed);
  }
  free(idx);
  free(replies);
  free(p.cmds);
  buf_cleanup(&p.all);
  buf_cleanup(&out);
  return r;
}

enum app_result redis_sink_apply(struct redis_sink *s, const struct sink_batch *batch,
                                 struct sink_stats *out_stats, struct app_err *err)
{
  struct plan p;
  enum app_result r;

  memset(&p, 0, sizeof p);
  buf_init(&p.all, SINK_MAX_PIPELINE_BYTES);
  r = plan_build(&p, s, batch, err);
  return apply_plan(s, &p, NULL, 0, batch, r, out_stats, err);
}

/* ---- streaming: writing a batch while it is decoded ---- */

/* Pending bytes that make redis_sink_stream_add write: big enough for few
 * system calls, small enough that Redis starts early. */
#define STREAM_WRITE_BYTES (16 * 1024)

struct redis_sink_stream {
  struct redis_sink *s;
  struct plan p;
  struct buf key, tmp;
  const struct doc **docs; /* planned, in order */
  size_t ndocs, cap;
  struct redis_conn *conn; /* borrowed once there is something to write */
  size_t sent;             /* bytes of p.all written on conn */
  bool failed;             /* planning failed: redis_sink_apply_stream plans again */
  bool no_conn;            /* no idle connection was free, or writing failed: plan only */
  bool send_failed;        /* conn broke while writing */
};

struct redis_sink_stream *redis_sink_stream_begin(struct redis_sink *s)
{
  struct redis_sink_stream *st = xcalloc(1, sizeof *st);
  st->s = s;
  buf_init(&st->p.all, SINK_MAX_PIPELINE_BYTES);
  buf_init(&st->key, 4096);
  buf_init(&st->tmp, 0);
  return st;
}

void redis_sink_stream_abort(struct redis_sink_stream *st)
{
  if (!st)
    return;
  if (st->conn) {
    /* replies of what was written are never read: do not reuse it */
    redis_conn_mark_broken(st->conn);
    redis_pool_release(st->s->pool, st->conn);
  }
  free(st->p.cmds);
  buf_cleanup(&st->p.all);
  buf_cleanup(&st->key);
  buf_cleanup(&st->tmp);
  free(st->docs);
  free(st);
}

void redis_sink_stream_add(struct redis_sink_stream *st, const struct doc *d)
{
  struct app_err e;
  size_t k;

  if (st->failed)
    return;
  if (st->ndocs == st->cap) {
    size_t cap = st->cap ? st->cap * 2 : 256;
    const struct doc **docs = realloc(st->docs, cap * sizeof *docs);
    if (!docs) {
      st->failed = true;
      return;
    }
    st->docs = docs;
    st->cap = cap;
  }
  /* a document the sink refuses, or no memory: stop here; the batch is
   * planned again by redis_sink_apply, which reports it as before */
  if (check_doc(d, st->ndocs, &e) != APP_OK || !plan_reserve(&st->p, doc_ncmds(d)) ||
      plan_one(&st->p, st->s, d, st->ndocs, &st->key, &st->tmp, &e) != APP_OK) {
    st->failed = true;
    return;
  }
  st->docs[st->ndocs++] = d;
  if (st->no_conn || st->p.all.len - st->sent < STREAM_WRITE_BYTES)
    return;
  if (st->s->cluster && !redis_cluster_known_single(st->s->cluster)) {
    st->no_conn = true; /* a cluster (or not known yet): every command to its own node */
    return;
  }
  if (!st->conn) {
    st->conn = redis_pool_try_acquire(st->s->pool);
    if (!st->conn) {
      st->no_conn = true;
      return;
    }
  }
  if (redis_conn_send(st->conn, st->p.all.data + st->sent, st->p.all.len - st->sent, &k, &e) !=
      APP_OK) {
    /* redis_sink_apply_stream starts afresh on another connection */
    st->no_conn = true;
    st->send_failed = true;
    return;
  }
  st->sent += k;
}

enum app_result redis_sink_apply_stream(struct redis_sink *s, struct redis_sink_stream *st,
                                        const struct sink_batch *batch,
                                        struct sink_stats *out_stats, struct app_err *err)
{
  struct plan p;
  struct redis_conn *conn;
  enum app_result r;
  size_t i, sent;
  bool same = st && !st->failed && st->s == s && st->ndocs == batch->ndocs;

  for (i = 0; same && i < batch->ndocs; i++)
    same = st->docs[i] == batch->docs[i];
  if (!same) {
    redis_sink_stream_abort(st);
    return redis_sink_apply(s, batch, out_stats, err);
  }
  /* the documents are planned (and partly written): add the poison
   * records, then the first attempt goes on where the stream is */
  p = st->p;
  conn = st->send_failed ? NULL : st->conn;
  sent = conn ? st->sent : 0;
  memset(&st->p, 0, sizeof st->p);
  if (conn)
    st->conn = NULL;
  redis_sink_stream_abort(st); /* closes a connection that broke while writing */
  r = plan_reserve(&p, batch->npoison)
          ? plan_poisons(&p, s, batch, err)
          : app_err_set(err, APP_ERR_NOMEM, "redis sink: no memory for %zu commands",
                        p.ncmds + batch->npoison);
  return apply_plan(s, &p, conn, sent, batch, r, out_stats, err);
}

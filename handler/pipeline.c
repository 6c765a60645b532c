/* pipeline.c - decode -> map -> sinks for one change invocation. */
#include "pipeline.h"

#include "dataverse/dataverse.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/opsmetrics.h"
#include "redis/redis_bindings.h"
#include "map/sink.h"
#include "sql/sql_bindings.h"
#include "sql/sql_sink.h"

#include <string.h>
#include <strings.h>
#include <time.h>

/* A message may take MSG_ARENA_FACTOR times its size plus MSG_ARENA_SLACK
 * of arena while it is decoded and mapped (real Dataverse messages take
 * about 3-6x). */
#define MSG_ARENA_FACTOR 32
#define MSG_ARENA_SLACK  ((size_t)4 << 20)

struct pipeline {
  const struct app_config *cfg;
  const struct map_config *map;
  struct redis_sink *redis;
  struct sql_sink *sql;
  struct schema *schema;
};

enum app_result pipeline_create(const struct app_config *cfg, const struct map_config *map,
                                struct redis_sink *redis, struct sql_sink *sql,
                                struct schema *schema, struct pipeline **out, struct app_err *err)
{
  struct pipeline *p;
  bool want_redis = cfg->mode == CFG_MODE_DIRECT &&
                    (cfg->target == CFG_TARGET_REDIS || cfg->target == CFG_TARGET_BOTH);
  bool want_sql = cfg->mode == CFG_MODE_DIRECT &&
                  (cfg->target == CFG_TARGET_SQL || cfg->target == CFG_TARGET_BOTH);

  if (want_redis && !redis)
    return app_err_set(err, APP_ERR_CONFIG, "CDC_TARGET includes redis but no Redis sink exists");
  if (want_sql && !sql)
    return app_err_set(err, APP_ERR_CONFIG,
                       "CDC_TARGET includes sql but SqlConnectionString is not set");
  p = xcalloc(1, sizeof *p);
  p->cfg = cfg;
  p->map = map;
  p->redis = redis;
  p->sql = sql;
  p->schema = schema;
  *out = p;
  return APP_OK;
}

void pipeline_destroy(struct pipeline *p)
{
  free(p);
}

/* Does the message carry the MessageMaxSizeExceeded application property
 * (Dataverse truncated the context to fit 192 KB)? */
static bool truncated_hint(const struct envelope_message *m)
{
  const struct json *c;
  if (!json_is(m->app_properties, JSON_OBJECT))
    return false;
  for (c = m->app_properties->child; c; c = c->next)
    if (c->key && !strcasecmp(c->key, "MessageMaxSizeExceeded"))
      return c->type != JSON_FALSE && c->type != JSON_NULL;
  return false;
}

/* First chunk of the per-message scratch arena: a typical message (a few
 * KB) is decoded and mapped without another malloc. */
#define SCRATCH_CHUNK (64 * 1024)

/* Make the scratch arena empty for the next message, with the room that is
 * left under a's ceiling as its own. Under AddressSanitizer every chunk is
 * freed instead, so a pointer kept into a previous message's memory is
 * reported rather than silently reading reused bytes. */
static void scratch_reset(struct arena *scratch, const struct arena *a)
{
#if defined(__SANITIZE_ADDRESS__)
  arena_cleanup(scratch);
  arena_init(scratch, 0);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  arena_cleanup(scratch);
  arena_init(scratch, 0);
#else
  arena_reset(scratch);
#endif
#else
  arena_reset(scratch);
#endif
  scratch->chunk_size = SCRATCH_CHUNK;
  if (a->max)
    scratch->max = a->max > a->used ? a->max - a->used : 1;
}

static int64_t mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Put one Outputs member made by a bindings helper ("name":[...]) into the
 * response: the helpers write the whole member, the response wants the
 * value. */
static enum app_result add_member_output(struct envelope_response *resp, const char *name,
                                         const struct buf *member, struct app_err *err)
{
  size_t skip = 0;
  bool in_str = false;
  /* skip the JSON string of the name and the ':' */
  for (skip = 0; skip < member->len; skip++) {
    char c = member->data[skip];
    if (c == '\\' && in_str) {
      skip++;
      continue;
    }
    if (c == '"')
      in_str = !in_str;
    else if (c == ':' && !in_str)
      break;
  }
  if (skip >= member->len)
    return app_err_set(err, APP_ERR_INPUT, "internal: output for %s is not a JSON member", name);
  return envelope_response_add_output(resp, name, member->data + skip + 1, member->len - skip - 1,
                                      err);
}

static enum app_result bindings_outputs(struct pipeline *p, const struct function_def *fn,
                                        const struct doc *const *docs, size_t ndocs,
                                        struct envelope_response *resp, struct app_err *err)
{
  size_t i;
  size_t used = 0;
  for (i = 0; i < fn->noutputs; i++) {
    const struct function_binding *o = &fn->outputs[i];
    struct buf member;
    enum app_result r = APP_OK;
    bool redis = !strcasecmp(o->type, "redis"), sql = !strcasecmp(o->type, "sql");

    if (!redis && !sql)
      continue;
    buf_init(&member, p->cfg->max_request_bytes);
    if (!o->command) {
      r = app_err_set(err, APP_ERR_CONFIG, "%s: the %s output binding %s has no \"%s\"", fn->path,
                      o->type, o->name, redis ? "command" : "commandText");
    } else if (redis) {
      r = redis_bindings_outputs(docs, ndocs, o->name, o->command, p->cfg->key_prefix, &member,
                                 err);
      if (r == APP_OK)
        r = add_member_output(resp, o->name, &member, err);
    } else {
      /* one SQL binding writes one table: commandText names it */
      r = sql_bindings_rows_for(docs, ndocs, o->command, &member, err);
      if (r == APP_OK)
        r = envelope_response_add_output(resp, o->name, member.data ? member.data : "[]",
                                         member.data ? member.len : 2, err);
    }
    buf_cleanup(&member);
    APP_RETURN_IF_FAILED(r);
    used++;
  }
  if (!used)
    return app_err_set(err, APP_ERR_CONFIG,
                       "CDC_MODE=bindings but function %s has no redis or sql output binding "
                       "(function.json)",
                       fn->name);
  return APP_OK;
}

/* Can d be stored at all? A change older than the tombstone horizon
 * (CDC_TOMBSTONE_TTL_SECONDS, when set) may meet a record whose tombstone
 * expired and revive it; a document a sink can never write (no related
 * records, a name too long for SQL, ...) would fail every delivery of its
 * batch. Either becomes that message's poison record, before any sink sees
 * the batch. APP_OK, or APP_ERR_INPUT with the reason in err. */
static enum app_result check_storable(struct pipeline *p, const struct doc *d, struct app_err *err)
{
  const struct app_config *cfg = p->cfg;
  bool redis = cfg->target == CFG_TARGET_REDIS || cfg->target == CFG_TARGET_BOTH;
  bool sql = cfg->target == CFG_TARGET_SQL || cfg->target == CFG_TARGET_BOTH;
  if (cfg->tombstone_ttl_s > 0) {
    int64_t horizon = wall_ms() - (int64_t)cfg->tombstone_ttl_s * 1000;
    if (d->op_time_ms < horizon)
      return app_err_set(err, APP_ERR_INPUT,
                         "%s of %s %s at %lld ms is older than the tombstone retention horizon "
                         "(CDC_TOMBSTONE_TTL_SECONDS=%d, %lld ms): a tombstone it must be "
                         "compared with may have expired, so it is not applied",
                         cdc_op_name(d->op), d->table, d->id, (long long)d->op_time_ms,
                         cfg->tombstone_ttl_s, (long long)horizon);
  }
  if (cfg->mode != CFG_MODE_DIRECT)
    return APP_OK;
  if (redis && p->redis)
    APP_RETURN_IF_FAILED(redis_sink_check_doc(d, err));
  if (sql && p->sql)
    APP_RETURN_IF_FAILED(sql_sink_check_doc(p->sql, d, err));
  return APP_OK;
}

/* Decode and map every message of inv: accepted documents into docs,
 * poison messages into poison, skips counted in out. Each message is
 * decoded and mapped in a scratch arena that is reset for the next one;
 * only its document is kept (doc_clone into a). A decoded message takes
 * several times its size in JSON nodes and copies, which for a batch of
 * 1000 was most of the invocation's memory, and the reused scratch memory
 * stays in the CPU caches. The scratch ceiling is what is left of a's, so
 * both together stay within the invocation's limit. Each document also
 * goes to stream (may be NULL), which starts writing the batch to Redis
 * while the rest is decoded. Returns APP_OK, or APP_ERR_LIMIT /
 * APP_ERR_NOMEM (the invocation fails). */
static enum app_result
decode_messages(struct pipeline *p, struct arena *a, const struct invocation *inv,
                const struct doc **docs, size_t *doc_msg, size_t *out_ndocs,
                struct sink_poison *poison, size_t *out_npoison, struct redis_sink_stream *stream,
                struct pipeline_result *out, bool replay, struct app_err *err)
{
  const struct app_config *cfg = p->cfg;
  struct dv_options opt;
  int64_t t0, t1;
  struct arena scratch;
  size_t i, ndocs = 0, npoison = 0;
  enum app_result r = APP_OK;

  memset(&opt, 0, sizeof opt);
  opt.max_body_bytes = cfg->max_message_bytes;
  opt.max_depth = cfg->max_json_depth;
  arena_init(&scratch, 0);
  for (i = 0; i < inv->nmessages; i++) {
    const struct envelope_message *m = &inv->messages[i];
    struct cdc_change ch;
    struct doc dm, *d = NULL;
    enum map_verdict verdict = MAP_ACCEPT;
    struct app_err perr;
    enum app_result pr;
    const char *stage = "decode";
    size_t cap;
    bool own_cap;

    scratch_reset(&scratch, a);
    /* Each message also has a cap of its own: a pathological message (a
     * huge array of tiny values costs ~100x its size in nodes) hits it and
     * becomes poison, instead of taking what the messages after it need. */
    cap = MSG_ARENA_FACTOR * (m->body_len + 1) + MSG_ARENA_SLACK;
    own_cap = !scratch.max || scratch.max - scratch.used > cap;
    if (own_cap)
      scratch.max = scratch.used + cap;
    app_err_clear(&perr);
    if (m->oversize) {
      pr = app_err_set(&perr, APP_ERR_LIMIT,
                       "message body of %zu bytes is larger than CDC_MAX_MESSAGE_BYTES (%zu)",
                       m->body_len, cfg->max_message_bytes);
    } else {
      opt.truncated_hint = truncated_hint(m);
      t0 = mono_us();
      pr = dv_decode(&scratch, m->content_type, m->body, m->body_len, &opt, &ch, &perr);
      t1 = mono_us();
      out->decode_us += t1 - t0;
      if (pr == APP_OK) {
        ch.origin.message_id = m->message_id;
        stage = "mapping";
        pr = map_change(p->map, &scratch, &ch, &verdict, &dm, &perr);
        out->map_us += mono_us() - t1;
      }
      if (pr == APP_OK && verdict == MAP_ACCEPT) {
        stage = "sink check";
        pr = check_storable(p, &dm, &perr);
      }
    }
    if (pr == APP_ERR_NOMEM) {
      r = app_err_set(err, pr, "message %s: %s", m->message_id ? m->message_id : "-", perr.msg);
      goto out;
    }
    if (pr == APP_ERR_LIMIT && !own_cap && !m->oversize) {
      /* the invocation as a whole ran out, not this message: not poison */
      r = app_err_set(err, APP_ERR_LIMIT,
                      "message %s: the batch needs more memory than CDC_MAX_REQUEST_BYTES "
                      "allows (lower maxMessageBatchSize in host.json): %s",
                      m->message_id ? m->message_id : "-", perr.msg);
      goto out;
    }
    if (pr != APP_OK) {
      struct sink_poison *ps = &poison[npoison++];
      size_t rl = strlen(perr.msg) + 64;
      char *reason = arena_alloc(a, rl);
      if (!reason) {
        r = app_err_set(err, APP_ERR_LIMIT, "the invocation needs more memory than allowed");
        goto out;
      }
      snprintf(reason, rl, "%s (%s): %s", stage, app_result_str(pr), perr.msg);
      memset(ps, 0, sizeof *ps);
      ps->message_id = m->message_id;
      ps->reason = reason;
      ps->body = m->body;
      ps->body_len = m->body ? m->body_len : 0;
      ps->content_type = m->content_type;
      ps->delivery_count = m->delivery_count;
      ps->enqueued_ms = m->enqueued_ms;
      {
        /* the table is known when the mapping refused a decoded change */
        const char *table = !strcmp(stage, "mapping") ? ch.table : NULL;
        struct buf f;
        /* ch lives in the scratch arena, reset for the next message */
        ps->table = table ? arena_strndup(a, table, strlen(table)) : NULL;
        if (!out->poison_reason) {
          out->poison_reason = reason;
          out->poison_table = ps->table;
        }
        buf_init(&f, 2048);
        log_field_str(&f, "event", replay ? "replay" : "poison");
        log_field_str(&f, "mid", m->message_id);
        log_field_str(&f, "table", table);
        log_field_str(&f, "id", table ? ch.id : NULL);
        log_field_str(&f, "outcome", replay ? "replay_failed" : "poison");
        log_field_int(&f, "delivery", m->delivery_count);
        log_field_str(&f, "reason", reason);
        log_event(LOG_LEVEL_ERROR, f.data, "%s message %s (delivery %d): %s",
                  replay ? "replay failed again: poison" : "poison",
                  m->message_id ? m->message_id : "-", m->delivery_count, reason);
        buf_cleanup(&f);
      }
      continue;
    }
    if (verdict != MAP_ACCEPT) {
      out->skipped++;
      if (!replay)
        opsm_count(ch.table, OPS_SKIPPED, 1);
      LOG_DEBUG("message %s skipped: %s (%s %s)", m->message_id ? m->message_id : "-",
                map_verdict_str(verdict), ch.message ? ch.message : "?", ch.table ? ch.table : "?");
      continue;
    }
    d = arena_alloc(a, sizeof *d);
    if (!d || doc_clone(a, &dm, d) != APP_OK) {
      r = app_err_set(err, APP_ERR_LIMIT, "the invocation needs more memory than allowed");
      goto out;
    }
    if (d->needs_reread)
      out->reread++;
    if (d->op_time_ms > out->newest_op_ms)
      out->newest_op_ms = d->op_time_ms;
    doc_msg[ndocs] = i;
    docs[ndocs++] = d;
    if (stream)
      redis_sink_stream_add(stream, d);
  }
out:
  arena_cleanup(&scratch);
  *out_ndocs = ndocs;
  *out_npoison = npoison;
  return r;
}

/* m's message becomes a poison record in poison[(*npoison)++] because a sink
 * refused its document (table): the reason is "<what> (refused): <why>" in
 * a. APP_OK, or APP_ERR_LIMIT when the arena is full. */
static enum app_result add_refused(struct arena *a, const struct envelope_message *m,
                                   const char *table, const char *what, const char *why,
                                   struct sink_poison *poison, size_t *npoison, struct app_err *err)
{
  size_t rl = strlen(what) + strlen(why) + 16;
  char *reason = arena_alloc(a, rl);
  struct sink_poison *x;
  if (!reason)
    return app_err_set(err, APP_ERR_LIMIT, "the invocation needs more memory than allowed");
  snprintf(reason, rl, "%s (refused): %s", what, why);
  x = &poison[(*npoison)++];
  memset(x, 0, sizeof *x);
  x->table = table;
  x->message_id = m->message_id;
  x->reason = reason;
  x->body = m->body;
  x->body_len = m->body ? m->body_len : 0;
  x->content_type = m->content_type;
  x->delivery_count = m->delivery_count;
  x->enqueued_ms = m->enqueued_ms;
  LOG_ERROR("poison message %s (delivery %d): %s", m->message_id ? m->message_id : "-",
            m->delivery_count, reason);
  return APP_OK;
}

/* The documents Redis refused as unstorable (batch->refused): each one's
 * message becomes a poison record (XADD, one more round trip), and the
 * document leaves the batch, so SQL does not see it either. */
static enum app_result record_refused(struct pipeline *p, struct arena *a,
                                      const struct invocation *inv, struct sink_batch *batch,
                                      const size_t *doc_msg, struct sink_poison *poison,
                                      size_t *npoison, struct sink_stats *stats,
                                      struct pipeline_result *out, struct app_err *err)
{
  const struct doc **docs = (const struct doc **)batch->docs;
  size_t i, k = 0, first = *npoison;
  struct sink_batch pb;
  struct sink_stats ps;
  enum app_result r;

  for (i = 0; i < batch->ndocs; i++) {
    if (!batch->refused[i].refused) {
      if (batch->outcome)
        batch->outcome[k] = batch->outcome[i]; /* stays aligned with docs */
      docs[k++] = docs[i];
      continue;
    }
    APP_RETURN_IF_FAILED(add_refused(a, &inv->messages[doc_msg[i]], docs[i]->table, "sink",
                                     batch->refused[i].reason, poison, npoison, err));
  }
  if (*npoison == first)
    return APP_OK;
  batch->ndocs = k;
  out->accepted = k;
  out->poison += *npoison - first;
  metrics_add(M_POISON, *npoison - first);
  memset(&pb, 0, sizeof pb);
  pb.poison = poison + first;
  pb.npoison = *npoison - first;
  pb.function = batch->function;
  pb.invocation_id = batch->invocation_id;
  pb.deadline_ms = batch->deadline_ms;
  memset(&ps, 0, sizeof ps);
  r = redis_sink_apply(p->redis, &pb, &ps, err);
  stats->poison += ps.poison;
  stats->round_trips += ps.round_trips;
  stats->retries += ps.retries;
  return r;
}

/* The SQL batch failed on a value the database refused (stats->data_fault):
 * write its documents one per transaction; each one refused again becomes
 * its message's poison record (the Redis stream with redis+sql, else
 * _cdc_poison, together with the batch's other poison messages, which the
 * failed transaction did not record). Only on failure, so the cost of N
 * transactions is paid once per bad batch. Returns APP_OK when every other
 * document was written. */
static enum app_result sql_isolate(struct pipeline *p, struct arena *a,
                                   const struct invocation *inv, const struct sink_batch *batch,
                                   const size_t *doc_msg, struct sink_poison *poison,
                                   size_t *npoison, bool redis_target, struct sink_stats *stats,
                                   struct pipeline_result *out, struct app_err *err)
{
  size_t i, first = *npoison;
  struct sink_batch b1;
  struct sink_stats s1;
  enum app_result r = APP_OK;

  LOG_WARN("sql sink: the database refused a value of the batch (%s); writing its %zu documents "
           "one by one",
           err ? err->msg : "", batch->ndocs);
  memset(stats, 0, sizeof *stats);
  for (i = 0; i < batch->ndocs; i++) {
    struct app_err e1;
    b1 = *batch;
    b1.docs = batch->docs + i;
    b1.ndocs = 1;
    b1.poison = NULL;
    b1.npoison = 0;
    b1.refused = NULL;
    memset(&s1, 0, sizeof s1);
    r = sql_sink_write(p->sql, &b1, &s1, &e1);
    stats->round_trips += s1.round_trips;
    stats->retries += s1.retries;
    stats->applied += s1.applied;
    stats->stale += s1.stale;
    if (r == APP_OK)
      continue;
    if (r != APP_ERR_SQL || !s1.data_fault) {
      if (err)
        *err = e1;
      return r;
    }
    APP_RETURN_IF_FAILED(add_refused(a, &inv->messages[doc_msg[i]], batch->docs[i]->table, "sql",
                                     e1.msg, poison, npoison, err));
  }
  out->poison += *npoison - first;
  metrics_add(M_POISON, *npoison - first);
  memset(&b1, 0, sizeof b1);
  b1.function = batch->function;
  b1.invocation_id = batch->invocation_id;
  b1.deadline_ms = batch->deadline_ms;
  memset(&s1, 0, sizeof s1);
  if (redis_target) {
    /* the batch's other poison messages are in the stream already */
    b1.poison = poison + first;
    b1.npoison = *npoison - first;
    r = b1.npoison ? redis_sink_apply(p->redis, &b1, &s1, err) : APP_OK;
  } else {
    b1.poison = poison;
    b1.npoison = *npoison;
    r = b1.npoison ? sql_sink_write(p->sql, &b1, &s1, err) : APP_OK;
  }
  stats->poison += s1.poison;
  stats->round_trips += s1.round_trips;
  return r;
}

/* Per table and outcome, and the freshness of every applied document, for
 * the shared metrics (opsmetrics.h). outcome[i] as the sinks set it; a
 * sink that cannot tell (SQL) leaves 0, and then the batch counts are
 * used when they are unambiguous (all applied or all stale). */
static void count_docs(const struct doc **docs, size_t ndocs, const unsigned char *outcome,
                       const struct pipeline_result *out, bool replay)
{
  int64_t now = wall_ms();
  size_t i;
  for (i = 0; i < ndocs; i++) {
    unsigned char o = outcome ? outcome[i] : 0;
    if (!o && out->applied == ndocs)
      o = SINK_DOC_APPLIED;
    else if (!o && out->stale == ndocs)
      o = SINK_DOC_STALE;
    if (!o)
      continue;
    if (replay)
      opsm_count(docs[i]->table, OPS_REPLAYED, 1);
    else
      opsm_count(docs[i]->table, o == SINK_DOC_APPLIED ? OPS_APPLIED : OPS_STALE, 1);
    if (o == SINK_DOC_APPLIED && docs[i]->op_time_ms > 0 && !replay)
      opsm_freshness_ms(now - docs[i]->op_time_ms);
    if (LOG_LEVEL_DEBUG >= log_min_level) {
      /* one line per change, for tracing one record (CDC_LOG_LEVEL=debug) */
      struct buf f;
      buf_init(&f, 1024);
      log_field_str(&f, "event", "change");
      log_field_str(&f, "mid", docs[i]->origin ? docs[i]->origin->message_id : NULL);
      log_field_str(&f, "table", docs[i]->table);
      log_field_str(&f, "id", docs[i]->id);
      log_field_str(&f, "outcome", o == SINK_DOC_APPLIED ? "applied" : "stale");
      if (docs[i]->op_time_ms > 0)
        log_field_int(&f, "fresh_ms", now - docs[i]->op_time_ms);
      log_event(LOG_LEVEL_DEBUG, f.data, "change %s %s: %s", docs[i]->table, docs[i]->id,
                o == SINK_DOC_APPLIED ? "applied" : "stale");
      buf_cleanup(&f);
    }
  }
}

static enum app_result run(struct pipeline *p, struct arena *a, const struct function_def *fn,
                           const struct invocation *inv, const char *invocation_id,
                           struct envelope_response *resp, struct pipeline_result *out, bool replay,
                           struct app_err *err)
{
  const struct app_config *cfg = p->cfg;
  const struct doc **docs;
  size_t *doc_msg; /* the message each document came from */
  struct sink_poison *poison;
  size_t ndocs = 0, npoison = 0;
  struct sink_batch batch;
  struct sink_stats stats;
  struct redis_sink_stream *stream = NULL;
  int64_t write_t0 = 0;
  bool redis_target = cfg->target == CFG_TARGET_REDIS || cfg->target == CFG_TARGET_BOTH;
  bool sql_target = cfg->target == CFG_TARGET_SQL || cfg->target == CFG_TARGET_BOTH;
  enum app_result r = APP_OK;

  memset(out, 0, sizeof *out);
  out->messages = inv->nmessages;
  metrics_add(M_MESSAGES, inv->nmessages);
  docs = arena_alloc(a, (inv->nmessages ? inv->nmessages : 1) * sizeof *docs);
  doc_msg = arena_alloc(a, (inv->nmessages ? inv->nmessages : 1) * sizeof *doc_msg);
  poison = arena_alloc(a, (inv->nmessages ? inv->nmessages : 1) * sizeof *poison);
  if (!docs || !doc_msg || !poison)
    return app_err_set(err, APP_ERR_LIMIT, "the invocation needs more memory than allowed");

  /* a batch starts going to Redis while it is decoded (one round trip
   * still); a single message has nothing to overlap */
  if (cfg->mode == CFG_MODE_DIRECT && redis_target && inv->nmessages > 1)
    stream = redis_sink_stream_begin(p->redis);
  r = decode_messages(p, a, inv, docs, doc_msg, &ndocs, poison, &npoison, stream, out, replay, err);
  opsm_stage_us(OPS_STAGE_DECODE, (uint64_t)out->decode_us);
  opsm_stage_us(OPS_STAGE_MAP, (uint64_t)out->map_us);
  if (r != APP_OK) {
    redis_sink_stream_abort(stream);
    return r;
  }
  out->accepted = ndocs;
  out->poison = npoison;
  metrics_add(M_SKIPPED, out->skipped);
  metrics_add(M_POISON, npoison);
  metrics_add(M_REREAD, out->reread);

  if (replay) {
    npoison = 0; /* the caller keeps the record, with the new reason */
  } else if (npoison && cfg->poison == CFG_POISON_FAIL && !inv->batch) {
    redis_sink_stream_abort(stream);
    return app_err_set(err, APP_ERR_INPUT,
                       "poison message %s (CDC_POISON=fail, so Service Bus will dead-letter it "
                       "after maxDeliveryCount): %s",
                       poison[0].message_id ? poison[0].message_id : "-", poison[0].reason);
  }

  if (cfg->mode == CFG_MODE_BINDINGS) {
    redis_sink_stream_abort(stream); /* never made in this mode */
    if (ndocs)
      APP_RETURN_IF_FAILED(bindings_outputs(p, fn, docs, ndocs, resp, err));
    /* the bindings cannot record poison messages: they stay in the logs */
    return APP_OK;
  }

  memset(&batch, 0, sizeof batch);
  batch.docs = docs;
  batch.ndocs = ndocs;
  batch.function = fn ? fn->name : NULL;
  batch.invocation_id = invocation_id;
  batch.deadline_ms = sink_now_ms() + cfg->retry_budget_ms;
  batch.outcome = ndocs ? arena_alloc(a, ndocs) : NULL;
  if (batch.outcome)
    memset(batch.outcome, 0, ndocs);
  write_t0 = mono_us();
  {
    /* Redis first: the read API serves it, so it should be current first.
     * Both must confirm before the invocation is acknowledged; a failure in
     * either redelivers the batch, which the version guards make safe. */
    if (redis_target && (ndocs || npoison)) {
      batch.poison = poison; /* the Redis poison stream */
      batch.npoison = npoison;
      batch.refused = ndocs ? arena_alloc(a, ndocs * sizeof *batch.refused) : NULL;
      if (batch.refused)
        memset(batch.refused, 0, ndocs * sizeof *batch.refused);
      memset(&stats, 0, sizeof stats);
      r = redis_sink_apply_stream(p->redis, stream, &batch, &stats, err);
      stream = NULL;
      if (r == APP_OK && batch.refused)
        r = record_refused(p, a, inv, &batch, doc_msg, poison, &npoison, &stats, out, err);
      batch.refused = NULL;
      ndocs = batch.ndocs;
      out->round_trips += stats.round_trips;
      out->retries += stats.retries;
      out->applied = stats.applied;
      out->stale = stats.stale;
      out->poison_recorded = stats.poison;
      out->ties = stats.ties;
      opsm_error(OPS_REDIS_RETRIES, stats.retries);
      if (r != APP_OK) {
        opsm_error(OPS_REDIS_ERRORS, 1);
        goto done;
      }
      if (p->schema && ndocs) {
        struct app_err serr;
        if (schema_note(p->schema, docs, ndocs, batch.deadline_ms, &serr) != APP_OK)
          LOG_WARN("could not note the property names for $select checks: %s", serr.msg);
      }
    }
    if (sql_target && (ndocs || npoison)) {
      /* with redis+sql the poison stream already has them; with sql alone
       * the SQL sink records them in _cdc_poison */
      batch.poison = redis_target ? NULL : poison;
      batch.npoison = redis_target ? 0 : npoison;
      memset(&stats, 0, sizeof stats);
      r = sql_sink_write(p->sql, &batch, &stats, err);
      if (r == APP_ERR_SQL && stats.data_fault && ndocs) {
        size_t rt = stats.round_trips;
        r = sql_isolate(p, a, inv, &batch, doc_msg, poison, &npoison, redis_target, &stats, out,
                        err);
        stats.round_trips += rt;
        if (redis_target)
          out->poison_recorded += stats.poison;
      }
      out->round_trips += stats.round_trips;
      out->retries += stats.retries;
      if (!redis_target) {
        out->ties = stats.ties;
        out->applied = stats.applied;
        out->stale = stats.stale;
        out->poison_recorded = stats.poison;
      }
      opsm_error(OPS_SQL_RETRIES, stats.retries);
      if (r != APP_OK) {
        opsm_error(OPS_SQL_ERRORS, 1);
        goto done;
      }
    }
  }
done:
  redis_sink_stream_abort(stream); /* nothing went to Redis: no documents, no poison */
  if (write_t0)
    opsm_stage_us(OPS_STAGE_WRITE, (uint64_t)(mono_us() - write_t0));
  if (r == APP_OK) {
    size_t i;
    count_docs(docs, ndocs, batch.outcome, out, replay);
    for (i = 0; !replay && i < npoison && i < out->poison_recorded; i++)
      opsm_count(poison[i].table, OPS_POISON, 1);
  }
  metrics_add(M_APPLIED, out->applied);
  metrics_add(M_STALE, out->stale);
  metrics_add(M_POISON_RECORDED, out->poison_recorded);
  metrics_add(M_RETRIES, out->retries);
  metrics_add(M_ORDER_TIES, out->ties);
  metrics_add(M_ROUND_TRIPS, out->round_trips);
  /* only when something was applied: a replay of old messages (all stale)
   * would otherwise report their age as the replica's lag */
  if (r == APP_OK && out->newest_op_ms && out->applied) {
    int64_t age = wall_ms() - out->newest_op_ms;
    metrics_set(M_LAST_APPLY_AGE_MS, age > 0 ? (uint64_t)age : 0);
  }
  return r;
}

enum app_result pipeline_run(struct pipeline *p, struct arena *a, const struct function_def *fn,
                             const struct invocation *inv, const char *invocation_id,
                             struct envelope_response *resp, struct pipeline_result *out,
                             struct app_err *err)
{
  return run(p, a, fn, inv, invocation_id, resp, out, false, err);
}

enum app_result pipeline_replay(struct pipeline *p, struct arena *a,
                                const struct envelope_message *m, const char *invocation_id,
                                struct pipeline_result *out, struct app_err *err)
{
  struct invocation inv;
  struct envelope_message copy = *m;
  if (p->cfg->mode != CFG_MODE_DIRECT) {
    memset(out, 0, sizeof *out);
    return app_err_set(err, APP_ERR_UNSUPPORTED,
                       "replay needs CDC_MODE=direct (the output bindings cannot be driven from "
                       "an HTTP function)");
  }
  memset(&inv, 0, sizeof inv);
  inv.kind = ENVELOPE_MESSAGES;
  inv.messages = &copy;
  inv.nmessages = 1;
  inv.retry_count = -1;
  inv.max_retry_count = -1;
  return run(p, a, NULL, &inv, invocation_id, NULL, out, true, err);
}

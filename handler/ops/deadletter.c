/* deadletter.c - record dead-lettered messages (see deadletter.h). */
#include "ops/deadletter.h"

#include "common/log.h"
#include "common/opsmetrics.h"
#include "dataverse/dataverse.h"
#include "map/sink.h"
#include "redis/redis_ops.h"
#include "sql/sql_sink.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A string application property (case-insensitive name), or NULL. */
static const char *app_prop(const struct envelope_message *m, const char *name)
{
  const struct json *v = json_get_ci(m->app_properties, name);
  return json_is(v, JSON_STRING) ? v->str : NULL;
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct peek {
  const char *table, *id; /* arena; NULL when the body does not decode */
  const char *error;      /* why not (arena), or NULL */
};

/* Table and record id of a body, when it decodes as a Dataverse change. */
static void peek_body(const struct app_config *cfg, struct arena *a,
                      const struct envelope_message *m, struct peek *out)
{
  struct dv_options opt;
  struct cdc_change ch;
  struct app_err e;
  struct arena scratch;
  memset(out, 0, sizeof *out);
  if (m->oversize || !m->body) {
    char t[96];
    snprintf(t, sizeof t, "message body of %zu bytes is larger than CDC_MAX_MESSAGE_BYTES",
             m->body_len);
    out->error = arena_strndup(a, t, strlen(t));
    return;
  }
  memset(&opt, 0, sizeof opt);
  opt.max_body_bytes = cfg->max_message_bytes;
  opt.max_depth = cfg->max_json_depth;
  arena_init(&scratch, 32 * (m->body_len + 1) + ((size_t)4 << 20));
  if (dv_decode(&scratch, m->content_type, m->body, m->body_len, &opt, &ch, &e) == APP_OK) {
    out->table = ch.table ? arena_strndup(a, ch.table, strlen(ch.table)) : NULL;
    out->id = ch.id ? arena_strndup(a, ch.id, strlen(ch.id)) : NULL;
  } else {
    out->error = arena_strndup(a, e.msg, strlen(e.msg));
  }
  arena_cleanup(&scratch);
}

static void log_one(const struct envelope_message *m, const char *reason, const char *desc,
                    const struct peek *pk)
{
  struct buf f;
  buf_init(&f, 4096);
  log_field_str(&f, "event", "deadletter");
  log_field_str(&f, "mid", m->message_id);
  log_field_str(&f, "table", pk->table);
  log_field_str(&f, "id", pk->id);
  log_field_str(&f, "outcome", "deadlettered");
  log_field_int(&f, "delivery", m->delivery_count);
  log_field_str(&f, "reason", reason);
  log_field_str(&f, "description", desc);
  if (pk->error)
    log_field_str(&f, "decode_error", pk->error);
  log_event(LOG_LEVEL_ERROR, f.data, "dead-lettered message %s (delivery %d): %s: %s%s%s",
            m->message_id ? m->message_id : "-", m->delivery_count, reason, desc ? desc : "",
            pk->error ? "; body does not decode: " : "", pk->error ? pk->error : "");
  buf_cleanup(&f);
}

static enum app_result record_redis(const struct deadletter_target *t,
                                    const struct envelope_message *m, const char *function,
                                    const char *invocation_id, const char *reason, const char *desc,
                                    const struct peek *pk, struct app_err *err)
{
  const struct app_config *cfg = t->cfg;
  char dc[24], enq[24], rec[24];
  struct buf props;
  struct redis_ops_kv f[16];
  size_t n = 0;
  enum app_result r;
  const char *src = app_prop(m, "DeadLetterSource");

  buf_init(&props, 1 << 20);
  if (m->app_properties && json_write(&props, m->app_properties) != APP_OK)
    buf_reset(&props);
  snprintf(dc, sizeof dc, "%d", m->delivery_count);
  snprintf(enq, sizeof enq, "%lld", (long long)m->enqueued_ms);
  snprintf(rec, sizeof rec, "%lld", (long long)wall_ms());
#define KV(k, v)                                                                                   \
  do {                                                                                             \
    const char *v_ = (v);                                                                          \
    f[n].name = (k);                                                                               \
    f[n].value = v_ ? v_ : "";                                                                     \
    f[n].len = v_ ? strlen(v_) : 0;                                                                \
    n++;                                                                                           \
  } while (0)
  KV("kind", "deadletter");
  KV("reason", reason);
  KV("description", desc);
  KV("message_id", m->message_id);
  KV("function", function);
  KV("invocation_id", invocation_id);
  KV("delivery_count", dc);
  KV("enqueued_ms", enq);
  KV("recorded_ms", rec);
  KV("content_type", m->content_type);
  KV("app_properties", props.data ? props.data : "{}");
  KV("table", pk->table);
  KV("record_id", pk->id);
  KV("decode_error", pk->error);
  KV("dead_letter_source", src);
#undef KV
  f[n].name = "body";
  f[n].value = m->body ? m->body : "";
  f[n].len = m->body ? m->body_len : 0;
  n++;
  r = redis_ops_xadd(t->pool, cfg->poison_stream, cfg->poison_maxlen, f, n,
                     sink_now_ms() + cfg->retry_budget_ms, NULL, err);
  buf_cleanup(&props);
  return r;
}

static enum app_result record_sql(const struct deadletter_target *t, struct arena *a,
                                  const struct envelope_message *m, const char *function,
                                  const char *invocation_id, const char *reason, const char *desc,
                                  struct app_err *err)
{
  struct sink_poison ps;
  struct sink_batch batch;
  struct sink_stats st;
  size_t rl = strlen(reason) + (desc ? strlen(desc) : 0) + 32;
  char *text = arena_alloc(a, rl);
  if (!text)
    return app_err_set(err, APP_ERR_LIMIT, "out of request memory");
  snprintf(text, rl, "dead-lettered (%s): %s", reason, desc ? desc : "");
  memset(&ps, 0, sizeof ps);
  ps.message_id = m->message_id;
  ps.reason = text;
  ps.body = m->body;
  ps.body_len = m->body ? m->body_len : 0;
  ps.content_type = m->content_type;
  ps.delivery_count = m->delivery_count;
  ps.enqueued_ms = m->enqueued_ms;
  memset(&batch, 0, sizeof batch);
  batch.poison = &ps;
  batch.npoison = 1;
  batch.audit = true;
  batch.function = function;
  batch.invocation_id = invocation_id;
  batch.deadline_ms = sink_now_ms() + t->cfg->retry_budget_ms;
  return sql_sink_write(t->sql, &batch, &st, err);
}

enum app_result deadletter_invoke(const struct deadletter_target *t, struct arena *a,
                                  const struct invocation *inv, const char *function,
                                  const char *invocation_id, size_t *recorded, struct app_err *err)
{
  size_t i;
  *recorded = 0;
  if (!t->pool && !t->sql)
    return app_err_set(err, APP_ERR_CONFIG,
                       "function %s records dead-lettered messages, but CDC_TARGET has no store",
                       function);
  for (i = 0; i < inv->nmessages; i++) {
    const struct envelope_message *m = &inv->messages[i];
    const char *reason = app_prop(m, "DeadLetterReason");
    const char *desc = app_prop(m, "DeadLetterErrorDescription");
    struct peek pk;
    enum app_result r;
    if (!reason || !*reason)
      reason = "unknown (no DeadLetterReason property)";
    peek_body(t->cfg, a, m, &pk);
    log_one(m, reason, desc, &pk);
    if (t->pool)
      r = record_redis(t, m, function, invocation_id, reason, desc, &pk, err);
    else
      r = record_sql(t, a, m, function, invocation_id, reason, desc, err);
    if (r != APP_OK)
      return app_err_wrap(err, "dead-letter record of message %s",
                          m->message_id ? m->message_id : "-");
    opsm_count(pk.table, OPS_DEADLETTERED, 1);
    (*recorded)++;
  }
  return APP_OK;
}

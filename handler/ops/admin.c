/* admin.c - the replay admin API (see admin.h). */
#include "ops/admin.h"

#include "common/json.h"
#include "common/log.h"
#include "common/opsmetrics.h"
#include "dataverse/dataverse.h"
#include "host/envelope.h"
#include "map/sink.h"
#include "ops/opsstore.h"
#include "pipeline.h"
#include "redis/redis_ops.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PAGE          200
#define DEFAULT_LIMIT 100
#define MAX_LIMIT     1000

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)tolower((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) ('+' is a space) into the arena. */
static char *pct_decode(struct arena *a, const char *s, size_t n)
{
  char *o = arena_alloc(a, n + 1);
  size_t i, k = 0;
  if (!o)
    return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      o[k++] = s[i] == '+' ? ' ' : s[i];
    }
  }
  o[k] = '\0';
  return o;
}

/* The decoded value of query parameter name (case-insensitive), or NULL. */
static const char *query_get(struct arena *a, const char *query, const char *name)
{
  size_t nl = strlen(name);
  const char *p = query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    if (len > nl && p[nl] == '=' && !strncasecmp(p, name, nl))
      return pct_decode(a, p + nl + 1, len - nl - 1);
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}

static enum app_result answer_error(struct buf *body, int *status, int code_status,
                                    const char *code, const char *msg)
{
  *status = code_status;
  buf_reset(body);
  APP_RETURN_IF_FAILED(buf_printf(body, "{\"error\":{\"code\":\"%s\",\"message\":", code));
  APP_RETURN_IF_FAILED(buf_append_json_str(body, msg, strlen(msg)));
  return buf_append_str(body, "}}");
}

/* A store failure: the class goes to the client, the detail to the log. */
static enum app_result store_error(struct buf *body, int *status, enum app_result r,
                                   const struct app_err *err)
{
  char msg[128];
  LOG_ERROR("admin: record store: %s", err->msg);
  if (r == APP_ERR_NOTFOUND)
    return answer_error(body, status, 404, "NotFound", err->msg);
  snprintf(msg, sizeof msg, "the record store is unavailable (%s); try again", app_result_str(r));
  return answer_error(body, status, 503, "Unavailable", msg);
}

/* "ms" or ISO 8601 -> ms since 1970 as text in out; false when neither. */
static bool time_bound(const char *v, char *out, size_t cap)
{
  int64_t ms = 0;
  char *end;
  long long x = strtoll(v, &end, 10);
  if (*v && !*end && x >= 0)
    ms = x;
  else if (!envelope_parse_time(v, strlen(v), &ms) || ms < 0)
    return false;
  snprintf(out, cap, "%lld", (long long)ms);
  return true;
}

static bool parse_filter(struct arena *a, const char *query, struct admin_filter *f, char *why,
                         size_t cap)
{
  const char *v;
  memset(f, 0, sizeof *f);
  snprintf(f->from, sizeof f->from, "-");
  snprintf(f->to, sizeof f->to, "+");
  f->limit = DEFAULT_LIMIT;
  f->state = "open";
  if ((v = query_get(a, query, "kind"))) {
    if (strcmp(v, "poison") && strcmp(v, "deadletter")) {
      snprintf(why, cap, "kind must be poison or deadletter, not '%.40s'", v);
      return false;
    }
    f->kind = v;
    f->any = true;
  }
  if ((v = query_get(a, query, "table"))) {
    f->table = v;
    f->any = true;
  }
  if ((v = query_get(a, query, "reason"))) {
    f->reason = v;
    f->any = true;
  }
  if ((v = query_get(a, query, "state"))) {
    if (strcmp(v, "open") && strcmp(v, "replayed") && strcmp(v, "all")) {
      snprintf(why, cap, "state must be open, replayed or all, not '%.40s'", v);
      return false;
    }
    f->state = v;
  }
  if ((v = query_get(a, query, "from"))) {
    if (!time_bound(v, f->from, sizeof f->from)) {
      snprintf(why, cap, "from: '%.40s' is not ms since 1970 or an ISO 8601 time", v);
      return false;
    }
    f->any = true;
  }
  if ((v = query_get(a, query, "to"))) {
    if (!time_bound(v, f->to, sizeof f->to)) {
      snprintf(why, cap, "to: '%.40s' is not ms since 1970 or an ISO 8601 time", v);
      return false;
    }
    f->any = true;
  }
  if ((v = query_get(a, query, "limit"))) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < 1 || x > MAX_LIMIT) {
      snprintf(why, cap, "limit must be 1..%d, not '%.40s'", MAX_LIMIT, v);
      return false;
    }
    f->limit = (size_t)x;
  }
  v = query_get(a, query, "all");
  f->all = v && !strcmp(v, "true");
  return true;
}

static const char *field_or(const struct redis_ops_record *r, const char *name, const char *def)
{
  const char *v = redis_ops_field(r, name, NULL);
  return v && *v ? v : def;
}

/* The record's table: the stored field, else decoded from its body. */
static const char *record_table(const struct admin_target *t, struct arena *a,
                                const struct redis_ops_record *rec)
{
  size_t blen = 0;
  const char *v = redis_ops_field(rec, "table", NULL), *body;
  struct dv_options opt;
  struct cdc_change ch;
  struct app_err e;
  struct arena scratch;
  const char *out = NULL;
  if (v && *v)
    return v;
  body = redis_ops_field(rec, "body", &blen);
  if (!body || !blen)
    return NULL;
  memset(&opt, 0, sizeof opt);
  opt.max_body_bytes = t->cfg->max_message_bytes;
  opt.max_depth = t->cfg->max_json_depth;
  arena_init(&scratch, 32 * (blen + 1) + ((size_t)4 << 20));
  if (dv_decode(&scratch, field_or(rec, "content_type", NULL), body, blen, &opt, &ch, &e) ==
          APP_OK &&
      ch.table)
    out = arena_strndup(a, ch.table, strlen(ch.table));
  arena_cleanup(&scratch);
  return out;
}

static bool ci_contains(const char *hay, const char *needle)
{
  size_t n = strlen(needle);
  for (; hay && *hay; hay++)
    if (!strncasecmp(hay, needle, n))
      return true;
  return !n;
}

static bool matches(const struct admin_target *t, struct arena *a, const struct admin_filter *f,
                    const struct redis_ops_record *rec)
{
  const char *kind = field_or(rec, "kind", "poison");
  const char *state = field_or(rec, "state", "open");
  if (f->kind && strcmp(kind, f->kind))
    return false;
  if (strcmp(f->state, "all") && strcmp(state, f->state))
    return false;
  if (f->reason && !ci_contains(field_or(rec, "reason", ""), f->reason))
    return false;
  if (f->table) {
    const char *tb = record_table(t, a, rec);
    if (!tb || strcasecmp(tb, f->table))
      return false;
  }
  return true;
}

/* Up to f->limit matching records, newest first, scanning at most
 * CDC_POISON_MAXLEN + PAGE entries. */
static enum app_result find(const struct admin_target *t, struct arena *a,
                            const struct admin_filter *f, struct redis_ops_record ***out, size_t *n,
                            size_t *scanned, struct app_err *err)
{
  char end[64];
  size_t cap = (size_t)t->cfg->poison_maxlen + PAGE, seen = 0;
  struct redis_ops_record **m = arena_alloc(a, (f->limit + 1) * sizeof *m);
  int64_t deadline = sink_now_ms() + t->cfg->retry_budget_ms;
  *n = 0;
  if (!m)
    return app_err_set(err, APP_ERR_LIMIT, "out of request memory");
  snprintf(end, sizeof end, "%s", f->to);
  while (*n < f->limit && seen < cap) {
    struct redis_ops_record *page;
    size_t k, i;
    APP_RETURN_IF_FAILED(redis_ops_xrevrange(t->pool, t->cfg->poison_stream, end, f->from, PAGE, a,
                                             &page, &k, deadline, err));
    for (i = 0; i < k && *n < f->limit; i++)
      if (matches(t, a, f, &page[i]))
        m[(*n)++] = &page[i];
    seen += k;
    if (k < PAGE)
      break;
    snprintf(end, sizeof end, "(%s", page[k - 1].id);
  }
  *out = m;
  *scanned = seen;
  return APP_OK;
}

static enum app_result get_one(const struct admin_target *t, struct arena *a, const char *id,
                               struct redis_ops_record **out, struct app_err *err)
{
  size_t k = 0;
  struct redis_ops_record *page;
  APP_RETURN_IF_FAILED(redis_ops_xrevrange(t->pool, t->cfg->poison_stream, id, id, 1, a, &page, &k,
                                           sink_now_ms() + t->cfg->retry_budget_ms, err));
  if (!k)
    return app_err_set(err, APP_ERR_NOTFOUND, "no record %s", id);
  *out = page;
  return APP_OK;
}

static enum app_result put_str(struct buf *b, const char *name, const char *v, bool *first)
{
  if (!v || !*v)
    return APP_OK;
  APP_RETURN_IF_FAILED(buf_printf(b, "%s\"%s\":", *first ? "" : ",", name));
  *first = false;
  return buf_append_json_str(b, v, strlen(v));
}

static enum app_result put_num(struct buf *b, const char *name, const char *v, bool *first)
{
  char *end;
  long long x;
  if (!v || !*v)
    return APP_OK;
  x = strtoll(v, &end, 10);
  if (*end)
    return put_str(b, name, v, first);
  APP_RETURN_IF_FAILED(buf_printf(b, "%s\"%s\":%lld", *first ? "" : ",", name, x));
  *first = false;
  return APP_OK;
}

/* One record as a JSON object; with_body adds the body (as "body" when it
 * is valid UTF-8, else "body_base64") and the application properties. */
static enum app_result render(const struct admin_target *t, struct arena *a, struct buf *b,
                              const struct redis_ops_record *rec, bool with_body)
{
  static const char *const strs[] = {"reason",   "description",   "previous_reason", "message_id",
                                     "function", "invocation_id", "record_id",       "content_type",
                                     "outcome",  "decode_error"};
  static const char *const nums[] = {"delivery_count", "enqueued_ms", "recorded_ms", "replays",
                                     "replayed_ms"};
  bool first = false;
  size_t i, blen = 0;
  const char *body = redis_ops_field(rec, "body", &blen);
  const char *tb = record_table(t, a, rec);
  APP_RETURN_IF_FAILED(buf_printf(b, "{\"id\":\"%s\",\"kind\":\"%s\",\"state\":\"%s\"", rec->id,
                                  field_or(rec, "kind", "poison"), field_or(rec, "state", "open")));
  APP_RETURN_IF_FAILED(put_str(b, "table", tb, &first));
  for (i = 0; i < sizeof strs / sizeof strs[0]; i++)
    APP_RETURN_IF_FAILED(put_str(b, strs[i], redis_ops_field(rec, strs[i], NULL), &first));
  for (i = 0; i < sizeof nums / sizeof nums[0]; i++)
    APP_RETURN_IF_FAILED(put_num(b, nums[i], redis_ops_field(rec, nums[i], NULL), &first));
  APP_RETURN_IF_FAILED(buf_printf(b, ",\"body_bytes\":%zu", blen));
  if (with_body && body) {
    const char *props = redis_ops_field(rec, "app_properties", NULL);
    if (json_utf8_valid(body, blen, NULL)) {
      APP_RETURN_IF_FAILED(buf_append_str(b, ",\"body\":"));
      APP_RETURN_IF_FAILED(buf_append_json_str(b, body, blen));
    } else {
      static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      size_t j;
      APP_RETURN_IF_FAILED(buf_append_str(b, ",\"body_base64\":\""));
      for (j = 0; j < blen; j += 3) {
        unsigned v = (unsigned char)body[j] << 16;
        char q[4];
        if (j + 1 < blen)
          v |= (unsigned char)body[j + 1] << 8;
        if (j + 2 < blen)
          v |= (unsigned char)body[j + 2];
        q[0] = tbl[(v >> 18) & 63];
        q[1] = tbl[(v >> 12) & 63];
        q[2] = j + 1 < blen ? tbl[(v >> 6) & 63] : '=';
        q[3] = j + 2 < blen ? tbl[v & 63] : '=';
        APP_RETURN_IF_FAILED(buf_append(b, q, 4));
      }
      APP_RETURN_IF_FAILED(buf_append_char(b, '"'));
    }
    if (props && *props) {
      struct json *pj;
      struct app_err e;
      if (json_parse(a, props, strlen(props), 16, &pj, &e) == APP_OK) {
        APP_RETURN_IF_FAILED(buf_append_str(b, ",\"app_properties\":"));
        APP_RETURN_IF_FAILED(json_write(b, pj));
      }
    }
  }
  return buf_append_char(b, '}');
}

struct replay_result {
  const char *outcome; /* applied, stale, skipped, poison, failed */
  const char *reason;  /* poison reason or the failure */
  char new_id[48];
  enum app_result r; /* APP_OK, or the store's error (record left as it was) */
};

/* Replay rec: pipeline_replay, then replace the record with its outcome. */
static void replay_one(const struct admin_target *t, struct arena *a,
                       const struct redis_ops_record *rec, const char *invocation_id,
                       struct replay_result *rr)
{
  struct envelope_message m;
  struct pipeline_result pr;
  struct app_err err;
  struct redis_ops_kv *f;
  size_t i, n = 0, blen = 0;
  const char *props, *table;
  char replays[24], when[24];
  int64_t t0 = sink_now_ms();
  bool failed_again;
  struct buf lf;

  memset(rr, 0, sizeof *rr);
  memset(&m, 0, sizeof m);
  m.body = redis_ops_field(rec, "body", &blen);
  m.body_len = blen;
  m.message_id = redis_ops_field(rec, "message_id", NULL);
  m.content_type = field_or(rec, "content_type", NULL);
  m.delivery_count = (int)strtol(field_or(rec, "delivery_count", "0"), NULL, 10);
  m.enqueued_ms = strtoll(field_or(rec, "enqueued_ms", "0"), NULL, 10);
  m.sequence_number = -1;
  props = redis_ops_field(rec, "app_properties", NULL);
  if (props && *props) {
    struct json *pj;
    if (json_parse(a, props, strlen(props), 16, &pj, &err) == APP_OK)
      m.app_properties = pj;
  }
  if (!m.body) {
    rr->r = APP_ERR_INPUT;
    rr->outcome = "failed";
    rr->reason = "the record has no body";
    return;
  }
  rr->r = pipeline_replay(t->pipeline, a, &m, invocation_id, &pr, &err);
  if (rr->r != APP_OK) {
    rr->outcome = "failed";
    rr->reason = arena_strndup(a, err.msg, strlen(err.msg));
    LOG_ERROR("admin: replay of record %s failed (record kept as it was): %s", rec->id, err.msg);
    return;
  }
  failed_again = pr.poison > 0;
  rr->outcome = failed_again ? "poison" : pr.applied ? "applied" : pr.stale ? "stale" : "skipped";
  rr->reason = failed_again ? pr.poison_reason : NULL;

  /* the new record: every field but those the replay sets */
  f = arena_alloc(a, (rec->n + 8) * sizeof *f);
  if (!f) {
    rr->r = APP_ERR_LIMIT;
    rr->reason = "out of request memory";
    return;
  }
  for (i = 0; i < rec->n; i++) {
    const char *nm = rec->f[i].name;
    if (!strcmp(nm, "state") || !strcmp(nm, "outcome") || !strcmp(nm, "replays") ||
        !strcmp(nm, "replayed_ms") || (failed_again && !strcmp(nm, "reason")) ||
        (failed_again && !strcmp(nm, "previous_reason")))
      continue;
    f[n++] = rec->f[i];
  }
  snprintf(replays, sizeof replays, "%ld", strtol(field_or(rec, "replays", "0"), NULL, 10) + 1);
  snprintf(when, sizeof when, "%lld", (long long)wall_ms());
#define KV(k, v)                                                                                   \
  do {                                                                                             \
    f[n].name = (k);                                                                               \
    f[n].value = (v);                                                                              \
    f[n].len = strlen(v);                                                                          \
    n++;                                                                                           \
  } while (0)
  KV("state", failed_again ? "open" : "replayed");
  KV("outcome", rr->outcome);
  KV("replays", replays);
  KV("replayed_ms", when);
  if (failed_again) {
    KV("reason", pr.poison_reason ? pr.poison_reason : "poison");
    KV("previous_reason", field_or(rec, "reason", ""));
  }
#undef KV
  rr->r = redis_ops_xreplace(t->pool, t->cfg->poison_stream, t->cfg->poison_maxlen, rec->id, f, n,
                             sink_now_ms() + t->cfg->retry_budget_ms, rr->new_id, &err);
  if (rr->r != APP_OK) {
    rr->reason = arena_strndup(a, err.msg, strlen(err.msg));
    LOG_ERROR("admin: replay of record %s: %s; the record was not updated", rec->id, err.msg);
  }
  table = failed_again ? (pr.poison_table ? pr.poison_table : record_table(t, a, rec))
                       : record_table(t, a, rec);
  if (failed_again)
    opsm_count(table, OPS_REPLAY_FAILED, 1);
  buf_init(&lf, 4096);
  log_field_str(&lf, "event", "replay");
  log_field_str(&lf, "mid", m.message_id);
  log_field_str(&lf, "table", table);
  log_field_str(&lf, "record", rec->id);
  log_field_str(&lf, "outcome", rr->outcome);
  log_field_int(&lf, "latency_ms", sink_now_ms() - t0);
  log_field_str(&lf, "reason", rr->reason);
  log_event(failed_again ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, lf.data,
            "replayed record %s (message %s): %s%s%s", rec->id, m.message_id ? m.message_id : "-",
            rr->outcome, rr->reason ? ": " : "", rr->reason ? rr->reason : "");
  buf_cleanup(&lf);
}

static enum app_result put_replay(struct buf *b, const char *id, const struct replay_result *rr)
{
  APP_RETURN_IF_FAILED(buf_printf(b, "{\"id\":\"%s\",\"outcome\":\"%s\"", id, rr->outcome));
  if (rr->new_id[0])
    APP_RETURN_IF_FAILED(buf_printf(b, ",\"new_id\":\"%s\"", rr->new_id));
  if (rr->reason) {
    APP_RETURN_IF_FAILED(buf_append_str(b, ",\"reason\":"));
    APP_RETURN_IF_FAILED(buf_append_json_str(b, rr->reason, strlen(rr->reason)));
  }
  return buf_append_char(b, '}');
}

/* Replays are rare: their counts go to the shared metrics at once (the
 * instance serving an HTTP function may be gone before its next flush). */
static void flush_metrics(const struct admin_target *t)
{
  struct app_err err;
  if (t->ops && opsstore_flush(t->ops, sink_now_ms() + 2000, &err) != APP_OK)
    LOG_WARN("metrics flush after a replay failed (kept for the next one): %s", err.msg);
}

static bool id_ok(const char *id)
{
  size_t i, dash = 0;
  if (!*id || strlen(id) > 40)
    return false;
  for (i = 0; id[i]; i++) {
    if (id[i] == '-')
      dash++;
    else if (!isdigit((unsigned char)id[i]))
      return false;
  }
  return dash == 1 && id[0] != '-' && id[i - 1] != '-';
}

bool admin_parse(struct arena *a, const char *method, const char *path, const char *query,
                 struct admin_request *rq, int *status, char *why, size_t cap)
{
  const char *rest = path ? strstr(path, "cdc/admin") : NULL;
  bool is_get = method && !strcasecmp(method, "GET"),
       is_post = method && !strcasecmp(method, "POST"),
       is_del = method && !strcasecmp(method, "DELETE");

  memset(rq, 0, sizeof *rq);
  *status = 404;
  if (!rest) {
    snprintf(why, cap, "no such admin path");
    return false;
  }
  rest += strlen("cdc/admin");
  while (*rest == '/')
    rest++;
  if (!strncmp(rest, "records", 7) && (rest[7] == '\0' || rest[7] == '/')) {
    const char *p = rest + 7, *sub;
    size_t k;
    while (*p == '/')
      p++;
    if (!*p) {
      rq->op = ADMIN_RECORDS;
    } else {
      k = strcspn(p, "/");
      if (k >= sizeof rq->id) {
        *status = 400;
        snprintf(why, cap, "record id too long");
        return false;
      }
      memcpy(rq->id, p, k);
      rq->id[k] = '\0';
      sub = p + k;
      while (*sub == '/')
        sub++;
      if (!id_ok(rq->id)) {
        *status = 400;
        snprintf(why, cap, "a record id is a stream entry id such as 1795757079863-0");
        return false;
      }
      if (!*sub) {
        rq->op = ADMIN_RECORD;
      } else if (!strcmp(sub, "replay")) {
        rq->op = ADMIN_REPLAY_ONE;
      } else {
        snprintf(why, cap, "no such admin path");
        return false;
      }
    }
  } else if (!strcmp(rest, "replay")) {
    rq->op = ADMIN_REPLAY;
  } else {
    snprintf(why, cap, "no such admin path (records, records/<id>, records/<id>/replay, replay)");
    return false;
  }
  if (((rq->op == ADMIN_RECORDS || rq->op == ADMIN_RECORD) && !is_get && !is_del) ||
      ((rq->op == ADMIN_REPLAY_ONE || rq->op == ADMIN_REPLAY) && !is_post)) {
    *status = 405;
    snprintf(why, cap, "records: GET or DELETE; records/<id>: GET or DELETE; replay: POST");
    return false;
  }
  rq->del = is_del;
  if ((rq->op == ADMIN_RECORDS || rq->op == ADMIN_REPLAY) &&
      !parse_filter(a, query, &rq->f, why, cap)) {
    *status = 400;
    return false;
  }
  if (rq->op == ADMIN_RECORDS && is_del && !rq->f.any && !rq->f.all) {
    *status = 400;
    snprintf(why, cap, "deleting by filter needs kind, table, reason, from or to (or all=true)");
    return false;
  }
  *status = 200;
  return true;
}

enum app_result admin_handle(const struct admin_target *t, struct arena *a, const char *method,
                             const char *path, const char *query, const char *invocation_id,
                             int *status, struct buf *body)
{
  char why[160];
  struct admin_request rq;
  struct app_err err;
  enum app_result r;
  const char *id = rq.id;
  struct admin_filter f;
  bool is_get, is_del;
  enum admin_op what;

  *status = 200;
  if (!t->pool)
    return answer_error(body, status, 501, "NotImplemented",
                        "the admin API needs the records in Redis (CDC_TARGET=redis or "
                        "redis+sql); with sql alone, query _cdc_poison");
  if (!admin_parse(a, method, path, query, &rq, status, why, sizeof why))
    return answer_error(body, status, *status,
                        *status == 405   ? "MethodNotAllowed"
                        : *status == 404 ? "NotFound"
                                         : "BadRequest",
                        why);
  f = rq.f;
  what = rq.op;
  is_del = rq.del;
  is_get = !is_del && (what == ADMIN_RECORDS || what == ADMIN_RECORD);
  if (what == ADMIN_RECORD || what == ADMIN_REPLAY_ONE) {
    struct redis_ops_record *rec = NULL;
    r = get_one(t, a, id, &rec, &err);
    if (r != APP_OK)
      return store_error(body, status, r, &err);
    if (what == ADMIN_RECORD && is_get)
      return render(t, a, body, rec, true);
    if (what == ADMIN_RECORD) {
      int deleted = 0;
      r = redis_ops_xdel(t->pool, t->cfg->poison_stream, id, &deleted,
                         sink_now_ms() + t->cfg->retry_budget_ms, &err);
      if (r != APP_OK)
        return store_error(body, status, r, &err);
      LOG_INFO("admin: deleted record %s", id);
      return buf_printf(body, "{\"deleted\":%d}", deleted);
    }
    {
      struct replay_result rr;
      replay_one(t, a, rec, invocation_id, &rr);
      flush_metrics(t);
      if (rr.r != APP_OK && rr.r != APP_ERR_INPUT) {
        err.code = rr.r;
        snprintf(err.msg, sizeof err.msg, "%s", rr.reason ? rr.reason : "");
        return store_error(body, status, rr.r, &err);
      }
      return put_replay(body, id, &rr);
    }
  }

  /* by filter */
  {
    struct redis_ops_record **m;
    size_t n = 0, scanned = 0, i;
    r = find(t, a, &f, &m, &n, &scanned, &err);
    if (r != APP_OK)
      return store_error(body, status, r, &err);
    if (what == ADMIN_RECORDS && is_get) {
      APP_RETURN_IF_FAILED(buf_append_str(body, "{\"records\":["));
      for (i = 0; i < n; i++) {
        if (i)
          APP_RETURN_IF_FAILED(buf_append_char(body, ','));
        APP_RETURN_IF_FAILED(render(t, a, body, m[i], false));
      }
      return buf_printf(body, "],\"count\":%zu,\"scanned\":%zu}", n, scanned);
    }
    if (what == ADMIN_RECORDS) {
      size_t deleted = 0;
      for (i = 0; i < n; i++) {
        int d = 0;
        r = redis_ops_xdel(t->pool, t->cfg->poison_stream, m[i]->id, &d,
                           sink_now_ms() + t->cfg->retry_budget_ms, &err);
        if (r != APP_OK)
          return store_error(body, status, r, &err);
        deleted += (size_t)d;
      }
      LOG_INFO("admin: deleted %zu records by filter", deleted);
      return buf_printf(body, "{\"deleted\":%zu}", deleted);
    }
    {
      size_t ok = 0, again = 0, failed = 0;
      APP_RETURN_IF_FAILED(buf_append_str(body, "{\"results\":["));
      for (i = 0; i < n; i++) {
        struct replay_result rr;
        replay_one(t, a, m[i], invocation_id, &rr);
        if (rr.r != APP_OK)
          failed++;
        else if (!strcmp(rr.outcome, "poison"))
          again++;
        else
          ok++;
        if (i)
          APP_RETURN_IF_FAILED(buf_append_char(body, ','));
        APP_RETURN_IF_FAILED(put_replay(body, m[i]->id, &rr));
        if (rr.r != APP_OK && rr.r != APP_ERR_INPUT)
          break; /* the store or the target is down: stop here */
      }
      flush_metrics(t);
      return buf_printf(body, "],\"replayed\":%zu,\"failed_again\":%zu,\"errors\":%zu}", ok, again,
                        failed);
    }
  }
}

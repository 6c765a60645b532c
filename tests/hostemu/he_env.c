/* he_env.c - invocation envelopes (see he_env.h).
 *
 * Metadata is first collected as an ordered list of (key, JSON text)
 * entries, the way the host's binding-data dictionary is built: Service Bus
 * keys in the order the extension adds them, then keys from the body that
 * replace same-named keys in place (the dictionary ignores case), then sys.
 * Entries whose value is null are dropped when the list is written. */
#include "he_env.h"

#include "common/base64.h"
#include "common/json.h"
#include "he_nj.h"
#include "he_util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_ENTRIES 512

struct entry {
  const char *key;
  const char *val; /* JSON text, or NULL for a null value */
};

struct entries {
  struct entry v[MAX_ENTRIES];
  size_t n;
};

void he_env_init(struct he_env *e)
{
  buf_init(&e->s1, 0);
  buf_init(&e->s2, 0);
  buf_init(&e->s3, 0);
  buf_init(&e->d, 0);
  arena_init(&e->a, 0);
}

void he_env_cleanup(struct he_env *e)
{
  if (!e)
    return;
  buf_cleanup(&e->s1);
  buf_cleanup(&e->s2);
  buf_cleanup(&e->s3);
  buf_cleanup(&e->d);
  arena_cleanup(&e->a);
}

static void put(struct entries *es, const char *key, const char *val)
{
  if (es->n < MAX_ENTRIES) {
    es->v[es->n].key = key;
    es->v[es->n].val = val;
    es->n++;
  }
}

/* Dictionary indexer set: replace in place ignoring case, else append. */
static void set_ci(struct entries *es, const char *key, const char *val)
{
  size_t i;
  for (i = 0; i < es->n; i++) {
    if (!strcasecmp(es->v[i].key, key)) {
      es->v[i].val = val;
      return;
    }
  }
  put(es, key, val);
}

static bool has_ci(const struct entries *es, const char *key)
{
  size_t i;
  for (i = 0; i < es->n; i++)
    if (!strcasecmp(es->v[i].key, key) && es->v[i].val)
      return true;
  return false;
}

/* Copy the text accumulated in b into the arena. */
static const char *keep(struct he_env *e, const struct buf *b)
{
  char *p = arena_strndup(&e->a, b->data ? b->data : "", b->len);
  APP_ASSERT(p != NULL);
  return p;
}

static const char *str2(struct he_env *e, const char *s)
{
  if (!s)
    return NULL;
  buf_reset(&e->s3);
  APP_ASSERT(he_nj_str2(&e->s3, s, strlen(s)) == APP_OK);
  return keep(e, &e->s3);
}

static const char *date_text(struct he_env *e, int64_t ticks, enum he_date_fmt fmt)
{
  char d[48], q[52];
  size_t n = he_date_format(ticks, fmt, d);
  snprintf(q, sizeof q, "\"%.*s\"", (int)n, d);
  return arena_strndup(&e->a, q, strlen(q));
}

static const char *int_text(struct he_env *e, int64_t v)
{
  char t[32];
  snprintf(t, sizeof t, "\"%lld\"", (long long)v);
  return arena_strndup(&e->a, t, strlen(t));
}

static const char *sys_text(struct he_env *e, const char *function, int64_t now_ticks)
{
  char guid[37], date[48];
  buf_reset(&e->s3);
  he_guid(guid);
  he_date_format(now_ticks, HE_DATE_FULL_Z, date);
  APP_ASSERT(buf_append_str(&e->s3, "{\"MethodName\":") == APP_OK &&
             he_nj_str(&e->s3, function, strlen(function)) == APP_OK &&
             buf_printf(&e->s3, ",\"UtcNow\":\"%s\",\"RandGuid\":\"%s\"}", date, guid) == APP_OK);
  return keep(e, &e->s3);
}

/* ServiceBusClient serialised by JObject.FromObject: its public
 * properties. The shape is not verified against a live host (protocol doc
 * 2.4 says "ignore it"); it is sent so handlers learn to ignore it. */
static const char *client_text(struct he_env *e, const char *ns)
{
  char guid[37];
  he_guid(guid);
  buf_reset(&e->s3);
  APP_ASSERT(buf_printf(&e->s3,
                        "{\"FullyQualifiedNamespace\":\"%s\",\"IsClosed\":false,"
                        "\"TransportType\":0,\"Identifier\":\"%s-%s\"}",
                        ns, ns, guid) == APP_OK);
  return keep(e, &e->s3);
}

static void add_actions(struct he_env *e, struct entries *es, const char *ns)
{
  put(es, "MessageReceiver", "{}");
  put(es, "MessageSession", "{}");
  put(es, "MessageActions", "{}");
  put(es, "SessionActions", "{}");
  put(es, "ReceiveActions", "{}");
  put(es, "Client", client_text(e, ns));
}

bool he_env_looks_json(const char *s, size_t n)
{
  while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '\v' || *s == '\f')) {
    s++;
    n--;
  }
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n' ||
               s[n - 1] == '\v' || s[n - 1] == '\f'))
    n--;
  return n >= 2 && ((s[0] == '{' && s[n - 1] == '}') || (s[0] == '[' && s[n - 1] == ']'));
}

/* Utility.ApplyBindingData on a string trigger value: if it looks like a
 * JSON object, every top-level non-array, non-null property becomes
 * binding data: objects as JObject (re-serialised by Newtonsoft), other
 * values as (string)JValue, which the envelope then double-encodes. All or
 * nothing: any parse error adds nothing (the host swallows the exception). */
static void apply_binding_data(struct he_env *e, struct entries *es, const char *s, size_t n)
{
  struct json *root = NULL;
  const struct json *c, *d;
  struct app_err perr;
  struct entry found[MAX_ENTRIES];
  size_t nf = 0, i;

  if (!he_env_looks_json(s, n))
    return;
  if (json_parse(&e->a, s, n, JSON_DEFAULT_MAX_DEPTH * 4, &root, &perr) != APP_OK ||
      root->type != JSON_OBJECT)
    return;
  for (c = root->child; c; c = c->next) {
    const char *val;
    /* JObject.Parse keeps the last of duplicate names */
    for (d = c->next; d; d = d->next)
      if (!strcmp(d->key, c->key))
        break;
    if (d)
      continue;
    if (c->type == JSON_NULL || c->type == JSON_ARRAY)
      continue;
    buf_reset(&e->s3);
    if (c->type == JSON_OBJECT) {
      if (he_nj_write_parsed(&e->s3, c) != APP_OK)
        return;
      val = keep(e, &e->s3);
    } else {
      buf_reset(&e->s1);
      if (he_nj_scalar_text(&e->s1, c) != APP_OK)
        return;
      if (he_nj_str2(&e->s3, e->s1.data ? e->s1.data : "", e->s1.len) != APP_OK)
        return;
      val = keep(e, &e->s3);
    }
    if (nf < MAX_ENTRIES) {
      found[nf].key = c->key;
      found[nf].val = val;
      nf++;
    }
  }
  for (i = 0; i < nf; i++)
    set_ci(es, found[i].key, found[i].val);
}

/* base64 of a message body: the cached text when the engine has one. */
static enum app_result append_b64(struct buf *b, const struct he_sb_message *m)
{
  if (m->b64)
    return buf_append(b, m->b64, m->b64_len);
  return base64_encode_buf(b, m->body, m->len);
}

static enum app_result write_envelope(struct buf *out, const char *binding, const char *data,
                                      size_t data_len, const struct entries *es)
{
  size_t i;
  bool first = true;
  APP_RETURN_IF_FAILED(buf_append_str(out, "{\"Data\":{"));
  APP_RETURN_IF_FAILED(he_nj_str(out, binding, strlen(binding)));
  APP_RETURN_IF_FAILED(buf_append_char(out, ':'));
  APP_RETURN_IF_FAILED(buf_append(out, data, data_len));
  APP_RETURN_IF_FAILED(buf_append_str(out, "},\"Metadata\":{"));
  for (i = 0; i < es->n; i++) {
    const char *k = es->v[i].key;
    if (!es->v[i].val || he_has_suffix_ci(k, "trigger"))
      continue;
    if (!first)
      APP_RETURN_IF_FAILED(buf_append_char(out, ','));
    first = false;
    APP_RETURN_IF_FAILED(he_nj_str(out, k, strlen(k)));
    APP_RETURN_IF_FAILED(buf_append_char(out, ':'));
    APP_RETURN_IF_FAILED(buf_append_str(out, es->v[i].val));
  }
  return buf_append_str(out, "}}");
}

static void add_single_keys(struct he_env *e, struct entries *es, const struct he_sb_message *m)
{
  const struct he_msg_props *p = m->props;
  put(es, "DeliveryCount", int_text(e, m->delivery_count));
  put(es, "DeadLetterSource", str2(e, p->dead_letter_source));
  put(es, "LockToken", str2(e, m->lock_token));
  put(es, "ExpiresAtUtc", date_text(e, m->expires_ticks, HE_DATE_SECONDS));
  put(es, "ExpiresAt", date_text(e, m->expires_ticks, HE_DATE_SECONDS_OFFSET));
  put(es, "EnqueuedTimeUtc", date_text(e, m->enqueued_ticks, HE_DATE_SECONDS));
  put(es, "EnqueuedTime", date_text(e, m->enqueued_ticks, HE_DATE_SECONDS_OFFSET));
  put(es, "MessageId", str2(e, m->message_id));
  put(es, "ContentType", str2(e, p->content_type));
  put(es, "ReplyTo", str2(e, p->reply_to));
  put(es, "SequenceNumber", int_text(e, m->sequence_number));
  put(es, "To", str2(e, p->to));
  put(es, "Subject", str2(e, p->subject));
  put(es, "Label", str2(e, p->subject));
  put(es, "CorrelationId", str2(e, p->correlation_id));
  put(es, "ApplicationProperties", p->app_props);
  put(es, "UserProperties", p->app_props);
  put(es, "SessionId", str2(e, p->session_id));
  put(es, "ReplyToSessionId", str2(e, p->reply_to_session_id));
  put(es, "PartitionKey", str2(e, p->partition_key));
  put(es, "TransactionPartitionKey", str2(e, p->transaction_partition_key));
}

enum sb_field {
  F_DELIVERY,
  F_DEADLETTER,
  F_LOCK,
  F_EXPIRES_UTC,
  F_EXPIRES,
  F_ENQUEUED_UTC,
  F_ENQUEUED,
  F_MESSAGE_ID,
  F_CONTENT_TYPE,
  F_REPLY_TO,
  F_SEQUENCE,
  F_TO,
  F_SUBJECT,
  F_CORRELATION,
  F_PROPS,
  F_SESSION,
  F_REPLY_SESSION,
  F_PARTITION
};

/* JsonConvert.SerializeObject of one per-message array, e.g. "[1,2]". */
static const char *array_text(struct he_env *e, struct he_sb_message *const *msgs, size_t n,
                              enum sb_field f)
{
  size_t i;
  buf_reset(&e->s1);
  APP_ASSERT(buf_append_char(&e->s1, '[') == APP_OK);
  for (i = 0; i < n; i++) {
    const struct he_sb_message *m = msgs[i];
    const struct he_msg_props *p = m->props;
    const char *s = NULL;
    char d[48];
    size_t dn;
    bool is_str = true;
    if (i)
      APP_ASSERT(buf_append_char(&e->s1, ',') == APP_OK);
    switch (f) {
    case F_DELIVERY:
      APP_ASSERT(buf_printf(&e->s1, "%d", m->delivery_count) == APP_OK);
      is_str = false;
      break;
    case F_SEQUENCE:
      APP_ASSERT(buf_printf(&e->s1, "%lld", (long long)m->sequence_number) == APP_OK);
      is_str = false;
      break;
    case F_EXPIRES_UTC:
    case F_EXPIRES:
    case F_ENQUEUED_UTC:
    case F_ENQUEUED:
      dn = he_date_format(
          f == F_EXPIRES_UTC || f == F_EXPIRES ? m->expires_ticks : m->enqueued_ticks,
          f == F_EXPIRES || f == F_ENQUEUED ? HE_DATE_FULL_OFFSET : HE_DATE_FULL, d);
      APP_ASSERT(buf_printf(&e->s1, "\"%.*s\"", (int)dn, d) == APP_OK);
      is_str = false;
      break;
    case F_PROPS:
      APP_ASSERT(buf_append_str(&e->s1, p->app_props) == APP_OK);
      is_str = false;
      break;
    case F_DEADLETTER: s = p->dead_letter_source; break;
    case F_LOCK: s = m->lock_token; break;
    case F_MESSAGE_ID: s = m->message_id; break;
    case F_CONTENT_TYPE: s = p->content_type; break;
    case F_REPLY_TO: s = p->reply_to; break;
    case F_TO: s = p->to; break;
    case F_SUBJECT: s = p->subject; break;
    case F_CORRELATION: s = p->correlation_id; break;
    case F_SESSION: s = p->session_id; break;
    case F_REPLY_SESSION: s = p->reply_to_session_id; break;
    case F_PARTITION: s = p->partition_key; break;
    }
    if (is_str) {
      if (s)
        APP_ASSERT(he_nj_str(&e->s1, s, strlen(s)) == APP_OK);
      else
        APP_ASSERT(buf_append_str(&e->s1, "null") == APP_OK);
    }
  }
  APP_ASSERT(buf_append_char(&e->s1, ']') == APP_OK);
  buf_reset(&e->s3);
  APP_ASSERT(he_nj_str(&e->s3, e->s1.data, e->s1.len) == APP_OK);
  return keep(e, &e->s3);
}

static void add_batch_keys(struct he_env *e, struct entries *es, struct he_sb_message *const *msgs,
                           size_t n)
{
  const char *partition = array_text(e, msgs, n, F_PARTITION);
  const char *subjects = array_text(e, msgs, n, F_SUBJECT);
  const char *props = array_text(e, msgs, n, F_PROPS);
  put(es, "DeliveryCountArray", array_text(e, msgs, n, F_DELIVERY));
  put(es, "DeadLetterSourceArray", array_text(e, msgs, n, F_DEADLETTER));
  put(es, "LockTokenArray", array_text(e, msgs, n, F_LOCK));
  put(es, "ExpiresAtUtcArray", array_text(e, msgs, n, F_EXPIRES_UTC));
  put(es, "ExpiresAtArray", array_text(e, msgs, n, F_EXPIRES));
  put(es, "EnqueuedTimeUtcArray", array_text(e, msgs, n, F_ENQUEUED_UTC));
  put(es, "EnqueuedTimeArray", array_text(e, msgs, n, F_ENQUEUED));
  put(es, "MessageIdArray", array_text(e, msgs, n, F_MESSAGE_ID));
  put(es, "ContentTypeArray", array_text(e, msgs, n, F_CONTENT_TYPE));
  put(es, "ReplyToArray", array_text(e, msgs, n, F_REPLY_TO));
  put(es, "SequenceNumberArray", array_text(e, msgs, n, F_SEQUENCE));
  put(es, "ToArray", array_text(e, msgs, n, F_TO));
  put(es, "SubjectArray", subjects);
  put(es, "LabelArray", subjects);
  put(es, "CorrelationIdArray", array_text(e, msgs, n, F_CORRELATION));
  put(es, "ApplicationPropertiesArray", props);
  put(es, "UserPropertiesArray", props);
  put(es, "SessionIdArray", array_text(e, msgs, n, F_SESSION));
  put(es, "ReplyToSessionIdArray", array_text(e, msgs, n, F_REPLY_SESSION));
  put(es, "PartitionKeyArray", partition);
  /* the extension fills TransactionPartitionKeyArray with the partition
   * keys (a bug in ServiceBusTriggerBindingStrategy, kept here) */
  put(es, "TransactionPartitionKeyArray", partition);
}

enum app_result he_env_servicebus(struct he_env *e, struct buf *out, const struct he_sb_target *t,
                                  struct he_sb_message *const *msgs, size_t n, int64_t now_ticks,
                                  struct he_env_notes *notes, struct app_err *err)
{
  static struct entries es; /* large; the emulator is single-threaded */
  enum app_result r;
  struct buf *data = &e->d;
  size_t i;
  bool lossy = false;

  APP_ASSERT(n >= 1 && (n == 1 || t->many));
  arena_reset(&e->a);
  es.n = 0;
  add_actions(e, &es, t->sb_namespace);
  if (t->many)
    add_batch_keys(e, &es, msgs, n);
  else
    add_single_keys(e, &es, msgs[0]);

  /* Data. Base64 needs no escaping, so binary values are written straight
   * into their (double-encoded) place; string bodies are decoded as .NET
   * decodes them and escaped once or twice in a single pass. */
  buf_reset(data);
  r = APP_OK;
  if (!t->many && t->binary) {
    r = buf_append_char(data, '"');
    if (r == APP_OK)
      r = append_b64(data, msgs[0]);
    if (r == APP_OK)
      r = buf_append_char(data, '"');
  } else if (!t->many) {
    bool l = false;
    buf_reset(&e->s1);
    r = he_nj_utf8_lossy(&e->s1, msgs[0]->body, msgs[0]->len, &l);
    lossy = l;
    if (r == APP_OK)
      r = he_nj_str2(data, e->s1.data ? e->s1.data : "", e->s1.len);
    if (r == APP_OK)
      apply_binding_data(e, &es, e->s1.data ? e->s1.data : "", e->s1.len);
  } else {
    r = buf_append(data, "\"[", 2);
    for (i = 0; i < n && r == APP_OK; i++) {
      bool l = false;
      r = buf_append(data, i ? ",\\\"" : "\\\"", i ? 3 : 2);
      if (r != APP_OK)
        break;
      if (t->binary) {
        r = append_b64(data, msgs[i]);
      } else {
        buf_reset(&e->s1);
        r = he_nj_utf8_lossy(&e->s1, msgs[i]->body, msgs[i]->len, &l);
        lossy |= l;
        if (r == APP_OK)
          r = he_nj_str2_content(data, e->s1.data ? e->s1.data : "", e->s1.len);
      }
      if (r == APP_OK)
        r = buf_append(data, "\\\"", 2);
    }
    if (r == APP_OK)
      r = buf_append(data, "]\"", 2);
  }
  if (r != APP_OK)
    return app_err_set(err, r, "building the envelope: %s", app_result_str(r));
  put(&es, "sys", sys_text(e, t->function, now_ticks));
  /* "sys" is added by the SDK after the trigger data: it wins */
  for (i = 0; i + 1 < es.n; i++)
    if (!strcasecmp(es.v[i].key, "sys"))
      es.v[i].val = NULL;
  if (notes)
    notes->lossy_utf8 = lossy;
  r = write_envelope(out, t->binding, data->data, data->len, &es);
  if (r != APP_OK)
    return app_err_set(err, r, "envelope larger than the request limit");
  return APP_OK;
}

/* ---- HTTP trigger ---- */

struct kv {
  const char *key;
  struct buf vals; /* values joined with ',' (StringValues.ToString()) */
  const char **list;
  size_t n;
};

static bool is_octet_or_multipart(const struct he_http_request *req)
{
  size_t i;
  for (i = 0; i < req->n_headers; i++) {
    const char *v = req->headers[i].value;
    if (strcasecmp(req->headers[i].name, "Content-Type"))
      continue;
    while (*v == ' ')
      v++;
    return !strncasecmp(v, "application/octet-stream", 24) || strcasestr(v, "multipart/") != NULL;
  }
  return false;
}

enum app_result he_env_http(struct he_env *e, struct buf *out, const char *function,
                            const char *binding, const struct he_http_request *req,
                            const struct he_route_param *params, size_t n_params, int64_t now_ticks,
                            struct app_err *err)
{
  static struct entries es;
  enum app_result r = APP_OK;
  struct buf *d = &e->d;
  /* query pairs grouped by name (case-insensitive, first spelling kept) */
  const char *qk[128], *qv[128];
  char *qjoined[128];
  size_t nq = 0, i, j;
  bool first;

  arena_reset(&e->a);
  es.n = 0;
  if (req->query && *req->query) {
    const char *p = req->query;
    while (*p) {
      const char *amp = strchr(p, '&'), *eq;
      size_t len = amp ? (size_t)(amp - p) : strlen(p);
      char *k, *v;
      eq = memchr(p, '=', len);
      if (len > 0) {
        k = he_url_decode(&e->a, p, eq ? (size_t)(eq - p) : len, true);
        v = eq ? he_url_decode(&e->a, eq + 1, len - (size_t)(eq - p) - 1, true)
               : arena_strndup(&e->a, "", 0);
        APP_ASSERT(k && v);
        for (j = 0; j < nq; j++)
          if (!strcasecmp(qk[j], k))
            break;
        if (j < nq) {
          size_t ol = strlen(qjoined[j]), vl = strlen(v);
          char *nv = arena_alloc(&e->a, ol + vl + 2);
          APP_ASSERT(nv);
          memcpy(nv, qjoined[j], ol);
          nv[ol] = ',';
          memcpy(nv + ol + 1, v, vl + 1);
          qjoined[j] = nv;
        } else if (nq < 128) {
          qk[nq] = k;
          qv[nq] = v;
          qjoined[nq] = v;
          nq++;
        }
      }
      p += len;
      if (*p == '&')
        p++;
    }
  }
  (void)qv;

  /* Data.<req> */
  buf_reset(d);
  APP_ASSERT(buf_append_str(d, "{\"Url\":") == APP_OK);
  buf_reset(&e->s1);
  APP_ASSERT(buf_printf(&e->s1, "%s%s%s%s", req->base_url, req->path, req->query ? "?" : "",
                        req->query ? req->query : "") == APP_OK);
  APP_ASSERT(he_nj_str(d, e->s1.data, e->s1.len) == APP_OK);
  APP_ASSERT(buf_append_str(d, ",\"Method\":") == APP_OK);
  APP_ASSERT(he_nj_str(d, req->method, strlen(req->method)) == APP_OK);
  APP_ASSERT(buf_append_str(d, ",\"Query\":{") == APP_OK);
  for (j = 0; j < nq; j++) {
    if (j)
      APP_ASSERT(buf_append_char(d, ',') == APP_OK);
    APP_ASSERT(he_nj_str(d, qk[j], strlen(qk[j])) == APP_OK && buf_append_char(d, ':') == APP_OK &&
               he_nj_str(d, qjoined[j], strlen(qjoined[j])) == APP_OK);
  }
  APP_ASSERT(buf_append_str(d, "},\"Headers\":{") == APP_OK);
  first = true;
  for (i = 0; i < req->n_headers; i++) {
    /* one array per header name, in first-seen order */
    for (j = 0; j < i; j++)
      if (!strcasecmp(req->headers[j].name, req->headers[i].name))
        break;
    if (j < i)
      continue;
    if (!first)
      APP_ASSERT(buf_append_char(d, ',') == APP_OK);
    first = false;
    APP_ASSERT(he_nj_str(d, req->headers[i].name, strlen(req->headers[i].name)) == APP_OK &&
               buf_append_str(d, ":[") == APP_OK);
    for (j = i; j < req->n_headers; j++) {
      if (strcasecmp(req->headers[j].name, req->headers[i].name))
        continue;
      if (j != i)
        APP_ASSERT(buf_append_char(d, ',') == APP_OK);
      APP_ASSERT(he_nj_str(d, req->headers[j].value, strlen(req->headers[j].value)) == APP_OK);
    }
    APP_ASSERT(buf_append_char(d, ']') == APP_OK);
  }
  APP_ASSERT(buf_append_char(d, '}') == APP_OK);
  if (n_params) {
    APP_ASSERT(buf_append_str(d, ",\"Params\":{") == APP_OK);
    for (i = 0; i < n_params; i++) {
      if (i)
        APP_ASSERT(buf_append_char(d, ',') == APP_OK);
      APP_ASSERT(he_nj_str(d, params[i].name, strlen(params[i].name)) == APP_OK &&
                 buf_append_char(d, ':') == APP_OK &&
                 he_nj_str(d, params[i].value, strlen(params[i].value)) == APP_OK);
    }
    APP_ASSERT(buf_append_char(d, '}') == APP_OK);
  }
  APP_ASSERT(buf_append_str(d, ",\"Identities\":[]") == APP_OK);
  if (req->body_len > 0) {
    APP_ASSERT(buf_append_str(d, ",\"Body\":") == APP_OK);
    if (is_octet_or_multipart(req)) {
      r = buf_append_char(d, '"');
      if (r == APP_OK)
        r = base64_encode_buf(d, req->body, req->body_len);
      if (r == APP_OK)
        r = buf_append_char(d, '"');
    } else {
      buf_reset(&e->s1);
      r = he_nj_utf8_lossy(&e->s1, req->body, req->body_len, NULL);
      if (r == APP_OK)
        r = he_nj_str(d, e->s1.data, e->s1.len);
      /* binding data from a JSON body (only when Content-Length > 0) */
      if (r == APP_OK)
        apply_binding_data(e, &es, e->s1.data, e->s1.len);
    }
    if (r != APP_OK)
      return app_err_set(err, r, "request body too large");
  }
  APP_ASSERT(buf_append_char(d, '}') == APP_OK);

  /* Metadata: query values (except "code"), route values, Query, Headers */
  for (j = 0; j < nq; j++)
    if (strcasecmp(qk[j], "code"))
      set_ci(&es, qk[j], str2(e, qjoined[j]));
  for (i = 0; i < n_params; i++)
    set_ci(&es, params[i].name, str2(e, params[i].value));
  if (!has_ci(&es, "Query")) {
    buf_reset(&e->s1);
    APP_ASSERT(buf_append_char(&e->s1, '{') == APP_OK);
    for (j = 0; j < nq; j++) {
      if (j)
        APP_ASSERT(buf_append_char(&e->s1, ',') == APP_OK);
      APP_ASSERT(he_nj_str(&e->s1, qk[j], strlen(qk[j])) == APP_OK &&
                 buf_append_char(&e->s1, ':') == APP_OK &&
                 he_nj_str(&e->s1, qjoined[j], strlen(qjoined[j])) == APP_OK);
    }
    APP_ASSERT(buf_append_char(&e->s1, '}') == APP_OK);
    set_ci(&es, "Query", keep(e, &e->s1));
  }
  if (!has_ci(&es, "Headers")) {
    buf_reset(&e->s1);
    APP_ASSERT(buf_append_char(&e->s1, '{') == APP_OK);
    first = true;
    for (i = 0; i < req->n_headers; i++) {
      for (j = 0; j < i; j++)
        if (!strcasecmp(req->headers[j].name, req->headers[i].name))
          break;
      if (j < i)
        continue;
      if (!first)
        APP_ASSERT(buf_append_char(&e->s1, ',') == APP_OK);
      first = false;
      buf_reset(&e->s3);
      for (j = i; j < req->n_headers; j++) {
        if (strcasecmp(req->headers[j].name, req->headers[i].name))
          continue;
        if (e->s3.len)
          APP_ASSERT(buf_append_char(&e->s3, ',') == APP_OK);
        APP_ASSERT(buf_append_str(&e->s3, req->headers[j].value) == APP_OK);
      }
      APP_ASSERT(he_nj_str(&e->s1, req->headers[i].name, strlen(req->headers[i].name)) == APP_OK &&
                 buf_append_char(&e->s1, ':') == APP_OK &&
                 he_nj_str(&e->s1, e->s3.data ? e->s3.data : "", e->s3.len) == APP_OK);
    }
    APP_ASSERT(buf_append_char(&e->s1, '}') == APP_OK);
    set_ci(&es, "Headers", keep(e, &e->s1));
  }
  for (i = 0; i < es.n; i++)
    if (!strcasecmp(es.v[i].key, "sys"))
      es.v[i].val = NULL;
  put(&es, "sys", sys_text(e, function, now_ticks));
  r = write_envelope(out, binding, d->data, d->len, &es);
  if (r != APP_OK)
    return app_err_set(err, r, "envelope larger than the request limit");
  return APP_OK;
}

enum app_result he_env_timer(struct he_env *e, struct buf *out, const char *function,
                             const char *binding, int64_t interval_s, int64_t now_ticks,
                             struct app_err *err)
{
  char last[48], next[48], now[48];
  struct buf info;
  const char *sys;
  enum app_result r;
  const int64_t tps = 10000000; /* .NET ticks per second */

  arena_reset(&e->a);
  he_date_format(now_ticks - interval_s * tps, HE_DATE_FULL_Z, last);
  he_date_format(now_ticks + interval_s * tps, HE_DATE_FULL_Z, next);
  he_date_format(now_ticks, HE_DATE_FULL_Z, now);
  buf_init(&info, 4096);
  r = buf_printf(&info,
                 "{\"Schedule\":{\"AdjustForDST\":true},\"ScheduleStatus\":{\"Last\":\"%s\","
                 "\"Next\":\"%s\",\"LastUpdated\":\"%s\"},\"IsPastDue\":false}",
                 last, next, now);
  sys = sys_text(e, function, now_ticks);
  if (r == APP_OK)
    r = buf_append_str(out, "{\"Data\":{");
  if (r == APP_OK)
    r = he_nj_str(out, binding, strlen(binding));
  if (r == APP_OK)
    r = buf_append_char(out, ':');
  if (r == APP_OK)
    r = he_nj_str(out, info.data, info.len);
  if (r == APP_OK)
    r = buf_append_str(out, "},\"Metadata\":{");
  if (r == APP_OK)
    r = he_nj_str(out, binding, strlen(binding));
  if (r == APP_OK)
    r = buf_append_char(out, ':');
  if (r == APP_OK)
    r = buf_append(out, info.data, info.len);
  if (r == APP_OK)
    r = buf_printf(out, ",\"sys\":%s}}", sys);
  buf_cleanup(&info);
  if (r != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "timer envelope larger than --max-request-bytes");
  return APP_OK;
}

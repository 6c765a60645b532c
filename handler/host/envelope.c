/* envelope.c - parse the host's invocation envelope, build its response.
 *
 * Everything here is pure: the request body comes in as bytes, the result
 * lives in the caller's arena, errors name the JSON path that was wrong. */
#include "host/envelope.h"

#include "common/base64.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parse state shared by the helpers below. */
struct pctx {
  struct arena *a;
  const struct envelope_limits *lim;
  struct app_err *err;
  bool inplace; /* envelope_parse_mutable: decode what we own in place */
};

/* ---- error text --------------------------------------------------------- */

static const char *type_name(const struct json *v)
{
  if (!v)
    return "nothing";
  switch ((enum json_type)v->type) {
  case JSON_NULL: return "null";
  case JSON_FALSE:
  case JSON_TRUE: return "a boolean";
  case JSON_NUMBER: return "a number";
  case JSON_STRING: return "a string";
  case JSON_ARRAY: return "an array";
  case JSON_OBJECT: return "an object";
  }
  return "an unknown value";
}

/* "a number" / "the string \"abc\"": what was found, short enough for a
 * one-line message. Strings are cut at 40 bytes (on a UTF-8 boundary) and
 * control characters are shown as '?'. */
static void describe(const struct json *v, char *out, size_t n)
{
  if (v && v->type == JSON_STRING) {
    char tmp[48];
    size_t i, k = 0, len = v->len;
    bool cut = len > 40;
    if (cut) {
      len = 40;
      while (len > 0 && ((unsigned char)v->str[len] & 0xC0) == 0x80)
        len--;
    }
    for (i = 0; i < len && k < sizeof tmp - 1; i++) {
      unsigned char c = (unsigned char)v->str[i];
      tmp[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    tmp[k] = '\0';
    snprintf(out, n, "the string \"%s\"%s", tmp, cut ? "..." : "");
  } else if (v && v->type == JSON_NUMBER) {
    snprintf(out, n, "the number %.*s", v->len > 40 ? 40 : (int)v->len, v->str);
  } else {
    snprintf(out, n, "%s", type_name(v));
  }
}

static enum app_result fail_type(struct pctx *p, const char *where, const char *expected,
                                 const struct json *got)
{
  char what[96];
  describe(got, what, sizeof what);
  return app_err_set(p->err, APP_ERR_INPUT, "%s: expected %s, got %s", where, expected, what);
}

static enum app_result fail_nomem(struct pctx *p, const char *where)
{
  return app_err_set(p->err, APP_ERR_LIMIT,
                     "%s: the envelope needs more memory than the per-invocation limit", where);
}

/* ---- second decode ------------------------------------------------------- */

/* Decode s[0..n) as exactly one JSON value. *out is NULL when the text is
 * not JSON or has trailing data (the caller keeps the raw string: dates and
 * plain text are not double-encoded). Depth and memory limits are errors. */
static enum app_result decode_again(struct pctx *p, const char *where, const char *s, size_t n,
                                    struct json **out)
{
  struct app_err e2;
  enum app_result r;

  *out = NULL;
  if (n == 0)
    return APP_OK;
  r = json_parse(p->a, s, n, p->lim->max_json_depth, out, &e2);
  if (r == APP_OK)
    return APP_OK;
  *out = NULL;
  if (r == APP_ERR_INPUT)
    return APP_OK;
  return app_err_set(p->err, r, "%s: %s", where, e2.msg);
}

/* decode_again for a string of the envelope's own tree, whose bytes may be
 * rewritten (json.h) when nothing reads the old value afterwards: in place
 * with envelope_parse_mutable (a failed decode leaves s as it was). */
static enum app_result decode_again_owned(struct pctx *p, const char *where, const char *s,
                                          size_t n, struct json **out)
{
  struct app_err e2;
  enum app_result r;

  if (!p->inplace)
    return decode_again(p, where, s, n, out);
  *out = NULL;
  if (n == 0)
    return APP_OK;
  r = json_parse_mutable(p->a, (char *)s, n, p->lim->max_json_depth, out, &e2);
  if (r == APP_OK)
    return APP_OK;
  *out = NULL;
  if (r == APP_ERR_INPUT)
    return APP_OK;
  return app_err_set(p->err, r, "%s: %s", where, e2.msg);
}

static const char *skip_ws(const char *s, size_t n, size_t *out_left)
{
  while (n && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
    s++;
    n--;
  }
  *out_left = n;
  return s;
}

/* ---- dates ------------------------------------------------------------------ */

static bool digits(const char *s, size_t n, int count, int *out)
{
  int i, v = 0;
  if ((size_t)count > n)
    return false;
  for (i = 0; i < count; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil algorithm, written out from its description). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return dm[m - 1];
}

bool envelope_parse_time(const char *s, size_t n, int64_t *out_ms)
{
  int y, mo, d, h, mi, sec = 0, ms = 0, oh = 0, om = 0, sign = 0;
  size_t i = 0;

  if (!digits(s, n, 4, &y) || n < 16 || s[4] != '-' || !digits(s + 5, n - 5, 2, &mo) ||
      s[7] != '-' || !digits(s + 8, n - 8, 2, &d))
    return false;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
    return false;
  if (!digits(s + 11, n - 11, 2, &h) || s[13] != ':' || !digits(s + 14, n - 14, 2, &mi))
    return false;
  i = 16;
  if (i < n && s[i] == ':') {
    if (!digits(s + i + 1, n - i - 1, 2, &sec))
      return false;
    i += 3;
    if (i < n && (s[i] == '.' || s[i] == ',')) {
      int k = 0;
      i++;
      if (i >= n || s[i] < '0' || s[i] > '9')
        return false;
      for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
        if (k < 3)
          ms = ms * 10 + (s[i] - '0');
      for (; k < 3; k++)
        ms *= 10;
    }
  }
  if (i < n) {
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
      i++;
    } else if (s[i] == '+' || s[i] == '-') {
      sign = s[i] == '-' ? -1 : 1;
      i++;
      if (!digits(s + i, n - i, 2, &oh))
        return false;
      i += 2;
      if (i < n && s[i] == ':')
        i++;
      if (i < n) {
        if (!digits(s + i, n - i, 2, &om))
          return false;
        i += 2;
      }
      if (i != n || oh > 23 || om > 59)
        return false;
    } else {
      return false;
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
    return false;
  if (sec == 60) /* a leap second: keep the instant inside the minute */
    sec = 59;
  *out_ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
             (int64_t)sign * (oh * 3600 + om * 60)) *
                1000 +
            ms;
  return true;
}

/* ---- Metadata --------------------------------------------------------------- */

/* A copy of Metadata where every string that is JSON text again is replaced
 * by its decoded value (protocol doc 8.4: "try a second JSON decode of each
 * string value and keep the raw string if that fails"). */
/* Strings of at least this size are checked for a later sibling with the
 * same text: the host sends UserProperties(Array) as a copy of
 * ApplicationProperties(Array), half a megabyte each for 1000 messages. */
#define TWIN_MIN_BYTES 256
#define TWIN_MAX       8

static enum app_result decode_metadata(struct pctx *p, const struct json *meta, struct json **out)
{
  struct json *obj = arena_alloc(p->a, sizeof *obj), **tail;
  const struct json *m;
  /* later siblings whose text equals an earlier one's, with that decoding */
  const struct json *twin[TWIN_MAX];
  struct json *twin_node[TWIN_MAX];
  size_t ntwins = 0;

  if (!obj)
    return fail_nomem(p, "Metadata");
  memset(obj, 0, sizeof *obj);
  obj->type = JSON_OBJECT;
  tail = &obj->child;
  for (m = meta ? meta->child : NULL; m; m = m->next) {
    struct json *node = NULL;
    size_t t;
    for (t = 0; t < ntwins && twin[t] != m; t++) {
    }
    if (t < ntwins && twin_node[t]) {
      /* the same text decodes to the same value: share it (trees are
       * immutable; only this top node is our own) */
      node = arena_alloc(p->a, sizeof *node);
      if (!node)
        return fail_nomem(p, "Metadata");
      *node = *twin_node[t];
    } else if (m->type == JSON_STRING) {
      char where[160];
      const struct json *later = NULL;
      enum app_result r;
      if (m->len >= TWIN_MIN_BYTES && ntwins < TWIN_MAX)
        for (later = m->next; later; later = later->next)
          if (later->type == JSON_STRING && later->len == m->len &&
              !memcmp(later->str, m->str, m->len))
            break;
      /* the decoded value replaces the raw string, which is not read again
       * (its twin, compared above, still holds the same text). The place is
       * named only for a failure, by doing it again (a failed decode leaves
       * the text as it was): no text is formatted per key. */
      r = decode_again_owned(p, "", m->str, m->len, &node);
      if (r != APP_OK) {
        snprintf(where, sizeof where, "Metadata.%s", m->key);
        return decode_again_owned(p, where, m->str, m->len, &node);
      }
      if (later) {
        twin[ntwins] = later;
        twin_node[ntwins++] = node;
      }
    }
    if (!node) {
      node = arena_alloc(p->a, sizeof *node);
      if (!node)
        return fail_nomem(p, "Metadata");
      *node = *m;
    }
    node->key = m->key;
    node->key_len = m->key_len;
    node->next = NULL;
    *tail = node;
    tail = &node->next;
    obj->len++;
  }
  *out = obj;
  return APP_OK;
}

const struct json *envelope_metadata(const struct invocation *inv, const char *key)
{
  const struct json *v;
  if (!inv)
    return NULL;
  v = json_get(inv->metadata, key);
  return v ? v : json_get_ci(inv->metadata, key);
}

/* Metadata string: a string, or the text of a scalar (a message id "42"
 * decodes to the number 42 and is still the id "42"). */
static enum app_result meta_str(struct pctx *p, const struct json *v, const char *where,
                                const char **out)
{
  *out = NULL;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  if (v->type == JSON_STRING) {
    *out = v->str;
    return APP_OK;
  }
  if (v->type == JSON_NUMBER) {
    *out = arena_strndup(p->a, v->str, v->len);
    return *out ? APP_OK : fail_nomem(p, where);
  }
  if (v->type == JSON_TRUE || v->type == JSON_FALSE) {
    *out = v->type == JSON_TRUE ? "true" : "false";
    return APP_OK;
  }
  return fail_type(p, where, "a string", v);
}

static enum app_result meta_int(struct pctx *p, const struct json *v, const char *where,
                                int64_t min, int64_t max, bool *out_present, int64_t *out)
{
  int64_t n = 0;
  *out_present = false;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  if (v->type == JSON_NUMBER) {
    if (!json_number_i64(v, &n))
      return fail_type(p, where, "an integer", v);
  } else if (v->type == JSON_STRING) {
    /* the text of an integer, e.g. a count the host did not encode twice */
    struct json num = *v;
    num.type = JSON_NUMBER;
    if (!json_number_i64(&num, &n))
      return fail_type(p, where, "an integer", v);
  } else {
    return fail_type(p, where, "an integer", v);
  }
  if (n < min || n > max) {
    return app_err_set(p->err, APP_ERR_INPUT, "%s: %lld is out of range [%lld, %lld]", where,
                       (long long)n, (long long)min, (long long)max);
  }
  *out_present = true;
  *out = n;
  return APP_OK;
}

static enum app_result meta_time(struct pctx *p, const struct json *v, const char *where,
                                 int64_t *out_ms)
{
  *out_ms = 0;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  if (v->type != JSON_STRING || !envelope_parse_time(v->str, v->len, out_ms))
    return fail_type(p, where, "an ISO 8601 date-time", v);
  return APP_OK;
}

static enum app_result meta_object(struct pctx *p, const struct json *v, const char *where,
                                   const struct json **out)
{
  *out = NULL;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  if (v->type != JSON_OBJECT)
    return fail_type(p, where, "an object", v);
  *out = v;
  return APP_OK;
}

/* The Service Bus properties we read, and whether the value is scalar text
 * (so that a JSON string body's top-level property of the same name replaces
 * it in Metadata; object-valued body properties replace objects). */
static const char *const sb_keys[] = {"MessageId",     "ContentType",           "CorrelationId",
                                      "DeliveryCount", "SequenceNumber",        "EnqueuedTimeUtc",
                                      "EnqueuedTime",  "ApplicationProperties", "UserProperties"};

/* The host runs ApplyBindingData on a string trigger value that looks like
 * a JSON object: each top-level property that is not null and not an array
 * is written over the binding data, so Metadata.CorrelationId of a
 * Dataverse message in string mode is the context's CorrelationId, not the
 * broker's. Find the keys that were overwritten. */
static enum app_result find_shadowed(struct pctx *p, const struct envelope_message *msg,
                                     bool shadowed[], const char **out_list)
{
  struct json *body = NULL;
  struct app_err e2;
  const char *s;
  size_t left, i, total = 0;
  char *list, *w;

  *out_list = NULL;
  if (!msg->body)
    return APP_OK;
  s = skip_ws(msg->body, msg->body_len, &left);
  while (left &&
         (s[left - 1] == ' ' || s[left - 1] == '\t' || s[left - 1] == '\r' || s[left - 1] == '\n'))
    left--;
  if (left < 2 || s[0] != '{' || s[left - 1] != '}')
    return APP_OK;
  if (json_parse(p->a, s, left, p->lim->max_json_depth, &body, &e2) != APP_OK)
    return APP_OK; /* the host's JObject.Parse fails as well: nothing applied */
  for (i = 0; i < sizeof sb_keys / sizeof sb_keys[0]; i++) {
    const struct json *v = json_get_ci(body, sb_keys[i]);
    shadowed[i] = v && v->type != JSON_NULL && v->type != JSON_ARRAY;
    if (shadowed[i])
      total += strlen(sb_keys[i]) + 1;
  }
  if (!total)
    return APP_OK;
  list = arena_alloc(p->a, total);
  if (!list)
    return fail_nomem(p, "Metadata");
  w = list;
  for (i = 0; i < sizeof sb_keys / sizeof sb_keys[0]; i++) {
    size_t k = strlen(sb_keys[i]);
    if (!shadowed[i])
      continue;
    if (w != list)
      *w++ = ',';
    memcpy(w, sb_keys[i], k); /* sized above: every name plus a separator */
    w += k;
  }
  *w = '\0';
  *out_list = list;
  return APP_OK;
}

static enum app_result single_metadata(struct pctx *p, struct invocation *inv,
                                       struct envelope_message *msg, bool string_mode)
{
  bool shadowed[sizeof sb_keys / sizeof sb_keys[0]] = {false};
  const struct json *v;
  bool present;
  int64_t n;

  if (string_mode)
    APP_RETURN_IF_FAILED(find_shadowed(p, msg, shadowed, &inv->shadowed));

#define SB_META(i) (shadowed[i] ? NULL : envelope_metadata(inv, sb_keys[i]))
  APP_RETURN_IF_FAILED(meta_str(p, SB_META(0), "Metadata.MessageId", &msg->message_id));
  APP_RETURN_IF_FAILED(meta_str(p, SB_META(1), "Metadata.ContentType", &msg->content_type));
  APP_RETURN_IF_FAILED(meta_str(p, SB_META(2), "Metadata.CorrelationId", &msg->correlation_id));
  APP_RETURN_IF_FAILED(
      meta_int(p, SB_META(3), "Metadata.DeliveryCount", 0, INT32_MAX, &present, &n));
  msg->delivery_count = present ? (int)n : 0;
  APP_RETURN_IF_FAILED(
      meta_int(p, SB_META(4), "Metadata.SequenceNumber", 0, INT64_MAX, &present, &n));
  msg->sequence_number = present ? n : -1;
  v = SB_META(5);
  if (v)
    APP_RETURN_IF_FAILED(meta_time(p, v, "Metadata.EnqueuedTimeUtc", &msg->enqueued_ms));
  else
    APP_RETURN_IF_FAILED(meta_time(p, SB_META(6), "Metadata.EnqueuedTime", &msg->enqueued_ms));
  v = SB_META(7);
  if (v)
    APP_RETURN_IF_FAILED(meta_object(p, v, "Metadata.ApplicationProperties", &msg->app_properties));
  else
    APP_RETURN_IF_FAILED(
        meta_object(p, SB_META(8), "Metadata.UserProperties", &msg->app_properties));
#undef SB_META
  return APP_OK;
}

/* A batch *Array key: NULL when absent, else an array with one entry per
 * message. */
static enum app_result batch_array(struct pctx *p, const struct invocation *inv, const char *key,
                                   const struct json **out)
{
  const struct json *v = envelope_metadata(inv, key);
  char where[64];

  *out = NULL;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  snprintf(where, sizeof where, "Metadata.%s", key);
  if (v->type != JSON_ARRAY)
    return fail_type(p, where, "an array (JSON text of an array)", v);
  if (v->len != inv->nmessages)
    return app_err_set(p->err, APP_ERR_INPUT, "%s has %u entries but the batch has %zu messages",
                       where, v->len, inv->nmessages);
  *out = v->child;
  return APP_OK;
}

enum batch_key {
  BK_ID,
  BK_CT,
  BK_CORR,
  BK_DC,
  BK_SEQ,
  BK_ENQ,
  BK_ENQ_OFFSET,
  BK_PROPS,
  BK_USERPROPS,
  BK_COUNT
};

static const char *const batch_keys[BK_COUNT] = {
    "MessageIdArray",     "ContentTypeArray",           "CorrelationIdArray",
    "DeliveryCountArray", "SequenceNumberArray",        "EnqueuedTimeUtcArray",
    "EnqueuedTimeArray",  "ApplicationPropertiesArray", "UserPropertiesArray"};

static enum app_result batch_metadata(struct pctx *p, struct invocation *inv)
{
  const struct json *cur[BK_COUNT];
  size_t i, k;

  for (k = 0; k < BK_COUNT; k++)
    APP_RETURN_IF_FAILED(batch_array(p, inv, batch_keys[k], &cur[k]));
  for (i = 0; i < inv->nmessages; i++) {
    struct envelope_message *msg = &inv->messages[i];
    char where[80];
    bool present;
    int64_t n;

/* Run expr with w_ = "" and, only when it fails, again with w_ naming the
 * place (the checks have no side effects when they fail): no text is
 * formatted per message. */
#define PLACED(key, expr)                                                                          \
  do {                                                                                             \
    const char *w_ = "";                                                                           \
    if ((expr) != APP_OK) {                                                                        \
      snprintf(where, sizeof where, "Metadata.%s[%zu]", batch_keys[key], i);                       \
      w_ = where;                                                                                  \
      return (expr);                                                                               \
    }                                                                                              \
  } while (0)
    if (cur[BK_ID])
      PLACED(BK_ID, meta_str(p, cur[BK_ID], w_, &msg->message_id));
    if (cur[BK_CT])
      PLACED(BK_CT, meta_str(p, cur[BK_CT], w_, &msg->content_type));
    if (cur[BK_CORR])
      PLACED(BK_CORR, meta_str(p, cur[BK_CORR], w_, &msg->correlation_id));
    if (cur[BK_DC]) {
      PLACED(BK_DC, meta_int(p, cur[BK_DC], w_, 0, INT32_MAX, &present, &n));
      msg->delivery_count = present ? (int)n : 0;
    }
    if (cur[BK_SEQ]) {
      PLACED(BK_SEQ, meta_int(p, cur[BK_SEQ], w_, 0, INT64_MAX, &present, &n));
      msg->sequence_number = present ? n : -1;
    }
    if (cur[BK_ENQ])
      PLACED(BK_ENQ, meta_time(p, cur[BK_ENQ], w_, &msg->enqueued_ms));
    else if (cur[BK_ENQ_OFFSET])
      PLACED(BK_ENQ_OFFSET, meta_time(p, cur[BK_ENQ_OFFSET], w_, &msg->enqueued_ms));
    if (cur[BK_PROPS])
      PLACED(BK_PROPS, meta_object(p, cur[BK_PROPS], w_, &msg->app_properties));
    else if (cur[BK_USERPROPS])
      PLACED(BK_USERPROPS, meta_object(p, cur[BK_USERPROPS], w_, &msg->app_properties));
#undef PLACED
    for (k = 0; k < BK_COUNT; k++)
      if (cur[k])
        cur[k] = cur[k]->next;
  }
  return APP_OK;
}

/* ---- message bodies --------------------------------------------------------- */

/* Exact decoded size of base64 text (padding and an unpadded tail allowed). */
static size_t b64_decoded_len(const char *s, size_t n)
{
  size_t len = n / 4 * 3;
  if (n % 4 == 2)
    len += 1;
  else if (n % 4 == 3)
    len += 2;
  if (n % 4 == 0 && n >= 1 && s[n - 1] == '=')
    len -= (n >= 2 && s[n - 2] == '=') ? 2 : 1;
  return len;
}

static bool too_big(const struct pctx *p, size_t n)
{
  return p->lim->max_message_bytes && n > p->lim->max_message_bytes;
}

/* "base[index]", or base when index is NO_INDEX: made only for messages */
#define NO_INDEX ((size_t)-1)
static const char *where_at(char *buf, size_t n, const char *base, size_t index)
{
  if (index == NO_INDEX)
    return base;
  snprintf(buf, n, "%s[%zu]", base, index);
  return buf;
}

static enum app_result body_from_base64(struct pctx *p, const char *base, size_t index,
                                        const struct json *v, struct envelope_message *msg)
{
  char *out = NULL, wb[96];
  size_t len = 0;
  enum app_result r;

  if (!v || v->type != JSON_STRING)
    return fail_type(p, where_at(wb, sizeof wb, base, index), "a base64 string", v);
  len = b64_decoded_len(v->str, v->len);
  if (too_big(p, len)) {
    msg->oversize = true;
    msg->body = NULL;
    msg->body_len = len;
    return APP_OK;
  }
  if (p->inplace) {
    /* over its own text: the decoded bytes are fewer, and the string's
     * NUL leaves room for ours */
    size_t bad = 0;
    out = (char *)v->str;
    if (!base64_decode(v->str, v->len, (unsigned char *)out, &len, &bad)) {
      app_err_set(p->err, APP_ERR_INPUT, "invalid base64 at character %zu", bad);
      return app_err_wrap(p->err, "%s", where_at(wb, sizeof wb, base, index));
    }
    out[len] = '\0';
    msg->body = out;
    msg->body_len = len;
    return APP_OK;
  }
  r = base64_decode_arena(p->a, v->str, v->len, &out, &len, p->err);
  if (r != APP_OK)
    return app_err_wrap(p->err, "%s", where_at(wb, sizeof wb, base, index));
  msg->body = out;
  msg->body_len = len;
  return APP_OK;
}

static void body_from_text(struct pctx *p, const char *s, size_t n, struct envelope_message *msg)
{
  if (too_big(p, n)) {
    msg->oversize = true;
    msg->body = NULL;
  } else {
    msg->body = s;
  }
  msg->body_len = n;
}

/* Data.msg of a single message in string mode: a JSON string whose text is
 * the body written as a JSON string literal again. */
static enum app_result body_from_double_string(struct pctx *p, const char *where,
                                               const struct json *v, struct envelope_message *msg)
{
  size_t left;
  const char *s;
  struct json *inner = NULL;
  struct app_err e2;
  enum app_result r;

  if (!v || v->type != JSON_STRING)
    return fail_type(p, where, "a string holding the message as a JSON string literal", v);
  s = skip_ws(v->str, v->len, &left);
  if (!left || s[0] != '"') {
    /* single-encoded (the Learn docs' sample shape): the text is the body */
    body_from_text(p, v->str, v->len, msg);
    return APP_OK;
  }
  r = json_parse(p->a, v->str, v->len, p->lim->max_json_depth, &inner, &e2);
  if (r != APP_OK)
    return app_err_set(p->err, r, "%s: the double-encoded body is not one JSON string: %s", where,
                       e2.msg);
  body_from_text(p, inner->str, inner->len, msg);
  return APP_OK;
}

static bool all_base64(const struct json *arr)
{
  const struct json *e;
  for (e = arr->child; e; e = e->next) {
    size_t i;
    if (e->type != JSON_STRING || e->len == 0)
      return false;
    for (i = 0; i < e->len; i++) {
      char c = e->str[i];
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '+' || c == '/' || c == '='))
        return false;
    }
    if (e->len % 4 == 1)
      return false;
  }
  return true;
}

static enum app_result alloc_messages(struct pctx *p, struct invocation *inv, size_t n,
                                      const char *where)
{
  size_t i;
  if (p->lim->max_batch_messages > 0 && n > (size_t)p->lim->max_batch_messages)
    return app_err_set(p->err, APP_ERR_LIMIT,
                       "%s has %zu messages, more than the limit of %d (CDC_MAX_BATCH_MESSAGES)",
                       where, n, p->lim->max_batch_messages);
  inv->nmessages = n;
  inv->messages = arena_alloc(p->a, (n ? n : 1) * sizeof *inv->messages);
  if (!inv->messages)
    return fail_nomem(p, where);
  memset(inv->messages, 0, (n ? n : 1) * sizeof *inv->messages);
  for (i = 0; i < n; i++)
    inv->messages[i].sequence_number = -1;
  return APP_OK;
}

/* A batch: v is a real array or JSON text of one. binary: true = base64
 * elements, false = text elements, sniff: decide from the elements. */
static enum app_result batch_bodies(struct pctx *p, const char *where, const struct json *v,
                                    enum fn_data_type dt, struct invocation *inv)
{
  const struct json *arr = v, *e;
  struct json *dec = NULL;
  bool binary;
  size_t i;

  if (v && v->type == JSON_STRING) {
    APP_RETURN_IF_FAILED(decode_again_owned(p, where, v->str, v->len, &dec));
    arr = dec;
    if (!arr || arr->type != JSON_ARRAY) {
      char what[96];
      if (arr)
        describe(arr, what, sizeof what);
      else
        describe(v, what, sizeof what);
      return app_err_set(p->err, APP_ERR_INPUT,
                         "%s: expected an array of messages (cardinality many), got %s%s", where,
                         arr ? "JSON text of " : "", what);
    }
  }
  if (!arr || arr->type != JSON_ARRAY)
    return fail_type(p, where, "an array of messages (cardinality many)", v);
  APP_RETURN_IF_FAILED(alloc_messages(p, inv, arr->len, where));
  inv->batch = true;
  if (dt == FN_DATA_BINARY) {
    binary = true;
  } else if (dt == FN_DATA_STRING) {
    binary = false;
  } else {
    inv->sniffed = true;
    binary = all_base64(arr);
  }
  for (i = 0, e = arr->child; e; e = e->next, i++) {
    char w[96];
    if (binary) {
      APP_RETURN_IF_FAILED(body_from_base64(p, where, i, e, &inv->messages[i]));
    } else {
      if (e->type != JSON_STRING)
        return fail_type(p, where_at(w, sizeof w, where, i), "a string (a message body)", e);
      body_from_text(p, e->str, e->len, &inv->messages[i]);
    }
  }
  return APP_OK;
}

static enum app_result message_bodies(struct pctx *p, const char *where, const struct json *v,
                                      const struct function_def *fn, struct invocation *inv,
                                      bool *out_string_mode)
{
  enum fn_data_type dt = fn ? fn->data_type : FN_DATA_UNSET;
  enum fn_cardinality card = fn ? fn->cardinality : FN_CARDINALITY_UNSET;

  *out_string_mode = false;
  if (fn && card == FN_CARDINALITY_MANY)
    return batch_bodies(p, where, v, dt, inv);
  if (fn && dt == FN_DATA_BINARY) {
    APP_RETURN_IF_FAILED(alloc_messages(p, inv, 1, where));
    return body_from_base64(p, where, NO_INDEX, v, &inv->messages[0]);
  }
  if (fn && (dt == FN_DATA_STRING || dt == FN_DATA_UNSET)) {
    /* no dataType: the host binds the body as a string (protocol doc 2.3) */
    *out_string_mode = true;
    APP_RETURN_IF_FAILED(alloc_messages(p, inv, 1, where));
    return body_from_double_string(p, where, v, &inv->messages[0]);
  }

  /* unknown encoding (no function.json, or dataType stream): sniff */
  inv->sniffed = true;
  if (v && v->type == JSON_ARRAY)
    return batch_bodies(p, where, v, FN_DATA_UNSET, inv);
  if (v && v->type == JSON_STRING) {
    size_t left;
    const char *s = skip_ws(v->str, v->len, &left);
    if (left && s[0] == '[')
      return batch_bodies(p, where, v, FN_DATA_UNSET, inv);
    APP_RETURN_IF_FAILED(alloc_messages(p, inv, 1, where));
    if (left && s[0] == '"') {
      *out_string_mode = true;
      return body_from_double_string(p, where, v, &inv->messages[0]);
    }
    return body_from_base64(p, where, NO_INDEX, v, &inv->messages[0]);
  }
  return fail_type(p, where, "a message (a string) or an array of messages", v);
}

/* ---- HTTP trigger ----------------------------------------------------------- */

/* Query/Headers/Params: an object; the Learn sample shows "{}" as a string,
 * so JSON text of an object is accepted too. */
static enum app_result http_object(struct pctx *p, const struct json *req, const char *key,
                                   const char *where_req, const struct json **out)
{
  const struct json *v = json_get_ci(req, key);
  char where[160];

  *out = NULL;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  snprintf(where, sizeof where, "%s.%s", where_req, key);
  if (v->type == JSON_STRING) {
    struct json *dec = NULL;
    APP_RETURN_IF_FAILED(decode_again(p, where, v->str, v->len, &dec));
    if (dec && dec->type == JSON_OBJECT) {
      *out = dec;
      return APP_OK;
    }
  }
  if (v->type != JSON_OBJECT)
    return fail_type(p, where, "an object", v);
  *out = v;
  return APP_OK;
}

static enum app_result http_request(struct pctx *p, const char *where, const struct json *v,
                                    struct invocation *inv)
{
  struct envelope_http *h = &inv->http;
  const struct json *body, *ids;
  char w[160];

  if (v && v->type == JSON_STRING) {
    struct json *dec = NULL;
    APP_RETURN_IF_FAILED(decode_again(p, where, v->str, v->len, &dec));
    if (dec && dec->type == JSON_OBJECT)
      v = dec;
  }
  if (!v || v->type != JSON_OBJECT)
    return fail_type(p, where, "the HTTP request object", v);
  snprintf(w, sizeof w, "%s.Url", where);
  APP_RETURN_IF_FAILED(meta_str(p, json_get_ci(v, "Url"), w, &h->url));
  snprintf(w, sizeof w, "%s.Method", where);
  APP_RETURN_IF_FAILED(meta_str(p, json_get_ci(v, "Method"), w, &h->method));
  APP_RETURN_IF_FAILED(http_object(p, v, "Query", where, &h->query));
  APP_RETURN_IF_FAILED(http_object(p, v, "Headers", where, &h->headers));
  APP_RETURN_IF_FAILED(http_object(p, v, "Params", where, &h->params));
  ids = json_get_ci(v, "Identities");
  h->identities = ids && ids->type != JSON_NULL ? ids : NULL;
  body = json_get_ci(v, "Body");
  if (!body || body->type == JSON_NULL) {
    h->body = NULL;
    h->body_len = 0;
  } else if (body->type == JSON_STRING) {
    h->body = body->str;
    h->body_len = body->len;
  } else {
    /* a body the host parsed for us: give back its compact text */
    struct buf b;
    enum app_result r;
    buf_init(&b, 0);
    r = json_write(&b, body);
    if (r == APP_OK) {
      h->body = arena_strndup(p->a, b.data ? b.data : "", b.len);
      h->body_len = b.len;
      if (!h->body)
        r = fail_nomem(p, where);
    }
    buf_cleanup(&b);
    APP_RETURN_IF_FAILED(r);
  }
  return APP_OK;
}

const char *envelope_http_header(const struct envelope_http *req, const char *name)
{
  const struct json *v;
  if (!req || !req->headers)
    return NULL;
  v = json_get_ci(req->headers, name);
  if (v && v->type == JSON_ARRAY)
    v = v->child;
  return json_is(v, JSON_STRING) ? v->str : NULL;
}

/* ---- entry point ------------------------------------------------------------ */

static enum app_result retry_context(struct pctx *p, struct invocation *inv)
{
  const struct json *rc = envelope_metadata(inv, "RetryContext");
  bool present;
  int64_t n;

  inv->retry_count = -1;
  inv->max_retry_count = -1;
  APP_RETURN_IF_FAILED(meta_object(p, rc, "Metadata.RetryContext", &inv->retry_context));
  if (!inv->retry_context)
    return APP_OK;
  APP_RETURN_IF_FAILED(meta_int(p, json_get_ci(rc, "RetryCount"),
                                "Metadata.RetryContext.RetryCount", 0, INT32_MAX, &present, &n));
  if (present)
    inv->retry_count = (int)n;
  APP_RETURN_IF_FAILED(meta_int(p, json_get_ci(rc, "MaxRetryCount"),
                                "Metadata.RetryContext.MaxRetryCount", -1, INT32_MAX, &present,
                                &n));
  if (present)
    inv->max_retry_count = (int)n;
  return APP_OK;
}

static enum app_result parse_envelope(struct arena *a, const char *body, char *mutable_body,
                                      size_t len, const struct function_def *fn,
                                      const struct envelope_limits *lim, struct invocation **out,
                                      struct app_err *err)
{
  struct envelope_limits deflim = {0, 0, JSON_DEFAULT_MAX_DEPTH};
  struct pctx p;
  struct json *root = NULL, *meta = NULL;
  const struct json *data, *raw_meta, *trig = NULL;
  struct invocation *inv;
  const char *tname = fn ? fn->trigger_name : NULL;
  char where[160];
  bool string_mode = false;
  enum app_result r;

  p.a = a;
  p.lim = lim ? lim : &deflim;
  p.err = err;
  p.inplace = mutable_body != NULL;

  if (mutable_body)
    r = json_parse_mutable(a, mutable_body, len, p.lim->max_json_depth, &root, err);
  else
    r = json_parse(a, body, len, p.lim->max_json_depth, &root, err);
  if (r != APP_OK)
    return app_err_wrap(err, "envelope");
  if (root->type != JSON_OBJECT)
    return fail_type(&p, "envelope", "a JSON object with Data and Metadata", root);

  inv = arena_alloc(a, sizeof *inv);
  if (!inv)
    return fail_nomem(&p, "envelope");
  memset(inv, 0, sizeof *inv);

  data = json_get_ci(root, "Data");
  if (data && data->type == JSON_NULL)
    data = NULL;
  if (data && data->type != JSON_OBJECT)
    return fail_type(&p, "Data", "an object", data);
  inv->data = data;

  raw_meta = json_get_ci(root, "Metadata");
  if (raw_meta && raw_meta->type == JSON_NULL)
    raw_meta = NULL;
  if (raw_meta && raw_meta->type != JSON_OBJECT)
    return fail_type(&p, "Metadata", "an object", raw_meta);
  APP_RETURN_IF_FAILED(decode_metadata(&p, raw_meta, &meta));
  inv->metadata = meta;
  inv->sys = json_get_ci(meta, "sys");
  if (inv->sys && inv->sys->type != JSON_OBJECT)
    inv->sys = NULL;
  APP_RETURN_IF_FAILED(retry_context(&p, inv));

  /* which trigger, and where its value is */
  if (fn) {
    inv->kind = fn->trigger == FN_TRIGGER_SERVICE_BUS ? ENVELOPE_MESSAGES
                : fn->trigger == FN_TRIGGER_HTTP      ? ENVELOPE_HTTP
                                                      : ENVELOPE_OTHER;
  }
  if (inv->kind == ENVELOPE_OTHER) {
    *out = inv;
    return APP_OK;
  }
  if (!data)
    return app_err_set(err, APP_ERR_INPUT, "envelope: no Data object (expected Data.%s)",
                       tname ? tname : "<trigger binding>");
  if (tname) {
    trig = json_get(data, tname);
    if (!trig)
      trig = json_get_ci(data, tname);
    if (!trig)
      return app_err_set(err, APP_ERR_INPUT,
                         "Data.%s is missing (the trigger binding of function %s)", tname,
                         fn->name);
  } else {
    if (data->len != 1)
      return app_err_set(err, APP_ERR_INPUT,
                         "Data has %u members and the trigger binding is unknown (no "
                         "function.json)",
                         data->len);
    trig = data->child;
    tname = trig->key;
    if (!fn)
      inv->kind =
          (trig->type == JSON_OBJECT && (json_get_ci(trig, "Method") || json_get_ci(trig, "Url")))
              ? ENVELOPE_HTTP
              : ENVELOPE_MESSAGES;
  }
  snprintf(where, sizeof where, "Data.%s", tname);

  if (inv->kind == ENVELOPE_HTTP) {
    APP_RETURN_IF_FAILED(http_request(&p, where, trig, inv));
    *out = inv;
    return APP_OK;
  }
  APP_RETURN_IF_FAILED(message_bodies(&p, where, trig, fn, inv, &string_mode));
  if (inv->batch)
    APP_RETURN_IF_FAILED(batch_metadata(&p, inv));
  else if (inv->nmessages == 1)
    APP_RETURN_IF_FAILED(single_metadata(&p, inv, &inv->messages[0], string_mode));
  *out = inv;
  return APP_OK;
}

enum app_result envelope_parse(struct arena *a, const char *body, size_t len,
                               const struct function_def *fn, const struct envelope_limits *lim,
                               struct invocation **out, struct app_err *err)
{
  return parse_envelope(a, body, NULL, len, fn, lim, out, err);
}

enum app_result envelope_parse_mutable(struct arena *a, char *body, size_t len,
                                       const struct function_def *fn,
                                       const struct envelope_limits *lim, struct invocation **out,
                                       struct app_err *err)
{
  return parse_envelope(a, body, body, len, fn, lim, out, err);
}

/* ---- response ---------------------------------------------------------------- */

enum output_kind { OUT_RAW, OUT_STRINGS };

struct envelope_output {
  char *name;
  struct buf value; /* JSON text; OUT_STRINGS lacks the closing ']' */
  enum output_kind kind;
};

void envelope_response_init(struct envelope_response *r, size_t max_bytes)
{
  memset(r, 0, sizeof *r);
  r->max_bytes = max_bytes;
  buf_init(&r->logs, max_bytes);
  buf_init(&r->ret, max_bytes);
}

void envelope_response_cleanup(struct envelope_response *r)
{
  size_t i;
  if (!r)
    return;
  for (i = 0; i < r->noutputs; i++) {
    free(r->outputs[i].name);
    buf_cleanup(&r->outputs[i].value);
  }
  free(r->outputs);
  buf_cleanup(&r->logs);
  buf_cleanup(&r->ret);
  memset(r, 0, sizeof *r);
}

static struct envelope_output *find_output(struct envelope_response *r, const char *name)
{
  size_t i;
  for (i = 0; i < r->noutputs; i++)
    if (!strcmp(r->outputs[i].name, name))
      return &r->outputs[i];
  return NULL;
}

static enum app_result new_output(struct envelope_response *r, const char *binding,
                                  enum output_kind kind, struct envelope_output **out,
                                  struct app_err *err)
{
  struct envelope_output *o;
  if (!binding || !*binding)
    return app_err_set(err, APP_ERR_INPUT, "response: empty output binding name");
  if (find_output(r, binding))
    return app_err_set(err, APP_ERR_INPUT, "response: Outputs.%s is already set", binding);
  if (r->noutputs == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 4;
    r->outputs = xrealloc(r->outputs, r->cap * sizeof *r->outputs);
  }
  o = &r->outputs[r->noutputs++];
  o->name = xstrdup(binding);
  o->kind = kind;
  buf_init(&o->value, r->max_bytes);
  *out = o;
  return APP_OK;
}

/* Drop an output whose value could not be written, so the response stays
 * valid JSON. */
static void drop_last_output(struct envelope_response *r)
{
  struct envelope_output *o = &r->outputs[--r->noutputs];
  free(o->name);
  buf_cleanup(&o->value);
}

static enum app_result limit_err(struct app_err *err, const char *what)
{
  return app_err_set(err, APP_ERR_LIMIT, "response: %s would pass the response size limit", what);
}

enum app_result envelope_response_add_output(struct envelope_response *r, const char *binding,
                                             const char *json, size_t len, struct app_err *err)
{
  struct envelope_output *o;
  APP_RETURN_IF_FAILED(new_output(r, binding, OUT_RAW, &o, err));
  if (len == 0 || buf_append(&o->value, json, len) != APP_OK) {
    drop_last_output(r);
    if (len == 0)
      return app_err_set(err, APP_ERR_INPUT, "response: empty JSON for Outputs.%s", binding);
    return limit_err(err, "an output value");
  }
  return APP_OK;
}

enum app_result envelope_response_add_output_string(struct envelope_response *r,
                                                    const char *binding, const char *s, size_t len,
                                                    struct app_err *err)
{
  struct envelope_output *o = binding ? find_output(r, binding) : NULL;
  size_t mark;

  if (o && o->kind != OUT_STRINGS)
    return app_err_set(err, APP_ERR_INPUT, "response: Outputs.%s is already set", binding);
  if (!o) {
    APP_RETURN_IF_FAILED(new_output(r, binding, OUT_STRINGS, &o, err));
    if (buf_append_char(&o->value, '[') != APP_OK ||
        buf_append_json_str(&o->value, s, len) != APP_OK) {
      drop_last_output(r);
      return limit_err(err, "an output string");
    }
    return APP_OK;
  }
  mark = o->value.len;
  if (buf_append_char(&o->value, ',') != APP_OK ||
      buf_append_json_str(&o->value, s, len) != APP_OK) {
    o->value.len = mark;
    o->value.data[mark] = '\0';
    return limit_err(err, "an output string");
  }
  return APP_OK;
}

static enum app_result http_json(struct buf *b, int status, const char *const *headers,
                                 size_t nheaders, const char *body, size_t body_len)
{
  size_t i;
  APP_RETURN_IF_FAILED(buf_printf(b, "{\"statusCode\":%d,\"headers\":{", status));
  for (i = 0; i < nheaders; i++) {
    const char *name = headers[2 * i], *value = headers[2 * i + 1];
    if (i)
      APP_RETURN_IF_FAILED(buf_append_char(b, ','));
    APP_RETURN_IF_FAILED(buf_append_json_str(b, name, strlen(name)));
    APP_RETURN_IF_FAILED(buf_append_char(b, ':'));
    APP_RETURN_IF_FAILED(buf_append_json_str(b, value, strlen(value)));
  }
  APP_RETURN_IF_FAILED(buf_append_str(b, "},\"body\":"));
  APP_RETURN_IF_FAILED(buf_append_json_str(b, body ? body : "", body ? body_len : 0));
  return buf_append_char(b, '}');
}

enum app_result envelope_response_add_http(struct envelope_response *r, const char *binding,
                                           int status, const char *const *headers, size_t nheaders,
                                           const char *body, size_t body_len, struct app_err *err)
{
  struct envelope_output *o;
  if (status < 100 || status > 599)
    return app_err_set(err, APP_ERR_INPUT, "response: HTTP status %d is not in 100..599", status);
  if (binding && !strcmp(binding, "$return")) {
    buf_reset(&r->ret);
    if (http_json(&r->ret, status, headers, nheaders, body, body_len) != APP_OK) {
      buf_reset(&r->ret);
      return limit_err(err, "the HTTP response");
    }
    return APP_OK;
  }
  APP_RETURN_IF_FAILED(new_output(r, binding, OUT_RAW, &o, err));
  if (http_json(&o->value, status, headers, nheaders, body, body_len) != APP_OK) {
    drop_last_output(r);
    return limit_err(err, "the HTTP response");
  }
  return APP_OK;
}

enum app_result envelope_response_set_return(struct envelope_response *r, const char *json,
                                             size_t len, struct app_err *err)
{
  buf_reset(&r->ret);
  if (buf_append(&r->ret, json, len) != APP_OK) {
    buf_reset(&r->ret);
    return limit_err(err, "ReturnValue");
  }
  return APP_OK;
}

enum app_result envelope_response_add_log(struct envelope_response *r, const char *fmt, ...)
{
  char small[512];
  char *line = small;
  va_list ap;
  int n;
  size_t mark = r->logs.len;
  enum app_result res;

  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return APP_ERR_INPUT;
  if ((size_t)n >= sizeof small) {
    if (r->max_bytes && (size_t)n > r->max_bytes)
      return APP_ERR_LIMIT;
    line = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(line, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  res = r->nlogs ? buf_append_char(&r->logs, ',') : APP_OK;
  if (res == APP_OK)
    res = buf_append_json_str(&r->logs, line, (size_t)n);
  if (res == APP_OK) {
    r->nlogs++;
  } else if (r->logs.data) {
    r->logs.len = mark;
    r->logs.data[mark] = '\0';
  }
  if (line != small)
    free(line);
  return res;
}

enum app_result envelope_response_write(const struct envelope_response *r, struct buf *out)
{
  size_t i;
  APP_RETURN_IF_FAILED(buf_append_str(out, "{\"Outputs\":{"));
  for (i = 0; i < r->noutputs; i++) {
    const struct envelope_output *o = &r->outputs[i];
    if (i)
      APP_RETURN_IF_FAILED(buf_append_char(out, ','));
    APP_RETURN_IF_FAILED(buf_append_json_str(out, o->name, strlen(o->name)));
    APP_RETURN_IF_FAILED(buf_append_char(out, ':'));
    APP_RETURN_IF_FAILED(buf_append(out, o->value.data, o->value.len));
    if (o->kind == OUT_STRINGS)
      APP_RETURN_IF_FAILED(buf_append_char(out, ']'));
  }
  APP_RETURN_IF_FAILED(buf_append_str(out, "},\"Logs\":["));
  if (r->logs.len)
    APP_RETURN_IF_FAILED(buf_append(out, r->logs.data, r->logs.len));
  APP_RETURN_IF_FAILED(buf_append_str(out, "],\"ReturnValue\":"));
  if (r->ret.len)
    APP_RETURN_IF_FAILED(buf_append(out, r->ret.data, r->ret.len));
  else
    APP_RETURN_IF_FAILED(buf_append_str(out, "null"));
  return buf_append_char(out, '}');
}

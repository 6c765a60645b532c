/* dataverse.c - RemoteExecutionContext JSON -> struct cdc_change.
 *
 * The JSON tree from json.h already holds decoded, NUL-terminated strings in
 * the arena, so strings are borrowed from it; only number lexemes (not
 * terminated in the tree), GUIDs that need lower-casing and arrays are
 * allocated. Decoding is one recursive walk whose depth is bounded by the
 * JSON depth cap, so input cannot blow the stack.
 *
 * Error paths are built from struct seg chains that live on the C stack:
 * nothing is formatted unless a message needs it. */
#include "dataverse/dataverse.h"

#include "common/buf.h"
#include "dataverse/dvbody.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One step of the JSON path to the value being decoded. */
struct seg {
  const struct seg *up;
  const char *member; /* object member name; NULL for an array element */
  long index;         /* array index when member is NULL */
  const char *key;    /* "key" of the key/value pair at this index, or NULL */
};

struct ctx {
  struct arena *a;
  struct app_err *err;
  size_t raw_cap; /* ceiling for one DV_RAW / key text */
};

#define SEG_MEMBER(up, name)                                                                       \
  {                                                                                                \
    (up), (name), 0, NULL                                                                          \
  }
#define SEG_INDEX(up, i, k)                                                                        \
  {                                                                                                \
    (up), NULL, (long)(i), (k)                                                                     \
  }

static const char zero_guid[] = "00000000-0000-0000-0000-000000000000";
static const char async_primary_name[] = "AsynchronousStepPrimaryName";

/* ---- error messages ------------------------------------------------------ */

/* Append s[0..n) to out as a quoted, escaped, shortened string. */
static void quote(char *out, size_t size, const char *s, size_t n, size_t max)
{
  size_t w = 0, i;
  if (size < 8)
    return;
  out[w++] = '"';
  for (i = 0; i < n && w + 8 < size; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (i >= max && (ch & 0xC0) != 0x80) {
      memcpy(out + w, "...", 3);
      w += 3;
      break;
    }
    if (ch == '"' || ch == '\\') {
      out[w++] = '\\';
      out[w++] = (char)ch;
    } else if (ch < 0x20 || ch == 0x7F) {
      w += (size_t)snprintf(out + w, size - w, "\\u%04x", ch);
    } else {
      out[w++] = (char)ch;
    }
  }
  out[w++] = '"';
  out[w] = '\0';
}

static bool type_name(const struct json *v, const char **out, size_t *out_len);

/* A short description of a JSON value for "got ..." in messages. */
static void describe(const struct json *v, char *out, size_t size)
{
  const char *tn;
  size_t tl;
  switch (v->type) {
  case JSON_NULL: snprintf(out, size, "null"); break;
  case JSON_TRUE: snprintf(out, size, "true"); break;
  case JSON_FALSE: snprintf(out, size, "false"); break;
  case JSON_NUMBER:
    if (v->len <= 40)
      snprintf(out, size, "%.*s", (int)v->len, v->str);
    else
      snprintf(out, size, "%.37s...", v->str);
    break;
  case JSON_STRING: quote(out, size, v->str, v->len, 40); break;
  case JSON_ARRAY: snprintf(out, size, "an array"); break;
  default:
    if (type_name(v, &tn, &tl))
      snprintf(out, size, "an object of __type %.*s", (int)(tl < 48 ? tl : 48), tn);
    else
      snprintf(out, size, "an object");
    break;
  }
}

/* Format the path of at, e.g. InputParameters[0].value.Attributes[3].value
 * (key "revenue"). Very deep paths keep their outer and inner ends. */
static void path_format(const struct seg *at, char *out, size_t size)
{
  enum { HEAD = 8, TAIL = 24 };
  const struct seg *v[HEAD + TAIL], *s;
  const char *key = NULL;
  size_t total = 0, head, tail, pos, i, n, w = 0;

  for (s = at; s; s = s->up) {
    total++;
    if (!key && s->key)
      key = s->key;
  }
  head = total > HEAD + TAIL ? HEAD : total;
  tail = total > HEAD + TAIL ? TAIL : 0;
  pos = total;
  for (s = at; s; s = s->up) {
    pos--;
    if (pos < head)
      v[pos] = s;
    else if (pos >= total - tail)
      v[head + (pos - (total - tail))] = s;
  }
  out[0] = '\0';
  n = head + tail;
  for (i = 0; i < n && w + 1 < size; i++) {
    if (i == head && tail)
      w += (size_t)snprintf(out + w, size - w, "...");
    if (w + 1 >= size)
      break;
    if (v[i]->member)
      w += (size_t)snprintf(out + w, size - w, "%s%s", w ? "." : "", v[i]->member);
    else
      w += (size_t)snprintf(out + w, size - w, "[%ld]", v[i]->index);
  }
  if (key && w + 1 < size) {
    char q[64];
    quote(q, sizeof q, key, strlen(key), 40);
    snprintf(out + w, size - w, " (key %s)", q);
  }
}

/* APP_ERR_INPUT: "<path>: <what>[, got <value>]". got may be NULL. */
static enum app_result fail(struct ctx *c, const struct seg *at, const struct json *got,
                            const char *fmt, ...) APP_PRINTF(4, 5);

static enum app_result fail(struct ctx *c, const struct seg *at, const struct json *got,
                            const char *fmt, ...)
{
  char path[160], what[160], desc[80];
  va_list ap;

  path_format(at, path, sizeof path);
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  desc[0] = '\0';
  if (got)
    describe(got, desc, sizeof desc);
  return app_err_set(c->err, APP_ERR_INPUT, "%s%s%s%s%s", path, path[0] ? ": " : "", what,
                     got ? ", got " : "", desc);
}

static enum app_result no_memory(struct ctx *c)
{
  return app_err_set(c->err, APP_ERR_LIMIT,
                     "message needs more memory than the configured decode limit");
}

static void *alloc_array(struct ctx *c, size_t n, size_t size)
{
  void *p;
  if (n == 0)
    return NULL;
  if (n > SIZE_MAX / size)
    return NULL;
  p = arena_alloc(c->a, n * size);
  if (p)
    memset(p, 0, n * size);
  return p;
}

/* ---- scalar helpers ------------------------------------------------------ */

static bool is_null(const struct json *v)
{
  return !v || v->type == JSON_NULL;
}

/* Is member m named exactly name? json.h decodes member names, so a name
 * with "\u0000" in it must not match by strcmp alone. */
static bool named(const struct json *m, const char *name)
{
  return !strcmp(m->key, name) && strlen(name) == m->key_len;
}

/* Member of obj named exactly name, or NULL. */
static const struct json *get(const struct json *obj, const char *name)
{
  const struct json *m;
  if (!json_is(obj, JSON_OBJECT))
    return NULL;
  for (m = obj->child; m; m = m->next)
    if (named(m, name))
      return m;
  return NULL;
}

/* String member of obj, or NULL. */
static const char *get_cstr(const struct json *obj, const char *name)
{
  const struct json *v = get(obj, name);
  return json_is(v, JSON_STRING) ? v->str : NULL;
}

/* Does a decoded string hold a NUL? Such strings cannot be handed out as
 * C strings (names, formatted values) without silently cutting them. */
static bool has_nul(const struct json *v)
{
  return memchr(v->str, '\0', v->len) != NULL;
}

/* The part of "__type" before ':' (e.g. "Entity"), or false when the
 * object has no string __type. DCJS writes it first, but any position is
 * accepted. */
static bool type_name(const struct json *v, const char **out, size_t *out_len)
{
  const struct json *t;
  const char *colon;
  if (!json_is(v, JSON_OBJECT))
    return false;
  t = v->child && named(v->child, "__type") ? v->child : get(v, "__type");
  if (!json_is(t, JSON_STRING))
    return false;
  colon = memchr(t->str, ':', t->len);
  *out = t->str;
  *out_len = colon ? (size_t)(colon - t->str) : t->len;
  return true;
}

static bool type_is(const char *tn, size_t tl, const char *name)
{
  return strlen(name) == tl && !memcmp(tn, name, tl);
}

static bool hexdigit(char ch)
{
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* 8-4-4-4-12 hex digits, as .NET Guid.ToString() writes. */
static bool guid_valid(const char *s, size_t n, bool *out_lower)
{
  size_t i;
  bool lower = true;
  if (n != 36)
    return false;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return false;
    } else if (!hexdigit(s[i])) {
      return false;
    } else if (s[i] >= 'A' && s[i] <= 'F') {
      lower = false;
    }
  }
  *out_lower = lower;
  return true;
}

static bool guid_is_zero(const char *g)
{
  return g && !strcmp(g, zero_guid);
}

/* A GUID member: absent/null gives NULL unless required. */
static enum app_result get_guid(struct ctx *c, const struct seg *at, const struct json *v,
                                bool required, const char **out)
{
  bool lower;
  char *copy;
  size_t i;

  *out = NULL;
  if (is_null(v)) {
    if (!required)
      return APP_OK;
    return v ? fail(c, at, v, "expected a GUID string")
             : fail(c, at, NULL, "missing, expected a GUID string");
  }
  if (v->type != JSON_STRING || !guid_valid(v->str, v->len, &lower))
    return fail(c, at, v, "expected a GUID string");
  if (lower) {
    *out = v->str;
    return APP_OK;
  }
  copy = arena_strndup(c->a, v->str, v->len);
  if (!copy)
    return no_memory(c);
  for (i = 0; i < v->len; i++)
    if (copy[i] >= 'A' && copy[i] <= 'F')
      copy[i] = (char)(copy[i] - 'A' + 'a');
  *out = copy;
  return APP_OK;
}

/* A string member: absent/null gives NULL; required means non-empty. */
static enum app_result get_str(struct ctx *c, const struct seg *at, const struct json *v,
                               bool required, const char **out)
{
  *out = NULL;
  if (is_null(v)) {
    if (!required)
      return APP_OK;
    return v ? fail(c, at, v, "expected a non-empty string")
             : fail(c, at, NULL, "missing, expected a non-empty string");
  }
  if (v->type != JSON_STRING)
    return fail(c, at, v, "expected a string");
  if (has_nul(v))
    return fail(c, at, v, "expected a string without NUL characters");
  if (required && v->len == 0)
    return fail(c, at, v, "expected a non-empty string");
  *out = v->str;
  return APP_OK;
}

/* An int member (Depth, Stage, Mode): absent/null gives dflt. */
static enum app_result get_int(struct ctx *c, const struct seg *at, const struct json *v, int dflt,
                               int *out)
{
  int64_t i;
  *out = dflt;
  if (is_null(v))
    return APP_OK;
  if (!json_number_i64(v, &i) || i < INT32_MIN || i > INT32_MAX)
    return fail(c, at, v, "expected an integer");
  *out = (int)i;
  return APP_OK;
}

/* .NET DateTime.MinValue and MaxValue in ms since the Unix epoch: DCJS
 * cannot write anything outside. */
#define DV_DATE_MIN_MS (-INT64_C(62135596800000))
#define DV_DATE_MAX_MS INT64_C(253402300799999)

/* "/Date(" ["-"] digits [("+"|"-") 4 digits] ")/", the whole string. */
static bool parse_date(const char *s, size_t n, int64_t *out_ms, bool *out_offset,
                       int *out_offset_min)
{
  const char *p = s, *e = s + n;
  uint64_t v = 0;
  bool neg = false, off = false;
  int digits = 0, off_min = 0;

  if (n < 9 || memcmp(s, "/Date(", 6) != 0)
    return false;
  p += 6;
  if (*p == '-') {
    neg = true;
    p++;
  }
  while (p < e && *p >= '0' && *p <= '9') {
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > (uint64_t)DV_DATE_MAX_MS + 1)
      return false;
    digits++;
    p++;
  }
  if (!digits)
    return false;
  if (p < e && (*p == '+' || *p == '-')) {
    int k, hhmm = 0, sign = *p == '-' ? -1 : 1;
    p++;
    for (k = 0; k < 4; k++, p++) {
      if (p >= e || *p < '0' || *p > '9')
        return false;
      hhmm = hhmm * 10 + (*p - '0');
    }
    off = true;
    off_min = sign * (hhmm / 100 * 60 + hhmm % 100);
  }
  if (e - p != 2 || p[0] != ')' || p[1] != '/')
    return false;
  if (neg ? v > (uint64_t)(-DV_DATE_MIN_MS) : v > (uint64_t)DV_DATE_MAX_MS)
    return false;
  *out_ms = neg ? -(int64_t)v : (int64_t)v;
  *out_offset = off;
  if (out_offset_min)
    *out_offset_min = off_min;
  return true;
}

/* Decimal text of an unsigned 64-bit number (RowVersion, versionnumber). */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
  uint64_t v = 0;
  size_t i;
  if (n == 0 || n > 20)
    return false;
  for (i = 0; i < n; i++) {
    unsigned d;
    if (s[i] < '0' || s[i] > '9')
      return false;
    d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

static enum app_result dup_lexeme(struct ctx *c, const struct json *v, const char **out,
                                  size_t *out_len)
{
  char *s = arena_strndup(c->a, v->str, v->len);
  if (!s)
    return no_memory(c);
  *out = s;
  if (out_len)
    *out_len = v->len;
  return APP_OK;
}

/* Compact JSON text of v in the arena (DV_RAW, non-string key values). */
static enum app_result raw_json(struct ctx *c, const struct json *v, const char **out,
                                size_t *out_len)
{
  struct buf b;
  enum app_result rc;
  char *s;

  buf_init(&b, c->raw_cap);
  rc = json_write(&b, v);
  if (rc != APP_OK) {
    rc = app_err_set(c->err, APP_ERR_LIMIT, "value too large to keep as raw JSON");
    goto out;
  }
  s = arena_strndup(c->a, b.data ? b.data : "", b.len);
  if (!s) {
    rc = no_memory(c);
    goto out;
  }
  *out = s;
  *out_len = b.len;
out:
  buf_cleanup(&b);
  return rc;
}

/* ---- key/value collections ---------------------------------------------- */

/* Check that v is null/absent or an array of {"key": string, ...} objects.
 * *out_n gets the element count (0 for null). */
static enum app_result check_kv_array(struct ctx *c, const struct seg *at, const struct json *v,
                                      size_t *out_n)
{
  const struct json *el;
  long i = 0;

  *out_n = 0;
  if (is_null(v))
    return APP_OK;
  if (v->type != JSON_ARRAY)
    return fail(c, at, v, "expected an array of key/value pairs");
  for (el = v->child; el; el = el->next, i++) {
    struct seg s = SEG_INDEX(at, i, NULL);
    const struct json *k;
    if (el->type != JSON_OBJECT)
      return fail(c, &s, el, "expected a {\"key\":...,\"value\":...} object");
    k = get(el, "key");
    if (!json_is(k, JSON_STRING) || has_nul(k)) {
      struct seg sk = SEG_MEMBER(&s, "key");
      if (!k)
        return fail(c, &sk, NULL, "missing");
      return fail(c, &sk, k,
                  k->type == JSON_STRING ? "expected a string without NUL characters"
                                         : "expected a string");
    }
  }
  *out_n = v->len;
  return APP_OK;
}

/* The value of the element with the given key in a checked kv array, or
 * NULL; *out_index gets its index (-1 when absent). A pair without a
 * "value" member counts as null. */
static const struct json *kv_find(const struct json *arr, const char *key, long *out_index,
                                  const struct json **out_el)
{
  const struct json *el;
  long i = 0;
  *out_index = -1;
  if (!json_is(arr, JSON_ARRAY))
    return NULL;
  for (el = arr->child; el; el = el->next, i++) {
    const char *k = get_cstr(el, "key");
    if (k && !strcmp(k, key)) {
      *out_index = i;
      if (out_el)
        *out_el = el;
      return get(el, "value");
    }
  }
  return NULL;
}

/* KeyAttributes: string form of each value (strings as they are, numbers as
 * lexemes, booleans as true/false, other values as compact JSON). */
static enum app_result decode_keys(struct ctx *c, const struct seg *at, const struct json *v,
                                   const struct dv_kv **out, size_t *out_n)
{
  const struct json *el;
  struct dv_kv *kv;
  size_t n, i = 0;

  *out = NULL;
  *out_n = 0;
  APP_RETURN_IF_FAILED(check_kv_array(c, at, v, &n));
  if (!n)
    return APP_OK;
  kv = alloc_array(c, n, sizeof *kv);
  if (!kv)
    return no_memory(c);
  for (el = v->child; el; el = el->next, i++) {
    const struct json *val = get(el, "value");
    size_t len;
    kv[i].key = get_cstr(el, "key");
    if (is_null(val)) {
      kv[i].value = NULL;
    } else if (val->type == JSON_STRING) {
      struct seg s = SEG_INDEX(at, (long)i, kv[i].key), sv = SEG_MEMBER(&s, "value");
      if (has_nul(val))
        return fail(c, &sv, val, "expected a string without NUL characters");
      kv[i].value = val->str;
    } else if (val->type == JSON_NUMBER) {
      APP_RETURN_IF_FAILED(dup_lexeme(c, val, &kv[i].value, NULL));
    } else if (val->type == JSON_TRUE || val->type == JSON_FALSE) {
      kv[i].value = val->type == JSON_TRUE ? "true" : "false";
    } else {
      APP_RETURN_IF_FAILED(raw_json(c, val, &kv[i].value, &len));
    }
  }
  *out = kv;
  *out_n = n;
  return APP_OK;
}

/* ---- values --------------------------------------------------------------- */

static enum app_result decode_value(struct ctx *c, const struct seg *at, const struct json *v,
                                    struct dv_value *out);
static enum app_result decode_entity(struct ctx *c, const struct seg *at, const struct json *v,
                                     const struct dv_entity **out);

/* RowVersion: a decimal string (DCJS writes the ulong as a string); a
 * number is tolerated. */
static enum app_result get_row_version(struct ctx *c, const struct seg *at, const struct json *v,
                                       const char **out)
{
  uint64_t u;
  *out = NULL;
  if (is_null(v))
    return APP_OK;
  if ((v->type != JSON_STRING && v->type != JSON_NUMBER) || !parse_u64(v->str, v->len, &u))
    return fail(c, at, v, "expected a decimal row version");
  if (v->type == JSON_STRING) {
    *out = v->str;
    return APP_OK;
  }
  return dup_lexeme(c, v, out, NULL);
}

/* EntityReference, with or without __type. */
static enum app_result decode_ref(struct ctx *c, const struct seg *at, const struct json *v,
                                  struct dv_ref *out)
{
  const struct json *m, *id = NULL, *ln = NULL, *name = NULL, *rv = NULL, *keys = NULL;
  const char *tn;
  size_t tl;

  memset(out, 0, sizeof *out);
  if (!json_is(v, JSON_OBJECT) || (type_name(v, &tn, &tl) && !type_is(tn, tl, "EntityReference")))
    return fail(c, at, v, "expected an EntityReference");
  for (m = v->child; m; m = m->next) {
    if (named(m, "Id") || named(m, "LogicalName")) {
      const struct json **slot = named(m, "Id") ? &id : &ln;
      if (*slot) {
        struct seg s_dup = SEG_MEMBER(at, m->key);
        return fail(c, &s_dup, NULL, "the member appears twice (poison)");
      }
      *slot = m;
    } else if (named(m, "Name"))
      name = m;
    else if (named(m, "RowVersion"))
      rv = m;
    else if (named(m, "KeyAttributes"))
      keys = m;
  }
  {
    struct seg s_id = SEG_MEMBER(at, "Id"), s_ln = SEG_MEMBER(at, "LogicalName"),
               s_name = SEG_MEMBER(at, "Name"), s_rv = SEG_MEMBER(at, "RowVersion"),
               s_keys = SEG_MEMBER(at, "KeyAttributes");
    APP_RETURN_IF_FAILED(get_str(c, &s_ln, ln, true, &out->logical_name));
    APP_RETURN_IF_FAILED(get_guid(c, &s_id, id, true, &out->id));
    APP_RETURN_IF_FAILED(get_str(c, &s_name, name, false, &out->name));
    APP_RETURN_IF_FAILED(get_row_version(c, &s_rv, rv, &out->row_version));
    APP_RETURN_IF_FAILED(decode_keys(c, &s_keys, keys, &out->keys, &out->nkeys));
  }
  return APP_OK;
}

/* OptionSetValue / Money: {"Value": number}. */
static enum app_result decode_number_wrapper(struct ctx *c, const struct seg *at,
                                             const struct json *v, bool integer,
                                             struct dv_value *out)
{
  const struct json *val = get(v, "Value");
  struct seg s = SEG_MEMBER(at, "Value");
  int64_t i;
  if (!json_is(val, JSON_NUMBER) || (integer && !json_number_i64(val, &i)))
    return val ? fail(c, &s, val, integer ? "expected an integer" : "expected a number")
               : fail(c, &s, NULL, "missing");
  return dup_lexeme(c, val, &out->s, &out->len);
}

static enum app_result decode_typed(struct ctx *c, const struct seg *at, const struct json *v,
                                    const char *tn, size_t tl, struct dv_value *out)
{
  if (type_is(tn, tl, "Entity")) {
    out->kind = DV_ENTITY;
    return decode_entity(c, at, v, &out->entity);
  }
  if (type_is(tn, tl, "EntityReference")) {
    out->kind = DV_ENTITYREF;
    return decode_ref(c, at, v, &out->ref);
  }
  if (type_is(tn, tl, "OptionSetValue")) {
    out->kind = DV_OPTIONSET;
    return decode_number_wrapper(c, at, v, true, out);
  }
  if (type_is(tn, tl, "Money")) {
    out->kind = DV_MONEY;
    return decode_number_wrapper(c, at, v, false, out);
  }
  if (type_is(tn, tl, "EntityCollection")) {
    const struct json *ents = get(v, "Entities"), *el;
    struct seg s_ents = SEG_MEMBER(at, "Entities"), s_name = SEG_MEMBER(at, "EntityName");
    struct dv_value *items;
    long i = 0;
    out->kind = DV_ENTITYCOLLECTION;
    APP_RETURN_IF_FAILED(get_str(c, &s_name, get(v, "EntityName"), false, &out->s));
    out->len = out->s ? strlen(out->s) : 0;
    if (is_null(ents))
      return APP_OK;
    if (ents->type != JSON_ARRAY)
      return fail(c, &s_ents, ents, "expected an array of entities");
    if (!ents->len)
      return APP_OK;
    items = alloc_array(c, ents->len, sizeof *items);
    if (!items)
      return no_memory(c);
    for (el = ents->child; el; el = el->next, i++) {
      struct seg s = SEG_INDEX(&s_ents, i, NULL);
      items[i].kind = DV_ENTITY;
      APP_RETURN_IF_FAILED(decode_entity(c, &s, el, &items[i].entity));
    }
    out->items = items;
    out->nitems = ents->len;
    return APP_OK;
  }
  if (type_is(tn, tl, "Relationship")) {
    const struct json *role = get(v, "PrimaryEntityRole");
    struct seg s_schema = SEG_MEMBER(at, "SchemaName"),
               s_role = SEG_MEMBER(at, "PrimaryEntityRole");
    int64_t r;
    out->kind = DV_RELATIONSHIP;
    APP_RETURN_IF_FAILED(get_str(c, &s_schema, get(v, "SchemaName"), true, &out->s));
    out->len = strlen(out->s);
    out->role = -1;
    if (!is_null(role)) {
      if (!json_number_i64(role, &r) || (r != 0 && r != 1))
        return fail(c, &s_role, role, "expected 0 (Referencing), 1 (Referenced) or null");
      out->role = (int)r;
    }
    return APP_OK;
  }
  if (type_is(tn, tl, "KeyValuePairOfstringstring")) {
    struct seg s_key = SEG_MEMBER(at, "key"), s_val = SEG_MEMBER(at, "value");
    out->kind = DV_KVPAIR;
    APP_RETURN_IF_FAILED(get_str(c, &s_key, get(v, "key"), false, &out->s));
    if (!out->s)
      return fail(c, &s_key, get(v, "key"), "expected a string");
    out->len = strlen(out->s);
    return get_str(c, &s_val, get(v, "value"), false, &out->s2);
  }
  if (type_is(tn, tl, "AliasedValue")) {
    struct seg s_attr = SEG_MEMBER(at, "AttributeLogicalName"),
               s_ent = SEG_MEMBER(at, "EntityLogicalName"), s_val = SEG_MEMBER(at, "Value");
    struct dv_value *inner = alloc_array(c, 1, sizeof *inner);
    if (!inner)
      return no_memory(c);
    out->kind = DV_ALIASED;
    APP_RETURN_IF_FAILED(get_str(c, &s_attr, get(v, "AttributeLogicalName"), false, &out->s));
    out->len = out->s ? strlen(out->s) : 0;
    APP_RETURN_IF_FAILED(get_str(c, &s_ent, get(v, "EntityLogicalName"), false, &out->s2));
    APP_RETURN_IF_FAILED(decode_value(c, &s_val, get(v, "Value"), inner));
    out->items = inner;
    out->nitems = 1;
    return APP_OK;
  }
  if (type_is(tn, tl, "BooleanManagedProperty")) {
    const struct json *val = get(v, "Value");
    struct seg s_val = SEG_MEMBER(at, "Value"),
               s_name = SEG_MEMBER(at, "ManagedPropertyLogicalName");
    out->kind = DV_BOOLMANAGED;
    if (!json_is(val, JSON_TRUE) && !json_is(val, JSON_FALSE))
      return val ? fail(c, &s_val, val, "expected true or false")
                 : fail(c, &s_val, NULL, "missing");
    out->b = val->type == JSON_TRUE;
    APP_RETURN_IF_FAILED(get_str(c, &s_name, get(v, "ManagedPropertyLogicalName"), false, &out->s));
    out->len = out->s ? strlen(out->s) : 0;
    return APP_OK;
  }
  /* unknown type: keep it, never drop it */
  out->kind = DV_RAW;
  return raw_json(c, v, &out->s, &out->len);
}

/* A bare JSON array: multi-select choices and EntityReferenceCollection
 * are arrays whose elements carry their own __type (an empty array has
 * no element type, so it stays DV_ARRAY). */
static enum app_result decode_array(struct ctx *c, const struct seg *at, const struct json *v,
                                    struct dv_value *out)
{
  const struct json *el;
  struct dv_value *items;
  bool all_osv = true, all_ref = true;
  long i = 0;

  out->kind = DV_ARRAY;
  if (!v->len)
    return APP_OK;
  items = alloc_array(c, v->len, sizeof *items);
  if (!items)
    return no_memory(c);
  for (el = v->child; el; el = el->next, i++) {
    struct seg s = SEG_INDEX(at, i, NULL);
    APP_RETURN_IF_FAILED(decode_value(c, &s, el, &items[i]));
    all_osv = all_osv && items[i].kind == DV_OPTIONSET;
    all_ref = all_ref && items[i].kind == DV_ENTITYREF;
  }
  out->items = items;
  out->nitems = v->len;
  if (all_osv)
    out->kind = DV_MULTISELECT;
  else if (all_ref)
    out->kind = DV_ENTITYREFCOLLECTION;
  return APP_OK;
}

static enum app_result decode_value(struct ctx *c, const struct seg *at, const struct json *v,
                                    struct dv_value *out)
{
  const char *tn;
  size_t tl;

  memset(out, 0, sizeof *out);
  if (!v) {
    out->kind = DV_NULL;
    return APP_OK;
  }
  switch (v->type) {
  case JSON_NULL: out->kind = DV_NULL; return APP_OK;
  case JSON_TRUE:
  case JSON_FALSE:
    out->kind = DV_BOOL;
    out->b = v->type == JSON_TRUE;
    return APP_OK;
  case JSON_NUMBER: out->kind = DV_NUMBER; return dup_lexeme(c, v, &out->s, &out->len);
  case JSON_STRING:
    out->s = v->str;
    out->len = v->len;
    out->kind =
        parse_date(v->str, v->len, &out->date_ms, &out->date_has_offset, &out->date_offset_min)
            ? DV_DATE
            : DV_STRING;
    return APP_OK;
  case JSON_ARRAY: return decode_array(c, at, v, out);
  default:
    if (type_name(v, &tn, &tl))
      return decode_typed(c, at, v, tn, tl, out);
    /* an object without __type where a value belongs: keep it as it is */
    out->kind = DV_RAW;
    return raw_json(c, v, &out->s, &out->len);
  }
}

/* ---- entities ------------------------------------------------------------ */

struct name_ix {
  const char *name;
  size_t i;
};

static int name_ix_cmp(const void *pa, const void *pb)
{
  const struct name_ix *x = pa, *y = pb;
  int r = strcmp(x->name, y->name);
  if (r)
    return r;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* FormattedValues -> dv_attr.formatted of the attribute with the same name
 * (the first one when a name repeats). Large entities use a sorted index so
 * a hostile message cannot make this quadratic. */
static enum app_result attach_formatted(struct ctx *c, const struct seg *at, const struct json *fv,
                                        struct dv_attr *attrs, size_t nattrs)
{
  const struct json *el;
  struct name_ix *ix = NULL;
  size_t n;
  long i = 0;

  APP_RETURN_IF_FAILED(check_kv_array(c, at, fv, &n));
  if (!n || !nattrs)
    return APP_OK;
  if (nattrs > 16) {
    size_t k;
    ix = alloc_array(c, nattrs, sizeof *ix);
    if (!ix)
      return no_memory(c);
    for (k = 0; k < nattrs; k++) {
      ix[k].name = attrs[k].name;
      ix[k].i = k;
    }
    qsort(ix, nattrs, sizeof *ix, name_ix_cmp);
  }
  for (el = fv->child; el; el = el->next, i++) {
    const char *key = get_cstr(el, "key");
    const struct json *val = get(el, "value");
    struct dv_attr *hit = NULL;
    if (!is_null(val) && (val->type != JSON_STRING || has_nul(val))) {
      struct seg s = SEG_INDEX(at, i, key), sv = SEG_MEMBER(&s, "value");
      return fail(c, &sv, val, "expected a formatted string without NUL characters");
    }
    if (is_null(val))
      continue;
    if (ix) {
      size_t lo = 0, hi = nattrs;
      while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix[mid].name, key) < 0)
          lo = mid + 1;
        else
          hi = mid;
      }
      if (lo < nattrs && !strcmp(ix[lo].name, key))
        hit = &attrs[ix[lo].i];
    } else {
      size_t k;
      for (k = 0; k < nattrs && !hit; k++)
        if (!strcmp(attrs[k].name, key))
          hit = &attrs[k];
    }
    if (hit && !hit->formatted)
      hit->formatted = val->str;
  }
  return APP_OK;
}

/* The Attributes collection of an entity. versionnumber, when present and
 * not null, must be an unsigned integer: it orders changes. */
static enum app_result decode_attrs(struct ctx *c, const struct seg *at, const struct json *v,
                                    struct dv_attr **out, size_t *out_n)
{
  const struct json *el;
  struct dv_attr *attrs;
  size_t n;
  long i = 0;

  *out = NULL;
  *out_n = 0;
  APP_RETURN_IF_FAILED(check_kv_array(c, at, v, &n));
  if (!n)
    return APP_OK;
  attrs = alloc_array(c, n, sizeof *attrs);
  if (!attrs)
    return no_memory(c);
  for (el = v->child; el; el = el->next, i++) {
    const char *key = get_cstr(el, "key");
    struct seg s = SEG_INDEX(at, i, key), sv = SEG_MEMBER(&s, "value");
    struct dv_value *val = &attrs[i].value;
    uint64_t u;
    attrs[i].name = key;
    APP_RETURN_IF_FAILED(decode_value(c, &sv, get(el, "value"), val));
    if (!strcmp(key, "versionnumber") && val->kind != DV_NULL &&
        !((val->kind == DV_NUMBER || val->kind == DV_STRING) && parse_u64(val->s, val->len, &u)))
      return fail(c, &sv, get(el, "value"), "expected an unsigned integer versionnumber");
  }
  *out = attrs;
  *out_n = n;
  return APP_OK;
}

/* Entity, with __type "Entity" (parameters, attribute values) or without it
 * (images, EntityCollection items). */
static enum app_result decode_entity(struct ctx *c, const struct seg *at, const struct json *v,
                                     const struct dv_entity **out)
{
  const struct json *m, *attrs = NULL, *fv = NULL, *id = NULL, *keys = NULL, *ln = NULL, *rv = NULL;
  struct dv_entity *e;
  struct dv_attr *a;
  const char *tn;
  size_t tl;

  *out = NULL;
  if (!json_is(v, JSON_OBJECT) || (type_name(v, &tn, &tl) && !type_is(tn, tl, "Entity")))
    return fail(c, at, v, "expected an Entity");
  e = alloc_array(c, 1, sizeof *e);
  if (!e)
    return no_memory(c);
  for (m = v->child; m; m = m->next) {
    switch (m->key[0]) {
    case 'A':
      if (named(m, "Attributes"))
        attrs = m;
      break;
    case 'F':
      if (named(m, "FormattedValues"))
        fv = m;
      break;
    case 'I':
      if (named(m, "Id")) {
        if (id) {
          struct seg s_dup = SEG_MEMBER(at, "Id");
          return fail(c, &s_dup, NULL, "the member appears twice (poison)");
        }
        id = m;
      }
      break;
    case 'K':
      if (named(m, "KeyAttributes"))
        keys = m;
      break;
    case 'L':
      if (named(m, "LogicalName")) {
        if (ln) {
          struct seg s_dup = SEG_MEMBER(at, "LogicalName");
          return fail(c, &s_dup, NULL, "the member appears twice (poison)");
        }
        ln = m;
      }
      break;
    case 'R':
      if (named(m, "RowVersion"))
        rv = m;
      break;
    default: break;
    }
  }
  {
    struct seg s_attrs = SEG_MEMBER(at, "Attributes"), s_fv = SEG_MEMBER(at, "FormattedValues"),
               s_id = SEG_MEMBER(at, "Id"), s_keys = SEG_MEMBER(at, "KeyAttributes"),
               s_ln = SEG_MEMBER(at, "LogicalName"), s_rv = SEG_MEMBER(at, "RowVersion");
    APP_RETURN_IF_FAILED(get_str(c, &s_ln, ln, false, &e->logical_name));
    APP_RETURN_IF_FAILED(get_guid(c, &s_id, id, false, &e->id));
    APP_RETURN_IF_FAILED(get_row_version(c, &s_rv, rv, &e->row_version));
    APP_RETURN_IF_FAILED(decode_attrs(c, &s_attrs, attrs, &a, &e->nattrs));
    APP_RETURN_IF_FAILED(attach_formatted(c, &s_fv, fv, a, e->nattrs));
    APP_RETURN_IF_FAILED(decode_keys(c, &s_keys, keys, &e->keys, &e->nkeys));
    e->attrs = a;
  }
  *out = e;
  return APP_OK;
}

/* ---- the context ---------------------------------------------------------- */

/* Top-level members we read; the rest is ignored (schema drift is normal). */
struct top {
  const struct json *business_unit, *correlation, *depth, *agent, *initiating_user, *input,
      *message, *mode, *created_on, *operation, *organization, *org_name, *output, *owning, *parent,
      *post_images, *pre_images, *primary_id, *primary_name, *request, *stage, *user;
};

static const struct {
  const char *name;
  size_t off;
} top_members[] = {
    {"BusinessUnitId", offsetof(struct top, business_unit)},
    {"CorrelationId", offsetof(struct top, correlation)},
    {"Depth", offsetof(struct top, depth)},
    {"InitiatingUserAgent", offsetof(struct top, agent)},
    {"InitiatingUserId", offsetof(struct top, initiating_user)},
    {"InputParameters", offsetof(struct top, input)},
    {"MessageName", offsetof(struct top, message)},
    {"Mode", offsetof(struct top, mode)},
    {"OperationCreatedOn", offsetof(struct top, created_on)},
    {"OperationId", offsetof(struct top, operation)},
    {"OrganizationId", offsetof(struct top, organization)},
    {"OrganizationName", offsetof(struct top, org_name)},
    {"OutputParameters", offsetof(struct top, output)},
    {"OwningExtension", offsetof(struct top, owning)},
    {"ParentContext", offsetof(struct top, parent)},
    {"PostEntityImages", offsetof(struct top, post_images)},
    {"PreEntityImages", offsetof(struct top, pre_images)},
    {"PrimaryEntityId", offsetof(struct top, primary_id)},
    {"PrimaryEntityName", offsetof(struct top, primary_name)},
    {"RequestId", offsetof(struct top, request)},
    {"Stage", offsetof(struct top, stage)},
    {"UserId", offsetof(struct top, user)},
};

/* Fills t; returns the name of a member that appears twice, or NULL.
 * Duplicates of the members that decide what a message does are poison
 * (issue 17): D365 never writes them, and .NET's readers disagree on which
 * one counts (Newtonsoft and System.Text.Json's default keep the last,
 * System.Text.Json with AllowDuplicateProperties = false refuses the
 * document), so no choice of ours would be the sender's meaning for sure. */
static const char *read_top(const struct json *root, struct top *t)
{
  const struct json *m;
  const char *dup = NULL;
  size_t i;
  memset(t, 0, sizeof *t);
  for (m = root->child; m; m = m->next)
    for (i = 0; i < sizeof top_members / sizeof top_members[0]; i++)
      if (m->key[0] == top_members[i].name[0] && named(m, top_members[i].name)) {
        const struct json **slot = (const struct json **)((char *)t + top_members[i].off);
        if (!*slot)
          *slot = m;
        else if (!dup)
          dup = top_members[i].name;
        break;
      }
  return dup;
}

/* The InputParameters keys that decide what a message does, and whether
 * one of them appears twice (index of the second in *at). */
static const char *dup_param(const struct json *params, long *at)
{
  static const char *const keys[] = {
      "Target",          "EntityMoniker", "State",         "Status",   "Relationship",
      "RelatedEntities", "SubordinateId", "UpdateContent", "Assignee", "ConcurrencyBehavior"};
  size_t k;
  if (!json_is(params, JSON_ARRAY))
    return NULL;
  for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    const struct json *el;
    long i = 0, seen = 0;
    for (el = params->child; el; el = el->next, i++) {
      const char *key = get_cstr(el, "key");
      if (key && !strcmp(key, keys[k]) && ++seen == 2) {
        *at = i;
        return keys[k];
      }
    }
  }
  return NULL;
}

static enum cdc_op op_of(const char *message)
{
  static const struct {
    const char *name;
    enum cdc_op op;
  } ops[] = {
      {"Create", CDC_OP_CREATE},
      {"Update", CDC_OP_UPDATE},
      {"Delete", CDC_OP_DELETE},
      {"Associate", CDC_OP_ASSOCIATE},
      {"Disassociate", CDC_OP_DISASSOCIATE},
      {"SetState", CDC_OP_SETSTATE},
      {"SetStateDynamicEntity", CDC_OP_SETSTATE},
      {"Assign", CDC_OP_ASSIGN},
      {"Merge", CDC_OP_MERGE},
      {"Upsert", CDC_OP_UPSERT},
      {"Restore", CDC_OP_RESTORE},
  };
  size_t i;
  for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcasecmp(message, ops[i].name))
      return ops[i].op;
  return CDC_OP_OTHER;
}

/* Where the change's data came from, for the version. */
struct sources {
  const struct dv_entity *target;  /* Target/UpdateContent Entity */
  const struct dv_ref *target_ref; /* Target/EntityMoniker reference */
};

/* A parameter of InputParameters (checked kv array) with its path. */
struct param {
  const struct json *v;
  struct seg s_el, s_val;
  bool found;
};

static void param_get(const struct json *params, const struct seg *s_params, const char *key,
                      struct param *p)
{
  long i;
  p->v = kv_find(params, key, &i, NULL);
  p->found = i >= 0;
  p->s_el = (struct seg)SEG_INDEX(s_params, i, key);
  p->s_val = (struct seg)SEG_MEMBER(&p->s_el, "value");
}

static enum app_result need_param(struct ctx *c, const struct seg *s_params, const char *message,
                                  const struct param *p, const char *key)
{
  if (p->found)
    return APP_OK;
  return fail(c, s_params, NULL, "%s message has no %s parameter", message, key);
}

static struct dv_ref *new_ref(struct ctx *c)
{
  return alloc_array(c, 1, sizeof(struct dv_ref));
}

/* State/Status of SetState: an OptionSetValue (a bare integer is tolerated). */
static enum app_result decode_option(struct ctx *c, const struct param *p, struct dv_value *out)
{
  memset(out, 0, sizeof *out);
  if (json_is(p->v, JSON_NUMBER)) {
    int64_t i;
    if (!json_number_i64(p->v, &i))
      return fail(c, &p->s_val, p->v, "expected an OptionSetValue");
    out->kind = DV_OPTIONSET;
    return dup_lexeme(c, p->v, &out->s, &out->len);
  }
  APP_RETURN_IF_FAILED(decode_value(c, &p->s_val, p->v, out));
  if (out->kind != DV_OPTIONSET)
    return fail(c, &p->s_val, p->v, "expected an OptionSetValue");
  return APP_OK;
}

/* Attributes plus extra ones (statecode/statuscode/ownerid) that are not
 * already among them. */
static enum app_result attrs_with(struct ctx *c, const struct dv_attr *base, size_t nbase,
                                  const struct dv_attr *extra, size_t nextra,
                                  const struct dv_attr **out, size_t *out_n)
{
  struct dv_attr *all = alloc_array(c, nbase + nextra, sizeof *all);
  size_t n = nbase, i, k;
  if (!all)
    return no_memory(c);
  if (nbase)
    memcpy(all, base, nbase * sizeof *all);
  for (i = 0; i < nextra; i++) {
    bool dup = false;
    for (k = 0; k < nbase && !dup; k++)
      dup = !strcmp(base[k].name, extra[i].name);
    if (!dup)
      all[n++] = extra[i];
  }
  *out = all;
  *out_n = n;
  return APP_OK;
}

/* EntityMoniker + State + Status (SetState, and Updates that carry them). */
static enum app_result decode_state(struct ctx *c, const struct seg *s_params,
                                    const struct json *params, const char *message,
                                    struct dv_ref **out_ref, struct dv_attr *out_attrs)
{
  struct param moniker, state, status;
  struct dv_ref *ref;

  param_get(params, s_params, "EntityMoniker", &moniker);
  param_get(params, s_params, "State", &state);
  param_get(params, s_params, "Status", &status);
  APP_RETURN_IF_FAILED(need_param(c, s_params, message, &moniker, "EntityMoniker"));
  APP_RETURN_IF_FAILED(need_param(c, s_params, message, &state, "State"));
  APP_RETURN_IF_FAILED(need_param(c, s_params, message, &status, "Status"));
  ref = new_ref(c);
  if (!ref)
    return no_memory(c);
  APP_RETURN_IF_FAILED(decode_ref(c, &moniker.s_val, moniker.v, ref));
  out_attrs[0].name = "statecode";
  out_attrs[1].name = "statuscode";
  APP_RETURN_IF_FAILED(decode_option(c, &state, &out_attrs[0].value));
  APP_RETURN_IF_FAILED(decode_option(c, &status, &out_attrs[1].value));
  *out_ref = ref;
  return APP_OK;
}

/* A Target that must be an EntityReference. */
static enum app_result target_ref(struct ctx *c, const struct seg *s_params,
                                  const struct json *params, const char *message, const char *key,
                                  const struct dv_ref **out)
{
  struct param p;
  struct dv_ref *ref;
  param_get(params, s_params, key, &p);
  APP_RETURN_IF_FAILED(need_param(c, s_params, message, &p, key));
  ref = new_ref(c);
  if (!ref)
    return no_memory(c);
  APP_RETURN_IF_FAILED(decode_ref(c, &p.s_val, p.v, ref));
  *out = ref;
  return APP_OK;
}

/* The record id: the first non-empty candidate. */
static const char *first_id(const char *a, const char *b, const char *c3)
{
  if (a && !guid_is_zero(a))
    return a;
  if (b && !guid_is_zero(b))
    return b;
  if (c3 && !guid_is_zero(c3))
    return c3;
  return NULL;
}

/* Decode InputParameters (and OutputParameters) for the known messages. */
static enum app_result decode_params(struct ctx *c, const struct top *t, const char *primary_id,
                                     struct cdc_change *ch, struct sources *src)
{
  struct seg s_params = SEG_MEMBER(NULL, "InputParameters"),
             s_out = SEG_MEMBER(NULL, "OutputParameters");
  const struct json *params = t->input, *outputs = t->output;
  const char *msg = ch->message;
  size_t nout;

  APP_RETURN_IF_FAILED(check_kv_array(c, &s_out, outputs, &nout));
  switch (ch->op) {
  case CDC_OP_CREATE:
  case CDC_OP_UPDATE:
  case CDC_OP_UPSERT: {
    struct param target, moniker;
    const struct dv_entity *e = NULL;
    const char *out_id = NULL;
    struct dv_ref *mref = NULL;
    struct dv_attr state[2];

    param_get(params, &s_params, "Target", &target);
    param_get(params, &s_params, "EntityMoniker", &moniker);
    if (!target.found && (ch->op != CDC_OP_UPDATE || !moniker.found))
      return need_param(c, &s_params, msg, &target, "Target");
    if (target.found) {
      APP_RETURN_IF_FAILED(decode_entity(c, &target.s_val, target.v, &e));
      src->target = e;
      ch->attrs = e->attrs;
      ch->nattrs = e->nattrs;
    }
    if (ch->op == CDC_OP_UPDATE && moniker.found) {
      memset(state, 0, sizeof state);
      APP_RETURN_IF_FAILED(decode_state(c, &s_params, params, msg, &mref, state));
      APP_RETURN_IF_FAILED(attrs_with(c, ch->attrs, ch->nattrs, state, 2, &ch->attrs, &ch->nattrs));
      if (!src->target_ref)
        src->target_ref = mref;
    }
    if (ch->op == CDC_OP_CREATE) {
      long i;
      const struct json *idv = kv_find(outputs, "id", &i, NULL);
      struct seg s_el = SEG_INDEX(&s_out, i, "id"), s_val = SEG_MEMBER(&s_el, "value");
      if (i >= 0)
        APP_RETURN_IF_FAILED(get_guid(c, &s_val, idv, false, &out_id));
      ch->full_row = true;
    } else if (ch->op == CDC_OP_UPSERT) {
      long i;
      const struct json *tv = kv_find(outputs, "Target", &i, NULL);
      struct seg s_el = SEG_INDEX(&s_out, i, "Target"), s_val = SEG_MEMBER(&s_el, "value");
      struct dv_ref r;
      if (i >= 0 && !is_null(tv)) {
        APP_RETURN_IF_FAILED(decode_ref(c, &s_val, tv, &r));
        out_id = r.id;
      }
    }
    ch->table = e && e->logical_name ? e->logical_name : mref ? mref->logical_name : NULL;
    ch->id = first_id(out_id, e ? e->id : NULL, mref ? mref->id : NULL);
    if (!ch->id)
      ch->id = first_id(primary_id, NULL, NULL);
    if (!ch->table && t->primary_name && t->primary_name->type == JSON_STRING &&
        t->primary_name->len)
      ch->table = t->primary_name->str;
    if (!ch->table)
      return fail(c, target.found ? &target.s_val : &s_params, NULL,
                  "%s record table unknown: no Target LogicalName and no PrimaryEntityName", msg);
    if (!ch->id)
      return fail(c, target.found ? &target.s_val : &s_params, NULL,
                  "%s record id unknown: no Target Id%s and no PrimaryEntityId", msg,
                  ch->op == CDC_OP_CREATE ? ", no OutputParameters id" : "");
    return APP_OK;
  }
  case CDC_OP_DELETE:
    APP_RETURN_IF_FAILED(target_ref(c, &s_params, params, msg, "Target", &src->target_ref));
    break;
  case CDC_OP_RESTORE: {
    /* RestoreRequest.Target: an Entity naming the record (its columns, if
     * any, are not the restored row: the post image is, decode_context) */
    struct param target;
    const char *tn;
    size_t tl;
    param_get(params, &s_params, "Target", &target);
    APP_RETURN_IF_FAILED(need_param(c, &s_params, msg, &target, "Target"));
    if (json_is(target.v, JSON_OBJECT) && type_name(target.v, &tn, &tl) &&
        type_is(tn, tl, "Entity")) {
      const struct dv_entity *e;
      struct dv_ref *ref = new_ref(c);
      if (!ref)
        return no_memory(c);
      APP_RETURN_IF_FAILED(decode_entity(c, &target.s_val, target.v, &e));
      ref->logical_name = e->logical_name;
      ref->id = e->id;
      src->target_ref = ref;
    } else {
      APP_RETURN_IF_FAILED(target_ref(c, &s_params, params, msg, "Target", &src->target_ref));
    }
    if (!src->target_ref->logical_name || !*src->target_ref->logical_name) {
      if (!t->primary_name || t->primary_name->type != JSON_STRING || !t->primary_name->len)
        return fail(c, &target.s_val, NULL, "%s record table unknown", msg);
      ((struct dv_ref *)src->target_ref)->logical_name = t->primary_name->str;
    }
    break;
  }
  case CDC_OP_ASSOCIATE:
  case CDC_OP_DISASSOCIATE: {
    struct param rel, related;
    struct dv_value rv;
    const struct json *el;
    struct dv_ref *refs;
    long i = 0;

    APP_RETURN_IF_FAILED(target_ref(c, &s_params, params, msg, "Target", &src->target_ref));
    param_get(params, &s_params, "Relationship", &rel);
    param_get(params, &s_params, "RelatedEntities", &related);
    APP_RETURN_IF_FAILED(need_param(c, &s_params, msg, &rel, "Relationship"));
    APP_RETURN_IF_FAILED(need_param(c, &s_params, msg, &related, "RelatedEntities"));
    APP_RETURN_IF_FAILED(decode_value(c, &rel.s_val, rel.v, &rv));
    if (rv.kind != DV_RELATIONSHIP)
      return fail(c, &rel.s_val, rel.v, "expected a Relationship");
    ch->relationship = rv.s;
    ch->relationship_role = rv.role;
    if (!json_is(related.v, JSON_ARRAY))
      return fail(c, &related.s_val, related.v, "expected an array of EntityReference");
    refs = alloc_array(c, related.v->len, sizeof *refs);
    if (related.v->len && !refs)
      return no_memory(c);
    for (el = related.v->child; el; el = el->next, i++) {
      struct seg s = SEG_INDEX(&related.s_val, i, NULL);
      APP_RETURN_IF_FAILED(decode_ref(c, &s, el, &refs[i]));
    }
    ch->related = refs;
    ch->nrelated = related.v->len;
    break;
  }
  case CDC_OP_SETSTATE: {
    struct dv_ref *ref;
    struct dv_attr *attrs = alloc_array(c, 2, sizeof *attrs);
    if (!attrs)
      return no_memory(c);
    APP_RETURN_IF_FAILED(decode_state(c, &s_params, params, msg, &ref, attrs));
    src->target_ref = ref;
    ch->attrs = attrs;
    ch->nattrs = 2;
    break;
  }
  case CDC_OP_ASSIGN: {
    struct dv_attr *attrs = alloc_array(c, 1, sizeof *attrs);
    if (!attrs)
      return no_memory(c);
    APP_RETURN_IF_FAILED(target_ref(c, &s_params, params, msg, "Target", &src->target_ref));
    APP_RETURN_IF_FAILED(target_ref(c, &s_params, params, msg, "Assignee", &ch->assignee));
    attrs[0].name = "ownerid";
    attrs[0].value.kind = DV_ENTITYREF;
    attrs[0].value.ref = *ch->assignee;
    ch->attrs = attrs;
    ch->nattrs = 1;
    break;
  }
  case CDC_OP_MERGE: {
    struct param sub, content;
    APP_RETURN_IF_FAILED(target_ref(c, &s_params, params, msg, "Target", &src->target_ref));
    param_get(params, &s_params, "SubordinateId", &sub);
    APP_RETURN_IF_FAILED(need_param(c, &s_params, msg, &sub, "SubordinateId"));
    APP_RETURN_IF_FAILED(get_guid(c, &sub.s_val, sub.v, true, &ch->subordinate_id));
    param_get(params, &s_params, "UpdateContent", &content);
    if (content.found && !is_null(content.v)) {
      const struct dv_entity *e;
      APP_RETURN_IF_FAILED(decode_entity(c, &content.s_val, content.v, &e));
      ch->attrs = e->attrs;
      ch->nattrs = e->nattrs;
    }
    break;
  }
  default: return APP_OK;
  }
  /* a reference by alternate key has a zero Id; Dataverse resolves the
   * record and reports it in PrimaryEntityId */
  ch->table = src->target_ref->logical_name;
  ch->id = first_id(src->target_ref->id, primary_id, NULL);
  if (!ch->id)
    return fail(c, &s_params, NULL,
                "%s record id unknown: the %s reference has no Id and there is no "
                "PrimaryEntityId",
                msg, ch->op == CDC_OP_SETSTATE ? "EntityMoniker" : "Target");
  return APP_OK;
}

/* The images: pre = first entry, post = first entry whose alias is not
 * AsynchronousStepPrimaryName (that one only carries the primary name). */
static enum app_result decode_images(struct ctx *c, const struct top *t, struct cdc_change *ch)
{
  struct seg s_pre = SEG_MEMBER(NULL, "PreEntityImages"),
             s_post = SEG_MEMBER(NULL, "PostEntityImages");
  const struct json *el;
  size_t n;
  long i = 0;

  APP_RETURN_IF_FAILED(check_kv_array(c, &s_pre, t->pre_images, &n));
  if (n) {
    el = t->pre_images->child;
    struct seg s_el = SEG_INDEX(&s_pre, 0, get_cstr(el, "key")), s_val = SEG_MEMBER(&s_el, "value");
    APP_RETURN_IF_FAILED(decode_entity(c, &s_val, get(el, "value"), &ch->pre_image));
  }
  APP_RETURN_IF_FAILED(check_kv_array(c, &s_post, t->post_images, &n));
  for (el = n ? t->post_images->child : NULL; el; el = el->next, i++) {
    const char *key = get_cstr(el, "key");
    struct seg s_el = SEG_INDEX(&s_post, i, key), s_val = SEG_MEMBER(&s_el, "value");
    if (!strcmp(key, async_primary_name))
      continue;
    return decode_entity(c, &s_val, get(el, "value"), &ch->post_image);
  }
  return APP_OK;
}

/* versionnumber attribute of an entity (validated by decode_attrs). */
static bool entity_versionnumber(const struct dv_entity *e, uint64_t *out)
{
  size_t i;
  if (!e)
    return false;
  for (i = 0; i < e->nattrs; i++)
    if (!strcmp(e->attrs[i].name, "versionnumber") && e->attrs[i].value.kind != DV_NULL)
      return parse_u64(e->attrs[i].value.s, e->attrs[i].value.len, out);
  return false;
}

static bool row_version_of(const char *rv, uint64_t *out)
{
  return rv && parse_u64(rv, strlen(rv), out);
}

uint32_t dv_version_tie(enum cdc_op op, const char *operation_id)
{
  uint32_t h = 2166136261u, rank;
  const char *p;
  for (p = operation_id ? operation_id : ""; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch >= 'A' && ch <= 'Z')
      ch = (unsigned char)(ch - 'A' + 'a');
    h ^= ch;
    h *= 16777619u;
  }
  switch (op) {
  case CDC_OP_CREATE: rank = 1; break;
  case CDC_OP_UPSERT: rank = 2; break;
  case CDC_OP_DELETE: rank = 7; break;
  default: rank = 3; break;
  }
  return rank << 29 | (h & 0x1FFFFFFFu);
}

/* docs/versioning.md: the row version is the one after the write: the
 * versionnumber column of the post image, else of the Target (Dataverse
 * adds it to an asynchronous step's Target after the write), else the post
 * image's RowVersion. An Update's Target RowVersion (and a SetState
 * moniker's) is the value the caller sent for optimistic concurrency, from
 * before the write: never used. Create is the first version of a row and
 * Delete the last. */
static void compute_version(struct cdc_change *ch, const struct sources *src)
{
  uint64_t rv = 0;
  ch->version.ts_ms = ch->op_time_ms < 0 ? 0 : ch->op_time_ms;
  if (ch->op == CDC_OP_CREATE) {
    rv = 0;
  } else if (ch->op == CDC_OP_DELETE) {
    rv = UINT64_MAX;
  } else if (!entity_versionnumber(ch->post_image, &rv) &&
             !entity_versionnumber(src->target, &rv) &&
             !row_version_of(ch->post_image ? ch->post_image->row_version : NULL, &rv)) {
    rv = 0;
  }
  ch->version.row_version = rv;
  ch->version.tie = dv_version_tie(ch->op, ch->origin.operation_id);
}

/* docs/versioning.md "Nested changes": a change made by a synchronous
 * plug-in (Depth >= 2) to the row its parent operation changed runs inside
 * the parent's transaction, after the parent's write, yet its system job
 * (OperationCreatedOn) can be stamped before the parent's. Without a post
 * image versionnumber nothing in the payload orders the two. The
 * ParentContext chain names the parent's record; when it is absent
 * (dropped, or not sent) the parent may be on this row. */
static bool nested_uncertain(const struct top *t, const struct cdc_change *ch,
                             const struct sources *src)
{
  const struct json *p;
  uint64_t rv;
  int hops;
  if (ch->origin.depth < 2 || ch->needs_reread || ch->op == CDC_OP_CREATE ||
      ch->op == CDC_OP_DELETE || ch->op == CDC_OP_OTHER || !ch->id)
    return false;
  if (entity_versionnumber(ch->post_image, &rv) || entity_versionnumber(src->target, &rv))
    return false;
  /* an asynchronous step's ParentContext is first its own operation's
   * context (same Depth); the operation that triggered it is the first
   * ancestor with a smaller Depth */
  for (p = t->parent, hops = 0; json_is(p, JSON_OBJECT) && hops < 16;
       p = get(p, "ParentContext"), hops++) {
    const struct json *d = get(p, "Depth");
    int64_t depth;
    if (json_is(d, JSON_NUMBER) && json_number_i64(d, &depth) && depth < ch->origin.depth) {
      const char *pid = get_cstr(p, "PrimaryEntityId");
      return !pid || !strcasecmp(pid, ch->id);
    }
  }
  return true; /* the triggering operation is not in the message */
}

static bool needs_params(enum cdc_op op)
{
  return op != CDC_OP_OTHER;
}

/* A truncated context (MessageMaxSizeExceeded): InputParameters, images and
 * ParentContext were dropped, so only the record is known and the row must
 * be re-read. Known messages need PrimaryEntityName and PrimaryEntityId for
 * that; other messages need not name a record (the mapping decides). */
static enum app_result decode_truncated(struct ctx *c, const struct top *t,
                                        const char *primary_name, const char *primary_id,
                                        const char *why, struct cdc_change *ch)
{
  struct seg s_pid = SEG_MEMBER(NULL, "PrimaryEntityId"),
             s_pname = SEG_MEMBER(NULL, "PrimaryEntityName");

  ch->needs_reread = true;
  ch->table = primary_name;
  ch->id = primary_id;
  if (ch->op == CDC_OP_OTHER)
    return APP_OK;
  if (!primary_name || !*primary_name)
    return t->primary_name ? fail(c, &s_pname, t->primary_name,
                                  "expected a table name to re-read a truncated context (%s)", why)
                           : fail(c, &s_pname, NULL,
                                  "missing, needed to re-read a truncated context (%s)", why);
  if (!primary_id || guid_is_zero(primary_id))
    return t->primary_id
               ? fail(c, &s_pid, t->primary_id,
                      "expected a record GUID to re-read a truncated context (%s)", why)
               : fail(c, &s_pid, NULL, "missing, needed to re-read a truncated context (%s)", why);
  return APP_OK;
}

static enum app_result decode_context(struct ctx *c, const struct json *root,
                                      const struct dv_options *opt, struct cdc_change *ch)
{
  struct top t;
  struct sources src = {NULL, NULL};
  struct cdc_origin *o = &ch->origin;
  const char *primary_id = NULL, *primary_name = NULL;
  bool date_offset;
  const char *dup;
  size_t nparams;

  memset(ch, 0, sizeof *ch);
  ch->relationship_role = -1;
  if (root->type != JSON_OBJECT) {
    char desc[80];
    describe(root, desc, sizeof desc);
    return app_err_set(c->err, APP_ERR_INPUT,
                       "message body is not a RemoteExecutionContext: expected a JSON object, "
                       "got %s",
                       desc);
  }
  dup = read_top(root, &t);
  if (dup) {
    struct seg s_dup = SEG_MEMBER(NULL, dup);
    return fail(c, &s_dup, NULL,
                "the member appears twice; a message whose meaning depends on which one counts "
                "is poison");
  }
  if (!t.message)
    return app_err_set(c->err, APP_ERR_INPUT,
                       "message body is not a RemoteExecutionContext: it has no MessageName "
                       "member");
  {
    struct seg s_msg = SEG_MEMBER(NULL, "MessageName"),
               s_created = SEG_MEMBER(NULL, "OperationCreatedOn"),
               s_pid = SEG_MEMBER(NULL, "PrimaryEntityId"),
               s_pname = SEG_MEMBER(NULL, "PrimaryEntityName"),
               s_bu = SEG_MEMBER(NULL, "BusinessUnitId"),
               s_corr = SEG_MEMBER(NULL, "CorrelationId"), s_depth = SEG_MEMBER(NULL, "Depth"),
               s_agent = SEG_MEMBER(NULL, "InitiatingUserAgent"),
               s_iu = SEG_MEMBER(NULL, "InitiatingUserId"), s_mode = SEG_MEMBER(NULL, "Mode"),
               s_op = SEG_MEMBER(NULL, "OperationId"), s_org = SEG_MEMBER(NULL, "OrganizationId"),
               s_orgn = SEG_MEMBER(NULL, "OrganizationName"),
               s_owning = SEG_MEMBER(NULL, "OwningExtension"),
               s_parent = SEG_MEMBER(NULL, "ParentContext"), s_req = SEG_MEMBER(NULL, "RequestId"),
               s_stage = SEG_MEMBER(NULL, "Stage"), s_user = SEG_MEMBER(NULL, "UserId"),
               s_params = SEG_MEMBER(NULL, "InputParameters");

    APP_RETURN_IF_FAILED(get_str(c, &s_msg, t.message, true, &ch->message));
    ch->op = op_of(ch->message);
    if (!t.created_on)
      return fail(c, &s_created, NULL, "missing, expected a /Date(ms)/ string");
    if (t.created_on->type != JSON_STRING ||
        !parse_date(t.created_on->str, t.created_on->len, &ch->op_time_ms, &date_offset, NULL))
      return fail(c, &s_created, t.created_on, "expected a /Date(ms)/ string");
    APP_RETURN_IF_FAILED(get_guid(c, &s_pid, t.primary_id, false, &primary_id));
    APP_RETURN_IF_FAILED(get_str(c, &s_pname, t.primary_name, false, &primary_name));
    APP_RETURN_IF_FAILED(get_guid(c, &s_bu, t.business_unit, false, &o->business_unit_id));
    APP_RETURN_IF_FAILED(get_guid(c, &s_corr, t.correlation, false, &o->correlation_id));
    APP_RETURN_IF_FAILED(get_guid(c, &s_iu, t.initiating_user, false, &o->initiating_user_id));
    APP_RETURN_IF_FAILED(get_guid(c, &s_user, t.user, false, &o->user_id));
    APP_RETURN_IF_FAILED(get_guid(c, &s_op, t.operation, false, &o->operation_id));
    APP_RETURN_IF_FAILED(get_guid(c, &s_req, t.request, false, &o->request_id));
    APP_RETURN_IF_FAILED(get_guid(c, &s_org, t.organization, false, &o->organization_id));
    APP_RETURN_IF_FAILED(get_str(c, &s_orgn, t.org_name, false, &o->organization_name));
    APP_RETURN_IF_FAILED(get_str(c, &s_agent, t.agent, false, &o->initiating_user_agent));
    APP_RETURN_IF_FAILED(get_int(c, &s_depth, t.depth, -1, &o->depth));
    APP_RETURN_IF_FAILED(get_int(c, &s_stage, t.stage, -1, &o->stage));
    APP_RETURN_IF_FAILED(get_int(c, &s_mode, t.mode, -1, &o->mode));
    if (!is_null(t.owning)) {
      struct dv_ref ext;
      APP_RETURN_IF_FAILED(decode_ref(c, &s_owning, t.owning, &ext));
      o->owning_extension_id = ext.id;
    }
    if (!is_null(t.parent) && t.parent->type != JSON_OBJECT)
      return fail(c, &s_parent, t.parent, "expected a RemoteExecutionContext object or null");
    APP_RETURN_IF_FAILED(check_kv_array(c, &s_params, t.input, &nparams));
    {
      long at = -1;
      const char *key = dup_param(t.input, &at);
      if (key) {
        struct seg s_dup = SEG_INDEX(&s_params, at, key);
        return fail(c, &s_dup, NULL,
                    "parameter %s appears twice; a message whose meaning depends on which one "
                    "counts is poison",
                    key);
      }
    }

    if (opt->truncated_hint || (needs_params(ch->op) && nparams == 0)) {
      APP_RETURN_IF_FAILED(decode_truncated(
          c, &t, primary_name, primary_id,
          opt->truncated_hint ? "MessageMaxSizeExceeded" : "no InputParameters", ch));
    } else if (needs_params(ch->op)) {
      APP_RETURN_IF_FAILED(decode_params(c, &t, primary_id, ch, &src));
      APP_RETURN_IF_FAILED(decode_images(c, &t, ch));
    } else {
      ch->table = primary_name;
      ch->id = primary_id;
      APP_RETURN_IF_FAILED(decode_images(c, &t, ch));
    }
  }
  if (ch->op == CDC_OP_RESTORE && !ch->needs_reread) {
    /* the post image is the restored row; without one only a re-read
     * knows its columns (the record is named, so it can be) */
    if (ch->post_image) {
      ch->attrs = ch->post_image->attrs;
      ch->nattrs = ch->post_image->nattrs;
      ch->full_row = true;
    } else {
      ch->needs_reread = true;
    }
  }
  compute_version(ch, &src);
  ch->order_uncertain = nested_uncertain(&t, ch, &src);
  return APP_OK;
}

static void init_ctx(struct ctx *c, struct arena *a, size_t raw_cap, struct app_err *err)
{
  c->a = a;
  c->err = err;
  c->raw_cap = raw_cap;
}

enum app_result dv_decode_context(struct arena *a, const struct json *root,
                                  const struct dv_options *opt, struct cdc_change *out,
                                  struct app_err *err)
{
  static const struct dv_options defaults = {0, 0, false};
  struct ctx c;
  enum app_result rc;

  init_ctx(&c, a, DV_DEFAULT_MAX_BODY_BYTES * 2, err);
  rc = decode_context(&c, root, opt ? opt : &defaults, out);
  if (rc != APP_OK)
    memset(out, 0, sizeof *out);
  return rc;
}

enum app_result dv_decode(struct arena *a, const char *content_type, const char *body, size_t len,
                          const struct dv_options *opt, struct cdc_change *out, struct app_err *err)
{
  static const struct dv_options defaults = {0, 0, false};
  struct dvbody_result br;
  struct ctx c;
  size_t max;
  enum app_result rc;

  memset(out, 0, sizeof *out);
  if (!opt)
    opt = &defaults;
  max = opt->max_body_bytes ? opt->max_body_bytes : DV_DEFAULT_MAX_BODY_BYTES;
  if (len > max)
    return app_err_set(err, APP_ERR_LIMIT,
                       "message body of %zu bytes is larger than the limit of %zu bytes", len, max);
  APP_RETURN_IF_FAILED(dvbody_parse(a, content_type, body, len, opt->max_depth, &br, err));
  /* compact JSON is never longer than the text it came from (UTF-16 input
   * aside), so twice the body bounds any raw value we keep */
  init_ctx(&c, a, len * 2 + 64, err);
  rc = decode_context(&c, br.root, opt, out);
  if (rc != APP_OK)
    memset(out, 0, sizeof *out);
  return rc;
}

/* docmap.c - change -> Web API-shaped document (pure; see docmap.h). */
#include "map/docmap.h"

#include "common/buf.h"
#include "common/json.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* State of one docmap_build call. */
struct ctx {
  const struct docmap_rules *r;
  struct arena *a;
  const struct cdc_change *ch;
  struct app_err *err;
  struct buf scratch; /* composite values; initialised on first use */
  bool scratch_ready;
};

/* Lookups that exist on (nearly) every table. A cleared lookup arrives as a
 * bare null, which says nothing about its type; without this list (and the
 * table's "lookups" option, and the images) it would be written as "<name>"
 * instead of "_<name>_value" and the old GUID would survive next to it. */
static const char *const system_lookups[] = {
    "createdby",
    "createdonbehalfby",
    "modifiedby",
    "modifiedonbehalfby",
    "ownerid",
    "owninguser",
    "owningteam",
    "owningbusinessunit",
    "transactioncurrencyid",
    "parentcustomerid",
    "parentaccountid",
    "primarycontactid",
    "customerid",
    "regardingobjectid",
};

/* ---------------------------------------------------------------- errors */

static enum app_result fail(struct ctx *c, enum app_result code, const char *column,
                            const char *fmt, ...) APP_PRINTF(4, 5);

static enum app_result fail(struct ctx *c, enum app_result code, const char *column,
                            const char *fmt, ...)
{
  char detail[APP_ERR_MSG_MAX];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (column)
    return app_err_set(c->err, code, "table %s record %s: column %s: %s", c->ch->table, c->ch->id,
                       column, detail);
  return app_err_set(c->err, code, "table %s record %s: %s", c->ch->table, c->ch->id, detail);
}

static enum app_result out_of_arena(struct ctx *c)
{
  return fail(c, APP_ERR_LIMIT, NULL, "memory limit of the invocation reached while mapping");
}

/* The one place OpenSSL errors are translated: keep its code and text. */
static enum app_result openssl_fail(struct ctx *c, const char *column)
{
  char text[160];
  unsigned long e = ERR_get_error();

  if (e)
    ERR_error_string_n(e, text, sizeof text);
  else
    snprintf(text, sizeof text, "no OpenSSL error code");
  ERR_clear_error();
  return fail(c, APP_ERR_NOMEM, column, "SHA-256 failed (OpenSSL %lu: %s)", e, text);
}

/* ------------------------------------------------------------- name sets */

/* A small open-addressing set of names -> index, in the arena. Used to find
 * image columns by name and to catch duplicate columns and properties
 * without quadratic scans on wide rows. */
struct nameset {
  const char **keys;
  size_t *vals;
  size_t mask;
};

static uint32_t name_hash(const char *s)
{
  uint32_t h = 2166136261u; /* FNV-1a */
  while (*s) {
    h ^= (unsigned char)*s++;
    h *= 16777619u;
  }
  return h;
}

static bool nameset_init(struct nameset *s, struct arena *a, size_t n)
{
  size_t cap = 8;
  while (cap < n * 2)
    cap *= 2;
  s->keys = arena_alloc(a, cap * sizeof *s->keys);
  s->vals = arena_alloc(a, cap * sizeof *s->vals);
  if (!s->keys || !s->vals)
    return false;
  memset(s->keys, 0, cap * sizeof *s->keys);
  s->mask = cap - 1;
  return true;
}

/* Adds key -> val; when key is already there, returns false and leaves its
 * index in *out_existing. */
static bool nameset_add(struct nameset *s, const char *key, size_t val, size_t *out_existing)
{
  size_t i = name_hash(key) & s->mask;
  while (s->keys[i]) {
    if (strcmp(s->keys[i], key) == 0) {
      *out_existing = s->vals[i];
      return false;
    }
    i = (i + 1) & s->mask;
  }
  s->keys[i] = key;
  s->vals[i] = val;
  return true;
}

static bool nameset_find(const struct nameset *s, const char *key, size_t *out_val)
{
  size_t i;
  if (!s->keys)
    return false;
  i = name_hash(key) & s->mask;
  while (s->keys[i]) {
    if (strcmp(s->keys[i], key) == 0) {
      *out_val = s->vals[i];
      return true;
    }
    i = (i + 1) & s->mask;
  }
  return false;
}

/* ------------------------------------------------------------- helpers */

static bool is_guid(const char *s, size_t len)
{
  size_t i;
  if (len != 36)
    return false;
  for (i = 0; i < 36; i++) {
    char ch = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-')
        return false;
    } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                 (ch >= 'A' && ch <= 'F'))) {
      return false;
    }
  }
  return true;
}

static bool is_integer_lexeme(const char *s, size_t len)
{
  size_t i = 0;
  if (len && s[0] == '-')
    i = 1;
  if (i == len)
    return false;
  for (; i < len; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

static size_t json_escaped_len(const char *s, size_t n)
{
  size_t i, out = 2;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\' || ch == '\n' || ch == '\r' || ch == '\t' || ch == '\b' ||
        ch == '\f')
      out += 2;
    else if (ch < 0x20)
      out += 6;
    else
      out++;
  }
  return out;
}

/* s[0..n) as a JSON string literal in the arena, escaped like
 * buf_append_json_str. Sized exactly in a first pass so no scratch buffer
 * or copy is needed for the common case of a plain string column. */
static char *json_str_arena(struct arena *a, const char *s, size_t n, size_t *out_len)
{
  static const char hex[] = "0123456789abcdef";
  size_t len = json_escaped_len(s, n), i, o = 0;
  char *p = arena_alloc(a, len + 1);

  if (!p)
    return NULL;
  p[o++] = '"';
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch != '"' && ch != '\\') {
      p[o++] = (char)ch;
      continue;
    }
    p[o++] = '\\';
    switch (ch) {
    case '"': p[o++] = '"'; break;
    case '\\': p[o++] = '\\'; break;
    case '\n': p[o++] = 'n'; break;
    case '\r': p[o++] = 'r'; break;
    case '\t': p[o++] = 't'; break;
    case '\b': p[o++] = 'b'; break;
    case '\f': p[o++] = 'f'; break;
    default:
      p[o++] = 'u';
      p[o++] = '0';
      p[o++] = '0';
      p[o++] = hex[ch >> 4];
      p[o++] = hex[ch & 15];
    }
  }
  p[o++] = '"';
  p[o] = '\0';
  *out_len = o;
  return p;
}

/* [a-z][a-z0-9_]*, at most DOCMAP_MAX_NAME bytes: a Dataverse logical name */
static bool is_logical_name(const char *s)
{
  size_t i;
  if (!(s[0] >= 'a' && s[0] <= 'z'))
    return false;
  for (i = 1; s[i]; i++)
    if (i >= DOCMAP_MAX_NAME ||
        !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return true;
}

/* null, or a cleared multi-select (an empty collection, see convert) */
static bool value_is_null(const struct dv_value *v)
{
  if (v->kind == DV_ALIASED && v->nitems)
    v = &v->items[0];
  return v->kind == DV_NULL ||
         ((v->kind == DV_ARRAY || v->kind == DV_MULTISELECT) && v->nitems == 0);
}

static const struct docmap_column *find_rule(const struct docmap_rules *r, const char *name)
{
  size_t lo = 0, hi = r->ncols;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(name, r->cols[mid].name);
    if (cmp == 0)
      return &r->cols[mid];
    if (cmp < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

static bool entity_has_ref(const struct dv_entity *e, const char *name)
{
  size_t i;
  if (!e)
    return false;
  for (i = 0; i < e->nattrs; i++)
    if (e->attrs[i].value.kind == DV_ENTITYREF && strcmp(e->attrs[i].name, name) == 0)
      return true;
  return false;
}

/* Is a null column a lookup? Config first, then what the images show, then
 * the columns every table has. */
static bool null_is_lookup(const struct ctx *c, const char *name, const struct docmap_column *rule)
{
  size_t i;
  if (rule && (rule->flags & DOCMAP_COL_LOOKUP))
    return true;
  if (entity_has_ref(c->ch->pre_image, name) || entity_has_ref(c->ch->post_image, name))
    return true;
  for (i = 0; i < sizeof system_lookups / sizeof system_lookups[0]; i++)
    if (strcmp(system_lookups[i], name) == 0)
      return true;
  return false;
}

/* -------------------------------------------------------------- dates */

#define MS_PER_DAY  INT64_C(86400000)
#define MIN_DATE_MS INT64_C(-62135596800000) /* 0001-01-01T00:00:00Z */
#define MAX_DATE_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

static void put_digits(char *out, int64_t v, int width)
{
  while (width--) {
    out[width] = (char)('0' + v % 10);
    v /= 10;
  }
}

size_t docmap_format_date(int64_t ms, bool date_only, char *out)
{
  int64_t days, rem, z, era, doe, yoe, y, doy, mp, d, m;
  size_t n;

  out[0] = '\0';
  if (ms < MIN_DATE_MS || ms > MAX_DATE_MS)
    return 0;
  /* floor division, so 1960 (negative ms) lands on the right day */
  days = ms / MS_PER_DAY;
  rem = ms % MS_PER_DAY;
  if (rem < 0) {
    rem += MS_PER_DAY;
    days--;
  }
  /* days since 1970-01-01 -> proleptic Gregorian y/m/d, counting in
   * 400-year eras that start on March 1st so leap days fall at the end */
  z = days + 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = yoe + era * 400;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2)
    y++;
  /* digits by hand: snprintf was a tenth of the mapping time */
  put_digits(out, y, 4);
  out[4] = '-';
  put_digits(out + 5, m, 2);
  out[7] = '-';
  put_digits(out + 8, d, 2);
  if (date_only) {
    out[10] = '\0';
    return 10;
  }
  out[10] = 'T';
  put_digits(out + 11, rem / 3600000, 2);
  out[13] = ':';
  put_digits(out + 14, rem / 60000 % 60, 2);
  out[16] = ':';
  put_digits(out + 17, rem / 1000 % 60, 2);
  n = 19;
  if (rem % 1000) {
    out[n++] = '.';
    put_digits(out + n, rem % 1000, 3);
    n += 3;
  }
  out[n++] = 'Z';
  out[n] = '\0';
  return n;
}

/* ------------------------------------------------ composite values as JSON */

/* A raw value is written into the document as it is, so it must be JSON:
 * check it (raw values are rare, the parse tree goes into the arena). */
static enum app_result raw_parse(struct ctx *c, const struct dv_value *v, const char *column,
                                 const struct json **out_root)
{
  struct app_err jerr = {0};
  struct json *root = NULL;
  enum app_result r;

  if (!v->s || !v->len)
    return fail(c, APP_ERR_INPUT, column, "empty raw value");
  r = json_parse(c->a, v->s, v->len, DOCMAP_MAX_DEPTH, &root, &jerr);
  if (r == APP_ERR_INPUT)
    return fail(c, APP_ERR_INPUT, column, "raw value is not JSON: %s", jerr.msg);
  if (r != APP_OK)
    return fail(c, r, column, "raw value: %s", jerr.msg);
  *out_root = root;
  return APP_OK;
}

static enum app_result write_value(struct ctx *c, struct buf *b, const struct dv_value *v,
                                   const char *column, int depth);

static enum app_result buf_result(struct ctx *c, enum app_result r, const char *column)
{
  if (r == APP_OK)
    return APP_OK;
  if (r == APP_ERR_LIMIT)
    return fail(c, APP_ERR_LIMIT, column, "value is larger than %u bytes", DOCMAP_MAX_VALUE_BYTES);
  return fail(c, r, column, "out of memory while rendering the value");
}

#define B(expr)                                                                                    \
  do {                                                                                             \
    enum app_result b_r_ = (expr);                                                                 \
    if (b_r_ != APP_OK)                                                                            \
      return buf_result(c, b_r_, column);                                                          \
  } while (0)

static enum app_result write_lexeme(struct ctx *c, struct buf *b, const struct dv_value *v,
                                    const char *column)
{
  if (!v->s || !json_is_number_lexeme(v->s, v->len))
    return fail(c, APP_ERR_INPUT, column, "malformed number");
  B(buf_append(b, v->s, v->len));
  return APP_OK;
}

static enum app_result write_str(struct ctx *c, struct buf *b, const char *s, const char *column)
{
  if (!s) {
    B(buf_append_str(b, "null"));
    return APP_OK;
  }
  B(buf_append_json_str(b, s, strlen(s)));
  return APP_OK;
}

static enum app_result write_multi_text(struct ctx *c, struct buf *b, const struct dv_value *v,
                                        const char *column)
{
  size_t i;
  for (i = 0; i < v->nitems; i++) {
    const struct dv_value *it = &v->items[i];
    if (it->kind != DV_OPTIONSET || !it->s || !is_integer_lexeme(it->s, it->len))
      return fail(c, APP_ERR_INPUT, column, "multi-select item %zu is not a choice value", i);
    if (i)
      B(buf_append_char(b, ','));
    B(buf_append(b, it->s, it->len));
  }
  return APP_OK;
}

static enum app_result write_ref_object(struct ctx *c, struct buf *b, const struct dv_ref *ref,
                                        const char *column)
{
  if (!ref->id)
    return fail(c, APP_ERR_INPUT, column, "entity reference without an Id");
  B(buf_append_str(b, "{\"id\":"));
  APP_RETURN_IF_FAILED(write_str(c, b, ref->id, column));
  B(buf_append_str(b, ",\"logicalname\":"));
  APP_RETURN_IF_FAILED(write_str(c, b, ref->logical_name, column));
  if (ref->name) {
    B(buf_append_str(b, ",\"name\":"));
    APP_RETURN_IF_FAILED(write_str(c, b, ref->name, column));
  }
  B(buf_append_char(b, '}'));
  return APP_OK;
}

/* "<pre><name><suf>[@annotation]": */
static enum app_result write_member(struct ctx *c, struct buf *b, const char *pre, const char *name,
                                    const char *suf, const char *annotation, const char *column)
{
  size_t start = b->len, pl = strlen(pre);

  /* escape the name like a string value (a column name from the message
   * may hold any character), then slip the prefix in after the quote */
  B(buf_append_json_str(b, name, strlen(name)));
  if (pl) {
    B(buf_reserve(b, pl));
    memmove(b->data + start + 1 + pl, b->data + start + 1, b->len - start - 1);
    memcpy(b->data + start + 1, pre, pl);
    b->len += pl;
  }
  b->len--; /* drop the closing quote */
  B(buf_append_str(b, suf));
  if (annotation) {
    B(buf_append_char(b, '@'));
    B(buf_append_str(b, annotation));
  }
  B(buf_append_str(b, "\":"));
  return APP_OK;
}

static bool entity_has_column(const struct dv_entity *e, const char *name, size_t name_len,
                              const char *suffix)
{
  size_t i, sl = strlen(suffix);
  for (i = 0; i < e->nattrs; i++) {
    const char *n = e->attrs[i].name;
    if (n && strncmp(n, name, name_len) == 0 && strcmp(n + name_len, suffix) == 0 &&
        strlen(n) == name_len + sl)
      return true;
  }
  return false;
}

/* An Entity nested in a value (activity parties of an email, an Entity in
 * an EntityCollection): an object shaped like the top-level document, with
 * its annotations always included. */
static enum app_result write_entity(struct ctx *c, struct buf *b, const struct dv_entity *e,
                                    const char *column, int depth)
{
  size_t i;
  bool first = true;

  B(buf_append_char(b, '{'));
  if (e->logical_name) {
    B(buf_append_str(b, "\"@odata.type\":\"#Microsoft.Dynamics.CRM."));
    B(buf_append_str(b, e->logical_name));
    B(buf_append_char(b, '"'));
    first = false;
    /* the key property, when the attributes do not carry it */
    if (e->id && *e->id && !entity_has_column(e, e->logical_name, strlen(e->logical_name), "id")) {
      B(buf_append_char(b, ','));
      APP_RETURN_IF_FAILED(write_member(c, b, "", e->logical_name, "id", NULL, column));
      APP_RETURN_IF_FAILED(write_str(c, b, e->id, column));
    }
  }
  for (i = 0; i < e->nattrs; i++) {
    const struct dv_attr *at = &e->attrs[i];
    const struct dv_value *v = &at->value;
    bool ref = v->kind == DV_ENTITYREF;
    const char *pre = ref ? "_" : "", *suf = ref ? "_value" : "";
    const char *shown = ref && v->ref.name ? v->ref.name : at->formatted;

    if (!at->name)
      return fail(c, APP_ERR_INPUT, column, "nested entity column without a name");
    if (v->kind == DV_NULL)
      shown = NULL;
    if (!first)
      B(buf_append_char(b, ','));
    first = false;
    if (shown) {
      APP_RETURN_IF_FAILED(write_member(c, b, pre, at->name, suf, DOCMAP_ANN_FORMATTED, column));
      APP_RETURN_IF_FAILED(write_str(c, b, shown, column));
      B(buf_append_char(b, ','));
    }
    if (ref) {
      if (!v->ref.id)
        return fail(c, APP_ERR_INPUT, column, "entity reference without an Id");
      if (v->ref.logical_name) {
        APP_RETURN_IF_FAILED(write_member(c, b, pre, at->name, suf, DOCMAP_ANN_LOOKUP, column));
        APP_RETURN_IF_FAILED(write_str(c, b, v->ref.logical_name, column));
        B(buf_append_char(b, ','));
      }
      APP_RETURN_IF_FAILED(write_member(c, b, pre, at->name, suf, NULL, column));
      APP_RETURN_IF_FAILED(write_str(c, b, v->ref.id, column));
    } else {
      APP_RETURN_IF_FAILED(write_member(c, b, pre, at->name, suf, NULL, column));
      APP_RETURN_IF_FAILED(write_value(c, b, v, column, depth + 1));
    }
  }
  B(buf_append_char(b, '}'));
  return APP_OK;
}

/* Any value as JSON, recursively (composite values and their items). */
static enum app_result write_value(struct ctx *c, struct buf *b, const struct dv_value *v,
                                   const char *column, int depth)
{
  size_t i;
  char date[DOCMAP_DATE_MAX];

  if (depth > DOCMAP_MAX_DEPTH)
    return fail(c, APP_ERR_INPUT, column, "value nested deeper than %d levels", DOCMAP_MAX_DEPTH);
  switch (v->kind) {
  case DV_NULL: B(buf_append_str(b, "null")); return APP_OK;
  case DV_BOOL: B(buf_append_str(b, v->b ? "true" : "false")); return APP_OK;
  case DV_NUMBER:
  case DV_OPTIONSET:
  case DV_MONEY: return write_lexeme(c, b, v, column);
  case DV_STRING:
    if (!v->s)
      return fail(c, APP_ERR_INPUT, column, "string value without text");
    B(buf_append_json_str(b, v->s, v->len));
    return APP_OK;
  case DV_DATE: {
    size_t n = docmap_format_date(v->date_ms, false, date);
    if (!n)
      return fail(c, APP_ERR_INPUT, column, "date %" PRId64 " ms is outside years 0001-9999",
                  v->date_ms);
    B(buf_append_json_str(b, date, n));
    return APP_OK;
  }
  case DV_MULTISELECT:
    if (!v->nitems) {
      B(buf_append_str(b, "null"));
      return APP_OK;
    }
    B(buf_append_char(b, '"'));
    APP_RETURN_IF_FAILED(write_multi_text(c, b, v, column));
    B(buf_append_char(b, '"'));
    return APP_OK;
  case DV_ENTITYREF: return write_ref_object(c, b, &v->ref, column);
  case DV_ENTITY:
    if (!v->entity) {
      B(buf_append_str(b, "null"));
      return APP_OK;
    }
    return write_entity(c, b, v->entity, column, depth);
  case DV_ENTITYCOLLECTION:
  case DV_ENTITYREFCOLLECTION:
  case DV_ARRAY:
    B(buf_append_char(b, '['));
    for (i = 0; i < v->nitems; i++) {
      if (i)
        B(buf_append_char(b, ','));
      APP_RETURN_IF_FAILED(write_value(c, b, &v->items[i], column, depth + 1));
    }
    B(buf_append_char(b, ']'));
    return APP_OK;
  case DV_RELATIONSHIP:
    B(buf_append_str(b, "{\"schemaname\":"));
    APP_RETURN_IF_FAILED(write_str(c, b, v->s, column));
    B(buf_append_str(b, ",\"primaryentityrole\":"));
    if (v->role == 0 || v->role == 1)
      B(buf_append_char(b, (char)('0' + v->role)));
    else
      B(buf_append_str(b, "null"));
    B(buf_append_char(b, '}'));
    return APP_OK;
  case DV_KVPAIR:
    B(buf_append_str(b, "{\"key\":"));
    APP_RETURN_IF_FAILED(write_str(c, b, v->s, column));
    B(buf_append_str(b, ",\"value\":"));
    APP_RETURN_IF_FAILED(write_str(c, b, v->s2, column));
    B(buf_append_char(b, '}'));
    return APP_OK;
  case DV_ALIASED:
    if (!v->nitems) {
      B(buf_append_str(b, "null"));
      return APP_OK;
    }
    return write_value(c, b, &v->items[0], column, depth + 1);
  case DV_BOOLMANAGED:
    B(buf_append_str(b, v->b ? "{\"Value\":true" : "{\"Value\":false"));
    if (v->s) {
      B(buf_append_str(b, ",\"ManagedPropertyLogicalName\":"));
      APP_RETURN_IF_FAILED(write_str(c, b, v->s, column));
    }
    B(buf_append_char(b, '}'));
    return APP_OK;
  case DV_RAW: {
    const struct json *root;
    APP_RETURN_IF_FAILED(raw_parse(c, v, column, &root));
    B(buf_append(b, v->s, v->len));
    return APP_OK;
  }
  }
  return fail(c, APP_ERR_INPUT, column, "unknown value kind %d", (int)v->kind);
}

#undef B

/* ------------------------------------------------------- one property */

static enum app_result set_json_copy(struct ctx *c, struct doc_prop *p, const char *s, size_t n)
{
  char *j = arena_strndup(c->a, s, n);
  if (!j)
    return out_of_arena(c);
  p->json = j;
  p->json_len = n;
  return APP_OK;
}

static enum app_result set_string(struct ctx *c, struct doc_prop *p, const char *s, size_t n)
{
  size_t jl;
  char *j = json_str_arena(c->a, s, n, &jl);
  if (!j)
    return out_of_arena(c);
  p->kind = DOC_STRING;
  p->json = j;
  p->json_len = jl;
  p->text = s;
  p->text_len = n;
  return APP_OK;
}

static void set_literal(struct doc_prop *p, enum doc_kind kind, const char *lit)
{
  p->kind = kind;
  p->json = lit;
  p->json_len = strlen(lit);
  p->text = kind == DOC_NULL ? NULL : lit;
  p->text_len = kind == DOC_NULL ? 0 : p->json_len;
}

static enum app_result scratch(struct ctx *c, struct buf **out)
{
  if (!c->scratch_ready) {
    buf_init(&c->scratch, DOCMAP_MAX_VALUE_BYTES);
    c->scratch_ready = true;
  }
  buf_reset(&c->scratch);
  *out = &c->scratch;
  return APP_OK;
}

/* The value of one column as a property: kind, type, json, text. */
static enum app_result convert(struct ctx *c, const struct dv_value *v, const char *column,
                               bool date_only, struct doc_prop *p)
{
  struct buf *b;
  char date[DOCMAP_DATE_MAX];
  size_t n;

  if (v->kind == DV_ALIASED && v->nitems)
    v = &v->items[0];
  if (v->kind == DV_ARRAY && !v->nitems) {
    /* An empty array carries no element type, but the only collection a
     * column holds is a multi-select (OptionSetValueCollection; party lists
     * are EntityCollections): a caller that clears one with an empty
     * collection sends [], and the Web API shows the column as null. */
    set_literal(p, DOC_NULL, "null");
    p->type = DOC_T_MULTI;
    return APP_OK;
  }
  switch (v->kind) {
  case DV_NULL:
    set_literal(p, DOC_NULL, "null");
    p->type = date_only ? DOC_T_DATE : DOC_T_TEXT;
    return APP_OK;
  case DV_BOOL:
    set_literal(p, DOC_BOOL, v->b ? "true" : "false");
    p->type = DOC_T_BOOL;
    return APP_OK;
  case DV_NUMBER:
  case DV_OPTIONSET:
  case DV_MONEY:
    if (!v->s || !json_is_number_lexeme(v->s, v->len))
      return fail(c, APP_ERR_INPUT, column, "malformed number");
    p->kind = DOC_NUMBER;
    p->json = p->text = v->s; /* borrowed: change.h keeps lexemes NUL-terminated */
    p->json_len = p->text_len = v->len;
    if (v->kind == DV_MONEY)
      p->type = DOC_T_DECIMAL;
    else if (v->kind == DV_OPTIONSET)
      p->type = DOC_T_INT;
    else
      p->type = is_integer_lexeme(v->s, v->len) ? DOC_T_INT : DOC_T_DECIMAL;
    if (v->kind == DV_OPTIONSET && !is_integer_lexeme(v->s, v->len))
      return fail(c, APP_ERR_INPUT, column, "choice value is not a whole number");
    return APP_OK;
  case DV_STRING:
    if (!v->s)
      return fail(c, APP_ERR_INPUT, column, "string value without text");
    p->type = is_guid(v->s, v->len) ? DOC_T_GUID : DOC_T_TEXT;
    return set_string(c, p, v->s, v->len);
  case DV_DATE: {
    char *t;
    /* a date-only value is the writing server's local midnight as a UTC
     * instant with its offset (/Date(1735592400000+0300)/ is 2024-12-31 at
     * +03:00): its day is the local one */
    n = docmap_format_date(
        date_only ? v->date_ms + (int64_t)v->date_offset_min * 60000 : v->date_ms, date_only, date);
    if (!n)
      return fail(c, APP_ERR_INPUT, column, "date %" PRId64 " ms is outside years 0001-9999",
                  v->date_ms);
    t = arena_strndup(c->a, date, n);
    if (!t)
      return out_of_arena(c);
    p->type = date_only ? DOC_T_DATE : DOC_T_DATETIME;
    return set_string(c, p, t, n);
  }
  case DV_MULTISELECT: {
    char *t;
    p->type = DOC_T_MULTI;
    if (!v->nitems) {
      set_literal(p, DOC_NULL, "null");
      return APP_OK;
    }
    APP_RETURN_IF_FAILED(scratch(c, &b));
    APP_RETURN_IF_FAILED(write_multi_text(c, b, v, column));
    t = arena_strndup(c->a, b->data, b->len);
    if (!t)
      return out_of_arena(c);
    return set_string(c, p, t, b->len);
  }
  case DV_ENTITYREF:
    if (!v->ref.id || !*v->ref.id)
      return fail(c, APP_ERR_INPUT, column, "entity reference without an Id");
    p->type = DOC_T_GUID;
    return set_string(c, p, v->ref.id, strlen(v->ref.id));
  case DV_RAW: {
    /* unknown shape: kept exactly as sent (borrowed from the change) */
    const struct json *root;
    APP_RETURN_IF_FAILED(raw_parse(c, v, column, &root));
    p->type = DOC_T_JSON;
    p->json = v->s;
    p->json_len = v->len;
    p->text = v->s;
    p->text_len = v->len;
    switch ((enum json_type)root->type) {
    case JSON_NULL:
      p->kind = DOC_NULL;
      p->text = NULL;
      p->text_len = 0;
      break;
    case JSON_TRUE:
    case JSON_FALSE: p->kind = DOC_BOOL; break;
    case JSON_NUMBER: p->kind = DOC_NUMBER; break;
    case JSON_STRING:
      p->kind = DOC_STRING;
      p->text = root->str;
      p->text_len = root->len;
      break;
    case JSON_ARRAY: p->kind = DOC_ARRAY; break;
    case JSON_OBJECT: p->kind = DOC_OBJECT; break;
    }
    return APP_OK;
  }
  case DV_ENTITY:
  case DV_ENTITYCOLLECTION:
  case DV_ENTITYREFCOLLECTION:
  case DV_ARRAY:
  case DV_RELATIONSHIP:
  case DV_KVPAIR:
  case DV_ALIASED:
  case DV_BOOLMANAGED:
    APP_RETURN_IF_FAILED(scratch(c, &b));
    APP_RETURN_IF_FAILED(write_value(c, b, v, column, 0));
    APP_RETURN_IF_FAILED(set_json_copy(c, p, b->data, b->len));
    p->type = DOC_T_JSON;
    /* what write_value starts with: an entity may be null, the rest are
     * arrays or objects */
    p->kind = p->json[0] == '[' ? DOC_ARRAY : p->json[0] == '{' ? DOC_OBJECT : DOC_NULL;
    if (p->kind == DOC_NULL) {
      p->text = NULL;
      p->text_len = 0;
    } else {
      /* composite values: the JSON text (what a SQL sink stores) */
      p->text = p->json;
      p->text_len = p->json_len;
    }
    return APP_OK;
  }
  return fail(c, APP_ERR_INPUT, column, "unknown value kind %d", (int)v->kind);
}

static enum app_result annotation(struct ctx *c, struct doc_annotation *an, const char *name,
                                  const char *value)
{
  size_t jl;
  char *j = json_str_arena(c->a, value, strlen(value), &jl);
  if (!j)
    return out_of_arena(c);
  an->name = name;
  an->json = j;
  an->json_len = jl;
  return APP_OK;
}

/* Hex SHA-256 of salt followed by the property's text. */
static enum app_result hash_prop(struct ctx *c, struct doc_prop *p, const char *column)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  char digest[2 * EVP_MAX_MD_SIZE];
  EVP_MD_CTX *h = EVP_MD_CTX_new();
  enum app_result r = APP_OK;
  char *t;

  if (!h || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1 ||
      EVP_DigestUpdate(h, c->r->salt, c->r->salt_len) != 1 ||
      EVP_DigestUpdate(h, p->text, p->text_len) != 1 || EVP_DigestFinal_ex(h, md, &mdlen) != 1) {
    r = openssl_fail(c, column);
    goto out;
  }
  for (i = 0; i < mdlen; i++) {
    digest[2 * i] = hex[md[i] >> 4];
    digest[2 * i + 1] = hex[md[i] & 15];
  }
  t = arena_strndup(c->a, digest, 2 * (size_t)mdlen);
  if (!t) {
    r = out_of_arena(c);
    goto out;
  }
  p->type = DOC_T_TEXT;
  r = set_string(c, p, t, 2 * (size_t)mdlen);
out:
  EVP_MD_CTX_free(h);
  return r;
}

static enum app_result make_prop(struct ctx *c, const struct dv_attr *at,
                                 const struct docmap_column *rule, struct doc_prop *p)
{
  const struct dv_value *v = &at->value;
  const char *formatted = at->formatted;
  bool lookup;
  struct doc_annotation *ann;
  size_t nann = 0;

  if (v->kind == DV_ALIASED && v->nitems)
    v = &v->items[0]; /* an AliasedValue stands for its value, lookups included */
  lookup = v->kind == DV_ENTITYREF;

  if (v->kind == DV_NULL && null_is_lookup(c, at->name, rule))
    lookup = true;
  memset(p, 0, sizeof *p);
  p->column = at->name;
  APP_RETURN_IF_FAILED(convert(c, v, at->name, rule && (rule->flags & DOCMAP_COL_DATE_ONLY), p));
  if (lookup)
    p->type = DOC_T_GUID;

  if (rule && rule->rename) {
    p->name = rule->rename;
  } else if (lookup) {
    size_t n = strlen(at->name);
    char *name = arena_alloc(c->a, n + 8);
    if (!name)
      return out_of_arena(c);
    name[0] = '_';
    memcpy(name + 1, at->name, n);
    memcpy(name + 1 + n, "_value", 7);
    p->name = name;
  } else {
    p->name = at->name;
  }

  if (v->kind == DV_ENTITYREF && v->ref.name)
    formatted = v->ref.name;
  if (value_is_null(v))
    formatted = NULL; /* nothing to format; a stale entry must not leak through */

  if (rule && rule->mask != DOCMAP_MASK_NONE && p->kind != DOC_NULL) {
    /* a masked value must not leak through its formatted form either */
    formatted = NULL;
    if (rule->mask == DOCMAP_MASK_HASH) {
      APP_RETURN_IF_FAILED(hash_prop(c, p, at->name));
    } else if (rule->redact_text) {
      p->type = DOC_T_TEXT;
      APP_RETURN_IF_FAILED(set_string(c, p, rule->redact_text, strlen(rule->redact_text)));
    } else {
      set_literal(p, DOC_NULL, "null");
    }
  }

  if (!formatted && !(v->kind == DV_ENTITYREF && v->ref.logical_name))
    return APP_OK;
  ann = arena_alloc(c->a, 2 * sizeof *ann);
  if (!ann)
    return out_of_arena(c);
  /* Web API order: the formatted value first, then the lookup's table */
  if (formatted)
    APP_RETURN_IF_FAILED(annotation(c, &ann[nann++], DOCMAP_ANN_FORMATTED, formatted));
  if (v->kind == DV_ENTITYREF && v->ref.logical_name)
    APP_RETURN_IF_FAILED(annotation(c, &ann[nann++], DOCMAP_ANN_LOOKUP, v->ref.logical_name));
  p->ann = ann;
  p->nann = nann;
  return APP_OK;
}

static enum app_result key_prop(struct ctx *c, struct doc_prop *p)
{
  memset(p, 0, sizeof *p);
  p->name = c->r->key_name;
  p->column = c->r->key_name;
  p->type = DOC_T_GUID;
  return set_string(c, p, c->ch->id, strlen(c->ch->id));
}

/* ------------------------------------------------------------ the row */

/* The columns to write, in order: the change's columns (an image value
 * replaces the change's value for the same column), then columns only the
 * post image has. */
static enum app_result collect(struct ctx *c, const struct dv_entity *image,
                               const struct dv_attr ***out_cols, size_t *out_n)
{
  const struct cdc_change *ch = c->ch;
  size_t n = ch->nattrs + (image ? image->nattrs : 0) + 1, i, k = 0, dup, j;
  const struct dv_attr **cols = arena_alloc(c->a, n * sizeof *cols);
  struct nameset seen = {0}, img = {0};
  bool *used = NULL;

  if (!cols || !nameset_init(&seen, c->a, ch->nattrs))
    return out_of_arena(c);
  if (image && image->nattrs) {
    used = arena_alloc(c->a, image->nattrs * sizeof *used);
    if (!used || !nameset_init(&img, c->a, image->nattrs))
      return out_of_arena(c);
    memset(used, 0, image->nattrs * sizeof *used);
    for (i = 0; i < image->nattrs; i++) {
      if (!image->attrs[i].name)
        return fail(c, APP_ERR_INPUT, NULL, "post image has a column without a name");
      if (!nameset_add(&img, image->attrs[i].name, i, &dup))
        return fail(c, APP_ERR_INPUT, image->attrs[i].name, "appears twice in the post image");
    }
  }
  for (i = 0; i < ch->nattrs; i++) {
    const struct dv_attr *at = &ch->attrs[i];
    if (!at->name || !*at->name)
      return fail(c, APP_ERR_INPUT, NULL, "a column has no name");
    if (!nameset_add(&seen, at->name, i, &dup))
      return fail(c, APP_ERR_INPUT, at->name, "appears twice in the message");
    if (used && nameset_find(&img, at->name, &j)) {
      used[j] = true;
      at = &image->attrs[j]; /* the image holds the value as stored */
    }
    cols[k++] = at;
  }
  if (ch->op == CDC_OP_ASSIGN && ch->assignee && !nameset_find(&seen, "ownerid", &j)) {
    /* an Assign says who the new owner is; write it even when the decoder
     * did not also put it among the columns */
    struct dv_attr *owner = arena_alloc(c->a, sizeof *owner);
    if (!owner)
      return out_of_arena(c);
    memset(owner, 0, sizeof *owner);
    owner->name = "ownerid";
    owner->value.kind = DV_ENTITYREF;
    owner->value.ref = *ch->assignee;
    if (used && nameset_find(&img, "ownerid", &j)) {
      used[j] = true; /* as for every column: the image holds the value as stored */
      cols[k++] = &image->attrs[j];
    } else {
      cols[k++] = owner;
    }
  }
  for (i = 0; used && i < image->nattrs; i++)
    if (!used[i])
      cols[k++] = &image->attrs[i];
  *out_cols = cols;
  *out_n = k;
  return APP_OK;
}

static enum app_result build_props(struct ctx *c, struct doc *d)
{
  const struct docmap_rules *r = c->r;
  const struct cdc_change *ch = c->ch;
  const struct dv_entity *image = r->post_image == DOCMAP_IMAGE_IGNORE ? NULL : ch->post_image;
  const struct dv_attr **cols = NULL;
  size_t ncols = 0, i, k = 0, dup;
  struct doc_prop *props;
  bool *required_seen = NULL, key_seen = false;
  struct nameset names = {0};

  if (image && image->id && *image->id && strcasecmp(image->id, ch->id) != 0)
    return fail(c, APP_ERR_INPUT, NULL, "post image is for record %s", image->id);
  /* a Create's Target is the whole row even if the decoder did not say so */
  d->full_row =
      ch->full_row || ch->op == CDC_OP_CREATE || (image && r->post_image == DOCMAP_IMAGE_FULL);
  APP_RETURN_IF_FAILED(collect(c, image, &cols, &ncols));

  props = arena_alloc(c->a, (ncols + 1) * sizeof *props);
  if (!props || !nameset_init(&names, c->a, ncols + 1))
    return out_of_arena(c);
  if (r->ncols) {
    required_seen = arena_alloc(c->a, r->ncols * sizeof *required_seen);
    if (!required_seen)
      return out_of_arena(c);
    memset(required_seen, 0, r->ncols * sizeof *required_seen);
  }

  for (i = 0; i < ncols; i++) {
    const struct dv_attr *at = cols[i];
    const struct docmap_column *rule = find_rule(r, at->name);
    bool is_key = strcmp(at->name, r->key_name) == 0;

    if (rule && (rule->flags & DOCMAP_COL_REQUIRED)) {
      required_seen[rule - r->cols] = true;
      if (value_is_null(&at->value))
        return fail(c, APP_ERR_INPUT, at->name, "required column is null");
    }
    if (is_key) {
      /* the key column must name this record; anything else is corrupt */
      if (at->value.kind != DV_STRING || !at->value.s || strcasecmp(at->value.s, ch->id) != 0)
        return fail(c, APP_ERR_INPUT, at->name, "primary key column does not hold the record id");
      key_seen = true;
      APP_RETURN_IF_FAILED(key_prop(c, &props[k]));
    } else {
      if (rule && (rule->flags & DOCMAP_COL_DROP))
        continue;
      if (!r->keep_all && !(rule && (rule->flags & DOCMAP_COL_KEEP)))
        continue;
      /* Dataverse sends logical names only. Anything else would become a
       * property that collides with "@odata.etag" or an annotation
       * ("name@OData...") and a Redis field or SQL column nobody asked for. */
      if (!is_logical_name(at->name))
        return fail(c, APP_ERR_INPUT, NULL,
                    "column \"%.60s\" is not a logical name (lower-case letters, digits and "
                    "'_', starting with a letter, at most %d bytes)",
                    at->name, DOCMAP_MAX_NAME);
      APP_RETURN_IF_FAILED(make_prop(c, at, rule, &props[k]));
    }
    if (!nameset_add(&names, props[k].name, k, &dup))
      return fail(c, APP_ERR_INPUT, at->name, "maps to property \"%s\" like column %s",
                  props[k].name, props[dup].column);
    k++;
  }

  if (d->full_row)
    for (i = 0; i < r->ncols; i++)
      if ((r->cols[i].flags & DOCMAP_COL_REQUIRED) && !required_seen[i])
        return fail(c, APP_ERR_INPUT, r->cols[i].name, "required column is missing");

  if (!key_seen) {
    /* the key goes first when the message does not carry it */
    if (!nameset_add(&names, r->key_name, k, &dup))
      return fail(c, APP_ERR_INPUT, props[dup].column, "maps to property \"%s\", the primary key",
                  r->key_name);
    memmove(props + 1, props, k * sizeof *props);
    APP_RETURN_IF_FAILED(key_prop(c, &props[0]));
    k++;
  }
  d->props = props;
  d->nprops = k;
  return APP_OK;
}

static enum app_result build_related(struct ctx *c, struct doc *d)
{
  const struct cdc_change *ch = c->ch;
  struct doc_related *rel;
  size_t i;

  if (!ch->relationship || !*ch->relationship)
    return fail(c, APP_ERR_INPUT, NULL, "%s without a relationship name", cdc_op_name(ch->op));
  d->relationship = ch->relationship;
  if (!ch->nrelated)
    return APP_OK;
  rel = arena_alloc(c->a, ch->nrelated * sizeof *rel);
  if (!rel)
    return out_of_arena(c);
  for (i = 0; i < ch->nrelated; i++) {
    const struct dv_ref *ref = &ch->related[i];
    size_t j;
    if (!ref->logical_name || !*ref->logical_name || !ref->id || !*ref->id)
      return fail(c, APP_ERR_INPUT, NULL, "related record %zu has no LogicalName or Id", i);
    /* both end up in keys and entity set names: hold them to their shapes */
    for (j = 0; ref->logical_name[j]; j++) {
      char ch2 = ref->logical_name[j];
      if (j == DOCMAP_MAX_NAME ||
          !((ch2 >= 'a' && ch2 <= 'z') || (ch2 >= '0' && ch2 <= '9') || ch2 == '_'))
        return fail(c, APP_ERR_INPUT, NULL, "related record %zu: \"%.60s\" is not a logical name",
                    i, ref->logical_name);
    }
    if (!is_guid(ref->id, strlen(ref->id)))
      return fail(c, APP_ERR_INPUT, NULL, "related record %zu: id \"%.60s\" is not a GUID", i,
                  ref->id);
    rel[i].table = ref->logical_name;
    rel[i].id = ref->id;
    rel[i].entity_set = c->r->entity_set_of(c->r->ctx, ref->logical_name, c->a);
    if (!rel[i].entity_set)
      return out_of_arena(c);
  }
  d->related = rel;
  d->nrelated = ch->nrelated;
  return APP_OK;
}

enum app_result docmap_build(const struct docmap_rules *r, struct arena *a,
                             const struct cdc_change *ch, struct doc *out, struct app_err *err)
{
  struct ctx c;
  enum app_result res = APP_OK;

  memset(&c, 0, sizeof c);
  c.r = r;
  c.a = a;
  c.ch = ch;
  c.err = err;
  memset(out, 0, sizeof *out);
  if (!ch->table || !*ch->table || !ch->id || !*ch->id)
    return app_err_set(err, APP_ERR_INPUT, "change without a table or record id (message %s)",
                       ch->message ? ch->message : cdc_op_name(ch->op));

  out->op = ch->op;
  out->table = ch->table;
  out->entity_set = r->entity_set;
  out->key_name = r->key_name;
  out->id = ch->id;
  out->version = ch->version;
  cdc_version_text(&ch->version, out->version_text);
  out->op_time_ms = ch->op_time_ms;
  out->needs_reread = ch->needs_reread;
  out->order_uncertain = ch->order_uncertain;
  out->ttl_seconds = r->ttl_seconds;
  out->sql_table = r->sql_table;
  out->altkeys = r->altkeys;
  out->naltkeys = r->naltkeys;
  out->origin = &ch->origin;
  out->subordinate_id = ch->subordinate_id;

  switch (ch->op) {
  case CDC_OP_DELETE: break;
  case CDC_OP_ASSOCIATE:
  case CDC_OP_DISASSOCIATE:
    /* truncated: the relationship and related records were dropped */
    if (!ch->needs_reread)
      res = build_related(&c, out);
    break;
  case CDC_OP_CREATE:
  case CDC_OP_UPDATE:
  case CDC_OP_UPSERT:
  case CDC_OP_RESTORE:
  case CDC_OP_SETSTATE:
  case CDC_OP_ASSIGN:
  case CDC_OP_MERGE:
  case CDC_OP_OTHER:
    /* a truncated context carries no columns: the sink re-reads the row */
    if (!ch->needs_reread)
      res = build_props(&c, out);
    break;
  }
  if (c.scratch_ready)
    buf_cleanup(&c.scratch);
  if (res != APP_OK) {
    struct doc empty = {0};
    *out = empty;
  }
  return res;
}

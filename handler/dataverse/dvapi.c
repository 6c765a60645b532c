/* dvapi.c - Dataverse Web API requests and responses as data (dvapi.h). */
#include "dataverse/dvapi.h"

#include "dataverse/dataverse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ANN_FORMATTED "@OData.Community.Display.V1.FormattedValue"
#define ANN_LOOKUP    "@Microsoft.Dynamics.CRM.lookuplogicalname"

enum app_result dvapi_base_url(const char *url, char *out, size_t outsz, struct app_err *err)
{
  size_t n;
  const char *host;
  if (!url || !*url)
    return app_err_set(err, APP_ERR_CONFIG, "DataverseUrl is not set");
  n = strlen(url);
  while (n > 0 && url[n - 1] == '/')
    n--;
  if (n + 1 > outsz || n > 512)
    return app_err_set(err, APP_ERR_CONFIG, "DataverseUrl is too long");
  if (!strncmp(url, "https://", 8))
    host = url + 8;
  else if (!strncmp(url, "http://127.0.0.1:", 17))
    host = url + 7;
  else
    return app_err_set(err, APP_ERR_CONFIG,
                       "DataverseUrl must be https://<org>.crm.dynamics.com (or "
                       "http://127.0.0.1:PORT for tests)");
  for (const char *p = host; p < url + n; p++) {
    if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || isspace((unsigned char)*p) ||
        (unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
      return app_err_set(err, APP_ERR_CONFIG,
                         "DataverseUrl must be the environment's root URL, without a path, "
                         "user or query");
  }
  if (host >= url + n)
    return app_err_set(err, APP_ERR_CONFIG, "DataverseUrl has no host");
  memcpy(out, url, n);
  out[n] = '\0';
  return APP_OK;
}

enum app_result dvapi_scope(const char *base, struct buf *out)
{
  return buf_printf(out, "%s/.default", base);
}

/* Percent-encode what a query value may not hold as is. */
static enum app_result append_query(struct buf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (isalnum(c) || strchr("-._~,()'$=*", c))
      APP_RETURN_IF_FAILED(buf_append_char(b, (char)c));
    else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      APP_RETURN_IF_FAILED(buf_append(b, e, 3));
    }
  }
  return APP_OK;
}

enum app_result dvapi_snapshot_url(struct buf *out, const char *base, const char *entity_set,
                                   const char *select)
{
  APP_RETURN_IF_FAILED(buf_printf(out, "%s/api/data/" DVAPI_VERSION "/", base));
  APP_RETURN_IF_FAILED(append_query(out, entity_set));
  if (select && *select) {
    APP_RETURN_IF_FAILED(buf_append_str(out, "?$select="));
    APP_RETURN_IF_FAILED(append_query(out, select));
  }
  return APP_OK;
}

bool dvapi_is_guid(const char *s)
{
  size_t i;
  if (!s || strlen(s) != 36)
    return false;
  for (i = 0; i < 36; i++) {
    bool d = i == 8 || i == 13 || i == 18 || i == 23;
    if (d ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return false;
  }
  return true;
}

enum app_result dvapi_ids_url(struct buf *out, const char *base, const char *entity_set,
                              const char *select, const char *key, const char *const *ids, size_t n,
                              struct app_err *err)
{
  size_t i;
  if (n == 0 || n > DVAPI_MAX_IDS)
    return app_err_set(err, APP_ERR_INPUT, "re-read of %zu ids (1..%d)", n, DVAPI_MAX_IDS);
  for (i = 0; i < n; i++)
    if (!dvapi_is_guid(ids[i]))
      return app_err_set(err, APP_ERR_INPUT, "re-read: id %zu is not a GUID", i);
  APP_RETURN_IF_FAILED(dvapi_snapshot_url(out, base, entity_set, select));
  APP_RETURN_IF_FAILED(buf_append_str(out, select && *select ? "&$filter=" : "?$filter="));
  APP_RETURN_IF_FAILED(append_query(out, key));
  APP_RETURN_IF_FAILED(buf_append_str(out, "%20in%20("));
  for (i = 0; i < n; i++)
    APP_RETURN_IF_FAILED(buf_printf(out, "%s'%s'", i ? "," : "", ids[i]));
  return buf_append_char(out, ')');
}

enum app_result dvapi_prefer(struct buf *out, int maxpagesize, bool track_changes)
{
  APP_RETURN_IF_FAILED(buf_printf(out, "odata.maxpagesize=%d,odata.include-annotations=\"*\"",
                                  maxpagesize > 0 ? maxpagesize : 5000));
  if (track_changes)
    APP_RETURN_IF_FAILED(buf_append_str(out, ",odata.track-changes"));
  return APP_OK;
}

bool dvapi_link_ok(const char *base, const char *link)
{
  size_t n = strlen(base);
  if (!link || strncmp(link, base, n) != 0)
    return false;
  if (strncmp(link + n, "/api/data/", 10) != 0)
    return false;
  for (const char *p = link; *p; p++)
    if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
      return false;
  return strlen(link) < DVAPI_MAX_URL;
}

int64_t dvapi_retry_after_ms(const char *value, int64_t now_s)
{
  const int64_t cap = 3600;
  const char *p = value;
  if (!p)
    return -1;
  while (*p == ' ' || *p == '\t')
    p++;
  if (isdigit((unsigned char)*p)) {
    int64_t s = 0;
    for (; isdigit((unsigned char)*p); p++) {
      s = s * 10 + (*p - '0');
      if (s > cap)
        s = cap;
    }
    /* Dataverse also sends fractional seconds ("Retry-After: 0.5") in some
     * answers: round up */
    if (*p == '.') {
      p++;
      bool frac = false;
      for (; isdigit((unsigned char)*p); p++)
        frac = frac || *p != '0';
      if (frac && s < cap)
        s++;
    }
    while (*p == ' ' || *p == '\t')
      p++;
    return *p ? -1 : s * 1000;
  }
  /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
  {
    struct tm tm;
    char *end;
    memset(&tm, 0, sizeof tm);
    end = strptime(p, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
      return -1;
    int64_t t = (int64_t)timegm(&tm);
    int64_t d = t - now_s;
    if (d < 0)
      return 0;
    return (d > cap ? cap : d) * 1000;
  }
}

bool dvapi_error_text(const char *body, size_t len, char *out, size_t outsz)
{
  struct arena a;
  struct json *root;
  struct app_err e;
  bool ok = false;
  char *copy;
  if (!body || len == 0 || outsz == 0)
    return false;
  arena_init(&a, 1u << 20);
  copy = arena_strndup(&a, body, len);
  if (copy && json_parse_mutable(&a, copy, len, 16, &root, &e) == APP_OK) {
    const struct json *er = json_get(root, "error");
    const char *code = json_get_str(er, "code");
    const char *msg = json_get_str(er, "message");
    if (er && (code || msg)) {
      /* one line: the message may hold line breaks */
      snprintf(out, outsz, "%s: %s", code ? code : "?", msg ? msg : "");
      for (char *q = out; *q; q++)
        if (*q == '\r' || *q == '\n')
          *q = ' ';
      ok = true;
    }
  }
  arena_cleanup(&a);
  return ok;
}

enum app_result dvapi_page_parse(struct arena *a, char *body, size_t len, struct dvapi_page *out,
                                 struct app_err *err)
{
  struct json *root;
  const struct json *value, *v, *link;
  size_t i = 0;
  enum app_result r;

  memset(out, 0, sizeof *out);
  r = json_parse_mutable(a, body, len, JSON_DEFAULT_MAX_DEPTH, &root, err);
  if (r != APP_OK)
    return app_err_wrap(err, "Web API page is not JSON");
  if (!json_is(root, JSON_OBJECT))
    return app_err_set(err, APP_ERR_INPUT, "Web API page is not a JSON object");
  value = json_get(root, "value");
  if (!json_is(value, JSON_ARRAY))
    return app_err_set(err, APP_ERR_INPUT, "Web API page has no \"value\" array");
  link = json_get(root, "@odata.nextLink");
  if (link && !json_is(link, JSON_STRING))
    return app_err_set(err, APP_ERR_INPUT, "@odata.nextLink is not a string");
  out->next_link = link ? link->str : NULL;
  link = json_get(root, "@odata.deltaLink");
  if (link && !json_is(link, JSON_STRING))
    return app_err_set(err, APP_ERR_INPUT, "@odata.deltaLink is not a string");
  out->delta_link = link ? link->str : NULL;
  out->rows = arena_alloc(a, (value->len ? value->len : 1) * sizeof *out->rows);
  if (!out->rows)
    return app_err_set(err, APP_ERR_LIMIT, "Web API page: out of arena memory");
  for (v = value->child; v; v = v->next, i++) {
    struct dvapi_row *row = &out->rows[i];
    const char *ctx;
    if (!json_is(v, JSON_OBJECT))
      return app_err_set(err, APP_ERR_INPUT, "Web API page: value[%zu] is not an object", i);
    row->obj = v;
    row->kind = DVAPI_ROW;
    ctx = json_get_str(v, "@odata.context");
    if (ctx && strstr(ctx, "$deletedEntity")) {
      const char *id = json_get_str(v, "id");
      if (!dvapi_is_guid(id))
        return app_err_set(err, APP_ERR_INPUT,
                           "Web API page: value[%zu] is a $deletedEntity without a GUID id", i);
      char *lid = arena_strndup(a, id, 36);
      if (!lid)
        return app_err_set(err, APP_ERR_LIMIT, "Web API page: out of arena memory");
      for (char *q = lid; *q; q++)
        *q = (char)tolower((unsigned char)*q);
      row->kind = DVAPI_ROW_DELETED;
      row->id = lid;
    }
  }
  out->nrows = i;
  return APP_OK;
}

static bool digits(const char *s, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool dvapi_parse_datetime(const char *s, int64_t *out_ms)
{
  int y, mo, d, h, mi, se, ms = 0, off = 0;
  const char *p;
  struct tm tm;
  if (!s || strlen(s) < 20)
    return false;
  if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
      !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
      !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
    return false;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
    return false;
  p = s + 19;
  if (*p == '.') {
    int scale = 100;
    p++;
    if (!isdigit((unsigned char)*p))
      return false;
    for (; isdigit((unsigned char)*p); p++) {
      ms += (*p - '0') * scale;
      scale /= 10;
    }
  }
  if (*p == 'Z')
    p++;
  else if (*p == '+' || *p == '-') {
    int oh, om;
    if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
      return false;
    off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
    p += 6;
  } else
    return false;
  if (*p)
    return false;
  memset(&tm, 0, sizeof tm);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  *out_ms = ((int64_t)timegm(&tm) - (int64_t)off * 60) * 1000 + ms;
  return true;
}

/* "_x_value" -> "x" (in the arena), or NULL when name is not a lookup property. */
static const char *lookup_column(struct arena *a, const char *name, size_t n)
{
  if (n < 8 || name[0] != '_' || strcmp(name + n - 6, "_value") != 0)
    return NULL;
  return arena_strndup(a, name + 1, n - 7);
}

/* The annotation member "<prop><ann>" of obj, or NULL. */
static const struct json *annotation(const struct json *obj, const char *prop, const char *ann)
{
  size_t pn = strlen(prop), an = strlen(ann);
  for (const struct json *m = obj->child; m; m = m->next)
    if (m->key_len == pn + an && !memcmp(m->key, prop, pn) && !memcmp(m->key + pn, ann, an))
      return m;
  return NULL;
}

static enum app_result value_of(struct arena *a, const struct json *v, struct dv_value *out,
                                struct app_err *err)
{
  memset(out, 0, sizeof *out);
  switch ((enum json_type)v->type) {
  case JSON_NULL: out->kind = DV_NULL; return APP_OK;
  case JSON_TRUE:
  case JSON_FALSE:
    out->kind = DV_BOOL;
    out->b = v->type == JSON_TRUE;
    return APP_OK;
  case JSON_NUMBER:
    out->kind = DV_NUMBER;
    out->s = arena_strndup(a, v->str, v->len);
    out->len = v->len;
    break;
  case JSON_STRING: {
    int64_t ms;
    if (v->len >= 20 && v->len <= 35 && dvapi_parse_datetime(v->str, &ms)) {
      out->kind = DV_DATE;
      out->date_ms = ms;
      return APP_OK;
    }
    out->kind = DV_STRING;
    out->s = v->str;
    out->len = v->len;
    return APP_OK;
  }
  default: {
    struct buf b;
    buf_init(&b, 16u << 20);
    enum app_result r = json_write(&b, v);
    if (r == APP_OK) {
      out->kind = DV_RAW;
      out->s = arena_strndup(a, b.data ? b.data : "", b.len);
      out->len = b.len;
    }
    buf_cleanup(&b);
    if (r != APP_OK)
      return app_err_set(err, r, "Web API row: a value is too large");
    break;
  }
  }
  if (!out->s)
    return app_err_set(err, APP_ERR_LIMIT, "Web API row: out of arena memory");
  return APP_OK;
}

static char *lower_dup(struct arena *a, const char *s)
{
  char *d = arena_strndup(a, s, strlen(s));
  if (d)
    for (char *q = d; *q; q++)
      *q = (char)tolower((unsigned char)*q);
  return d;
}

enum app_result dvapi_row_change(struct arena *a, const struct dvapi_row *row, const char *table,
                                 const char *key, int64_t now_ms, struct cdc_change *out,
                                 struct app_err *err)
{
  const struct json *obj = row->obj, *m;
  struct dv_attr *attrs;
  size_t n = 0;
  const char *id;
  int64_t modified_ms = 0;
  bool have_modified = false;
  uint64_t rowver = 0;

  memset(out, 0, sizeof *out);
  out->table = table;
  out->relationship_role = -1;
  if (row->kind == DVAPI_ROW_DELETED) {
    out->op = CDC_OP_DELETE;
    out->message = "Delete";
    out->id = row->id;
    out->version.ts_ms = now_ms < 0 ? 0 : now_ms;
    out->version.row_version = UINT64_MAX;
    out->version.tie = dv_version_tie(CDC_OP_DELETE, row->id);
    out->op_time_ms = now_ms;
    return APP_OK;
  }
  id = json_get_str(obj, key);
  if (!dvapi_is_guid(id))
    return app_err_set(err, APP_ERR_INPUT, "Web API row of %s has no GUID in %s", table, key);
  out->id = lower_dup(a, id);
  attrs = arena_alloc(a, (obj->len ? obj->len : 1) * sizeof *attrs);
  if (!out->id || !attrs)
    return app_err_set(err, APP_ERR_LIMIT, "Web API row: out of arena memory");

  for (m = obj->child; m; m = m->next) {
    const char *lk;
    struct dv_attr *at;
    if (m->key[0] == '@' || memchr(m->key, '@', m->key_len))
      continue; /* annotations: read with their property */
    at = &attrs[n];
    memset(at, 0, sizeof *at);
    lk = lookup_column(a, m->key, m->key_len);
    if (lk) {
      const struct json *ln = annotation(obj, m->key, ANN_LOOKUP);
      const struct json *fv = annotation(obj, m->key, ANN_FORMATTED);
      at->name = lk;
      if (json_is(m, JSON_NULL)) {
        at->value.kind = DV_NULL;
      } else {
        if (!json_is(m, JSON_STRING) || !dvapi_is_guid(m->str))
          return app_err_set(err, APP_ERR_INPUT, "Web API row %s/%s: %s is not a GUID", table,
                             out->id, m->key);
        at->value.kind = DV_ENTITYREF;
        at->value.ref.id = lower_dup(a, m->str);
        at->value.ref.logical_name = json_is(ln, JSON_STRING) ? ln->str : NULL;
        at->value.ref.name = json_is(fv, JSON_STRING) ? fv->str : NULL;
        if (!at->value.ref.id)
          return app_err_set(err, APP_ERR_LIMIT, "Web API row: out of arena memory");
      }
      n++;
      continue;
    }
    at->name = m->key;
    APP_RETURN_IF_FAILED(value_of(a, m, &at->value, err));
    {
      const struct json *fv = annotation(obj, m->key, ANN_FORMATTED);
      at->formatted = json_is(fv, JSON_STRING) ? fv->str : NULL;
    }
    if (!strcmp(m->key, "modifiedon")) {
      if (at->value.kind != DV_DATE)
        return app_err_set(err, APP_ERR_INPUT, "Web API row %s/%s: modifiedon is not a date-time",
                           table, out->id);
      modified_ms = at->value.date_ms;
      have_modified = true;
    } else if (!strcmp(m->key, "versionnumber") && at->value.kind != DV_NULL) {
      char *end;
      if (at->value.kind != DV_NUMBER || at->value.s[0] == '-')
        return app_err_set(err, APP_ERR_INPUT, "Web API row %s/%s: versionnumber is not a number",
                           table, out->id);
      rowver = strtoull(at->value.s, &end, 10);
      if (*end || rowver == UINT64_MAX)
        return app_err_set(err, APP_ERR_INPUT,
                           "Web API row %s/%s: versionnumber is not a whole number", table,
                           out->id);
    }
    n++;
  }
  out->op = CDC_OP_UPDATE;
  out->message = "Update";
  out->attrs = attrs;
  out->nattrs = n;
  out->full_row = true;
  /* whole seconds: up to + 999 ms so that a message of the write this row
   * shows (stamped within that second) is never newer than the row, but
   * never past the time the row was asked for: every change made after
   * that (a Delete included) is newer than the row */
  out->op_time_ms = have_modified ? modified_ms : now_ms;
  out->version.ts_ms = have_modified ? modified_ms + (modified_ms % 1000 ? 0 : 999) : now_ms;
  if (out->version.ts_ms > now_ms)
    out->version.ts_ms = now_ms > modified_ms ? now_ms : modified_ms;
  if (out->version.ts_ms < 0)
    out->version.ts_ms = 0;
  out->version.row_version = rowver;
  out->version.tie = dv_version_tie(CDC_OP_UPDATE, "");
  return APP_OK;
}

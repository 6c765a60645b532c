/* test_golden.c - the decoder and the mapping together, against golden
 * documents written by hand.
 *
 * Every tests/fixtures/golden/<case>.in.json (a Service Bus message body;
 * the shared fixtures of tests/fixtures/d365 are among them) is decoded
 * (dv_decode), mapped (map_change) with the shipped function_app/mapping.json
 * and with tests/fixtures/golden/mapping_rich.json, and rendered
 * (docjson_render) with every annotation and with none. The results are
 * compared structurally (json.h trees: member order is free, number lexemes
 * and strings must be exact) with <case>.out.json:
 *
 *   "change"     what the decoder made of the message: op, message, table,
 *                id, version text, op_time_ms, origin
 *   "shipped",   per configuration: the verdict; for "accept" also "doc"
 *   "rich"       (entity set, key, SQL table, TTL, full_row, needs_reread,
 *                relationship, related records, subordinate), "types" (the
 *                doc_type of each property) and "json" (the Web API document
 *                with every annotation). Without annotations the document
 *                must be "json" minus its "<property>@<term>" members.
 *   "truncated"  the document of the same message when Dataverse truncated
 *                it (MessageMaxSizeExceeded), shipped configuration; absent
 *                for a case that is already truncated
 *
 * Then every case is re-encoded into the forms a body can take (compact and
 * pretty, '/' escaped or not, UTF-8 BOM, JSON string literal, DataContract
 * string preamble, other content types) and each must give byte-identical
 * documents; the truncated forms (members dropped, MessageMaxSizeExceeded,
 * InputParameters null or []) must give the "truncated" document. */
#include "common/arena.h"
#include "common/buf.h"
#include "dataverse/dataverse.h"
#include "map/docjson.h"
#include "common/json.h"
#include "map/mapping.h"
#include "../fuzz/pipeline_harness.h"
#include "check.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include "testfile.h"

#define GOLDEN_SALT "golden-salt-0123456789abcdef"

/* ---- small helpers -------------------------------------------------------------- */

static void put(struct buf *b, const char *fmt, ...) APP_PRINTF(2, 3);

static void put(struct buf *b, const char *fmt, ...)
{
  va_list ap;
  char small[256], *big;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  if ((size_t)n < sizeof small) {
    if (buf_append(b, small, (size_t)n) != APP_OK)
      abort();
    return;
  }
  big = xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  if (buf_append(b, big, (size_t)n) != APP_OK)
    abort();
  free(big);
}

static void put_bytes(struct buf *b, const void *p, size_t n)
{
  if (buf_append(b, p, n) != APP_OK)
    abort();
}

static void put_jstr(struct buf *b, const char *s)
{
  if (!s)
    put(b, "null");
  else if (buf_append_json_str(b, s, strlen(s)) != APP_OK)
    abort();
}

static const char *root_dir(void)
{
  const char *r = getenv("ROOT");
  return r && *r ? r : ".";
}

static char *read_rel(const char *rel, size_t *out_len)
{
  char path[1024];
  char *data;
  snprintf(path, sizeof path, "%s/%s", root_dir(), rel);
  data = test_read_file(path, out_len);
  if (!data) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  return data;
}

static const char *salt_lookup(const char *name)
{
  return strcmp(name, "GOLDEN_HASH_SALT") == 0 ? GOLDEN_SALT : NULL;
}

/* ---- structural comparison ------------------------------------------------------- */

static const char *type_name(uint8_t t)
{
  static const char *const names[] = {"null",   "false", "true",  "number",
                                      "string", "array", "object"};
  return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static size_t count_key(const struct json *obj, const struct json *m)
{
  const struct json *c;
  size_t n = 0;
  for (c = obj->child; c; c = c->next)
    if (c->key_len == m->key_len && memcmp(c->key, m->key, m->key_len) == 0)
      n++;
  return n;
}

/* Are the trees equal (objects as sets of members, arrays in order, number
 * lexemes and strings byte for byte)? On a difference, *why says where. */
static bool tree_equal(const struct json *want, const struct json *got, const char *path, char *why,
                       size_t whysz)
{
  const struct json *w, *g;
  char sub[768];

  if (want->type != got->type) {
    snprintf(why, whysz, "%s: expected %s, got %s", path, type_name(want->type),
             type_name(got->type));
    return false;
  }
  switch ((enum json_type)want->type) {
  case JSON_NULL:
  case JSON_TRUE:
  case JSON_FALSE: return true;
  case JSON_NUMBER:
  case JSON_STRING:
    if (want->len != got->len || memcmp(want->str, got->str, want->len) != 0) {
      snprintf(why, whysz, "%s: expected %s %.*s, got %.*s", path, type_name(want->type),
               (int)(want->len > 200 ? 200 : want->len), want->str,
               (int)(got->len > 200 ? 200 : got->len), got->str);
      return false;
    }
    return true;
  case JSON_ARRAY:
    if (want->len != got->len) {
      snprintf(why, whysz, "%s: expected %u elements, got %u", path, want->len, got->len);
      return false;
    }
    for (w = want->child, g = got->child; w && g; w = w->next, g = g->next) {
      snprintf(sub, sizeof sub, "%s[]", path);
      if (!tree_equal(w, g, sub, why, whysz))
        return false;
    }
    return true;
  case JSON_OBJECT:
    for (w = want->child; w; w = w->next) {
      snprintf(sub, sizeof sub, "%s.%s", path, w->key);
      if (count_key(want, w) != 1) {
        snprintf(why, whysz, "%s: the golden file has this member twice", sub);
        return false;
      }
      if (count_key(got, w) != 1) {
        snprintf(why, whysz, "%s: %s", sub, count_key(got, w) ? "twice" : "missing");
        return false;
      }
      for (g = got->child; g; g = g->next)
        if (g->key_len == w->key_len && memcmp(g->key, w->key, w->key_len) == 0)
          break;
      if (!tree_equal(w, g, sub, why, whysz))
        return false;
    }
    for (g = got->child; g; g = g->next)
      if (count_key(want, g) == 0) {
        snprintf(why, whysz, "%s.%s: not expected", path, g->key);
        return false;
      }
    return true;
  }
  snprintf(why, whysz, "%s: bad node", path);
  return false;
}

/* Compare golden subtree `want` with the JSON text `got`; report with label. */
static void check_tree(const char *label, const struct json *want, const char *got, size_t got_len)
{
  struct arena a;
  struct json *g = NULL;
  struct app_err err;
  char why[1024];

  check_count++;
  arena_init(&a, 0);
  if (!want) {
    check_failures++;
    fprintf(stderr, "FAIL %s: missing in the golden file\n  got: %s\n", label, got);
  } else if (json_parse(&a, got, got_len, 64, &g, &err) != APP_OK) {
    check_failures++;
    fprintf(stderr, "FAIL %s: output is not JSON (%s):\n  %s\n", label, err.msg, got);
  } else if (!tree_equal(want, g, "$", why, sizeof why)) {
    check_failures++;
    fprintf(stderr, "FAIL %s: %s\n  got: %s\n", label, why, got);
  }
  arena_cleanup(&a);
}

/* ---- one message through decode + map + render ----------------------------------- */

static const char *doc_type_name(enum doc_type t)
{
  switch (t) {
  case DOC_T_TEXT: return "text";
  case DOC_T_GUID: return "guid";
  case DOC_T_INT: return "int";
  case DOC_T_DECIMAL: return "decimal";
  case DOC_T_BOOL: return "bool";
  case DOC_T_DATETIME: return "datetime";
  case DOC_T_DATE: return "date";
  case DOC_T_MULTI: return "multi";
  case DOC_T_JSON: return "json";
  }
  return "?";
}

/* What one message became, as JSON texts (caller frees with outcome_free). */
struct outcome {
  enum app_result rc;
  char err[APP_ERR_MSG_MAX + 32];
  char *change;  /* "change" object */
  char *verdict; /* map_verdict_str */
  char *doc;     /* "doc" object (accept only) */
  char *types;   /* "types" object (accept only) */
  char *json;    /* rendered with every annotation (accept only) */
  char *plain;   /* rendered without annotations (accept only) */
};

static void outcome_free(struct outcome *o)
{
  free(o->change);
  free(o->verdict);
  free(o->doc);
  free(o->types);
  free(o->json);
  free(o->plain);
  memset(o, 0, sizeof *o);
}

static char *steal(struct buf *b)
{
  char *s;
  put(b, "%s", "");
  s = buf_steal(b, NULL);
  if (!s)
    abort();
  return s;
}

static char *change_json(const struct cdc_change *ch)
{
  const struct cdc_origin *o = &ch->origin;
  char ver[CDC_VERSION_TEXT_LEN + 1];
  struct buf b;

  buf_init(&b, 0);
  cdc_version_text(&ch->version, ver);
  put(&b, "{\"op\":");
  put_jstr(&b, cdc_op_name(ch->op));
  put(&b, ",\"message\":");
  put_jstr(&b, ch->message);
  put(&b, ",\"table\":");
  put_jstr(&b, ch->table);
  put(&b, ",\"id\":");
  put_jstr(&b, ch->id);
  put(&b, ",\"version\":\"%s\",\"op_time_ms\":%" PRId64 ",\"origin\":{", ver, ch->op_time_ms);
  put(&b, "\"correlation_id\":");
  put_jstr(&b, o->correlation_id);
  put(&b, ",\"operation_id\":");
  put_jstr(&b, o->operation_id);
  put(&b, ",\"request_id\":");
  put_jstr(&b, o->request_id);
  put(&b, ",\"initiating_user_id\":");
  put_jstr(&b, o->initiating_user_id);
  put(&b, ",\"user_id\":");
  put_jstr(&b, o->user_id);
  put(&b, ",\"initiating_user_agent\":");
  put_jstr(&b, o->initiating_user_agent);
  put(&b, ",\"business_unit_id\":");
  put_jstr(&b, o->business_unit_id);
  put(&b, ",\"organization_id\":");
  put_jstr(&b, o->organization_id);
  put(&b, ",\"organization_name\":");
  put_jstr(&b, o->organization_name);
  put(&b, ",\"owning_extension_id\":");
  put_jstr(&b, o->owning_extension_id);
  put(&b, ",\"depth\":%d,\"stage\":%d,\"mode\":%d}}", o->depth, o->stage, o->mode);
  return steal(&b);
}

static char *doc_json(const struct doc *d)
{
  struct buf b;
  size_t i;

  buf_init(&b, 0);
  put(&b, "{\"entity_set\":");
  put_jstr(&b, d->entity_set);
  put(&b, ",\"key_name\":");
  put_jstr(&b, d->key_name);
  put(&b, ",\"sql_table\":");
  put_jstr(&b, d->sql_table);
  put(&b, ",\"ttl_seconds\":%" PRId64 ",\"full_row\":%s,\"needs_reread\":%s", d->ttl_seconds,
      d->full_row ? "true" : "false", d->needs_reread ? "true" : "false");
  put(&b, ",\"relationship\":");
  put_jstr(&b, d->relationship);
  put(&b, ",\"related\":[");
  for (i = 0; i < d->nrelated; i++) {
    put(&b, "%s{\"table\":", i ? "," : "");
    put_jstr(&b, d->related[i].table);
    put(&b, ",\"entity_set\":");
    put_jstr(&b, d->related[i].entity_set);
    put(&b, ",\"id\":");
    put_jstr(&b, d->related[i].id);
    put(&b, "}");
  }
  put(&b, "],\"subordinate_id\":");
  put_jstr(&b, d->subordinate_id);
  put(&b, "}");
  return steal(&b);
}

static char *types_json(const struct doc *d)
{
  struct buf b;
  size_t i;
  buf_init(&b, 0);
  put(&b, "{");
  for (i = 0; i < d->nprops; i++) {
    put(&b, "%s", i ? "," : "");
    put_jstr(&b, d->props[i].name);
    put(&b, ":\"%s\"", doc_type_name(d->props[i].type));
  }
  put(&b, "}");
  return steal(&b);
}

static char *render(const struct doc *d, bool annotations)
{
  struct docjson_annotations all;
  struct docjson_opts o = {0};
  struct app_err err;
  struct buf b;

  docjson_annotations_all(&all);
  o.annotations = annotations ? &all : NULL;
  buf_init(&b, 0);
  if (docjson_render(d, &o, &b, &err) != APP_OK) {
    buf_cleanup(&b);
    buf_init(&b, 0);
    put(&b, "render failed: %s", err.msg);
  }
  return steal(&b);
}

static void run(const struct map_config *cfg, const char *ct, const char *body, size_t len,
                bool truncated, struct outcome *out)
{
  struct dv_options opt = {0, 0, truncated};
  struct arena a;
  struct cdc_change ch;
  struct doc d;
  struct app_err err;
  enum map_verdict v = MAP_ACCEPT;

  memset(out, 0, sizeof *out);
  arena_init(&a, 64u << 20);
  app_err_clear(&err);
  out->rc = dv_decode(&a, ct, body, len, &opt, &ch, &err);
  if (out->rc != APP_OK) {
    snprintf(out->err, sizeof out->err, "decode: %s", err.msg);
    goto done;
  }
  out->change = change_json(&ch);
  out->rc = map_change(cfg, &a, &ch, &v, &d, &err);
  if (out->rc != APP_OK) {
    snprintf(out->err, sizeof out->err, "map: %s", err.msg);
    goto done;
  }
  out->verdict = xstrdup(map_verdict_str(v));
  if (v != MAP_ACCEPT)
    goto done;
  /* the document and the change tell the same story */
  CHECK(d.op == ch.op && d.table == ch.table && d.id == ch.id && d.origin == &ch.origin);
  CHECK(cdc_version_cmp(&d.version, &ch.version) == 0 && d.op_time_ms == ch.op_time_ms);
  out->doc = doc_json(&d);
  out->types = types_json(&d);
  out->json = render(&d, true);
  out->plain = render(&d, false);
done:
  arena_cleanup(&a);
}

/* One line per outcome: what variants must reproduce byte for byte. */
static char *fingerprint(const struct outcome *o)
{
  struct buf b;
  buf_init(&b, 0);
  put(&b, "rc=%s err=%s\nchange=%s\nverdict=%s\ndoc=%s\ntypes=%s\njson=%s\nplain=%s\n",
      app_result_str(o->rc), o->err, o->change ? o->change : "-", o->verdict ? o->verdict : "-",
      o->doc ? o->doc : "-", o->types ? o->types : "-", o->json ? o->json : "-",
      o->plain ? o->plain : "-");
  return steal(&b);
}

/* The annotated golden document without its annotations: the plain rendering. */
static char *strip_annotations(const struct json *doc)
{
  const struct json *m;
  struct buf b;
  bool first = true;

  buf_init(&b, 0);
  put(&b, "{");
  for (m = doc && doc->type == JSON_OBJECT ? doc->child : NULL; m; m = m->next) {
    if (strchr(m->key, '@') && strcmp(m->key, "@odata.etag") != 0)
      continue;
    put(&b, "%s", first ? "" : ",");
    first = false;
    if (buf_append_json_str(&b, m->key, m->key_len) != APP_OK)
      abort();
    put(&b, ":");
    if (json_write(&b, m) != APP_OK)
      abort();
  }
  put(&b, "}");
  return steal(&b);
}

/* Check one configuration's outcome against golden section `sec`. */
static void check_section(const char *cname, const char *sname, const struct json *sec,
                          const struct outcome *o)
{
  char label[256];
  const char *want_verdict = json_get_str(sec, "verdict");

  snprintf(label, sizeof label, "%s [%s]", cname, sname);
  if (!sec) {
    check_count++;
    check_failures++;
    fprintf(stderr, "FAIL %s: no such section in the golden file\n", label);
    return;
  }
  if (o->rc != APP_OK) {
    check_count++;
    check_failures++;
    fprintf(stderr, "FAIL %s: %s: %s\n", label, app_result_str(o->rc), o->err);
    return;
  }
  CHECK_MSG(want_verdict && strcmp(want_verdict, o->verdict) == 0, "%s: verdict %s, expected %s",
            label, o->verdict, want_verdict ? want_verdict : "(missing)");
  if (strcmp(o->verdict, "accept") != 0)
    return;
  {
    char l2[300];
    char *plain;
    snprintf(l2, sizeof l2, "%s doc", label);
    check_tree(l2, json_get(sec, "doc"), o->doc, strlen(o->doc));
    snprintf(l2, sizeof l2, "%s types", label);
    check_tree(l2, json_get(sec, "types"), o->types, strlen(o->types));
    snprintf(l2, sizeof l2, "%s json", label);
    check_tree(l2, json_get(sec, "json"), o->json, strlen(o->json));
    /* without a Prefer header: the same document without annotations */
    plain = strip_annotations(json_get(sec, "json"));
    {
      struct arena a;
      struct json *want = NULL;
      struct app_err err;
      arena_init(&a, 0);
      if (json_parse(&a, plain, strlen(plain), 64, &want, &err) != APP_OK)
        abort();
      snprintf(l2, sizeof l2, "%s json without annotations", label);
      check_tree(l2, want, o->plain, strlen(o->plain));
      arena_cleanup(&a);
    }
    free(plain);
  }
}

/* ---- re-encoding a body ------------------------------------------------------------ */

/* A string as DataContractJsonSerializer writes it ('/' optionally as \/,
 * controls as \u00xx), or with the short escapes a re-formatter uses. */
static void enc_str(struct buf *b, const char *s, size_t n, bool esc_slash)
{
  static const char hex[] = "0123456789abcdef";
  size_t i;
  put(b, "\"");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put_bytes(b, e, 2);
    } else if (c == '/' && esc_slash) {
      put(b, "\\/");
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put_bytes(b, e, 6);
    } else {
      put_bytes(b, &s[i], 1);
    }
  }
  put(b, "\"");
}

struct layout {
  bool pretty;
  bool esc_slash;
  const char *nl;     /* line break of pretty output */
  const char *indent; /* one level */
};

static void enc_value(struct buf *b, const struct json *v, const struct layout *l, int depth,
                      const char *const *drop, const char *replace_name, const char *replace_with)
{
  const struct json *c;
  bool first = true;
  int k;

  switch ((enum json_type)v->type) {
  case JSON_NULL: put(b, "null"); return;
  case JSON_TRUE: put(b, "true"); return;
  case JSON_FALSE: put(b, "false"); return;
  case JSON_NUMBER: put_bytes(b, v->str, v->len); return;
  case JSON_STRING: enc_str(b, v->str, v->len, l->esc_slash); return;
  case JSON_ARRAY:
  case JSON_OBJECT: break;
  }
  put(b, "%c", v->type == JSON_ARRAY ? '[' : '{');
  for (c = v->child; c; c = c->next) {
    const char *const *d;
    bool skip = false, repl = false;
    for (d = drop; depth == 0 && d && *d; d++)
      skip = skip || strcmp(*d, c->key) == 0;
    repl = depth == 0 && replace_name && strcmp(replace_name, c->key) == 0;
    if (skip)
      continue;
    put(b, "%s", first ? "" : ",");
    first = false;
    if (l->pretty) {
      put(b, "%s", l->nl);
      for (k = 0; k <= depth; k++)
        put(b, "%s", l->indent);
    }
    if (c->key) {
      enc_str(b, c->key, c->key_len, l->esc_slash);
      put(b, l->pretty ? ": " : ":");
    }
    if (repl)
      put(b, "%s", replace_with);
    else
      enc_value(b, c, l, depth + 1, NULL, NULL, NULL);
  }
  if (l->pretty && !first) {
    put(b, "%s", l->nl);
    for (k = 0; k < depth; k++)
      put(b, "%s", l->indent);
  }
  put(b, "%c", v->type == JSON_ARRAY ? ']' : '}');
}

/* body re-encoded; top-level members in drop left out, member replace_name
 * (when present) given the raw JSON replace_with. Caller frees. */
static char *reencode(const char *body, size_t len, const struct layout *l, const char *const *drop,
                      const char *replace_name, const char *replace_with, size_t *out_len)
{
  struct arena a;
  struct json *root;
  struct app_err err;
  struct buf b;
  char *s;

  arena_init(&a, 0);
  buf_init(&b, 0);
  if (json_parse(&a, body, len, 64, &root, &err) != APP_OK) {
    fprintf(stderr, "fixture is not JSON: %s\n", err.msg);
    abort();
  }
  enc_value(&b, root, l, 0, drop, replace_name, replace_with);
  arena_cleanup(&a);
  put(&b, "%s", "");
  s = buf_steal(&b, out_len);
  return s;
}

static char *concat(const char *a, size_t an, const char *b, size_t bn, size_t *out_len)
{
  struct buf o;
  buf_init(&o, 0);
  put_bytes(&o, a, an);
  put_bytes(&o, b, bn);
  put(&o, "%s", "");
  return buf_steal(&o, out_len);
}

/* The body as one JSON string literal (what some forwarders make of it). */
static char *string_literal(const char *body, size_t len, size_t *out_len)
{
  struct buf o;
  buf_init(&o, 0);
  if (buf_append_json_str(&o, body, len) != APP_OK)
    abort();
  put(&o, "%s", "");
  return buf_steal(&o, out_len);
}

/* What BrokeredMessage(string) puts on the wire (docs/dataverse.md):
 * <string xmlns="http://schemas.microsoft.com/2003/10/Serialization/">
 * as .NET binary XML, the text in one Chars8/16/32TextWithEndElement
 * record chosen by its length. */
static char *preamble(const char *text, size_t n, size_t *out_len)
{
  static const char ns[] = "http://schemas.microsoft.com/2003/10/Serialization/";
  unsigned char h[5];
  size_t hn;
  struct buf o;

  buf_init(&o, 0);
  put_bytes(&o, "\x40\x06string\x08\x33", 10);
  put_bytes(&o, ns, sizeof ns - 1);
  if (n < 0x100) {
    h[0] = 0x99;
    h[1] = (unsigned char)n;
    hn = 2;
  } else if (n < 0x10000) {
    h[0] = 0x9B;
    h[1] = (unsigned char)(n & 0xFF);
    h[2] = (unsigned char)(n >> 8);
    hn = 3;
  } else {
    h[0] = 0x9D;
    h[1] = (unsigned char)(n & 0xFF);
    h[2] = (unsigned char)(n >> 8 & 0xFF);
    h[3] = (unsigned char)(n >> 16 & 0xFF);
    h[4] = (unsigned char)(n >> 24);
    hn = 5;
  }
  put_bytes(&o, h, hn);
  put_bytes(&o, text, n);
  put(&o, "%s", "");
  return buf_steal(&o, out_len);
}

/* ---- the cases ------------------------------------------------------------------- */

static struct map_config *shipped, *rich;

struct variant {
  char name[96];
  const char *ct;
  char *body;
  size_t len;
  bool hint;
};

static const struct layout L_COMPACT_ESC = {false, true, "", ""};
static const struct layout L_COMPACT = {false, false, "", ""};
static const struct layout L_PRETTY_ESC = {true, true, "\n", "  "};
static const struct layout L_PRETTY = {true, false, "\n", "    "};
static const struct layout L_CRLF_TABS = {true, true, "\r\n", "\t"};

static size_t make_variants(const char *body, size_t len, struct variant *v)
{
  size_t n = 0, k = 0, tl = 0;
  char *t, *u;

  /* expr returns the body and sets k to its length */
#define V(label, ctype, expr)                                                                      \
  do {                                                                                             \
    snprintf(v[n].name, sizeof v[n].name, "%s", (label));                                          \
    v[n].ct = (ctype);                                                                             \
    v[n].hint = false;                                                                             \
    v[n].body = (expr);                                                                            \
    v[n].len = k;                                                                                  \
    n++;                                                                                           \
  } while (0)
  V("compact, '/' escaped", "application/json",
    reencode(body, len, &L_COMPACT_ESC, NULL, NULL, NULL, &k));
  V("compact, '/' unescaped", NULL, reencode(body, len, &L_COMPACT, NULL, NULL, NULL, &k));
  V("pretty, '/' escaped", "application/json; charset=utf-8",
    reencode(body, len, &L_PRETTY_ESC, NULL, NULL, NULL, &k));
  V("pretty, '/' unescaped", "application/json",
    reencode(body, len, &L_PRETTY, NULL, NULL, NULL, &k));
  V("pretty, CRLF and tabs", "text/plain", reencode(body, len, &L_CRLF_TABS, NULL, NULL, NULL, &k));
  V("UTF-8 BOM", "application/json", concat("\xEF\xBB\xBF", 3, body, len, &k));
  V("UTF-8 BOM, no content type", NULL, concat("\xEF\xBB\xBF", 3, body, len, &k));
  V("JSON string literal", "application/json", string_literal(body, len, &k));
  t = reencode(body, len, &L_PRETTY, NULL, NULL, NULL, &tl);
  V("JSON string literal of the pretty form", NULL, string_literal(t, tl, &k));
  free(t);
  t = concat("\xEF\xBB\xBF", 3, body, len, &tl);
  u = string_literal(t, tl, &tl);
  free(t);
  V("BOM + JSON string literal holding a BOM", "application/json",
    concat("\xEF\xBB\xBF", 3, u, tl, &k));
  free(u);
  V("DataContract string preamble", "application/octet-stream", preamble(body, len, &k));
  t = string_literal(body, len, &tl);
  V("DataContract preamble around a string literal", NULL, preamble(t, tl, &k));
  free(t);
  t = reencode(body, len, &L_COMPACT, NULL, NULL, NULL, &tl);
  V("DataContract preamble around compact unescaped JSON", "application/json", preamble(t, tl, &k));
  free(t);
#undef V
  return n;
}

static const char *const dropped_members[] = {"InputParameters", "PreEntityImages",
                                              "PostEntityImages", "ParentContext", NULL};

static size_t make_truncated(const char *body, size_t len, struct variant *v)
{
  size_t n = 0, k;

#define T(label, hint_, expr)                                                                      \
  do {                                                                                             \
    snprintf(v[n].name, sizeof v[n].name, "%s", (label));                                          \
    v[n].ct = "application/json";                                                                  \
    v[n].hint = (hint_);                                                                           \
    v[n].body = (expr);                                                                            \
    v[n].len = k;                                                                                  \
    n++;                                                                                           \
  } while (0)
  T("truncated: members dropped, MessageMaxSizeExceeded", true,
    reencode(body, len, &L_COMPACT_ESC, dropped_members, NULL, NULL, &k));
  T("truncated: members dropped, no property", false,
    reencode(body, len, &L_COMPACT_ESC, dropped_members, NULL, NULL, &k));
  T("truncated: whole body, MessageMaxSizeExceeded", true,
    reencode(body, len, &L_COMPACT_ESC, NULL, NULL, NULL, &k));
  T("truncated: InputParameters null", false,
    reencode(body, len, &L_PRETTY, NULL, "InputParameters", "null", &k));
  T("truncated: InputParameters []", false,
    reencode(body, len, &L_COMPACT, NULL, "InputParameters", "[]", &k));
#undef T
  return n;
}

static void check_same(const char *cname, const char *config, const struct variant *v,
                       const struct map_config *cfg, const char *expect)
{
  struct outcome o;
  char *fp;
  run(cfg, v->ct, v->body, v->len, v->hint, &o);
  fp = fingerprint(&o);
  CHECK_MSG(strcmp(fp, expect) == 0,
            "%s [%s] variant \"%s\" (content type %s):\n%s--- expected\n%s", cname, config, v->name,
            v->ct ? v->ct : "(none)", fp, expect);
  free(fp);
  outcome_free(&o);
}

static void test_case(const char *cname)
{
  char rel[512];
  size_t len, glen, nv, nt, i;
  char *body, *gtext;
  struct arena ga;
  struct json *golden;
  struct app_err err;
  struct outcome base_shipped, base_rich, tr;
  const struct json *truncated_sec;
  char *fp_shipped, *fp_rich, *fp_trunc;
  struct variant vs[16], ts[8];

  TEST_CASE(cname);
  snprintf(rel, sizeof rel, "tests/fixtures/golden/%s.in.json", cname);
  body = read_rel(rel, &len);
  snprintf(rel, sizeof rel, "tests/fixtures/golden/%s.out.json", cname);
  gtext = read_rel(rel, &glen);
  arena_init(&ga, 0);
  if (json_parse(&ga, gtext, glen, 64, &golden, &err) != APP_OK) {
    fprintf(stderr, "%s: %s\n", rel, err.msg);
    exit(1);
  }

  /* the message as it is, both configurations */
  run(shipped, "application/json", body, len, false, &base_shipped);
  run(rich, "application/json", body, len, false, &base_rich);
  if (base_shipped.change) {
    char label[256];
    snprintf(label, sizeof label, "%s change", cname);
    check_tree(label, json_get(golden, "change"), base_shipped.change, strlen(base_shipped.change));
  }
  check_section(cname, "shipped", json_get(golden, "shipped"), &base_shipped);
  check_section(cname, "rich", json_get(golden, "rich"), &base_rich);

  /* every wrapping gives the same outcome, byte for byte */
  fp_shipped = fingerprint(&base_shipped);
  fp_rich = fingerprint(&base_rich);
  nv = make_variants(body, len, vs);
  for (i = 0; i < nv; i++) {
    check_same(cname, "shipped", &vs[i], shipped, fp_shipped);
    check_same(cname, "rich", &vs[i], rich, fp_rich);
    free(vs[i].body);
  }

  /* truncated: the needs-reread document */
  truncated_sec = json_get(golden, "truncated");
  if (!truncated_sec) {
    /* only a message that is already truncated may leave it out */
    CHECK_MSG(base_shipped.doc && strstr(base_shipped.doc, "\"needs_reread\":true"),
              "%s: no \"truncated\" section, but the message is not truncated", cname);
    truncated_sec = json_get(golden, "shipped");
  }
  run(shipped, "application/json", body, len, true, &tr);
  check_section(cname, "truncated", truncated_sec, &tr);
  fp_trunc = fingerprint(&tr);
  nt = make_truncated(body, len, ts);
  for (i = 0; i < nt; i++) {
    check_same(cname, "truncated", &ts[i], shipped, fp_trunc);
    free(ts[i].body);
  }

  free(fp_trunc);
  free(fp_shipped);
  free(fp_rich);
  outcome_free(&tr);
  outcome_free(&base_shipped);
  outcome_free(&base_rich);
  arena_cleanup(&ga);
  free(gtext);
  free(body);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the entries of dir (relative to ROOT) ending in suffix, without
 * it, sorted; caller frees each and the array. */
static size_t list_dir(const char *rel, const char *suffix, char ***out)
{
  char path[1024];
  DIR *d;
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, sl = strlen(suffix);

  snprintf(path, sizeof path, "%s/%s", root_dir(), rel);
  d = opendir(path);
  if (!d) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(1);
  }
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0)
      continue;
    names = xrealloc(names, (n + 1) * sizeof *names);
    names[n++] = xstrndup(e->d_name, l - sl);
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, cmp_str);
  *out = names;
  return n;
}

/* Every shared fixture is a golden case, with the same bytes. */
static void test_coverage(char **cases, size_t ncases)
{
  char **fx;
  size_t nfx = list_dir("tests/fixtures/d365", ".json", &fx), i, j;

  TEST_CASE("coverage");
  CHECK_MSG(nfx >= 6, "only %zu fixtures in tests/fixtures/d365", nfx);
  for (i = 0; i < nfx; i++) {
    char rel[512];
    size_t la = 0, lb = 0;
    char *a, *b;
    bool found = false;
    for (j = 0; j < ncases; j++)
      found = found || strcmp(cases[j], fx[i]) == 0;
    CHECK_MSG(found, "tests/fixtures/d365/%s.json has no golden case", fx[i]);
    if (found) {
      snprintf(rel, sizeof rel, "tests/fixtures/d365/%s.json", fx[i]);
      a = read_rel(rel, &la);
      snprintf(rel, sizeof rel, "tests/fixtures/golden/%s.in.json", fx[i]);
      b = read_rel(rel, &lb);
      CHECK_MSG(la == lb && memcmp(a, b, la) == 0, "golden %s.in.json differs from the fixture",
                fx[i]);
      free(a);
      free(b);
    }
    free(fx[i]);
  }
  free(fx);
}

/* Messages made from the cases that must be poison, with the reason the
 * pipeline records (decode or map error text). */
struct poison_case {
  const char *name;
  const char *from; /* golden case */
  const char *find; /* replaced once in its body */
  const char *with;
  const char *ct;
  const char *expect; /* start of "decode: ..." or "map: ..." */
};

static const struct poison_case poison_cases[] = {
    {"a column named like the etag", "create_account", "\"key\":\"telephone1\"",
     "\"key\":\"@odata.etag\"", "application/json",
     "map: table account record 5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1: column \"@odata.etag\" "
     "is not a logical name (lower-case letters, digits and '_', starting with a letter, at most "
     "128 bytes)"},
    {"a column named like an annotation", "update_with_money_optionset_multiselect_lookup_dates",
     "\"key\": \"description\"", "\"key\": \"new_regions@OData.Community.Display.V1.x\"",
     "application/json",
     "map: table opportunity record 2f4e6a8c-787b-ef11-ac21-6045bdd4c6be: column "
     "\"new_regions@OData.Community.Display.V1.x\" is not a logical name"},
    {"an upper-case column in a post image", "create_contact_with_postimage",
     "\"key\":\"new_creditscore\"", "\"key\":\"New_CreditScore\"", "application/json",
     "map: table contact record 0c1d2e3f-4a5b-ef11-8a69-000d3a30b0c1: column \"New_CreditScore\" "
     "is not a logical name"},
    {"the key column holding another id", "create_account",
     "\"key\":\"accountid\",\"value\":\"5f1c7a2e", "\"key\":\"accountid\",\"value\":\"5f1c7a2f",
     "application/json",
     "map: table account record 5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1: column accountid: primary "
     "key column does not hold the record id"},
    {"a post image of another record", "update_contact_partial",
     "\"2024-11-12T14:21:09+00:00\"\n          }\n        ],\n        \"Id\": \"6d81597f",
     "\"2024-11-12T14:21:09+00:00\"\n          }\n        ],\n        \"Id\": \"6d81597e",
     "application/json",
     "map: table contact record 6d81597f-2b4e-ef11-a317-000d3a2c9e1b: post image is for record "
     "6d81597e-2b4e-ef11-a317-000d3a2c9e1b"},
    {"a related record without a GUID", "associate",
     "\"Id\":\"b2e3f4a5-6a7b-ef11-ac21-6045bdd4c6be\"", "\"Id\":\"b2e3f4a5\"", "application/json",
     "decode: InputParameters[2].value[1].Id (key \"RelatedEntities\"): expected a GUID string, "
     "got \"b2e3f4a5\""},
    {"binary XML", "setstate", "{", "{", "application/msbin1",
     "decode: content type application/msbin1: the body is .NET binary XML"},
};

static void test_poison(void)
{
  size_t i;
  TEST_CASE("poison");
  for (i = 0; i < sizeof poison_cases / sizeof poison_cases[0]; i++) {
    const struct poison_case *pc = &poison_cases[i];
    char rel[512];
    size_t len;
    char *body, *at;
    struct buf b;
    struct outcome o;

    snprintf(rel, sizeof rel, "tests/fixtures/golden/%s.in.json", pc->from);
    body = read_rel(rel, &len);
    at = strstr(body, pc->find);
    CHECK_MSG(at != NULL, "%s: \"%s\" not in %s", pc->name, pc->find, rel);
    if (at) {
      buf_init(&b, 0);
      put_bytes(&b, body, (size_t)(at - body));
      put(&b, "%s%s", pc->with, at + strlen(pc->find));
      run(shipped, pc->ct, b.data, b.len, false, &o);
      CHECK_MSG(o.rc != APP_OK && strncmp(o.err, pc->expect, strlen(pc->expect)) == 0,
                "%s: got %s: %s\n  expected: %s", pc->name, app_result_str(o.rc), o.err,
                pc->expect);
      outcome_free(&o);
      buf_cleanup(&b);
    }
    free(body);
  }
}

/* Every seed of the pipeline fuzz corpus (the golden cases and the inputs
 * that once broke an invariant) passes the fuzz target's invariants. */
static void test_fuzz_corpus(void)
{
  char **seeds;
  size_t n = list_dir("tests/fuzz/corpus/pipeline", ".bin", &seeds), i;

  TEST_CASE("fuzz corpus");
  CHECK_MSG(n >= 40, "only %zu seeds in tests/fuzz/corpus/pipeline", n);
  for (i = 0; i < n; i++) {
    char rel[512];
    size_t len = 0;
    char *data;
    snprintf(rel, sizeof rel, "tests/fuzz/corpus/pipeline/%s.bin", seeds[i]);
    data = read_rel(rel, &len);
    pipeline_harness_run((const uint8_t *)data, len); /* aborts on a violation */
    check_count++;
    free(data);
    free(seeds[i]);
  }
  free(seeds);
  pipeline_harness_free();
}

int main(void)
{
  struct app_err err;
  char path[1024];
  char **cases;
  size_t ncases, i;

  snprintf(path, sizeof path, "%s/function_app/mapping.json", root_dir());
  if (map_config_load(path, salt_lookup, &shipped, &err) != APP_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  snprintf(path, sizeof path, "%s/tests/fixtures/golden/mapping_rich.json", root_dir());
  if (map_config_load(path, salt_lookup, &rich, &err) != APP_OK) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  ncases = list_dir("tests/fixtures/golden", ".in.json", &cases);
  test_coverage(cases, ncases);
  for (i = 0; i < ncases; i++) {
    test_case(cases[i]);
    free(cases[i]);
  }
  free(cases);
  test_poison();
  test_fuzz_corpus();
  fprintf(stderr, "golden cases: %zu\n", ncases);
  map_config_free(shipped);
  map_config_free(rich);
  return check_report("test_golden");
}

/* docjson.c - a document as Web API JSON (see docjson.h). */
#include "map/docjson.h"

#include <string.h>
#include <strings.h>

void docjson_annotations_all(struct docjson_annotations *f)
{
  memset(f, 0, sizeof *f);
  f->p[0].s = "";
  f->p[0].len = 0;
  f->p[0].wildcard = true;
  f->n = 1;
}

static bool is_term_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* "*", "ns.*" or "ns.term": dotted identifiers. */
static bool valid_pattern(const char *s, size_t len, bool *out_wildcard)
{
  size_t i;
  bool seg_start = true;

  *out_wildcard = false;
  if (len == 1 && s[0] == '*') {
    *out_wildcard = true;
    return true;
  }
  if (len >= 3 && s[len - 1] == '*' && s[len - 2] == '.') {
    *out_wildcard = true;
    len -= 2;
  }
  if (!len)
    return false;
  for (i = 0; i < len; i++) {
    if (s[i] == '.') {
      if (seg_start)
        return false;
      seg_start = true;
    } else if (is_term_char(s[i])) {
      seg_start = false;
    } else {
      return false;
    }
  }
  return !seg_start;
}

enum app_result docjson_annotations_parse(struct docjson_annotations *out, const char *text,
                                          size_t len, struct app_err *err)
{
  size_t i = 0;

  memset(out, 0, sizeof *out);
  while (len && (text[0] == ' ' || text[0] == '\t')) {
    text++;
    len--;
  }
  while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
    len--;
  if (len >= 2 && text[0] == '"' && text[len - 1] == '"') {
    text++;
    len -= 2;
  }
  while (i < len) {
    size_t start = i, end;
    struct docjson_pattern *pt;
    bool exclude = false, wildcard;

    while (i < len && text[i] != ',')
      i++;
    end = i;
    if (i < len)
      i++; /* the comma */
    while (start < end && (text[start] == ' ' || text[start] == '\t'))
      start++;
    while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t'))
      end--;
    if (start == end)
      continue;
    if (text[start] == '-') {
      exclude = true;
      start++;
    }
    if (!valid_pattern(text + start, end - start, &wildcard))
      return app_err_set(err, APP_ERR_INPUT,
                         "include-annotations: \"%.*s\" is not \"*\", a namespace.* or a term",
                         (int)(end - start > 80 ? 80 : end - start), text + start);
    if (out->n == DOCJSON_MAX_PATTERNS)
      return app_err_set(err, APP_ERR_INPUT, "include-annotations: more than %d patterns",
                         DOCJSON_MAX_PATTERNS);
    pt = &out->p[out->n++];
    pt->exclude = exclude;
    pt->wildcard = wildcard;
    pt->s = text + start;
    /* store "*" as the empty namespace and "ns.*" as "ns" */
    pt->len = !wildcard ? end - start : (end - start == 1 ? 0 : end - start - 2);
  }
  return APP_OK;
}

enum app_result docjson_annotations_from_prefer(struct docjson_annotations *out, const char *prefer,
                                                size_t len, struct app_err *err)
{
  static const char name[] = "odata.include-annotations";
  size_t i = 0;

  memset(out, 0, sizeof *out);
  while (i < len) {
    size_t start, nend, vstart, vend;

    while (i < len && (prefer[i] == ' ' || prefer[i] == '\t' || prefer[i] == ','))
      i++;
    start = i;
    while (i < len && prefer[i] != '=' && prefer[i] != ',' && prefer[i] != ';')
      i++;
    nend = i;
    while (nend > start && (prefer[nend - 1] == ' ' || prefer[nend - 1] == '\t'))
      nend--;
    vstart = vend = i;
    if (i < len && prefer[i] == '=') {
      i++;
      while (i < len && (prefer[i] == ' ' || prefer[i] == '\t'))
        i++;
      vstart = i;
      if (i < len && prefer[i] == '"') {
        i++;
        while (i < len && prefer[i] != '"') {
          if (prefer[i] == '\\' && i + 1 < len)
            i++;
          i++;
        }
        if (i == len)
          return app_err_set(err, APP_ERR_INPUT, "Prefer: unterminated quoted value");
        i++;
      } else {
        while (i < len && prefer[i] != ',' && prefer[i] != ';')
          i++;
      }
      vend = i;
    }
    /* parameters of this preference (";x=y") are ignored */
    while (i < len && prefer[i] != ',') {
      if (prefer[i] == '"') {
        i++;
        while (i < len && prefer[i] != '"')
          i++;
      }
      if (i < len)
        i++;
    }
    if (nend - start == sizeof name - 1 && strncasecmp(prefer + start, name, nend - start) == 0) {
      return docjson_annotations_parse(out, prefer + vstart, vend - vstart, err);
    }
  }
  return APP_OK;
}

bool docjson_annotation_included(const struct docjson_annotations *f, const char *name)
{
  size_t i, nlen = strlen(name);
  /* specificity: exact term (3) > namespace (1 + its length) > "*" (0) */
  long best = -1;
  bool include = false;

  if (!f)
    return false;
  for (i = 0; i < f->n; i++) {
    const struct docjson_pattern *pt = &f->p[i];
    long spec;
    if (!pt->wildcard) {
      if (pt->len != nlen || memcmp(pt->s, name, nlen) != 0)
        continue;
      spec = 1L << 20;
    } else if (pt->len == 0) {
      spec = 0;
    } else {
      if (nlen <= pt->len || memcmp(pt->s, name, pt->len) != 0 || name[pt->len] != '.')
        continue;
      spec = 1 + (long)pt->len;
    }
    if (spec > best || (spec == best && pt->exclude)) {
      best = spec;
      include = !pt->exclude;
    }
  }
  return include;
}

static bool selected(const struct docjson_opts *o, const char *name)
{
  size_t i;
  if (!o || !o->select || !o->nselect)
    return true;
  for (i = 0; i < o->nselect; i++)
    if (strcmp(o->select[i], name) == 0)
      return true;
  return false;
}

#define R(expr)                                                                                    \
  do {                                                                                             \
    enum app_result r_ = (expr);                                                                   \
    if (r_ != APP_OK)                                                                              \
      return app_err_set(err, r_, "rendering %s %s: output buffer cannot grow (%s)", d->table,     \
                         d->id, app_result_str(r_));                                               \
  } while (0)

static enum app_result name_key(struct buf *out, const char *name, const char *annotation,
                                struct app_err *err, const struct doc *d)
{
  R(buf_append_json_str(out, name, strlen(name)));
  if (annotation) {
    out->len--; /* reopen the string */
    R(buf_append_char(out, '@'));
    R(buf_append_str(out, annotation));
    R(buf_append_char(out, '"'));
  }
  R(buf_append_char(out, ':'));
  return APP_OK;
}

enum app_result docjson_render(const struct doc *d, const struct docjson_opts *opts,
                               struct buf *out, struct app_err *err)
{
  const struct docjson_annotations *ann = opts ? opts->annotations : NULL;
  bool first = true, key_listed = false;
  size_t i, j;

  R(buf_append_char(out, '{'));
  if (!opts || !opts->no_etag) {
    R(buf_append_str(out, "\"@odata.etag\":\"W/\\\""));
    R(buf_append_str(out, d->version_text));
    R(buf_append_str(out, "\\\"\""));
    first = false;
  }
  for (i = 0; i < d->nprops; i++)
    if (d->key_name && strcmp(d->props[i].name, d->key_name) == 0)
      key_listed = true;
  if (!key_listed && d->key_name && d->id) {
    if (!first)
      R(buf_append_char(out, ','));
    first = false;
    APP_RETURN_IF_FAILED(name_key(out, d->key_name, NULL, err, d));
    R(buf_append_json_str(out, d->id, strlen(d->id)));
  }
  for (i = 0; i < d->nprops; i++) {
    const struct doc_prop *p = &d->props[i];
    bool is_key = d->key_name && strcmp(p->name, d->key_name) == 0;
    if (!is_key && !selected(opts, p->name))
      continue;
    for (j = 0; j < p->nann; j++) {
      if (!docjson_annotation_included(ann, p->ann[j].name))
        continue;
      if (!first)
        R(buf_append_char(out, ','));
      first = false;
      APP_RETURN_IF_FAILED(name_key(out, p->name, p->ann[j].name, err, d));
      R(buf_append(out, p->ann[j].json, p->ann[j].json_len));
    }
    if (!first)
      R(buf_append_char(out, ','));
    first = false;
    APP_RETURN_IF_FAILED(name_key(out, p->name, NULL, err, d));
    R(buf_append(out, p->json, p->json_len));
  }
  R(buf_append_char(out, '}'));
  return APP_OK;
}

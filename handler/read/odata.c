/* odata.c - Web API request parsing and response shaping for the read API. */
#include "read/odata.h"

#include "map/altkey.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum app_result odata_error_set(struct odata_error *e, int status, const char *code,
                                const char *fmt, ...)
{
  va_list ap;
  e->status = status;
  e->code = code;
  e->correlation_id[0] = '\0';
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return APP_ERR_INPUT;
}

bool odata_is_guid(const char *s, size_t n)
{
  size_t i;
  if (n != 36)
    return false;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return false;
    } else if (!isxdigit((unsigned char)s[i])) {
      return false;
    }
  }
  return true;
}

static int hexv(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decode s[0..n) into the arena; plus_space turns '+' into ' '
 * (query strings). NULL on a bad escape or a decoded NUL. */
static char *pct_decode(struct arena *a, const char *s, size_t n, bool plus_space)
{
  char *out = arena_alloc(a, n + 1);
  size_t i, w = 0;
  if (!out)
    return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] == '%') {
      int h, l;
      if (i + 2 >= n)
        return NULL;
      h = hexv(s[i + 1]);
      l = hexv(s[i + 2]);
      if (h < 0 || l < 0 || (h == 0 && l == 0))
        return NULL;
      out[w++] = (char)(h * 16 + l);
      i += 2;
    } else if (plus_space && s[i] == '+') {
      out[w++] = ' ';
    } else {
      out[w++] = s[i];
    }
  }
  out[w] = '\0';
  return out;
}

static bool is_ident(const char *s, size_t n)
{
  size_t i;
  if (n == 0 || n > 128)
    return false;
  if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
      return false;
  return true;
}

static char *lower_dup(struct arena *a, const char *s, size_t n)
{
  char *p = arena_strndup(a, s, n);
  size_t i;
  if (p)
    for (i = 0; i < n; i++)
      p[i] = (char)tolower((unsigned char)p[i]);
  return p;
}

static enum app_result nomem(struct odata_error *e)
{
  return odata_error_set(e, 500, ODATA_CODE_SYNTAX, "the request needs more memory than allowed");
}

/* Split s on sep (outside double quotes) into trimmed items, empty ones
 * included. */
static enum app_result split_list(struct arena *a, const char *s, char sep, const char ***out,
                                  size_t *out_n, struct odata_error *e)
{
  size_t cap = 1, n = 0, i, start = 0, len = strlen(s);
  bool inq = false;
  const char **items;
  for (i = 0; i < len; i++)
    if (s[i] == sep)
      cap++;
  items = arena_alloc(a, cap * sizeof *items);
  if (!items)
    return nomem(e);
  for (i = 0; i <= len; i++) {
    if (i < len && s[i] == '"')
      inq = !inq;
    if (i == len || (s[i] == sep && !inq)) {
      size_t b = start, end = i;
      while (b < end && isspace((unsigned char)s[b]))
        b++;
      while (end > b && isspace((unsigned char)s[end - 1]))
        end--;
      {
        /* an empty item ("a,,b") is kept: the caller rejects it */
        char *item = arena_strndup(a, s + b, end - b);
        if (!item)
          return nomem(e);
        items[n++] = item;
      }
      start = i + 1;
    }
  }
  *out = items;
  *out_n = n;
  return APP_OK;
}

/* "a,b,c" for $select (what names the option in messages) */
static enum app_result parse_select(struct arena *a, const char *val, const char *what,
                                    const char ***out, size_t *out_n, struct odata_error *e)
{
  const char **names = NULL;
  size_t nn = 0, k;
  if (!val || !*val)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "The query option '%s' needs a list of column names", what);
  APP_RETURN_IF_FAILED(split_list(a, val, ',', &names, &nn, e));
  if (nn == 0)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "The query option '%s' needs a list of column names", what);
  for (k = 0; k < nn; k++)
    if (!is_ident(names[k], strlen(names[k])))
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Syntax error in '%s': '%.60s' is not a column name", what, names[k]);
  *out = names;
  *out_n = nn;
  return APP_OK;
}

static enum app_result parse_filter(struct arena *a, const char *f, struct odata_request *out,
                                    struct odata_error *e);

/* One $expand item: <name> or <name>($select=a,b). Dataverse allows only
 * $select (and a nested $expand) inside the expansion of a single-valued
 * navigation property; the replica serves $select. */
static enum app_result parse_expand_item(struct arena *a, const char *s, size_t n,
                                         struct odata_expand *x, struct odata_error *e)
{
  const char *open = memchr(s, '(', n);
  size_t nl = open ? (size_t)(open - s) : n;
  if (!is_ident(s, nl))
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "Syntax error in '$expand': '%.*s' is not a navigation property name",
                           (int)(nl > 60 ? 60 : nl), s);
  x->name = arena_strndup(a, s, nl);
  if (!x->name)
    return nomem(e);
  if (!open)
    return APP_OK;
  if (s[n - 1] != ')' || n - nl < 3)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "Syntax error in '$expand': the options of '%s' must be written "
                           "%s($select=a,b)",
                           x->name, x->name);
  {
    /* options separated by ';' outside quotes: $select, and for a
     * collection $filter, $orderby, $top (readapi.c refuses those on a
     * lookup, as Dataverse does) */
    const char *o = open + 1, *end = s + n - 1;
    while (o < end) {
      const char *q = o;
      bool inq = false;
      char *opt;
      while (q < end && (inq || *q != ';')) {
        if (*q == '\'')
          inq = !inq;
        q++;
      }
      opt = arena_strndup(a, o, (size_t)(q - o));
      if (!opt)
        return nomem(e);
      if (!strncmp(opt, "$select=", 8) && !x->select) {
        APP_RETURN_IF_FAILED(parse_select(a, opt + 8, "$select", &x->select, &x->nselect, e));
      } else if (!strncmp(opt, "$filter=", 8) && !x->filter) {
        struct odata_request tmp;
        memset(&tmp, 0, sizeof tmp);
        APP_RETURN_IF_FAILED(parse_filter(a, opt + 8, &tmp, e));
        x->filter = tmp.filter;
        x->nfilter = tmp.nfilter;
      } else if (!strncmp(opt, "$orderby=", 9) && !x->orderby) {
        char *sp = strchr(opt + 9, ' ');
        if (!is_ident(opt + 9, sp ? (size_t)(sp - opt - 9) : strlen(opt + 9)) ||
            (sp && strcmp(sp, " asc") != 0 && strcmp(sp, " desc") != 0))
          return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                                 "Syntax error in '$expand=%s($orderby=...)': write <column> "
                                 "[asc|desc]",
                                 x->name);
        x->orderby_desc = sp && !strcmp(sp, " desc");
        if (sp)
          *sp = '\0';
        x->orderby = opt + 9;
      } else if (!strncmp(opt, "$top=", 5) && !x->top) {
        char *te = NULL;
        long t = strtol(opt + 5, &te, 10);
        if (!opt[5] || *te || t < 1 || t > ODATA_MAX_TOP)
          return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                                 "'$top' inside '$expand=%s(...)' must be 1 to %d", x->name,
                                 ODATA_MAX_TOP);
        x->top = t;
      } else {
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "The options of '$expand=%s(...)' are not supported by this "
                               "replica: $select, and for a collection $filter, $orderby and "
                               "$top, each once, separated by ';' (no nested $expand)",
                               x->name);
      }
      o = q + 1;
    }
    if (!x->select && !x->filter && !x->orderby && !x->top)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Syntax error in '$expand': the options of '%s' must be written "
                             "%s($select=a,b)",
                             x->name, x->name);
    return APP_OK;
  }
}

static enum app_result parse_expand(struct arena *a, const char *val, struct odata_request *out,
                                    struct odata_error *e)
{
  struct odata_expand *xs;
  size_t n = 0, i, start = 0, len, k;
  int depth = 0;

  if (!val || !*val)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "The query option '$expand' needs a list of navigation properties");
  len = strlen(val);
  xs = arena_alloc(a, ODATA_MAX_EXPAND * sizeof *xs);
  if (!xs)
    return nomem(e);
  memset(xs, 0, ODATA_MAX_EXPAND * sizeof *xs);
  for (i = 0; i < len && depth >= 0; i++)
    depth += val[i] == '(' ? 1 : val[i] == ')' ? -1 : 0;
  if (depth != 0)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "Syntax error in '$expand': unbalanced parentheses");
  for (i = 0; i <= len; i++) {
    if (i < len && val[i] == '(')
      depth++;
    else if (i < len && val[i] == ')')
      depth--;
    if (i == len || (val[i] == ',' && depth == 0)) {
      size_t b = start, end = i;
      while (b < end && isspace((unsigned char)val[b]))
        b++;
      while (end > b && isspace((unsigned char)val[end - 1]))
        end--;
      if (b == end)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Syntax error in '$expand': an empty item");
      if (n == ODATA_MAX_EXPAND)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Number of link entities in query exceeded maximum limit of %d",
                               ODATA_MAX_EXPAND);
      APP_RETURN_IF_FAILED(parse_expand_item(a, val + b, end - b, &xs[n], e));
      for (k = 0; k < n; k++)
        if (!strcmp(xs[k].name, xs[n].name))
          return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                                 "Syntax error in '$expand': '%s' is expanded twice", xs[n].name);
      n++;
      start = i + 1;
    }
  }
  out->expand = xs;
  out->nexpand = n;
  return APP_OK;
}

/* "<prop> eq <literal> [and <prop> eq <literal>]..." */
static enum app_result parse_filter(struct arena *a, const char *f, struct odata_request *out,
                                    struct odata_error *e)
{
  struct odata_cond *c = arena_alloc(a, ODATA_MAX_FILTER * sizeof *c);
  size_t n = 0, k;
  const char *p = f;
  if (!c)
    return nomem(e);
  for (;;) {
    const char *s0;
    while (*p == ' ')
      p++;
    s0 = p;
    while (*p && *p != ' ')
      p++;
    if (!is_ident(s0, (size_t)(p - s0)) || strncmp(p, " eq ", 4) != 0)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Syntax error in '$filter': this replica serves <column> eq <value> "
                             "conditions joined by 'and', e.g. _parentcustomerid_value eq "
                             "<guid> and statecode eq 0");
    if (n == ODATA_MAX_FILTER)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX, "The '$filter' has more than %d conditions",
                             ODATA_MAX_FILTER);
    c[n].prop = arena_strndup(a, s0, (size_t)(p - s0));
    if (!c[n].prop)
      return nomem(e);
    p += 4;
    while (*p == ' ')
      p++;
    if (*p == '\'') {
      size_t o = 0;
      char *v = arena_alloc(a, strlen(p) + 1);
      if (!v)
        return nomem(e);
      v[o++] = 's';
      for (p++;; p++) {
        if (!*p)
          return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                                 "Syntax error in '$filter': unterminated string");
        if (*p == '\'' && p[1] == '\'') {
          v[o++] = '\'';
          p++;
        } else if (*p == '\'') {
          p++;
          break;
        } else {
          v[o++] = *p;
        }
      }
      v[o] = '\0';
      c[n].canon = v;
      c[n].canon_len = o;
    } else {
      size_t vl = strcspn(p, " ");
      if (vl == 36 && odata_is_guid(p, 36)) {
        char *v = arena_alloc(a, 38);
        if (!v)
          return nomem(e);
        v[0] = 's';
        for (k = 0; k < 36; k++)
          v[k + 1] = (char)tolower((unsigned char)p[k]);
        v[37] = '\0';
        c[n].canon = v;
        c[n].canon_len = 37;
      } else if (!altkey_canon_number(a, p, vl, &c[n].canon, &c[n].canon_len)) {
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Syntax error in '$filter': the value for '%s' must be a quoted "
                               "string, a number or a GUID",
                               c[n].prop);
      }
      p += vl;
    }
    n++;
    while (*p == ' ')
      p++;
    if (!*p)
      break;
    if (strncmp(p, "and ", 4) != 0)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Syntax error in '$filter': conditions are joined by 'and' (no "
                             "'or', 'not' or functions in this replica)");
    p += 4;
  }
  out->filter = c;
  out->nfilter = n;
  return APP_OK;
}

static enum app_result parse_query(struct arena *a, const char *query, struct odata_request *out,
                                   struct odata_error *e)
{
  static const char *const unsupported[] = {"$filter", "$orderby", "$top",    "$skip",     "$count",
                                            "$apply",  "$search",  "$format", "$skiptoken"};
  const char *p = query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t n = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    size_t kn = eq ? (size_t)(eq - p) : n;
    char *key = pct_decode(a, p, kn, true);
    char *val = eq ? pct_decode(a, eq + 1, n - kn - 1, true) : NULL;
    size_t i;

    if (!key || (eq && !val))
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Bad Request - invalid percent-encoding in the query string");
    if (!strcmp(key, "$select")) {
      if (out->select)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Query option '$select' was specified more than once, but it must "
                               "be specified at most once.");
      APP_RETURN_IF_FAILED(parse_select(a, val, "$select", &out->select, &out->nselect, e));
    } else if (!strcmp(key, "$expand")) {
      if (out->expand)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Query option '$expand' was specified more than once, but it must "
                               "be specified at most once.");
      APP_RETURN_IF_FAILED(parse_expand(a, val, out, e));
    } else if (out->kind == ODATA_LIST && !strcmp(key, "$filter")) {
      if (out->filter)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Query option '$filter' was specified more than once");
      APP_RETURN_IF_FAILED(parse_filter(a, val ? val : "", out, e));
    } else if (out->kind == ODATA_LIST && !strcmp(key, "$orderby")) {
      const char *sp;
      if (out->orderby || !val || !*val)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "The query option '$orderby' needs one column, given once");
      sp = strchr(val, ' ');
      if (!is_ident(val, sp ? (size_t)(sp - val) : strlen(val)) ||
          (sp && strcmp(sp, " asc") != 0 && strcmp(sp, " desc") != 0))
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Syntax error in '$orderby': write <column> [asc|desc]; this "
                               "replica orders by one column");
      out->orderby = arena_strndup(a, val, sp ? (size_t)(sp - val) : strlen(val));
      if (!out->orderby)
        return nomem(e);
      out->orderby_desc = sp && !strcmp(sp, " desc");
    } else if (out->kind == ODATA_LIST && !strcmp(key, "$top")) {
      char *end = NULL;
      long t = val ? strtol(val, &end, 10) : 0;
      if (out->top || !val || !*val || *end || t < 1 || t > ODATA_MAX_TOP)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "The query option '$top' must be a whole number from 1 to %d, "
                               "given once",
                               ODATA_MAX_TOP);
      out->top = t;
    } else if (out->kind == ODATA_LIST && !strcmp(key, "$count")) {
      if (!val || (strcmp(val, "true") != 0 && strcmp(val, "false") != 0))
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "The query option '$count' must be true or false");
      out->count = !strcmp(val, "true");
    } else if (out->kind == ODATA_LIST && !strcmp(key, "$skiptoken")) {
      if (out->skiptoken || !val || !*val)
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX, "Invalid $skiptoken");
      out->skiptoken = val;
    } else if (key[0] == '$') {
      for (i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!strcmp(key, unsupported[i]))
          return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                                 "The query option '%s' is not supported by this replica; it "
                                 "serves single records by id ($select and $expand only)",
                                 key);
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "The query parameter '%s' is not supported.", key);
    }
    p = amp ? amp + 1 : NULL;
  }
  return APP_OK;
}

/* "col='v',col2=5)" after '(' of an alternate key: *out_close at the ')' */
static enum app_result parse_altkey(struct arena *a, const char *p, struct odata_request *out,
                                    const char **out_close, struct odata_error *e)
{
  struct odata_keyval *kv = arena_alloc(a, ODATA_MAX_KEY_PARTS * sizeof *kv);
  size_t n = 0, k;
  if (!kv)
    return nomem(e);
  for (;;) {
    const char *eq = strchr(p, '=');
    size_t nl = eq ? (size_t)(eq - p) : 0;
    if (!eq || !is_ident(p, nl))
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Bad Request - Error in query syntax: an alternate key is written "
                             "name='value' or name=number, separated by commas");
    if (n == ODATA_MAX_KEY_PARTS)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Bad Request - an alternate key has at most %d columns",
                             ODATA_MAX_KEY_PARTS);
    kv[n].name = arena_strndup(a, p, nl);
    if (!kv[n].name)
      return nomem(e);
    for (k = 0; k < n; k++)
      if (!strcmp(kv[k].name, kv[n].name))
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Bad Request - the key column '%s' is given twice", kv[n].name);
    p = eq + 1;
    if (*p == '\'') {
      /* a string literal: '' is one quote */
      size_t cap = strlen(p), o = 0;
      char *v = arena_alloc(a, cap + 1);
      if (!v)
        return nomem(e);
      v[o++] = 's';
      for (p++;; p++) {
        if (!*p)
          return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                                 "Bad Request - Error in query syntax: unterminated string in "
                                 "the key");
        if (*p == '\'' && p[1] == '\'') {
          v[o++] = '\'';
          p++;
        } else if (*p == '\'') {
          p++;
          break;
        } else {
          v[o++] = *p;
        }
      }
      v[o] = '\0';
      kv[n].canon = v;
      kv[n].canon_len = o;
    } else if (strcspn(p, ",)") == 36 && odata_is_guid(p, 36)) {
      /* a lookup key (_primarycontactid_value=<guid>) or accountid=<guid> */
      char *v = arena_alloc(a, 38);
      if (!v)
        return nomem(e);
      v[0] = 's';
      for (k = 0; k < 36; k++)
        v[k + 1] = (char)tolower((unsigned char)p[k]);
      v[37] = '\0';
      kv[n].canon = v;
      kv[n].canon_len = 37;
      p += 36;
    } else {
      size_t vl = strcspn(p, ",)");
      if (!altkey_canon_number(a, p, vl, &kv[n].canon, &kv[n].canon_len))
        return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                               "Bad Request - Error in query syntax: the value of key column "
                               "'%s' must be a quoted string ('A1') or a number",
                               kv[n].name);
      p += vl;
    }
    n++;
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p != ')')
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX, "Bad Request - Error in query syntax.");
    *out_close = p;
    out->key = kv;
    out->nkey = n;
    return APP_OK;
  }
}

static enum app_result parse_prefer(struct arena *a, const char *prefer, struct odata_request *out,
                                    struct odata_error *e)
{
  struct app_err err;
  const char *p, *v, *q;
  char *copy;
  size_t n;

  if (!prefer || !*prefer)
    return APP_OK;
  /* the filter's patterns point into the text: keep a copy in the arena */
  n = strlen(prefer);
  copy = arena_strndup(a, prefer, n);
  if (!copy)
    return nomem(e);
  if (docjson_annotations_from_prefer(&out->annotations, copy, n, &err) != APP_OK)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX, "Invalid Prefer header: %s", err.msg);
  if ((p = strcasestr(copy, "odata.maxpagesize")) != NULL) {
    char *end = NULL;
    long m;
    v = p + 17;
    while (*v == ' ')
      v++;
    m = *v == '=' ? strtol(v + 1, &end, 10) : 0;
    if (m < 1 || m > ODATA_MAX_TOP)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Invalid Prefer header: odata.maxpagesize must be 1 to %d",
                             ODATA_MAX_TOP);
    out->maxpagesize = m;
  }
  /* echo the preference back in Preference-Applied */
  for (p = copy; (p = strcasestr(p, "odata.include-annotations")) != NULL; p++) {
    v = p + 25;
    while (*v == ' ')
      v++;
    if (*v != '=')
      continue;
    v++;
    while (*v == ' ')
      v++;
    if (*v == '"') {
      q = strchr(v + 1, '"');
      q = q ? q + 1 : v + strlen(v);
    } else {
      q = v;
      while (*q && *q != ',' && *q != ';')
        q++;
    }
    {
      size_t len = (size_t)(q - p);
      char *applied = arena_strndup(a, p, len);
      if (!applied)
        return nomem(e);
      out->preference_applied = applied;
    }
    break;
  }
  return APP_OK;
}

enum app_result odata_parse(struct arena *a, const char *method, const char *path,
                            const char *query, const char *prefer, const char *if_none_match,
                            const char *base_url, struct odata_request *out, struct odata_error *e)
{
  const char *p, *set, *open, *close = NULL, *rest;
  char *dpath;
  size_t plen, setlen, version_len;
  char *base;

  memset(out, 0, sizeof *out);
  memset(e, 0, sizeof *e);
  if (!path)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX, "Bad Request - no path");
  plen = strlen(path);
  dpath = pct_decode(a, path, plen, false);
  if (!dpath)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "Bad Request - invalid percent-encoding in the path");
  plen = strlen(dpath);
  while (plen > 1 && dpath[plen - 1] == '/')
    dpath[--plen] = '\0';

  /* "/data/v9.N" after the route prefix ("/api" unless host.json
   * extensions.http.routePrefix says otherwise) */
  p = strstr(dpath, "/data/v9.");
  if (!p || p[9] < '0' || p[9] > '2' || (p[10] != '/' && p[10] != '\0'))
    return odata_error_set(e, 404, ODATA_CODE_SEGMENT,
                           "Resource not found for the segment '%s'; reads are served under "
                           "/api/data/v9.2/",
                           dpath);
  version_len = (size_t)(p + 10 - dpath); /* "<prefix>/data/v9.N" */
  if (p[10] == '\0')
    return odata_error_set(e, 501, ODATA_CODE_SYNTAX,
                           "The service document is not served by this replica");
  set = p + 11;

  if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
    return odata_error_set(e, 405, ODATA_CODE_SYNTAX,
                           "The requested resource does not support http method '%s'; the "
                           "replica is read-only",
                           method ? method : "");

  open = strchr(set, '(');
  if (!open) {
    if (!is_ident(set, strlen(set)))
      return odata_error_set(e, 404, ODATA_CODE_SEGMENT, "Resource not found for the segment '%s'.",
                             set);
    out->kind = ODATA_LIST;
    out->entity_set = arena_strndup(a, set, strlen(set));
    out->query = query ? arena_strndup(a, query, strlen(query)) : NULL;
    if (!out->entity_set || (query && !out->query))
      return nomem(e);
    APP_RETURN_IF_FAILED(parse_query(a, query, out, e));
    if (out->expand)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "The query option '$expand' is served on a record (%s(<guid>)), not "
                             "on a list",
                             set);
    if (!out->filter)
      return odata_error_set(e, 501, ODATA_CODE_SYNTAX,
                             "Listing the entity set '%s' needs a $filter on an indexed column "
                             "(e.g. %s?$filter=<column> eq <value>); this replica never scans "
                             "the whole store",
                             set, set);
    APP_RETURN_IF_FAILED(parse_prefer(a, prefer, out, e));
    goto base;
  }
  setlen = (size_t)(open - set);
  if (!is_ident(set, setlen))
    return odata_error_set(e, 404, ODATA_CODE_SEGMENT, "Resource not found for the segment '%.*s'.",
                           (int)setlen, set);
  if (!memchr(open + 1, '=', strcspn(open + 1, ")"))) {
    close = strchr(open, ')');
    if (!close)
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX, "Bad Request - Error in query syntax.");
    if (!odata_is_guid(open + 1, (size_t)(close - open - 1)))
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Bad Request - Error in query syntax: '%.*s' is not a GUID",
                             (int)(close - open - 1 > 80 ? 80 : close - open - 1), open + 1);
    out->id = lower_dup(a, open + 1, 36);
    if (!out->id)
      return nomem(e);
  } else {
    APP_RETURN_IF_FAILED(parse_altkey(a, open + 1, out, &close, e));
  }
  out->entity_set = arena_strndup(a, set, setlen);
  if (!out->entity_set)
    return nomem(e);
  rest = close + 1;
  if (*rest == '\0') {
    out->kind = ODATA_RECORD;
  } else if (*rest == '/' && is_ident(rest + 1, strlen(rest + 1))) {
    out->kind = ODATA_RELATED;
    out->navigation = arena_strndup(a, rest + 1, strlen(rest + 1));
    if (!out->navigation)
      return nomem(e);
  } else {
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "Bad Request - the segment '%s' after the key is not supported", rest);
  }

  APP_RETURN_IF_FAILED(parse_query(a, query, out, e));
  if (out->expand && out->kind != ODATA_RECORD)
    return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                           "The query option '$expand' is served on a record (%s(<guid>)), not on "
                           "'%s'",
                           out->entity_set, out->navigation);
  APP_RETURN_IF_FAILED(parse_prefer(a, prefer, out, e));
  if (if_none_match && *if_none_match) {
    out->if_none_match = arena_strndup(a, if_none_match, strlen(if_none_match));
    if (!out->if_none_match)
      return nomem(e);
  }
base : {
  const char *b = base_url ? base_url : "";
  size_t blen = strlen(b);
  while (blen && b[blen - 1] == '/')
    blen--;
  base = arena_alloc(a, blen + version_len + 2);
  if (!base)
    return nomem(e);
  memcpy(base, b, blen);
  memcpy(base + blen, dpath, version_len);
  base[blen + version_len] = '/';
  base[blen + version_len + 1] = '\0';
  out->base_url = base;
}
  return APP_OK;
}

bool odata_annotation_wanted(const struct odata_request *req, const char *name)
{
  return docjson_annotation_included(&req->annotations, name);
}

bool odata_etag_matches(const struct odata_request *req, const char *version_text)
{
  const char *p = req->if_none_match;
  size_t vlen = strlen(version_text);
  if (!p)
    return false;
  while (*p) {
    const char *q;
    while (*p == ' ' || *p == ',')
      p++;
    if (*p == '*')
      return true;
    if (!strncmp(p, "W/", 2))
      p += 2;
    if (*p == '"') {
      q = strchr(p + 1, '"');
      if (!q)
        return false;
      if ((size_t)(q - p - 1) == vlen && !memcmp(p + 1, version_text, vlen))
        return true;
      p = q + 1;
    } else {
      q = p;
      while (*q && *q != ',')
        q++;
      if ((size_t)(q - p) == vlen && !memcmp(p, version_text, vlen))
        return true;
      p = q;
    }
  }
  return false;
}

static bool selected(const struct odata_request *req, const char *name, const char *key_name)
{
  size_t i;
  if (!req->select)
    return true;
  if (key_name && !strcmp(name, key_name))
    return true;
  for (i = 0; i < req->nselect; i++)
    if (!strcmp(req->select[i], name))
      return true;
  return false;
}

static enum app_result put_member(struct buf *out, bool *first, const char *name,
                                  const char *suffix_sep, const char *suffix)
{
  size_t nl = strlen(name);
  if (!*first)
    APP_RETURN_IF_FAILED(buf_append_char(out, ','));
  *first = false;
  if (!suffix) {
    APP_RETURN_IF_FAILED(buf_append_json_str(out, name, nl));
    return buf_append_char(out, ':');
  }
  {
    struct buf tmp;
    enum app_result r;
    buf_init(&tmp, 0);
    r = buf_append(&tmp, name, nl);
    if (r == APP_OK)
      r = buf_append_str(&tmp, suffix_sep);
    if (r == APP_OK)
      r = buf_append_str(&tmp, suffix);
    if (r == APP_OK)
      r = buf_append_json_str(out, tmp.data, tmp.len);
    buf_cleanup(&tmp);
    APP_RETURN_IF_FAILED(r);
    return buf_append_char(out, ':');
  }
}

/* "(a,b,nav(c,d))" after the entity set in @odata.context: $select and
 * the $expand items with their nested $select */
static enum app_result put_select_list(const struct odata_request *req, struct buf *ctx)
{
  enum app_result r = APP_OK;
  size_t i, k;
  bool first = true;
  if (!req->select && !req->expand)
    return APP_OK;
  r = buf_append_char(ctx, '(');
  for (i = 0; r == APP_OK && req->select && i < req->nselect; i++, first = false) {
    if (!first)
      r = buf_append_char(ctx, ',');
    if (r == APP_OK)
      r = buf_append_str(ctx, req->select[i]);
  }
  for (i = 0; r == APP_OK && req->expand && i < req->nexpand; i++, first = false) {
    const struct odata_expand *x = &req->expand[i];
    if (!first)
      r = buf_append_char(ctx, ',');
    if (r == APP_OK)
      r = buf_append_str(ctx, x->name);
    if (r == APP_OK)
      r = buf_append_char(ctx, '(');
    for (k = 0; r == APP_OK && x->select && k < x->nselect; k++) {
      if (k)
        r = buf_append_char(ctx, ',');
      if (r == APP_OK)
        r = buf_append_str(ctx, x->select[k]);
    }
    if (r == APP_OK)
      r = buf_append_char(ctx, ')');
  }
  if (r == APP_OK)
    r = buf_append_char(ctx, ')');
  return r;
}

enum app_result odata_render_record(const struct odata_request *req, const char *entity_set,
                                    const char *key_name, const char *id, const char *version_text,
                                    const struct odata_prop *props, size_t nprops,
                                    bool with_context, struct buf *out)
{
  APP_RETURN_IF_FAILED(odata_render_record_open(req, entity_set, key_name, id, version_text, props,
                                                nprops, with_context, out));
  return buf_append_char(out, '}');
}

enum app_result odata_render_expanded(const struct odata_request *req, const char *name,
                                      const char *key_name, const char *id,
                                      const char *version_text, const struct odata_prop *props,
                                      size_t nprops, struct buf *out)
{
  APP_RETURN_IF_FAILED(buf_append_char(out, ','));
  APP_RETURN_IF_FAILED(buf_append_json_str(out, name, strlen(name)));
  APP_RETURN_IF_FAILED(buf_append_char(out, ':'));
  if (!id)
    return buf_append_str(out, "null");
  return odata_render_record(req, NULL, key_name, id, version_text, props, nprops, false, out);
}

enum app_result odata_render_record_open(const struct odata_request *req, const char *entity_set,
                                         const char *key_name, const char *id,
                                         const char *version_text, const struct odata_prop *props,
                                         size_t nprops, bool with_context, struct buf *out)
{
  size_t i, k;
  bool first = true, key_seen = false;

  APP_RETURN_IF_FAILED(buf_append_char(out, '{'));
  if (with_context) {
    struct buf ctx;
    enum app_result r;
    buf_init(&ctx, 0);
    r = buf_printf(&ctx, "%s$metadata#%s", req->base_url ? req->base_url : "", entity_set);
    if (r == APP_OK)
      r = put_select_list(req, &ctx);
    if (r == APP_OK)
      r = buf_append_str(&ctx, "/$entity");
    if (r == APP_OK)
      r = put_member(out, &first, "@odata.context", NULL, NULL);
    if (r == APP_OK)
      r = buf_append_json_str(out, ctx.data, ctx.len);
    buf_cleanup(&ctx);
    APP_RETURN_IF_FAILED(r);
  }
  APP_RETURN_IF_FAILED(put_member(out, &first, "@odata.etag", NULL, NULL));
  APP_RETURN_IF_FAILED(buf_printf(out, "\"W/\\\"%s\\\"\"", version_text));

  for (i = 0; i < nprops; i++) {
    const struct odata_prop *p = &props[i];
    if (!selected(req, p->name, key_name))
      continue;
    if (key_name && !strcmp(p->name, key_name))
      key_seen = true;
    for (k = 0; k < p->nann; k++) {
      if (!odata_annotation_wanted(req, p->ann[k].name))
        continue;
      APP_RETURN_IF_FAILED(put_member(out, &first, p->name, "@", p->ann[k].name));
      APP_RETURN_IF_FAILED(buf_append(out, p->ann[k].json, p->ann[k].json_len));
    }
    APP_RETURN_IF_FAILED(put_member(out, &first, p->name, NULL, NULL));
    APP_RETURN_IF_FAILED(buf_append(out, p->json, p->json_len));
  }
  /* selected columns the record has no value for are null, as in Dataverse */
  for (i = 0; req->select && i < req->nselect; i++) {
    bool have = false;
    for (k = 0; k < nprops && !have; k++)
      have = !strcmp(props[k].name, req->select[i]);
    for (k = 0; k < i && !have; k++)
      have = !strcmp(req->select[k], req->select[i]);
    if (have || (key_name && !strcmp(req->select[i], key_name)))
      continue;
    APP_RETURN_IF_FAILED(put_member(out, &first, req->select[i], NULL, NULL));
    APP_RETURN_IF_FAILED(buf_append_str(out, "null"));
  }
  if (key_name && !key_seen && id) {
    APP_RETURN_IF_FAILED(put_member(out, &first, key_name, NULL, NULL));
    APP_RETURN_IF_FAILED(buf_append_json_str(out, id, strlen(id)));
  }
  return APP_OK;
}

/* "<base>$metadata#<tail>" as a JSON string member value */
static enum app_result put_context(const struct odata_request *req, struct buf *out,
                                   const char *fmt, ...) APP_PRINTF(3, 4);
static enum app_result put_context(const struct odata_request *req, struct buf *out,
                                   const char *fmt, ...)
{
  struct buf ctx;
  enum app_result r;
  va_list ap;
  buf_init(&ctx, 0);
  r = buf_printf(&ctx, "%s$metadata#", req->base_url ? req->base_url : "");
  if (r == APP_OK) {
    char tail[512];
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    r = n < 0 || (size_t)n >= sizeof tail ? APP_ERR_LIMIT : buf_append(&ctx, tail, (size_t)n);
  }
  if (r == APP_OK)
    r = buf_append_json_str(out, ctx.data, ctx.len);
  buf_cleanup(&ctx);
  return r;
}

enum app_result odata_render_property(const struct odata_request *req, const char *entity_set,
                                      const char *id, const char *name, const char *json,
                                      size_t json_len, struct buf *out)
{
  APP_RETURN_IF_FAILED(buf_append_str(out, "{\"@odata.context\":"));
  APP_RETURN_IF_FAILED(put_context(req, out, "%s(%s)/%s", entity_set, id, name));
  APP_RETURN_IF_FAILED(buf_append_str(out, ",\"value\":"));
  APP_RETURN_IF_FAILED(buf_append(out, json, json_len));
  return buf_append_char(out, '}');
}

enum app_result odata_render_list_begin(const struct odata_request *req,
                                        const char *item_entity_set, struct buf *out)
{
  APP_RETURN_IF_FAILED(buf_append_str(out, "{\"@odata.context\":"));
  {
    struct buf ctx;
    enum app_result r;
    buf_init(&ctx, 0);
    r = buf_printf(&ctx, "%s$metadata#%s", req->base_url ? req->base_url : "", item_entity_set);
    if (r == APP_OK && req->select) {
      size_t i;
      r = buf_append_char(&ctx, '(');
      for (i = 0; r == APP_OK && i < req->nselect; i++) {
        if (i)
          r = buf_append_char(&ctx, ',');
        if (r == APP_OK)
          r = buf_append_str(&ctx, req->select[i]);
      }
      if (r == APP_OK)
        r = buf_append_char(&ctx, ')');
    }
    if (r == APP_OK)
      r = buf_append_json_str(out, ctx.data, ctx.len);
    buf_cleanup(&ctx);
    APP_RETURN_IF_FAILED(r);
  }
  return buf_append_str(out, ",\"value\":[");
}

enum app_result odata_render_list_end(struct buf *out)
{
  return buf_append_str(out, "]}");
}

enum app_result odata_render_error(const struct odata_error *e, struct buf *out)
{
  APP_RETURN_IF_FAILED(buf_append_str(out, "{\"error\":{\"code\":"));
  APP_RETURN_IF_FAILED(buf_append_json_str(out, e->code ? e->code : ODATA_CODE_SYNTAX,
                                           strlen(e->code ? e->code : ODATA_CODE_SYNTAX)));
  APP_RETURN_IF_FAILED(buf_append_str(out, ",\"message\":"));
  APP_RETURN_IF_FAILED(buf_append_json_str(out, e->message, strlen(e->message)));
  if (e->correlation_id[0]) {
    APP_RETURN_IF_FAILED(buf_append_str(out, ",\"correlationId\":"));
    APP_RETURN_IF_FAILED(buf_append_json_str(out, e->correlation_id, strlen(e->correlation_id)));
  }
  return buf_append_str(out, "}}");
}

enum app_result odata_render_list_open(const struct odata_request *req, const char *entity_set,
                                       long count, struct buf *out)
{
  struct buf ctx;
  enum app_result r;
  APP_RETURN_IF_FAILED(buf_append_str(out, "{\"@odata.context\":"));
  buf_init(&ctx, 0);
  r = buf_printf(&ctx, "%s$metadata#%s", req->base_url ? req->base_url : "", entity_set);
  if (r == APP_OK)
    r = put_select_list(req, &ctx);
  if (r == APP_OK)
    r = buf_append_json_str(out, ctx.data, ctx.len);
  buf_cleanup(&ctx);
  APP_RETURN_IF_FAILED(r);
  if (count >= 0)
    APP_RETURN_IF_FAILED(buf_printf(out, ",\"@odata.count\":%ld", count));
  return buf_append_str(out, ",\"value\":[");
}

enum app_result odata_render_list_close(const struct odata_request *req, const char *entity_set,
                                        const char *next_token, struct buf *out)
{
  struct buf link;
  enum app_result r = APP_OK;
  const char *p = req->query;
  bool any = false;
  if (!next_token)
    return buf_append_str(out, "]}");
  buf_init(&link, 0);
  r = buf_printf(&link, "%s%s?", req->base_url ? req->base_url : "", entity_set);
  while (r == APP_OK && p && *p) {
    const char *amp = strchr(p, '&');
    size_t n = amp ? (size_t)(amp - p) : strlen(p);
    if (n && !(n >= 10 && !strncmp(p, "$skiptoken", 10)) &&
        !(n >= 12 && !strncmp(p, "%24skiptoken", 12))) {
      if (any)
        r = buf_append_char(&link, '&');
      if (r == APP_OK)
        r = buf_append(&link, p, n);
      any = true;
    }
    p = amp ? amp + 1 : NULL;
  }
  if (r == APP_OK)
    r = buf_printf(&link, "%s$skiptoken=%s", any ? "&" : "", next_token);
  if (r == APP_OK)
    r = buf_append_str(out, "],\"@odata.nextLink\":");
  if (r == APP_OK)
    r = buf_append_json_str(out, link.data, link.len);
  buf_cleanup(&link);
  APP_RETURN_IF_FAILED(r);
  return buf_append_char(out, '}');
}

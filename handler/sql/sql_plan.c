/* sql_plan.c - group a batch by table and collapse it per key. */
#include "sql/sql_plan.h"

#include "common/json.h"

#include <stdlib.h>
#include <string.h>

#define VERSION_SUFFIX "__v"

const char *sql_plan_table_of(const struct doc *d)
{
  return d->sql_table && *d->sql_table ? d->sql_table : d->table;
}

/* A column-name index for one group: open addressing over cols[]. Wide
 * full-row documents (hundreds of columns, a thousand documents) would make
 * a linear search the hot spot of planning. */
struct col_index {
  size_t *slots; /* index + 1 into cols; 0 = empty */
  size_t nslots; /* power of two */
};

struct group_work {
  struct sql_group g;
  struct col_index idx;
  size_t cols_cap;
  unsigned char *typed; /* per column: its type came from a non-null value */
  size_t typed_cap;
  size_t *doc_ix; /* indices into docs of this group */
  size_t ndocs, docs_cap;
};

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

static void *arena_grow(struct arena *a, void *old, size_t old_n, size_t new_n, size_t elem)
{
  void *p = arena_alloc(a, new_n * elem);
  if (p && old_n)
    memcpy(p, old, old_n * elem);
  return p;
}

static enum app_result index_rebuild(struct arena *a, struct group_work *w, struct app_err *err)
{
  size_t n = 16, i;
  while (n < w->g.ncols * 2 + 2)
    n *= 2;
  w->idx.slots = arena_alloc(a, n * sizeof *w->idx.slots);
  if (!w->idx.slots)
    return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (column index)");
  memset(w->idx.slots, 0, n * sizeof *w->idx.slots);
  w->idx.nslots = n;
  for (i = 0; i < w->g.ncols; i++) {
    size_t s = (size_t)hash_str(w->g.cols[i].name) & (n - 1);
    while (w->idx.slots[s])
      s = (s + 1) & (n - 1);
    w->idx.slots[s] = i + 1;
  }
  return APP_OK;
}

/* Index of column name in the group, or (size_t)-1. */
static size_t col_find(const struct group_work *w, const char *name)
{
  size_t s;
  if (!w->idx.nslots)
    return (size_t)-1;
  s = (size_t)hash_str(name) & (w->idx.nslots - 1);
  while (w->idx.slots[s]) {
    size_t i = w->idx.slots[s] - 1;
    if (!strcmp(w->g.cols[i].name, name))
      return i;
    s = (s + 1) & (w->idx.nslots - 1);
  }
  return (size_t)-1;
}

static enum app_result col_add(struct arena *a, struct group_work *w, const char *name,
                               enum doc_type type, size_t *out_i, struct app_err *err)
{
  size_t i = col_find(w, name);
  if (i != (size_t)-1) {
    *out_i = i;
    return APP_OK;
  }
  if (w->g.ncols == w->cols_cap) {
    size_t cap = w->cols_cap ? w->cols_cap * 2 : 16;
    struct sql_column *c = arena_grow(a, w->g.cols, w->g.ncols, cap, sizeof *c);
    if (!c)
      return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (columns)");
    w->g.cols = c;
    w->cols_cap = cap;
  }
  w->g.cols[w->g.ncols].name = name;
  w->g.cols[w->g.ncols].type = type;
  *out_i = w->g.ncols++;
  if (w->g.ncols * 2 + 2 > w->idx.nslots)
    return index_rebuild(a, w, err);
  {
    size_t s = (size_t)hash_str(name) & (w->idx.nslots - 1);
    while (w->idx.slots[s])
      s = (s + 1) & (w->idx.nslots - 1);
    w->idx.slots[s] = *out_i + 1;
  }
  return APP_OK;
}

static bool is_digits(const char *s, size_t n)
{
  size_t i;
  if (!n)
    return false;
  for (i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

static bool is_guid(const char *s, size_t n)
{
  size_t i;
  if (n != 36)
    return false;
  for (i = 0; i < 36; i++) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

/* "YYYY-MM-DD" followed (DATETIME) by time characters. The database checks
 * the calendar; this only keeps non-dates out of the CAST. */
static bool is_date_shape(const char *s, size_t n, bool with_time)
{
  size_t i;
  if (n < 10 || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2) || s[7] != '-' ||
      !is_digits(s + 8, 2))
    return false;
  if (!with_time)
    return n == 10;
  for (i = 10; i < n; i++)
    if (!strchr("0123456789T:.+-Z ", s[i]))
      return false;
  return true;
}

/* The text given to CAST for a property, or an error naming what is wrong. */
static enum app_result cell_text(const struct doc_prop *p, const char **out_text, size_t *out_len,
                                 const char **out_why)
{
  const char *t = p->text;
  size_t n = p->text_len;
  *out_why = NULL;
  if (p->kind == DOC_NULL) {
    *out_text = NULL;
    *out_len = 0;
    return APP_OK;
  }
  if (p->kind == DOC_ARRAY || p->kind == DOC_OBJECT || p->type == DOC_T_JSON) {
    *out_text = p->json;
    *out_len = p->json_len;
    return p->json ? APP_OK : (*out_why = "has no JSON text", APP_ERR_INPUT);
  }
  if (!t) {
    *out_why = "has no text";
    return APP_ERR_INPUT;
  }
  switch (p->type) {
  case DOC_T_GUID:
    if (!is_guid(t, n))
      *out_why = "is not a GUID";
    break;
  case DOC_T_INT:
    if (!(is_digits(t, n) || (n > 1 && t[0] == '-' && is_digits(t + 1, n - 1))) || n > 20)
      *out_why = "is not a whole number";
    break;
  case DOC_T_DECIMAL:
    if (!json_is_number_lexeme(t, n))
      *out_why = "is not a number";
    break;
  case DOC_T_BOOL:
    if (!(n == 4 && !memcmp(t, "true", 4)) && !(n == 5 && !memcmp(t, "false", 5)))
      *out_why = "is not true or false";
    break;
  case DOC_T_DATETIME:
    if (!is_date_shape(t, n, true))
      *out_why = "is not an ISO 8601 date and time";
    break;
  case DOC_T_DATE:
    if (!is_date_shape(t, n, false))
      *out_why = "is not a YYYY-MM-DD date";
    break;
  case DOC_T_TEXT:
  case DOC_T_MULTI:
  case DOC_T_JSON: break;
  }
  if (*out_why)
    return APP_ERR_INPUT;
  *out_text = t;
  *out_len = n;
  return APP_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !memcmp(s + n - m, suffix, m);
}

/* The sink's own columns. Only these exact names are reserved: a lookup of
 * a solution whose publisher prefix is "cdc" is "_cdc_<name>_value" and is
 * a column like any other. */
static bool reserved_name(const char *name)
{
  static const char *const names[] = {
      "_cdc_version",        "_cdc_deleted",    "_cdc_deleted_version", "_cdc_full_version",
      "_cdc_reread_version", "_cdc_updated_at", "_cdc_deleted_at",      "_cdc_associated"};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i]))
      return true;
  return false;
}

static enum app_result check_name(const struct doc *d, size_t di, const char *name,
                                  size_t max_ident, struct app_err *err)
{
  const char *why = NULL;
  if (!name || !*name)
    why = "is empty";
  else if (reserved_name(name))
    why = "is the name of one of the sink's own _cdc_ columns";
  else if (ends_with(name, VERSION_SUFFIX))
    why = "ends with the reserved suffix " VERSION_SUFFIX;
  else if (strlen(name) + strlen(VERSION_SUFFIX) > max_ident)
    why = "is too long for a column name of this database (with its __v version column)";
  if (!why)
    return APP_OK;
  return app_err_set(err, APP_ERR_INPUT, "doc %zu (%s %s): property name '%.64s' %s", di,
                     d->table ? d->table : "?", d->id ? d->id : "?", name ? name : "", why);
}

static struct group_work *group_get(struct arena *a, struct group_work **ws, size_t *nws,
                                    size_t *cap, enum sql_group_kind kind, const char *table,
                                    const char *key, const char *source)
{
  size_t i;
  for (i = 0; i < *nws; i++) {
    struct sql_group *g = &(*ws)[i].g;
    if (g->kind == kind && !strcmp(g->table, table))
      return &(*ws)[i];
  }
  if (*nws == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    struct group_work *n = arena_grow(a, *ws, *nws, ncap, sizeof *n);
    if (!n)
      return NULL;
    *ws = n;
    *cap = ncap;
  }
  memset(&(*ws)[*nws], 0, sizeof **ws);
  (*ws)[*nws].g.kind = kind;
  (*ws)[*nws].g.table = table;
  (*ws)[*nws].g.key = key;
  (*ws)[*nws].g.source_table = source;
  return &(*ws)[(*nws)++];
}

static enum app_result doc_ix_add(struct arena *a, struct group_work *w, size_t di,
                                  struct app_err *err)
{
  if (w->ndocs == w->docs_cap) {
    size_t cap = w->docs_cap ? w->docs_cap * 2 : 64;
    size_t *n = arena_grow(a, w->doc_ix, w->ndocs, cap, sizeof *n);
    if (!n)
      return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (documents)");
    w->doc_ix = n;
    w->docs_cap = cap;
  }
  w->doc_ix[w->ndocs++] = di;
  return APP_OK;
}

/* qsort has no context argument in C11; sort pairs instead. */
struct sort_ent {
  const char *k1, *k2;
  const struct cdc_version *v;
  size_t di, sub;
};

static int sort_ent_cmp(const void *pa, const void *pb)
{
  const struct sort_ent *a = pa, *b = pb;
  int c = strcmp(a->k1, b->k1);
  if (!c && a->k2 && b->k2)
    c = strcmp(a->k2, b->k2);
  if (!c)
    c = cdc_version_cmp(a->v, b->v);
  if (!c)
    c = a->di < b->di ? -1 : a->di > b->di;
  return c;
}

static void vmax(char *dst, const char *v)
{
  if (strcmp(v, dst) > 0)
    memcpy(dst, v, CDC_VERSION_TEXT_LEN + 1);
}

static bool is_entity_op(enum cdc_op op)
{
  switch (op) {
  case CDC_OP_CREATE:
  case CDC_OP_UPDATE:
  case CDC_OP_DELETE:
  case CDC_OP_SETSTATE:
  case CDC_OP_ASSIGN:
  case CDC_OP_MERGE:
  case CDC_OP_UPSERT:
  case CDC_OP_RESTORE: return true;
  default: return false;
  }
}

static enum app_result build_entity(struct arena *a, struct group_work *w,
                                    const struct doc *const *docs, size_t max_ident,
                                    struct app_err *err)
{
  struct sql_group *g = &w->g;
  struct sort_ent *ents;
  size_t i, j, k;

  /* pass 1: validate, and the union of columns in first-seen order. A
   * column's type is that of its first non-null value (a null value's type
   * may be a mapper default); later conflicts keep the first type, which is
   * the one the table has. */
  for (i = 0; i < w->ndocs; i++) {
    const struct doc *d = docs[w->doc_ix[i]];
    if (d->needs_reread || d->op == CDC_OP_DELETE)
      continue;
    for (j = 0; j < d->nprops; j++) {
      const struct doc_prop *p = &d->props[j];
      const char *txt, *why;
      size_t len, ci = 0, before = g->ncols;
      if (p->name && !strcmp(p->name, g->key))
        continue; /* the key column is written from doc->id */
      APP_RETURN_IF_FAILED(check_name(d, w->doc_ix[i], p->name, max_ident, err));
      if (cell_text(p, &txt, &len, &why) != APP_OK)
        return app_err_set(err, APP_ERR_INPUT, "doc %zu (%s %s): property '%.64s' %s", w->doc_ix[i],
                           d->table, d->id, p->name, why);
      APP_RETURN_IF_FAILED(col_add(a, w, p->name, p->type, &ci, err));
      if (g->ncols > before) {
        if (w->g.ncols > w->typed_cap) {
          size_t cap = w->cols_cap;
          unsigned char *n = arena_grow(a, w->typed, w->typed_cap, cap, 1);
          if (!n)
            return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (columns)");
          memset(n + w->typed_cap, 0, cap - w->typed_cap);
          w->typed = n;
          w->typed_cap = cap;
        }
        w->typed[ci] = p->kind != DOC_NULL;
      } else if (!w->typed[ci] && p->kind != DOC_NULL) {
        g->cols[ci].type = p->type;
        w->typed[ci] = 1;
      }
    }
  }

  /* pass 2: sort by (id, version) and merge runs */
  ents = arena_alloc(a, (w->ndocs ? w->ndocs : 1) * sizeof *ents);
  g->rows = arena_alloc(a, (w->ndocs ? w->ndocs : 1) * sizeof *g->rows);
  if (!ents || !g->rows)
    return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (rows)");
  for (i = 0; i < w->ndocs; i++) {
    const struct doc *d = docs[w->doc_ix[i]];
    ents[i].k1 = d->id;
    ents[i].k2 = NULL;
    ents[i].v = &d->version;
    ents[i].di = w->doc_ix[i];
    ents[i].sub = 0;
  }
  qsort(ents, w->ndocs, sizeof *ents, sort_ent_cmp);

  for (i = 0; i < w->ndocs;) {
    struct sql_row *r = &g->rows[g->nrows++];
    memset(r, 0, sizeof *r);
    r->id = ents[i].k1;
    r->cells = arena_alloc(a, (g->ncols ? g->ncols : 1) * sizeof *r->cells);
    if (!r->cells)
      return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (cells)");
    memset(r->cells, 0, (g->ncols ? g->ncols : 1) * sizeof *r->cells);
    for (j = i; j < w->ndocs && !strcmp(ents[j].k1, r->id); j++) {
      const struct doc *d = docs[ents[j].di];
      r->ndocs++;
      vmax(r->version, d->version_text);
      if (d->op == CDC_OP_DELETE) {
        /* a Delete is a full row without columns: every column is NULL as
         * of it, so a later re-create does not bring back the values the
         * record had before it was deleted (as in Redis) */
        vmax(r->deleted_version, d->version_text);
        vmax(r->full_version, d->version_text);
        continue;
      }
      if (d->needs_reread) {
        vmax(r->reread_version, d->version_text);
        continue;
      }
      if (d->full_row)
        vmax(r->full_version, d->version_text);
      /* uncertain order (a nested change without a row version): applied,
       * and the row is marked for a re-read */
      if (d->order_uncertain)
        vmax(r->reread_version, d->version_text);
      for (k = 0; k < d->nprops; k++) {
        const struct doc_prop *p = &d->props[k];
        const char *why;
        size_t ci;
        struct sql_cell *c;
        if (!strcmp(p->name, g->key))
          continue;
        ci = col_find(w, p->name);
        APP_ASSERT(ci != (size_t)-1);
        c = &r->cells[ci];
        /* two changes of this batch wrote the column and differ only in the
         * OperationId hash: the hash picked the winner, so the row is
         * marked for a re-read (docs/versioning.md "Ties") */
        if (c->version && cdc_version_text_tied(d->version_text, c->version))
          vmax(r->reread_version, d->version_text);
        /* ascending versions: a later entry is newer or the same change */
        if (!c->version || cdc_version_text_order(d->version_text, c->version) >= 0) {
          if (cell_text(p, &c->text, &c->len, &why) != APP_OK)
            return app_err_set(err, APP_ERR_INPUT, "property '%s' %s", p->name, why);
          c->version = d->version_text;
          c->prop = p;
        }
      }
    }
    /* A write no newer than a Delete of the batch never lands. */
    if (r->deleted_version[0]) {
      for (k = 0; k < g->ncols; k++)
        if (r->cells[k].version && strcmp(r->cells[k].version, r->deleted_version) <= 0)
          r->cells[k].version = NULL, r->cells[k].text = NULL, r->cells[k].prop = NULL;
      g->has_deletes = true;
    }
    if (r->full_version[0])
      g->has_full_rows = true;
    i = j;
  }
  return APP_OK;
}

static int ref_cmp(const char *t1, const char *i1, const char *t2, const char *i2)
{
  int c = strcmp(t1, t2);
  return c ? c : strcmp(i1, i2);
}

static enum app_result build_links(struct arena *a, struct group_work *w,
                                   const struct doc *const *docs, struct app_err *err)
{
  struct sql_group *g = &w->g;
  struct sort_ent *ents;
  size_t n = 0, i, j;
  size_t total = 0;

  for (i = 0; i < w->ndocs; i++)
    total += docs[w->doc_ix[i]]->nrelated;
  ents = arena_alloc(a, (total ? total : 1) * sizeof *ents);
  g->links = arena_alloc(a, (total ? total : 1) * sizeof *g->links);
  if (!ents || !g->links)
    return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (links)");
  for (i = 0; i < w->ndocs; i++) {
    const struct doc *d = docs[w->doc_ix[i]];
    for (j = 0; j < d->nrelated; j++) {
      const struct doc_related *rel = &d->related[j];
      struct sql_link *l = &g->links[n];
      if (!rel->table || !*rel->table || !rel->id || !is_guid(rel->id, strlen(rel->id)))
        return app_err_set(err, APP_ERR_INPUT,
                           "doc %zu (%s %s): related record %zu of '%s' has no table or no "
                           "GUID id",
                           w->doc_ix[i], d->table, d->id, j, d->relationship);
      memset(l, 0, sizeof *l);
      if (ref_cmp(d->table, d->id, rel->table, rel->id) <= 0) {
        l->table1 = d->table, l->id1 = d->id, l->table2 = rel->table, l->id2 = rel->id;
      } else {
        l->table1 = rel->table, l->id1 = rel->id, l->table2 = d->table, l->id2 = d->id;
      }
      l->associated = d->op == CDC_OP_ASSOCIATE;
      memcpy(l->version, d->version_text, sizeof l->version);
      ents[n].k1 = l->id1;
      ents[n].k2 = l->id2;
      ents[n].v = &d->version;
      ents[n].di = w->doc_ix[i];
      ents[n].sub = n;
      n++;
    }
  }
  qsort(ents, n, sizeof *ents, sort_ent_cmp);
  {
    /* collapse runs of one pair: the newest (last) entry wins */
    struct sql_link *out = arena_alloc(a, (n ? n : 1) * sizeof *out);
    size_t m = 0;
    if (!out)
      return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (links)");
    for (i = 0; i < n;) {
      size_t cnt = 0;
      for (j = i; j < n && !strcmp(ents[j].k1, ents[i].k1) && !strcmp(ents[j].k2, ents[i].k2); j++)
        cnt++;
      out[m] = g->links[ents[j - 1].sub];
      out[m].ndocs = cnt;
      m++;
      i = j;
    }
    g->links = out;
    g->nlinks = m;
  }
  return APP_OK;
}

static int group_cmp(const void *pa, const void *pb)
{
  const struct group_work *a = pa, *b = pb;
  int c = strcmp(a->g.table, b->g.table);
  return c ? c : (int)a->g.kind - (int)b->g.kind;
}

/* Link tables live in the schema of the record's table. */
static const char *link_table(struct arena *a, const struct doc *d)
{
  const char *t = sql_plan_table_of(d), *dot = strrchr(t, '.');
  size_t sl = dot ? (size_t)(dot - t) + 1 : 0, rl = strlen(d->relationship);
  char *s = arena_alloc(a, sl + rl + 1);
  if (!s)
    return NULL;
  memcpy(s, t, sl);
  memcpy(s + sl, d->relationship, rl + 1);
  return s;
}

/* "[schema.]name", each part non-empty and at most max_ident bytes (the
 * dialect layer also checks room for its suffixes). */
static bool table_name_ok(const char *t, size_t max_ident)
{
  const char *dot = strchr(t, '.');
  if (!*t || (dot && strchr(dot + 1, '.')))
    return false;
  if (dot)
    return dot != t && dot[1] && (size_t)(dot - t) <= max_ident && strlen(dot + 1) <= max_ident;
  return strlen(t) <= max_ident;
}

enum app_result sql_plan_build(struct arena *a, const struct doc *const *docs, size_t n,
                               size_t max_ident, struct sql_plan *out_plan, struct app_err *err)
{
  struct group_work *ws = NULL;
  size_t nws = 0, cap = 0, i;

  memset(out_plan, 0, sizeof *out_plan);
  for (i = 0; i < n; i++) {
    const struct doc *d = docs[i];
    struct group_work *w;
    if (!d->table || !*d->table || !d->id || !is_guid(d->id, strlen(d->id)))
      return app_err_set(err, APP_ERR_INPUT, "doc %zu: no table or no GUID id", i);
    if (!table_name_ok(sql_plan_table_of(d), max_ident))
      return app_err_set(err, APP_ERR_INPUT,
                         "doc %zu (%s %s): SQL table '%.80s' is not [schema.]name with parts of "
                         "at most %zu bytes",
                         i, d->table, d->id, sql_plan_table_of(d), max_ident);
    if (d->op == CDC_OP_ASSOCIATE || d->op == CDC_OP_DISASSOCIATE) {
      const char *lt;
      if (!d->relationship || !*d->relationship)
        return app_err_set(err, APP_ERR_INPUT, "doc %zu (%s %s): %s without a relationship", i,
                           d->table, d->id, cdc_op_name(d->op));
      if (strlen(d->relationship) > max_ident)
        return app_err_set(err, APP_ERR_INPUT,
                           "doc %zu (%s %s): relationship name '%.128s' (%zu bytes) is too long "
                           "for a table name of this database (at most %zu bytes)",
                           i, d->table, d->id, d->relationship, strlen(d->relationship), max_ident);
      lt = link_table(a, d);
      if (!lt)
        return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached");
      w = group_get(a, &ws, &nws, &cap, SQL_GROUP_LINK, lt, NULL, d->relationship);
    } else if (is_entity_op(d->op)) {
      if (!d->key_name || !*d->key_name)
        return app_err_set(err, APP_ERR_INPUT, "doc %zu (%s %s): no key column name", i, d->table,
                           d->id);
      APP_RETURN_IF_FAILED(check_name(d, i, d->key_name, max_ident, err));
      w = group_get(a, &ws, &nws, &cap, SQL_GROUP_ENTITY, sql_plan_table_of(d), d->key_name,
                    d->table);
      if (w && strcmp(w->g.key, d->key_name))
        return app_err_set(err, APP_ERR_INPUT,
                           "doc %zu (%s %s): key column '%s' differs from '%s' used by another "
                           "doc for table %s",
                           i, d->table, d->id, d->key_name, w->g.key, w->g.table);
    } else {
      out_plan->nskipped++;
      continue;
    }
    if (!w)
      return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (groups)");
    APP_RETURN_IF_FAILED(doc_ix_add(a, w, i, err));
    out_plan->ndocs++;
  }
  for (i = 0; i < nws; i++) {
    if (ws[i].g.kind == SQL_GROUP_ENTITY)
      APP_RETURN_IF_FAILED(build_entity(a, &ws[i], docs, max_ident, err));
    else
      APP_RETURN_IF_FAILED(build_links(a, &ws[i], docs, err));
  }
  if (nws)
    qsort(ws, nws, sizeof *ws, group_cmp);
  out_plan->groups = arena_alloc(a, (nws ? nws : 1) * sizeof *out_plan->groups);
  if (!out_plan->groups)
    return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached");
  for (i = 0; i < nws; i++)
    out_plan->groups[i] = ws[i].g;
  out_plan->ngroups = nws;
  return APP_OK;
}

enum app_result sql_plan_fill_full_rows(struct arena *a, struct sql_group *g,
                                        const struct sql_column *known, size_t nknown,
                                        struct app_err *err)
{
  size_t i, j, old = g->ncols, added = 0;
  struct sql_column *cols;

  if (!g->has_full_rows || g->kind != SQL_GROUP_ENTITY)
    return APP_OK;
  for (i = 0; i < nknown; i++) {
    bool have = false;
    for (j = 0; j < old && !have; j++)
      have = !strcmp(g->cols[j].name, known[i].name);
    if (!have)
      added++;
  }
  if (added) {
    cols = arena_alloc(a, (old + added) * sizeof *cols);
    if (!cols)
      return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (columns)");
    if (old)
      memcpy(cols, g->cols, old * sizeof *cols);
    for (i = 0; i < nknown; i++) {
      bool have = false;
      for (j = 0; j < old && !have; j++)
        have = !strcmp(g->cols[j].name, known[i].name);
      if (!have)
        cols[g->ncols++] = known[i];
    }
    g->cols = cols;
    for (i = 0; i < g->nrows; i++) {
      struct sql_cell *c = arena_alloc(a, g->ncols * sizeof *c);
      if (!c)
        return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached (cells)");
      if (old)
        memcpy(c, g->rows[i].cells, old * sizeof *c);
      memset(c + old, 0, (g->ncols - old) * sizeof *c);
      g->rows[i].cells = c;
    }
  }
  /* every column a full-row change did not write is NULL as of it, unless
   * a change of the batch newer than the full row by newer() of
   * docs/versioning.md wrote it (row versions first: an Update stamped
   * before a Restore but with a higher versionnumber keeps its value, as in
   * the Lua script, which drops only what the full row is newer than) */
  for (i = 0; i < g->nrows; i++) {
    struct sql_row *r = &g->rows[i];
    if (!r->full_version[0] || strcmp(r->full_version, r->deleted_version) < 0)
      continue;
    for (j = 0; j < g->ncols; j++) {
      struct sql_cell *c = &r->cells[j];
      if (!c->version || cdc_version_text_order(c->version, r->full_version) < 0) {
        c->version = r->full_version;
        c->text = NULL;
        c->len = 0;
        c->prop = NULL;
      }
    }
  }
  return APP_OK;
}

/* sql_bindings.c - output-binding rows from the same plan direct mode uses. */
#include "sql/sql_bindings.h"

#include "common/arena.h"
#include "sql/sql_plan.h"

#include <string.h>

#define BINDINGS_ARENA_MAX ((size_t)1 << 30)
/* SQL Server's identifier limit: the binding's table is SQL Server. */
#define TSQL_MAX_IDENT 128

static enum app_result value(const struct sql_column *col, const struct sql_cell *c, struct buf *b)
{
  const struct doc_prop *p = c->prop;
  if (!c->version || !p || p->kind == DOC_NULL)
    return buf_append_str(b, "null");
  if (p->kind == DOC_ARRAY || p->kind == DOC_OBJECT || col->type == DOC_T_JSON)
    return buf_append_json_str(b, p->json, p->json_len);
  if (p->kind == DOC_BOOL || (p->kind == DOC_NUMBER && col->type != DOC_T_DECIMAL))
    return buf_append(b, p->json, p->json_len);
  /* strings, and decimals as strings: Newtonsoft would make them doubles */
  return buf_append_json_str(b, c->text, c->len);
}

static enum app_result rows(const struct sql_group *g, struct buf *b)
{
  size_t i, j, emitted = 0;
  APP_RETURN_IF_FAILED(buf_append_char(b, '['));
  for (i = 0; i < g->nrows; i++) {
    const struct sql_row *r = &g->rows[i];
    bool deleted = r->deleted_version[0] && strcmp(r->deleted_version, r->version) >= 0;
    bool any = deleted;
    for (j = 0; j < g->ncols && !any; j++)
      any = r->cells[j].version != NULL;
    if (!any)
      continue; /* truncated change or nothing mapped: no row to send */
    APP_RETURN_IF_FAILED(buf_append_str(b, emitted++ ? ",{" : "{"));
    APP_RETURN_IF_FAILED(buf_append_json_str(b, g->key, strlen(g->key)));
    APP_RETURN_IF_FAILED(buf_append_char(b, ':'));
    APP_RETURN_IF_FAILED(buf_append_json_str(b, r->id, strlen(r->id)));
    for (j = 0; j < g->ncols; j++) {
      APP_RETURN_IF_FAILED(buf_append_char(b, ','));
      APP_RETURN_IF_FAILED(buf_append_json_str(b, g->cols[j].name, strlen(g->cols[j].name)));
      APP_RETURN_IF_FAILED(buf_append_char(b, ':'));
      if (deleted)
        APP_RETURN_IF_FAILED(buf_append_str(b, "null"));
      else
        APP_RETURN_IF_FAILED(value(&g->cols[j], &r->cells[j], b));
    }
    APP_RETURN_IF_FAILED(buf_printf(b, ",\"_cdc_version\":\"%s\",\"_cdc_deleted\":%s}", r->version,
                                    deleted ? "true" : "false"));
  }
  return buf_append_char(b, ']');
}

static enum app_result build(const struct doc *const *docs, size_t n, const char *table,
                             struct buf *out_json, struct app_err *err)
{
  struct arena a;
  const struct doc **sel = NULL;
  struct sql_plan plan;
  const struct sql_group *g = NULL;
  size_t i, m = 0, before = out_json->len;
  enum app_result r;

  arena_init(&a, BINDINGS_ARENA_MAX);
  sel = arena_alloc(&a, (n ? n : 1) * sizeof *sel);
  if (!sel) {
    r = app_err_set(err, APP_ERR_LIMIT, "sql bindings: working memory cap reached");
    goto out;
  }
  for (i = 0; i < n; i++)
    if (!table || (docs[i]->table && !strcmp(sql_plan_table_of(docs[i]), table)))
      sel[m++] = docs[i];
  r = sql_plan_build(&a, sel, m, TSQL_MAX_IDENT, &plan, err);
  if (r != APP_OK)
    goto out;
  for (i = 0; i < plan.ngroups; i++) {
    if (plan.groups[i].kind != SQL_GROUP_ENTITY)
      continue; /* links: the binding has no way to write them */
    if (g) {
      r = app_err_set(err, APP_ERR_INPUT,
                      "sql bindings: the docs are for tables %s and %s, but one SQL output "
                      "binding writes one table",
                      g->table, plan.groups[i].table);
      goto out;
    }
    g = &plan.groups[i];
  }
  if (!g)
    r = buf_append_str(out_json, "[]");
  else
    r = rows(g, out_json);
  if (r != APP_OK) {
    out_json->len = before;
    if (out_json->data)
      out_json->data[before] = '\0';
    r = app_err_set(err, r, "sql bindings: rows exceed the output buffer");
  }
out:
  arena_cleanup(&a);
  return r;
}

enum app_result sql_bindings_rows(const struct doc *const *docs, size_t n, struct buf *out_json,
                                  struct app_err *err)
{
  return build(docs, n, NULL, out_json, err);
}

enum app_result sql_bindings_rows_for(const struct doc *const *docs, size_t n, const char *table,
                                      struct buf *out_json, struct app_err *err)
{
  return build(docs, n, table, out_json, err);
}

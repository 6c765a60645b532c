/* sql_dialect.c - statement text for T-SQL and PostgreSQL: one template per
 * statement and dialect (see "Statement templates" below). */
#include "sql/sql_dialect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ROWS_PER_STMT 1000
#define VSUF              "__v"
#define TOMB_SUF          "__tombstone"

/* The row-level columns every entity table has, in statement order. */
#define C_VERSION "_cdc_version"
#define C_DELETED "_cdc_deleted"
#define C_DELV    "_cdc_deleted_version"
#define C_FULLV   "_cdc_full_version"
#define C_REREADV "_cdc_reread_version"

const char *sql_dialect_name(enum sql_dialect d)
{
  switch (d) {
  case SQL_DIALECT_TSQL: return "tsql";
  case SQL_DIALECT_POSTGRES: return "postgres";
  case SQL_DIALECT_NONE: break;
  }
  return "none";
}

enum app_result sql_dialect_parse(const char *s, enum sql_dialect *out, struct app_err *err)
{
  static const struct {
    const char *name;
    enum sql_dialect d;
  } names[] = {{"auto", SQL_DIALECT_NONE},           {"tsql", SQL_DIALECT_TSQL},
               {"mssql", SQL_DIALECT_TSQL},          {"sqlserver", SQL_DIALECT_TSQL},
               {"azuresql", SQL_DIALECT_TSQL},       {"postgres", SQL_DIALECT_POSTGRES},
               {"postgresql", SQL_DIALECT_POSTGRES}, {"pg", SQL_DIALECT_POSTGRES}};
  size_t i;
  if (!s || !*s) {
    *out = SQL_DIALECT_NONE;
    return APP_OK;
  }
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!strcasecmp(s, names[i].name)) {
      *out = names[i].d;
      return APP_OK;
    }
  }
  return app_err_set(err, APP_ERR_CONFIG, "SQL dialect '%.40s' is not auto, tsql or postgres", s);
}

size_t sql_dialect_max_ident(enum sql_dialect d)
{
  return d == SQL_DIALECT_TSQL ? 128 : 63;
}

size_t sql_dialect_max_params(enum sql_dialect d)
{
  return d == SQL_DIALECT_TSQL ? 2000 : 30000;
}

const char *sql_dialect_type(enum sql_dialect d, enum doc_type t)
{
  bool ts = d == SQL_DIALECT_TSQL;
  switch (t) {
  case DOC_T_GUID: return ts ? "uniqueidentifier" : "uuid";
  case DOC_T_INT: return "bigint";
  case DOC_T_DECIMAL: return ts ? "decimal(38,10)" : "numeric";
  case DOC_T_BOOL: return ts ? "bit" : "boolean";
  case DOC_T_DATETIME: return ts ? "datetime2(7)" : "timestamptz";
  case DOC_T_DATE: return "date";
  case DOC_T_MULTI: return ts ? "nvarchar(4000)" : "text";
  case DOC_T_JSON: return ts ? "nvarchar(max)" : "jsonb";
  case DOC_T_TEXT: break;
  }
  return ts ? "nvarchar(max)" : "text";
}

enum doc_type sql_dialect_type_from_db(const char *t)
{
  if (!t)
    return DOC_T_TEXT;
  if (!strcasecmp(t, "uuid") || !strcasecmp(t, "uniqueidentifier"))
    return DOC_T_GUID;
  if (!strcasecmp(t, "bigint") || !strcasecmp(t, "integer") || !strcasecmp(t, "int") ||
      !strcasecmp(t, "smallint"))
    return DOC_T_INT;
  if (!strcasecmp(t, "numeric") || !strcasecmp(t, "decimal") || !strcasecmp(t, "money") ||
      !strcasecmp(t, "float") || !strcasecmp(t, "double precision") || !strcasecmp(t, "real"))
    return DOC_T_DECIMAL;
  if (!strcasecmp(t, "boolean") || !strcasecmp(t, "bit"))
    return DOC_T_BOOL;
  if (!strncasecmp(t, "timestamp", 9) || !strncasecmp(t, "datetime", 8))
    return DOC_T_DATETIME;
  if (!strcasecmp(t, "date"))
    return DOC_T_DATE;
  if (!strcasecmp(t, "jsonb") || !strcasecmp(t, "json"))
    return DOC_T_JSON;
  return DOC_T_TEXT;
}

const char *sql_dialect_version_type(enum sql_dialect d)
{
  /* Version texts are fixed-width digits: a binary collation compares them
   * exactly as numbers, whatever the database default collation is. */
  return d == SQL_DIALECT_TSQL ? "varchar(45) COLLATE Latin1_General_BIN2"
                               : "varchar(45) COLLATE \"C\"";
}

enum app_result sql_dialect_ident(enum sql_dialect d, const char *name, struct buf *out)
{
  const char *p;
  char close = d == SQL_DIALECT_TSQL ? ']' : '"';
  APP_RETURN_IF_FAILED(buf_append_char(out, d == SQL_DIALECT_TSQL ? '[' : '"'));
  for (p = name; *p; p++) {
    if (*p == close)
      APP_RETURN_IF_FAILED(buf_append_char(out, close));
    APP_RETURN_IF_FAILED(buf_append_char(out, *p));
  }
  return buf_append_char(out, close);
}

enum app_result sql_dialect_table(enum sql_dialect d, const char *table, const char *suffix,
                                  struct buf *out)
{
  const char *dot = strchr(table, '.');
  char part[300];
  if (dot) {
    size_t n = (size_t)(dot - table);
    if (n >= sizeof part)
      n = sizeof part - 1;
    memcpy(part, table, n);
    part[n] = '\0';
    APP_RETURN_IF_FAILED(sql_dialect_ident(d, part, out));
    APP_RETURN_IF_FAILED(buf_append_char(out, '.'));
    table = dot + 1;
  }
  snprintf(part, sizeof part, "%s%s", table, suffix ? suffix : "");
  return sql_dialect_ident(d, part, out);
}

enum app_result sql_dialect_literal(enum sql_dialect d, const char *s, size_t n, struct buf *out)
{
  size_t i;
  if (d == SQL_DIALECT_TSQL)
    APP_RETURN_IF_FAILED(buf_append_char(out, 'N'));
  APP_RETURN_IF_FAILED(buf_append_char(out, '\''));
  for (i = 0; i < n; i++) {
    if (s[i] == '\'')
      APP_RETURN_IF_FAILED(buf_append_char(out, '\''));
    APP_RETURN_IF_FAILED(buf_append_char(out, s[i]));
  }
  return buf_append_char(out, '\'');
}

enum app_result sql_dialect_table_literal(enum sql_dialect d, const char *table, const char *suffix,
                                          struct buf *out)
{
  struct buf q;
  enum app_result r;
  buf_init(&q, 0);
  r = sql_dialect_table(d, table, suffix, &q);
  if (r == APP_OK)
    r = sql_dialect_literal(d, q.data, q.len, out);
  buf_cleanup(&q);
  return r;
}

void sql_stmt_init(struct sql_stmt *s)
{
  memset(s, 0, sizeof *s);
  buf_init(&s->sql, SQL_STMT_MAX_TEXT);
}

static void free_owned(struct sql_stmt *s)
{
  size_t i;
  for (i = 0; i < s->nowned; i++)
    free(s->owned[i]);
  s->nowned = 0;
}

void sql_stmt_reset(struct sql_stmt *s)
{
  buf_reset(&s->sql);
  s->nparams = 0;
  free_owned(s);
}

void sql_stmt_cleanup(struct sql_stmt *s)
{
  if (!s)
    return;
  buf_cleanup(&s->sql);
  free_owned(s);
  free(s->owned);
  free(s->vals);
  free(s->lens);
  memset(s, 0, sizeof *s);
}

static void param_add(struct sql_stmt *s, const char *v, size_t n)
{
  if (s->nparams == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 256;
    s->vals = xrealloc(s->vals, s->cap * sizeof *s->vals);
    s->lens = xrealloc(s->lens, s->cap * sizeof *s->lens);
  }
  s->vals[s->nparams] = v;
  s->lens[s->nparams] = n;
  s->nparams++;
}

/* Take ownership of b's text as the next parameter. */
static enum app_result param_add_owned(struct sql_stmt *s, struct buf *b)
{
  size_t n;
  char *t = buf_steal(b, &n);
  if (!t)
    t = xstrdup(""), n = 0;
  if (s->nowned == s->owned_cap) {
    s->owned_cap = s->owned_cap ? s->owned_cap * 2 : 64;
    s->owned = xrealloc(s->owned, s->owned_cap * sizeof *s->owned);
  }
  s->owned[s->nowned++] = t;
  param_add(s, t, n);
  return APP_OK;
}

/* One element of a PostgreSQL array literal: NULL, or "..." with '"' and
 * '\' escaped. */
static enum app_result array_elem(struct buf *b, bool first, const char *v, size_t n)
{
  size_t i, start = 0;
  if (!first)
    APP_RETURN_IF_FAILED(buf_append_char(b, ','));
  if (!v)
    return buf_append_str(b, "NULL");
  APP_RETURN_IF_FAILED(buf_append_char(b, '"'));
  for (i = 0; i < n; i++) {
    if (v[i] == '"' || v[i] == '\\') {
      APP_RETURN_IF_FAILED(buf_append(b, v + start, i - start));
      APP_RETURN_IF_FAILED(buf_append_char(b, '\\'));
      start = i;
    }
  }
  APP_RETURN_IF_FAILED(buf_append(b, v + start, n - start));
  return buf_append_char(b, '"');
}

/* "CAST(? AS type)" with the value as a parameter, or a typed NULL. */
static enum app_result cast_value(enum sql_dialect d, struct sql_stmt *s, const char *v, size_t n,
                                  const char *type)
{
  if (!v)
    return buf_printf(&s->sql, "CAST(NULL AS %s)", type);
  param_add(s, v, n);
  if (d == SQL_DIALECT_TSQL && !strcmp(type, "datetime2(7)"))
    return buf_append_str(&s->sql, "CONVERT(datetime2(7), ?, 127)"); /* ISO 8601 with Z */
  if (d == SQL_DIALECT_TSQL && !strcmp(type, "decimal(38,10)") &&
      (memchr(v, 'e', n) || memchr(v, 'E', n)))
    /* SQL Server will not convert "1.5E+20" to decimal directly; such a
     * lexeme is a double anyway, so going through float loses nothing */
    return buf_append_str(&s->sql, "CAST(CAST(? AS float) AS decimal(38,10))");
  return buf_printf(&s->sql, "CAST(? AS %s)", type);
}

static enum app_result version_value(enum sql_dialect d, struct sql_stmt *s, const char *v)
{
  return cast_value(d, s, v && *v ? v : NULL, v ? strlen(v) : 0, "varchar(45)");
}

static enum app_result text_or_null(enum sql_dialect d, struct sql_stmt *s, const char *v,
                                    const char *type)
{
  return cast_value(d, s, v, v ? strlen(v) : 0, type);
}

static enum app_result col(enum sql_dialect d, struct buf *b, const char *alias, const char *name,
                           const char *suffix)
{
  char tmp[300];
  if (alias)
    APP_RETURN_IF_FAILED(buf_printf(b, "%s.", alias));
  snprintf(tmp, sizeof tmp, "%s%s", name, suffix ? suffix : "");
  return sql_dialect_ident(d, tmp, b);
}

/* Row-level version columns that only grow. */
static const char *const grow_cols[] = {C_VERSION, C_DELV, C_FULLV, C_REREADV};

static bool row_deleted(const struct sql_row *r)
{
  return r->deleted_version[0] && strcmp(r->deleted_version, r->version) >= 0;
}

static size_t row_params(const struct sql_group *g, const struct sql_row *r)
{
  size_t n = 2, j; /* id, version */
  n += r->deleted_version[0] != 0;
  n += r->full_version[0] != 0;
  n += r->reread_version[0] != 0;
  for (j = 0; j < g->ncols; j++) {
    n += r->cells[j].text != NULL;
    n += r->cells[j].version != NULL;
  }
  return n;
}

enum app_result sql_dialect_check_group(enum sql_dialect d, const struct sql_group *g,
                                        struct app_err *err)
{
  size_t j, max = sql_dialect_max_ident(d);
  const char *dot = strrchr(g->table, '.');
  const char *last = dot ? dot + 1 : g->table;
  /* an entity table may get a tombstone companion (hard deletes); a link
   * table never has one */
  size_t suf = g->kind == SQL_GROUP_ENTITY ? strlen(TOMB_SUF) : 0;
  if (!*last || strlen(last) + suf > max || dot != strchr(g->table, '.') || dot == g->table ||
      (dot && (size_t)(dot - g->table) > max)) {
    if (suf)
      return app_err_set(err, APP_ERR_INPUT,
                         "table name '%.80s' is not [schema.]name or too long for %s (at most %zu "
                         "bytes with its %s companion)",
                         g->table, sql_dialect_name(d), max, TOMB_SUF);
    return app_err_set(err, APP_ERR_INPUT,
                       "link table (relationship) name '%.80s' is not [schema.]name or longer than "
                       "%s allows (%zu bytes)",
                       g->table, sql_dialect_name(d), max);
  }
  for (j = 0; j < g->ncols; j++)
    if (strlen(g->cols[j].name) + strlen(VSUF) > max)
      return app_err_set(err, APP_ERR_INPUT, "column name '%.80s' is too long for %s",
                         g->cols[j].name, sql_dialect_name(d));
  return APP_OK;
}

/* ---- Statement templates ----
 *
 * Each statement is written out as its text, one template per dialect, with
 * {placeholders} where it varies. A placeholder appends only identifiers
 * (through sql_dialect_ident / sql_dialect_table, so quoting stays in one
 * place), string literals of configured names (through
 * sql_dialect_literal), or `?` markers whose values are bound as
 * parameters. Nothing else is spliced into the text, so no user data
 * reaches it unquoted. The fixed names written in the templates
 * ([_cdc_version], "_cdc_version") are ours and need no escaping.
 *
 * "{name:arg}" runs placeholder name with arg as its column (only the
 * column placeholders use it; arg is a fixed name from the template). An
 * unknown placeholder is a bug in this file and aborts. */

/* What the placeholders of one statement draw from. */
struct tpl {
  enum sql_dialect d;
  struct sql_stmt *s;        /* the statement: text and parameters */
  const char *table;         /* the target table, "schema.name" or "name" */
  const struct sql_group *g; /* the group written, or NULL */
  const struct sql_poison_row *poison;
  size_t from, count; /* the rows (links, poison rows) written */
  const char *col;    /* the column {col}, {colv}, {guard} and {max} stand for */
};

static enum app_result tpl_emit(struct tpl *t, const char *text);

/* The text for t's dialect. */
static enum app_result tpl_dialect(struct tpl *t, const char *tsql, const char *pg)
{
  return tpl_emit(t, t->d == SQL_DIALECT_TSQL ? tsql : pg);
}

static enum app_result ph_table(struct tpl *t)
{
  return sql_dialect_table(t->d, t->table, NULL, &t->s->sql);
}

static enum app_result ph_tomb(struct tpl *t)
{
  return sql_dialect_table(t->d, t->table, TOMB_SUF, &t->s->sql);
}

static enum app_result ph_key(struct tpl *t)
{
  return col(t->d, &t->s->sql, NULL, t->g->key, NULL);
}

static enum app_result ph_col(struct tpl *t)
{
  return col(t->d, &t->s->sql, NULL, t->col, NULL);
}

static enum app_result ph_colv(struct tpl *t)
{
  return col(t->d, &t->s->sql, NULL, t->col, VSUF);
}

/* The guard W(c) of docs/sql.md: the merged row's version of c is newer
 * than the stored one (a column never written is known absent as of the
 * newest full row, like Redis's _floor: one rule for both sinks) and than
 * the stored row's delete. */
static enum app_result ph_guard(struct tpl *t)
{
  /* newer(x, y) of docs/versioning.md: real row versions on both sides
   * that differ decide (characters 16-35: 0 is a Create's, 2^64-1 a
   * Delete's); otherwise the texts compare. y is never NULL here. */
  return tpl_dialect(
      t,
      "((CASE WHEN SUBSTRING(s.{colv}, 16, 20) BETWEEN '00000000000000000001' AND "
      "'18446744073709551614' AND SUBSTRING(COALESCE(t.{colv}, t.[_cdc_full_version], ''), 16, 20) "
      "BETWEEN '00000000000000000001' AND '18446744073709551614' AND SUBSTRING(s.{colv}, 16, 20) "
      "<> "
      "SUBSTRING(COALESCE(t.{colv}, t.[_cdc_full_version], ''), 16, 20) THEN CASE WHEN "
      "SUBSTRING(s.{colv}, 16, 20) > SUBSTRING(COALESCE(t.{colv}, t.[_cdc_full_version], ''), 16, "
      "20) THEN 1 ELSE 0 END WHEN s.{colv} > COALESCE(t.{colv}, t.[_cdc_full_version], '') THEN 1 "
      "ELSE 0 END) = 1 AND s.{colv} > COALESCE(t.[_cdc_deleted_version], ''))",
      "((CASE WHEN SUBSTRING(EXCLUDED.{colv}, 16, 20) BETWEEN '00000000000000000001' AND "
      "'18446744073709551614' AND SUBSTRING(COALESCE(t.{colv}, t.\"_cdc_full_version\", ''), 16, "
      "20) BETWEEN '00000000000000000001' AND '18446744073709551614' AND "
      "SUBSTRING(EXCLUDED.{colv}, 16, 20) <> SUBSTRING(COALESCE(t.{colv}, "
      "t.\"_cdc_full_version\", ''), 16, 20) THEN CASE WHEN SUBSTRING(EXCLUDED.{colv}, 16, 20) > "
      "SUBSTRING(COALESCE(t.{colv}, t.\"_cdc_full_version\", ''), 16, 20) THEN 1 ELSE 0 END WHEN "
      "EXCLUDED.{colv} > COALESCE(t.{colv}, t.\"_cdc_full_version\", '') THEN 1 ELSE 0 END) = 1 "
      "AND EXCLUDED.{colv} > COALESCE(t.\"_cdc_deleted_version\", ''))");
}

/* Greatest of the stored and the merged version column (NULL only if both
 * are). T-SQL has GREATEST only from SQL Server 2022; CASE works everywhere. */
static enum app_result ph_max(struct tpl *t)
{
  return tpl_dialect(t,
                     "CASE WHEN t.{col} IS NULL OR s.{col} > t.{col} THEN s.{col} ELSE t.{col} END",
                     "GREATEST(t.{col}, EXCLUDED.{col})");
}

/* The columns of an entity table in statement order, each prefixed with
 * "alias." when alias is not NULL. */
static enum app_result column_list(struct tpl *t, const char *alias)
{
  static const char *const row_cols[] = {C_VERSION, C_DELETED, C_DELV, C_FULLV, C_REREADV};
  struct buf *b = &t->s->sql;
  size_t j;
  APP_RETURN_IF_FAILED(col(t->d, b, alias, t->g->key, NULL));
  for (j = 0; j < sizeof row_cols / sizeof row_cols[0]; j++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(col(t->d, b, alias, row_cols[j], NULL));
  }
  for (j = 0; j < t->g->ncols; j++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(col(t->d, b, alias, t->g->cols[j].name, NULL));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(col(t->d, b, alias, t->g->cols[j].name, VSUF));
  }
  return APP_OK;
}

static enum app_result ph_cols(struct tpl *t)
{
  return column_list(t, NULL);
}

static enum app_result ph_s_cols(struct tpl *t)
{
  return column_list(t, "s");
}

/* The SET list of an entity upsert: each mapped column (and its version)
 * under its guard, the row versions that only grow, and the deleted flag:
 * deleted iff the newest change seen is a Delete. */
static enum app_result ph_set(struct tpl *t)
{
  size_t j;
  for (j = 0; j < t->g->ncols; j++) {
    t->col = t->g->cols[j].name;
    APP_RETURN_IF_FAILED(
        tpl_dialect(t,
                    "\n  {col} = CASE WHEN {guard} THEN s.{col} ELSE t.{col} END,"
                    "\n  {colv} = CASE WHEN {guard} THEN s.{colv} ELSE t.{colv} END,",
                    "\n  {col} = CASE WHEN {guard} THEN EXCLUDED.{col} ELSE t.{col} END,"
                    "\n  {colv} = CASE WHEN {guard} THEN EXCLUDED.{colv} ELSE t.{colv} END,"));
  }
  for (j = 0; j < sizeof grow_cols / sizeof grow_cols[0]; j++) {
    t->col = grow_cols[j];
    APP_RETURN_IF_FAILED(tpl_emit(t, "\n  {col} = {max},"));
  }
  return tpl_dialect(t,
                     "\n  [_cdc_deleted] = CASE WHEN COALESCE({max:_cdc_deleted_version}, '') >= "
                     "{max:_cdc_version} THEN CAST(1 AS bit) ELSE CAST(0 AS bit) END,"
                     "\n  [_cdc_updated_at] = SYSUTCDATETIME()",
                     "\n  \"_cdc_deleted\" = CASE WHEN COALESCE({max:_cdc_deleted_version}, '') >= "
                     "{max:_cdc_version} THEN true ELSE false END,"
                     "\n  \"_cdc_updated_at\" = now()");
}

/* True when the merged row changes anything in the stored row. */
static enum app_result ph_changed(struct tpl *t)
{
  size_t j;
  for (j = 0; j < sizeof grow_cols / sizeof grow_cols[0]; j++) {
    t->col = grow_cols[j];
    if (j)
      APP_RETURN_IF_FAILED(buf_append_str(&t->s->sql, "\n  OR "));
    APP_RETURN_IF_FAILED(tpl_dialect(t, "s.{col} > COALESCE(t.{col}, '')",
                                     "EXCLUDED.{col} > COALESCE(t.{col}, '')"));
  }
  for (j = 0; j < t->g->ncols; j++) {
    t->col = t->g->cols[j].name;
    APP_RETURN_IF_FAILED(tpl_emit(t, "\n  OR {guard}"));
  }
  return APP_OK;
}

/* One row of a T-SQL VALUES list: id, version, deleted, the row versions,
 * then each column's value and version, as parameters. */
static enum app_result values_row(enum sql_dialect d, const struct sql_group *g,
                                  const struct sql_row *r, struct sql_stmt *s)
{
  struct buf *b = &s->sql;
  size_t j;
  APP_RETURN_IF_FAILED(buf_append_str(b, "\n  ("));
  APP_RETURN_IF_FAILED(cast_value(d, s, r->id, strlen(r->id), sql_dialect_type(d, DOC_T_GUID)));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(version_value(d, s, r->version));
  APP_RETURN_IF_FAILED(
      buf_append_str(b, row_deleted(r) ? ", CAST(1 AS bit), " : ", CAST(0 AS bit), "));
  APP_RETURN_IF_FAILED(version_value(d, s, r->deleted_version));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(version_value(d, s, r->full_version));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(version_value(d, s, r->reread_version));
  for (j = 0; j < g->ncols; j++) {
    const struct sql_cell *c = &r->cells[j];
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(cast_value(d, s, c->version ? c->text : NULL, c->len,
                                    sql_dialect_type(d, g->cols[j].type)));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(version_value(d, s, c->version));
  }
  return buf_append_char(b, ')');
}

/* The VALUES rows of a T-SQL entity upsert. */
static enum app_result ph_rows(struct tpl *t)
{
  size_t i;
  for (i = t->from; i < t->from + t->count; i++) {
    if (i > t->from)
      APP_RETURN_IF_FAILED(buf_append_char(&t->s->sql, ','));
    APP_RETURN_IF_FAILED(values_row(t->d, t->g, &t->g->rows[i], t->s));
  }
  return APP_OK;
}

/* Which per-row value a PostgreSQL array parameter carries. */
enum pg_field {
  PGF_ID,
  PGF_VERSION,
  PGF_DELETED,
  PGF_DELV,
  PGF_FULLV,
  PGF_REREADV,
  PGF_VALUE,
  PGF_COLV
};

/* "CAST(? AS type[])" whose parameter is the array of one field over
 * rows [from, from+count). */
static enum app_result pg_array(struct sql_stmt *s, const struct sql_group *g, size_t from,
                                size_t count, enum pg_field f, size_t col, const char *type)
{
  struct buf a;
  size_t i;
  enum app_result r = APP_OK;
  buf_init(&a, SQL_STMT_MAX_PARAM);
  r = buf_append_char(&a, '{');
  for (i = from; r == APP_OK && i < from + count; i++) {
    const struct sql_row *row = &g->rows[i];
    const char *v = NULL;
    size_t n = 0;
    switch (f) {
    case PGF_ID: v = row->id; break;
    case PGF_VERSION: v = row->version; break;
    case PGF_DELETED: v = row_deleted(row) ? "t" : "f"; break;
    case PGF_DELV: v = row->deleted_version; break;
    case PGF_FULLV: v = row->full_version; break;
    case PGF_REREADV: v = row->reread_version; break;
    case PGF_VALUE:
      v = row->cells[col].version ? row->cells[col].text : NULL;
      n = row->cells[col].len;
      break;
    case PGF_COLV: v = row->cells[col].version; break;
    }
    if (f != PGF_VALUE) {
      if (v && !*v)
        v = NULL; /* "" version: none */
      n = v ? strlen(v) : 0;
    }
    r = array_elem(&a, i == from, v, n);
  }
  if (r == APP_OK)
    r = buf_append_char(&a, '}');
  if (r == APP_OK)
    r = param_add_owned(s, &a);
  buf_cleanup(&a);
  if (r == APP_OK)
    r = buf_printf(&s->sql, "CAST(? AS %s[])", type);
  return r;
}

/* The array parameters a PostgreSQL entity upsert unnests: the row fields,
 * then per column a line with its values and versions. */
static enum app_result ph_arrays(struct tpl *t)
{
  static const struct {
    enum pg_field f;
    const char *type;
  } row_fields[] = {{PGF_ID, "uuid"},           {PGF_VERSION, "varchar(45)"},
                    {PGF_DELETED, "boolean"},   {PGF_DELV, "varchar(45)"},
                    {PGF_FULLV, "varchar(45)"}, {PGF_REREADV, "varchar(45)"}};
  const struct sql_group *g = t->g;
  struct buf *b = &t->s->sql;
  size_t j;
  for (j = 0; j < sizeof row_fields / sizeof row_fields[0]; j++) {
    if (j)
      APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(
        pg_array(t->s, g, t->from, t->count, row_fields[j].f, 0, row_fields[j].type));
  }
  for (j = 0; j < g->ncols; j++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, ",\n  "));
    APP_RETURN_IF_FAILED(pg_array(t->s, g, t->from, t->count, PGF_VALUE, j,
                                  sql_dialect_type(t->d, g->cols[j].type)));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(pg_array(t->s, g, t->from, t->count, PGF_COLV, j, "varchar(45)"));
  }
  return APP_OK;
}

/* " IN (?, ?, ...)" (T-SQL) or " = ANY(CAST(? AS uuid[]))" (PostgreSQL)
 * over the ids of the rows written. */
static enum app_result ph_ids(struct tpl *t)
{
  struct buf *b = &t->s->sql;
  size_t i;
  if (t->d == SQL_DIALECT_POSTGRES) {
    APP_RETURN_IF_FAILED(buf_append_str(b, " = ANY("));
    APP_RETURN_IF_FAILED(pg_array(t->s, t->g, t->from, t->count, PGF_ID, 0, "uuid"));
    return buf_append_char(b, ')');
  }
  APP_RETURN_IF_FAILED(buf_append_str(b, " IN ("));
  for (i = t->from; i < t->from + t->count; i++) {
    const char *id = t->g->rows[i].id;
    if (i > t->from)
      APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(
        cast_value(t->d, t->s, id, strlen(id), sql_dialect_type(t->d, DOC_T_GUID)));
  }
  return buf_append_char(b, ')');
}

/* "CAST(? AS uuid[])" over the ids of the rows written (PostgreSQL). */
static enum app_result ph_id_array(struct tpl *t)
{
  APP_ASSERT(t->d == SQL_DIALECT_POSTGRES);
  return pg_array(t->s, t->g, t->from, t->count, PGF_ID, 0, "uuid");
}

/* The VALUES rows of a T-SQL link upsert. */
static enum app_result ph_link_rows(struct tpl *t)
{
  const char *guid = sql_dialect_type(t->d, DOC_T_GUID);
  struct buf *b = &t->s->sql;
  size_t i;
  for (i = t->from; i < t->from + t->count; i++) {
    const struct sql_link *l = &t->g->links[i];
    APP_RETURN_IF_FAILED(buf_append_str(b, i > t->from ? ",\n  (" : "\n  ("));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, l->table1, "nvarchar(128)"));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, l->id1, guid));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, l->table2, "nvarchar(128)"));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, l->id2, guid));
    APP_RETURN_IF_FAILED(
        buf_append_str(b, l->associated ? ", CAST(1 AS bit), " : ", CAST(0 AS bit), "));
    APP_RETURN_IF_FAILED(version_value(t->d, t->s, l->version));
    APP_RETURN_IF_FAILED(buf_append_char(b, ')'));
  }
  return APP_OK;
}

/* The six array parameters a PostgreSQL link upsert unnests. */
static enum app_result ph_link_arrays(struct tpl *t)
{
  static const char *const types[] = {"text", "uuid", "text", "uuid", "boolean", "varchar(45)"};
  size_t i, k;
  enum app_result r = APP_OK;
  for (i = 0; !r && i < sizeof types / sizeof types[0]; i++) {
    struct buf a;
    buf_init(&a, SQL_STMT_MAX_PARAM);
    r = buf_append_char(&a, '{');
    for (k = t->from; !r && k < t->from + t->count; k++) {
      const struct sql_link *l = &t->g->links[k];
      const char *v = i == 0   ? l->table1
                      : i == 1 ? l->id1
                      : i == 2 ? l->table2
                      : i == 3 ? l->id2
                      : i == 4 ? (l->associated ? "t" : "f")
                               : l->version;
      r = array_elem(&a, k == t->from, v, strlen(v));
    }
    if (!r)
      r = buf_append_char(&a, '}');
    if (!r)
      r = param_add_owned(t->s, &a);
    buf_cleanup(&a);
    if (!r)
      r = buf_printf(&t->s->sql, "%sCAST(? AS %s[])", i ? ", " : "", types[i]);
  }
  return r;
}

/* Hex text of n bytes (for CONVERT(varbinary, ?, 2) / decode(?, 'hex')). */
static enum app_result hex_param(struct sql_stmt *s, const char *p, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  struct buf b;
  size_t i;
  enum app_result r;
  buf_init(&b, SQL_STMT_MAX_PARAM);
  r = buf_reserve(&b, n * 2 + 1);
  for (i = 0; r == APP_OK && i < n; i++) {
    char two[2];
    two[0] = digits[(unsigned char)p[i] >> 4];
    two[1] = digits[(unsigned char)p[i] & 15];
    r = buf_append(&b, two, 2);
  }
  if (r == APP_OK)
    r = param_add_owned(s, &b);
  buf_cleanup(&b);
  return r;
}

/* "CAST(? AS type)" with v as an owned parameter text (it must outlive
 * this call). */
static enum app_result int_param(struct sql_stmt *s, long long v, const char *type)
{
  struct buf nb;
  enum app_result r;
  buf_init(&nb, 0);
  r = buf_printf(&nb, "%lld", v);
  if (r == APP_OK)
    r = param_add_owned(s, &nb);
  buf_cleanup(&nb);
  return r == APP_OK ? buf_printf(&s->sql, "CAST(? AS %s)", type) : r;
}

/* The VALUES rows of a poison insert, in the column order of
 * sql_ddl_create_poison. */
static enum app_result ph_poison_rows(struct tpl *t)
{
  bool ts = t->d == SQL_DIALECT_TSQL;
  const char *text_t = ts ? "nvarchar(max)" : "text";
  const char *short_t = ts ? "nvarchar(200)" : "text";
  struct buf *b = &t->s->sql;
  size_t i;
  for (i = t->from; i < t->from + t->count; i++) {
    const struct sql_poison_row *p = &t->poison[i];
    APP_RETURN_IF_FAILED(buf_append_str(b, i > t->from ? ",\n  (" : "\n  ("));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, p->key, "varchar(100)"));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, p->message_id, short_t));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, p->reason ? p->reason : "", text_t));
    APP_RETURN_IF_FAILED(buf_append_str(b, ts ? ", CONVERT(varbinary(max), " : ", decode("));
    APP_RETURN_IF_FAILED(hex_param(t->s, p->body ? p->body : "", p->body ? p->body_len : 0));
    APP_RETURN_IF_FAILED(buf_append_str(b, ts ? "?, 2), " : "?, 'hex'), "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, p->content_type, short_t));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(int_param(t->s, p->delivery_count, ts ? "int" : "integer"));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(int_param(t->s, p->enqueued_ms, "bigint"));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, p->function, short_t));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(text_or_null(t->d, t->s, p->invocation_id, short_t));
    APP_RETURN_IF_FAILED(buf_append_str(b, ts ? ", SYSUTCDATETIME())" : ", now())"));
  }
  return APP_OK;
}

/* The quoted table name as a string literal: N'[dbo].[it''s]' (T-SQL). */
static enum app_result ph_table_lit(struct tpl *t)
{
  return sql_dialect_table_literal(t->d, t->table, NULL, &t->s->sql);
}

/* The table's schema as a string literal, or current_schema(). */
static enum app_result ph_schema_lit(struct tpl *t)
{
  const char *dot = strchr(t->table, '.');
  if (!dot)
    return buf_append_str(&t->s->sql, "current_schema()");
  return sql_dialect_literal(t->d, t->table, (size_t)(dot - t->table), &t->s->sql);
}

/* The table's name without its schema as a string literal. */
static enum app_result ph_name_lit(struct tpl *t)
{
  const char *dot = strchr(t->table, '.');
  const char *name = dot ? dot + 1 : t->table;
  return sql_dialect_literal(t->d, name, strlen(name), &t->s->sql);
}

static const struct {
  const char *name;
  enum app_result (*emit)(struct tpl *t);
} placeholders[] = {
    {"table", ph_table},         /* the target table (quoted) */
    {"tomb", ph_tomb},           /* its tombstone table (quoted) */
    {"key", ph_key},             /* the key column (quoted) */
    {"col", ph_col},             /* the current column (quoted) */
    {"colv", ph_colv},           /* its version column (quoted) */
    {"guard", ph_guard},         /* W(col) */
    {"max", ph_max},             /* GREATEST(t.col, s.col) */
    {"cols", ph_cols},           /* every column of the entity table */
    {"s.cols", ph_s_cols},       /* the same, each as s.column */
    {"set", ph_set},             /* the guarded SET list */
    {"changed", ph_changed},     /* the merged row changes the stored one */
    {"rows", ph_rows},           /* T-SQL VALUES rows (parameters) */
    {"arrays", ph_arrays},       /* PostgreSQL unnest arrays (parameters) */
    {"ids", ph_ids},             /* " IN (...)" / " = ANY(...)" over the ids */
    {"id_array", ph_id_array},   /* PostgreSQL: the ids as one uuid[] parameter */
    {"link_rows", ph_link_rows}, /* link VALUES rows (parameters) */
    {"link_arrays", ph_link_arrays},
    {"poison_rows", ph_poison_rows},
    {"table_lit", ph_table_lit},   /* the quoted table name as a literal */
    {"schema_lit", ph_schema_lit}, /* the schema as a literal */
    {"name_lit", ph_name_lit},     /* the bare table name as a literal */
};

/* Append text to t's statement, expanding its placeholders. */
static enum app_result tpl_emit(struct tpl *t, const char *text)
{
  struct buf *b = &t->s->sql;
  const char *p = text, *open;
  while ((open = strchr(p, '{')) != NULL) {
    const char *close = strchr(open, '}');
    const char *colon, *saved = t->col;
    char arg[64];
    size_t i, n;
    enum app_result r;
    APP_ASSERT(close != NULL);
    APP_RETURN_IF_FAILED(buf_append(b, p, (size_t)(open - p)));
    colon = memchr(open, ':', (size_t)(close - open));
    n = (size_t)((colon ? colon : close) - (open + 1));
    for (i = 0; i < sizeof placeholders / sizeof placeholders[0]; i++)
      if (strlen(placeholders[i].name) == n && !memcmp(placeholders[i].name, open + 1, n))
        break;
    APP_ASSERT(i < sizeof placeholders / sizeof placeholders[0]);
    if (colon) {
      size_t an = (size_t)(close - colon - 1);
      APP_ASSERT(an < sizeof arg);
      memcpy(arg, colon + 1, an);
      arg[an] = '\0';
      t->col = arg;
    }
    r = placeholders[i].emit(t);
    t->col = saved;
    APP_RETURN_IF_FAILED(r);
    p = close + 1;
  }
  return buf_append_str(b, p);
}

enum app_result sql_dialect_upsert(enum sql_dialect d, const struct sql_group *g, size_t from,
                                   struct sql_stmt *out, size_t *out_count, struct app_err *err)
{
  size_t i, params = 0, max = sql_dialect_max_params(d);
  struct tpl t;
  enum app_result r;

  APP_ASSERT(g->kind == SQL_GROUP_ENTITY && from < g->nrows);
  APP_RETURN_IF_FAILED(sql_dialect_check_group(d, g, err));
  sql_stmt_reset(out);
  if (d == SQL_DIALECT_POSTGRES && 6 + 2 * g->ncols <= max) {
    /* arrays: the parameter count does not grow with the rows */
    i = g->nrows - from > MAX_ROWS_PER_STMT ? from + MAX_ROWS_PER_STMT : g->nrows;
  } else {
    for (i = from; i < g->nrows && i - from < MAX_ROWS_PER_STMT; i++) {
      size_t p = d == SQL_DIALECT_POSTGRES ? 6 + 2 * g->ncols : row_params(g, &g->rows[i]);
      if (params + p > max)
        break;
      params += p;
    }
  }
  if (i == from)
    return app_err_set(err, APP_ERR_LIMIT,
                       "table %s, id %s: one row needs %zu parameters, more than %s allows "
                       "(%zu); map fewer columns",
                       g->table, g->rows[from].id, row_params(g, &g->rows[from]),
                       sql_dialect_name(d), max);
  *out_count = i - from;

  t = (struct tpl){.d = d, .s = out, .table = g->table, .g = g, .from = from, .count = i - from};
  r = tpl_dialect(&t,
                  "MERGE INTO {table} WITH (HOLDLOCK) AS t\n"
                  "USING (VALUES{rows}\n"
                  ") AS s ({cols})\n"
                  "ON t.{key} = s.{key}\n"
                  "WHEN MATCHED AND ({changed}) THEN UPDATE SET{set}\n"
                  "WHEN NOT MATCHED THEN INSERT ({cols}, [_cdc_updated_at])\n"
                  "  VALUES ({s.cols}, SYSUTCDATETIME());",
                  /* PostgreSQL */
                  "INSERT INTO {table} AS t ({cols}, \"_cdc_updated_at\")\n"
                  "SELECT s.*, now() FROM unnest(\n"
                  "  {arrays}) AS s\n"
                  "ON CONFLICT ({key}) DO UPDATE SET{set}\n"
                  "WHERE {changed}");
  if (r != APP_OK)
    return app_err_set(err, r, "table %s: statement text too large", g->table);
  return APP_OK;
}

enum app_result sql_dialect_link_upsert(enum sql_dialect d, const struct sql_group *g, size_t from,
                                        struct sql_stmt *out, size_t *out_count,
                                        struct app_err *err)
{
  size_t n, max = d == SQL_DIALECT_TSQL ? sql_dialect_max_params(d) / 5 : MAX_ROWS_PER_STMT;
  struct tpl t;
  enum app_result r;

  APP_ASSERT(g->kind == SQL_GROUP_LINK && from < g->nlinks);
  sql_stmt_reset(out);
  n = g->nlinks - from;
  if (n > max)
    n = max;
  if (n > MAX_ROWS_PER_STMT)
    n = MAX_ROWS_PER_STMT;
  *out_count = n;

  t = (struct tpl){.d = d, .s = out, .table = g->table, .g = g, .from = from, .count = n};
  r = tpl_dialect(
      &t,
      "MERGE INTO {table} WITH (HOLDLOCK) AS t\n"
      "USING (VALUES{link_rows}\n"
      ") AS s ([table1], [id1], [table2], [id2], [_cdc_associated], [_cdc_version])\n"
      "ON t.[id1] = s.[id1] AND t.[id2] = s.[id2]\n"
      "WHEN MATCHED AND s.[_cdc_version] > t.[_cdc_version] THEN UPDATE SET\n"
      "  [_cdc_associated] = s.[_cdc_associated], [_cdc_version] = s.[_cdc_version],\n"
      "  [_cdc_updated_at] = SYSUTCDATETIME()\n"
      "WHEN NOT MATCHED THEN INSERT ([table1], [id1], [table2], [id2], [_cdc_associated], "
      "[_cdc_version], [_cdc_updated_at])\n"
      "  VALUES (s.[table1], s.[id1], s.[table2], s.[id2], s.[_cdc_associated], "
      "s.[_cdc_version], SYSUTCDATETIME());",
      /* PostgreSQL */
      "INSERT INTO {table} AS t (\"table1\", \"id1\", \"table2\", \"id2\", \"_cdc_associated\", "
      "\"_cdc_version\", \"_cdc_updated_at\")\n"
      "SELECT s.*, now() FROM unnest({link_arrays}) AS s\n"
      "ON CONFLICT (\"id1\", \"id2\") DO UPDATE SET\n"
      "  \"_cdc_associated\" = EXCLUDED.\"_cdc_associated\", "
      "\"_cdc_version\" = EXCLUDED.\"_cdc_version\",\n"
      "  \"_cdc_updated_at\" = now()\n"
      "WHERE EXCLUDED.\"_cdc_version\" > t.\"_cdc_version\"");
  if (r != APP_OK)
    return app_err_set(err, r, "link table %s: statement text too large", g->table);
  return APP_OK;
}

/* The hard-delete steps, [dialect][step] (docs/sql.md, "Hard deletes"). */
static const char *const hard_delete_tpl[2][4] = {
    {/* T-SQL: SQL_HARD_RESTORE */
     "INSERT INTO {table} ({key}, [_cdc_version], [_cdc_deleted], [_cdc_deleted_version], "
     "[_cdc_updated_at])\n"
     "SELECT b.{key}, b.[_cdc_version], CAST(1 AS bit), b.[_cdc_version], SYSUTCDATETIME()\n"
     "FROM {tomb} AS b WITH (UPDLOCK, HOLDLOCK)\n"
     "WHERE b.{key}{ids}\n"
     "  AND NOT EXISTS (SELECT 1 FROM {table} AS t WITH (UPDLOCK, HOLDLOCK) WHERE t.{key} = "
     "b.{key});",
     /* T-SQL: SQL_HARD_ARCHIVE */
     "MERGE INTO {tomb} WITH (HOLDLOCK) AS b\n"
     "USING (SELECT {key}, [_cdc_deleted_version] FROM {table} WHERE [_cdc_deleted] = 1 AND "
     "{key}{ids}) AS s\n"
     "ON b.{key} = s.{key}\n"
     "WHEN MATCHED AND s.[_cdc_deleted_version] > b.[_cdc_version] THEN UPDATE SET "
     "[_cdc_version] = s.[_cdc_deleted_version], [_cdc_deleted_at] = SYSUTCDATETIME()\n"
     "WHEN NOT MATCHED THEN INSERT ({key}, [_cdc_version], [_cdc_deleted_at]) VALUES (s.{key}, "
     "s.[_cdc_deleted_version], SYSUTCDATETIME());",
     /* T-SQL: SQL_HARD_REMOVE */
     "DELETE FROM {table}\n"
     "WHERE [_cdc_deleted] = 1 AND {key}{ids};",
     /* T-SQL: SQL_HARD_LOCK (the restore's table hints lock instead) */
     "SELECT 0 WHERE 1 = 0;"},
    {/* PostgreSQL: SQL_HARD_RESTORE */
     "INSERT INTO {table} ({key}, \"_cdc_version\", \"_cdc_deleted\", \"_cdc_deleted_version\", "
     "\"_cdc_updated_at\")\n"
     "SELECT b.{key}, b.\"_cdc_version\", true, b.\"_cdc_version\", now()\n"
     "FROM {tomb} AS b\n"
     "WHERE b.{key}{ids}\n"
     "ON CONFLICT DO NOTHING",
     /* PostgreSQL: SQL_HARD_ARCHIVE */
     "INSERT INTO {tomb} AS b ({key}, \"_cdc_version\", \"_cdc_deleted_at\")\n"
     "SELECT {key}, \"_cdc_deleted_version\", now() FROM {table}\n"
     "WHERE \"_cdc_deleted\" AND {key}{ids}\n"
     "ON CONFLICT ({key}) DO UPDATE SET \"_cdc_version\" = EXCLUDED.\"_cdc_version\", "
     "\"_cdc_deleted_at\" = now()\n"
     "WHERE EXCLUDED.\"_cdc_version\" > b.\"_cdc_version\"",
     /* PostgreSQL: SQL_HARD_REMOVE */
     "DELETE FROM {table}\n"
     "WHERE \"_cdc_deleted\" AND {key}{ids}",
     /* PostgreSQL: SQL_HARD_LOCK */
     "SELECT count(pg_advisory_xact_lock(s.h)) FROM (\n"
     "  SELECT DISTINCT hashtextextended({table_lit} || ':' || CAST(u.k AS text), 0) AS h\n"
     "  FROM unnest({id_array}) AS u(k) ORDER BY 1) AS s"}};

enum app_result sql_dialect_hard_delete(enum sql_dialect d, const struct sql_group *g, size_t from,
                                        size_t count, enum sql_hard_step step, struct sql_stmt *out,
                                        struct app_err *err)
{
  struct tpl t;
  enum app_result r;

  APP_ASSERT(g->kind == SQL_GROUP_ENTITY && from + count <= g->nrows && count);
  APP_ASSERT((size_t)step < sizeof hard_delete_tpl[0] / sizeof hard_delete_tpl[0][0]);
  APP_RETURN_IF_FAILED(sql_dialect_check_group(d, g, err));
  sql_stmt_reset(out);
  t = (struct tpl){.d = d, .s = out, .table = g->table, .g = g, .from = from, .count = count};
  r = tpl_emit(&t, hard_delete_tpl[d == SQL_DIALECT_TSQL ? 0 : 1][step]);
  if (r != APP_OK)
    return app_err_set(err, r, "table %s: statement text too large", g->table);
  return APP_OK;
}

enum app_result sql_dialect_columns_query(enum sql_dialect d, const char *table,
                                          struct sql_stmt *out, struct app_err *err)
{
  struct tpl t = {.d = d, .s = out, .table = table};
  enum app_result r;

  sql_stmt_reset(out);
  r = tpl_dialect(&t,
                  "SELECT c.name, t.name FROM sys.columns AS c JOIN sys.types AS t ON "
                  "t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID({table_lit}) "
                  "ORDER BY c.column_id",
                  "SELECT column_name, data_type FROM information_schema.columns WHERE "
                  "table_schema = {schema_lit} AND table_name = {name_lit} "
                  "ORDER BY ordinal_position");
  if (r != APP_OK)
    return app_err_set(err, r, "table %s: catalogue query too large", table);
  return APP_OK;
}

enum app_result sql_dialect_poison_insert(enum sql_dialect d, const struct sql_poison_row *rows,
                                          size_t n, size_t from, struct sql_stmt *out,
                                          size_t *out_count, struct app_err *err)
{
  size_t count = n - from, per_stmt = sql_dialect_max_params(d) / 10;
  struct tpl t;
  enum app_result r;

  APP_ASSERT(from < n);
  sql_stmt_reset(out);
  if (count > per_stmt)
    count = per_stmt;
  *out_count = count;
  t = (struct tpl){
      .d = d, .s = out, .table = SQL_POISON_TABLE, .poison = rows, .from = from, .count = count};
  r = tpl_dialect(
      &t,
      "MERGE INTO [" SQL_POISON_TABLE "] WITH (HOLDLOCK) AS t\n"
      "USING (VALUES{poison_rows}\n"
      ") AS s ([poison_key], [message_id], [reason], [body], [content_type], "
      "[delivery_count], [enqueued_ms], [function_name], [invocation_id], [recorded_at])\n"
      "ON t.[poison_key] = s.[poison_key]\n"
      "WHEN NOT MATCHED THEN INSERT ([poison_key], [message_id], [reason], [body], "
      "[content_type], [delivery_count], [enqueued_ms], [function_name], [invocation_id], "
      "[recorded_at])\n"
      "  VALUES (s.[poison_key], s.[message_id], s.[reason], s.[body], s.[content_type], "
      "s.[delivery_count], s.[enqueued_ms], s.[function_name], s.[invocation_id], "
      "s.[recorded_at]);",
      /* PostgreSQL */
      "INSERT INTO \"" SQL_POISON_TABLE "\" (\"poison_key\", \"message_id\", \"reason\", "
      "\"body\", \"content_type\", \"delivery_count\", \"enqueued_ms\", \"function_name\", "
      "\"invocation_id\", \"recorded_at\")\n"
      "VALUES{poison_rows}\n"
      "ON CONFLICT (\"poison_key\") DO NOTHING");
  if (r != APP_OK)
    return app_err_set(err, r, "poison rows: statement text too large");
  return APP_OK;
}

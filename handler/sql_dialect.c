/* sql_dialect.c - statement text for T-SQL and PostgreSQL. */
#include "sql_dialect.h"

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
#define C_UPDATED "_cdc_updated_at"

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

/* A string literal ('...' with doubled quotes; N'...' in T-SQL). */
static enum app_result str_literal(enum sql_dialect d, const char *s, size_t n, struct buf *out)
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

static enum app_result col(enum sql_dialect d, struct buf *b, const char *alias, const char *name,
                           const char *suffix)
{
  char tmp[300];
  if (alias)
    APP_RETURN_IF_FAILED(buf_printf(b, "%s.", alias));
  snprintf(tmp, sizeof tmp, "%s%s", name, suffix ? suffix : "");
  return sql_dialect_ident(d, tmp, b);
}

/* Greatest of two nullable version expressions (NULL only if both are). */
static enum app_result greatest(enum sql_dialect d, struct buf *b, const char *src,
                                const char *name)
{
  if (d == SQL_DIALECT_POSTGRES) {
    APP_RETURN_IF_FAILED(buf_append_str(b, "GREATEST("));
    APP_RETURN_IF_FAILED(col(d, b, "t", name, NULL));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(col(d, b, src, name, NULL));
    return buf_append_char(b, ')');
  }
  /* T-SQL: GREATEST exists only from SQL Server 2022; CASE works everywhere */
  APP_RETURN_IF_FAILED(buf_append_str(b, "CASE WHEN "));
  APP_RETURN_IF_FAILED(col(d, b, "t", name, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, " IS NULL OR "));
  APP_RETURN_IF_FAILED(col(d, b, src, name, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, " > "));
  APP_RETURN_IF_FAILED(col(d, b, "t", name, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, " THEN "));
  APP_RETURN_IF_FAILED(col(d, b, src, name, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, " ELSE "));
  APP_RETURN_IF_FAILED(col(d, b, "t", name, NULL));
  return buf_append_str(b, " END");
}

/* The per-column guard W(c). */
static enum app_result guard(enum sql_dialect d, struct buf *b, const char *src, const char *name)
{
  APP_RETURN_IF_FAILED(buf_append_char(b, '('));
  APP_RETURN_IF_FAILED(col(d, b, src, name, VSUF));
  APP_RETURN_IF_FAILED(buf_append_str(b, " > COALESCE("));
  APP_RETURN_IF_FAILED(col(d, b, "t", name, VSUF));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", '') AND "));
  APP_RETURN_IF_FAILED(col(d, b, src, name, VSUF));
  APP_RETURN_IF_FAILED(buf_append_str(b, " > COALESCE("));
  APP_RETURN_IF_FAILED(col(d, b, "t", C_DELV, NULL));
  return buf_append_str(b, ", ''))");
}

/* Row-level version columns that only grow. */
static const char *const grow_cols[] = {C_VERSION, C_DELV, C_FULLV, C_REREADV};

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

static enum app_result check_idents(enum sql_dialect d, const struct sql_group *g,
                                    struct app_err *err)
{
  size_t j, max = sql_dialect_max_ident(d);
  const char *dot = strrchr(g->table, '.');
  const char *last = dot ? dot + 1 : g->table;
  if (!*last || strlen(last) + strlen(TOMB_SUF) > max || dot != strchr(g->table, '.') ||
      dot == g->table || (dot && (size_t)(dot - g->table) > max))
    return app_err_set(err, APP_ERR_INPUT,
                       "table name '%.80s' is not [schema.]name or too long for %s (with its %s "
                       "companion)",
                       g->table, sql_dialect_name(d), TOMB_SUF);
  for (j = 0; j < g->ncols; j++)
    if (strlen(g->cols[j].name) + strlen(VSUF) > max)
      return app_err_set(err, APP_ERR_INPUT, "column name '%.80s' is too long for %s",
                         g->cols[j].name, sql_dialect_name(d));
  return APP_OK;
}

static enum app_result column_list(enum sql_dialect d, const struct sql_group *g, const char *alias,
                                   struct buf *b)
{
  size_t j;
  APP_RETURN_IF_FAILED(col(d, b, alias, g->key, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(col(d, b, alias, C_VERSION, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(col(d, b, alias, C_DELETED, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(col(d, b, alias, C_DELV, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(col(d, b, alias, C_FULLV, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(col(d, b, alias, C_REREADV, NULL));
  for (j = 0; j < g->ncols; j++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(col(d, b, alias, g->cols[j].name, NULL));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(col(d, b, alias, g->cols[j].name, VSUF));
  }
  return APP_OK;
}

static enum app_result values_row(enum sql_dialect d, const struct sql_group *g,
                                  const struct sql_row *r, struct sql_stmt *s)
{
  struct buf *b = &s->sql;
  size_t j;
  bool deleted = r->deleted_version[0] && strcmp(r->deleted_version, r->version) >= 0;
  APP_RETURN_IF_FAILED(buf_append_str(b, "\n  ("));
  APP_RETURN_IF_FAILED(cast_value(d, s, r->id, strlen(r->id), sql_dialect_type(d, DOC_T_GUID)));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(version_value(d, s, r->version));
  if (d == SQL_DIALECT_TSQL)
    APP_RETURN_IF_FAILED(buf_append_str(b, deleted ? ", CAST(1 AS bit), " : ", CAST(0 AS bit), "));
  else
    APP_RETURN_IF_FAILED(buf_append_str(b, deleted ? ", true, " : ", false, "));
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

/* SET list shared by both dialects; src is "EXCLUDED" or "s". */
static enum app_result set_list(enum sql_dialect d, const struct sql_group *g, const char *src,
                                struct buf *b)
{
  size_t j;
  for (j = 0; j < g->ncols; j++) {
    const char *name = g->cols[j].name;
    int k;
    for (k = 0; k < 2; k++) {
      const char *suf = k ? VSUF : NULL;
      APP_RETURN_IF_FAILED(buf_append_str(b, "\n  "));
      APP_RETURN_IF_FAILED(col(d, b, NULL, name, suf));
      APP_RETURN_IF_FAILED(buf_append_str(b, " = CASE WHEN "));
      APP_RETURN_IF_FAILED(guard(d, b, src, name));
      APP_RETURN_IF_FAILED(buf_append_str(b, " THEN "));
      APP_RETURN_IF_FAILED(col(d, b, src, name, suf));
      APP_RETURN_IF_FAILED(buf_append_str(b, " ELSE "));
      APP_RETURN_IF_FAILED(col(d, b, "t", name, suf));
      APP_RETURN_IF_FAILED(buf_append_str(b, " END,"));
    }
  }
  for (j = 0; j < sizeof grow_cols / sizeof grow_cols[0]; j++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, "\n  "));
    APP_RETURN_IF_FAILED(col(d, b, NULL, grow_cols[j], NULL));
    APP_RETURN_IF_FAILED(buf_append_str(b, " = "));
    APP_RETURN_IF_FAILED(greatest(d, b, src, grow_cols[j]));
    APP_RETURN_IF_FAILED(buf_append_char(b, ','));
  }
  /* deleted iff the newest change seen is a Delete */
  APP_RETURN_IF_FAILED(buf_append_str(b, "\n  "));
  APP_RETURN_IF_FAILED(col(d, b, NULL, C_DELETED, NULL));
  APP_RETURN_IF_FAILED(buf_append_str(b, " = CASE WHEN COALESCE("));
  APP_RETURN_IF_FAILED(greatest(d, b, src, C_DELV));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", '') >= "));
  APP_RETURN_IF_FAILED(greatest(d, b, src, C_VERSION));
  APP_RETURN_IF_FAILED(buf_append_str(b, d == SQL_DIALECT_TSQL ? " THEN CAST(1 AS bit) ELSE "
                                                                 "CAST(0 AS bit) END,"
                                                               : " THEN true ELSE false END,"));
  APP_RETURN_IF_FAILED(buf_append_str(b, "\n  "));
  APP_RETURN_IF_FAILED(col(d, b, NULL, C_UPDATED, NULL));
  return buf_append_str(b, d == SQL_DIALECT_TSQL ? " = SYSUTCDATETIME()" : " = now()");
}

/* True when the merged row changes anything in the stored row. */
static enum app_result changed_cond(enum sql_dialect d, const struct sql_group *g, const char *src,
                                    struct buf *b)
{
  size_t j;
  for (j = 0; j < sizeof grow_cols / sizeof grow_cols[0]; j++) {
    if (j)
      APP_RETURN_IF_FAILED(buf_append_str(b, "\n  OR "));
    APP_RETURN_IF_FAILED(col(d, b, src, grow_cols[j], NULL));
    APP_RETURN_IF_FAILED(buf_append_str(b, " > COALESCE("));
    APP_RETURN_IF_FAILED(col(d, b, "t", grow_cols[j], NULL));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", '')"));
  }
  for (j = 0; j < g->ncols; j++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, "\n  OR "));
    APP_RETURN_IF_FAILED(guard(d, b, src, g->cols[j].name));
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

static bool row_deleted(const struct sql_row *r)
{
  return r->deleted_version[0] && strcmp(r->deleted_version, r->version) >= 0;
}

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

/* The unnest(...) source of a PostgreSQL entity upsert. */
static enum app_result pg_unnest(enum sql_dialect d, const struct sql_group *g, size_t from,
                                 size_t count, struct sql_stmt *s)
{
  struct buf *b = &s->sql;
  size_t j;
  APP_RETURN_IF_FAILED(buf_append_str(b, "\nSELECT s.*, now() FROM unnest(\n  "));
  APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_ID, 0, "uuid"));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_VERSION, 0, "varchar(45)"));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_DELETED, 0, "boolean"));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_DELV, 0, "varchar(45)"));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_FULLV, 0, "varchar(45)"));
  APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
  APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_REREADV, 0, "varchar(45)"));
  for (j = 0; j < g->ncols; j++) {
    APP_RETURN_IF_FAILED(buf_append_str(b, ",\n  "));
    APP_RETURN_IF_FAILED(
        pg_array(s, g, from, count, PGF_VALUE, j, sql_dialect_type(d, g->cols[j].type)));
    APP_RETURN_IF_FAILED(buf_append_str(b, ", "));
    APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_COLV, j, "varchar(45)"));
  }
  return buf_append_str(b, ") AS s");
}

enum app_result sql_dialect_upsert(enum sql_dialect d, const struct sql_group *g, size_t from,
                                   struct sql_stmt *out, size_t *out_count, struct app_err *err)
{
  struct buf *b = &out->sql;
  size_t i, params = 0, max = sql_dialect_max_params(d);
  enum app_result r;

  APP_ASSERT(g->kind == SQL_GROUP_ENTITY && from < g->nrows);
  APP_RETURN_IF_FAILED(check_idents(d, g, err));
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

  if (d == SQL_DIALECT_POSTGRES) {
    r = buf_append_str(b, "INSERT INTO ");
    if (!r)
      r = sql_dialect_table(d, g->table, NULL, b);
    if (!r)
      r = buf_append_str(b, " AS t (");
    if (!r)
      r = column_list(d, g, NULL, b);
    if (!r)
      r = buf_append_str(b, ", \"" C_UPDATED "\")");
    if (!r)
      r = pg_unnest(d, g, from, *out_count, out);
    if (!r)
      r = buf_append_str(b, "\nON CONFLICT (");
    if (!r)
      r = col(d, b, NULL, g->key, NULL);
    if (!r)
      r = buf_append_str(b, ") DO UPDATE SET");
    if (!r)
      r = set_list(d, g, "EXCLUDED", b);
    if (!r)
      r = buf_append_str(b, "\nWHERE ");
    if (!r)
      r = changed_cond(d, g, "EXCLUDED", b);
  } else {
    r = buf_append_str(b, "MERGE INTO ");
    if (!r)
      r = sql_dialect_table(d, g->table, NULL, b);
    if (!r)
      r = buf_append_str(b, " WITH (HOLDLOCK) AS t\nUSING (VALUES");
    for (i = from; !r && i < from + *out_count; i++) {
      if (i > from)
        r = buf_append_char(b, ',');
      if (!r)
        r = values_row(d, g, &g->rows[i], out);
    }
    if (!r)
      r = buf_append_str(b, "\n) AS s (");
    if (!r)
      r = column_list(d, g, NULL, b);
    if (!r)
      r = buf_append_str(b, ")\nON t.");
    if (!r)
      r = col(d, b, NULL, g->key, NULL);
    if (!r)
      r = buf_append_str(b, " = s.");
    if (!r)
      r = col(d, b, NULL, g->key, NULL);
    if (!r)
      r = buf_append_str(b, "\nWHEN MATCHED AND (");
    if (!r)
      r = changed_cond(d, g, "s", b);
    if (!r)
      r = buf_append_str(b, ") THEN UPDATE SET");
    if (!r)
      r = set_list(d, g, "s", b);
    if (!r)
      r = buf_append_str(b, "\nWHEN NOT MATCHED THEN INSERT (");
    if (!r)
      r = column_list(d, g, NULL, b);
    if (!r)
      r = buf_append_str(b, ", [" C_UPDATED "])\n  VALUES (");
    if (!r)
      r = column_list(d, g, "s", b);
    if (!r)
      r = buf_append_str(b, ", SYSUTCDATETIME());");
  }
  if (r != APP_OK)
    return app_err_set(err, r, "table %s: statement text too large", g->table);
  return APP_OK;
}

enum app_result sql_dialect_link_upsert(enum sql_dialect d, const struct sql_group *g, size_t from,
                                        struct sql_stmt *out, size_t *out_count,
                                        struct app_err *err)
{
  struct buf *b = &out->sql;
  size_t i, n, max = d == SQL_DIALECT_TSQL ? sql_dialect_max_params(d) / 5 : MAX_ROWS_PER_STMT;
  bool ts = d == SQL_DIALECT_TSQL;
  const char *guid = sql_dialect_type(d, DOC_T_GUID);
  const char *name_t = ts ? "nvarchar(128)" : "text";
  enum app_result r = APP_OK;

  APP_ASSERT(g->kind == SQL_GROUP_LINK && from < g->nlinks);
  sql_stmt_reset(out);
  n = g->nlinks - from;
  if (n > max)
    n = max;
  if (n > MAX_ROWS_PER_STMT)
    n = MAX_ROWS_PER_STMT;
  *out_count = n;

  r = buf_append_str(b, ts ? "MERGE INTO " : "INSERT INTO ");
  if (!r)
    r = sql_dialect_table(d, g->table, NULL, b);
  if (!r && ts)
    r = buf_append_str(b, " WITH (HOLDLOCK) AS t\nUSING (VALUES");
  if (!r && !ts) {
    r = buf_append_str(b, " AS t (\"table1\", \"id1\", \"table2\", \"id2\", "
                          "\"_cdc_associated\", \"_cdc_version\", \"_cdc_updated_at\")\n"
                          "SELECT s.*, now() FROM unnest(");
    for (i = 0; !r && i < 6; i++) {
      static const char *const types[] = {"text", "uuid", "text", "uuid", "boolean", "varchar(45)"};
      struct buf a;
      size_t k;
      buf_init(&a, SQL_STMT_MAX_PARAM);
      r = buf_append_char(&a, '{');
      for (k = from; !r && k < from + n; k++) {
        const struct sql_link *l = &g->links[k];
        const char *v = i == 0   ? l->table1
                        : i == 1 ? l->id1
                        : i == 2 ? l->table2
                        : i == 3 ? l->id2
                        : i == 4 ? (l->associated ? "t" : "f")
                                 : l->version;
        r = array_elem(&a, k == from, v, strlen(v));
      }
      if (!r)
        r = buf_append_char(&a, '}');
      if (!r)
        r = param_add_owned(out, &a);
      buf_cleanup(&a);
      if (!r)
        r = buf_printf(b, "%sCAST(? AS %s[])", i ? ", " : "", types[i]);
    }
    if (!r)
      r = buf_append_str(b, ") AS s");
  }
  for (i = from; !r && ts && i < from + n; i++) {
    const struct sql_link *l = &g->links[i];
    r = buf_append_str(b, i > from ? ",\n  (" : "\n  (");
    if (!r)
      r = cast_value(d, out, l->table1, strlen(l->table1), name_t);
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = cast_value(d, out, l->id1, strlen(l->id1), guid);
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = cast_value(d, out, l->table2, strlen(l->table2), name_t);
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = cast_value(d, out, l->id2, strlen(l->id2), guid);
    if (!r)
      r = buf_append_str(b, l->associated ? ", CAST(1 AS bit), " : ", CAST(0 AS bit), ");
    if (!r)
      r = version_value(d, out, l->version);
    if (!r)
      r = buf_append_str(b, ")");
  }
  if (!r && ts)
    r = buf_append_str(
        b, "\n) AS s ([table1], [id1], [table2], [id2], [_cdc_associated], [_cdc_version])\n"
           "ON t.[id1] = s.[id1] AND t.[id2] = s.[id2]\n"
           "WHEN MATCHED AND s.[_cdc_version] > t.[_cdc_version] THEN UPDATE SET\n"
           "  [_cdc_associated] = s.[_cdc_associated], [_cdc_version] = s.[_cdc_version],\n"
           "  [_cdc_updated_at] = SYSUTCDATETIME()\n"
           "WHEN NOT MATCHED THEN INSERT ([table1], [id1], [table2], [id2], [_cdc_associated], "
           "[_cdc_version], [_cdc_updated_at])\n"
           "  VALUES (s.[table1], s.[id1], s.[table2], s.[id2], s.[_cdc_associated], "
           "s.[_cdc_version], SYSUTCDATETIME());");
  if (!r && !ts)
    r = buf_append_str(b, "\nON CONFLICT (\"id1\", \"id2\") DO UPDATE SET\n"
                          "  \"_cdc_associated\" = EXCLUDED.\"_cdc_associated\", "
                          "\"_cdc_version\" = EXCLUDED.\"_cdc_version\",\n"
                          "  \"_cdc_updated_at\" = now()\n"
                          "WHERE EXCLUDED.\"_cdc_version\" > t.\"_cdc_version\"");
  if (r != APP_OK)
    return app_err_set(err, r, "link table %s: statement text too large", g->table);
  return APP_OK;
}

/* " IN (?, ?, ...)" (T-SQL) or " = ANY(CAST(? AS uuid[]))" (PostgreSQL)
 * over the ids of rows [from, from+count). */
static enum app_result id_match(enum sql_dialect d, const struct sql_group *g, size_t from,
                                size_t count, struct sql_stmt *s)
{
  size_t i;
  if (d == SQL_DIALECT_POSTGRES) {
    APP_RETURN_IF_FAILED(buf_append_str(&s->sql, " = ANY("));
    APP_RETURN_IF_FAILED(pg_array(s, g, from, count, PGF_ID, 0, "uuid"));
    return buf_append_char(&s->sql, ')');
  }
  APP_RETURN_IF_FAILED(buf_append_str(&s->sql, " IN ("));
  for (i = from; i < from + count; i++) {
    if (i > from)
      APP_RETURN_IF_FAILED(buf_append_str(&s->sql, ", "));
    APP_RETURN_IF_FAILED(
        cast_value(d, s, g->rows[i].id, strlen(g->rows[i].id), sql_dialect_type(d, DOC_T_GUID)));
  }
  return buf_append_char(&s->sql, ')');
}

enum app_result sql_dialect_hard_delete(enum sql_dialect d, const struct sql_group *g, size_t from,
                                        size_t count, enum sql_hard_step step, struct sql_stmt *out,
                                        struct app_err *err)
{
  struct buf *b = &out->sql;
  bool ts = d == SQL_DIALECT_TSQL;
  enum app_result r = APP_OK;
  const char *now = ts ? "SYSUTCDATETIME()" : "now()";

  APP_ASSERT(g->kind == SQL_GROUP_ENTITY && from + count <= g->nrows && count);
  APP_RETURN_IF_FAILED(check_idents(d, g, err));
  sql_stmt_reset(out);
  switch (step) {
  case SQL_HARD_RESTORE:
    r = buf_append_str(b, "INSERT INTO ");
    if (!r)
      r = sql_dialect_table(d, g->table, NULL, b);
    if (!r)
      r = buf_append_str(b, " (");
    if (!r)
      r = col(d, b, NULL, g->key, NULL);
    if (!r)
      r = buf_printf(
          b, ", %s, %s, %s, %s)\nSELECT b.", ts ? "[" C_VERSION "]" : "\"" C_VERSION "\"",
          ts ? "[" C_DELETED "]" : "\"" C_DELETED "\"", ts ? "[" C_DELV "]" : "\"" C_DELV "\"",
          ts ? "[" C_UPDATED "]" : "\"" C_UPDATED "\"");
    if (!r)
      r = col(d, b, NULL, g->key, NULL);
    if (!r)
      r = buf_printf(b, ", b.%s, %s, b.%s, %s\nFROM ", ts ? "[" C_VERSION "]" : "\"" C_VERSION "\"",
                     ts ? "CAST(1 AS bit)" : "true", ts ? "[" C_VERSION "]" : "\"" C_VERSION "\"",
                     now);
    if (!r)
      r = sql_dialect_table(d, g->table, TOMB_SUF, b);
    if (!r)
      r = buf_append_str(b, " AS b\nWHERE b.");
    if (!r)
      r = col(d, b, NULL, g->key, NULL);
    if (!r)
      r = id_match(d, g, from, count, out);
    if (!r && ts) {
      r = buf_append_str(b, "\n  AND NOT EXISTS (SELECT 1 FROM ");
      if (!r)
        r = sql_dialect_table(d, g->table, NULL, b);
      if (!r)
        r = buf_append_str(b, " AS t WITH (UPDLOCK, HOLDLOCK) WHERE t.");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, " = b.");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, ");");
    } else if (!r) {
      r = buf_append_str(b, "\nON CONFLICT DO NOTHING");
    }
    break;
  case SQL_HARD_ARCHIVE:
    if (ts) {
      r = buf_append_str(b, "MERGE INTO ");
      if (!r)
        r = sql_dialect_table(d, g->table, TOMB_SUF, b);
      if (!r)
        r = buf_append_str(b, " WITH (HOLDLOCK) AS b\nUSING (SELECT ");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, ", [" C_DELV "] FROM ");
      if (!r)
        r = sql_dialect_table(d, g->table, NULL, b);
      if (!r)
        r = buf_append_str(b, " WHERE [" C_DELETED "] = 1 AND ");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = id_match(d, g, from, count, out);
      if (!r)
        r = buf_append_str(b, ") AS s\nON b.");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, " = s.");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, "\nWHEN MATCHED AND s.[" C_DELV "] > b.[" C_VERSION "] THEN UPDATE "
                              "SET [" C_VERSION "] = s.[" C_DELV "], [_cdc_deleted_at] = "
                              "SYSUTCDATETIME()\nWHEN NOT MATCHED THEN INSERT (");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, ", [" C_VERSION "], [_cdc_deleted_at]) VALUES (s.");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, ", s.[" C_DELV "], SYSUTCDATETIME());");
    } else {
      r = buf_append_str(b, "INSERT INTO ");
      if (!r)
        r = sql_dialect_table(d, g->table, TOMB_SUF, b);
      if (!r)
        r = buf_append_str(b, " AS b (");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, ", \"" C_VERSION "\", \"_cdc_deleted_at\")\nSELECT ");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, ", \"" C_DELV "\", now() FROM ");
      if (!r)
        r = sql_dialect_table(d, g->table, NULL, b);
      if (!r)
        r = buf_append_str(b, "\nWHERE \"" C_DELETED "\" AND ");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = id_match(d, g, from, count, out);
      if (!r)
        r = buf_append_str(b, "\nON CONFLICT (");
      if (!r)
        r = col(d, b, NULL, g->key, NULL);
      if (!r)
        r = buf_append_str(b, ") DO UPDATE SET \"" C_VERSION "\" = EXCLUDED.\"" C_VERSION
                              "\", \"_cdc_deleted_at\" = now()\nWHERE EXCLUDED.\"" C_VERSION
                              "\" > b.\"" C_VERSION "\"");
    }
    break;
  case SQL_HARD_REMOVE:
    r = buf_append_str(b, "DELETE FROM ");
    if (!r)
      r = sql_dialect_table(d, g->table, NULL, b);
    if (!r)
      r = buf_append_str(b, ts ? "\nWHERE [" C_DELETED "] = 1 AND "
                               : "\nWHERE \"" C_DELETED "\" AND ");
    if (!r)
      r = col(d, b, NULL, g->key, NULL);
    if (!r)
      r = id_match(d, g, from, count, out);
    if (!r && ts)
      r = buf_append_char(b, ';');
    break;
  }
  if (r != APP_OK)
    return app_err_set(err, r, "table %s: statement text too large", g->table);
  return APP_OK;
}

enum app_result sql_dialect_columns_query(enum sql_dialect d, const char *table,
                                          struct sql_stmt *out, struct app_err *err)
{
  struct buf *b = &out->sql;
  const char *dot = strchr(table, '.');
  const char *name = dot ? dot + 1 : table;
  enum app_result r;

  sql_stmt_reset(out);
  if (d == SQL_DIALECT_TSQL) {
    r = buf_append_str(b, "SELECT c.name, t.name FROM sys.columns AS c JOIN sys.types AS t ON "
                          "t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID(");
    if (!r) {
      struct buf q;
      buf_init(&q, 0);
      r = sql_dialect_table(d, table, NULL, &q);
      if (!r)
        r = str_literal(d, q.data, q.len, b);
      buf_cleanup(&q);
    }
    if (!r)
      r = buf_append_str(b, ") ORDER BY c.column_id");
  } else {
    r = buf_append_str(b, "SELECT column_name, data_type FROM information_schema.columns WHERE "
                          "table_schema = ");
    if (!r && dot)
      r = str_literal(d, table, (size_t)(dot - table), b);
    if (!r && !dot)
      r = buf_append_str(b, "current_schema()");
    if (!r)
      r = buf_append_str(b, " AND table_name = ");
    if (!r)
      r = str_literal(d, name, strlen(name), b);
    if (!r)
      r = buf_append_str(b, " ORDER BY ordinal_position");
  }
  if (r != APP_OK)
    return app_err_set(err, r, "table %s: catalogue query too large", table);
  return APP_OK;
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

static enum app_result text_or_null(enum sql_dialect d, struct sql_stmt *s, const char *v,
                                    const char *type)
{
  return cast_value(d, s, v, v ? strlen(v) : 0, type);
}

enum app_result sql_dialect_poison_insert(enum sql_dialect d, const struct sql_poison_row *rows,
                                          size_t n, size_t from, struct sql_stmt *out,
                                          size_t *out_count, struct app_err *err)
{
  struct buf *b = &out->sql;
  bool ts = d == SQL_DIALECT_TSQL;
  const char *text_t = ts ? "nvarchar(max)" : "text";
  const char *short_t = ts ? "nvarchar(200)" : "text";
  size_t i, count = n - from, per_stmt = sql_dialect_max_params(d) / 10;
  enum app_result r;

  APP_ASSERT(from < n);
  sql_stmt_reset(out);
  if (count > per_stmt)
    count = per_stmt;
  *out_count = count;
  r = buf_append_str(b, ts ? "MERGE INTO [" SQL_POISON_TABLE "] WITH (HOLDLOCK) AS t\nUSING (VALUES"
                           : "INSERT INTO \"" SQL_POISON_TABLE "\" (\"poison_key\", "
                             "\"message_id\", \"reason\", \"body\", \"content_type\", "
                             "\"delivery_count\", \"enqueued_ms\", \"function_name\", "
                             "\"invocation_id\", \"recorded_at\")\nVALUES");
  for (i = from; r == APP_OK && i < from + count; i++) {
    const struct sql_poison_row *p = &rows[i];
    r = buf_append_str(b, i > from ? ",\n  (" : "\n  (");
    if (!r)
      r = text_or_null(d, out, p->key, "varchar(100)");
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = text_or_null(d, out, p->message_id, short_t);
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = text_or_null(d, out, p->reason ? p->reason : "", text_t);
    if (!r)
      r = buf_append_str(b, ts ? ", CONVERT(varbinary(max), " : ", decode(");
    if (!r)
      r = hex_param(out, p->body ? p->body : "", p->body ? p->body_len : 0);
    if (!r)
      r = buf_append_str(b, ts ? "?, 2), " : "?, 'hex'), ");
    if (!r)
      r = text_or_null(d, out, p->content_type, short_t);
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = int_param(out, p->delivery_count, ts ? "int" : "integer");
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = int_param(out, p->enqueued_ms, "bigint");
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = text_or_null(d, out, p->function, short_t);
    if (!r)
      r = buf_append_str(b, ", ");
    if (!r)
      r = text_or_null(d, out, p->invocation_id, short_t);
    if (!r)
      r = buf_append_str(b, ts ? ", SYSUTCDATETIME())" : ", now())");
  }
  if (!r && ts)
    r = buf_append_str(
        b, "\n) AS s ([poison_key], [message_id], [reason], [body], [content_type], "
           "[delivery_count], [enqueued_ms], [function_name], [invocation_id], [recorded_at])\n"
           "ON t.[poison_key] = s.[poison_key]\n"
           "WHEN NOT MATCHED THEN INSERT ([poison_key], [message_id], [reason], [body], "
           "[content_type], [delivery_count], [enqueued_ms], [function_name], [invocation_id], "
           "[recorded_at])\n"
           "  VALUES (s.[poison_key], s.[message_id], s.[reason], s.[body], s.[content_type], "
           "s.[delivery_count], s.[enqueued_ms], s.[function_name], s.[invocation_id], "
           "s.[recorded_at]);");
  if (!r && !ts)
    r = buf_append_str(b, "\nON CONFLICT (\"poison_key\") DO NOTHING");
  if (r != APP_OK)
    return app_err_set(err, r, "poison rows: statement text too large");
  return APP_OK;
}

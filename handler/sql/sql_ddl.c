/* sql_ddl.c - CREATE TABLE / ADD COLUMN text for both dialects. */
#include "sql/sql_ddl.h"

#include <stdio.h>
#include <string.h>

static enum app_result check(enum sql_dialect d, const char *table, const char *suffix,
                             struct app_err *err)
{
  const char *dot;
  if (d == SQL_DIALECT_NONE)
    return app_err_set(err, APP_ERR_INPUT, "DDL needs a dialect (tsql or postgres)");
  dot = strrchr(table, '.');
  if (!*table || (dot && !dot[1]) || dot == table || dot != strchr(table, '.') ||
      strlen(dot ? dot + 1 : table) + strlen(suffix) > sql_dialect_max_ident(d) ||
      (dot && (size_t)(dot - table) > sql_dialect_max_ident(d)))
    return app_err_set(err, APP_ERR_INPUT,
                       "table name '%.80s' is not [schema.]name or too long for %s", table,
                       sql_dialect_name(d));
  return APP_OK;
}

static enum app_result check_col(enum sql_dialect d, const char *name, struct app_err *err)
{
  if (!*name || strlen(name) + 3 > sql_dialect_max_ident(d))
    return app_err_set(err, APP_ERR_INPUT, "column name '%.80s' is empty or too long for %s", name,
                       sql_dialect_name(d));
  return APP_OK;
}

static enum app_result coldef(enum sql_dialect d, const char *name, const char *suffix,
                              const char *type, const char *tail, struct buf *out)
{
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s%s", name, suffix);
  APP_RETURN_IF_FAILED(sql_dialect_ident(d, tmp, out));
  return buf_printf(out, " %s%s", type, tail);
}

/* One indented line of a CREATE TABLE: "  name type tail". */
static enum app_result coldef_line(enum sql_dialect d, const char *name, const char *suffix,
                                   const char *type, const char *tail, struct buf *out)
{
  APP_RETURN_IF_FAILED(buf_append_str(out, "  "));
  return coldef(d, name, suffix, type, tail, out);
}

/* "CREATE TABLE <table><suffix> (\n", guarded so an existing table is kept:
 * "IF OBJECT_ID(N'[s].[t]', N'U') IS NULL\n" in T-SQL. */
static enum app_result create_head(enum sql_dialect d, const char *table, const char *suffix,
                                   struct buf *out)
{
  if (d == SQL_DIALECT_TSQL) {
    APP_RETURN_IF_FAILED(buf_append_str(out, "IF OBJECT_ID("));
    APP_RETURN_IF_FAILED(sql_dialect_table_literal(d, table, suffix, out));
    APP_RETURN_IF_FAILED(buf_append_str(out, ", N'U') IS NULL\nCREATE TABLE "));
  } else {
    APP_RETURN_IF_FAILED(buf_append_str(out, "CREATE TABLE IF NOT EXISTS "));
  }
  APP_RETURN_IF_FAILED(sql_dialect_table(d, table, suffix, out));
  return buf_append_str(out, " (\n");
}

static enum app_result entity_create(enum sql_dialect d, const char *table, const char *key,
                                     const struct sql_column *cols, size_t ncols,
                                     enum sql_delete_mode mode, struct buf *out)
{
  bool ts = d == SQL_DIALECT_TSQL;
  const char *vt = sql_dialect_version_type(d);
  const char *guid = sql_dialect_type(d, DOC_T_GUID);
  const char *utc = sql_dialect_type(d, DOC_T_DATETIME);
  const char *now = ts ? "SYSUTCDATETIME()" : "now()";
  char tail[64];
  size_t i;

  APP_RETURN_IF_FAILED(create_head(d, table, "", out));
  APP_RETURN_IF_FAILED(coldef_line(d, key, "", guid, " NOT NULL PRIMARY KEY,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_version", "", vt, " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_deleted", "", sql_dialect_type(d, DOC_T_BOOL),
                                   ts ? " NOT NULL DEFAULT 0,\n" : " NOT NULL DEFAULT false,\n",
                                   out));
  APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_deleted_version", "", vt, " NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_full_version", "", vt, " NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_reread_version", "", vt, " NULL,\n", out));
  snprintf(tail, sizeof tail, " NOT NULL DEFAULT %s%s\n", now, ncols ? "," : "");
  APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_updated_at", "", utc, tail, out));
  for (i = 0; i < ncols; i++) {
    APP_RETURN_IF_FAILED(
        coldef_line(d, cols[i].name, "", sql_dialect_type(d, cols[i].type), " NULL,\n", out));
    APP_RETURN_IF_FAILED(
        coldef_line(d, cols[i].name, "__v", vt, i + 1 < ncols ? " NULL,\n" : " NULL\n", out));
  }
  APP_RETURN_IF_FAILED(buf_append_str(out, ");\n"));
  if (mode == SQL_DELETE_HARD) {
    APP_RETURN_IF_FAILED(create_head(d, table, "__tombstone", out));
    APP_RETURN_IF_FAILED(coldef_line(d, key, "", guid, " NOT NULL PRIMARY KEY,\n", out));
    APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_version", "", vt, " NOT NULL,\n", out));
    snprintf(tail, sizeof tail, " NOT NULL DEFAULT %s\n", now);
    APP_RETURN_IF_FAILED(coldef_line(d, "_cdc_deleted_at", "", utc, tail, out));
    APP_RETURN_IF_FAILED(buf_append_str(out, ");\n"));
  }
  return APP_OK;
}

enum app_result sql_ddl_create(enum sql_dialect d, const char *table, const char *key,
                               const struct sql_column *cols, size_t ncols,
                               enum sql_delete_mode mode, struct buf *out, struct app_err *err)
{
  size_t i;
  APP_RETURN_IF_FAILED(check(d, table, mode == SQL_DELETE_HARD ? "__tombstone" : "", err));
  APP_RETURN_IF_FAILED(check_col(d, key, err));
  for (i = 0; i < ncols; i++)
    APP_RETURN_IF_FAILED(check_col(d, cols[i].name, err));
  if (entity_create(d, table, key, cols, ncols, mode, out) != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "DDL for %s: text too large", table);
  return APP_OK;
}

static enum app_result add_columns(enum sql_dialect d, const char *table,
                                   const struct sql_column *cols, size_t ncols, struct buf *out)
{
  const char *vt = sql_dialect_version_type(d);
  size_t i;
  if (!ncols)
    return APP_OK;
  if (d == SQL_DIALECT_POSTGRES) {
    APP_RETURN_IF_FAILED(buf_append_str(out, "ALTER TABLE "));
    APP_RETURN_IF_FAILED(sql_dialect_table(d, table, NULL, out));
    for (i = 0; i < ncols; i++) {
      APP_RETURN_IF_FAILED(buf_append_str(out, i ? ",\n  ADD COLUMN IF NOT EXISTS "
                                                 : "\n  ADD COLUMN IF NOT EXISTS "));
      APP_RETURN_IF_FAILED(
          coldef(d, cols[i].name, "", sql_dialect_type(d, cols[i].type), " NULL", out));
      APP_RETURN_IF_FAILED(buf_append_str(out, ",\n  ADD COLUMN IF NOT EXISTS "));
      APP_RETURN_IF_FAILED(coldef(d, cols[i].name, "__v", vt, " NULL", out));
    }
    return buf_append_str(out, ";\n");
  }
  /* T-SQL has no ADD COLUMN IF NOT EXISTS: one guarded ALTER per column */
  for (i = 0; i < ncols; i++) {
    APP_RETURN_IF_FAILED(buf_append_str(out, "IF COL_LENGTH("));
    APP_RETURN_IF_FAILED(sql_dialect_table_literal(d, table, NULL, out));
    APP_RETURN_IF_FAILED(buf_append_str(out, ", "));
    APP_RETURN_IF_FAILED(sql_dialect_literal(d, cols[i].name, strlen(cols[i].name), out));
    APP_RETURN_IF_FAILED(buf_append_str(out, ") IS NULL\n  ALTER TABLE "));
    APP_RETURN_IF_FAILED(sql_dialect_table(d, table, NULL, out));
    APP_RETURN_IF_FAILED(buf_append_str(out, " ADD "));
    APP_RETURN_IF_FAILED(
        coldef(d, cols[i].name, "", sql_dialect_type(d, cols[i].type), " NULL, ", out));
    APP_RETURN_IF_FAILED(coldef(d, cols[i].name, "__v", vt, " NULL;\n", out));
  }
  return APP_OK;
}

enum app_result sql_ddl_add_columns(enum sql_dialect d, const char *table,
                                    const struct sql_column *cols, size_t ncols, struct buf *out,
                                    struct app_err *err)
{
  size_t i;
  APP_RETURN_IF_FAILED(check(d, table, "", err));
  for (i = 0; i < ncols; i++)
    APP_RETURN_IF_FAILED(check_col(d, cols[i].name, err));
  if (add_columns(d, table, cols, ncols, out) != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "DDL for %s: text too large", table);
  return APP_OK;
}

static enum app_result link_create(enum sql_dialect d, const char *table, struct buf *out)
{
  bool ts = d == SQL_DIALECT_TSQL;
  const char *guid = sql_dialect_type(d, DOC_T_GUID);
  const char *name_t = ts ? "nvarchar(128)" : "text";
  const char *dot = strrchr(table, '.');
  char ix[300];

  APP_RETURN_IF_FAILED(create_head(d, table, "", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "table1", "", name_t, " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "id1", "", guid, " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "table2", "", name_t, " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "id2", "", guid, " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(
      coldef_line(d, "_cdc_associated", "", sql_dialect_type(d, DOC_T_BOOL), " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(
      coldef_line(d, "_cdc_version", "", sql_dialect_version_type(d), " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(
      d, "_cdc_updated_at", "", sql_dialect_type(d, DOC_T_DATETIME),
      ts ? " NOT NULL DEFAULT SYSUTCDATETIME(),\n" : " NOT NULL DEFAULT now(),\n", out));
  snprintf(ix, sizeof ix, "%s__id2", dot ? dot + 1 : table);
  if (ts) {
    APP_RETURN_IF_FAILED(buf_append_str(out, "  PRIMARY KEY ([id1], [id2]),\n  INDEX "));
    APP_RETURN_IF_FAILED(sql_dialect_ident(d, ix, out));
    return buf_append_str(out, " NONCLUSTERED ([id2])\n);\n");
  }
  APP_RETURN_IF_FAILED(buf_append_str(out, "  PRIMARY KEY (\"id1\", \"id2\")\n);\n"
                                           "CREATE INDEX IF NOT EXISTS "));
  APP_RETURN_IF_FAILED(sql_dialect_ident(d, ix, out));
  APP_RETURN_IF_FAILED(buf_append_str(out, " ON "));
  APP_RETURN_IF_FAILED(sql_dialect_table(d, table, NULL, out));
  return buf_append_str(out, " (\"id2\");\n");
}

enum app_result sql_ddl_create_link(enum sql_dialect d, const char *table, struct buf *out,
                                    struct app_err *err)
{
  APP_RETURN_IF_FAILED(check(d, table, "__id2", err));
  if (link_create(d, table, out) != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "DDL for %s: text too large", table);
  return APP_OK;
}

static enum app_result poison_create(enum sql_dialect d, struct buf *out)
{
  bool ts = d == SQL_DIALECT_TSQL;
  const char *text_t = ts ? "nvarchar(max)" : "text";
  const char *short_t = ts ? "nvarchar(200)" : "text";
  APP_RETURN_IF_FAILED(create_head(d, SQL_POISON_TABLE, "", out));
  APP_RETURN_IF_FAILED(
      coldef_line(d, "poison_key", "", "varchar(100)", " NOT NULL PRIMARY KEY,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "message_id", "", short_t, " NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "reason", "", text_t, " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(
      coldef_line(d, "body", "", ts ? "varbinary(max)" : "bytea", " NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "content_type", "", short_t, " NULL,\n", out));
  APP_RETURN_IF_FAILED(
      coldef_line(d, "delivery_count", "", ts ? "int" : "integer", " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "enqueued_ms", "", "bigint", " NOT NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "function_name", "", short_t, " NULL,\n", out));
  APP_RETURN_IF_FAILED(coldef_line(d, "invocation_id", "", short_t, " NULL,\n", out));
  APP_RETURN_IF_FAILED(
      coldef_line(d, "recorded_at", "", sql_dialect_type(d, DOC_T_DATETIME),
                  ts ? " NOT NULL DEFAULT SYSUTCDATETIME()\n" : " NOT NULL DEFAULT now()\n", out));
  return buf_append_str(out, ");\n");
}

enum app_result sql_ddl_create_poison(enum sql_dialect d, struct buf *out, struct app_err *err)
{
  if (d == SQL_DIALECT_NONE)
    return app_err_set(err, APP_ERR_INPUT, "DDL needs a dialect (tsql or postgres)");
  if (poison_create(d, out) != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "DDL for %s: text too large", SQL_POISON_TABLE);
  return APP_OK;
}

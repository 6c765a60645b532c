/* sql_ddl.h - table definitions for the SQL sink (pure).
 *
 * Tables are generated from the mapping: the key column, the _cdc_* row
 * columns, and per mapped property a value column typed from its Dataverse
 * type (sql_dialect_type) plus a "<name>__v" version column. Schema
 * evolution is additive only, like the JDBC sinks' "basic" mode: new
 * properties add columns; nothing is ever dropped or retyped.
 *
 * Every statement is idempotent (IF NOT EXISTS / OBJECT_ID / COL_LENGTH
 * checks) so several handler instances may run it at once. The text is
 * appended to out and may hold several statements separated by ";\n". */
#ifndef D365CDC_SQL_DDL_H
#define D365CDC_SQL_DDL_H

#include "common/buf.h"
#include "common/result.h"
#include "sql/sql_dialect.h"

/* CREATE TABLE for an entity table named table ("schema.name" or "name")
 * with primary key column key and the given mapped columns; with
 * SQL_DELETE_HARD also its "<name>__tombstone" table.
 *   APP_ERR_INPUT  dialect NONE, or a name too long for the dialect
 *   APP_ERR_LIMIT  out's ceiling */
APP_NODISCARD enum app_result sql_ddl_create(enum sql_dialect d, const char *table, const char *key,
                                             const struct sql_column *cols, size_t ncols,
                                             enum sql_delete_mode mode, struct buf *out,
                                             struct app_err *err);

/* ALTER TABLE ... ADD for each of cols (value and version column), each
 * guarded so an existing column is left as it is. Nothing is appended when
 * ncols is 0. Errors as sql_ddl_create. */
APP_NODISCARD enum app_result sql_ddl_add_columns(enum sql_dialect d, const char *table,
                                                  const struct sql_column *cols, size_t ncols,
                                                  struct buf *out, struct app_err *err);

/* CREATE TABLE for the link table of a relationship: (table1, id1, table2,
 * id2, _cdc_associated, _cdc_version, _cdc_updated_at), primary key
 * (id1, id2) and an index on id2. Errors as sql_ddl_create. */
APP_NODISCARD enum app_result sql_ddl_create_link(enum sql_dialect d, const char *table,
                                                  struct buf *out, struct app_err *err);

/* CREATE TABLE for the poison table (SQL_POISON_TABLE in the default
 * schema): poison_key primary key, message_id, reason, body (raw bytes),
 * content_type, delivery_count, enqueued_ms, function_name, invocation_id,
 * recorded_at. Errors as sql_ddl_create. */
APP_NODISCARD enum app_result sql_ddl_create_poison(enum sql_dialect d, struct buf *out,
                                                    struct app_err *err);

#endif

/* sql_dialect.h - T-SQL and PostgreSQL statements for the SQL sink (pure).
 *
 * Everything that differs between Azure SQL / SQL Server and PostgreSQL is
 * here: identifier quoting, column types, the version-guarded multi-row
 * upsert (T-SQL `MERGE ... WITH (HOLDLOCK)`, PostgreSQL `INSERT ... ON
 * CONFLICT ... DO UPDATE`), link-table upserts, the hard-delete moves and
 * the catalogue query. Statements take their values as `?` parameters
 * (text, converted by an explicit CAST in the statement, so exact decimal
 * lexemes and GUIDs arrive unchanged).
 *
 * T-SQL: a `VALUES` row constructor per row, one parameter per non-null
 * value (typed NULL literals otherwise), at most 2000 parameters.
 * PostgreSQL: one array parameter per column, zipped by `unnest(...)`:
 * a 1000-row statement then has a few dozen parameters, and the server
 * parses and binds it in well under a millisecond instead of ~100 ms for
 * the equivalent VALUES list (measured, docs/sql.md).
 *
 * The guard, per column c of a merged row s against the stored row t:
 *   c is written  iff  s.c__v > coalesce(t.c__v, '')
 *                  and s.c__v > coalesce(t._cdc_deleted_version, '')
 * and the row-level _cdc_* versions only ever grow (GREATEST). A row
 * changes only when something in it is newer, so a redelivery writes
 * nothing (and counts 0 rows). docs/sql.md explains the whole scheme. */
#ifndef D365CDC_SQL_DIALECT_H
#define D365CDC_SQL_DIALECT_H

#include "common/buf.h"
#include "common/result.h"
#include "sql/sql_plan.h"

#include <stdbool.h>
#include <stddef.h>

enum sql_dialect { SQL_DIALECT_NONE = 0, SQL_DIALECT_TSQL, SQL_DIALECT_POSTGRES };

/* Deletes: SOFT keeps the row with _cdc_deleted = true (it is its own
 * tombstone); HARD removes it and keeps (id, version) in "<table>__tombstone". */
enum sql_delete_mode { SQL_DELETE_SOFT = 0, SQL_DELETE_HARD };

/* "tsql", "postgres" or "none". */
const char *sql_dialect_name(enum sql_dialect d);
/* Parse "tsql" | "postgres" (also "mssql", "sqlserver", "azuresql", "postgresql",
 * "pg"); SQL_DIALECT_NONE for "auto", "" or NULL. APP_ERR_CONFIG otherwise. */
APP_NODISCARD enum app_result sql_dialect_parse(const char *s, enum sql_dialect *out,
                                                struct app_err *err);
/* Longest identifier in bytes: 128 (T-SQL), 63 (PostgreSQL). */
size_t sql_dialect_max_ident(enum sql_dialect d);
/* Most `?` parameters one statement may carry: 2000 (T-SQL allows 2100),
 * 30000 (PostgreSQL's protocol allows 65535; its statements use arrays). */
size_t sql_dialect_max_params(enum sql_dialect d);
/* Column type for a Dataverse type, e.g. DOC_T_DECIMAL: "decimal(38,10)"
 * (T-SQL), "numeric" (PostgreSQL). Never NULL. */
const char *sql_dialect_type(enum sql_dialect d, enum doc_type t);
/* The doc_type a catalogue type name stands for ("uuid" -> DOC_T_GUID);
 * DOC_T_TEXT for anything unknown. */
enum doc_type sql_dialect_type_from_db(const char *db_type);
/* Type of the version columns: varchar(45) with a binary collation. */
const char *sql_dialect_version_type(enum sql_dialect d);

/* Append name quoted as one identifier ("a""b" / [a]]b]). */
APP_NODISCARD enum app_result sql_dialect_ident(enum sql_dialect d, const char *name,
                                                struct buf *out);
/* Append a table name "schema.name" or "name" with each part quoted;
 * suffix (may be NULL) is appended to the last part ("__tombstone"). */
APP_NODISCARD enum app_result sql_dialect_table(enum sql_dialect d, const char *table,
                                                const char *suffix, struct buf *out);

/* Append s[0..n) as a string literal: '...' with each ' doubled (N'...'
 * in T-SQL). */
APP_NODISCARD enum app_result sql_dialect_literal(enum sql_dialect d, const char *s, size_t n,
                                                  struct buf *out);
/* Append the quoted table name (sql_dialect_table) as a string literal,
 * e.g. N'[dbo].[it''s]', for OBJECT_ID() and COL_LENGTH(). */
APP_NODISCARD enum app_result sql_dialect_table_literal(enum sql_dialect d, const char *table,
                                                        const char *suffix, struct buf *out);

/* A statement with its parameters. Parameter texts are either borrowed
 * (from the plan's arena / the documents, which must outlive the execution)
 * or owned by the statement (PostgreSQL array literals built here). */
struct sql_stmt {
  struct buf sql;
  const char **vals; /* parameter i (0-based) is vals[i][0..lens[i]) */
  size_t *lens;
  size_t nparams, cap;
  char **owned; /* texts this statement allocated; freed on reset/cleanup */
  size_t nowned, owned_cap;
};

/* Ceilings for what one statement may hold (its text, one parameter's
 * text); past them statement building fails with APP_ERR_LIMIT. */
#define SQL_STMT_MAX_TEXT  ((size_t)256 << 20)
#define SQL_STMT_MAX_PARAM ((size_t)1 << 30)

void sql_stmt_init(struct sql_stmt *s);
/* Forget SQL and parameters, keep the storage. */
void sql_stmt_reset(struct sql_stmt *s);
/* Free the storage. NULL-safe. */
void sql_stmt_cleanup(struct sql_stmt *s);

/* Do g's table and column names fit dialect d: [schema.]name, the table
 * name with its "__tombstone" companion (entity tables) and each column
 * with its "__v" companion within sql_dialect_max_ident? APP_ERR_INPUT
 * naming the name and the limit otherwise. The statement builders below
 * check the same. */
APP_NODISCARD enum app_result sql_dialect_check_group(enum sql_dialect d, const struct sql_group *g,
                                                      struct app_err *err);

/* Entity upsert of g->rows[from..] into g->table: as many rows as fit the
 * parameter limit (at most 1000); *out_count gets how many (>= 1).
 *   APP_ERR_LIMIT  one row alone needs more parameters than the dialect
 *                  allows, or the SQL buffer ceiling
 *   APP_ERR_INPUT  a table or column name does not fit the dialect */
APP_NODISCARD enum app_result sql_dialect_upsert(enum sql_dialect d, const struct sql_group *g,
                                                 size_t from, struct sql_stmt *out,
                                                 size_t *out_count, struct app_err *err);

/* Link upsert of g->links[from..] (newest version wins per pair). */
APP_NODISCARD enum app_result sql_dialect_link_upsert(enum sql_dialect d, const struct sql_group *g,
                                                      size_t from, struct sql_stmt *out,
                                                      size_t *out_count, struct app_err *err);

/* Hard-delete steps around an upsert of g->rows[from..from+count):
 *   SQL_HARD_RESTORE   put tombstones of those ids back as soft-deleted rows
 *                      (so the upsert's guard sees them)
 *   SQL_HARD_ARCHIVE   record the rows now deleted in "<table>__tombstone"
 *   SQL_HARD_REMOVE    delete the rows now deleted
 *   SQL_HARD_LOCK      PostgreSQL: take a transaction-scoped advisory lock per
 *                      id (in hash order, so two writers never deadlock),
 *                      before SQL_HARD_RESTORE: a concurrent Delete of the
 *                      same record commits first, and the restore then sees
 *                      its tombstone. T-SQL needs none: its restore reads the
 *                      tombstone table WITH (UPDLOCK, HOLDLOCK); the step is
 *                      a no-op statement there.
 * All run inside the batch transaction, so readers never see the
 * intermediate state. */
enum sql_hard_step { SQL_HARD_RESTORE = 0, SQL_HARD_ARCHIVE, SQL_HARD_REMOVE, SQL_HARD_LOCK };
APP_NODISCARD enum app_result sql_dialect_hard_delete(enum sql_dialect d, const struct sql_group *g,
                                                      size_t from, size_t count,
                                                      enum sql_hard_step step, struct sql_stmt *out,
                                                      struct app_err *err);

/* Poison messages recorded in SQL: table SQL_POISON_TABLE, one row per
 * poison_key (the Service Bus MessageId, else "sha256:" + hash of the body),
 * so a redelivered batch records nothing twice. */
#define SQL_POISON_TABLE "_cdc_poison"

struct sql_poison_row {
  const char *key;        /* poison_key, unique within one call */
  const char *message_id; /* may be NULL */
  const char *reason;
  const char *body; /* raw bytes, stored as varbinary/bytea */
  size_t body_len;
  const char *content_type; /* may be NULL */
  int delivery_count;
  long long enqueued_ms;
  const char *function;      /* may be NULL */
  const char *invocation_id; /* may be NULL */
};

/* Insert rows[from..] that are not recorded yet (as many as fit the
 * parameter limit); *out_count gets how many. */
APP_NODISCARD enum app_result sql_dialect_poison_insert(enum sql_dialect d,
                                                        const struct sql_poison_row *rows, size_t n,
                                                        size_t from, struct sql_stmt *out,
                                                        size_t *out_count, struct app_err *err);

/* Query listing the columns of table as rows (name, type name), taking no
 * parameters (names are embedded as quoted literals). */
APP_NODISCARD enum app_result sql_dialect_columns_query(enum sql_dialect d, const char *table,
                                                        struct sql_stmt *out, struct app_err *err);

#endif

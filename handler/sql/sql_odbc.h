/* sql_odbc.h - the one place that talks to unixODBC.
 *
 * A connection is used by one thread at a time (the sink's pool hands it
 * out). Connections run with autocommit off: every statement belongs to the
 * open transaction until sql_odbc_commit or sql_odbc_rollback.
 *
 * Every ODBC failure is translated here, once: the message is
 * "<what>: SQLSTATE <state> (native <n>): <driver text>" and the last
 * diagnostic is kept on the connection, classified as transient (worth a
 * retry: deadlock, serialization failure, connection loss, timeout, Azure
 * SQL throttling/failover numbers) and/or broken (the connection must be
 * dropped). Connection strings are never put in messages; the caller passes
 * a redacted form for that. */
#ifndef D365CDC_SQL_ODBC_H
#define D365CDC_SQL_ODBC_H

#include "common/result.h"
#include "sql/sql_dialect.h"

#include <stdbool.h>
#include <stddef.h>

struct sql_odbc_env;
struct sql_conn;

struct sql_odbc_diag {
  char sqlstate[6]; /* "" when the failure did not come from the driver */
  long native;      /* driver/server error number (SQL Server: 1205, 40613, ...) */
  bool transient;   /* retrying the transaction may succeed */
  bool broken;      /* the connection is unusable and must be dropped */
};

/* Is (sqlstate, native) worth a retry for dialect d? Pure; documents the
 * list: SQLSTATE 08xxx, 40001, 40003, 40P01, HYT00, HYT01, 57P01-57P03,
 * 57014 (statement cancelled by the query timeout), 53xxx, 55P03; T-SQL natives 1205, 4060, 4221,
 * 10053, 10054, 10060, 10928, 10929, 40143, 40197, 40501, 40540, 40613, 49918, 49919, 49920,
 * 233, 64. */
bool sql_odbc_is_transient(enum sql_dialect d, const char *sqlstate, long native);
/* Does (sqlstate) mean the connection is gone? 08xxx, HYT00/HYT01 (state
 * unknown after a cancelled call), 40003, 57P01-57P03. */
bool sql_odbc_is_broken(const char *sqlstate);

/* The ODBC environment (one per process or sink). Caller frees with
 * sql_odbc_env_destroy. APP_ERR_SQL when unixODBC cannot allocate it. */
APP_NODISCARD enum app_result sql_odbc_env_create(struct sql_odbc_env **out_env,
                                                  struct app_err *err);
void sql_odbc_env_destroy(struct sql_odbc_env *env);

/* Connect with SQLDriverConnect (no prompt), login timeout login_timeout_s
 * (also the connection timeout for later calls), autocommit off.
 * target (never the connection string) names the database in messages. Caller frees with
 * sql_odbc_disconnect.
 *   APP_ERR_SQL  the driver refused; the message carries SQLSTATE and text,
 *                *out_diag (may be NULL) the classification */
APP_NODISCARD enum app_result sql_odbc_connect(struct sql_odbc_env *env, const char *connstr,
                                               const char *target, enum sql_dialect d,
                                               int login_timeout_s, struct sql_conn **out_conn,
                                               struct sql_odbc_diag *out_diag, struct app_err *err);
/* Roll back anything open and disconnect. NULL-safe. */
void sql_odbc_disconnect(struct sql_conn *c);

/* Execute s with its parameters (text, sent as UTF-16) and a query timeout
 * (seconds, 0 = none). *out_rows (may be NULL) gets SQLRowCount: rows
 * inserted or updated, or -1 when the driver does not say.
 *   APP_ERR_SQL  with the diagnostic kept (sql_odbc_last) */
APP_NODISCARD enum app_result sql_odbc_exec(struct sql_conn *c, const struct sql_stmt *s,
                                            int timeout_s, long *out_rows, struct app_err *err);

/* Called for each result row with its first two columns as text (NULL for
 * SQL NULL; borrowed, valid during the call). */
typedef enum app_result (*sql_odbc_row_fn)(void *ctx, const char *c1, const char *c2,
                                           struct app_err *err);

/* Execute a query and call fn per row. Values longer than 511 bytes are
 * cut. Errors as sql_odbc_exec, or whatever fn returns. */
APP_NODISCARD enum app_result sql_odbc_query(struct sql_conn *c, const struct sql_stmt *s,
                                             int timeout_s, sql_odbc_row_fn fn, void *ctx,
                                             struct app_err *err);

/* COMMIT. Success means the server confirmed it. On failure the outcome is
 * unknown when the diagnostic is broken (the caller retries; writes are
 * idempotent). */
APP_NODISCARD enum app_result sql_odbc_commit(struct sql_conn *c, struct app_err *err);
/* ROLLBACK; failures only mark the connection broken. */
void sql_odbc_rollback(struct sql_conn *c);

/* The last failure's diagnostic on c (zeroed after a success). */
const struct sql_odbc_diag *sql_odbc_last(const struct sql_conn *c);

#endif

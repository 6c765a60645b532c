/* sql_sink.h - direct mode: version-guarded upserts into Azure SQL or
 * PostgreSQL over unixODBC.
 *
 * One batch is one transaction: the documents are grouped per table and
 * collapsed per key (sql_plan.h), each table gets multi-row upserts of at
 * most 1000 rows (sql_dialect.h), link tables get theirs, then COMMIT.
 * APP_OK is returned only after the server confirmed the COMMIT. Any failure
 * rolls the whole batch back. Transient failures (deadlock, serialization,
 * connection loss, timeouts, Azure SQL throttling/failover) are retried with
 * exponential backoff and jitter until batch->deadline_ms; other failures
 * fail at once with the driver's SQLSTATE and text.
 *
 * Tables are created and columns added on first use (CDC_SQL_SCHEMA=evolve)
 * or checked (validate). Connections come from a locked pool of
 * CDC_SQL_POOL connections, opened lazily and dropped when broken.
 *
 * Thread-safe: sql_sink_write may run on several threads at once. */
#ifndef D365CDC_SQL_SINK_H
#define D365CDC_SQL_SINK_H

#include "common/config.h"
#include "common/result.h"
#include "map/sink.h"
#include "sql/sql_dialect.h"

#include <stdbool.h>

struct sql_sink;

struct sql_sink_options {
  const char *connection_string; /* SqlConnectionString: ADO.NET or ODBC form (secret) */
  enum sql_dialect dialect;      /* SQL_DIALECT_NONE: from the connection string */
  const char *odbc_driver;       /* for translated strings; NULL: the dialect's default */
  enum sql_delete_mode delete_mode;
  bool validate_only;   /* never run DDL; fail when something is missing */
  int pool_size;        /* >= 1 */
  int login_timeout_s;  /* 0: the connection string's, else 15 */
  int query_timeout_s;  /* 0: the connection string's, else 30 */
  int retry_initial_ms; /* first backoff; doubles up to retry_max_ms */
  int retry_max_ms;     /* 0: 5000 */
  bool record_poison;   /* write batch->poison to the _cdc_poison table */
};

/* Options from the app settings. Strings are borrowed from cfg.
 * record_poison is set when CDC_POISON=record and CDC_TARGET=sql (with
 * redis+sql the Redis sink records poison in its stream). */
void sql_sink_options_from_config(const struct app_config *cfg, struct sql_sink_options *out);

/* Where the zip bundles psqlODBC, relative to the app root (make zip). */
#define SQL_SINK_BUNDLED_PG_DRIVER "lib/odbc/psqlodbcw.so"

/* The ODBC driver for translated (ADO.NET form) connection strings as a path
 * under app_root, or NULL to keep `configured` as it is: a relative
 * CDC_SQL_ODBC_DRIVER path (one with a '/') is taken relative to the app
 * root; with none configured and a dialect other than tsql, the bundled
 * psqlODBC driver when the app has it (a Function App's image has no ODBC
 * driver). Caller frees. */
char *sql_sink_app_driver(const char *app_root, const char *configured, enum sql_dialect dialect);

/* Parse the connection string and set up the pool (no connection is opened
 * yet). Caller frees with sql_sink_destroy.
 *   APP_ERR_CONFIG  bad connection string or options (message never holds
 *                   a secret)
 *   APP_ERR_SQL     the ODBC environment cannot be allocated */
APP_NODISCARD enum app_result sql_sink_create(const struct sql_sink_options *opt,
                                              struct sql_sink **out_sink, struct app_err *err);

/* Close every connection (open transactions roll back). NULL-safe; no
 * write may be running. */
void sql_sink_destroy(struct sql_sink *s);

/* Write batch->docs in one transaction (see above); with record_poison
 * also batch->poison, as rows of _cdc_poison keyed by MessageId (else the
 * body's SHA-256), in the same transaction. *out_stats (may be NULL)
 * gets: applied = rows and links the batch changed, stale = documents that
 * changed nothing (ndocs - applied, floored at 0; exact when no key appears
 * twice), poison = poison messages recorded, round_trips = statements +
 * commits, retries.
 *   APP_ERR_INPUT   a document cannot be written (named; never retried)
 *   APP_ERR_CONFIG  validate mode and a table/column is missing
 *   APP_ERR_SQL     the database failed (SQLSTATE and text in the message);
 *                   after the deadline for transient failures. out_stats->
 *                   data_fault tells a refused value (SQLSTATE class 22,
 *                   23) from a failure of the store: the caller may then
 *                   write the documents one by one to find the refused one
 *   APP_ERR_TIMEOUT no pooled connection became free before the deadline
 * Nothing of the batch is committed unless APP_OK is returned. */
APP_NODISCARD enum app_result sql_sink_write(struct sql_sink *s, const struct sink_batch *batch,
                                             struct sink_stats *out_stats, struct app_err *err);

/* Can document d be written at all (sql_plan_build's checks on d alone,
 * and its table, link table and column names against the dialect's
 * identifier limit)? Pure, no I/O. The pipeline asks before a batch goes to
 * the sink, so a message the sink could never store becomes that message's
 * poison record instead of failing the whole batch. APP_ERR_INPUT with
 * the reason, APP_ERR_NOMEM. */
APP_NODISCARD enum app_result sql_sink_check_doc(const struct sql_sink *s, const struct doc *d,
                                                 struct app_err *err);

/* Open one connection now (start-up check, readiness). Same errors as the
 * connection part of sql_sink_write, without retries. */
APP_NODISCARD enum app_result sql_sink_ping(struct sql_sink *s, struct app_err *err);

/* The dialect in use, and the connection string with secrets redacted
 * (borrowed, valid until sql_sink_destroy). */
enum sql_dialect sql_sink_dialect(const struct sql_sink *s);
const char *sql_sink_redacted(const struct sql_sink *s);

#endif

/* replica.h - a complete replica from the Dataverse Web API: the initial
 * snapshot of each table, reconciliation through change-tracking delta
 * links, and re-reads of the records marked in <prefix>:reread.
 *
 * Rows read from the Web API become canonical changes (dvapi_row_change)
 * and go through the same mapping (map_change) and the same version-guarded
 * Redis writes (redis_sink_apply) as messages: a snapshot row never
 * overwrites a newer change, and an older message never overwrites a
 * snapshot row (docs/versioning.md "Rows read from the Web API").
 *
 * Per table (CDC_RECONCILE_TABLES), state lives in Redis, in one hash slot:
 *   <prefix>:{replica:<table>}       hash: phase (snapshot|delta), next
 *                                    (the page to read next), delta (the
 *                                    delta link), rows, pages, deleted,
 *                                    restarts, started_ms, snapshot_done_ms,
 *                                    last_success_ms, last_error
 *   <prefix>:{replica:<table>}:lock  the worker's lock (SET NX PX, renewed
 *                                    after every page, released at the end)
 * The state is saved after every applied page, so a run cut short (budget,
 * timeout, crash, scale-in) goes on from the page it was reading: at most
 * one page is read twice, and writing it twice changes nothing.
 *
 * A run (replica_run): for each table whose lock it gets, snapshot pages
 * until done, then the delta link once (changed rows applied, $deletedEntity
 * rows as versioned deletes; 410 Gone or another refusal of the delta token
 * restarts the table's snapshot), then re-reads from <prefix>:reread,
 * CDC_REREAD_BATCH ids per request; all within deadline_ms. */
#ifndef D365CDC_REPLICA_H
#define D365CDC_REPLICA_H

#include "common/buf.h"
#include "common/config.h"
#include "common/result.h"
#include "map/mapping.h"
#include "redis/redis_sink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct replica;

struct sql_sink;

/* *out = NULL (and APP_OK) when DataverseUrl is empty: no replica work.
 * Rows go to Redis when CDC_TARGET includes redis and to sql (may be NULL)
 * when it includes sql; the state and the lock are always in Redis.
 * APP_ERR_CONFIG for a bad DataverseUrl, a table that is not a logical
 * name, or no usable credential. No network I/O. */
APP_NODISCARD enum app_result replica_create(const struct app_config *cfg,
                                             const struct map_config *map, struct redis_sink *redis,
                                             struct sql_sink *sql, struct replica **out,
                                             struct app_err *err);
void replica_destroy(struct replica *r);

struct replica_report {
  size_t tables;   /* tables worked on */
  size_t busy;     /* tables skipped: another worker holds the lock */
  size_t pages;    /* Web API pages read */
  size_t rows;     /* rows read */
  size_t applied;  /* documents that changed the replica */
  size_t stale;    /* documents the replica already had (or newer) */
  size_t deleted;  /* $deletedEntity rows applied */
  size_t reread;   /* records re-read */
  size_t restarts; /* snapshots restarted (expired delta token) */
  size_t requests; /* HTTP requests (retries included) */
  size_t throttled;
  int64_t throttle_wait_ms;
  bool complete; /* every table reached its delta link and nothing is left to re-read */
};

/* Work until deadline_ms (sink_now_ms clock). table: only that table, or
 * NULL for all. APP_OK when the run ended cleanly (complete or out of
 * budget); otherwise the first error (Web API, Redis); the error is also
 * saved as the table's last_error. *out is filled in every case. */
APP_NODISCARD enum app_result replica_run(struct replica *r, const char *table, int64_t deadline_ms,
                                          struct replica_report *out, struct app_err *err);

/* Forget table's state: the next run snapshots it again. APP_ERR_NOTFOUND
 * when table is not in CDC_RECONCILE_TABLES. */
APP_NODISCARD enum app_result replica_restart(struct replica *r, const char *table,
                                              struct app_err *err);

/* Append {"tables":{"<t>":{state fields...},...},"reread_pending":N} to
 * out (links are not shown: they carry the delta token). */
APP_NODISCARD enum app_result replica_state_json(struct replica *r, struct buf *out,
                                                 struct app_err *err);

/* Append a one-line summary of rep ("tables=.. pages=.. rows=.."). */
APP_NODISCARD enum app_result replica_report_text(const struct replica_report *rep,
                                                  struct buf *out);

#endif

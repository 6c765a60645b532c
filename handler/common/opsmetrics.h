/* opsmetrics.h - metrics shared by every instance: local deltas, rendering.
 *
 * metrics.h counts what this process did since it started. The counters
 * here are added up across processes: each process aggregates its deltas
 * in memory (a few adds under one mutex per invocation, no I/O), and a
 * flusher (ops/opsflush.h) adds them to one Redis hash every
 * CDC_METRICS_FLUSH_MS, one round trip for all of them. Any instance reads
 * the hash and renders it (JSON, Prometheus text), so the figures are the
 * app's, not one instance's.
 *
 * Fields (also the Redis hash fields; table names are [A-Za-z0-9_]):
 *   c|<table>|<outcome>   changes per table and outcome
 *   f|<le>                freshness histogram bucket (ms, not cumulative;
 *                         "inf" for the last), f|sum (ms), f|n
 *   t|<stage>|us, t|<stage>|n   stage timings (decode, map, write)
 *   e|<name>              errors and retries of the stores
 * Freshness is D365's OperationCreatedOn to the confirmed write of a change
 * that was applied. */
#ifndef D365CDC_OPSMETRICS_H
#define D365CDC_OPSMETRICS_H

#include "common/buf.h"
#include "common/result.h"

#include <stddef.h>
#include <stdint.h>

enum ops_outcome {
  OPS_APPLIED = 0,   /* the write changed the replica */
  OPS_STALE,         /* older than or equal to what is stored */
  OPS_SKIPPED,       /* the mapping did not accept the change */
  OPS_POISON,        /* recorded as poison */
  OPS_DEADLETTERED,  /* recorded by the dead-letter audit function */
  OPS_REPLAYED,      /* a record replayed and applied (or stale) */
  OPS_REPLAY_FAILED, /* a replayed record that failed again */
  OPS_OUTCOME_COUNT
};

enum ops_stage { OPS_STAGE_DECODE = 0, OPS_STAGE_MAP, OPS_STAGE_WRITE, OPS_STAGE_COUNT };

enum ops_error {
  OPS_REDIS_ERRORS = 0, /* invocations whose Redis write failed (after retries) */
  OPS_REDIS_RETRIES,    /* Redis attempts after the first */
  OPS_SQL_ERRORS,
  OPS_SQL_RETRIES,
  OPS_ERROR_COUNT
};

const char *ops_outcome_name(enum ops_outcome o);

/* Table for changes whose table is unknown (undecodable messages). */
#define OPS_TABLE_UNKNOWN "_unknown"

/* Longest field name ("c|" + 128-byte table + "|" + outcome). */
#define OPSM_FIELD_MAX 160

/* Local deltas. Thread-safe. Tables that are not [A-Za-z0-9_]{1,128}, or
 * past the local table cap (OPSM_MAX_FIELDS), are counted under
 * OPS_TABLE_UNKNOWN. */
void opsm_count(const char *table, enum ops_outcome o, uint64_t n);
void opsm_freshness_ms(int64_t ms);
void opsm_stage_us(enum ops_stage s, uint64_t us);
void opsm_error(enum ops_error e, uint64_t n);

struct opsm_field {
  char name[OPSM_FIELD_MAX];
  int64_t value;
};

/* Take every local delta (the local counters restart from zero): *out
 * (malloc'd, caller frees; NULL when none) gets *n fields. */
void opsm_take(struct opsm_field **out, size_t *n);
/* Add deltas back (a flush that failed), so nothing is lost. */
void opsm_restore(const struct opsm_field *f, size_t n);

/* Freshness bucket upper bounds in ms (the last bucket, "inf", is not
 * listed). */
extern const int64_t opsm_fresh_bounds[];
extern const size_t opsm_fresh_nbounds;

/* ---- rendering (pure) ---- */

/* The q-quantile (0 < q < 1) of the freshness histogram in f[0..n) (the
 * f|<le> fields), in ms, interpolated linearly inside the bucket that
 * holds it; the last bucket reports its lower bound. -1 when empty. */
double opsm_quantile(const struct opsm_field *f, size_t n, double q);

/* Append the fields f[0..n) as one JSON object:
 *   {"tables":{"account":{"applied":3,...}},"totals":{...},
 *    "freshness_ms":{"count":..,"sum":..,"p50":..,"p95":..,"p99":..,
 *                    "buckets":{"50":..,...,"inf":..}},
 *    "stages":{"decode":{"count":..,"total_us":..}},"errors":{...}}
 * Unknown fields are ignored. */
APP_NODISCARD enum app_result opsm_render_json(const struct opsm_field *f, size_t n,
                                               struct buf *out);

/* Append the fields in the Prometheus text format:
 *   d365cdc_changes_total{table="account",outcome="applied"} 3
 *   d365cdc_freshness_seconds_bucket{le="0.05"} ... (cumulative), _sum, _count
 *   d365cdc_stage_seconds_total{stage="decode"}, d365cdc_stage_runs_total
 *   d365cdc_store_errors_total{store="redis",kind="errors"} */
APP_NODISCARD enum app_result opsm_render_prometheus(const struct opsm_field *f, size_t n,
                                                     struct buf *out);

#endif

/* metrics.h - process-wide counters for operations.
 *
 * Plain atomic counters, updated by the worker threads and read by the
 * metrics function (GET /api/cdc/metrics) as JSON or Prometheus text. They
 * live for the whole process; a restart starts them at zero. */
#ifndef D365CDC_METRICS_H
#define D365CDC_METRICS_H

#include "common/buf.h"
#include "common/result.h"

#include <stdint.h>

enum metric {
  M_INVOCATIONS = 0,      /* change invocations handled */
  M_INVOCATIONS_FAILED,   /* answered non-2xx (Service Bus redelivers) */
  M_MESSAGES,             /* messages received */
  M_APPLIED,              /* documents whose write changed something */
  M_STALE,                /* documents older than or equal to what is stored */
  M_SKIPPED,              /* changes the mapping did not accept */
  M_POISON,               /* poison messages found */
  M_POISON_RECORDED,      /* ... and recorded in the poison stream */
  M_REREAD,               /* truncated contexts (needs re-read) */
  M_ORDER_TIES,           /* changes applied in an undecidable order (marked for re-read) */
  M_RETRIES,              /* sink attempts after the first */
  M_ROUND_TRIPS,          /* sink round trips */
  M_READS,                /* read API requests */
  M_READS_NOT_FOUND,      /* ... answered 404 */
  M_READS_NOT_MODIFIED,   /* ... answered 304 */
  M_READS_FAILED,         /* ... answered 5xx */
  M_LAST_APPLY_AGE_MS,    /* gauge: now - OperationCreatedOn of the newest applied change */
  M_LAST_SUCCESS_UNIX_MS, /* gauge: wall clock of the last successful change invocation */
  M_TOKEN_FETCHES,        /* Entra ID token requests (identity/azid.h) */
  M_TOKEN_FAILURES,       /* ... that failed */
  M_REDIS_TOKEN_AUTHS,    /* Redis AUTHs with a token: new connections and re-AUTHs */
  M_REDIS_REAUTHS,        /* ... re-AUTHs of open connections before their token expired */
  M_REDIS_AUTH_FAILURES,  /* Redis AUTHs with a token that the server refused */
  M_COUNT
};

void metrics_add(enum metric m, uint64_t n);
void metrics_set(enum metric m, uint64_t v);
uint64_t metrics_get(enum metric m);

/* Append all metrics as one JSON object {"invocations":..,...}. */
APP_NODISCARD enum app_result metrics_json(struct buf *out);
/* Append all metrics in the Prometheus text format (d365cdc_<name>). */
APP_NODISCARD enum app_result metrics_prometheus(struct buf *out);

#endif

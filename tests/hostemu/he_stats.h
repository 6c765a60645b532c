/* he_stats.h - run statistics and the summary (text or JSON).
 *
 * Latencies go into a log-linear histogram (128 buckets per power of two,
 * under 1% error) so a long load run needs constant memory; the maximum
 * is kept exactly. Distinct failure reasons and warnings are counted in
 * small fixed tables. */
#ifndef D365CDC_HE_STATS_H
#define D365CDC_HE_STATS_H

#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HE_HIST_SUB_BITS 7
#define HE_HIST_MAX_MSB  46
#define HE_HIST_BUCKETS  ((HE_HIST_MAX_MSB - HE_HIST_SUB_BITS + 2) << HE_HIST_SUB_BITS)

struct he_hist {
  uint64_t counts[HE_HIST_BUCKETS];
  uint64_t n;
  int64_t max_ns;
  double sum_ns;
};

void he_hist_add(struct he_hist *h, int64_t ns);
/* Value at quantile q (0..1) in ns: the upper edge of the bucket holding
 * it, never above the exact maximum. 0 when empty. */
int64_t he_hist_quantile(const struct he_hist *h, double q);

#define HE_MAX_REASONS  32
#define HE_MAX_WARNINGS 32

struct he_count {
  char text[160];
  uint64_t count;
};

struct he_summary {
  /* what ran */
  char mode[16]; /* "servicebus" or "http" */
  char function[129];
  char shape[64]; /* e.g. "binary, batch of up to 100" */
  int concurrency;
  /* handler */
  bool launched; /* false with --connect */
  int pid, port;
  double cold_start_ms; /* exec to first answer (first start), <0 unknown */
  uint64_t probes;      /* readiness GETs sent for the first start */
  int restarts;         /* all restarts (200, errors, timeouts) */
  int error_exits;      /* exits that counted as errors */
  bool gave_up;
  char gave_up_reason[200];
  bool stopped;    /* --stop: SIGTERM sent at the end */
  int exit_code;   /* last exit: code, or -1 */
  int exit_signal; /* last exit: signal, or 0 */
  bool exit_known;
  /* work */
  uint64_t invocations, inv_ok, inv_failed;
  uint64_t generated, deliveries, succeeded, retried, dead_lettered, unsettled;
  /* the dead-letter queue's function (--deadletter-function): deliveries,
   * messages it completed, and messages left in the queue */
  bool dlq;
  uint64_t dlq_deliveries, dlq_succeeded, dlq_left;
  uint64_t max_in_flight;
  double elapsed_s;
  double cpu_s; /* the emulator's own CPU time while delivering (not the handler's) */
  struct he_hist lat;
  struct he_count reasons[HE_MAX_REASONS];
  size_t n_reasons;
  uint64_t other_reasons;
  struct he_count warnings[HE_MAX_WARNINGS];
  size_t n_warnings;
  uint64_t other_warnings;
};

/* Count one occurrence of text in a reasons/warnings table. */
void he_count_add(struct he_count *table, size_t *n, size_t max, uint64_t *other, const char *text);

void he_summary_print(const struct he_summary *s, FILE *f);
/* Write the JSON summary to path. Errors: APP_ERR_IO. */
APP_NODISCARD enum app_result he_summary_write_json(const struct he_summary *s, const char *path,
                                                    struct app_err *err);

#endif

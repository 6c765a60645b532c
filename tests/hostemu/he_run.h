/* he_run.h - the emulator's engine: one epoll loop that supervises the
 * handler process, probes readiness, delivers invocations over keep-alive
 * HTTP/1.1 connections, settles messages like Service Bus, and measures.
 *
 * Thread model: a single thread. Every socket, pipe and the signalfd
 * (SIGCHLD, SIGINT, SIGTERM) are non-blocking and edge-triggered in one
 * epoll set; timers are deadlines checked around epoll_wait. */
#ifndef D365CDC_HE_RUN_H
#define D365CDC_HE_RUN_H

#include "common/result.h"
#include "he_app.h"
#include "he_env.h"
#include "he_msg.h"
#include "he_proc.h"
#include "he_stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct he_run_cfg {
  /* the handler */
  const struct he_app *app;       /* NULL with --connect and no --script-root */
  const struct he_launch *launch; /* NULL with --connect */
  int connect_port;               /* > 0: talk to an already running handler */
  int64_t init_timeout_ms;
  bool stop; /* SIGTERM at the end and report the exit */
  int64_t stop_timeout_ms;
  FILE *handler_log; /* where handler stdout/stderr lines go */

  /* Service Bus mode (http == NULL) */
  struct he_sb_target target;
  const struct he_function *fn; /* output-binding checks; may be NULL */
  const struct he_msgset *msgs;
  int batch; /* max messages per invocation */
  int max_delivery;
  int64_t redelivery_delay_ms;
  const char *deadletter_dir; /* NULL: count only */
  /* the function on "<subscription>/$DeadLetterQueue" (dlq_target.function
   * NULL: none): dead-lettered messages go to a second queue it consumes */
  struct he_sb_target dlq_target;
  int64_t ttl_ms; /* default TimeToLive; -1 = TimeSpan.MaxValue */
  bool vary;

  /* HTTP mode */
  const struct he_http_request *http;
  bool forward;             /* send the raw request (forwarding mode) */
  const char *http_binding; /* trigger binding name */
  const struct he_route_param *params;
  size_t n_params;
  FILE *http_out; /* where the HTTP response is printed */

  /* timer mode (with http set to a POST /<function> placeholder): one
   * timerTrigger invocation; its status and Logs are printed to http_out */
  bool timer;
  int64_t timer_interval_s;

  /* load */
  int concurrency;
  int64_t timeout_ms; /* functionTimeout; < 0: none */
  uint64_t repeat;    /* copies of the message set / requests; 0: until duration */
  double duration_s;  /* 0: none */
  double rate;        /* deliveries per second; 0: unlimited */

  /* transport */
  size_t chunk_size; /* 0: one chunk */
  const char *host_version;
  size_t max_request;
  size_t max_response;
  int verbose;
  bool quiet;
};

/* Run until every message is settled (or the duration ends, or the
 * handler is given up). Fills *sum. Returns APP_OK when the run happened,
 * whatever the messages' fate; errors are setup failures (epoll, signals,
 * port, a handler that never became ready in --connect mode) with the
 * reason in err. */
APP_NODISCARD enum app_result he_run(const struct he_run_cfg *cfg, struct he_summary *sum,
                                     struct app_err *err);

#endif

/* sink.h - what the invocation pipeline hands to a sink.
 *
 * A sink (Redis, SQL) receives every accepted document of one invocation
 * and the poison messages found in it, writes them, and returns APP_OK only
 * when every write is confirmed by the server. Transient failures are
 * retried with backoff until batch->deadline_ms; after that the sink
 * returns the error and the invocation fails (non-2xx), so Service Bus
 * redelivers. Writes are idempotent and version-guarded, so a redelivery
 * after a partial write is safe. */
#ifndef D365CDC_SINK_H
#define D365CDC_SINK_H

#include "map/doc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message that can never be applied (not JSON, .NET binary, not a
 * RemoteExecutionContext, failed validation). */
struct sink_poison {
  const char *message_id; /* Service Bus MessageId, may be NULL */
  const char *reason;     /* human-readable, names what was wrong and where */
  const char *body;       /* raw message body (may be binary) */
  size_t body_len;
  const char *content_type; /* may be NULL */
  int delivery_count;       /* 0 when unknown */
  int64_t enqueued_ms;      /* 0 when unknown */
  const char *table;        /* when the mapping refused a decoded change, else NULL (metrics) */
};

/* A document the server refused as unstorable (a message-level fault: e.g.
 * Redis WRONGTYPE on its key, or an error the apply script raised for its
 * input), filled in by a sink when the caller passes refused[]. */
struct sink_refusal {
  bool refused;
  char reason[240];
};

struct sink_batch {
  const struct doc *const *docs;
  size_t ndocs;
  /* NULL, or one entry per document: a document the server refuses for a
   * reason of its own (not the store's: connection, timeout, OOM, READONLY,
   * permissions) is then marked here and counts as done, instead of failing
   * the batch; the caller records it as that message's poison. */
  struct sink_refusal *refused;
  const struct sink_poison *poison;
  size_t npoison;
  const char *function;      /* function name, for poison records */
  const char *invocation_id; /* for poison records and logs */
  int64_t deadline_ms;       /* CLOCK_MONOTONIC ms after which retrying stops */
  /* optional (may be NULL), ndocs entries: a sink that knows each
   * document's fate sets SINK_DOC_APPLIED or SINK_DOC_STALE (per-table
   * metrics, freshness); 0 stays "not known" */
  unsigned char *outcome;
  /* the poison entries are dead-letter records: written whatever
   * CDC_POISON says (the SQL sink otherwise records only under "record") */
  bool audit;
};

#define SINK_DOC_APPLIED 1
#define SINK_DOC_STALE   2

struct sink_stats {
  size_t applied;     /* documents whose write changed something */
  size_t stale;       /* documents that changed nothing (older or duplicate) */
  size_t poison;      /* poison messages recorded */
  size_t round_trips; /* server round trips used, retries included */
  size_t retries;     /* attempts after the first */
  bool data_fault;    /* SQL: the batch failed because the database refused a
                         value (SQLSTATE class 22 or 23): one of its
                         documents is at fault, not the store */
  size_t ties;        /* documents applied in an order the payloads could not
                         decide (a tie, or a nested change without a row
                         version): their records were marked for a re-read */
};

/* CLOCK_MONOTONIC now, in ms. */
int64_t sink_now_ms(void);

/* Process shutdown: once sink_cancel_all() was called (main does, when a
 * SIGTERM starts the drain), sinks stop retrying and fail the attempt at
 * hand, so in-flight invocations end quickly with a non-2xx answer and
 * Service Bus redelivers their messages to the next instance. */
void sink_cancel_all(void);
bool sink_cancelled(void);

/* Sleep ms milliseconds in short slices; returns false early (without
 * sleeping the rest) when sink_cancel_all was called. */
bool sink_sleep_ms(int64_t ms);

#endif

/* pipeline.h - what one change invocation does: decode -> map -> sinks.
 *
 * For every Service Bus message of an invocation:
 *   oversize, not decodable, or failing the mapping's validation -> poison
 *   decoded (dataverse.h) -> mapped (mapping.h) -> accepted or skipped
 * then, in direct mode, the accepted documents and the poison messages go
 * to the sinks in one call each (one Redis round trip per batch), and the
 * invocation succeeds only when every write was confirmed; in bindings
 * mode the documents become Outputs for the function's Redis/SQL output
 * bindings instead.
 *
 * Poison disposition (CDC_POISON): "record" writes each poison message with
 * its reason to the poison stream and acknowledges it; "fail" fails the
 * invocation so that Service Bus retries and finally dead-letters it. A
 * batch cannot fail one message alone (failing it would dead-letter the
 * good ones with it), so batches always record (docs/operations.md). */
#ifndef D365CDC_PIPELINE_H
#define D365CDC_PIPELINE_H

#include "common/arena.h"
#include "common/config.h"
#include "host/envelope.h"
#include "host/functions.h"
#include "map/mapping.h"
#include "redis/redis_sink.h"
#include "common/result.h"
#include "read/schema.h"

#include <stdbool.h>
#include <stddef.h>

struct pipeline;
struct sql_sink;

/* cfg, map and the sinks are borrowed and must outlive the pipeline. redis
 * is required when cfg->target includes Redis or poison messages are
 * recorded; sql when it includes SQL. schema (may be NULL) learns the
 * property names written to Redis, for the read API's $select checks.
 * *out: caller frees with
 * pipeline_destroy. APP_ERR_CONFIG when a needed sink is missing. */
APP_NODISCARD enum app_result pipeline_create(const struct app_config *cfg,
                                              const struct map_config *map,
                                              struct redis_sink *redis, struct sql_sink *sql,
                                              struct schema *schema, struct pipeline **out,
                                              struct app_err *err);
void pipeline_destroy(struct pipeline *p);

struct pipeline_result {
  size_t messages;
  size_t accepted;        /* documents produced by the mapping */
  size_t applied;         /* documents that changed the target */
  size_t stale;           /* documents older than or equal to what is stored */
  size_t skipped;         /* changes the mapping did not accept */
  size_t poison;          /* poison messages */
  size_t poison_recorded; /* ... written to the poison stream */
  size_t reread;          /* truncated contexts */
  size_t ties;            /* applied in an undecidable order, marked for a re-read */
  size_t round_trips;
  size_t retries;
  int64_t newest_op_ms;      /* newest OperationCreatedOn among accepted documents, 0 if none */
  int64_t decode_us, map_us; /* time spent decoding and mapping */
  const char *poison_reason; /* the first poison message's reason (arena), or NULL */
  const char *poison_table;  /* its table when the mapping refused it, or NULL */
};

/* Run the messages of inv (a serviceBusTrigger invocation) through the
 * pipeline. Everything decoded lives in arena a. In bindings mode the
 * Outputs are added to resp. Returns APP_OK when the invocation may be
 * acknowledged; otherwise the sink's error (REDIS, SQL, TIMEOUT, TLS...),
 * APP_ERR_INPUT for a poison message under CDC_POISON=fail (single
 * message), or APP_ERR_LIMIT. *out is filled in every case. */
APP_NODISCARD enum app_result pipeline_run(struct pipeline *p, struct arena *a,
                                           const struct function_def *fn,
                                           const struct invocation *inv, const char *invocation_id,
                                           struct envelope_response *resp,
                                           struct pipeline_result *out, struct app_err *err);

/* Put one recorded message (a poison or dead-letter record) through the
 * pipeline again: decode -> map -> sinks, as pipeline_run, except that a
 * message that is still poison is not recorded again (out->poison = 1,
 * out->poison_reason says why; the caller keeps its record) and counts go
 * to the shared metrics as "replayed". Results as pipeline_run;
 * APP_ERR_UNSUPPORTED in bindings mode. */
APP_NODISCARD enum app_result pipeline_replay(struct pipeline *p, struct arena *a,
                                              const struct envelope_message *m,
                                              const char *invocation_id,
                                              struct pipeline_result *out, struct app_err *err);

#endif

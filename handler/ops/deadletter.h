/* deadletter.h - the dead-letter audit function.
 *
 * A serviceBusTrigger on "<subscription>/$DeadLetterQueue" (function.json;
 * functions.h marks it `deadletter`) hands every message Service Bus
 * dead-lettered to deadletter_invoke, which records it in the store of the
 * poison records: with a Redis target, an entry of the stream
 * CDC_POISON_STREAM (capped at about CDC_POISON_MAXLEN) with
 *   kind=deadletter, reason (DeadLetterReason), description
 *   (DeadLetterErrorDescription), message_id, delivery_count, enqueued_ms,
 *   content_type, app_properties (JSON), function, invocation_id, table and
 *   record_id (when the body decodes), decode_error (when it does not),
 *   dead_letter_source, body (exact bytes);
 * with CDC_TARGET=sql alone, a row of _cdc_poison whose reason starts with
 * "dead-lettered (<DeadLetterReason>)". Service Bus puts DeadLetterReason
 * and DeadLetterErrorDescription in the message's application properties,
 * which the host passes as ApplicationProperties.
 *
 * It logs one event line per message (event "deadletter") and never fails
 * on a message it cannot decode: that is recorded with decode_error. It
 * fails (non-2xx, so Service Bus delivers the dead-lettered message again)
 * only when the record cannot be written. */
#ifndef D365CDC_DEADLETTER_H
#define D365CDC_DEADLETTER_H

#include "common/arena.h"
#include "common/config.h"
#include "common/result.h"
#include "host/envelope.h"
#include "redis/redis_pool.h"

#include <stddef.h>

struct sql_sink;

struct deadletter_target {
  const struct app_config *cfg;
  struct redis_pool *pool; /* records go here when set */
  struct sql_sink *sql;    /* else here (CDC_TARGET=sql) */
};

/* Record every message of inv. *recorded gets how many were written.
 *   APP_OK       every message recorded
 *   APP_ERR_CONFIG  no store (CDC_TARGET=none)
 *   others       the store's errors (REDIS, IO, TIMEOUT, SQL...) */
APP_NODISCARD enum app_result deadletter_invoke(const struct deadletter_target *t, struct arena *a,
                                                const struct invocation *inv, const char *function,
                                                const char *invocation_id, size_t *recorded,
                                                struct app_err *err);

#endif

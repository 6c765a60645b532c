/* he_msg.h - the message set: Service Bus message bodies read from files.
 *
 * Each file is one message body, bytes exact. An optional sidecar
 * "<file>.props.json" gives system and application properties:
 *
 *   { "MessageId": "m-1", "ContentType": "application/json",
 *     "CorrelationId": "...", "SessionId": "...", "Subject": "...",
 *     "To": "...", "ReplyTo": "...", "ReplyToSessionId": "...",
 *     "PartitionKey": "...", "TransactionPartitionKey": "...",
 *     "DeadLetterSource": "...", "TimeToLive": 3600,
 *     "ApplicationProperties": { "tenant": "contoso", "prio": 3 } }
 *
 * Keys are case-insensitive ("Label" = "Subject", "UserProperties" =
 * "ApplicationProperties"); unknown keys are an error so typos show.
 * Without a sidecar, a body that is a Dataverse RemoteExecutionContext gets
 * the application properties Dataverse sets (see he_msg_add_path) and
 * ContentType application/json.
 *
 * --vary support: for Dataverse bodies the record id (PrimaryEntityId) and
 * every "OperationCreatedOn" date are located once, so each delivered copy
 * can be rewritten cheaply (he_msg_vary). */
#ifndef D365CDC_HE_MSG_H
#define D365CDC_HE_MSG_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Service Bus properties of a message; NULL means "not set" (the host
 * omits null values). Strings are owned by the struct he_msg. */
struct he_msg_props {
  const char *message_id;
  const char *content_type;
  const char *correlation_id;
  const char *session_id;
  const char *subject;
  const char *to;
  const char *reply_to;
  const char *reply_to_session_id;
  const char *partition_key;
  const char *transaction_partition_key;
  const char *dead_letter_source;
  const char *app_props; /* compact JSON object text, never NULL ("{}") */
  int64_t ttl_ms;        /* -1: TimeSpan.MaxValue (ExpiresAt = DateTimeOffset.MaxValue) */
  bool ttl_set;          /* the sidecar gave TimeToLive */
};

struct he_msg_span {
  size_t off, len;
  int64_t ms; /* OperationCreatedOn milliseconds (date spans only) */
  bool is_date;
};

struct he_msg {
  char *path; /* source file */
  char *body; /* exact bytes (NUL-terminated for convenience) */
  size_t len;
  struct he_msg_props props;
  bool dataverse;            /* body is a Dataverse RemoteExecutionContext */
  char record_id[37];        /* PrimaryEntityId as found ("" if none) */
  struct he_msg_span *spans; /* --vary rewrite points, in body order */
  size_t n_spans;
  char *owned[16]; /* strings owned by props */
  size_t n_owned;
};

struct he_msgset {
  struct he_msg *v;
  size_t n, cap;
  size_t max_body;    /* per-file ceiling */
  size_t n_over_256k; /* bodies above Service Bus Standard's 256 KB */
};

void he_msgset_init(struct he_msgset *s, size_t max_body);
void he_msgset_cleanup(struct he_msgset *s);

/* Add PATH: a file (one message) or a folder (every regular file in it,
 * not recursive, sorted by name, skipping dot files and *.props.json).
 * Errors: APP_ERR_IO (unreadable), APP_ERR_LIMIT (body above max_body),
 * APP_ERR_INPUT (bad sidecar; the message names file, key and problem). */
APP_NODISCARD enum app_result he_msgset_add_path(struct he_msgset *s, const char *path,
                                                 struct app_err *err);

/* The body of copy number `copy` (0-based) of m with --vary applied:
 * every occurrence of the record id (case-insensitive) becomes fresh_id
 * (36 chars, lower case) and every OperationCreatedOn becomes its original
 * milliseconds + copy + 1. Returns a malloc'd copy (caller frees with
 * free()); *out_len gets its length. For a body without rewrite points it
 * returns an exact copy. */
char *he_msg_vary(const struct he_msg *m, uint64_t copy, const char *fresh_id, size_t *out_len);

#endif

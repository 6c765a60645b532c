/* envelope.h - the Functions host's invocation envelope, both ways. Pure.
 *
 * In: the body the host POSTs to /<FunctionName>,
 *   {"Data":{"<binding>":...},"Metadata":{...}}
 * parsed into a struct invocation that lives in the caller's arena: the
 * message bodies as exact bytes (base64 or double-encoded JSON undone), the
 * Service Bus properties of each message, or the HTTP request of an
 * httpTrigger. docs/protocol.md describes every encoding; in short:
 *
 *   dataType binary, one   Data.msg = "<base64 of the body>"
 *   dataType string/unset  Data.msg = "\"<body as a JSON string>\"" (twice encoded)
 *   cardinality many       Data.msgs = "[\"<b64>\",...]" (binary) or
 *                          "[\"<body>\",...]" (string); a real JSON array is
 *                          accepted too
 *   Metadata               string values are JSON text a second time
 *                          ("\"abc\"", "5"); dates are plain ISO 8601 without
 *                          zone (UTC); ApplicationProperties, sys and
 *                          RetryContext are real objects; batches use *Array
 *                          keys ("[1,2]").
 *
 * When the function's function.json is unknown (fn == NULL, or no dataType),
 * the encoding is sniffed after the first JSON decode of Data.<binding>:
 *   a real array, or a string starting with '['  -> batch; its elements are
 *        base64 when every one of them is valid, non-empty base64, else text
 *   a string starting with '"'                   -> one double-encoded body
 *   any other string                             -> base64 of one body
 *   (with dataType string / unset and cardinality one, a string that does not
 *    start with '"' is taken as the body itself: the single-encoded form of
 *    the Learn docs sample)
 *
 * Out: the response {"Outputs":{...},"Logs":[...],"ReturnValue":null},
 * never empty and never null (either would hang the invocation). */
#ifndef D365CDC_ENVELOPE_H
#define D365CDC_ENVELOPE_H

#include "common/arena.h"
#include "common/buf.h"
#include "host/functions.h"
#include "common/json.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct envelope_limits {
  size_t max_message_bytes; /* larger bodies are marked oversize (0: no cap) */
  int max_batch_messages;   /* more messages in one invocation: APP_ERR_LIMIT (0: no cap) */
  int max_json_depth;       /* nesting cap for the envelope and each second decode */
};

/* One Service Bus message. Strings are NUL-terminated, in the arena, NULL
 * when the host did not send the property. */
struct envelope_message {
  const char *body; /* exact body bytes (NUL added, not counted); NULL when oversize */
  size_t body_len;  /* body size in bytes, also when oversize */
  bool oversize;    /* body_len > max_message_bytes: never decode it, classify as poison */
  const char *message_id;
  const char *content_type;
  const char *correlation_id;
  int delivery_count;                /* 0 when unknown */
  int64_t sequence_number;           /* -1 when unknown */
  int64_t enqueued_ms;               /* EnqueuedTimeUtc, ms since 1970 UTC; 0 when unknown */
  const struct json *app_properties; /* ApplicationProperties object, or NULL */
};

/* Data.<binding> of an httpTrigger (a real JSON object). */
struct envelope_http {
  const char *url;               /* "https://host/api/x?y=1", or NULL */
  const char *method;            /* "GET", or NULL */
  const struct json *query;      /* object name -> string, or NULL */
  const struct json *headers;    /* object name -> [strings], or NULL; see envelope_http_header */
  const struct json *params;     /* route parameters object, or NULL */
  const struct json *identities; /* array, or NULL */
  const char *body;              /* request body text (NUL added), NULL when absent */
  size_t body_len;
};

enum envelope_kind {
  ENVELOPE_MESSAGES = 1, /* serviceBusTrigger: messages[] */
  ENVELOPE_HTTP,         /* httpTrigger: http */
  ENVELOPE_OTHER         /* any other trigger: only data and metadata */
};

struct invocation {
  enum envelope_kind kind;
  bool batch;   /* cardinality many (or sniffed as a batch) */
  bool sniffed; /* the body encoding was guessed, not read from function.json */
  struct envelope_message *messages;
  size_t nmessages;
  struct envelope_http http;
  const struct json *data;          /* the Data object as sent, or NULL */
  const struct json *metadata;      /* Metadata with every string value decoded a second time
                                       where that yields exactly one JSON value; never NULL */
  const struct json *sys;           /* Metadata.sys object, or NULL */
  const struct json *retry_context; /* Metadata.RetryContext object, or NULL */
  int retry_count;                  /* RetryContext.RetryCount, -1 when absent */
  int max_retry_count;              /* RetryContext.MaxRetryCount, -1 when absent */
  /* Service Bus keys whose Metadata value came from the body instead of the
   * broker (the host copies the top-level properties of a JSON string body
   * into Metadata and they win; protocol doc 2.2), comma-separated, or NULL.
   * Their envelope_message fields are left unknown. */
  const char *shadowed;
};

/* Parse the envelope body[0..len) into *out (everything in the arena,
 * valid until arena_reset/arena_cleanup; body itself is not referenced
 * afterwards). fn (may be NULL) says how Data.<binding> is encoded.
 *   APP_ERR_INPUT  malformed envelope; err->msg names what and where, e.g.
 *                  "Data.msg: expected a base64 string, got a number" or
 *                  "Metadata.MessageIdArray has 3 entries but the batch has
 *                  2 messages"
 *   APP_ERR_LIMIT  more messages than max_batch_messages, nesting deeper
 *                  than max_json_depth, or the arena ceiling
 * An oversize message is not an error: it is marked oversize. */
APP_NODISCARD enum app_result envelope_parse(struct arena *a, const char *body, size_t len,
                                             const struct function_def *fn,
                                             const struct envelope_limits *lim,
                                             struct invocation **out, struct app_err *err);

/* Like envelope_parse, with the same results and messages, but body is
 * parsed in place instead of copied (json_parse_mutable): it is modified,
 * and *out points into it, so it must stay valid as long as *out is used.
 * The double-encoded batch Data and Metadata strings are decoded in place
 * too, and base64 message bodies over their own text, so inv->data no
 * longer holds the message values as sent (use messages[]). For the
 * request's own buffer (server_invocation.body): a batch of 1000 messages
 * needs about 5 MB less than with envelope_parse. */
APP_NODISCARD enum app_result envelope_parse_mutable(struct arena *a, char *body, size_t len,
                                                     const struct function_def *fn,
                                                     const struct envelope_limits *lim,
                                                     struct invocation **out, struct app_err *err);

/* Metadata value for key (exact name first, then case-insensitive), decoded
 * a second time as above, or NULL. Borrowed from the invocation. */
const struct json *envelope_metadata(const struct invocation *inv, const char *key);

/* First value of request header `name` (case-insensitive), or NULL.
 * Accepts both the host's name -> [values] shape and name -> value. */
const char *envelope_http_header(const struct envelope_http *req, const char *name);

/* Parse an ISO 8601 date-time leniently: YYYY-MM-DD, 'T' (or ' '),
 * hh:mm[:ss], optional fraction (any digits, truncated to ms), optional
 * 'Z' or +hh:mm / +hhmm / +hh offset; no zone means UTC. *out_ms gets ms
 * since 1970-01-01T00:00:00Z. False when s[0..n) is not such a date. */
bool envelope_parse_time(const char *s, size_t n, int64_t *out_ms);

/* ---- response ----------------------------------------------------------- */

struct envelope_output; /* one Outputs member (private) */

struct envelope_response {
  struct envelope_output *outputs;
  size_t noutputs, cap;
  struct buf logs; /* the Logs array members, comma-separated */
  size_t nlogs;
  struct buf ret;   /* ReturnValue JSON text; empty means null */
  size_t max_bytes; /* ceiling of each part */
};

/* Start an empty response whose parts may each grow to max_bytes (0: no cap). */
void envelope_response_init(struct envelope_response *r, size_t max_bytes);
/* Free everything. NULL-safe. */
void envelope_response_cleanup(struct envelope_response *r);

/* Outputs.<binding> = json[0..len), which must be one valid JSON value (an
 * object for sql, an array for redis/serviceBus; see protocol doc 3.2).
 *   APP_ERR_INPUT  empty binding name, or the binding already has a value
 *   APP_ERR_LIMIT  past max_bytes */
APP_NODISCARD enum app_result envelope_response_add_output(struct envelope_response *r,
                                                           const char *binding, const char *json,
                                                           size_t len, struct app_err *err);

/* Append the string s[0..len) to Outputs.<binding> as an element of a JSON
 * array: ["s"] after the first call, ["s","t"] after the second. A bare
 * string would be base64-decoded by the host whenever it happens to be valid
 * base64 ("abcd", "true", "1234"): the array is the safe form (the base64
 * trap, protocol doc 3.2), and each element becomes one Redis command or
 * one Service Bus message.
 *   APP_ERR_INPUT  the binding already holds a value set by another helper
 *   APP_ERR_LIMIT  past max_bytes */
APP_NODISCARD enum app_result envelope_response_add_output_string(struct envelope_response *r,
                                                                  const char *binding,
                                                                  const char *s, size_t len,
                                                                  struct app_err *err);

/* Outputs.<binding> = {"statusCode":status,"headers":{...},"body":"..."}
 * for an http output binding. headers holds nheaders (name, value) pairs:
 * headers[2*i] is the name, headers[2*i+1] the value. The body is sent as
 * a JSON string (the host writes it as-is). binding "$return" sets
 * ReturnValue instead, as the host expects for a $return http binding.
 *   APP_ERR_INPUT  status outside 100..599, or the binding already set
 *   APP_ERR_LIMIT  past max_bytes */
APP_NODISCARD enum app_result envelope_response_add_http(struct envelope_response *r,
                                                         const char *binding, int status,
                                                         const char *const *headers,
                                                         size_t nheaders, const char *body,
                                                         size_t body_len, struct app_err *err);

/* ReturnValue = json[0..len) (one valid JSON value). Mind the base64 trap
 * for strings. APP_ERR_LIMIT past max_bytes. */
APP_NODISCARD enum app_result envelope_response_set_return(struct envelope_response *r,
                                                           const char *json, size_t len,
                                                           struct app_err *err);

/* Add one line to Logs (printf format). The host logs each at Information,
 * and only for successful invocations. APP_ERR_LIMIT past max_bytes (the
 * line is dropped, the response stays valid). */
APP_NODISCARD enum app_result envelope_response_add_log(struct envelope_response *r,
                                                        const char *fmt, ...) APP_PRINTF(2, 3);

/* Append the whole response JSON to out.
 *   APP_ERR_LIMIT  out's ceiling */
APP_NODISCARD enum app_result envelope_response_write(const struct envelope_response *r,
                                                      struct buf *out);

/* The smallest valid response: no outputs, no logs. */
#define ENVELOPE_EMPTY_RESPONSE "{\"Outputs\":{},\"Logs\":[],\"ReturnValue\":null}"

#endif

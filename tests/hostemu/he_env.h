/* he_env.h - invocation envelopes exactly as the Functions host builds them.
 *
 * {"Data":{"<binding>":<value>},"Metadata":{...}} (protocol doc 2.2-2.4, 4):
 *  - Service Bus single, dataType binary: Data = base64 of the body bytes.
 *  - single, string (or no dataType): Data = the body (UTF-8, invalid
 *    sequences replaced as .NET does) double-encoded, plus the top-level
 *    non-array properties of a JSON body as extra Metadata keys
 *    (Utility.ApplyBindingData; they override same-named Service Bus keys).
 *  - batch: Data = double-encoded JSON array of base64 strings (binary) or
 *    of body strings (string); Metadata keys get an "Array" suffix and are
 *    double-encoded arrays (dates with full precision).
 *  - Metadata values: ints/longs/strings double-encoded ("1", "\"id\""),
 *    DateTime "2024-05-01T10:22:31", DateTimeOffset "...+00:00", property
 *    dictionaries as real objects, action objects {}, null values omitted,
 *    keys ending in "trigger" omitted, and sys {MethodName, UtcNow, RandGuid}.
 *  - HTTP trigger (default mode): Data.<req> = {Url, Method, Query, Headers,
 *    Params, Identities, Body}; Metadata = body properties, query values,
 *    route values, Query, Headers, sys. */
#ifndef D365CDC_HE_ENV_H
#define D365CDC_HE_ENV_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/result.h"
#include "he_app.h"
#include "he_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DateTimeOffset.MaxValue as ticks since 1970 (what ExpiresAt is for a
 * TimeToLive of TimeSpan.MaxValue). */
#define HE_TICKS_MAX_DATE 2534023007999999999LL

struct he_sb_target {
  const char *function;     /* route "/<function>" and sys.MethodName */
  const char *binding;      /* trigger binding name: the Data key */
  bool binary;              /* dataType binary */
  bool many;                /* cardinality many */
  const char *sb_namespace; /* for the Client metadata object */
};

struct he_sb_message {
  const char *body;
  size_t len;
  const char *message_id;
  const struct he_msg_props *props;
  int64_t sequence_number;
  int delivery_count;
  int64_t enqueued_ticks; /* ms precision, as Service Bus stamps it */
  int64_t expires_ticks;
  char lock_token[37];
  const char *b64; /* base64 of body, or NULL to encode it here (borrowed) */
  size_t b64_len;
};

struct he_header {
  const char *name;
  const char *value;
};

struct he_http_request {
  const char *method;
  const char *path;  /* "/api/...", no query */
  const char *query; /* raw query without '?', or NULL */
  const struct he_header *headers;
  size_t n_headers;
  const char *body;
  size_t body_len;
  const char *base_url; /* "http://localhost:7071" */
};

/* Notes about one envelope, for the summary. */
struct he_env_notes {
  bool lossy_utf8; /* a body bound as string was not valid UTF-8 */
};

/* Working space reused from one envelope to the next. */
struct he_env {
  struct buf s1, s2, s3; /* scratch */
  struct buf d;          /* the Data value being built */
  struct arena a;
};

void he_env_init(struct he_env *e);
void he_env_cleanup(struct he_env *e);

/* Append the envelope for msgs[0..n) (n == 1 unless t->many) to out.
 * Errors: APP_ERR_LIMIT when out's ceiling is reached. */
APP_NODISCARD enum app_result he_env_servicebus(struct he_env *e, struct buf *out,
                                                const struct he_sb_target *t,
                                                struct he_sb_message *const *msgs, size_t n,
                                                int64_t now_ticks, struct he_env_notes *notes,
                                                struct app_err *err);

/* Append the default-mode HTTP-trigger envelope to out. */
APP_NODISCARD enum app_result he_env_http(struct he_env *e, struct buf *out, const char *function,
                                          const char *binding, const struct he_http_request *req,
                                          const struct he_route_param *params, size_t n_params,
                                          int64_t now_ticks, struct app_err *err);

/* Append the envelope of a timerTrigger invocation to out: Data.<binding>
 * is the TimerInfo (Schedule, ScheduleStatus Last/Next/LastUpdated,
 * IsPastDue) serialised as a JSON string, Metadata has the same under the
 * binding name and sys (MethodName, UtcNow, RandGuid). interval_s is the
 * schedule's period, for ScheduleStatus. */
APP_NODISCARD enum app_result he_env_timer(struct he_env *e, struct buf *out, const char *function,
                                           const char *binding, int64_t interval_s,
                                           int64_t now_ticks, struct app_err *err);

/* Utility.IsJson after Trim: starts with '{' and ends with '}' (or '['
 * and ']'). */
bool he_env_looks_json(const char *s, size_t n);

#endif

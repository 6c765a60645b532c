/* he_result.h - what the Functions host makes of a handler's answer (pure).
 *
 *  - he_result_evaluate: does a default-mode invocation succeed? (2xx, a
 *    JSON Content-Type, a non-empty JSON object that deserialises into
 *    HttpScriptInvocationResult; protocol doc 3.1)
 *  - he_result_check_outputs: what the host would silently get wrong (the
 *    base64 trap, unknown Outputs keys, a ReturnValue object; 3.2, 3.3)
 *  - he_result_http: the response an HTTP trigger's client receives, built
 *    from Outputs.<http binding> or ReturnValue, or the handler's answer
 *    verbatim in forwarding mode (4). */
#ifndef D365CDC_HE_RESULT_H
#define D365CDC_HE_RESULT_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/result.h"
#include "he_app.h"
#include "he_net.h"

#include <stdbool.h>
#include <stddef.h>

/* APP_OK when the host accepts resp; *out_root is the parsed body, in a
 * (borrowed, valid until a is reset). Otherwise APP_ERR_HTTP with the
 * reason in err->msg, e.g. "HTTP 500 Internal Server Error: <excerpt>" or
 * "empty response body (HTTP 200): the real host would hang ...". */
APP_NODISCARD enum app_result he_result_evaluate(struct arena *a, const struct he_resp *resp,
                                                 const struct json **out_root, struct app_err *err);

typedef void (*he_warn_fn)(void *ctx, const char *text);

/* Call warn once per problem found in an accepted answer. fn may be NULL
 * (no function.json: every Outputs string is checked for the trap). The
 * texts do not contain values, so equal problems can be counted. */
void he_result_check_outputs(const struct he_function *fn, const char *function,
                             const struct json *root, he_warn_fn warn, void *ctx);

/* Append to out the HTTP response the client would receive: status line,
 * headers (CRLF) and body. ok is whether the invocation succeeded (a
 * failure gives 500); root is the accepted answer (default mode); resp the
 * handler's raw answer (forwarding). a is working space. note (cap bytes)
 * gets why the host would answer 500 for a bad output, or "". Errors:
 * APP_ERR_NOMEM. */
APP_NODISCARD enum app_result he_result_http(const struct he_function *fn, bool forward, bool ok,
                                             const struct he_resp *resp, const struct json *root,
                                             struct arena *a, struct buf *out, char *note,
                                             size_t cap);

#endif

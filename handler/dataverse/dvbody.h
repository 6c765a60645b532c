/* dvbody.h - find and parse the JSON inside a Service Bus message body.
 *
 * Dataverse posts a RemoteExecutionContext as the raw body of a Service Bus
 * message. What reaches us is not always plain JSON text, so this module
 * looks at the content type and the first bytes before parsing:
 *
 *   application/msbin1, or a body that starts like .NET binary XML
 *       -> APP_ERR_UNSUPPORTED (the endpoint's default "Binary XML" format)
 *   application/xml, text/xml, or a body starting with '<'
 *       -> APP_ERR_UNSUPPORTED (the endpoint's "Text XML" format)
 *   a UTF-8 byte order mark            -> skipped
 *   a UTF-16 byte order mark, charset=utf-16, or UTF-16 text recognised by
 *       its zero bytes (JSON starts with ASCII) -> converted to UTF-8
 *   the DataContract string preamble   -> the string is taken out of it:
 *       a message re-sent through .NET BrokeredMessage(string) carries the
 *       body as binary XML <string xmlns="http://schemas.microsoft.com/2003/
 *       10/Serialization/">...</string> (also <base64Binary> for byte[])
 *   a JSON string literal holding the JSON text -> decoded, then parsed
 *
 * The layers may nest (a preamble around a string literal, a BOM inside a
 * string); at most DVBODY_MAX_LAYERS are peeled. docs/dataverse.md has the
 * byte-level details. Pure code: no I/O, everything lives in the arena. */
#ifndef D365CDC_DVBODY_H
#define D365CDC_DVBODY_H

#include "common/arena.h"
#include "common/json.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

#define DVBODY_MAX_LAYERS 4

/* What the content type says (media type only, parameters ignored). */
enum dvbody_ctype {
  DVBODY_CT_NONE = 0, /* NULL or empty: sniff the body */
  DVBODY_CT_JSON,     /* application/json, text/json, application/<x>+json */
  DVBODY_CT_MSBIN1,   /* application/msbin1 (.NET binary XML) */
  DVBODY_CT_XML,      /* application/xml, text/xml, application/<x>+xml */
  DVBODY_CT_OTHER     /* anything else (text/plain, octet-stream...): sniff */
};

/* Bits of dvbody_result.wraps: which layers were peeled. */
#define DVBODY_WRAP_BOM      0x01 /* UTF-8 byte order mark */
#define DVBODY_WRAP_UTF16    0x02 /* UTF-16 text converted to UTF-8 */
#define DVBODY_WRAP_PREAMBLE 0x04 /* DataContract binary-XML string/base64Binary */
#define DVBODY_WRAP_STRING   0x08 /* JSON string literal holding the JSON text */

struct dvbody_result {
  const struct json *root; /* the parsed JSON value (in the arena) */
  unsigned wraps;          /* DVBODY_WRAP_* bits */
};

/* Classify a Content-Type header value, e.g. "Application/JSON; charset=utf-8".
 * Case-insensitive; surrounding whitespace and parameters are ignored.
 * content_type may be NULL. */
enum dvbody_ctype dvbody_ctype(const char *content_type);

/* Peel the layers described above off body[0..len) and parse the JSON it
 * holds, with nesting at most max_depth (<= 0: JSON_DEFAULT_MAX_DEPTH).
 * The body is not modified; the parsed tree and any converted text live in
 * arena a (valid until it is reset). content_type may be NULL.
 * Results:
 *   APP_OK               out->root is the JSON value (any type)
 *   APP_ERR_UNSUPPORTED  .NET binary XML or text XML (msbin1/xml content
 *                        type or body); the message says to switch the
 *                        service endpoint's message format to JSON; also an
 *                        unsupported charset parameter
 *   APP_ERR_INPUT        empty body, bad preamble framing, invalid UTF-16,
 *                        or a JSON syntax/encoding error (line and column
 *                        from json.h, prefixed with the layer it was found in)
 *   APP_ERR_LIMIT        nesting deeper than max_depth, or the arena ceiling
 * err->msg names what was wrong and where. Size caps are the caller's
 * (dv_decode checks max_body_bytes before calling this). */
APP_NODISCARD enum app_result dvbody_parse(struct arena *a, const char *content_type,
                                           const char *body, size_t len, int max_depth,
                                           struct dvbody_result *out, struct app_err *err);

#endif

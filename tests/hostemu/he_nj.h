/* he_nj.h - Newtonsoft.Json conventions the Functions host writes with.
 *
 * The host serialises the invocation envelope with Newtonsoft (through
 * JsonMediaTypeFormatter) and converts binding data with JObject.Parse /
 * JsonConvert.SerializeObject. To send the same bytes, the emulator needs:
 *   - Newtonsoft's string escaping (short escapes, \u00xx lower case,
 *     U+0085/U+2028/U+2029 escaped, other non-ASCII raw);
 *   - what JObject.Parse does to values (DateParseHandling.DateTime turns
 *     "/Date(ms)/" and ISO strings into DateTime; FloatParseHandling.Double
 *     turns 1.0000000000 into 1; integers beyond Int64 become BigInteger),
 *     and how those values are written back (IsoDateFormat, .NET "R"
 *     doubles with a ".0" kept) or converted with (string)JValue
 *     (InvariantCulture: "True", "05/01/2024 10:22:31", "1").
 * Everything here is pure. */
#ifndef D365CDC_HE_NJ_H
#define D365CDC_HE_NJ_H

#include "common/buf.h"
#include "common/json.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Append s[0..n) (valid UTF-8) as a quoted JSON string, escaped as
 * Newtonsoft's default StringEscapeHandling does. Errors: APP_ERR_LIMIT
 * (buffer ceiling). */
APP_NODISCARD enum app_result he_nj_str(struct buf *b, const char *s, size_t n);

/* Append s[0..n) double-encoded: the JSON string whose content is the JSON
 * string literal of s (JsonConvert.SerializeObject(string), then written as
 * a string value again), in one pass. */
APP_NODISCARD enum app_result he_nj_str2(struct buf *b, const char *s, size_t n);

/* The same two without the surrounding quotes, for building arrays and
 * strings piece by piece. */
APP_NODISCARD enum app_result he_nj_str_content(struct buf *b, const char *s, size_t n);
APP_NODISCARD enum app_result he_nj_str2_content(struct buf *b, const char *s, size_t n);

/* Decode bytes as .NET's Encoding.UTF8.GetString does: each maximal
 * invalid subsequence becomes U+FFFD. Appends to out; *out_lossy (may be
 * NULL) is set when anything was replaced. A leading BOM is kept (U+FEFF),
 * as GetString keeps it. */
APP_NODISCARD enum app_result he_nj_utf8_lossy(struct buf *out, const char *s, size_t n,
                                               bool *out_lossy);

/* Format a double as .NET Core 3.0+ double.ToString("R", Invariant):
 * shortest round-trip digits, scientific ("1E+15", "1.5E-05") outside
 * 1e-5 <= |v| < 1e15. With ensure_decimal, add ".0" when the text has no
 * '.', 'E' (JsonConvert.ToString(double)). Returns the length. */
size_t he_nj_double(double v, bool ensure_decimal, char out[40]);

/* If s[0..n) is a string Newtonsoft's reader turns into a DateTime
 * (DateParseHandling.DateTime), return true with *out_ticks (100 ns since
 * 1970-01-01 UTC, converted to UTC) and *out_kind: 0 Unspecified, 1 Utc,
 * 2 Local (the host machine is assumed to run in UTC, as Functions on
 * Linux does). Recognised: "/Date(ms)/", "/Date(ms+hhmm)/" and ISO 8601
 * "yyyy-MM-ddTHH:mm:ss[.f{1,7}][Z|+hh:mm|-hh:mm]". */
bool he_nj_date(const char *s, size_t n, int64_t *out_ticks, int *out_kind);

/* Append v as Newtonsoft would write it after JObject.Parse of the text
 * it came from: dates as ISO strings, floats as doubles, everything else
 * unchanged (compact). Errors: APP_ERR_INPUT for a float out of double
 * range (Newtonsoft's reader throws), APP_ERR_LIMIT. */
APP_NODISCARD enum app_result he_nj_write_parsed(struct buf *b, const struct json *v);

/* Append the text (string)JValue gives for scalar v (after JObject.Parse):
 * strings as they are (dates in InvariantCulture "MM/dd/yyyy HH:mm:ss"),
 * integers as digits, floats in "R" format, booleans "True"/"False".
 * Returns APP_ERR_INPUT for null, arrays and objects. */
APP_NODISCARD enum app_result he_nj_scalar_text(struct buf *b, const struct json *v);

/* Would .NET Convert.FromBase64String(s) succeed? (whitespace ignored,
 * padding rules; the empty string decodes to zero bytes). */
bool he_nj_is_base64(const char *s, size_t n);

#endif

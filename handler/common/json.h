/* json.h - a small JSON reader that keeps what cJSON loses.
 *
 * cJSON 1.7.15 parses every number into a double, so 29-digit decimals,
 * integers above 2^53 and the scale of "1.0000000000" are lost. Dataverse
 * sends all of those. This reader keeps each number as its original lexeme
 * and builds an immutable tree in a struct arena (one free per message).
 *
 * Strings are fully decoded (\uXXXX with surrogate pairs, \/), validated as
 * UTF-8, and NUL-terminated; a lone surrogate escape becomes U+FFFD.
 * The bytes of a string (str[0..len], the NUL included) belong to the tree
 * and are writable memory: the owner of the tree may decode a string in
 * place (json_parse_mutable of a double-encoded value, base64) as long as
 * nothing reads its old value afterwards.
 * Number lexemes are NOT NUL-terminated: use str/len. */
#ifndef D365CDC_JSON_H
#define D365CDC_JSON_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type {
  JSON_NULL = 0,
  JSON_FALSE,
  JSON_TRUE,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT
};

struct json {
  struct json *next;  /* next array element or object member */
  struct json *child; /* first element/member of an array/object */
  const char *key;    /* member name (decoded, NUL-terminated); NULL in arrays */
  const char *str;    /* string (decoded, NUL-terminated) or number lexeme */
  uint32_t key_len;
  uint32_t len;    /* bytes of str, or number of children */
  uint32_t offset; /* byte offset of the value in the parsed text */
  uint8_t type;    /* enum json_type */
};

#define JSON_DEFAULT_MAX_DEPTH 64

/* Parse exactly one JSON value (surrounding whitespace allowed) from
 * text[0..len). max_depth bounds the nesting of arrays and objects.
 * On success *out_root points into the arena. Errors:
 *   APP_ERR_INPUT  syntax or encoding error; err->msg names line, column
 *                  and offset, e.g. "line 1, column 17 (offset 16):
 *                  expected ':' after member name"
 *   APP_ERR_LIMIT  nesting deeper than max_depth, or the arena ceiling */
APP_NODISCARD enum app_result json_parse(struct arena *a, const char *text, size_t len,
                                         int max_depth, struct json **out_root,
                                         struct app_err *err);

/* Like json_parse but stops after the first value: *out_end receives the
 * offset just past it (and any whitespace after it). */
APP_NODISCARD enum app_result json_parse_prefix(struct arena *a, const char *text, size_t len,
                                                int max_depth, struct json **out_root,
                                                size_t *out_end, struct app_err *err);

/* Like json_parse, but parses text in place instead of copying it (for
 * large texts such as batch envelopes and their double-encoded Data). The
 * closing quote of each string without escapes becomes its NUL and the
 * string points into text; strings with escapes are decoded into the
 * arena; nothing else in text changes. text must stay valid while the tree
 * is used. On failure text is restored byte for byte (so a caller may keep
 * using it, e.g. as a plain string), and the message is the same as
 * json_parse's. */
APP_NODISCARD enum app_result json_parse_mutable(struct arena *a, char *text, size_t len,
                                                 int max_depth, struct json **out_root,
                                                 struct app_err *err);

/* First member named key (case-sensitive), or NULL. obj may be NULL or any type. */
const struct json *json_get(const struct json *obj, const char *key);
/* Same, case-insensitive (for HTTP headers and Newtonsoft-matched names). */
const struct json *json_get_ci(const struct json *obj, const char *key);
/* String value of member key, or NULL if absent or not a string. */
const char *json_get_str(const struct json *obj, const char *key);

static inline bool json_is(const struct json *v, enum json_type t)
{
  return v && v->type == (uint8_t)t;
}

/* Integer value of a number lexeme without fraction or exponent that fits
 * int64_t; false otherwise. */
bool json_number_i64(const struct json *v, int64_t *out);

/* Append v as compact JSON; number lexemes are written unchanged. */
APP_NODISCARD enum app_result json_write(struct buf *b, const struct json *v);

/* Is text[0..len) valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)?
 * On false, *out_bad_offset (may be NULL) gets the offset of the first
 * bad byte. */
bool json_utf8_valid(const char *text, size_t len, size_t *out_bad_offset);

/* Is lexeme[0..len) a number in JSON grammar? */
bool json_is_number_lexeme(const char *lexeme, size_t len);

#endif

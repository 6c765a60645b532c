/* base64.h - standard base64 (RFC 4648, with padding), as .NET writes byte[]. */
#ifndef D365CDC_BASE64_H
#define D365CDC_BASE64_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

/* Decoded size upper bound for n input characters. */
static inline size_t base64_decoded_max(size_t n)
{
  return n / 4 * 3 + 3;
}

/* Decode in[0..n) into out (at least base64_decoded_max(n) bytes); out may
 * be in itself (decoding in place: every group is read before its bytes
 * are written, and they never pass it).
 * Whitespace is not allowed (the host never sends any). Padding is
 * required when the length is not a multiple of 4... unless absent on a
 * final group, which is tolerated. Returns false on any invalid character
 * or misplaced padding; *out_bad_offset gets its position. */
bool base64_decode(const char *in, size_t n, unsigned char *out, size_t *out_len,
                   size_t *out_bad_offset);

/* Decode into a fresh arena block (NUL-terminated for convenience). */
APP_NODISCARD enum app_result base64_decode_arena(struct arena *a, const char *in, size_t n,
                                                  char **out, size_t *out_len, struct app_err *err);

/* Append the base64 encoding of in[0..n). */
APP_NODISCARD enum app_result base64_encode_buf(struct buf *b, const void *in, size_t n);

#endif

/* buf.h - a growable byte buffer with a hard ceiling.
 *
 * Every buffer that network input can grow has a maximum (curl's dynbuf
 * "toobig"). Appending past it fails with APP_ERR_LIMIT and leaves the
 * contents as they were. The data is always NUL-terminated for convenience
 * (the terminator is not counted in len). */
#ifndef D365CDC_BUF_H
#define D365CDC_BUF_H

#include "common/result.h"

#include <stddef.h>
#include <stdint.h>

struct buf {
  char *data; /* owned; NULL until the first append */
  size_t len;
  size_t cap;
  size_t max; /* ceiling for len; 0 means SIZE_MAX/2 */
};

/* Initialise an empty buffer that may grow to max bytes (0: unbounded). */
void buf_init(struct buf *b, size_t max);
/* Free the storage; the buffer may be reused after buf_init. NULL-safe. */
void buf_cleanup(struct buf *b);
/* Forget the contents, keep the storage. */
void buf_reset(struct buf *b);
/* Make room for n more bytes. */
APP_NODISCARD enum app_result buf_reserve(struct buf *b, size_t n);

APP_NODISCARD enum app_result buf_append(struct buf *b, const void *p, size_t n);
APP_NODISCARD enum app_result buf_append_str(struct buf *b, const char *s);
APP_NODISCARD enum app_result buf_append_char(struct buf *b, char c);
APP_NODISCARD enum app_result buf_printf(struct buf *b, const char *fmt, ...) APP_PRINTF(2, 3);
APP_NODISCARD enum app_result buf_append_i64(struct buf *b, int64_t v);
APP_NODISCARD enum app_result buf_append_u64(struct buf *b, uint64_t v);

/* Append s as a JSON string literal (quotes included), escaping '"', '\\'
 * and control characters; well-formed UTF-8 is copied as it is, and every
 * byte that is not part of a well-formed sequence (a message cut inside a
 * character, raw bytes from a URL) becomes \ufffd, so the result is always
 * valid JSON. */
APP_NODISCARD enum app_result buf_append_json_str(struct buf *b, const char *s, size_t n);

/* Take the data out of the buffer: the caller frees it with free(). The
 * buffer is left empty. Returns NULL if nothing was ever appended. */
char *buf_steal(struct buf *b, size_t *out_len);

#endif

/* buf.c - growable byte buffer with a ceiling. */
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max ? max : SIZE_MAX / 2;
}

void buf_cleanup(struct buf *b)
{
  if (!b)
    return;
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

enum app_result buf_reserve(struct buf *b, size_t n)
{
  size_t need, cap;
  char *p;

  if (n > b->max || b->len > b->max - n)
    return APP_ERR_LIMIT;
  need = b->len + n + 1;
  if (need <= b->cap)
    return APP_OK;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = cap < SIZE_MAX / 4 ? cap * 2 : need;
  p = realloc(b->data, cap);
  if (!p)
    return APP_ERR_NOMEM;
  b->data = p;
  b->cap = cap;
  return APP_OK;
}

enum app_result buf_append(struct buf *b, const void *p, size_t n)
{
  APP_RETURN_IF_FAILED(buf_reserve(b, n));
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return APP_OK;
}

enum app_result buf_append_str(struct buf *b, const char *s)
{
  return buf_append(b, s, strlen(s));
}

enum app_result buf_append_char(struct buf *b, char c)
{
  if (b->len < b->max && b->len + 1 < b->cap) {
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return APP_OK;
  }
  return buf_append(b, &c, 1);
}

enum app_result buf_printf(struct buf *b, const char *fmt, ...)
{
  va_list ap;
  int n;
  char small[256];

  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return APP_ERR_INPUT;
  if ((size_t)n < sizeof small)
    return buf_append(b, small, (size_t)n);
  APP_RETURN_IF_FAILED(buf_reserve(b, (size_t)n));
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return APP_OK;
}

enum app_result buf_append_u64(struct buf *b, uint64_t v)
{
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return buf_append(b, tmp + i, sizeof tmp - i);
}

enum app_result buf_append_i64(struct buf *b, int64_t v)
{
  if (v < 0) {
    APP_RETURN_IF_FAILED(buf_append_char(b, '-'));
    return buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
  }
  return buf_append_u64(b, (uint64_t)v);
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if there is
 * none. s[0] >= 0x80. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  size_t len, k;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    len = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    len = 4;
  else
    return 0;
  if (len > n)
    return 0;
  /* the second byte's range rules out overlongs, surrogates and > U+10FFFF */
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (k = 2; k < len; k++)
    if ((s[k] & 0xC0) != 0x80)
      return 0;
  return len;
}

enum app_result buf_append_json_str(struct buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  size_t i, start = 0;

  /* worst case every byte becomes \u00XX */
  APP_RETURN_IF_FAILED(buf_reserve(b, n + 2));
  APP_RETURN_IF_FAILED(buf_append_char(b, '"'));
  for (i = 0; i < n; i++) {
    unsigned char c;
    char esc[6];
    size_t elen = 2;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&                        \
    (defined(__GNUC__) || defined(__clang__))
    /* 8 bytes at a time up to the next byte to look at: '"', '\\', a
     * control or a byte >= 0x80 ("has a zero byte" tests; the lowest
     * flagged byte is exactly the first such byte, a borrow only flags
     * bytes above it) */
    while (n - i >= 8) {
      const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
      uint64_t x, q, bs, m;
      memcpy(&x, s + i, 8);
      q = x ^ (ones * '"');
      bs = x ^ (ones * '\\');
      m = (((q - ones) & ~q) | ((bs - ones) & ~bs) | ((x - ones * 0x20) & ~x) | x) & high;
      if (m) {
        i += (size_t)__builtin_ctzll(m) >> 3;
        break;
      }
      i += 8;
    }
    if (i >= n)
      break;
#endif
    c = (unsigned char)s[i];
    if (c >= 0x80) {
      /* well-formed UTF-8 is copied; anything else (a message cut in the
       * middle of a character, bytes from a URL) becomes U+FFFD, so the
       * output is always valid JSON text */
      size_t len = utf8_seq_len((const unsigned char *)s + i, n - i);
      if (len) {
        i += len - 1;
        continue;
      }
      APP_RETURN_IF_FAILED(buf_append(b, s + start, i - start));
      APP_RETURN_IF_FAILED(buf_append(b, "\\ufffd", 6));
      start = i + 1;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    APP_RETURN_IF_FAILED(buf_append(b, s + start, i - start));
    esc[0] = '\\';
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      elen = 6;
    }
    APP_RETURN_IF_FAILED(buf_append(b, esc, elen));
    start = i + 1;
  }
  APP_RETURN_IF_FAILED(buf_append(b, s + start, n - start));
  return buf_append_char(b, '"');
}

char *buf_steal(struct buf *b, size_t *out_len)
{
  char *p = b->data;
  if (out_len)
    *out_len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}

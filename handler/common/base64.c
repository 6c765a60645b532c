/* base64.c - RFC 4648 base64. */
#include "common/base64.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static const char enc_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 255 for anything else */
static unsigned char dec_tab[256];
/* the same, shifted to its place in a group of four (18, 12, 6, 0 bits);
 * anything but an alphabet character sets bit 24 */
#define DEC_BAD (1u << 24)
static uint32_t dec_shift[4][256];
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void init_tab(void)
{
  int i, k;
  unsigned char t[256];
  memset(t, 255, sizeof t);
  for (i = 0; i < 64; i++)
    t[(unsigned char)enc_tab[i]] = (unsigned char)i;
  t['='] = 64;
  memcpy(dec_tab, t, sizeof t);
  for (k = 0; k < 4; k++)
    for (i = 0; i < 256; i++)
      dec_shift[k][i] = t[i] < 64 ? (uint32_t)t[i] << (18 - 6 * k) : DEC_BAD;
}

/* out[0..2] = the 24 bits of v, most significant first; out[3] is written
 * too (see the fast path) */
static inline void store3(unsigned char *out, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&                        \
    (defined(__GNUC__) || defined(__clang__))
  uint32_t w = __builtin_bswap32(v << 8);
  memcpy(out, &w, 4);
#else
  out[0] = (unsigned char)(v >> 16);
  out[1] = (unsigned char)(v >> 8);
  out[2] = (unsigned char)v;
  out[3] = 0;
#endif
}

bool base64_decode(const char *in, size_t n, unsigned char *out, size_t *out_len,
                   size_t *out_bad_offset)
{
  size_t i = 0, o = 0;
  pthread_once(&dec_once, init_tab);
  /* fast path: whole groups of four alphabet characters that are not the
   * last group (only the last one may hold padding): four table lookups
   * give the 24 bits, or DEC_BAD for '=' or a bad character, which then
   * takes the careful path below for the exact offset (in the middle of
   * the input that path only ever fails). Three bytes are stored with one
   * 4-byte store whose last byte the next group overwrites: a group that
   * is not the last is followed by at least one more output byte, and in
   * place the store stays behind the next group's input. */
  while (n - i > 4) {
    const unsigned char *g = (const unsigned char *)in + i;
    uint32_t v = dec_shift[0][g[0]] | dec_shift[1][g[1]] | dec_shift[2][g[2]] | dec_shift[3][g[3]];
    if (v & DEC_BAD)
      break;
    store3(out + o, v);
    o += 3;
    i += 4;
  }
  while (i < n) {
    unsigned char q[4];
    size_t k, got = 0, pad = 0;
    for (k = 0; k < 4 && i + k < n; k++) {
      unsigned char v = dec_tab[(unsigned char)in[i + k]];
      if (v == 255) {
        if (out_bad_offset)
          *out_bad_offset = i + k;
        return false;
      }
      if (v == 64) {
        pad++;
        q[k] = 0;
      } else {
        if (pad) { /* data after padding */
          if (out_bad_offset)
            *out_bad_offset = i + k;
          return false;
        }
        q[k] = v;
        got++;
      }
    }
    if (got < 2 || (k < 4 && i + k < n) || (pad && i + 4 < n)) {
      if (out_bad_offset)
        *out_bad_offset = i;
      return false;
    }
    out[o++] = (unsigned char)((q[0] << 2) | (q[1] >> 4));
    if (got >= 3)
      out[o++] = (unsigned char)((q[1] << 4) | (q[2] >> 2));
    if (got >= 4)
      out[o++] = (unsigned char)((q[2] << 6) | q[3]);
    i += k;
  }
  *out_len = o;
  return true;
}

enum app_result base64_decode_arena(struct arena *a, const char *in, size_t n, char **out,
                                    size_t *out_len, struct app_err *err)
{
  size_t bad = 0, len = 0;
  char *p = arena_alloc(a, base64_decoded_max(n) + 1);
  if (!p)
    return app_err_set(err, APP_ERR_LIMIT,
                       "base64 body of %zu characters needs more memory than the decode limit", n);
  if (!base64_decode(in, n, (unsigned char *)p, &len, &bad))
    return app_err_set(err, APP_ERR_INPUT, "invalid base64 at character %zu", bad);
  p[len] = '\0';
  *out = p;
  *out_len = len;
  return APP_OK;
}

enum app_result base64_encode_buf(struct buf *b, const void *in, size_t n)
{
  const unsigned char *s = in;
  size_t i;
  char *w;
  APP_RETURN_IF_FAILED(buf_reserve(b, (n + 2) / 3 * 4));
  w = b->data + b->len;
  for (i = 0; i + 2 < n; i += 3) {
    *w++ = enc_tab[s[i] >> 2];
    *w++ = enc_tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
    *w++ = enc_tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
    *w++ = enc_tab[s[i + 2] & 63];
  }
  if (i < n) {
    *w++ = enc_tab[s[i] >> 2];
    if (i + 1 < n) {
      *w++ = enc_tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
      *w++ = enc_tab[(s[i + 1] & 15) << 2];
    } else {
      *w++ = enc_tab[(s[i] & 3) << 4];
      *w++ = '=';
    }
    *w++ = '=';
  }
  b->len = (size_t)(w - b->data);
  b->data[b->len] = '\0';
  return APP_OK;
}

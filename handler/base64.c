/* base64.c - RFC 4648 base64. */
#include "base64.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static const char enc_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 255 for anything else */
static unsigned char dec_tab[256];
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

static void init_tab(void)
{
  int i;
  unsigned char t[256];
  memset(t, 255, sizeof t);
  for (i = 0; i < 64; i++)
    t[(unsigned char)enc_tab[i]] = (unsigned char)i;
  t['='] = 64;
  memcpy(dec_tab, t, sizeof t);
}

bool base64_decode(const char *in, size_t n, unsigned char *out, size_t *out_len,
                   size_t *out_bad_offset)
{
  size_t i = 0, o = 0;
  pthread_once(&dec_once, init_tab);
  /* fast path: whole groups of four alphabet characters that are not the
   * last group (only the last one may hold padding). Values 64 ('=') and
   * 255 (invalid) have bit 6 or 7 set; such a group takes the careful
   * path below, which reports the exact offset (in the middle of the input
   * that path only ever fails). */
  while (n - i > 4) {
    unsigned a = dec_tab[(unsigned char)in[i]], b = dec_tab[(unsigned char)in[i + 1]],
             c = dec_tab[(unsigned char)in[i + 2]], d = dec_tab[(unsigned char)in[i + 3]];
    uint32_t v;
    if ((a | b | c | d) & 0xC0)
      break;
    v = a << 18 | b << 12 | c << 6 | d;
    out[o] = (unsigned char)(v >> 16);
    out[o + 1] = (unsigned char)(v >> 8);
    out[o + 2] = (unsigned char)v;
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

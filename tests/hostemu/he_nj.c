/* he_nj.c - Newtonsoft.Json conventions (see he_nj.h). */
#include "he_nj.h"

#include "he_util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that need a look: controls, '"', '\\', and the lead bytes of
 * U+0085 (C2 85) and U+2028/U+2029 (E2 80 A8/A9). Everything else is
 * copied as it is, so the scan is one table load per byte. */
static unsigned char attention[256];

static void init_attention(void)
{
  int c;
  if (attention['"'])
    return;
  for (c = 0; c < 0x20; c++)
    attention[c] = 1;
  attention['"'] = attention['\\'] = attention[0xC2] = attention[0xE2] = 1;
}

/* The escape Newtonsoft writes for the character at u[i], or 0 when it is
 * written as it is. *out_skip gets the extra bytes the character spans. */
static size_t escape_at(const unsigned char *u, size_t i, size_t n, char esc[8], size_t *out_skip)
{
  static const char hex[] = "0123456789abcdef";
  unsigned c = u[i];
  *out_skip = 0;
  if (c == 0xC2) {
    if (i + 1 >= n || u[i + 1] != 0x85)
      return 0;
    *out_skip = 1;
    memcpy(esc, "\\u0085", 6);
    return 6;
  }
  if (c == 0xE2) {
    if (i + 2 >= n || u[i + 1] != 0x80 || (u[i + 2] != 0xA8 && u[i + 2] != 0xA9))
      return 0;
    *out_skip = 2;
    memcpy(esc, u[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
    return 6;
  }
  esc[0] = '\\';
  switch (c) {
  case '"': esc[1] = '"'; return 2;
  case '\\': esc[1] = '\\'; return 2;
  case '\n': esc[1] = 'n'; return 2;
  case '\r': esc[1] = 'r'; return 2;
  case '\t': esc[1] = 't'; return 2;
  case '\b': esc[1] = 'b'; return 2;
  case '\f': esc[1] = 'f'; return 2;
  default:
    esc[1] = 'u';
    esc[2] = '0';
    esc[3] = '0';
    esc[4] = hex[c >> 4];
    esc[5] = hex[c & 15];
    return 6;
  }
}

/* Append s escaped once (twice) without the surrounding quotes. Escaping
 * an escape sequence again doubles its backslash and escapes a quote or
 * backslash after it; plain bytes need nothing at either level. */
static enum app_result escaped_content(struct buf *b, const char *s, size_t n, bool twice)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i, start = 0;

  init_attention();
  APP_RETURN_IF_FAILED(buf_reserve(b, n + n / 8 + 16));
  for (i = 0; i < n; i++) {
    char esc[8], esc2[12];
    size_t elen, skip;
    if (!attention[u[i]])
      continue;
    elen = escape_at(u, i, n, esc, &skip);
    if (!elen)
      continue;
    APP_RETURN_IF_FAILED(buf_append(b, s + start, i - start));
    if (twice) {
      esc2[0] = '\\';
      esc2[1] = '\\';
      if (esc[1] == '"' || esc[1] == '\\') {
        esc2[2] = '\\';
        esc2[3] = esc[1];
        APP_RETURN_IF_FAILED(buf_append(b, esc2, 4));
      } else {
        memcpy(esc2 + 2, esc + 1, elen - 1);
        APP_RETURN_IF_FAILED(buf_append(b, esc2, elen + 1));
      }
    } else {
      APP_RETURN_IF_FAILED(buf_append(b, esc, elen));
    }
    i += skip;
    start = i + 1;
  }
  return buf_append(b, s + start, n - start);
}

enum app_result he_nj_str(struct buf *b, const char *s, size_t n)
{
  APP_RETURN_IF_FAILED(buf_append_char(b, '"'));
  APP_RETURN_IF_FAILED(escaped_content(b, s, n, false));
  return buf_append_char(b, '"');
}

enum app_result he_nj_str_content(struct buf *b, const char *s, size_t n)
{
  return escaped_content(b, s, n, false);
}

enum app_result he_nj_str2(struct buf *b, const char *s, size_t n)
{
  APP_RETURN_IF_FAILED(buf_append(b, "\"\\\"", 3));
  APP_RETURN_IF_FAILED(escaped_content(b, s, n, true));
  return buf_append(b, "\\\"\"", 3);
}

enum app_result he_nj_str2_content(struct buf *b, const char *s, size_t n)
{
  return escaped_content(b, s, n, true);
}

enum app_result he_nj_utf8_lossy(struct buf *out, const char *s, size_t n, bool *out_lossy)
{
  static const char fffd[] = "\xEF\xBF\xBD";
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, start = 0;
  bool lossy = false;

  APP_RETURN_IF_FAILED(buf_reserve(out, n));
  while (i < n) {
    unsigned c = u[i];
    size_t need, k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 3;
      if (c == 0xE0)
        lo = 0xA0;
      else if (c == 0xED)
        hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 4;
      if (c == 0xF0)
        lo = 0x90;
      else if (c == 0xF4)
        hi = 0x8F;
    } else {
      need = 0; /* never valid as a first byte */
    }
    /* k = length of the maximal subpart that is a valid prefix */
    k = 1;
    if (need) {
      while (k < need && i + k < n) {
        unsigned d = u[i + k];
        if (d < lo || d > hi)
          break;
        lo = 0x80;
        hi = 0xBF;
        k++;
      }
      if (k == need) {
        i += k;
        continue;
      }
    }
    APP_RETURN_IF_FAILED(buf_append(out, s + start, i - start));
    APP_RETURN_IF_FAILED(buf_append(out, fffd, 3));
    lossy = true;
    i += k;
    start = i;
  }
  APP_RETURN_IF_FAILED(buf_append(out, s + start, n - start));
  if (out_lossy)
    *out_lossy = lossy;
  return APP_OK;
}

size_t he_nj_double(double v, bool ensure_decimal, char out[40])
{
  char tmp[40], digits[24];
  int prec, exp10, nd = 0, o = 0, dig_pos, i;
  const char *p;

  if (v == 0) {
    o = snprintf(out, 40, "%s", signbit(v) ? "-0" : "0");
    goto finish;
  }
  /* the shortest precision that reads back as the same double */
  for (prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  p = tmp;
  if (*p == '-') {
    out[o++] = '-';
    p++;
  }
  for (; *p && *p != 'e'; p++)
    if (isdigit((unsigned char)*p))
      digits[nd++] = *p;
  exp10 = (int)strtol(p + 1, NULL, 10);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  dig_pos = exp10 + 1;
  if (dig_pos > 15 || dig_pos < -3) {
    out[o++] = digits[0];
    if (nd > 1) {
      out[o++] = '.';
      for (i = 1; i < nd; i++)
        out[o++] = digits[i];
    }
    o += snprintf(out + o, (size_t)(40 - o), "E%c%02d", exp10 < 0 ? '-' : '+',
                  exp10 < 0 ? -exp10 : exp10);
  } else if (dig_pos <= 0) {
    out[o++] = '0';
    out[o++] = '.';
    for (i = 0; i < -dig_pos; i++)
      out[o++] = '0';
    for (i = 0; i < nd; i++)
      out[o++] = digits[i];
  } else {
    for (i = 0; i < dig_pos; i++)
      out[o++] = i < nd ? digits[i] : '0';
    if (nd > dig_pos) {
      out[o++] = '.';
      for (i = dig_pos; i < nd; i++)
        out[o++] = digits[i];
    }
  }
  out[o] = '\0';
finish:
  if (ensure_decimal && !strchr(out, '.') && !strchr(out, 'E')) {
    out[o++] = '.';
    out[o++] = '0';
    out[o] = '\0';
  }
  return (size_t)o;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static bool digits_at(const char *s, size_t n, size_t at, size_t count, int *out)
{
  int v = 0;
  size_t i;
  if (at + count > n)
    return false;
  for (i = 0; i < count; i++) {
    if (!isdigit((unsigned char)s[at + i]))
      return false;
    v = v * 10 + (s[at + i] - '0');
  }
  *out = v;
  return true;
}

static bool parse_ms_date(const char *s, size_t n, int64_t *out_ticks, int *out_kind)
{
  /* "/Date(" [-] digits [(+|-) 4 digits] ")/" */
  size_t i = 6, end = n - 2, dstart;
  int64_t ms = 0;
  bool neg = false;
  if (n < 9 || memcmp(s, "/Date(", 6) != 0 || memcmp(s + n - 2, ")/", 2) != 0)
    return false;
  if (s[i] == '-') {
    neg = true;
    i++;
  }
  dstart = i;
  while (i < end && isdigit((unsigned char)s[i])) {
    if (ms > (INT64_MAX - 9) / 10)
      return false;
    ms = ms * 10 + (s[i] - '0');
    i++;
  }
  if (i == dstart)
    return false;
  *out_kind = 1; /* Utc */
  if (i < end) {
    int off;
    if ((s[i] != '+' && s[i] != '-') || end - i != 5 || !digits_at(s, n, i + 1, 4, &off))
      return false;
    /* the offset only marks Kind Local; its digits are ignored */
    *out_kind = 2;
  }
  if (neg)
    ms = -ms;
  if (ms > 253402300799999LL || ms < -62135596800000LL)
    return false;
  *out_ticks = ms * 10000;
  return true;
}

static bool parse_iso_date(const char *s, size_t n, int64_t *out_ticks, int *out_kind)
{
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h, mi, sec, frac = 0, fdigits = 0;
  size_t i = 19;
  int64_t ticks;
  if (n < 19 || n > 40 || s[10] != 'T')
    return false;
  if (!digits_at(s, n, 0, 4, &y) || s[4] != '-' || !digits_at(s, n, 5, 2, &mo) || s[7] != '-' ||
      !digits_at(s, n, 8, 2, &d) || !digits_at(s, n, 11, 2, &h) || s[13] != ':' ||
      !digits_at(s, n, 14, 2, &mi) || s[16] != ':' || !digits_at(s, n, 17, 2, &sec))
    return false;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
    return false;
  if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
    return false;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && isdigit((unsigned char)s[i]) && fdigits < 7) {
      frac = frac * 10 + (s[i] - '0');
      fdigits++;
      i++;
    }
    if (fdigits == 0)
      return false;
    while (fdigits < 7) {
      frac *= 10;
      fdigits++;
    }
  }
  ticks = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60 + sec;
  ticks = ticks * 10000000LL + frac;
  *out_kind = 0;
  if (i < n) {
    int oh = 0, om = 0, sign;
    if (s[i] == 'Z' && i + 1 == n) {
      *out_kind = 1;
      i++;
    } else if (s[i] == '+' || s[i] == '-') {
      sign = s[i] == '-' ? -1 : 1;
      if (!digits_at(s, n, i + 1, 2, &oh))
        return false;
      i += 3;
      if (i < n && s[i] == ':')
        i++;
      if (i < n) {
        if (!digits_at(s, n, i, 2, &om))
          return false;
        i += 2;
      }
      if (i != n || oh > 14 || om > 59)
        return false;
      ticks -= sign * ((int64_t)oh * 60 + om) * 600000000LL;
      *out_kind = 2;
    } else {
      return false;
    }
  }
  *out_ticks = ticks;
  return true;
}

bool he_nj_date(const char *s, size_t n, int64_t *out_ticks, int *out_kind)
{
  if (n == 0)
    return false;
  if (s[0] == '/')
    return parse_ms_date(s, n, out_ticks, out_kind);
  if (isdigit((unsigned char)s[0]))
    return parse_iso_date(s, n, out_ticks, out_kind);
  return false;
}

static bool is_integer_lexeme(const struct json *v)
{
  uint32_t i;
  for (i = 0; i < v->len; i++)
    if (v->str[i] == '.' || v->str[i] == 'e' || v->str[i] == 'E')
      return false;
  return true;
}

static enum app_result write_number(struct buf *b, const struct json *v, bool as_text)
{
  char tmp[40], *copy;
  double d;
  size_t n;
  if (is_integer_lexeme(v)) {
    /* Int64 or BigInteger: digits either way; only "-0" changes */
    if (v->len == 2 && v->str[0] == '-' && v->str[1] == '0')
      return buf_append_char(b, '0');
    return buf_append(b, v->str, v->len);
  }
  copy = xstrndup(v->str, v->len);
  d = strtod(copy, NULL);
  free(copy);
  if (isinf(d))
    return APP_ERR_INPUT;
  n = he_nj_double(d, !as_text, tmp);
  return buf_append(b, tmp, n);
}

enum app_result he_nj_write_parsed(struct buf *b, const struct json *v)
{
  const struct json *c;
  int64_t ticks;
  int kind;
  char date[48];
  size_t n;

  switch (v->type) {
  case JSON_NULL: return buf_append(b, "null", 4);
  case JSON_TRUE: return buf_append(b, "true", 4);
  case JSON_FALSE: return buf_append(b, "false", 5);
  case JSON_NUMBER: return write_number(b, v, false);
  case JSON_STRING:
    if (he_nj_date(v->str, v->len, &ticks, &kind)) {
      n = he_date_format(ticks,
                         kind == 1   ? HE_DATE_FULL_Z
                         : kind == 2 ? HE_DATE_FULL_OFFSET
                                     : HE_DATE_FULL,
                         date);
      return he_nj_str(b, date, n);
    }
    return he_nj_str(b, v->str, v->len);
  case JSON_ARRAY:
  case JSON_OBJECT:
    APP_RETURN_IF_FAILED(buf_append_char(b, v->type == JSON_ARRAY ? '[' : '{'));
    for (c = v->child; c; c = c->next) {
      if (c != v->child)
        APP_RETURN_IF_FAILED(buf_append_char(b, ','));
      if (v->type == JSON_OBJECT) {
        APP_RETURN_IF_FAILED(he_nj_str(b, c->key, c->key_len));
        APP_RETURN_IF_FAILED(buf_append_char(b, ':'));
      }
      APP_RETURN_IF_FAILED(he_nj_write_parsed(b, c));
    }
    return buf_append_char(b, v->type == JSON_ARRAY ? ']' : '}');
  default: return APP_ERR_INPUT;
  }
}

enum app_result he_nj_scalar_text(struct buf *b, const struct json *v)
{
  int64_t ticks;
  int kind;
  char date[48];
  size_t n;
  switch (v->type) {
  case JSON_TRUE: return buf_append(b, "True", 4);
  case JSON_FALSE: return buf_append(b, "False", 5);
  case JSON_NUMBER: return write_number(b, v, true);
  case JSON_STRING:
    if (he_nj_date(v->str, v->len, &ticks, &kind)) {
      n = he_date_format(ticks, HE_DATE_INVARIANT, date);
      return buf_append(b, date, n);
    }
    return buf_append(b, v->str, v->len);
  default: return APP_ERR_INPUT;
  }
}

bool he_nj_is_base64(const char *s, size_t n)
{
  size_t i, count = 0, pad = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
      continue;
    if (c == '=') {
      pad++;
    } else {
      if (pad) /* data after padding */
        return false;
      if (!isalnum(c) && c != '+' && c != '/')
        return false;
    }
    count++;
  }
  return count % 4 == 0 && pad <= 2;
}

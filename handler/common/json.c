/* json.c - lexeme-keeping JSON reader over an arena.
 *
 * The text is copied once into the arena and strings are decoded in place
 * (a decoded string is never longer than its escaped form, and the closing
 * quote leaves room for the NUL). */
#include "common/json.h"

#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

struct parser {
  struct arena *a;
  char *s; /* the text: our copy (json_parse) or the caller's (json_parse_mutable) */
  size_t len;
  size_t pos;
  int max_depth;
  struct app_err *err;
  const char *orig; /* original text, for line/column in messages */
  /* json_parse_mutable: strings with escapes are decoded into the arena,
   * not over the text, which only ever gets a NUL where the closing quote
   * of a string without escapes was; nul_end is just past the last one */
  bool keep_text;
  size_t nul_end;
};

static enum app_result fail(struct parser *p, size_t at, const char *what)
{
  size_t i, line = 1, col = 1;
  for (i = 0; i < at && i < p->len; i++) {
    if (p->orig[i] == '\n') {
      line++;
      col = 1;
    } else if (((unsigned char)p->orig[i] & 0xC0) != 0x80) {
      col++;
    }
  }
  return app_err_set(p->err, APP_ERR_INPUT,
                     "JSON syntax error at line %zu, column %zu (offset %zu): %s", line, col, at,
                     what);
}

static enum app_result fail_limit(struct parser *p, const char *what)
{
  return app_err_set(p->err, APP_ERR_LIMIT, "%s", what);
}

static void skip_ws(struct parser *p)
{
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
      break;
    p->pos++;
  }
}

static struct json *new_node(struct parser *p, enum json_type t, size_t at)
{
  struct json *n = arena_alloc(p->a, sizeof *n);
  if (!n)
    return NULL;
  memset(n, 0, sizeof *n);
  n->type = (uint8_t)t;
  n->offset = (uint32_t)at;
  return n;
}

/* Length of a valid UTF-8 sequence starting at s[0] (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  if (c < 0xC2)
    return 0;
  if (c < 0xE0) {
    if (n < 2 || (s[1] & 0xC0) != 0x80)
      return 0;
    return 2;
  }
  if (c < 0xF0) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
      return 0;
    if (c == 0xE0 && s[1] < 0xA0)
      return 0; /* overlong */
    if (c == 0xED && s[1] >= 0xA0)
      return 0; /* UTF-16 surrogate */
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && s[1] < 0x90)
      return 0; /* overlong */
    if (c == 0xF4 && s[1] >= 0x90)
      return 0; /* > U+10FFFF */
    return 4;
  }
  return 0;
}

bool json_utf8_valid(const char *text, size_t len, size_t *out_bad_offset)
{
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0;
  while (i < len) {
    size_t k;
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    k = utf8_seq(s + i, len - i);
    if (!k) {
      if (out_bad_offset)
        *out_bad_offset = i;
      return false;
    }
    i += k;
  }
  return true;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool read_hex4(const char *s, unsigned *out)
{
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    int h = hexval(s[i]);
    if (h < 0)
      return false;
    v = (v << 4) | (unsigned)h;
  }
  *out = v;
  return true;
}

static size_t put_utf8(char *w, unsigned cp)
{
  if (cp < 0x80) {
    w[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    w[0] = (char)(0xC0 | (cp >> 6));
    w[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    w[0] = (char)(0xE0 | (cp >> 12));
    w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    w[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  w[0] = (char)(0xF0 | (cp >> 18));
  w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  w[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Bytes of the 8-byte word x (little-endian load) that end the plain-ASCII
 * fast path of a string: '"', '\\', a control (< 0x20) or a non-ASCII byte
 * (>= 0x80), as set high bits. For a byte below 0x80, subtracting 1 from
 * it xor '"' (or xor '\\'), or 0x20 from it, sets its high bit exactly when
 * it is that special byte; bytes >= 0x80 are flagged by their own high bit.
 * A borrow can flag bytes above a special one, never below it, so the
 * lowest flagged byte is exactly the first special byte. */
static inline uint64_t special_mask(uint64_t x)
{
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  return (((x ^ (ones * '"')) - ones) | ((x ^ (ones * '\\')) - ones) | (x - ones * 0x20) | x) &
         high;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&                        \
    (defined(__GNUC__) || defined(__clang__))
#define JSON_WORD_SCAN 1
#else
#define JSON_WORD_SCAN 0
#endif

/* Index of the quote that closes the string whose first escape is at
 * s[r] (a backslash), or n when there is none. */
static size_t string_end(const char *s, size_t r, size_t n)
{
  while (r < n) {
    const char *q = memchr(s + r, '"', n - r);
    size_t i, bs = 0;
    if (!q)
      return n;
    i = (size_t)(q - s);
    while (i - bs > r && s[i - bs - 1] == '\\')
      bs++;
    if (bs % 2 == 0)
      return i;
    r = i + 1;
  }
  return n;
}

/* p->pos is just past the opening quote. The decoded bytes go to d[0..w):
 * in place over the text (d = s + start; a decoded string is never longer
 * than its escaped form, and the closing quote leaves room for the NUL),
 * or, when the caller's text must keep its bytes (keep_text) and the
 * string has an escape, into a copy in the arena. moved: d + w is no
 * longer s + r, so plain bytes must be copied as they are read. On
 * success *out_str and *out_len describe the NUL-terminated result. */
static enum app_result parse_string_raw(struct parser *p, const char **out_str, uint32_t *out_len)
{
  char *s = p->s;
  size_t r = p->pos, start = p->pos, n = p->len;
  char *d = s + start, *o = d; /* decoded bytes: d[0..o - d) */
  bool moved = false;

  for (;;) {
    unsigned char c;
    /* fast path, 8 bytes at a time: plain words are copied as they are
     * (the long base64 and double-encoded strings of batch envelopes are
     * almost all such words); in the word that holds the first special
     * byte, its position comes straight from the mask */
#if JSON_WORD_SCAN
#if defined(__SSE2__)
    /* 16 bytes at a time where SSE2 is there (every x86-64): a signed
     * "less than 0x20" catches controls and bytes >= 0x80 at once */
    while (n - r >= 16) {
      __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + r));
      __m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                             _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
      unsigned m = (unsigned)_mm_movemask_epi8(sp);
      if (m)
        break; /* the word loop below finds it */
      if (moved)
        memmove(o, s + r, 16);
      r += 16;
      o += 16;
    }
#endif
    while (n - r >= 8) {
      uint64_t x, m;
      memcpy(&x, s + r, 8);
      m = special_mask(x);
      if (m) {
        size_t k = (size_t)__builtin_ctzll(m) >> 3;
        if (moved)
          memmove(o, s + r, k);
        r += k;
        o += k;
        break;
      }
      if (moved)
        memmove(o, s + r, 8);
      r += 8;
      o += 8;
    }
#endif
    /* then byte by byte up to the next special byte */
    while (r < n) {
      c = (unsigned char)s[r];
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
        break;
      if (moved)
        *o = (char)c;
      r++;
      o++;
    }
    if (r >= n)
      return fail(p, start - 1, "unterminated string");
    c = (unsigned char)s[r];
    if (c == '"') {
      *o = '\0';
      if (!moved)
        p->nul_end = r + 1;
      if ((size_t)(o - d) > UINT32_MAX)
        return fail_limit(p, "JSON string too long");
      *out_str = d;
      *out_len = (uint32_t)(o - d);
      p->pos = r + 1;
      return APP_OK;
    }
    if (c < 0x20)
      return fail(p, r, "control character in string (must be escaped)");
    if (c >= 0x80) {
      size_t k = utf8_seq((const unsigned char *)s + r, n - r);
      if (!k)
        return fail(p, r, "invalid UTF-8 in string");
      if (moved)
        memmove(o, s + r, k);
      r += k;
      o += k;
      continue;
    }
    /* backslash */
    if (r + 1 >= n)
      return fail(p, r, "unterminated escape in string");
    if (!moved) {
      if (p->keep_text) {
        /* the first escape: decode the rest into a copy sized to the string */
        size_t end = string_end(s, r, n);
        char *copy = arena_alloc(p->a, end - start + 1);
        if (!copy)
          return fail_limit(p, "message needs more memory than the configured decode limit");
        memcpy(copy, s + start, (size_t)(o - d));
        o = copy + (o - d);
        d = copy;
      }
      moved = true;
    }
    switch (s[r + 1]) {
    case '"':
      *o++ = '"';
      r += 2;
      break;
    case '\\':
      *o++ = '\\';
      r += 2;
      break;
    case '/':
      *o++ = '/';
      r += 2;
      break;
    case 'b':
      *o++ = '\b';
      r += 2;
      break;
    case 'f':
      *o++ = '\f';
      r += 2;
      break;
    case 'n':
      *o++ = '\n';
      r += 2;
      break;
    case 'r':
      *o++ = '\r';
      r += 2;
      break;
    case 't':
      *o++ = '\t';
      r += 2;
      break;
    case 'u': {
      unsigned cp, lo;
      if (r + 6 > n || !read_hex4(s + r + 2, &cp))
        return fail(p, r, "invalid \\u escape in string (expected 4 hex digits)");
      r += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (r + 6 <= n && s[r] == '\\' && s[r + 1] == 'u' && read_hex4(s + r + 2, &lo) &&
            lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          r += 6;
        } else {
          cp = 0xFFFD; /* lone high surrogate */
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD; /* lone low surrogate */
      }
      o += put_utf8(o, cp);
      break;
    }
    default: return fail(p, r, "invalid escape in string");
    }
  }
}

bool json_is_number_lexeme(const char *s, size_t n)
{
  size_t i = 0;
  if (i < n && s[i] == '-')
    i++;
  if (i >= n)
    return false;
  if (s[i] == '0') {
    i++;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  } else {
    return false;
  }
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
      return false;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
      return false;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  return i == n;
}

static enum app_result parse_number(struct parser *p, struct json *node)
{
  size_t start = p->pos, i = p->pos, n = p->len;
  const char *s = p->s;

  if (i < n && s[i] == '-')
    i++;
  if (i >= n)
    return fail(p, start, "invalid number");
  if (s[i] == '0') {
    i++;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  } else {
    return fail(p, start, "invalid number");
  }
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
      return fail(p, i, "invalid number: digit expected after '.'");
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
      return fail(p, i, "invalid number: digit expected in exponent");
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  node->str = s + start;
  node->len = (uint32_t)(i - start);
  p->pos = i;
  return APP_OK;
}

static enum app_result parse_value(struct parser *p, int depth, struct json **out);

static enum app_result parse_container(struct parser *p, int depth, struct json *node, bool obj)
{
  struct json **tail = &node->child;
  char close = obj ? '}' : ']';
  uint32_t count = 0;

  if (depth >= p->max_depth)
    return app_err_set(p->err, APP_ERR_LIMIT, "JSON nested deeper than %d levels at offset %zu",
                       p->max_depth, p->pos);
  p->pos++; /* '{' or '[' */
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
    return APP_OK;
  }
  for (;;) {
    struct json *child;
    const char *key = NULL;
    uint32_t key_len = 0;

    if (obj) {
      if (p->pos >= p->len)
        return fail(p, p->pos, "unexpected end of input in object");
      if (p->s[p->pos] != '"')
        return fail(p, p->pos, "expected '\"' to start a member name");
      p->pos++;
      APP_RETURN_IF_FAILED(parse_string_raw(p, &key, &key_len));
      skip_ws(p);
      if (p->pos >= p->len || p->s[p->pos] != ':')
        return fail(p, p->pos, "expected ':' after member name");
      p->pos++;
      skip_ws(p);
    }
    APP_RETURN_IF_FAILED(parse_value(p, depth + 1, &child));
    child->key = key;
    child->key_len = key_len;
    *tail = child;
    tail = &child->next;
    count++;
    skip_ws(p);
    if (p->pos >= p->len)
      return fail(p, p->pos,
                  obj ? "unexpected end of input in object" : "unexpected end of input in array");
    if (p->s[p->pos] == ',') {
      p->pos++;
      skip_ws(p);
      continue;
    }
    if (p->s[p->pos] == close) {
      p->pos++;
      node->len = count;
      return APP_OK;
    }
    return fail(p, p->pos,
                obj ? "expected ',' or '}' after object member"
                    : "expected ',' or ']' after array element");
  }
}

static enum app_result parse_value(struct parser *p, int depth, struct json **out)
{
  struct json *node;
  size_t at = p->pos;
  char c;

  if (p->pos >= p->len)
    return fail(p, p->pos, "unexpected end of input, value expected");
  c = p->s[p->pos];
  switch (c) {
  case '{': node = new_node(p, JSON_OBJECT, at); break;
  case '[': node = new_node(p, JSON_ARRAY, at); break;
  case '"': node = new_node(p, JSON_STRING, at); break;
  case 't': node = new_node(p, JSON_TRUE, at); break;
  case 'f': node = new_node(p, JSON_FALSE, at); break;
  case 'n': node = new_node(p, JSON_NULL, at); break;
  default:
    if (c == '-' || (c >= '0' && c <= '9')) {
      node = new_node(p, JSON_NUMBER, at);
      break;
    }
    return fail(p, at, "unexpected character, value expected");
  }
  if (!node)
    return fail_limit(p, "message needs more memory than the configured decode limit");
  *out = node;
  switch (node->type) {
  case JSON_OBJECT: return parse_container(p, depth, node, true);
  case JSON_ARRAY: return parse_container(p, depth, node, false);
  case JSON_STRING: p->pos++; return parse_string_raw(p, &node->str, &node->len);
  case JSON_NUMBER: return parse_number(p, node);
  case JSON_TRUE:
    if (p->len - p->pos >= 4 && !memcmp(p->s + p->pos, "true", 4)) {
      p->pos += 4;
      return APP_OK;
    }
    break;
  case JSON_FALSE:
    if (p->len - p->pos >= 5 && !memcmp(p->s + p->pos, "false", 5)) {
      p->pos += 5;
      return APP_OK;
    }
    break;
  default:
    if (p->len - p->pos >= 4 && !memcmp(p->s + p->pos, "null", 4)) {
      p->pos += 4;
      return APP_OK;
    }
    break;
  }
  return fail(p, at, "invalid literal (expected true, false or null)");
}

/* Parse text[0..len): s is the text parsed (a copy, or the caller's own
 * text when keep_text), orig the original for positions in messages. */
static enum app_result parse_text(struct parser *p, struct json **out_root, size_t *out_end)
{
  struct json *root = NULL;

  skip_ws(p);
  APP_RETURN_IF_FAILED(parse_value(p, 0, &root));
  skip_ws(p);
  if (out_end) {
    *out_end = p->pos;
  } else if (p->pos != p->len) {
    return fail(p, p->pos, "unexpected data after the JSON value");
  }
  *out_root = root;
  return APP_OK;
}

static void parser_init(struct parser *p, struct arena *a, size_t len, int max_depth,
                        struct app_err *err)
{
  p->a = a;
  p->len = len;
  p->pos = 0;
  p->max_depth = max_depth > 0 ? max_depth : JSON_DEFAULT_MAX_DEPTH;
  p->err = err;
  p->keep_text = false;
  p->nul_end = 0;
}

static enum app_result parse_common(struct arena *a, const char *text, size_t len, int max_depth,
                                    struct json **out_root, size_t *out_end, struct app_err *err)
{
  struct parser p;

  if (len > UINT32_MAX)
    return app_err_set(err, APP_ERR_LIMIT, "JSON text of %zu bytes is too large", len);
  parser_init(&p, a, len, max_depth, err);
  p.orig = text;
  p.s = arena_alloc(a, len + 1);
  if (!p.s)
    return app_err_set(err, APP_ERR_LIMIT,
                       "message of %zu bytes needs more memory than the configured decode limit",
                       len);
  memcpy(p.s, text, len);
  p.s[len] = '\0';
  return parse_text(&p, out_root, out_end);
}

enum app_result json_parse_mutable(struct arena *a, char *text, size_t len, int max_depth,
                                   struct json **out_root, struct app_err *err)
{
  struct parser p;
  enum app_result r;
  size_t i;

  if (len > UINT32_MAX)
    return app_err_set(err, APP_ERR_LIMIT, "JSON text of %zu bytes is too large", len);
  parser_init(&p, a, len, max_depth, err);
  p.orig = text;
  p.s = text;
  p.keep_text = true;
  r = parse_text(&p, out_root, NULL);
  if (r != APP_OK) {
    /* put the closing quotes back: every NUL before nul_end is one of
     * ours, since a NUL byte in the text stops the parser where it is */
    for (i = 0; i < p.nul_end; i++)
      if (text[i] == '\0')
        text[i] = '"';
  }
  return r;
}

enum app_result json_parse(struct arena *a, const char *text, size_t len, int max_depth,
                           struct json **out_root, struct app_err *err)
{
  return parse_common(a, text, len, max_depth, out_root, NULL, err);
}

enum app_result json_parse_prefix(struct arena *a, const char *text, size_t len, int max_depth,
                                  struct json **out_root, size_t *out_end, struct app_err *err)
{
  size_t end = 0;
  APP_RETURN_IF_FAILED(parse_common(a, text, len, max_depth, out_root, &end, err));
  *out_end = end;
  return APP_OK;
}

const struct json *json_get(const struct json *obj, const char *key)
{
  const struct json *c;
  if (!obj || obj->type != JSON_OBJECT)
    return NULL;
  for (c = obj->child; c; c = c->next)
    if (c->key && !strcmp(c->key, key))
      return c;
  return NULL;
}

const struct json *json_get_ci(const struct json *obj, const char *key)
{
  const struct json *c;
  if (!obj || obj->type != JSON_OBJECT)
    return NULL;
  for (c = obj->child; c; c = c->next)
    if (c->key && !strcasecmp(c->key, key))
      return c;
  return NULL;
}

const char *json_get_str(const struct json *obj, const char *key)
{
  const struct json *v = json_get(obj, key);
  return json_is(v, JSON_STRING) ? v->str : NULL;
}

bool json_number_i64(const struct json *v, int64_t *out)
{
  uint64_t acc = 0, limit;
  size_t i = 0;
  bool neg = false;

  if (!json_is(v, JSON_NUMBER) || v->len == 0)
    return false;
  if (v->str[0] == '-') {
    neg = true;
    i = 1;
  }
  limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (i >= v->len)
    return false;
  for (; i < v->len; i++) {
    char c = v->str[i];
    if (c < '0' || c > '9')
      return false;
    if (acc > (limit - (uint64_t)(c - '0')) / 10)
      return false;
    acc = acc * 10 + (uint64_t)(c - '0');
  }
  *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
  return true;
}

enum app_result json_write(struct buf *b, const struct json *v)
{
  const struct json *c;
  switch (v->type) {
  case JSON_NULL: return buf_append(b, "null", 4);
  case JSON_TRUE: return buf_append(b, "true", 4);
  case JSON_FALSE: return buf_append(b, "false", 5);
  case JSON_NUMBER: return buf_append(b, v->str, v->len);
  case JSON_STRING: return buf_append_json_str(b, v->str, v->len);
  case JSON_ARRAY:
  case JSON_OBJECT:
    APP_RETURN_IF_FAILED(buf_append_char(b, v->type == JSON_ARRAY ? '[' : '{'));
    for (c = v->child; c; c = c->next) {
      if (c != v->child)
        APP_RETURN_IF_FAILED(buf_append_char(b, ','));
      if (v->type == JSON_OBJECT) {
        APP_RETURN_IF_FAILED(buf_append_json_str(b, c->key, c->key_len));
        APP_RETURN_IF_FAILED(buf_append_char(b, ':'));
      }
      APP_RETURN_IF_FAILED(json_write(b, c));
    }
    return buf_append_char(b, v->type == JSON_ARRAY ? ']' : '}');
  default: return APP_ERR_INPUT;
  }
}

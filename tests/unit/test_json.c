/* test_json.c - the lexeme-keeping JSON reader, base64, buf and arena. */
#include "common/arena.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/json.h"
#include "check.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* json_write of what json_parse (mutable=false) or json_parse_mutable makes
 * of in, or the error message; both must give the same, and a failed
 * json_parse_mutable must leave the text as it was. */
static char *roundtrip_mode(const char *in, bool mutable)
{
  struct arena a;
  struct json *root = NULL;
  struct app_err err;
  struct buf b;
  char *out = NULL, *text = strdup(in);
  size_t n = strlen(in);
  enum app_result r;

  arena_init(&a, 0);
  buf_init(&b, 0);
  r = mutable ? json_parse_mutable(&a, text, n, 64, &root, &err)
              : json_parse(&a, in, n, 64, &root, &err);
  if (r == APP_OK && json_write(&b, root) == APP_OK) {
    out = buf_steal(&b, NULL);
  } else {
    out = strdup(err.msg);
    CHECK_MSG(!memcmp(text, in, n), "text not restored after: %s", err.msg);
  }
  buf_cleanup(&b);
  arena_cleanup(&a);
  free(text);
  return out;
}

static char *roundtrip(const char *in)
{
  char *copy = roundtrip_mode(in, false), *inplace = roundtrip_mode(in, true);
  CHECK_MSG(!strcmp(copy, inplace), "json_parse: %s | json_parse_mutable: %s", copy, inplace);
  free(inplace);
  return copy;
}

static void test_roundtrips(void)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"1.0000000000", "1.0000000000"},
      {"79228162514264337593543950335", "79228162514264337593543950335"},
      {"9007199254740993", "9007199254740993"},
      {"-0.5e-10", "-0.5e-10"},
      {"1.7976931348623157E+308", "1.7976931348623157E+308"},
      {" { \"a\" : [ 1 , 2 ] , \"b\" : null } ", "{\"a\":[1,2],\"b\":null}"},
      {"\"\\/Date(1731053106000)\\/\"", "\"/Date(1731053106000)/\""},
      {"\"\\u00e9\\u20ac\"", "\"\xc3\xa9\xe2\x82\xac\""},
      {"\"\\ud83d\\ude80\"", "\"\xf0\x9f\x9a\x80\""},
      {"\"\\ud83d x\"", "\"\xef\xbf\xbd x\""},
      {"\"\\ude80\"", "\"\xef\xbf\xbd\""},
      {"\"a\\u0000b\"", "\"a\\u0000b\""},
      {"\"Line 1\\u000d\\u000aLine 2\\t\"", "\"Line 1\\r\\nLine 2\\t\""},
      {"\"Z\xc3\xbcrich \xf0\x9f\x9a\x80\"", "\"Z\xc3\xbcrich \xf0\x9f\x9a\x80\""},
      {"[true,false,null,[],{}]", "[true,false,null,[],{}]"},
      {"{\"k\\\"q\":\"v\"}", "{\"k\\\"q\":\"v\"}"},
  };
  size_t i;
  TEST_CASE("roundtrips");
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = roundtrip(cases[i].in);
    CHECK_STREQ(got, cases[i].out);
    free(got);
  }
}

static void test_errors(void)
{
  static const struct {
    const char *in, *msg;
  } cases[] = {
      {"", "offset 0): unexpected end of input, value expected"},
      {"{", "unexpected end of input in object"},
      {"{\"a\" 1}", "column 6 (offset 5): expected ':' after member name"},
      {"{\"a\":1,}", "expected '\"' to start a member name"},
      {"[1,]", "unexpected character, value expected"},
      {"[1 2]", "expected ',' or ']' after array element"},
      {"{\"a\":1 \"b\":2}", "expected ',' or '}' after object member"},
      {"01", "unexpected data after the JSON value"},
      {"1.", "digit expected after '.'"},
      {"1e+", "digit expected in exponent"},
      {"-", "invalid number"},
      {"tru", "invalid literal"},
      {"nul", "invalid literal"},
      {"\"abc", "unterminated string"},
      {"\"a\nb\"", "control character in string"},
      {"\"\\x\"", "invalid escape in string"},
      {"\"\\u12\"", "invalid \\u escape"},
      {"\"\xc3\x28\"", "invalid UTF-8 in string"},
      {"\"\xed\xa0\x80\"", "invalid UTF-8 in string"},
      {"\"\xc0\xaf\"", "invalid UTF-8 in string"},
      {"{} x", "unexpected data after the JSON value"},
      {"\n\n  [}", "line 3, column 4"},
      {"'a'", "unexpected character"},
  };
  size_t i;
  TEST_CASE("errors");
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = roundtrip(cases[i].in);
    CHECK_CONTAINS(got, cases[i].msg);
    free(got);
  }
}

/* Strings are scanned 8 bytes at a time: put each kind of special byte at
 * every offset around the word boundaries and check the decoded text (or
 * the error and its offset) against what the byte-by-byte rules give. */
static void test_string_word_boundaries(void)
{
  static const struct {
    const char *raw;     /* as written inside the JSON string */
    const char *decoded; /* NULL: a syntax error at the special's offset */
  } specials[] = {
      {"\\\"", "\""},
      {"\\\\", "\\"},
      {"\\/", "/"},
      {"\\n", "\n"},
      {"\\u00e9", "\xc3\xa9"},
      {"\\ud83d\\ude80", "\xf0\x9f\x9a\x80"},
      {"\xc3\xa9", "\xc3\xa9"},
      {"\xe2\x82\xac", "\xe2\x82\xac"},
      {"\x7f", "\x7f"},
      {"\x01", NULL},
      {"\x1f", NULL},
      {"\xff", NULL},
      {"\xc3(", NULL},
      {"\x80", NULL},
      /* plain bytes next to the special ones: never taken for them */
      {" ", " "},
      {"!", "!"},
      {"#", "#"},
      {"[", "["},
      {"]", "]"},
      {"\x7e", "\x7e"},
  };
  size_t i, pre, post;
  int mode;
  TEST_CASE("string word boundaries");
  for (mode = 0; mode < 2; mode++)
    for (i = 0; i < sizeof specials / sizeof specials[0]; i++) {
      for (pre = 0; pre <= 35; pre++) {
        for (post = 0; post <= 17; post += 1 + post / 4) {
          char in[96], want[96], text[96];
          size_t n = 0, k;
          struct arena a;
          struct json *root = NULL;
          struct app_err err;
          enum app_result r;

          in[n++] = '"';
          for (k = 0; k < pre; k++)
            in[n++] = (char)('a' + k % 26);
          memcpy(in + n, specials[i].raw, strlen(specials[i].raw));
          n += strlen(specials[i].raw);
          for (k = 0; k < post; k++)
            in[n++] = (char)('A' + k % 26);
          in[n++] = '"';
          arena_init(&a, 0);
          if (mode)
            memcpy(text, in, n);
          r = mode ? json_parse_mutable(&a, text, n, 64, &root, &err)
                   : json_parse(&a, in, n, 64, &root, &err);
          if (mode && r != APP_OK)
            CHECK_MSG(!memcmp(text, in, n), "text not restored: special %zu, %zu before", i, pre);
          if (specials[i].decoded) {
            size_t wl = 0;
            for (k = 0; k < pre; k++)
              want[wl++] = (char)('a' + k % 26);
            memcpy(want + wl, specials[i].decoded, strlen(specials[i].decoded));
            wl += strlen(specials[i].decoded);
            for (k = 0; k < post; k++)
              want[wl++] = (char)('A' + k % 26);
            want[wl] = '\0';
            CHECK_MSG(r == APP_OK && root->type == JSON_STRING && root->len == wl &&
                          !memcmp(root->str, want, wl + 1),
                      "special %zu, %zu before, %zu after", i, pre, post);
          } else {
            char at[32];
            snprintf(at, sizeof at, "(offset %zu)", pre + 1);
            CHECK_MSG(r == APP_ERR_INPUT && strstr(err.msg, at), "special %zu, %zu before: %s", i,
                      pre, r == APP_OK ? "accepted" : err.msg);
          }
          arena_cleanup(&a);
        }
      }
    }
  /* an unterminated string ends inside the word loop's reach */
  for (pre = 0; pre <= 17; pre++) {
    char in[32];
    struct arena a;
    struct json *root = NULL;
    struct app_err err;
    in[0] = '"';
    memset(in + 1, 'x', pre);
    arena_init(&a, 0);
    CHECK(json_parse(&a, in, pre + 1, 64, &root, &err) == APP_ERR_INPUT &&
          strstr(err.msg, "unterminated string"));
    arena_cleanup(&a);
  }
}

static void test_mutable(void)
{
  static const char src[] = "{\"plain\":\"abc\",\"esc\":\"a\\\"b\\/c\",\"n\":[1,\"x\"],"
                            "\"long\":\"0123456789abcdef0123456789\\n\"}";
  char text[sizeof src];
  struct arena a;
  struct json *root = NULL;
  struct app_err err;
  const struct json *v;
  size_t i, nuls = 0;

  TEST_CASE("json_parse_mutable: strings point into the text, escaped ones are copies");
  memcpy(text, src, sizeof src);
  arena_init(&a, 0);
  CHECK(json_parse_mutable(&a, text, sizeof src - 1, 64, &root, &err) == APP_OK);
  v = json_get(root, "plain");
  CHECK(v && v->str >= text && v->str < text + sizeof src && !strcmp(v->str, "abc"));
  v = json_get(root, "esc");
  CHECK(v && (v->str < text || v->str >= text + sizeof src) && !strcmp(v->str, "a\"b/c"));
  v = json_get(root, "long");
  CHECK(v && (v->str < text || v->str >= text + sizeof src) &&
        !strcmp(v->str, "0123456789abcdef0123456789\n"));
  v = json_get(root, "n");
  CHECK(v && v->child && v->child->next && !strcmp(v->child->next->str, "x"));
  /* member names are strings too; the only change: NULs for closing quotes */
  CHECK_STREQ(root->child->key, "plain");
  for (i = 0; i < sizeof src - 1; i++) {
    if (text[i] != src[i]) {
      CHECK_MSG(text[i] == '\0' && src[i] == '"', "byte %zu changed to %d", i, text[i]);
      nuls++;
    }
  }
  CHECK_INTEQ(nuls, 6); /* the 4 names and the values abc and x: no escapes */
  arena_cleanup(&a);
}

static void test_depth_and_limits(void)
{
  struct arena a;
  struct json *root;
  struct app_err err;
  char deep[200];
  size_t i;

  TEST_CASE("depth");
  for (i = 0; i < 100; i++) {
    deep[i] = '[';
    deep[199 - i] = ']';
  }
  arena_init(&a, 0);
  CHECK(json_parse(&a, deep, sizeof deep, 64, &root, &err) == APP_ERR_LIMIT);
  CHECK_CONTAINS(err.msg, "nested deeper than 64 levels");
  CHECK(json_parse(&a, deep + 40, 120, 64, &root, &err) == APP_OK);
  arena_cleanup(&a);

  TEST_CASE("arena ceiling");
  arena_init(&a, 4096);
  {
    char big[8192];
    memset(big, ' ', sizeof big);
    big[0] = '1';
    CHECK(json_parse(&a, big, sizeof big, 64, &root, &err) == APP_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "decode limit");
  }
  arena_cleanup(&a);
}

static void test_accessors(void)
{
  struct arena a;
  struct json *root;
  struct app_err err;
  const char *t = "{\"Id\":\"x\",\"n\":-9223372036854775808,\"big\":9223372036854775808,\"f\":1.5}";
  int64_t v = 0;
  size_t end = 0;

  TEST_CASE("accessors");
  arena_init(&a, 0);
  CHECK(json_parse(&a, t, strlen(t), 64, &root, &err) == APP_OK);
  CHECK_STREQ(json_get_str(root, "Id"), "x");
  CHECK(json_get(root, "id") == NULL);
  CHECK(json_get_ci(root, "id") != NULL);
  CHECK(json_number_i64(json_get(root, "n"), &v) && v == INT64_MIN);
  CHECK(!json_number_i64(json_get(root, "big"), &v));
  CHECK(!json_number_i64(json_get(root, "f"), &v));
  CHECK_INTEQ(root->len, 4);
  CHECK(json_parse_prefix(&a, "\"abc\"  tail", 11, 64, &root, &end, &err) == APP_OK);
  CHECK_INTEQ(end, 7);
  arena_cleanup(&a);
}

static void test_base64(void)
{
  static const struct {
    const char *in, *out;
  } ok[] = {{"", ""},
            {"Zg==", "f"},
            {"Zm8=", "fo"},
            {"Zm9v", "foo"},
            {"Zm9vYg==", "foob"},
            {"Zm9vYmE=", "fooba"},
            {"Zm9vYmFy", "foobar"},
            {"Zm9vYg", "foob"}};
  static const char *bad[] = {"Zm9v!", "Z===", "Zg==Zg==", "Zm 9v", "Z", "Zg=a"};
  unsigned char out[64];
  size_t i, n, off;
  struct buf b;

  TEST_CASE("base64");
  for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    CHECK(base64_decode(ok[i].in, strlen(ok[i].in), out, &n, &off));
    CHECK(n == strlen(ok[i].out) && !memcmp(out, ok[i].out, n));
  }
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(!base64_decode(bad[i], strlen(bad[i]), out, &n, &off), "%s", bad[i]);
  buf_init(&b, 0);
  for (i = 0; i < sizeof ok / sizeof ok[0] - 1; i++) {
    buf_reset(&b);
    CHECK(base64_encode_buf(&b, ok[i].out, strlen(ok[i].out)) == APP_OK);
    CHECK_STREQ(b.len ? b.data : "", ok[i].in);
  }
  buf_cleanup(&b);
}

/* Whole groups are decoded four characters at a time; every length and
 * every position of a bad character must give what the group-by-group
 * rules give. */
static void test_base64_fast_path(void)
{
  unsigned char raw[80], out[80];
  size_t len, j, n, off;
  struct buf b;
  TEST_CASE("base64 fast path");
  for (j = 0; j < sizeof raw; j++)
    raw[j] = (unsigned char)(j * 37 + 11);
  buf_init(&b, 0);
  for (len = 0; len < sizeof raw; len++) {
    buf_reset(&b);
    CHECK(base64_encode_buf(&b, raw, len) == APP_OK);
    CHECK_MSG(base64_decode(b.data, b.len, out, &n, &off) && n == len && !memcmp(out, raw, len),
              "length %zu", len);
    {
      /* in place: out == in */
      char *copy = strdup(b.len ? b.data : "");
      CHECK_MSG(base64_decode(copy, b.len, (unsigned char *)copy, &n, &off) && n == len &&
                    !memcmp(copy, raw, len),
                "in place, length %zu", len);
      free(copy);
    }
    for (j = 0; j < b.len; j++) {
      char save = b.data[j];
      b.data[j] = '!';
      off = 9999;
      CHECK_MSG(!base64_decode(b.data, b.len, out, &n, &off) && off == j,
                "length %zu, bad character at %zu: offset %zu", len, j, off);
      b.data[j] = '=';
      if (j + 4 < b.len)
        CHECK_MSG(!base64_decode(b.data, b.len, out, &n, &off), "length %zu, '=' at %zu", len, j);
      b.data[j] = save;
    }
  }
  buf_cleanup(&b);
}

static void test_buf(void)
{
  struct buf b;
  TEST_CASE("buf ceiling");
  buf_init(&b, 8);
  CHECK(buf_append_str(&b, "12345678") == APP_OK);
  CHECK(buf_append_char(&b, 'x') == APP_ERR_LIMIT);
  CHECK_STREQ(b.data, "12345678");
  buf_reset(&b);
  CHECK(buf_append_json_str(&b, "a\"\x01", 3) == APP_ERR_LIMIT);
  buf_cleanup(&b);
  buf_init(&b, 0);
  CHECK(buf_append_json_str(&b, "a\"\x01\\", 4) == APP_OK);
  CHECK_STREQ(b.data, "\"a\\\"\\u0001\\\\\"");
  buf_reset(&b);
  CHECK(buf_append_i64(&b, INT64_MIN) == APP_OK);
  CHECK_STREQ(b.data, "-9223372036854775808");
  buf_cleanup(&b);
}

static void test_arena_mark(void)
{
  struct arena a;
  struct arena_mark m;
  char *keep, *p;
  size_t i, used0;

  TEST_CASE("arena mark and rewind");
  arena_init(&a, 0);
  keep = arena_strndup(&a, "keep me", 7);
  arena_mark(&a, &m);
  used0 = a.used;
  /* small allocations, a new chunk, and a big one-off block after the mark */
  for (i = 0; i < 2000; i++)
    CHECK(arena_alloc(&a, 64) != NULL);
  p = arena_alloc(&a, 300 * 1024);
  CHECK(p != NULL);
  memset(p, 1, 300 * 1024);
  CHECK(a.used > used0);
  arena_rewind(&a, &m);
  CHECK_INTEQ(a.used, used0);
  CHECK_STREQ(keep, "keep me");
  /* the arena is usable after the rewind, and rewinding twice is fine */
  p = arena_strndup(&a, "again", 5);
  CHECK_STREQ(p, "again");
  arena_rewind(&a, &m);
  CHECK_INTEQ(a.used, used0);
  /* rewind to a mark taken on an empty arena frees everything */
  arena_cleanup(&a);
  arena_init(&a, 0);
  arena_mark(&a, &m);
  CHECK(arena_alloc(&a, 100) != NULL);
  arena_rewind(&a, &m);
  CHECK_INTEQ(a.used, 0);
  CHECK(arena_alloc(&a, 100) != NULL);
  arena_reset(&a);
  CHECK(arena_alloc(&a, 100) != NULL);
  arena_cleanup(&a);
}

/* buf_append_json_str scans 8 bytes at a time: every byte value at every
 * offset around the word boundaries, against the escaping rules */
static void test_json_str_words(void)
{
  unsigned v;
  size_t pre;
  struct buf b;
  TEST_CASE("buf_append_json_str word boundaries");
  buf_init(&b, 0);
  for (v = 0; v < 256; v++) {
    for (pre = 0; pre <= 17; pre++) {
      char in[40], want[80];
      size_t n = 0, w = 0, k;
      for (k = 0; k < pre; k++)
        in[n++] = (char)('a' + k);
      in[n++] = (char)v;
      for (k = 0; k < 9; k++)
        in[n++] = (char)('A' + k);
      want[w++] = '"';
      for (k = 0; k < n; k++) {
        unsigned char c = (unsigned char)in[k];
        if (c == '"' || c == '\\') {
          want[w++] = '\\';
          want[w++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
          want[w++] = '\\';
          want[w++] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
        } else if (c < 0x20) {
          w += (size_t)snprintf(want + w, 7, "\\u%04x", c);
        } else if (c >= 0x80) { /* alone: not UTF-8 */
          memcpy(want + w, "\\ufffd", 6);
          w += 6;
        } else {
          want[w++] = (char)c;
        }
      }
      want[w++] = '"';
      buf_reset(&b);
      CHECK(buf_append_json_str(&b, in, n) == APP_OK);
      CHECK_MSG(b.len == w && !memcmp(b.data, want, w), "byte 0x%02x after %zu", v, pre);
    }
  }
  buf_cleanup(&b);
}

/* buf_append_json_str keeps well-formed UTF-8 and replaces the rest */
static void test_json_str_utf8(void)
{
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"Z\xc3\xbcrich", "\"Z\xc3\xbcrich\""},                               /* 2 bytes */
      {"\xe2\x82\xac 5", "\"\xe2\x82\xac 5\""},                             /* 3 bytes */
      {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},                         /* 4 bytes */
      {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\""}, /* edges */
      {"a\xff"
       "b",
       "\"a\\ufffdb\""},                                        /* never UTF-8 */
      {"\x80", "\"\\ufffd\""},                                  /* lone continuation */
      {"\xc0\x80", "\"\\ufffd\\ufffd\""},                       /* overlong NUL */
      {"\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""},            /* overlong '/' */
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},            /* surrogate */
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* > U+10FFFF */
      {"caf\xc3", "\"caf\\ufffd\""},                            /* cut at the end */
      {"\xe2\x82x", "\"\\ufffd\\ufffdx\""},                     /* cut in the middle */
      {"abcdefg\xc3\xbc"
       "abcdefgh",
       "\"abcdefg\xc3\xbc"
       "abcdefgh\""}, /* across a word */
  };
  struct buf b;
  size_t i;
  TEST_CASE("buf_append_json_str and UTF-8");
  buf_init(&b, 0);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    buf_reset(&b);
    CHECK(buf_append_json_str(&b, cases[i].in, strlen(cases[i].in)) == APP_OK);
    CHECK_MSG(b.len == strlen(cases[i].want) && !memcmp(b.data, cases[i].want, b.len),
              "case %zu: got %.*s", i, (int)b.len, b.data);
  }
  buf_cleanup(&b);
}

int main(void)
{
  test_arena_mark();
  test_roundtrips();
  test_string_word_boundaries();
  test_mutable();
  test_errors();
  test_depth_and_limits();
  test_accessors();
  test_base64();
  test_base64_fast_path();
  test_buf();
  test_json_str_words();
  test_json_str_utf8();
  return check_report("test_json");
}

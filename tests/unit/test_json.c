/* test_json.c - the lexeme-keeping JSON reader, base64, buf and arena. */
#include "../../handler/arena.h"
#include "../../handler/base64.h"
#include "../../handler/buf.h"
#include "../../handler/json.h"
#include "check.h"

#include <stdlib.h>

static char *roundtrip(const char *in)
{
  struct arena a;
  struct json *root = NULL;
  struct app_err err;
  struct buf b;
  char *out = NULL;

  arena_init(&a, 0);
  buf_init(&b, 0);
  if (json_parse(&a, in, strlen(in), 64, &root, &err) == APP_OK && json_write(&b, root) == APP_OK)
    out = buf_steal(&b, NULL);
  else
    out = strdup(err.msg);
  buf_cleanup(&b);
  arena_cleanup(&a);
  return out;
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
  } ok[] = {{"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"},
            {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"}, {"Zm9vYg", "foob"}};
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

int main(void)
{
  test_arena_mark();
  test_roundtrips();
  test_errors();
  test_depth_and_limits();
  test_accessors();
  test_base64();
  test_buf();
  return check_report("test_json");
}

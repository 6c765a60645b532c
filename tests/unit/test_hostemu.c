/* test_hostemu.c - the host emulator's pure parts: Newtonsoft conventions
 * (doubles, dates, escaping, lossy UTF-8, the base64 rule), .NET date text,
 * TimeSpans, the HTTP response parser, .NET argument splitting and %VAR%
 * expansion, route templates, and what the host makes of an answer.
 *
 * The emulator is a program, not a library, so its pure modules are
 * compiled into this test directly. */
#include "../hostemu/he_app.c"
#include "../hostemu/he_net.c"
#include "../hostemu/he_nj.c"
#include "../hostemu/he_proc.c"
#include "../hostemu/he_result.c"
#include "../hostemu/he_util.c"
#include "check.h"

static void check_double(double v, bool ensure, const char *want)
{
  char out[40];
  he_nj_double(v, ensure, out);
  CHECK_STREQ(out, want);
}

static void test_doubles(void)
{
  TEST_CASE("doubles as .NET R format");
  check_double(1.0, false, "1");
  check_double(1.0, true, "1.0");
  check_double(2154.32, true, "2154.32");
  check_double(0.1, false, "0.1");
  check_double(-0.5, false, "-0.5");
  check_double(1e15, false, "1E+15");
  check_double(123456789012345.0, true, "123456789012345.0");
  check_double(1234567890123456.7, false, "1.2345678901234568E+15");
  check_double(0.0001, false, "0.0001");
  check_double(0.00001, false, "1E-05");
  check_double(1.5e-7, false, "1.5E-07");
  check_double(79228162514264337593543950335.0, false, "7.922816251426434E+28");
  check_double(1.7976931348623157e308, false, "1.7976931348623157E+308");
  check_double(5e-324, false, "5E-324");
  check_double(0.0, true, "0.0");
  check_double(100.0, false, "100");
}

static void test_dates(void)
{
  int64_t t = 0;
  int kind = -1;
  char d[48];

  TEST_CASE("Newtonsoft date detection");
  CHECK(he_nj_date("/Date(1731053106000)/", 21, &t, &kind));
  CHECK_INTEQ(t, 1731053106000LL * 10000);
  CHECK_INTEQ(kind, 1);
  CHECK(he_nj_date("/Date(1731053107412+0000)/", 26, &t, &kind));
  CHECK_INTEQ(kind, 2);
  CHECK(he_nj_date("/Date(-315619200000)/", 21, &t, &kind));
  CHECK_INTEQ(t, -315619200000LL * 10000);
  CHECK(!he_nj_date("/Date(12x)/", 11, &t, &kind));
  CHECK(!he_nj_date("/Date()/", 8, &t, &kind));
  CHECK(he_nj_date("2024-05-01T10:22:31.123Z", 24, &t, &kind));
  CHECK_INTEQ(kind, 1);
  he_date_format(t, HE_DATE_FULL_Z, d);
  CHECK_STREQ(d, "2024-05-01T10:22:31.123Z");
  CHECK(he_nj_date("2024-05-01T12:22:31+02:00", 25, &t, &kind));
  CHECK_INTEQ(kind, 2);
  he_date_format(t, HE_DATE_SECONDS, d);
  CHECK_STREQ(d, "2024-05-01T10:22:31"); /* converted to UTC */
  CHECK(he_nj_date("2024-05-01T10:22:31", 19, &t, &kind));
  CHECK_INTEQ(kind, 0);
  CHECK(!he_nj_date("2024-02-30T10:22:31", 19, &t, &kind));
  CHECK(!he_nj_date("2023-02-29T10:22:31", 19, &t, &kind));
  CHECK(he_nj_date("2024-02-29T10:22:31", 19, &t, &kind));
  CHECK(!he_nj_date("2024-05-01", 10, &t, &kind));
  CHECK(!he_nj_date("2024-05-01T10:22:31Zx", 21, &t, &kind));
  CHECK(!he_nj_date("12345", 5, &t, &kind));

  TEST_CASE(".NET date text");
  t = 1731053106123LL * 10000 + 4567;
  he_date_format(t, HE_DATE_SECONDS, d);
  CHECK_STREQ(d, "2024-11-08T08:05:06");
  he_date_format(t, HE_DATE_SECONDS_OFFSET, d);
  CHECK_STREQ(d, "2024-11-08T08:05:06+00:00");
  he_date_format(t, HE_DATE_FULL, d);
  CHECK_STREQ(d, "2024-11-08T08:05:06.1234567");
  he_date_format(1731053106000LL * 10000, HE_DATE_FULL_OFFSET, d);
  CHECK_STREQ(d, "2024-11-08T08:05:06+00:00");
  he_date_format(1731053106100LL * 10000, HE_DATE_FULL, d);
  CHECK_STREQ(d, "2024-11-08T08:05:06.1");
  he_date_format(t, HE_DATE_INVARIANT, d);
  CHECK_STREQ(d, "11/08/2024 08:05:06");
  he_date_format(-315619200000LL * 10000, HE_DATE_SECONDS, d);
  CHECK_STREQ(d, "1960-01-01T00:00:00");
  he_date_format(2534023007999999999LL, HE_DATE_FULL_OFFSET, d);
  CHECK_STREQ(d, "9999-12-31T23:59:59.9999999+00:00");
}

static void test_strings(void)
{
  struct buf b, s;
  bool lossy = false;
  buf_init(&b, 0);
  buf_init(&s, 0);

  TEST_CASE("Newtonsoft string escaping");
  CHECK(he_nj_str(&b, "a\"b\\c\n\t\x01/\xE2\x80\xA8\xC2\x85\xC3\xA9", 16) == APP_OK);
  CHECK_STREQ(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001/\\u2028\\u0085\xC3\xA9\"");
  buf_reset(&b);
  CHECK(he_nj_str2(&b, "say \"hi\"\n\xE2\x80\xA9", 12) == APP_OK);
  CHECK_STREQ(b.data, "\"\\\"say \\\\\\\"hi\\\\\\\"\\\\n\\\\u2029\\\"\"");

  TEST_CASE("UTF-8 decoded like .NET (maximal subparts)");
  buf_reset(&b);
  CHECK(he_nj_utf8_lossy(&b, "ok\xC3\xA9", 4, &lossy) == APP_OK && !lossy);
  CHECK_INTEQ(b.len, 4);
  buf_reset(&b);
  CHECK(he_nj_utf8_lossy(&b, "\xC0\x80|\xE2\x82|\xED\xA0\x80|\xF0\x9F\x98", 14, &lossy) == APP_OK);
  CHECK(lossy);
  CHECK_STREQ(b.data, "\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
                      "\xEF\xBF\xBD");

  TEST_CASE("Convert.FromBase64String acceptance (the base64 trap)");
  CHECK(he_nj_is_base64("abcd", 4));
  CHECK(he_nj_is_base64("mykey myvalue", 13)); /* 12 letters once the space goes */
  CHECK(he_nj_is_base64("true", 4));
  CHECK(he_nj_is_base64("", 0));
  CHECK(he_nj_is_base64("YWI=", 4));
  CHECK(he_nj_is_base64("YQ==\r\n", 6));
  CHECK(!he_nj_is_base64("abc", 3));
  CHECK(!he_nj_is_base64("a===", 4));
  CHECK(!he_nj_is_base64("ab=c", 4));
  CHECK(!he_nj_is_base64("order:42", 8));
  CHECK(he_nj_is_base64("key value", 9)); /* "keyvalue": 8 letters */
  CHECK(!he_nj_is_base64("key val", 7));

  buf_cleanup(&b);
  buf_cleanup(&s);
}

static const struct json *parse(struct arena *a, const char *text)
{
  struct json *root = NULL;
  struct app_err err;
  if (json_parse(a, text, strlen(text), 16, &root, &err) != APP_OK)
    return NULL;
  return root;
}

static void test_parsed_values(void)
{
  struct arena a;
  struct buf b;
  const struct json *v;
  arena_init(&a, 0);
  buf_init(&b, 0);

  TEST_CASE("(string)JValue after JObject.Parse");
  v = parse(&a, "[true,false,1.0000000000,42,-0,\"\\/Date(1731053106000)\\/\",\"x\",null]");
  CHECK(v != NULL);
  if (v) {
    const char *want[] = {"True", "False", "1", "42", "0", "11/08/2024 08:05:06", "x"};
    const struct json *c = v->child;
    size_t i;
    for (i = 0; i < 7; i++, c = c->next) {
      buf_reset(&b);
      CHECK(he_nj_scalar_text(&b, c) == APP_OK);
      CHECK_STREQ(b.data ? b.data : "", want[i]);
    }
    CHECK(he_nj_scalar_text(&b, c) == APP_ERR_INPUT); /* null */
  }

  TEST_CASE("a JObject written back by Newtonsoft");
  buf_reset(&b);
  v = parse(&a, "{\"d\":\"\\/Date(1731421270532-0700)\\/\",\"m\":1.50,\"big\":9007199254740993,"
                "\"i\":\"2024-05-01T10:22:31\",\"s\":\"a\\u2028b\",\"n\":[1e2,{}]}");
  CHECK(v && he_nj_write_parsed(&b, v) == APP_OK);
  CHECK_STREQ(b.data, "{\"d\":\"2024-11-12T14:21:10.532+00:00\",\"m\":1.5,\"big\":9007199254740993,"
                      "\"i\":\"2024-05-01T10:22:31\",\"s\":\"a\\u2028b\",\"n\":[100.0,{}]}");
  buf_reset(&b);
  v = parse(&a, "[1e999]");
  CHECK(v && he_nj_write_parsed(&b, v) == APP_ERR_INPUT);

  buf_cleanup(&b);
  arena_cleanup(&a);
}

static void test_timespans(void)
{
  int64_t ms = 0;
  TEST_CASE("TimeSpan text");
  CHECK(he_parse_timespan_ms("00:00:30", &ms) && ms == 30000);
  CHECK(he_parse_timespan_ms("00:05:00", &ms) && ms == 300000);
  CHECK(he_parse_timespan_ms("1.02:03:04.5", &ms) && ms == ((26LL * 60 + 3) * 60 + 4) * 1000 + 500);
  CHECK(he_parse_timespan_ms("-1", &ms) && ms == -1);
  CHECK(he_parse_timespan_ms("-00:00:01", &ms) && ms == -1);
  CHECK(!he_parse_timespan_ms("00:61:00", &ms));
  CHECK(!he_parse_timespan_ms("5 minutes", &ms));
  CHECK(!he_parse_timespan_ms("", &ms));
}

/* Feed text in pieces of step bytes; returns the parser's final result. */
static enum app_result feed_all(struct he_resp *r, const char *text, size_t step, bool *done,
                                size_t *leftover, struct app_err *err)
{
  size_t n = strlen(text), off = 0;
  *done = false;
  *leftover = 0;
  while (off < n && !*done) {
    size_t used = 0, k = n - off < step ? n - off : step;
    enum app_result res = he_resp_feed(r, text + off, k, &used, done, err);
    if (res != APP_OK)
      return res;
    off += used;
    if (used < k)
      break; /* the rest follows the response */
  }
  *leftover = n - off;
  return APP_OK;
}

static void test_response_parser(void)
{
  struct he_resp r;
  struct app_err err;
  bool done;
  size_t left, steps[] = {1, 3, 1000}, i;
  const char *v;
  size_t vl;

  he_resp_init(&r, 4096, 1024);
  for (i = 0; i < 3; i++) {
    TEST_CASE("Content-Length body in pieces");
    he_resp_reset(&r, false);
    CHECK(feed_all(&r,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n"
                   "{\"a\"}EXTRA",
                   steps[i], &done, &left, &err) == APP_OK);
    CHECK(done);
    CHECK_INTEQ(r.status, 200);
    CHECK_INTEQ(r.body.len, 5);
    CHECK_INTEQ(left, 5); /* "EXTRA" is not part of the response */
    CHECK(r.keep_alive);
    CHECK_STREQ(r.content_type, "application/json");

    TEST_CASE("chunked body with extensions and trailers");
    he_resp_reset(&r, false);
    CHECK(feed_all(&r,
                   "HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                   "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n",
                   steps[i], &done, &left, &err) == APP_OK);
    CHECK(done);
    CHECK_INTEQ(left, 0);
    CHECK_INTEQ(r.body.len, 13);
    CHECK(r.body.data && !memcmp(r.body.data, "abc0123456789", 13));

    TEST_CASE("interim 100 Continue, then the response");
    he_resp_reset(&r, false);
    CHECK(feed_all(&r, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", steps[i],
                   &done, &left, &err) == APP_OK);
    CHECK(done);
    CHECK_INTEQ(r.status, 204);
  }

  TEST_CASE("close-delimited body and HTTP/1.0");
  he_resp_reset(&r, false);
  CHECK(feed_all(&r, "HTTP/1.0 200 OK\r\n\r\nhello", 7, &done, &left, &err) == APP_OK);
  CHECK(!done);
  CHECK(he_resp_eof(&r, &done, &err) == APP_OK && done);
  CHECK_INTEQ(r.body.len, 5);
  CHECK(!r.keep_alive);
  he_resp_reset(&r, false);
  CHECK(feed_all(&r, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 100,
                 &done, &left, &err) == APP_OK);
  CHECK(done && !r.keep_alive);
  CHECK(he_resp_header(&r, "connection", &v, &vl) && vl == 5 && !memcmp(v, "close", 5));

  TEST_CASE("a body larger than the head limit in the same read");
  {
    struct he_resp big;
    struct buf text;
    size_t used = 0;
    buf_init(&text, 0);
    CHECK(buf_append_str(&text, "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n") == APP_OK);
    CHECK(buf_reserve(&text, 10000) == APP_OK);
    memset(text.data + text.len, 'x', 10000);
    text.len += 10000;
    he_resp_init(&big, 256, 20000);
    CHECK(he_resp_feed(&big, text.data, text.len, &used, &done, &err) == APP_OK);
    CHECK(done);
    CHECK_INTEQ(used, text.len);
    CHECK_INTEQ(big.body.len, 10000);
    he_resp_reset(&big, false);
    /* a head split between reads right inside its blank line */
    CHECK(he_resp_feed(&big, "HTTP/1.1 204 No Content\r\n\r", 26, &used, &done, &err) == APP_OK);
    CHECK(!done);
    CHECK(he_resp_feed(&big, "\nleft", 5, &used, &done, &err) == APP_OK);
    CHECK(done);
    CHECK_INTEQ(used, 1);
    he_resp_cleanup(&big);
    buf_cleanup(&text);
  }

  TEST_CASE("HEAD has no body");
  he_resp_reset(&r, true);
  CHECK(feed_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 100, &done, &left, &err) ==
        APP_OK);
  CHECK(done);

  TEST_CASE("errors");
  he_resp_reset(&r, false);
  CHECK(feed_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100, &done, &left, &err) ==
        APP_OK);
  CHECK(he_resp_eof(&r, &done, &err) == APP_ERR_HTTP);
  CHECK_CONTAINS(err.msg, "middle of the response body");
  he_resp_reset(&r, false);
  CHECK(he_resp_eof(&r, &done, &err) == APP_ERR_HTTP);
  CHECK_CONTAINS(err.msg, "before any response byte");
  he_resp_reset(&r, false);
  CHECK(feed_all(&r, "SMTP 220 hello\r\n\r\n", 100, &done, &left, &err) == APP_ERR_HTTP);
  CHECK_CONTAINS(err.msg, "malformed status line");
  he_resp_reset(&r, false);
  CHECK(feed_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", 100, &done, &left, &err) ==
        APP_ERR_LIMIT);
  he_resp_reset(&r, false);
  CHECK(feed_all(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100, &done,
                 &left, &err) == APP_ERR_HTTP);
  CHECK_CONTAINS(err.msg, "chunk-size");
  he_resp_reset(&r, false);
  CHECK(feed_all(&r, "HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", 100, &done, &left, &err) ==
        APP_ERR_HTTP);
  he_resp_cleanup(&r);
}

static void test_args(void)
{
  size_t n = 0;
  char **argv;
  char e1[] = "PORT=7071", e2[] = "EMPTY=", e3[] = "A B=x";
  char *env[] = {e1, e2, e3, NULL};
  char *s;

  TEST_CASE(".NET argument splitting");
  argv = he_dotnet_split_args(" --a \"b c\" d\\\"e \"f\"\"g\" h\\\\\"i j\" \"\" k\\l", &n);
  CHECK_INTEQ(n, 7);
  if (n == 7) {
    CHECK_STREQ(argv[0], "--a");
    CHECK_STREQ(argv[1], "b c");
    CHECK_STREQ(argv[2], "d\"e");
    CHECK_STREQ(argv[3], "f\"g");
    CHECK_STREQ(argv[4], "h\\i j");
    CHECK_STREQ(argv[5], "");
    CHECK_STREQ(argv[6], "k\\l");
  }
  he_argv_free(argv);

  TEST_CASE("%VAR% expansion and clean-up");
  s = he_expand_env("--port %PORT% %MISSING% 100%% %EMPTY%x %PORT", env);
  CHECK_STREQ(s, "--port 7071 %MISSING% 100%% x %PORT");
  he_sanitize_expanded(s);
  CHECK_STREQ(s, "--port 7071  100PORT"); /* %(.+?)% also eats "%% x %" */
  free(s);
}

static void test_routes(void)
{
  struct he_app app;
  struct he_function fns[4];
  struct arena a;
  struct he_route_param p[8];
  const struct he_function *fn = NULL;
  size_t n = 0;
  const char *get[] = {"get"};

  memset(&app, 0, sizeof app);
  memset(fns, 0, sizeof fns);
  arena_init(&a, 0);
  app.route_prefix = "api";
  app.fns = fns;
  app.n_fns = 4;
  fns[0].name = "ReadApi";
  fns[0].trigger = HE_TRIGGER_HTTP;
  fns[0].route = "data/v9.2/{*path}";
  fns[0].methods = get;
  fns[0].n_methods = 1;
  fns[1].name = "Item";
  fns[1].trigger = HE_TRIGGER_HTTP;
  fns[1].route = "items/{id:int:min(1)}/{name?}";
  fns[2].name = "Literal";
  fns[2].trigger = HE_TRIGGER_HTTP;
  fns[2].route = "data/v9.2/$metadata";
  fns[3].name = "Plain";
  fns[3].trigger = HE_TRIGGER_HTTP;

  TEST_CASE("route templates");
  CHECK(he_route_match(&app, "GET", "/api/data/v9.2/accounts(1)/x%20y", &a, &fn, p, 8, &n));
  CHECK(fn == &fns[0]);
  CHECK_INTEQ(n, 1);
  if (n == 1) {
    CHECK_STREQ(p[0].name, "path");
    CHECK_STREQ(p[0].value, "accounts(1)/x y");
  }
  CHECK(!he_route_match(&app, "POST", "/api/data/v9.2/accounts", &a, &fn, p, 8, &n));
  CHECK(he_route_match(&app, "GET", "/API/Data/v9.2/$metadata", &a, &fn, p, 8, &n));
  CHECK(fn == &fns[2]); /* a literal route wins over the catch-all */
  CHECK(he_route_match(&app, "PUT", "/api/items/42", &a, &fn, p, 8, &n));
  CHECK(fn == &fns[1] && n == 1);
  CHECK(he_route_match(&app, "PUT", "/api/items/42/w", &a, &fn, p, 8, &n) && n == 2);
  CHECK(!he_route_match(&app, "PUT", "/api/items/0", &a, &fn, p, 8, &n));
  CHECK(!he_route_match(&app, "PUT", "/api/items/x", &a, &fn, p, 8, &n));
  CHECK(!he_route_match(&app, "PUT", "/api/items/1/2/3", &a, &fn, p, 8, &n));
  CHECK(he_route_match(&app, "GET", "/api/plain", &a, &fn, p, 8, &n));
  CHECK(fn == &fns[3]); /* no route: the function name */
  CHECK(!he_route_match(&app, "GET", "/plain", &a, &fn, p, 8, &n));
  app.route_prefix = "";
  CHECK(he_route_match(&app, "GET", "/plain", &a, &fn, p, 8, &n));
  arena_cleanup(&a);
}

/* A parsed answer, as the engine would have it. */
static void answer(struct he_resp *r, const char *text)
{
  struct app_err err;
  size_t used = 0;
  bool done = false;
  he_resp_reset(r, false);
  if (he_resp_feed(r, text, strlen(text), &used, &done, &err) != APP_OK || !done)
    fprintf(stderr, "bad test answer: %s\n", text);
}

/* A 200 application/json answer with body. */
static void json_answer(struct he_resp *r, const char *body)
{
  char text[4096];
  snprintf(text, sizeof text,
           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
           strlen(body), body);
  answer(r, text);
}

static const char *verdict(struct he_resp *r, struct arena *a, const char *text)
{
  static struct app_err err;
  const struct json *root = NULL;
  answer(r, text);
  arena_reset(a);
  if (he_result_evaluate(a, r, &root, &err) == APP_OK)
    return root ? "ok" : "no root";
  return err.msg;
}

static void count_warning(void *ctx, const char *text)
{
  struct buf *b = ctx;
  if (buf_append_str(b, text) != APP_OK || buf_append_char(b, '|') != APP_OK)
    abort();
}

static const char *json_verdict(struct he_resp *r, struct arena *a, const char *body)
{
  char text[4096];
  snprintf(text, sizeof text,
           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
           strlen(body), body);
  return verdict(r, a, text);
}

static void test_results(void)
{
  struct he_resp r;
  struct arena a;
  struct buf out, warnings;
  struct he_function fn;
  struct he_binding b[4];
  const struct json *root = NULL;
  struct app_err err;
  char note[160];

  he_resp_init(&r, 4096, 65536);
  arena_init(&a, 0);
  buf_init(&out, 0);
  buf_init(&warnings, 0);

  TEST_CASE("which answers the host accepts");
  CHECK_STREQ(json_verdict(&r, &a, "{\"Outputs\":{}}"), "ok");
  CHECK_STREQ(verdict(&r, &a,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/json; charset=utf-8\r\n"
                      "Content-Length: 41\r\n\r\n{\"outputs\":null,\"logs\":[\"a\",1,null,true]}"),
              "ok");
  CHECK_STREQ(json_verdict(&r, &a, "\xEF\xBB\xBF{ }"), "ok");
  CHECK_STREQ(
      verdict(&r, &a, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 7\r\n\r\nbusy\r\n."),
      "HTTP 503 Service Unavailable: busy  .");
  CHECK_CONTAINS(json_verdict(&r, &a, ""),
                 "empty response body (HTTP 200): the real host would hang");
  CHECK_CONTAINS(json_verdict(&r, &a, "null"), "JSON null response body");
  CHECK_CONTAINS(verdict(&r, &a, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
                 "(none: application/octet-stream) is not JSON");
  CHECK_CONTAINS(verdict(&r, &a,
                         "HTTP/1.1 200 OK\r\nContent-Type: application/problem+json\r\n"
                         "Content-Length: 2\r\n\r\n{}"),
                 "\"application/problem+json\" is not JSON");
  CHECK_CONTAINS(json_verdict(&r, &a, "[]"), "a JSON array, not an object");
  CHECK_CONTAINS(json_verdict(&r, &a, "{\"Logs\":\"x\"}"), "\"Logs\" is a JSON string");
  CHECK_CONTAINS(json_verdict(&r, &a, "{\"Logs\":[{}]}"), "\"Logs\" holds a JSON object");
  CHECK_CONTAINS(json_verdict(&r, &a, "{\"Outputs\":1"), "malformed JSON response: ");
  CHECK_CONTAINS(json_verdict(&r, &a, "{\"OUTPUTS\":[1]}"), "\"Outputs\" is a JSON array");

  TEST_CASE("output checks");
  memset(&fn, 0, sizeof fn);
  b[0] = (struct he_binding){"serviceBusTrigger", "in", "msg", "binary", false};
  b[1] = (struct he_binding){"redis", "out", "cache", NULL, true};
  b[2] = (struct he_binding){"serviceBus", "out", "raw", "binary", true};
  b[3] = (struct he_binding){"http", "out", "res", NULL, true};
  fn.name = "F";
  fn.bindings = b;
  fn.n_bindings = 4;
  json_answer(&r, "{\"Outputs\":{\"cache\":\"ab cd\",\"raw\":\"abcd\",\"res\":\"abcd\",\"x\":1},"
                  "\"ReturnValue\":{}}");
  arena_reset(&a);
  CHECK(he_result_evaluate(&a, &r, &root, &err) == APP_OK);
  if (root)
    he_result_check_outputs(&fn, "F", root, count_warning, &warnings);
  CHECK_STREQ(
      warnings.data,
      "base64 trap: Outputs.cache of F is a string that is valid base64; the host binds its "
      "decoded bytes (wrap it in an array)|Outputs.x of F matches no output binding (names "
      "are case-sensitive): the host ignores it|ReturnValue of F is an object and there is "
      "no $return binding: the host turns its properties into outputs|");
  buf_reset(&warnings);
  json_answer(&r, "{\"Outputs\":{\"cache\":[\"ab cd\"]}}");
  arena_reset(&a);
  CHECK(he_result_evaluate(&a, &r, &root, &err) == APP_OK);
  if (root)
    he_result_check_outputs(&fn, "F", root, count_warning, &warnings);
  CHECK(warnings.len == 0); /* an array is never base64-decoded */

  TEST_CASE("the HTTP response built from Outputs.res");
  json_answer(&r, "{\"Outputs\":{\"res\":{\"StatusCode\":\"404\",\"Headers\":{\"X-N\":5},"
                  "\"Body\":[1,{\"a\":\"b\"}]}}}");
  arena_reset(&a);
  CHECK(he_result_evaluate(&a, &r, &root, &err) == APP_OK);
  CHECK(root && he_result_http(&fn, false, true, &r, root, &a, &out, note, sizeof note) == APP_OK);
  CHECK_STREQ(out.data, "HTTP/1.1 404 Not Found\r\nX-N: 5\r\nContent-Type: application/json; "
                        "charset=utf-8\r\nContent-Length: 29\r\n\r\n[\n  1,\n  {\n    \"a\": "
                        "\"b\"\n  }\n]");
  buf_reset(&out);
  json_answer(&r, "{\"Outputs\":{\"res\":{\"status\":201}}}");
  arena_reset(&a);
  CHECK(he_result_evaluate(&a, &r, &root, &err) == APP_OK);
  CHECK(root && he_result_http(&fn, false, true, &r, root, &a, &out, note, sizeof note) == APP_OK);
  CHECK_STREQ(out.data, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); /* status is ignored */
  buf_reset(&out);
  json_answer(&r, "{\"Outputs\":{\"res\":\"{\\\"statusCode\\\":204}\"}}");
  arena_reset(&a);
  CHECK(he_result_evaluate(&a, &r, &root, &err) == APP_OK);
  CHECK(root && he_result_http(&fn, false, true, &r, root, &a, &out, note, sizeof note) == APP_OK);
  CHECK_CONTAINS(out.data, "HTTP/1.1 204 No Content\r\n"); /* a JSON string holding an object */
  buf_reset(&out);
  json_answer(&r, "{\"Outputs\":{\"res\":\"no\"}}");
  arena_reset(&a);
  CHECK(he_result_evaluate(&a, &r, &root, &err) == APP_OK);
  CHECK(root && he_result_http(&fn, false, true, &r, root, &a, &out, note, sizeof note) == APP_OK);
  CHECK_CONTAINS(out.data, "HTTP/1.1 500 Internal Server Error\r\n");
  CHECK_CONTAINS(note, "not a JSON object");
  buf_reset(&out);
  json_answer(&r, "{\"Outputs\":{}}");
  arena_reset(&a);
  CHECK(he_result_evaluate(&a, &r, &root, &err) == APP_OK);
  CHECK(root && he_result_http(&fn, false, true, &r, root, &a, &out, note, sizeof note) == APP_OK);
  CHECK_STREQ(out.data, "HTTP/1.1 200 OK\r\nContent-Type: application/json; "
                        "charset=utf-8\r\nContent-Length: 2\r\n\r\n{}");
  buf_reset(&out);
  CHECK(he_result_http(&fn, false, false, &r, NULL, &a, &out, note, sizeof note) == APP_OK);
  CHECK_STREQ(out.data, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");

  TEST_CASE("forwarding relays the answer");
  buf_reset(&out);
  answer(&r, "HTTP/1.1 418 I'm a teapot\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "2\r\nhi\r\n0\r\n\r\n");
  CHECK(he_result_http(&fn, true, true, &r, NULL, &a, &out, note, sizeof note) == APP_OK);
  CHECK_STREQ(out.data, "HTTP/1.1 418 \r\nX-A: 1\r\n\r\nhi");

  he_resp_cleanup(&r);
  arena_cleanup(&a);
  buf_cleanup(&out);
  buf_cleanup(&warnings);
}

int main(void)
{
  test_doubles();
  test_dates();
  test_strings();
  test_parsed_values();
  test_timespans();
  test_response_parser();
  test_args();
  test_routes();
  test_results();
  return check_report("test_hostemu");
}

/* test_reqhead.c - the front's screen of a request head (host/reqhead.c):
 * complete and partial heads, control bytes and NULs in the request line,
 * Content-Length forms libmicrohttpd 0.9.75 answers twice. */
#include "host/reqhead.h"
#include "check.h"

#include <string.h>

#define MAX 65536ULL

static enum reqhead_verdict screen_n(const char *s, size_t n)
{
  struct reqhead_result r;
  reqhead_screen(s, n, MAX, &r);
  if (r.verdict == REQHEAD_BAD || r.verdict == REQHEAD_TOO_LARGE)
    CHECK(r.why != NULL && *r.why);
  return r.verdict;
}

static enum reqhead_verdict screen(const char *s)
{
  return screen_n(s, strlen(s));
}

static void test_complete_and_partial(void)
{
  struct reqhead_result r;
  static const char get[] = "GET /api/data/v9.2/accounts HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t i;

  TEST_CASE("a complete head is handed over, its length known");
  reqhead_screen(get, sizeof get - 1, MAX, &r);
  CHECK_INTEQ(r.verdict, REQHEAD_OK);
  CHECK_INTEQ(r.head_len, sizeof get - 1);
  CHECK_INTEQ(screen("POST /Changes HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"Data\":{}}x"),
              REQHEAD_OK);
  CHECK_INTEQ(screen("GET / HTTP/1.1\n\n"), REQHEAD_OK); /* bare LF */

  TEST_CASE("every prefix of a good head waits for more");
  for (i = 0; i < sizeof get - 1; i++)
    CHECK_MSG(screen_n(get, i) == REQHEAD_INCOMPLETE, "prefix of %zu bytes", i);
}

static void test_request_line(void)
{
  TEST_CASE("NUL, control bytes and DEL in the request line: 400, even before the head ends");
  CHECK_INTEQ(screen_n("GET /\0x?$select=name HTTP/1.1\r\n\r\n", 33), REQHEAD_BAD);
  CHECK_INTEQ(screen_n("GET /\0x", 7), REQHEAD_BAD);
  CHECK_INTEQ(screen("GET /x\001y HTTP/1.1\r\nHost: x\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("GET /x\ty HTTP/1.1\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("GET /x\x7fy HTTP/1.1\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("GET /x\ry HTTP/1.1\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("GET /x HTTP/1.1\r"), REQHEAD_INCOMPLETE);
  TEST_CASE("a NUL in a header: 400");
  CHECK_INTEQ(screen_n("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 28), REQHEAD_BAD);
}

static void test_content_length(void)
{
  TEST_CASE("Content-Length forms");
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), REQHEAD_BAD);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\ncontent-length:  7 \r\n\r\n"), REQHEAD_OK);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: 0007\r\n\r\n"), REQHEAD_OK);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: 12345678901234567890123\r\n\r\n"),
              REQHEAD_TOO_LARGE);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"), REQHEAD_TOO_LARGE);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: 65536\r\n\r\n"), REQHEAD_OK);
  TEST_CASE("two Content-Length headers must agree");
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
              REQHEAD_OK);
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
              REQHEAD_BAD);
  TEST_CASE("a header that only starts with the name is another header");
  CHECK_INTEQ(screen("POST / HTTP/1.1\r\nContent-Length-X: -1\r\n\r\n"), REQHEAD_OK);
}

int main(void)
{
  test_complete_and_partial();
  test_request_line();
  test_content_length();
  return check_report("test_reqhead");
}

/* reqhead.c - screen the head of an HTTP/1.1 request (reqhead.h). */
#include "host/reqhead.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define CL_NAME "content-length"
/* 2^64 has 20 digits; 19 always fit an unsigned long long */
#define CL_MAX_DIGITS 19

static void verdict(struct reqhead_result *out, enum reqhead_verdict v, const char *why)
{
  out->verdict = v;
  out->why = why;
}

/* The end of the head: after "\r\n\r\n" (or a bare "\n\n"), or 0. */
static size_t head_end(const char *d, size_t len)
{
  size_t i;
  for (i = 1; i < len; i++) {
    if (d[i] != '\n')
      continue;
    if (d[i - 1] == '\n')
      return i + 1;
    if (i >= 2 && d[i - 1] == '\r' && d[i - 2] == '\n')
      return i + 1;
  }
  return 0;
}

void reqhead_screen(const char *data, size_t len, unsigned long long max_body,
                    struct reqhead_result *out)
{
  size_t end, i, line;
  bool have_cl = false;
  unsigned long long cl_value = 0;

  memset(out, 0, sizeof *out);
  /* the request line may be checked before the head is complete */
  for (i = 0; i < len && data[i] != '\n'; i++) {
    unsigned char c = (unsigned char)data[i];
    if (c == '\r' && (i + 1 == len || data[i + 1] == '\n'))
      continue; /* the line's end, or not yet known */
    if (c < 0x20 || c == 0x7f) {
      verdict(out, REQHEAD_BAD, "the request line contains a NUL or control byte");
      return;
    }
  }
  end = head_end(data, len);
  if (!end)
    return; /* REQHEAD_INCOMPLETE */
  if (memchr(data, '\0', end)) {
    verdict(out, REQHEAD_BAD, "the request head contains a NUL byte");
    return;
  }
  /* header lines: the first after the request line */
  for (line = (size_t)((const char *)memchr(data, '\n', end) - data) + 1; line < end;) {
    const char *p = data + line;
    const char *nl = (const char *)memchr(p, '\n', end - line);
    size_t n = (size_t)(nl - p), k;
    const char *v, *ve;
    unsigned long long value = 0;
    size_t digits = 0;

    line += n + 1;
    if (n <= sizeof CL_NAME - 1 || strncasecmp(p, CL_NAME, sizeof CL_NAME - 1) != 0)
      continue;
    v = p + sizeof CL_NAME - 1;
    ve = p + n;
    if (ve > v && ve[-1] == '\r')
      ve--;
    while (v < ve && (*v == ' ' || *v == '\t'))
      v++;
    if (v == ve || *v != ':')
      continue; /* another header that starts with the name */
    v++;
    while (v < ve && (*v == ' ' || *v == '\t'))
      v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
      ve--;
    for (k = 0; v + k < ve; k++) {
      if (v[k] < '0' || v[k] > '9') {
        verdict(out, REQHEAD_BAD, "Content-Length is not a whole number of bytes");
        return;
      }
      if (digits || v[k] != '0')
        digits++;
      if (digits > CL_MAX_DIGITS) {
        verdict(out, REQHEAD_TOO_LARGE, "Content-Length is larger than allowed");
        return;
      }
      value = value * 10 + (unsigned long long)(v[k] - '0');
    }
    if (k == 0) {
      verdict(out, REQHEAD_BAD, "Content-Length is empty");
      return;
    }
    if (have_cl && value != cl_value) {
      verdict(out, REQHEAD_BAD, "two different Content-Length values");
      return;
    }
    have_cl = true;
    cl_value = value;
  }
  if (have_cl && cl_value > max_body) {
    verdict(out, REQHEAD_TOO_LARGE, "Content-Length is larger than allowed");
    return;
  }
  out->head_len = end;
  verdict(out, REQHEAD_OK, NULL);
}

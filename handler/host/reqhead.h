/* reqhead.h - screen the head of an HTTP/1.1 request before
 * libmicrohttpd sees it (pure; no I/O).
 *
 * The server's front thread peeks at a new connection's first request and
 * answers here what libmicrohttpd would get wrong: a request line with a
 * NUL or another control byte (MHD truncates the target at a NUL and
 * serves what is left), and a malformed or oversize Content-Length
 * (libmicrohttpd 0.9.75 writes the status line and headers of its own
 * 400/413 twice). */
#ifndef D365CDC_REQHEAD_H
#define D365CDC_REQHEAD_H

#include <stddef.h>

enum reqhead_verdict {
  REQHEAD_INCOMPLETE = 0, /* no end of the head yet: read more */
  REQHEAD_OK,             /* hand the connection to libmicrohttpd */
  REQHEAD_BAD,            /* answer 400 */
  REQHEAD_TOO_LARGE       /* answer 413 (Content-Length above max_body) */
};

struct reqhead_result {
  enum reqhead_verdict verdict;
  size_t head_len; /* bytes of the head incl. the blank line (REQHEAD_OK) */
  const char *why; /* static text naming what was wrong */
};

/* Screen data[0..len): the bytes received so far on a new connection. */
void reqhead_screen(const char *data, size_t len, unsigned long long max_body,
                    struct reqhead_result *out);

#endif

/* he_net.h - incremental HTTP/1.1 response parser for the emulator's client.
 *
 * Pure (no I/O): the event loop feeds it whatever recv() returned. Handles
 * Content-Length, chunked (with extensions and trailers) and close-delimited
 * bodies, skips 1xx interim responses, and knows which responses have no
 * body (HEAD, 204, 304). The head and the body have hard ceilings. */
#ifndef D365CDC_HE_NET_H
#define D365CDC_HE_NET_H

#include "common/buf.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct he_resp {
  /* results, valid once done (status also once the head is parsed) */
  int status;
  int minor;              /* HTTP/1.<minor> */
  bool keep_alive;        /* the connection may carry another request */
  char content_type[256]; /* "" when absent */
  bool has_content_type;
  struct buf head;   /* status line and header lines, as received */
  struct buf body;   /* body with any chunked framing removed */
  size_t bytes_seen; /* bytes fed so far (0: nothing arrived) */
  /* parser state */
  int state;
  bool no_body; /* the request was HEAD */
  bool chunked;
  int64_t content_length; /* -1: none */
  uint64_t chunk_left;
  char line[1024]; /* chunk-size and trailer lines */
  size_t line_len;
};

/* max_head bounds the status line plus headers; max_body the body. */
void he_resp_init(struct he_resp *r, size_t max_head, size_t max_body);
/* Forget the last response, keep the storage; no_body is true when the
 * request was HEAD. */
void he_resp_reset(struct he_resp *r, bool no_body);
void he_resp_cleanup(struct he_resp *r);

/* Feed n bytes. *out_used gets how many were consumed (bytes after the end
 * of the response are not), *out_done whether the response is complete.
 * Errors: APP_ERR_HTTP (malformed: the message says what and where),
 * APP_ERR_LIMIT (head or body above its ceiling). */
APP_NODISCARD enum app_result he_resp_feed(struct he_resp *r, const char *p, size_t n,
                                           size_t *out_used, bool *out_done, struct app_err *err);

/* The peer closed the connection. Completes a close-delimited body
 * (*out_done = true); otherwise APP_ERR_HTTP ("closed before/mid response"). */
APP_NODISCARD enum app_result he_resp_eof(struct he_resp *r, bool *out_done, struct app_err *err);

/* Value of the first header named name (case-insensitive), trimmed; the
 * pointer is into r->head (borrowed, valid until the next reset). */
bool he_resp_header(const struct he_resp *r, const char *name, const char **out_val,
                    size_t *out_len);

/* Reason phrase for a status code ("OK", "Not Found", ...; "" if unknown). */
const char *he_http_reason(int status);

#endif

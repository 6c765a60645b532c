/* envelope_same.h - envelope_parse and envelope_parse_mutable must agree.
 *
 * envelope_same_check(text, len, fn, lim) parses text with both (the
 * mutable one on its own copy, in a separate arena) and returns NULL when
 * they give the same result code, error message and invocation (every
 * message field and body byte, Metadata, the HTTP request, flags), or a
 * static string naming the first difference. Used by test_envelope.c for
 * every case it parses and by tests/fuzz/fuzz_envelope.c. */
#ifndef D365CDC_ENVELOPE_SAME_H
#define D365CDC_ENVELOPE_SAME_H

#include "common/arena.h"
#include "common/buf.h"
#include "host/envelope.h"
#include "common/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool envelope_same_str(const char *a, const char *b)
{
  return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool envelope_same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
  return (!a && !b) || (a && b && an == bn && !memcmp(a, b, an));
}

static bool envelope_same_json(const struct json *a, const struct json *b)
{
  struct buf x, y;
  bool same;
  if (!a || !b)
    return !a && !b;
  buf_init(&x, 0);
  buf_init(&y, 0);
  same = json_write(&x, a) == APP_OK && json_write(&y, b) == APP_OK &&
         envelope_same_bytes(x.data ? x.data : "", x.len, y.data ? y.data : "", y.len);
  buf_cleanup(&x);
  buf_cleanup(&y);
  return same;
}

static const char *envelope_same_inv(const struct invocation *a, const struct invocation *b)
{
  size_t i;
  if (a->kind != b->kind || a->batch != b->batch || a->sniffed != b->sniffed)
    return "kind, batch or sniffed";
  if (a->nmessages != b->nmessages)
    return "number of messages";
  for (i = 0; i < a->nmessages; i++) {
    const struct envelope_message *x = &a->messages[i], *y = &b->messages[i];
    if (x->oversize != y->oversize || x->body_len != y->body_len ||
        !envelope_same_bytes(x->body, x->body_len, y->body, y->body_len) ||
        (x->body && (x->body[x->body_len] != '\0' || y->body[y->body_len] != '\0')))
      return "a message body";
    if (!envelope_same_str(x->message_id, y->message_id) ||
        !envelope_same_str(x->content_type, y->content_type) ||
        !envelope_same_str(x->correlation_id, y->correlation_id) ||
        x->delivery_count != y->delivery_count || x->sequence_number != y->sequence_number ||
        x->enqueued_ms != y->enqueued_ms)
      return "a message's Service Bus properties";
    if (!envelope_same_json(x->app_properties, y->app_properties))
      return "a message's application properties";
  }
  if (!envelope_same_json(a->metadata, b->metadata) || !envelope_same_json(a->sys, b->sys) ||
      !envelope_same_json(a->retry_context, b->retry_context) || a->retry_count != b->retry_count ||
      a->max_retry_count != b->max_retry_count)
    return "Metadata";
  if (!envelope_same_str(a->shadowed, b->shadowed))
    return "shadowed keys";
  if (!envelope_same_str(a->http.url, b->http.url) ||
      !envelope_same_str(a->http.method, b->http.method) ||
      !envelope_same_json(a->http.query, b->http.query) ||
      !envelope_same_json(a->http.headers, b->http.headers) ||
      !envelope_same_json(a->http.params, b->http.params) ||
      !envelope_same_json(a->http.identities, b->http.identities) ||
      !envelope_same_bytes(a->http.body, a->http.body_len, b->http.body, b->http.body_len))
    return "the HTTP request";
  return NULL;
}

static const char *envelope_same_check(const char *text, size_t len, const struct function_def *fn,
                                       const struct envelope_limits *lim)
{
  struct arena a, b;
  struct invocation *x = NULL, *y = NULL;
  struct app_err ex, ey;
  enum app_result rx, ry;
  const char *diff = NULL;
  char *copy = malloc(len + 1);

  if (!copy)
    return NULL;
  memcpy(copy, text, len);
  copy[len] = '\0';
  arena_init(&a, 0);
  arena_init(&b, 0);
  app_err_clear(&ex);
  app_err_clear(&ey);
  /* the same ceiling where the caller's limits set one is not modelled:
   * both run without an arena cap, so only the parsing is compared */
  rx = envelope_parse(&a, text, len, fn, lim, &x, &ex);
  ry = envelope_parse_mutable(&b, copy, len, fn, lim, &y, &ey);
  if (rx != ry)
    diff = "result code";
  else if (rx != APP_OK && strcmp(ex.msg, ey.msg))
    diff = "error message";
  else if (rx == APP_OK)
    diff = envelope_same_inv(x, y);
  arena_cleanup(&a);
  arena_cleanup(&b);
  free(copy);
  return diff;
}

#endif

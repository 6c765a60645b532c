/* he_net.c - HTTP/1.1 response parser (see he_net.h). */
#include "he_net.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
  S_HEAD = 0,
  S_BODY_LEN,
  S_CHUNK_SIZE,
  S_CHUNK_DATA,
  S_CHUNK_CRLF,
  S_TRAILERS,
  S_BODY_EOF,
  S_DONE
};

void he_resp_init(struct he_resp *r, size_t max_head, size_t max_body)
{
  memset(r, 0, sizeof *r);
  buf_init(&r->head, max_head);
  buf_init(&r->body, max_body);
  he_resp_reset(r, false);
}

void he_resp_reset(struct he_resp *r, bool no_body)
{
  buf_reset(&r->head);
  buf_reset(&r->body);
  r->status = 0;
  r->minor = 1;
  r->keep_alive = false;
  r->content_type[0] = '\0';
  r->has_content_type = false;
  r->bytes_seen = 0;
  r->state = S_HEAD;
  r->no_body = no_body;
  r->chunked = false;
  r->content_length = -1;
  r->chunk_left = 0;
  r->line_len = 0;
}

void he_resp_cleanup(struct he_resp *r)
{
  if (!r)
    return;
  buf_cleanup(&r->head);
  buf_cleanup(&r->body);
}

static void trim(const char **s, size_t *n)
{
  while (*n && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*n)--;
  }
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
    (*n)--;
}

/* Does the comma-separated list v[0..n) contain token (case-insensitive)? */
static bool has_token(const char *v, size_t n, const char *token)
{
  size_t k = strlen(token);
  while (n) {
    const char *comma = memchr(v, ',', n);
    size_t len = comma ? (size_t)(comma - v) : n;
    const char *t = v;
    size_t tl = len;
    trim(&t, &tl);
    if (tl == k && !strncasecmp(t, token, k))
      return true;
    if (!comma)
      break;
    n -= len + 1;
    v = comma + 1;
  }
  return false;
}

bool he_resp_header(const struct he_resp *r, const char *name, const char **out_val,
                    size_t *out_len)
{
  const char *p = r->head.data, *end = r->head.data + r->head.len;
  size_t k = strlen(name);
  const char *nl;
  if (!p)
    return false;
  nl = memchr(p, '\n', (size_t)(end - p)); /* skip the status line */
  p = nl ? nl + 1 : end;
  while (p < end) {
    const char *colon, *v;
    size_t len, vl;
    nl = memchr(p, '\n', (size_t)(end - p));
    len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    colon = memchr(p, ':', len);
    if (colon && (size_t)(colon - p) == k && !strncasecmp(p, name, k)) {
      v = colon + 1;
      vl = len - (size_t)(v - p);
      trim(&v, &vl);
      *out_val = v;
      *out_len = vl;
      return true;
    }
    p = nl ? nl + 1 : end;
  }
  return false;
}

/* Parse the complete head in r->head. Returns APP_OK, or an error. Sets
 * *out_interim for a 1xx response (to be skipped). */
static enum app_result parse_head(struct he_resp *r, bool *out_interim, struct app_err *err)
{
  const char *p = r->head.data, *end = p + r->head.len, *nl, *v;
  size_t vl;
  int status = 0, i;
  bool close_tok = false, keep_tok = false;

  *out_interim = false;
  nl = memchr(p, '\n', (size_t)(end - p));
  if (!nl || nl - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) ||
      p[8] != ' ')
    return app_err_set(err, APP_ERR_HTTP, "malformed status line \"%.*s\"",
                       (int)(nl ? (nl - p > 60 ? 60 : nl - p) : 20), p);
  r->minor = p[7] - '0';
  for (i = 9; i < 12; i++) {
    if (!isdigit((unsigned char)p[i]))
      return app_err_set(err, APP_ERR_HTTP, "malformed status code in \"%.*s\"",
                         (int)(nl - p > 60 ? 60 : nl - p), p);
    status = status * 10 + (p[i] - '0');
  }
  if (status < 100)
    return app_err_set(err, APP_ERR_HTTP, "invalid status code %d", status);
  r->status = status;
  if (status >= 100 && status < 200 && status != 101) {
    *out_interim = true;
    return APP_OK;
  }
  /* every header line must have a colon */
  for (p = nl + 1; p < end;) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
    if (len && !(len == 1 && p[0] == '\r') && !memchr(p, ':', len))
      return app_err_set(err, APP_ERR_HTTP, "malformed header line \"%.*s\"",
                         (int)(len > 60 ? 60 : len), p);
    p = e ? e + 1 : end;
  }
  if (he_resp_header(r, "Transfer-Encoding", &v, &vl) && has_token(v, vl, "chunked"))
    r->chunked = true;
  if (!r->chunked && he_resp_header(r, "Content-Length", &v, &vl)) {
    int64_t cl = 0;
    size_t k;
    if (vl == 0 || vl > 18)
      return app_err_set(err, APP_ERR_HTTP, "invalid Content-Length \"%.*s\"", (int)vl, v);
    for (k = 0; k < vl; k++) {
      if (!isdigit((unsigned char)v[k]))
        return app_err_set(err, APP_ERR_HTTP, "invalid Content-Length \"%.*s\"", (int)vl, v);
      cl = cl * 10 + (v[k] - '0');
    }
    r->content_length = cl;
  }
  if (he_resp_header(r, "Connection", &v, &vl)) {
    close_tok = has_token(v, vl, "close");
    keep_tok = has_token(v, vl, "keep-alive");
  }
  r->keep_alive = r->minor >= 1 ? !close_tok : keep_tok;
  if (he_resp_header(r, "Content-Type", &v, &vl)) {
    r->has_content_type = true;
    if (vl >= sizeof r->content_type)
      vl = sizeof r->content_type - 1;
    memcpy(r->content_type, v, vl);
    r->content_type[vl] = '\0';
  }
  if (r->no_body || status == 204 || status == 304) {
    r->state = S_DONE;
  } else if (r->chunked) {
    r->state = S_CHUNK_SIZE;
  } else if (r->content_length >= 0) {
    if ((uint64_t)r->content_length > (r->body.max ? r->body.max : SIZE_MAX / 2))
      return app_err_set(err, APP_ERR_LIMIT, "response Content-Length %lld is above the limit",
                         (long long)r->content_length);
    r->state = r->content_length ? S_BODY_LEN : S_DONE;
  } else {
    r->state = S_BODY_EOF;
    r->keep_alive = false; /* the body ends when the connection does */
  }
  return APP_OK;
}

static enum app_result body_append(struct he_resp *r, const char *p, size_t n, struct app_err *err)
{
  if (buf_append(&r->body, p, n) != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "response body above the %zu-byte limit", r->body.max);
  return APP_OK;
}

enum app_result he_resp_feed(struct he_resp *r, const char *p, size_t n, size_t *out_used,
                             bool *out_done, struct app_err *err)
{
  size_t i = 0;
  *out_done = false;
  while (i < n && r->state != S_DONE) {
    switch (r->state) {
    case S_HEAD: {
      /* find the blank line that ends the head in the new bytes (it may
       * straddle what was buffered before), and buffer only up to it: the
       * rest is body, which the head's ceiling must not count */
      size_t k, take = n - i;
      bool found = false, interim;
      for (k = i; k < n; k++) {
        char p1, p2;
        if (p[k] != '\n')
          continue;
        p1 = k > i ? p[k - 1] : (r->head.len ? r->head.data[r->head.len - 1] : 0);
        p2 = k > i + 1    ? p[k - 2]
             : k == i + 1 ? (r->head.len ? r->head.data[r->head.len - 1] : 0)
                          : (r->head.len > 1 ? r->head.data[r->head.len - 2] : 0);
        if (p1 == '\n' || (p1 == '\r' && p2 == '\n')) {
          found = true;
          take = k + 1 - i;
          break;
        }
      }
      if (buf_append(&r->head, p + i, take) != APP_OK)
        return app_err_set(err, APP_ERR_LIMIT, "response head above the %zu-byte limit",
                           r->head.max);
      i += take;
      r->bytes_seen += take;
      if (!found)
        break;
      APP_RETURN_IF_FAILED(parse_head(r, &interim, err));
      if (interim) {
        buf_reset(&r->head);
        r->status = 0;
      }
      break;
    }
    case S_BODY_LEN: {
      size_t want = (size_t)r->content_length - r->body.len, take = n - i < want ? n - i : want;
      APP_RETURN_IF_FAILED(body_append(r, p + i, take, err));
      i += take;
      r->bytes_seen += take;
      if (r->body.len == (size_t)r->content_length)
        r->state = S_DONE;
      break;
    }
    case S_CHUNK_SIZE:
    case S_TRAILERS:
    case S_CHUNK_CRLF: {
      char c = p[i++];
      r->bytes_seen++;
      if (c != '\n') {
        if (r->line_len + 1 >= sizeof r->line)
          return app_err_set(err, APP_ERR_HTTP, "chunk-size or trailer line too long");
        r->line[r->line_len++] = c;
        break;
      }
      if (r->line_len && r->line[r->line_len - 1] == '\r')
        r->line_len--;
      r->line[r->line_len] = '\0';
      if (r->state == S_CHUNK_CRLF) {
        if (r->line_len != 0)
          return app_err_set(err, APP_ERR_HTTP, "missing CRLF after chunk data");
        r->state = S_CHUNK_SIZE;
      } else if (r->state == S_TRAILERS) {
        if (r->line_len == 0)
          r->state = S_DONE;
      } else {
        uint64_t size = 0;
        size_t k;
        for (k = 0; k < r->line_len && isxdigit((unsigned char)r->line[k]); k++) {
          if (size > (UINT64_MAX >> 4))
            return app_err_set(err, APP_ERR_HTTP, "chunk size overflows");
          size = size * 16 + (uint64_t)(isdigit((unsigned char)r->line[k])
                                            ? r->line[k] - '0'
                                            : (tolower((unsigned char)r->line[k]) - 'a' + 10));
        }
        if (k == 0 ||
            (k < r->line_len && r->line[k] != ';' && r->line[k] != ' ' && r->line[k] != '\t'))
          return app_err_set(err, APP_ERR_HTTP, "invalid chunk-size line \"%.40s\"", r->line);
        if (size == 0) {
          r->state = S_TRAILERS;
        } else {
          if (size > (r->body.max ? r->body.max : SIZE_MAX / 2) - r->body.len)
            return app_err_set(err, APP_ERR_LIMIT, "response body above the %zu-byte limit",
                               r->body.max);
          r->chunk_left = size;
          r->state = S_CHUNK_DATA;
        }
      }
      r->line_len = 0;
      break;
    }
    case S_CHUNK_DATA: {
      size_t take = n - i < r->chunk_left ? n - i : (size_t)r->chunk_left;
      APP_RETURN_IF_FAILED(body_append(r, p + i, take, err));
      i += take;
      r->bytes_seen += take;
      r->chunk_left -= take;
      if (r->chunk_left == 0)
        r->state = S_CHUNK_CRLF;
      break;
    }
    case S_BODY_EOF:
      APP_RETURN_IF_FAILED(body_append(r, p + i, n - i, err));
      r->bytes_seen += n - i;
      i = n;
      break;
    default: break;
    }
  }
  *out_used = i;
  *out_done = r->state == S_DONE;
  return APP_OK;
}

enum app_result he_resp_eof(struct he_resp *r, bool *out_done, struct app_err *err)
{
  *out_done = false;
  if (r->state == S_DONE) {
    *out_done = true;
    return APP_OK;
  }
  if (r->state == S_BODY_EOF) {
    r->state = S_DONE;
    *out_done = true;
    return APP_OK;
  }
  if (r->bytes_seen == 0)
    return app_err_set(err, APP_ERR_HTTP, "connection closed before any response byte");
  if (r->state == S_HEAD)
    return app_err_set(err, APP_ERR_HTTP, "connection closed in the middle of the response head");
  return app_err_set(err, APP_ERR_HTTP,
                     "connection closed in the middle of the response body (%zu bytes read)",
                     r->body.len);
}

const char *he_http_reason(int status)
{
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 412: return "Precondition Failed";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "";
  }
}

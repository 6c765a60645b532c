/* result.c - result names, error text helpers and aborting allocators. */
#include "common/result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *app_result_str(enum app_result r)
{
  switch (r) {
  case APP_OK: return "ok";
  case APP_ERR_INPUT: return "input";
  case APP_ERR_LIMIT: return "limit";
  case APP_ERR_NOMEM: return "nomem";
  case APP_ERR_REDIS: return "redis";
  case APP_ERR_SQL: return "sql";
  case APP_ERR_HTTP: return "http";
  case APP_ERR_TIMEOUT: return "timeout";
  case APP_ERR_CONFIG: return "config";
  case APP_ERR_IO: return "io";
  case APP_ERR_TLS: return "tls";
  case APP_ERR_NOTFOUND: return "notfound";
  case APP_ERR_UNSUPPORTED: return "unsupported";
  }
  return "unknown";
}

enum app_result app_err_set(struct app_err *err, enum app_result code, const char *fmt, ...)
{
  if (err) {
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

enum app_result app_err_wrap(struct app_err *err, const char *fmt, ...)
{
  char prefix[APP_ERR_MSG_MAX];
  char old[APP_ERR_MSG_MAX];
  va_list ap;

  if (!err)
    return APP_ERR_INPUT;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
  return err->code;
}

void app_err_clear(struct app_err *err)
{
  if (err) {
    err->code = APP_OK;
    err->msg[0] = '\0';
  }
}

void app_assert_fail(const char *expr, const char *file, int line)
{
  fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"assertion failed: %s at %s:%d\"}\n", expr, file,
          line);
  abort();
}

static void oom(size_t n)
{
  fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
  abort();
}

void *xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    oom(n);
  return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
  void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
  if (!p)
    oom(nmemb * n);
  return p;
}

void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    oom(n);
  return q;
}

char *xstrdup(const char *s)
{
  return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
  char *p = xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

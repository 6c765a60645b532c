/* log.c - structured log lines with the invocation context. */
#include "common/log.h"

#include "common/buf.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum log_level log_min_level = LOG_LEVEL_INFO;
static int all_to_stderr;

static _Thread_local const char *ctx_inv;
static _Thread_local const char *ctx_fn;

enum app_result log_level_parse(const char *s, enum log_level *out)
{
  static const struct {
    const char *name;
    enum log_level level;
  } names[] = {
      {"debug", LOG_LEVEL_DEBUG},      {"trace", LOG_LEVEL_DEBUG}, {"info", LOG_LEVEL_INFO},
      {"information", LOG_LEVEL_INFO}, {"warn", LOG_LEVEL_WARN},   {"warning", LOG_LEVEL_WARN},
      {"error", LOG_LEVEL_ERROR},      {"off", LOG_LEVEL_OFF},     {"none", LOG_LEVEL_OFF}};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!strcasecmp(s, names[i].name)) {
      *out = names[i].level;
      return APP_OK;
    }
  }
  return APP_ERR_CONFIG;
}

const char *log_level_name(enum log_level l)
{
  switch (l) {
  case LOG_LEVEL_DEBUG: return "debug";
  case LOG_LEVEL_INFO: return "info";
  case LOG_LEVEL_WARN: return "warn";
  case LOG_LEVEL_ERROR: return "error";
  default: return "off";
  }
}

void log_set_level(enum log_level l)
{
  log_min_level = l;
}

void log_all_to_stderr(int on)
{
  all_to_stderr = on;
}

void log_new_correlation_id(char out[LOG_CID_SIZE])
{
  static atomic_uint_fast64_t counter, base;
  uint_fast64_t n = atomic_fetch_add(&counter, 1), b = atomic_load(&base), v;
  if (!b) {
    struct timespec ts;
    uint_fast64_t zero = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    b = (((uint64_t)getpid() << 40) ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec) | 1;
    if (!atomic_compare_exchange_strong(&base, &zero, b))
      b = zero; /* another thread set it first */
  }
  v = b + n * 0x9e3779b97f4a7c15ULL; /* distinct for each n */
  snprintf(out, LOG_CID_SIZE, "c%016llx", (unsigned long long)v);
}

void log_context_set(const char *invocation_id, const char *function)
{
  ctx_inv = invocation_id;
  ctx_fn = function;
}

void log_context_clear(void)
{
  ctx_inv = NULL;
  ctx_fn = NULL;
}

APP_PRINTF(3, 0)
static void vlog(enum log_level level, const char *fields, const char *fmt, va_list ap)
{
  char msg[1024];
  char line[8192];
  struct buf b;
  struct timespec ts;
  struct tm tm;
  char tbuf[32];
  int fd;
  size_t n;

  vsnprintf(msg, sizeof msg, fmt, ap);

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);

  /* Build the line in a fixed buffer: a log line never allocates much and
   * never fails the caller. */
  buf_init(&b, sizeof line - 2);
  if (buf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\"", tbuf, ts.tv_nsec / 1000000,
                 log_level_name(level)) != APP_OK)
    goto out;
  if (ctx_inv && (buf_append_str(&b, ",\"inv\":") != APP_OK ||
                  buf_append_json_str(&b, ctx_inv, strlen(ctx_inv)) != APP_OK))
    goto out;
  if (ctx_fn && (buf_append_str(&b, ",\"fn\":") != APP_OK ||
                 buf_append_json_str(&b, ctx_fn, strlen(ctx_fn)) != APP_OK))
    goto out;
  if (fields && *fields &&
      (buf_append_char(&b, ',') != APP_OK || buf_append_str(&b, fields) != APP_OK))
    goto out;
  if (buf_append_str(&b, ",\"msg\":") != APP_OK ||
      buf_append_json_str(&b, msg, strlen(msg)) != APP_OK || buf_append_char(&b, '}') != APP_OK)
    goto out;
out:
  n = b.len < sizeof line - 2 ? b.len : sizeof line - 2;
  if (b.data)
    memcpy(line, b.data, n);
  if (n == 0 || line[n - 1] != '}') {
    /* truncated: close the object so the line stays parseable */
    const char *tail = "\"}";
    if (n > sizeof line - 4)
      n = sizeof line - 4;
    memcpy(line + n, tail, 2);
    n += 2;
  }
  line[n++] = '\n';
  buf_cleanup(&b);
  fd = (level >= LOG_LEVEL_WARN || all_to_stderr) ? STDERR_FILENO : STDOUT_FILENO;
  /* one write() per line keeps lines whole across threads */
  if (write(fd, line, n) < 0) {
    /* nothing sensible to do if the log stream is gone */
  }
}

void log_write(enum log_level level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vlog(level, NULL, fmt, ap);
  va_end(ap);
}

void log_event(enum log_level level, const char *fields, const char *fmt, ...)
{
  va_list ap;
  if (level < log_min_level)
    return;
  va_start(ap, fmt);
  vlog(level, fields, fmt, ap);
  va_end(ap);
}

void log_field_str(struct buf *b, const char *name, const char *value)
{
  if (!value)
    return;
  if (b->len && buf_append_char(b, ',') != APP_OK)
    return;
  if (buf_printf(b, "\"%s\":", name) == APP_OK &&
      buf_append_json_str(b, value, strlen(value)) != APP_OK)
    return; /* dropped: past the cap */
}

void log_field_int(struct buf *b, const char *name, long long value)
{
  if (buf_printf(b, "%s\"%s\":%lld", b->len ? "," : "", name, value) != APP_OK)
    return; /* dropped: past the cap */
}

/* log.h - one structured line per event.
 *
 * Lines are JSON objects: {"ts":...,"level":...,"inv":...,"fn":...,"msg":...}.
 * The Functions host logs every stderr line at Error level unless it contains
 * "warn", and every stdout line at Information (protocol doc 1.2). So error and
 * warn lines go to stderr and info/debug lines to stdout, which keeps the
 * levels right in Application Insights. The invocation id and function name of
 * the calling thread (log_context_set) are added to every line.
 *
 * Never pass secrets to these functions: connection strings are logged only
 * through their redacted forms. */
#ifndef D365CDC_LOG_H
#define D365CDC_LOG_H

#include "common/result.h"

enum log_level {
  LOG_LEVEL_DEBUG = 0,
  LOG_LEVEL_INFO,
  LOG_LEVEL_WARN,
  LOG_LEVEL_ERROR,
  LOG_LEVEL_OFF
};

extern enum log_level log_min_level;

/* Parse "debug|info|warn|warning|error|off|none" (case-insensitive). */
APP_NODISCARD enum app_result log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);
/* Set the minimum level that is printed (default info). */
void log_set_level(enum log_level l);
/* Send every line to stderr (for tools whose stdout carries data). */
void log_all_to_stderr(int on);

/* Per-thread context added to each line; pointers are borrowed and must stay
 * valid until log_context_clear. */
void log_context_set(const char *invocation_id, const char *function);
void log_context_clear(void);

/* A fresh correlation id ("c" + 16 hex digits, unique in this process and
 * unlikely to repeat across processes) for a failure whose detail is
 * logged but not answered: the answer names the id, the log line too. */
#define LOG_CID_SIZE 18
void log_new_correlation_id(char out[LOG_CID_SIZE]);

void log_write(enum log_level level, const char *fmt, ...) APP_PRINTF(2, 3);

/* An event line: log_write's line with more members after "fn", for
 * queries (docs/operations.md lists them: event, mid, table, id, outcome,
 * latency_ms, fresh_ms, reason, ...). fields holds JSON object members
 * without braces (built with log_field_*), or NULL. Checks the level. */
void log_event(enum log_level level, const char *fields, const char *fmt, ...) APP_PRINTF(3, 4);

struct buf;
/* Append "name":"value" (JSON-escaped; nothing when value is NULL) or
 * "name":value to b, with a comma after earlier members. Never fail: a
 * field past b's cap is dropped. */
void log_field_str(struct buf *b, const char *name, const char *value);
void log_field_int(struct buf *b, const char *name, long long value);

#define LOG_AT(level, ...)                                                                         \
  do {                                                                                             \
    if ((level) >= log_min_level)                                                                  \
      log_write((level), __VA_ARGS__);                                                             \
  } while (0)
#define LOG_DEBUG(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define LOG_INFO(...)  LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_WARN(...)  LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif

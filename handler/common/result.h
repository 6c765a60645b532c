/* result.h - the one result type of the handler.
 *
 * Every fallible function returns enum app_result and is APP_NODISCARD.
 * Detail text travels in a caller-provided struct app_err (hiredis errstr
 * style), so a failure can be logged and put into a reply without any
 * allocation. */
#ifndef D365CDC_RESULT_H
#define D365CDC_RESULT_H

#include <stdarg.h>
#include <stddef.h>

#define APP_NODISCARD                __attribute__((warn_unused_result))
#define APP_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))

enum app_result {
  APP_OK = 0,
  APP_ERR_INPUT,      /* bad input from the network or a file: never retried */
  APP_ERR_LIMIT,      /* a configured cap was exceeded (size, depth, count) */
  APP_ERR_NOMEM,      /* an allocation failed */
  APP_ERR_REDIS,      /* Redis replied with an error or the connection broke */
  APP_ERR_SQL,        /* the SQL driver or server failed */
  APP_ERR_HTTP,       /* HTTP server or client failure */
  APP_ERR_TIMEOUT,    /* an outgoing call ran out of time */
  APP_ERR_CONFIG,     /* invalid configuration (fatal at start-up) */
  APP_ERR_IO,         /* operating-system I/O failure */
  APP_ERR_TLS,        /* TLS handshake or certificate verification failed */
  APP_ERR_NOTFOUND,   /* a looked-up item does not exist */
  APP_ERR_UNSUPPORTED /* valid input we do not handle (e.g. .NET binary body) */
};

#define APP_ERR_MSG_MAX 256

struct app_err {
  enum app_result code;
  char msg[APP_ERR_MSG_MAX];
};

/* Short stable name of a result, e.g. "input" or "redis". Never NULL. */
const char *app_result_str(enum app_result r);

/* Fill *err (may be NULL) with code and a printf-formatted message.
 * Returns code, so callers can write `return app_err_set(err, ...)`. */
enum app_result app_err_set(struct app_err *err, enum app_result code, const char *fmt, ...)
    APP_PRINTF(3, 4);

/* Prefix the message already in *err with more context ("where: what").
 * Returns err->code. */
enum app_result app_err_wrap(struct app_err *err, const char *fmt, ...) APP_PRINTF(2, 3);

/* Reset *err to APP_OK with an empty message. */
void app_err_clear(struct app_err *err);

#define APP_RETURN_IF_FAILED(expr)                                                                 \
  do {                                                                                             \
    enum app_result app_r_ = (expr);                                                               \
    if (app_r_ != APP_OK)                                                                          \
      return app_r_;                                                                               \
  } while (0)

/* Invariant of our own code; logs file:line and aborts. Never for input. */
#define APP_ASSERT(cond)                                                                           \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      app_assert_fail(#cond, __FILE__, __LINE__);                                                  \
  } while (0)

__attribute__((noreturn)) void app_assert_fail(const char *expr, const char *file, int line);

/* malloc/calloc/realloc/strdup that abort with a log line on failure.
 * Use only for small, bounded allocations of our own; sizes grown by
 * input go through struct buf or struct arena, which have caps. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif

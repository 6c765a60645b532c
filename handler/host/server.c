/* server.c - libmicrohttpd server, routing, body caps, drain and signals.
 *
 * libmicrohttpd calls on_request several times per request: once when the
 * headers are in (begin), once per piece of body (receive), and once when
 * the request is complete (finish), where the handler runs. Per-request
 * state lives in struct request, created by the URI log callback (which MHD
 * calls once per request, before anything else) and freed by the
 * completion callback. All MHD-specific translation happens in this file. */
#include "host/server.h"

#include "host/envelope.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* 413's name since libmicrohttpd 0.9.74; Debian 11 (the Functions images'
 * base) ships 0.9.72, which calls it MHD_HTTP_PAYLOAD_TOO_LARGE. */
#if MHD_VERSION < 0x00097400
#define MHD_HTTP_CONTENT_TOO_LARGE MHD_HTTP_PAYLOAD_TOO_LARGE
#endif

#define INV_ID_MAX            128
#define DEFAULT_READY_WAIT_MS 60000
#define SLEEP_HOOK_MAX_MS     60000
#define DESTROY_GRACE_MS      2000
/* After a streamed 413: how long and how much of the rest we read and drop,
 * so the client sees our answer rather than a reset (lingering close). */
#define LINGER_MS    1000
#define LINGER_BYTES (1024 * 1024)
/* MHD's per-connection memory: request line, headers and the read buffer
 * that body pieces arrive in. 64 KiB leaves room for the large headers of
 * forwarded requests (bearer tokens, cookies); 32..512 KiB made no
 * measurable difference to a 26 MB chunked upload (about 50 ms each). */
#define CONNECTION_MEMORY (64 * 1024)

static const char ready_body[] = "{\"status\":\"ready\"}";
static const char empty_response[] = ENVELOPE_EMPTY_RESPONSE;

struct route {
  char *name;
  server_invoke_fn fn;
  void *ctx;
};

struct raw_route {
  char *method;
  char *prefix;
  size_t prefix_len;
  server_raw_fn fn;
  void *ctx;
};

struct server {
  struct MHD_Daemon *daemon;
  int listen_fd;
  int port;
  struct server_options opt;
  char address[INET_ADDRSTRLEN];

  pthread_mutex_t mu;
  pthread_cond_t cv; /* open, draining and in_flight changes */
  bool open;
  bool draining;
  bool quiesced;  /* the listening socket is no longer accepted from */
  bool abandoned; /* drain timed out: threads still run, never free */
  size_t in_flight;
  size_t peak_in_flight;

  struct route *routes;
  size_t nroutes;
  struct raw_route *raws;
  size_t nraws;

  atomic_uint_fast64_t requests, invocations, failures, rejected;
  atomic_size_t peak_body;
};

enum req_kind { RK_NONE = 0, RK_FUNCTION, RK_RAW };

struct request {
  struct server *srv;
  char *raw_uri; /* as received: path?query */
  bool started;
  bool counted; /* included in srv->in_flight */
  struct buf body;
  char inv_id[INV_ID_MAX + 1];
  int64_t start_ms;
};

/* Set when we close a connection on purpose (streamed 413), so MHD's
 * "Application reported internal error" that follows is not logged. */
static _Thread_local bool tl_quiet_close;

static volatile sig_atomic_t restart_requested;

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- libmicrohttpd error translation ------------------------------------- */

/* MHD's own diagnostics (socket errors, protocol violations by clients). */
static void mhd_logger(void *cls, const char *fmt, va_list ap) APP_PRINTF(2, 0);
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  size_t n;
  (void)cls;
  vsnprintf(msg, sizeof msg, fmt, ap);
  n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  if (tl_quiet_close && strstr(msg, "internal error"))
    return;
  LOG_WARN("libmicrohttpd: %s", msg);
}

static int status_for(enum app_result r)
{
  switch (r) {
  case APP_OK: return 200;
  case APP_ERR_INPUT: return 400;
  case APP_ERR_NOTFOUND: return 404;
  case APP_ERR_LIMIT: return 413;
  case APP_ERR_UNSUPPORTED: return 422;
  case APP_ERR_TIMEOUT: return 504;
  case APP_ERR_REDIS:
  case APP_ERR_SQL:
  case APP_ERR_HTTP:
  case APP_ERR_TLS: return 503;
  default: return 500;
  }
}

/* Queue a JSON answer. body is either static (owned = false) or malloc'd
 * and handed to MHD (owned = true), which frees it after sending. */
static enum MHD_Result queue_json(struct MHD_Connection *conn, unsigned status, char *body,
                                  size_t len, bool owned, const char *allow, bool close_conn)
{
  struct MHD_Response *resp;
  enum MHD_Result ret, ok;

  resp = MHD_create_response_from_buffer(len, body,
                                         owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    if (owned)
      free(body);
    LOG_ERROR("libmicrohttpd: cannot create a response (status %u)", status);
    return MHD_NO;
  }
  ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (ok == MHD_YES && allow)
    ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  if (ok == MHD_YES && close_conn)
    ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (ok != MHD_YES) {
    MHD_destroy_response(resp);
    LOG_ERROR("libmicrohttpd: cannot add response headers");
    return MHD_NO;
  }
  ret = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  if (ret != MHD_YES)
    LOG_ERROR("libmicrohttpd: MHD_queue_response(%u) failed", status);
  return ret;
}

/* {"error":"<code>","message":"..."[,"function":..,"invocationId":..]} */
static enum MHD_Result queue_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                   const char *message, const char *function, const char *inv_id,
                                   const char *allow, bool close_conn)
{
  struct buf b;
  char *data;
  size_t len = 0;

  buf_init(&b, 0);
  if (buf_append_str(&b, "{\"error\":") != APP_OK ||
      buf_append_json_str(&b, code, strlen(code)) != APP_OK ||
      buf_append_str(&b, ",\"message\":") != APP_OK ||
      buf_append_json_str(&b, message, strlen(message)) != APP_OK ||
      (function && (buf_append_str(&b, ",\"function\":") != APP_OK ||
                    buf_append_json_str(&b, function, strlen(function)) != APP_OK)) ||
      (inv_id && *inv_id &&
       (buf_append_str(&b, ",\"invocationId\":") != APP_OK ||
        buf_append_json_str(&b, inv_id, strlen(inv_id)) != APP_OK)) ||
      buf_append_char(&b, '}') != APP_OK) {
    buf_cleanup(&b);
    return MHD_NO;
  }
  data = buf_steal(&b, &len);
  return queue_json(conn, status, data, len, true, allow, close_conn);
}

/* ---- per-request state ----------------------------------------------------- */

static struct request *request_new(struct server *srv, const char *uri)
{
  struct request *req = xcalloc(1, sizeof *req);
  req->srv = srv;
  req->raw_uri = xstrdup(uri ? uri : "");
  buf_init(&req->body, srv->opt.max_request_bytes);
  return req;
}

/* MHD_OPTION_URI_LOG_CALLBACK: called once per request with the full,
 * undecoded request target; its result becomes *req_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
  (void)conn;
  return request_new(cls, uri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct server *srv = cls;
  struct request *req = *req_cls;
  (void)conn;
  (void)toe;
  tl_quiet_close = false;
  if (!req)
    return;
  if (req->counted) {
    pthread_mutex_lock(&srv->mu);
    srv->in_flight--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
  }
  buf_cleanup(&req->body);
  free(req->raw_uri);
  free(req);
  *req_cls = NULL;
}

/* ---- 413 for a chunked body that passes the cap ----------------------------
 *
 * libmicrohttpd 0.9.75 does not accept a response while the body is still
 * arriving (MHD_queue_response fails during upload calls), and consuming
 * the rest would read an unbounded stream. So we write the 413 ourselves on
 * the connection's socket (nothing else has been written on it for this
 * request, and only this thread uses it), half-close, read and drop what
 * the client already sent for a short while so it sees the answer rather
 * than a reset, and return MHD_NO so MHD closes the connection. */
static bool send_all(int fd, const char *p, size_t n, int timeout_ms)
{
  int64_t deadline = now_ms() + timeout_ms;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      struct pollfd pfd = {fd, POLLOUT, 0};
      int left = (int)(deadline - now_ms());
      if (left <= 0 || poll(&pfd, 1, left) <= 0)
        return false;
      continue;
    }
    return false;
  }
  return true;
}

static enum MHD_Result reject_streaming(struct server *srv, struct request *req,
                                        struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci;
  char head[256], body[256], drop[16384];
  int hlen, blen;
  int64_t deadline;
  size_t dropped = 0;
  int fd;

  atomic_fetch_add(&srv->rejected, 1);
  tl_quiet_close = true;
  LOG_WARN("request body passed the limit of %zu bytes (CDC_MAX_REQUEST_BYTES) while streaming; "
           "answered 413 and closed the connection",
           srv->opt.max_request_bytes);
  ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci)
    return MHD_NO;
  fd = ci->connect_fd;
  blen = snprintf(body, sizeof body,
                  "{\"error\":\"payload_too_large\",\"message\":\"request body is larger than "
                  "%zu bytes (CDC_MAX_REQUEST_BYTES)\"}",
                  srv->opt.max_request_bytes);
  hlen = snprintf(head, sizeof head,
                  "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                  "Content-Length: %d\r\nConnection: close\r\n\r\n",
                  blen);
  if (!send_all(fd, head, (size_t)hlen, 1000) || !send_all(fd, body, (size_t)blen, 1000))
    return MHD_NO;
  shutdown(fd, SHUT_WR);
  deadline = now_ms() + LINGER_MS;
  while (dropped < LINGER_BYTES) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int left = (int)(deadline - now_ms());
    ssize_t r;
    if (left <= 0 || poll(&pfd, 1, left) <= 0)
      break;
    r = recv(fd, drop, sizeof drop, 0);
    if (r <= 0 && !(r < 0 && (errno == EAGAIN || errno == EINTR)))
      break;
    if (r > 0)
      dropped += (size_t)r;
  }
  (void)req;
  return MHD_NO;
}

/* ---- request phases ------------------------------------------------------------ */

static void copy_inv_id(struct request *req, struct MHD_Connection *conn)
{
  const char *v =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Azure-Functions-InvocationId");
  size_t n = v ? strlen(v) : 0;
  if (n > INV_ID_MAX)
    n = INV_ID_MAX;
  if (n)
    memcpy(req->inv_id, v, n);
  req->inv_id[n] = '\0';
}

/* Headers are in: count the request, refuse a declared oversize body. */
static enum MHD_Result begin(struct server *srv, struct request *req, struct MHD_Connection *conn)
{
  const char *cl;

  req->started = true;
  req->start_ms = now_ms();
  atomic_fetch_add(&srv->requests, 1);
  copy_inv_id(req, conn);

  pthread_mutex_lock(&srv->mu);
  if (srv->draining) {
    pthread_mutex_unlock(&srv->mu);
    return queue_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                       "the handler is shutting down; retry on a new connection", NULL, req->inv_id,
                       NULL, true);
  }
  srv->in_flight++;
  if (srv->in_flight > srv->peak_in_flight)
    srv->peak_in_flight = srv->in_flight;
  req->counted = true;
  pthread_mutex_unlock(&srv->mu);

  cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && *cl) {
    char *end = NULL;
    unsigned long long n;
    errno = 0;
    n = strtoull(cl, &end, 10);
    if (!errno && end && !*end && cl[0] != '-') {
      if (n > srv->opt.max_request_bytes) {
        char msg[160];
        atomic_fetch_add(&srv->rejected, 1);
        snprintf(msg, sizeof msg,
                 "request body of %llu bytes is larger than %zu bytes (CDC_MAX_REQUEST_BYTES)", n,
                 srv->opt.max_request_bytes);
        log_context_set(req->inv_id[0] ? req->inv_id : NULL, NULL);
        LOG_WARN("%s; answered 413", msg);
        log_context_clear();
        return queue_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", msg, NULL,
                           req->inv_id, NULL, true);
      }
      /* one allocation for the whole body when its size is known */
      if (n > 0 && buf_reserve(&req->body, (size_t)n) != APP_OK)
        return MHD_NO;
    }
  }
  return MHD_YES;
}

static enum MHD_Result receive(struct server *srv, struct request *req, struct MHD_Connection *conn,
                               const char *data, size_t *size)
{
  enum app_result r = buf_append(&req->body, data, *size);
  size_t peak;

  if (r == APP_ERR_LIMIT) {
    enum MHD_Result ret;
    log_context_set(req->inv_id[0] ? req->inv_id : NULL, NULL);
    ret = reject_streaming(srv, req, conn);
    log_context_clear();
    return ret;
  }
  if (r != APP_OK) {
    LOG_ERROR("out of memory buffering a request body of %zu bytes", req->body.len + *size);
    return MHD_NO;
  }
  *size = 0;
  peak = atomic_load(&srv->peak_body);
  while (req->body.len > peak &&
         !atomic_compare_exchange_weak(&srv->peak_body, &peak, req->body.len)) {
  }
  return MHD_YES;
}

/* Wait until server_open (routes complete) or draining. */
static bool wait_open(struct server *srv)
{
  struct timespec ts;
  bool ok;
  int ms = srv->opt.ready_wait_ms > 0 ? srv->opt.ready_wait_ms : DEFAULT_READY_WAIT_MS;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&srv->mu);
  while (!srv->open && !srv->draining) {
    if (pthread_cond_timedwait(&srv->cv, &srv->mu, &ts) == ETIMEDOUT)
      break;
  }
  ok = srv->open && !srv->draining;
  pthread_mutex_unlock(&srv->mu);
  return ok;
}

static enum MHD_Result run_function(struct server *srv, struct request *req,
                                    struct MHD_Connection *conn, const struct route *rt)
{
  struct server_invocation inv;
  struct app_err err;
  struct buf out;
  enum app_result r;
  enum MHD_Result ret;
  char empty[1] = {0};
  size_t max =
      srv->opt.max_response_bytes ? srv->opt.max_response_bytes : srv->opt.max_request_bytes;

  inv.function = rt->name;
  inv.invocation_id = req->inv_id;
  /* the request's own buffer: the handler may parse it in place */
  inv.body = req->body.data ? req->body.data : empty;
  inv.body_len = req->body.len;
  atomic_fetch_add(&srv->invocations, 1);
  buf_init(&out, max);
  app_err_clear(&err);
  log_context_set(req->inv_id[0] ? req->inv_id : NULL, rt->name);
  r = rt->fn(rt->ctx, &inv, &out, &err);
  if (r == APP_OK) {
    if (out.len == 0) {
      ret = queue_json(conn, MHD_HTTP_OK, (char *)empty_response, sizeof empty_response - 1, false,
                       NULL, false);
    } else {
      size_t len = 0;
      char *data = buf_steal(&out, &len);
      ret = queue_json(conn, MHD_HTTP_OK, data, len, true, NULL, false);
    }
    LOG_DEBUG("invocation done: 200 in %lld ms (%zu body bytes)",
              (long long)(now_ms() - req->start_ms), req->body.len);
  } else {
    int status = status_for(r);
    atomic_fetch_add(&srv->failures, 1);
    if (!err.msg[0])
      snprintf(err.msg, sizeof err.msg, "the handler failed without a message");
    /* stderr: the host discards Logs of failed invocations */
    LOG_ERROR("invocation failed: HTTP %d (%s): %s", status, app_result_str(r), err.msg);
    ret = queue_error(conn, (unsigned)status, app_result_str(r), err.msg, rt->name, req->inv_id,
                      NULL, false);
  }
  log_context_clear();
  buf_cleanup(&out);
  return ret;
}

static enum MHD_Result run_raw(struct server *srv, struct request *req, struct MHD_Connection *conn,
                               const char *url, const char *method, const struct raw_route *rt)
{
  struct server_raw_request rq;
  struct server_raw_response res;
  struct app_err err;
  enum app_result r;
  enum MHD_Result ret = MHD_NO;
  struct MHD_Response *resp = NULL;
  char *q = strchr(req->raw_uri, '?');
  char *data = NULL;
  size_t len = 0, i;
  size_t max =
      srv->opt.max_response_bytes ? srv->opt.max_response_bytes : srv->opt.max_request_bytes;

  if (q)
    *q = '\0'; /* raw_uri becomes the raw path; the query follows the NUL */
  rq.method = method;
  rq.path = url;
  rq.raw_path = req->raw_uri;
  rq.query = q ? q + 1 : "";
  rq.invocation_id = req->inv_id;
  rq.body = req->body.data ? req->body.data : "";
  rq.body_len = req->body.len;
  rq.conn = conn;
  memset(&res, 0, sizeof res);
  res.status = 200;
  buf_init(&res.body, max);
  app_err_clear(&err);
  log_context_set(req->inv_id[0] ? req->inv_id : NULL, NULL);

  r = rt->fn(rt->ctx, &rq, &res, &err);
  if (r != APP_OK || res.status < 100 || res.status > 599) {
    int status = r != APP_OK ? status_for(r) : 500;
    if (r == APP_OK)
      snprintf(err.msg, sizeof err.msg, "the handler set HTTP status %d", res.status);
    LOG_ERROR("%s %s failed: HTTP %d (%s): %s", method, url, status, app_result_str(r), err.msg);
    ret = queue_error(conn, (unsigned)status, app_result_str(r), err.msg, NULL, req->inv_id, NULL,
                      false);
    goto out;
  }
  data = buf_steal(&res.body, &len);
  resp = MHD_create_response_from_buffer(len, data ? data : (char *)"",
                                         data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(data);
    goto out;
  }
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                              res.content_type ? res.content_type : "application/json") != MHD_YES)
    goto out;
  for (i = 0; i < res.nheaders; i++)
    if (MHD_add_response_header(resp, res.header_names[i], res.header_values[i]) != MHD_YES)
      goto out;
  ret = MHD_queue_response(conn, (unsigned)res.status, resp);
out:
  if (resp)
    MHD_destroy_response(resp);
  for (i = 0; i < res.nheaders; i++) {
    free(res.header_names[i]);
    free(res.header_values[i]);
  }
  free(res.content_type);
  buf_cleanup(&res.body);
  log_context_clear();
  return ret;
}

/* Longest raw prefix matching path; *allow collects the methods of the
 * matching prefixes when none has the request's method. */
static const struct raw_route *find_raw(const struct server *srv, const char *path,
                                        const char *method, char *allow, size_t allow_size)
{
  const struct raw_route *best = NULL;
  size_t i, best_len = 0, used = 0;
  bool head = !strcmp(method, "HEAD");

  allow[0] = '\0';
  for (i = 0; i < srv->nraws; i++) {
    const struct raw_route *r = &srv->raws[i];
    if (strncmp(path, r->prefix, r->prefix_len) != 0)
      continue;
    if (!strcmp(r->method, method) || (head && !strcmp(r->method, "GET"))) {
      if (r->prefix_len >= best_len) {
        best = r;
        best_len = r->prefix_len;
      }
    } else if (!strstr(allow, r->method)) {
      int k = snprintf(allow + used, allow_size - used, "%s%s%s", used ? ", " : "", r->method,
                       strcmp(r->method, "GET") ? "" : ", HEAD");
      if (k > 0 && (size_t)k < allow_size - used)
        used += (size_t)k;
    }
  }
  return best;
}

static const struct route *find_route(const struct server *srv, const char *name)
{
  size_t i;
  for (i = 0; i < srv->nroutes; i++)
    if (!strcmp(srv->routes[i].name, name))
      return &srv->routes[i];
  return NULL;
}

static enum MHD_Result sleep_hook(struct MHD_Connection *conn)
{
  const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ms");
  long ms = 1000;
  struct timespec ts;
  if (v) {
    char *end = NULL;
    ms = strtol(v, &end, 10);
    if (!end || *end || ms < 0 || ms > SLEEP_HOOK_MAX_MS)
      return queue_error(conn, MHD_HTTP_BAD_REQUEST, "bad_request",
                         "__sleep: ms must be a whole number 0..60000", NULL, NULL, NULL, false);
  }
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return queue_json(conn, MHD_HTTP_OK, (char *)empty_response, sizeof empty_response - 1, false,
                    NULL, false);
}

/* The request is complete: route it and answer. */
static enum MHD_Result finish(struct server *srv, struct request *req, struct MHD_Connection *conn,
                              const char *url, const char *method)
{
  bool post = !strcmp(method, "POST");
  bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  const struct route *rt;
  const struct raw_route *raw;
  char allow[128], msg[256];

  if (!strcmp(url, "/")) {
    if (!get)
      return queue_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                         "/ answers GET and HEAD", NULL, req->inv_id, "GET, HEAD", false);
    return queue_json(conn, MHD_HTTP_OK, (char *)ready_body, sizeof ready_body - 1, false, NULL,
                      false);
  }
  if (!strcmp(url, "/__noop") || (srv->opt.test_hooks && !strcmp(url, "/__sleep"))) {
    if (!post)
      return queue_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                         "this path answers POST only", NULL, req->inv_id, "POST", false);
    if (!strcmp(url, "/__noop"))
      return queue_json(conn, MHD_HTTP_OK, (char *)empty_response, sizeof empty_response - 1, false,
                        NULL, false);
    return sleep_hook(conn);
  }

  /* functions and raw routes exist once the app has registered them; an
   * invocation that arrives between readiness and registration waits */
  if (!wait_open(srv)) {
    bool draining;
    pthread_mutex_lock(&srv->mu);
    draining = srv->draining;
    pthread_mutex_unlock(&srv->mu);
    return queue_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, draining ? "shutting_down" : "not_ready",
                       draining ? "the handler is shutting down"
                                : "the functions were not registered in time",
                       NULL, req->inv_id, NULL, true);
  }
  rt = url[0] == '/' ? find_route(srv, url + 1) : NULL;
  if (rt) {
    if (!post) {
      snprintf(msg, sizeof msg, "function %s is invoked with POST, not %s", rt->name, method);
      return queue_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg, rt->name,
                         req->inv_id, "POST", false);
    }
    return run_function(srv, req, conn, rt);
  }
  raw = find_raw(srv, url, method, allow, sizeof allow);
  if (raw)
    return run_raw(srv, req, conn, url, method, raw);
  if (allow[0]) {
    snprintf(msg, sizeof msg, "%s is not allowed on %.160s", method, url);
    return queue_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg, NULL,
                       req->inv_id, allow, false);
  }
  snprintf(msg, sizeof msg, "no function or route for %s %.160s", method, url);
  return queue_error(conn, MHD_HTTP_NOT_FOUND, "not_found", msg, NULL, req->inv_id, NULL, false);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
  struct server *srv = cls;
  struct request *req = *req_cls;
  (void)version;

  if (!req) /* the URI callback always runs first; be safe anyway */
    *req_cls = req = request_new(srv, url);
  if (!req->started)
    return begin(srv, req, conn);
  if (*upload_data_size)
    return receive(srv, req, conn, upload_data, upload_data_size);
  return finish(srv, req, conn, url, method);
}

/* ---- public API --------------------------------------------------------------- */

const char *server_raw_header(const struct server_raw_request *req, const char *name)
{
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static bool has_crlf(const char *s)
{
  return strchr(s, '\r') || strchr(s, '\n');
}

enum app_result server_raw_content_type(struct server_raw_response *res, const char *value,
                                        struct app_err *err)
{
  if (!value || !*value || has_crlf(value))
    return app_err_set(err, APP_ERR_INPUT, "invalid Content-Type value");
  free(res->content_type);
  res->content_type = xstrdup(value);
  return APP_OK;
}

enum app_result server_raw_add_header(struct server_raw_response *res, const char *name,
                                      const char *value, struct app_err *err)
{
  const char *c;
  if (!name || !*name || !value || has_crlf(name) || has_crlf(value))
    return app_err_set(err, APP_ERR_INPUT, "invalid response header");
  for (c = name; *c; c++)
    if (*c == ':' || *c == ' ' || (unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
      return app_err_set(err, APP_ERR_INPUT, "invalid response header name '%s'", name);
  if (res->nheaders >= SERVER_RAW_MAX_HEADERS)
    return app_err_set(err, APP_ERR_LIMIT, "more than %d response headers", SERVER_RAW_MAX_HEADERS);
  res->header_names[res->nheaders] = xstrdup(name);
  res->header_values[res->nheaders] = xstrdup(value);
  res->nheaders++;
  return APP_OK;
}

static enum app_result open_listener(struct server *srv, struct app_err *err)
{
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int one = 1, fd;

  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)srv->opt.port);
  if (inet_pton(AF_INET, srv->address, &sa.sin_addr) != 1)
    return app_err_set(err, APP_ERR_CONFIG, "listen address '%s' is not an IPv4 address",
                       srv->address);
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return app_err_set(err, APP_ERR_IO, "socket: %s", strerror(errno));
  /* restart at once even with connections of the previous process in
   * TIME_WAIT; a live listener on the port still makes bind fail */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    return app_err_set(err, APP_ERR_IO, "bind %s:%d: %s", srv->address, srv->opt.port, strerror(e));
  }
  if (listen(fd, 511) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    int e = errno;
    close(fd);
    return app_err_set(err, APP_ERR_IO, "listen %s:%d: %s", srv->address, srv->opt.port,
                       strerror(e));
  }
  srv->listen_fd = fd;
  srv->port = ntohs(sa.sin_port);
  return APP_OK;
}

static void server_free(struct server *srv)
{
  size_t i;
  for (i = 0; i < srv->nroutes; i++)
    free(srv->routes[i].name);
  free(srv->routes);
  for (i = 0; i < srv->nraws; i++) {
    free(srv->raws[i].method);
    free(srv->raws[i].prefix);
  }
  free(srv->raws);
  if (srv->listen_fd >= 0)
    close(srv->listen_fd);
  pthread_cond_destroy(&srv->cv);
  pthread_mutex_destroy(&srv->mu);
  free(srv);
}

enum app_result server_start(const struct server_options *opt, struct server **out,
                             struct app_err *err)
{
  struct server *srv;
  pthread_condattr_t ca;
  enum app_result r;
  const char *addr = opt->address && *opt->address ? opt->address : "127.0.0.1";
  unsigned flags;

  if (opt->port < 0 || opt->port > 65535 || opt->max_connections < 1 ||
      opt->connection_timeout_s < 1 || opt->max_request_bytes < 1)
    return app_err_set(err, APP_ERR_CONFIG,
                       "server options out of range (port %d, max connections %d, timeout %d s, "
                       "max request %zu bytes)",
                       opt->port, opt->max_connections, opt->connection_timeout_s,
                       opt->max_request_bytes);
  if (strlen(addr) >= INET_ADDRSTRLEN)
    return app_err_set(err, APP_ERR_CONFIG, "listen address '%s' is not an IPv4 address", addr);

  srv = xcalloc(1, sizeof *srv);
  srv->opt = *opt;
  srv->listen_fd = -1;
  memcpy(srv->address, addr, strlen(addr) + 1);
  srv->opt.address = srv->address;
  if (!srv->opt.thread_stack_bytes)
    srv->opt.thread_stack_bytes = SERVER_DEFAULT_STACK;
  pthread_mutex_init(&srv->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&srv->cv, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&srv->requests, 0);
  atomic_init(&srv->invocations, 0);
  atomic_init(&srv->failures, 0);
  atomic_init(&srv->rejected, 0);
  atomic_init(&srv->peak_body, 0);

  r = open_listener(srv, err);
  if (r != APP_OK) {
    server_free(srv);
    return r;
  }

  /* one thread per connection, polled with poll() (select() would break
   * past FD_SETSIZE); ITC so that MHD_quiesce_daemon works */
  flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
          MHD_USE_ITC | MHD_USE_ERROR_LOG;
  srv->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
      MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned int)srv->opt.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned int)srv->opt.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)CONNECTION_MEMORY, MHD_OPTION_THREAD_STACK_SIZE, srv->opt.thread_stack_bytes,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_END);
  if (!srv->daemon) {
    server_free(srv);
    return app_err_set(err, APP_ERR_HTTP,
                       "libmicrohttpd could not start on %s:%d (MHD_start_daemon failed; see the "
                       "libmicrohttpd log line above)",
                       addr, opt->port);
  }
  *out = srv;
  return APP_OK;
}

int server_port(const struct server *srv)
{
  return srv->port;
}

enum app_result server_register(struct server *srv, const char *function, server_invoke_fn fn,
                                void *ctx, struct app_err *err)
{
  enum app_result r = APP_OK;
  pthread_mutex_lock(&srv->mu);
  if (srv->open) {
    r = app_err_set(err, APP_ERR_CONFIG, "register %s: the server is already open", function);
  } else if (!function || !*function || strchr(function, '/') || !fn) {
    r = app_err_set(err, APP_ERR_CONFIG, "register: invalid function name or handler");
  } else if (find_route(srv, function) || !strcmp(function, "__noop") ||
             !strcmp(function, "__sleep")) {
    r = app_err_set(err, APP_ERR_CONFIG, "register %s: the route already exists", function);
  } else {
    srv->routes = xrealloc(srv->routes, (srv->nroutes + 1) * sizeof *srv->routes);
    srv->routes[srv->nroutes].name = xstrdup(function);
    srv->routes[srv->nroutes].fn = fn;
    srv->routes[srv->nroutes].ctx = ctx;
    srv->nroutes++;
  }
  pthread_mutex_unlock(&srv->mu);
  return r;
}

enum app_result server_register_raw(struct server *srv, const char *method, const char *prefix,
                                    server_raw_fn fn, void *ctx, struct app_err *err)
{
  enum app_result r = APP_OK;
  size_t i;
  const char *c;

  if (!method || !*method || !prefix || prefix[0] != '/' || !fn)
    return app_err_set(err, APP_ERR_CONFIG,
                       "register_raw: method, a prefix starting with '/' "
                       "and a handler are required");
  for (c = method; *c; c++)
    if (*c < 'A' || *c > 'Z')
      return app_err_set(err, APP_ERR_CONFIG, "register_raw: method '%s' must be upper case",
                         method);
  pthread_mutex_lock(&srv->mu);
  if (srv->open) {
    r = app_err_set(err, APP_ERR_CONFIG, "register_raw %s %s: the server is already open", method,
                    prefix);
    goto out;
  }
  for (i = 0; i < srv->nraws; i++) {
    if (!strcmp(srv->raws[i].method, method) && !strcmp(srv->raws[i].prefix, prefix)) {
      r = app_err_set(err, APP_ERR_CONFIG, "register_raw %s %s: already registered", method,
                      prefix);
      goto out;
    }
  }
  srv->raws = xrealloc(srv->raws, (srv->nraws + 1) * sizeof *srv->raws);
  srv->raws[srv->nraws].method = xstrdup(method);
  srv->raws[srv->nraws].prefix = xstrdup(prefix);
  srv->raws[srv->nraws].prefix_len = strlen(prefix);
  srv->raws[srv->nraws].fn = fn;
  srv->raws[srv->nraws].ctx = ctx;
  srv->nraws++;
out:
  pthread_mutex_unlock(&srv->mu);
  return r;
}

void server_open(struct server *srv)
{
  pthread_mutex_lock(&srv->mu);
  srv->open = true;
  pthread_cond_broadcast(&srv->cv);
  pthread_mutex_unlock(&srv->mu);
}

void server_signals_init(void)
{
  sigset_t set;
  struct sigaction sa;

  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
}

enum server_stop server_wait(void)
{
  sigset_t set;
  int sig = 0;

  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  for (;;) {
    if (sigwait(&set, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      LOG_INFO("%s: draining, then exiting 200 so the host restarts the handler",
               restart_requested ? "restart requested" : "received SIGHUP");
      return SERVER_STOP_RESTART;
    }
    LOG_INFO("received %s: draining, then exiting", sig == SIGINT ? "SIGINT" : "SIGTERM");
    return sig == SIGINT ? SERVER_STOP_INTERRUPT : SERVER_STOP_TERMINATE;
  }
}

void server_request_restart(void)
{
  restart_requested = 1;
  kill(getpid(), SIGHUP);
}

enum app_result server_drain(struct server *srv, int grace_ms, struct app_err *err)
{
  struct timespec ts;
  size_t left;
  int64_t start = now_ms();

  pthread_mutex_lock(&srv->mu);
  srv->draining = true;
  pthread_cond_broadcast(&srv->cv);
  pthread_mutex_unlock(&srv->mu);

  if (srv->daemon && srv->listen_fd >= 0 && !srv->quiesced) {
    /* stop accepting: MHD stops polling the socket, and shutdown() makes
     * the kernel refuse new connections at once (queued ones are reset)
     * while the descriptor stays valid until MHD_stop_daemon */
    if (MHD_quiesce_daemon(srv->daemon) == MHD_INVALID_SOCKET)
      LOG_WARN("libmicrohttpd: MHD_quiesce_daemon failed; new connections are refused at stop");
    shutdown(srv->listen_fd, SHUT_RDWR);
    srv->quiesced = true;
  }

  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += grace_ms / 1000;
  ts.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&srv->mu);
  while (srv->in_flight > 0) {
    if (pthread_cond_timedwait(&srv->cv, &srv->mu, &ts) == ETIMEDOUT)
      break;
  }
  left = srv->in_flight;
  srv->abandoned = left > 0;
  pthread_mutex_unlock(&srv->mu);

  if (left)
    return app_err_set(err, APP_ERR_TIMEOUT,
                       "%zu request(s) still running after the %d ms grace period "
                       "(CDC_SHUTDOWN_GRACE_MS)",
                       left, grace_ms);
  if (srv->daemon) {
    MHD_stop_daemon(srv->daemon); /* closes idle keep-alive connections */
    srv->daemon = NULL;
  }
  LOG_INFO("drained in %lld ms", (long long)(now_ms() - start));
  return APP_OK;
}

void server_destroy(struct server *srv)
{
  if (!srv)
    return;
  /* not drained yet (e.g. a start-up failure after server_start): drain
   * briefly, which also answers invocations waiting for server_open */
  if (srv->daemon && !srv->abandoned && server_drain(srv, DESTROY_GRACE_MS, NULL) != APP_OK)
    LOG_WARN("server_destroy: requests still running after %d ms; not freeing the server",
             DESTROY_GRACE_MS);
  if (srv->abandoned)
    return; /* connection threads still use srv: the process is exiting */
  server_free(srv);
}

void server_get_stats(struct server *srv, struct server_stats *out)
{
  pthread_mutex_lock(&srv->mu);
  out->in_flight = srv->in_flight;
  out->peak_in_flight = srv->peak_in_flight;
  pthread_mutex_unlock(&srv->mu);
  out->requests = atomic_load(&srv->requests);
  out->invocations = atomic_load(&srv->invocations);
  out->failures = atomic_load(&srv->failures);
  out->rejected_413 = atomic_load(&srv->rejected);
  out->peak_body_bytes = atomic_load(&srv->peak_body);
}

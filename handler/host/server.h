/* server.h - the HTTP server the Functions host talks to (libmicrohttpd).
 *
 * Model (docs/architecture.md): one listening socket on 127.0.0.1, an
 * internal accept thread and one thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION). Handlers run on the connection's thread
 * and may block on Redis or SQL for as long as they need: other connections
 * are never held up behind a slow one. The host keeps its connections alive
 * and opens one per concurrent invocation.
 *
 * Routes:
 *   GET|HEAD /            readiness: 200 {"status":"ready"} at once, also
 *                         before the functions are registered
 *   POST /<FunctionName>  a function registered with server_register
 *   POST /__noop          the minimal invocation response, body not parsed
 *                         (the benchmark's HTTP floor)
 *   POST /__sleep?ms=N    test hook (only with test_hooks): sleep, answer
 *   <METHOD> <prefix>...  raw routes (server_register_raw), e.g. GET /api/
 *   anything else         404, or 405 with Allow when only the method is wrong
 * Every answer is JSON with Content-Type: application/json and
 * Content-Length. A request body larger than max_request_bytes gets 413:
 * at once when Content-Length says so, and as soon as a chunked body passes
 * the cap (the rest is not read into memory; the connection is closed).
 *
 * Every request runs with the log context (log.h) set to its
 * X-Azure-Functions-InvocationId and function name.
 *
 * Hardening (docs/operations.md, "The HTTP front"):
 *   - deadlines that trickling bytes do not reset: a new connection has
 *     header_timeout_s for its request line and headers, a body
 *     body_timeout_s after its headers, a kept-alive connection
 *     connection_timeout_s after its last answer; then its socket is shut
 *   - at most max_pending connections that have not yet sent a request's
 *     headers; a new one closes the oldest, so the host's connections
 *     (which send their headers at once) always find room
 *   - routing and limits before any body byte is buffered; all bodies
 *     together within max_buffered_bytes (a declared length is reserved
 *     exactly), over it 503 with Retry-After: 1
 *   - a request line with NUL or control bytes: 400
 *   - answers with status 500 and above never carry the internal detail
 *     (hosts, ports, library messages): the detail is logged with a
 *     correlation id, the body names only the id
 *   - refused, cut and aborted connections are logged as one summary line
 *     per 10 s, not one line each
 *   - at drain, requests whose body has not fully arrived are abandoned
 *     (the host retries them); only running handlers are waited for */
#ifndef D365CDC_SERVER_H
#define D365CDC_SERVER_H

#include "common/buf.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;

struct server_options {
  const char *address;       /* IPv4 address to bind; NULL: 127.0.0.1 */
  int port;                  /* 0: any free port (see server_port) */
  int max_connections;       /* connections served at once (CDC_MAX_CONNECTIONS) */
  int connection_timeout_s;  /* idle keep-alive timeout (CDC_CONNECTION_TIMEOUT_SECONDS) */
  size_t max_request_bytes;  /* body cap (CDC_MAX_REQUEST_BYTES) */
  size_t max_response_bytes; /* cap of a handler's response body; 0: max_request_bytes */
  size_t thread_stack_bytes; /* per connection thread; 0: SERVER_DEFAULT_STACK */
  int ready_wait_ms;         /* how long an invocation waits for server_open; 0: 60 s */
  bool test_hooks;           /* enable POST /__sleep (CDC_TEST_HOOKS=1) */
  int header_timeout_s;      /* request line + headers of a new connection; 0: 10 s */
  int body_timeout_s;        /* whole body after the headers; 0: 60 s */
  int max_pending;           /* connections before their first headers; 0: half */
  size_t max_buffered_bytes; /* all bodies held at once; 0: 4 x max_request_bytes */
};

#define SERVER_DEFAULT_STACK (512 * 1024)

/* One invocation: POST /<FunctionName>. Borrowed, valid during the call. */
struct server_invocation {
  const char *function;      /* the registered name */
  const char *invocation_id; /* X-Azure-Functions-InvocationId, "" when absent */
  char *body;                /* request body, NUL-terminated; "" when empty. The request's
                                own buffer: the handler may modify it in place (parse it
                                without a copy); it is freed after the call */
  size_t body_len;
};

/* A function handler. On APP_OK, out_json holds the response JSON (the
 * server answers 200; an empty out_json becomes the minimal response, never
 * an empty body). On failure err says why: the server answers a non-2xx
 * status chosen from the code (INPUT 400, LIMIT 413, UNSUPPORTED 422,
 * TIMEOUT 504, REDIS/SQL/HTTP/TLS 503, others 500) with a JSON body, and
 * writes the reason to stderr (the host drops Logs of failed invocations).
 * Runs on a connection thread, concurrently with other invocations. */
typedef enum app_result (*server_invoke_fn)(void *ctx, const struct server_invocation *inv,
                                            struct buf *out_json, struct app_err *err);

/* A raw HTTP request (forwarded by the host with enableForwardingHttpRequest).
 * Borrowed, valid during the call. */
struct server_raw_request {
  const char *method;        /* "GET" */
  const char *path;          /* percent-decoded path, e.g. "/api/data/v9.2/accounts(1)" */
  const char *raw_path;      /* the path as sent, not decoded */
  const char *query;         /* raw query string without '?', "" when none */
  const char *invocation_id; /* X-Azure-Functions-InvocationId, "" when absent */
  const char *body;          /* NUL-terminated; "" when empty */
  size_t body_len;
  void *conn; /* private: for server_raw_header */
};

#define SERVER_RAW_MAX_HEADERS 16

struct server_raw_response {
  int status;         /* default 200 */
  char *content_type; /* NULL: application/json */
  struct buf body;    /* capped at max_response_bytes */
  size_t nheaders;
  char *header_names[SERVER_RAW_MAX_HEADERS];
  char *header_values[SERVER_RAW_MAX_HEADERS];
};

/* A raw route handler: fill res (status, body, headers). APP_OK sends res;
 * a failure answers like a failed invocation (status from the code). */
typedef enum app_result (*server_raw_fn)(void *ctx, const struct server_raw_request *req,
                                         struct server_raw_response *res, struct app_err *err);

/* Value of request header `name` (case-insensitive), or NULL. Borrowed,
 * valid during the handler call. */
const char *server_raw_header(const struct server_raw_request *req, const char *name);

/* Set the Content-Type of the response (copied). APP_ERR_INPUT on CR/LF. */
APP_NODISCARD enum app_result server_raw_content_type(struct server_raw_response *res,
                                                      const char *value, struct app_err *err);

/* Add a response header (copied).
 *   APP_ERR_INPUT  CR, LF or ':' where they do not belong (header injection)
 *   APP_ERR_LIMIT  more than SERVER_RAW_MAX_HEADERS */
APP_NODISCARD enum app_result server_raw_add_header(struct server_raw_response *res,
                                                    const char *name, const char *value,
                                                    struct app_err *err);

/* Bind, listen and start answering (GET / works as soon as this returns).
 * *out: caller frees with server_destroy (after server_drain).
 *   APP_ERR_CONFIG  bad options (address, limits)
 *   APP_ERR_IO      socket/bind/listen failed; the message keeps errno's
 *                   text, e.g. "bind 127.0.0.1:8081: Address already in use"
 *   APP_ERR_HTTP    libmicrohttpd refused to start */
APP_NODISCARD enum app_result server_start(const struct server_options *opt, struct server **out,
                                           struct app_err *err);

/* The port actually bound (useful with port 0). */
int server_port(const struct server *srv);

/* Route POST /<function> (exact, case-sensitive) to fn(ctx, ...). ctx is
 * borrowed and must outlive the server. Call before server_open.
 *   APP_ERR_CONFIG  empty or duplicate name, or the server is already open */
APP_NODISCARD enum app_result server_register(struct server *srv, const char *function,
                                              server_invoke_fn fn, void *ctx, struct app_err *err);

/* Route `method` requests whose path starts with `prefix` (e.g. "/api/") to
 * fn; HEAD is served by a GET route. The longest matching prefix wins;
 * function routes win over raw routes. Call before server_open.
 *   APP_ERR_CONFIG  bad method/prefix (must start with '/'), duplicate, or open */
APP_NODISCARD enum app_result server_register_raw(struct server *srv, const char *method,
                                                  const char *prefix, server_raw_fn fn, void *ctx,
                                                  struct app_err *err);

/* Registration is complete: invocations that arrived early (they wait up to
 * ready_wait_ms, then get 503) and later ones are dispatched. */
void server_open(struct server *srv);

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread and every thread
 * it creates afterwards (call first thing in main, before any thread
 * exists), and ignore SIGPIPE (a peer closing a socket must not kill us). */
void server_signals_init(void);

enum server_stop {
  SERVER_STOP_TERMINATE = 1, /* SIGTERM: drain, exit 200 (main.c says why) */
  SERVER_STOP_RESTART,       /* SIGHUP or server_request_restart: drain, exit 200 */
  SERVER_STOP_INTERRUPT      /* SIGINT (Ctrl-C): drain, exit 0 */
};

/* Wait for SIGTERM/SIGINT/SIGHUP (blocked by server_signals_init) or
 * server_request_restart, and log which. */
enum server_stop server_wait(void);

/* Ask for a clean restart: server_wait returns SERVER_STOP_RESTART, and main
 * exits 200, which the host treats as an intentional restart (protocol doc
 * 1.4). Async-signal-safe; callable from any thread. */
void server_request_restart(void);

/* Stop accepting (the listening socket is quiesced), answer 503 with
 * Connection: close to new requests on open keep-alive connections, and wait
 * up to grace_ms for requests in flight to finish; then stop the daemon.
 *   APP_ERR_TIMEOUT  requests were still running after grace_ms; the daemon
 *                    is left running (their threads cannot be stopped) and
 *                    server_destroy will not wait for it: exit the process.
 *                    Calling server_drain again waits again. */
APP_NODISCARD enum app_result server_drain(struct server *srv, int grace_ms, struct app_err *err);

/* Free the server. If server_drain was not called, drain first for up to
 * 2 s (requests waiting for server_open get 503). After a drain that timed
 * out, nothing is freed (threads still use it). NULL-safe. */
void server_destroy(struct server *srv);

struct server_stats {
  uint64_t requests;      /* requests started */
  uint64_t invocations;   /* function invocations dispatched */
  uint64_t failures;      /* invocations answered non-2xx by their handler */
  uint64_t rejected_413;  /* bodies refused for size */
  size_t in_flight;       /* requests started and not completed */
  size_t peak_in_flight;  /* most requests in flight at once */
  size_t peak_body_bytes; /* largest request body held in memory */
  size_t buffered_bytes;  /* body memory reserved now (CDC_MAX_BUFFERED_BYTES) */
  size_t peak_buffered;   /* most body memory reserved at once */
  uint64_t over_budget;   /* requests answered 503 for the body budget */
  uint64_t cut_slow;      /* connections closed for a header/body deadline */
  uint64_t evicted;       /* connections closed for the pending cap */
  uint64_t bad_request;   /* request lines refused (control bytes, bad length) */
};

void server_get_stats(struct server *srv, struct server_stats *out);

#endif

/* app.c - the functions this handler serves, wired to the pipeline.
 *
 *   serviceBusTrigger functions  -> pipeline (decode -> map -> sinks)
 *   httpTrigger, route data/...  -> read API (readapi.h) over the Redis replica
 *   httpTrigger, route cdc/metrics -> counters (metrics.h), JSON or Prometheus,
 *                                   with the shared metrics (ops/opsstore.h)
 *   serviceBusTrigger on .../$DeadLetterQueue -> dead-letter audit (ops/deadletter.h)
 *   httpTrigger, route cdc/admin/... -> replay admin API (ops/admin.h)
 * and, when host.json sets enableProxyingHttpRequest (or the older
 * enableForwardingHttpRequest), the same read API, metrics and admin API as
 * raw routes at each function's public path (routePrefix + route: GET
 * /api/data/v9.2/..., GET /api/cdc/metrics, GET|POST|DELETE /api/cdc/admin/...
 * with the shipped host.json). */
#include "app.h"

#include "common/arena.h"
#include "host/envelope.h"
#include "common/log.h"
#include "map/mapping.h"
#include "common/metrics.h"
#include "pipeline.h"
#include "read/readapi.h"
#include "redis/redis_sink.h"
#include "read/schema.h"
#include "map/sink.h"
#include "ops/admin.h"
#include "ops/deadletter.h"
#include "ops/opsstore.h"
#include "sql/sql_sink.h"
#include "replica/replica.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum route_kind {
  ROUTE_CHANGES = 1,
  ROUTE_READ,
  ROUTE_METRICS,
  ROUTE_DEADLETTER,
  ROUTE_ADMIN,
  ROUTE_RECONCILE,
  ROUTE_REPLICA
};

struct app_fn {
  struct app *app;
  const struct function_def *fn;
  enum route_kind kind;
};

struct app {
  const struct app_config *cfg;
  const struct function_set *fns;
  struct app_fn *routes; /* one per function, indexed like fns->fns */
  struct map_config *map;
  struct redis_sink *redis;
  struct sql_sink *sql;
  struct schema *schema;
  struct pipeline *pipeline;
  struct readapi *readapi;
  struct opsstore *ops;
  struct redis_pool *ops_pool; /* the Redis pool when Redis is a target, else NULL */
  struct replica *replica;     /* NULL without DataverseUrl */
};

/* Everything one invocation decodes lives in one arena. The envelope is
 * parsed in place in the request's buffer (envelope_parse_mutable): the
 * arena gets copies of escaped strings (a batch's double-encoded Data once),
 * the nodes, and the documents; each message is parsed and mapped in a
 * scratch arena (pipeline.c). The cap (kept from when everything was
 * copied, about 6x the request plus nodes) bounds what one request can
 * take. */
static size_t arena_cap(size_t max_request)
{
  if (max_request > (SIZE_MAX - (4u << 20)) / 8)
    return SIZE_MAX;
  return max_request * 8 + (4u << 20);
}

static struct envelope_limits limits(const struct app_config *cfg)
{
  struct envelope_limits lim;
  lim.max_message_bytes = cfg->max_message_bytes;
  lim.max_batch_messages = cfg->max_batch_messages;
  lim.max_json_depth = cfg->max_json_depth;
  return lim;
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- change functions ----------------------------------------------------- */

/* One event line per change invocation (docs/operations.md, KQL): counts,
 * latency, and the freshness of the newest applied change. */
static void log_invocation(enum app_result r, const struct pipeline_result *pr,
                           const struct invocation *inv, int64_t latency_ms)
{
  struct buf f;
  if (LOG_LEVEL_INFO < log_min_level)
    return;
  buf_init(&f, 1024);
  log_field_str(&f, "event", "invocation");
  log_field_str(&f, "outcome", r == APP_OK ? "ok" : "failed");
  if (inv && inv->nmessages == 1)
    log_field_str(&f, "mid", inv->messages[0].message_id);
  log_field_int(&f, "messages", (long long)pr->messages);
  log_field_int(&f, "applied", (long long)pr->applied);
  log_field_int(&f, "stale", (long long)pr->stale);
  log_field_int(&f, "skipped", (long long)pr->skipped);
  log_field_int(&f, "poison", (long long)pr->poison);
  log_field_int(&f, "retries", (long long)pr->retries);
  log_field_int(&f, "latency_ms", latency_ms);
  if (r == APP_OK && pr->applied && pr->newest_op_ms > 0)
    log_field_int(&f, "fresh_ms", wall_ms() - pr->newest_op_ms);
  log_event(LOG_LEVEL_INFO, f.data, "invocation %s: %zu messages, %zu applied",
            r == APP_OK ? "ok" : "failed", pr->messages, pr->applied);
  buf_cleanup(&f);
}

static enum app_result invoke_deadletter(void *ctx, const struct server_invocation *si,
                                         struct buf *out, struct app_err *err)
{
  struct app_fn *af = ctx;
  struct app *app = af->app;
  const struct app_config *cfg = app->cfg;
  struct envelope_limits lim = limits(cfg);
  struct envelope_response resp;
  struct invocation *inv = NULL;
  struct deadletter_target t;
  struct arena a;
  size_t recorded = 0;
  enum app_result r;

  arena_init(&a, arena_cap(cfg->max_request_bytes));
  envelope_response_init(&resp, cfg->max_request_bytes);
  r = envelope_parse_mutable(&a, si->body, si->body_len, af->fn, &lim, &inv, err);
  if (r == APP_OK) {
    t.cfg = cfg;
    t.pool = app->ops_pool;
    t.sql = app->ops_pool ? NULL : app->sql;
    r = deadletter_invoke(&t, &a, inv, af->fn->name, si->invocation_id, &recorded, err);
  }
  if (r == APP_OK &&
      envelope_response_add_log(&resp, "dead-lettered messages recorded=%zu", recorded) != APP_OK)
    r = APP_OK; /* a dropped log line is not a failure */
  if (r == APP_OK) {
    r = envelope_response_write(&resp, out);
    if (r != APP_OK)
      app_err_set(err, r, "the response passed the response size limit");
  }
  envelope_response_cleanup(&resp);
  arena_cleanup(&a);
  return r;
}

static enum app_result invoke_changes(void *ctx, const struct server_invocation *si,
                                      struct buf *out, struct app_err *err)
{
  struct app_fn *af = ctx;
  struct app *app = af->app;
  const struct app_config *cfg = app->cfg;
  struct envelope_limits lim = limits(cfg);
  struct envelope_response resp;
  struct invocation *inv = NULL;
  struct pipeline_result pr;
  struct arena a;
  enum app_result r;

  int64_t t0 = wall_ms();

  metrics_add(M_INVOCATIONS, 1);
  arena_init(&a, arena_cap(cfg->max_request_bytes));
  envelope_response_init(&resp, cfg->max_request_bytes);
  memset(&pr, 0, sizeof pr);
  r = envelope_parse_mutable(&a, si->body, si->body_len, af->fn, &lim, &inv, err);
  if (r != APP_OK)
    goto out;
  if (inv->shadowed)
    LOG_WARN("Metadata %s came from the message body, not Service Bus (string dataType); use "
             "\"dataType\": \"binary\"",
             inv->shadowed);
  r = pipeline_run(app->pipeline, &a, af->fn, inv, si->invocation_id, &resp, &pr, err);
  if (r != APP_OK)
    goto out;
  r = envelope_response_add_log(&resp,
                                "messages=%zu applied=%zu stale=%zu skipped=%zu poison=%zu "
                                "recorded=%zu reread=%zu ties=%zu round_trips=%zu retries=%zu",
                                pr.messages, pr.applied, pr.stale, pr.skipped, pr.poison,
                                pr.poison_recorded, pr.reread, pr.ties, pr.round_trips, pr.retries);
  if (r != APP_OK)
    r = APP_OK; /* a dropped log line is not a failure */
  LOG_DEBUG("messages=%zu applied=%zu stale=%zu skipped=%zu poison=%zu round_trips=%zu",
            pr.messages, pr.applied, pr.stale, pr.skipped, pr.poison, pr.round_trips);
  r = envelope_response_write(&resp, out);
  if (r != APP_OK)
    app_err_set(err, r, "the response passed the response size limit");
out:
  if (r == APP_OK)
    metrics_set(M_LAST_SUCCESS_UNIX_MS, (uint64_t)wall_ms());
  else
    metrics_add(M_INVOCATIONS_FAILED, 1);
  log_invocation(r, &pr, inv, wall_ms() - t0);
  envelope_response_cleanup(&resp);
  arena_cleanup(&a);
  return r;
}

/* ---- replica: timer and admin --------------------------------------------- */

static bool query_has(const char *query, const char *name, const char *value);

/* timerTrigger Reconcile: work until CDC_RECONCILE_BUDGET_SECONDS, answer
 * with the run's summary in Logs. The timer's Data (Schedule,
 * ScheduleStatus, IsPastDue) changes nothing: every run goes on from the
 * saved state. */
static enum app_result invoke_reconcile(void *ctx, const struct server_invocation *si,
                                        struct buf *out, struct app_err *err)
{
  struct app_fn *af = ctx;
  struct app *app = af->app;
  struct envelope_limits lim = limits(app->cfg);
  struct envelope_response resp;
  struct invocation *inv = NULL;
  struct replica_report rep;
  struct buf line;
  struct arena a;
  enum app_result r;

  arena_init(&a, arena_cap(app->cfg->max_request_bytes));
  envelope_response_init(&resp, app->cfg->max_request_bytes);
  buf_init(&line, 4096);
  r = envelope_parse_mutable(&a, si->body, si->body_len, af->fn, &lim, &inv, err);
  if (r == APP_OK && !app->replica)
    r = app_err_set(err, APP_ERR_CONFIG, "function %s: DataverseUrl is not set", af->fn->name);
  if (r == APP_OK) {
    r = replica_run(app->replica, NULL, sink_now_ms() + app->cfg->reconcile_budget_s * 1000LL, &rep,
                    err);
    if (replica_report_text(&rep, &line) == APP_OK) {
      LOG_INFO("Reconcile: %s", line.data);
      if (r == APP_OK && envelope_response_add_log(&resp, "%s", line.data) != APP_OK)
        LOG_WARN("Reconcile: the Logs line was dropped");
    }
  }
  if (r == APP_OK) {
    r = envelope_response_write(&resp, out);
    if (r != APP_OK)
      app_err_set(err, r, "the response passed the response size limit");
  }
  buf_cleanup(&line);
  envelope_response_cleanup(&resp);
  arena_cleanup(&a);
  return r;
}

/* The admin function (route cdc/replica): GET shows every table's state;
 * POST ?action=restart&table=T starts T's snapshot again; POST ?action=run
 * [&table=T] runs now (the timer's work, within the same budget). */
static enum app_result replica_admin(struct app *app, struct arena *a, const char *method,
                                     const char *query, int *status, struct buf *body)
{
  struct app_err e;
  enum app_result r;
  const char *table = NULL;
  const char *p = query ? strstr(query, "table=") : NULL;
  *status = 200;
  if (!app->replica) {
    *status = 404;
    return buf_append_str(body, "{\"error\":{\"code\":\"NotConfigured\",\"message\":"
                                "\"DataverseUrl is not set\"}}");
  }
  if (p && (p == query || p[-1] == '&')) {
    size_t n = strcspn(p + 6, "&");
    table = arena_strndup(a, p + 6, n);
  }
  if (!strcasecmp(method, "POST") && query_has(query, "action", "restart") && table)
    r = replica_restart(app->replica, table, &e);
  else if (!strcasecmp(method, "POST") && query_has(query, "action", "run")) {
    struct replica_report rep;
    r = replica_run(app->replica, table, sink_now_ms() + app->cfg->reconcile_budget_s * 1000LL,
                    &rep, &e);
    if (r == APP_OK) {
      APP_RETURN_IF_FAILED(buf_append_str(body, "{\"run\":\""));
      APP_RETURN_IF_FAILED(replica_report_text(&rep, body));
      APP_RETURN_IF_FAILED(buf_append_str(body, "\",\"state\":"));
    }
  } else if (strcasecmp(method, "GET") != 0) {
    *status = 400;
    return buf_append_str(body, "{\"error\":{\"code\":\"BadRequest\",\"message\":"
                                "\"POST ?action=restart&table=<logical name> or ?action=run\"}}");
  } else
    r = APP_OK;
  if (r == APP_OK)
    r = replica_state_json(app->replica, body, &e);
  if (r == APP_OK && query_has(query, "action", "run"))
    r = buf_append_char(body, '}');
  if (r != APP_OK) {
    buf_reset(body);
    *status = r == APP_ERR_NOTFOUND ? 404 : 502;
    APP_RETURN_IF_FAILED(buf_append_str(body, "{\"error\":{\"code\":\""));
    APP_RETURN_IF_FAILED(buf_append_str(body, app_result_str(r)));
    APP_RETURN_IF_FAILED(buf_append_str(body, "\",\"message\":"));
    APP_RETURN_IF_FAILED(buf_append_json_str(body, e.msg, strlen(e.msg)));
    APP_RETURN_IF_FAILED(buf_append_str(body, "}}"));
  }
  return APP_OK;
}

/* ---- HTTP functions (default envelope) --------------------------------------- */

static const char *header_or_null(const struct envelope_http *h, const char *name)
{
  const char *v = envelope_http_header(h, name);
  return v && *v ? v : NULL;
}

/* scheme://host of the public URL for @odata.context, from the Host
 * header and the scheme of X-Forwarded-Proto (the App Service front end
 * terminates TLS and says so there), else `scheme` (NULL: http, as under
 * a local func start). NULL when host is unusable. */
static const char *public_base_url(struct arena *a, const char *host, const char *forwarded_proto,
                                   const char *scheme)
{
  size_t hl, sl;
  char *base;
  if (forwarded_proto && !strncasecmp(forwarded_proto, "https", 5) &&
      (forwarded_proto[5] == '\0' || forwarded_proto[5] == ','))
    scheme = "https";
  else if (!scheme)
    scheme = "http";
  if (!host || !*host || strpbrk(host, "/\\\"?#@ "))
    return NULL;
  hl = strlen(host);
  sl = strlen(scheme);
  base = arena_alloc(a, sl + 3 + hl + 1);
  if (!base)
    return NULL;
  memcpy(base, scheme, sl);
  memcpy(base + sl, "://", 3);
  memcpy(base + sl + 3, host, hl + 1);
  return base;
}

/* The envelope's Url is the host's view (scheme://host/path?query); behind
 * the front end its scheme may be http, so X-Forwarded-Proto wins. */
static const char *envelope_base_url(struct arena *a, const char *base,
                                     const struct envelope_http *h)
{
  const char *proto = header_or_null(h, "X-Forwarded-Proto");
  const char *sep;
  char scheme[8];
  if (!base || !proto || !(sep = strstr(base, "://")) || (size_t)(sep - base) >= sizeof scheme)
    return base;
  memcpy(scheme, base, (size_t)(sep - base));
  scheme[sep - base] = '\0';
  return public_base_url(a, sep + 3, proto, scheme);
}

/* Is there a query parameter name=value (exact, after percent-decoding of
 * the few bytes that matter: the forwarding host re-encodes the query)? */
static bool query_has(const char *query, const char *name, const char *value)
{
  size_t nl = strlen(name), vl = strlen(value);
  const char *p = query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    if (len == nl + 1 + vl && !strncmp(p, name, nl) && p[nl] == '=' &&
        !strncasecmp(p + nl + 1, value, vl))
      return true;
    p = amp ? amp + 1 : NULL;
  }
  return false;
}

/* JSON by default; Prometheus text for ?format=prometheus. This process's
 * counters, then the shared ones (every instance; opsstore.h): in JSON as
 * the member "shared". */
static enum app_result metrics_answer(struct app *app, const char *query, struct buf *body,
                                      const char **ctype)
{
  if (query_has(query, "format", "prometheus")) {
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    APP_RETURN_IF_FAILED(metrics_prometheus(body));
    return opsstore_render(app->ops, true, body);
  }
  *ctype = "application/json";
  APP_RETURN_IF_FAILED(metrics_json(body));
  if (body->len && body->data[body->len - 1] == '}') {
    body->len--; /* reopen the object */
    APP_RETURN_IF_FAILED(buf_append_str(body, ",\"shared\":"));
    APP_RETURN_IF_FAILED(opsstore_render(app->ops, false, body));
    return buf_append_char(body, '}');
  }
  return APP_OK;
}

static enum app_result invoke_http(void *ctx, const struct server_invocation *si, struct buf *out,
                                   struct app_err *err)
{
  struct app_fn *af = ctx;
  struct app *app = af->app;
  const struct app_config *cfg = app->cfg;
  const struct function_binding *res_binding = functions_output(af->fn, "http");
  struct envelope_limits lim = limits(cfg);
  struct envelope_response resp;
  struct invocation *inv = NULL;
  struct arena a;
  enum app_result r;
  const char *base = NULL, *path = NULL, *query = NULL;

  arena_init(&a, arena_cap(cfg->max_request_bytes));
  envelope_response_init(&resp, cfg->max_request_bytes);
  r = envelope_parse_mutable(&a, si->body, si->body_len, af->fn, &lim, &inv, err);
  if (r != APP_OK)
    goto out;
  if (!res_binding) {
    r = app_err_set(err, APP_ERR_UNSUPPORTED, "function %s has no http output binding",
                    af->fn->name);
    goto out;
  }
  if (readapi_split_url(&a, inv->http.url ? inv->http.url : "/", &base, &path, &query) != APP_OK) {
    r = app_err_set(err, APP_ERR_LIMIT, "request URL too large");
    goto out;
  }
  if (af->kind == ROUTE_REPLICA) {
    static const char *headers[] = {"Content-Type", "application/json"};
    struct buf body;
    int status = 200;
    buf_init(&body, cfg->max_request_bytes);
    r = replica_admin(app, &a, inv->http.method ? inv->http.method : "GET", query, &status, &body);
    if (r == APP_OK)
      r = envelope_response_add_http(&resp, res_binding->name, status, headers, 1,
                                     body.data ? body.data : "", body.len, err);
    buf_cleanup(&body);
  } else if (af->kind == ROUTE_METRICS) {
    static const char *hdr_names[] = {"Content-Type"};
    const char *headers[2];
    struct buf body;
    buf_init(&body, cfg->max_request_bytes);
    r = metrics_answer(app, query, &body, &headers[1]);
    headers[0] = hdr_names[0];
    if (r == APP_OK)
      r = envelope_response_add_http(&resp, res_binding->name, 200, headers, 1,
                                     body.data ? body.data : "", body.len, err);
    buf_cleanup(&body);
  } else if (af->kind == ROUTE_ADMIN) {
    static const char *hdrs[] = {"Content-Type", "application/json"};
    struct admin_target t;
    struct buf body;
    int status = 200;
    t.cfg = cfg;
    t.pool = app->ops_pool;
    t.pipeline = app->pipeline;
    t.ops = app->ops;
    buf_init(&body, cfg->max_request_bytes);
    r = admin_handle(&t, &a, inv->http.method ? inv->http.method : "GET", path, query,
                     si->invocation_id, &status, &body);
    if (r == APP_OK)
      r = envelope_response_add_http(&resp, res_binding->name, status, hdrs, 1,
                                     body.data ? body.data : "", body.len, err);
    else
      app_err_set(err, r, "the admin answer passed the size limit");
    buf_cleanup(&body);
  } else {
    struct readapi_request rq;
    struct readapi_response rs;
    const char **headers;
    size_t i;

    memset(&rq, 0, sizeof rq);
    rq.method = inv->http.method ? inv->http.method : "GET";
    rq.path = path;
    rq.query = query;
    rq.prefer = header_or_null(&inv->http, "Prefer");
    rq.if_none_match = header_or_null(&inv->http, "If-None-Match");
    rq.base_url = envelope_base_url(&a, base, &inv->http);
    r = readapi_handle(app->readapi, &a, &rq, cfg->max_request_bytes, &rs);
    if (r == APP_OK) {
      headers = arena_alloc(&a, (rs.nheaders + 1) * 2 * sizeof *headers);
      if (!headers) {
        r = app_err_set(err, APP_ERR_LIMIT, "out of request memory");
      } else {
        headers[0] = "Content-Type";
        headers[1] = "application/json; odata.metadata=minimal";
        for (i = 0; i < rs.nheaders; i++) {
          headers[2 + 2 * i] = rs.header_names[i];
          headers[3 + 2 * i] = rs.header_values[i];
        }
        r = envelope_response_add_http(&resp, res_binding->name, rs.status, headers,
                                       rs.nheaders + 1, rs.body.data ? rs.body.data : "",
                                       rs.body.len, err);
      }
    } else {
      app_err_set(err, r, "the read API answer passed the size limit");
    }
    buf_cleanup(&rs.body);
  }
  if (r != APP_OK)
    goto out;
  r = envelope_response_write(&resp, out);
  if (r != APP_OK)
    app_err_set(err, r, "the response passed the response size limit");
out:
  envelope_response_cleanup(&resp);
  arena_cleanup(&a);
  return r;
}

/* ---- raw routes (enableProxyingHttpRequest / enableForwardingHttpRequest) ---- */

static enum app_result raw_read(void *ctx, const struct server_raw_request *req,
                                struct server_raw_response *res, struct app_err *err)
{
  struct app *app = ctx;
  struct readapi_request rq;
  struct readapi_response rs;
  struct arena a;
  enum app_result r;
  size_t i;

  arena_init(&a, arena_cap(app->cfg->max_request_bytes));
  memset(&rq, 0, sizeof rq);
  rq.method = req->method;
  rq.path = req->raw_path;
  rq.query = req->query && *req->query ? req->query : NULL;
  rq.prefer = server_raw_header(req, "Prefer");
  rq.if_none_match = server_raw_header(req, "If-None-Match");
  rq.base_url = public_base_url(&a, server_raw_header(req, "Host"),
                                server_raw_header(req, "X-Forwarded-Proto"), NULL);
  r = readapi_handle(app->readapi, &a, &rq, app->cfg->max_request_bytes, &rs);
  if (r != APP_OK) {
    app_err_set(err, r, "the read API answer passed the size limit");
    goto out;
  }
  res->status = rs.status;
  r = server_raw_content_type(res, "application/json; odata.metadata=minimal", err);
  for (i = 0; r == APP_OK && i < rs.nheaders; i++)
    r = server_raw_add_header(res, rs.header_names[i], rs.header_values[i], err);
  if (r == APP_OK && rs.body.len)
    r = buf_append(&res->body, rs.body.data, rs.body.len);
out:
  buf_cleanup(&rs.body);
  arena_cleanup(&a);
  return r;
}

static enum app_result raw_metrics(void *ctx, const struct server_raw_request *req,
                                   struct server_raw_response *res, struct app_err *err)
{
  const char *ctype = NULL;
  enum app_result r;
  r = metrics_answer(ctx, req->query, &res->body, &ctype);
  if (r == APP_OK)
    r = server_raw_content_type(res, ctype, err);
  res->status = 200;
  return r;
}

static enum app_result raw_admin(void *ctx, const struct server_raw_request *req,
                                 struct server_raw_response *res, struct app_err *err)
{
  struct app *app = ctx;
  struct admin_target t;
  struct arena a;
  enum app_result r;
  t.cfg = app->cfg;
  t.pool = app->ops_pool;
  t.pipeline = app->pipeline;
  t.ops = app->ops;
  arena_init(&a, arena_cap(app->cfg->max_request_bytes));
  r = admin_handle(&t, &a, req->method, req->raw_path,
                   req->query && *req->query ? req->query : NULL, req->invocation_id, &res->status,
                   &res->body);
  if (r != APP_OK)
    app_err_set(err, r, "the admin answer passed the size limit");
  arena_cleanup(&a);
  return r;
}

/* the replica admin function, forwarded as the client sent it */
static enum app_result raw_replica(void *ctx, const struct server_raw_request *req,
                                   struct server_raw_response *res, struct app_err *err)
{
  struct app *app = ctx;
  struct arena a;
  enum app_result r;
  arena_init(&a, 1u << 20);
  r = replica_admin(app, &a, req->method, req->query, &res->status, &res->body);
  if (r != APP_OK)
    app_err_set(err, r, "the replica state passed the size limit");
  arena_cleanup(&a);
  return r;
}

/* ---- life cycle ------------------------------------------------------------- */

static bool route_is(const char *route, const char *prefix)
{
  return route && !strncasecmp(route, prefix, strlen(prefix));
}

enum app_result app_create(const struct app_config *cfg, const struct function_set *fns,
                           struct app **out, struct app_err *err)
{
  struct app *app;
  size_t i;
  enum app_result r;

  app = xcalloc(1, sizeof *app);
  app->cfg = cfg;
  app->fns = fns;
  app->routes = xcalloc(fns->n ? fns->n : 1, sizeof *app->routes);

  r = map_config_load_settings(cfg, NULL, &app->map, err);
  if (r != APP_OK)
    goto fail;
  LOG_INFO("mapping: %s", map_config_source(app->map));

  /* the Redis sink holds the pool the read API and the poison stream use;
   * creating it does no network I/O */
  r = redis_sink_create(cfg, &app->redis, err);
  if (r != APP_OK)
    goto fail;
  app->schema = schema_create(redis_sink_pool(app->redis), redis_sink_prefix(app->redis), 0);
  if (cfg->mode == CFG_MODE_DIRECT &&
      (cfg->target == CFG_TARGET_SQL || cfg->target == CFG_TARGET_BOTH)) {
    struct sql_sink_options so;
    char *drv;
    sql_sink_options_from_config(cfg, &so);
    drv = sql_sink_app_driver(fns->app_root, so.odbc_driver, so.dialect);
    if (drv) {
      LOG_INFO("SQL: ODBC driver %s", drv);
      so.odbc_driver = drv;
    }
    r = sql_sink_create(&so, &app->sql, err);
    free(drv);
    if (r != APP_OK)
      goto fail;
    LOG_INFO("SQL target: %s", sql_sink_redacted(app->sql));
  }
  r = pipeline_create(cfg, app->map, app->redis, app->sql, app->schema, &app->pipeline, err);
  if (r != APP_OK)
    goto fail;
  r = readapi_create(cfg, app->map, app->schema, &app->readapi, err);
  if (r != APP_OK)
    goto fail;
  if (cfg->mode == CFG_MODE_DIRECT &&
      (cfg->target == CFG_TARGET_REDIS || cfg->target == CFG_TARGET_BOTH))
    app->ops_pool = redis_sink_pool(app->redis);
  r = opsstore_create(cfg, app->ops_pool, &app->ops, err);
  if (r != APP_OK)
    goto fail;
  r = replica_create(cfg, app->map, app->redis, app->sql, &app->replica, err);
  if (r != APP_OK)
    goto fail;

  for (i = 0; i < fns->n; i++) {
    const struct function_def *fn = &fns->fns[i];
    app->routes[i].app = app;
    app->routes[i].fn = fn;
    if (fn->trigger == FN_TRIGGER_SERVICE_BUS)
      app->routes[i].kind = fn->deadletter ? ROUTE_DEADLETTER : ROUTE_CHANGES;
    else if (fn->trigger == FN_TRIGGER_HTTP)
      app->routes[i].kind = route_is(fn->http_route, "cdc/metrics")   ? ROUTE_METRICS
                            : route_is(fn->http_route, "cdc/admin")   ? ROUTE_ADMIN
                            : route_is(fn->http_route, "cdc/replica") ? ROUTE_REPLICA
                                                                      : ROUTE_READ;
    else if (!strcasecmp(fn->trigger_type, "timerTrigger"))
      app->routes[i].kind = ROUTE_RECONCILE;
    if (cfg->mode == CFG_MODE_BINDINGS && fn->trigger == FN_TRIGGER_SERVICE_BUS &&
        !fn->deadletter && !functions_output(fn, "redis") && !functions_output(fn, "sql")) {
      r = app_err_set(err, APP_ERR_CONFIG,
                      "CDC_MODE=bindings, but function %s (%s) has no redis or sql output binding",
                      fn->name, fn->path);
      goto fail;
    }
  }
  *out = app;
  return APP_OK;
fail:
  app_destroy(app);
  return r;
}

/* Forwarded (proxied) requests keep their public path: each enabled HTTP
 * function's "/<routePrefix>/<route>" (functions_public_path) is served
 * directly, as the read API or the metrics by the function's route. */
static enum app_result register_raw_routes(struct app *app, struct server *srv, struct app_err *err)
{
  size_t i, j;
  for (i = 0; i < app->fns->n; i++) {
    const struct function_def *fn = &app->fns->fns[i];
    char *path;
    bool dup = false;
    enum app_result r;
    if (fn->disabled || fn->trigger != FN_TRIGGER_HTTP)
      continue;
    path = functions_public_path(app->fns, fn);
    for (j = 0; j < i && !dup; j++) {
      const struct function_def *g = &app->fns->fns[j];
      char *other;
      if (g->disabled || g->trigger != FN_TRIGGER_HTTP)
        continue;
      other = functions_public_path(app->fns, g);
      dup = !strcmp(other, path);
      free(other);
    }
    if (dup) {
      free(path);
      continue;
    }
    if (app->routes[i].kind == ROUTE_ADMIN) {
      static const char *const methods[] = {"GET", "POST", "DELETE"};
      size_t m;
      r = APP_OK;
      for (m = 0; r == APP_OK && m < sizeof methods / sizeof methods[0]; m++)
        r = server_register_raw(srv, methods[m], path, raw_admin, app, err);
    } else if (app->routes[i].kind == ROUTE_REPLICA) {
      r = server_register_raw(srv, "GET", path, raw_replica, app, err);
      if (r == APP_OK)
        r = server_register_raw(srv, "POST", path, raw_replica, app, err);
    } else {
      r = server_register_raw(srv, "GET", path,
                              app->routes[i].kind == ROUTE_METRICS ? raw_metrics : raw_read, app,
                              err);
    }
    if (r == APP_OK)
      LOG_INFO("%s: serving GET %s... directly (%s)", fn->name, path,
               app->fns->proxying ? "enableProxyingHttpRequest" : "enableForwardingHttpRequest");
    free(path);
    APP_RETURN_IF_FAILED(r);
  }
  return APP_OK;
}

enum app_result app_register(struct app *app, struct server *srv, struct app_err *err)
{
  size_t i;
  for (i = 0; i < app->fns->n; i++) {
    const struct function_def *fn = &app->fns->fns[i];
    server_invoke_fn h = NULL;
    if (fn->disabled) {
      LOG_INFO("function %s is disabled in %s; not served", fn->name, fn->path);
      continue;
    }
    if (fn->trigger == FN_TRIGGER_SERVICE_BUS)
      h = fn->deadletter ? invoke_deadletter : invoke_changes;
    else if (fn->trigger == FN_TRIGGER_HTTP)
      h = invoke_http;
    else if (app->routes[i].kind == ROUTE_RECONCILE)
      h = invoke_reconcile;
    if (!h) {
      LOG_WARN("function %s has a %s trigger, which this handler does not serve", fn->name,
               fn->trigger_type);
      continue;
    }
    APP_RETURN_IF_FAILED(server_register(srv, fn->name, h, &app->routes[i], err));
  }
  if (app->fns->forwarding)
    APP_RETURN_IF_FAILED(register_raw_routes(app, srv, err));
  return APP_OK;
}

void app_destroy(struct app *app)
{
  if (!app)
    return;
  replica_destroy(app->replica);
  opsstore_destroy(app->ops); /* its last flush uses the Redis pool */
  readapi_destroy(app->readapi);
  pipeline_destroy(app->pipeline);
  schema_destroy(app->schema);
  sql_sink_destroy(app->sql);
  redis_sink_destroy(app->redis);
  map_config_free(app->map);
  free(app->routes);
  free(app);
}

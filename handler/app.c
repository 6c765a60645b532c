/* app.c - interim application: envelope in, per-message log lines out.
 *
 * The lead replaces the bodies of invoke_messages/invoke_http with the
 * pipeline (decode -> map -> sinks); the create/register/destroy frame and
 * the per-invocation arena stay. */
#include "app.h"

#include "arena.h"
#include "envelope.h"
#include "log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct app_fn {
  struct app *app;
  const struct function_def *fn;
};

struct app {
  const struct app_config *cfg;
  const struct function_set *fns;
  struct app_fn *routes; /* one per function, indexed like fns->fns */
};

/* Everything one invocation decodes lives in one arena. The envelope is
 * copied once by the JSON reader, a double-encoded batch is decoded a
 * second time, and base64 bodies once more: about 3x the request, plus
 * nodes. The cap bounds what one request can take. */
static size_t arena_cap(size_t max_request)
{
  if (max_request > (SIZE_MAX - (1u << 20)) / 4)
    return SIZE_MAX;
  return max_request * 4 + (1u << 20);
}

static struct envelope_limits limits(const struct app_config *cfg)
{
  struct envelope_limits lim;
  lim.max_message_bytes = cfg->max_message_bytes;
  lim.max_batch_messages = cfg->max_batch_messages;
  lim.max_json_depth = cfg->max_json_depth;
  return lim;
}

static enum app_result invoke_messages(void *ctx, const struct server_invocation *si,
                                       struct buf *out, struct app_err *err)
{
  struct app_fn *af = ctx;
  const struct app_config *cfg = af->app->cfg;
  struct envelope_limits lim = limits(cfg);
  struct envelope_response resp;
  struct invocation *inv = NULL;
  struct arena a;
  enum app_result r;
  size_t i;

  arena_init(&a, arena_cap(cfg->max_request_bytes));
  envelope_response_init(&resp, cfg->max_request_bytes);
  r = envelope_parse(&a, si->body, si->body_len, af->fn, &lim, &inv, err);
  if (r != APP_OK)
    goto out;
  if (inv->shadowed)
    LOG_WARN("Metadata %s came from the message body, not Service Bus (string dataType); use "
             "\"dataType\": \"binary\"",
             inv->shadowed);
  for (i = 0; i < inv->nmessages; i++) {
    const struct envelope_message *m = &inv->messages[i];
    r = envelope_response_add_log(&resp, "message %zu/%zu id=%s size=%zu content-type=%s%s", i + 1,
                                  inv->nmessages, m->message_id ? m->message_id : "-", m->body_len,
                                  m->content_type ? m->content_type : "-",
                                  m->oversize ? " oversize" : "");
    if (r != APP_OK) {
      app_err_set(err, r, "the response Logs passed the response size limit");
      goto out;
    }
  }
  LOG_INFO("%zu message(s) received%s", inv->nmessages, inv->batch ? " in a batch" : "");
  r = envelope_response_write(&resp, out);
  if (r != APP_OK)
    app_err_set(err, r, "the response passed the response size limit");
out:
  envelope_response_cleanup(&resp);
  arena_cleanup(&a);
  return r;
}

static enum app_result invoke_http(void *ctx, const struct server_invocation *si, struct buf *out,
                                   struct app_err *err)
{
  static const char *const headers[] = {"Content-Type", "application/json"};
  static const char body[] =
      "{\"error\":\"not_implemented\",\"message\":\"the read API is not implemented yet\"}";
  struct app_fn *af = ctx;
  const struct app_config *cfg = af->app->cfg;
  const struct function_binding *res = functions_output(af->fn, "http");
  struct envelope_limits lim = limits(cfg);
  struct envelope_response resp;
  struct invocation *inv = NULL;
  struct arena a;
  enum app_result r;

  arena_init(&a, arena_cap(cfg->max_request_bytes));
  envelope_response_init(&resp, cfg->max_request_bytes);
  r = envelope_parse(&a, si->body, si->body_len, af->fn, &lim, &inv, err);
  if (r != APP_OK)
    goto out;
  if (!res) {
    r = app_err_set(err, APP_ERR_UNSUPPORTED, "function %s has no http output binding",
                    af->fn->name);
    goto out;
  }
  r = envelope_response_add_http(&resp, res->name, 501, headers, 1, body, sizeof body - 1, err);
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

enum app_result app_create(const struct app_config *cfg, const struct function_set *fns,
                           struct app **out, struct app_err *err)
{
  struct app *app;
  size_t i;
  (void)err;

  app = xcalloc(1, sizeof *app);
  app->cfg = cfg;
  app->fns = fns;
  app->routes = xcalloc(fns->n ? fns->n : 1, sizeof *app->routes);
  for (i = 0; i < fns->n; i++) {
    app->routes[i].app = app;
    app->routes[i].fn = &fns->fns[i];
  }
  *out = app;
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
      h = invoke_messages;
    else if (fn->trigger == FN_TRIGGER_HTTP)
      h = invoke_http;
    if (!h) {
      LOG_WARN("function %s has a %s trigger, which this handler does not serve", fn->name,
               fn->trigger_type);
      continue;
    }
    APP_RETURN_IF_FAILED(server_register(srv, fn->name, h, &app->routes[i], err));
  }
  return APP_OK;
}

void app_destroy(struct app *app)
{
  if (!app)
    return;
  free(app->routes);
  free(app);
}

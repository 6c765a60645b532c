/* main.c - the custom handler process.
 *
 *   settings -> log level -> function discovery -> listen (readiness answers
 *   from here on) -> app create/register -> open -> wait for a signal ->
 *   drain -> exit code
 *
 * Exit codes (protocol doc 1.4): 0 after SIGINT (Ctrl-C) and a clean drain;
 * 200 after SIGTERM, SIGHUP or server_request_restart (the host restarts us
 * without counting an error); 1 for any fatal error (bad settings, bad
 * function.json, port in use) and when in-flight requests outlive
 * CDC_SHUTDOWN_GRACE_MS. Never 0 on a failure: the host does not restart a
 * handler that exits 0.
 *
 * Why SIGTERM gives 200, not 0: a SIGTERM (from an operator, a supervisor,
 * the platform stopping the instance) does not tell us whether the host
 * lives on. If it does, exit 0 would leave it without a worker: every later
 * invocation fails with connection refused and Service Bus dead-letters the
 * messages after maxDeliveryCount (tests/e2e/pipeline_sigterm.sh saw 129 of
 * 200). 200 gets the handler started again, uncounted; when the host is
 * going away too, the code changes nothing. */
#include "app.h"
#include "common/config.h"
#include "host/functions.h"
#include "common/log.h"
#include "host/server.h"
#include "map/sink.h"
#include "common/platform.h"
#include "redis/redis_entra.h"

#include <curl/curl.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* config_dump writes name=value lines; log them a few per line so that no
 * line passes log.c's message size. */
static void log_settings(const struct app_config *cfg)
{
  struct buf b;
  char line[900];
  size_t used = 0;
  const char *p, *nl;

  buf_init(&b, 0);
  if (config_dump(cfg, &b) != APP_OK || !b.data) {
    buf_cleanup(&b);
    return;
  }
  for (p = b.data; *p; p = nl + 1) {
    size_t n;
    nl = strchr(p, '\n');
    if (!nl)
      break;
    n = (size_t)(nl - p);
    if (n >= sizeof line - 2)
      n = sizeof line - 2;
    if (used && used + n + 1 >= sizeof line) {
      LOG_INFO("settings: %s", line);
      used = 0;
    }
    if (used)
      line[used++] = ' ';
    memcpy(line + used, p, n);
    used += n;
    line[used] = '\0';
  }
  if (used)
    LOG_INFO("settings: %s", line);
  buf_cleanup(&b);
}

static void log_functions(const struct function_set *fns)
{
  size_t i, k;
  LOG_INFO("app root %s: %zu function(s), host.json %s, HTTP requests %s, routePrefix '%s'",
           fns->app_root, fns->n, fns->has_host_json ? "found" : "absent",
           fns->proxying     ? "proxied (enableProxyingHttpRequest)"
           : fns->forwarding ? "forwarded (enableForwardingHttpRequest)"
                             : "in the envelope",
           fns->route_prefix);
  for (i = 0; i < fns->n; i++) {
    const struct function_def *fn = &fns->fns[i];
    char outs[256];
    size_t used = 0;
    outs[0] = '\0';
    for (k = 0; k < fn->noutputs && used < sizeof outs; k++) {
      int w = snprintf(outs + used, sizeof outs - used, "%s%s:%s", k ? "," : "",
                       fn->outputs[k].name, fn->outputs[k].type);
      if (w < 0)
        break;
      used += (size_t)w;
    }
    LOG_INFO("function %s: %s '%s' dataType=%s cardinality=%s outputs=[%s]%s", fn->name,
             fn->trigger_type, fn->trigger_name, functions_data_type_name(fn->data_type),
             functions_cardinality_name(fn->cardinality), outs, fn->disabled ? " (disabled)" : "");
  }
  if (fns->n == 0)
    LOG_WARN("no functions found under %s (expected <Name>/function.json folders)", fns->app_root);
}

/* Keep freed memory for the next invocation instead of giving it back to
 * the kernel after each one. A batch of 1000 needs a few MB (its request
 * body, arenas, the Redis pipeline); with glibc's defaults the worker
 * threads' malloc arenas were trimmed after some batches and faulted back
 * in on the next: 3.8 page faults per change in about half of the handler
 * processes, 31 instead of 19 us of CPU per change (docs/operations.md).
 * Now: no trimming below 16 MiB of free memory at the top of an arena, so
 * a batch's memory stays; two malloc arenas, so that what stays is not
 * multiplied by the number of threads that ran a batch (peak RSS of
 * `make bench` 31-34 MB with the default arena count, 30 MB with two, the
 * read API unchanged); allocations above 32 MiB mapped one by one. Must run
 * before any thread exists. GLIBC_TUNABLES, when set, is left to decide. */
static void malloc_keep_memory(void)
{
  if (getenv("GLIBC_TUNABLES"))
    return;
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
}

/* One line: glibc, the libraries and their versions, what was loaded. */
static void log_platform(FILE *to)
{
  struct buf b;
  buf_init(&b, 8192);
  if (platform_describe(&b) == APP_OK && b.data) {
    if (to)
      printf("%s\n", b.data);
    else
      LOG_INFO("platform: %s", b.data);
  }
  buf_cleanup(&b);
}

int main(int argc, char **argv)
{
  struct app_config cfg;
  struct app_err err;
  struct function_set *fns = NULL;
  struct server *srv = NULL;
  struct app *app = NULL;
  struct server_options opt;
  char *root = NULL;
  const char *hooks = getenv("CDC_TEST_HOOKS");
  enum server_stop stop;
  int code = 1;

  /* the host passes host.json's customHandler.description.arguments (none
   * by default); only --version means something to us */
  if (argc > 1 && !strcmp(argv[1], "--version")) {
    log_platform(stdout);
    return 0;
  }
  /* before any thread exists, so that every thread inherits the mask and
   * only server_wait receives the signals */
  server_signals_init();
  malloc_keep_memory();
  app_err_clear(&err);
  /* once, before any thread: the token provider's requests (identity/) */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    LOG_ERROR("cannot start: libcurl initialisation failed");
    return 1;
  }

  if (config_load(&cfg, NULL, &err) != APP_OK) {
    LOG_ERROR("cannot start: %s", err.msg);
    return 1;
  }
  log_set_level(cfg.log_level);

  if (functions_app_root(cfg.app_root, &root, &err) != APP_OK ||
      functions_load(root, &fns, &err) != APP_OK) {
    LOG_ERROR("cannot start: %s", err.msg);
    goto out;
  }

  memset(&opt, 0, sizeof opt);
  opt.address = cfg.listen_address;
  opt.port = cfg.port;
  opt.max_connections = cfg.max_connections;
  opt.connection_timeout_s = cfg.connection_timeout_s;
  opt.max_request_bytes = cfg.max_request_bytes;
  opt.header_timeout_s = cfg.header_timeout_s;
  opt.body_timeout_s = cfg.body_timeout_s;
  opt.max_pending = cfg.max_pending_connections;
  opt.max_buffered_bytes = cfg.max_buffered_bytes;
  opt.test_hooks = hooks && !strcmp(hooks, "1");
  if (server_start(&opt, &srv, &err) != APP_OK) {
    LOG_ERROR("cannot start: %s", err.msg);
    goto out;
  }
  LOG_INFO("listening on http://%s:%d (pid %d)%s", cfg.listen_address, server_port(srv),
           (int)getpid(), opt.test_hooks ? " with test hooks" : "");
  log_platform(NULL);
  log_settings(&cfg);
  log_functions(fns);

  if (app_create(&cfg, fns, &app, &err) != APP_OK || app_register(app, srv, &err) != APP_OK) {
    LOG_ERROR("cannot start: %s", err.msg);
    goto out;
  }
  server_open(srv);
  LOG_INFO("ready");

  stop = server_wait();
  /* in-flight writes stop retrying: they fail at once and Service Bus
   * redelivers their messages, instead of holding the drain */
  sink_cancel_all();
  if (server_drain(srv, cfg.shutdown_grace_ms, &err) != APP_OK) {
    /* handlers are still running on their threads: freeing what they use
     * would crash them, so leave at once */
    code = stop == SERVER_STOP_RESTART ? 200 : 1; /* counted: the drain failed */
    LOG_ERROR("shutdown: %s; exiting %d", err.msg, code);
    fflush(NULL);
    _exit(code);
  }
  code = stop == SERVER_STOP_INTERRUPT ? 0 : 200;
  LOG_INFO("stopped; exiting %d", code);

out:
  server_destroy(srv);
  app_destroy(app);
  redis_entra_shutdown(); /* after every Redis connection is closed */
  functions_destroy(fns);
  free(root);
  config_cleanup(&cfg);
  curl_global_cleanup();
  return code;
}

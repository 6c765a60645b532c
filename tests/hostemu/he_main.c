/* he_main.c - hostemu: an Azure Functions host emulator for custom handlers.
 *
 * Command line, defaults taken from host.json / function.json the way the
 * host takes them, then one he_run(). See docs/host-emulator.md. */
#include "common/json.h"
#include "he_app.h"
#include "he_env.h"
#include "he_msg.h"
#include "he_proc.h"
#include "he_run.h"
#include "he_stats.h"
#include "he_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#define DEFAULT_HOST_VERSION "4.1036.1.23224"
#define MAX_LIST             256

static const char usage_text[] =
    "usage: hostemu --script-root DIR [options]     launch the handler like the Functions host\n"
    "       hostemu --connect PORT [options]        use a handler that is already running\n"
    "\n"
    "Service Bus messages\n"
    "  --messages PATH          a body file or a folder of them (repeatable); PATH.props.json\n"
    "                           holds MessageId, ContentType, ... and ApplicationProperties\n"
    "  --function NAME          the serviceBusTrigger function (default: the only one)\n"
    "                           (with --connect, __noop: the handler's empty function)\n"
    "  --single | --batch N     one message per invocation, or up to N (default: cardinality,\n"
    "                           batch size from extensions.serviceBus.maxMessageBatchSize|1000)\n"
    "  --trigger-name NAME      binding name without a script root (default msg)\n"
    "  --data-type binary|string  without a script root (default binary)\n"
    "  --max-delivery-count N   dead-letter after N deliveries (default 10)\n"
    "  --redelivery-delay-ms MS delay before an abandoned message is redelivered (default 0)\n"
    "  --deadletter DIR         write <MessageId>.body and <MessageId>.json there\n"
    "  --no-deadletter-function do not deliver dead-lettered messages to the function\n"
    "                           on <subscription>/$DeadLetterQueue (default: when the\n"
    "                           app has one, it consumes the dead-letter queue)\n"
    "  --ttl SECONDS|max        message TimeToLive for ExpiresAt (default 1209600 = 14 days)\n"
    "  --max-message-bytes N    largest body file accepted (default 104857600)\n"
    "  --namespace NS           Service Bus namespace in the Client metadata object\n"
    "\n"
    "HTTP trigger\n"
    "  --http METHOD PATH       e.g. --http GET '/api/data/v9.2/accounts(1)?$select=name'\n"
    "  --timer FUNCTION         one timerTrigger invocation of FUNCTION (prints its status and\n"
    "                           Logs); the host's TimerInfo envelope, schedule period 5 min\n"
    "  --header 'Name: value'   request header (repeatable)\n"
    "  --body TEXT | --body-file FILE\n"
    "  --forward                send the raw request (enableForwardingHttpRequest)\n"
    "  --base-url URL           public URL of the app (default http://localhost:7071)\n"
    "\n"
    "Load\n"
    "  --concurrency N          invocations in flight (default maxConcurrentCalls|16 x cores)\n"
    "  --repeat N               deliver the message set N times (default 1)\n"
    "  --duration S             keep delivering for S seconds\n"
    "  --rate R                 at most R deliveries per second\n"
    "  --vary                   fresh record id and later OperationCreatedOn per copy\n"
    "  --timeout-ms MS          functionTimeout (default host.json functionTimeout|300000)\n"
    "  --chunk-size N           request body chunk size (default 4096; 0 = one chunk)\n"
    "  --max-request-bytes N    largest request built (default 536870912)\n"
    "  --max-response-bytes N   largest response accepted (default 67108864)\n"
    "\n"
    "Handler process\n"
    "  --env NAME=VALUE         extra environment variable (repeatable)\n"
    "  --settings FILE          local.settings.json to load (default <root>/local.settings.json)\n"
    "  --no-settings            do not load local.settings.json\n"
    "  --init-timeout S         readiness budget (default initializationTimeout|30)\n"
    "  --handler-log FILE       write the handler's stdout/stderr lines there (default stderr)\n"
    "  --stop                   SIGTERM the handler at the end and report its exit code\n"
    "  --stop-timeout S         wait that long after SIGTERM (default 10)\n"
    "\n"
    "Output\n"
    "  --json FILE              machine-readable summary\n"
    "  --host-version V         X-Azure-Functions-HostVersion (default " DEFAULT_HOST_VERSION ")\n"
    "  --quiet | --verbose      less / more progress on stderr\n"
    "\n"
    "Exit status: 0 every message settled, 1 failures (dead-lettered, unsettled, handler given\n"
    "up or not ready), 2 usage or configuration errors.\n";

struct opts {
  const char *script_root;
  int connect_port;
  const char *function;
  const char *messages[MAX_LIST];
  size_t n_messages;
  bool single;
  int64_t batch;
  const char *trigger_name;
  const char *data_type;
  int64_t max_delivery;
  int64_t redelivery_delay_ms;
  const char *deadletter;
  bool no_dlq_function;
  int64_t ttl_ms;
  int64_t max_message;
  const char *http_method, *http_path;
  const char *timer; /* --timer FUNCTION */
  const char *headers[MAX_LIST];
  size_t n_headers;
  const char *body, *body_file;
  bool forward;
  const char *base_url;
  int64_t concurrency;
  int64_t repeat;
  double duration, rate;
  bool vary;
  int64_t timeout_ms;
  bool timeout_set;
  int64_t chunk_size;
  char *env[MAX_LIST];
  size_t n_env;
  const char *settings;
  bool no_settings;
  double init_timeout;
  const char *handler_log;
  bool stop;
  double stop_timeout;
  const char *json;
  const char *host_version;
  const char *sb_namespace;
  bool quiet;
  int verbose;
  int64_t max_request, max_response;
};

static int usage_error(const char *fmt, ...) APP_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hostemu: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(hostemu --help for usage)\n");
  return 2;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
  char *end = NULL;
  double v;
  if (!s || !*s)
    return false;
  errno = 0;
  v = strtod(s, &end);
  if (errno || *end || v < min || v > max)
    return false;
  *out = v;
  return true;
}

/* Returns 0 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct opts *o)
{
  int i;
  memset(o, 0, sizeof *o);
  o->max_delivery = 10;
  o->ttl_ms = 1209600000LL;
  o->max_message = 100LL * 1024 * 1024;
  o->base_url = "http://localhost:7071";
  o->repeat = -1;
  o->chunk_size = 4096;
  o->stop_timeout = 10;
  o->host_version = DEFAULT_HOST_VERSION;
  o->sb_namespace = "hostemu.servicebus.windows.net";
  o->max_request = 512LL * 1024 * 1024;
  o->max_response = 64LL * 1024 * 1024;
  o->batch = -1;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                                     \
  do {                                                                                             \
    if (!v)                                                                                        \
      return usage_error("%s needs a value", a);                                                   \
    i++;                                                                                           \
  } while (0)
#define INT(field, min, max)                                                                       \
  do {                                                                                             \
    NEED();                                                                                        \
    if (!he_parse_i64(v, (min), (max), &o->field))                                                 \
      return usage_error("invalid value for %s", a);                                               \
  } while (0)
#define DBL(field, min, max)                                                                       \
  do {                                                                                             \
    NEED();                                                                                        \
    if (!parse_double(v, (min), (max), &o->field))                                                 \
      return usage_error("invalid value for %s", a);                                               \
  } while (0)
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage_text, stdout);
      return -1;
    } else if (!strcmp(a, "--script-root")) {
      NEED();
      o->script_root = v;
    } else if (!strcmp(a, "--connect")) {
      int64_t p;
      NEED();
      if (!he_parse_i64(v, 1, 65535, &p))
        return usage_error("invalid port for --connect: %s", v);
      o->connect_port = (int)p;
    } else if (!strcmp(a, "--function")) {
      NEED();
      o->function = v;
    } else if (!strcmp(a, "--messages")) {
      NEED();
      if (o->n_messages == MAX_LIST)
        return usage_error("too many %s", a);
      o->messages[o->n_messages++] = v;
    } else if (!strcmp(a, "--single")) {
      o->single = true;
    } else if (!strcmp(a, "--batch")) {
      INT(batch, 1, 4096);
    } else if (!strcmp(a, "--trigger-name")) {
      NEED();
      o->trigger_name = v;
    } else if (!strcmp(a, "--data-type")) {
      NEED();
      if (strcasecmp(v, "binary") && strcasecmp(v, "string"))
        return usage_error("--data-type must be binary or string, not %s", v);
      o->data_type = v;
    } else if (!strcmp(a, "--max-delivery-count")) {
      INT(max_delivery, 1, 2000);
    } else if (!strcmp(a, "--redelivery-delay-ms")) {
      INT(redelivery_delay_ms, 0, 3600000);
    } else if (!strcmp(a, "--no-deadletter-function")) {
      o->no_dlq_function = true;
    } else if (!strcmp(a, "--deadletter")) {
      NEED();
      o->deadletter = v;
    } else if (!strcmp(a, "--ttl")) {
      int64_t secs;
      NEED();
      if (!strcasecmp(v, "max"))
        o->ttl_ms = -1;
      else if (he_parse_i64(v, 1, 922337203685LL, &secs))
        o->ttl_ms = secs * 1000;
      else
        return usage_error("invalid --ttl %s (seconds or max)", v);
    } else if (!strcmp(a, "--max-message-bytes")) {
      INT(max_message, 1, 1LL << 32);
    } else if (!strcmp(a, "--max-request-bytes")) {
      INT(max_request, 1024, 1LL << 34);
    } else if (!strcmp(a, "--max-response-bytes")) {
      INT(max_response, 1024, 1LL << 32);
    } else if (!strcmp(a, "--timer")) {
      NEED();
      o->timer = v;
    } else if (!strcmp(a, "--http")) {
      if (i + 2 >= argc)
        return usage_error("%s needs METHOD and PATH", a);
      o->http_method = argv[++i];
      o->http_path = argv[++i];
    } else if (!strcmp(a, "--header")) {
      NEED();
      if (o->n_headers == MAX_LIST || !strchr(v, ':'))
        return usage_error("invalid --header %s (want 'Name: value')", v);
      o->headers[o->n_headers++] = v;
    } else if (!strcmp(a, "--body")) {
      NEED();
      o->body = v;
    } else if (!strcmp(a, "--body-file")) {
      NEED();
      o->body_file = v;
    } else if (!strcmp(a, "--forward")) {
      o->forward = true;
    } else if (!strcmp(a, "--base-url")) {
      NEED();
      o->base_url = v;
    } else if (!strcmp(a, "--concurrency")) {
      INT(concurrency, 1, 100000);
    } else if (!strcmp(a, "--repeat")) {
      INT(repeat, 1, INT64_MAX / 2);
    } else if (!strcmp(a, "--duration")) {
      DBL(duration, 0.001, 86400 * 365);
    } else if (!strcmp(a, "--rate")) {
      DBL(rate, 0.001, 1e9);
    } else if (!strcmp(a, "--vary")) {
      o->vary = true;
    } else if (!strcmp(a, "--timeout-ms")) {
      INT(timeout_ms, 1, INT64_MAX / 2000000);
      o->timeout_set = true;
    } else if (!strcmp(a, "--chunk-size")) {
      INT(chunk_size, 0, 1LL << 30);
    } else if (!strcmp(a, "--env")) {
      NEED();
      if (o->n_env == MAX_LIST || !strchr(v, '=') || v[0] == '=')
        return usage_error("invalid --env %s (want NAME=VALUE)", v);
      o->env[o->n_env++] = (char *)v;
    } else if (!strcmp(a, "--settings")) {
      NEED();
      o->settings = v;
    } else if (!strcmp(a, "--no-settings")) {
      o->no_settings = true;
    } else if (!strcmp(a, "--init-timeout")) {
      DBL(init_timeout, 0.001, 86400);
    } else if (!strcmp(a, "--handler-log")) {
      NEED();
      o->handler_log = v;
    } else if (!strcmp(a, "--stop")) {
      o->stop = true;
    } else if (!strcmp(a, "--stop-timeout")) {
      DBL(stop_timeout, 0, 3600);
    } else if (!strcmp(a, "--json")) {
      NEED();
      o->json = v;
    } else if (!strcmp(a, "--host-version")) {
      NEED();
      o->host_version = v;
    } else if (!strcmp(a, "--namespace")) {
      NEED();
      o->sb_namespace = v;
    } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
      o->quiet = true;
    } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
      o->verbose++;
    } else {
      return usage_error("unknown option %s", a);
    }
#undef NEED
#undef INT
#undef DBL
  }
  if (!o->script_root && !o->connect_port)
    return usage_error("%s", "give --script-root DIR or --connect PORT");
  if (o->http_method && o->n_messages)
    return usage_error("%s", "--http and --messages do not go together");
  if (o->timer && (o->http_method || o->n_messages))
    return usage_error("%s", "--timer goes with neither --http nor --messages");
  if (!o->http_method && !o->n_messages && !o->timer)
    return usage_error("%s",
                       "nothing to deliver: give --messages PATH, --http METHOD PATH or --timer "
                       "FUNCTION");
  if (o->single && o->batch > 0)
    return usage_error("%s", "--single and --batch do not go together");
  if (o->http_method && o->http_path[0] != '/')
    return usage_error("the --http path must start with '/': %s", o->http_path);
  if (o->body && o->body_file)
    return usage_error("%s", "--body and --body-file do not go together");
  return 0;
}

/* local.settings.json "Values" as NAME=VALUE strings (caller frees). */
static enum app_result load_settings(const char *path, char ***out, size_t *out_n,
                                     struct app_err *err)
{
  enum app_result r;
  struct arena a;
  struct json *root = NULL;
  const struct json *v, *c;
  char *text = NULL;
  size_t len = 0, n = 0;
  char **list = NULL;

  *out = NULL;
  *out_n = 0;
  arena_init(&a, 64 * 1024 * 1024);
  r = he_file_read(path, 4 * 1024 * 1024, &text, &len, err);
  if (r != APP_OK)
    goto out;
  r = json_parse(&a, text, len, 32, &root, err);
  if (r != APP_OK) {
    app_err_wrap(err, "%s", path);
    goto out;
  }
  v = json_get_ci(root, "IsEncrypted");
  if (json_is(v, JSON_TRUE)) {
    r = app_err_set(err, APP_ERR_CONFIG, "%s: IsEncrypted is true; decrypt it first", path);
    goto out;
  }
  v = json_get_ci(root, "Values");
  if (v && !json_is(v, JSON_OBJECT)) {
    r = app_err_set(err, APP_ERR_CONFIG, "%s: \"Values\" must be an object", path);
    goto out;
  }
  list = xcalloc((v ? v->len : 0) + 1, sizeof *list);
  for (c = v ? v->child : NULL; c; c = c->next) {
    struct buf kv;
    buf_init(&kv, 0);
    if (c->type == JSON_OBJECT || c->type == JSON_ARRAY) {
      buf_cleanup(&kv);
      r = app_err_set(err, APP_ERR_CONFIG, "%s: Values.%s must be a string", path, c->key);
      goto out;
    }
    if (buf_printf(&kv, "%s=", c->key) != APP_OK ||
        (c->type == JSON_STRING ? buf_append(&kv, c->str, c->len)
         : c->type == JSON_NULL ? APP_OK
         : c->type == JSON_NUMBER
             ? buf_append(&kv, c->str, c->len)
             : buf_append_str(&kv, c->type == JSON_TRUE ? "True" : "False")) != APP_OK ||
        buf_append(&kv, "", 0) != APP_OK) {
      buf_cleanup(&kv);
      r = app_err_set(err, APP_ERR_NOMEM, "%s: out of memory", path);
      goto out;
    }
    list[n++] = buf_steal(&kv, NULL);
  }
  v = json_get_ci(json_get_ci(root, "Values"), "FUNCTIONS_WORKER_RUNTIME");
  if (json_is(v, JSON_STRING) && strcasecmp(v->str, "custom"))
    fprintf(stderr,
            "hostemu: WARNING: %s sets FUNCTIONS_WORKER_RUNTIME=%s; a custom handler needs "
            "\"custom\"\n",
            path, v->str);
  *out = list;
  *out_n = n;
  list = NULL;
out:
  if (list) {
    size_t i;
    for (i = 0; i < n; i++)
      free(list[i]);
    free(list);
  }
  free(text);
  arena_cleanup(&a);
  return r;
}

/* A load run keeps one socket per invocation in flight: allow as many
 * descriptors as the hard limit permits. */
static void raise_fd_limit(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      fprintf(stderr, "hostemu: WARNING: cannot raise the open-file limit: %s\n", strerror(errno));
  }
}

static void trim_inplace(char *s)
{
  size_t n = strlen(s), i = 0;
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  while (s[i] == ' ' || s[i] == '\t')
    i++;
  memmove(s, s + i, n - i + 1);
}

int main(int argc, char **argv)
{
  struct opts o;
  struct he_app app;
  bool have_app = false;
  struct he_launch launch;
  bool have_launch = false;
  struct he_msgset msgs;
  struct he_run_cfg cfg;
  struct he_summary *sum = xcalloc(1, sizeof *sum);
  struct app_err err;
  char **settings = NULL;
  size_t n_settings = 0, i;
  const struct he_function *fn = NULL;
  struct he_http_request http;
  struct he_header hdrs[MAX_LIST + 2];
  char *hdr_copies[MAX_LIST];
  size_t n_hdrs = 0;
  char *path = NULL, *body_buf = NULL, host_hdr[256], cl_hdr[32];
  struct arena route_arena;
  struct he_route_param params[32];
  size_t n_params = 0;
  FILE *handler_log = NULL;
  int rc = 2;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);

  memset(&cfg, 0, sizeof cfg);
  memset(&http, 0, sizeof http);
  memset(hdr_copies, 0, sizeof hdr_copies);
  arena_init(&route_arena, 1024 * 1024);
  he_msgset_init(&msgs, 0);
  he_rng_seed();
  raise_fd_limit();
  rc = parse_args(argc, argv, &o);
  if (rc) {
    rc = rc < 0 ? 0 : rc;
    goto out;
  }
  rc = 2;
  msgs.max_body = (size_t)o.max_message;

  if (o.script_root) {
    if (he_app_load(&app, o.script_root, &err) != APP_OK) {
      have_app = true;
      fprintf(stderr, "hostemu: %s\n", err.msg);
      goto out;
    }
    have_app = true;
    if (app.skipped[0])
      fprintf(stderr, "hostemu: WARNING: folders skipped: %s\n", app.skipped);
  }

  /* which function, and what its trigger looks like */
  if (o.timer) {
    if (!have_app) {
      fprintf(stderr, "hostemu: --timer needs --script-root (to find the function)\n");
      goto out;
    }
    fn = he_app_find(&app, o.timer);
    if (!fn || !fn->trig || strcasecmp(fn->trig->type, "timerTrigger")) {
      fprintf(stderr, "hostemu: no timerTrigger function named %s\n", o.timer);
      goto out;
    }
  } else if (o.http_method) {
    char *q;
    if (!have_app) {
      fprintf(stderr, "hostemu: --http needs --script-root (to find the function's route)\n");
      goto out;
    }
    path = xstrdup(o.http_path);
    q = strchr(path, '?');
    if (q)
      *q++ = '\0';
    http.method = o.http_method;
    http.path = path;
    http.query = q;
    http.base_url = o.base_url;
    if (o.function) {
      fn = he_app_find(&app, o.function);
      if (!fn || fn->trigger != HE_TRIGGER_HTTP) {
        fprintf(stderr, "hostemu: no httpTrigger function named %s\n", o.function);
        goto out;
      }
    }
    if (!he_route_match(&app, o.http_method, path, &route_arena, &fn, params,
                        sizeof params / sizeof params[0], &n_params) ||
        (o.function && strcasecmp(fn->name, o.function))) {
      printf("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      fprintf(stderr,
              "hostemu: no enabled httpTrigger function matches %s %s (route prefix "
              "\"%s\")\n",
              o.http_method, path, app.route_prefix);
      rc = 1;
      goto out;
    }
  } else if (have_app) {
    if (o.function) {
      fn = he_app_find(&app, o.function);
      if (!fn) {
        fprintf(stderr, "hostemu: no function named %s in %s\n", o.function, app.root);
        goto out;
      }
      if (fn->trigger != HE_TRIGGER_SERVICEBUS) {
        fprintf(stderr, "hostemu: %s is not a serviceBusTrigger function\n", fn->name);
        goto out;
      }
    } else if (he_app_only(&app, HE_TRIGGER_SERVICEBUS, &fn, &err) != APP_OK) {
      fprintf(stderr, "hostemu: %s\n", err.msg);
      goto out;
    }
    if (fn->disabled)
      fprintf(stderr, "hostemu: WARNING: %s is disabled in function.json; invoking it anyway\n",
              fn->name);
    if (fn->many && !fn->has_dt) {
      fprintf(stderr,
              "hostemu: %s: \"cardinality\": \"many\" without \"dataType\" fails to bind on the "
              "real host (Object[], azure-functions-host#6487); set dataType binary or string\n",
              fn->name);
      goto out;
    }
  }

  /* configuration defaults, as the host derives them */
  cfg.app = have_app ? &app : NULL;
  cfg.fn = fn;
  cfg.connect_port = o.connect_port;
  cfg.init_timeout_ms = o.init_timeout > 0 ? (int64_t)(o.init_timeout * 1000)
                        : have_app         ? app.init_timeout_ms
                                           : 30000;
  cfg.stop = o.stop;
  cfg.stop_timeout_ms = (int64_t)(o.stop_timeout * 1000);
  cfg.concurrency = o.concurrency                             ? (int)o.concurrency
                    : have_app && app.sb_max_concurrent_calls ? (int)app.sb_max_concurrent_calls
                                                              : 16 * (int)(cores > 0 ? cores : 1);
  if (o.timeout_set)
    cfg.timeout_ms = o.timeout_ms;
  else if (have_app && app.function_timeout_ms)
    cfg.timeout_ms = app.function_timeout_ms; /* -1: unbounded */
  else
    cfg.timeout_ms = 300000;
  cfg.max_delivery = (int)o.max_delivery;
  cfg.redelivery_delay_ms = o.redelivery_delay_ms;
  cfg.deadletter_dir = o.deadletter;
  cfg.ttl_ms = o.ttl_ms;
  cfg.vary = o.vary;
  cfg.duration_s = o.duration;
  cfg.rate = o.rate;
  cfg.repeat = o.repeat > 0 ? (uint64_t)o.repeat : o.duration > 0 ? 0 : 1;
  cfg.chunk_size = (size_t)o.chunk_size;
  cfg.host_version = o.host_version;
  cfg.max_request = (size_t)o.max_request;
  cfg.max_response = (size_t)o.max_response;
  cfg.verbose = o.verbose;
  cfg.quiet = o.quiet;
  cfg.target.sb_namespace = o.sb_namespace;

  if (o.deadletter && he_mkdirs(o.deadletter, &err) != APP_OK) {
    fprintf(stderr, "hostemu: %s\n", err.msg);
    goto out;
  }
  if (o.handler_log) {
    handler_log = fopen(o.handler_log, "a");
    if (!handler_log) {
      fprintf(stderr, "hostemu: --handler-log %s: %s\n", o.handler_log, strerror(errno));
      goto out;
    }
    cfg.handler_log = handler_log;
  }

  if (o.timer) {
    /* one timer invocation: POST /<function> with the TimerInfo envelope */
    http.method = "POST";
    http.path = "/";
    http.base_url = o.base_url;
    cfg.http = &http;
    cfg.http_out = stdout;
    cfg.timer = true;
    cfg.timer_interval_s = 300;
    cfg.forward = false;
    cfg.http_binding = fn->trig->name;
    cfg.target.function = fn->name;
    cfg.target.binding = fn->trig->name;
    cfg.batch = 1;
  } else if (o.http_method) {
    bool has_host = false;
    const struct he_binding *trig = fn->trig;
    size_t blen = 0;
    if (o.body_file) {
      if (he_file_read(o.body_file, (size_t)o.max_message, &body_buf, &blen, &err) != APP_OK) {
        fprintf(stderr, "hostemu: %s\n", err.msg);
        goto out;
      }
      http.body = body_buf;
      http.body_len = blen;
    } else if (o.body) {
      http.body = o.body;
      http.body_len = strlen(o.body);
    }
    for (i = 0; i < o.n_headers; i++)
      if (!strncasecmp(o.headers[i], "Host:", 5))
        has_host = true;
    if (!has_host) {
      const char *h = strstr(o.base_url, "://");
      snprintf(host_hdr, sizeof host_hdr, "%s", h ? h + 3 : o.base_url);
      host_hdr[strcspn(host_hdr, "/")] = '\0';
      hdrs[n_hdrs].name = "Host";
      hdrs[n_hdrs].value = host_hdr;
      n_hdrs++;
    }
    for (i = 0; i < o.n_headers; i++) {
      char *c = xstrdup(o.headers[i]), *colon = strchr(c, ':');
      hdr_copies[i] = c;
      *colon = '\0';
      trim_inplace(c);
      trim_inplace(colon + 1);
      if (!strcasecmp(c, "Content-Length"))
        continue; /* computed from the body */
      hdrs[n_hdrs].name = c;
      hdrs[n_hdrs].value = colon + 1;
      n_hdrs++;
    }
    if (http.body_len) {
      snprintf(cl_hdr, sizeof cl_hdr, "%zu", http.body_len);
      hdrs[n_hdrs].name = "Content-Length";
      hdrs[n_hdrs].value = cl_hdr;
      n_hdrs++;
    }
    http.headers = hdrs;
    http.n_headers = n_hdrs;
    cfg.http = &http;
    cfg.http_out = stdout;
    cfg.forward = (o.forward || app.forwarding) && fn->http_in_out;
    if (o.forward && !fn->http_in_out)
      fprintf(stderr,
              "hostemu: WARNING: %s is not an HTTP-in/HTTP-out function: the host does not "
              "forward it; sending the default envelope\n",
              fn->name);
    cfg.http_binding = trig->name;
    cfg.params = params;
    cfg.n_params = n_params;
    cfg.target.function = fn->name;
    cfg.target.binding = trig->name;
    cfg.batch = 1;
  } else {
    for (i = 0; i < o.n_messages; i++) {
      if (he_msgset_add_path(&msgs, o.messages[i], &err) != APP_OK) {
        fprintf(stderr, "hostemu: %s\n", err.msg);
        goto out;
      }
    }
    if (msgs.n_over_256k)
      fprintf(stderr,
              "hostemu: WARNING: %zu message bodies exceed 256 KB, the Service Bus Standard "
              "limit (Premium allows up to 100 MB)\n",
              msgs.n_over_256k);
    if (fn) {
      cfg.target.function = fn->name;
      cfg.target.binding = fn->trig->name;
      cfg.target.binary = fn->binary;
      cfg.target.many = fn->many;
      for (i = 0; !o.no_dlq_function && !fn->deadletter && i < app.n_fns; i++) {
        const struct he_function *d = &app.fns[i];
        if (d->trigger != HE_TRIGGER_SERVICEBUS || !d->deadletter || d->disabled)
          continue;
        cfg.dlq_target.function = d->name;
        cfg.dlq_target.binding = d->trig->name;
        cfg.dlq_target.binary = d->binary;
        cfg.dlq_target.many = d->many;
        cfg.dlq_target.sb_namespace = cfg.target.sb_namespace;
        sum->dlq = true;
        break;
      }
    } else {
      if (!o.function) {
        fprintf(stderr, "hostemu: without --script-root, name the function with --function\n");
        goto out;
      }
      /* __noop is not a function name the host allows, but with --connect it
       * reaches the handler's built-in empty function: the benchmark's HTTP
       * floor, driven by this same client */
      if (!he_valid_function_name(o.function) &&
          !(o.connect_port && !strcmp(o.function, "__noop"))) {
        fprintf(stderr,
                "hostemu: --function %s is not a valid function name "
                "([A-Za-z][A-Za-z0-9_-]{0,127})\n",
                o.function);
        goto out;
      }
      cfg.target.function = o.function;
      cfg.target.binding = o.trigger_name ? o.trigger_name : "msg";
      cfg.target.binary = !o.data_type || !strcasecmp(o.data_type, "binary");
      cfg.target.many = o.batch > 0;
    }
    if (o.single) {
      if (fn && fn->many)
        fprintf(stderr, "hostemu: WARNING: --single overrides \"cardinality\": \"many\" of %s\n",
                fn->name);
      cfg.target.many = false;
    }
    if (o.batch > 0) {
      if (fn && !fn->many)
        fprintf(stderr,
                "hostemu: WARNING: --batch overrides the single cardinality of %s; the host "
                "would send single envelopes\n",
                fn->name);
      cfg.target.many = true;
    }
    cfg.batch = !cfg.target.many ? 1
                : o.batch > 0    ? (int)o.batch
                : have_app && app.sb_max_batch
                    ? (int)(app.sb_max_batch > 4096 ? 4096 : app.sb_max_batch)
                    : 1000;
    cfg.msgs = &msgs;
  }

  if (!o.connect_port) {
    char *lsj = NULL;
    const char *sp = o.settings;
    if (!sp && !o.no_settings) {
      lsj = he_path_join(app.root, "local.settings.json");
      if (access(lsj, R_OK) == 0)
        sp = lsj;
    }
    if (sp && load_settings(sp, &settings, &n_settings, &err) != APP_OK) {
      fprintf(stderr, "hostemu: %s\n", err.msg);
      free(lsj);
      goto out;
    }
    free(lsj);
    if (he_launch_init(&launch, &app, settings, n_settings, o.env, o.n_env, &err) != APP_OK) {
      have_launch = true;
      fprintf(stderr, "hostemu: %s\n", err.msg);
      goto out;
    }
    have_launch = true;
    cfg.launch = &launch;
  }

  snprintf(sum->mode, sizeof sum->mode, "%s",
           o.timer         ? "timer"
           : o.http_method ? "http"
                           : "servicebus");
  snprintf(sum->function, sizeof sum->function, "%s", cfg.target.function);
  if (o.timer)
    snprintf(sum->shape, sizeof sum->shape, "timerTrigger");
  else if (o.http_method)
    snprintf(sum->shape, sizeof sum->shape, "httpTrigger, %s",
             cfg.forward ? "forwarded" : "default envelope");
  else if (cfg.target.many)
    snprintf(sum->shape, sizeof sum->shape, "serviceBusTrigger, %s, batch of up to %d",
             cfg.target.binary ? "binary" : "string", cfg.batch);
  else
    snprintf(sum->shape, sizeof sum->shape, "serviceBusTrigger, %s, single",
             cfg.target.binary ? "binary" : "string");

  if (he_run(&cfg, sum, &err) != APP_OK) {
    fprintf(stderr, "hostemu: %s\n", err.msg);
    rc = 1;
    if (o.json) {
      struct app_err jerr;
      if (he_summary_write_json(sum, o.json, &jerr) != APP_OK)
        fprintf(stderr, "hostemu: %s\n", jerr.msg);
    }
    goto out;
  }
  if ((!o.http_method && !o.timer) || o.repeat > 1 || o.duration > 0 || o.verbose)
    he_summary_print(sum, o.http_method ? stderr : stdout);
  if (o.json && he_summary_write_json(sum, o.json, &err) != APP_OK) {
    fprintf(stderr, "hostemu: %s\n", err.msg);
    rc = 1;
    goto out;
  }
  rc = (sum->dead_lettered || sum->unsettled || sum->gave_up || sum->inv_failed ||
        sum->invocations == 0)
           ? 1
           : 0;
  if (!o.http_method && !o.timer && sum->inv_failed && !sum->dead_lettered && !sum->unsettled &&
      !sum->gave_up)
    rc = 0; /* retried and eventually settled: every message succeeded */
out:
  if (handler_log)
    fclose(handler_log);
  for (i = 0; i < n_settings; i++)
    free(settings[i]);
  free(settings);
  for (i = 0; i < MAX_LIST; i++)
    free(hdr_copies[i]);
  free(path);
  free(body_buf);
  if (have_launch)
    he_launch_cleanup(&launch);
  he_msgset_cleanup(&msgs);
  if (have_app)
    he_app_cleanup(&app);
  arena_cleanup(&route_arena);
  free(sum);
  return rc;
}

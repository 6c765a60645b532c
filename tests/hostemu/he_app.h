/* he_app.h - the function app (script root) as the Functions host reads it.
 *
 * host.json: customHandler (or the legacy httpWorker) description, the
 * forwarding flag, initializationTimeout, functionTimeout,
 * extensions.serviceBus.{maxConcurrentCalls,maxMessageBatchSize} and
 * extensions.http.routePrefix. Keys are matched case-insensitively, as
 * .NET configuration binding does.
 * <root>/<Name>/function.json: one function per folder; the folder name is
 * the function name and the handler route.
 *
 * Route templates for HTTP triggers support literal segments and whole-
 * segment parameters: {name}, {name?}, {name=default}, {name:int} (and
 * other constraints), {*rest} / {**rest} catch-all. */
#ifndef D365CDC_HE_APP_H
#define D365CDC_HE_APP_H

#include "common/arena.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum he_trigger { HE_TRIGGER_NONE = 0, HE_TRIGGER_SERVICEBUS, HE_TRIGGER_HTTP, HE_TRIGGER_OTHER };

struct he_binding {
  const char *type;      /* e.g. "serviceBusTrigger", "redis", "http" */
  const char *direction; /* "in", "out", "inout" */
  const char *name;
  const char *data_type; /* "binary", "string", "stream" or NULL */
  bool out;              /* direction out or inout */
};

struct he_function {
  const char *name; /* folder name, case kept */
  enum he_trigger trigger;
  const struct he_binding *trig; /* the trigger binding, or NULL */
  struct he_binding *bindings;
  size_t n_bindings;
  bool many;            /* cardinality "many" */
  bool binary;          /* trigger dataType binary */
  bool has_dt;          /* trigger dataType given */
  bool disabled;        /* "disabled": true */
  bool http_in_out;     /* exactly one httpTrigger in and one http out */
  bool deadletter;      /* serviceBusTrigger on "<subscription or queue>/$DeadLetterQueue" */
  const char *route;    /* HTTP route template (NULL: the function name) */
  const char **methods; /* lower case; NULL/0: any */
  size_t n_methods;
};

struct he_app {
  char *root;        /* absolute script root */
  const char *exe;   /* defaultExecutablePath (raw, %VAR% not expanded) */
  const char **args; /* arguments */
  size_t n_args;
  const char *worker_path; /* defaultWorkerPath or NULL */
  const char **worker_args;
  size_t n_worker_args;
  const char *working_dir;         /* workingDirectory or NULL */
  bool forwarding;                 /* enableForwardingHttpRequest */
  int64_t init_timeout_ms;         /* initializationTimeout (default 30 s) */
  int64_t function_timeout_ms;     /* functionTimeout; 0 unset, -1 unbounded */
  int64_t sb_max_concurrent_calls; /* 0 unset */
  int64_t sb_max_batch;            /* 0 unset */
  const char *route_prefix;        /* default "api" */
  struct he_function *fns;
  size_t n_fns;
  char skipped[512];  /* names of folders skipped, for the log */
  struct arena arena; /* every string above */
};

/* Load root/host.json and every root/<Name>/function.json.
 * Errors: APP_ERR_IO (unreadable), APP_ERR_CONFIG (invalid content; the
 * message names the file and what is wrong). Clean up with he_app_cleanup
 * even on failure. */
APP_NODISCARD enum app_result he_app_load(struct he_app *app, const char *root,
                                          struct app_err *err);
void he_app_cleanup(struct he_app *app);

/* Function by name (case-insensitive, as the host matches names), or NULL. */
const struct he_function *he_app_find(const struct he_app *app, const char *name);

/* The single enabled function with the given trigger; APP_ERR_CONFIG with
 * the list of candidates when there are none or several. */
APP_NODISCARD enum app_result he_app_only(const struct he_app *app, enum he_trigger t,
                                          const struct he_function **out, struct app_err *err);

/* Output binding of fn named name (case-sensitive, as the host's
 * Outputs lookup is), or NULL. */
const struct he_binding *he_app_output(const struct he_function *fn, const char *name);

struct he_route_param {
  const char *name; /* borrowed from the app */
  char *value;      /* decoded; in the arena given to he_route_match */
};

/* Match a request path (no query, starting with '/') against every HTTP
 * function's route under the route prefix; method is matched against the
 * function's methods (case-insensitive). On a match *out_fn is set and up
 * to max_params parameters are stored. Returns false when nothing matches. */
bool he_route_match(const struct he_app *app, const char *method, const char *path, struct arena *a,
                    const struct he_function **out_fn, struct he_route_param *params,
                    size_t max_params, size_t *out_n);

/* Is s a function name the host accepts? ^[a-z][a-z0-9_\-]{0,127}$ ignoring
 * case, and not "host". */
bool he_valid_function_name(const char *s);

/* Percent-decode s[0..n) into the arena ("+" stays "+" unless plus_space). */
char *he_url_decode(struct arena *a, const char *s, size_t n, bool plus_space);

#endif

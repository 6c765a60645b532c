/* functions.h - the functions of the app, read once at start-up.
 *
 * The Functions host finds a function as <app root>/<Name>/function.json and
 * invokes it with POST /<Name> (folder name, case kept). The handler reads
 * the same files so that it knows, per function, the trigger type, the
 * trigger binding name (the key under the envelope's Data), its dataType and
 * cardinality (how the message body is encoded), and the output bindings.
 * It also reads host.json customHandler.enableProxyingHttpRequest (the name
 * Microsoft documents now; the host proxies the request with YARP) and
 * enableForwardingHttpRequest (the older name), and extensions.http.routePrefix.
 *
 * Files are parsed with cJSON (they are our own configuration, not network
 * input). Key names are matched case-insensitively, as the host does. */
#ifndef D365CDC_FUNCTIONS_H
#define D365CDC_FUNCTIONS_H

#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

enum fn_trigger {
  FN_TRIGGER_OTHER = 0,   /* timerTrigger, queueTrigger, ... (not served) */
  FN_TRIGGER_SERVICE_BUS, /* serviceBusTrigger */
  FN_TRIGGER_HTTP         /* httpTrigger */
};

enum fn_data_type { FN_DATA_UNSET = 0, FN_DATA_BINARY, FN_DATA_STRING, FN_DATA_STREAM };

enum fn_cardinality { FN_CARDINALITY_UNSET = 0, FN_CARDINALITY_ONE, FN_CARDINALITY_MANY };

/* An output binding ("direction": "out"). */
struct function_binding {
  char *name; /* binding name, e.g. "cache" or "$return" (the Outputs key) */
  char *type; /* as written: "redis", "sql", "http", "serviceBus", ... */
  enum fn_data_type data_type;
  char *command; /* redis "command" or sql "commandText" (its table), or NULL */
};

struct function_def {
  char *name;                  /* folder name = function name = route "/<name>" */
  char *path;                  /* path of the function.json (for messages) */
  enum fn_trigger trigger;     /* kind of the trigger binding */
  char *trigger_type;          /* trigger "type" as written */
  char *trigger_name;          /* trigger binding "name": its key under Data */
  enum fn_data_type data_type; /* trigger "dataType" */
  enum fn_cardinality cardinality;
  char *http_route;   /* httpTrigger "route", or NULL */
  char *http_methods; /* httpTrigger "methods" lower-cased, comma-joined, or NULL (all) */
  bool disabled;      /* "disabled": true */
  bool deadletter;    /* serviceBusTrigger on "<subscription or queue>/$DeadLetterQueue" */
  struct function_binding *outputs;
  size_t noutputs;
};

struct function_set {
  char *app_root;           /* directory the functions were read from */
  struct function_def *fns; /* sorted by name */
  size_t n;
  bool has_host_json; /* <app root>/host.json exists */
  bool forwarding;    /* enableProxyingHttpRequest or enableForwardingHttpRequest: the
                         host sends HTTP requests as they are (public path) */
  bool proxying;      /* it was enableProxyingHttpRequest (for the log) */
  char *route_prefix; /* extensions.http.routePrefix without slashes; "api" by default */
};

/* Largest function.json / host.json read (they are a few hundred bytes). */
#define FUNCTIONS_MAX_FILE_BYTES (1024 * 1024)

/* Decide the app root: `configured` (FUNCTIONS_APP_ROOT_PATH) when non-empty,
 * else the directory of the running executable, else the working directory.
 * *out: caller frees with free().
 *   APP_ERR_IO  neither the executable's directory nor the working directory
 *               could be determined */
APP_NODISCARD enum app_result functions_app_root(const char *configured, char **out,
                                                 struct app_err *err);

/* Read <app_root>/host.json (optional) and every <app_root>/<Name>/function.json.
 * *out: caller frees with functions_destroy. A missing app root is an error;
 * an app root without functions is not (the set is empty).
 *   APP_ERR_CONFIG  a file is not valid JSON (message: path, line, column),
 *                   or a function.json breaks a rule the host enforces
 *                   (bindings array, exactly one trigger, names, dataType,
 *                   cardinality values, valid function name)
 *   APP_ERR_IO      the app root or a file cannot be read */
APP_NODISCARD enum app_result functions_load(const char *app_root, struct function_set **out,
                                             struct app_err *err);

/* The function named `name` (exact, case-sensitive, like the host's route),
 * or NULL. Borrowed from set. */
const struct function_def *functions_find(const struct function_set *set, const char *name);

/* First output binding of `type` (case-insensitive, e.g. "http"), or NULL. */
const struct function_binding *functions_output(const struct function_def *fn, const char *type);

/* Short names for messages: "serviceBusTrigger"-style kinds and values. */
const char *functions_data_type_name(enum fn_data_type t);
const char *functions_cardinality_name(enum fn_cardinality c);

/* The public path prefix of an HTTP function as the host routes it:
 * "/<routePrefix>/<route up to its first parameter>", e.g. "/api/data/v9.2/"
 * for route "data/v9.2/{*path}", "/api/cdc/metrics" for "cdc/metrics"; the
 * function name stands for a missing route. Caller frees. */
char *functions_public_path(const struct function_set *set, const struct function_def *fn);

/* Free the set. NULL-safe. */
void functions_destroy(struct function_set *set);

#endif

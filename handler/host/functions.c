/* functions.c - function.json / host.json discovery. */
#include "host/functions.h"

#include "common/log.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers ---------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
  size_t a = strlen(dir), b = strlen(name);
  char *p = xmalloc(a + b + 2);
  memcpy(p, dir, a);
  /* keep "dir/name" without a doubled slash */
  if (a && dir[a - 1] != '/')
    p[a++] = '/';
  memcpy(p + a, name, b + 1);
  return p;
}

/* "<app_root>/<name>/function.json"; caller frees. */
static char *function_json_path(const char *app_root, const char *name)
{
  char *dir = path_join(app_root, name);
  char *p = path_join(dir, "function.json");
  free(dir);
  return p;
}

/* Read a whole (small) file into a NUL-terminated heap buffer.
 * APP_ERR_NOTFOUND when it does not exist, so callers can treat optional
 * files (host.json) differently from unreadable ones. */
static enum app_result read_small_file(const char *path, char **out, size_t *out_len,
                                       struct app_err *err)
{
  FILE *f = NULL;
  char *data = NULL;
  size_t len = 0;
  struct stat st;
  enum app_result r = APP_OK;

  f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT)
      r = app_err_set(err, APP_ERR_NOTFOUND, "%s does not exist", path);
    else
      r = app_err_set(err, APP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    goto out;
  }
  if (fstat(fileno(f), &st) != 0) {
    r = app_err_set(err, APP_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    r = app_err_set(err, APP_ERR_IO, "%s is not a regular file", path);
    goto out;
  }
  if (st.st_size > FUNCTIONS_MAX_FILE_BYTES) {
    r = app_err_set(err, APP_ERR_CONFIG, "%s is %lld bytes, more than the %d allowed", path,
                    (long long)st.st_size, FUNCTIONS_MAX_FILE_BYTES);
    goto out;
  }
  data = xmalloc((size_t)st.st_size + 1);
  len = fread(data, 1, (size_t)st.st_size, f);
  if (ferror(f)) {
    r = app_err_set(err, APP_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    goto out;
  }
  data[len] = '\0';
  *out = data;
  *out_len = len;
  data = NULL;
out:
  free(data);
  if (f)
    fclose(f);
  return r;
}

/* Parse JSON text with cJSON; on failure name the file, line and column
 * (cJSON reports the position through return_parse_end, which unlike
 * cJSON_GetErrorPtr is thread-safe). */
static enum app_result parse_json_file(const char *path, const char *text, size_t len, cJSON **out,
                                       struct app_err *err)
{
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  size_t at, i, line = 1, col = 1;

  if (root) {
    /* cJSON stops after the first value: anything but whitespace after it
     * is as much an error as the host would find it */
    for (; end && (size_t)(end - text) < len; end++) {
      if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n')
        break;
    }
    if (!end || (size_t)(end - text) >= len) {
      *out = root;
      return APP_OK;
    }
    cJSON_Delete(root);
  }
  at = end && end >= text ? (size_t)(end - text) : 0;
  if (at > len)
    at = len;
  for (i = 0; i < at; i++) {
    if (text[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  if (len == 0)
    return app_err_set(err, APP_ERR_CONFIG, "%s: empty file (expected a JSON object)", path);
  return app_err_set(err, APP_ERR_CONFIG, "%s: invalid JSON at line %zu, column %zu", path, line,
                     col);
}

static bool ends_with_ci(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* The host accepts function names matching ^[a-z][a-z0-9_-]{0,127}$
 * (case-insensitive); anything else would never be invoked. */
static bool valid_function_name(const char *s)
{
  size_t i, n = strlen(s);
  if (n == 0 || n > 128)
    return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
    return false;
  for (i = 1; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  }
  return true;
}

/* Optional string member; non-strings are an error naming the member. */
static enum app_result get_opt_string(const cJSON *obj, const char *key, const char *path,
                                      const char *where, const char **out, struct app_err *err)
{
  const cJSON *v = cJSON_GetObjectItem(obj, key);
  *out = NULL;
  if (!v || cJSON_IsNull(v))
    return APP_OK;
  if (!cJSON_IsString(v) || !v->valuestring)
    return app_err_set(err, APP_ERR_CONFIG, "%s: %s.%s must be a string", path, where, key);
  *out = v->valuestring;
  return APP_OK;
}

static enum app_result parse_data_type(const char *s, const char *path, const char *where,
                                       enum fn_data_type *out, struct app_err *err)
{
  if (!s)
    *out = FN_DATA_UNSET;
  else if (!strcasecmp(s, "binary"))
    *out = FN_DATA_BINARY;
  else if (!strcasecmp(s, "string"))
    *out = FN_DATA_STRING;
  else if (!strcasecmp(s, "stream"))
    *out = FN_DATA_STREAM;
  else
    return app_err_set(err, APP_ERR_CONFIG,
                       "%s: %s.dataType '%s' is not one of binary, string, stream", path, where, s);
  return APP_OK;
}

const char *functions_data_type_name(enum fn_data_type t)
{
  switch (t) {
  case FN_DATA_BINARY: return "binary";
  case FN_DATA_STRING: return "string";
  case FN_DATA_STREAM: return "stream";
  default: return "unset";
  }
}

const char *functions_cardinality_name(enum fn_cardinality c)
{
  switch (c) {
  case FN_CARDINALITY_ONE: return "one";
  case FN_CARDINALITY_MANY: return "many";
  default: return "unset";
  }
}

static void function_def_cleanup(struct function_def *fn)
{
  size_t i;
  if (!fn)
    return;
  free(fn->name);
  free(fn->path);
  free(fn->trigger_type);
  free(fn->trigger_name);
  free(fn->http_route);
  free(fn->http_methods);
  for (i = 0; i < fn->noutputs; i++) {
    free(fn->outputs[i].name);
    free(fn->outputs[i].type);
    free(fn->outputs[i].command);
  }
  free(fn->outputs);
  memset(fn, 0, sizeof *fn);
}

/* "methods": ["GET","post"] -> "get,post" */
static enum app_result parse_methods(const cJSON *binding, const char *path,
                                     struct function_def *fn, struct app_err *err)
{
  const cJSON *m = cJSON_GetObjectItem(binding, "methods"), *e;
  size_t total = 0;
  char *p;

  if (!m || cJSON_IsNull(m))
    return APP_OK;
  if (!cJSON_IsArray(m))
    return app_err_set(err, APP_ERR_CONFIG, "%s: httpTrigger methods must be an array of strings",
                       path);
  for (e = m->child; e; e = e->next) {
    if (!cJSON_IsString(e) || !e->valuestring || !*e->valuestring)
      return app_err_set(err, APP_ERR_CONFIG,
                         "%s: httpTrigger methods must be an array of non-empty strings", path);
    total += strlen(e->valuestring) + 1;
  }
  if (total == 0)
    return APP_OK;
  fn->http_methods = p = xmalloc(total);
  for (e = m->child; e; e = e->next) {
    const char *s = e->valuestring;
    if (p != fn->http_methods)
      *p++ = ',';
    for (; *s; s++)
      *p++ = (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
  }
  *p = '\0';
  return APP_OK;
}

static enum app_result parse_function(const char *name, const char *path, const cJSON *root,
                                      struct function_def *fn, struct app_err *err)
{
  const cJSON *bindings, *b, *disabled;
  size_t idx = 0, nout = 0;
  bool have_trigger = false;

  memset(fn, 0, sizeof *fn);
  fn->name = xstrdup(name);
  fn->path = xstrdup(path);
  if (!cJSON_IsObject(root))
    return app_err_set(err, APP_ERR_CONFIG, "%s: expected a JSON object", path);
  disabled = cJSON_GetObjectItem(root, "disabled");
  fn->disabled = cJSON_IsTrue(disabled) || (cJSON_IsString(disabled) && disabled->valuestring &&
                                            !strcasecmp(disabled->valuestring, "true"));
  bindings = cJSON_GetObjectItem(root, "bindings");
  if (!cJSON_IsArray(bindings))
    return app_err_set(err, APP_ERR_CONFIG, "%s: \"bindings\" must be an array", path);
  if (cJSON_GetArraySize(bindings) == 0)
    return app_err_set(err, APP_ERR_CONFIG,
                       "%s: \"bindings\" is empty (a function needs a trigger)", path);

  nout = (size_t)cJSON_GetArraySize(bindings);
  fn->outputs = xcalloc(nout, sizeof *fn->outputs);

  for (b = bindings->child; b; b = b->next) {
    char where[32];
    const char *type, *bname, *direction, *data_type, *card;
    enum fn_data_type dt = FN_DATA_UNSET;

    snprintf(where, sizeof where, "bindings[%zu]", idx++);
    if (!cJSON_IsObject(b))
      return app_err_set(err, APP_ERR_CONFIG, "%s: %s must be an object", path, where);
    APP_RETURN_IF_FAILED(get_opt_string(b, "type", path, where, &type, err));
    APP_RETURN_IF_FAILED(get_opt_string(b, "name", path, where, &bname, err));
    APP_RETURN_IF_FAILED(get_opt_string(b, "direction", path, where, &direction, err));
    APP_RETURN_IF_FAILED(get_opt_string(b, "dataType", path, where, &data_type, err));
    APP_RETURN_IF_FAILED(get_opt_string(b, "cardinality", path, where, &card, err));
    if (!type || !*type)
      return app_err_set(err, APP_ERR_CONFIG, "%s: %s has no \"type\"", path, where);
    if (!bname || !*bname)
      return app_err_set(err, APP_ERR_CONFIG, "%s: %s (%s) has no \"name\"", path, where, type);
    APP_RETURN_IF_FAILED(parse_data_type(data_type, path, where, &dt, err));

    if (ends_with_ci(type, "Trigger")) {
      if (have_trigger)
        return app_err_set(err, APP_ERR_CONFIG,
                           "%s: more than one trigger binding (%s is the second); a function has "
                           "exactly one",
                           path, where);
      have_trigger = true;
      fn->trigger_type = xstrdup(type);
      fn->trigger_name = xstrdup(bname);
      fn->data_type = dt;
      if (!strcasecmp(type, "serviceBusTrigger")) {
        const char *entity = NULL;
        fn->trigger = FN_TRIGGER_SERVICE_BUS;
        /* a subscription's or queue's dead-letter queue: "<sub>/$DeadLetterQueue" */
        APP_RETURN_IF_FAILED(get_opt_string(b, "subscriptionName", path, where, &entity, err));
        if (!entity)
          APP_RETURN_IF_FAILED(get_opt_string(b, "queueName", path, where, &entity, err));
        fn->deadletter = entity && ends_with_ci(entity, "/$deadletterqueue");
      } else if (!strcasecmp(type, "httpTrigger"))
        fn->trigger = FN_TRIGGER_HTTP;
      else
        fn->trigger = FN_TRIGGER_OTHER;
      if (!card)
        fn->cardinality = FN_CARDINALITY_UNSET;
      else if (!strcasecmp(card, "one"))
        fn->cardinality = FN_CARDINALITY_ONE;
      else if (!strcasecmp(card, "many"))
        fn->cardinality = FN_CARDINALITY_MANY;
      else
        return app_err_set(err, APP_ERR_CONFIG, "%s: %s.cardinality '%s' is not one of one, many",
                           path, where, card);
      if (fn->trigger == FN_TRIGGER_HTTP) {
        const char *route;
        APP_RETURN_IF_FAILED(get_opt_string(b, "route", path, where, &route, err));
        if (route)
          fn->http_route = xstrdup(route);
        APP_RETURN_IF_FAILED(parse_methods(b, path, fn, err));
      }
      continue;
    }
    if (direction && !strcasecmp(direction, "out")) {
      struct function_binding *o = &fn->outputs[fn->noutputs++];
      const char *command = NULL;
      o->name = xstrdup(bname);
      o->type = xstrdup(type);
      o->data_type = dt;
      /* redis: "command"; sql: "commandText" (the table) */
      APP_RETURN_IF_FAILED(get_opt_string(b, "command", path, where, &command, err));
      if (!command)
        APP_RETURN_IF_FAILED(get_opt_string(b, "commandText", path, where, &command, err));
      if (command)
        o->command = xstrdup(command);
    }
    /* "in" bindings other than the trigger arrive as extra Data members;
     * the envelope ignores them */
  }
  if (!have_trigger)
    return app_err_set(err, APP_ERR_CONFIG,
                       "%s: no trigger binding (a binding whose type ends in \"Trigger\")", path);
  if (fn->trigger == FN_TRIGGER_SERVICE_BUS && fn->cardinality == FN_CARDINALITY_MANY &&
      fn->data_type == FN_DATA_UNSET)
    LOG_WARN("%s: cardinality many without dataType fails to bind in the host "
             "(Azure/azure-functions-host#6487); set \"dataType\": \"binary\"",
             path);
  return APP_OK;
}

static int cmp_fn(const void *a, const void *b)
{
  return strcmp(((const struct function_def *)a)->name, ((const struct function_def *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A host.json boolean: the host binds it with .NET configuration, which
 * takes true/false or the strings "true"/"false". Absent or null: false. */
static enum app_result host_bool(const cJSON *obj, const char *key, const char *path, bool *out,
                                 struct app_err *err)
{
  const cJSON *v = cJSON_GetObjectItem(obj, key);
  if (!v || cJSON_IsNull(v))
    *out = false;
  else if (cJSON_IsBool(v))
    *out = cJSON_IsTrue(v);
  else if (cJSON_IsString(v) && v->valuestring &&
           (!strcasecmp(v->valuestring, "true") || !strcasecmp(v->valuestring, "false")))
    *out = !strcasecmp(v->valuestring, "true");
  else
    return app_err_set(err, APP_ERR_CONFIG, "%s: customHandler.%s must be true or false", path,
                       key);
  return APP_OK;
}

/* routePrefix without leading and trailing slashes */
static char *trim_slashes(const char *s)
{
  size_t n;
  while (*s == '/')
    s++;
  n = strlen(s);
  while (n && s[n - 1] == '/')
    n--;
  return xstrndup(s, n);
}

/* host.json: customHandler.enableProxyingHttpRequest /
 * enableForwardingHttpRequest (or the legacy httpWorker section when
 * customHandler is absent) and extensions.http.routePrefix. */
static enum app_result read_host_json(struct function_set *set, struct app_err *err)
{
  char *path = path_join(set->app_root, "host.json");
  char *text = NULL;
  size_t len = 0;
  cJSON *root = NULL;
  const cJSON *ch, *ext, *http, *prefix;
  bool fwd = false, proxy = false;
  enum app_result r;

  r = read_small_file(path, &text, &len, err);
  if (r == APP_ERR_NOTFOUND) {
    r = APP_OK;
    goto out;
  }
  if (r != APP_OK)
    goto out;
  set->has_host_json = true;
  r = parse_json_file(path, text, len, &root, err);
  if (r != APP_OK)
    goto out;
  if (!cJSON_IsObject(root)) {
    r = app_err_set(err, APP_ERR_CONFIG, "%s: expected a JSON object", path);
    goto out;
  }
  ch = cJSON_GetObjectItem(root, "customHandler");
  if (!ch)
    ch = cJSON_GetObjectItem(root, "httpWorker");
  if (ch && !cJSON_IsObject(ch)) {
    r = app_err_set(err, APP_ERR_CONFIG, "%s: customHandler must be an object", path);
    goto out;
  }
  if ((r = host_bool(ch, "enableForwardingHttpRequest", path, &fwd, err)) != APP_OK ||
      (r = host_bool(ch, "enableProxyingHttpRequest", path, &proxy, err)) != APP_OK)
    goto out;
  set->forwarding = fwd || proxy;
  set->proxying = proxy;
  ext = cJSON_GetObjectItem(root, "extensions");
  http = cJSON_IsObject(ext) ? cJSON_GetObjectItem(ext, "http") : NULL;
  prefix = cJSON_IsObject(http) ? cJSON_GetObjectItem(http, "routePrefix") : NULL;
  if (prefix && !cJSON_IsNull(prefix)) {
    if (!cJSON_IsString(prefix) || !prefix->valuestring) {
      r = app_err_set(err, APP_ERR_CONFIG, "%s: extensions.http.routePrefix must be a string",
                      path);
      goto out;
    }
    free(set->route_prefix);
    set->route_prefix = trim_slashes(prefix->valuestring);
  }
out:
  cJSON_Delete(root);
  free(text);
  free(path);
  return r;
}

char *functions_public_path(const struct function_set *set, const struct function_def *fn)
{
  const char *route = fn->http_route && *fn->http_route ? fn->http_route : fn->name;
  const char *prefix = set->route_prefix ? set->route_prefix : "api";
  size_t rl, pl = strlen(prefix);
  const char *brace;
  char *out, *w;
  while (*route == '/')
    route++;
  brace = strchr(route, '{');
  rl = brace ? (size_t)(brace - route) : strlen(route);
  out = xmalloc(pl + rl + 3);
  w = out;
  *w++ = '/';
  if (pl) {
    memcpy(w, prefix, pl);
    w += pl;
    *w++ = '/';
  }
  memcpy(w, route, rl);
  w[rl] = '\0';
  return out;
}

enum app_result functions_app_root(const char *configured, char **out, struct app_err *err)
{
  char buf[PATH_MAX];
  ssize_t n;

  if (configured && *configured) {
    *out = xstrdup(configured);
    return APP_OK;
  }
  n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    char *slash;
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash) {
      if (slash == buf)
        slash[1] = '\0';
      else
        *slash = '\0';
      *out = xstrdup(buf);
      return APP_OK;
    }
  }
  if (getcwd(buf, sizeof buf)) {
    *out = xstrdup(buf);
    return APP_OK;
  }
  return app_err_set(err, APP_ERR_IO,
                     "cannot determine the app root (FUNCTIONS_APP_ROOT_PATH unset, "
                     "/proc/self/exe unreadable, getcwd: %s)",
                     strerror(errno));
}

enum app_result functions_load(const char *app_root, struct function_set **out, struct app_err *err)
{
  struct function_set *set = xcalloc(1, sizeof *set);
  DIR *dir = NULL;
  struct dirent *de;
  char **names = NULL;
  size_t nnames = 0, cap = 0, i;
  char *path = NULL, *text = NULL;
  cJSON *root = NULL;
  enum app_result r = APP_OK;

  set->app_root = xstrdup(app_root);
  set->route_prefix = xstrdup("api");
  r = read_host_json(set, err);
  if (r != APP_OK)
    goto out;

  dir = opendir(app_root);
  if (!dir) {
    r = app_err_set(err, APP_ERR_IO, "cannot read the app root %s: %s", app_root, strerror(errno));
    goto out;
  }
  while ((de = readdir(dir)) != NULL) {
    struct stat st;
    if (de->d_name[0] == '.')
      continue;
    free(path);
    path = path_join(app_root, de->d_name);
    /* a function is a directory holding function.json; other entries
     * (the handler binary, host.json, lib/) are not functions */
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    free(path);
    path = function_json_path(app_root, de->d_name);
    if (stat(path, &st) != 0)
      continue;
    if (nnames == cap) {
      cap = cap ? cap * 2 : 8;
      names = xrealloc(names, cap * sizeof *names);
    }
    names[nnames++] = xstrdup(de->d_name);
  }
  /* sorted: deterministic logs and lookups whatever readdir's order */
  if (nnames)
    qsort(names, nnames, sizeof *names, cmp_str);

  set->fns = xcalloc(nnames ? nnames : 1, sizeof *set->fns);
  for (i = 0; i < nnames; i++) {
    size_t len = 0;
    free(path);
    path = function_json_path(app_root, names[i]);
    if (!valid_function_name(names[i])) {
      r = app_err_set(err, APP_ERR_CONFIG,
                      "%s: '%s' is not a valid function name (a letter, then letters, digits, "
                      "'_' or '-', at most 128)",
                      path, names[i]);
      goto out;
    }
    r = read_small_file(path, &text, &len, err);
    if (r != APP_OK)
      goto out;
    r = parse_json_file(path, text, len, &root, err);
    if (r != APP_OK)
      goto out;
    set->n++; /* counted before parsing so cleanup frees a half-filled entry */
    r = parse_function(names[i], path, root, &set->fns[i], err);
    if (r != APP_OK)
      goto out;
    cJSON_Delete(root);
    root = NULL;
    free(text);
    text = NULL;
  }
  qsort(set->fns, set->n, sizeof *set->fns, cmp_fn);
  *out = set;
  set = NULL;
out:
  if (dir)
    closedir(dir);
  for (i = 0; i < nnames; i++)
    free(names[i]);
  free(names);
  free(path);
  free(text);
  cJSON_Delete(root);
  functions_destroy(set);
  return r;
}

const struct function_def *functions_find(const struct function_set *set, const char *name)
{
  size_t i;
  if (!set || !name)
    return NULL;
  for (i = 0; i < set->n; i++)
    if (!strcmp(set->fns[i].name, name))
      return &set->fns[i];
  return NULL;
}

const struct function_binding *functions_output(const struct function_def *fn, const char *type)
{
  size_t i;
  if (!fn)
    return NULL;
  for (i = 0; i < fn->noutputs; i++)
    if (!strcasecmp(fn->outputs[i].type, type))
      return &fn->outputs[i];
  return NULL;
}

void functions_destroy(struct function_set *set)
{
  size_t i;
  if (!set)
    return;
  for (i = 0; i < set->n; i++)
    function_def_cleanup(&set->fns[i]);
  free(set->fns);
  free(set->app_root);
  free(set->route_prefix);
  free(set);
}

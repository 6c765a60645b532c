/* he_app.c - host.json, function.json and HTTP route templates. */
#include "he_app.h"

#include "common/json.h"
#include "he_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX (4 * 1024 * 1024)

static enum app_result parse_file(struct he_app *app, const char *path, struct json **out,
                                  struct app_err *err)
{
  enum app_result r;
  char *text = NULL;
  size_t len = 0;
  const char *t;

  r = he_file_read(path, CONFIG_MAX, &text, &len, err);
  if (r != APP_OK)
    return r;
  t = text;
  if (len >= 3 && !memcmp(t, "\xEF\xBB\xBF", 3)) { /* editors on Windows add a BOM */
    t += 3;
    len -= 3;
  }
  r = json_parse(&app->arena, t, len, JSON_DEFAULT_MAX_DEPTH, out, err);
  free(text);
  if (r != APP_OK) {
    app_err_wrap(err, "%s", path);
    return APP_ERR_CONFIG;
  }
  if ((*out)->type != JSON_OBJECT)
    return app_err_set(err, APP_ERR_CONFIG, "%s: expected a JSON object", path);
  return APP_OK;
}

/* A string member, or NULL; a non-string value is a config error. */
static enum app_result get_str(const struct json *obj, const char *key, const char *file,
                               const char **out, struct app_err *err)
{
  const struct json *v = json_get_ci(obj, key);
  *out = NULL;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  if (v->type != JSON_STRING)
    return app_err_set(err, APP_ERR_CONFIG, "%s: \"%s\" must be a string", file, key);
  *out = v->str;
  return APP_OK;
}

static enum app_result get_str_array(struct he_app *app, const struct json *obj, const char *key,
                                     const char *file, const char ***out, size_t *out_n,
                                     struct app_err *err)
{
  const struct json *v = json_get_ci(obj, key), *c;
  size_t i = 0;
  *out = NULL;
  *out_n = 0;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  if (v->type != JSON_ARRAY)
    return app_err_set(err, APP_ERR_CONFIG, "%s: \"%s\" must be an array of strings", file, key);
  *out = arena_alloc(&app->arena, (v->len + 1) * sizeof **out);
  if (!*out)
    return app_err_set(err, APP_ERR_LIMIT, "%s: too large", file);
  for (c = v->child; c; c = c->next) {
    if (c->type != JSON_STRING)
      return app_err_set(err, APP_ERR_CONFIG, "%s: \"%s\" item %zu must be a string", file, key, i);
    (*out)[i++] = c->str;
  }
  *out_n = i;
  return APP_OK;
}

/* .NET configuration binds numbers given as numbers or numeric strings. */
static enum app_result get_int(const struct json *obj, const char *key, const char *file,
                               int64_t min, int64_t max, int64_t *out, struct app_err *err)
{
  const struct json *v = json_get_ci(obj, key);
  int64_t x;
  if (!v || v->type == JSON_NULL)
    return APP_OK;
  if ((v->type == JSON_NUMBER && json_number_i64(v, &x) && x >= min && x <= max) ||
      (v->type == JSON_STRING && he_parse_i64(v->str, min, max, &x))) {
    *out = x;
    return APP_OK;
  }
  return app_err_set(err, APP_ERR_CONFIG, "%s: \"%s\" must be an integer in [%lld, %lld]", file,
                     key, (long long)min, (long long)max);
}

static enum app_result load_host_json(struct he_app *app, struct app_err *err)
{
  enum app_result r;
  struct json *root = NULL;
  const struct json *ch, *desc, *ext, *sb, *http, *v;
  char *path = he_path_join(app->root, "host.json");
  const char *s;

  app->init_timeout_ms = 30000;
  app->route_prefix = "api";
  r = parse_file(app, path, &root, err);
  if (r != APP_OK)
    goto out;
  ch = json_get_ci(root, "customHandler");
  if (!ch)
    ch = json_get_ci(root, "httpWorker");
  if (!json_is(ch, JSON_OBJECT)) {
    r = app_err_set(err, APP_ERR_CONFIG,
                    "%s: no \"customHandler\" section: the Functions host would not start a "
                    "custom handler",
                    path);
    goto out;
  }
  desc = json_get_ci(ch, "description");
  if (!json_is(desc, JSON_OBJECT)) {
    r = app_err_set(err, APP_ERR_CONFIG, "%s: customHandler.description must be an object", path);
    goto out;
  }
  if ((r = get_str(desc, "defaultExecutablePath", path, &app->exe, err)) != APP_OK ||
      (r = get_str(desc, "workingDirectory", path, &app->working_dir, err)) != APP_OK ||
      (r = get_str(desc, "defaultWorkerPath", path, &app->worker_path, err)) != APP_OK ||
      (r = get_str_array(app, desc, "arguments", path, &app->args, &app->n_args, err)) != APP_OK ||
      (r = get_str_array(app, desc, "workerArguments", path, &app->worker_args, &app->n_worker_args,
                         err)) != APP_OK)
    goto out;
  if (!app->exe || !*app->exe) {
    r = app_err_set(err, APP_ERR_CONFIG,
                    "%s: customHandler.description.defaultExecutablePath is required", path);
    goto out;
  }
  /* enableProxyingHttpRequest (YARP, the name documented now) and the older
   * enableForwardingHttpRequest both send the request as it is */
  {
    static const char *const names[] = {"enableForwardingHttpRequest", "enableProxyingHttpRequest"};
    size_t k;
    for (k = 0; k < sizeof names / sizeof names[0]; k++) {
      v = json_get_ci(ch, names[k]);
      if (!v || v->type == JSON_NULL)
        continue;
      if (v->type == JSON_TRUE || (v->type == JSON_STRING && !strcasecmp(v->str, "true")))
        app->forwarding = true;
      else if (!(v->type == JSON_FALSE ||
                 (v->type == JSON_STRING && !strcasecmp(v->str, "false")))) {
        r = app_err_set(err, APP_ERR_CONFIG, "%s: %s must be a boolean", path, names[k]);
        goto out;
      }
    }
  }
  if ((r = get_str(ch, "initializationTimeout", path, &s, err)) != APP_OK)
    goto out;
  if (s && (!he_parse_timespan_ms(s, &app->init_timeout_ms) || app->init_timeout_ms <= 0)) {
    r = app_err_set(err, APP_ERR_CONFIG,
                    "%s: initializationTimeout \"%s\" is not a positive TimeSpan (hh:mm:ss)", path,
                    s);
    goto out;
  }
  if ((r = get_str(root, "functionTimeout", path, &s, err)) != APP_OK)
    goto out;
  if (s && (!he_parse_timespan_ms(s, &app->function_timeout_ms) || app->function_timeout_ms == 0)) {
    r = app_err_set(err, APP_ERR_CONFIG,
                    "%s: functionTimeout \"%s\" is not a TimeSpan (hh:mm:ss) or -1", path, s);
    goto out;
  }
  ext = json_get_ci(root, "extensions");
  sb = json_get_ci(ext, "serviceBus");
  if (json_is(sb, JSON_OBJECT)) {
    if ((r = get_int(sb, "maxConcurrentCalls", path, 1, 100000, &app->sb_max_concurrent_calls,
                     err)) != APP_OK ||
        (r = get_int(sb, "maxMessageBatchSize", path, 1, 100000, &app->sb_max_batch, err)) !=
            APP_OK)
      goto out;
  }
  http = json_get_ci(ext, "http");
  if (json_is(http, JSON_OBJECT)) {
    if ((r = get_str(http, "routePrefix", path, &s, err)) != APP_OK)
      goto out;
    if (s)
      app->route_prefix = s;
  }
out:
  free(path);
  return r;
}

bool he_valid_function_name(const char *s)
{
  size_t i, n = strlen(s);
  if (n == 0 || n > 128 || !isalpha((unsigned char)s[0]) || !strcasecmp(s, "host"))
    return false;
  for (i = 1; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
      return false;
  return true;
}

static enum app_result load_function(struct he_app *app, const char *name, const char *path,
                                     struct he_function *fn, struct app_err *err)
{
  enum app_result r;
  struct json *root = NULL;
  const struct json *bindings, *c, *v;
  size_t i = 0, n_in = 0, n_out = 0, n_http_out = 0;

  memset(fn, 0, sizeof *fn);
  fn->name = arena_strndup(&app->arena, name, strlen(name));
  r = parse_file(app, path, &root, err);
  if (r != APP_OK)
    return r;
  v = json_get_ci(root, "disabled");
  fn->disabled = json_is(v, JSON_TRUE) || (json_is(v, JSON_STRING) && !strcasecmp(v->str, "true"));
  bindings = json_get_ci(root, "bindings");
  if (!json_is(bindings, JSON_ARRAY))
    return app_err_set(err, APP_ERR_CONFIG, "%s: \"bindings\" must be an array", path);
  fn->bindings = arena_alloc(&app->arena, (bindings->len + 1) * sizeof *fn->bindings);
  if (!fn->bindings)
    return app_err_set(err, APP_ERR_LIMIT, "%s: too many bindings", path);
  for (c = bindings->child; c; c = c->next, i++) {
    struct he_binding *b = &fn->bindings[i];
    if (c->type != JSON_OBJECT)
      return app_err_set(err, APP_ERR_CONFIG, "%s: binding %zu must be an object", path, i);
    if ((r = get_str(c, "type", path, &b->type, err)) != APP_OK ||
        (r = get_str(c, "direction", path, &b->direction, err)) != APP_OK ||
        (r = get_str(c, "name", path, &b->name, err)) != APP_OK ||
        (r = get_str(c, "dataType", path, &b->data_type, err)) != APP_OK)
      return r;
    if (!b->type || !b->name || !b->direction)
      return app_err_set(err, APP_ERR_CONFIG,
                         "%s: binding %zu needs \"type\", \"direction\" and \"name\"", path, i);
    b->out = !strcasecmp(b->direction, "out") || !strcasecmp(b->direction, "inout");
    if (b->out) {
      n_out++;
      if (!strcasecmp(b->type, "http"))
        n_http_out++;
    } else {
      n_in++;
    }
    if (!b->out && he_has_suffix_ci(b->type, "Trigger")) {
      const char *card = NULL;
      if (fn->trig)
        return app_err_set(err, APP_ERR_CONFIG, "%s: more than one trigger binding", path);
      fn->trig = b;
      if (!strcasecmp(b->type, "serviceBusTrigger"))
        fn->trigger = HE_TRIGGER_SERVICEBUS;
      else if (!strcasecmp(b->type, "httpTrigger"))
        fn->trigger = HE_TRIGGER_HTTP;
      else
        fn->trigger = HE_TRIGGER_OTHER;
      if ((r = get_str(c, "cardinality", path, &card, err)) != APP_OK ||
          (r = get_str(c, "route", path, &fn->route, err)) != APP_OK ||
          (r = get_str_array(app, c, "methods", path, &fn->methods, &fn->n_methods, err)) != APP_OK)
        return r;
      fn->many = card && !strcasecmp(card, "many");
      if (fn->trigger == HE_TRIGGER_SERVICEBUS) {
        const char *entity = NULL;
        if ((r = get_str(c, "subscriptionName", path, &entity, err)) != APP_OK)
          return r;
        if (!entity && (r = get_str(c, "queueName", path, &entity, err)) != APP_OK)
          return r;
        fn->deadletter = entity && he_has_suffix_ci(entity, "/$DeadLetterQueue");
      }
      fn->has_dt = b->data_type != NULL;
      fn->binary = b->data_type && !strcasecmp(b->data_type, "binary");
      if (b->data_type && strcasecmp(b->data_type, "binary") &&
          strcasecmp(b->data_type, "string") && strcasecmp(b->data_type, "stream"))
        return app_err_set(err, APP_ERR_CONFIG,
                           "%s: dataType \"%s\" is not one of binary, string, stream", path,
                           b->data_type);
    }
  }
  fn->n_bindings = i;
  if (!fn->trig)
    return app_err_set(err, APP_ERR_CONFIG, "%s: no trigger binding (type \"...Trigger\")", path);
  fn->http_in_out = fn->trigger == HE_TRIGGER_HTTP && n_in == 1 && n_out == 1 && n_http_out == 1;
  return APP_OK;
}

static int str_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

enum app_result he_app_load(struct he_app *app, const char *root, struct app_err *err)
{
  enum app_result r;
  char real[PATH_MAX];
  DIR *d = NULL;
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0, i;

  memset(app, 0, sizeof *app);
  arena_init(&app->arena, 64 * CONFIG_MAX);
  if (!realpath(root, real))
    return app_err_set(err, APP_ERR_IO, "--script-root %s: %s", root, strerror(errno));
  app->root = xstrdup(real);
  r = load_host_json(app, err);
  if (r != APP_OK)
    return r;
  d = opendir(app->root);
  if (!d)
    return app_err_set(err, APP_ERR_IO, "%s: %s", app->root, strerror(errno));
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      names = xrealloc(names, cap * sizeof *names);
    }
    names[n++] = xstrdup(e->d_name);
  }
  closedir(d);
  if (n > 1)
    qsort(names, n, sizeof *names, str_cmp);
  app->fns = xcalloc(n + 1, sizeof *app->fns);
  for (i = 0; i < n; i++) {
    char *dir = he_path_join(app->root, names[i]);
    char *fj = he_path_join(dir, "function.json");
    struct stat st;
    if (stat(fj, &st) == 0 && S_ISREG(st.st_mode)) {
      if (!he_valid_function_name(names[i])) {
        size_t used = strlen(app->skipped);
        snprintf(app->skipped + used, sizeof app->skipped - used, "%s%s (invalid name)",
                 used ? ", " : "", names[i]);
      } else {
        r = load_function(app, names[i], fj, &app->fns[app->n_fns], err);
        if (r == APP_OK)
          app->n_fns++;
      }
    }
    free(fj);
    free(dir);
    if (r != APP_OK)
      break;
  }
  for (i = 0; i < n; i++)
    free(names[i]);
  free(names);
  if (r == APP_OK && app->n_fns == 0)
    r = app_err_set(err, APP_ERR_CONFIG, "%s: no function folders (<Name>/function.json)",
                    app->root);
  return r;
}

void he_app_cleanup(struct he_app *app)
{
  if (!app)
    return;
  free(app->root);
  free(app->fns);
  arena_cleanup(&app->arena);
  memset(app, 0, sizeof *app);
}

const struct he_function *he_app_find(const struct he_app *app, const char *name)
{
  size_t i;
  for (i = 0; i < app->n_fns; i++)
    if (!strcasecmp(app->fns[i].name, name))
      return &app->fns[i];
  return NULL;
}

enum app_result he_app_only(const struct he_app *app, enum he_trigger t,
                            const struct he_function **out, struct app_err *err)
{
  size_t i, count = 0;
  char names[256] = "";
  const char *kind = t == HE_TRIGGER_HTTP ? "httpTrigger" : "serviceBusTrigger";
  for (i = 0; i < app->n_fns; i++) {
    if (app->fns[i].trigger != t || app->fns[i].disabled || app->fns[i].deadletter)
      continue; /* a dead-letter queue's function consumes what the others dead-letter */
    *out = &app->fns[i];
    count++;
    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", count > 1 ? ", " : "",
             app->fns[i].name);
  }
  if (count == 1)
    return APP_OK;
  if (count == 0)
    return app_err_set(err, APP_ERR_CONFIG, "%s: no enabled %s function", app->root, kind);
  return app_err_set(err, APP_ERR_CONFIG, "several %s functions (%s): choose one with --function",
                     kind, names);
}

const struct he_binding *he_app_output(const struct he_function *fn, const char *name)
{
  size_t i;
  for (i = 0; i < fn->n_bindings; i++)
    if (fn->bindings[i].out && !strcmp(fn->bindings[i].name, name))
      return &fn->bindings[i];
  return NULL;
}

static int hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *he_url_decode(struct arena *a, const char *s, size_t n, bool plus_space)
{
  char *out = arena_alloc(a, n + 1);
  size_t i, o = 0;
  if (!out)
    return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else if (s[i] == '+' && plus_space) {
      out[o++] = ' ';
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

/* ---- route templates ---- */

struct seg {
  const char *p;
  size_t n;
};

static size_t split(const char *s, struct seg *segs, size_t max)
{
  size_t count = 0;
  while (*s) {
    const char *e;
    while (*s == '/')
      s++;
    if (!*s)
      break;
    e = strchr(s, '/');
    if (!e)
      e = s + strlen(s);
    if (count < max) {
      segs[count].p = s;
      segs[count].n = (size_t)(e - s);
    }
    count++;
    s = e;
  }
  return count;
}

static bool all_of(const char *v, int (*pred)(int))
{
  if (!*v)
    return false;
  for (; *v; v++)
    if (!pred((unsigned char)*v))
      return false;
  return true;
}

static bool is_guid(const char *v)
{
  size_t i, n = strlen(v);
  if (n == 38 && v[0] == '{' && v[37] == '}') {
    v++;
    n = 36;
  }
  if (n != 36)
    return false;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (v[i] != '-')
        return false;
    } else if (!isxdigit((unsigned char)v[i])) {
      return false;
    }
  }
  return true;
}

/* Check one constraint such as "int" or "min(1)"; unknown ones pass. */
static bool check_constraint(const char *c, size_t n, const char *v)
{
  char name[32], arg[64] = "";
  const char *paren = memchr(c, '(', n);
  size_t nl = paren ? (size_t)(paren - c) : n;
  int64_t x, lim;
  char *end;
  if (nl >= sizeof name)
    return true;
  memcpy(name, c, nl);
  name[nl] = '\0';
  if (paren && n - nl - 2 < sizeof arg && c[n - 1] == ')') {
    memcpy(arg, paren + 1, n - nl - 2);
    arg[n - nl - 2] = '\0';
  }
  if (!strcasecmp(name, "int"))
    return he_parse_i64(v[0] == '-' ? v + 1 : v, 0, INT32_MAX, &x);
  if (!strcasecmp(name, "long"))
    return he_parse_i64(v[0] == '-' ? v + 1 : v, 0, INT64_MAX, &x);
  if (!strcasecmp(name, "bool"))
    return !strcasecmp(v, "true") || !strcasecmp(v, "false");
  if (!strcasecmp(name, "guid"))
    return is_guid(v);
  if (!strcasecmp(name, "alpha"))
    return all_of(v, isalpha);
  if (!strcasecmp(name, "double") || !strcasecmp(name, "float") || !strcasecmp(name, "decimal")) {
    strtod(v, &end);
    return *v && !*end;
  }
  if (!strcasecmp(name, "min") || !strcasecmp(name, "max")) {
    if (!he_parse_i64(v, INT64_MIN + 1, INT64_MAX, &x) ||
        !he_parse_i64(arg, INT64_MIN + 1, INT64_MAX, &lim))
      return false;
    return name[1] == 'i' || name[1] == 'I' ? x >= lim : x <= lim;
  }
  if (!strcasecmp(name, "minlength") || !strcasecmp(name, "maxlength") ||
      !strcasecmp(name, "length")) {
    if (!he_parse_i64(arg, 0, INT64_MAX, &lim))
      return true;
    if (!strcasecmp(name, "minlength"))
      return (int64_t)strlen(v) >= lim;
    if (!strcasecmp(name, "maxlength"))
      return (int64_t)strlen(v) <= lim;
    return (int64_t)strlen(v) == lim;
  }
  return true;
}

struct param_spec {
  const char *name;
  size_t name_len;
  const char *constraints; /* after the first ':', up to '?'/'=' */
  size_t c_len;
  const char *def;
  size_t def_len;
  bool optional, catch_all;
};

static bool parse_param(const struct seg *s, struct param_spec *ps)
{
  const char *p = s->p + 1, *end = s->p + s->n - 1, *q;
  memset(ps, 0, sizeof *ps);
  if (s->n < 3 || s->p[0] != '{' || *end != '}')
    return false;
  if (*p == '*') {
    ps->catch_all = true;
    p++;
    if (*p == '*')
      p++;
  }
  q = p;
  while (q < end && *q != ':' && *q != '?' && *q != '=')
    q++;
  ps->name = p;
  ps->name_len = (size_t)(q - p);
  if (q < end && *q == ':') {
    const char *cs = q + 1;
    while (q < end && *q != '?' && *q != '=')
      q++;
    ps->constraints = cs;
    ps->c_len = (size_t)(q - cs);
  }
  if (q < end && *q == '?') {
    ps->optional = true;
    q++;
  }
  if (q < end && *q == '=') {
    ps->def = q + 1;
    ps->def_len = (size_t)(end - q - 1);
  }
  return ps->name_len > 0;
}

static bool constraints_ok(const struct param_spec *ps, const char *v)
{
  const char *c = ps->constraints, *end = ps->constraints + ps->c_len;
  while (c && c < end) {
    const char *colon = c;
    int depth = 0;
    while (colon < end && (*colon != ':' || depth)) {
      if (*colon == '(')
        depth++;
      else if (*colon == ')')
        depth--;
      colon++;
    }
    if (!check_constraint(c, (size_t)(colon - c), v))
      return false;
    c = colon + 1;
  }
  return true;
}

static bool match_template(const char *tmpl, const char *path, struct arena *a,
                           struct he_route_param *params, size_t max_params, size_t *out_n)
{
  struct seg ts[64], ps[256];
  size_t nt = split(tmpl, ts, 64), np = split(path, ps, 256), i, j = 0, k = 0;
  if (nt > 64 || np > 256)
    return false;
  for (i = 0; i < nt; i++) {
    struct param_spec spec;
    if (!parse_param(&ts[i], &spec)) {
      char *lit;
      if (j >= np)
        return false;
      lit = he_url_decode(a, ps[j].p, ps[j].n, false);
      if (!lit || ts[i].n != strlen(lit) || strncasecmp(ts[i].p, lit, ts[i].n) != 0)
        return false;
      j++;
      continue;
    }
    if (spec.catch_all) {
      /* the rest of the path, decoded, slashes kept */
      if (j < np) {
        const char *start = ps[j].p, *stop = ps[np - 1].p + ps[np - 1].n;
        if (k < max_params) {
          params[k].name = arena_strndup(a, spec.name, spec.name_len);
          params[k].value = he_url_decode(a, start, (size_t)(stop - start), false);
          k++;
        }
      } else if (spec.def && k < max_params) {
        params[k].name = arena_strndup(a, spec.name, spec.name_len);
        params[k].value = arena_strndup(a, spec.def, spec.def_len);
        k++;
      }
      j = np;
      i = nt;
      break;
    }
    if (j < np) {
      char *v = he_url_decode(a, ps[j].p, ps[j].n, false);
      if (!v || !constraints_ok(&spec, v))
        return false;
      if (k < max_params) {
        params[k].name = arena_strndup(a, spec.name, spec.name_len);
        params[k].value = v;
        k++;
      }
      j++;
    } else if (spec.def) {
      if (k < max_params) {
        params[k].name = arena_strndup(a, spec.name, spec.name_len);
        params[k].value = arena_strndup(a, spec.def, spec.def_len);
        k++;
      }
    } else if (!spec.optional) {
      return false;
    }
  }
  if (j != np)
    return false;
  *out_n = k;
  return true;
}

static int route_rank(const char *tmpl)
{
  if (strstr(tmpl, "{*"))
    return 2;
  return strchr(tmpl, '{') ? 1 : 0;
}

bool he_route_match(const struct he_app *app, const char *method, const char *path, struct arena *a,
                    const struct he_function **out_fn, struct he_route_param *params,
                    size_t max_params, size_t *out_n)
{
  const char *p = path;
  size_t plen = strlen(app->route_prefix), i, m;
  int rank;

  while (*p == '/')
    p++;
  if (plen) {
    if (strncasecmp(p, app->route_prefix, plen) != 0 || (p[plen] != '/' && p[plen] != '\0'))
      return false;
    p += plen;
  }
  /* literal routes first, then parameters, then catch-alls (ASP.NET
   * route precedence, simplified) */
  for (rank = 0; rank < 3; rank++) {
    for (i = 0; i < app->n_fns; i++) {
      const struct he_function *fn = &app->fns[i];
      const char *tmpl = fn->route ? fn->route : fn->name;
      bool method_ok = fn->n_methods == 0;
      if (fn->trigger != HE_TRIGGER_HTTP || fn->disabled || route_rank(tmpl) != rank)
        continue;
      for (m = 0; m < fn->n_methods; m++)
        if (!strcasecmp(fn->methods[m], method))
          method_ok = true;
      if (!method_ok)
        continue;
      if (match_template(tmpl, p, a, params, max_params, out_n)) {
        *out_fn = fn;
        return true;
      }
    }
  }
  return false;
}

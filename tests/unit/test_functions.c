/* test_functions.c - function.json / host.json discovery (handler/host/functions.c),
 * on app roots written to temporary directories. */
#define _XOPEN_SOURCE 700
#include "host/functions.h"
#include "check.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];

static void write_file(const char *rel, const char *text)
{
  char path[PATH_MAX * 2];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", root, rel);
  f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

static void make_dir(const char *rel)
{
  char path[PATH_MAX * 2];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  if (mkdir(path, 0755) != 0) {
    perror(path);
    exit(1);
  }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void new_root(void)
{
  if (root[0])
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  snprintf(root, sizeof root, "%s/d365cdc-fn.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    exit(1);
  }
}

static const char changes_json[] =
    "{\n  \"bindings\": [\n    {\n      \"type\": \"serviceBusTrigger\",\n"
    "      \"direction\": \"in\",\n      \"name\": \"msgs\",\n"
    "      \"topicName\": \"%CDC_TOPIC%\",\n      \"subscriptionName\": \"%CDC_SUBSCRIPTION%\",\n"
    "      \"connection\": \"ServiceBusConnection\",\n      \"dataType\": \"binary\",\n"
    "      \"cardinality\": \"many\"\n    }\n  ]\n}\n";

static void test_discovery(void)
{
  struct function_set *set = NULL;
  struct app_err err;
  const struct function_def *fn;
  enum app_result r;

  TEST_CASE("discovery");
  new_root();
  write_file("host.json", "{\"version\":\"2.0\",\"customHandler\":{\"description\":{"
                          "\"defaultExecutablePath\":\"handler\"},"
                          "\"enableForwardingHttpRequest\":true}}");
  make_dir("Changes");
  write_file("Changes/function.json", changes_json);
  make_dir("Read");
  write_file("Read/function.json",
             "{\"bindings\":[{\"authLevel\":\"function\",\"Type\":\"HttpTrigger\",\"direction\":"
             "\"in\",\"name\":\"req\",\"methods\":[\"GET\",\"Head\"],\"route\":\"data/v9.2/"
             "{*path}\"},{\"type\":\"http\",\"direction\":\"out\",\"name\":\"res\"}]}");
  make_dir("ChangesOne");
  write_file("ChangesOne/function.json",
             "{\"disabled\":true,\"bindings\":[{\"type\":\"serviceBusTrigger\",\"name\":\"msg\","
             "\"queueName\":\"q\",\"dataType\":\"String\",\"cardinality\":\"One\"},"
             "{\"type\":\"redis\",\"direction\":\"out\",\"name\":\"cache\",\"command\":\"SET\"},"
             "{\"type\":\"sql\",\"direction\":\"out\",\"name\":\"row\",\"commandText\":"
             "\"dbo.T\",\"dataType\":\"binary\"},"
             "{\"type\":\"blob\",\"direction\":\"in\",\"name\":\"ref\",\"path\":\"x/y\"},"
             "{\"type\":\"serviceBus\",\"direction\":\"out\",\"name\":\"outMsg\"}]}");
  make_dir("Timer");
  write_file("Timer/function.json", "{\"bindings\":[{\"type\":\"timerTrigger\",\"name\":\"t\","
                                    "\"schedule\":\"0 */5 * * * *\",\"direction\":\"in\"}]}");
  make_dir("lib");     /* not a function: no function.json */
  make_dir(".hidden"); /* skipped */
  write_file(".hidden/function.json", "not even JSON");
  write_file("handler", "#!/bin/sh\n"); /* the binary, a file */

  r = functions_load(root, &set, &err);
  CHECK_INTEQ(r, APP_OK);
  if (r != APP_OK) {
    fprintf(stderr, "  %s\n", err.msg);
    return;
  }
  CHECK_STREQ(set->app_root, root);
  CHECK(set->has_host_json);
  CHECK(set->forwarding);
  CHECK_INTEQ(set->n, 4);
  if (set->n == 4) {
    CHECK_STREQ(set->fns[0].name, "Changes");
    CHECK_STREQ(set->fns[1].name, "ChangesOne");
    CHECK_STREQ(set->fns[2].name, "Read");
    CHECK_STREQ(set->fns[3].name, "Timer");
  }

  fn = functions_find(set, "Changes");
  CHECK(fn != NULL);
  if (fn) {
    CHECK_INTEQ(fn->trigger, FN_TRIGGER_SERVICE_BUS);
    CHECK_STREQ(fn->trigger_type, "serviceBusTrigger");
    CHECK_STREQ(fn->trigger_name, "msgs");
    CHECK_INTEQ(fn->data_type, FN_DATA_BINARY);
    CHECK_INTEQ(fn->cardinality, FN_CARDINALITY_MANY);
    CHECK_INTEQ(fn->noutputs, 0);
    CHECK(!fn->disabled);
    CHECK_CONTAINS(fn->path, "/Changes/function.json");
  }
  CHECK(functions_find(set, "changes") == NULL); /* routes are case-sensitive */
  CHECK(functions_find(set, "Missing") == NULL);
  CHECK(functions_find(NULL, "Changes") == NULL);

  fn = functions_find(set, "ChangesOne");
  CHECK(fn != NULL);
  if (fn) {
    const struct function_binding *o;
    CHECK(fn->disabled);
    CHECK_INTEQ(fn->data_type, FN_DATA_STRING);
    CHECK_INTEQ(fn->cardinality, FN_CARDINALITY_ONE);
    CHECK_INTEQ(fn->noutputs, 3); /* the blob input is not an output */
    o = functions_output(fn, "SQL");
    CHECK(o && !strcmp(o->name, "row") && o->data_type == FN_DATA_BINARY);
    o = functions_output(fn, "redis");
    CHECK(o && !strcmp(o->name, "cache") && o->data_type == FN_DATA_UNSET);
    o = functions_output(fn, "serviceBus");
    CHECK(o && !strcmp(o->name, "outMsg"));
    CHECK(functions_output(fn, "http") == NULL);
  }

  fn = functions_find(set, "Read");
  CHECK(fn != NULL);
  if (fn) {
    CHECK_INTEQ(fn->trigger, FN_TRIGGER_HTTP);
    CHECK_STREQ(fn->trigger_name, "req");
    CHECK_STREQ(fn->http_route, "data/v9.2/{*path}");
    CHECK_STREQ(fn->http_methods, "get,head");
    CHECK(functions_output(fn, "http") && !strcmp(functions_output(fn, "http")->name, "res"));
  }
  fn = functions_find(set, "Timer");
  CHECK(fn && fn->trigger == FN_TRIGGER_OTHER && !strcmp(fn->trigger_type, "timerTrigger"));
  CHECK(fn && fn->data_type == FN_DATA_UNSET && fn->cardinality == FN_CARDINALITY_UNSET);
  functions_destroy(set);
  functions_destroy(NULL);

  TEST_CASE("no host.json, no functions");
  new_root();
  CHECK_INTEQ(functions_load(root, &set, &err), APP_OK);
  CHECK(!set->has_host_json && !set->forwarding && set->n == 0);
  functions_destroy(set);

  TEST_CASE("host.json forwarding as a string, legacy httpWorker section");
  write_file("host.json", "{\"customHandler\":{\"enableForwardingHttpRequest\":\"True\"}}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_OK);
  CHECK(set->has_host_json && set->forwarding);
  functions_destroy(set);
  write_file("host.json", "{\"httpWorker\":{\"enableForwardingHttpRequest\":true}}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_OK);
  CHECK(set->forwarding);
  functions_destroy(set);
  write_file("host.json", "{\"version\":\"2.0\"}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_OK);
  CHECK(!set->forwarding);
  functions_destroy(set);

  TEST_CASE("enableProxyingHttpRequest (the current name) and routePrefix");
  write_file("host.json", "{\"customHandler\":{\"enableProxyingHttpRequest\":true},"
                          "\"extensions\":{\"http\":{\"routePrefix\":\"/replica/\"}}}");
  make_dir("Reads");
  write_file("Reads/function.json",
             "{\"bindings\":[{\"type\":\"httpTrigger\",\"direction\":\"in\",\"name\":\"req\","
             "\"route\":\"data/v9.2/{*path}\"},{\"type\":\"http\",\"direction\":\"out\","
             "\"name\":\"res\"}]}");
  make_dir("Counters");
  write_file("Counters/function.json",
             "{\"bindings\":[{\"type\":\"httpTrigger\",\"direction\":\"in\",\"name\":\"req\"},"
             "{\"type\":\"http\",\"direction\":\"out\",\"name\":\"res\"}]}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_OK);
  CHECK(set->forwarding && set->proxying);
  CHECK_STREQ(set->route_prefix, "replica");
  {
    char *p1 = functions_public_path(set, functions_find(set, "Reads"));
    char *p2 = functions_public_path(set, functions_find(set, "Counters"));
    CHECK_STREQ(p1, "/replica/data/v9.2/");
    CHECK_STREQ(p2, "/replica/Counters");
    free(p1);
    free(p2);
  }
  functions_destroy(set);
  write_file("host.json", "{\"customHandler\":{\"enableProxyingHttpRequest\":\"false\"},"
                          "\"extensions\":{\"http\":{\"routePrefix\":\"\"}}}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_OK);
  CHECK(!set->forwarding && !set->proxying);
  {
    char *p1 = functions_public_path(set, functions_find(set, "Reads"));
    CHECK_STREQ(p1, "/data/v9.2/");
    free(p1);
  }
  functions_destroy(set);
  write_file("host.json", "{\"customHandler\":{\"enableProxyingHttpRequest\":1}}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "customHandler.enableProxyingHttpRequest must be true or false");
  write_file("host.json", "{\"extensions\":{\"http\":{\"routePrefix\":7}}}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "extensions.http.routePrefix must be a string");
  new_root();

  TEST_CASE("cardinality many without dataType loads (with a warning)");
  make_dir("Batch");
  write_file("Batch/function.json", "{\"bindings\":[{\"type\":\"serviceBusTrigger\",\"name\":\"m\","
                                    "\"cardinality\":\"many\"}]}");
  CHECK_INTEQ(functions_load(root, &set, &err), APP_OK);
  CHECK(set->n == 1 && set->fns[0].data_type == FN_DATA_UNSET);
  functions_destroy(set);
}

static void test_bad_files(void)
{
  static const struct {
    const char *folder; /* function folder, or NULL for host.json */
    const char *text;
    enum app_result code;
    const char *msg;
  } cases[] = {
      {"F", "{\n  \"bindings\": [\n    {\"type\": \"serviceBusTrigger\",, }\n  ]\n}\n",
       APP_ERR_CONFIG, "/F/function.json: invalid JSON at line 3, column 35"},
      {"F", "", APP_ERR_CONFIG, "/F/function.json: empty file (expected a JSON object)"},
      {"F", "{} x", APP_ERR_CONFIG, "/F/function.json: invalid JSON at line 1, column 4"},
      {"F", "[]", APP_ERR_CONFIG, "/F/function.json: expected a JSON object"},
      {"F", "{}", APP_ERR_CONFIG, "/F/function.json: \"bindings\" must be an array"},
      {"F", "{\"bindings\":{}}", APP_ERR_CONFIG, "\"bindings\" must be an array"},
      {"F", "{\"bindings\":[]}", APP_ERR_CONFIG, "\"bindings\" is empty"},
      {"F", "{\"bindings\":[5]}", APP_ERR_CONFIG, "bindings[0] must be an object"},
      {"F", "{\"bindings\":[{\"name\":\"x\"}]}", APP_ERR_CONFIG, "bindings[0] has no \"type\""},
      {"F", "{\"bindings\":[{\"type\":1,\"name\":\"x\"}]}", APP_ERR_CONFIG,
       "bindings[0].type must be a string"},
      {"F", "{\"bindings\":[{\"type\":\"serviceBusTrigger\"}]}", APP_ERR_CONFIG,
       "bindings[0] (serviceBusTrigger) has no \"name\""},
      {"F", "{\"bindings\":[{\"type\":\"redis\",\"name\":\"c\",\"direction\":\"out\"}]}",
       APP_ERR_CONFIG, "no trigger binding"},
      {"F",
       "{\"bindings\":[{\"type\":\"serviceBusTrigger\",\"name\":\"a\"},{\"type\":\"httpTrigger\","
       "\"name\":\"b\"}]}",
       APP_ERR_CONFIG, "more than one trigger binding (bindings[1] is the second)"},
      {"F",
       "{\"bindings\":[{\"type\":\"serviceBusTrigger\",\"name\":\"m\",\"dataType\":\"text\"}]}",
       APP_ERR_CONFIG, "bindings[0].dataType 'text' is not one of binary, string, stream"},
      {"F",
       "{\"bindings\":[{\"type\":\"serviceBusTrigger\",\"name\":\"m\",\"cardinality\":\"all\"}]}",
       APP_ERR_CONFIG, "bindings[0].cardinality 'all' is not one of one, many"},
      {"F", "{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"r\",\"methods\":\"get\"}]}",
       APP_ERR_CONFIG, "httpTrigger methods must be an array of strings"},
      {"F", "{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"r\",\"methods\":[\"\"]}]}",
       APP_ERR_CONFIG, "httpTrigger methods must be an array of non-empty strings"},
      {"1bad", "{\"bindings\":[{\"type\":\"serviceBusTrigger\",\"name\":\"m\"}]}", APP_ERR_CONFIG,
       "'1bad' is not a valid function name"},
      {"has space", "{\"bindings\":[{\"type\":\"serviceBusTrigger\",\"name\":\"m\"}]}",
       APP_ERR_CONFIG, "'has space' is not a valid function name"},
      {NULL, "{\"customHandler\": }", APP_ERR_CONFIG, "/host.json: invalid JSON at line 1"},
      {NULL, "{\"customHandler\":{\"enableForwardingHttpRequest\":5}}", APP_ERR_CONFIG,
       "customHandler.enableForwardingHttpRequest must be true or false"},
      {NULL, "{\"customHandler\":[]}", APP_ERR_CONFIG, "customHandler must be an object"},
  };
  size_t i;
  struct app_err err;
  struct function_set *set;

  TEST_CASE("bad function.json and host.json files");
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char rel[64];
    enum app_result r;
    new_root();
    if (cases[i].folder) {
      make_dir(cases[i].folder);
      snprintf(rel, sizeof rel, "%s/function.json", cases[i].folder);
      write_file(rel, cases[i].text);
    } else {
      write_file("host.json", cases[i].text);
    }
    set = (struct function_set *)1;
    app_err_clear(&err);
    r = functions_load(root, &set, &err);
    CHECK_MSG(r == cases[i].code, "case %zu: got %s (%s)", i, app_result_str(r), err.msg);
    CHECK_MSG(set == (struct function_set *)1, "case %zu: *out was written on failure", i);
    CHECK_MSG(strstr(err.msg, cases[i].msg) != NULL, "case %zu:\n  got:      %s\n  expected: %s", i,
              err.msg, cases[i].msg);
    CHECK_MSG(strstr(err.msg, root) != NULL, "case %zu: the message names the file: %s", i,
              err.msg);
    if (r == APP_OK)
      functions_destroy(set);
  }

  TEST_CASE("unreadable files and roots");
  new_root();
  make_dir("Dir");
  make_dir("Dir/function.json"); /* a directory where the file should be */
  CHECK_INTEQ(functions_load(root, &set, &err), APP_ERR_IO);
  CHECK_CONTAINS(err.msg, "Dir/function.json is not a regular file");
  new_root();
  make_dir("Big");
  {
    char path[PATH_MAX * 2];
    FILE *f;
    snprintf(path, sizeof path, "%s/Big/function.json", root);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
      fseek(f, FUNCTIONS_MAX_FILE_BYTES + 1, SEEK_SET);
      fputc(' ', f);
      fclose(f);
    }
  }
  CHECK_INTEQ(functions_load(root, &set, &err), APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "bytes, more than the 1048576 allowed");
  CHECK_INTEQ(functions_load("/nonexistent/d365cdc-app-root", &set, &err), APP_ERR_IO);
  CHECK_CONTAINS(err.msg, "cannot read the app root /nonexistent/d365cdc-app-root");
}

static void test_app_root(void)
{
  char *p = NULL, exe[PATH_MAX];
  struct app_err err;
  ssize_t n;

  TEST_CASE("app root");
  CHECK_INTEQ(functions_app_root("/srv/app", &p, &err), APP_OK);
  CHECK_STREQ(p, "/srv/app");
  free(p);
  p = NULL;
  CHECK_INTEQ(functions_app_root("", &p, &err), APP_OK);
  n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    CHECK_STREQ(p, exe); /* the directory of the executable */
  }
  free(p);
  p = NULL;
  CHECK_INTEQ(functions_app_root(NULL, &p, &err), APP_OK);
  CHECK(p && p[0] == '/');
  free(p);
}

int main(void)
{
  test_discovery();
  test_bad_files();
  test_app_root();
  if (root[0])
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return check_report("test_functions");
}

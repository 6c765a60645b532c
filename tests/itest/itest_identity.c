/* itest_identity.c - the token provider against a real token service
 * (build/tools/tokensvc), run by tests/e2e/identity_tokens.sh. The
 * credential comes from the environment exactly as the handler reads it
 * (AZURE_*, IDENTITY_*, REDIS_CONN_* for the connection's own settings).
 *
 *   itest_identity get SCOPE               a token; prints "ok" and the stats
 *   itest_identity fail SCOPE CODE TEXT    must fail with result CODE
 *                                          (app_result_str) and a message
 *                                          containing TEXT, without any secret
 *   itest_identity retry SCOPE MS          keep asking (as the Redis pool would)
 *                                          until a token comes, at most MS
 *   itest_identity concurrent SCOPE N      N threads ask at once: one fetch
 *   itest_identity refresh SCOPE           the refresh thread renews the token
 *                                          ahead of expiry (lifetime a few s)
 * Tokens are never printed. */
#include "../unit/check.h"
#include "identity/azid.h"
#include "map/sink.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *env(const char *n)
{
  const char *v = getenv(n);
  return v && *v ? v : NULL;
}

static struct azid *provider(void)
{
  struct idcred_settings s;
  struct idcred c;
  struct azid_options o;
  struct azid *p = NULL;
  struct app_err err;
  memset(&s, 0, sizeof s);
  s.conn_name = "RedisConnection";
  s.conn_tenant_id = env("REDIS_CONN_TENANT_ID");
  s.conn_client_id = env("REDIS_CONN_CLIENT_ID");
  s.conn_client_secret = env("REDIS_CONN_CLIENT_SECRET");
  s.tenant_id = env("AZURE_TENANT_ID");
  s.client_id = env("AZURE_CLIENT_ID");
  s.client_secret = env("AZURE_CLIENT_SECRET");
  s.cert_path = env("AZURE_CLIENT_CERTIFICATE_PATH");
  s.cert_password = env("AZURE_CLIENT_CERTIFICATE_PASSWORD");
  s.federated_token_file = env("AZURE_FEDERATED_TOKEN_FILE");
  s.authority_host = env("AZURE_AUTHORITY_HOST");
  s.identity_endpoint = env("IDENTITY_ENDPOINT");
  s.identity_header = env("IDENTITY_HEADER");
  if (idcred_select(&s, &c, &err) != APP_OK) {
    fprintf(stderr, "itest_identity: %s\n", err.msg);
    exit(2);
  }
  memset(&o, 0, sizeof o);
  o.timeout_ms = env("CDC_IDENTITY_TIMEOUT_MS") ? atoi(env("CDC_IDENTITY_TIMEOUT_MS")) : 0;
  o.backoff_first_ms = 200;
  if (azid_create(&c, &o, &p, &err) != APP_OK) {
    fprintf(stderr, "itest_identity: %s\n", err.msg);
    exit(2);
  }
  fprintf(stderr, "credential: %s\n", azid_describe(p));
  idcred_cleanup(&c);
  return p;
}

static void stats(struct azid *p)
{
  struct azid_stats st;
  azid_get_stats(p, &st);
  printf("fetches=%llu failures=%llu background=%llu waits=%llu hits=%llu\n",
         (unsigned long long)st.fetches, (unsigned long long)st.failures,
         (unsigned long long)st.background, (unsigned long long)st.waits,
         (unsigned long long)st.hits);
}

/* no secret of the environment in text */
static void check_no_secret(const char *text)
{
  const char *names[] = {"AZURE_CLIENT_SECRET", "IDENTITY_HEADER", "REDIS_CONN_CLIENT_SECRET",
                         "AZURE_CLIENT_CERTIFICATE_PASSWORD"};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++)
    if (env(names[i]))
      CHECK_MSG(!strstr(text, env(names[i])), "the message contains %s", names[i]);
  /* tokensvc's tokens look like tok<n>.<hex> */
  for (const char *t = strstr(text, "tok"); t; t = strstr(t + 1, "tok"))
    CHECK_MSG(!(t[3] >= '0' && t[3] <= '9'), "the message contains a token: %s", text);
}

struct getter {
  struct azid *p;
  const char *scope;
  enum app_result r;
  uint64_t serial;
};

static void *get_thread(void *arg)
{
  struct getter *g = arg;
  struct azid_token t;
  struct app_err err;
  g->r = azid_get(g->p, g->scope, sink_now_ms() + 10000, &t, &err);
  g->serial = t.serial;
  azid_token_cleanup(&t);
  return NULL;
}

int main(int argc, char **argv)
{
  struct azid *p;
  struct azid_token t;
  struct app_err err;
  const char *cmd = argc > 1 ? argv[1] : "";
  const char *scope =
      argc > 2 && strcmp(argv[2], "-") ? argv[2] : "https://redis.azure.com/.default";
  enum app_result r;
  int rc = 0;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  p = provider();
  app_err_clear(&err);
  if (!strcmp(cmd, "get")) {
    TEST_CASE("get");
    r = azid_get(p, scope, sink_now_ms() + 10000, &t, &err);
    CHECK_MSG(r == APP_OK, "%s: %s", app_result_str(r), err.msg);
    CHECK(r != APP_OK || (t.value && !strncmp(t.value, "tok", 3)));
    azid_token_cleanup(&t);
    if (r == APP_OK)
      printf("ok\n");
  } else if (!strcmp(cmd, "fail") && argc > 4) {
    int64_t t0 = sink_now_ms();
    TEST_CASE("fail");
    r = azid_get(p, scope, sink_now_ms() + 10000, &t, &err);
    CHECK_MSG(r != APP_OK && !strcmp(app_result_str(r), argv[3]), "got %s: %s", app_result_str(r),
              err.msg);
    CHECK_CONTAINS(err.msg, argv[4]);
    check_no_secret(err.msg);
    azid_token_cleanup(&t);
    printf("failed as expected in %lld ms: %s: %s\n", (long long)(sink_now_ms() - t0),
           app_result_str(r), err.msg);
  } else if (!strcmp(cmd, "retry") && argc > 3) {
    int64_t end = sink_now_ms() + atoi(argv[3]);
    int tries = 0;
    TEST_CASE("retry");
    do {
      tries++;
      r = azid_get(p, scope, sink_now_ms() + 1000, &t, &err);
      azid_token_cleanup(&t);
      if (r != APP_OK) {
        check_no_secret(err.msg);
        usleep(50 * 1000);
      }
    } while (r != APP_OK && sink_now_ms() < end);
    CHECK_MSG(r == APP_OK, "no token within %s ms: %s", argv[3], err.msg);
    printf("ok after %d calls\n", tries);
  } else if (!strcmp(cmd, "concurrent") && argc > 3) {
    int n = atoi(argv[3]), i;
    struct getter *g = calloc((size_t)n, sizeof *g);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    struct azid_stats st;
    TEST_CASE("concurrent");
    for (i = 0; i < n; i++) {
      g[i].p = p;
      g[i].scope = scope;
      pthread_create(&th[i], NULL, get_thread, &g[i]);
    }
    for (i = 0; i < n; i++) {
      pthread_join(th[i], NULL);
      CHECK(g[i].r == APP_OK);
      CHECK(g[i].serial == g[0].serial);
    }
    azid_get_stats(p, &st);
    CHECK_INTEQ(st.fetches, 1);
    free(g);
    free(th);
    printf("ok\n");
  } else if (!strcmp(cmd, "refresh")) {
    struct azid_token t2;
    int64_t t0;
    struct azid_stats st;
    TEST_CASE("refresh");
    r = azid_get(p, scope, sink_now_ms() + 10000, &t, &err);
    CHECK_MSG(r == APP_OK, "%s", err.msg);
    /* wait until the refresh thread stored the next token (before expiry) */
    t0 = sink_now_ms();
    for (;;) {
      bool have = azid_cached(p, scope, &t2);
      bool newer = have && t2.serial != t.serial;
      azid_token_cleanup(&t2);
      if (newer || sink_now_ms() - t0 > 20000)
        break;
      usleep(20 * 1000);
    }
    CHECK_MSG(sink_now_ms() < t.expires_ms, "the token was renewed only after it expired");
    azid_get_stats(p, &st);
    CHECK(st.background >= 1);
    printf("renewed %lld ms before expiry\n", (long long)(t.expires_ms - sink_now_ms()));
    azid_token_cleanup(&t);
  } else {
    fprintf(stderr, "usage: itest_identity get|fail|retry|concurrent|refresh ...\n");
    rc = 2;
  }
  stats(p);
  azid_destroy(p);
  curl_global_cleanup();
  return rc ? rc : check_report("itest_identity");
}

/* itest_redis_conn.c - one write and one read through the sink with the
 * connection string in $REDIS_CONN (TLS, AUTH, ACL users, databases).
 *
 *   itest_redis_conn ok                      the write and read succeed
 *   itest_redis_conn fail CODE TEXT [slow]   creating the sink or the apply
 *                                            fails with app_result_str CODE and
 *                                            TEXT in the message; at once (no
 *                                            retries) unless "slow" is given
 * $REDIS_SECRET, when set, must not appear in any message. Run by
 * tests/e2e/redis_tls.sh and tests/e2e/redis_auth.sh. */
#include "itest_redis.h"

#define T0 INT64_C(1731053106000)

int main(int argc, char **argv)
{
  struct app_config cfg;
  struct redis_sink *s;
  struct arena a;
  struct doc *d;
  struct sink_stats st;
  struct app_err err = {0};
  enum app_result r;
  const char *secret = getenv("REDIS_SECRET");
  int64_t t0;

  bool fail, slow;

  if (argc < 2 || (strcmp(argv[1], "ok") && (strcmp(argv[1], "fail") || argc < 4))) {
    fprintf(stderr, "usage: itest_redis_conn ok | fail CODE TEXT [slow]\n");
    return 2;
  }
  fail = !strcmp(argv[1], "fail");
  slow = fail && argc > 4 && !strcmp(argv[4], "slow");
  arena_init(&a, 0);
  if (!getenv("CDC_RETRY_BUDGET_MS"))
    itest_set("CDC_RETRY_BUDGET_MS=10000");
  itest_set("CDC_REDIS_POOL=2");
  itest_set(itest_connstr());
  TEST_CASE(argv[1]);
  if (config_load(&cfg, itest_lookup, &err) != APP_OK) {
    fprintf(stderr, "config: %s\n", err.msg);
    return 2;
  }
  r = redis_sink_create(&cfg, &s, &err);
  if (r != APP_OK) {
    fprintf(stderr, "create: %s: %s\n", app_result_str(r), err.msg);
    CHECK(fail);
    if (fail) {
      CHECK_STREQ(app_result_str(r), argv[2]);
      CHECK_CONTAINS(err.msg, argv[3]);
    }
    config_cleanup(&cfg);
    return check_report("itest_redis_conn");
  }
  d = itest_doc(&a, CDC_OP_CREATE, "account", "00000000-0000-0000-0000-0000000000c1", T0, true,
                "name", "\"over the wire\"", NULL);
  t0 = sink_now_ms();
  r = itest_apply(s, &d, 1, &st, &err);
  if (secret && *secret)
    CHECK_MSG(strstr(err.msg, secret) == NULL, "secret leaked: %s", err.msg);
  if (!strcmp(argv[1], "ok")) {
    struct redis_record rec;
    CHECK_MSG(r == APP_OK, "apply failed: %s", err.msg);
    CHECK_INTEQ(st.applied + st.stale, 1);
    rec = itest_read(s, &a, "account", "00000000-0000-0000-0000-0000000000c1");
    CHECK_INTEQ(rec.state, RREC_LIVE);
    CHECK_STREQ(itest_prop_json(&rec, "name"), "\"over the wire\"");
  } else {
    fprintf(stderr, "error (expected): %s: %s\n", app_result_str(r), err.msg);
    CHECK_STREQ(app_result_str(r), argv[2]);
    CHECK_CONTAINS(err.msg, argv[3]);
    if (!slow)
      CHECK_INTEQ(st.retries, 0);
    CHECK_MSG(slow || sink_now_ms() - t0 < 3000, "took %lld ms: not a fast failure",
              (long long)(sink_now_ms() - t0));
  }
  itest_mux_free();
  redis_sink_destroy(s);
  config_cleanup(&cfg);
  arena_cleanup(&a);
  return check_report("itest_redis_conn");
}

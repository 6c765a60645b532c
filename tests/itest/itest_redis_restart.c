/* itest_redis_restart.c - batches applied while the test script kills and
 * restarts redis-server (tests/e2e/redis_restart.sh).
 *
 *   itest_redis_restart stream N SIZE   apply batches 0..N-1 of SIZE creates
 *                                       plus one update of a counter record;
 *                                       print "ok <b>" after each confirmed
 *                                       batch; exit 1 at the first failure
 *   itest_redis_restart verify N SIZE   every record of batches 0..N-1 is
 *                                       present with its exact values, and the
 *                                       counter holds N-1
 *   itest_redis_restart outage          one batch against a Redis that stays
 *                                       down: must fail after about
 *                                       CDC_RETRY_BUDGET_MS with a clear error */
#include "itest_redis.h"

#include <time.h>

#define T0      INT64_C(1731053106000)
#define COUNTER "00000000-0000-0000-ffff-000000000000"

static void rec_id(char *out, int b, int i)
{
  snprintf(out, 40, "00000000-0000-0000-%04d-%012d", b, i);
}

static enum app_result apply_batch(struct redis_sink *s, struct arena *a, int b, int size,
                                   struct sink_stats *st, struct app_err *err)
{
  struct doc **docs = arena_alloc(a, (size_t)(size + 1) * sizeof *docs);
  int i;
  for (i = 0; i < size; i++) {
    char *id = arena_alloc(a, 40), *bj = arena_alloc(a, 16), *ij = arena_alloc(a, 16);
    rec_id(id, b, i);
    snprintf(bj, 16, "%d", b);
    snprintf(ij, 16, "%d", i);
    docs[i] = itest_doc(a, CDC_OP_CREATE, "account", id, T0 + b, true, "batch", bj, "item", ij,
                        "name", "\"restart test\"", NULL);
  }
  {
    char *bj = arena_alloc(a, 16);
    snprintf(bj, 16, "%d", b);
    docs[size] = itest_doc(a, CDC_OP_UPDATE, "account", COUNTER, T0 + b, false, "last", bj, NULL);
  }
  return itest_apply(s, docs, (size_t)size + 1, st, err);
}

static int stream(struct redis_sink *s, int n, int size)
{
  struct arena a;
  int b;
  arena_init(&a, 0);
  for (b = 0; b < n; b++) {
    struct sink_stats st;
    struct app_err err = {0};
    int64_t t0 = sink_now_ms();
    enum app_result r = apply_batch(s, &a, b, size, &st, &err);
    if (r != APP_OK) {
      printf("fail %d %s: %s\n", b, app_result_str(r), err.msg);
      fflush(stdout);
      arena_cleanup(&a);
      return 1;
    }
    printf("ok %d round_trips=%zu retries=%zu ms=%lld\n", b, st.round_trips, st.retries,
           (long long)(sink_now_ms() - t0));
    fflush(stdout);
    arena_reset(&a);
    {
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  arena_cleanup(&a);
  return 0;
}

static int verify(struct redis_sink *s, int n, int size)
{
  struct arena a;
  int b, i, missing = 0;
  arena_init(&a, 0);
  for (b = 0; b < n; b++) {
    struct doc_related *refs = arena_alloc(&a, (size_t)size * sizeof *refs);
    struct redis_record *recs = arena_alloc(&a, (size_t)size * sizeof *recs);
    struct app_err err = {0};
    for (i = 0; i < size; i++) {
      char *id = arena_alloc(&a, 40);
      rec_id(id, b, i);
      refs[i].table = "account";
      refs[i].id = id;
      refs[i].entity_set = "accounts";
    }
    if (redis_read_records(itest_mux(s), "d365", &a, refs, (size_t)size, 0, recs, &err) != APP_OK) {
      fprintf(stderr, "read batch %d: %s\n", b, err.msg);
      arena_cleanup(&a);
      return 1;
    }
    for (i = 0; i < size; i++) {
      char bj[16], ij[16];
      const char *gb = itest_prop_json(&recs[i], "batch"), *gi = itest_prop_json(&recs[i], "item");
      snprintf(bj, sizeof bj, "%d", b);
      snprintf(ij, sizeof ij, "%d", i);
      if (recs[i].state != RREC_LIVE || !gb || strcmp(gb, bj) || !gi || strcmp(gi, ij)) {
        if (missing++ < 10)
          fprintf(stderr, "batch %d item %d missing or wrong\n", b, i);
      }
    }
    arena_reset(&a);
  }
  {
    struct redis_record c = itest_read(s, &a, "account", COUNTER);
    char want[16];
    snprintf(want, sizeof want, "%d", n - 1);
    TEST_CASE("counter");
    CHECK_STREQ(itest_prop_json(&c, "last"), want);
  }
  TEST_CASE("every confirmed batch is present");
  CHECK_INTEQ(missing, 0);
  arena_cleanup(&a);
  printf("verified %d batches of %d records\n", n, size);
  return check_report("itest_redis_restart verify");
}

static int outage(struct redis_sink *s, const struct app_config *cfg)
{
  struct arena a;
  struct sink_stats st;
  struct app_err err = {0};
  int64_t t0 = sink_now_ms(), took;
  enum app_result r;
  arena_init(&a, 0);
  r = apply_batch(s, &a, 9999, 10, &st, &err);
  took = sink_now_ms() - t0;
  printf("outage: %s after %lld ms, %zu retries: %s\n", app_result_str(r), (long long)took,
         st.retries, err.msg);
  TEST_CASE("an outage longer than the budget");
  CHECK(r == APP_ERR_REDIS || r == APP_ERR_TIMEOUT);
  CHECK_CONTAINS(err.msg, "retry budget exhausted");
  CHECK(st.retries >= 2);
  CHECK_MSG(took >= cfg->retry_budget_ms && took < cfg->retry_budget_ms + 2000,
            "took %lld ms for a budget of %d ms", (long long)took, cfg->retry_budget_ms);
  CHECK_INTEQ(st.applied, 0);
  arena_cleanup(&a);
  return check_report("itest_redis_restart outage");
}

int main(int argc, char **argv)
{
  struct app_config cfg;
  struct redis_sink *s;
  int rc = 2;
  if (argc < 2) {
    fprintf(stderr, "usage: itest_redis_restart stream|verify N SIZE | outage\n");
    return 2;
  }
  log_set_level(LOG_LEVEL_WARN);
  s = itest_sink(&cfg);
  if (!strcmp(argv[1], "stream") && argc == 4)
    rc = stream(s, atoi(argv[2]), atoi(argv[3]));
  else if (!strcmp(argv[1], "verify") && argc == 4)
    rc = verify(s, atoi(argv[2]), atoi(argv[3]));
  else if (!strcmp(argv[1], "outage"))
    rc = outage(s, &cfg);
  itest_mux_free();
  redis_sink_destroy(s);
  config_cleanup(&cfg);
  return rc;
}

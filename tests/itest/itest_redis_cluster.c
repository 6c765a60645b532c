/* itest_redis_cluster.c - load on a Redis Cluster while the test scripts
 * reshard it and kill its primaries (tests/cluster/ and tests/e2e/redis_cluster.sh).
 * RedisConnection comes from $REDIS_CONN (the cluster's seeds).
 *
 *   itest_redis_cluster stream N SIZE [MS]
 *       apply batches 0..N-1 (SIZE creates over all slots, an Associate of
 *       the batch's first record with its next two, one update of a counter
 *       record), MS ms apart (default 5); after each confirmed batch read it
 *       back in one multi-record read (every record exact, or the read
 *       failed: reads are not retried, the read API answers 503) and print
 *       "ok <b> round_trips=.. retries=.. ms=.. read=ok|fail"; exit 1 at the
 *       first batch that fails (its retry budget ran out) or the first wrong
 *       record; at the end "stats ..." with the cluster client's counters.
 *       $ITEST_STOP_FILE: stop after the batch during which that file
 *       appeared ("stopped after <n> batches")
 *   itest_redis_cluster verify N SIZE
 *       every record of batches 0..N-1 exact, every relationship in place
 *       (both directions), the counter at N-1 */
#include "itest_redis.h"
#include "redis/redis_cluster.h"

#include <time.h>
#include <unistd.h>

#define T0      INT64_C(1731053106000)
#define COUNTER "00000000-0000-0000-ffff-000000000000"
#define REL     "account_parent_account"

static void rec_id(char *out, int b, int i)
{
  snprintf(out, 40, "00000000-0000-0000-%04d-%012d", b, i);
}

static enum app_result apply_batch(struct redis_sink *s, struct arena *a, int b, int size,
                                   struct sink_stats *st, struct app_err *err)
{
  struct doc **docs = arena_alloc(a, (size_t)(size + 2) * sizeof *docs);
  const char **rids = arena_alloc(a, 2 * sizeof *rids);
  char *first = NULL;
  int i, n = 0;
  for (i = 0; i < size; i++) {
    char *id = arena_alloc(a, 40), *bj = arena_alloc(a, 16), *ij = arena_alloc(a, 16);
    rec_id(id, b, i);
    snprintf(bj, 16, "%d", b);
    snprintf(ij, 16, "%d", i);
    if (i == 0)
      first = id;
    if (i == 1 || i == 2)
      rids[i - 1] = id;
    docs[n++] = itest_doc(a, CDC_OP_CREATE, "account", id, T0 + b, true, "batch", bj, "item", ij,
                          "name", "\"cluster test\"", NULL);
  }
  if (size >= 3)
    docs[n++] =
        itest_rel_doc(a, CDC_OP_ASSOCIATE, "account", first, REL, T0 + b, "account", rids, 2);
  {
    char *bj = arena_alloc(a, 16);
    snprintf(bj, 16, "%d", b);
    docs[n++] = itest_doc(a, CDC_OP_UPDATE, "account", COUNTER, T0 + b, false, "last", bj, NULL);
  }
  return itest_apply(s, docs, (size_t)n, st, err);
}

/* Read batch b back: 0 all exact, 1 the read failed, 2 a record is wrong. */
static int check_batch(struct redis_sink *s, struct arena *a, int b, int size, bool quiet,
                       int *missing)
{
  struct doc_related *refs = arena_alloc(a, (size_t)size * sizeof *refs);
  struct redis_record *recs = arena_alloc(a, (size_t)size * sizeof *recs);
  struct app_err err = {0};
  int i, bad = 0;
  for (i = 0; i < size; i++) {
    char *id = arena_alloc(a, 40);
    rec_id(id, b, i);
    refs[i].table = "account";
    refs[i].id = id;
    refs[i].entity_set = "account";
  }
  if (redis_read_records(itest_mux(s), "d365", a, refs, (size_t)size, 0, recs, &err) != APP_OK) {
    if (!quiet)
      fprintf(stderr, "read batch %d: %s\n", b, err.msg);
    return 1;
  }
  for (i = 0; i < size; i++) {
    char bj[16], ij[16];
    const char *gb = itest_prop_json(&recs[i], "batch"), *gi = itest_prop_json(&recs[i], "item");
    snprintf(bj, sizeof bj, "%d", b);
    snprintf(ij, sizeof ij, "%d", i);
    if (recs[i].state != RREC_LIVE || !gb || strcmp(gb, bj) || !gi || strcmp(gi, ij)) {
      if ((*missing)++ < 10)
        fprintf(stderr, "batch %d item %d missing or wrong (state %d, batch %s, item %s)\n", b, i,
                (int)recs[i].state, gb ? gb : "-", gi ? gi : "-");
      bad = 1;
    }
  }
  return bad ? 2 : 0;
}

static void print_stats(struct redis_sink *s)
{
  struct redis_cluster *cl = redis_pool_cluster(redis_sink_pool(s));
  struct redis_cluster_stats cs;
  if (!cl)
    return;
  redis_cluster_get_stats(cl, &cs);
  printf("stats nodes=%zu batches=%zu node_round_trips=%zu refreshes=%zu moved=%zu ask=%zu "
         "noscript=%zu\n",
         cs.nodes, cs.exchanges, cs.node_exchanges, cs.refreshes, cs.moved, cs.ask, cs.noscript);
}

static int stream(struct redis_sink *s, int n, int size, int ms)
{
  const char *stop = getenv("ITEST_STOP_FILE");
  struct arena a;
  int b, missing = 0, readfail = 0;
  arena_init(&a, 0);
  for (b = 0; b < n; b++) {
    struct sink_stats st;
    struct app_err err = {0};
    int64_t t0 = sink_now_ms();
    int rd;
    enum app_result r = apply_batch(s, &a, b, size, &st, &err);
    if (r != APP_OK) {
      printf("fail %d %s after %lld ms: %s\n", b, app_result_str(r),
             (long long)(sink_now_ms() - t0), err.msg);
      fflush(stdout);
      print_stats(s);
      arena_cleanup(&a);
      return 1;
    }
    rd = check_batch(s, &a, b, size, false, &missing);
    if (rd == 1)
      readfail++;
    printf("ok %d round_trips=%zu retries=%zu ms=%lld read=%s\n", b, st.round_trips, st.retries,
           (long long)(sink_now_ms() - t0),
           rd == 0   ? "ok"
           : rd == 1 ? "fail"
                     : "WRONG");
    fflush(stdout);
    arena_reset(&a);
    if (rd == 2) {
      arena_cleanup(&a);
      return 1;
    }
    if (stop && access(stop, F_OK) == 0) {
      printf("stopped after %d batches\n", b + 1);
      n = b + 1;
      break;
    }
    if (ms > 0) {
      struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  arena_cleanup(&a);
  printf("reads failed %d of %d\n", readfail, n);
  print_stats(s);
  return 0;
}

static int verify(struct redis_sink *s, int n, int size)
{
  struct arena a;
  int b, missing = 0, relbad = 0;
  arena_init(&a, 0);
  for (b = 0; b < n; b++) {
    if (check_batch(s, &a, b, size, false, &missing) == 1) {
      arena_cleanup(&a);
      return 1;
    }
    if (size >= 3) {
      struct doc_related *m = NULL;
      size_t nm = 0;
      struct app_err err = {0};
      char first[40], second[40];
      rec_id(first, b, 0);
      rec_id(second, b, 1);
      if (redis_read_related(itest_mux(s), "d365", &a, "account", first, REL, 0, &m, &nm, &err) !=
              APP_OK ||
          nm != 2) {
        if (relbad++ < 5)
          fprintf(stderr, "batch %d: %zu related records (%s)\n", b, nm, err.msg);
      } else if (redis_read_related(itest_mux(s), "d365", &a, "account", second, REL, 0, &m, &nm,
                                    &err) != APP_OK ||
                 nm != 1 || strcmp(m[0].id, first)) {
        if (relbad++ < 5)
          fprintf(stderr, "batch %d: the other direction is missing (%s)\n", b, err.msg);
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
  TEST_CASE("every confirmed batch is present and exact");
  CHECK_INTEQ(missing, 0);
  TEST_CASE("every relationship, both directions");
  CHECK_INTEQ(relbad, 0);
  arena_cleanup(&a);
  printf("verified %d batches of %d records\n", n, size);
  print_stats(s);
  return check_report("itest_redis_cluster verify");
}

int main(int argc, char **argv)
{
  struct app_config cfg;
  struct redis_sink *s;
  int rc = 2;
  if (argc < 4) {
    fprintf(stderr, "usage: itest_redis_cluster stream N SIZE [MS] | verify N SIZE\n");
    return 2;
  }
  log_set_level(getenv("CDC_LOG_LEVEL") ? LOG_LEVEL_INFO : LOG_LEVEL_WARN);
  s = itest_sink(&cfg);
  if (!strcmp(argv[1], "stream"))
    rc = stream(s, atoi(argv[2]), atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 5);
  else if (!strcmp(argv[1], "verify"))
    rc = verify(s, atoi(argv[2]), atoi(argv[3]));
  itest_mux_free();
  redis_sink_destroy(s);
  config_cleanup(&cfg);
  return rc;
}

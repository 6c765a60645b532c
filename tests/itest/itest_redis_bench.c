/* itest_redis_bench.c - throughput of redis_sink_apply against a local
 * redis-server (tests/scripts/redis_bench.sh drives it).
 *
 *   itest_redis_bench apply BATCH TOTAL [indexes]   apply TOTAL new full-row documents
 *                                         (with two declared indexes: issue 14)
 *                                         (10 properties, 3 annotations, like
 *                                         an account Create) in batches of
 *                                         BATCH; print changes/s and round
 *                                         trips per change
 *   itest_redis_bench script              print the apply script (exact bytes)
 *   itest_redis_bench args                print the apply script's SHA and the
 *                                         arguments of one such document, for
 *                                         redis-benchmark (key and id made
 *                                         unique with __rand_int__) */
#include "itest_redis.h"

#define T0 INT64_C(1731053106000)

static struct doc *bench_doc(struct arena *a, const char *id)
{
  return itest_doc(
      a, CDC_OP_CREATE, "account", id, T0, true, "accountid",
      "\"5f1c2a3b-9d7e-4c1a-8b2f-0a1b2c3d4e5f\"", "name", "\"Contoso Pharmaceuticals (sample)\"",
      "accountnumber", "\"ACC-000123\"", "revenue", "1234567.8900000000",
      "revenue@OData.Community.Display.V1.FormattedValue", "\"$1,234,567.89\"", "numberofemployees",
      "250", "statecode", "0", "statecode@OData.Community.Display.V1.FormattedValue", "\"Active\"",
      "_ownerid_value", "\"11111111-2222-3333-4444-555555555555\"",
      "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname", "\"systemuser\"", "emailaddress1",
      "\"someone@example.com\"", "telephone1", "\"555-0123\"", "modifiedon",
      "\"2024-11-08T08:05:06Z\"", NULL);
}

static int args(struct redis_sink *s)
{
  struct arena a;
  struct doc *d;
  struct buf cmd;
  struct app_err err;
  size_t pos = 0, nargs = 0, k;
  int rc = 1;
  arena_init(&a, 0);
  buf_init(&cmd, 0);
  d = bench_doc(&a, "x");
  /* the sink's own bytes (one EVALSHA), so the floor cannot drift from it */
  if (redis_sink_doc_commands(s, d, &cmd, &err) != APP_OK) {
    fprintf(stderr, "%s\n", err.msg);
    goto out;
  }
  printf("%s\n", redis_sink_script_sha(s));
  /* one argument per line after EVALSHA <sha> 1: the key (id replaced with
   * __rand_int__), then ARGV */
  for (pos = 1; pos < cmd.len && cmd.data[pos] != '\r'; pos++)
    nargs = nargs * 10 + (size_t)(cmd.data[pos] - '0');
  pos += 2;
  for (k = 0; k < nargs; k++) {
    size_t len = 0;
    for (pos++; cmd.data[pos] != '\r'; pos++)
      len = len * 10 + (size_t)(cmd.data[pos] - '0');
    pos += 2;
    if (k == 3)
      printf("d365:{account:__rand_int__}\n");
    else if (k > 3)
      printf("%.*s\n", (int)len, cmd.data + pos);
    pos += len + 2;
  }
  rc = 0;
out:
  buf_cleanup(&cmd);
  arena_cleanup(&a);
  return rc;
}

/* two declared indexes (issue 14): an alternate key on accountnumber and an
 * index on statecode, as a mapping with "keys" and "indexes" gives them */
static const char *const ak_cols[] = {"accountnumber"}, *const ix_cols[] = {"statecode"};
static const struct doc_altkey bench_keys[] = {{false, "ak_accountnumber", ak_cols, 1},
                                               {true, "statecode", ix_cols, 1}};

static int apply(struct redis_sink *s, size_t batch, size_t total, bool indexes)
{
  struct arena a;
  struct doc **docs;
  size_t done = 0, rt = 0, i;
  int64_t t0, build = 0, t;
  static unsigned run;
  arena_init(&a, 0);
  docs = calloc(batch, sizeof *docs);
  run = (unsigned)(sink_now_ms() % 100000);
  t0 = sink_now_ms();
  while (done < total) {
    size_t n = total - done < batch ? total - done : batch;
    struct sink_stats st;
    struct app_err err = {0};
    t = sink_now_ms();
    for (i = 0; i < n; i++) {
      char *id = arena_alloc(&a, 40);
      snprintf(id, 40, "00000000-0000-%04u-0000-%012zu", run % 10000, done + i);
      docs[i] = bench_doc(&a, id);
      if (indexes) {
        docs[i]->altkeys = bench_keys;
        docs[i]->naltkeys = 2;
      }
    }
    build += sink_now_ms() - t;
    if (itest_apply(s, docs, n, &st, &err) != APP_OK || st.applied != n) {
      fprintf(stderr, "apply: %s\n", err.msg);
      return 1;
    }
    rt += st.round_trips;
    done += n;
    arena_reset(&a);
  }
  t = sink_now_ms() - t0 - build;
  printf(
      "batch=%zu indexes=%d changes=%zu ms=%lld changes_per_s=%.0f round_trips_per_change=%.4f\n",
      batch, indexes ? 2 : 0, total, (long long)t, t > 0 ? (double)total * 1000.0 / (double)t : 0.0,
      (double)rt / (double)total);
  free(docs);
  arena_cleanup(&a);
  return 0;
}

int main(int argc, char **argv)
{
  struct app_config cfg;
  struct redis_sink *s;
  int rc = 2;
  TEST_CASE("bench");
  log_set_level(LOG_LEVEL_WARN);
  s = itest_sink(&cfg);
  if ((argc == 4 || argc == 5) && !strcmp(argv[1], "apply"))
    rc = apply(s, (size_t)atol(argv[2]), (size_t)atol(argv[3]),
               argc == 5 && !strcmp(argv[4], "indexes"));
  else if (argc == 2 && !strcmp(argv[1], "args"))
    rc = args(s);
  else if (argc == 2 && !strcmp(argv[1], "script"))
    rc = fputs(redis_sink_script(), stdout) < 0;
  else
    fprintf(stderr, "usage: itest_redis_bench apply BATCH TOTAL [indexes] | args | script\n");
  itest_mux_free();
  redis_sink_destroy(s);
  config_cleanup(&cfg);
  return rc;
}

/* test_opsmetrics.c - the shared metrics' local deltas and renderings. */
#include "check.h"
#include "common/opsmetrics.h"

#include <math.h>
#include <stdlib.h>

static int64_t field(const struct opsm_field *f, size_t n, const char *name)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (!strcmp(f[i].name, name))
      return f[i].value;
  return -1;
}

static void test_deltas(void)
{
  struct opsm_field *f = NULL;
  size_t n = 0;
  TEST_CASE("deltas");
  opsm_count("account", OPS_APPLIED, 3);
  opsm_count("account", OPS_APPLIED, 2);
  opsm_count("account", OPS_STALE, 1);
  opsm_count("bad:name", OPS_POISON, 1); /* not a table name: unknown */
  opsm_count(NULL, OPS_DEADLETTERED, 1);
  opsm_count("contact", OPS_APPLIED, 0); /* nothing */
  opsm_freshness_ms(80);
  opsm_freshness_ms(4000);
  opsm_freshness_ms(99999999);
  opsm_stage_us(OPS_STAGE_DECODE, 40);
  opsm_stage_us(OPS_STAGE_DECODE, 60);
  opsm_error(OPS_REDIS_RETRIES, 2);
  opsm_take(&f, &n);
  CHECK_INTEQ(field(f, n, "c|account|applied"), 5);
  CHECK_INTEQ(field(f, n, "c|account|stale"), 1);
  CHECK_INTEQ(field(f, n, "c|_unknown|poison"), 1);
  CHECK_INTEQ(field(f, n, "c|_unknown|deadlettered"), 1);
  CHECK_INTEQ(field(f, n, "c|contact|applied"), -1);
  CHECK_INTEQ(field(f, n, "f|100"), 1);
  CHECK_INTEQ(field(f, n, "f|5000"), 1);
  CHECK_INTEQ(field(f, n, "f|inf"), 1);
  CHECK_INTEQ(field(f, n, "f|n"), 3);
  CHECK_INTEQ(field(f, n, "f|sum"), 80 + 4000 + 99999999);
  CHECK_INTEQ(field(f, n, "t|decode|us"), 100);
  CHECK_INTEQ(field(f, n, "t|decode|n"), 2);
  CHECK_INTEQ(field(f, n, "e|redis_retries"), 2);
  /* taken: empty now; a failed flush puts them back */
  {
    struct opsm_field *g = NULL;
    size_t k = 0;
    opsm_take(&g, &k);
    CHECK_INTEQ(k, 0);
    free(g);
  }
  opsm_restore(f, n);
  opsm_count("account", OPS_APPLIED, 1);
  free(f);
  opsm_take(&f, &n);
  CHECK_INTEQ(field(f, n, "c|account|applied"), 6);
  CHECK_INTEQ(field(f, n, "f|n"), 3);
  free(f);
}

static void test_quantile(void)
{
  struct opsm_field f[4];
  memset(f, 0, sizeof f);
  TEST_CASE("quantile");
  CHECK(opsm_quantile(f, 0, 0.5) < 0); /* empty */
  /* 100 changes in (1000, 2000] ms: linear inside the bucket */
  snprintf(f[0].name, sizeof f[0].name, "f|2000");
  f[0].value = 100;
  CHECK(fabs(opsm_quantile(f, 1, 0.50) - 1500.0) < 0.01);
  CHECK(fabs(opsm_quantile(f, 1, 0.95) - 1950.0) < 0.01);
  /* 90 fast, 10 above 5 s: p95 is in (5000, 10000] */
  snprintf(f[0].name, sizeof f[0].name, "f|100");
  f[0].value = 90;
  snprintf(f[1].name, sizeof f[1].name, "f|10000");
  f[1].value = 10;
  CHECK(opsm_quantile(f, 2, 0.50) <= 100.0);
  CHECK(fabs(opsm_quantile(f, 2, 0.95) - 7500.0) < 0.01);
  /* the last bucket reports its lower bound */
  snprintf(f[2].name, sizeof f[2].name, "f|inf");
  f[2].value = 1000;
  CHECK(fabs(opsm_quantile(f, 3, 0.99) - 3600000.0) < 0.01);
}

static void test_render(void)
{
  struct opsm_field f[6];
  struct buf b;
  TEST_CASE("render");
  snprintf(f[0].name, sizeof f[0].name, "c|contact|stale");
  f[0].value = 2;
  snprintf(f[1].name, sizeof f[1].name, "c|account|applied");
  f[1].value = 7;
  snprintf(f[2].name, sizeof f[2].name, "c|account|replayed");
  f[2].value = 1;
  snprintf(f[3].name, sizeof f[3].name, "f|250");
  f[3].value = 7;
  snprintf(f[4].name, sizeof f[4].name, "f|n");
  f[4].value = 7;
  snprintf(f[5].name, sizeof f[5].name, "bogus|x"); /* ignored */
  f[5].value = 9;
  buf_init(&b, 0);
  CHECK_INTEQ(opsm_render_json(f, 6, &b), APP_OK);
  CHECK_CONTAINS(b.data, "{\"tables\":{\"account\":{\"applied\":7,\"replayed\":1},\"contact\":{"
                         "\"stale\":2}},\"totals\":{\"applied\":7,\"stale\":2,\"skipped\":0,"
                         "\"poison\":0,\"deadlettered\":0,\"replayed\":1,\"replay_failed\":0}");
  CHECK_CONTAINS(b.data, "\"freshness_ms\":{\"count\":7,\"sum\":0,\"p50\":175.0,");
  CHECK_CONTAINS(b.data, "\"buckets\":{\"100\":0,\"250\":7,");
  CHECK_CONTAINS(b.data, "\"errors\":{\"redis_errors\":0,");
  buf_reset(&b);
  CHECK_INTEQ(opsm_render_prometheus(f, 6, &b), APP_OK);
  CHECK_CONTAINS(b.data, "d365cdc_changes_total{table=\"account\",outcome=\"applied\"} 7\n");
  CHECK_CONTAINS(b.data, "d365cdc_freshness_seconds_bucket{le=\"0.1\"} 0\n"
                         "d365cdc_freshness_seconds_bucket{le=\"0.25\"} 7\n"
                         "d365cdc_freshness_seconds_bucket{le=\"0.5\"} 7\n");
  CHECK_CONTAINS(b.data, "d365cdc_freshness_seconds_bucket{le=\"+Inf\"} 7\n");
  CHECK_CONTAINS(b.data, "d365cdc_freshness_seconds_count 7\n");
  CHECK_CONTAINS(b.data, "d365cdc_store_events_total{store=\"redis\",kind=\"retries\"} 0\n");
  buf_cleanup(&b);
}

int main(void)
{
  test_deltas();
  test_quantile();
  test_render();
  return check_report("test_opsmetrics");
}

/* mapbench - time map_change + docjson_render for a 25-column change.
 *
 *   mapbench [rounds [iterations]]     (defaults 31 and 5000)
 *
 * The change is the kitchen-sink opportunity Update of the tests (money,
 * decimals, BigInt, lookups, choices, multi-select, dates, formatted
 * values, a long string with escapes). Each round maps and renders it
 * `iterations` times, resetting the arena in between as an invocation
 * would; the per-change time of each round is recorded, as thread CPU time
 * (what the handler spends, unaffected by other processes on a shared
 * machine) and as wall time, and the medians over the rounds are printed. Three configurations:
 * built-in defaults, and a table with renames, drops, date_only and
 * redact/hash masking. */
#include "common/arena.h"
#include "common/buf.h"
#include "map/docjson.h"
#include "map/mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "benchutil.h"

#define OPP    "2f4e6a8c-787b-ef11-ac21-6045bdd4c6be"
#define USER   "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d"
#define PARENT "4a6c8e0f-797b-ef11-ac21-6045bdd4c6be"

static struct dv_value lex(enum dv_kind k, const char *s)
{
  struct dv_value v = {0};
  v.kind = k;
  v.s = s;
  v.len = strlen(s);
  return v;
}

static struct dv_value date(int64_t ms)
{
  struct dv_value v = {0};
  v.kind = DV_DATE;
  v.date_ms = ms;
  return v;
}

static struct dv_value ref(const char *table, const char *id)
{
  struct dv_value v = {0};
  v.kind = DV_ENTITYREF;
  v.ref.logical_name = table;
  v.ref.id = id;
  return v;
}

static const char *lookup(const char *name)
{
  return strcmp(name, "BENCH_SALT") == 0 ? "bench-salt-0123456789abcdef" : NULL;
}

static int bench(const char *label, const struct map_config *cfg, const struct cdc_change *ch,
                 int rounds, int iters, bool render)
{
  struct arena a;
  struct buf b;
  struct docjson_annotations all;
  struct docjson_opts o = {0};
  double *per = calloc((size_t)rounds, sizeof *per), *cpu = calloc((size_t)rounds, sizeof *cpu);
  size_t bytes = 0;
  int r, i, rc = 0;

  arena_init(&a, 0);
  buf_init(&b, 0);
  docjson_annotations_all(&all);
  o.annotations = &all;
  for (r = 0; r < rounds && !rc; r++) {
    double t0 = bench_us(CLOCK_MONOTONIC), c0 = bench_us(CLOCK_THREAD_CPUTIME_ID);
    for (i = 0; i < iters; i++) {
      struct doc d;
      struct app_err err;
      enum map_verdict v;
      arena_reset(&a);
      if (map_change(cfg, &a, ch, &v, &d, &err) != APP_OK || v != MAP_ACCEPT) {
        fprintf(stderr, "mapbench: %s: %s\n", label, err.msg);
        rc = 1;
        break;
      }
      if (render) {
        buf_reset(&b);
        if (docjson_render(&d, &o, &b, &err) != APP_OK) {
          fprintf(stderr, "mapbench: %s\n", err.msg);
          rc = 1;
          break;
        }
        bytes = b.len;
      }
    }
    per[r] = (bench_us(CLOCK_MONOTONIC) - t0) / iters;
    cpu[r] = (bench_us(CLOCK_THREAD_CPUTIME_ID) - c0) / iters;
  }
  if (!rc) {
    qsort(per, (size_t)rounds, sizeof *per, bench_cmp_double);
    qsort(cpu, (size_t)rounds, sizeof *cpu, bench_cmp_double);
    printf("%-32s median %5.2f us/change CPU, %5.2f wall (wall min %.2f, max %.2f)", label,
           cpu[rounds / 2], per[rounds / 2], per[0], per[rounds - 1]);
    if (render)
      printf("  %zu bytes JSON", bytes);
    printf("\n");
  }
  free(per);
  free(cpu);
  buf_cleanup(&b);
  arena_cleanup(&a);
  return rc;
}

int main(int argc, char **argv)
{
  int rounds = argc > 1 ? atoi(argv[1]) : 31;
  int iters = argc > 2 ? atoi(argv[2]) : 5000;
  struct dv_value regions[2];
  struct dv_value multi = {0};
  struct dv_attr attrs[25];
  struct cdc_change ch;
  struct map_config *plain = NULL, *rules = NULL;
  struct app_err err;
  static const char rules_json[] =
      "{\"salt_setting\":\"BENCH_SALT\",\"tables\":{\"opportunity\":{"
      "\"drop\":[\"estimatedvalue_base\",\"new_weight\"],"
      "\"rename\":{\"closeprobability\":\"probability\",\"new_bigcounter\":\"counter\"},"
      "\"mask\":{\"description\":\"hash\",\"new_discountpct\":\"redact\"},"
      "\"date_only\":[\"estimatedclosedate\"],\"required\":[\"opportunityid\"]}}}";
  int rc = 0, n = 0;

  if (rounds < 1 || iters < 1) {
    fprintf(stderr, "usage: mapbench [rounds [iterations]]\n");
    return 2;
  }
  regions[0] = lex(DV_OPTIONSET, "100000000");
  regions[1] = lex(DV_OPTIONSET, "100000002");
  multi.kind = DV_MULTISELECT;
  multi.items = regions;
  multi.nitems = 2;
#define ADD(nm, val, fmt) attrs[n++] = (struct dv_attr){(nm), (val), (fmt)}
  ADD("estimatedvalue", lex(DV_MONEY, "125000.5"),
      "\xe2\x82\xac"
      "125,000.50");
  ADD("estimatedvalue_base", lex(DV_MONEY, "125000.5"),
      "\xe2\x82\xac"
      "125,000.50");
  ADD("exchangerate", lex(DV_NUMBER, "1.0000000000"), "1.0000000000");
  ADD("transactioncurrencyid", ref("transactioncurrency", USER), NULL);
  ADD("opportunityratingcode", lex(DV_OPTIONSET, "2"), "Warm");
  ADD("new_regions", multi, "EMEA; APAC");
  ADD("new_channels", (struct dv_value){0}, NULL);
  ADD("parentaccountid", ref("account", PARENT), NULL);
  ADD("customerid", ref("account", PARENT), NULL);
  ADD("new_primarycontactid", (struct dv_value){0}, NULL);
  ADD("estimatedclosedate", date(INT64_C(1735603200000)), "2024-12-31T00:00:00");
  ADD("new_kickoffat", date(INT64_C(1733212800000)), "2024-12-03T09:00:00+01:00");
  ADD("new_legacystart", date(INT64_C(-315619200000)), "1960-01-01T01:00:00+01:00");
  ADD("closeprobability", lex(DV_NUMBER, "65"), "65");
  ADD("new_discountpct", lex(DV_NUMBER, "12.5"), "12.50");
  ADD("new_weight", lex(DV_NUMBER, "0.1"), "0.10");
  ADD("new_bigcounter", lex(DV_NUMBER, "9007199254740993"), "9,007,199,254,740,993");
  ADD("new_decimalmax", lex(DV_NUMBER, "79228162514264337593543950335"), NULL);
  ADD("new_isstrategic", ((struct dv_value){.kind = DV_BOOL, .b = true}), "Yes");
  ADD("description",
      lex(DV_STRING, "Line 1\r\nLine 2: \"quoted\" and a back\\slash \xe2\x80\x93 price "
                     "\xe2\x82\xac 1.234,50 \xf0\x9f\x9a\x80\tTab"),
      NULL);
  ADD("name", lex(DV_STRING, "Fabrikam \xe2\x80\x93 3-year platform renewal"), NULL);
  ADD("opportunityid", lex(DV_STRING, OPP), NULL);
  ADD("modifiedon", date(INT64_C(1732628405000)), "2024-11-26T14:40:05+01:00");
  ADD("modifiedby", ref("systemuser", USER), NULL);
  ADD("modifiedonbehalfby", (struct dv_value){0}, NULL);
#undef ADD

  memset(&ch, 0, sizeof ch);
  ch.op = CDC_OP_UPDATE;
  ch.message = "Update";
  ch.table = "opportunity";
  ch.id = OPP;
  ch.version.ts_ms = INT64_C(1732628405777);
  ch.version.row_version = 5948260;
  ch.op_time_ms = ch.version.ts_ms;
  ch.attrs = attrs;
  ch.nattrs = (size_t)n;
  ch.relationship_role = -1;

  if (map_config_default(&plain, &err) != APP_OK ||
      map_config_parse(rules_json, sizeof rules_json - 1, "bench", lookup, &rules, &err) !=
          APP_OK) {
    fprintf(stderr, "mapbench: %s\n", err.msg);
    return 1;
  }
  printf("mapbench: %d-column Update of opportunity, %d rounds x %d; medians over rounds\n", n,
         rounds, iters);
  rc |= bench("map (defaults)", plain, &ch, rounds, iters, false);
  rc |= bench("map + render (defaults)", plain, &ch, rounds, iters, true);
  rc |= bench("map + render (rules, hash mask)", rules, &ch, rounds, iters, true);
  map_config_free(plain);
  map_config_free(rules);
  return rc;
}

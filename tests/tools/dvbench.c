/* dvbench - decode time and arena allocations per Dataverse message.
 *
 *   dvbench [-n RUNS] [-r ROUNDS] FILE...   timing table (median of ROUNDS
 *                                           rounds of RUNS decodes each)
 *   dvbench --dump [-t CONTENT_TYPE] FILE   print the decoded change
 *
 * For each file it reports the median microseconds per dv_decode, the
 * arena mallocs of one decode into a fresh arena, the mallocs per decode
 * when one arena is reset and reused (as a worker thread does), and the
 * arena bytes used. Timing is CLOCK_MONOTONIC; run it on an idle machine. */
#include "common/arena.h"
#include "common/buf.h"
#include "dataverse/dataverse.h"
#include "../unit/dv_dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../unit/testfile.h"
#include "benchutil.h"

static int dump(const char *path, const char *ct)
{
  struct arena a;
  struct cdc_change ch;
  struct app_err err;
  struct buf b;
  size_t len = 0;
  char *body = test_read_file(path, &len);
  int rc = 1;

  if (!body) {
    perror(path);
    return 1;
  }
  arena_init(&a, 0);
  buf_init(&b, 0);
  if (dv_decode(&a, ct, body, len, NULL, &ch, &err) != APP_OK) {
    fprintf(stderr, "%s: %s: %s\n", path, app_result_str(err.code), err.msg);
  } else {
    dv_dump(&b, &ch);
    fwrite(b.data, 1, b.len, stdout);
    rc = 0;
  }
  buf_cleanup(&b);
  arena_cleanup(&a);
  free(body);
  return rc;
}

int main(int argc, char **argv)
{
  int runs = 2000, rounds = 15, i = 1, r, k;
  const char *ct = "application/json";
  double *med;

  if (argc > 1 && !strcmp(argv[1], "--dump")) {
    i = 2;
    if (i + 1 < argc && !strcmp(argv[i], "-t")) {
      ct = argv[i + 1];
      i += 2;
    }
    return i < argc ? dump(argv[i], ct) : 2;
  }
  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (!strcmp(argv[i], "-n"))
      runs = (int)strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "-r"))
      rounds = (int)strtol(argv[i + 1], NULL, 10);
  }
  if (i >= argc || runs < 1 || rounds < 1) {
    fprintf(stderr, "usage: dvbench [-n RUNS] [-r ROUNDS] FILE... | --dump [-t CT] FILE\n");
    return 2;
  }
  med = malloc(sizeof *med * (size_t)rounds);
  if (!med)
    return 1;
  printf("%-58s %7s %9s %7s %7s %9s\n", "message", "bytes", "median_us", "mallocs", "reused",
         "arena_kb");
  for (; i < argc; i++) {
    struct arena a;
    struct cdc_change ch;
    struct app_err err;
    size_t len = 0, fresh_mallocs, used, reuse_before;
    char *body = test_read_file(argv[i], &len);
    const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];

    if (!body) {
      perror(argv[i]);
      return 1;
    }
    /* one decode into a fresh arena */
    arena_init(&a, 0);
    if (dv_decode(&a, ct, body, len, NULL, &ch, &err) != APP_OK) {
      fprintf(stderr, "%s: %s\n", argv[i], err.msg);
      return 1;
    }
    fresh_mallocs = a.mallocs;
    used = a.used;
    /* steady state: one arena reset between decodes */
    reuse_before = a.mallocs;
    for (r = 0; r < rounds; r++) {
      double t0 = bench_us(CLOCK_MONOTONIC);
      for (k = 0; k < runs; k++) {
        arena_reset(&a);
        if (dv_decode(&a, ct, body, len, NULL, &ch, &err) != APP_OK)
          return 1;
      }
      med[r] = (bench_us(CLOCK_MONOTONIC) - t0) / runs;
    }
    qsort(med, (size_t)rounds, sizeof *med, bench_cmp_double);
    printf("%-58s %7zu %9.2f %7zu %7.3f %9.1f\n", name, len, med[rounds / 2], fresh_mallocs,
           (double)(a.mallocs - reuse_before) / ((double)runs * rounds), (double)used / 1024);
    arena_cleanup(&a);
    free(body);
  }
  free(med);
  return 0;
}

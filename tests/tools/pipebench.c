/* pipebench - decode + map (+ render) time and allocations per message.
 *
 *   pipebench [-n RUNS] [-r ROUNDS] [-m MAPPING] FILE...
 *       for each message file, per message (medians of ROUNDS rounds of
 *       RUNS messages, thread CPU time):
 *         dec_us   dv_decode
 *         map_us   dv_decode + map_change
 *         rend_us  dv_decode + map_change + docjson_render (all annotations)
 *         wall_us  wall time of dv_decode + map_change
 *       and the allocations: fresh = arena chunks (mallocs) of one message
 *       into a new arena; chunks and heap = arena chunks and all heap
 *       allocations (malloc/calloc/realloc: arena chunks, scratch buffers,
 *       OpenSSL contexts) per message when one arena and one output buffer
 *       are reused, as a worker thread does; arenaKB = arena bytes of one
 *       message.
 *   pipebench --render [-m MAPPING] [-a] [-t CONTENT_TYPE] [-T] FILE
 *       print the document one message maps to (-a: with every
 *       annotation; -T: as if MessageMaxSizeExceeded was set), or the
 *       verdict or error.
 *
 * MAPPING is a mapping file (default: the built-in defaults); a file that
 * uses "hash" masking reads its salt from the app setting it names (the
 * environment). The three stages are timed in turn within each round, so
 * they see the same machine conditions; compare medians of several runs.
 *
 * Heap allocations are counted by wrapping malloc/calloc/realloc (glibc's
 * __libc_* entry points); under AddressSanitizer the wrappers are left out
 * and the column reads "-". */
#include "common/arena.h"
#include "common/buf.h"
#include "dataverse/dataverse.h"
#include "map/docjson.h"
#include "map/mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../unit/testfile.h"
#include "benchutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define PB_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PB_COUNT_MALLOC 0
#endif
#endif
#ifndef PB_COUNT_MALLOC
#define PB_COUNT_MALLOC 1
#endif

static size_t heap_allocs; /* malloc/calloc/realloc calls (this thread only runs) */

#if PB_COUNT_MALLOC
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);
void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);

void *malloc(size_t n)
{
  heap_allocs++;
  return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
  heap_allocs++;
  return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
  heap_allocs++;
  return __libc_realloc(p, n);
}
#endif

enum stage { ST_DECODE, ST_MAP, ST_RENDER };

/* One message through the stages up to `upto`. 0 on success (a skip
 * verdict counts as success: it is what the pipeline does with it). */
static int one(const struct map_config *cfg, struct arena *a, const char *ct, const char *body,
               size_t len, bool truncated, enum stage upto, struct buf *out,
               enum map_verdict *out_verdict, struct app_err *err)
{
  struct dv_options opt = {0, 0, truncated};
  struct cdc_change ch;
  struct doc d;
  struct docjson_annotations all;
  struct docjson_opts o = {0};
  enum map_verdict v = MAP_ACCEPT;

  if (dv_decode(a, ct, body, len, &opt, &ch, err) != APP_OK)
    return 1;
  if (upto >= ST_MAP && map_change(cfg, a, &ch, &v, &d, err) != APP_OK)
    return 1;
  if (out_verdict)
    *out_verdict = v;
  if (upto >= ST_RENDER && v == MAP_ACCEPT) {
    docjson_annotations_all(&all);
    o.annotations = &all;
    buf_reset(out);
    if (docjson_render(&d, &o, out, err) != APP_OK)
      return 1;
  }
  return 0;
}

static int render(const struct map_config *cfg, const char *path, const char *ct, bool ann,
                  bool truncated)
{
  struct dv_options opt = {0, 0, truncated};
  struct arena a;
  struct cdc_change ch;
  struct doc d;
  struct app_err err;
  struct buf b;
  struct docjson_annotations all;
  struct docjson_opts o = {0};
  enum map_verdict v;
  size_t len = 0;
  char *body = test_read_file(path, &len);
  int rc = 1;

  if (!body) {
    perror(path);
    return 1;
  }
  arena_init(&a, 0);
  buf_init(&b, 0);
  docjson_annotations_all(&all);
  o.annotations = ann ? &all : NULL;
  if (dv_decode(&a, ct, body, len, &opt, &ch, &err) != APP_OK ||
      map_change(cfg, &a, &ch, &v, &d, &err) != APP_OK) {
    printf("error %s: %s\n", app_result_str(err.code), err.msg);
  } else if (v != MAP_ACCEPT) {
    printf("verdict %s\n", map_verdict_str(v));
    rc = 0;
  } else if (docjson_render(&d, &o, &b, &err) != APP_OK) {
    printf("render error: %s\n", err.msg);
  } else {
    printf("%.*s\n", (int)b.len, b.data);
    rc = 0;
  }
  buf_cleanup(&b);
  arena_cleanup(&a);
  free(body);
  return rc;
}

/* Per-message medians over `rounds` rounds. Each round runs `runs`
 * messages up to each stage in turn (one arena reset between messages), so
 * the three stages see the same machine conditions. cpu[stage] is thread
 * CPU time (what the handler spends, little affected by other processes on
 * the machine); *wall is the wall time of decode + map. scratch holds
 * 4 * rounds doubles. */
static int timed(const struct map_config *cfg, struct arena *a, struct buf *out, const char *ct,
                 const char *body, size_t len, int runs, int rounds, double *scratch, double cpu[3],
                 double *wall)
{
  struct app_err err;
  double *per[4];
  int r, k, st, i;

  for (i = 0; i < 4; i++)
    per[i] = scratch + (size_t)i * (size_t)rounds;
  for (r = 0; r < rounds; r++) {
    for (st = ST_DECODE; st <= ST_RENDER; st++) {
      double c0 = bench_us(CLOCK_THREAD_CPUTIME_ID), w0 = bench_us(CLOCK_MONOTONIC);
      for (k = 0; k < runs; k++) {
        arena_reset(a);
        if (one(cfg, a, ct, body, len, false, (enum stage)st, out, NULL, &err)) {
          fprintf(stderr, "pipebench: %s\n", err.msg);
          return 1;
        }
      }
      per[st][r] = (bench_us(CLOCK_THREAD_CPUTIME_ID) - c0) / runs;
      if (st == ST_MAP)
        per[3][r] = (bench_us(CLOCK_MONOTONIC) - w0) / runs;
    }
  }
  for (i = 0; i < 4; i++)
    qsort(per[i], (size_t)rounds, sizeof *per[i], bench_cmp_double);
  for (i = 0; i < 3; i++)
    cpu[i] = per[i][rounds / 2];
  *wall = per[3][rounds / 2];
  return 0;
}

static const char *lookup_env(const char *name)
{
  return getenv(name);
}

int main(int argc, char **argv)
{
  int runs = 2000, rounds = 15, i = 1, rc = 0;
  const char *ct = "application/json", *mapping = NULL;
  bool do_render = false, ann = false, truncated = false;
  struct map_config *cfg = NULL;
  struct app_err err;
  double *med;

  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--render")) {
      do_render = true;
    } else if (!strcmp(o, "-a")) {
      ann = true;
    } else if (!strcmp(o, "-T")) {
      truncated = true;
    } else if (i + 1 < argc && !strcmp(o, "-n")) {
      runs = (int)strtol(argv[++i], NULL, 10);
    } else if (i + 1 < argc && !strcmp(o, "-r")) {
      rounds = (int)strtol(argv[++i], NULL, 10);
    } else if (i + 1 < argc && !strcmp(o, "-m")) {
      mapping = argv[++i];
    } else if (i + 1 < argc && !strcmp(o, "-t")) {
      ct = argv[++i];
    } else {
      i = argc; /* usage */
    }
  }
  if (i >= argc || runs < 1 || rounds < 1) {
    fprintf(stderr, "usage: pipebench [-n RUNS] [-r ROUNDS] [-m MAPPING] FILE...\n"
                    "       pipebench --render [-m MAPPING] [-a] [-t CONTENT_TYPE] [-T] FILE\n");
    return 2;
  }
  if ((mapping ? map_config_load(mapping, lookup_env, &cfg, &err)
               : map_config_default(&cfg, &err)) != APP_OK) {
    fprintf(stderr, "pipebench: %s\n", err.msg);
    return 1;
  }
  if (do_render) {
    rc = render(cfg, argv[i], ct, ann, truncated);
    map_config_free(cfg);
    return rc;
  }

  med = calloc(4 * (size_t)rounds, sizeof *med);
  if (!med)
    return 1;
  printf("mapping: %s; median of %d rounds x %d messages\n", map_config_source(cfg), rounds, runs);
  printf("%-58s %6s %7s %7s %7s %8s %5s %6s %5s %7s %s\n", "message", "bytes", "dec_us", "map_us",
         "rend_us", "wall_us", "fresh", "chunks", "heap", "arenaKB", "verdict");
  for (; i < argc && !rc; i++) {
    struct arena a;
    struct buf out;
    enum map_verdict v = MAP_ACCEPT;
    size_t len = 0, fresh, chunks0, heap0, used;
    double cpu[3], wall;
    const int reps = 1000;
    int k;
    char *body = test_read_file(argv[i], &len);
    const char *name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];

    if (!body) {
      perror(argv[i]);
      rc = 1;
      break;
    }
    arena_init(&a, 0);
    buf_init(&out, 0);
    /* one message into a fresh arena */
    if (one(cfg, &a, ct, body, len, false, ST_RENDER, &out, &v, &err)) {
      fprintf(stderr, "pipebench: %s: %s\n", argv[i], err.msg);
      rc = 1;
    } else {
      fresh = a.mallocs;
      used = a.used;
      /* steady state: the arena is reset and the buffer reused between
       * messages; warm up once, then count over reps messages */
      arena_reset(&a);
      (void)one(cfg, &a, ct, body, len, false, ST_RENDER, &out, NULL, &err);
      chunks0 = a.mallocs;
      heap0 = heap_allocs;
      for (k = 0; k < reps; k++) {
        arena_reset(&a);
        (void)one(cfg, &a, ct, body, len, false, ST_RENDER, &out, NULL, &err);
      }
      {
        double chunks = (double)(a.mallocs - chunks0) / reps;
        double heap = (double)(heap_allocs - heap0) / reps;
        char heaps[16];
        if (PB_COUNT_MALLOC)
          snprintf(heaps, sizeof heaps, "%.2f", heap);
        else
          snprintf(heaps, sizeof heaps, "-");
        rc = timed(cfg, &a, &out, ct, body, len, runs, rounds, med, cpu, &wall);
        if (!rc)
          printf("%-58s %6zu %7.2f %7.2f %7.2f %8.2f %5zu %6.2f %5s %7.1f %s\n", name, len, cpu[0],
                 cpu[1], cpu[2], wall, fresh, chunks, heaps, (double)used / 1024,
                 map_verdict_str(v));
      }
    }
    buf_cleanup(&out);
    arena_cleanup(&a);
    free(body);
  }
  free(med);
  map_config_free(cfg);
  return rc;
}

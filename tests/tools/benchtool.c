/* benchtool.c - helpers for the benchmark (tests/scripts/bench.sh).
 *
 *   benchtool args FILE
 *       Decode and map the Dataverse message FILE with the app's settings
 *       (environment, FUNCTIONS_APP_ROOT_PATH for mapping.json) and print
 *       the apply script's SHA1, then the EVALSHA arguments the Redis sink
 *       sends for it, one per line (key first, its record id replaced by
 *       __rand_int__ so that redis-benchmark writes a new record per call).
 *       This is the Redis floor's command: the same script, the same
 *       arguments, byte for byte (redis_sink_doc_commands).
 *
 *   benchtool script
 *       Print the apply script (exact bytes), for SCRIPT LOAD.
 *
 *   benchtool decode [-r ROUNDS] [-n ITERATIONS] FILE...
 *       For each message file: the median CPU microseconds (this thread's
 *       CPU time, so other processes on a shared machine count less) of
 *       dv_decode, of map_change on the decoded change, and of both, as an
 *       invocation does them (one arena reset per message). One line per
 *       file: name bytes decode_us map_us total_us verdict.
 *
 * Exit status: 0 ok, 1 a file could not be read, decoded or mapped, 2 usage. */
#include "common/arena.h"
#include "common/buf.h"
#include "common/config.h"
#include "dataverse/dataverse.h"
#include "common/log.h"
#include "map/mapping.h"
#include "redis/redis_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../unit/testfile.h"
#include "benchutil.h"

static const char *base_name(const char *path)
{
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Read one RESP bulk string at *pos: "$<len>\r\n<bytes>\r\n". */
static bool resp_bulk(const char *s, size_t n, size_t *pos, const char **out, size_t *out_len)
{
  size_t i = *pos, len = 0;
  if (i >= n || s[i] != '$')
    return false;
  for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
    len = len * 10 + (size_t)(s[i] - '0');
  if (i + 2 > n || s[i] != '\r' || s[i + 1] != '\n' || i + 2 + len + 2 > n)
    return false;
  *out = s + i + 2;
  *out_len = len;
  *pos = i + 2 + len + 2;
  return true;
}

static int cmd_args(const char *path, const struct redis_sink *sink, const struct map_config *map)
{
  struct arena a;
  struct cdc_change ch;
  struct doc d;
  enum map_verdict verdict;
  struct app_err err;
  struct buf cmd;
  size_t len = 0, pos = 0, nargs = 0, k, idlen;
  char *body = test_read_file(path, &len);
  int rc = 1;

  if (!body) {
    perror(path);
    return 1;
  }
  arena_init(&a, 0);
  buf_init(&cmd, 0);
  if (dv_decode(&a, "application/json", body, len, NULL, &ch, &err) != APP_OK ||
      map_change(map, &a, &ch, &verdict, &d, &err) != APP_OK) {
    fprintf(stderr, "benchtool: %s: %s\n", path, err.msg);
    goto out;
  }
  if (verdict != MAP_ACCEPT) {
    fprintf(stderr, "benchtool: %s: the mapping does not accept it (%s)\n", path,
            map_verdict_str(verdict));
    goto out;
  }
  /* the floor is the apply script alone: the index SADDs of declared
   * alternate keys and indexes (issue 14) are left out */
  d.altkeys = NULL;
  d.naltkeys = 0;
  if (redis_sink_doc_commands(sink, &d, &cmd, &err) != APP_OK) {
    fprintf(stderr, "benchtool: %s: %s\n", path, err.msg);
    goto out;
  }
  /* exactly one command: *<n>\r\n then EVALSHA <sha> 1 <key> <args...> */
  if (cmd.len < 2 || cmd.data[0] != '*') {
    fprintf(stderr, "benchtool: %s: unexpected command bytes\n", path);
    goto out;
  }
  for (pos = 1; pos < cmd.len && cmd.data[pos] >= '0' && cmd.data[pos] <= '9'; pos++)
    nargs = nargs * 10 + (size_t)(cmd.data[pos] - '0');
  pos += 2;
  idlen = strlen(d.id);
  printf("%s\n", redis_sink_script_sha(sink));
  for (k = 0; k < nargs; k++) {
    const char *v;
    size_t vl;
    if (!resp_bulk(cmd.data, cmd.len, &pos, &v, &vl)) {
      fprintf(stderr, "benchtool: %s: bad RESP in argument %zu\n", path, k);
      goto out;
    }
    if (k < 3)
      continue; /* EVALSHA <sha> <numkeys> */
    if (memchr(v, '\n', vl)) {
      fprintf(stderr, "benchtool: %s: argument %zu holds a newline\n", path, k);
      goto out;
    }
    if (k == 3 && vl > idlen + 1 && !memcmp(v + vl - idlen - 1, d.id, idlen)) {
      /* <prefix>:{<table>:<id>} -> <prefix>:{<table>:__rand_int__} */
      printf("%.*s__rand_int__}\n", (int)(vl - idlen - 1), v);
      continue;
    }
    fwrite(v, 1, vl, stdout);
    putchar('\n');
  }
  if (pos != cmd.len) {
    fprintf(stderr, "benchtool: %s: the document needs more than one command\n", path);
    goto out;
  }
  rc = 0;
out:
  buf_cleanup(&cmd);
  arena_cleanup(&a);
  free(body);
  return rc;
}

enum stage { ST_DECODE, ST_MAP, ST_BOTH };

/* Median over rounds of the CPU microseconds per message of one stage. */
static int time_stage(enum stage st, const struct map_config *map, const char *body, size_t len,
                      int rounds, int iters, double *out_us)
{
  struct arena a, keep;
  struct cdc_change ch;
  struct app_err err;
  double *per = calloc((size_t)rounds, sizeof *per);
  int r, i, rc = 0;

  if (!per)
    return 1;
  arena_init(&a, 0);
  arena_init(&keep, 0);
  /* the change that the map stage maps, decoded once */
  if (dv_decode(&keep, "application/json", body, len, NULL, &ch, &err) != APP_OK) {
    fprintf(stderr, "benchtool: %s\n", err.msg);
    rc = 1;
  }
  for (r = 0; r < rounds && !rc; r++) {
    double t0 = bench_us(CLOCK_THREAD_CPUTIME_ID);
    for (i = 0; i < iters && !rc; i++) {
      struct cdc_change c2;
      struct doc d;
      enum map_verdict v;
      arena_reset(&a);
      if (st != ST_MAP && dv_decode(&a, "application/json", body, len, NULL, &c2, &err) != APP_OK)
        rc = 1;
      if (!rc && st != ST_DECODE &&
          map_change(map, &a, st == ST_MAP ? &ch : &c2, &v, &d, &err) != APP_OK)
        rc = 1;
    }
    per[r] = (bench_us(CLOCK_THREAD_CPUTIME_ID) - t0) / iters;
  }
  if (rc) {
    fprintf(stderr, "benchtool: %s\n", err.msg);
  } else {
    qsort(per, (size_t)rounds, sizeof *per, bench_cmp_double);
    *out_us = per[rounds / 2];
  }
  free(per);
  arena_cleanup(&a);
  arena_cleanup(&keep);
  return rc;
}

static int cmd_decode(int argc, char **argv, const struct map_config *map)
{
  int rounds = 11, iters = 1000, i = 0, rc = 0;

  for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
    if (!strcmp(argv[i], "-r"))
      rounds = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "-n"))
      iters = atoi(argv[i + 1]);
    else
      return 2;
  }
  if (i >= argc || rounds < 1 || iters < 1)
    return 2;
  for (; i < argc; i++) {
    size_t len = 0;
    char *body = test_read_file(argv[i], &len);
    struct arena a;
    struct cdc_change ch;
    struct doc d;
    enum map_verdict v = MAP_ACCEPT;
    struct app_err err;
    double dec = 0, mp = 0, both = 0;

    if (!body) {
      perror(argv[i]);
      return 1;
    }
    arena_init(&a, 0);
    if (dv_decode(&a, "application/json", body, len, NULL, &ch, &err) != APP_OK ||
        map_change(map, &a, &ch, &v, &d, &err) != APP_OK) {
      fprintf(stderr, "benchtool: %s: %s\n", argv[i], err.msg);
      rc = 1;
    } else if (time_stage(ST_DECODE, map, body, len, rounds, iters, &dec) ||
               time_stage(ST_MAP, map, body, len, rounds, iters, &mp) ||
               time_stage(ST_BOTH, map, body, len, rounds, iters, &both)) {
      rc = 1;
    } else {
      printf("%s %zu %.2f %.2f %.2f %s\n", base_name(argv[i]), len, dec, mp, both,
             map_verdict_str(v));
    }
    arena_cleanup(&a);
    free(body);
  }
  return rc;
}

int main(int argc, char **argv)
{
  struct app_config cfg;
  struct map_config *map = NULL;
  struct redis_sink *sink = NULL;
  struct app_err err;
  int rc;

  if (argc == 2 && !strcmp(argv[1], "script"))
    return fputs(redis_sink_script(), stdout) < 0;
  if (argc < 3 || (strcmp(argv[1], "args") && strcmp(argv[1], "decode"))) {
    fprintf(stderr, "usage: benchtool args FILE | benchtool script | benchtool decode [-r ROUNDS] "
                    "[-n ITERATIONS] FILE...\n");
    return 2;
  }
  log_set_level(LOG_LEVEL_WARN);
  if (config_load(&cfg, NULL, &err) != APP_OK ||
      map_config_load_settings(&cfg, NULL, &map, &err) != APP_OK) {
    fprintf(stderr, "benchtool: %s\n", err.msg);
    return 1;
  }
  if (!strcmp(argv[1], "args")) {
    if (redis_sink_create(&cfg, &sink, &err) != APP_OK) {
      fprintf(stderr, "benchtool: %s\n", err.msg);
      rc = 1;
    } else {
      rc = cmd_args(argv[2], sink, map);
    }
  } else {
    rc = cmd_decode(argc - 2, argv + 2, map);
    if (rc == 2)
      fprintf(stderr, "usage: benchtool decode [-r ROUNDS] [-n ITERATIONS] FILE...\n");
  }
  redis_sink_destroy(sink);
  map_config_free(map);
  config_cleanup(&cfg);
  return rc;
}

/* itest_redis_mux.c - the read multiplexer (handler/redis/redis_mux.h) against a
 * real redis-server on 127.0.0.1:$REDIS_PORT (tests/e2e/redis_mux.sh).
 *
 *   itest_redis_mux           every in-process case below
 *   itest_redis_mux stream S  callers loop for S seconds while the script
 *                             kills and restarts redis-server; every reply
 *                             must be the caller's own, failures must be
 *                             clean errors, and calls must succeed again
 *                             after the restart
 *
 * A leader is held busy with BLPOP on an empty list (it answers nil after
 * its timeout), which makes queueing deterministic without DEBUG SLEEP. */
#include "redis/redis_mux.h"
#include "map/sink.h"
#include "../unit/check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct redis_pool *make_pool(size_t size)
{
  struct redis_conninfo ci;
  struct redis_pool *p = NULL;
  struct app_err err = {0};
  char cs[128];
  const char *port = getenv("REDIS_PORT");
  snprintf(cs, sizeof cs, "127.0.0.1:%s,syncTimeout=5000,connectTimeout=1000",
           port ? port : "6379");
  if (redis_conninfo_parse(cs, &ci, &err) != APP_OK ||
      redis_pool_create(&ci, size, NULL, 0, 0, &p, &err) != APP_OK) {
    fprintf(stderr, "pool: %s\n", err.msg);
    exit(2);
  }
  redis_conninfo_cleanup(&ci);
  return p;
}

static struct redis_mux *make_mux(struct redis_pool *p, size_t leaders, size_t batch, size_t queue)
{
  struct redis_mux *m = NULL;
  struct app_err err = {0};
  if (redis_mux_create(p, leaders, batch, queue, &m, &err) != APP_OK) {
    fprintf(stderr, "mux: %s\n", err.msg);
    exit(2);
  }
  return m;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* One call of n ECHO commands "<tag>.<k>"; 1 when every reply is its own,
 * 0 when a reply was wrong (never acceptable), -1 on a clean failure. */
static int echo_call(struct redis_mux *m, const char *tag, int n, int64_t rel_ms,
                     enum app_result *out_r, struct app_err *err)
{
  struct buf b;
  redisReply *rep[8];
  char v[8][96];
  int k, ok = 1;
  enum app_result r;
  buf_init(&b, 0);
  for (k = 0; k < n; k++) {
    snprintf(v[k], sizeof v[k], "%s.%d", tag, k);
    if (redis_cmd_begin(&b, 2) != APP_OK || redis_cmd_arg_str(&b, "ECHO") != APP_OK ||
        redis_cmd_arg_str(&b, v[k]) != APP_OK)
      abort();
  }
  r = redis_mux_exchange(m, b.data, b.len, (size_t)n, rep, sink_now_ms() + rel_ms, err);
  buf_cleanup(&b);
  if (out_r)
    *out_r = r;
  if (r != APP_OK)
    return -1;
  for (k = 0; k < n; k++) {
    if (rep[k]->type != REDIS_REPLY_STRING || strcmp(rep[k]->str, v[k])) {
      fprintf(stderr, "wrong reply for %s: got '%s'\n", v[k],
              rep[k]->type == REDIS_REPLY_STRING ? rep[k]->str : "(not a string)");
      ok = 0;
    }
    freeReplyObject(rep[k]);
  }
  return ok;
}

/* BLPOP of an empty list: busy on the server for secs, answers nil. */
struct hold {
  struct redis_mux *m;
  const char *secs;
  int64_t rel_ms;
  int start_ms; /* sleep before calling */
  enum app_result r;
  int64_t took_ms;
  bool nil;
};

static void *hold_main(void *arg)
{
  struct hold *h = arg;
  struct buf b;
  redisReply *rep = NULL;
  struct app_err err = {0};
  int64_t t0;
  sleep_ms(h->start_ms);
  t0 = sink_now_ms();
  buf_init(&b, 0);
  if (redis_cmd_begin(&b, 3) != APP_OK || redis_cmd_arg_str(&b, "BLPOP") != APP_OK ||
      redis_cmd_arg_str(&b, "itest:mux:empty") != APP_OK ||
      redis_cmd_arg_str(&b, h->secs) != APP_OK)
    abort();
  h->r = redis_mux_exchange(h->m, b.data, b.len, 1, &rep, sink_now_ms() + h->rel_ms, &err);
  h->took_ms = sink_now_ms() - t0;
  if (h->r == APP_OK) {
    h->nil = rep->type == REDIS_REPLY_NIL;
    freeReplyObject(rep);
  } else {
    fprintf(stderr, "hold %s: %s: %s\n", h->secs, app_result_str(h->r), err.msg);
  }
  buf_cleanup(&b);
  return NULL;
}

struct echo {
  struct redis_mux *m;
  char tag[32];
  int start_ms, rel_ms, calls, n;
  int ok, wrong, failed;
  enum app_result last_r;
  int64_t took_ms;
};

static void *echo_main(void *arg)
{
  struct echo *e = arg;
  int i;
  sleep_ms(e->start_ms);
  for (i = 0; i < e->calls; i++) {
    char tag[64];
    struct app_err err = {0};
    int64_t t0 = sink_now_ms();
    int n = e->n ? e->n : 1 + i % 3, v;
    snprintf(tag, sizeof tag, "%s-%d", e->tag, i);
    v = echo_call(e->m, tag, n, e->rel_ms, &e->last_r, &err);
    e->took_ms = sink_now_ms() - t0;
    if (v == 1)
      e->ok++;
    else if (v == 0)
      e->wrong++;
    else
      e->failed++;
  }
  return NULL;
}

/* Many callers, 1-3 commands each: every reply goes to its caller, and
 * commands really are batched. */
static void test_ordering(void)
{
  struct redis_pool *p = make_pool(2);
  struct redis_mux *m = make_mux(p, 2, 64, 64);
  struct echo e[16];
  pthread_t th[16];
  struct redis_mux_stats st;
  int i, ok = 0, wrong = 0, failed = 0;
  memset(e, 0, sizeof e);
  for (i = 0; i < 16; i++) {
    e[i].m = m;
    snprintf(e[i].tag, sizeof e[i].tag, "t%d", i);
    e[i].calls = 400;
    e[i].rel_ms = 5000;
    pthread_create(&th[i], NULL, echo_main, &e[i]);
  }
  for (i = 0; i < 16; i++) {
    pthread_join(th[i], NULL);
    ok += e[i].ok;
    wrong += e[i].wrong;
    failed += e[i].failed;
  }
  redis_mux_get_stats(m, &st);
  printf("ordering: %zu calls in %zu batches (largest %zu)\n", st.calls, st.batches, st.max_batch);
  CHECK_INTEQ(ok, 16 * 400);
  CHECK_INTEQ(wrong, 0);
  CHECK_INTEQ(failed, 0);
  CHECK_INTEQ((long long)st.calls, 16 * 400);
  CHECK(st.batches <= st.calls);
  CHECK(st.max_batch > 1);
  redis_mux_destroy(m);
  redis_pool_destroy(p);
}

/* With one leader busy, callers queue and go as one batch. */
static void test_batches(void)
{
  struct redis_pool *p = make_pool(1);
  struct redis_mux *m = make_mux(p, 1, 64, 64);
  struct hold h = {m, "0.4", 5000, 0, APP_OK, 0, false};
  struct echo e[8];
  pthread_t th[9];
  struct redis_mux_stats st;
  int i;
  memset(e, 0, sizeof e);
  pthread_create(&th[8], NULL, hold_main, &h);
  for (i = 0; i < 8; i++) {
    e[i].m = m;
    snprintf(e[i].tag, sizeof e[i].tag, "b%d", i);
    e[i].calls = 1;
    e[i].n = 2;
    e[i].start_ms = 100;
    e[i].rel_ms = 5000;
    pthread_create(&th[i], NULL, echo_main, &e[i]);
  }
  for (i = 0; i < 9; i++)
    pthread_join(th[i], NULL);
  redis_mux_get_stats(m, &st);
  CHECK_INTEQ(h.r, APP_OK);
  CHECK(h.nil);
  for (i = 0; i < 8; i++)
    CHECK_INTEQ(e[i].ok, 1);
  CHECK_INTEQ((long long)st.batches, 2);
  CHECK_INTEQ((long long)st.max_batch, 8);
  redis_mux_destroy(m);
  redis_pool_destroy(p);
}

/* A caller whose deadline passes while queued, and one whose deadline
 * passes while its batch is in flight, give up on time; the others of the
 * batch get their own replies, and the dropped reply never reaches the
 * next caller. */
static void test_timeouts(void)
{
  struct redis_pool *p = make_pool(1);
  struct redis_mux *m = make_mux(p, 1, 64, 64);
  /* first leader: busy 0.4 s */
  struct hold h0 = {m, "0.4", 5000, 0, APP_OK, 0, false};
  /* queued behind it, due at +250 ms: expires in the queue */
  struct echo q = {0};
  /* queued behind it, due at +700 ms: in the next batch, which the 0.8 s
   * BLPOP keeps busy past that */
  struct echo f = {0};
  struct hold h1 = {m, "0.8", 5000, 100, APP_OK, 0, false};
  struct echo g = {0};
  struct redis_mux_stats st;
  struct app_err err = {0};
  enum app_result r;
  pthread_t th[5];
  int i;

  q.m = f.m = g.m = m;
  snprintf(q.tag, sizeof q.tag, "queued");
  snprintf(f.tag, sizeof f.tag, "flight");
  snprintf(g.tag, sizeof g.tag, "other");
  q.calls = f.calls = g.calls = 1;
  q.n = f.n = g.n = 1;
  q.start_ms = 50;
  q.rel_ms = 250;
  f.start_ms = 100;
  f.rel_ms = 600;
  g.start_ms = 150;
  g.rel_ms = 5000;
  pthread_create(&th[0], NULL, hold_main, &h0);
  pthread_create(&th[1], NULL, echo_main, &q);
  pthread_create(&th[2], NULL, echo_main, &f);
  pthread_create(&th[3], NULL, hold_main, &h1);
  pthread_create(&th[4], NULL, echo_main, &g);
  for (i = 0; i < 5; i++)
    pthread_join(th[i], NULL);
  redis_mux_get_stats(m, &st);
  printf("timeouts: queued gave up after %lld ms, in flight after %lld ms; batch took %lld ms\n",
         (long long)q.took_ms, (long long)f.took_ms, (long long)g.took_ms);
  CHECK_INTEQ(h0.r, APP_OK);
  CHECK_INTEQ(q.failed, 1);
  CHECK_INTEQ(q.last_r, APP_ERR_TIMEOUT);
  /* at its deadline, well before its batch would have ended (~1.2 s) */
  CHECK(q.took_ms >= 240 && q.took_ms < 1000);
  CHECK_INTEQ(f.failed, 1);
  CHECK_INTEQ(f.last_r, APP_ERR_TIMEOUT);
  CHECK(f.took_ms >= 590 && f.took_ms < 1000);
  CHECK_INTEQ(h1.r, APP_OK);
  CHECK(h1.nil);
  CHECK_INTEQ(g.ok, 1);
  CHECK(g.took_ms >= 900);
  CHECK_INTEQ((long long)st.expired, 1);
  CHECK_INTEQ((long long)st.abandoned, 1);
  /* the same connection, next caller: its own reply */
  CHECK_INTEQ(echo_call(m, "after", 3, 2000, &r, &err), 1);
  redis_mux_destroy(m);
  redis_pool_destroy(p);
}

/* Beyond max_queue a caller is refused at once. */
static void test_queue_cap(void)
{
  struct redis_pool *p = make_pool(1);
  struct redis_mux *m = make_mux(p, 1, 64, 2);
  struct hold h = {m, "0.4", 5000, 0, APP_OK, 0, false};
  struct echo e[2];
  pthread_t th[3];
  struct redis_mux_stats st;
  struct app_err err = {0};
  enum app_result r = APP_OK;
  int64_t t0;
  int i;
  memset(e, 0, sizeof e);
  pthread_create(&th[2], NULL, hold_main, &h);
  for (i = 0; i < 2; i++) {
    e[i].m = m;
    snprintf(e[i].tag, sizeof e[i].tag, "cap%d", i);
    e[i].calls = 1;
    e[i].start_ms = 50;
    e[i].rel_ms = 5000;
    pthread_create(&th[i], NULL, echo_main, &e[i]);
  }
  sleep_ms(150);
  t0 = sink_now_ms();
  CHECK_INTEQ(echo_call(m, "refused", 1, 5000, &r, &err), -1);
  CHECK_INTEQ(r, APP_ERR_TIMEOUT);
  CHECK_CONTAINS(err.msg, "busy");
  CHECK(sink_now_ms() - t0 < 200); /* served, it would end with the batch, 250 ms on */
  for (i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  CHECK_INTEQ(e[0].ok, 1);
  CHECK_INTEQ(e[1].ok, 1);
  redis_mux_get_stats(m, &st);
  CHECK_INTEQ((long long)st.refused, 1);
  redis_mux_destroy(m);
  redis_pool_destroy(p);
}

/* The connection is killed (CLIENT KILL from another connection) while a
 * batch is in flight (a 1 s BLPOP and four ECHOs, queued behind a 0.2 s
 * BLPOP): every caller of that batch gets an error at once, none a wrong
 * reply, and the next call reconnects. */
static void test_killed(void)
{
  struct redis_pool *p = make_pool(1), *admin = make_pool(1);
  struct redis_mux *m = make_mux(p, 1, 64, 64), *am = make_mux(admin, 1, 1, 1);
  struct hold h0 = {m, "0.2", 5000, 0, APP_OK, 0, false};
  struct hold h = {m, "1", 5000, 50, APP_OK, 0, false};
  struct echo e[4];
  pthread_t th[6];
  struct redis_pool_stats ps;
  struct buf b;
  redisReply *rep = NULL;
  struct app_err err = {0};
  enum app_result r;
  int i;
  memset(e, 0, sizeof e);
  /* the admin connection first, so it has its own id to skip */
  CHECK_INTEQ(echo_call(am, "admin", 1, 2000, &r, &err), 1);
  pthread_create(&th[4], NULL, hold_main, &h0);
  pthread_create(&th[5], NULL, hold_main, &h);
  for (i = 0; i < 4; i++) {
    e[i].m = m;
    snprintf(e[i].tag, sizeof e[i].tag, "k%d", i);
    e[i].calls = 1;
    e[i].start_ms = 100;
    e[i].rel_ms = 5000;
    pthread_create(&th[i], NULL, echo_main, &e[i]);
  }
  sleep_ms(500);
  /* kill normal clients but this one */
  buf_init(&b, 0);
  if (redis_cmd_begin(&b, 6) != APP_OK || redis_cmd_arg_str(&b, "CLIENT") != APP_OK ||
      redis_cmd_arg_str(&b, "KILL") != APP_OK || redis_cmd_arg_str(&b, "TYPE") != APP_OK ||
      redis_cmd_arg_str(&b, "normal") != APP_OK || redis_cmd_arg_str(&b, "SKIPME") != APP_OK ||
      redis_cmd_arg_str(&b, "yes") != APP_OK)
    abort();
  r = redis_mux_exchange(am, b.data, b.len, 1, &rep, sink_now_ms() + 2000, &err);
  CHECK_INTEQ(r, APP_OK);
  if (r == APP_OK) {
    CHECK(rep->type == REDIS_REPLY_INTEGER && rep->integer >= 1);
    freeReplyObject(rep);
  }
  buf_cleanup(&b);
  for (i = 0; i < 6; i++)
    pthread_join(th[i], NULL);
  CHECK_INTEQ(h0.r, APP_OK);
  CHECK(h.r != APP_OK);
  CHECK(h.took_ms < 850); /* at the kill (~0.45 s), not at the BLPOP's end */
  for (i = 0; i < 4; i++) {
    CHECK_INTEQ(e[i].wrong, 0);
    CHECK_INTEQ(e[i].failed, 1);
    CHECK(e[i].last_r == APP_ERR_IO || e[i].last_r == APP_ERR_REDIS);
  }
  /* reconnects */
  CHECK_INTEQ(echo_call(m, "again", 2, 3000, &r, &err), 1);
  redis_pool_get_stats(p, &ps);
  CHECK_INTEQ((long long)ps.connects, 2);
  redis_mux_destroy(m);
  redis_mux_destroy(am);
  redis_pool_destroy(p);
  redis_pool_destroy(admin);
}

/* stream mode: 8 callers for secs seconds; prints a summary line. */
static int stream(int secs)
{
  struct redis_pool *p = make_pool(2);
  struct redis_mux *m = make_mux(p, 2, 64, 64);
  struct echo e[8];
  pthread_t th[8];
  int64_t end = sink_now_ms() + (int64_t)secs * 1000;
  int i, ok = 0, wrong = 0, failed = 0, ok_after = 0;
  memset(e, 0, sizeof e);
  while (sink_now_ms() < end) {
    for (i = 0; i < 8; i++) {
      memset(&e[i], 0, sizeof e[i]);
      e[i].m = m;
      snprintf(e[i].tag, sizeof e[i].tag, "s%d", i);
      e[i].calls = 20;
      e[i].rel_ms = 1000;
      pthread_create(&th[i], NULL, echo_main, &e[i]);
    }
    for (i = 0; i < 8; i++) {
      pthread_join(th[i], NULL);
      ok += e[i].ok;
      wrong += e[i].wrong;
      failed += e[i].failed;
    }
    if (failed && e[0].ok == 20)
      ok_after++;
    printf("round ok=%d failed=%d wrong=%d\n", ok, failed, wrong);
    fflush(stdout);
    sleep_ms(50);
  }
  redis_mux_destroy(m);
  redis_pool_destroy(p);
  printf("stream ok=%d failed=%d wrong=%d recovered=%d\n", ok, failed, wrong, ok_after);
  CHECK_INTEQ(wrong, 0);
  CHECK(failed > 0);   /* the outage was seen */
  CHECK(ok_after > 0); /* and calls succeeded after it */
  return check_report("itest_redis_mux stream");
}

int main(int argc, char **argv)
{
  if (argc == 3 && !strcmp(argv[1], "stream"))
    return stream(atoi(argv[2]));
  test_ordering();
  test_batches();
  test_timeouts();
  test_queue_cap();
  test_killed();
  return check_report("itest_redis_mux");
}

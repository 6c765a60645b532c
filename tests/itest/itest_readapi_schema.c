/* itest_readapi_schema.c - the schema set behind $select checks, against a
 * private redis-server (REDIS_PORT): what schema_note writes, what
 * schema_known answers from memory without touching Redis, what a new
 * process (empty memory) learns from Redis, and that a set Redis lost is
 * written again after the refresh interval. Run by tests/e2e/readapi_schema.sh. */
#include "read/schema.h"
#include "itest_redis.h"

#include <time.h>

#define TABLE "account"
#define KEY   "itest:schema:" TABLE

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A pool whose every connect is refused (port 1), to prove that an answer
 * came from memory. */
static struct redis_pool *dead_pool(void)
{
  struct redis_conninfo ci;
  struct redis_pool *p = NULL;
  struct app_err err = {0};
  if (redis_conninfo_parse("127.0.0.1:1,connectTimeout=500", &ci, &err) != APP_OK ||
      redis_pool_create(&ci, 1, NULL, 0, 0, &p, &err) != APP_OK) {
    fprintf(stderr, "dead pool: %s\n", err.msg);
    exit(2);
  }
  return p;
}

int main(void)
{
  struct app_config cfg;
  struct redis_sink *s;
  struct redis_pool *pool, *dead;
  struct schema *w, *r2, *fail;
  struct arena a;
  struct app_err err = {0};
  const struct doc *docs[2];
  const char *names[3];
  bool known[3];
  redisReply *rep;

  log_set_level(LOG_LEVEL_ERROR);
  arena_init(&a, 0);
  s = itest_sink(&cfg);
  pool = redis_sink_pool(s);
  dead = dead_pool();
  rep = itest_cmd(s, "DEL", KEY, NULL);
  if (!rep) {
    fprintf(stderr, "cannot reach redis\n");
    return 1;
  }
  freeReplyObject(rep);
  docs[0] = itest_doc(&a, CDC_OP_UPDATE, TABLE, "a1", 1000, false, "name", "\"A\"", "telephone1",
                      "null", NULL);
  docs[1] = itest_doc(&a, CDC_OP_UPDATE, TABLE, "a2", 1001, false, "name", "\"B\"",
                      "_ownerid_value", "\"x\"", NULL);

  TEST_CASE("schema_note writes every property name into the table's set");
  w = schema_create(pool, "itest", 300);
  CHECK(schema_note(w, docs, 2, sink_now_ms() + 5000, &err) == APP_OK);
  CHECK_INTEQ(itest_int(s, "SCARD", KEY, NULL), 3);
  CHECK_INTEQ(itest_int(s, "SISMEMBER", KEY, "telephone1", NULL), 1);
  CHECK_INTEQ(itest_int(s, "SISMEMBER", KEY, "_ownerid_value", NULL), 1);

  TEST_CASE("what this process noted is known without Redis");
  names[0] = "name";
  names[1] = "telephone1";
  CHECK(schema_known(w, dead, TABLE, names, 2, known, sink_now_ms() + 2000, &err) == APP_OK);
  CHECK(known[0] && known[1]);
  TEST_CASE("an unknown name needs Redis: with none, the check fails");
  names[0] = "nosuchcolumn";
  CHECK(schema_known(w, dead, TABLE, names, 1, known, sink_now_ms() + 2000, &err) != APP_OK);
  CHECK(err.msg[0] != '\0');

  TEST_CASE("a new process (empty memory) learns from Redis, then remembers");
  r2 = schema_create(pool, "itest", 300);
  names[0] = "name";
  names[1] = "nosuchcolumn";
  names[2] = "_ownerid_value";
  CHECK(schema_known(r2, pool, TABLE, names, 3, known, sink_now_ms() + 5000, &err) == APP_OK);
  CHECK(known[0] && !known[1] && known[2]);
  CHECK(schema_known(r2, dead, TABLE, names, 1, known, sink_now_ms() + 2000, &err) == APP_OK);
  CHECK(known[0]);
  names[0] = "name";
  CHECK(schema_known(r2, pool, "contact", names, 1, known, sink_now_ms() + 5000, &err) == APP_OK);
  CHECK_MSG(!known[0], "%s", "names are per table");

  TEST_CASE("the set lost in Redis is written again after the refresh interval");
  rep = itest_cmd(s, "DEL", KEY, NULL);
  CHECK(rep != NULL);
  if (rep)
    freeReplyObject(rep);
  CHECK(schema_note(w, docs, 2, sink_now_ms() + 5000, &err) == APP_OK);
  CHECK_INTEQ(itest_int(s, "EXISTS", KEY, NULL), 0); /* within the interval: nothing sent */
  sleep_ms(350);
  CHECK(schema_note(w, docs, 1, sink_now_ms() + 5000, &err) == APP_OK);
  CHECK_INTEQ(itest_int(s, "SISMEMBER", KEY, "name", NULL), 1);
  CHECK_INTEQ(itest_int(s, "SISMEMBER", KEY, "telephone1", NULL), 1);
  CHECK_INTEQ(itest_int(s, "SISMEMBER", KEY, "_ownerid_value", NULL), 0); /* not in docs[0] */

  TEST_CASE("a failed note is not remembered: the next write tries again");
  fail = schema_create(dead, "itest", 0);
  CHECK(schema_note(fail, docs, 1, sink_now_ms() + 1000, &err) != APP_OK);
  names[0] = "name";
  CHECK(schema_known(fail, dead, TABLE, names, 1, known, sink_now_ms() + 1000, &err) != APP_OK);

  schema_destroy(fail);
  schema_destroy(r2);
  schema_destroy(w);
  schema_destroy(NULL);
  redis_pool_destroy(dead);
  itest_mux_free();
  redis_sink_destroy(s);
  config_cleanup(&cfg);
  arena_cleanup(&a);
  return check_report("itest_readapi_schema");
}

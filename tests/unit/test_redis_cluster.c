/* test_redis_cluster.c - the pure part of the Redis Cluster client: hash
 * slots and hash tags, the key a command routes by, MOVED/ASK replies, and
 * the topology replies (tests/fixtures/redis_cluster/ holds CLUSTER SHARDS
 * and CLUSTER SLOTS as a real Redis 7.0 cluster of 3 primaries + 3 replicas
 * answered them). */
#include "check.h"
#include "redis/redis_cluster.h"
#include "redis/redis_conn.h"
#include "redis/redis_sink.h"
#include "testfile.h"

#include <stdlib.h>

/* A reply from RESP bytes, as hiredis reads it off the wire. */
static redisReply *reply_from(const char *resp, size_t n)
{
  redisReader *rd = redisReaderCreate();
  void *out = NULL;
  redisReaderFeed(rd, resp, n);
  if (redisReaderGetReply(rd, &out) != REDIS_OK)
    out = NULL;
  redisReaderFree(rd);
  return out;
}

static unsigned slot_of(const char *k)
{
  return redis_cluster_key_slot(k, strlen(k));
}

static void test_slots(void)
{
  struct buf a, b;
  TEST_CASE("key slots");
  /* the cluster specification's CRC16 check value, and keys whose slots
   * redis-cli CLUSTER KEYSLOT gives */
  CHECK_INTEQ(slot_of("123456789"), 0x31C3 & 16383);
  CHECK_INTEQ(slot_of("foo"), 12182);
  CHECK_INTEQ(slot_of("bar"), 5061);
  CHECK_INTEQ(slot_of(""), 0);
  /* hash tags */
  CHECK_INTEQ(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
  CHECK_INTEQ(slot_of("{user1000}.following"), slot_of("user1000"));
  CHECK_INTEQ(slot_of("foo{}{bar}"), 8363); /* empty tag: the whole key */
  CHECK(slot_of("foo{}{bar}") != slot_of("bar"));
  CHECK_INTEQ(slot_of("foo{{bar}}zap"), slot_of("{bar"));
  CHECK_INTEQ(slot_of("foo{bar}{zap}"), slot_of("bar"));
  CHECK_INTEQ(slot_of("foo{{bar}}zap"), 4015);
  CHECK_INTEQ(slot_of("{"), 4092);
  CHECK_INTEQ(slot_of("a{b"), 13340);
  CHECK_INTEQ(slot_of("}{x}"), 16287);
  CHECK_INTEQ(slot_of("}{x}"), slot_of("x"));
  /* (values from CLUSTER KEYSLOT of redis-server 7.0) */

  /* every key one change touches shares its record's slot: the record
   * hash and each of its relationship hashes (redis_lua.h) */
  TEST_CASE("record and relationship keys share a slot");
  buf_init(&a, 0);
  buf_init(&b, 0);
  CHECK(redis_sink_record_key(&a, "d365", "account", "11111111-2222-3333-4444-555555555555") ==
        APP_OK);
  CHECK(redis_sink_rel_key(&b, "d365", "account", "11111111-2222-3333-4444-555555555555",
                           "contact_customer_accounts") == APP_OK);
  CHECK_INTEQ(redis_cluster_key_slot(a.data, a.len), redis_cluster_key_slot(b.data, b.len));
  CHECK_INTEQ(redis_cluster_key_slot(a.data, a.len), 4656);
  buf_cleanup(&a);
  buf_cleanup(&b);
}

static void cmd_case(const char *name, size_t argc, const char *const *argv, int want_slot)
{
  struct buf b;
  size_t lens[16], i, used = 0;
  int slot = -5;
  TEST_CASE(name);
  buf_init(&b, 0);
  for (i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  CHECK(redis_cmd_argv(&b, argc, argv, lens) == APP_OK);
  CHECK(buf_append_str(&b, "*1\r\n$4\r\nPING\r\n") == APP_OK); /* a next command */
  CHECK(redis_cluster_cmd_slot(b.data, b.len, &used, &slot));
  CHECK_INTEQ(used, b.len - 14);
  CHECK_INTEQ(slot, want_slot);
  /* every strict prefix is incomplete */
  for (i = 0; i < used; i++)
    CHECK(!redis_cluster_cmd_slot(b.data, i, &used, &slot));
  buf_cleanup(&b);
}

static void test_cmd_slot(void)
{
  const char *evalsha[] = {"EVALSHA", "0123456789012345678901234567890123456789", "1",
                           "d365:{account:1}", "u"};
  const char *evalsha0[] = {"EVALSHA", "0123456789012345678901234567890123456789", "0", "x"};
  const char *eval2[] = {"eval", "return 1", "2", "{k}a", "{k}b"};
  const char *hgetall[] = {"HGETALL", "d365:{account:1}:rel:x"};
  const char *xadd[] = {"XADD", "d365:poison", "MAXLEN", "~", "10", "*", "reason", "r"};
  const char *zadd[] = {"ZADD", "d365:reread", "GT", "5", "account:1"};
  const char *load[] = {"SCRIPT", "LOAD", "return 1"};
  const char *info[] = {"INFO", "cluster"};
  const char *asking[] = {"ASKING"};
  cmd_case("EVALSHA routes by KEYS[1]", 5, evalsha, (int)slot_of("account:1"));
  cmd_case("EVALSHA without keys", 4, evalsha0, -1);
  cmd_case("eval (lower case) by its first key", 5, eval2, (int)slot_of("k"));
  cmd_case("HGETALL", 2, hgetall, (int)slot_of("account:1"));
  cmd_case("XADD", 8, xadd, (int)slot_of("d365:poison"));
  cmd_case("ZADD", 5, zadd, (int)slot_of("d365:reread"));
  cmd_case("SCRIPT LOAD has no key", 3, load, -1);
  cmd_case("INFO has no key", 2, info, -1);
  cmd_case("ASKING", 1, asking, -1);
  {
    size_t used;
    int slot;
    TEST_CASE("not RESP");
    CHECK(!redis_cluster_cmd_slot("PING\r\n", 6, &used, &slot));
    CHECK(!redis_cluster_cmd_slot("*0\r\n", 4, &used, &slot));
    CHECK(!redis_cluster_cmd_slot("*1\r\n$5\r\nPING\r\n", 14, &used, &slot));
    CHECK(!redis_cluster_cmd_slot("*1\r\n$4\r\nPINGxx", 14, &used, &slot));
    CHECK(!redis_cluster_cmd_slot("*1\r\n$99999999999999999999999\r\n", 30, &used, &slot));
    CHECK(!redis_cluster_cmd_slot("", 0, &used, &slot));
  }
}

static void test_redirect(void)
{
  static const struct {
    const char *text;
    bool ok, ask;
    int slot;
    const char *host;
    int port;
  } cases[] = {
      {"MOVED 3999 127.0.0.1:6381", true, false, 3999, "127.0.0.1", 6381},
      {"ASK 3999 127.0.0.1:6381", true, true, 3999, "127.0.0.1", 6381},
      {"MOVED 0 redis-1.example.net:10000", true, false, 0, "redis-1.example.net", 10000},
      {"MOVED 16383 [::1]:7000", true, false, 16383, "::1", 7000},
      {"MOVED 12 ::1:7000", true, false, 12, "::1", 7000},
      {"MOVED 12 :7000", true, false, 12, "", 7000}, /* the node that answered */
      {"MOVED 16384 h:1", false, false, 0, "", 0},
      {"MOVED x h:1", false, false, 0, "", 0},
      {"MOVED 1 h", false, false, 0, "", 0},
      {"MOVED 1 h:0", false, false, 0, "", 0},
      {"MOVED 1 h:65536", false, false, 0, "", 0},
      {"MOVED 1 h:12x", false, false, 0, "", 0},
      {"MOVED  1 h:1", false, false, 0, "", 0},
      {"MOVED 1 a b:1", false, false, 0, "", 0}, /* not a host name */
      {"MOVED 1 a\nb:1", false, false, 0, "", 0},
      {"MOVED 1 fe80::1%eth0:7000", true, false, 1, "fe80::1%eth0", 7000},
      {"ASKING", false, false, 0, "", 0},
      {"ERR unknown command", false, false, 0, "", 0},
      {"CLUSTERDOWN The cluster is down", false, false, 0, "", 0},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool ask = false;
    int slot = -1, port = -1;
    char host[64] = "";
    bool ok = redis_cluster_redirect(cases[i].text, strlen(cases[i].text), &ask, &slot, host,
                                     sizeof host, &port);
    TEST_CASE(cases[i].text);
    CHECK_INTEQ(ok, cases[i].ok);
    if (!ok || !cases[i].ok)
      continue;
    CHECK_INTEQ(ask, cases[i].ask);
    CHECK_INTEQ(slot, cases[i].slot);
    CHECK_STREQ(host, cases[i].host);
    CHECK_INTEQ(port, cases[i].port);
  }
  {
    char small[4];
    bool ask;
    int slot, port;
    TEST_CASE("host longer than the buffer");
    CHECK(!redis_cluster_redirect("MOVED 1 abcdef:1", 16, &ask, &slot, small, sizeof small, &port));
  }
}

static const char *root_dir(void)
{
  const char *r = getenv("ROOT");
  return r && *r ? r : ".";
}

static redisReply *fixture(const char *name)
{
  char path[1024];
  size_t n = 0;
  char *data;
  redisReply *r;
  snprintf(path, sizeof path, "%s/tests/fixtures/redis_cluster/%s", root_dir(), name);
  data = test_read_file(path, &n);
  if (!data) {
    fprintf(stderr, "cannot read %s\n", path);
    return NULL;
  }
  r = reply_from(data, n);
  free(data);
  return r;
}

/* a topology covers every slot exactly once, with three primaries */
static void check_cover(const struct rcl_topology *t, size_t want_nodes)
{
  static unsigned char seen[RCL_SLOTS];
  char nodes[8][300];
  size_t nn = 0, i, k;
  int s;
  memset(seen, 0, sizeof seen);
  for (i = 0; i < t->n; i++) {
    char id[300];
    for (s = t->ranges[i].lo; s <= t->ranges[i].hi; s++)
      seen[s]++;
    snprintf(id, sizeof id, "%s:%d", t->ranges[i].host, t->ranges[i].port);
    for (k = 0; k < nn && strcmp(nodes[k], id); k++)
      ;
    if (k == nn && nn < 8)
      memcpy(nodes[nn++], id, sizeof id);
  }
  for (s = 0; s < RCL_SLOTS; s++)
    if (seen[s] != 1) {
      CHECK_MSG(seen[s] == 1, "slot %d covered %d times", s, seen[s]);
      break;
    }
  CHECK_INTEQ(nn, want_nodes);
}

static void test_topology_fixtures(void)
{
  redisReply *shards = fixture("shards.resp"), *slots = fixture("slots.resp");
  struct rcl_topology a, b;
  struct app_err err = {0};
  size_t i, j;

  TEST_CASE("CLUSTER SHARDS of a real cluster");
  CHECK(shards != NULL);
  CHECK(redis_cluster_parse_shards(shards, false, "127.0.0.1", &a, &err) == APP_OK);
  check_cover(&a, 3);
  TEST_CASE("CLUSTER SLOTS of the same cluster");
  CHECK(slots != NULL);
  CHECK(redis_cluster_parse_slots(slots, "127.0.0.1", &b, &err) == APP_OK);
  check_cover(&b, 3);
  /* the same primary for every slot either way */
  TEST_CASE("SHARDS and SLOTS agree");
  for (i = 0; i < a.n; i++)
    for (j = 0; j < b.n; j++)
      if (a.ranges[i].lo <= b.ranges[j].hi && b.ranges[j].lo <= a.ranges[i].hi) {
        CHECK_STREQ(a.ranges[i].host, b.ranges[j].host);
        CHECK_INTEQ(a.ranges[i].port, b.ranges[j].port);
      }
  redis_cluster_topology_free(&a);
  redis_cluster_topology_free(&b);
  freeReplyObject(shards);
  freeReplyObject(slots);
}

#define NODE(ep, port, tls, role, health)                                                          \
  "*14\r\n$2\r\nid\r\n$1\r\nx\r\n$4\r\nport\r\n:" port "\r\n$8\r\ntls-port\r\n:" tls               \
  "\r\n$8\r\nendpoint\r\n" ep "\r\n$4\r\nrole\r\n" role "\r\n$6\r\nhealth\r\n" health              \
  "\r\n$2\r\nip\r\n$8\r\n10.0.0.9\r\n"

static void test_topology_shapes(void)
{
  /* an Azure-like shard: a host-name endpoint and a TLS port, its failed
   * former primary listed first */
  static const char tls_shard[] =
      "*1\r\n*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:99\r\n:200\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n" NODE(
          "$14\r\nr1.example.net", "10000", "10001", "$6\r\nmaster", "$4\r\nfail")
          NODE("$14\r\nr2.example.net", "10002", "10003", "$6\r\nmaster", "$6\r\nonline");
  static const char no_primary[] =
      "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n" NODE(
          "$1\r\n?", "1", "0", "$7\r\nreplica", "$6\r\nonline");
  static const char unknown_ep[] =
      "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n" NODE(
          "$1\r\n?", "7000", "0", "$6\r\nmaster", "$6\r\nonline");
  static const char empty_shard[] = "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*0\r\n";
  static const char bad_range[] =
      "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5\r\n:16384\r\n$5\r\nnodes\r\n*1\r\n" NODE(
          "$1\r\nh", "7000", "0", "$6\r\nmaster", "$6\r\nonline");
  static const char slots_empty_host[] =
      "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$0\r\n\r\n:7000\r\n$1\r\nx\r\n";
  static const char slots_bad[] = "*1\r\n*3\r\n:0\r\n:16383\r\n*1\r\n$1\r\nh\r\n";
  struct rcl_topology t;
  struct app_err err = {0};
  redisReply *r;

  TEST_CASE("shards: host-name endpoint, TLS port, failed primary skipped");
  r = reply_from(tls_shard, sizeof tls_shard - 1);
  CHECK(r != NULL);
  CHECK(redis_cluster_parse_shards(r, true, "seed", &t, &err) == APP_OK);
  CHECK_INTEQ(t.n, 2);
  if (t.n == 2) {
    CHECK_STREQ(t.ranges[0].host, "r2.example.net");
    CHECK_INTEQ(t.ranges[0].port, 10003);
    CHECK_INTEQ(t.ranges[0].lo, 0);
    CHECK_INTEQ(t.ranges[0].hi, 99);
    CHECK_INTEQ(t.ranges[1].lo, 200);
  }
  redis_cluster_topology_free(&t);
  TEST_CASE("shards: without TLS the plain port");
  CHECK(redis_cluster_parse_shards(r, false, "seed", &t, &err) == APP_OK);
  CHECK(t.n == 2 && t.ranges[0].port == 10002);
  redis_cluster_topology_free(&t);
  freeReplyObject(r);

  TEST_CASE("shards: slots without a primary");
  r = reply_from(no_primary, sizeof no_primary - 1);
  CHECK(redis_cluster_parse_shards(r, false, "seed", &t, &err) == APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "no online primary");
  freeReplyObject(r);

  TEST_CASE("shards: endpoint '?' falls back to ip");
  r = reply_from(unknown_ep, sizeof unknown_ep - 1);
  CHECK(redis_cluster_parse_shards(r, false, "seed", &t, &err) == APP_OK);
  CHECK(t.n == 1 && !strcmp(t.ranges[0].host, "10.0.0.9"));
  redis_cluster_topology_free(&t);
  freeReplyObject(r);

  TEST_CASE("shards: a shard without slots is skipped");
  r = reply_from(empty_shard, sizeof empty_shard - 1);
  CHECK(redis_cluster_parse_shards(r, false, "seed", &t, &err) == APP_OK);
  CHECK_INTEQ(t.n, 0);
  redis_cluster_topology_free(&t);
  freeReplyObject(r);

  TEST_CASE("shards: slot out of range");
  r = reply_from(bad_range, sizeof bad_range - 1);
  CHECK(redis_cluster_parse_shards(r, false, "seed", &t, &err) == APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "bad slot range 5-16384");
  freeReplyObject(r);

  TEST_CASE(
      "shards: an endpoint that is not a host name (a NUL byte; found by fuzz_redis_cluster)");
  {
    size_t n = 0;
    char path[1024];
    char *data;
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/redis_cluster/regress_nul_in_endpoint.bin",
             root_dir());
    data = test_read_file(path, &n);
    CHECK(data != NULL);
    r = data ? reply_from(data, n) : NULL;
    CHECK(r != NULL);
    CHECK(redis_cluster_parse_shards(r, false, "seed", &t, &err) == APP_ERR_REDIS);
    CHECK_CONTAINS(err.msg, "no usable address");
    freeReplyObject(r);
    free(data);
  }

  TEST_CASE("slots: empty host is the node asked");
  r = reply_from(slots_empty_host, sizeof slots_empty_host - 1);
  CHECK(redis_cluster_parse_slots(r, "seed.example", &t, &err) == APP_OK);
  CHECK(t.n == 1 && !strcmp(t.ranges[0].host, "seed.example") && t.ranges[0].port == 7000);
  redis_cluster_topology_free(&t);
  freeReplyObject(r);

  TEST_CASE("slots: no primary address");
  r = reply_from(slots_bad, sizeof slots_bad - 1);
  CHECK(redis_cluster_parse_slots(r, "seed", &t, &err) == APP_ERR_REDIS);
  freeReplyObject(r);

  TEST_CASE("not arrays");
  r = reply_from("+OK\r\n", 5);
  CHECK(redis_cluster_parse_shards(r, false, "seed", &t, &err) == APP_ERR_REDIS);
  CHECK(redis_cluster_parse_slots(r, "seed", &t, &err) == APP_ERR_REDIS);
  freeReplyObject(r);
}

static void test_mode(void)
{
  enum redis_cluster_mode m;
  TEST_CASE("CDC_REDIS_CLUSTER values");
  CHECK(redis_cluster_mode_parse("auto", &m) && m == RCL_MODE_AUTO);
  CHECK(redis_cluster_mode_parse("ON", &m) && m == RCL_MODE_ON);
  CHECK(redis_cluster_mode_parse("off", &m) && m == RCL_MODE_OFF);
  CHECK(!redis_cluster_mode_parse("sometimes", &m));
}

int main(void)
{
  test_slots();
  test_cmd_slot();
  test_redirect();
  test_topology_fixtures();
  test_topology_shapes();
  test_mode();
  return check_report("test_redis_cluster");
}

/* test_redis_connstr.c - RedisConnection parsing, redaction, RESP commands
 * and error-reply classes (pure: no server). */
#include "check.h"
#include "redis/redis_conn.h"

#include <stdlib.h>

struct ok_case {
  const char *text;
  const char *host;
  int port;
  const char *user;
  const char *password;
  bool ssl;
  const char *ssl_host;
  int connect_ms, sync_ms, db;
  size_t nendpoints;
  const char *warning; /* substring of warnings, or "" for none */
};

static const struct ok_case ok_cases[] = {
    {"127.0.0.1:6379", "127.0.0.1", 6379, NULL, NULL, false, NULL, 5000, 5000, 0, 1, ""},
    /* the string the Azure portal shows */
    {"contoso.redis.cache.windows.net:6380,password=abc+/def==,ssl=True,abortConnect=False",
     "contoso.redis.cache.windows.net", 6380, NULL, "abc+/def==", true, NULL, 5000, 5000, 0, 1, ""},
    /* no port: 6379, or 6380 with ssl (StackExchange.Redis SetDefaultPorts) */
    {"redis.local", "redis.local", 6379, NULL, NULL, false, NULL, 5000, 5000, 0, 1, ""},
    {"redis.local,ssl=true", "redis.local", 6380, NULL, NULL, true, NULL, 5000, 5000, 0, 1, ""},
    {"ssl=yes,redis.local", "redis.local", 6380, NULL, NULL, true, NULL, 5000, 5000, 0, 1, ""},
    {"redis.local:0,ssl=1", "redis.local", 6380, NULL, NULL, true, NULL, 5000, 5000, 0, 1, ""},
    /* option names are case-insensitive, spaces around items trimmed */
    {" h:1 , USER=alice , PassWord=p w , SSL=FALSE , SslHost=cert.name , CONNECTTIMEOUT=250 , "
     "synctimeout=1500 , DefaultDatabase=3 ",
     "h", 1, "alice", "p w", false, "cert.name", 250, 1500, 3, 1, ""},
    /* IPv6 */
    {"[::1]:6380", "::1", 6380, NULL, NULL, false, NULL, 5000, 5000, 0, 1, ""},
    {"[::1]", "::1", 6379, NULL, NULL, false, NULL, 5000, 5000, 0, 1, ""},
    {"fe80::1", "fe80::1", 6379, NULL, NULL, false, NULL, 5000, 5000, 0, 1, ""},
    /* several endpoints: the first is the single node; a cluster's seeds are all */
    {"primary:6380,replica:6381,ssl=true", "primary", 6380, NULL, NULL, true, NULL, 5000, 5000, 0,
     2, ""},
    /* '=' inside a password: split at the first '=' */
    {"h,password=a=b=c", "h", 6379, NULL, "a=b=c", false, NULL, 5000, 5000, 0, 1, ""},
    /* unknown options: ignored with a warning; known StackExchange options silently */
    {"h,allowAdmin=true,asyncTimeout=10,keepAlive=60,frobnicate=1", "h", 6379, NULL, NULL, false,
     NULL, 5000, 5000, 0, 1, "unknown option 'frobnicate' ignored"},
    {"h,$CLIENT=", "h", 6379, NULL, NULL, false, NULL, 5000, 5000, 0, 1, "command rename"},
    /* empty items are skipped */
    {"h:7000,,", "h", 7000, NULL, NULL, false, NULL, 5000, 5000, 0, 1, ""},
    /* an empty password value means none */
    {"h,password=", "h", 6379, NULL, NULL, false, NULL, 5000, 5000, 0, 1, ""},
};

struct bad_case {
  const char *text;
  const char *msg; /* substring of the error message */
};

static const struct bad_case bad_cases[] = {
    {"", "no endpoint"},
    {"   ", "no endpoint"},
    {"password=secret1", "no endpoint"},
    {"h:65536", "port '65536' is not a number in 0..65535"},
    {"h:abc", "port 'abc' is not a number"},
    {"h:-1", "port '-1'"},
    {":6379", "empty host"},
    {"[::1", "missing ']'"},
    {"[::1]x", "expected ':port' after ']'"},
    {"[]:1", "missing ']'"},
    {"a:b:c", "is not host:port"},
    {"h,ssl=maybe", "option ssl at position 2: 'maybe' is not a boolean"},
    {"h,abortConnect=2", "abortConnect"},
    {"h,connectTimeout=0", "connectTimeout at position 2: '0' is not a number of milliseconds"},
    {"h,syncTimeout=5s", "syncTimeout"},
    {"h,syncTimeout=", "syncTimeout"},
    {"h,defaultDatabase=-1", "defaultDatabase"},
    {"h,=x", "has no name before '='"},
};

static void test_ok(void)
{
  size_t i;
  for (i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    const struct ok_case *c = &ok_cases[i];
    struct redis_conninfo ci;
    struct app_err err = {0};
    enum app_result r = redis_conninfo_parse(c->text, &ci, &err);
    TEST_CASE(c->text);
    CHECK_INTEQ(r, APP_OK);
    if (r != APP_OK) {
      fprintf(stderr, "  error: %s\n", err.msg);
      continue;
    }
    CHECK_STREQ(ci.host, c->host);
    CHECK_INTEQ(ci.port, c->port);
    if (c->user)
      CHECK_STREQ(ci.user, c->user);
    else
      CHECK(ci.user == NULL);
    if (c->password)
      CHECK_STREQ(ci.password, c->password);
    else
      CHECK(ci.password == NULL);
    CHECK_INTEQ(ci.ssl, c->ssl);
    if (c->ssl_host)
      CHECK_STREQ(ci.ssl_host, c->ssl_host);
    else
      CHECK(ci.ssl_host == NULL);
    CHECK_INTEQ(ci.connect_timeout_ms, c->connect_ms);
    CHECK_INTEQ(ci.sync_timeout_ms, c->sync_ms);
    CHECK_INTEQ(ci.database, c->db);
    CHECK_INTEQ(ci.nendpoints, c->nendpoints);
    if (*c->warning)
      CHECK_CONTAINS(ci.warnings, c->warning);
    else
      CHECK_STREQ(ci.warnings, "");
    redis_conninfo_cleanup(&ci);
  }
}

static void test_bad(void)
{
  size_t i;
  for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const struct bad_case *c = &bad_cases[i];
    struct redis_conninfo ci;
    struct app_err err = {0};
    enum app_result r = redis_conninfo_parse(c->text, &ci, &err);
    TEST_CASE(c->text);
    CHECK_INTEQ(r, APP_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "RedisConnection");
    CHECK_CONTAINS(err.msg, c->msg);
    CHECK(ci.host == NULL && ci.password == NULL); /* cleaned on failure */
    redis_conninfo_cleanup(&ci);
  }
  /* a bad option after a password never puts the password in the message */
  {
    struct redis_conninfo ci;
    struct app_err err = {0};
    TEST_CASE("no secret in errors");
    CHECK_INTEQ(redis_conninfo_parse("h,password=TopSecret9,ssl=perhaps", &ci, &err),
                APP_ERR_CONFIG);
    CHECK(strstr(err.msg, "TopSecret9") == NULL);
    redis_conninfo_cleanup(&ci);
  }
  {
    struct redis_conninfo ci;
    struct app_err err = {0};
    TEST_CASE("NULL text");
    CHECK_INTEQ(redis_conninfo_parse(NULL, &ci, &err), APP_ERR_CONFIG);
  }
}

static void test_redaction(void)
{
  struct redis_conninfo ci;
  struct app_err err = {0};
  struct buf b;

  TEST_CASE("redacted rendering");
  buf_init(&b, 0);
  CHECK_INTEQ(redis_conninfo_parse("r.example:6380,user=app,password=S3cr3t=,ssl=True,"
                                   "sslHost=cert.example,defaultDatabase=2,name=cdc",
                                   &ci, &err),
              APP_OK);
  CHECK_INTEQ(redis_conninfo_redacted(&ci, &b), APP_OK);
  CHECK_STREQ(b.data, "r.example:6380,user=app,password=*****,ssl=True,sslHost=cert.example,"
                      "defaultDatabase=2,name=cdc,connectTimeout=5000,syncTimeout=5000");
  redis_conninfo_cleanup(&ci);

  buf_reset(&b);
  CHECK_INTEQ(redis_conninfo_parse("[::1]:7000", &ci, &err), APP_OK);
  CHECK_INTEQ(redis_conninfo_redacted(&ci, &b), APP_OK);
  CHECK_STREQ(b.data, "[::1]:7000,ssl=False,connectTimeout=5000,syncTimeout=5000");
  redis_conninfo_cleanup(&ci);

  TEST_CASE("raw string redaction");
  buf_reset(&b);
  CHECK_INTEQ(redis_connstr_redact("h:1, Password = a,b=c,ssl=perhaps,password=x=y", &b), APP_OK);
  CHECK_STREQ(b.data, "h:1, Password =*****,b=c,ssl=perhaps,password=*****");
  buf_reset(&b);
  CHECK_INTEQ(redis_connstr_redact("", &b), APP_OK);
  CHECK_INTEQ(b.len, 0);
  buf_cleanup(&b);
}

/* Our RESP writer must produce exactly what hiredis' formatter does. */
static void test_resp(void)
{
  const char *argv[] = {"EVALSHA", "", "bin\0ary", "with space", "\r\n"};
  size_t lens[] = {7, 0, 7, 10, 2};
  char *ref = NULL;
  int n;
  struct buf b;

  TEST_CASE("RESP formatting equals redisFormatCommandArgv");
  buf_init(&b, 0);
  n = redisFormatCommandArgv(&ref, 5, argv, lens);
  CHECK(n > 0);
  CHECK_INTEQ(redis_cmd_argv(&b, 5, argv, lens), APP_OK);
  CHECK_INTEQ(b.len, n);
  CHECK(n > 0 && b.len == (size_t)n && memcmp(b.data, ref, (size_t)n) == 0);
  redisFreeCommand(ref);

  buf_reset(&b);
  CHECK_INTEQ(redis_cmd_begin(&b, 3), APP_OK);
  CHECK_INTEQ(redis_cmd_arg_str(&b, "SET"), APP_OK);
  CHECK_INTEQ(redis_cmd_arg_i64(&b, -42), APP_OK);
  CHECK_INTEQ(redis_cmd_arg_i64(&b, 9007199254740993LL), APP_OK);
  CHECK_STREQ(b.data, "*3\r\n$3\r\nSET\r\n$3\r\n-42\r\n$16\r\n9007199254740993\r\n");
  buf_reset(&b);
  CHECK_INTEQ(redis_cmd_arg_i64(&b, INT64_MIN), APP_OK);
  CHECK_INTEQ(redis_cmd_arg_i64(&b, 0), APP_OK);
  CHECK_INTEQ(redis_cmd_arg_i64(&b, INT64_MAX), APP_OK);
  CHECK_STREQ(b.data, "$20\r\n-9223372036854775808\r\n$1\r\n0\r\n$19\r\n9223372036854775807\r\n");

  TEST_CASE("RESP respects the buffer cap");
  buf_cleanup(&b);
  buf_init(&b, 32);
  CHECK_INTEQ(redis_cmd_argv(&b, 1, argv + 3, lens + 3), APP_OK);
  CHECK_INTEQ(redis_cmd_arg(&b, "0123456789", 10), APP_ERR_LIMIT);
  buf_cleanup(&b);
}

static void test_classify(void)
{
  static const struct {
    const char *text;
    enum redis_reply_class want;
  } cases[] = {
      {"NOSCRIPT No matching script. Please use EVAL.", RREPLY_NOSCRIPT},
      {"LOADING Redis is loading the dataset in memory", RREPLY_RETRY},
      {"BUSY Redis is busy running a script.", RREPLY_RETRY},
      {"OOM command not allowed when used memory > 'maxmemory'.", RREPLY_RETRY},
      {"TRYAGAIN Multiple keys request during rehashing of slot", RREPLY_RETRY},
      {"MASTERDOWN Link with MASTER is down", RREPLY_RETRY},
      {"READONLY You can't write against a read only replica.", RREPLY_RETRY_RECONNECT},
      {"ERR max number of clients reached", RREPLY_RETRY_RECONNECT},
      {"WRONGTYPE Operation against a key holding the wrong kind of value", RREPLY_FATAL},
      {"NOPERM this user has no permissions to run the 'evalsha' command", RREPLY_FATAL},
      {"MOVED 3999 127.0.0.1:6381", RREPLY_FATAL},
      {"ERR Error running script (call to f_x): @user_script:1: boom", RREPLY_FATAL},
      {"BUSYKEY Target key name already exists.", RREPLY_FATAL},
      {"LOADINGX", RREPLY_FATAL},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ERROR;
    r.str = (char *)cases[i].text;
    r.len = strlen(cases[i].text);
    TEST_CASE(cases[i].text);
    CHECK_INTEQ(redis_reply_classify(&r), cases[i].want);
  }
  {
    redisReply r;
    struct app_err err = {0};
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_INTEGER;
    TEST_CASE("non-error replies");
    CHECK_INTEQ(redis_reply_classify(&r), RREPLY_OK);
    CHECK_INTEQ(redis_reply_classify(NULL), RREPLY_FATAL);
    r.type = REDIS_REPLY_ERROR;
    r.str = (char *)"WRONGTYPE Operation against a key holding the wrong kind of value";
    r.len = strlen(r.str);
    CHECK_INTEQ(redis_reply_error(&r, &err, "write of %s", "account 1"), APP_ERR_REDIS);
    CHECK_STREQ(err.msg, "write of account 1: WRONGTYPE Operation against a key holding the "
                         "wrong kind of value");
  }
}

/* every endpoint is kept (a cluster's seeds), default ports filled in */
static void test_endpoints(void)
{
  struct redis_conninfo ci;
  struct app_err err = {0};
  TEST_CASE("endpoints");
  CHECK(redis_conninfo_parse("a,b:7001,[::1],ssl=true,password=x", &ci, &err) == APP_OK);
  CHECK_INTEQ(ci.nendpoints, 3);
  if (ci.nendpoints == 3) {
    CHECK_STREQ(ci.endpoints[0].host, "a");
    CHECK_INTEQ(ci.endpoints[0].port, 6380);
    CHECK_STREQ(ci.endpoints[1].host, "b");
    CHECK_INTEQ(ci.endpoints[1].port, 7001);
    CHECK_STREQ(ci.endpoints[2].host, "::1");
    CHECK_INTEQ(ci.endpoints[2].port, 6380);
  }
  CHECK_STREQ(ci.host, "a");
  redis_conninfo_cleanup(&ci);
}

int main(void)
{
  test_ok();
  test_endpoints();
  test_bad();
  test_redaction();
  test_resp();
  test_classify();
  return check_report("test_redis_connstr");
}

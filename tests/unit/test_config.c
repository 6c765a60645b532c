/* test_config.c - the app settings table (handler/common/config.c): defaults, every
 * setting type, bad values and their messages, the port fallback, secrets. */
#include "common/config.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* A settings source the tests control: name=value pairs, NULL-terminated. */
static const char *const *vars;

static const char *lookup(const char *name)
{
  size_t i;
  for (i = 0; vars && vars[i]; i += 2)
    if (!strcmp(vars[i], name))
      return vars[i + 1];
  return NULL;
}

static enum app_result load(const char *const *v, struct app_config *cfg, struct app_err *err)
{
  vars = v;
  app_err_clear(err);
  return config_load(cfg, lookup, err);
}

static char *dump(const struct app_config *cfg)
{
  struct buf b;
  buf_init(&b, 0);
  if (config_dump(cfg, &b) != APP_OK) {
    buf_cleanup(&b);
    return NULL;
  }
  return buf_steal(&b, NULL);
}

static void test_defaults(void)
{
  struct app_config cfg;
  struct app_err err;
  char *d;

  TEST_CASE("defaults");
  CHECK_INTEQ(load(NULL, &cfg, &err), APP_OK);
  CHECK_INTEQ(cfg.port, 8081);
  CHECK_STREQ(cfg.listen_address, "127.0.0.1");
  CHECK_INTEQ(cfg.log_level, LOG_LEVEL_INFO);
  CHECK_STREQ(cfg.mapping_file, "");
  CHECK_STREQ(cfg.app_root, "");
  CHECK_INTEQ(cfg.target, CFG_TARGET_REDIS);
  CHECK_INTEQ(cfg.mode, CFG_MODE_DIRECT);
  CHECK_STREQ(cfg.redis_connection, "127.0.0.1:6379");
  CHECK_STREQ(cfg.sql_connection, "");
  CHECK_STREQ(cfg.sql_dialect, "auto");
  CHECK_INTEQ(cfg.max_request_bytes, 67108864);
  CHECK_INTEQ(cfg.max_message_bytes, 1048576);
  CHECK_INTEQ(cfg.max_batch_messages, 5000);
  CHECK_INTEQ(cfg.max_json_depth, 64);
  CHECK_INTEQ(cfg.poison, CFG_POISON_RECORD);
  CHECK_STREQ(cfg.poison_stream, "d365:poison");
  CHECK_INTEQ(cfg.poison_maxlen, 10000);
  CHECK_INTEQ(cfg.retry_budget_ms, 30000);
  CHECK_INTEQ(cfg.retry_initial_ms, 100);
  CHECK_INTEQ(cfg.redis_pool, 32);
  CHECK_STREQ(cfg.key_prefix, "d365");
  CHECK_INTEQ(cfg.tombstone_ttl_s, 0);
  CHECK_INTEQ(cfg.max_connections, 512);
  CHECK_INTEQ(cfg.connection_timeout_s, 300);
  CHECK_INTEQ(cfg.shutdown_grace_ms, 10000);
  d = dump(&cfg);
  CHECK_CONTAINS(d, "FUNCTIONS_CUSTOMHANDLER_PORT=8081\n");
  CHECK_CONTAINS(d, "CDC_TARGET=redis\n");
  CHECK_CONTAINS(d, "RedisConnection=<set>\n");       /* the default is a value: set */
  CHECK_CONTAINS(d, "SqlConnectionString=<unset>\n"); /* empty */
  free(d);
  config_cleanup(&cfg);
  config_cleanup(&cfg); /* twice is harmless */
  config_cleanup(NULL);
}

static void test_values(void)
{
  static const char *const v[] = {"FUNCTIONS_CUSTOMHANDLER_PORT",
                                  "40123",
                                  "CDC_LISTEN_ADDRESS",
                                  "0.0.0.0",
                                  "CDC_LOG_LEVEL",
                                  "DEBUG",
                                  "CDC_MAPPING_FILE",
                                  "mapping.json",
                                  "FUNCTIONS_APP_ROOT_PATH",
                                  "/home/site/wwwroot",
                                  "CDC_TARGET",
                                  "redis+sql",
                                  "CDC_MODE",
                                  "Bindings",
                                  "RedisConnection",
                                  "cache.redis.cache.windows.net:6380,password=s3cr3t-pw,ssl=True",
                                  "SqlConnectionString",
                                  "Server=tcp:x;Password=hunter2;",
                                  "CDC_SQL_DIALECT",
                                  "Postgres",
                                  "CDC_MAX_REQUEST_BYTES",
                                  "4294967296",
                                  "CDC_MAX_MESSAGE_BYTES",
                                  "1024",
                                  "CDC_MAX_BATCH_MESSAGES",
                                  "1",
                                  "CDC_MAX_JSON_DEPTH",
                                  "1024",
                                  "CDC_POISON",
                                  "fail",
                                  "CDC_POISON_STREAM",
                                  "",
                                  "CDC_SHUTDOWN_GRACE_MS",
                                  "0",
                                  NULL};
  struct app_config cfg;
  struct app_err err;
  char *d;

  TEST_CASE("every setting type");
  CHECK_INTEQ(load(v, &cfg, &err), APP_OK);
  CHECK_INTEQ(cfg.port, 40123);                /* int */
  CHECK_STREQ(cfg.listen_address, "0.0.0.0");  /* string */
  CHECK_INTEQ(cfg.log_level, LOG_LEVEL_DEBUG); /* enum, case-insensitive */
  CHECK_INTEQ(cfg.target, CFG_TARGET_BOTH);
  CHECK_INTEQ(cfg.mode, CFG_MODE_BINDINGS);
  CHECK_STREQ(cfg.sql_dialect, "postgres");          /* enum stored as its name */
  CHECK_INTEQ(cfg.max_request_bytes, 4294967296ULL); /* size at its upper bound */
  CHECK_INTEQ(cfg.max_message_bytes, 1024);          /* size at its lower bound */
  CHECK_INTEQ(cfg.max_batch_messages, 1);
  CHECK_INTEQ(cfg.max_json_depth, 1024);
  CHECK_INTEQ(cfg.poison, CFG_POISON_FAIL);
  CHECK_STREQ(cfg.poison_stream, ""); /* an empty string is a value */
  CHECK_INTEQ(cfg.shutdown_grace_ms, 0);
  CHECK_STREQ(cfg.app_root, "/home/site/wwwroot");

  TEST_CASE("secrets never appear in config_dump");
  d = dump(&cfg);
  CHECK_CONTAINS(d, "RedisConnection=<set>\n");
  CHECK_CONTAINS(d, "SqlConnectionString=<set>\n");
  CHECK(d && !strstr(d, "s3cr3t-pw") && !strstr(d, "hunter2") && !strstr(d, "redis.cache"));
  CHECK_CONTAINS(d, "CDC_LISTEN_ADDRESS=0.0.0.0\n");
  CHECK_CONTAINS(d, "CDC_LOG_LEVEL=debug\n");
  CHECK_CONTAINS(d, "CDC_TARGET=redis+sql\n");
  CHECK_CONTAINS(d, "CDC_SQL_DIALECT=postgres\n");
  CHECK_CONTAINS(d, "CDC_MAX_REQUEST_BYTES=4294967296\n");
  free(d);
  config_cleanup(&cfg);

  TEST_CASE("unset secret");
  {
    static const char *const v2[] = {"RedisConnection", "", NULL};
    CHECK_INTEQ(load(v2, &cfg, &err), APP_OK);
    d = dump(&cfg);
    CHECK_CONTAINS(d, "RedisConnection=<unset>\n");
    free(d);
    config_cleanup(&cfg);
  }

  TEST_CASE("empty values take the default (except strings)");
  {
    static const char *const v3[] = {"CDC_MAX_CONNECTIONS", "", "CDC_TARGET", "", NULL};
    CHECK_INTEQ(load(v3, &cfg, &err), APP_OK);
    CHECK_INTEQ(cfg.max_connections, 512);
    CHECK_INTEQ(cfg.target, CFG_TARGET_REDIS);
    config_cleanup(&cfg);
  }
}

static void test_port_fallback(void)
{
  static const char *const legacy[] = {"FUNCTIONS_HTTPWORKER_PORT", "41000", NULL};
  static const char *const both[] = {"FUNCTIONS_HTTPWORKER_PORT", "41000",
                                     "FUNCTIONS_CUSTOMHANDLER_PORT", "42000", NULL};
  static const char *const empty_primary[] = {"FUNCTIONS_CUSTOMHANDLER_PORT", "",
                                              "FUNCTIONS_HTTPWORKER_PORT", "43000", NULL};
  static const char *const bad_legacy[] = {"FUNCTIONS_HTTPWORKER_PORT", "port", NULL};
  struct app_config cfg;
  struct app_err err;

  TEST_CASE("port fallback variable");
  CHECK_INTEQ(load(legacy, &cfg, &err), APP_OK);
  CHECK_INTEQ(cfg.port, 41000);
  config_cleanup(&cfg);
  CHECK_INTEQ(load(both, &cfg, &err), APP_OK);
  CHECK_INTEQ(cfg.port, 42000); /* FUNCTIONS_CUSTOMHANDLER_PORT wins */
  config_cleanup(&cfg);
  CHECK_INTEQ(load(empty_primary, &cfg, &err), APP_OK);
  CHECK_INTEQ(cfg.port, 43000);
  config_cleanup(&cfg);
  CHECK_INTEQ(load(bad_legacy, &cfg, &err), APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "'port' is not a whole number");
}

static void test_bad_values(void)
{
  static const struct {
    const char *name, *value, *msg;
  } cases[] = {
      {"FUNCTIONS_CUSTOMHANDLER_PORT", "http",
       "setting FUNCTIONS_CUSTOMHANDLER_PORT: 'http' is not a whole number"},
      {"FUNCTIONS_CUSTOMHANDLER_PORT", "0",
       "setting FUNCTIONS_CUSTOMHANDLER_PORT: 0 is out of range [1, 65535]"},
      {"FUNCTIONS_CUSTOMHANDLER_PORT", "65536",
       "setting FUNCTIONS_CUSTOMHANDLER_PORT: 65536 is out of range [1, 65535]"},
      {"FUNCTIONS_CUSTOMHANDLER_PORT", "80 ", "'80 ' is not a whole number"},
      {"FUNCTIONS_CUSTOMHANDLER_PORT", "99999999999999999999",
       "'99999999999999999999' is not a whole number"},
      {"CDC_MAX_REQUEST_BYTES", "1023", "setting CDC_MAX_REQUEST_BYTES: 1023 is out of range"},
      {"CDC_MAX_REQUEST_BYTES", "64MB",
       "setting CDC_MAX_REQUEST_BYTES: '64MB' is not a whole number"},
      {"CDC_MAX_REQUEST_BYTES", "-5", "setting CDC_MAX_REQUEST_BYTES: -5 is out of range"},
      {"CDC_MAX_CONNECTIONS", "abc", "setting CDC_MAX_CONNECTIONS: 'abc' is not a whole number"},
      {"CDC_MAX_CONNECTIONS", "3", "setting CDC_MAX_CONNECTIONS: 3 is out of range [4, 65536]"},
      {"CDC_SHUTDOWN_GRACE_MS", "600001", "600001 is out of range [0, 600000]"},
      {"CDC_TARGET", "mongo",
       "setting CDC_TARGET: 'mongo' is not one of redis, sql, redis+sql, none"},
      {"CDC_MODE", "batch", "setting CDC_MODE: 'batch' is not one of direct, bindings"},
      {"CDC_LOG_LEVEL", "verbose",
       "setting CDC_LOG_LEVEL: 'verbose' is not one of debug, info, warn, error, off"},
      {"CDC_POISON", "drop", "setting CDC_POISON: 'drop' is not one of record, fail"},
      {"CDC_SQL_DIALECT", "oracle",
       "setting CDC_SQL_DIALECT: 'oracle' is not one of auto, tsql, postgres"},
  };
  size_t i;
  struct app_config cfg;
  struct app_err err;

  TEST_CASE("bad values name the setting, the value and what was expected");
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *v[3];
    enum app_result r;
    v[0] = cases[i].name;
    v[1] = cases[i].value;
    v[2] = NULL;
    r = load(v, &cfg, &err);
    CHECK_MSG(r == APP_ERR_CONFIG, "case %zu (%s=%s): %s", i, cases[i].name, cases[i].value,
              app_result_str(r));
    CHECK_MSG(strstr(err.msg, cases[i].msg) != NULL, "case %zu:\n  got:      %s\n  expected: %s", i,
              err.msg, cases[i].msg);
    if (r == APP_OK)
      config_cleanup(&cfg);
    else
      CHECK(cfg.listen_address == NULL); /* cleaned on failure */
  }
}

static void test_doc_table(void)
{
  struct buf b;
  TEST_CASE("settings table for docs/configuration.md");
  buf_init(&b, 0);
  CHECK_INTEQ(config_doc_table(&b), APP_OK);
  CHECK_CONTAINS(b.data, "| Setting | Default | Meaning |");
  CHECK_CONTAINS(b.data, "| `FUNCTIONS_CUSTOMHANDLER_PORT` | `8081` |");
  CHECK_CONTAINS(b.data, "Fallback name: `FUNCTIONS_HTTPWORKER_PORT`.");
  CHECK_CONTAINS(b.data, "| `RedisConnection` |");
  CHECK_CONTAINS(b.data, "Secret.");
  CHECK_CONTAINS(b.data, "| `CDC_MAPPING_FILE` | (empty) |");
  buf_cleanup(&b);
}

static void test_azure_connections(void)
{
  struct app_config cfg;
  struct app_err err;
  static const char *const azure[] = {"WEBSITE_INSTANCE_ID", "abc123", NULL};
  static const char *const production[] = {"AZURE_FUNCTIONS_ENVIRONMENT", "Production", NULL};
  static const char *const both[] = {"AZURE_FUNCTIONS_ENVIRONMENT", "Production", "CDC_TARGET",
                                     "redis+sql", NULL};
  static const char *const development[] = {"AZURE_FUNCTIONS_ENVIRONMENT", "Development", NULL};
  static const char *const given[] = {"WEBSITE_INSTANCE_ID", "abc123", "RedisConnection",
                                      "r.example:6380,ssl=True", NULL};
  static const char *const sql_only[] = {"WEBSITE_INSTANCE_ID", "abc123", "CDC_TARGET", "sql",
                                         NULL};
  static const char *const entra[] = {"WEBSITE_INSTANCE_ID",
                                      "abc123",
                                      "RedisConnection__redisHostName",
                                      "r.example:10000",
                                      "RedisConnection__principalId",
                                      "00000000-0000-0000-0000-000000000001",
                                      NULL};
  static const char *const bindings[] = {"WEBSITE_INSTANCE_ID", "abc123", "CDC_MODE", "bindings",
                                         NULL};

  TEST_CASE("in Azure a missing RedisConnection stops start-up, naming the setting");
  CHECK_INTEQ(load(azure, &cfg, &err), APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "RedisConnection is not set");
  CHECK_CONTAINS(err.msg, "CDC_TARGET=redis");
  CHECK_INTEQ(load(production, &cfg, &err), APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "RedisConnection");
  CHECK_INTEQ(load(both, &cfg, &err), APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "CDC_TARGET=redis+sql");

  TEST_CASE("locally, with the setting, or without Redis in the target: the defaults");
  CHECK_INTEQ(load(development, &cfg, &err), APP_OK);
  CHECK_STREQ(cfg.redis_connection, "127.0.0.1:6379");
  config_cleanup(&cfg);
  CHECK_INTEQ(load(NULL, &cfg, &err), APP_OK);
  config_cleanup(&cfg);
  CHECK_INTEQ(load(given, &cfg, &err), APP_OK);
  config_cleanup(&cfg);
  CHECK_INTEQ(load(entra, &cfg, &err), APP_OK); /* identity-based: the host name is enough */
  config_cleanup(&cfg);
  CHECK_INTEQ(load(sql_only, &cfg, &err), APP_OK);
  config_cleanup(&cfg);
  CHECK_INTEQ(load(bindings, &cfg, &err), APP_OK);
  config_cleanup(&cfg);
}

int main(void)
{
  test_defaults();
  test_values();
  test_port_fallback();
  test_bad_values();
  test_doc_table();
  test_azure_connections();
  return check_report("test_config");
}

/* test_sql_sink.c - the SQL sink without a server: settings, creation,
 * input refused before any connection, a connection failure's message. */
#include "common/config.h"
#include "common/log.h"
#include "sql/sql_sink.h"
#include "check.h"
#include "sql_testdocs.h"

#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const *env_pairs;

static const char *lookup(const char *name)
{
  size_t i;
  for (i = 0; env_pairs[i]; i += 2)
    if (!strcmp(env_pairs[i], name))
      return env_pairs[i + 1];
  return NULL;
}

/* psqlODBC by path, towards a socket directory nobody listens in */
#define NOWHERE                                                                                    \
  "Driver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so;Servername=/nonexistent/d365cdc;"            \
  "Port=1;Database=postgres;Username=postgres;Password=hunter2;"

static void test_app_driver(void)
{
  TEST_CASE("the ODBC driver resolved against the app root (the zip's bundled psqlODBC)");
  {
    char root[] = "/tmp/d365cdc-drv.XXXXXX";
    char path[128];
    char *d;
    FILE *f;
    CHECK(mkdtemp(root) != NULL);
    /* nothing bundled: keep the configured value (or the dialect's default name) */
    CHECK(sql_sink_app_driver(root, NULL, SQL_DIALECT_POSTGRES) == NULL);
    CHECK(sql_sink_app_driver(root, "PostgreSQL Unicode", SQL_DIALECT_POSTGRES) == NULL);
    CHECK(sql_sink_app_driver(root, "/opt/x/psqlodbcw.so", SQL_DIALECT_POSTGRES) == NULL);
    d = sql_sink_app_driver(root, "lib/x.so", SQL_DIALECT_TSQL);
    snprintf(path, sizeof path, "%s/lib/x.so", root);
    CHECK_STREQ(d, path);
    free(d);
    snprintf(path, sizeof path, "%s/lib", root);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/lib/odbc", root);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/" SQL_SINK_BUNDLED_PG_DRIVER, root);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
      fclose(f);
    d = sql_sink_app_driver(root, NULL, SQL_DIALECT_POSTGRES);
    CHECK_STREQ(d, path);
    free(d);
    d = sql_sink_app_driver(root, "", SQL_DIALECT_NONE);
    CHECK_STREQ(d, path);
    free(d);
    /* Azure SQL needs Microsoft's driver: the bundled one is never used for tsql */
    CHECK(sql_sink_app_driver(root, NULL, SQL_DIALECT_TSQL) == NULL);
    CHECK(sql_sink_app_driver(NULL, NULL, SQL_DIALECT_POSTGRES) == NULL);
    unlink(path);
    snprintf(path, sizeof path, "%s/lib/odbc", root);
    rmdir(path);
    snprintf(path, sizeof path, "%s/lib", root);
    rmdir(path);
    rmdir(root);
  }
}

int main(void)
{
  struct app_config cfg;
  struct sql_sink_options o;
  struct sql_sink *s = NULL;
  struct app_err e;

  log_set_level(LOG_LEVEL_OFF);
  test_app_driver();

  TEST_CASE("settings become sink options");
  {
    static const char *const env[] = {"SqlConnectionString",
                                      "Server=tcp:x,1433;Database=d;Password=p",
                                      "CDC_TARGET",
                                      "sql",
                                      "CDC_SQL_DELETE",
                                      "hard",
                                      "CDC_SQL_SCHEMA",
                                      "validate",
                                      "CDC_SQL_POOL",
                                      "3",
                                      "CDC_SQL_QUERY_TIMEOUT_SECONDS",
                                      "12",
                                      "CDC_SQL_DIALECT",
                                      "tsql",
                                      "CDC_SQL_ODBC_DRIVER",
                                      "ODBC Driver 17 for SQL Server",
                                      NULL};
    env_pairs = env;
    CHECK_MSG(config_load(&cfg, lookup, &e) == APP_OK, "%s", e.msg);
    sql_sink_options_from_config(&cfg, &o);
    CHECK_INTEQ(o.delete_mode, SQL_DELETE_HARD);
    CHECK(o.validate_only);
    CHECK_INTEQ(o.pool_size, 3);
    CHECK_INTEQ(o.query_timeout_s, 12);
    CHECK_INTEQ(o.dialect, SQL_DIALECT_TSQL);
    CHECK_STREQ(o.odbc_driver, "ODBC Driver 17 for SQL Server");
    CHECK(o.record_poison); /* target sql, poison record (default) */
    CHECK(sql_sink_create(&o, &s, &e) == APP_OK);
    CHECK_INTEQ(sql_sink_dialect(s), SQL_DIALECT_TSQL);
    CHECK_STREQ(sql_sink_redacted(s),
                "Driver={ODBC Driver 17 for SQL Server};Server=tcp:x,1433;Database=d;PWD=***;");
    sql_sink_destroy(s);
    s = NULL;
    config_cleanup(&cfg);
  }

  TEST_CASE("defaults");
  {
    static const char *const env[] = {NULL};
    env_pairs = env;
    CHECK(config_load(&cfg, lookup, &e) == APP_OK);
    sql_sink_options_from_config(&cfg, &o);
    CHECK_INTEQ(o.delete_mode, SQL_DELETE_SOFT);
    CHECK(!o.validate_only);
    CHECK_INTEQ(o.pool_size, 8);
    CHECK_INTEQ(o.dialect, SQL_DIALECT_NONE);
    CHECK(o.odbc_driver == NULL);
    CHECK(!o.record_poison); /* target redis by default: its stream records poison */
    config_cleanup(&cfg);
  }

  TEST_CASE("a bad setting names itself");
  {
    static const char *const env[] = {"CDC_SQL_DELETE", "purge", NULL};
    env_pairs = env;
    CHECK_INTEQ(config_load(&cfg, lookup, &e), APP_ERR_CONFIG);
    CHECK_CONTAINS(e.msg, "CDC_SQL_DELETE");
    CHECK_CONTAINS(e.msg, "soft, hard");
  }

  TEST_CASE("a bad connection string fails creation without leaking the password");
  memset(&o, 0, sizeof o);
  o.connection_string = "Server=s;Password=hunter2;Bogus=1";
  o.pool_size = 1;
  CHECK_INTEQ(sql_sink_create(&o, &s, &e), APP_ERR_CONFIG);
  CHECK_CONTAINS(e.msg, "Bogus");
  CHECK(!strstr(e.msg, "hunter2"));

  TEST_CASE("input is refused before any connection is attempted");
  memset(&o, 0, sizeof o);
  o.connection_string = NOWHERE;
  o.pool_size = 1;
  o.login_timeout_s = 1;
  CHECK(sql_sink_create(&o, &s, &e) == APP_OK);
  if (s) {
    struct tdoc *t = td_new(CDC_OP_UPDATE, "account", "accountid",
                            "11111111-0000-0000-0000-000000000001", 1000, 1);
    const struct doc *d[1] = {&t->d};
    struct sink_batch b;
    struct sink_stats st;
    memset(&b, 0, sizeof b);
    b.docs = d;
    b.ndocs = 1;
    b.deadline_ms = sink_now_ms() + 2000;
    td_num(t, "revenue", DOC_T_DECIMAL, "12,5");
    CHECK_INTEQ(sql_sink_write(s, &b, &st, &e), APP_ERR_INPUT);
    CHECK_CONTAINS(e.msg, "'revenue' is not a number");
    CHECK_INTEQ(st.round_trips, 0);

    TEST_CASE("nothing for SQL: success without a connection");
    t->d.op = CDC_OP_OTHER;
    CHECK(sql_sink_write(s, &b, &st, &e) == APP_OK);
    CHECK_INTEQ(st.round_trips, 0);
    b.ndocs = 0;
    CHECK(sql_sink_write(s, &b, &st, &e) == APP_OK);

    TEST_CASE("an unreachable server: transient, retried until the deadline, no secret");
    if (access("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so", R_OK) != 0) {
      fprintf(stderr, "psqlODBC not installed: connection case skipped (make deps)\n");
      free(t);
      sql_sink_destroy(s);
      return check_report("test_sql_sink");
    }
    t->d.op = CDC_OP_UPDATE;
    t->d.nprops = 0;
    b.ndocs = 1;
    b.deadline_ms = sink_now_ms() + 800;
    CHECK_INTEQ(sql_sink_write(s, &b, &st, &e), APP_ERR_SQL);
    CHECK_CONTAINS(e.msg, "SQLSTATE 08001");
    CHECK_CONTAINS(e.msg, "connect to /nonexistent/d365cdc/postgres");
    CHECK_CONTAINS(e.msg, "gave up after");
    CHECK(!strstr(e.msg, "hunter2"));
    CHECK(st.retries >= 1);
    CHECK_INTEQ(sql_sink_ping(s, &e), APP_ERR_SQL);
    CHECK(!strstr(e.msg, "hunter2"));
    free(t);
    sql_sink_destroy(s);
  }
  sql_sink_destroy(NULL);
  return check_report("test_sql_sink");
}

/* itest_sql_sink.c - the SQL sink against a real PostgreSQL over psqlODBC.
 *
 * Run by tests/e2e/sql_postgres.sh, which starts a private PostgreSQL and
 * sets PG_ODBC (psqlODBC by driver path), PG_STOP_CMD and PG_START_CMD
 * (used by the restart cases). Usage:
 *   itest_sql_sink            every correctness case
 *   itest_sql_sink bench N R  R runs of N-document batches; prints changes/s
 *   itest_sql_sink validate T write into table T (made by sqlddl) in validate mode
 * Every case uses its own tables, so cases do not see each other's rows. */
#include "common/log.h"
#include "map/sink.h"
#include "sql/sql_odbc.h"
#include "sql/sql_sink.h"
#include "../unit/check.h"
#include "../unit/sql_testdocs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *odbc;
static struct sql_odbc_env *qenv;
static struct sql_conn *qconn;

#define ID(n) "00000000-0000-0000-0000-0000000000" #n

static struct sql_sink *mk_sink(enum sql_delete_mode mode, bool validate, int pool)
{
  struct sql_sink_options o;
  struct sql_sink *s = NULL;
  struct app_err e;
  memset(&o, 0, sizeof o);
  o.connection_string = odbc;
  o.dialect = SQL_DIALECT_NONE; /* detected from the driver path */
  o.delete_mode = mode;
  o.validate_only = validate;
  o.pool_size = pool;
  o.retry_initial_ms = 50;
  o.retry_max_ms = 500;
  if (sql_sink_create(&o, &s, &e) != APP_OK) {
    fprintf(stderr, "sql_sink_create: %s\n", e.msg);
    exit(1);
  }
  return s;
}

static enum app_result wr(struct sql_sink *s, struct tdoc **t, size_t n, int64_t budget_ms,
                          struct sink_stats *st, struct app_err *e)
{
  const struct doc **docs = xcalloc(n ? n : 1, sizeof *docs);
  struct sink_batch b;
  struct sink_stats local;
  enum app_result r;
  size_t i;
  for (i = 0; i < n; i++)
    docs[i] = &t[i]->d;
  memset(&b, 0, sizeof b);
  b.docs = docs;
  b.ndocs = n;
  b.invocation_id = "itest";
  b.deadline_ms = sink_now_ms() + budget_ms;
  app_err_clear(e);
  r = sql_sink_write(s, &b, st ? st : &local, e);
  free(docs);
  return r;
}

static void free_docs(struct tdoc **t, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    free(t[i]);
}

struct q1_ctx {
  char v[512];
  int rows;
};

static enum app_result q1_row(void *ctx, const char *c1, const char *c2, struct app_err *err)
{
  struct q1_ctx *q = ctx;
  (void)c2, (void)err;
  if (!q->rows++)
    snprintf(q->v, sizeof q->v, "%s", c1 ? c1 : "<null>");
  return APP_OK;
}

static struct sql_conn *raw_connect(void);
static enum app_result raw_exec(struct sql_conn *c, const char *sql, int timeout_s,
                                struct app_err *e);

static void qconnect(void)
{
  struct app_err e;
  struct sql_odbc_diag dg;
  sql_odbc_disconnect(qconn);
  qconn = NULL;
  if (sql_odbc_connect(qenv, odbc, "test", SQL_DIALECT_POSTGRES, 5, &qconn, &dg, &e) != APP_OK) {
    fprintf(stderr, "query connection: %s\n", e.msg);
    exit(1);
  }
}

/* First column of the first row as text; "<none>" when no row. */
static const char *q1(const char *sql)
{
  static struct q1_ctx q;
  struct sql_stmt st;
  struct app_err e;
  memset(&q, 0, sizeof q);
  sql_stmt_init(&st);
  if (buf_append_str(&st.sql, sql) != APP_OK)
    abort();
  if (!qconn)
    qconnect();
  if (sql_odbc_query(qconn, &st, 10, q1_row, &q, &e) != APP_OK) {
    snprintf(q.v, sizeof q.v, "<error: %s>", e.msg);
    qconnect();
  } else {
    sql_odbc_rollback(qconn); /* end the read transaction: later reads see new commits */
  }
  sql_stmt_cleanup(&st);
  if (!q.rows && strncmp(q.v, "<error", 6) != 0)
    snprintf(q.v, sizeof q.v, "<none>");
  return q.v;
}

static void run_cmd(const char *env)
{
  const char *cmd = getenv(env);
  pid_t p;
  int status = 0;
  if (!cmd) {
    fprintf(stderr, "%s not set\n", env);
    exit(1);
  }
  p = fork();
  if (p == 0) {
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  waitpid(p, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fprintf(stderr, "%s failed (status %d)\n", env, status);
}

/* ---- cases ------------------------------------------------------------------ */

static void case_types_and_ddl(struct sql_sink *s)
{
  struct tdoc *t[1];
  struct app_err e;
  struct sink_stats st;
  TEST_CASE("types and DDL");
  t[0] = td_new(CDC_OP_CREATE, "t_types", "accountid", ID(01), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "Zo\xc3\xab \xf0\x9f\x98\x80 \xe4\xb8\xad \"q\" 'a'");
  td_num(t[0], "revenue", DOC_T_DECIMAL, "12345678901234567890.1234567890");
  td_num(t[0], "big", DOC_T_INT, "9007199254740993");
  td_num(t[0], "statecode", DOC_T_INT, "1");
  td_str(t[0], "_ownerid_value", DOC_T_GUID, "AABBCCDD-0000-1111-2222-333344445555");
  td_str(t[0], "createdon", DOC_T_DATETIME, "2024-11-08T08:05:06Z");
  td_str(t[0], "birthday", DOC_T_DATE, "1999-12-31");
  td_bool(t[0], "donotemail", 1);
  td_str(t[0], "categories", DOC_T_MULTI, "100000000,100000002");
  td_prop(t[0], "extra", DOC_OBJECT, DOC_T_JSON, "{\"a\":[1,2.50]}", NULL);
  td_null(t[0], "fax", DOC_T_TEXT);
  CHECK_MSG(wr(s, t, 1, 10000, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_INTEQ(st.applied, 1);
  CHECK_STREQ(q1("SELECT name FROM t_types"), "Zo\xc3\xab \xf0\x9f\x98\x80 \xe4\xb8\xad \"q\" 'a'");
  CHECK_STREQ(q1("SELECT revenue::text FROM t_types"), "12345678901234567890.1234567890");
  CHECK_STREQ(q1("SELECT big::text FROM t_types"), "9007199254740993");
  CHECK_STREQ(q1("SELECT _ownerid_value::text FROM t_types"),
              "aabbccdd-0000-1111-2222-333344445555");
  CHECK_STREQ(q1("SELECT to_char(createdon AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM "
                 "t_types"),
              "2024-11-08 08:05:06");
  CHECK_STREQ(q1("SELECT birthday::text FROM t_types"), "1999-12-31");
  CHECK_STREQ(q1("SELECT donotemail::text FROM t_types"), "true");
  CHECK_STREQ(q1("SELECT categories FROM t_types"), "100000000,100000002");
  CHECK_STREQ(q1("SELECT extra->'a'->>1 FROM t_types"), "2.50");
  CHECK_STREQ(q1("SELECT coalesce(fax, 'NULL') || ' ' || (fax__v IS NOT NULL)::text FROM "
                 "t_types"),
              "NULL true");
  CHECK_STREQ(q1("SELECT data_type FROM information_schema.columns WHERE table_name = 't_types' "
                 "AND column_name = 'revenue'"),
              "numeric");
  CHECK_STREQ(q1("SELECT data_type FROM information_schema.columns WHERE table_name = 't_types' "
                 "AND column_name = 'accountid'"),
              "uuid");
  CHECK_STREQ(q1("SELECT data_type FROM information_schema.columns WHERE table_name = 't_types' "
                 "AND column_name = 'createdon'"),
              "timestamp with time zone");
  CHECK_STREQ(q1("SELECT _cdc_version FROM t_types"), t[0]->d.version_text);
  CHECK_STREQ(q1("SELECT _cdc_deleted::text FROM t_types"), "false");
  free_docs(t, 1);
}

static void case_types_by_look(struct sql_sink *s)
{
  struct tdoc *t[2];
  struct app_err e;
  TEST_CASE("column types survive values typed by their look");
  /* a Float column's first value is integral; later it is not */
  t[0] = td_new(CDC_OP_CREATE, "t_look", "accountid", ID(05), 1000, 1);
  td_num(t[0], "exchangerate", DOC_T_INT, "100");
  /* a free-text column whose first value happens to look like a GUID */
  td_str(t[0], "externalid", DOC_T_GUID, "aabbccdd-0000-1111-2222-333344445555");
  td_str(t[0], "_parentaccountid_value", DOC_T_GUID, "aabbccdd-0000-1111-2222-333344445555");
  CHECK_MSG(wr(s, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  t[1] = td_new(CDC_OP_UPDATE, "t_look", "accountid", ID(05), 2000, 1);
  td_num(t[1], "exchangerate", DOC_T_DECIMAL, "100.5");
  td_str(t[1], "externalid", DOC_T_TEXT, "ERP-4711");
  CHECK_MSG(wr(s, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT exchangerate::text || ' ' || externalid FROM t_look"), "100.5 ERP-4711");
  CHECK_STREQ(q1("SELECT data_type FROM information_schema.columns WHERE table_name = 't_look' "
                 "AND column_name = '_parentaccountid_value'"),
              "uuid");
  CHECK_STREQ(q1("SELECT data_type FROM information_schema.columns WHERE table_name = 't_look' "
                 "AND column_name = 'externalid'"),
              "text");
  free_docs(t, 2);
}

static void case_order_and_redelivery(struct sql_sink *s)
{
  struct tdoc *a[3], *b[3];
  struct app_err e;
  struct sink_stats st;
  char xmin[64];
  TEST_CASE("reversed order and redelivery");
  a[0] = td_new(CDC_OP_UPDATE, "t_order", "contactid", ID(02), 3000, 1);
  td_str(a[0], "name", DOC_T_TEXT, "third");
  a[1] = td_new(CDC_OP_UPDATE, "t_order", "contactid", ID(02), 2000, 1);
  td_str(a[1], "name", DOC_T_TEXT, "second");
  a[2] = td_new(CDC_OP_CREATE, "t_order", "contactid", ID(02), 1000, 1);
  td_str(a[2], "name", DOC_T_TEXT, "first");
  /* newest first, one per batch */
  CHECK_MSG(wr(s, &a[0], 1, 10000, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_MSG(wr(s, &a[1], 1, 10000, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_INTEQ(st.applied, 0);
  /* the late Create writes no column; it only records that a full row
   * (as of its version) was seen, which is row bookkeeping */
  CHECK_MSG(wr(s, &a[2], 1, 10000, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT name FROM t_order"), "third");
  CHECK_STREQ(q1("SELECT _cdc_full_version FROM t_order"), a[2]->d.version_text);
  CHECK_STREQ(q1("SELECT _cdc_version FROM t_order"), a[0]->d.version_text);

  /* redelivery changes nothing, not even the row's physical version */
  snprintf(xmin, sizeof xmin, "%s", q1("SELECT xmin::text FROM t_order"));
  CHECK_MSG(wr(s, a, 3, 10000, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_INTEQ(st.applied, 0);
  CHECK_INTEQ(st.stale, 3);
  CHECK_STREQ(q1("SELECT xmin::text FROM t_order"), xmin);
  CHECK_STREQ(q1("SELECT count(*) FROM t_order"), "1");

  /* duplicates in one batch, in every order */
  b[0] = td_new(CDC_OP_UPDATE, "t_order", "contactid", ID(03), 2000, 7);
  td_str(b[0], "name", DOC_T_TEXT, "mid");
  b[1] = td_new(CDC_OP_UPDATE, "t_order", "contactid", ID(03), 2000, 9);
  td_str(b[1], "name", DOC_T_TEXT, "newest (tie-break)");
  b[2] = td_new(CDC_OP_UPDATE, "t_order", "contactid", ID(03), 2000, 7);
  td_str(b[2], "name", DOC_T_TEXT, "mid");
  CHECK_MSG(wr(s, b, 3, 10000, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_INTEQ(st.applied, 1);
  CHECK_STREQ(q1("SELECT name FROM t_order WHERE contactid = '" ID(03) "'"), "newest (tie-break)");
  free_docs(a, 3);
  free_docs(b, 3);
}

static void case_partial_updates(struct sql_sink *s)
{
  struct tdoc *t[4];
  struct app_err e;
  int order;
  TEST_CASE("partial updates to different columns, both orders");
  for (order = 0; order < 2; order++) {
    const char *id = order ? ID(11) : ID(10);
    t[0] = td_new(CDC_OP_UPDATE, "t_partial", "leadid", id, 2000, 1);
    td_str(t[0], "name", DOC_T_TEXT, "N");
    t[1] = td_new(CDC_OP_UPDATE, "t_partial", "leadid", id, 3000, 1);
    td_str(t[1], "phone", DOC_T_TEXT, "P");
    td_num(t[1], "score", DOC_T_INT, "42");
    if (order) {
      struct tdoc *x = t[0];
      t[0] = t[1];
      t[1] = x;
    }
    CHECK_MSG(wr(s, &t[0], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
    CHECK_MSG(wr(s, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
    free_docs(t, 2);
  }
  CHECK_STREQ(q1("SELECT string_agg(name || phone || score, ',' ORDER BY leadid) FROM t_partial"),
              "NP42,NP42");
  /* and both in one batch, mixed with an older value of each column */
  t[0] = td_new(CDC_OP_UPDATE, "t_partial", "leadid", ID(12), 3000, 1);
  td_str(t[0], "phone", DOC_T_TEXT, "P2");
  t[1] = td_new(CDC_OP_UPDATE, "t_partial", "leadid", ID(12), 2000, 1);
  td_str(t[1], "name", DOC_T_TEXT, "N2");
  td_str(t[1], "phone", DOC_T_TEXT, "old phone");
  t[2] = td_new(CDC_OP_UPDATE, "t_partial", "leadid", ID(12), 1000, 1);
  td_str(t[2], "name", DOC_T_TEXT, "old name");
  t[3] = td_new(CDC_OP_UPDATE, "t_partial", "leadid", ID(12), 1500, 1);
  td_num(t[3], "score", DOC_T_INT, "-7");
  CHECK_MSG(wr(s, t, 4, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(
      q1("SELECT name || '|' || phone || '|' || score FROM t_partial WHERE leadid = '" ID(12) "'"),
      "N2|P2|-7");
  free_docs(t, 4);
}

static void case_deletes(struct sql_sink *s)
{
  struct tdoc *t[3];
  struct app_err e;
  struct sink_stats st;
  TEST_CASE("delete then late older update (soft)");
  t[0] = td_new(CDC_OP_CREATE, "t_del", "accountid", ID(20), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "alive");
  t[1] = td_new(CDC_OP_DELETE, "t_del", "accountid", ID(20), 5000, 1);
  t[2] = td_new(CDC_OP_UPDATE, "t_del", "accountid", ID(20), 3000, 1);
  td_str(t[2], "name", DOC_T_TEXT, "late older update");
  CHECK_MSG(wr(s, &t[0], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_MSG(wr(s, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_MSG(wr(s, &t[2], 1, 10000, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_INTEQ(st.applied, 0);
  /* the tombstone row keeps no column values: a Delete nulls them as of
   * its version, so a later re-create cannot bring them back */
  CHECK_STREQ(q1("SELECT _cdc_deleted::text || ' ' || coalesce(name, 'null') FROM t_del WHERE "
                 "accountid = '" ID(20) "'"),
              "true null");
  CHECK_STREQ(q1("SELECT _cdc_deleted_version FROM t_del"), t[1]->d.version_text);
  free_docs(t, 3);

  TEST_CASE("delete of an unseen record, then its older create (tombstone)");
  t[0] = td_new(CDC_OP_DELETE, "t_del", "accountid", ID(21), 5000, 1);
  t[1] = td_new(CDC_OP_CREATE, "t_del", "accountid", ID(21), 1000, 1);
  td_str(t[1], "name", DOC_T_TEXT, "resurrected?");
  CHECK_MSG(wr(s, &t[0], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_MSG(wr(s, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT _cdc_deleted::text || ' ' || coalesce(name, 'null') FROM t_del WHERE "
                 "accountid = '" ID(21) "'"),
              "true null");
  free_docs(t, 2);

  TEST_CASE("delete and older update in one batch, newer re-create revives");
  t[0] = td_new(CDC_OP_UPDATE, "t_del", "accountid", ID(22), 3000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "before delete");
  t[1] = td_new(CDC_OP_DELETE, "t_del", "accountid", ID(22), 4000, 1);
  CHECK_MSG(wr(s, t, 2, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT _cdc_deleted::text || ' ' || coalesce(name, 'null') FROM t_del WHERE "
                 "accountid = '" ID(22) "'"),
              "true null");
  t[2] = td_new(CDC_OP_CREATE, "t_del", "accountid", ID(22), 9000, 1);
  td_str(t[2], "name", DOC_T_TEXT, "re-created");
  CHECK_MSG(wr(s, &t[2], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(
      q1("SELECT _cdc_deleted::text || ' ' || name FROM t_del WHERE accountid = '" ID(22) "'"),
      "false re-created");
  free_docs(t, 3);
}

static void case_full_row_and_reread(struct sql_sink *s)
{
  struct tdoc *t[3];
  struct app_err e;
  TEST_CASE("full-row change nulls older columns it does not list");
  t[0] = td_new(CDC_OP_UPDATE, "t_full", "accountid", ID(30), 1000, 1);
  td_str(t[0], "phone", DOC_T_TEXT, "old phone");
  td_str(t[0], "city", DOC_T_TEXT, "newer city");
  t[1] = td_new(CDC_OP_UPDATE, "t_full", "accountid", ID(30), 3000, 1);
  td_str(t[1], "city", DOC_T_TEXT, "newest city");
  CHECK_MSG(wr(s, t, 2, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  t[2] = td_new(CDC_OP_CREATE, "t_full", "accountid", ID(30), 2000, 1); /* full_row */
  td_str(t[2], "name", DOC_T_TEXT, "from post image");
  CHECK_MSG(wr(s, &t[2], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT coalesce(phone, 'null') || '|' || city || '|' || name FROM t_full"),
              "null|newest city|from post image");
  free_docs(t, 3);

  TEST_CASE("truncated change records a re-read and touches no column");
  t[0] = td_new(CDC_OP_UPDATE, "t_full", "accountid", ID(30), 4000, 1);
  t[0]->d.needs_reread = true;
  CHECK_MSG(wr(s, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT city || '|' || (_cdc_reread_version > coalesce(_cdc_full_version, "
                 "''))::text FROM t_full"),
              "newest city|true");
  free_docs(t, 1);
}

static void case_add_column(struct sql_sink *s)
{
  struct tdoc *t[2];
  struct app_err e;
  TEST_CASE("ADD COLUMN for a new property");
  t[0] = td_new(CDC_OP_CREATE, "t_evolve", "accountid", ID(40), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "a");
  CHECK_MSG(wr(s, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT count(*) FROM information_schema.columns WHERE table_name = 't_evolve' "
                 "AND column_name LIKE 'new%'"),
              "0");
  t[1] = td_new(CDC_OP_UPDATE, "t_evolve", "accountid", ID(40), 2000, 1);
  td_num(t[1], "new_amount", DOC_T_DECIMAL, "1.0000000000");
  td_str(t[1], "pr\xc3\xa9nom", DOC_T_TEXT, "Zo\xc3\xab"); /* a non-ASCII column name */
  CHECK_MSG(wr(s, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT \"pr\xc3\xa9nom\" FROM t_evolve"), "Zo\xc3\xab");
  CHECK_STREQ(q1("SELECT name || ' ' || new_amount::text FROM t_evolve"), "a 1.0000000000");
  CHECK_STREQ(q1("SELECT data_type FROM information_schema.columns WHERE table_name = 't_evolve' "
                 "AND column_name = 'new_amount__v'"),
              "character varying");
  free_docs(t, 2);
}

static void case_dropped_table(struct sql_sink *s)
{
  struct tdoc *t[2];
  struct app_err e;
  struct sql_conn *c;
  TEST_CASE("a table dropped behind the cache is recreated");
  t[0] = td_new(CDC_OP_CREATE, "t_drop", "accountid", ID(41), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "first");
  t[1] = td_new(CDC_OP_UPDATE, "t_drop", "accountid", ID(41), 2000, 1);
  td_str(t[1], "name", DOC_T_TEXT, "after drop");
  CHECK_MSG(wr(s, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  c = raw_connect();
  CHECK(raw_exec(c, "DROP TABLE t_drop", 10, &e) == APP_OK);
  CHECK(sql_odbc_commit(c, &e) == APP_OK);
  sql_odbc_disconnect(c);
  CHECK_MSG(wr(s, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT name FROM t_drop"), "after drop");
  free_docs(t, 2);
}

static void case_ddl_failure(struct sql_sink *s)
{
  struct tdoc *t[1];
  struct app_err e;
  struct sql_conn *c;
  TEST_CASE("a failing DDL is reported with its SQLSTATE");
  c = raw_connect();
  CHECK(raw_exec(c, "CREATE VIEW v_ddl AS SELECT 1 AS x", 10, &e) == APP_OK);
  CHECK(sql_odbc_commit(c, &e) == APP_OK);
  sql_odbc_disconnect(c);
  t[0] = td_new(CDC_OP_CREATE, "v_ddl", "accountid", ID(42), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "x");
  CHECK_INTEQ(wr(s, t, 1, 10000, NULL, &e), APP_ERR_SQL);
  CHECK_CONTAINS(e.msg, "SQLSTATE 42809");
  free_docs(t, 1);
}

static void case_rollback(struct sql_sink *s)
{
  struct tdoc *t[3];
  struct app_err e;
  struct sink_stats st;
  enum app_result r;
  TEST_CASE("a failing row rolls the whole batch back");
  t[0] = td_new(CDC_OP_CREATE, "t_rb_a", "accountid", ID(50), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "good");
  t[1] = td_new(CDC_OP_CREATE, "t_rb_b", "accountid", ID(51), 1000, 1);
  td_str(t[1], "createdon", DOC_T_DATETIME, "2024-13-45T00:00:00Z"); /* month 13 */
  t[2] = td_new(CDC_OP_CREATE, "t_rb_c", "accountid", ID(52), 1000, 1);
  td_str(t[2], "name", DOC_T_TEXT, "good too");
  r = wr(s, t, 3, 10000, &st, &e);
  CHECK_INTEQ(r, APP_ERR_SQL);
  CHECK_CONTAINS(e.msg, "SQLSTATE 22008");
  CHECK_CONTAINS(e.msg, "t_rb_b");
  CHECK_INTEQ(st.retries, 0);
  CHECK_STREQ(q1("SELECT count(*) FROM t_rb_a"), "0");
  CHECK_STREQ(q1("SELECT count(*) FROM t_rb_c"), "0");

  TEST_CASE("bad input is refused before any SQL");
  td_str(t[0], "_cdc_version", DOC_T_TEXT, "x");
  r = wr(s, t, 1, 10000, &st, &e);
  CHECK_INTEQ(r, APP_ERR_INPUT);
  CHECK_CONTAINS(e.msg, "the sink's own _cdc_ columns");
  CHECK_INTEQ(st.round_trips, 0);
  free_docs(t, 3);
}

static void case_links(struct sql_sink *s)
{
  struct tdoc *t[4];
  struct app_err e;
  TEST_CASE("link table: associate, late older disassociate, other side, newer disassociate");
  t[0] = td_new(CDC_OP_ASSOCIATE, "account", "accountid", ID(60), 2000, 1);
  td_relate(t[0], "accountleads_association", "lead", ID(61));
  td_relate(t[0], "accountleads_association", "lead", ID(62));
  t[1] = td_new(CDC_OP_DISASSOCIATE, "account", "accountid", ID(60), 1000, 1);
  td_relate(t[1], "accountleads_association", "lead", ID(61));
  t[2] = td_new(CDC_OP_ASSOCIATE, "lead", "leadid", ID(61), 2500, 1); /* from the other side */
  td_relate(t[2], "accountleads_association", "account", ID(60));
  CHECK_MSG(wr(s, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_MSG(wr(s, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_MSG(wr(s, &t[2], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT count(*) || ' ' || bool_and(_cdc_associated)::text FROM "
                 "accountleads_association"),
              "2 true");
  CHECK_STREQ(
      q1("SELECT table1 || ' ' || table2 FROM accountleads_association WHERE id2 = '" ID(61) "'"),
      "account lead");
  t[3] = td_new(CDC_OP_DISASSOCIATE, "lead", "leadid", ID(61), 3000, 1);
  td_relate(t[3], "accountleads_association", "account", ID(60));
  CHECK_MSG(wr(s, &t[3], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(
      q1("SELECT _cdc_associated::text FROM accountleads_association WHERE id2 = '" ID(61) "'"),
      "false");
  free_docs(t, 4);
}

static void case_hard_delete(void)
{
  struct sql_sink *h = mk_sink(SQL_DELETE_HARD, false, 2);
  struct tdoc *t[4];
  struct app_err e;
  TEST_CASE("hard delete: row removed, tombstone kept, late update refused, re-create works");
  t[0] = td_new(CDC_OP_CREATE, "t_hard", "accountid", ID(70), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "x");
  t[1] = td_new(CDC_OP_DELETE, "t_hard", "accountid", ID(70), 5000, 1);
  t[2] = td_new(CDC_OP_UPDATE, "t_hard", "accountid", ID(70), 3000, 1);
  td_str(t[2], "name", DOC_T_TEXT, "late");
  t[3] = td_new(CDC_OP_CREATE, "t_hard", "accountid", ID(70), 8000, 1);
  td_str(t[3], "name", DOC_T_TEXT, "again");
  CHECK_MSG(wr(h, &t[0], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT count(*) FROM t_hard"), "1");
  CHECK_MSG(wr(h, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT count(*) FROM t_hard"), "0");
  CHECK_STREQ(q1("SELECT _cdc_version FROM t_hard__tombstone"), t[1]->d.version_text);
  CHECK_MSG(wr(h, &t[2], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT count(*) FROM t_hard"), "0");
  CHECK_MSG(wr(h, &t[3], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT name || ' ' || _cdc_deleted::text FROM t_hard"), "again false");
  /* delete of an unseen record in hard mode leaves only a tombstone */
  free_docs(t, 4);
  t[0] = td_new(CDC_OP_DELETE, "t_hard", "accountid", ID(71), 5000, 1);
  t[1] = td_new(CDC_OP_UPDATE, "t_hard", "accountid", ID(71), 4000, 1);
  td_str(t[1], "name", DOC_T_TEXT, "late");
  CHECK_MSG(wr(h, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_MSG(wr(h, &t[1], 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT count(*) FROM t_hard WHERE accountid = '" ID(71) "'"), "0");
  CHECK_STREQ(q1("SELECT count(*) FROM t_hard__tombstone WHERE accountid = '" ID(71) "'"), "1");
  free_docs(t, 2);
  sql_sink_destroy(h);
}

static void case_poison(void)
{
  struct sql_sink_options o;
  struct sql_sink *ps = NULL;
  struct sink_poison p[3];
  struct sink_batch b;
  struct sink_stats st;
  struct tdoc *t[1];
  const struct doc *d[1];
  struct app_err e;
  int round;
  static const char body[] = "\x00\x01"
                             "binary .NET\xff";

  TEST_CASE("poison messages recorded in the batch transaction, once");
  memset(&o, 0, sizeof o);
  o.connection_string = odbc;
  o.pool_size = 1;
  o.record_poison = true;
  CHECK(sql_sink_create(&o, &ps, &e) == APP_OK);
  memset(p, 0, sizeof p);
  p[0].message_id = "msg-1";
  p[0].reason = "not JSON: line 1, column 1";
  p[0].body = body;
  p[0].body_len = sizeof body - 1;
  p[0].content_type = "application/msbin1";
  p[0].delivery_count = 2;
  p[0].enqueued_ms = 1731053106000;
  p[1] = p[0]; /* the same message twice in one batch */
  p[2].reason = "no MessageId";
  p[2].body = "{}";
  p[2].body_len = 2;
  t[0] = td_new(CDC_OP_CREATE, "t_poison_doc", "accountid", ID(95), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "good doc beside poison");
  d[0] = &t[0]->d;
  for (round = 0; round < 2; round++) { /* the second round is a redelivery */
    memset(&b, 0, sizeof b);
    b.docs = d;
    b.ndocs = 1;
    b.poison = p;
    b.npoison = 3;
    b.function = "cdc";
    b.invocation_id = "inv-1";
    b.deadline_ms = sink_now_ms() + 10000;
    CHECK_MSG(sql_sink_write(ps, &b, &st, &e) == APP_OK, "%s", e.msg);
    CHECK_INTEQ(st.poison, 2);
  }
  CHECK_STREQ(q1("SELECT count(*) FROM _cdc_poison"), "2");
  CHECK_STREQ(q1("SELECT encode(body, 'hex') || ' ' || reason || ' ' || delivery_count || ' ' "
                 "|| enqueued_ms || ' ' || function_name || ' ' || invocation_id FROM "
                 "_cdc_poison WHERE poison_key = 'msg-1'"),
              "000162696e617279202e4e4554ff not JSON: line 1, column 1 2 1731053106000 cdc inv-1");
  CHECK_STREQ(q1("SELECT poison_key FROM _cdc_poison WHERE message_id IS NULL"),
              "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  CHECK_STREQ(q1("SELECT name FROM t_poison_doc"), "good doc beside poison");

  TEST_CASE("a batch of only poison");
  memset(&b, 0, sizeof b);
  p[2].body = "[]";
  b.poison = &p[2];
  b.npoison = 1;
  b.deadline_ms = sink_now_ms() + 10000;
  CHECK_MSG(sql_sink_write(ps, &b, &st, &e) == APP_OK, "%s", e.msg);
  CHECK_STREQ(q1("SELECT count(*) FROM _cdc_poison"), "3");
  free_docs(t, 1);
  sql_sink_destroy(ps);
}

static void case_validate(void)
{
  struct sql_sink *v = mk_sink(SQL_DELETE_SOFT, true, 1);
  struct tdoc *t[1];
  struct app_err e;
  TEST_CASE("validate mode refuses a missing table");
  t[0] = td_new(CDC_OP_CREATE, "t_missing", "accountid", ID(80), 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "x");
  CHECK_INTEQ(wr(v, t, 1, 10000, NULL, &e), APP_ERR_CONFIG);
  CHECK_CONTAINS(e.msg, "t_missing");
  CHECK_STREQ(q1("SELECT count(*) FROM information_schema.tables WHERE table_name = 't_missing'"),
              "0");
  free_docs(t, 1);
  sql_sink_destroy(v);
}

/* Writers on several threads over overlapping keys, random versions: the
 * final state is the newest version of each column whatever the order. */
struct conc_arg {
  struct sql_sink *s;
  int thread;
  int fails;
};

static void *conc_thread(void *p)
{
  struct conc_arg *a = p;
  int round, k;
  for (round = 0; round < 10; round++) {
    struct tdoc *t[20];
    struct app_err e;
    for (k = 0; k < 20; k++) {
      char id[40], val[32];
      /* versions are unique per (thread, round, k) so the winner is known */
      int64_t ts = 1000 + (int64_t)((round * 7 + a->thread * 3 + k * 5) % 50);
      snprintf(id, sizeof id, "00000000-0000-0000-0000-%012d", 900 + k % 10);
      t[k] = td_new(CDC_OP_UPDATE, "t_conc", "accountid", NULL, ts,
                    (uint32_t)(a->thread * 1000 + round * 20 + k));
      snprintf(t[k]->strs[TD_MAX_PROPS - 1][0], 40, "%s", id);
      t[k]->d.id = t[k]->strs[TD_MAX_PROPS - 1][0];
      snprintf(val, sizeof val, "%lld/%u", (long long)ts, t[k]->d.version.tie);
      td_str(t[k], "v", DOC_T_TEXT, val);
    }
    if (wr(a->s, t, 20, 30000, NULL, &e) != APP_OK) {
      fprintf(stderr, "concurrent write: %s\n", e.msg);
      a->fails++;
    }
    free_docs(t, 20);
  }
  return NULL;
}

static void case_concurrent(struct sql_sink *s)
{
  pthread_t th[4];
  struct conc_arg args[4];
  int i;
  TEST_CASE("concurrent writers over overlapping keys");
  for (i = 0; i < 4; i++) {
    args[i].s = s;
    args[i].thread = i;
    args[i].fails = 0;
    pthread_create(&th[i], NULL, conc_thread, &args[i]);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_INTEQ(args[i].fails, 0);
  }
  /* expected: per key the value written with the greatest (ts, tie) */
  {
    int k, round, thread;
    char expect[10][32];
    int64_t best_ts[10];
    unsigned best_tie[10];
    for (k = 0; k < 10; k++)
      best_ts[k] = -1, best_tie[k] = 0;
    for (thread = 0; thread < 4; thread++)
      for (round = 0; round < 10; round++)
        for (k = 0; k < 20; k++) {
          int64_t ts = 1000 + (int64_t)((round * 7 + thread * 3 + k * 5) % 50);
          unsigned tie = (unsigned)(thread * 1000 + round * 20 + k);
          int key = k % 10;
          if (ts > best_ts[key] || (ts == best_ts[key] && tie > best_tie[key])) {
            best_ts[key] = ts;
            best_tie[key] = tie;
            snprintf(expect[key], sizeof expect[key], "%lld/%u", (long long)ts, tie);
          }
        }
    for (k = 0; k < 10; k++) {
      char sql[200];
      snprintf(sql, sizeof sql,
               "SELECT v FROM t_conc WHERE accountid = '00000000-0000-0000-0000-%012d'", 900 + k);
      CHECK_STREQ(q1(sql), expect[k]);
    }
  }
}

/* ---- transient failures on a live server ------------------------------------------ */

static struct sql_conn *raw_connect(void)
{
  struct sql_conn *c = NULL;
  struct sql_odbc_diag dg;
  struct app_err e;
  if (sql_odbc_connect(qenv, odbc, "test", SQL_DIALECT_POSTGRES, 5, &c, &dg, &e) != APP_OK) {
    fprintf(stderr, "raw connection: %s\n", e.msg);
    exit(1);
  }
  return c;
}

static enum app_result raw_exec(struct sql_conn *c, const char *sql, int timeout_s,
                                struct app_err *e)
{
  struct sql_stmt st;
  enum app_result r;
  sql_stmt_init(&st);
  if (buf_append_str(&st.sql, sql) != APP_OK)
    abort();
  r = sql_odbc_exec(c, &st, timeout_s, NULL, e);
  sql_stmt_cleanup(&st);
  return r;
}

struct bg_write {
  struct sql_sink *s;
  struct tdoc **t;
  size_t n;
  enum app_result r;
  struct sink_stats st;
  struct app_err e;
};

static void *bg_write_run(void *p)
{
  struct bg_write *w = p;
  w->r = wr(w->s, w->t, w->n, 20000, &w->st, &w->e);
  return NULL;
}

static struct tdoc *dead_doc(const char *id, int64_t ts, const char *v)
{
  struct tdoc *t = td_new(CDC_OP_UPDATE, "t_dead", "accountid", id, ts, 1);
  td_str(t, "v", DOC_T_TEXT, v);
  return t;
}

static void case_query_timeout_and_deadlock(struct sql_sink *s)
{
  struct sql_conn *c2;
  struct tdoc *t[2];
  struct app_err e;
  struct bg_write w;
  pthread_t th;
  enum app_result r;

  TEST_CASE("the query timeout cancels a statement and is classified transient");
  c2 = raw_connect();
  {
    int64_t t0 = sink_now_ms();
    /* not a timing assertion: a statement that would run 30 s must end
     * long before that (the bound is loose for a loaded machine) */
    r = raw_exec(c2, "SELECT pg_sleep(30)", 1, &e);
    CHECK_INTEQ(r, APP_ERR_SQL);
    CHECK_MSG(sink_now_ms() - t0 < 15000, "timeout took %lld ms", (long long)(sink_now_ms() - t0));
    CHECK_MSG(sql_odbc_last(c2)->transient, "not transient: %s", e.msg);
    sql_odbc_rollback(c2);
  }

  TEST_CASE("a real deadlock (40P01) is retried and the batch lands");
  t[0] = dead_doc(ID(A1), 1000, "a1");
  t[1] = dead_doc(ID(B1), 1000, "b1");
  CHECK_MSG(wr(s, t, 2, 10000, NULL, &e) == APP_OK, "%s", e.msg);
  free_docs(t, 2);
  /* another session holds B; the sink takes A (ids sort A < B) then waits on B */
  CHECK(raw_exec(c2, "UPDATE t_dead SET v = v WHERE accountid = '" ID(B1) "'", 10, &e) == APP_OK);
  t[0] = dead_doc(ID(A1), 2000, "a2");
  t[1] = dead_doc(ID(B1), 2000, "b2");
  memset(&w, 0, sizeof w);
  w.s = s;
  w.t = t;
  w.n = 2;
  pthread_create(&th, NULL, bg_write_run, &w);
  usleep(400 * 1000);
  /* now this session wants A: a cycle; the sink waited first, so its
   * deadlock check (deadlock_timeout 1 s) fires first and it gets 40P01 */
  r = raw_exec(c2, "UPDATE t_dead SET v = v WHERE accountid = '" ID(A1) "'", 20, &e);
  if (r == APP_OK)
    r = sql_odbc_commit(c2, &e);
  else
    sql_odbc_rollback(c2);
  pthread_join(th, NULL);
  CHECK_MSG(w.r == APP_OK, "%s", w.e.msg);
  CHECK_MSG(w.st.retries >= 1, "no retry: the sink never saw the deadlock (other side: %s)",
            r == APP_OK ? "ok" : e.msg);
  CHECK_STREQ(q1("SELECT string_agg(v, ',' ORDER BY accountid) FROM t_dead"), "a2,b2");
  free_docs(t, 2);
  sql_odbc_disconnect(c2);
}

/* ---- restart ------------------------------------------------------------------ */

static struct tdoc *restart_doc(int i, const char *table)
{
  char id[40], val[32];
  struct tdoc *t;
  snprintf(id, sizeof id, "00000000-0000-0000-0001-%012d", i);
  t = td_new(CDC_OP_UPDATE, table, "accountid", NULL, 1000 + i, 1);
  snprintf(t->strs[TD_MAX_PROPS - 1][0], 40, "%s", id);
  t->d.id = t->strs[TD_MAX_PROPS - 1][0];
  snprintf(val, sizeof val, "v%d", i);
  td_str(t, "v", DOC_T_TEXT, val);
  return t;
}

static void *restarter(void *p)
{
  (void)p;
  run_cmd("PG_STOP_CMD");
  usleep(1500 * 1000);
  run_cmd("PG_START_CMD");
  return NULL;
}

static void case_restart(struct sql_sink *s)
{
  struct tdoc *t[10];
  struct app_err e;
  struct sink_stats st;
  enum app_result r;
  int i, b, acked = 0, retries = 0;
  pthread_t th;
  char want[32];

  TEST_CASE("server down: the batch fails within its deadline, nothing written");
  for (i = 0; i < 10; i++)
    t[i] = restart_doc(i, "t_restart");
  CHECK_MSG(wr(s, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg); /* creates the table */
  run_cmd("PG_STOP_CMD");
  {
    int64_t t0 = sink_now_ms();
    r = wr(s, &t[1], 9, 1500, &st, &e);
    CHECK(r == APP_ERR_SQL || r == APP_ERR_TIMEOUT);
    /* bounded by the deadline (1.5 s) plus one login timeout at most */
    CHECK_MSG(sink_now_ms() - t0 < 15000, "took %lld ms", (long long)(sink_now_ms() - t0));
    CHECK(st.retries >= 1);
    fprintf(stderr, "  (down: %s after %zu retries)\n", e.msg, st.retries);
  }
  run_cmd("PG_START_CMD");
  qconnect();
  CHECK_STREQ(q1("SELECT count(*) FROM t_restart"), "1");
  free_docs(t, 10);

  TEST_CASE("restart mid-stream: every acknowledged batch is there");
  for (b = 0; b < 30; b++) {
    for (i = 0; i < 10; i++)
      t[i] = restart_doc(100 + b * 10 + i, "t_restart");
    if (b == 5)
      pthread_create(&th, NULL, restarter, NULL);
    r = wr(s, t, 10, 20000, &st, &e);
    if (r == APP_OK)
      acked++;
    else
      fprintf(stderr, "batch %d failed: %s\n", b, e.msg);
    retries += (int)st.retries;
    free_docs(t, 10);
    usleep(100 * 1000);
  }
  pthread_join(th, NULL);
  CHECK_INTEQ(acked, 30);
  CHECK_MSG(retries > 0, "the restart was not noticed (retries %d)", retries);
  qconnect();
  CHECK_STREQ(q1("SELECT count(*) FROM t_restart WHERE v LIKE 'v%'"), "301");
  snprintf(want, sizeof want, "v%d", 100 + 29 * 10 + 9);
  CHECK_STREQ(
      q1("SELECT v FROM t_restart WHERE accountid = '00000000-0000-0000-0001-000000000399'"), want);
}

/* ---- bench --------------------------------------------------------------------- */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int bench(int n, int runs)
{
  struct sql_sink *s = mk_sink(SQL_DELETE_SOFT, false, 1);
  struct tdoc **t = xcalloc((size_t)n, sizeof *t);
  double *rate = xcalloc((size_t)runs, sizeof *rate);
  struct app_err e;
  int run, i;
  char table[64];
  snprintf(table, sizeof table, "t_bench_%ld", (long)getpid());
  for (run = 0; run < runs + 1; run++) { /* run 0 warms up (creates the table) */
    double t0;
    struct sink_stats st;
    for (i = 0; i < n; i++) {
      char id[40], val[64];
      t[i] = td_new(CDC_OP_UPDATE, table, "accountid", NULL, 1000 + run, (uint32_t)i);
      snprintf(id, sizeof id, "00000000-0000-0000-0002-%012d", i);
      snprintf(t[i]->strs[TD_MAX_PROPS - 1][0], 40, "%s", id);
      t[i]->d.id = t[i]->strs[TD_MAX_PROPS - 1][0];
      snprintf(val, sizeof val, "name %d run %d", i, run);
      td_str(t[i], "name", DOC_T_TEXT, val);
      td_num(t[i], "revenue", DOC_T_DECIMAL, "1234567.8900");
      td_num(t[i], "statecode", DOC_T_INT, "0");
      td_str(t[i], "_ownerid_value", DOC_T_GUID, "aabbccdd-0000-1111-2222-333344445555");
      td_str(t[i], "modifiedon", DOC_T_DATETIME, "2024-11-08T08:05:06Z");
    }
    t0 = now_s();
    if (wr(s, t, (size_t)n, 60000, &st, &e) != APP_OK) {
      fprintf(stderr, "bench write: %s\n", e.msg);
      return 1;
    }
    if (run > 0)
      rate[run - 1] = n / (now_s() - t0);
    if (run > 0 && st.applied != (size_t)n) {
      fprintf(stderr, "bench: applied %zu of %d\n", st.applied, n);
      return 1;
    }
    for (i = 0; i < n; i++)
      free(t[i]);
  }
  qsort(rate, (size_t)runs, sizeof *rate, cmp_double);
  printf("sql bench: %d runs of %d-document batches into PostgreSQL: median %.0f changes/s "
         "(min %.0f, max %.0f)\n",
         runs, n, rate[runs / 2], rate[0], rate[runs - 1]);
  free(rate);
  free(t);
  sql_sink_destroy(s);
  return 0;
}

int main(int argc, char **argv)
{
  struct sql_sink *s;
  struct app_err e;
  int rc;
  odbc = getenv("PG_ODBC");
  if (!odbc || !*odbc) {
    fprintf(stderr, "PG_ODBC not set: run through tests/e2e/sql_postgres.sh\n");
    return 77;
  }
  log_set_level(LOG_LEVEL_ERROR);
  if (sql_odbc_env_create(&qenv, &e) != APP_OK) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  if (argc > 2 && !strcmp(argv[1], "validate")) {
    /* a table made by tests/tools/sqlddl satisfies validate mode */
    struct sql_sink *v = mk_sink(SQL_DELETE_SOFT, true, 1);
    struct tdoc *t[1];
    TEST_CASE("validate mode writes into a table made by sqlddl");
    t[0] = td_new(CDC_OP_CREATE, argv[2], "accountid", ID(90), 1000, 1);
    td_str(t[0], "name", DOC_T_TEXT, "via sqlddl");
    td_num(t[0], "revenue", DOC_T_DECIMAL, "2.5");
    td_num(t[0], "new_col", DOC_T_INT, "7");
    CHECK_MSG(wr(v, t, 1, 10000, NULL, &e) == APP_OK, "%s", e.msg);
    free_docs(t, 1);
    sql_sink_destroy(v);
    sql_odbc_disconnect(qconn);
    sql_odbc_env_destroy(qenv);
    return check_report("itest_sql_sink validate");
  }
  if (argc > 1 && !strcmp(argv[1], "bench")) {
    rc = bench(argc > 2 ? atoi(argv[2]) : 1000, argc > 3 ? atoi(argv[3]) : 7);
    sql_odbc_env_destroy(qenv);
    return rc;
  }
  s = mk_sink(SQL_DELETE_SOFT, false, 4);
  case_types_and_ddl(s);
  case_types_by_look(s);
  case_order_and_redelivery(s);
  case_partial_updates(s);
  case_deletes(s);
  case_full_row_and_reread(s);
  case_add_column(s);
  case_dropped_table(s);
  case_ddl_failure(s);
  case_rollback(s);
  case_links(s);
  case_hard_delete();
  case_validate();
  case_poison();
  case_concurrent(s);
  case_query_timeout_and_deadlock(s);
  if (getenv("PG_STOP_CMD"))
    case_restart(s);
  sql_sink_destroy(s);
  sql_odbc_disconnect(qconn);
  sql_odbc_env_destroy(qenv);
  return check_report("itest_sql_sink");
}

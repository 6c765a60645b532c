/* test_sql_dialect.c - statement text for both dialects against golden files.
 *
 * No SQL Server runs here, so the T-SQL statements are checked against
 * reviewed golden files in tests/fixtures/sql/ (the PostgreSQL ones are also
 * executed for real by itest_sql_sink). Each golden file holds the SQL and
 * then its parameters as "-- ?N = value" lines. Regenerate after a reviewed
 * change with: UPDATE_GOLDEN=1 build/tests/test_sql_dialect */
#include "common/arena.h"
#include "sql/sql_ddl.h"
#include "sql/sql_dialect.h"
#include "sql/sql_plan.h"
#include "check.h"
#include "sql_testdocs.h"

#include <stdlib.h>
#include "testfile.h"

static const char *fixture_dir(void)
{
  static char dir[512];
  const char *root = getenv("ROOT");
  snprintf(dir, sizeof dir, "%s/tests/fixtures/sql", root && *root ? root : ".");
  return dir;
}

static void render(const struct sql_stmt *st, struct buf *out)
{
  size_t i;
  if (buf_append(out, st->sql.data, st->sql.len) != APP_OK || buf_append_char(out, '\n'))
    abort();
  for (i = 0; i < st->nparams; i++)
    if (buf_printf(out, "-- ?%zu = %.*s\n", i + 1, (int)st->lens[i], st->vals[i]) != APP_OK)
      abort();
}

/* Compare text with the golden file name (or write it with UPDATE_GOLDEN). */
static void golden(const char *name, const char *text)
{
  char path[700];
  char *want;
  size_t wantlen = 0;
  snprintf(path, sizeof path, "%s/%s", fixture_dir(), name);
  if (getenv("UPDATE_GOLDEN")) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (f) {
      fputs(text, f);
      fclose(f);
    }
    return;
  }
  want = test_read_file(path, &wantlen);
  CHECK_MSG(want != NULL, "missing golden file %s (UPDATE_GOLDEN=1 writes it)", path);
  if (want && strcmp(want, text) != 0) {
    size_t i = 0;
    while (want[i] && want[i] == text[i])
      i++;
    CHECK_MSG(0, "%s differs at byte %zu:\n--- got:\n%.300s\n--- expected:\n%.300s", name, i,
              text + (i > 60 ? i - 60 : 0), want + (i > 60 ? i - 60 : 0));
  }
  free(want);
}

#define A1 "11111111-0000-0000-0000-000000000001"
#define A2 "11111111-0000-0000-0000-000000000002"
#define A3 "11111111-0000-0000-0000-000000000003"
#define A4 "11111111-0000-0000-0000-000000000004"

/* A create with every type, an update then delete of another record, and
 * a truncated change of a third: the group every golden upsert uses. */
static struct tdoc *docs[8];
static size_t ndocs;

static void make_docs(void)
{
  struct tdoc *t;
  t = td_new(CDC_OP_CREATE, "account", "accountid", A1, 1731053106000, 7);
  t->d.sql_table = "dbo.account";
  td_str(t, "name", DOC_T_TEXT, "Contoso 'Ltd'");
  td_num(t, "revenue", DOC_T_DECIMAL, "12345678901234567890.1234567890");
  td_num(t, "statecode", DOC_T_INT, "0");
  td_str(t, "_ownerid_value", DOC_T_GUID, "aabbccdd-0000-1111-2222-333344445555");
  td_str(t, "createdon", DOC_T_DATETIME, "2024-11-08T08:05:06Z");
  td_bool(t, "donotemail", 0);
  td_null(t, "fax", DOC_T_TEXT);
  docs[ndocs++] = t;
  t = td_new(CDC_OP_UPDATE, "account", "accountid", A2, 1731053107000, 1);
  t->d.sql_table = "dbo.account";
  td_str(t, "name", DOC_T_TEXT, "Fabrikam");
  docs[ndocs++] = t;
  t = td_new(CDC_OP_DELETE, "account", "accountid", A2, 1731053108000, 2);
  t->d.sql_table = "dbo.account";
  docs[ndocs++] = t;
  t = td_new(CDC_OP_UPDATE, "account", "accountid", A3, 1731053109000, 3);
  t->d.sql_table = "dbo.account";
  t->d.needs_reread = true;
  docs[ndocs++] = t;
  t = td_new(CDC_OP_UPDATE, "account", "accountid", A4, 1731053109500, 6);
  t->d.sql_table = "dbo.account";
  td_num(t, "revenue", DOC_T_DECIMAL, "1.5E+20"); /* a double's lexeme */
  docs[ndocs++] = t;
  t = td_new(CDC_OP_ASSOCIATE, "account", "accountid", A1, 1731053110000, 4);
  t->d.sql_table = "dbo.account";
  td_relate(t, "accountleads_association", "lead", "22222222-0000-0000-0000-000000000001");
  docs[ndocs++] = t;
  t = td_new(CDC_OP_DISASSOCIATE, "lead", "leadid", "22222222-0000-0000-0000-000000000002",
             1731053111000, 5);
  t->d.sql_table = "dbo.lead";
  td_relate(t, "accountleads_association", "account", A1);
  docs[ndocs++] = t;
}

static void statements(enum sql_dialect d, const char *prefix)
{
  struct arena a;
  struct sql_plan plan;
  struct sql_stmt st;
  struct app_err e;
  struct buf out;
  const struct doc *dp[8];
  const struct sql_group *ent = NULL, *link = NULL;
  size_t i, count;
  char name[128];

  for (i = 0; i < ndocs; i++)
    dp[i] = &docs[i]->d;
  arena_init(&a, 0);
  sql_stmt_init(&st);
  buf_init(&out, 0);
  CHECK(sql_plan_build(&a, dp, ndocs, sql_dialect_max_ident(d), &plan, &e) == APP_OK);
  for (i = 0; i < plan.ngroups; i++) {
    if (plan.groups[i].kind == SQL_GROUP_ENTITY)
      ent = &plan.groups[i];
    else
      link = &plan.groups[i];
  }
  CHECK(ent && link);
  if (!ent || !link)
    return;

  CHECK(sql_dialect_upsert(d, ent, 0, &st, &count, &e) == APP_OK);
  CHECK_INTEQ(count, 4);
  render(&st, &out);
  snprintf(name, sizeof name, "%s_upsert.sql", prefix);
  golden(name, out.data);

  buf_reset(&out);
  CHECK(sql_dialect_link_upsert(d, link, 0, &st, &count, &e) == APP_OK);
  CHECK_INTEQ(count, 2);
  render(&st, &out);
  snprintf(name, sizeof name, "%s_link_upsert.sql", prefix);
  golden(name, out.data);

  buf_reset(&out);
  CHECK(sql_dialect_hard_delete(d, ent, 0, 4, SQL_HARD_LOCK, &st, &e) == APP_OK);
  render(&st, &out);
  CHECK(sql_dialect_hard_delete(d, ent, 0, 4, SQL_HARD_RESTORE, &st, &e) == APP_OK);
  render(&st, &out);
  CHECK(sql_dialect_hard_delete(d, ent, 0, 4, SQL_HARD_ARCHIVE, &st, &e) == APP_OK);
  render(&st, &out);
  CHECK(sql_dialect_hard_delete(d, ent, 0, 4, SQL_HARD_REMOVE, &st, &e) == APP_OK);
  render(&st, &out);
  snprintf(name, sizeof name, "%s_hard_delete.sql", prefix);
  golden(name, out.data);

  buf_reset(&out);
  CHECK(sql_ddl_create(d, ent->table, ent->key, ent->cols, ent->ncols, SQL_DELETE_HARD, &out, &e) ==
        APP_OK);
  CHECK(sql_ddl_add_columns(d, ent->table, ent->cols + 5, 2, &out, &e) == APP_OK);
  CHECK(sql_ddl_create_link(d, link->table, &out, &e) == APP_OK);
  CHECK(sql_dialect_columns_query(d, "dbo.it's", &st, &e) == APP_OK);
  render(&st, &out);
  snprintf(name, sizeof name, "%s_ddl.sql", prefix);
  golden(name, out.data);

  buf_reset(&out);
  {
    struct sql_poison_row pr[2];
    memset(pr, 0, sizeof pr);
    pr[0].key = "msg-1";
    pr[0].message_id = "msg-1";
    pr[0].reason = "not JSON: line 1, column 1";
    pr[0].body = "\x00\x01"
                 "ab";
    pr[0].body_len = 4;
    pr[0].content_type = "application/msbin1";
    pr[0].delivery_count = 3;
    pr[0].enqueued_ms = 1731053106000;
    pr[0].function = "cdc";
    pr[0].invocation_id = "inv-1";
    pr[1].key = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    pr[1].reason = "not a RemoteExecutionContext";
    pr[1].body = "{}";
    pr[1].body_len = 2;
    CHECK(sql_ddl_create_poison(d, &out, &e) == APP_OK);
    CHECK(sql_dialect_poison_insert(d, pr, 2, 0, &st, &count, &e) == APP_OK);
    CHECK_INTEQ(count, 2);
    render(&st, &out);
    snprintf(name, sizeof name, "%s_poison.sql", prefix);
    golden(name, out.data);
  }

  sql_stmt_cleanup(&st);
  buf_cleanup(&out);
  arena_cleanup(&a);
}

static void limits(void)
{
  struct arena a;
  struct sql_plan plan;
  struct sql_stmt st;
  struct app_err e;
  const struct doc **dp;
  struct tdoc **t;
  size_t i, n = 2500, count, total = 0, stmts = 0;

  TEST_CASE("chunks respect the T-SQL parameter limit and 1000 rows");
  arena_init(&a, 0);
  sql_stmt_init(&st);
  t = xcalloc(n, sizeof *t);
  dp = xcalloc(n, sizeof *dp);
  for (i = 0; i < n; i++) {
    t[i] = td_new(CDC_OP_UPDATE, "account", "accountid", NULL, 1000, (uint32_t)i);
    snprintf(t[i]->strs[TD_MAX_PROPS - 1][0], 40, "00000000-0000-0000-0000-%012zu", i);
    t[i]->d.id = t[i]->strs[TD_MAX_PROPS - 1][0];
    td_str(t[i], "name", DOC_T_TEXT, "x");
    dp[i] = &t[i]->d;
  }
  CHECK(sql_plan_build(&a, dp, n, 128, &plan, &e) == APP_OK);
  CHECK_INTEQ(plan.groups[0].nrows, n);
  while (total < n) {
    CHECK(sql_dialect_upsert(SQL_DIALECT_TSQL, &plan.groups[0], total, &st, &count, &e) == APP_OK);
    CHECK(st.nparams <= 2000);
    CHECK(count >= 1 && count <= 1000);
    total += count;
    stmts++;
  }
  CHECK_INTEQ(total, n);
  CHECK_INTEQ(stmts, 5); /* 4 params per row: 500 rows per statement */
  total = 0;
  stmts = 0;
  while (total < n) {
    CHECK(sql_dialect_upsert(SQL_DIALECT_POSTGRES, &plan.groups[0], total, &st, &count, &e) ==
          APP_OK);
    total += count;
    stmts++;
  }
  CHECK_INTEQ(stmts, 3); /* 1000 rows per statement */

  TEST_CASE("a row wider than the parameter limit is refused with a clear message");
  {
    struct sql_group g = plan.groups[0];
    struct sql_column *cols = xcalloc(1100, sizeof *cols);
    struct sql_cell *cells = xcalloc(1100, sizeof *cells);
    char(*names)[16] = xcalloc(1100, sizeof *names);
    for (i = 0; i < 1100; i++) {
      snprintf(names[i], sizeof names[i], "c%zu", i);
      cols[i].name = names[i];
      cols[i].type = DOC_T_TEXT;
      cells[i].text = "v";
      cells[i].len = 1;
      cells[i].version = "000000000000001000000000000000000000000000000";
    }
    g.cols = cols;
    g.ncols = 1100;
    g.rows[0].cells = cells;
    g.nrows = 1;
    CHECK_INTEQ(sql_dialect_upsert(SQL_DIALECT_TSQL, &g, 0, &st, &count, &e), APP_ERR_LIMIT);
    CHECK_CONTAINS(e.msg, "map fewer columns");
    free(cols);
    free(cells);
    free(names);
  }
  for (i = 0; i < n; i++)
    free(t[i]);
  free(t);
  free(dp);
  sql_stmt_cleanup(&st);
  arena_cleanup(&a);
}

static void names_and_types(void)
{
  struct buf b;
  struct app_err e;
  enum sql_dialect d;
  TEST_CASE("identifier quoting");
  buf_init(&b, 0);
  CHECK(sql_dialect_ident(SQL_DIALECT_TSQL, "a]b", &b) == APP_OK);
  CHECK_STREQ(b.data, "[a]]b]");
  buf_reset(&b);
  CHECK(sql_dialect_ident(SQL_DIALECT_POSTGRES, "a\"b", &b) == APP_OK);
  CHECK_STREQ(b.data, "\"a\"\"b\"");
  buf_reset(&b);
  CHECK(sql_dialect_table(SQL_DIALECT_TSQL, "sales.account", "__tombstone", &b) == APP_OK);
  CHECK_STREQ(b.data, "[sales].[account__tombstone]");
  buf_reset(&b);
  CHECK(sql_dialect_table(SQL_DIALECT_POSTGRES, "Account", NULL, &b) == APP_OK);
  CHECK_STREQ(b.data, "\"Account\"");
  buf_cleanup(&b);

  TEST_CASE("column types");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_TSQL, DOC_T_GUID), "uniqueidentifier");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_POSTGRES, DOC_T_GUID), "uuid");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_TSQL, DOC_T_DECIMAL), "decimal(38,10)");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_POSTGRES, DOC_T_DECIMAL), "numeric");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_TSQL, DOC_T_DATETIME), "datetime2(7)");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_POSTGRES, DOC_T_DATETIME), "timestamptz");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_TSQL, DOC_T_TEXT), "nvarchar(max)");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_POSTGRES, DOC_T_TEXT), "text");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_TSQL, DOC_T_BOOL), "bit");
  CHECK_STREQ(sql_dialect_type(SQL_DIALECT_POSTGRES, DOC_T_JSON), "jsonb");
  CHECK_INTEQ(sql_dialect_type_from_db("uniqueidentifier"), DOC_T_GUID);
  CHECK_INTEQ(sql_dialect_type_from_db("timestamp with time zone"), DOC_T_DATETIME);
  CHECK_INTEQ(sql_dialect_type_from_db("numeric"), DOC_T_DECIMAL);
  CHECK_INTEQ(sql_dialect_type_from_db("character varying"), DOC_T_TEXT);

  TEST_CASE("dialect names");
  CHECK(sql_dialect_parse("PostgreSQL", &d, &e) == APP_OK && d == SQL_DIALECT_POSTGRES);
  CHECK(sql_dialect_parse("tsql", &d, &e) == APP_OK && d == SQL_DIALECT_TSQL);
  CHECK(sql_dialect_parse("auto", &d, &e) == APP_OK && d == SQL_DIALECT_NONE);
  CHECK(sql_dialect_parse("oracle", &d, &e) == APP_ERR_CONFIG);
  CHECK_CONTAINS(e.msg, "oracle");

  TEST_CASE("DDL refuses names the database would cut");
  {
    char longname[100];
    memset(longname, 'x', 70);
    longname[70] = '\0';
    buf_init(&b, 0);
    CHECK_INTEQ(
        sql_ddl_create(SQL_DIALECT_POSTGRES, longname, "id", NULL, 0, SQL_DELETE_SOFT, &b, &e),
        APP_ERR_INPUT);
    CHECK_CONTAINS(e.msg, "too long");
    CHECK(sql_ddl_create(SQL_DIALECT_TSQL, longname, "id", NULL, 0, SQL_DELETE_SOFT, &b, &e) ==
          APP_OK);
    buf_cleanup(&b);
  }
}

int main(void)
{
  size_t i;
  make_docs();
  TEST_CASE("T-SQL statements (golden)");
  statements(SQL_DIALECT_TSQL, "tsql");
  TEST_CASE("PostgreSQL statements (golden)");
  statements(SQL_DIALECT_POSTGRES, "pg");
  limits();
  names_and_types();
  for (i = 0; i < ndocs; i++)
    free(docs[i]);
  return check_report("test_sql_dialect");
}

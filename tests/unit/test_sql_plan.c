/* test_sql_plan.c - grouping and per-key collapse of a batch, and the
 * classification of ODBC diagnostics (both pure). */
#include "common/arena.h"
#include "sql/sql_odbc.h"
#include "sql/sql_plan.h"
#include "check.h"
#include "sql_testdocs.h"

#define K1 "aaaaaaaa-0000-0000-0000-000000000001"
#define K2 "aaaaaaaa-0000-0000-0000-000000000002"
#define L1 "bbbbbbbb-0000-0000-0000-000000000001"

static struct arena a;

static enum app_result plan(struct tdoc **t, size_t n, struct sql_plan *p, struct app_err *e)
{
  const struct doc *d[32];
  size_t i;
  for (i = 0; i < n; i++)
    d[i] = &t[i]->d;
  arena_reset(&a);
  return sql_plan_build(&a, d, n, 63, p, e);
}

static const struct sql_cell *cell(const struct sql_group *g, size_t row, const char *col)
{
  size_t j;
  for (j = 0; j < g->ncols; j++)
    if (!strcmp(g->cols[j].name, col))
      return &g->rows[row].cells[j];
  return NULL;
}

static const char *text(const struct sql_cell *c)
{
  static char buf[256];
  if (!c)
    return "<no column>";
  if (!c->version)
    return "<not written>";
  if (!c->text)
    return "<null>";
  snprintf(buf, sizeof buf, "%.*s", (int)c->len, c->text);
  return buf;
}

static void free_all(struct tdoc **t, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    free(t[i]);
}

static void collapse(void)
{
  struct tdoc *t[6];
  struct sql_plan p;
  struct app_err e;
  const struct sql_group *g;

  TEST_CASE("collapse per key: newest value per column, whatever the order");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 3000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "newest name");
  t[1] = td_new(CDC_OP_CREATE, "account", "accountid", K1, 1000, 1);
  td_str(t[1], "name", DOC_T_TEXT, "created");
  td_str(t[1], "phone", DOC_T_TEXT, "created phone");
  t[2] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 2000, 1);
  td_str(t[2], "phone", DOC_T_TEXT, "newer phone");
  td_str(t[2], "name", DOC_T_TEXT, "older name");
  t[3] = td_new(CDC_OP_UPDATE, "account", "accountid", K2, 500, 1);
  td_num(t[3], "revenue", DOC_T_DECIMAL, "1.50");
  td_str(t[3], "accountid", DOC_T_GUID, K2); /* the key as a property is not a column */
  t[4] = td_new(CDC_OP_OTHER, "account", "accountid", K2, 600, 1);
  CHECK(plan(t, 5, &p, &e) == APP_OK);
  CHECK_INTEQ(p.ngroups, 1);
  CHECK_INTEQ(p.ndocs, 4);
  CHECK_INTEQ(p.nskipped, 1);
  g = &p.groups[0];
  CHECK_STREQ(g->table, "account");
  CHECK_INTEQ(g->nrows, 2);
  CHECK_INTEQ(g->ncols, 3);
  CHECK_STREQ(g->rows[0].id, K1); /* sorted by id */
  CHECK_INTEQ(g->rows[0].ndocs, 3);
  CHECK_STREQ(text(cell(g, 0, "name")), "newest name");
  CHECK_STREQ(cell(g, 0, "name")->version, t[0]->d.version_text);
  CHECK_STREQ(text(cell(g, 0, "phone")), "newer phone");
  CHECK_STREQ(text(cell(g, 0, "revenue")), "<not written>");
  CHECK_STREQ(g->rows[0].version, t[0]->d.version_text);
  CHECK_STREQ(g->rows[0].full_version, t[1]->d.version_text);
  CHECK_STREQ(g->rows[0].deleted_version, "");
  CHECK(g->has_full_rows);
  CHECK(!g->has_deletes);
  CHECK_STREQ(text(cell(g, 1, "revenue")), "1.50");
  CHECK_STREQ(text(cell(g, 1, "name")), "<not written>");
  CHECK(cell(g, 0, "accountid") == NULL);
  free_all(t, 5);

  TEST_CASE("a delete drops older writes of the batch, keeps newer ones");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
  td_str(t[0], "name", DOC_T_TEXT, "before");
  t[1] = td_new(CDC_OP_DELETE, "account", "accountid", K1, 2000, 1);
  t[2] = td_new(CDC_OP_CREATE, "account", "accountid", K1, 3000, 1);
  td_str(t[2], "phone", DOC_T_TEXT, "after");
  CHECK(plan(t, 3, &p, &e) == APP_OK);
  g = &p.groups[0];
  CHECK_INTEQ(g->nrows, 1);
  CHECK_STREQ(text(cell(g, 0, "name")), "<not written>");
  CHECK_STREQ(text(cell(g, 0, "phone")), "after");
  CHECK_STREQ(g->rows[0].deleted_version, t[1]->d.version_text);
  CHECK(g->has_deletes);
  free_all(t, 3);

  TEST_CASE("truncated changes touch no column; null values are written as NULL");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 5000, 1);
  t[0]->d.needs_reread = true;
  td_str(t[0], "name", DOC_T_TEXT, "ignored");
  t[1] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
  td_null(t[1], "fax", DOC_T_TEXT);
  CHECK(plan(t, 2, &p, &e) == APP_OK);
  g = &p.groups[0];
  CHECK_STREQ(g->rows[0].reread_version, t[0]->d.version_text);
  CHECK_STREQ(text(cell(g, 0, "name")), "<no column>");
  CHECK_STREQ(text(cell(g, 0, "fax")), "<null>");
  free_all(t, 2);

  TEST_CASE("a column's type comes from its first non-null value; order is first seen");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
  td_null(t[0], "score", DOC_T_TEXT);
  td_str(t[0], "name", DOC_T_TEXT, "n");
  t[1] = td_new(CDC_OP_UPDATE, "account", "accountid", K2, 1000, 1);
  td_num(t[1], "score", DOC_T_INT, "5");
  td_str(t[1], "name", DOC_T_GUID, K1); /* conflicting later type: the first one stays */
  CHECK(plan(t, 2, &p, &e) == APP_OK);
  g = &p.groups[0];
  CHECK_STREQ(g->cols[0].name, "score");
  CHECK_INTEQ(g->cols[0].type, DOC_T_INT);
  CHECK_STREQ(g->cols[1].name, "name");
  CHECK_INTEQ(g->cols[1].type, DOC_T_TEXT);
  free_all(t, 2);

  TEST_CASE("full rows: known columns not listed become NULL as of the full row");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
  td_str(t[0], "city", DOC_T_TEXT, "old");
  t[1] = td_new(CDC_OP_CREATE, "account", "accountid", K1, 2000, 1);
  td_str(t[1], "name", DOC_T_TEXT, "n");
  t[2] = td_new(CDC_OP_UPDATE, "account", "accountid", K2, 3000, 1);
  td_str(t[2], "name", DOC_T_TEXT, "partial");
  CHECK(plan(t, 3, &p, &e) == APP_OK);
  {
    struct sql_column known[] = {{"name", DOC_T_TEXT},
                                 {"city", DOC_T_TEXT},
                                 {"phone", DOC_T_TEXT},
                                 {"revenue", DOC_T_DECIMAL}};
    struct sql_group *mg = &p.groups[0];
    CHECK(sql_plan_fill_full_rows(&a, mg, known, 4, &e) == APP_OK);
    CHECK(sql_plan_fill_full_rows(&a, mg, known, 4, &e) == APP_OK); /* idempotent */
    CHECK_INTEQ(mg->ncols, 4);
    CHECK_STREQ(text(cell(mg, 0, "city")), "<null>");
    CHECK_STREQ(cell(mg, 0, "city")->version, t[1]->d.version_text);
    CHECK_STREQ(text(cell(mg, 0, "phone")), "<null>");
    CHECK_STREQ(text(cell(mg, 0, "revenue")), "<null>");
    CHECK_STREQ(text(cell(mg, 0, "name")), "n");
    CHECK_STREQ(text(cell(mg, 1, "phone")), "<not written>"); /* not a full row */
  }
  free_all(t, 3);

  /* property test seed 1796602503, record ...0052: a Restore (full row,
   * post image versionnumber 1001) and an Update stamped 4 ms before it
   * with versionnumber 1002 (clock skew) in one batch. The Update is newer
   * by the row-version-first rule, so filling the Restore's full row must
   * not reset its column (it did: plain strcmp of the version texts). */
  TEST_CASE("full rows: a column newer by row version than the full row keeps its value");
  t[0] = td_new(CDC_OP_RESTORE, "account", "accountid", K1, 1731000915246LL, 1);
  t[0]->d.full_row = true;
  t[0]->d.version.row_version = 1001;
  cdc_version_text(&t[0]->d.version, t[0]->d.version_text);
  td_str(t[0], "name", DOC_T_TEXT, "n82");
  td_str(t[0], "telephone1", DOC_T_TEXT, "p82");
  t[1] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1731000915242LL, 2);
  t[1]->d.version.row_version = 1002;
  cdc_version_text(&t[1]->d.version, t[1]->d.version_text);
  td_str(t[1], "telephone1", DOC_T_TEXT, "u2_915863_0");
  CHECK(plan(t, 2, &p, &e) == APP_OK);
  {
    struct sql_column known[] = {
        {"name", DOC_T_TEXT}, {"telephone1", DOC_T_TEXT}, {"fax", DOC_T_TEXT}};
    struct sql_group *mg = &p.groups[0];
    CHECK_STREQ(text(cell(mg, 0, "telephone1")), "u2_915863_0"); /* the collapse */
    CHECK(sql_plan_fill_full_rows(&a, mg, known, 3, &e) == APP_OK);
    CHECK_STREQ(mg->rows[0].full_version, t[0]->d.version_text);
    CHECK_STREQ(text(cell(mg, 0, "telephone1")), "u2_915863_0");
    CHECK_STREQ(cell(mg, 0, "telephone1")->version, t[1]->d.version_text);
    CHECK_STREQ(text(cell(mg, 0, "name")), "n82");
    CHECK_STREQ(text(cell(mg, 0, "fax")), "<null>");
    CHECK_STREQ(cell(mg, 0, "fax")->version, t[0]->d.version_text);
  }
  free_all(t, 2);
}

static void groups_and_links(void)
{
  struct tdoc *t[5];
  struct sql_plan p;
  struct app_err e;
  const struct sql_group *g;

  TEST_CASE("groups per SQL table, link tables per relationship, canonical pair order");
  t[0] = td_new(CDC_OP_CREATE, "contact", "contactid", K1, 1000, 1);
  t[0]->d.sql_table = "crm.contact";
  td_str(t[0], "fullname", DOC_T_TEXT, "x");
  t[1] = td_new(CDC_OP_ASSOCIATE, "lead", "leadid", L1, 1000, 1);
  t[1]->d.sql_table = "crm.lead";
  td_relate(t[1], "accountleads_association", "account", K2);
  t[2] = td_new(CDC_OP_DISASSOCIATE, "account", "accountid", K2, 2000, 1);
  td_relate(t[2], "accountleads_association", "lead", L1);
  t[3] = td_new(CDC_OP_ASSOCIATE, "account", "accountid", K2, 1500, 1);
  td_relate(t[3], "accountleads_association", "lead", L1);
  CHECK(plan(t, 4, &p, &e) == APP_OK);
  CHECK_INTEQ(p.ngroups, 3);
  /* sorted by table name: accountleads_association, crm.accountleads_association, crm.contact */
  CHECK_STREQ(p.groups[0].table, "accountleads_association");
  CHECK_STREQ(p.groups[1].table, "crm.accountleads_association");
  CHECK_STREQ(p.groups[2].table, "crm.contact");
  g = &p.groups[0];
  CHECK_INTEQ(g->kind, SQL_GROUP_LINK);
  CHECK_INTEQ(g->nlinks, 1);
  CHECK_STREQ(g->links[0].table1, "account");
  CHECK_STREQ(g->links[0].id1, K2);
  CHECK_STREQ(g->links[0].table2, "lead");
  CHECK(!g->links[0].associated); /* the newest (2000) is the disassociate */
  CHECK_INTEQ(g->links[0].ndocs, 2);
  CHECK_STREQ(p.groups[1].links[0].table1, "account"); /* same order from the lead side */
  free_all(t, 4);
}

static void cdc_publisher_prefix(void)
{
  struct tdoc *t[1];
  struct sql_plan p;
  struct app_err e;
  TEST_CASE("a lookup of a solution with publisher prefix cdc is an ordinary column");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
  td_prop(t[0], "_cdc_regionid_value", DOC_STRING, DOC_T_GUID, "\"" K2 "\"", K2);
  CHECK_MSG(plan(t, 1, &p, &e) == APP_OK, "%s", e.msg);
  free(t[0]);
}

static void bad_input(void)
{
  static const struct {
    const char *name, *prop, *json, *text, *msg;
    enum doc_kind kind;
    enum doc_type type;
  } cases[] = {
      {"reserved column", "_cdc_deleted", "true", "true", "the sink's own _cdc_ columns", DOC_BOOL,
       DOC_T_BOOL},
      {"reserved suffix", "name__v", "\"x\"", "x", "reserved suffix", DOC_STRING, DOC_T_TEXT},
      {"too long", "a_very_long_property_name_that_does_not_fit_postgres_63_bytes", "1", "1",
       "too long", DOC_NUMBER, DOC_T_INT},
      {"empty name", "", "1", "1", "is empty", DOC_NUMBER, DOC_T_INT},
      {"not a whole number", "n", "\"abc\"", "abc", "not a whole number", DOC_STRING, DOC_T_INT},
      {"not a number", "n", "\"1,5\"", "1,5", "not a number", DOC_STRING, DOC_T_DECIMAL},
      {"not a GUID", "g", "\"xyz\"", "xyz", "not a GUID", DOC_STRING, DOC_T_GUID},
      {"not a bool", "b", "\"yes\"", "yes", "not true or false", DOC_STRING, DOC_T_BOOL},
      {"not a datetime", "d", "\"yesterday\"", "yesterday", "ISO 8601", DOC_STRING, DOC_T_DATETIME},
      {"not a date", "d", "\"2024-01-01T00:00Z\"", "2024-01-01T00:00Z", "YYYY-MM-DD", DOC_STRING,
       DOC_T_DATE},
      {"no text", "n", "\"x\"", NULL, "has no text", DOC_STRING, DOC_T_TEXT},
  };
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct tdoc *t[1];
    struct sql_plan p;
    struct app_err e;
    TEST_CASE(cases[i].name);
    t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
    td_prop(t[0], cases[i].prop, cases[i].kind, cases[i].type, cases[i].json, cases[i].text);
    CHECK_INTEQ(plan(t, 1, &p, &e), APP_ERR_INPUT);
    CHECK_CONTAINS(e.msg, cases[i].msg);
    CHECK_CONTAINS(e.msg, "doc 0 (account " K1 ")");
    free(t[0]);
  }
  {
    struct tdoc *t[2];
    struct sql_plan p;
    struct app_err e;
    TEST_CASE("no GUID id");
    t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", "42", 1000, 1);
    CHECK_INTEQ(plan(t, 1, &p, &e), APP_ERR_INPUT);
    CHECK_CONTAINS(e.msg, "no table or no GUID id");
    free(t[0]);
    TEST_CASE("SQL table with three parts");
    t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
    t[0]->d.sql_table = "db.dbo.account";
    CHECK_INTEQ(plan(t, 1, &p, &e), APP_ERR_INPUT);
    CHECK_CONTAINS(e.msg, "not [schema.]name");
    t[0]->d.sql_table = ".account";
    CHECK_INTEQ(plan(t, 1, &p, &e), APP_ERR_INPUT);
    free(t[0]);
    TEST_CASE("associate without relationship");
    t[0] = td_new(CDC_OP_ASSOCIATE, "account", "accountid", K1, 1000, 1);
    CHECK_INTEQ(plan(t, 1, &p, &e), APP_ERR_INPUT);
    CHECK_CONTAINS(e.msg, "without a relationship");
    free(t[0]);
    TEST_CASE("two key names for one table");
    t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
    t[1] = td_new(CDC_OP_UPDATE, "account", "id", K2, 1000, 1);
    CHECK_INTEQ(plan(t, 2, &p, &e), APP_ERR_INPUT);
    CHECK_CONTAINS(e.msg, "key column 'id' differs");
    free_all(t, 2);
    TEST_CASE("the arena ceiling is a limit, not a crash");
    {
      struct arena small;
      const struct doc *d[1];
      t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", K1, 1000, 1);
      td_str(t[0], "name", DOC_T_TEXT, "x");
      d[0] = &t[0]->d;
      arena_init(&small, 64);
      CHECK_INTEQ(sql_plan_build(&small, d, 1, 63, &p, &e), APP_ERR_LIMIT);
      arena_cleanup(&small);
      free(t[0]);
    }
  }
}

static void diagnostics(void)
{
  TEST_CASE("transient SQLSTATEs and SQL Server error numbers");
  CHECK(sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "40P01", 0));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "40001", 0));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "08S01", 0));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "08001", 101));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "57P01", 0));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "HYT00", 0));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_TSQL, "HYT01", 0));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_TSQL, "40001", 1205));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_TSQL, "42000", 40613));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_TSQL, "HY000", 40197));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_TSQL, "42000", 40501));
  CHECK(sql_odbc_is_transient(SQL_DIALECT_TSQL, "HY000", 49918));
  CHECK(!sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "22008", 1));
  CHECK(!sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "42P01", 0));
  CHECK(!sql_odbc_is_transient(SQL_DIALECT_POSTGRES, "HY000", 40613)); /* natives are T-SQL's */
  CHECK(!sql_odbc_is_transient(SQL_DIALECT_TSQL, "23000", 2627));
  CHECK(!sql_odbc_is_transient(SQL_DIALECT_TSQL, "28000", 18456)); /* login failed */
  TEST_CASE("which failures drop the connection");
  CHECK(sql_odbc_is_broken("08S01"));
  CHECK(sql_odbc_is_broken("HYT00"));
  CHECK(sql_odbc_is_broken("57P01"));
  CHECK(!sql_odbc_is_broken("40P01"));
  CHECK(!sql_odbc_is_broken("22008"));
  CHECK(!sql_odbc_is_broken(""));
}

int main(void)
{
  arena_init(&a, 0);
  collapse();
  groups_and_links();
  bad_input();
  cdc_publisher_prefix();
  diagnostics();
  arena_cleanup(&a);
  return check_report("test_sql_plan");
}

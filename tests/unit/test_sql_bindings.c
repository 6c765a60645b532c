/* test_sql_bindings.c - Azure SQL output-binding rows, checked exactly. */
#include "sql/sql_bindings.h"
#include "check.h"
#include "sql_testdocs.h"

#define A1         "11111111-0000-0000-0000-000000000001"
#define A2         "11111111-0000-0000-0000-000000000002"
#define A3         "11111111-0000-0000-0000-000000000003"
#define V(ts, tie) "00000000" #ts "00000000000000000000000000000" #tie

static const char *rows(struct tdoc **t, size_t n, enum app_result *out_r, struct app_err *e)
{
  static struct buf b;
  const struct doc *d[16];
  size_t i;
  for (i = 0; i < n; i++)
    d[i] = &t[i]->d;
  buf_cleanup(&b);
  buf_init(&b, 0);
  *out_r = sql_bindings_rows(d, n, &b, e);
  return b.data ? b.data : "";
}

static void free_all(struct tdoc **t, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    free(t[i]);
}

int main(void)
{
  struct tdoc *t[8];
  struct app_err e;
  enum app_result r;
  const char *out;

  TEST_CASE("every kind and type; all rows carry all columns; collapse per key");
  /* create with every kind */
  t[0] = td_new(CDC_OP_CREATE, "account", "accountid", A1, 1000001, 1);
  td_str(t[0], "name", DOC_T_TEXT, "Contoso \\\"quoted\\\"");
  t[0]->props[0].text = "Contoso \"quoted\"";
  t[0]->props[0].text_len = strlen(t[0]->props[0].text);
  td_num(t[0], "revenue", DOC_T_DECIMAL, "12345678901234567890.1234567890");
  td_num(t[0], "numberofemployees", DOC_T_INT, "9007199254740993");
  td_bool(t[0], "donotemail", 1);
  td_str(t[0], "_ownerid_value", DOC_T_GUID, "aabbccdd-0000-1111-2222-333344445555");
  td_str(t[0], "createdon", DOC_T_DATETIME, "2024-11-08T08:05:06Z");
  td_str(t[0], "categories", DOC_T_MULTI, "100000000,100000002");
  td_prop(t[0], "address", DOC_OBJECT, DOC_T_JSON, "{\"city\":\"Oslo\",\"n\":1.50}", NULL);
  td_null(t[0], "fax", DOC_T_TEXT);
  /* a later partial update of the same record: collapsed into one row */
  t[1] = td_new(CDC_OP_UPDATE, "account", "accountid", A1, 2000002, 2);
  td_str(t[1], "name", DOC_T_TEXT, "Contoso 2");
  /* an older update of the same record: loses on name, nothing else */
  t[2] = td_new(CDC_OP_UPDATE, "account", "accountid", A1, 1500001, 3);
  td_str(t[2], "name", DOC_T_TEXT, "stale");
  /* a partial update of another record: explicit nulls elsewhere */
  t[3] = td_new(CDC_OP_SETSTATE, "account", "accountid", A2, 3000003, 4);
  td_num(t[3], "statecode", DOC_T_INT, "1");
  /* a delete of a third record */
  t[4] = td_new(CDC_OP_DELETE, "account", "accountid", A3, 4000004, 5);
  /* associate and truncated docs have no row */
  t[5] = td_new(CDC_OP_ASSOCIATE, "account", "accountid", A1, 5000005, 6);
  td_relate(t[5], "accountleads_association", "lead", A2);
  t[6] = td_new(CDC_OP_UPDATE, "account", "accountid", A2, 1000001, 7);
  t[6]->d.needs_reread = true;
  out = rows(t, 7, &r, &e);
  CHECK_INTEQ(r, APP_OK);
  CHECK_STREQ(
      out, "["
           "{\"accountid\":\"" A1 "\",\"name\":\"Contoso 2\","
           "\"revenue\":\"12345678901234567890.1234567890\","
           "\"numberofemployees\":9007199254740993,\"donotemail\":true,"
           "\"_ownerid_value\":\"aabbccdd-0000-1111-2222-333344445555\","
           "\"createdon\":\"2024-11-08T08:05:06Z\",\"categories\":\"100000000,100000002\","
           "\"address\":\"{\\\"city\\\":\\\"Oslo\\\",\\\"n\\\":1.50}\",\"fax\":null,"
           "\"statecode\":null,"
           "\"_cdc_version\":\"" V(
               2000002,
               2) "\",\"_cdc_deleted\":false},"
                  "{\"accountid\":\"" A2 "\",\"name\":null,\"revenue\":null,"
                  "\"numberofemployees\":null,\"donotemail\":null,\"_ownerid_value\":null,"
                  "\"createdon\":null,\"categories\":null,\"address\":null,\"fax\":null,"
                  "\"statecode\":1,"
                  "\"_cdc_version\":\"" V(
                      3000003,
                      4) "\",\"_cdc_deleted\":false},"
                         "{\"accountid\":\"" A3 "\",\"name\":null,\"revenue\":null,"
                         "\"numberofemployees\":null,\"donotemail\":null,\"_ownerid_value\":null,"
                         "\"createdon\":null,\"categories\":null,\"address\":null,\"fax\":null,"
                         "\"statecode\":null,"
                         "\"_cdc_version\":\"" V(4000004, 5) "\",\"_cdc_deleted\":true}"
                                                             "]");
  free_all(t, 7);

  TEST_CASE("delete then older update in one invocation: still deleted, no stale values");
  t[0] = td_new(CDC_OP_DELETE, "contact", "contactid", A1, 2000002, 1);
  t[1] = td_new(CDC_OP_UPDATE, "contact", "contactid", A1, 1000001, 1);
  td_str(t[1], "fullname", DOC_T_TEXT, "late");
  out = rows(t, 2, &r, &e);
  CHECK_INTEQ(r, APP_OK);
  CHECK_STREQ(out, "[{\"contactid\":\"" A1 "\",\"fullname\":null,\"_cdc_version\":\"" V(
                       2000002, 1) "\",\"_cdc_deleted\":true}]");
  free_all(t, 2);

  TEST_CASE("re-create after delete in one invocation: alive");
  t[0] = td_new(CDC_OP_DELETE, "contact", "contactid", A1, 2000002, 1);
  t[1] = td_new(CDC_OP_CREATE, "contact", "contactid", A1, 3000003, 1);
  td_str(t[1], "fullname", DOC_T_TEXT, "again");
  out = rows(t, 2, &r, &e);
  CHECK_STREQ(out, "[{\"contactid\":\"" A1 "\",\"fullname\":\"again\",\"_cdc_version\":\"" V(
                       3000003, 1) "\",\"_cdc_deleted\":false}]");
  free_all(t, 2);

  TEST_CASE("nothing to write: an empty array");
  t[0] = td_new(CDC_OP_ASSOCIATE, "account", "accountid", A1, 1000001, 1);
  td_relate(t[0], "rel", "lead", A2);
  out = rows(t, 1, &r, &e);
  CHECK_INTEQ(r, APP_OK);
  CHECK_STREQ(out, "[]");
  out = rows(t, 0, &r, &e);
  CHECK_STREQ(out, "[]");
  free_all(t, 1);

  TEST_CASE("two tables for one binding is an error; the _for variant picks one");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", A1, 1000001, 1);
  td_str(t[0], "name", DOC_T_TEXT, "a");
  t[1] = td_new(CDC_OP_UPDATE, "contact", "contactid", A2, 1000001, 1);
  td_str(t[1], "fullname", DOC_T_TEXT, "c");
  t[1]->d.sql_table = "dbo.contact";
  out = rows(t, 2, &r, &e);
  CHECK_INTEQ(r, APP_ERR_INPUT);
  CHECK_CONTAINS(e.msg, "one SQL output binding writes one table");
  CHECK_STREQ(out, "");
  {
    struct buf b;
    const struct doc *d[2] = {&t[0]->d, &t[1]->d};
    buf_init(&b, 0);
    CHECK(sql_bindings_rows_for(d, 2, "dbo.contact", &b, &e) == APP_OK);
    CHECK_STREQ(b.data, "[{\"contactid\":\"" A2 "\",\"fullname\":\"c\",\"_cdc_version\":\"" V(
                            1000001, 1) "\",\"_cdc_deleted\":false}]");
    buf_cleanup(&b);
  }
  free_all(t, 2);

  TEST_CASE("bad input and the output ceiling");
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", A1, 1000001, 1);
  td_str(t[0], "_cdc_deleted", DOC_T_TEXT, "x");
  out = rows(t, 1, &r, &e);
  CHECK_INTEQ(r, APP_ERR_INPUT);
  CHECK_CONTAINS(e.msg, "the sink's own _cdc_ columns");
  free_all(t, 1);
  t[0] = td_new(CDC_OP_UPDATE, "account", "accountid", A1, 1000001, 1);
  td_str(t[0], "name", DOC_T_TEXT, "a long enough value to pass the ceiling");
  {
    struct buf b;
    const struct doc *d[1] = {&t[0]->d};
    buf_init(&b, 40);
    CHECK_INTEQ(sql_bindings_rows(d, 1, &b, &e), APP_ERR_LIMIT);
    CHECK_INTEQ(b.len, 0);
    buf_cleanup(&b);
  }
  free_all(t, 1);
  {
    struct buf b;
    buf_init(&b, 0);
    (void)rows(t, 0, &r, &e);
    buf_cleanup(&b);
  }
  return check_report("test_sql_bindings");
}

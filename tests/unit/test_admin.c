/* test_admin.c - the admin API's request parser (admin_parse). */
#include "check.h"
#include "ops/admin.h"

static struct arena a;

static int parse(const char *method, const char *path, const char *query, struct admin_request *rq,
                 char *why)
{
  int status = 0;
  bool ok = admin_parse(&a, method, path, query, rq, &status, why, 160);
  CHECK(ok == (status == 200));
  return status;
}

static void test_paths(void)
{
  struct admin_request rq;
  char why[160];
  TEST_CASE("paths");
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records", NULL, &rq, why), 200);
  CHECK_INTEQ(rq.op, ADMIN_RECORDS);
  CHECK_STREQ(rq.f.state, "open");
  CHECK_INTEQ(rq.f.limit, 100);
  CHECK_STREQ(rq.f.from, "-");
  CHECK_STREQ(rq.f.to, "+");
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records/1795757079863-0", NULL, &rq, why), 200);
  CHECK_INTEQ(rq.op, ADMIN_RECORD);
  CHECK_STREQ(rq.id, "1795757079863-0");
  CHECK_INTEQ(parse("DELETE", "/api/cdc/admin/records/17-3", NULL, &rq, why), 200);
  CHECK(rq.del);
  CHECK_INTEQ(parse("POST", "/api/cdc/admin/records/17-3/replay", NULL, &rq, why), 200);
  CHECK_INTEQ(rq.op, ADMIN_REPLAY_ONE);
  CHECK_INTEQ(parse("post", "cdc/admin/replay", "kind=poison", &rq, why), 200); /* envelope route */
  CHECK_INTEQ(rq.op, ADMIN_REPLAY);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records/17-3/x", NULL, &rq, why), 404);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/nothing", NULL, &rq, why), 404);
  CHECK_INTEQ(parse("GET", "/api/data/v9.2/accounts", NULL, &rq, why), 404);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records/abc", NULL, &rq, why), 400);
  CHECK_CONTAINS(why, "stream entry id");
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records/17-", NULL, &rq, why), 400);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records/1-2-3", NULL, &rq, why), 400);
  CHECK_INTEQ(parse("POST", "/api/cdc/admin/records", NULL, &rq, why), 405);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/replay", NULL, &rq, why), 405);
  CHECK_INTEQ(parse("PUT", "/api/cdc/admin/records/17-3", NULL, &rq, why), 405);
}

static void test_filters(void)
{
  struct admin_request rq;
  char why[160];
  TEST_CASE("filters");
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records",
                    "kind=deadletter&table=account&reason=Max%20Delivery+x&from=1000&to="
                    "2026-12-06T22%3A00%3A00Z&limit=5&state=all",
                    &rq, why),
              200);
  CHECK_STREQ(rq.f.kind, "deadletter");
  CHECK_STREQ(rq.f.table, "account");
  CHECK_STREQ(rq.f.reason, "Max Delivery x");
  CHECK_STREQ(rq.f.from, "1000");
  CHECK_STREQ(rq.f.to, "1796594400000");
  CHECK_INTEQ(rq.f.limit, 5);
  CHECK_STREQ(rq.f.state, "all");
  CHECK(rq.f.any);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records", "kind=other", &rq, why), 400);
  CHECK_CONTAINS(why, "kind must be poison or deadletter");
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records", "limit=0", &rq, why), 400);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records", "limit=1001", &rq, why), 400);
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records", "from=yesterday", &rq, why), 400);
  CHECK_CONTAINS(why, "from: 'yesterday'");
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records", "state=gone", &rq, why), 400);
  /* deleting by filter needs one */
  CHECK_INTEQ(parse("DELETE", "/api/cdc/admin/records", "limit=5", &rq, why), 400);
  CHECK_INTEQ(parse("DELETE", "/api/cdc/admin/records", "all=true", &rq, why), 200);
  CHECK(rq.f.all && !rq.f.any);
  CHECK_INTEQ(parse("DELETE", "/api/cdc/admin/records", "table=lead", &rq, why), 200);
  /* a bad percent escape stays as it is */
  CHECK_INTEQ(parse("GET", "/api/cdc/admin/records", "reason=%zz%4", &rq, why), 200);
  CHECK_STREQ(rq.f.reason, "%zz%4");
}

int main(void)
{
  arena_init(&a, 1 << 20);
  test_paths();
  test_filters();
  arena_cleanup(&a);
  return check_report("test_admin");
}

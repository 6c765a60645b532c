/* test_dvapi.c - the Dataverse Web API as data (dataverse/dvapi.h):
 * DataverseUrl, URLs, Prefer, links, Retry-After, OData errors, pages with
 * $deletedEntity rows, and rows as canonical changes: the same document a
 * message produces (mapping), and the version order against messages
 * (docs/versioning.md "Rows read from the Web API"). */
#include "common/arena.h"
#include "dataverse/dvapi.h"
#include "map/mapping.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct arena arena;

static void test_base_url(void)
{
  char out[600];
  struct app_err e;
  TEST_CASE("DataverseUrl");
  CHECK(dvapi_base_url("https://contoso.crm4.dynamics.com/", out, sizeof out, &e) == APP_OK);
  CHECK_STREQ(out, "https://contoso.crm4.dynamics.com");
  CHECK(dvapi_base_url("http://127.0.0.1:8080", out, sizeof out, &e) == APP_OK);
  CHECK(dvapi_base_url("http://contoso.crm.dynamics.com", out, sizeof out, &e) == APP_ERR_CONFIG);
  CHECK(dvapi_base_url("https://contoso.crm.dynamics.com/api/data", out, sizeof out, &e) ==
        APP_ERR_CONFIG);
  CHECK(dvapi_base_url("https://user@evil", out, sizeof out, &e) == APP_ERR_CONFIG);
  CHECK(dvapi_base_url("", out, sizeof out, &e) == APP_ERR_CONFIG);
  CHECK(dvapi_base_url("https://", out, sizeof out, &e) == APP_ERR_CONFIG);
}

static void test_urls(void)
{
  struct buf b;
  struct app_err e;
  const char *ids[] = {"00000001-0000-4000-8000-000000000001",
                       "00000002-0000-4000-8000-000000000002"};
  const char *bad[] = {"1' or 1 eq 1 or '"};
  buf_init(&b, 0);
  TEST_CASE("snapshot URL, re-read URL, Prefer, scope");
  CHECK(dvapi_snapshot_url(&b, "https://o.crm.dynamics.com", "contacts",
                           "contactid,versionnumber,modifiedon") == APP_OK);
  CHECK_STREQ(b.data, "https://o.crm.dynamics.com/api/data/v9.2/"
                      "contacts?$select=contactid,versionnumber,modifiedon");
  buf_reset(&b);
  CHECK(dvapi_ids_url(&b, "https://o", "contacts", NULL, "contactid", ids, 2, &e) == APP_OK);
  CHECK_STREQ(b.data, "https://o/api/data/v9.2/contacts?$filter=contactid%20in%20("
                      "'00000001-0000-4000-8000-000000000001','00000002-0000-4000-8000-"
                      "000000000002')");
  buf_reset(&b);
  CHECK(dvapi_ids_url(&b, "https://o", "contacts", NULL, "contactid", bad, 1, &e) == APP_ERR_INPUT);
  CHECK(dvapi_ids_url(&b, "https://o", "contacts", NULL, "contactid", ids, 0, &e) == APP_ERR_INPUT);
  buf_reset(&b);
  CHECK(dvapi_prefer(&b, 500, true) == APP_OK);
  CHECK_STREQ(b.data, "odata.maxpagesize=500,odata.include-annotations=\"*\",odata.track-changes");
  buf_reset(&b);
  CHECK(dvapi_scope("https://o.crm.dynamics.com", &b) == APP_OK);
  CHECK_STREQ(b.data, "https://o.crm.dynamics.com/.default");
  buf_cleanup(&b);

  TEST_CASE("links must stay on DataverseUrl");
  CHECK(dvapi_link_ok("https://o", "https://o/api/data/v9.2/contacts?$skiptoken=x"));
  CHECK(!dvapi_link_ok("https://o", "https://o.evil/api/data/v9.2/contacts"));
  CHECK(!dvapi_link_ok("https://o", "https://o/other"));
  CHECK(!dvapi_link_ok("https://o", "https://o/api/data/v9.2/a b"));
  CHECK(!dvapi_link_ok("https://o", NULL));
}

static void test_retry_after(void)
{
  TEST_CASE("Retry-After");
  CHECK(dvapi_retry_after_ms("5", 0) == 5000);
  CHECK(dvapi_retry_after_ms(" 0", 0) == 0);
  CHECK(dvapi_retry_after_ms("0.2", 0) == 1000); /* rounded up: never early */
  CHECK(dvapi_retry_after_ms("99999999", 0) == 3600000);
  CHECK(dvapi_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111767) == 10000);
  CHECK(dvapi_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111787) == 0);
  CHECK(dvapi_retry_after_ms("soon", 0) == -1);
  CHECK(dvapi_retry_after_ms("5s", 0) == -1);
  CHECK(dvapi_retry_after_ms(NULL, 0) == -1);
}

static void test_error_text(void)
{
  char out[100];
  const char *body = "{\"error\":{\"code\":\"0x80072322\",\"message\":\"Number of requests\\n"
                     "exceeded\"}}";
  TEST_CASE("OData errors");
  CHECK(dvapi_error_text(body, strlen(body), out, sizeof out));
  CHECK_STREQ(out, "0x80072322: Number of requests exceeded");
  CHECK(!dvapi_error_text("<html>", 6, out, sizeof out));
  CHECK(!dvapi_error_text("{}", 2, out, sizeof out));
}

static char *dup(const char *s)
{
  char *d = arena_strndup(&arena, s, strlen(s));
  return d;
}

static void test_page(void)
{
  struct dvapi_page p;
  struct app_err e;
  char *body =
      dup("{\"@odata.context\":\"x\",\"value\":[{\"contactid\":\"00000001-0000-4000-8000-"
          "000000000001\"},{\"@odata.context\":\"https://o/api/data/v9.2/"
          "$metadata#contacts/$deletedEntity\",\"id\":\"0000000A-0000-4000-8000-000000000002\","
          "\"reason\":\"deleted\"}],\"@odata.deltaLink\":\"https://o/api/data/v9.2/"
          "contacts?$deltatoken=9\"}");
  TEST_CASE("pages");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_OK);
  CHECK(p.nrows == 2);
  CHECK(p.rows[0].kind == DVAPI_ROW && p.rows[1].kind == DVAPI_ROW_DELETED);
  CHECK_STREQ(p.rows[1].id, "0000000a-0000-4000-8000-000000000002");
  CHECK(p.next_link == NULL);
  CHECK_STREQ(p.delta_link, "https://o/api/data/v9.2/contacts?$deltatoken=9");
  body = dup("{\"value\":{}}");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_ERR_INPUT);
  body = dup("{\"value\":[1]}");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_ERR_INPUT);
  body = dup("{\"value\":[{\"@odata.context\":\"a/$deletedEntity\",\"id\":\"x\"}]}");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_ERR_INPUT);
  body = dup("{\"value\":[],\"@odata.nextLink\":5}");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_ERR_INPUT);
  body = dup("{\"value\":[");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_ERR_INPUT);
}

#define ROW                                                                                        \
  "{\"@odata.etag\":\"W/\\\"5001\\\"\",\"contactid\":\"00000001-0000-4000-8000-000000000001\","    \
  "\"firstname\":\"Ann\",\"revenue\":12.50,\"donotemail\":true,\"statecode\":0,"                   \
  "\"statecode@OData.Community.Display.V1.FormattedValue\":\"Active\","                            \
  "\"_parentcustomerid_value\":\"AB000000-0000-4000-8000-000000000001\","                          \
  "\"_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname\":\"account\","              \
  "\"_parentcustomerid_value@OData.Community.Display.V1.FormattedValue\":\"Contoso\","             \
  "\"birthdate\":\"1990-04-01\",\"modifiedon\":\"2024-11-08T08:05:06Z\",\"versionnumber\":5001}"

static const struct doc_prop *prop(const struct doc *d, const char *name)
{
  for (size_t i = 0; i < d->nprops; i++)
    if (!strcmp(d->props[i].name, name))
      return &d->props[i];
  return NULL;
}

static void test_row(void)
{
  struct dvapi_page p;
  struct app_err e;
  struct cdc_change ch;
  struct map_config *map;
  enum map_verdict v;
  struct doc d;
  const struct doc_prop *pp;
  char *body = dup("{\"value\":[" ROW "]}");
  char vt[CDC_VERSION_TEXT_LEN + 1];

  TEST_CASE("a row becomes a full-row change with its version");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_OK);
  /* asked for at 10:00:06.400 (the write it shows was before that): the
   * row is as of then, every later change is newer */
  CHECK(dvapi_row_change(&arena, &p.rows[0], "contact", "contactid", 1731053106400, &ch, &e) ==
        APP_OK);
  CHECK(ch.version.ts_ms == 1731053106400);
  {
    struct cdc_version del = {1731053106401, UINT64_MAX, 7u << 29};
    char dt[CDC_VERSION_TEXT_LEN + 1];
    cdc_version_text(&ch.version, vt);
    cdc_version_text(&del, dt);
    CHECK(cdc_version_text_order(dt, vt) > 0); /* a Delete after the read wins */
  }
  /* asked for seconds later: modifiedon + 999 ms */
  CHECK(dvapi_row_change(&arena, &p.rows[0], "contact", "contactid", 1731053110000, &ch, &e) ==
        APP_OK);
  CHECK(ch.op == CDC_OP_UPDATE && ch.full_row);
  CHECK_STREQ(ch.id, "00000001-0000-4000-8000-000000000001");
  CHECK(ch.version.ts_ms == 1731053106000 + 999);
  CHECK(ch.version.row_version == 5001);
  cdc_version_text(&ch.version, vt);
  /* a message of the same write (stamped within that second, versionnumber
   * 5001 in its post image) is not newer; the next write's is */
  {
    struct cdc_version m = {1731053106412, 5001, 3u << 29};
    struct cdc_version next = {1731053106700, 5002, 3u << 29};
    struct cdc_version old_nover = {1731053106500, 0, 3u << 29};
    char mt[CDC_VERSION_TEXT_LEN + 1];
    cdc_version_text(&m, mt);
    CHECK(cdc_version_text_order(mt, vt) < 0);
    cdc_version_text(&next, mt);
    CHECK(cdc_version_text_order(mt, vt) > 0);
    cdc_version_text(&old_nover, mt);
    CHECK(cdc_version_text_order(mt, vt) < 0); /* no row version: the +999 ms decide */
  }

  TEST_CASE("mapped like a message: lookups, annotations, exact numbers");
  CHECK(map_config_default(&map, &e) == APP_OK);
  CHECK(map_change(map, &arena, &ch, &v, &d, &e) == APP_OK && v == MAP_ACCEPT);
  CHECK(d.full_row);
  pp = prop(&d, "_parentcustomerid_value");
  CHECK(pp && pp->json_len == 38 && !memcmp(pp->json, "\"ab000000-", 10));
  CHECK(pp && pp->nann == 2);
  pp = prop(&d, "revenue");
  CHECK(pp && pp->json_len == 5 && !memcmp(pp->json, "12.50", 5));
  pp = prop(&d, "statecode");
  CHECK(pp && pp->nann == 1 && !strcmp(pp->ann[0].json, "\"Active\""));
  pp = prop(&d, "modifiedon");
  CHECK(pp && pp->json_len == 22 && !memcmp(pp->json, "\"2024-11-08T08:05:06Z\"", 22));
  pp = prop(&d, "birthdate");
  CHECK(pp && pp->json_len == 12);
  CHECK(prop(&d, "@odata.etag") == NULL);
  map_config_free(map);

  TEST_CASE("deleted rows, bad rows");
  {
    struct dvapi_row del = {DVAPI_ROW_DELETED, NULL, "00000001-0000-4000-8000-000000000001"};
    CHECK(dvapi_row_change(&arena, &del, "contact", "contactid", 1700000000000, &ch, &e) == APP_OK);
    CHECK(ch.op == CDC_OP_DELETE && ch.version.row_version == UINT64_MAX);
    CHECK(ch.version.ts_ms == 1700000000000);
  }
  body = dup("{\"value\":[{\"contactid\":\"nope\"},{\"contactid\":\"00000001-0000-4000-8000-"
             "000000000001\",\"versionnumber\":\"x\"},{\"contactid\":\"00000001-0000-4000-8000-"
             "000000000001\",\"modifiedon\":\"yesterday\"},{\"contactid\":\"00000001-0000-4000-"
             "8000-000000000001\",\"_a_value\":\"x\"}]}");
  CHECK(dvapi_page_parse(&arena, body, strlen(body), &p, &e) == APP_OK);
  for (size_t i = 0; i < p.nrows; i++)
    CHECK_MSG(dvapi_row_change(&arena, &p.rows[i], "contact", "contactid", 0, &ch, &e) ==
                  APP_ERR_INPUT,
              "row %zu", i);
}

static void test_datetime(void)
{
  int64_t ms;
  TEST_CASE("ISO 8601 date-times");
  CHECK(dvapi_parse_datetime("1970-01-01T00:00:01Z", &ms) && ms == 1000);
  CHECK(dvapi_parse_datetime("1970-01-01T01:00:00.250+01:00", &ms) && ms == 250);
  CHECK(!dvapi_parse_datetime("1970-01-01", &ms));
  CHECK(!dvapi_parse_datetime("1970-13-01T00:00:00Z", &ms));
  CHECK(!dvapi_parse_datetime("1970-01-01T00:00:00Zjunk", &ms));
}

int main(void)
{
  arena_init(&arena, 0);
  test_base_url();
  test_urls();
  test_retry_after();
  test_error_text();
  test_page();
  test_row();
  test_datetime();
  arena_cleanup(&arena);
  return check_report("dvapi");
}

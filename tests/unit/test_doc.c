/* test_doc.c - doc_clone: a deep copy that outlives the memory it came from. */
#include "common/arena.h"
#include "map/doc.h"
#include "check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* every string of the source lives in one malloc'd pool that the test
 * overwrites after cloning: a pointer the clone kept into it shows up as
 * 'X's (and as a use-after-free under AddressSanitizer, since the pool is
 * freed before the last checks) */
static char *pool;
static size_t pool_used;

static const char *S(const char *s, size_t n)
{
  char *p = pool + pool_used;
  memcpy(p, s, n);
  p[n] = '\0';
  pool_used += n + 1;
  return p;
}
#define STR(lit) S(lit, sizeof lit - 1)

static void test_clone_everything(void)
{
  struct arena src_arena, dst;
  struct doc d, c;
  struct doc_prop *props;
  struct doc_annotation *ann;
  struct doc_related *rel;
  struct cdc_origin *org;
  const char *num;

  TEST_CASE("doc_clone copies every string, array and the origin");
  pool = malloc(4096);
  pool_used = 0;
  arena_init(&src_arena, 0);
  arena_init(&dst, 0);
  props = arena_alloc(&src_arena, 3 * sizeof *props);
  ann = arena_alloc(&src_arena, 2 * sizeof *ann);
  rel = arena_alloc(&src_arena, 2 * sizeof *rel);
  org = arena_alloc(&src_arena, sizeof *org);
  memset(&d, 0, sizeof d);
  memset(props, 0, 3 * sizeof *props);
  memset(org, 0, sizeof *org);

  d.op = CDC_OP_UPDATE;
  d.table = STR("account");
  d.entity_set = STR("accounts");
  d.key_name = STR("accountid");
  d.id = STR("5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1");
  d.version.ts_ms = 1731053106000;
  d.version.row_version = 77;
  d.version.tie = 5;
  cdc_version_text(&d.version, d.version_text);
  d.op_time_ms = 1731053106001;
  d.full_row = true;
  d.needs_reread = false;
  d.ttl_seconds = 3600;
  d.sql_table = STR("dbo.account");
  d.relationship = STR("accountleads_association");
  d.subordinate_id = STR("11111111-2222-3333-4444-555555555555");

  props[0].name = STR("name");
  props[0].column = STR("name");
  props[0].kind = DOC_STRING;
  props[0].type = DOC_T_TEXT;
  props[0].json = S("\"a\\u0000b\"", 10);
  props[0].json_len = 10;
  props[0].text = S("a\0b", 3); /* a NUL inside: copied by length */
  props[0].text_len = 3;
  num = STR("2500000.00");
  props[1].name = STR("revenue");
  props[1].column = STR("revenue");
  props[1].kind = DOC_NUMBER;
  props[1].type = DOC_T_DECIMAL;
  props[1].json = num;
  props[1].json_len = 10;
  props[1].text = num; /* shared, as the mapper does for numbers */
  props[1].text_len = 10;
  ann[0].name = STR("OData.Community.Display.V1.FormattedValue");
  ann[0].json = STR("\"$2,500,000.00\"");
  ann[0].json_len = 15;
  ann[1].name = STR("Microsoft.Dynamics.CRM.lookuplogicalname");
  ann[1].json = STR("\"x\"");
  ann[1].json_len = 3;
  props[1].ann = ann;
  props[1].nann = 2;
  props[2].name = STR("_parentaccountid_value");
  props[2].column = STR("parentaccountid");
  props[2].kind = DOC_NULL;
  props[2].json = STR("null");
  props[2].json_len = 4;
  d.props = props;
  d.nprops = 3;
  rel[0].table = STR("lead");
  rel[0].entity_set = STR("leads");
  rel[0].id = STR("aaaaaaaa-0000-0000-0000-000000000001");
  rel[1].table = STR("lead");
  rel[1].entity_set = NULL;
  rel[1].id = STR("aaaaaaaa-0000-0000-0000-000000000002");
  d.related = rel;
  d.nrelated = 2;
  org->message_id = STR("m-1");
  org->correlation_id = STR("c-1");
  org->operation_id = STR("o-1");
  org->request_id = NULL;
  org->initiating_user_id = STR("iu");
  org->user_id = STR("u");
  org->initiating_user_agent = STR("agent");
  org->business_unit_id = STR("bu");
  org->organization_id = STR("org");
  org->organization_name = STR("orgname");
  org->owning_extension_id = STR("ext");
  org->depth = 2;
  org->stage = 40;
  org->mode = 1;
  d.origin = org;

  CHECK(doc_clone(&dst, &d, &c) == APP_OK);
  /* everything the source pointed to is gone */
  memset(pool, 'X', pool_used);
  arena_cleanup(&src_arena);
  free(pool);

  CHECK_INTEQ(c.op, CDC_OP_UPDATE);
  CHECK_STREQ(c.table, "account");
  CHECK_STREQ(c.entity_set, "accounts");
  CHECK_STREQ(c.key_name, "accountid");
  CHECK_STREQ(c.id, "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1");
  CHECK(c.version.ts_ms == 1731053106000 && c.version.row_version == 77 && c.version.tie == 5);
  CHECK_STREQ(c.version_text, "001731053106000"
                              "00000000000000000077"
                              "0000000005");
  CHECK(c.op_time_ms == 1731053106001);
  CHECK(c.full_row && !c.needs_reread);
  CHECK(c.ttl_seconds == 3600);
  CHECK_STREQ(c.sql_table, "dbo.account");
  CHECK_STREQ(c.relationship, "accountleads_association");
  CHECK_STREQ(c.subordinate_id, "11111111-2222-3333-4444-555555555555");
  CHECK_INTEQ(c.nprops, 3);
  CHECK_STREQ(c.props[0].name, "name");
  CHECK(c.props[0].json_len == 10 && !memcmp(c.props[0].json, "\"a\\u0000b\"", 11));
  CHECK(c.props[0].text_len == 3 && !memcmp(c.props[0].text, "a\0b", 4));
  CHECK(c.props[0].kind == DOC_STRING && c.props[0].type == DOC_T_TEXT);
  CHECK(c.props[0].nann == 0);
  CHECK_STREQ(c.props[1].json, "2500000.00");
  CHECK(c.props[1].text == c.props[1].json);
  CHECK_INTEQ(c.props[1].nann, 2);
  CHECK_STREQ(c.props[1].ann[0].name, "OData.Community.Display.V1.FormattedValue");
  CHECK_STREQ(c.props[1].ann[0].json, "\"$2,500,000.00\"");
  CHECK(c.props[1].ann[0].json_len == 15);
  CHECK_STREQ(c.props[1].ann[1].name, "Microsoft.Dynamics.CRM.lookuplogicalname");
  CHECK_STREQ(c.props[1].ann[1].json, "\"x\"");
  CHECK_STREQ(c.props[2].name, "_parentaccountid_value");
  CHECK_STREQ(c.props[2].column, "parentaccountid");
  CHECK(c.props[2].kind == DOC_NULL && c.props[2].text == NULL);
  CHECK_STREQ(c.props[2].json, "null");
  CHECK_INTEQ(c.nrelated, 2);
  CHECK_STREQ(c.related[0].table, "lead");
  CHECK_STREQ(c.related[0].entity_set, "leads");
  CHECK_STREQ(c.related[1].id, "aaaaaaaa-0000-0000-0000-000000000002");
  CHECK(c.related[1].entity_set == NULL);
  CHECK(c.origin != NULL);
  CHECK_STREQ(c.origin->message_id, "m-1");
  CHECK_STREQ(c.origin->correlation_id, "c-1");
  CHECK_STREQ(c.origin->operation_id, "o-1");
  CHECK(c.origin->request_id == NULL);
  CHECK_STREQ(c.origin->initiating_user_id, "iu");
  CHECK_STREQ(c.origin->user_id, "u");
  CHECK_STREQ(c.origin->initiating_user_agent, "agent");
  CHECK_STREQ(c.origin->business_unit_id, "bu");
  CHECK_STREQ(c.origin->organization_id, "org");
  CHECK_STREQ(c.origin->organization_name, "orgname");
  CHECK_STREQ(c.origin->owning_extension_id, "ext");
  CHECK(c.origin->depth == 2 && c.origin->stage == 40 && c.origin->mode == 1);
  arena_cleanup(&dst);
}

static void test_clone_minimal_and_limit(void)
{
  struct arena dst;
  struct doc d, c;

  TEST_CASE("doc_clone of a bare delete; the arena ceiling");
  memset(&d, 0, sizeof d);
  d.op = CDC_OP_DELETE;
  d.table = "contact";
  d.id = "6d81597f-2b4e-ef11-a317-000d3a2c9e1b";
  arena_init(&dst, 0);
  CHECK(doc_clone(&dst, &d, &c) == APP_OK);
  CHECK_STREQ(c.table, "contact");
  CHECK(c.table != d.table);
  CHECK(c.props == NULL && c.nprops == 0 && c.related == NULL && c.origin == NULL);
  CHECK(c.entity_set == NULL && c.relationship == NULL);
  arena_cleanup(&dst);
  /* no room: an error, and *out untouched */
  arena_init(&dst, 64);
  memset(&c, 0x5a, sizeof c);
  CHECK(doc_clone(&dst, &d, &c) == APP_ERR_LIMIT);
  CHECK(((const unsigned char *)&c)[0] == 0x5a);
  arena_cleanup(&dst);
}

static void test_version_text(void)
{
  static const struct cdc_version v[] = {
      {0, 0, 0},
      {1731053106000, 5948260, 1690168890},
      {-5, 1, 2},
      {INT64_C(999999999999999), UINT64_MAX, UINT32_MAX},
      {INT64_MAX, 18446744073709551615u, 4294967295u},
      {1, 10000000000000000000u, 1000000000u},
  };
  size_t i;
  TEST_CASE("cdc_version_text: the fixed-width digits of printf");
  for (i = 0; i < sizeof v / sizeof v[0]; i++) {
    char got[CDC_VERSION_TEXT_LEN + 8], want[CDC_VERSION_TEXT_LEN + 8];
    int64_t ts = v[i].ts_ms < 0 ? 0 : v[i].ts_ms;
    if (ts > INT64_C(999999999999999))
      ts = INT64_C(999999999999999);
    memset(got, 'x', sizeof got);
    snprintf(want, sizeof want, "%015" PRId64 "%020" PRIu64 "%010" PRIu32, ts, v[i].row_version,
             v[i].tie);
    cdc_version_text(&v[i], got);
    CHECK_STREQ(got, want);
    CHECK(got[CDC_VERSION_TEXT_LEN] == '\0' && got[CDC_VERSION_TEXT_LEN + 1] == 'x');
  }
}

int main(void)
{
  test_clone_everything();
  test_clone_minimal_and_limit();
  test_version_text();
  return check_report("test_doc");
}

/* test_docmap.c - change -> document -> Web API JSON.
 *
 * Changes are built by hand (the decoder is another module), mapped with a
 * configuration, rendered with docjson and compared as exact strings: the
 * rendered text is what the read API serves, so byte-for-byte is the
 * contract. Property order, annotation order and number lexemes are all
 * part of it. */
#include "common/arena.h"
#include "common/buf.h"
#include "map/docjson.h"
#include "map/docmap.h"
#include "map/mapping.h"
#include "check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT "0123456789abcdef-test-salt"

#define ACC     "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1"
#define OPP     "2f4e6a8c-787b-ef11-ac21-6045bdd4c6be"
#define USER    "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d"
#define CUR     "4e5f6a7b-9c7b-ef11-8a6a-000d3a4b5c6d"
#define PARENT  "4a6c8e0f-797b-ef11-ac21-6045bdd4c6be"
#define CONTACT "6d81597f-2b4e-ef11-a317-000d3a2c9e1b"
#define TEAM    "9b0c1d2e-9c7b-ef11-8a6a-000d3a4b5c6d"
#define ZERO    "00000000-0000-0000-0000-000000000000"

#define FV   "@OData.Community.Display.V1.FormattedValue"
#define LN   "@Microsoft.Dynamics.CRM.lookuplogicalname"
#define ETAG "\"@odata.etag\":\"W/\\\"001732628405777000000000000059482600000000042\\\"\""

static const char *lookup(const char *name)
{
  return strcmp(name, "TEST_HASH_SALT") == 0 ? SALT : NULL;
}

/* ------------------------------------------------------------ builders */

static struct dv_value vs(const char *s)
{
  struct dv_value v = {0};
  v.kind = DV_STRING;
  v.s = s;
  v.len = strlen(s);
  return v;
}

static struct dv_value vlex(enum dv_kind k, const char *lexeme)
{
  struct dv_value v = {0};
  v.kind = k;
  v.s = lexeme;
  v.len = strlen(lexeme);
  return v;
}

#define vnum(l)   vlex(DV_NUMBER, (l))
#define vmoney(l) vlex(DV_MONEY, (l))
#define vopt(l)   vlex(DV_OPTIONSET, (l))

static struct dv_value vbool(bool b)
{
  struct dv_value v = {0};
  v.kind = DV_BOOL;
  v.b = b;
  return v;
}

static struct dv_value vnull(void)
{
  struct dv_value v = {0};
  return v;
}

static struct dv_value vdate(int64_t ms)
{
  struct dv_value v = {0};
  v.kind = DV_DATE;
  v.date_ms = ms;
  return v;
}

static struct dv_value vref(const char *table, const char *id, const char *name)
{
  struct dv_value v = {0};
  v.kind = DV_ENTITYREF;
  v.ref.logical_name = table;
  v.ref.id = id;
  v.ref.name = name;
  return v;
}

static struct dv_value vitems(enum dv_kind k, const struct dv_value *items, size_t n)
{
  struct dv_value v = {0};
  v.kind = k;
  v.items = items;
  v.nitems = n;
  return v;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct cdc_change change(const char *table, const char *id, enum cdc_op op,
                                const char *message)
{
  struct cdc_change ch;
  memset(&ch, 0, sizeof ch);
  ch.table = table;
  ch.id = id;
  ch.op = op;
  ch.message = message;
  ch.version.ts_ms = INT64_C(1732628405777);
  ch.version.row_version = 5948260;
  ch.version.tie = 42;
  ch.op_time_ms = INT64_C(1732628405777);
  ch.relationship_role = -1;
  ch.full_row = op == CDC_OP_CREATE;
  ch.origin.initiating_user_id = USER;
  ch.origin.user_id = USER;
  return ch;
}

/* ------------------------------------------------------------ running */

static struct arena arena;
static struct doc last_doc;

static struct map_config *load(const char *json)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  if (map_config_parse(json, strlen(json), "test", lookup, &cfg, &err) != APP_OK)
    fprintf(stderr, "config: %s\n", err.msg);
  CHECK(cfg != NULL);
  return cfg;
}

/* Map and render; returns the JSON, "SKIP <verdict>" or "ERR <code>: <msg>"
 * (caller frees). last_doc keeps the document until the next call. */
static char *run_filter(const struct map_config *cfg, const struct cdc_change *ch,
                        const struct docjson_annotations *ann)
{
  struct app_err err = {0};
  enum map_verdict v = MAP_ACCEPT;
  enum app_result r;
  struct buf b;
  struct docjson_opts o = {0};
  char *s;

  arena_reset(&arena);
  r = map_change(cfg, &arena, ch, &v, &last_doc, &err);
  if (r != APP_OK) {
    s = malloc(strlen(err.msg) + 32);
    sprintf(s, "ERR %s: %s", app_result_str(r), err.msg);
    return s;
  }
  if (v != MAP_ACCEPT) {
    s = malloc(64);
    sprintf(s, "SKIP %s", map_verdict_str(v));
    return s;
  }
  buf_init(&b, 0);
  o.annotations = ann;
  r = docjson_render(&last_doc, &o, &b, &err);
  CHECK(r == APP_OK);
  s = buf_steal(&b, NULL);
  buf_cleanup(&b);
  return s;
}

static char *run(const struct map_config *cfg, const struct cdc_change *ch)
{
  struct docjson_annotations all;
  docjson_annotations_all(&all);
  return run_filter(cfg, ch, &all);
}

#define EXPECT(cfg, ch, want)                                                                      \
  do {                                                                                             \
    char *got_ = run((cfg), (ch));                                                                 \
    CHECK_STREQ(got_, (want));                                                                     \
    free(got_);                                                                                    \
  } while (0)

static const struct doc_prop *prop(const char *name)
{
  size_t i;
  for (i = 0; i < last_doc.nprops; i++)
    if (strcmp(last_doc.props[i].name, name) == 0)
      return &last_doc.props[i];
  return NULL;
}

#define CHECK_PROP(name, k, t)                                                                     \
  do {                                                                                             \
    const struct doc_prop *p_ = prop(name);                                                        \
    CHECK_MSG(p_ != NULL, "no property %s", name);                                                 \
    if (p_) {                                                                                      \
      CHECK_MSG(p_->kind == (k), "%s kind %d", name, (int)p_->kind);                               \
      CHECK_MSG(p_->type == (t), "%s type %d", name, (int)p_->type);                               \
    }                                                                                              \
  } while (0)

/* -------------------------------------------------------------- tests */

/* The kitchen-sink Update of tests' fixture opportunity: every value kind
 * the decoder produces for a real message, in message order. */
static void test_value_kinds(void)
{
  struct map_config *cfg =
      load("{\"tables\":{\"*\":{},\"opportunity\":{\"date_only\":[\"estimatedclosedate\"]}}}");
  struct dv_value regions[] = {vopt("100000000"), vopt("100000002")};
  struct dv_attr pre_attrs[] = {{"new_primarycontactid", vref("contact", CONTACT, "Aoife"), NULL}};
  struct dv_entity pre = {0};
  struct dv_attr attrs[] = {
      {"estimatedvalue", vmoney("125000.5"),
       "\xe2\x82\xac"
       "125,000.50"},
      {"estimatedvalue_base", vmoney("125000.5"),
       "\xe2\x82\xac"
       "125,000.50"},
      {"exchangerate", vnum("1.0000000000"), "1.0000000000"},
      {"transactioncurrencyid", vref("transactioncurrency", CUR, NULL), NULL},
      {"opportunityratingcode", vopt("2"), "Warm"},
      {"new_regions", vitems(DV_MULTISELECT, regions, 2), "EMEA; APAC"},
      {"new_channels", vnull(), NULL},
      {"parentaccountid", vref("account", PARENT, NULL), NULL},
      {"customerid", vref("account", PARENT, NULL), NULL},
      {"new_primarycontactid", vnull(), NULL},
      {"estimatedclosedate", vdate(INT64_C(1735603200000)), "2024-12-31T00:00:00"},
      {"new_kickoffat", vdate(INT64_C(1733212800000)), "2024-12-03T09:00:00+01:00"},
      {"new_legacystart", vdate(INT64_C(-315619200000)), "1960-01-01T01:00:00+01:00"},
      {"closeprobability", vnum("65"), "65"},
      {"new_discountpct", vnum("12.5"), "12.50"},
      {"new_weight", vnum("0.1"), "0.10"},
      {"new_bigcounter", vnum("9007199254740993"), "9,007,199,254,740,993"},
      {"new_decimalmax", vnum("79228162514264337593543950335"), NULL},
      {"new_double", vnum("1.7976931348623157E+308"), NULL},
      {"new_isstrategic", vbool(true), "Yes"},
      {"description",
       vs("Line 1\r\nLine 2: \"quoted\" and a back\\slash \xe2\x80\x93 price \xe2\x82\xac "
          "1.234,50 \xf0\x9f\x9a\x80\tTab\x01"),
       NULL},
      {"opportunityid", vs(OPP), NULL},
      {"modifiedon", vdate(INT64_C(1732628405000)), "2024-11-26T14:40:05+01:00"},
      {"modifiedby", vref("systemuser", USER, NULL), NULL},
      {"modifiedonbehalfby", vnull(), NULL},
  };
  struct cdc_change ch = change("opportunity", OPP, CDC_OP_UPDATE, "Update");

  TEST_CASE("value kinds");
  if (!cfg)
    return;
  pre.logical_name = "opportunity";
  pre.id = OPP;
  pre.attrs = pre_attrs;
  pre.nattrs = N(pre_attrs);
  ch.pre_image = &pre;
  ch.attrs = attrs;
  ch.nattrs = N(attrs);
  EXPECT(
      cfg, &ch,
      "{" ETAG ","
      "\"estimatedvalue" FV "\":\"\xe2\x82\xac"
      "125,000.50\",\"estimatedvalue\":125000.5,"
      "\"estimatedvalue_base" FV "\":\"\xe2\x82\xac"
      "125,000.50\",\"estimatedvalue_base\":125000.5,"
      "\"exchangerate" FV "\":\"1.0000000000\",\"exchangerate\":1.0000000000,"
      "\"_transactioncurrencyid_value" LN "\":\"transactioncurrency\","
      "\"_transactioncurrencyid_value\":\"" CUR "\","
      "\"opportunityratingcode" FV "\":\"Warm\",\"opportunityratingcode\":2,"
      "\"new_regions" FV "\":\"EMEA; APAC\",\"new_regions\":\"100000000,100000002\","
      "\"new_channels\":null,"
      "\"_parentaccountid_value" LN "\":\"account\",\"_parentaccountid_value\":\"" PARENT "\","
      "\"_customerid_value" LN "\":\"account\",\"_customerid_value\":\"" PARENT "\","
      "\"_new_primarycontactid_value\":null,"
      "\"estimatedclosedate" FV "\":\"2024-12-31T00:00:00\",\"estimatedclosedate\":\"2024-12-31\","
      "\"new_kickoffat" FV "\":\"2024-12-03T09:00:00+01:00\","
      "\"new_kickoffat\":\"2024-12-03T08:00:00Z\","
      "\"new_legacystart" FV "\":\"1960-01-01T01:00:00+01:00\","
      "\"new_legacystart\":\"1960-01-01T00:00:00Z\","
      "\"closeprobability" FV "\":\"65\",\"closeprobability\":65,"
      "\"new_discountpct" FV "\":\"12.50\",\"new_discountpct\":12.5,"
      "\"new_weight" FV "\":\"0.10\",\"new_weight\":0.1,"
      "\"new_bigcounter" FV "\":\"9,007,199,254,740,993\",\"new_bigcounter\":9007199254740993,"
      "\"new_decimalmax\":79228162514264337593543950335,"
      "\"new_double\":1.7976931348623157E+308,"
      "\"new_isstrategic" FV "\":\"Yes\",\"new_isstrategic\":true,"
      "\"description\":\"Line 1\\r\\nLine 2: \\\"quoted\\\" and a back\\\\slash \xe2\x80\x93 "
      "price \xe2\x82\xac 1.234,50 \xf0\x9f\x9a\x80\\tTab\\u0001\","
      "\"opportunityid\":\"" OPP "\","
      "\"modifiedon" FV "\":\"2024-11-26T14:40:05+01:00\",\"modifiedon\":\"2024-11-26T13:40:05Z\","
      "\"_modifiedby_value" LN "\":\"systemuser\",\"_modifiedby_value\":\"" USER "\","
      "\"_modifiedonbehalfby_value\":null}");

  /* the document around the properties */
  CHECK(last_doc.op == CDC_OP_UPDATE);
  CHECK_STREQ(last_doc.table, "opportunity");
  CHECK_STREQ(last_doc.entity_set, "opportunities");
  CHECK_STREQ(last_doc.key_name, "opportunityid");
  CHECK_STREQ(last_doc.id, OPP);
  CHECK_STREQ(last_doc.version_text, "001732628405777000000000000059482600000000042");
  CHECK_INTEQ(last_doc.op_time_ms, INT64_C(1732628405777));
  CHECK_INTEQ(last_doc.ttl_seconds, 0);
  CHECK_STREQ(last_doc.sql_table, "opportunity");
  CHECK(!last_doc.full_row);
  CHECK(last_doc.origin == &ch.origin);
  CHECK_INTEQ(last_doc.nprops, N(attrs));

  /* kinds and types, for sinks */
  CHECK_PROP("estimatedvalue", DOC_NUMBER, DOC_T_DECIMAL);
  CHECK_PROP("exchangerate", DOC_NUMBER, DOC_T_DECIMAL);
  CHECK_PROP("_transactioncurrencyid_value", DOC_STRING, DOC_T_GUID);
  CHECK_PROP("opportunityratingcode", DOC_NUMBER, DOC_T_INT);
  CHECK_PROP("new_regions", DOC_STRING, DOC_T_MULTI);
  CHECK_PROP("new_channels", DOC_NULL, DOC_T_TEXT);
  CHECK_PROP("_new_primarycontactid_value", DOC_NULL, DOC_T_GUID);
  CHECK_PROP("estimatedclosedate", DOC_STRING, DOC_T_DATE);
  CHECK_PROP("new_kickoffat", DOC_STRING, DOC_T_DATETIME);
  CHECK_PROP("closeprobability", DOC_NUMBER, DOC_T_INT);
  CHECK_PROP("new_bigcounter", DOC_NUMBER, DOC_T_INT);
  CHECK_PROP("new_decimalmax", DOC_NUMBER, DOC_T_INT);
  CHECK_PROP("new_double", DOC_NUMBER, DOC_T_DECIMAL);
  CHECK_PROP("new_isstrategic", DOC_BOOL, DOC_T_BOOL);
  CHECK_PROP("description", DOC_STRING, DOC_T_TEXT);
  CHECK_PROP("opportunityid", DOC_STRING, DOC_T_GUID);
  CHECK_PROP("_modifiedonbehalfby_value", DOC_NULL, DOC_T_GUID);
  if (prop("description")) {
    /* text is the decoded string, json the escaped literal */
    CHECK_INTEQ(prop("description")->text_len, strlen(attrs[20].value.s));
    CHECK(memcmp(prop("description")->text, attrs[20].value.s, attrs[20].value.len) == 0);
  }
  if (prop("new_bigcounter"))
    CHECK_STREQ(prop("new_bigcounter")->text, "9007199254740993");
  if (prop("_parentaccountid_value")) {
    CHECK_STREQ(prop("_parentaccountid_value")->column, "parentaccountid");
    CHECK_STREQ(prop("_parentaccountid_value")->text, PARENT);
  }
  if (prop("new_channels"))
    CHECK(prop("new_channels")->text == NULL);
  map_config_free(cfg);
}

static void test_composite_values(void)
{
  struct map_config *cfg =
      load("{\"tables\":{\"*\":{},\"email\":{\"primary_key\":\"activityid\"}}}");
  struct dv_attr party_attrs[] = {
      {"partyid", vref("contact", CONTACT, "Aoife O'Sullivan"), NULL},
      {"participationtypemask", vopt("2"), "To Recipient"},
  };
  struct dv_entity party = {0};
  struct dv_value party_v = {0}, parties, refs, arr, kv = {0}, rel = {0}, bm = {0}, raw, aliased,
                  empty_multi;
  struct dv_value ref_items[] = {vref("lead", ZERO, NULL)};
  struct dv_value arr_items[] = {vnum("1"), vs("a"), vnull(), vdate(0)};
  struct dv_value aliased_items[] = {vnum("7")};
  struct dv_value aliased_ref_items[] = {vref("systemuser", USER, "Jane Doe")};
  struct dv_attr attrs[5 + 6];
  struct cdc_change ch = change("email", OPP, CDC_OP_CREATE, "Create");

  TEST_CASE("composite values");
  if (!cfg)
    return;
  party.logical_name = "activityparty";
  party.id = PARENT;
  party.attrs = party_attrs;
  party.nattrs = N(party_attrs);
  party_v.kind = DV_ENTITY;
  party_v.entity = &party;
  parties = vitems(DV_ENTITYCOLLECTION, &party_v, 1);
  refs = vitems(DV_ENTITYREFCOLLECTION, ref_items, 1);
  arr = vitems(DV_ARRAY, arr_items, N(arr_items));
  kv.kind = DV_KVPAIR;
  kv.s = "account";
  kv.s2 = "Update";
  rel.kind = DV_RELATIONSHIP;
  rel.s = "accountleads_association";
  rel.role = -1;
  bm.kind = DV_BOOLMANAGED;
  bm.b = true;
  bm.s = "iscustomizable";
  raw = vlex(DV_RAW, "{\"__type\":\"Weird:ns\",\"x\":[1,2.50]}");
  aliased = vitems(DV_ALIASED, aliased_items, 1);
  empty_multi = vitems(DV_MULTISELECT, NULL, 0);
  attrs[0] = (struct dv_attr){"to", parties, NULL};
  attrs[1] = (struct dv_attr){"new_refs", refs, NULL};
  attrs[2] = (struct dv_attr){"new_array", arr, NULL};
  attrs[3] = (struct dv_attr){"new_kv", kv, NULL};
  attrs[4] = (struct dv_attr){"new_rel", rel, NULL};
  attrs[5] = (struct dv_attr){"new_managed", bm, NULL};
  attrs[6] = (struct dv_attr){"new_raw", raw, NULL};
  attrs[7] = (struct dv_attr){"new_aliased", aliased, NULL};
  attrs[8] = (struct dv_attr){"new_multi", empty_multi, NULL};
  attrs[9] = (struct dv_attr){"activityid", vs(OPP), NULL};
  attrs[10] = (struct dv_attr){"new_aliasedref", vitems(DV_ALIASED, aliased_ref_items, 1), NULL};
  ch.attrs = attrs;
  ch.nattrs = N(attrs);
  EXPECT(cfg, &ch,
         "{" ETAG ","
         "\"to\":[{\"@odata.type\":\"#Microsoft.Dynamics.CRM.activityparty\","
         "\"activitypartyid\":\"" PARENT "\","
         "\"_partyid_value" FV "\":\"Aoife O'Sullivan\",\"_partyid_value" LN "\":\"contact\","
         "\"_partyid_value\":\"" CONTACT "\","
         "\"participationtypemask" FV "\":\"To Recipient\",\"participationtypemask\":2}],"
         "\"new_refs\":[{\"id\":\"" ZERO "\",\"logicalname\":\"lead\"}],"
         "\"new_array\":[1,\"a\",null,\"1970-01-01T00:00:00Z\"],"
         "\"new_kv\":{\"key\":\"account\",\"value\":\"Update\"},"
         "\"new_rel\":{\"schemaname\":\"accountleads_association\",\"primaryentityrole\":null},"
         "\"new_managed\":{\"Value\":true,\"ManagedPropertyLogicalName\":\"iscustomizable\"},"
         "\"new_raw\":{\"__type\":\"Weird:ns\",\"x\":[1,2.50]},"
         "\"new_aliased\":7,"
         "\"new_multi\":null,"
         "\"activityid\":\"" OPP "\","
         "\"_new_aliasedref_value" FV "\":\"Jane Doe\",\"_new_aliasedref_value" LN
         "\":\"systemuser\",\"_new_aliasedref_value\":\"" USER "\"}");
  CHECK_STREQ(last_doc.key_name, "activityid");
  CHECK_STREQ(last_doc.entity_set, "emails");
  CHECK(last_doc.full_row);
  CHECK_PROP("to", DOC_ARRAY, DOC_T_JSON);
  CHECK_PROP("new_kv", DOC_OBJECT, DOC_T_JSON);
  CHECK_PROP("new_raw", DOC_OBJECT, DOC_T_JSON);
  CHECK_PROP("new_aliased", DOC_NUMBER, DOC_T_INT);
  CHECK_PROP("new_multi", DOC_NULL, DOC_T_MULTI);
  if (prop("new_raw"))
    CHECK_STREQ(prop("new_raw")->text, "{\"__type\":\"Weird:ns\",\"x\":[1,2.50]}");
  map_config_free(cfg);
}

/* Everything full.json says about account: rename, mask, drop, lookups,
 * date_only, required, ttl, sql_table. */
static void test_account_rules(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct dv_attr attrs[] = {
      {"name", vs("Contoso Pharmaceuticals (Z\xc3\xbcrich)"), NULL},
      {"accountnumber", vs("CP-10042"), NULL},
      {"telephone1", vs("+41 44 555 01 23"), NULL},
      {"telephone2", vs("+41 44 555 09 99"), "+41 44 555 09 99"},
      {"fax", vs("+41 44 555 01 24"), NULL},
      {"emailaddress1", vs("jane@example.com"), "jane@example.com"},
      {"description", vs("secret notes"), NULL},
      {"versionnumber", vnum("1234"), NULL},
      {"revenue", vmoney("2500000"), "CHF 2,500,000.00"},
      {"ownerid", vref("systemuser", USER, "Jane Doe"), NULL},
      {"new_partnerid", vnull(), NULL},
      {"new_foundedon", vdate(INT64_C(1735603200000)), "2024-12-31T00:00:00"},
      {"accountid", vs(ACC), NULL},
  };
  struct cdc_change ch = change("account", ACC, CDC_OP_CREATE, "Create");

  TEST_CASE("account rules");
  CHECK_MSG(map_config_load("tests/fixtures/mapping/full.json", lookup, &cfg, &err) == APP_OK, "%s",
            err.msg);
  if (!cfg)
    return;
  ch.attrs = attrs;
  ch.nattrs = N(attrs);
  EXPECT(cfg, &ch,
         "{" ETAG ","
         "\"accountname\":\"Contoso Pharmaceuticals (Z\xc3\xbcrich)\","
         "\"accountnumber\":\"CP-10042\","
         "\"phone\":\"+41 44 555 01 23\","
         "\"telephone2\":null,"
         "\"emailaddress1\":\"4bafd968dfe14460146c4df83fb123d7f0022225715167c65170151fef6799a5\","
         "\"description\":\"[redacted]\","
         "\"revenue" FV "\":\"CHF 2,500,000.00\",\"revenue\":2500000,"
         "\"_ownerid_value" FV "\":\"Jane Doe\",\"_ownerid_value" LN "\":\"systemuser\","
         "\"_ownerid_value\":\"" USER "\","
         "\"_new_partnerid_value\":null,"
         "\"new_foundedon" FV "\":\"2024-12-31T00:00:00\",\"new_foundedon\":\"2024-12-31\","
         "\"accountid\":\"" ACC "\"}");
  CHECK_INTEQ(last_doc.ttl_seconds, 86400);
  CHECK_STREQ(last_doc.sql_table, "dbo.account");
  CHECK_STREQ(last_doc.entity_set, "accounts");
  CHECK(last_doc.full_row);
  CHECK_PROP("emailaddress1", DOC_STRING, DOC_T_TEXT);
  CHECK_PROP("telephone2", DOC_NULL, DOC_T_TEXT);
  CHECK_PROP("new_foundedon", DOC_STRING, DOC_T_DATE);
  CHECK_PROP("_new_partnerid_value", DOC_NULL, DOC_T_GUID);
  if (prop("accountname"))
    CHECK_STREQ(prop("accountname")->column, "name");
  if (prop("emailaddress1"))
    CHECK_INTEQ(prop("emailaddress1")->nann, 0);

  /* a masked lookup: the GUID is hashed, the name annotation goes, the
   * table stays; a null is never hashed */
  {
    struct map_config *c2 = load("{\"salt_setting\":\"TEST_HASH_SALT\",\"tables\":{\"account\":"
                                 "{\"mask\":{\"parentaccountid\":\"hash\",\"emailaddress1\":"
                                 "\"hash\"}}}}");
    struct dv_attr a2[] = {{"parentaccountid", vref("account", PARENT, "Fabrikam"), "Fabrikam"},
                           {"emailaddress1", vnull(), NULL}};
    struct cdc_change c = change("account", ACC, CDC_OP_UPDATE, "Update");
    c.attrs = a2;
    c.nattrs = N(a2);
    if (c2)
      EXPECT(c2, &c,
             "{" ETAG ",\"accountid\":\"" ACC "\","
             "\"_parentaccountid_value" LN "\":\"account\","
             "\"_parentaccountid_value\":"
             "\"6a044fc3cdaa39087dd60851a731855d7b894e4e0f581712412b959dafe93e92\","
             "\"emailaddress1\":null}");
    map_config_free(c2);
  }

  /* a full row without a required column is poison */
  ch.nattrs = N(attrs);
  ch.attrs = attrs + 1; /* drops "name" */
  ch.nattrs = N(attrs) - 1;
  EXPECT(cfg, &ch,
         "ERR input: table account record " ACC ": column name: required column is missing");
  /* a partial Update without it is fine, with an explicit null it is not */
  {
    struct dv_attr upd[] = {{"telephone1", vs("+1 555 0100"), NULL}};
    struct dv_attr upd_null[] = {{"name", vnull(), NULL}};
    struct cdc_change u = change("account", ACC, CDC_OP_UPDATE, "Update");
    u.attrs = upd;
    u.nattrs = 1;
    EXPECT(cfg, &u, "{" ETAG ",\"accountid\":\"" ACC "\",\"phone\":\"+1 555 0100\"}");
    CHECK(!last_doc.full_row);
    u.attrs = upd_null;
    EXPECT(cfg, &u,
           "ERR input: table account record " ACC ": column name: required column is null");
  }
  /* two columns onto one property name */
  {
    struct dv_attr clash[] = {{"name", vs("A"), NULL}, {"accountname", vs("B"), NULL}};
    struct cdc_change u = change("account", ACC, CDC_OP_UPDATE, "Update");
    u.attrs = clash;
    u.nattrs = N(clash);
    EXPECT(cfg, &u,
           "ERR input: table account record " ACC
           ": column accountname: maps to property \"accountname\" like column name");
  }
  map_config_free(cfg);
}

/* Update + post image: the image value wins for columns it has, image-only
 * columns follow, and the row is full (or not, per post_image). */
static void test_post_images(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct dv_attr target[] = {
      {"telephone1", vs("+1 555 0100"), NULL},
      {"revenue", vmoney("100.555"), NULL},
      {"modifiedon", vdate(INT64_C(1732628405000)), NULL},
  };
  struct dv_attr image_attrs[] = {
      {"name", vs("Contoso"), NULL},
      {"revenue", vmoney("100.56"), "$100.56"},
      {"telephone1", vs("+1 555 0100"), NULL},
      {"accountid", vs(ACC), NULL},
  };
  struct dv_entity image = {0};
  struct cdc_change ch = change("account", ACC, CDC_OP_UPDATE, "Update");

  TEST_CASE("post images");
  CHECK_MSG(map_config_load("tests/fixtures/mapping/full.json", lookup, &cfg, &err) == APP_OK, "%s",
            err.msg);
  if (!cfg)
    return;
  image.logical_name = "account";
  image.id = ACC;
  image.attrs = image_attrs;
  image.nattrs = N(image_attrs);
  ch.attrs = target;
  ch.nattrs = N(target);
  ch.post_image = &image;
  EXPECT(cfg, &ch,
         "{" ETAG ",\"phone\":\"+1 555 0100\","
         "\"revenue" FV "\":\"$100.56\",\"revenue\":100.56,"
         "\"modifiedon\":\"2024-11-26T13:40:05Z\","
         "\"accountname\":\"Contoso\",\"accountid\":\"" ACC "\"}");
  CHECK(last_doc.full_row);

  /* a full row from the image must carry the required columns */
  image.attrs = image_attrs + 1;
  image.nattrs = N(image_attrs) - 1;
  EXPECT(cfg, &ch,
         "ERR input: table account record " ACC ": column name: required column is missing");
  image.attrs = image_attrs;
  image.nattrs = N(image_attrs);

  /* an image of another record is corrupt input */
  image.id = PARENT;
  EXPECT(cfg, &ch, "ERR input: table account record " ACC ": post image is for record " PARENT);
  image.id = ACC;

  /* contact: "partial" image, keep list, date_only from the image */
  {
    struct dv_attr t2[] = {
        {"jobtitle", vs("Head of Procurement"), NULL},
        {"modifiedon", vdate(INT64_C(1732628405000)), NULL},
        {"contactid", vs(CONTACT), NULL},
    };
    struct dv_attr i2[] = {
        {"fullname", vs("Aoife O'Sullivan"), NULL},
        {"jobtitle", vs("Head of Procurement"), NULL},
        {"telephone1", vs("+353 1 555 0100"), NULL},
        {"birthdate", vdate(INT64_C(315532800000)), "1980-01-01T00:00:00"},
    };
    struct dv_entity img2 = {0};
    struct cdc_change c = change("contact", CONTACT, CDC_OP_UPDATE, "Update");
    img2.logical_name = "contact";
    img2.attrs = i2;
    img2.nattrs = N(i2);
    c.attrs = t2;
    c.nattrs = N(t2);
    c.post_image = &img2;
    EXPECT(cfg, &c,
           "{" ETAG ",\"jobtitle\":\"Head of Procurement\",\"contactid\":\"" CONTACT "\","
           "\"fullname\":\"Aoife O'Sullivan\","
           "\"birthdate" FV "\":\"1980-01-01T00:00:00\",\"birthdate\":\"1980-01-01\"}");
    CHECK(!last_doc.full_row);
    CHECK_STREQ(last_doc.sql_table, "crm.contact");
    CHECK_INTEQ(last_doc.ttl_seconds, 3600);
  }

  /* new_project: post images ignored */
  {
    struct dv_attr t3[] = {{"new_name", vs("Apollo"), NULL}};
    struct dv_attr i3[] = {{"new_budget", vmoney("10"), NULL}};
    struct dv_entity img3 = {0};
    struct cdc_change c = change("new_project", OPP, CDC_OP_UPDATE, "Update");
    img3.attrs = i3;
    img3.nattrs = 1;
    c.attrs = t3;
    c.nattrs = 1;
    c.post_image = &img3;
    EXPECT(cfg, &c, "{" ETAG ",\"new_projectid\":\"" OPP "\",\"new_name\":\"Apollo\"}");
    CHECK(!last_doc.full_row);
    CHECK_STREQ(last_doc.entity_set, "new_projectset");
  }
  map_config_free(cfg);
}

static void test_messages(void)
{
  struct map_config *cfg = NULL, *full = NULL;
  struct app_err err = {0};
  struct cdc_change ch;

  TEST_CASE("messages");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  CHECK_MSG(map_config_load("tests/fixtures/mapping/full.json", lookup, &full, &err) == APP_OK,
            "%s", err.msg);
  if (!cfg || !full)
    goto out;

  ch = change("account", ACC, CDC_OP_DELETE, "Delete");
  EXPECT(cfg, &ch, "{" ETAG ",\"accountid\":\"" ACC "\"}");
  CHECK_INTEQ(last_doc.nprops, 0);
  CHECK(last_doc.op == CDC_OP_DELETE);

  {
    struct dv_attr st[] = {{"statecode", vopt("1"), "Inactive"},
                           {"statuscode", vopt("2"), "Inactive"}};
    ch = change("account", ACC, CDC_OP_SETSTATE, "SetStateDynamicEntity");
    ch.attrs = st;
    ch.nattrs = N(st);
    EXPECT(cfg, &ch,
           "{" ETAG ",\"accountid\":\"" ACC "\",\"statecode" FV "\":\"Inactive\","
           "\"statecode\":1,\"statuscode" FV "\":\"Inactive\",\"statuscode\":2}");
    CHECK(last_doc.op == CDC_OP_SETSTATE);
  }
  {
    struct dv_attr own[] = {{"ownerid", vref("team", TEAM, "Sales Team"), NULL}};
    struct dv_ref assignee = {0};
    assignee.logical_name = "team";
    assignee.id = TEAM;
    ch = change("account", ACC, CDC_OP_ASSIGN, "Assign");
    ch.attrs = own;
    ch.nattrs = 1;
    ch.assignee = &assignee;
    EXPECT(cfg, &ch,
           "{" ETAG ",\"accountid\":\"" ACC "\",\"_ownerid_value" FV "\":\"Sales Team\","
           "\"_ownerid_value" LN "\":\"team\",\"_ownerid_value\":\"" TEAM "\"}");
    /* the owner comes from Assignee when the columns lack it */
    ch.nattrs = 0;
    assignee.name = "Sales Team";
    EXPECT(cfg, &ch,
           "{" ETAG ",\"accountid\":\"" ACC "\",\"_ownerid_value" FV "\":\"Sales Team\","
           "\"_ownerid_value" LN "\":\"team\",\"_ownerid_value\":\"" TEAM "\"}");
  }
  {
    struct dv_attr upd[] = {{"telephone1", vs("+1 555 0199"), NULL}};
    ch = change("account", ACC, CDC_OP_MERGE, "Merge");
    ch.attrs = upd;
    ch.nattrs = 1;
    ch.subordinate_id = PARENT;
    EXPECT(cfg, &ch, "{" ETAG ",\"accountid\":\"" ACC "\",\"telephone1\":\"+1 555 0199\"}");
    CHECK_STREQ(last_doc.subordinate_id, PARENT);
  }
  {
    struct dv_ref rel[] = {
        {"lead", "11111111-0000-0000-0000-000000000001", NULL, NULL, NULL, 0},
        {"email", "11111111-0000-0000-0000-000000000002", NULL, NULL, NULL, 0},
        {"new_project", "11111111-0000-0000-0000-000000000003", NULL, NULL, NULL, 0},
        {"opportunity", "11111111-0000-0000-0000-000000000004", NULL, NULL, NULL, 0}};
    ch = change("account", ACC, CDC_OP_ASSOCIATE, "Associate");
    ch.relationship = "accountleads_association";
    ch.related = rel;
    ch.nrelated = N(rel);
    EXPECT(full, &ch, "{" ETAG ",\"accountid\":\"" ACC "\"}");
    CHECK_STREQ(last_doc.relationship, "accountleads_association");
    CHECK_INTEQ(last_doc.nrelated, 4);
    if (last_doc.nrelated == 4) {
      CHECK_STREQ(last_doc.related[0].table, "lead");
      CHECK_STREQ(last_doc.related[0].entity_set, "leads");
      CHECK_STREQ(last_doc.related[0].id, "11111111-0000-0000-0000-000000000001");
      CHECK_STREQ(last_doc.related[1].entity_set, "emails");
      CHECK_STREQ(last_doc.related[2].entity_set, "new_projectset");
      CHECK_STREQ(last_doc.related[3].entity_set, "opportunities");
    }
    ch.op = CDC_OP_DISASSOCIATE;
    ch.message = "Disassociate";
    ch.relationship = "contactleads_association";
    EXPECT(full, &ch, "SKIP skip-relationship");
    ch.relationship = "accountleads_association";
    EXPECT(full, &ch, "{" ETAG ",\"accountid\":\"" ACC "\"}");
    CHECK(last_doc.op == CDC_OP_DISASSOCIATE);
    rel[1].id = NULL;
    EXPECT(full, &ch,
           "ERR input: table account record " ACC ": related record 1 has no LogicalName or Id");
    rel[1].id = "42";
    EXPECT(full, &ch,
           "ERR input: table account record " ACC ": related record 1: id \"42\" is not a GUID");
    rel[1].id = "11111111-0000-0000-0000-000000000002";
    rel[2].logical_name = "new_project:x";
    EXPECT(full, &ch,
           "ERR input: table account record " ACC
           ": related record 2: \"new_project:x\" is not a logical name");
    {
      char longname[130];
      memset(longname, 'a', 129);
      longname[129] = '\0';
      rel[2].logical_name = longname;
      EXPECT(full, &ch,
             "ERR input: table account record " ACC ": related record 2: \"aaaaaaaaaaaaaaaaaaaa"
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is not a logical name");
      rel[2].logical_name = "new_project";
    }
  }
  {
    /* truncated context: table and id only, re-read needed */
    ch = change("account", ACC, CDC_OP_UPDATE, "Update");
    ch.needs_reread = true;
    EXPECT(full, &ch, "{" ETAG ",\"accountid\":\"" ACC "\"}");
    CHECK(last_doc.needs_reread);
    CHECK_INTEQ(last_doc.nprops, 0);
  }
  /* table, message and echo filters of full.json */
  ch = change("audit", ACC, CDC_OP_CREATE, "Create");
  EXPECT(full, &ch, "SKIP skip-table");
  ch = change("contact", CONTACT, CDC_OP_ASSIGN, "Assign");
  EXPECT(full, &ch, "SKIP skip-message");
  ch = change("account", ACC, CDC_OP_DELETE, "Delete");
  ch.origin.initiating_user_agent = "DataverseSvcClient (D365-CDC-Writer 1.0)";
  EXPECT(full, &ch, "SKIP skip-echo");
  ch.origin.initiating_user_agent = NULL;
  ch.origin.initiating_user_id = "aaaaaaaa-0000-0000-0000-000000000001";
  EXPECT(full, &ch, "SKIP skip-echo");
  ch = change("lead", ACC, CDC_OP_DELETE, "Delete"); /* via "*" */
  EXPECT(full, &ch, "{" ETAG ",\"leadid\":\"" ACC "\"}");
  CHECK_STREQ(last_doc.sql_table, "crm.lead");
out:
  map_config_free(cfg);
  map_config_free(full);
}

static void test_poison(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct dv_value bad_items[] = {vopt("1.5")};
  static const struct {
    const char *column;
    int which;
    const char *msg;
  } cases[] = {
      {"accountid", 0, "column accountid: primary key column does not hold the record id"},
      {"name", 1, "column name: appears twice in the message"},
      {"createdon", 2, "column createdon: date 9223372036854775807 ms is outside years 0001-9999"},
      {"createdon", 3, "column createdon: date -62135596800001 ms is outside years 0001-9999"},
      {"revenue", 4, "column revenue: malformed number"},
      {"new_regions", 5, "column new_regions: multi-select item 0 is not a choice value"},
      {"ownerid", 6, "column ownerid: entity reference without an Id"},
      {"statecode", 7, "column statecode: choice value is not a whole number"},
      {"new_raw", 8, "column new_raw: empty raw value"},
  };
  size_t i;

  TEST_CASE("poison");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  if (!cfg)
    return;
  for (i = 0; i < N(cases); i++) {
    struct dv_attr a[2];
    struct cdc_change ch = change("account", ACC, CDC_OP_UPDATE, "Update");
    char want[300];
    size_t n = 1;
    a[0].name = cases[i].column;
    a[0].formatted = NULL;
    switch (cases[i].which) {
    case 0: a[0].value = vs(ZERO); break;
    case 1:
      a[0].value = vs("A");
      a[1] = a[0];
      n = 2;
      break;
    case 2: a[0].value = vdate(INT64_MAX); break;
    case 3: a[0].value = vdate(INT64_C(-62135596800001)); break;
    case 4: a[0].value = vmoney("12a"); break;
    case 5: a[0].value = vitems(DV_MULTISELECT, bad_items, 1); break;
    case 6: a[0].value = vref("systemuser", NULL, NULL); break;
    case 7: a[0].value = vopt("1.5"); break;
    case 8: a[0].value = vlex(DV_RAW, ""); break;
    }
    ch.attrs = a;
    ch.nattrs = n;
    snprintf(want, sizeof want, "ERR input: table account record " ACC ": %s", cases[i].msg);
    EXPECT(cfg, &ch, want);
  }
  map_config_free(cfg);
}

static void test_dates(void)
{
  static const struct {
    int64_t ms;
    bool date_only;
    const char *text;
  } cases[] = {
      {0, false, "1970-01-01T00:00:00Z"},
      {-1, false, "1969-12-31T23:59:59.999Z"},
      {-1, true, "1969-12-31"},
      {INT64_C(-315619200000), false, "1960-01-01T00:00:00Z"},
      {INT64_C(1731053106000), false, "2024-11-08T08:05:06Z"},
      {INT64_C(1731053106007), false, "2024-11-08T08:05:06.007Z"},
      {INT64_C(951782400000), false, "2000-02-29T00:00:00Z"},
      {INT64_C(4107542400000), true, "2100-03-01"},
      {INT64_C(-2208988800000), false, "1900-01-01T00:00:00Z"},
      {INT64_C(-62135596800000), false, "0001-01-01T00:00:00Z"},
      {INT64_C(253402300799999), false, "9999-12-31T23:59:59.999Z"},
      {INT64_C(253402300800000), false, ""},
      {INT64_MIN, false, ""},
  };
  char out[DOCMAP_DATE_MAX];
  size_t i;

  TEST_CASE("dates");
  for (i = 0; i < N(cases); i++) {
    size_t n = docmap_format_date(cases[i].ms, cases[i].date_only, out);
    CHECK_STREQ(out, cases[i].text);
    CHECK_INTEQ(n, strlen(cases[i].text));
  }
}

static void test_annotation_filters(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct dv_attr attrs[] = {
      {"revenue", vmoney("2500000"), "$2,500,000.00"},
      {"ownerid", vref("systemuser", USER, "Jane Doe"), NULL},
  };
  struct cdc_change ch = change("account", ACC, CDC_OP_UPDATE, "Update");
  static const struct {
    const char *pref;
    const char *json;
  } cases[] = {
      {"*",
       "\"revenue" FV "\":\"$2,500,000.00\",\"revenue\":2500000,\"_ownerid_value" FV
       "\":\"Jane Doe\",\"_ownerid_value" LN "\":\"systemuser\",\"_ownerid_value\":\"" USER "\""},
      {"", "\"revenue\":2500000,\"_ownerid_value\":\"" USER "\""},
      {"-*", "\"revenue\":2500000,\"_ownerid_value\":\"" USER "\""},
      {"\"OData.Community.Display.V1.FormattedValue\"",
       "\"revenue" FV "\":\"$2,500,000.00\",\"revenue\":2500000,\"_ownerid_value" FV
       "\":\"Jane Doe\",\"_ownerid_value\":\"" USER "\""},
      {"Microsoft.Dynamics.CRM.*", "\"revenue\":2500000,\"_ownerid_value" LN
                                   "\":\"systemuser\",\"_ownerid_value\":\"" USER "\""},
      {"OData.Community.Display.V1.*",
       "\"revenue" FV "\":\"$2,500,000.00\",\"revenue\":2500000,\"_ownerid_value" FV
       "\":\"Jane Doe\",\"_ownerid_value\":\"" USER "\""},
      {"*,-Microsoft.Dynamics.CRM.lookuplogicalname",
       "\"revenue" FV "\":\"$2,500,000.00\",\"revenue\":2500000,\"_ownerid_value" FV
       "\":\"Jane Doe\",\"_ownerid_value\":\"" USER "\""},
      /* the more specific pattern wins, in either order */
      {"-Microsoft.Dynamics.*, Microsoft.Dynamics.CRM.lookuplogicalname",
       "\"revenue\":2500000,\"_ownerid_value" LN "\":\"systemuser\",\"_ownerid_value\":\"" USER
       "\""},
      /* equally specific: exclusion wins */
      {"OData.*,-OData.*", "\"revenue\":2500000,\"_ownerid_value\":\"" USER "\""},
      /* a namespace is matched by whole segments */
      {"Microsoft.Dyn.*", "\"revenue\":2500000,\"_ownerid_value\":\"" USER "\""},
  };
  size_t i;

  TEST_CASE("annotation filters");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  if (!cfg)
    return;
  ch.attrs = attrs;
  ch.nattrs = N(attrs);
  for (i = 0; i < N(cases); i++) {
    struct docjson_annotations f;
    char want[1024], *got;
    CHECK_MSG(docjson_annotations_parse(&f, cases[i].pref, strlen(cases[i].pref), &err) == APP_OK,
              "%s: %s", cases[i].pref, err.msg);
    snprintf(want, sizeof want, "{" ETAG ",\"accountid\":\"" ACC "\",%s}", cases[i].json);
    got = run_filter(cfg, &ch, &f);
    CHECK_STREQ(got, want);
    free(got);
  }
  /* no filter at all: no annotations */
  {
    char *got = run_filter(cfg, &ch, NULL);
    CHECK_STREQ(got, "{" ETAG ",\"accountid\":\"" ACC "\",\"revenue\":2500000,"
                     "\"_ownerid_value\":\"" USER "\"}");
    free(got);
  }

  /* Prefer headers */
  {
    struct docjson_annotations f;
    static const char p1[] =
        "return=representation, odata.include-annotations="
        "\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*\""
        "; x=\"a,b\", odata.maxpagesize=10";
    static const char p2[] = "odata.maxpagesize=10,Odata.Include-Annotations=*";
    static const char p3[] = "return=minimal";
    CHECK(docjson_annotations_from_prefer(&f, p1, strlen(p1), &err) == APP_OK);
    CHECK_INTEQ(f.n, 2);
    CHECK(docjson_annotation_included(&f, "OData.Community.Display.V1.FormattedValue"));
    CHECK(docjson_annotation_included(&f, "Microsoft.Dynamics.CRM.lookuplogicalname"));
    CHECK(!docjson_annotation_included(&f, "OData.Community.Display.V1.Other"));
    CHECK(docjson_annotations_from_prefer(&f, p2, strlen(p2), &err) == APP_OK);
    CHECK(docjson_annotation_included(&f, "Anything.At.All"));
    CHECK(docjson_annotations_from_prefer(&f, p3, strlen(p3), &err) == APP_OK);
    CHECK_INTEQ(f.n, 0);
    CHECK(!docjson_annotation_included(&f, "OData.Community.Display.V1.FormattedValue"));
    CHECK(docjson_annotations_from_prefer(&f, "odata.include-annotations=\"*", 28, &err) ==
          APP_ERR_INPUT);
    CHECK_STREQ(err.msg, "Prefer: unterminated quoted value");
  }
  /* malformed patterns */
  {
    static const char *const badp[] = {"Microsoft..CRM", "a.*.b", ".x", "x.", "*.x", "a b", "--x"};
    struct docjson_annotations f;
    for (i = 0; i < N(badp); i++)
      CHECK_MSG(docjson_annotations_parse(&f, badp[i], strlen(badp[i]), &err) == APP_ERR_INPUT,
                "%s", badp[i]);
    CHECK(docjson_annotations_parse(&f, "a b", 3, &err) == APP_ERR_INPUT);
    CHECK_STREQ(err.msg, "include-annotations: \"a b\" is not \"*\", a namespace.* or a term");
    CHECK(docjson_annotations_parse(&f, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", 33, &err) ==
          APP_ERR_INPUT);
    CHECK_STREQ(err.msg, "include-annotations: more than 16 patterns");
  }
  /* $select and no etag */
  {
    static const char *const sel[] = {"revenue"};
    struct docjson_opts o = {0};
    struct buf b;
    char *got;
    got = run_filter(cfg, &ch, NULL);
    free(got);
    o.select = sel;
    o.nselect = 1;
    o.no_etag = true;
    buf_init(&b, 0);
    CHECK(docjson_render(&last_doc, &o, &b, &err) == APP_OK);
    CHECK_STREQ(b.data, "{\"accountid\":\"" ACC "\",\"revenue\":2500000}");
    /* a full output buffer is reported, not overrun */
    buf_cleanup(&b);
    buf_init(&b, 16);
    CHECK(docjson_render(&last_doc, NULL, &b, &err) == APP_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "rendering account " ACC);
    buf_cleanup(&b);
  }
  map_config_free(cfg);
}

/* Names from the message are escaped like values; a nested entity with a
 * hostile column name cannot break the JSON. */
static void test_escaping(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct dv_attr inner[] = {{"a\"b", vnum("1"), NULL}, {"c\\d", vref("x", ZERO, NULL), NULL}};
  struct dv_entity e = {0};
  struct dv_value ev = {0};
  struct dv_attr attrs[1];
  struct cdc_change ch = change("account", ACC, CDC_OP_UPDATE, "Update");

  TEST_CASE("escaping");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  if (!cfg)
    return;
  e.attrs = inner;
  e.nattrs = N(inner);
  ev.kind = DV_ENTITY;
  ev.entity = &e;
  attrs[0] = (struct dv_attr){"new_entity", ev, NULL};
  ch.attrs = attrs;
  ch.nattrs = 1;
  EXPECT(cfg, &ch,
         "{" ETAG ",\"accountid\":\"" ACC "\",\"new_entity\":{\"a\\\"b\":1,"
         "\"_c\\\\d_value" LN "\":\"x\",\"_c\\\\d_value\":\"" ZERO "\"}}");
  map_config_free(cfg);
}

static void test_raw_values(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct dv_value inner[] = {vlex(DV_RAW, "[1,{\"a\":null}]"), vlex(DV_RAW, "{\"a\":")};
  struct dv_attr attrs[] = {
      {"new_rawstr", vlex(DV_RAW, "\"x\\u00e9\""), NULL},
      {"new_rawnum", vlex(DV_RAW, "1.50"), NULL},
      {"new_rawnull", vlex(DV_RAW, "null"), NULL},
      {"new_arr", vitems(DV_ARRAY, inner, 1), NULL},
  };
  struct cdc_change ch = change("account", ACC, CDC_OP_UPDATE, "Update");
  char *got;

  TEST_CASE("raw values");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  if (!cfg)
    return;
  ch.attrs = attrs;
  ch.nattrs = N(attrs);
  EXPECT(cfg, &ch,
         "{" ETAG ",\"accountid\":\"" ACC "\",\"new_rawstr\":\"x\\u00e9\",\"new_rawnum\":1.50,"
         "\"new_rawnull\":null,\"new_arr\":[[1,{\"a\":null}]]}");
  CHECK_PROP("new_rawstr", DOC_STRING, DOC_T_JSON);
  CHECK_PROP("new_rawnum", DOC_NUMBER, DOC_T_JSON);
  CHECK_PROP("new_rawnull", DOC_NULL, DOC_T_JSON);
  CHECK_PROP("new_arr", DOC_ARRAY, DOC_T_JSON);
  if (prop("new_rawstr"))
    CHECK_STREQ(prop("new_rawstr")->text, "x\xc3\xa9"); /* decoded */
  if (prop("new_rawnull"))
    CHECK(prop("new_rawnull")->text == NULL);
  /* raw text that is not JSON never reaches a document */
  attrs[3].value = vitems(DV_ARRAY, inner, 2);
  got = run(cfg, &ch);
  CHECK_CONTAINS(got, "ERR input: table account record " ACC
                      ": column new_arr: raw value is not JSON: ");
  free(got);
  attrs[0].value = vlex(DV_RAW, "tru");
  got = run(cfg, &ch);
  CHECK_CONTAINS(got, "ERR input: table account record " ACC
                      ": column new_rawstr: raw value is not JSON: ");
  free(got);
  map_config_free(cfg);
}

static void test_limits(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct dv_value nest[DOCMAP_MAX_DEPTH + 3];
  struct dv_attr attrs[1];
  struct cdc_change ch = change("account", ACC, CDC_OP_UPDATE, "Update");
  struct arena small;
  struct doc d;
  enum map_verdict v;
  struct dv_attr many[64];
  size_t i;

  TEST_CASE("limits");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  if (!cfg)
    return;
  /* arrays nested deeper than DOCMAP_MAX_DEPTH are poison, not a stack
   * overflow */
  nest[0] = vnum("1");
  for (i = 1; i < N(nest); i++)
    nest[i] = vitems(DV_ARRAY, &nest[i - 1], 1);
  attrs[0] = (struct dv_attr){"new_deep", nest[N(nest) - 1], NULL};
  ch.attrs = attrs;
  ch.nattrs = 1;
  EXPECT(cfg, &ch,
         "ERR input: table account record " ACC ": column new_deep: value nested deeper than 32 "
         "levels");

  /* the arena ceiling gives APP_ERR_LIMIT with a message */
  for (i = 0; i < N(many); i++) {
    char *name = malloc(16);
    snprintf(name, 16, "new_col%zu", i);
    many[i] = (struct dv_attr){name, vs("some text that takes a little room in the arena"), NULL};
  }
  ch.attrs = many;
  ch.nattrs = N(many);
  arena_init(&small, 1024);
  CHECK(map_change(cfg, &small, &ch, &v, &d, &err) == APP_ERR_LIMIT);
  CHECK_STREQ(err.msg,
              "table account record " ACC ": memory limit of the invocation reached while mapping");
  arena_cleanup(&small);
  for (i = 0; i < N(many); i++)
    free((char *)many[i].name);
  map_config_free(cfg);
}

int main(void)
{
  arena_init(&arena, 0);
  test_value_kinds();
  test_composite_values();
  test_account_rules();
  test_post_images();
  test_messages();
  test_poison();
  test_dates();
  test_annotation_filters();
  test_escaping();
  test_raw_values();
  test_limits();
  arena_cleanup(&arena);
  return check_report("test_docmap");
}

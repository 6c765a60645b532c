/* test_mapping.c - loading and validating the mapping configuration.
 *
 * Every kind of mistake in a mapping file must stop start-up with a message
 * that names the file, the JSON path and what was wrong; the table below
 * holds the exact expected message for each. */
#include "common/arena.h"
#include "common/config.h"
#include "map/mapping.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SALT "0123456789abcdef-test-salt"

static const char *lookup(const char *name)
{
  if (strcmp(name, "CDC_HASH_SALT") == 0 || strcmp(name, "TEST_HASH_SALT") == 0)
    return SALT;
  if (strcmp(name, "SHORT_SALT") == 0)
    return "tiny-secret";
  if (strcmp(name, "EMPTY_SALT") == 0)
    return "";
  return NULL;
}

static const char *no_settings(const char *name)
{
  (void)name;
  return NULL;
}

struct bad_case {
  const char *json;
  const char *msg;
};

#define T(tbl) "{\"tables\":{\"account\":" tbl "}}"

static const struct bad_case bad[] = {
    /* the file as a whole */
    {"", "mapping.json: file is empty"},
    {" \n\t ", "mapping.json: file is empty"},
    {"{\"tables\": ", "mapping.json: not valid JSON: the text ends early (near line 1, column 11)"},
    {"{\n  \"tables\": {\"*\": {},}\n}", "mapping.json: not valid JSON (near line 2, column 23)"},
    {"{\"tables\":{\"*\":{}}} x", "mapping.json: not valid JSON (near line 1, column 21)"},
    {"{\"comment\":\"\xff\"}", "mapping.json: invalid UTF-8 at byte offset 12"},
    {"{\"comment\":\"a\\u0000\",\"tables\":{\"*\":{}}}",
     "mapping.json: \\u0000 is not allowed (byte offset 13)"},
    {"[]", "mapping.json: expected an object at the top level, got an array"},
    {"\"tables\"", "mapping.json: expected an object at the top level, got \"tables\""},
    /* top-level keys */
    {"{\"tabels\":{}}", "mapping.json: unknown key \"tabels\" (did you mean \"tables\"?)"},
    {"{\"frobnicate\":1,\"tables\":{\"*\":{}}}", "mapping.json: unknown key \"frobnicate\""},
    {"{\"tables\":{\"*\":{}},\"tables\":{\"*\":{}}}", "mapping.json: duplicate key \"tables\""},
    {"{}", "mapping.json: missing key \"tables\" (use {\"tables\": {\"*\": {}}} to accept every "
           "table)"},
    {"{\"tables\":{}}",
     "mapping.json: tables: no table is configured (add \"*\" to accept every table)"},
    {"{\"tables\":[]}",
     "mapping.json: tables: expected an object of table logical name: settings, got an array"},
    {"{\"version\":2,\"tables\":{\"*\":{}}}", "mapping.json: version: expected 1, got 2"},
    {"{\"version\":\"1\",\"tables\":{\"*\":{}}}", "mapping.json: version: expected 1, got \"1\""},
    {"{\"comment\":5,\"tables\":{\"*\":{}}}", "mapping.json: comment: expected a string, got 5"},
    {"{\"salt_setting\":\"my salt\",\"tables\":{\"*\":{}}}",
     "mapping.json: salt_setting: expected the name of an app setting (letters, digits and '_'), "
     "got \"my salt\""},
    {"{\"salt_setting\":true,\"tables\":{\"*\":{}}}",
     "mapping.json: salt_setting: expected the name of an app setting (letters, digits and '_'), "
     "got true"},
    /* accept / skip */
    {"{\"accept_tables\":5,\"tables\":{\"*\":{}}}",
     "mapping.json: accept_tables: expected \"*\" or an array of table logical names, got 5"},
    {"{\"accept_tables\":[\"Account\"],\"tables\":{\"*\":{}}}",
     "mapping.json: accept_tables[0]: \"Account\" is not a table logical name (lower-case "
     "letters, digits and '_', starting with a letter)"},
    {"{\"accept_tables\":[\"account\",\"account\"],\"tables\":{\"*\":{}}}",
     "mapping.json: accept_tables[1]: duplicate table logical name \"account\""},
    {"{\"skip_tables\":\"*\",\"tables\":{\"*\":{}}}",
     "mapping.json: skip_tables: expected an array of table logical names, got \"*\""},
    {"{\"accept_tables\":[\"contact\"],\"skip_tables\":[\"contact\"],\"tables\":{\"*\":{}}}",
     "mapping.json: skip_tables: \"contact\" is also in accept_tables"},
    {"{\"accept_tables\":[\"account\"],\"tables\":{\"*\":{},\"contact\":{}}}",
     "mapping.json: tables.contact: the table is not in accept_tables"},
    {"{\"skip_tables\":[\"contact\"],\"tables\":{\"*\":{},\"contact\":{}}}",
     "mapping.json: tables.contact: the table is also in skip_tables"},
    {"{\"accept_tables\":[\"account\",\"lead\"],\"tables\":{\"account\":{}}}",
     "mapping.json: accept_tables: \"lead\" has no entry in tables and there is no \"*\" "
     "default"},
    /* echo suppression */
    {"{\"echo_suppression\":[],\"tables\":{\"*\":{}}}",
     "mapping.json: echo_suppression: expected an object, got an array"},
    {"{\"echo_suppression\":{\"userids\":[]},\"tables\":{\"*\":{}}}",
     "mapping.json: echo_suppression: unknown key \"userids\" (did you mean \"user_ids\"?)"},
    {"{\"echo_suppression\":{\"user_ids\":[\"abc\"]},\"tables\":{\"*\":{}}}",
     "mapping.json: echo_suppression.user_ids[0]: \"abc\" is not a GUID "
     "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"},
    {"{\"echo_suppression\":{\"initiating_user_ids\":[\"{aaaaaaaa-0000-0000-0000-000000000001}\"]},"
     "\"tables\":{\"*\":{}}}",
     "mapping.json: echo_suppression.initiating_user_ids[0]: "
     "\"{aaaaaaaa-0000-0000-0000-000000000001}\" is not a GUID "
     "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"},
    {"{\"echo_suppression\":{\"user_ids\":\"aaaaaaaa-0000-0000-0000-000000000001\"},"
     "\"tables\":{\"*\":{}}}",
     "mapping.json: echo_suppression.user_ids: expected an array of user ids, got "
     "\"aaaaaaaa-0000-0000-0000-000000000001\""},
    {"{\"echo_suppression\":{\"user_ids\":[\"AAAAAAAA-0000-0000-0000-000000000001\","
     "\"aaaaaaaa-0000-0000-0000-000000000001\"]},\"tables\":{\"*\":{}}}",
     "mapping.json: echo_suppression.user_ids[1]: duplicate user id "
     "\"aaaaaaaa-0000-0000-0000-000000000001\""},
    {"{\"echo_suppression\":{\"user_agent_contains\":[\"\"]},\"tables\":{\"*\":{}}}",
     "mapping.json: echo_suppression.user_agent_contains[0]: empty user agent substring"},
    /* tables */
    {"{\"tables\":{\"Account\":{}}}",
     "mapping.json: tables.Account: \"Account\" is not a table logical name (lower-case letters, "
     "digits and '_', starting with a letter)"},
    {"{\"tables\":{\"account\":{},\"account\":{}}}",
     "mapping.json: tables.account: duplicate table"},
    {T("[]"), "mapping.json: tables.account: expected an object of table settings, got an array"},
    {"{\"tables\":{\"contact\":{\"kep\":\"*\"}}}",
     "mapping.json: tables.contact: unknown key \"kep\" (did you mean \"keep\"?)"},
    {"{\"tables\":{\"contact\":{\"keep\":\"*\",\"keep\":[\"a\"]}}}",
     "mapping.json: tables.contact: duplicate key \"keep\""},
    {T("{\"comment\":[]}"),
     "mapping.json: tables.account.comment: expected a string, got an array"},
    /* keep / drop */
    {T("{\"keep\":5}"),
     "mapping.json: tables.account.keep: expected \"*\" or an array of column names, got 5"},
    {T("{\"keep\":\"all\"}"),
     "mapping.json: tables.account.keep: expected \"*\" or an array of column names, got \"all\""},
    {T("{\"keep\":[]}"),
     "mapping.json: tables.account.keep: empty list (use \"*\" for every column, or name the "
     "columns)"},
    {T("{\"keep\":[\"name\",3]}"),
     "mapping.json: tables.account.keep[1]: expected a column name, got 3"},
    {T("{\"keep\":[\"Name\"]}"),
     "mapping.json: tables.account.keep[0]: \"Name\" is not a column logical name (lower-case "
     "letters, digits and '_', starting with a letter)"},
    {T("{\"keep\":[\"_ownerid_value\"]}"),
     "mapping.json: tables.account.keep[0]: \"_ownerid_value\" is a Web API property name; use "
     "the column's logical name \"ownerid\""},
    {T("{\"keep\":[\"name\",\"name\"]}"),
     "mapping.json: tables.account.keep[1]: duplicate column \"name\""},
    {T("{\"drop\":\"*\"}"),
     "mapping.json: tables.account.drop: expected an array of column names, got \"*\""},
    {T("{\"keep\":[\"name\",\"telephone1\"],\"drop\":[\"telephone1\"]}"),
     "mapping.json: tables.account.drop[0]: \"telephone1\" is also in tables.account.keep"},
    {"{\"tables\":{\"*\":{\"drop\":[\"versionnumber\"]},\"account\":{\"keep\":[\"name\","
     "\"versionnumber\"]}}}",
     "mapping.json: tables.*.drop[0]: \"versionnumber\" is also in tables.account.keep"},
    {T("{\"drop\":[\"accountid\"]}"),
     "mapping.json: tables.account.drop[0]: the primary key \"accountid\" cannot be dropped"},
    {"{\"tables\":{\"email\":{\"primary_key\":\"activityid\",\"drop\":[\"activityid\"]}}}",
     "mapping.json: tables.email.drop[0]: the primary key \"activityid\" cannot be dropped"},
    /* rename */
    {T("{\"rename\":[\"a\"]}"),
     "mapping.json: tables.account.rename: expected an object of \"column\": \"new name\", got "
     "an array"},
    {T("{\"rename\":{\"name\":null}}"),
     "mapping.json: tables.account.rename.name: expected the new property name, got null"},
    {T("{\"rename\":{\"name\":\"full name\"}}"),
     "mapping.json: tables.account.rename.name: \"full name\" is not a valid property name "
     "(letters, digits and '_', not starting with a digit, at most 128)"},
    {T("{\"rename\":{\"name\":\"@odata.etag\"}}"),
     "mapping.json: tables.account.rename.name: \"@odata.etag\" is not a valid property name "
     "(letters, digits and '_', not starting with a digit, at most 128)"},
    {T("{\"rename\":{\"Name\":\"x\"}}"),
     "mapping.json: tables.account.rename.Name: \"Name\" is not a column logical name "
     "(lower-case letters, digits and '_', starting with a letter)"},
    {T("{\"rename\":{\"name\":\"title\",\"description\":\"title\"}}"),
     "mapping.json: tables.account.rename.description: \"title\" is also the new name of "
     "\"name\""},
    {T("{\"rename\":{\"name\":\"a\",\"name\":\"b\"}}"),
     "mapping.json: tables.account.rename.name: duplicate key"},
    {T("{\"keep\":[\"name\",\"accountnumber\"],\"rename\":{\"name\":\"accountnumber\"}}"),
     "mapping.json: tables.account.rename.name: \"accountnumber\" is the name of another column "
     "of this table"},
    {T("{\"required\":[\"accountnumber\"],\"rename\":{\"name\":\"accountnumber\"}}"),
     "mapping.json: tables.account.rename.name: \"accountnumber\" is the name of another column "
     "of this table"},
    {T("{\"mask\":{\"accountnumber\":\"redact\"},\"rename\":{\"name\":\"accountnumber\"}}"),
     "mapping.json: tables.account.rename.name: \"accountnumber\" is the name of another column "
     "of this table"},
    {T("{\"rename\":{\"accountid\":\"id\"}}"),
     "mapping.json: tables.account.rename.accountid: the primary key cannot be renamed (its "
     "property is always \"accountid\")"},
    {T("{\"rename\":{\"name\":\"accountid\"}}"),
     "mapping.json: tables.account.rename.name: \"accountid\" is the primary key property"},
    {T("{\"drop\":[\"fax\"],\"rename\":{\"fax\":\"fax2\"}}"),
     "mapping.json: tables.account.rename.fax: column \"fax\" is dropped by tables.account.drop"},
    {T("{\"keep\":[\"name\"],\"rename\":{\"fax\":\"fax2\"}}"),
     "mapping.json: tables.account.rename.fax: column \"fax\" is not in tables.account.keep"},
    /* mask */
    {T("{\"mask\":{\"emailaddress1\":\"md5\"}}"),
     "mapping.json: tables.account.mask.emailaddress1: expected \"hash\" or \"redact\", got "
     "\"md5\""},
    {T("{\"mask\":{\"emailaddress1\":5}}"),
     "mapping.json: tables.account.mask.emailaddress1: expected \"hash\", \"redact\" or "
     "{\"redact\": \"replacement text\"}, got 5"},
    {T("{\"mask\":\"hash\"}"),
     "mapping.json: tables.account.mask: expected an object of \"column\": \"hash\" | "
     "\"redact\", got \"hash\""},
    {T("{\"mask\":{\"telephone1\":{\"with\":\"***\"}}}"),
     "mapping.json: tables.account.mask.telephone1: unknown key \"with\""},
    {T("{\"mask\":{\"telephone1\":{}}}"),
     "mapping.json: tables.account.mask.telephone1: expected {\"redact\": \"replacement "
     "text\"}, got an empty object"},
    {T("{\"mask\":{\"telephone1\":{\"redact\":5}}}"),
     "mapping.json: tables.account.mask.telephone1.redact: expected the replacement text (a "
     "string) or null, got 5"},
    {T("{\"mask\":{\"Telephone1\":\"redact\"}}"),
     "mapping.json: tables.account.mask.Telephone1: \"Telephone1\" is not a column logical name "
     "(lower-case letters, digits and '_', starting with a letter)"},
    {T("{\"mask\":{\"accountid\":\"redact\"}}"),
     "mapping.json: tables.account.mask.accountid: the primary key cannot be masked"},
    {T("{\"keep\":[\"name\"],\"mask\":{\"emailaddress1\":\"redact\"}}"),
     "mapping.json: tables.account.mask.emailaddress1: column \"emailaddress1\" is not in "
     "tables.account.keep"},
    {T("{\"mask\":{\"emailaddress1\":\"hash\"}}"),
     "mapping.json: tables.account.mask.emailaddress1: \"hash\" needs \"salt_setting\" at the "
     "top level (the name of the app setting that holds the salt)"},
    {"{\"salt_setting\":\"NOT_SET\",\"tables\":{\"account\":{\"mask\":{\"emailaddress1\":"
     "\"hash\"}}}}",
     "mapping.json: salt_setting: app setting \"NOT_SET\" is not set (it must hold the salt for "
     "\"hash\" masking)"},
    {"{\"salt_setting\":\"EMPTY_SALT\",\"tables\":{\"*\":{\"mask\":{\"emailaddress1\":"
     "\"hash\"}}}}",
     "mapping.json: salt_setting: app setting \"EMPTY_SALT\" is not set (it must hold the salt "
     "for \"hash\" masking)"},
    {"{\"salt_setting\":\"SHORT_SALT\",\"tables\":{\"account\":{\"mask\":{\"emailaddress1\":"
     "\"hash\"}}}}",
     "mapping.json: salt_setting: app setting \"SHORT_SALT\" is shorter than 16 bytes; use a "
     "long random salt"},
    /* required, lookups, date_only */
    {T("{\"required\":\"name\"}"),
     "mapping.json: tables.account.required: expected an array of column names, got \"name\""},
    {T("{\"drop\":[\"name\"],\"required\":[\"name\"]}"),
     "mapping.json: tables.account.required[0]: column \"name\" is dropped by "
     "tables.account.drop"},
    {T("{\"keep\":[\"name\"],\"required\":[\"telephone1\"]}"),
     "mapping.json: tables.account.required[0]: column \"telephone1\" is not in "
     "tables.account.keep"},
    {"{\"tables\":{\"*\":{\"required\":[\"name\"]},\"account\":{\"drop\":[\"name\"]}}}",
     "mapping.json: tables.*.required[0]: column \"name\" is dropped by tables.account.drop"},
    {T("{\"lookups\":[\"accountid\"]}"),
     "mapping.json: tables.account.lookups[0]: \"accountid\" is the primary key, not a lookup"},
    {T("{\"keep\":[\"name\"],\"lookups\":[\"parentaccountid\"]}"),
     "mapping.json: tables.account.lookups[0]: column \"parentaccountid\" is not in "
     "tables.account.keep"},
    {T("{\"date_only\":[\"accountid\"]}"),
     "mapping.json: tables.account.date_only[0]: \"accountid\" is the primary key, not a date"},
    {T("{\"date_only\":[\"new_foundedon\",\"new_foundedon\"]}"),
     "mapping.json: tables.account.date_only[1]: duplicate column \"new_foundedon\""},
    /* ttl */
    {T("{\"ttl_seconds\":-5}"),
     "mapping.json: tables.account.ttl_seconds: expected a whole number of seconds from 0 (no "
     "expiry) to 315360000, got -5"},
    {T("{\"ttl_seconds\":1.5}"),
     "mapping.json: tables.account.ttl_seconds: expected a whole number of seconds from 0 (no "
     "expiry) to 315360000, got 1.5"},
    {T("{\"ttl_seconds\":\"60\"}"),
     "mapping.json: tables.account.ttl_seconds: expected a whole number of seconds from 0 (no "
     "expiry) to 315360000, got \"60\""},
    {T("{\"ttl_seconds\":1e12}"),
     "mapping.json: tables.account.ttl_seconds: expected a whole number of seconds from 0 (no "
     "expiry) to 315360000, got 1000000000000"},
    /* names */
    {T("{\"entity_set\":\"accounts/x\"}"),
     "mapping.json: tables.account.entity_set: \"accounts/x\" is not a valid entity set name "
     "(letters, digits and '_')"},
    {T("{\"entity_set\":\"\"}"),
     "mapping.json: tables.account.entity_set: \"\" is not a valid entity set name (letters, "
     "digits and '_')"},
    {"{\"tables\":{\"*\":{\"entity_set\":\"things\"}}}",
     "mapping.json: tables.*.entity_set: not allowed in the \"*\" default (it names one table's "
     "entity set)"},
    {"{\"tables\":{\"account\":{\"entity_set\":\"things\"},\"contact\":{\"entity_set\":"
     "\"things\"}}}",
     "mapping.json: tables.contact.entity_set: \"things\" is also the entity set of table "
     "\"account\""},
    {"{\"tables\":{\"account\":{},\"contact\":{\"entity_set\":\"accounts\"}}}",
     "mapping.json: tables.contact.entity_set: \"accounts\" is also the entity set of table "
     "\"account\""},
    {T("{\"primary_key\":\"AccountId\"}"),
     "mapping.json: tables.account.primary_key: \"AccountId\" is not a column logical name "
     "(lower-case letters, digits and '_', starting with a letter)"},
    {"{\"tables\":{\"*\":{\"primary_key\":\"id\"}}}",
     "mapping.json: tables.*.primary_key: not allowed in the \"*\" default (each table has its "
     "own key)"},
    {T("{\"sql_table\":\"dbo.acc;drop\"}"),
     "mapping.json: tables.account.sql_table: \"dbo.acc;drop\" is not a valid SQL table name "
     "(\"name\" or \"schema.name\": letters, digits and '_')"},
    {T("{\"sql_table\":\"a.b.c\"}"),
     "mapping.json: tables.account.sql_table: \"a.b.c\" is not a valid SQL table name (\"name\" "
     "or \"schema.name\": letters, digits and '_')"},
    {T("{\"sql_table\":\"{table}{table}{table}{table}{table}{table}{table}{table}{table}{table}"
       "{table}{table}{table}{table}{table}{table}{table}{table}{table}{table}{table}{table}"
       "{table}{table}{table}{table}{table}{table}{table}{table}{table}{table}{table}{table}"
       "{table}{table}{table}{table}{table}{table}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"),
     "mapping.json: tables.account.sql_table: longer than 257 characters"},
    {T("{\"sql_table\":7}"),
     "mapping.json: tables.account.sql_table: expected a table name such as \"dbo.account\", got "
     "7"},
    {"{\"tables\":{\"*\":{\"sql_table\":\"dbo.everything\"}}}",
     "mapping.json: tables.*.sql_table: the \"*\" default must contain \"{table}\" (e.g. "
     "\"dbo.{table}\"), or every table would share one SQL table"},
    {"{\"tables\":{\"*\":{\"sql_table\":\"dbo.{table}-x\"}}}",
     "mapping.json: tables.*.sql_table: \"dbo.{table}-x\" is not a valid SQL table name "
     "(\"name\" or \"schema.name\": letters, digits and '_')"},
    /* messages and relationships */
    {T("{\"messages\":\"Create\"}"),
     "mapping.json: tables.account.messages: expected an array of message names, got "
     "\"Create\""},
    {T("{\"messages\":[]}"),
     "mapping.json: tables.account.messages: empty list (leave the table out of accept_tables "
     "to skip it)"},
    {T("{\"messages\":[\"Create\",\"Updat\"]}"),
     "mapping.json: tables.account.messages[1]: unknown message \"Updat\" (expected Create, "
     "Update, Delete, Associate, Disassociate, SetState, SetStateDynamicEntity, Assign, Merge, "
     "Upsert or Restore)"},
    {T("{\"messages\":[\"Create\",\"Create\"]}"),
     "mapping.json: tables.account.messages[1]: duplicate message \"Create\""},
    {T("{\"relationships\":5}"),
     "mapping.json: tables.account.relationships: expected \"*\" or an array of relationship "
     "schema names, got 5"},
    {T("{\"relationships\":[\"a b\"]}"),
     "mapping.json: tables.account.relationships[0]: \"a b\" is not a relationship schema name "
     "(letters, digits and '_')"},
    {T("{\"messages\":[\"Create\"],\"relationships\":[\"accountleads_association\"]}"),
     "mapping.json: tables.account.relationships: has no effect: tables.account.messages has "
     "neither Associate nor Disassociate"},
    /* alternate keys (issue 14) */
    {T("{\"keys\":[\"accountnumber\"]}"),
     "mapping.json: tables.account.keys: expected an object of alternate keys (name: [columns]), "
     "got an array"},
    {T("{\"keys\":{\"k\":[]}}"),
     "mapping.json: tables.account.keys.k: expected an array of 1 to 5 column names, got an "
     "array"},
    {T("{\"keys\":{\"k\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}}"),
     "mapping.json: tables.account.keys.k: expected an array of 1 to 5 column names, got an "
     "array"},
    {T("{\"keys\":{\"k\":[\"Name\"]}}"),
     "mapping.json: tables.account.keys.k[0]: \"Name\" is not a column logical name (lower-case "
     "letters, digits and '_', starting with a letter)"},
    {T("{\"keys\":{\"k\":[\"a\",\"a\"]}}"),
     "mapping.json: tables.account.keys.k[1]: column \"a\" is listed twice"},
    {T("{\"keys\":{\"k\":[\"a\",\"b\"],\"k2\":[\"b\",\"a\"]}}"),
     "mapping.json: tables.account.keys.k2: the same columns as key \"k\""},
    {"{\"tables\":{\"*\":{\"keys\":{}}}}",
     "mapping.json: tables.*.keys: not allowed in the \"*\" default (alternate keys are one "
     "table's)"},
    /* navigation (issue 14) */
    {T("{\"navigation\":[]}"),
     "mapping.json: tables.account.navigation: expected an object of navigation properties, got "
     "an array"},
    {T("{\"navigation\":{\"a-b\":{\"table\":\"contact\",\"lookup\":\"x\"}}}"),
     "mapping.json: tables.account.navigation.a-b: \"a-b\" is not a navigation property name "
     "(letters, digits and '_')"},
    {T("{\"navigation\":{\"p\":{\"table\":\"contact\"}}}"),
     "mapping.json: tables.account.navigation.p: needs \"table\" and either \"lookup\" (this "
     "table's lookup column) or \"referencing\" (the related table's lookup column: a 1:N "
     "collection)"},
    {T("{\"navigation\":{\"p\":{\"table\":\"contact\",\"lookup\":\"x\",\"referencing\":\"y\"}}}"),
     "mapping.json: tables.account.navigation.p: \"lookup\" (single-valued) and \"referencing\" "
     "(a collection) exclude each other"},
    {"{\"tables\":{\"*\":{},\"account\":{\"navigation\":{\"cs\":{\"table\":\"contact\","
     "\"referencing\":\"parentcustomerid\"}}}}}",
     "mapping.json: tables.account.navigation.cs.referencing: a collection needs an index on the "
     "referencing column: add \"parentcustomerid\" to tables.contact.indexes"},
    {T("{\"navigation\":{\"p\":{\"table\":\"contact\",\"lookup\":\"x\",\"kind\":1}}}"),
     "mapping.json: tables.account.navigation.p: unknown key \"kind\""},
    {T("{\"navigation\":{\"p\":{\"table\":\"Contact\",\"lookup\":\"x\"}}}"),
     "mapping.json: tables.account.navigation.p: table: \"Contact\" is not a table logical name"},
    {T("{\"navigation\":{\"p\":{\"table\":\"contact\",\"lookup\":\"_x_value\"}}}"),
     "mapping.json: tables.account.navigation.p: lookup: \"_x_value\" is not a column logical "
     "name (write \"primarycontactid\", not \"_primarycontactid_value\")"},
    {"{\"tables\":{\"*\":{\"navigation\":{}}}}",
     "mapping.json: tables.*.navigation: not allowed in the \"*\" default (navigation names one "
     "table's related tables)"},
    {"{\"accept_tables\":[\"account\"],\"tables\":{\"*\":{},\"account\":{\"navigation\":"
     "{\"p\":{\"table\":\"contact\",\"lookup\":\"primarycontactid\"}}}}}",
     "mapping.json: tables.account.navigation.p.table: table \"contact\" is not replicated by "
     "this mapping (add it to \"tables\" or accept_tables), so its records cannot be expanded"},
    {T("{\"post_image\":\"yes\"}"),
     "mapping.json: tables.account.post_image: expected \"full\", \"partial\" or \"ignore\", got "
     "\"yes\""},
};

static void test_bad_configs(void)
{
  size_t i;
  TEST_CASE("bad configs");
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct map_config *cfg = (struct map_config *)1;
    struct app_err err = {0};
    enum app_result r =
        map_config_parse(bad[i].json, strlen(bad[i].json), "mapping.json", lookup, &cfg, &err);
    CHECK_MSG(r == APP_ERR_CONFIG, "case %zu: result %s", i, app_result_str(r));
    CHECK_MSG(cfg == NULL, "case %zu: *out not NULL", i);
    CHECK_STREQ(err.msg, bad[i].msg);
    /* the salt never reaches a message */
    CHECK(strstr(err.msg, SALT) == NULL && strstr(err.msg, "tiny-secret") == NULL);
    map_config_free(cfg);
  }
}

static struct map_config *parse_ok(const char *json)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  enum app_result r = map_config_parse(json, strlen(json), "mapping.json", lookup, &cfg, &err);
  CHECK_MSG(r == APP_OK, "%s: %s", json, err.msg);
  return cfg;
}

static void test_good_configs(void)
{
  static const char *const good[] = {
      "{\"tables\":{\"*\":{}}}",
      "{\"version\":1,\"comment\":\"x\",\"tables\":{\"account\":{\"comment\":\"y\"}}}",
      /* a salt setting that is not needed is not looked up */
      "{\"salt_setting\":\"NOT_SET\",\"tables\":{\"*\":{}}}",
      /* rename of a column to another renamed column's name (a swap) */
      "{\"tables\":{\"account\":{\"keep\":[\"name\",\"accountnumber\"],"
      "\"rename\":{\"name\":\"accountnumber\",\"accountnumber\":\"name\"}}}}",
      /* keep list without the key: the key is written anyway */
      "{\"tables\":{\"account\":{\"keep\":[\"name\"],\"required\":[\"accountid\"]}}}",
      "{\"tables\":{\"account\":{\"mask\":{\"a\":{\"redact\":null},\"b\":{\"redact\":\"x\"}}}}}",
      "{\"tables\":{\"*\":{\"sql_table\":\"{table}\"},\"account\":{\"sql_table\":\"dbo.acct\"}}}",
      "{\"tables\":{\"*\":{\"sql_table\":\"crm.{table}_{table}\"}}}",
      "{\"accept_tables\":[\"account\",\"contact\"],\"tables\":{\"*\":{},\"account\":{}}}",
      "{\"tables\":{\"account\":{\"messages\":[\"Associate\"],\"relationships\":[]}}}",
      "{\"tables\":{\"account\":{\"ttl_seconds\":0}},\"echo_suppression\":{}}",
      /* a UTF-8 byte order mark (Windows editors write one) is skipped */
      "\xef\xbb\xbf{\"tables\":{\"*\":{}}}",
  };
  size_t i;
  TEST_CASE("good configs");
  for (i = 0; i < sizeof good / sizeof good[0]; i++)
    map_config_free(parse_ok(good[i]));
}

static struct cdc_change change(const char *table, enum cdc_op op, const char *message)
{
  struct cdc_change ch;
  memset(&ch, 0, sizeof ch);
  ch.table = table;
  ch.op = op;
  ch.message = message;
  ch.id = "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1";
  ch.relationship_role = -1;
  return ch;
}

static enum map_verdict verdict(const struct map_config *cfg, const struct cdc_change *ch)
{
  struct arena a;
  struct doc d;
  struct app_err err = {0};
  enum map_verdict v = MAP_ACCEPT;
  arena_init(&a, 0);
  if (map_change(cfg, &a, ch, &v, &d, &err) != APP_OK) {
    fprintf(stderr, "map_change: %s\n", err.msg);
    v = (enum map_verdict)99;
  }
  arena_cleanup(&a);
  return v;
}

static void test_navigation(void)
{
  struct map_config *cfg =
      parse_ok("{\"tables\":{\"*\":{},\"account\":{\"navigation\":{\"primarycontactid\":"
               "{\"table\":\"contact\",\"lookup\":\"primarycontactid\",\"comment\":\"c\"},"
               "\"owninguser\":{\"table\":\"systemuser\",\"lookup\":\"owninguser\"}}}}}");
  struct map_nav n;
  TEST_CASE("navigation");
  {
    struct map_config *kc = parse_ok("{\"tables\":{\"account\":{\"keys\":{\"ak_n\":"
                                     "[\"accountnumber\"],\"ak_two\":[\"name\",\"city\"]}}}}");
    const struct doc_altkey *ak = NULL;
    const char *one[] = {"accountnumber"}, *two[] = {"city", "name"}, *other[] = {"name"};
    CHECK(map_altkey(kc, "account", one, 1, &ak) == APP_OK && !strcmp(ak->name, "ak_n"));
    CHECK(map_altkey(kc, "account", two, 2, &ak) == APP_OK && !strcmp(ak->name, "ak_two"));
    CHECK_STREQ(ak->props[0], "name");
    CHECK(map_altkey(kc, "account", other, 1, &ak) == APP_ERR_NOTFOUND);
    CHECK(map_altkey(kc, "contact", one, 1, &ak) == APP_ERR_NOTFOUND);
    map_config_free(kc);
  }
  CHECK(map_navigation(cfg, "account", "primarycontactid", &n) == APP_OK);
  CHECK_STREQ(n.table, "contact");
  CHECK_STREQ(n.lookup, "primarycontactid");
  CHECK_STREQ(n.property, "_primarycontactid_value");
  CHECK(map_navigation(cfg, "account", "owninguser", &n) == APP_OK);
  CHECK_STREQ(n.property, "_owninguser_value");
  CHECK(map_navigation(cfg, "account", "PrimaryContactId", &n) == APP_ERR_NOTFOUND);
  CHECK(map_navigation(cfg, "contact", "primarycontactid", &n) == APP_ERR_NOTFOUND);
  CHECK(map_navigation(cfg, "Account", "primarycontactid", &n) == APP_ERR_NOTFOUND);
  map_config_free(cfg);
}

static void test_defaults(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct cdc_change ch;
  struct arena a;
  struct map_table_info info;
  static const struct {
    enum cdc_op op;
    const char *message;
    enum map_verdict v;
  } msgs[] = {
      {CDC_OP_CREATE, "Create", MAP_ACCEPT},
      {CDC_OP_UPDATE, "Update", MAP_ACCEPT},
      {CDC_OP_DELETE, "Delete", MAP_ACCEPT},
      {CDC_OP_SETSTATE, "SetState", MAP_ACCEPT},
      {CDC_OP_SETSTATE, "SetStateDynamicEntity", MAP_ACCEPT},
      {CDC_OP_ASSIGN, "Assign", MAP_ACCEPT},
      {CDC_OP_MERGE, "Merge", MAP_ACCEPT},
      {CDC_OP_UPSERT, "Upsert", MAP_SKIP_MESSAGE},
      {CDC_OP_OTHER, "Win", MAP_SKIP_MESSAGE},
      {CDC_OP_UPDATE, NULL, MAP_ACCEPT},
  };
  size_t i;

  TEST_CASE("defaults");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  CHECK_STREQ(map_config_source(cfg), "built-in defaults");
  for (i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
    ch = change("new_widget", msgs[i].op, msgs[i].message);
    CHECK_MSG(verdict(cfg, &ch) == msgs[i].v, "message %s", msgs[i].message);
  }
  ch = change("account", CDC_OP_ASSOCIATE, "Associate");
  ch.relationship = "accountleads_association";
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);

  arena_init(&a, 0);
  CHECK(map_table_info(cfg, &a, "opportunity", &info, &err) == APP_OK);
  CHECK(info.accepted);
  CHECK_STREQ(info.entity_set, "opportunities");
  CHECK_STREQ(info.key_name, "opportunityid");
  CHECK_STREQ(info.sql_table, "opportunity");
  CHECK_INTEQ(info.ttl_seconds, 0);
  CHECK(map_table_info(cfg, &a, "Bad Name", &info, &err) == APP_ERR_INPUT);
  arena_cleanup(&a);
  map_config_free(cfg);
}

static void test_filters(void)
{
  struct map_config *cfg = parse_ok(
      "{\"accept_tables\":[\"account\",\"contact\",\"lead\"],\"skip_tables\":[],"
      "\"echo_suppression\":{\"initiating_user_ids\":[\"AAAAAAAA-0000-0000-0000-000000000001\"],"
      "\"user_ids\":[\"aaaaaaaa-0000-0000-0000-000000000002\"],"
      "\"user_agent_contains\":[\"CDC-Writer\"]},"
      "\"tables\":{\"*\":{\"messages\":[\"Create\",\"Update\"]},"
      "\"account\":{\"messages\":[\"Create\",\"Associate\"],"
      "\"relationships\":[\"accountleads_association\"]}}}");
  struct cdc_change ch;

  TEST_CASE("filters");
  if (!cfg)
    return;
  ch = change("account", CDC_OP_CREATE, "Create");
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);
  ch = change("account", CDC_OP_UPDATE, "Update");
  CHECK(verdict(cfg, &ch) == MAP_SKIP_MESSAGE);
  ch = change("contact", CDC_OP_UPDATE, "Update"); /* inherits "*" */
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);
  ch = change("contact", CDC_OP_DELETE, "Delete");
  CHECK(verdict(cfg, &ch) == MAP_SKIP_MESSAGE);
  ch = change("opportunity", CDC_OP_CREATE, "Create"); /* not in accept_tables */
  CHECK(verdict(cfg, &ch) == MAP_SKIP_TABLE);

  /* echo: by initiating user (case-insensitive config), by user, by agent */
  ch = change("account", CDC_OP_CREATE, "Create");
  ch.origin.initiating_user_id = "aaaaaaaa-0000-0000-0000-000000000001";
  CHECK(verdict(cfg, &ch) == MAP_SKIP_ECHO);
  ch = change("account", CDC_OP_CREATE, "Create");
  ch.origin.user_id = "aaaaaaaa-0000-0000-0000-000000000002";
  CHECK(verdict(cfg, &ch) == MAP_SKIP_ECHO);
  ch = change("account", CDC_OP_CREATE, "Create");
  ch.origin.user_id = "aaaaaaaa-0000-0000-0000-000000000001"; /* only an initiating id */
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);
  ch = change("account", CDC_OP_CREATE, "Create");
  ch.origin.initiating_user_agent = "Microsoft Dynamics CRM Core SDK (cdc-writer/1.0)";
  CHECK(verdict(cfg, &ch) == MAP_SKIP_ECHO);
  ch = change("account", CDC_OP_CREATE, "Create");
  ch.origin.initiating_user_agent = "";
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);
  /* the table filter comes first */
  ch = change("opportunity", CDC_OP_CREATE, "Create");
  ch.origin.user_id = "aaaaaaaa-0000-0000-0000-000000000002";
  CHECK(verdict(cfg, &ch) == MAP_SKIP_TABLE);

  /* relationships */
  ch = change("account", CDC_OP_ASSOCIATE, "Associate");
  ch.relationship = "accountleads_association";
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);
  ch.relationship = "AccountLeads_Association"; /* schema names ignore case */
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);
  ch.relationship = "contactleads_association";
  CHECK(verdict(cfg, &ch) == MAP_SKIP_RELATIONSHIP);
  map_config_free(cfg);

  cfg = parse_ok("{\"skip_tables\":[\"audit\"],\"tables\":{\"*\":{}}}");
  if (!cfg)
    return;
  ch = change("audit", CDC_OP_CREATE, "Create");
  CHECK(verdict(cfg, &ch) == MAP_SKIP_TABLE);
  ch = change("account", CDC_OP_CREATE, "Create");
  CHECK(verdict(cfg, &ch) == MAP_ACCEPT);
  map_config_free(cfg);

  /* no "*": only listed tables */
  cfg = parse_ok("{\"tables\":{\"account\":{}}}");
  if (!cfg)
    return;
  ch = change("contact", CDC_OP_CREATE, "Create");
  CHECK(verdict(cfg, &ch) == MAP_SKIP_TABLE);
  map_config_free(cfg);
}

static void test_bad_changes(void)
{
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct cdc_change ch;
  struct arena a;
  struct doc d;
  enum map_verdict v;

  TEST_CASE("changes that cannot be mapped");
  CHECK(map_config_default(&cfg, &err) == APP_OK);
  arena_init(&a, 0);
  /* no table (a truncated unknown message): skipped, not poison */
  ch = change("account", CDC_OP_OTHER, "new_CustomAction");
  ch.table = NULL;
  ch.id = NULL;
  CHECK(map_change(cfg, &a, &ch, &v, &d, &err) == APP_OK);
  CHECK(v == MAP_SKIP_TABLE);
  /* a malformed table or id of a message that is skipped anyway is not poison */
  ch.table = "Acc ount";
  CHECK(map_change(cfg, &a, &ch, &v, &d, &err) == APP_OK);
  CHECK(v == MAP_SKIP_MESSAGE);
  ch = change("account", CDC_OP_CREATE, "Create");
  ch.table = "Acc ount";
  CHECK(map_change(cfg, &a, &ch, &v, &d, &err) == APP_ERR_INPUT);
  CHECK_STREQ(err.msg, "change for table \"Acc ount\": not a logical name");
  ch = change("account", CDC_OP_CREATE, "Create");
  ch.id = "42";
  CHECK(map_change(cfg, &a, &ch, &v, &d, &err) == APP_ERR_INPUT);
  CHECK_STREQ(err.msg, "table account: record id \"42\" is not a GUID");
  ch = change("account", CDC_OP_ASSOCIATE, "Associate");
  ch.relationship = "account.leads";
  CHECK(map_change(cfg, &a, &ch, &v, &d, &err) == APP_ERR_INPUT);
  CHECK_STREQ(err.msg, "table account record 5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1: relationship "
                       "\"account.leads\" is not a schema name");
  ch.relationship = NULL;
  CHECK(map_change(cfg, &a, &ch, &v, &d, &err) == APP_ERR_INPUT);
  CHECK_STREQ(err.msg, "table account record 5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1: associate "
                       "without a relationship name");
  arena_cleanup(&a);
  map_config_free(cfg);
}

static void test_inheritance(void)
{
  struct map_config *cfg =
      parse_ok("{\"tables\":{\"*\":{\"ttl_seconds\":60,\"sql_table\":\"crm.{table}\"},"
               "\"account\":{\"ttl_seconds\":0},\"contact\":{\"sql_table\":\"dbo.people\"},"
               "\"email\":{\"primary_key\":\"activityid\",\"entity_set\":\"emailmessages\"}}}");
  struct arena a;
  struct map_table_info info;
  struct app_err err = {0};

  TEST_CASE("inheritance");
  if (!cfg)
    return;
  arena_init(&a, 0);
  CHECK(map_table_info(cfg, &a, "account", &info, &err) == APP_OK);
  CHECK_INTEQ(info.ttl_seconds, 0);
  CHECK_STREQ(info.sql_table, "crm.account");
  CHECK(map_table_info(cfg, &a, "contact", &info, &err) == APP_OK);
  CHECK_INTEQ(info.ttl_seconds, 60);
  CHECK_STREQ(info.sql_table, "dbo.people");
  CHECK(map_table_info(cfg, &a, "lead", &info, &err) == APP_OK);
  CHECK(info.accepted);
  CHECK_INTEQ(info.ttl_seconds, 60);
  CHECK_STREQ(info.sql_table, "crm.lead");
  CHECK_STREQ(info.key_name, "leadid");
  CHECK(map_table_info(cfg, &a, "email", &info, &err) == APP_OK);
  CHECK_STREQ(info.key_name, "activityid");
  CHECK_STREQ(info.entity_set, "emailmessages");
  arena_cleanup(&a);
  map_config_free(cfg);
}

static void test_entity_sets(void)
{
  static const struct {
    const char *name, *set;
  } cases[] = {
      {"account", "accounts"},
      {"opportunity", "opportunities"},
      {"address", "addresses"},
      {"customeraddress", "customeraddresses"},
      {"activityparty", "activityparties"},
      {"contact", "contacts"},
      {"systemuser", "systemusers"},
      {"transactioncurrency", "transactioncurrencies"},
      {"territory", "territories"},
      {"mailbox", "mailboxes"},
      {"survey", "surveys"},
      {"queue", "queues"},
      {"email", "emails"},
      {"new_search", "new_searches"},
      {"new_wish", "new_wishes"},
      {"new_quiz", "new_quizes"},
      {"new_status", "new_statuses"},
      {"y", "ys"},
  };
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  char out[64], small[8];
  size_t i;

  TEST_CASE("entity sets");
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK(map_default_entity_set(cases[i].name, out, sizeof out) == strlen(cases[i].set));
    CHECK_STREQ(out, cases[i].set);
  }
  CHECK(map_default_entity_set("opportunity", small, sizeof small) == 0);
  CHECK_STREQ(small, "");

  cfg = parse_ok("{\"skip_tables\":[\"lead\"],\"tables\":{\"*\":{},"
                 "\"new_project\":{\"entity_set\":\"new_projectset\"}}}");
  if (!cfg)
    return;
  CHECK(map_table_for_entity_set(cfg, "opportunities", out, sizeof out) == APP_OK);
  CHECK_STREQ(out, "opportunity");
  CHECK(map_table_for_entity_set(cfg, "addresses", out, sizeof out) == APP_OK);
  CHECK_STREQ(out, "address");
  CHECK(map_table_for_entity_set(cfg, "accounts", out, sizeof out) == APP_OK);
  CHECK_STREQ(out, "account");
  CHECK(map_table_for_entity_set(cfg, "queues", out, sizeof out) == APP_OK);
  CHECK_STREQ(out, "queue");
  CHECK(map_table_for_entity_set(cfg, "new_projectset", out, sizeof out) == APP_OK);
  CHECK_STREQ(out, "new_project");
  /* a listed table with its own entity set does not answer to the plural */
  CHECK(map_table_for_entity_set(cfg, "new_projects", out, sizeof out) == APP_ERR_NOTFOUND);
  CHECK(map_table_for_entity_set(cfg, "leads", out, sizeof out) == APP_ERR_NOTFOUND);
  CHECK(map_table_for_entity_set(cfg, "Accounts", out, sizeof out) == APP_ERR_NOTFOUND);
  CHECK(map_table_for_entity_set(cfg, "s", out, sizeof out) == APP_ERR_NOTFOUND);
  map_config_free(cfg);
  (void)err;
}

static char *write_temp(const char *dir, const char *name, const char *text, size_t len)
{
  char *path = malloc(strlen(dir) + strlen(name) + 2);
  FILE *f;
  sprintf(path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    CHECK(fwrite(text, 1, len, f) == len);
    fclose(f);
  }
  return path;
}

static void test_files(void)
{
  char dir[] = "/tmp/test_mapping.XXXXXX";
  struct map_config *cfg = NULL;
  struct app_err err = {0};
  struct app_config settings;
  char *path, *big, *bigpath;
  char empty[] = "", mapping_json[] = "mapping.json", other_json[] = "other.json";
  size_t bign = MAP_MAX_FILE_BYTES + 10;

  TEST_CASE("files");
  CHECK(mkdtemp(dir) != NULL);
  memset(&settings, 0, sizeof settings);

  /* the shipped example loads (tests run from the repository root) */
  CHECK_MSG(map_config_load("function_app/mapping.json", no_settings, &cfg, &err) == APP_OK, "%s",
            err.msg);
  if (cfg) {
    struct arena a;
    struct map_table_info info;
    arena_init(&a, 0);
    CHECK(map_table_info(cfg, &a, "email", &info, &err) == APP_OK);
    CHECK_STREQ(info.key_name, "activityid");
    CHECK(map_table_info(cfg, &a, "account", &info, &err) == APP_OK);
    CHECK(info.accepted);
    CHECK_STREQ(info.key_name, "accountid");
    arena_cleanup(&a);
  }
  map_config_free(cfg);
  cfg = NULL;
  CHECK_MSG(map_config_load("tests/fixtures/mapping/full.json", lookup, &cfg, &err) == APP_OK, "%s",
            err.msg);
  map_config_free(cfg);
  cfg = NULL;

  CHECK(map_config_load("/nonexistent/mapping.json", lookup, &cfg, &err) == APP_ERR_IO);
  CHECK_STREQ(err.msg, "/nonexistent/mapping.json: cannot open: No such file or directory");
  CHECK(map_config_load(dir, lookup, &cfg, &err) == APP_ERR_IO);
  CHECK_CONTAINS(err.msg, "not a regular file");

  big = malloc(bign);
  memset(big, ' ', bign);
  memcpy(big, "{\"tables\":{\"*\":{}}}", 19);
  bigpath = write_temp(dir, "big.json", big, bign);
  CHECK(map_config_load(bigpath, lookup, &cfg, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "big.json: file is larger than 4194304 bytes");
  CHECK(map_config_parse(big, bign, "big.json", lookup, &cfg, &err) == APP_ERR_CONFIG);
  CHECK_STREQ(err.msg, "big.json: file is larger than 4194304 bytes");
  unlink(bigpath);
  free(bigpath);
  free(big);

  /* settings: no file configured and none in the app root -> defaults */
  settings.app_root = dir;
  settings.mapping_file = empty;
  CHECK(map_config_load_settings(&settings, lookup, &cfg, &err) == APP_OK);
  CHECK_STREQ(cfg ? map_config_source(cfg) : NULL, "built-in defaults");
  map_config_free(cfg);
  cfg = NULL;
  /* mapping.json in the app root is picked up */
  path = write_temp(dir, "mapping.json", "{\"tables\":{\"account\":{}}}", 25);
  CHECK(map_config_load_settings(&settings, lookup, &cfg, &err) == APP_OK);
  CHECK_STREQ(cfg ? map_config_source(cfg) : NULL, path);
  map_config_free(cfg);
  cfg = NULL;
  /* a relative CDC_MAPPING_FILE is resolved against the app root */
  settings.mapping_file = mapping_json;
  CHECK(map_config_load_settings(&settings, lookup, &cfg, &err) == APP_OK);
  CHECK_STREQ(cfg ? map_config_source(cfg) : NULL, path);
  map_config_free(cfg);
  cfg = NULL;
  /* a file named explicitly must exist */
  settings.mapping_file = other_json;
  CHECK(map_config_load_settings(&settings, lookup, &cfg, &err) == APP_ERR_IO);
  CHECK_CONTAINS(err.msg, "/other.json: cannot open: No such file or directory");
  /* errors in the file name it */
  unlink(path);
  free(path);
  path = write_temp(dir, "mapping.json", "{\"tables\":{\"account\":{\"kep\":1}}}", 33);
  settings.mapping_file = empty;
  CHECK(map_config_load_settings(&settings, lookup, &cfg, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "/mapping.json: tables.account: unknown key \"kep\"");
  unlink(path);
  free(path);
  rmdir(dir);
}

int main(void)
{
  test_bad_configs();
  test_good_configs();
  test_navigation();
  test_defaults();
  test_filters();
  test_bad_changes();
  test_inheritance();
  test_entity_sets();
  test_files();
  return check_report("test_mapping");
}

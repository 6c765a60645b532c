/* pipeline_harness.h - one fuzz input through body handling, decoding,
 * mapping and rendering, with the invariants checked (fuzz_pipeline.c runs
 * it under libFuzzer; tests/unit/test_golden.c runs every seed of
 * tests/fuzz/corpus/pipeline through it in make check).
 *
 * Input: one selector byte, then the message body.
 *   bits 0-2  content type (none, JSON, JSON with charset, text/plain,
 *             octet-stream, UTF-16 charset, msbin1, XML)
 *   bit 3     the MessageMaxSizeExceeded hint
 *   bits 4-5  mapping configuration: built-in defaults, the shipped
 *             function_app/mapping.json, a rich one (renames, keep/drop,
 *             hash and redact masks, date-only, lookups, required, message,
 *             relationship and echo filters), a restrictive one
 *   bits 6-7  annotations: all, none, formatted values only, all but
 *             lookuplogicalname
 *
 * Invariants (any violation aborts):
 *   - every failure is a poison class with a message (decode: INPUT, LIMIT,
 *     UNSUPPORTED; mapping: INPUT, LIMIT), never a crash or a leak;
 *   - an accepted document describes the decoded change (table, id,
 *     version, op), has no properties when it needs a re-read, and each
 *     property's JSON text parses back (json.h) to its kind, with its
 *     decoded text equal to doc_prop.text;
 *   - the rendering parses back as one JSON object whose first member is
 *     the etag of the version, whose key property holds the record id, with
 *     no member twice, one member per property (plus the key when the
 *     document does not list it) and, without annotations, no annotation.
 * The parsed configurations stay allocated (reachable) until
 * pipeline_harness_free. */
#ifndef D365CDC_PIPELINE_HARNESS_H
#define D365CDC_PIPELINE_HARNESS_H

#include "common/arena.h"
#include "common/buf.h"
#include "dataverse/dataverse.h"
#include "map/docjson.h"
#include "common/json.h"
#include "map/mapping.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PH_REQUIRE(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "invariant violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__);              \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static const char *const ph_content_types[8] = {
    NULL,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "application/json; charset=utf-16",
    "application/msbin1",
    "application/xml",
};

/* The shipped function_app/mapping.json, without its comments. */
static const char ph_shipped_json[] =
    "{\"version\":1,\"salt_setting\":\"CDC_HASH_SALT\",\"accept_tables\":\"*\",\"skip_tables\":[],"
    "\"echo_suppression\":{\"initiating_user_ids\":[],\"user_ids\":[],\"user_agent_contains\":[]},"
    "\"tables\":{\"*\":{\"keep\":\"*\",\"messages\":[\"Create\",\"Update\",\"Delete\","
    "\"Associate\",\"Disassociate\",\"SetState\",\"SetStateDynamicEntity\",\"Assign\",\"Merge\"],"
    "\"relationships\":\"*\",\"post_image\":\"full\",\"ttl_seconds\":0},"
    "\"activitypointer\":{\"primary_key\":\"activityid\"},"
    "\"task\":{\"primary_key\":\"activityid\"},\"email\":{\"primary_key\":\"activityid\"},"
    "\"appointment\":{\"primary_key\":\"activityid\"},\"phonecall\":{\"primary_key\":"
    "\"activityid\"}}}";

/* Every option (like tests/fixtures/golden/mapping_rich.json). */
static const char ph_rich_json[] =
    "{\"version\":1,\"salt_setting\":\"FUZZ_SALT\",\"skip_tables\":[\"audit\"],"
    "\"echo_suppression\":{\"initiating_user_ids\":[\"5e6f7a8b-9c7b-ef11-8a6a-000d3a4b5c6d\"],"
    "\"user_agent_contains\":[\"d365-cdc-writer\"]},"
    "\"tables\":{\"*\":{\"drop\":[\"modifiedonbehalfby\"],\"ttl_seconds\":86400,"
    "\"sql_table\":\"crm.{table}\"},"
    "\"account\":{\"drop\":[\"revenue_base\",\"processid\"],"
    "\"rename\":{\"name\":\"accountname\",\"telephone1\":\"phone\",\"ownerid\":\"owner\"},"
    "\"mask\":{\"accountnumber\":\"hash\",\"address1_city\":{\"redact\":\"[redacted]\"},"
    "\"creditonhold\":\"redact\",\"emailaddress1\":{\"redact\":null}},\"required\":[\"name\"],"
    "\"lookups\":[\"new_partnerid\"],\"date_only\":[\"new_foundedon\"],"
    "\"relationships\":[\"accountleads_association\"],\"sql_table\":\"dbo.account\"},"
    "\"contact\":{\"keep\":[\"fullname\",\"firstname\",\"lastname\",\"jobtitle\","
    "\"emailaddress1\",\"parentcustomerid\",\"birthdate\",\"statecode\",\"statuscode\"],"
    "\"mask\":{\"emailaddress1\":\"hash\",\"parentcustomerid\":\"hash\"},"
    "\"date_only\":[\"birthdate\"],\"required\":[\"fullname\"],"
    "\"messages\":[\"Create\",\"Update\",\"Delete\",\"SetStateDynamicEntity\"],"
    "\"post_image\":\"partial\"},"
    "\"opportunity\":{\"rename\":{\"closeprobability\":\"probability\"},"
    "\"mask\":{\"description\":\"hash\",\"new_discountpct\":\"redact\"},"
    "\"date_only\":[\"estimatedclosedate\",\"new_legacystart\"],"
    "\"lookups\":[\"new_primarycontactid\"],\"post_image\":\"ignore\"},"
    "\"task\":{\"primary_key\":\"activityid\",\"keep\":[\"subject\",\"statecode\","
    "\"statuscode\"]},\"lead\":{\"entity_set\":\"leadset\"}}}";

/* Few tables and messages: most changes are skipped. */
static const char ph_narrow_json[] =
    "{\"version\":1,\"accept_tables\":[\"account\",\"contact\"],"
    "\"tables\":{\"account\":{\"keep\":[\"name\",\"revenue\",\"ownerid\",\"statecode\"],"
    "\"messages\":[\"Create\",\"Update\",\"Upsert\",\"Assign\"]},"
    "\"contact\":{\"entity_set\":\"people\",\"messages\":[\"Delete\",\"Associate\"],"
    "\"relationships\":[\"contactleads_association\"],\"post_image\":\"partial\"}}}";

static const char *ph_lookup(const char *name)
{
  return strcmp(name, "FUZZ_SALT") == 0 ? "fuzz-salt-0123456789abcdef" : NULL;
}

/* Parsed once; reachable for the life of the process. */
static struct map_config *ph_configs[4];

static void ph_load_configs(void)
{
  static const char *const texts[4] = {NULL, ph_shipped_json, ph_rich_json, ph_narrow_json};
  struct app_err err;
  int i;
  if (ph_configs[0])
    return;
  for (i = 0; i < 4; i++) {
    enum app_result r = texts[i] ? map_config_parse(texts[i], strlen(texts[i]), "fuzz.json",
                                                    ph_lookup, &ph_configs[i], &err)
                                 : map_config_default(&ph_configs[i], &err);
    if (r != APP_OK) {
      fprintf(stderr, "fuzz_pipeline: config %d: %s\n", i, err.msg);
      abort();
    }
  }
}

static size_t ph_member_count(const struct json *obj, const char *key, size_t key_len)
{
  const struct json *c;
  size_t n = 0;
  for (c = obj->child; c; c = c->next)
    if (c->key_len == key_len && memcmp(c->key, key, key_len) == 0)
      n++;
  return n;
}

static void ph_check_prop(struct arena *a, const struct doc_prop *p)
{
  struct json *v = NULL;
  struct app_err err;
  size_t i;

  PH_REQUIRE(p->name && *p->name && p->column && p->json && p->json_len > 0);
  PH_REQUIRE(json_parse(a, p->json, p->json_len, 128, &v, &err) == APP_OK);
  switch (p->kind) {
  case DOC_NULL: PH_REQUIRE(v->type == JSON_NULL && p->text == NULL); break;
  case DOC_BOOL:
    PH_REQUIRE(v->type == JSON_TRUE || v->type == JSON_FALSE);
    PH_REQUIRE(p->text && p->text_len == p->json_len && !memcmp(p->text, p->json, p->json_len));
    break;
  case DOC_NUMBER:
    PH_REQUIRE(v->type == JSON_NUMBER);
    PH_REQUIRE(p->text && p->text_len == p->json_len && !memcmp(p->text, p->json, p->json_len));
    break;
  case DOC_STRING:
    /* what a sink stores as text is what a reader of the JSON gets */
    PH_REQUIRE(v->type == JSON_STRING);
    PH_REQUIRE(p->text && v->len == p->text_len && !memcmp(v->str, p->text, p->text_len));
    break;
  case DOC_ARRAY: PH_REQUIRE(v->type == JSON_ARRAY); break;
  case DOC_OBJECT: PH_REQUIRE(v->type == JSON_OBJECT); break;
  default: PH_REQUIRE(!"unknown doc_kind");
  }
  PH_REQUIRE((p->nann == 0) == (p->ann == NULL));
  for (i = 0; i < p->nann; i++) {
    struct json *av = NULL;
    PH_REQUIRE(p->ann[i].name && strchr(p->ann[i].name, '.'));
    PH_REQUIRE(json_parse(a, p->ann[i].json, p->ann[i].json_len, 8, &av, &err) == APP_OK);
    PH_REQUIRE(av->type == JSON_STRING);
  }
}

static void ph_check_render(struct arena *a, const struct doc *d, const struct buf *out, bool ann)
{
  struct json *root = NULL;
  struct app_err err;
  const struct json *m, *key;
  char etag[CDC_VERSION_TEXT_LEN + 8];
  size_t members = 0, i, expected;
  bool key_listed = false;

  PH_REQUIRE(json_parse(a, out->data, out->len, 256, &root, &err) == APP_OK);
  PH_REQUIRE(root->type == JSON_OBJECT && root->child);
  snprintf(etag, sizeof etag, "W/\"%s\"", d->version_text);
  PH_REQUIRE(!strcmp(root->child->key, "@odata.etag") && root->child->type == JSON_STRING &&
             !strcmp(root->child->str, etag));
  for (m = root->child; m; m = m->next) {
    PH_REQUIRE(ph_member_count(root, m->key, m->key_len) == 1);
    members++;
  }
  key = json_get(root, d->key_name);
  PH_REQUIRE(key && key->type == JSON_STRING && !strcmp(key->str, d->id));
  for (i = 0; i < d->nprops; i++)
    key_listed = key_listed || !strcmp(d->props[i].name, d->key_name);
  if (!ann) {
    expected = 1 + d->nprops + (key_listed ? 0 : 1);
    PH_REQUIRE(members == expected);
  } else {
    PH_REQUIRE(members >= 1 + d->nprops);
  }
}

static void pipeline_harness_run(const uint8_t *data, size_t size)
{
  static const struct cdc_change zero_change;
  struct dv_options opt = {1u << 20, 64, false};
  struct arena a;
  struct cdc_change ch;
  struct doc d;
  struct app_err err;
  enum map_verdict verdict = MAP_ACCEPT;
  enum app_result rc;
  unsigned sel;
  size_t i;

  if (size < 1)
    return;
  ph_load_configs();
  sel = data[0];
  opt.truncated_hint = (sel & 8) != 0;
  arena_init(&a, 64u << 20);
  memset(&err, 0, sizeof err);
  rc = dv_decode(&a, ph_content_types[sel & 7], (const char *)data + 1, size - 1, &opt, &ch, &err);
  if (rc != APP_OK) {
    PH_REQUIRE(rc == APP_ERR_INPUT || rc == APP_ERR_LIMIT || rc == APP_ERR_UNSUPPORTED);
    PH_REQUIRE(err.code == rc && err.msg[0] && memchr(err.msg, '\0', sizeof err.msg));
    PH_REQUIRE(!memcmp(&ch, &zero_change, sizeof ch));
    goto out;
  }
  memset(&err, 0, sizeof err);
  rc = map_change(ph_configs[(sel >> 4) & 3], &a, &ch, &verdict, &d, &err);
  if (rc != APP_OK) {
    PH_REQUIRE(rc == APP_ERR_INPUT || rc == APP_ERR_LIMIT);
    PH_REQUIRE(err.code == rc && err.msg[0] && memchr(err.msg, '\0', sizeof err.msg));
    goto out;
  }
  PH_REQUIRE(verdict >= MAP_ACCEPT && verdict <= MAP_SKIP_RELATIONSHIP);
  if (verdict != MAP_ACCEPT)
    goto out;

  /* the document describes the change */
  PH_REQUIRE(d.op == ch.op && d.table == ch.table && d.id == ch.id && d.origin == &ch.origin);
  PH_REQUIRE(cdc_version_cmp(&d.version, &ch.version) == 0);
  PH_REQUIRE(strlen(d.version_text) == CDC_VERSION_TEXT_LEN);
  PH_REQUIRE(d.entity_set && *d.entity_set && d.key_name && *d.key_name && d.sql_table);
  PH_REQUIRE(d.needs_reread == ch.needs_reread);
  if (d.needs_reread)
    PH_REQUIRE(d.nprops == 0 && d.nrelated == 0);
  if ((d.op == CDC_OP_ASSOCIATE || d.op == CDC_OP_DISASSOCIATE) && !d.needs_reread)
    PH_REQUIRE(d.relationship && *d.relationship);
  for (i = 0; i < d.nrelated; i++)
    PH_REQUIRE(d.related[i].table && d.related[i].entity_set && d.related[i].id);
  for (i = 0; i < d.nprops; i++)
    ph_check_prop(&a, &d.props[i]);

  /* the Web API rendering */
  {
    struct docjson_annotations f;
    struct docjson_opts o = {0};
    struct buf out;
    unsigned mode = sel >> 6;
    static const char *const prefer[4] = {"*", "", "OData.Community.Display.V1.FormattedValue",
                                          "*,-Microsoft.Dynamics.CRM.lookuplogicalname"};
    PH_REQUIRE(docjson_annotations_parse(&f, prefer[mode], strlen(prefer[mode]), &err) == APP_OK);
    o.annotations = &f;
    buf_init(&out, 0);
    PH_REQUIRE(docjson_render(&d, &o, &out, &err) == APP_OK);
    ph_check_render(&a, &d, &out, mode != 1);
    buf_cleanup(&out);
  }
out:
  arena_cleanup(&a);
}

static void pipeline_harness_free(void)
{
  int i;
  for (i = 0; i < 4; i++) {
    map_config_free(ph_configs[i]);
    ph_configs[i] = NULL;
  }
}

#endif

/* fuzz_mapping - libFuzzer over the mapping file parser, the rules it
 * builds (mapping and rendering a fixed change with them) and the Prefer
 * header parser.
 *
 * First byte: even -> the rest is a mapping file; odd -> a Prefer header. */
#include "common/arena.h"
#include "common/buf.h"
#include "map/docjson.h"
#include "map/mapping.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lookup(const char *name)
{
  return name[0] == 'S' ? "fuzz-salt-0123456789abcdef" : NULL;
}

static void map_one(const struct map_config *cfg)
{
  struct dv_value opts[2] = {{.kind = DV_OPTIONSET, .s = "1", .len = 1},
                             {.kind = DV_OPTIONSET, .s = "2", .len = 1}};
  struct dv_attr attrs[] = {
      {"name", {.kind = DV_STRING, .s = "Contoso", .len = 7}, "Contoso"},
      {"revenue", {.kind = DV_MONEY, .s = "2500000", .len = 7}, "$2,500,000.00"},
      {"ownerid",
       {.kind = DV_ENTITYREF,
        .ref = {.logical_name = "systemuser", .id = "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d"}},
       NULL},
      {"createdon", {.kind = DV_DATE, .date_ms = -315619200000}, NULL},
      {"new_regions", {.kind = DV_MULTISELECT, .items = opts, .nitems = 2}, "A; B"},
      {"parentaccountid", {.kind = DV_NULL}, NULL},
      {"emailaddress1", {.kind = DV_STRING, .s = "a@b.c", .len = 5}, NULL},
      {"accountid",
       {.kind = DV_STRING, .s = "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1", .len = 36},
       NULL},
  };
  struct dv_ref rel = {.logical_name = "lead", .id = "11111111-0000-0000-0000-000000000001"};
  static const enum cdc_op ops[] = {CDC_OP_CREATE, CDC_OP_UPDATE, CDC_OP_DELETE, CDC_OP_ASSOCIATE};
  struct arena a;
  struct buf b;
  struct docjson_annotations all;
  struct docjson_opts o = {0};
  size_t i;

  arena_init(&a, 1 << 20);
  buf_init(&b, 1 << 20);
  docjson_annotations_all(&all);
  o.annotations = &all;
  for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    struct cdc_change ch;
    struct doc d;
    struct app_err err;
    enum map_verdict v;
    memset(&ch, 0, sizeof ch);
    ch.op = ops[i];
    ch.table = "account";
    ch.id = "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1";
    ch.attrs = attrs;
    ch.nattrs = sizeof attrs / sizeof attrs[0];
    ch.full_row = ops[i] == CDC_OP_CREATE;
    ch.relationship = "accountleads_association";
    ch.related = &rel;
    ch.nrelated = 1;
    arena_reset(&a);
    if (map_change(cfg, &a, &ch, &v, &d, &err) == APP_OK && v == MAP_ACCEPT) {
      buf_reset(&b);
      (void)docjson_render(&d, &o, &b, &err);
    }
  }
  buf_cleanup(&b);
  arena_cleanup(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct app_err err;

  if (size < 1)
    return 0;
  if (data[0] % 2 == 0) {
    struct map_config *cfg = NULL;
    if (map_config_parse((const char *)data + 1, size - 1, "fuzz.json", lookup, &cfg, &err) ==
        APP_OK)
      map_one(cfg);
    map_config_free(cfg);
  } else {
    struct docjson_annotations f;
    if (docjson_annotations_from_prefer(&f, (const char *)data + 1, size - 1, &err) == APP_OK) {
      (void)docjson_annotation_included(&f, "OData.Community.Display.V1.FormattedValue");
      (void)docjson_annotation_included(&f, "Microsoft.Dynamics.CRM.lookuplogicalname");
    }
  }
  return 0;
}

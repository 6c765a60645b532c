/* fuzz_decode.c - libFuzzer target over dv_decode.
 *
 * Input: one selector byte, then the message body. The selector picks the
 * content type (and the MessageMaxSizeExceeded hint), so body sniffing,
 * unwrapping and every decode path are reachable. On success the whole
 * change is walked (dumped and checked against the invariants the mapper
 * relies on) so that AddressSanitizer sees every pointer; on failure the
 * result code must be one of the poison classes and *out must be zeroed.
 * Any violated invariant aborts, which libFuzzer reports as a crash. */
#include "common/arena.h"
#include "common/buf.h"
#include "dataverse/dataverse.h"
#include "../unit/dv_dump.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[8] = {
    NULL,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/msbin1",
    "application/json; charset=utf-16",
    "application/xml",
    NULL /* with truncated_hint */,
};

#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "invariant violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__);              \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static int guid_ok(const char *g)
{
  size_t i;
  if (!g || strlen(g) != 36)
    return 0;
  for (i = 0; i < 36; i++) {
    char c = g[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-')
        return 0;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return 0;
    }
  }
  return 1;
}

static void check_entity(const struct dv_entity *e, int depth);

static void check_value(const struct dv_value *v, int depth)
{
  size_t i;
  REQUIRE(depth < 4096);
  switch (v->kind) {
  case DV_NULL:
  case DV_BOOL: break;
  case DV_NUMBER:
  case DV_OPTIONSET:
  case DV_MONEY:
  case DV_RAW: REQUIRE(v->s && strlen(v->s) == v->len && v->len > 0); break;
  case DV_STRING: REQUIRE(v->s && v->s[v->len] == '\0'); break;
  case DV_DATE:
    REQUIRE(v->s && !strncmp(v->s, "/Date(", 6));
    REQUIRE(v->date_ms >= -62135596800000LL && v->date_ms <= 253402300799999LL);
    break;
  case DV_MULTISELECT:
    REQUIRE(v->nitems > 0);
    for (i = 0; i < v->nitems; i++)
      REQUIRE(v->items[i].kind == DV_OPTIONSET);
    break;
  case DV_ENTITYREFCOLLECTION:
    REQUIRE(v->nitems > 0);
    for (i = 0; i < v->nitems; i++)
      REQUIRE(v->items[i].kind == DV_ENTITYREF);
    break;
  case DV_ENTITYCOLLECTION:
    for (i = 0; i < v->nitems; i++)
      REQUIRE(v->items[i].kind == DV_ENTITY);
    break;
  case DV_ENTITYREF:
    REQUIRE(v->ref.logical_name && *v->ref.logical_name && guid_ok(v->ref.id));
    break;
  case DV_ENTITY: REQUIRE(v->entity); break;
  case DV_RELATIONSHIP: REQUIRE(v->s && v->role >= -1 && v->role <= 1); break;
  case DV_KVPAIR: REQUIRE(v->s); break;
  case DV_ALIASED: REQUIRE(v->nitems == 1); break;
  case DV_BOOLMANAGED:
  case DV_ARRAY: break;
  default: REQUIRE(!"unknown value kind");
  }
  REQUIRE((v->nitems == 0) == (v->items == NULL));
  for (i = 0; i < v->nitems; i++)
    check_value(&v->items[i], depth + 1);
  if (v->kind == DV_ENTITY)
    check_entity(v->entity, depth + 1);
}

static void check_attrs(const struct dv_attr *attrs, size_t n, int depth)
{
  size_t i;
  REQUIRE((n == 0) == (attrs == NULL));
  for (i = 0; i < n; i++) {
    REQUIRE(attrs[i].name);
    check_value(&attrs[i].value, depth);
  }
}

static void check_entity(const struct dv_entity *e, int depth)
{
  REQUIRE(!e->id || guid_ok(e->id));
  check_attrs(e->attrs, e->nattrs, depth + 1);
}

static void check_change(const struct cdc_change *c)
{
  uint32_t rank = c->op == CDC_OP_CREATE   ? 1
                  : c->op == CDC_OP_UPSERT ? 2
                  : c->op == CDC_OP_DELETE ? 7
                                           : 3;
  size_t i;

  REQUIRE(c->op >= CDC_OP_CREATE && c->op <= CDC_OP_OTHER);
  REQUIRE(c->message && *c->message);
  REQUIRE(!c->id || guid_ok(c->id));
  if (c->op != CDC_OP_OTHER) {
    REQUIRE(c->table && *c->table);
    REQUIRE(c->id && strcmp(c->id, "00000000-0000-0000-0000-000000000000") != 0);
  }
  REQUIRE(c->version.ts_ms == (c->op_time_ms < 0 ? 0 : c->op_time_ms));
  REQUIRE(c->version.tie >> 29 == rank);
  if (c->op == CDC_OP_CREATE)
    REQUIRE(c->version.row_version == 0);
  if (c->op == CDC_OP_DELETE)
    REQUIRE(c->version.row_version == UINT64_MAX);
  REQUIRE(!c->origin.operation_id || guid_ok(c->origin.operation_id));
  REQUIRE(c->version.tie == dv_version_tie(c->op, c->origin.operation_id));
  if (c->needs_reread)
    REQUIRE(!c->nattrs && !c->pre_image && !c->post_image && !c->nrelated && !c->full_row);
  if (c->full_row)
    REQUIRE(c->op == CDC_OP_CREATE);
  if ((c->op == CDC_OP_ASSOCIATE || c->op == CDC_OP_DISASSOCIATE) && !c->needs_reread)
    REQUIRE(c->relationship);
  else
    REQUIRE(!c->relationship && !c->nrelated && c->relationship_role == -1);
  if (c->op == CDC_OP_SETSTATE && !c->needs_reread)
    REQUIRE(c->nattrs == 2 && !strcmp(c->attrs[0].name, "statecode"));
  if (c->op == CDC_OP_ASSIGN && !c->needs_reread)
    REQUIRE(c->assignee && c->nattrs == 1 && !strcmp(c->attrs[0].name, "ownerid"));
  if (c->op == CDC_OP_MERGE && !c->needs_reread)
    REQUIRE(guid_ok(c->subordinate_id));
  for (i = 0; i < c->nrelated; i++)
    REQUIRE(guid_ok(c->related[i].id));
  check_attrs(c->attrs, c->nattrs, 0);
  if (c->pre_image)
    check_entity(c->pre_image, 0);
  if (c->post_image)
    check_entity(c->post_image, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const struct cdc_change zero;
  struct dv_options opt = {1u << 20, 64, false};
  struct arena a;
  struct cdc_change ch;
  struct app_err err;
  enum app_result rc;
  unsigned sel;

  if (size < 1)
    return 0;
  sel = data[0] & 7;
  opt.truncated_hint = sel == 7;
  arena_init(&a, 64u << 20);
  memset(&err, 0, sizeof err);
  rc = dv_decode(&a, content_types[sel], (const char *)data + 1, size - 1, &opt, &ch, &err);
  if (rc == APP_OK) {
    struct buf b;
    check_change(&ch);
    buf_init(&b, 0);
    dv_dump(&b, &ch);
    buf_cleanup(&b);
  } else {
    REQUIRE(rc == APP_ERR_INPUT || rc == APP_ERR_LIMIT || rc == APP_ERR_UNSUPPORTED);
    REQUIRE(err.code == rc && err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof err.msg));
    REQUIRE(!memcmp(&ch, &zero, sizeof ch));
  }
  arena_cleanup(&a);
  return 0;
}

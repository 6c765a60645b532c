/* dv_dump.h - a canonical text dump of a struct cdc_change (test helper).
 *
 * Every field of the change, its attributes, images and values, one line
 * each, in a fixed order. Two decodes of the same message in different
 * wrappings must give byte-identical dumps; the fuzzer dumps every change it
 * gets so that every pointer is touched under AddressSanitizer. */
#ifndef D365CDC_DV_DUMP_H
#define D365CDC_DV_DUMP_H

#include "common/buf.h"
#include "dataverse/change.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dd_fmt(struct buf *b, const char *fmt, ...) APP_PRINTF(2, 3);

static void dd_fmt(struct buf *b, const char *fmt, ...)
{
  char tmp[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp || buf_append(b, tmp, (size_t)n) != APP_OK)
    abort();
}

static void dd_str(struct buf *b, const char *s, size_t n)
{
  if (!s) {
    dd_fmt(b, "(null)");
    return;
  }
  if (buf_append_json_str(b, s, n) != APP_OK)
    abort();
}

static void dd_cstr(struct buf *b, const char *s)
{
  dd_str(b, s, s ? strlen(s) : 0);
}

static void dd_indent(struct buf *b, int depth)
{
  int i;
  for (i = 0; i < depth; i++)
    dd_fmt(b, "  ");
}

static void dd_entity(struct buf *b, const struct dv_entity *e, int depth);

static void dd_ref(struct buf *b, const struct dv_ref *r)
{
  size_t i;
  dd_fmt(b, "ref ");
  dd_cstr(b, r->logical_name);
  dd_fmt(b, " ");
  dd_cstr(b, r->id);
  dd_fmt(b, " name=");
  dd_cstr(b, r->name);
  dd_fmt(b, " rv=");
  dd_cstr(b, r->row_version);
  for (i = 0; i < r->nkeys; i++) {
    dd_fmt(b, " key:");
    dd_cstr(b, r->keys[i].key);
    dd_fmt(b, "=");
    dd_cstr(b, r->keys[i].value);
  }
}

static void dd_value(struct buf *b, const struct dv_value *v, int depth)
{
  size_t i;
  switch (v->kind) {
  case DV_NULL: dd_fmt(b, "null"); break;
  case DV_BOOL: dd_fmt(b, "bool %s", v->b ? "true" : "false"); break;
  case DV_NUMBER: dd_fmt(b, "number %s", v->s); break;
  case DV_STRING:
    dd_fmt(b, "string ");
    dd_str(b, v->s, v->len);
    break;
  case DV_DATE:
    dd_fmt(b, "date %" PRId64 "%s", v->date_ms, v->date_has_offset ? " +offset" : "");
    break;
  case DV_OPTIONSET: dd_fmt(b, "optionset %s", v->s); break;
  case DV_MONEY: dd_fmt(b, "money %s", v->s); break;
  case DV_MULTISELECT:
    dd_fmt(b, "multiselect [");
    for (i = 0; i < v->nitems; i++)
      dd_fmt(b, "%s%s", i ? "," : "", v->items[i].s);
    dd_fmt(b, "]");
    break;
  case DV_ENTITYREF: dd_ref(b, &v->ref); break;
  case DV_ENTITY:
    dd_fmt(b, "entity\n");
    dd_entity(b, v->entity, depth + 1);
    return;
  case DV_ENTITYCOLLECTION:
  case DV_ENTITYREFCOLLECTION:
  case DV_ARRAY:
    dd_fmt(b, "%s",
           v->kind == DV_ARRAY                 ? "array"
           : v->kind == DV_ENTITYREFCOLLECTION ? "refcollection"
                                               : "entitycollection");
    if (v->kind == DV_ENTITYCOLLECTION) {
      dd_fmt(b, " name=");
      dd_cstr(b, v->s);
    }
    dd_fmt(b, " (%zu)\n", v->nitems);
    for (i = 0; i < v->nitems; i++) {
      dd_indent(b, depth + 1);
      dd_fmt(b, "[%zu] ", i);
      dd_value(b, &v->items[i], depth + 1);
    }
    return;
  case DV_RELATIONSHIP:
    dd_fmt(b, "relationship ");
    dd_cstr(b, v->s);
    dd_fmt(b, " role=%d", v->role);
    break;
  case DV_KVPAIR:
    dd_fmt(b, "kvpair ");
    dd_cstr(b, v->s);
    dd_fmt(b, "=");
    dd_cstr(b, v->s2);
    break;
  case DV_ALIASED:
    dd_fmt(b, "aliased ");
    dd_cstr(b, v->s2);
    dd_fmt(b, ".");
    dd_cstr(b, v->s);
    dd_fmt(b, " = ");
    dd_value(b, &v->items[0], depth);
    return;
  case DV_BOOLMANAGED:
    dd_fmt(b, "boolmanaged %s ", v->b ? "true" : "false");
    dd_cstr(b, v->s);
    break;
  case DV_RAW:
    dd_fmt(b, "raw ");
    if (buf_append(b, v->s, v->len) != APP_OK)
      abort();
    break;
  }
  dd_fmt(b, "\n");
}

static void dd_attrs(struct buf *b, const struct dv_attr *attrs, size_t n, int depth)
{
  size_t i;
  for (i = 0; i < n; i++) {
    dd_indent(b, depth);
    dd_cstr(b, attrs[i].name);
    if (attrs[i].formatted) {
      dd_fmt(b, " [");
      dd_cstr(b, attrs[i].formatted);
      dd_fmt(b, "]");
    }
    dd_fmt(b, " = ");
    dd_value(b, &attrs[i].value, depth);
  }
}

static void dd_entity(struct buf *b, const struct dv_entity *e, int depth)
{
  size_t i;
  dd_indent(b, depth);
  dd_fmt(b, "logical_name=");
  dd_cstr(b, e->logical_name);
  dd_fmt(b, " id=");
  dd_cstr(b, e->id);
  dd_fmt(b, " rv=");
  dd_cstr(b, e->row_version);
  for (i = 0; i < e->nkeys; i++) {
    dd_fmt(b, " key:");
    dd_cstr(b, e->keys[i].key);
    dd_fmt(b, "=");
    dd_cstr(b, e->keys[i].value);
  }
  dd_fmt(b, " attrs=%zu\n", e->nattrs);
  dd_attrs(b, e->attrs, e->nattrs, depth + 1);
}

/* The head of the change: what a truncated decode must reproduce too. */
static void dv_dump_head(struct buf *b, const struct cdc_change *c)
{
  const struct cdc_origin *o = &c->origin;
  char vt[CDC_VERSION_TEXT_LEN + 1];

  cdc_version_text(&c->version, vt);
  dd_fmt(b, "op=%s message=", cdc_op_name(c->op));
  dd_cstr(b, c->message);
  dd_fmt(b, " table=");
  dd_cstr(b, c->table);
  dd_fmt(b, " id=");
  dd_cstr(b, c->id);
  dd_fmt(b, "\nversion=%s op_time_ms=%" PRId64 "\n", vt, c->op_time_ms);
  dd_fmt(b, "origin message_id=");
  dd_cstr(b, o->message_id);
  dd_fmt(b, " correlation=");
  dd_cstr(b, o->correlation_id);
  dd_fmt(b, " operation=");
  dd_cstr(b, o->operation_id);
  dd_fmt(b, " request=");
  dd_cstr(b, o->request_id);
  dd_fmt(b, "\norigin initiating_user=");
  dd_cstr(b, o->initiating_user_id);
  dd_fmt(b, " user=");
  dd_cstr(b, o->user_id);
  dd_fmt(b, " agent=");
  dd_cstr(b, o->initiating_user_agent);
  dd_fmt(b, "\norigin business_unit=");
  dd_cstr(b, o->business_unit_id);
  dd_fmt(b, " organization=");
  dd_cstr(b, o->organization_id);
  dd_fmt(b, " organization_name=");
  dd_cstr(b, o->organization_name);
  dd_fmt(b, "\norigin owning_extension=");
  dd_cstr(b, o->owning_extension_id);
  dd_fmt(b, " depth=%d stage=%d mode=%d\n", o->depth, o->stage, o->mode);
}

/* Everything. */
static void dv_dump(struct buf *b, const struct cdc_change *c)
{
  size_t i;
  dv_dump_head(b, c);
  dd_fmt(b, "full_row=%d needs_reread=%d\n", c->full_row, c->needs_reread);
  dd_fmt(b, "relationship=");
  dd_cstr(b, c->relationship);
  dd_fmt(b, " role=%d related=%zu\n", c->relationship_role, c->nrelated);
  for (i = 0; i < c->nrelated; i++) {
    dd_fmt(b, "  ");
    dd_ref(b, &c->related[i]);
    dd_fmt(b, "\n");
  }
  dd_fmt(b, "subordinate_id=");
  dd_cstr(b, c->subordinate_id);
  dd_fmt(b, "\nassignee=");
  if (c->assignee)
    dd_ref(b, c->assignee);
  else
    dd_fmt(b, "(null)");
  dd_fmt(b, "\nattrs=%zu\n", c->nattrs);
  dd_attrs(b, c->attrs, c->nattrs, 1);
  dd_fmt(b, "post_image=%s\n", c->post_image ? "" : "(null)");
  if (c->post_image)
    dd_entity(b, c->post_image, 1);
  dd_fmt(b, "pre_image=%s\n", c->pre_image ? "" : "(null)");
  if (c->pre_image)
    dd_entity(b, c->pre_image, 1);
}

#endif

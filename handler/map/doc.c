/* doc.c - deep copies of mapped documents. */
#include "map/doc.h"

#include <string.h>

/* Strings go after the arrays in one block, packed without alignment. */
struct packer {
  char *p;  /* next free byte (NULL while sizing) */
  size_t n; /* bytes needed so far */
};

static const char *put(struct packer *k, const char *s, size_t len)
{
  char *d;
  if (!s)
    return NULL;
  k->n += len + 1;
  if (!k->p)
    return s;
  d = k->p;
  memcpy(d, s, len);
  d[len] = '\0';
  k->p += len + 1;
  return d;
}

static const char *put_str(struct packer *k, const char *s)
{
  return s ? put(k, s, strlen(s)) : NULL;
}

/* One pass over everything src points to: with k->p NULL it only counts
 * the string bytes, otherwise it copies them and fills *d. */
static void walk(struct packer *k, const struct doc *src, struct doc *d, struct doc_prop *props,
                 struct doc_annotation *anns, struct doc_related *rel, struct cdc_origin *org)
{
  size_t i, j;

  d->table = put_str(k, src->table);
  d->entity_set = put_str(k, src->entity_set);
  d->key_name = put_str(k, src->key_name);
  d->id = put_str(k, src->id);
  d->relationship = put_str(k, src->relationship);
  d->subordinate_id = put_str(k, src->subordinate_id);
  d->sql_table = put_str(k, src->sql_table);
  for (i = 0; i < src->nprops; i++) {
    const struct doc_prop *sp = &src->props[i];
    struct doc_prop tmp, *dp = props ? &props[i] : &tmp;
    *dp = *sp;
    dp->name = put_str(k, sp->name);
    dp->column = put_str(k, sp->column);
    dp->json = put(k, sp->json, sp->json_len);
    /* numbers and booleans use the same text for both */
    if (sp->text == sp->json && sp->text_len == sp->json_len)
      dp->text = dp->json;
    else
      dp->text = put(k, sp->text, sp->text_len);
    if (anns) {
      dp->ann = sp->nann ? anns : NULL;
      for (j = 0; j < sp->nann; j++) {
        anns[j].name = put_str(k, sp->ann[j].name);
        anns[j].json = put(k, sp->ann[j].json, sp->ann[j].json_len);
        anns[j].json_len = sp->ann[j].json_len;
      }
      anns += sp->nann;
    } else {
      for (j = 0; j < sp->nann; j++) {
        put_str(k, sp->ann[j].name);
        put(k, sp->ann[j].json, sp->ann[j].json_len);
      }
    }
  }
  for (i = 0; i < src->nrelated; i++) {
    struct doc_related tmp, *dr = rel ? &rel[i] : &tmp;
    dr->table = put_str(k, src->related[i].table);
    dr->entity_set = put_str(k, src->related[i].entity_set);
    dr->id = put_str(k, src->related[i].id);
  }
  if (src->origin) {
    const struct cdc_origin *so = src->origin;
    struct cdc_origin tmp, *o = org ? org : &tmp;
    *o = *so;
    o->message_id = put_str(k, so->message_id);
    o->correlation_id = put_str(k, so->correlation_id);
    o->operation_id = put_str(k, so->operation_id);
    o->request_id = put_str(k, so->request_id);
    o->initiating_user_id = put_str(k, so->initiating_user_id);
    o->user_id = put_str(k, so->user_id);
    o->initiating_user_agent = put_str(k, so->initiating_user_agent);
    o->business_unit_id = put_str(k, so->business_unit_id);
    o->organization_id = put_str(k, so->organization_id);
    o->organization_name = put_str(k, so->organization_name);
    o->owning_extension_id = put_str(k, so->owning_extension_id);
  }
}

enum app_result doc_clone(struct arena *a, const struct doc *src, struct doc *out)
{
  struct packer k = {NULL, 0};
  struct doc d = *src, scratch;
  size_t i, nann = 0, arrays;
  char *block;
  struct doc_prop *props;
  struct doc_annotation *anns;
  struct doc_related *rel;
  struct cdc_origin *org;

  for (i = 0; i < src->nprops; i++)
    nann += src->props[i].nann;
  /* sizes of the arrays are multiples of the pointer size: the strings
   * that follow need no alignment */
  arrays = src->nprops * sizeof *props + nann * sizeof *anns + src->nrelated * sizeof *rel +
           (src->origin ? sizeof *org : 0);
  scratch = *src;
  walk(&k, src, &scratch, NULL, NULL, NULL, NULL);
  block = arena_alloc(a, arrays + k.n + 1);
  if (!block)
    return APP_ERR_LIMIT;
  props = src->nprops ? (struct doc_prop *)(void *)block : NULL;
  anns = nann ? (struct doc_annotation *)(void *)(block + src->nprops * sizeof *props) : NULL;
  rel = src->nrelated ? (struct doc_related *)(void *)(block + src->nprops * sizeof *props +
                                                       nann * sizeof *anns)
                      : NULL;
  org = src->origin ? (struct cdc_origin *)(void *)(block + arrays - sizeof *org) : NULL;
  k.p = block + arrays;
  k.n = 0;
  walk(&k, src, &d, props, anns, rel, org);
  d.props = props;
  d.related = rel;
  d.origin = org;
  *out = d;
  return APP_OK;
}

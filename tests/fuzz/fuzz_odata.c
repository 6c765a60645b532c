/* fuzz_odata - libFuzzer over the read API's request parser and the
 * answers rendered for what it accepted.
 *
 * Input: newline-separated fields, as an app's request gives them to the
 * read API: method, path, query, Prefer, If-None-Match, base URL (missing
 * fields are absent headers / no query). Invariants checked (abort on
 * violation):
 *   - accepted: a known kind, a non-empty entity set, a lower-case GUID,
 *     non-empty $select names; $expand only on a record, at most
 *     ODATA_MAX_EXPAND distinct non-empty names with non-empty nested
 *     $select names; every rendered answer (record, record with its
 *     expansions, related list, property) is valid JSON by our own parser;
 *   - refused: a status the read API answers (400/404/405/500/501), a
 *     message, an error body that is valid JSON. */
#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "read/odata.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 6
#define S(lit)  lit, sizeof(lit) - 1

static void must_be_json(struct arena *a, const struct buf *b)
{
  struct json *root;
  struct app_err err;
  if (json_parse(a, b->data ? b->data : "", b->len, 64, &root, &err) != APP_OK)
    abort();
}

static void render_accepted(struct arena *a, const struct odata_request *r)
{
  static const struct doc_annotation ann[] = {
      {"OData.Community.Display.V1.FormattedValue", S("\"$2,500,000.00\"")},
      {"Microsoft.Dynamics.CRM.lookuplogicalname", S("\"systemuser\"")}};
  struct odata_prop props[3] = {
      {"name", S("\"Contoso \\\"HQ\\\"\""), NULL, 0},
      {"revenue", S("2500000.0000000000"), ann, 1},
      {"_ownerid_value", S("\"1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d\""), ann + 1, 1},
  };
  static const char ver[] = "001731139507412000000000000000000001800514812";
  struct buf b;
  size_t i;

  if (r->kind != ODATA_RECORD && r->kind != ODATA_RELATED && r->kind != ODATA_LIST)
    abort();
  if (!r->entity_set || !*r->entity_set)
    abort();
  if (r->kind == ODATA_LIST) {
    /* a list: at least one condition, each a name and a canonical value */
    if (!r->nfilter || r->nfilter > ODATA_MAX_FILTER || r->id || r->expand || r->top < 0 ||
        r->top > ODATA_MAX_TOP || r->maxpagesize < 0 || r->maxpagesize > ODATA_MAX_TOP)
      abort();
    for (i = 0; i < r->nfilter; i++)
      if (!*r->filter[i].prop || !r->filter[i].canon_len ||
          (r->filter[i].canon[0] != 's' && r->filter[i].canon[0] != 'n'))
        abort();
    buf_init(&b, 1 << 20);
    if (odata_render_list_open(r, r->entity_set, 3, &b) == APP_OK &&
        odata_render_record(r, r->entity_set, "contactid", "c", ver, props, 3, false, &b) ==
            APP_OK &&
        odata_render_list_close(r, r->entity_set, "v1f00", &b) == APP_OK)
      must_be_json(a, &b);
    buf_cleanup(&b);
    return;
  }
  if (r->key) {
    /* an alternate key: the read API resolves the id */
    if (r->id || !r->nkey || r->nkey > ODATA_MAX_KEY_PARTS)
      abort();
    for (i = 0; i < r->nkey; i++)
      if (!*r->key[i].name || !r->key[i].canon_len ||
          (r->key[i].canon[0] != 's' && r->key[i].canon[0] != 'n'))
        abort();
    return;
  }
  if (!r->id || !odata_is_guid(r->id, strlen(r->id)))
    abort();
  for (i = 0; r->id[i]; i++)
    if (r->id[i] >= 'A' && r->id[i] <= 'F')
      abort();
  if (r->kind == ODATA_RELATED && (!r->navigation || !*r->navigation))
    abort();
  for (i = 0; i < r->nselect; i++)
    if (!r->select || !r->select[i] || !*r->select[i])
      abort();
  if (r->nexpand > ODATA_MAX_EXPAND || (r->nexpand && (!r->expand || r->kind != ODATA_RECORD)))
    abort();
  for (i = 0; i < r->nexpand; i++) {
    size_t k;
    if (!r->expand[i].name || !*r->expand[i].name)
      abort();
    for (k = 0; k < i; k++)
      if (!strcmp(r->expand[k].name, r->expand[i].name))
        abort();
    for (k = 0; k < r->expand[i].nselect; k++)
      if (!r->expand[i].select || !r->expand[i].select[k] || !*r->expand[i].select[k])
        abort();
  }
  (void)odata_etag_matches(r, ver);
  (void)odata_annotation_wanted(r, ann[0].name);

  buf_init(&b, 1 << 20);
  if (odata_render_record(r, r->entity_set, "accountid", r->id, ver, props, 3, true, &b) == APP_OK)
    must_be_json(a, &b);
  buf_reset(&b);
  {
    /* the record with its expansions: every other one null */
    enum app_result res =
        odata_render_record_open(r, r->entity_set, "accountid", r->id, ver, props, 3, true, &b);
    for (i = 0; res == APP_OK && i < r->nexpand; i++) {
      struct odata_request sub = *r;
      sub.select = r->expand[i].select;
      sub.nselect = r->expand[i].nselect;
      sub.expand = NULL;
      sub.nexpand = 0;
      res = i % 2 ? odata_render_expanded(&sub, r->expand[i].name, "contactid", NULL, NULL, NULL, 0,
                                          &b)
                  : odata_render_expanded(&sub, r->expand[i].name, "contactid", r->id, ver, props,
                                          3, &b);
    }
    if (res == APP_OK && buf_append_char(&b, '}') == APP_OK)
      must_be_json(a, &b);
  }
  buf_reset(&b);
  if (odata_render_list_begin(r, "leads", &b) == APP_OK &&
      odata_render_record(r, "leads", "leadid", r->id, ver, props, 3, false, &b) == APP_OK &&
      odata_render_list_end(&b) == APP_OK)
    must_be_json(a, &b);
  buf_reset(&b);
  if (odata_render_property(r, r->entity_set, r->id, r->navigation ? r->navigation : "name",
                            props[0].json, props[0].json_len, &b) == APP_OK)
    must_be_json(a, &b);
  buf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text, *f[NFIELDS] = {0}, *p;
  struct arena a;
  struct odata_request r;
  struct odata_error e;
  struct buf b;
  size_t n = 0;
  enum app_result res;

  text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  for (p = text; n < NFIELDS; n++) {
    char *nl = strchr(p, '\n');
    f[n] = p;
    if (!nl)
      break;
    *nl = '\0';
    p = nl + 1;
  }
  arena_init(&a, 1 << 20);
  memset(&e, 0, sizeof e);
  res = odata_parse(&a, f[0] ? f[0] : "GET", f[1] ? f[1] : "", f[2], f[3], f[4], f[5] ? f[5] : "",
                    &r, &e);
  if (res == APP_OK) {
    render_accepted(&a, &r);
  } else {
    if (e.status != 400 && e.status != 404 && e.status != 405 && e.status != 500 && e.status != 501)
      abort();
    if (!e.code || !e.message[0])
      abort(); /* every refusal explains itself */
    buf_init(&b, 1 << 16);
    if (odata_render_error(&e, &b) != APP_OK)
      abort();
    must_be_json(&a, &b);
    buf_cleanup(&b);
  }
  arena_cleanup(&a);
  free(text);
  return 0;
}

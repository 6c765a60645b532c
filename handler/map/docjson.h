/* docjson.h - render a document as the JSON the Dataverse Web API returns.
 *
 *   {"@odata.etag":"W/\"<version_text>\"","accountid":"...",
 *    "name":"Contoso",
 *    "revenue@OData.Community.Display.V1.FormattedValue":"$2,500,000.00",
 *    "revenue":2500000,
 *    "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"systemuser",
 *    "_ownerid_value":"1a2b..."}
 *
 * Values are written from doc_prop.json unchanged (exact number lexemes).
 * Annotations come right before their property, as the Web API writes
 * them, and only those the filter lets through (Prefer:
 * odata.include-annotations). The key property is always written, first
 * when the document does not list it (Delete). Associate/Disassociate
 * documents render as their record (etag and key): the relationship is not
 * part of the record's JSON. */
#ifndef D365CDC_DOCJSON_H
#define D365CDC_DOCJSON_H

#include "common/buf.h"
#include "map/doc.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

#define DOCJSON_MAX_PATTERNS 16

/* One entry of an include-annotations list: "*", "ns.*", "ns.term", each
 * optionally prefixed with "-" to exclude. */
struct docjson_pattern {
  const char *s; /* borrowed from the parsed text; without '-' and without ".*" */
  size_t len;
  bool exclude;
  bool wildcard; /* "*" (len 0) or "ns.*" */
};

/* Which annotations to write. Zero-initialised: none. */
struct docjson_annotations {
  struct docjson_pattern p[DOCJSON_MAX_PATTERNS];
  size_t n;
};

/* Every annotation ("*"). */
void docjson_annotations_all(struct docjson_annotations *f);

/* Parse an include-annotations value: `*`, `-*`,
 * `OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*`,
 * with or without the surrounding double quotes. The most specific pattern
 * wins (a term over its namespace over "*"); between equally specific
 * patterns exclusion wins; no match means excluded. An empty value means
 * none. Patterns point into text: keep it alive while *out is used.
 * Returns APP_OK or APP_ERR_INPUT (a malformed pattern or more than
 * DOCJSON_MAX_PATTERNS; err names it). */
APP_NODISCARD enum app_result docjson_annotations_parse(struct docjson_annotations *out,
                                                        const char *text, size_t len,
                                                        struct app_err *err);

/* Find odata.include-annotations in a Prefer header value (preferences
 * separated by commas, names case-insensitive, quoted values may hold
 * commas; several Prefer headers joined with ", " work too) and parse it.
 * Without that preference *out is "none". Same results as
 * docjson_annotations_parse. */
APP_NODISCARD enum app_result docjson_annotations_from_prefer(struct docjson_annotations *out,
                                                              const char *prefer, size_t len,
                                                              struct app_err *err);

/* Does the filter let the annotation (name without '@') through? */
bool docjson_annotation_included(const struct docjson_annotations *f, const char *name);

struct docjson_opts {
  const struct docjson_annotations *annotations; /* NULL: none */
  bool no_etag;                                  /* leave "@odata.etag" out */
  /* $select: output property names to write (the key is always written);
   * NULL/0: every property. */
  const char *const *select;
  size_t nselect;
};

/* Append the JSON of d to out. opts may be NULL (etag, no annotations,
 * every property). Returns APP_OK, or APP_ERR_LIMIT/APP_ERR_NOMEM when out
 * cannot grow (err says so; out then holds a partial document). */
APP_NODISCARD enum app_result docjson_render(const struct doc *d, const struct docjson_opts *opts,
                                             struct buf *out, struct app_err *err);

#endif

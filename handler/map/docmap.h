/* docmap.h - turn one canonical change into a Web API-shaped document.
 *
 * Pure: no I/O, no globals, no locks. The rules come from the mapping
 * configuration (mapping.h builds a struct docmap_rules per table); this
 * module applies them to a struct cdc_change and fills a struct doc.
 *
 * Value shapes (docs/mapping.md has the full table):
 *   string                 "text" (JSON-escaped), type GUID when it looks like one
 *   int / BigInt / decimal the lexeme as sent (9007199254740993, 1.0000000000)
 *   Money, OptionSetValue  the lexeme of Value
 *   multi-select           "100000000,100000002" (null when null or cleared: a
 *                          column holding an empty array [] is a cleared multi-select)
 *   date                   "2024-11-08T08:05:06Z"; ".123" only when the ms are not 0;
 *                          "2024-12-31" for date-only columns
 *   EntityReference        property "_<name>_value" = GUID, annotations
 *                          Microsoft.Dynamics.CRM.lookuplogicalname and (when the
 *                          reference has a Name or FormattedValues one)
 *                          OData.Community.Display.V1.FormattedValue
 *   anything else          kept as JSON (never dropped)
 *
 * Memory: everything the document points to is either allocated in the
 * arena passed in or borrowed from the change (number lexemes, decoded
 * strings), so the change must outlive the document. Both normally live in
 * the arena of one invocation. */
#ifndef D365CDC_DOCMAP_H
#define D365CDC_DOCMAP_H

#include "common/arena.h"
#include "map/doc.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOCMAP_ANN_FORMATTED "OData.Community.Display.V1.FormattedValue"
#define DOCMAP_ANN_LOOKUP    "Microsoft.Dynamics.CRM.lookuplogicalname"

/* Longest logical name of a related record (as mapping.h MAP_MAX_NAME). */
#define DOCMAP_MAX_NAME 128
/* Nesting of Entity/array values rendered as JSON; deeper is poison. */
#define DOCMAP_MAX_DEPTH 32
/* Largest JSON text built for one composite value (arrays, entities). */
#define DOCMAP_MAX_VALUE_BYTES (64u * 1024u * 1024u)

enum docmap_mask { DOCMAP_MASK_NONE = 0, DOCMAP_MASK_HASH, DOCMAP_MASK_REDACT };

/* How a registered post image is used (mapping option "post_image"). */
enum docmap_image {
  /* the default: an image may have been registered with selected columns
   * only, and treating it as the whole row would let sinks clear the others */
  DOCMAP_IMAGE_PARTIAL = 0, /* the image holds some columns: merge them, full_row unchanged */
  DOCMAP_IMAGE_FULL,        /* the image holds every column: merge it, full_row = true */
  DOCMAP_IMAGE_IGNORE       /* do not use post images */
};

/* docmap_column.flags */
#define DOCMAP_COL_KEEP      0x01u /* listed in "keep" */
#define DOCMAP_COL_DROP      0x02u /* listed in "drop" */
#define DOCMAP_COL_REQUIRED  0x04u /* listed in "required" */
#define DOCMAP_COL_DATE_ONLY 0x08u /* listed in "date_only": rendered YYYY-MM-DD */
#define DOCMAP_COL_LOOKUP    0x10u /* listed in "lookups": a null is "_<name>_value": null */

/* The rules for one source column (logical name). */
struct docmap_column {
  const char *name; /* logical name, e.g. "emailaddress1" */
  unsigned flags;   /* DOCMAP_COL_* */
  enum docmap_mask mask;
  const char *redact_text; /* REDACT: replacement string, or NULL for null */
  const char *rename;      /* output property name, or NULL for the Web API name */
};

/* Everything docmap needs to know about one table. Strings are borrowed
 * (the mapping configuration or the caller's arena). */
struct docmap_rules {
  const char *entity_set; /* Web API entity set of this table, e.g. "accounts" */
  const char *key_name;   /* primary key column and property, e.g. "accountid" */
  const char *sql_table;  /* SQL table name for SQL sinks */
  int64_t ttl_seconds;    /* 0: no expiry */
  bool keep_all;          /* "keep": "*" (else only DOCMAP_COL_KEEP columns and the key) */
  enum docmap_image post_image;
  const struct docmap_column *cols; /* sorted by name (strcmp), no duplicates */
  size_t ncols;
  const struct doc_altkey *altkeys; /* "keys" (alternate keys), copied into each doc */
  size_t naltkeys;
  const unsigned char *salt; /* for DOCMAP_MASK_HASH; never logged */
  size_t salt_len;
  /* Entity set of another table (Associate/Disassociate targets); returns
   * a string that lives at least as long as the arena, or NULL when out of
   * arena memory. */
  const char *(*entity_set_of)(const void *ctx, const char *table, struct arena *a);
  const void *ctx;
};

/* Map *ch into *out following *r. The verdict (table, message, echo and
 * relationship filters) is the caller's job (map_change); this function
 * only builds the document and validates it.
 *
 * Create/Update/Upsert/SetState/Assign/Merge: one property per kept column in
 * message order; with a post image (r->post_image != IGNORE) the image value
 * wins for every column it has and image-only columns follow the change's
 * columns. The primary key property is always present (prepended when the
 * message lacks it). Delete: no properties. Associate/Disassociate: no
 * properties, relationship and related[] with entity sets. A change whose
 * context was truncated (needs_reread) gets no properties.
 *
 * Returns:
 *   APP_OK          *out is filled
 *   APP_ERR_INPUT   the change cannot be applied (poison): a required column is
 *                   missing from a full row or null, the key column does not
 *                   match the record id, a column appears twice, two columns
 *                   map to one property name, a date is outside years
 *                   0001-9999, a value is malformed or nested deeper than
 *                   DOCMAP_MAX_DEPTH, a written column name is not a logical
 *                   name ([a-z][a-z0-9_]*, at most DOCMAP_MAX_NAME bytes);
 *                   err names the table, record and column
 *   APP_ERR_LIMIT   the arena ceiling or DOCMAP_MAX_VALUE_BYTES was reached
 *   APP_ERR_NOMEM   OpenSSL could not hash (its error text is in err) */
APP_NODISCARD enum app_result docmap_build(const struct docmap_rules *r, struct arena *a,
                                           const struct cdc_change *ch, struct doc *out,
                                           struct app_err *err);

/* Write ms since the Unix epoch (negative before 1970) as
 * "YYYY-MM-DDTHH:MM:SSZ" (".mmm" before the Z when ms % 1000 != 0), or as
 * "YYYY-MM-DD" when date_only. out needs DOCMAP_DATE_MAX bytes. Returns the
 * length, or 0 when the date is outside years 0001-9999 (out is then ""). */
#define DOCMAP_DATE_MAX 32
size_t docmap_format_date(int64_t ms, bool date_only, char *out);

#endif

/* doc.h - a mapped change: the document a sink writes.
 *
 * The mapper (mapping.h) produces one struct doc per accepted change, shaped
 * like the Dataverse Web API: property names as the Web API spells them
 * ("name", "_ownerid_value"), values as exact JSON text, annotations
 * ("OData.Community.Display.V1.FormattedValue",
 * "Microsoft.Dynamics.CRM.lookuplogicalname") kept next to their property.
 *
 * Each property is also the unit of versioning: a sink keeps, per record and
 * property, the version of the change that last wrote it (per-column
 * last-writer-wins, docs/versioning.md).
 *
 * All memory belongs to the arena of the invocation. */
#ifndef D365CDC_DOC_H
#define D365CDC_DOC_H

#include "common/arena.h"
#include "dataverse/change.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JSON kind of a property value. */
enum doc_kind { DOC_NULL = 0, DOC_BOOL, DOC_NUMBER, DOC_STRING, DOC_ARRAY, DOC_OBJECT };

/* What the value was in Dataverse, for SQL column types and formatting. */
enum doc_type {
  DOC_T_TEXT = 0, /* string, memo */
  DOC_T_GUID,     /* primary key, lookup id, GUID-looking string */
  DOC_T_INT,      /* whole number, choice (OptionSetValue), BigInt */
  DOC_T_DECIMAL,  /* decimal, Money, double: exact lexeme */
  DOC_T_BOOL,
  DOC_T_DATETIME, /* ISO 8601 UTC text, e.g. "2024-11-08T08:05:06Z" */
  DOC_T_DATE,     /* date-only, "2024-12-31" (mapping option) */
  DOC_T_MULTI,    /* multi-select choice: "100000000,100000002" */
  DOC_T_JSON      /* anything else: kept as JSON */
};

struct doc_annotation {
  const char *name; /* without '@', e.g. "OData.Community.Display.V1.FormattedValue" */
  const char *json; /* JSON text of the annotation value */
  size_t json_len;
};

struct doc_prop {
  const char *name;   /* output property name after renames, e.g. "_ownerid_value" */
  const char *column; /* source logical name, e.g. "ownerid" */
  enum doc_kind kind;
  enum doc_type type;
  const char *json; /* the value as JSON text (exact number lexemes) */
  size_t json_len;
  const char *text; /* DOC_STRING: the decoded text; DOC_NUMBER/DOC_BOOL: the lexeme;
                       DOC_ARRAY/DOC_OBJECT: the JSON text; NULL for DOC_NULL */
  size_t text_len;
  const struct doc_annotation *ann;
  size_t nann;
};

/* A record on the other side of an N:N relationship. */
/* An alternate key the mapping declares (tables.<t>.keys): its name and
 * the properties that make it up, in declared order. */
struct doc_altkey {
  bool is_index;            /* an "indexes" entry (one column, not unique) */
  const char *name;         /* key name, e.g. "ak_accountnumber"; an index: its column */
  const char *const *props; /* property names, e.g. {"accountnumber"} */
  size_t nprops;
};

struct doc_related {
  const char *table;      /* logical name, e.g. "lead" */
  const char *entity_set; /* Web API entity set name, e.g. "leads" */
  const char *id;
};

struct doc {
  enum cdc_op op;
  const char *table;      /* logical name as sent, e.g. "account" */
  const char *entity_set; /* Web API entity set name, e.g. "accounts" */
  const char *key_name;   /* primary key property, e.g. "accountid" */
  const char *id;         /* lower-case GUID */
  struct cdc_version version;
  char version_text[CDC_VERSION_TEXT_LEN + 1];
  int64_t op_time_ms; /* OperationCreatedOn, for freshness */

  /* Create/Update/SetState/Assign/Merge: the properties to write. Delete
   * and Associate/Disassociate have none. */
  const struct doc_prop *props;
  size_t nprops;
  /* props describe the whole row (Create, or a registered post image):
   * a sink may drop properties of this record that are not listed and
   * are older than this change. */
  bool full_row;

  /* Associate / Disassociate */
  const char *relationship; /* schema name, e.g. "accountleads_association" */
  const struct doc_related *related;
  size_t nrelated;

  /* Merge: the record merged into this one */
  const char *subordinate_id;

  /* Truncated context: only table/id/version are known. Sinks record that
   * the row needs a re-read and do not touch columns. */
  bool needs_reread;
  /* Applied, but its order against another change of the record is
   * uncertain (change.h): the sink also marks the record for a re-read. */
  bool order_uncertain;

  /* From the mapping configuration */
  int64_t ttl_seconds;   /* 0 = no expiry */
  const char *sql_table; /* target table for SQL sinks, e.g. "dbo.account" */
  /* alternate keys of the table (borrowed from the mapping, which outlives
   * every document; doc_clone copies the pointer) */
  const struct doc_altkey *altkeys;
  size_t naltkeys;

  /* Where it came from, for logs, poison records and lineage columns */
  const struct cdc_origin *origin;
};

/* Deep copy of src into arena a: every string, array and the origin are
 * copied (in one arena block), so *out stays valid after the memory src
 * points into is reset or freed. The pipeline decodes and maps each
 * message in a scratch arena and keeps only the documents this way.
 * Returns APP_OK, or APP_ERR_LIMIT when the arena's ceiling is reached
 * (*out is then unchanged). */
APP_NODISCARD enum app_result doc_clone(struct arena *a, const struct doc *src, struct doc *out);

#endif

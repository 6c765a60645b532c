/* change.h - the canonical change: what one Dataverse message means.
 *
 * The Dataverse decoder (dataverse.h) turns a RemoteExecutionContext into a
 * struct cdc_change; the mapper (mapping.h) turns a change into a document
 * (doc.h); sinks write documents. Everything here lives in the arena of the
 * invocation that decoded it: nothing is freed on its own.
 *
 * Strings are decoded UTF-8, NUL-terminated. GUIDs are lower-cased. Number
 * lexemes are kept exactly as sent (NUL-terminated copies). */
#ifndef D365CDC_CHANGE_H
#define D365CDC_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cdc_op {
  CDC_OP_CREATE = 1,
  CDC_OP_UPDATE,
  CDC_OP_DELETE,
  CDC_OP_ASSOCIATE,
  CDC_OP_DISASSOCIATE,
  CDC_OP_SETSTATE, /* SetState and SetStateDynamicEntity */
  CDC_OP_ASSIGN,
  CDC_OP_MERGE,
  CDC_OP_UPSERT,
  CDC_OP_RESTORE, /* recycle bin Restore: the record lives again */
  CDC_OP_OTHER    /* any other message: kept for accept/skip decisions */
};

/* Typed Dataverse values (dataverse-message-format.md section 4). */
enum dv_kind {
  DV_NULL = 0,
  DV_BOOL,
  DV_NUMBER,              /* int, BigInt, decimal or double: lexeme in s */
  DV_STRING,              /* text, memo, GUID-as-string: s/len */
  DV_DATE,                /* /Date(ms[+-hhmm])/: date_ms (UTC), date_offset_min */
  DV_OPTIONSET,           /* OptionSetValue: lexeme of Value in s */
  DV_MULTISELECT,         /* array of OptionSetValue: items[] are DV_OPTIONSET */
  DV_MONEY,               /* Money: lexeme of Value in s */
  DV_ENTITYREF,           /* EntityReference: ref */
  DV_ENTITY,              /* Entity (with or without __type): entity */
  DV_ENTITYCOLLECTION,    /* EntityCollection: items[] are DV_ENTITY */
  DV_ENTITYREFCOLLECTION, /* bare array of EntityReference: items[] are DV_ENTITYREF */
  DV_RELATIONSHIP,        /* Relationship: s = SchemaName, role = PrimaryEntityRole (-1 null) */
  DV_KVPAIR,              /* KeyValuePairOfstringstring: key in s, value in s2 */
  DV_ALIASED,             /* AliasedValue: items[0] = value, s = attribute, s2 = entity */
  DV_BOOLMANAGED,         /* BooleanManagedProperty: b = Value, s = ManagedPropertyLogicalName */
  DV_ARRAY,               /* any other array: items[] */
  DV_RAW                  /* unknown __type or shape: compact JSON text in s (never dropped) */
};

struct dv_entity;

struct dv_kv {
  const char *key;
  const char *value; /* string form; NULL when the JSON value was null */
};

struct dv_ref {
  const char *logical_name;
  const char *id;           /* lower-case GUID; may be the zero GUID with key attributes */
  const char *name;         /* primary name, often NULL */
  const char *row_version;  /* NULL when null */
  const struct dv_kv *keys; /* KeyAttributes (alternate key) */
  size_t nkeys;
};

struct dv_value {
  enum dv_kind kind;
  bool b;
  int role; /* DV_RELATIONSHIP: 0 Referencing, 1 Referenced, -1 null */
  bool date_has_offset;
  int date_offset_min; /* DV_DATE: the +-hhmm suffix in minutes (0 without one) */
  int64_t date_ms;     /* DV_DATE */
  const char *s;       /* see enum dv_kind */
  size_t len;          /* bytes of s */
  const char *s2;
  struct dv_ref ref;              /* DV_ENTITYREF */
  const struct dv_entity *entity; /* DV_ENTITY */
  const struct dv_value *items;   /* arrays, see enum dv_kind */
  size_t nitems;
};

struct dv_attr {
  const char *name; /* logical name, e.g. "revenue" */
  struct dv_value value;
  const char *formatted; /* FormattedValues entry for this name, or NULL */
};

struct dv_entity {
  const char *logical_name;
  const char *id;
  const char *row_version;     /* RowVersion, NULL when null */
  const struct dv_attr *attrs; /* in message order; formatted values attached */
  size_t nattrs;
  const struct dv_kv *keys; /* KeyAttributes */
  size_t nkeys;
};

/* The order of changes to one record (docs/versioning.md). Compared
 * field by field: ts_ms, then row_version, then tie. */
struct cdc_version {
  int64_t ts_ms;        /* OperationCreatedOn, ms since epoch (clamped >= 0) */
  uint64_t row_version; /* Target/image RowVersion or versionnumber; 0 if none */
  uint32_t tie;         /* deterministic tie-break from OperationId */
};

/* Fixed-width, digits-only text form of a version: 15 + 20 + 10 digits.
 * Two texts compare (strcmp) exactly as the versions do. */
#define CDC_VERSION_TEXT_LEN 45

struct cdc_origin {
  const char *message_id; /* Service Bus MessageId (from the envelope), may be NULL */
  const char *correlation_id;
  const char *operation_id;
  const char *request_id;
  const char *initiating_user_id;
  const char *user_id;
  const char *initiating_user_agent; /* NULL when absent (older payloads) */
  const char *business_unit_id;
  const char *organization_id;
  const char *organization_name;
  const char *owning_extension_id; /* the sdkmessageprocessingstep */
  int depth;
  int stage;
  int mode;
};

struct cdc_change {
  enum cdc_op op;
  const char *message; /* MessageName as sent, e.g. "SetStateDynamicEntity" */
  const char *table;   /* logical name of the record the change is about */
  const char *id;      /* lower-case GUID of that record */
  struct cdc_version version;
  int64_t op_time_ms; /* OperationCreatedOn in ms (not clamped) */

  /* Columns the change sets, typed. Create: the full Target. Update: the
   * changed columns only. SetState: statecode/statuscode. Assign: ownerid.
   * Merge: the UpdateContent columns. Delete/Associate: none. */
  const struct dv_attr *attrs;
  size_t nattrs;
  /* Full row from a registered post image (any alias other than
   * AsynchronousStepPrimaryName), or NULL. */
  const struct dv_entity *post_image;
  const struct dv_entity *pre_image; /* first pre image, or NULL */
  /* attrs hold the whole row (Create), so columns absent from attrs are
   * known to be null/default rather than unchanged. */
  bool full_row;

  /* Associate / Disassociate */
  const char *relationship;     /* Relationship.SchemaName */
  int relationship_role;        /* -1 when null */
  const struct dv_ref *related; /* RelatedEntities */
  size_t nrelated;

  /* Merge: the record merged into this one (it gets deactivated). */
  const char *subordinate_id;
  /* Assign: the new owner (also present as the ownerid attr). */
  const struct dv_ref *assignee;

  /* The context was truncated (MessageMaxSizeExceeded, or no
   * InputParameters): only table and id are known; the row must be re-read
   * from Dataverse. */
  bool needs_reread;

  /* The change may be misordered against another change of the same row
   * (docs/versioning.md "Nested changes"): applied all the same, and the
   * record is marked for a re-read. */
  bool order_uncertain;

  struct cdc_origin origin;
};

/* Short lower-case name of an op ("create", "update", ...). */
const char *cdc_op_name(enum cdc_op op);

/* Write the text form of v into out (CDC_VERSION_TEXT_LEN + 1 bytes). */
void cdc_version_text(const struct cdc_version *v, char *out);

/* Did nothing in the payloads order a and b: same ts_ms and op rank, and
 * the same row version or one side without one (0), so only the
 * OperationId hash (or a row version against none) decided? False when
 * equal (the same change). */
bool cdc_version_text_tied(const char *a, const char *b);

/* The order the sinks apply (docs/versioning.md "The rule"): when both
 * version texts carry a real row version (neither 0, a Create's, nor
 * 2^64-1, a Delete's) and they differ, the row versions decide (the
 * database's own order, whatever the clocks said); otherwise the texts
 * compare as strings (time, row version, tie). <0, 0, >0. Used pairwise
 * (is this change newer than what is stored?); it is not transitive
 * across mixed pairs, so never sort with it (cdc_version_cmp sorts). */
int cdc_version_text_order(const char *a, const char *b);

/* <0, 0, >0 like strcmp (time, row version, tie): a total order, for
 * sorting. */
int cdc_version_cmp(const struct cdc_version *a, const struct cdc_version *b);

#endif

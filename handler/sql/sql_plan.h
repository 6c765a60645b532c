/* sql_plan.h - what one batch means for SQL tables (pure, no I/O).
 *
 * The SQL sink writes a batch as a few multi-row statements, one per target
 * table (and chunk), so the documents of a batch are first grouped by table
 * and collapsed per key: several changes to one record become one merged
 * row in which every column carries the value and version of the newest
 * change that wrote it (per-column last-writer-wins, docs/sql.md). The
 * database then applies each merged row with the same per-column rule, so
 * the result does not depend on how changes were split into batches or in
 * which order they arrived.
 *
 * Associate/Disassociate become rows of a link table per relationship,
 * collapsed per (record, related record) pair: newest version wins.
 *
 * Everything lives in the caller's arena; nothing is freed on its own. */
#ifndef D365CDC_SQL_PLAN_H
#define D365CDC_SQL_PLAN_H

#include "common/arena.h"
#include "map/doc.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

/* Version texts are CDC_VERSION_TEXT_LEN digits; "" means none. */
typedef char sql_version_text[CDC_VERSION_TEXT_LEN + 1];

/* A mapped column of an entity table (besides the key and _cdc_* columns).
 * Each has a companion "<name>__v" column with the version that wrote it. */
struct sql_column {
  const char *name; /* property name as the mapping spells it, e.g. "_ownerid_value" */
  enum doc_type type;
};

/* One column of one merged row. */
struct sql_cell {
  const char *text; /* value as text for a CAST; NULL: SQL NULL */
  size_t len;
  const char *version;         /* version text of the change that wrote it; NULL: not written */
  const struct doc_prop *prop; /* the property written, NULL for a full-row null */
};

struct sql_row {
  const char *id;                   /* key value, lower-case GUID */
  sql_version_text version;         /* newest change merged in (any operation) */
  sql_version_text deleted_version; /* newest Delete merged in, or "" */
  sql_version_text full_version;    /* newest full-row change merged in, or "" */
  sql_version_text reread_version;  /* newest truncated change merged in, or "" */
  struct sql_cell *cells;           /* one per column of the group, aligned with cols */
  size_t ndocs;                     /* documents merged into this row */
};

/* One link (N:N association) between two records, ordered canonically:
 * (table1, id1) sorts before (table2, id2), so an Associate sent from
 * either side names the same link. */
struct sql_link {
  const char *table1, *id1, *table2, *id2;
  bool associated;
  sql_version_text version;
  size_t ndocs;
};

enum sql_group_kind { SQL_GROUP_ENTITY = 0, SQL_GROUP_LINK };

struct sql_group {
  enum sql_group_kind kind;
  const char *table;        /* target table as configured, maybe "schema.name" */
  const char *key;          /* ENTITY: key column, e.g. "accountid" */
  const char *source_table; /* ENTITY: Dataverse logical name; LINK: relationship */
  struct sql_column *cols;  /* ENTITY: union of the columns written in the batch */
  size_t ncols;
  struct sql_row *rows; /* ENTITY: sorted by id */
  size_t nrows;
  struct sql_link *links; /* LINK: sorted by (id1, id2) */
  size_t nlinks;
  bool has_full_rows; /* some row has a full_version */
  bool has_deletes;   /* some row has a deleted_version */
};

struct sql_plan {
  struct sql_group *groups; /* sorted by table name, so lock order is stable */
  size_t ngroups;
  size_t ndocs;    /* documents planned */
  size_t nskipped; /* documents with nothing for SQL (e.g. CDC_OP_OTHER) */
};

/* Group and collapse docs[0..n). Docs with needs_reread touch no column
 * (they only raise _cdc_reread_version). Column writes older than a Delete
 * of the same record in the batch are dropped.
 *   APP_ERR_INPUT  a doc lacks its id or key name, a property name is empty,
 *                  starts with "_cdc_", ends with "__v", is longer than
 *                  max_ident bytes (with its "__v" suffix), or a value does
 *                  not fit its Dataverse type (e.g. "abc" for a whole
 *                  number); the message names the doc index, table, id and
 *                  property
 *   APP_ERR_LIMIT  the arena ceiling
 * max_ident: the dialect's identifier limit (sql_dialect_max_ident). */
APP_NODISCARD enum app_result sql_plan_build(struct arena *a, const struct doc *const *docs,
                                             size_t n, size_t max_ident, struct sql_plan *out_plan,
                                             struct app_err *err);

/* Make every full-row row of g write all of known[0..nknown) (the table's
 * mapped columns as the database has them): a column a full-row change does
 * not list is null as of that change, so it is written as NULL with the
 * row's full_version. Columns are added to g->cols as needed.
 *   APP_ERR_LIMIT  the arena ceiling */
APP_NODISCARD enum app_result sql_plan_fill_full_rows(struct arena *a, struct sql_group *g,
                                                      const struct sql_column *known, size_t nknown,
                                                      struct app_err *err);

/* Table a doc is written to: doc->sql_table when set, else doc->table. */
const char *sql_plan_table_of(const struct doc *d);

#endif

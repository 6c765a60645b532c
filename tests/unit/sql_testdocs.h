/* sql_testdocs.h - hand-built documents for the SQL sink tests.
 *
 * The mapper (change -> doc) is written elsewhere; these tests build
 * struct doc values directly, the way the mapper's contract (doc.h)
 * describes them. Strings given to td_str are plain (no JSON escapes
 * needed) unless td_prop is used with explicit JSON and text. */
#ifndef D365CDC_SQL_TESTDOCS_H
#define D365CDC_SQL_TESTDOCS_H

#include "map/doc.h"
#include "common/result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TD_MAX_PROPS 48

struct tdoc {
  struct doc d;
  struct doc_prop props[TD_MAX_PROPS];
  struct doc_related rel[4];
  char strs[TD_MAX_PROPS][2][512];
};

/* A doc for table/key/id at version (ts_ms, tie). sql_table stays NULL
 * (the table name is used). Caller frees with free(). */
static inline struct tdoc *td_new(enum cdc_op op, const char *table, const char *key,
                                  const char *id, int64_t ts_ms, uint32_t tie)
{
  struct tdoc *t = xcalloc(1, sizeof *t);
  t->d.op = op;
  t->d.table = table;
  t->d.entity_set = table;
  t->d.key_name = key;
  t->d.id = id;
  t->d.version.ts_ms = ts_ms;
  t->d.version.row_version = 0;
  t->d.version.tie = tie;
  cdc_version_text(&t->d.version, t->d.version_text);
  t->d.op_time_ms = ts_ms;
  t->d.props = t->props;
  t->d.full_row = op == CDC_OP_CREATE;
  return t;
}

/* A property with explicit JSON text and decoded text (text may be NULL). */
static inline void td_prop(struct tdoc *t, const char *name, enum doc_kind kind, enum doc_type type,
                           const char *json, const char *text)
{
  struct doc_prop *p = &t->props[t->d.nprops];
  APP_ASSERT(t->d.nprops < TD_MAX_PROPS);
  snprintf(t->strs[t->d.nprops][0], sizeof t->strs[0][0], "%s", json);
  p->name = name;
  p->column = name;
  p->kind = kind;
  p->type = type;
  p->json = t->strs[t->d.nprops][0];
  p->json_len = strlen(p->json);
  if (text) {
    snprintf(t->strs[t->d.nprops][1], sizeof t->strs[0][1], "%s", text);
    p->text = t->strs[t->d.nprops][1];
    p->text_len = strlen(p->text);
  }
  t->d.nprops++;
}

/* A string property: JSON is the text in quotes (no escaping needed). */
static inline void td_str(struct tdoc *t, const char *name, enum doc_type type, const char *s)
{
  char json[512];
  snprintf(json, sizeof json, "\"%s\"", s);
  td_prop(t, name, DOC_STRING, type, json, s);
}

/* A number (exact lexeme). */
static inline void td_num(struct tdoc *t, const char *name, enum doc_type type, const char *lex)
{
  td_prop(t, name, DOC_NUMBER, type, lex, lex);
}

static inline void td_bool(struct tdoc *t, const char *name, int v)
{
  td_prop(t, name, DOC_BOOL, DOC_T_BOOL, v ? "true" : "false", v ? "true" : "false");
}

static inline void td_null(struct tdoc *t, const char *name, enum doc_type type)
{
  td_prop(t, name, DOC_NULL, type, "null", NULL);
}

/* Associate/Disassociate of relationship from t's record to one related. */
static inline void td_relate(struct tdoc *t, const char *relationship, const char *table,
                             const char *id)
{
  t->d.relationship = relationship;
  t->rel[t->d.nrelated].table = table;
  t->rel[t->d.nrelated].entity_set = table;
  t->rel[t->d.nrelated].id = id;
  t->d.related = t->rel;
  t->d.nrelated++;
}

#endif

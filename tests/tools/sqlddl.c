/* sqlddl - print the DDL the SQL sink would run, for review or for a DBA to
 * apply by hand (with CDC_SQL_SCHEMA=validate). docs/sql.md shows examples.
 *
 *   sqlddl [--dialect tsql|postgres] [--hard-delete] TABLE KEY [COLUMN:TYPE ...]
 *   sqlddl [--dialect tsql|postgres] --add TABLE COLUMN:TYPE ...
 *   sqlddl [--dialect tsql|postgres] --link TABLE
 *
 * TYPE is one of text guid int decimal bool datetime date multi json (the
 * Dataverse types of doc.h). The dialect defaults to tsql. Exit 2 on usage
 * errors, 1 when a name does not fit the dialect. */
#include "common/buf.h"
#include "sql/sql_ddl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
  fprintf(stderr,
          "usage: sqlddl [--dialect tsql|postgres] [--hard-delete] TABLE KEY [COLUMN:TYPE ...]\n"
          "       sqlddl [--dialect tsql|postgres] --add TABLE COLUMN:TYPE ...\n"
          "       sqlddl [--dialect tsql|postgres] --link TABLE\n"
          "types: text guid int decimal bool datetime date multi json\n");
  return 2;
}

static int parse_type(const char *s, enum doc_type *out)
{
  static const struct {
    const char *name;
    enum doc_type t;
  } types[] = {{"text", DOC_T_TEXT},       {"guid", DOC_T_GUID},   {"int", DOC_T_INT},
               {"decimal", DOC_T_DECIMAL}, {"bool", DOC_T_BOOL},   {"datetime", DOC_T_DATETIME},
               {"date", DOC_T_DATE},       {"multi", DOC_T_MULTI}, {"json", DOC_T_JSON}};
  size_t i;
  for (i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (!strcmp(s, types[i].name)) {
      *out = types[i].t;
      return 0;
    }
  }
  return -1;
}

int main(int argc, char **argv)
{
  enum sql_dialect d = SQL_DIALECT_TSQL;
  enum sql_delete_mode mode = SQL_DELETE_SOFT;
  int i = 1, add = 0, link = 0, rc = 0;
  struct sql_column *cols = NULL;
  size_t ncols = 0;
  struct buf out;
  struct app_err e;
  enum app_result r;
  const char *table, *key = NULL;

  for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
    if (!strcmp(argv[i], "--dialect") && i + 1 < argc) {
      if (sql_dialect_parse(argv[++i], &d, &e) != APP_OK || d == SQL_DIALECT_NONE) {
        fprintf(stderr, "sqlddl: dialect must be tsql or postgres\n");
        return 2;
      }
    } else if (!strcmp(argv[i], "--hard-delete")) {
      mode = SQL_DELETE_HARD;
    } else if (!strcmp(argv[i], "--add")) {
      add = 1;
    } else if (!strcmp(argv[i], "--link")) {
      link = 1;
    } else {
      return usage();
    }
  }
  if (i >= argc)
    return usage();
  table = argv[i++];
  if (!add && !link) {
    if (i >= argc)
      return usage();
    key = argv[i++];
  }
  if (link && i < argc)
    return usage();
  cols = calloc((size_t)(argc - i) + 1, sizeof *cols);
  if (!cols)
    return 1;
  for (; i < argc; i++) {
    char *colon = strrchr(argv[i], ':');
    if (!colon || parse_type(colon + 1, &cols[ncols].type) != 0) {
      fprintf(stderr, "sqlddl: '%s' is not COLUMN:TYPE with a known type\n", argv[i]);
      free(cols);
      return usage();
    }
    *colon = '\0';
    cols[ncols++].name = argv[i];
  }
  if (add && !ncols) {
    free(cols);
    return usage();
  }
  buf_init(&out, 0);
  if (link)
    r = sql_ddl_create_link(d, table, &out, &e);
  else if (add)
    r = sql_ddl_add_columns(d, table, cols, ncols, &out, &e);
  else
    r = sql_ddl_create(d, table, key, cols, ncols, mode, &out, &e);
  if (r != APP_OK) {
    fprintf(stderr, "sqlddl: %s\n", e.msg);
    rc = 1;
  } else {
    fputs(out.data ? out.data : "", stdout);
  }
  buf_cleanup(&out);
  free(cols);
  return rc;
}

/* sql_bindings.h - rows for the Azure SQL output binding (binding mode).
 *
 * The Azure SQL output binding (`type: sql`) upserts an array of row
 * objects with one MERGE on the table's primary key. For a custom handler
 * the binding takes the column list from the FIRST row and matches names
 * case-sensitively, and it fails on two rows with the same key. So the rows
 * built here are collapsed per key (the newest change wins per column),
 * every row carries every column (explicit nulls), and a Delete becomes
 * `"_cdc_deleted": true` (the binding cannot delete). `_cdc_version` carries
 * the version text.
 *
 * What this mode cannot guarantee (docs/sql.md): the binding does not
 * compare versions, so an older change delivered later overwrites a newer
 * one; a partial Update writes NULL into the columns it does not carry; a
 * soft-deleted row is revived by any later Update. Use direct mode
 * (sql_sink.h) unless every change carries the whole row and changes of
 * one record never arrive out of order. */
#ifndef D365CDC_SQL_BINDINGS_H
#define D365CDC_SQL_BINDINGS_H

#include "common/buf.h"
#include "map/doc.h"
#include "common/result.h"

#include <stddef.h>

/* Append to out_json a JSON array of row objects for docs[0..n): key
 * column (doc->key_name) first, then the union of the properties' names in
 * first-seen order, then "_cdc_version" and "_cdc_deleted". Values keep the
 * exact JSON of numbers and booleans; decimals are written as strings (the
 * binding parses numbers as doubles); arrays and objects as JSON text in a
 * string. Associate/Disassociate and truncated (needs_reread) docs have no
 * row: the binding cannot express them.
 *   APP_ERR_INPUT  docs for more than one SQL table (one output binding
 *                  writes one table), or a doc sql_plan_build rejects
 *   APP_ERR_LIMIT  out_json's ceiling or the working memory cap */
APP_NODISCARD enum app_result sql_bindings_rows(const struct doc *const *docs, size_t n,
                                                struct buf *out_json, struct app_err *err);

/* The same for the docs of one table only (doc->sql_table, else doc->table,
 * equal to table); docs of other tables are skipped. */
APP_NODISCARD enum app_result sql_bindings_rows_for(const struct doc *const *docs, size_t n,
                                                    const char *table, struct buf *out_json,
                                                    struct app_err *err);

#endif

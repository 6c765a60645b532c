/* altkey.h - alternate keys: the canonical form of a key value and the
 * name of its index entry (pure).
 *
 * A table's alternate keys are declared in the mapping (tables.<t>.keys,
 * docs/mapping.md). The Redis sink adds the record's id to the index set
 * of its first key column's value; the read API answers
 * <set>(col='v'[,col2=...]) from that set and checks every column against
 * the records themselves (docs/read-api.md, "Alternate keys"). Both sides
 * compare values in one canonical form, so a JSON value written by the
 * pipeline ("A1", 1.50) and an OData literal ('A1', 1.5) meet:
 *   's' + the decoded text        for strings
 *   'n' + the normalised lexeme   for numbers (trailing zeros of a
 *                                 fraction and a bare '.' dropped, "-0" -> "0")
 * Other values (null, booleans, arrays, objects) are not key values. */
#ifndef D365CDC_ALTKEY_H
#define D365CDC_ALTKEY_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/result.h"
#include "map/doc.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest canonical value indexed (Dataverse key columns are at most 4000
 * characters of text; UTF-8 may need 3 bytes each). */
#define ALTKEY_MAX_VALUE 12000

/* Canonical form of a JSON value (as the pipeline writes it) into out
 * (arena a, NUL-terminated, *out_len bytes). false: not a key value. */
bool altkey_canon_json(struct arena *a, const char *json, size_t len, const char **out,
                       size_t *out_len);

/* Canonical form of a number lexeme (JSON or OData); false when lex is
 * not a plain decimal number (-?digits[.digits]). */
bool altkey_canon_number(struct arena *a, const char *lex, size_t len, const char **out,
                         size_t *out_len);

/* Append the canonical form of a document property to out; *out_ok=false
 * (nothing appended) when its value is not a key value. */
APP_NODISCARD enum app_result altkey_canon_prop(const struct doc_prop *pr, struct buf *out,
                                                bool *out_ok);

/* Append the index key "<prefix>:akey:<table>:<key>:<canon>" to b. */
APP_NODISCARD enum app_result altkey_index_key(struct buf *b, const char *prefix, const char *table,
                                               const char *key, const char *canon,
                                               size_t canon_len);

/* The set key of k for value canon: "<prefix>:akey:..." for an alternate
 * key, "<prefix>:idx:<table>:<column>:<canon>" for an index. */
APP_NODISCARD enum app_result altkey_set_key(struct buf *b, const char *prefix, const char *table,
                                             const struct doc_altkey *k, const char *canon,
                                             size_t canon_len);

#endif

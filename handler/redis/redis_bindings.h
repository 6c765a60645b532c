/* redis_bindings.h - output-binding mode: Outputs for a Redis output binding
 * instead of writing (pure, no I/O).
 *
 * The Functions host runs each item of a Redis output binding as
 * `<command> item.Split(' ')`, fire-and-forget (protocol doc 3.2). So an
 * argument must never contain a space. Every argument we emit is
 * percent-encoded: the bytes space, '%', controls (< 0x20) and DEL become
 * %XX; everything else (JSON punctuation, UTF-8) stays as it is, so the
 * stored values are readable and decode with decodeURIComponent /
 * Uri.UnescapeDataString / urllib.parse.unquote (not unquote_plus: '+' is
 * literal). The Outputs value is always a JSON array of strings, which the
 * host never base64-decodes.
 *
 * Commands (binding `command` in function.json; case-insensitive):
 *   SET   full-row documents (Create, post images): the whole document as
 *         Web API JSON, plus "EX <ttl>" when the mapping gives a TTL
 *   HSET  documents with properties: one field per property (and one per
 *         annotation, "<prop>@<annotation>"), plus _version and _op_time
 *   DEL   Delete documents
 *   SADD  Associate: the record's relationship set gets the related records
 *         and each related record's set gets the record (both directions)
 *   SREM  Disassociate, the same way
 * A document a command cannot express is left out: a function with several
 * Redis bindings (one per command) gets each document from the binding that
 * can express it; redis_bindings_expressible tells which. Re-read markers
 * are never expressible. Keys are those of redis_sink.h, but the values are
 * not the direct-mode layout: the read API does not serve binding mode.
 * docs/redis.md lists what is lost against direct mode (version guard,
 * failure visibility, deletes under SET/HSET). */
#ifndef D365CDC_REDIS_BINDINGS_H
#define D365CDC_REDIS_BINDINGS_H

#include "common/buf.h"
#include "map/doc.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

/* Can command (SET, HSET, DEL, SADD, SREM) express document d? */
bool redis_bindings_expressible(const char *command, const struct doc *d);

/* Append `"<binding_name>":[ "<args>", ... ]` to out_json: one argument
 * string per command the binding will run, for the documents the command
 * can express (others are skipped; the array may be empty). The caller
 * places it inside the Outputs object. prefix is CDC_KEY_PREFIX.
 *   APP_ERR_UNSUPPORTED  command is not one of SET, HSET, DEL, SADD, SREM
 *   APP_ERR_INPUT        a document's table, id or relationship cannot be
 *                        a key (redis_sink_name_ok)
 *   APP_ERR_LIMIT        out_json reached its ceiling
 * On failure out_json is left as it was. */
APP_NODISCARD enum app_result redis_bindings_outputs(const struct doc *const *docs, size_t n,
                                                     const char *binding_name, const char *command,
                                                     const char *prefix, struct buf *out_json,
                                                     struct app_err *err);

/* Append s[0..n) percent-encoded as described above (exposed for tests). */
APP_NODISCARD enum app_result redis_bindings_encode(struct buf *b, const char *s, size_t n);

#endif

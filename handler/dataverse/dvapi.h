/* dvapi.h - the Dataverse Web API (v9.2) as data: request building and
 * response parsing for snapshots, change tracking and re-reads. Pure: no
 * I/O (dvclient.h does the HTTP).
 *
 * Requests:
 *   snapshot  GET <base>/api/data/v9.2/<set>?$select=<cols>
 *             Prefer: odata.maxpagesize=N,odata.include-annotations="*",odata.track-changes
 *   next page GET @odata.nextLink as sent (same Prefer)
 *   changes   GET @odata.deltaLink as sent (same Prefer)
 *   re-read   GET <base>/api/data/v9.2/<set>?$select=<cols>&$filter=<key> in ('id',...)
 *
 * Pages: {"value":[rows...], "@odata.nextLink": "...", "@odata.deltaLink": "..."}.
 * In a delta page a removed row is {"@odata.context": ".../$deletedEntity",
 * "id": "<guid>", "reason": "deleted"}.
 *
 * Rows become canonical changes (change.h) so that the mapping turns them
 * into exactly the documents the message path produces: `_x_value` lookups
 * with their lookuplogicalname and FormattedValue annotations become
 * EntityReferences, FormattedValue annotations attach to their column,
 * ISO 8601 date-times become dates, numbers keep their lexemes. The version
 * of a row (docs/versioning.md "Rows read from the Web API"):
 * ts_ms = modifiedon + 999 ms (the Web API gives whole seconds; a message of
 * the write the row shows is then never newer), but at most the time the
 * page was requested (every later change is newer), row_version =
 * versionnumber, tie = rank 3. A $deletedEntity becomes a Delete at the time
 * it was read. */
#ifndef D365CDC_DVAPI_H
#define D365CDC_DVAPI_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/result.h"
#include "dataverse/change.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DVAPI_VERSION "v9.2"
/* Longest base URL, link or id list URL we build or accept. */
#define DVAPI_MAX_URL 8192
/* Most ids in one re-read request (the URL stays well under 8 KiB). */
#define DVAPI_MAX_IDS 100

/* Check and normalise DataverseUrl: https://host[:port][/] or, for tests,
 * http://127.0.0.1:PORT. Writes the URL without a trailing slash to out
 * (outsz bytes). APP_ERR_CONFIG naming what is wrong. */
APP_NODISCARD enum app_result dvapi_base_url(const char *url, char *out, size_t outsz,
                                             struct app_err *err);

/* The token scope for base: "<base>/.default". */
APP_NODISCARD enum app_result dvapi_scope(const char *base, struct buf *out);

/* The first page of a table: <base>/api/data/v9.2/<set>[?$select=<select>].
 * select may be NULL or "" (every column). */
APP_NODISCARD enum app_result dvapi_snapshot_url(struct buf *out, const char *base,
                                                 const char *entity_set, const char *select);

/* Records by id: ...<set>?[$select=..&]$filter=<key> in ('id1','id2').
 * ids are GUIDs (checked: APP_ERR_INPUT otherwise); 1..DVAPI_MAX_IDS. */
APP_NODISCARD enum app_result dvapi_ids_url(struct buf *out, const char *base,
                                            const char *entity_set, const char *select,
                                            const char *key, const char *const *ids, size_t n,
                                            struct app_err *err);

/* The Prefer header value (without "Prefer: "). */
APP_NODISCARD enum app_result dvapi_prefer(struct buf *out, int maxpagesize, bool track_changes);

/* Does link belong to base (same scheme, host and port, path under
 * /api/data/)? A nextLink or deltaLink pointing elsewhere is refused, so a
 * token is never sent to another host. */
bool dvapi_link_ok(const char *base, const char *link);

/* Retry-After: delta-seconds or an HTTP-date; now_s is the wall clock in
 * seconds. Returns the wait in ms (0 when the date is past), or -1 when
 * value is not a valid Retry-After. Capped at one hour. */
int64_t dvapi_retry_after_ms(const char *value, int64_t now_s);

/* Is s a GUID (8-4-4-4-12 hex digits)? */
bool dvapi_is_guid(const char *s);

/* An OData error body {"error":{"code":..,"message":..}}: writes
 * "<code>: <message>" (truncated) to out; false when body is not one. */
bool dvapi_error_text(const char *body, size_t len, char *out, size_t outsz);

enum dvapi_row_kind { DVAPI_ROW = 0, DVAPI_ROW_DELETED };

struct dvapi_row {
  enum dvapi_row_kind kind;
  const struct json *obj; /* the row object */
  const char *id;         /* DVAPI_ROW_DELETED: the id (lower-case) */
};

struct dvapi_page {
  struct dvapi_row *rows;
  size_t nrows;
  const char *next_link;  /* @odata.nextLink, or NULL */
  const char *delta_link; /* @odata.deltaLink, or NULL */
};

/* Parse a page (body is parsed in place: it must outlive the page).
 * APP_ERR_INPUT with the reason (not JSON, no "value" array, a row that is
 * not an object, a deleted entry without an id, a link that is not a
 * string); APP_ERR_LIMIT (arena). */
APP_NODISCARD enum app_result dvapi_page_parse(struct arena *a, char *body, size_t len,
                                               struct dvapi_page *out, struct app_err *err);

/* The change a row stands for: table (logical name) and key (primary key
 * column) from the mapping; the row must carry key as a GUID. now_ms is
 * the wall clock when the page was requested. APP_ERR_INPUT with the reason (no key,
 * a bad modifiedon or versionnumber); APP_ERR_LIMIT (arena). */
APP_NODISCARD enum app_result dvapi_row_change(struct arena *a, const struct dvapi_row *row,
                                               const char *table, const char *key, int64_t now_ms,
                                               struct cdc_change *out, struct app_err *err);

/* ISO 8601 "YYYY-MM-DDTHH:MM:SS[.fff]Z" (or +hh:mm) to ms since the
 * epoch; false when s is not one. */
bool dvapi_parse_datetime(const char *s, int64_t *out_ms);

#endif

/* odata.h - the read API's request parsing and response shaping (pure).
 *
 * Apps that read Dataverse through its Web API send
 *   GET /api/data/v9.2/accounts(<guid>)?$select=name,revenue
 *   Prefer: odata.include-annotations="OData.Community.Display.V1.FormattedValue"
 *   If-None-Match: W/"<etag>"
 * and expect the Web API's JSON shape and error bodies. This module turns
 * such a request into a struct odata_request and renders records, related
 * lists and errors the way Dataverse does. No I/O: the read API
 * (readapi.c) fetches the record from Redis between parse and render. */
#ifndef D365CDC_ODATA_H
#define D365CDC_ODATA_H

#include "common/arena.h"
#include "common/buf.h"
#include "map/doc.h"
#include "map/docjson.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>

/* ODATA_RECORD: <set>(<id>). ODATA_RELATED: <set>(<id>)/<name>, where name
 * is an N:N relationship (a collection) or a property of the record; the
 * read API tells them apart by what the replica holds. */
enum odata_kind { ODATA_RECORD = 1, ODATA_RELATED, ODATA_LIST };

/* Most conditions of a list's $filter, and rows one list may read. */
#define ODATA_MAX_FILTER 5
#define ODATA_MAX_TOP    5000

/* One condition of a list's $filter: <prop> eq <literal>. */
struct odata_cond {
  const char *prop;  /* property as written, e.g. "_parentcustomerid_value" */
  const char *canon; /* literal in altkey.h's canonical form */
  size_t canon_len;
};

/* The most navigation properties one $expand may name (Dataverse: 15 link
 * entities per query). */
#define ODATA_MAX_EXPAND 15

/* One $expand item: a single-valued navigation property, with its own
 * $select (NULL: every column). */
struct odata_cond;
struct odata_expand {
  const char *name;
  const char **select;
  size_t nselect;
  /* collections only: */
  const struct odata_cond *filter;
  size_t nfilter;
  const char *orderby;
  bool orderby_desc;
  long top; /* 0: absent */
};

/* Most columns of an alternate key in a request. */
#define ODATA_MAX_KEY_PARTS 5

/* One column of an alternate key: accounts(accountnumber='A1') */
struct odata_keyval {
  const char *name;  /* column, e.g. "accountnumber" */
  const char *canon; /* value in altkey.h's canonical form, e.g. "sA1" */
  size_t canon_len;
};

struct odata_request {
  enum odata_kind kind;
  const char *entity_set;         /* e.g. "accounts" */
  const char *id;                 /* lower-case GUID; NULL when the record is named by an alternate
                                     key (key/nkey), until the read API resolves it */
  const struct odata_keyval *key; /* alternate key; NULL for a GUID */
  size_t nkey;
  const char *navigation; /* ODATA_RELATED: relationship or property name */
  const char **select;    /* $select names; NULL when absent (all properties) */
  size_t nselect;
  const struct odata_expand *expand; /* $expand items; NULL when absent */
  size_t nexpand;
  struct docjson_annotations annotations; /* Prefer: odata.include-annotations (docjson.h) */
  const char *if_none_match;              /* raw header value or NULL */
  const char *base_url;                   /* "https://host/api/data/v9.2/" for @odata.context */
  /* ODATA_LIST (GET <set>?$filter=...): */
  const struct odata_cond *filter; /* conditions, all must hold; NULL when absent */
  size_t nfilter;
  const char *orderby; /* one property, or NULL (then by id) */
  bool orderby_desc;
  long top;                       /* $top, 0 when absent */
  bool count;                     /* $count=true */
  const char *skiptoken;          /* $skiptoken (opaque, hex) or NULL */
  long maxpagesize;               /* Prefer: odata.maxpagesize, 0 when absent */
  const char *query;              /* the raw query string (for @odata.nextLink) */
  const char *preference_applied; /* value for the Preference-Applied header or NULL */
};

/* An error answered to the client, as Dataverse shapes it:
 * {"error":{"code":"0x80060888","message":"..."}} */
struct odata_error {
  int status;       /* HTTP status */
  const char *code; /* Dataverse-style error code */
  char message[256];
  char correlation_id[24]; /* "" or the id the log line carries (rendered as
                              "correlationId" next to code and message) */
};

/* Dataverse error codes used in answers (the Web API's troubleshooting
 * page shows 0x8006088a for an unknown segment and 0x0 for an unknown
 * property; 0x80040217 is "object does not exist"). */
#define ODATA_CODE_SYNTAX      "0x80060888" /* bad request: query syntax, key, option */
#define ODATA_CODE_SEGMENT     "0x8006088a" /* resource not found for a segment (404) */
#define ODATA_CODE_PROPERTY    "0x0"        /* could not find a property named ... (400) */
#define ODATA_CODE_NOT_FOUND   "0x80040217" /* record does not exist */
#define ODATA_CODE_UNAVAILABLE "0x80040224" /* the replica store cannot be reached */
#define ODATA_CODE_DUPLICATE_KEY                                                                   \
  "0x80060892" /* DuplicateRecordEntityKey: a key's values name more than one record */

/* Parse a read request.
 *   path: the URL path, percent-encoded as received, e.g.
 *         "/api/data/v9.2/accounts(5f1c...)". "/data/v9.N" must be there
 *         (v9.0-v9.2); what comes before it is the Functions route prefix
 *         ("/api" by default, host.json extensions.http.routePrefix)
 *   query: the raw query string without '?', or NULL
 *   prefer, if_none_match: header values or NULL
 *   base_url: scheme://host used in @odata.context (e.g. from Data.req.Url)
 * APP_OK fills *out (strings in arena a). APP_ERR_INPUT fills *out_err with
 * the status (400/404/405/501) and message to answer: 400 for a malformed
 * key, an unsupported or repeated query option or a bad Prefer header; 404
 * for an unknown path; 405 for a method other than GET/HEAD; 501 for what
 * the replica cannot answer (listing an entity set, the service document);
 * 500 when the request needs more memory than the arena allows. */
APP_NODISCARD enum app_result odata_parse(struct arena *a, const char *method, const char *path,
                                          const char *query, const char *prefer,
                                          const char *if_none_match, const char *base_url,
                                          struct odata_request *out, struct odata_error *out_err);

/* Should annotation name (without '@') be included for this request? */
bool odata_annotation_wanted(const struct odata_request *req, const char *name);

/* Does the If-None-Match header match the etag (W/"<version_text>")? */
bool odata_etag_matches(const struct odata_request *req, const char *version_text);

/* One stored property of a record. */
struct odata_prop {
  const char *name;
  const char *json; /* value as JSON text */
  size_t json_len;
  const struct doc_annotation *ann;
  size_t nann;
};

/* Append the JSON of one record: @odata.context (record form, with the
 * $select list), @odata.etag, then the properties in order filtered by
 * $select (the key property is always included) and annotations filtered by
 * the Prefer header. with_context=false omits @odata.context (for the items
 * of a related list). */
APP_NODISCARD enum app_result odata_render_record(const struct odata_request *req,
                                                  const char *entity_set, const char *key_name,
                                                  const char *id, const char *version_text,
                                                  const struct odata_prop *props, size_t nprops,
                                                  bool with_context, struct buf *out);

/* The same without the closing '}', so that expanded navigation
 * properties (odata_render_expanded) can follow; @odata.context then
 * lists the $expand items with their nested $select, as Dataverse does:
 * "#accounts(name,primarycontactid(fullname))/$entity". */
APP_NODISCARD enum app_result odata_render_record_open(const struct odata_request *req,
                                                       const char *entity_set, const char *key_name,
                                                       const char *id, const char *version_text,
                                                       const struct odata_prop *props,
                                                       size_t nprops, bool with_context,
                                                       struct buf *out);

/* Append ,"<name>":<record> (or null when id is NULL) to a record opened
 * by odata_render_record_open: the related record with its @odata.etag
 * and the columns req->select names (req is the expansion's own request:
 * its select is the nested $select). */
APP_NODISCARD enum app_result odata_render_expanded(const struct odata_request *req,
                                                    const char *name, const char *key_name,
                                                    const char *id, const char *version_text,
                                                    const struct odata_prop *props, size_t nprops,
                                                    struct buf *out);

/* Append the answer for one property of a record, as the Web API gives it
 * for GET <set>(<id>)/<property>:
 *   {"@odata.context":"<base>$metadata#<set>(<id>)/<property>","value":<json>} */
APP_NODISCARD enum app_result odata_render_property(const struct odata_request *req,
                                                    const char *entity_set, const char *id,
                                                    const char *name, const char *json,
                                                    size_t json_len, struct buf *out);

/* Begin / end a collection answer: {"@odata.context":"...#<set>","value":[ ... ]} */
APP_NODISCARD enum app_result odata_render_list_begin(const struct odata_request *req,
                                                      const char *item_entity_set, struct buf *out);
APP_NODISCARD enum app_result odata_render_list_end(struct buf *out);

/* {"@odata.context":"<base>$metadata#<set>(<select>)"[,"@odata.count":n],"value":[
 * (count < 0: no count). */
APP_NODISCARD enum app_result odata_render_list_open(const struct odata_request *req,
                                                     const char *entity_set, long count,
                                                     struct buf *out);
/* ]}, or ],"@odata.nextLink":"<base><set>?<query without $skiptoken>&$skiptoken=<token>"} */
APP_NODISCARD enum app_result odata_render_list_close(const struct odata_request *req,
                                                      const char *entity_set,
                                                      const char *next_token, struct buf *out);

/* Append the error body {"error":{"code":...,"message":...}}. */
APP_NODISCARD enum app_result odata_render_error(const struct odata_error *e, struct buf *out);

/* Fill *e; returns APP_ERR_INPUT for convenience. */
enum app_result odata_error_set(struct odata_error *e, int status, const char *code,
                                const char *fmt, ...) APP_PRINTF(4, 5);

/* Is s a GUID (8-4-4-4-12 hex, any case)? */
bool odata_is_guid(const char *s, size_t n);

#endif

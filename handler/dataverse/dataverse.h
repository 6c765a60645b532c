/* dataverse.h - decode a Dataverse RemoteExecutionContext into a cdc_change.
 *
 * Dataverse posts each change of a registered step to Service Bus as a JSON
 * RemoteExecutionContext written by .NET's DataContractJsonSerializer
 * (docs/dataverse.md). dv_decode turns one message body into the canonical
 * change of change.h: operation, table, record id, version, typed columns,
 * images, relationship and origin. Pure code: no I/O, no globals, safe to
 * call from any thread with its own arena.
 *
 * The return code is the poison classification the pipeline acts on:
 *   APP_ERR_UNSUPPORTED  a valid message in a format we do not read: .NET
 *                        binary XML (application/msbin1, the endpoint's
 *                        default) or XML; the message tells the user to
 *                        switch the service endpoint's message format to JSON
 *   APP_ERR_INPUT        malformed: not JSON, not a RemoteExecutionContext,
 *                        a required member missing or of the wrong type
 *   APP_ERR_LIMIT        the body is larger than max_body_bytes, nested
 *                        deeper than max_depth, or needs more memory than
 *                        the arena's ceiling
 * None of them is worth retrying. err->msg names what was wrong and where:
 * a JSON path ("InputParameters[0].value.Attributes[3].value") followed by
 * the key of the innermost key/value pair, e.g.
 *   InputParameters[0].value (key "Target"): expected an Entity, got an
 *   object of __type EntityReference
 * or the line and column of a JSON syntax error. */
#ifndef D365CDC_DATAVERSE_H
#define D365CDC_DATAVERSE_H

#include "common/arena.h"
#include "dataverse/change.h"
#include "common/json.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DV_DEFAULT_MAX_BODY_BYTES ((size_t)1 << 20)

struct dv_options {
  size_t max_body_bytes; /* largest body decoded; 0: DV_DEFAULT_MAX_BODY_BYTES */
  int max_depth;         /* deepest JSON nesting; <= 0: JSON_DEFAULT_MAX_DEPTH */
  /* The message carried the MessageMaxSizeExceeded application property:
   * Dataverse dropped InputParameters, images and ParentContext to fit the
   * 192 KB limit. The change then only says which record changed
   * (needs_reread), whatever is left in the body. */
  bool truncated_hint;
};

/* Decode one Service Bus message body.
 *
 * content_type is the message's ContentType (may be NULL: then the body is
 * sniffed). Parameters such as "; charset=utf-8" are allowed. A UTF-8 BOM,
 * UTF-16 text, a body wrapped as a JSON string literal and the DataContract
 * string preamble of BrokeredMessage(string) are unwrapped (dvbody.h).
 * opt may be NULL (defaults).
 *
 * On APP_OK *out describes the change; every pointer in it (strings,
 * arrays, entities) is borrowed from arena a and valid until the arena is
 * reset or cleaned up. body is not referenced after the call. On failure
 * *out is zeroed and err says why (see the codes above).
 *
 * What the change holds, per MessageName (docs/dataverse.md has the table):
 *   Create          table/id of Target (id from OutputParameters.id, else
 *                   Target.Id, else PrimaryEntityId); attrs = the full
 *                   Target; full_row
 *   Update, Upsert  attrs = the changed columns of Target; an Update whose
 *                   parameters carry EntityMoniker/State/Status (the Update
 *                   event a SetState produces) also gets statecode and
 *                   statuscode. Upsert takes the id from OutputParameters
 *                   Target when present.
 *   Delete          table/id of the Target EntityReference; no attrs
 *   Associate, Disassociate  table/id of Target, relationship (SchemaName),
 *                   relationship_role, related[] (RelatedEntities)
 *   SetState, SetStateDynamicEntity  EntityMoniker; attrs statecode and
 *                   statuscode as DV_OPTIONSET
 *   Assign          Target; attrs ownerid (DV_ENTITYREF); assignee
 *   Merge           Target; subordinate_id; attrs = UpdateContent columns
 *   anything else   CDC_OP_OTHER, table/id from PrimaryEntityName and
 *                   PrimaryEntityId (either may be NULL), no attrs
 * Every op: post_image = the first PostEntityImages entry whose alias is not
 * "AsynchronousStepPrimaryName"; pre_image = the first PreEntityImages
 * entry. FormattedValues are attached to their attributes. GUIDs are
 * lower-cased; numbers keep their lexemes; /Date(ms)/ strings become
 * DV_DATE; unknown __type values are kept as DV_RAW compact JSON.
 * DV_ENTITYCOLLECTION values also carry EntityName in s (may be NULL).
 *
 * Truncated contexts (truncated_hint, or no/null/empty InputParameters for a
 * message that needs them) give needs_reread with table and id from
 * PrimaryEntityName/PrimaryEntityId, no attrs and no images.
 *
 * version follows docs/versioning.md: ts_ms = OperationCreatedOn (top-level),
 * row_version = versionnumber/RowVersion (0 for Create, UINT64_MAX for
 * Delete), tie = dv_version_tie(op, OperationId). origin.message_id is left
 * NULL for the caller; origin depth/stage/mode are -1 when absent. */
APP_NODISCARD enum app_result dv_decode(struct arena *a, const char *content_type, const char *body,
                                        size_t len, const struct dv_options *opt,
                                        struct cdc_change *out, struct app_err *err);

/* Decode an already parsed RemoteExecutionContext (root must live at least
 * as long as the arena's contents). Same results as dv_decode, without the
 * body checks; opt may be NULL. */
APP_NODISCARD enum app_result dv_decode_context(struct arena *a, const struct json *root,
                                                const struct dv_options *opt,
                                                struct cdc_change *out, struct app_err *err);

/* The tie-break of a version (docs/versioning.md): the op's rank in the top
 * 3 bits (create 1, upsert 2, other ops 3, delete 7) over the low 29 bits of
 * the 32-bit FNV-1a hash of the lower-cased operation id (NULL hashes as ""). */
uint32_t dv_version_tie(enum cdc_op op, const char *operation_id);

#endif

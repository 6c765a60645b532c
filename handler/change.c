/* change.c - helpers for the canonical change. */
#include "change.h"

#include <inttypes.h>
#include <stdio.h>

const char *cdc_op_name(enum cdc_op op)
{
  switch (op) {
  case CDC_OP_CREATE: return "create";
  case CDC_OP_UPDATE: return "update";
  case CDC_OP_DELETE: return "delete";
  case CDC_OP_ASSOCIATE: return "associate";
  case CDC_OP_DISASSOCIATE: return "disassociate";
  case CDC_OP_SETSTATE: return "setstate";
  case CDC_OP_ASSIGN: return "assign";
  case CDC_OP_MERGE: return "merge";
  case CDC_OP_UPSERT: return "upsert";
  case CDC_OP_OTHER: return "other";
  }
  return "unknown";
}

void cdc_version_text(const struct cdc_version *v, char *out)
{
  int64_t ts = v->ts_ms < 0 ? 0 : v->ts_ms;
  /* 15 digits hold ms timestamps until the year 33658 */
  if (ts > INT64_C(999999999999999))
    ts = INT64_C(999999999999999);
  snprintf(out, CDC_VERSION_TEXT_LEN + 1, "%015" PRId64 "%020" PRIu64 "%010" PRIu32, ts,
           v->row_version, v->tie);
}

int cdc_version_cmp(const struct cdc_version *a, const struct cdc_version *b)
{
  int64_t ta = a->ts_ms < 0 ? 0 : a->ts_ms, tb = b->ts_ms < 0 ? 0 : b->ts_ms;
  if (ta != tb)
    return ta < tb ? -1 : 1;
  if (a->row_version != b->row_version)
    return a->row_version < b->row_version ? -1 : 1;
  if (a->tie != b->tie)
    return a->tie < b->tie ? -1 : 1;
  return 0;
}

/* change.c - helpers for the canonical change. */
#include "dataverse/change.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
  case CDC_OP_RESTORE: return "restore";
  case CDC_OP_OTHER: return "other";
  }
  return "unknown";
}

/* v as exactly width decimal digits, zero-padded (v fits) */
static void put_digits(char *out, int width, uint64_t v)
{
  while (width-- > 0) {
    out[width] = (char)('0' + v % 10);
    v /= 10;
  }
}

void cdc_version_text(const struct cdc_version *v, char *out)
{
  int64_t ts = v->ts_ms < 0 ? 0 : v->ts_ms;
  /* 15 digits hold ms timestamps until the year 33658 */
  if (ts > INT64_C(999999999999999))
    ts = INT64_C(999999999999999);
  /* what "%015" PRId64 "%020" PRIu64 "%010" PRIu32 prints, once per
   * document, without printf: 20 digits hold any uint64, 10 any uint32 */
  put_digits(out, 15, (uint64_t)ts);
  put_digits(out + 15, 20, v->row_version);
  put_digits(out + 35, 10, v->tie);
  out[CDC_VERSION_TEXT_LEN] = '\0';
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

bool cdc_version_text_tied(const char *a, const char *b)
{
  static const char zero[] = "00000000000000000000";
  unsigned long ta, tb;
  if (strlen(a) != CDC_VERSION_TEXT_LEN || strlen(b) != CDC_VERSION_TEXT_LEN || !strcmp(a, b) ||
      memcmp(a, b, 15) != 0)
    return false;
  if (memcmp(a + 15, b + 15, 20) != 0 && memcmp(a + 15, zero, 20) != 0 &&
      memcmp(b + 15, zero, 20) != 0)
    return false;
  ta = strtoul(a + 35, NULL, 10);
  tb = strtoul(b + 35, NULL, 10);
  return ta >> 29 == tb >> 29;
}

/* a row version that orders: not a Create's 0, not a Delete's 2^64-1 */
static bool real_row_version(const char *v)
{
  return memcmp(v + 15, "00000000000000000000", 20) != 0 &&
         memcmp(v + 15, "18446744073709551615", 20) != 0;
}

int cdc_version_text_order(const char *a, const char *b)
{
  int c;
  if (strlen(a) == CDC_VERSION_TEXT_LEN && strlen(b) == CDC_VERSION_TEXT_LEN &&
      real_row_version(a) && real_row_version(b) && (c = memcmp(a + 15, b + 15, 20)) != 0)
    return c;
  return strcmp(a, b);
}

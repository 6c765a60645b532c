/* fuzz_dvapi - libFuzzer over the Web API page parser and the row ->
 * change conversion (dataverse/dvapi.h), then the mapping of every row.
 *
 * Input: a page body as Dataverse answers it. Invariants (abort on
 * violation): a parsed page's rows are objects or $deletedEntity entries
 * with a GUID id; a change made from a row has the table and a lower-case
 * GUID id, a Delete has the maximum row version; nothing leaks or crashes
 * (ASan/UBSan). */
#include "dataverse/dvapi.h"
#include "map/mapping.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct map_config *map;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct arena a;
  struct dvapi_page p;
  struct app_err e;
  char *body;

  if (!map && map_config_default(&map, &e) != APP_OK)
    abort();
  arena_init(&a, 64u << 20);
  body = arena_alloc(&a, size + 1);
  if (!body)
    abort();
  memcpy(body, data, size);
  body[size] = '\0';
  if (dvapi_page_parse(&a, body, size, &p, &e) == APP_OK) {
    for (size_t i = 0; i < p.nrows; i++) {
      struct cdc_change ch;
      struct doc d;
      enum map_verdict v;
      if (p.rows[i].kind == DVAPI_ROW_DELETED && !dvapi_is_guid(p.rows[i].id))
        abort();
      if (dvapi_row_change(&a, &p.rows[i], "contact", "contactid", 1700000000000, &ch, &e) !=
          APP_OK)
        continue;
      if (!ch.id || !dvapi_is_guid(ch.id) || strcmp(ch.table, "contact") != 0)
        abort();
      for (const char *q = ch.id; *q; q++)
        if (isupper((unsigned char)*q))
          abort();
      if (ch.op == CDC_OP_DELETE && ch.version.row_version != UINT64_MAX)
        abort();
      (void)map_change(map, &a, &ch, &v, &d, &e);
    }
  }
  arena_cleanup(&a);
  return 0;
}

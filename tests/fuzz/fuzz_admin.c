/* fuzz_admin - libFuzzer over the admin API's request parser (admin_parse).
 *
 * Input: newline-separated method, path, query (a missing field is NULL).
 * Invariants checked (abort on violation):
 *   - accepted: status 200, a known operation, an id "<digits>-<digits>" for
 *     the operations on one record, limit 1..1000, a state of
 *     open/replayed/all, kind NULL or poison/deadletter, from/to "-"/"+" or
 *     digits, a DELETE by filter only with a filter or all=true;
 *   - refused: status 400, 404 or 405 and a non-empty reason. */
#include "common/arena.h"
#include "ops/admin.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_id(const char *id)
{
  size_t i, dash = 0;
  if (!*id || id[0] == '-')
    abort();
  for (i = 0; id[i]; i++) {
    if (id[i] == '-')
      dash++;
    else if (!isdigit((unsigned char)id[i]))
      abort();
  }
  if (dash != 1 || id[i - 1] == '-')
    abort();
}

static void check_bound(const char *b, const char *open)
{
  size_t i;
  if (!strcmp(b, open))
    return;
  if (!*b)
    abort();
  for (i = 0; b[i]; i++)
    if (!isdigit((unsigned char)b[i]))
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = malloc(size + 1), *fields[3] = {NULL, NULL, NULL};
  struct admin_request rq;
  struct arena a;
  char why[160];
  int status = 0;
  size_t i, n = 0;
  bool ok;

  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  fields[n++] = text;
  for (i = 0; i < size && n < 3; i++)
    if (text[i] == '\n') {
      text[i] = '\0';
      fields[n++] = text + i + 1;
    }
  arena_init(&a, 1 << 20);
  why[0] = '\0';
  ok = admin_parse(&a, fields[0], fields[1], fields[2], &rq, &status, why, sizeof why);
  if (ok) {
    if (status != 200)
      abort();
    if (rq.op == ADMIN_RECORD || rq.op == ADMIN_REPLAY_ONE)
      check_id(rq.id);
    else if (rq.op != ADMIN_RECORDS && rq.op != ADMIN_REPLAY)
      abort();
    if (rq.op == ADMIN_RECORDS || rq.op == ADMIN_REPLAY) {
      if (rq.f.limit < 1 || rq.f.limit > 1000 || !rq.f.state)
        abort();
      if (strcmp(rq.f.state, "open") && strcmp(rq.f.state, "replayed") && strcmp(rq.f.state, "all"))
        abort();
      if (rq.f.kind && strcmp(rq.f.kind, "poison") && strcmp(rq.f.kind, "deadletter"))
        abort();
      check_bound(rq.f.from, "-");
      check_bound(rq.f.to, "+");
      if (rq.op == ADMIN_RECORDS && rq.del && !rq.f.any && !rq.f.all)
        abort();
    }
  } else if ((status != 400 && status != 404 && status != 405) || !why[0]) {
    abort();
  }
  arena_cleanup(&a);
  free(text);
  return 0;
}

/* bigbatch.c - a large batch invocation for measuring memory per request
 * (tests/scripts/request_memory.sh).
 *
 *   bigbatch FIXTURE GUID N PAD_BYTES > body.json
 *
 * FIXTURE is a RemoteExecutionContext whose record id is GUID (e.g.
 * tests/fixtures/d365/create_account.json). Writes the host's request body
 * for a batch function with binary data: N copies of the message, each
 * with its own record id (GUID replaced) and a "description" attribute of
 * PAD_BYTES bytes added at the front of its Attributes, base64-encoded, in
 * the double-encoded Data.msgs array the host sends, plus MessageIdArray
 * and DeliveryCountArray metadata. */
#include "common/base64.h"
#include "common/buf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  struct buf b;
  char chunk[65536];
  size_t n;
  buf_init(&b, 0);
  if (!f)
    return NULL;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (buf_append(&b, chunk, n) != APP_OK)
      break;
  fclose(f);
  return buf_steal(&b, len);
}

/* msg: the fixture with every `guid` replaced by `id` and the padding. */
static int build(struct buf *msg, const char *fx, const char *guid, const char *id, size_t pad)
{
  static const char attrs[] = "\"Attributes\":[";
  const char *p = fx, *hit;
  size_t glen = strlen(guid);
  bool padded = false;

  while ((hit = strstr(p, guid)) != NULL || (!padded && strstr(p, attrs))) {
    const char *a = padded ? NULL : strstr(p, attrs);
    if (a && (!hit || a < hit)) {
      size_t i;
      if (buf_append(msg, p, (size_t)(a - p) + sizeof attrs - 1) != APP_OK ||
          buf_append_str(msg, "{\"key\":\"description\",\"value\":\"") != APP_OK)
        return -1;
      for (i = 0; i < pad; i++)
        if (buf_append_char(msg, 'd') != APP_OK)
          return -1;
      if (buf_append_str(msg, "\"},") != APP_OK)
        return -1;
      p = a + sizeof attrs - 1;
      padded = true;
      continue;
    }
    if (buf_append(msg, p, (size_t)(hit - p)) != APP_OK || buf_append_str(msg, id) != APP_OK)
      return -1;
    p = hit + glen;
  }
  return buf_append_str(msg, p) == APP_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
  size_t len, n, pad, i;
  char *fx;
  struct buf msg, b64;

  if (argc != 5) {
    fprintf(stderr, "usage: bigbatch FIXTURE GUID N PAD_BYTES\n");
    return 2;
  }
  fx = slurp(argv[1], &len);
  n = strtoul(argv[3], NULL, 10);
  pad = strtoul(argv[4], NULL, 10);
  if (!fx || strlen(argv[2]) != 36) {
    fprintf(stderr, "bigbatch: cannot read %s, or %s is not a GUID\n", argv[1], argv[2]);
    return 1;
  }
  /* the msgs array is a JSON string (double-encoded): its quotes escaped */
  printf("{\"Data\":{\"msgs\":\"[");
  for (i = 0; i < n; i++) {
    char id[37];
    snprintf(id, sizeof id, "%08zx-0000-4000-8000-%012zx", i + 1, i + 1);
    buf_init(&msg, 0);
    buf_init(&b64, 0);
    if (build(&msg, fx, argv[2], id, pad) != 0 ||
        base64_encode_buf(&b64, msg.data, msg.len) != APP_OK) {
      fprintf(stderr, "bigbatch: out of memory\n");
      return 1;
    }
    printf("%s\\\"%s\\\"", i ? "," : "", b64.data);
    buf_cleanup(&msg);
    buf_cleanup(&b64);
  }
  printf("]\"},\"Metadata\":{\"MessageIdArray\":\"[");
  for (i = 0; i < n; i++)
    printf("%s\\\"m%zu\\\"", i ? "," : "", i);
  printf("]\",\"DeliveryCountArray\":\"[");
  for (i = 0; i < n; i++)
    printf("%s1", i ? "," : "");
  printf("]\"}}");
  free(fx);
  return 0;
}

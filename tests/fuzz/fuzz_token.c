/* fuzz_token - libFuzzer over the token response parser (identity/token.h).
 *
 * Input: first byte picks the HTTP status (200, 400, 401, 403, 429, 500,
 * 503 or 302), the rest is the response body. Invariants checked (abort on
 * violation):
 *   - accepted: status 200, a non-empty token of printable ASCII without
 *     spaces, at most IDTOK_MAX_TOKEN_BYTES, an expiry after now;
 *   - refused: a result the parser documents, a message that is printable
 *     and never contains the token the body might carry. */
#include "identity/token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 400, 401, 403, 429, 500, 503, 302};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct idtok t = {0};
  struct app_err err;
  enum app_result r;
  long status;
  const int64_t now = 1700000000;
  size_t i;

  if (size < 1)
    return 0;
  status = statuses[data[0] % 8];
  app_err_clear(&err);
  r = idtok_parse(status, (const char *)data + 1, size - 1, now, &t, &err);
  if (r == APP_OK) {
    size_t n;
    if (status != 200 || !t.access_token)
      abort();
    n = strlen(t.access_token);
    if (n == 0 || n > IDTOK_MAX_TOKEN_BYTES || t.expires_s <= now)
      abort();
    for (i = 0; i < n; i++)
      if (t.access_token[i] <= 0x20 || t.access_token[i] >= 0x7f)
        abort();
    if (t.refresh_s && (t.refresh_s >= t.expires_s))
      abort();
  } else {
    if (t.access_token)
      abort();
    if (r != APP_ERR_INPUT && r != APP_ERR_HTTP && r != APP_ERR_CONFIG && r != APP_ERR_LIMIT)
      abort();
    if (!err.msg[0] || err.code != r)
      abort();
    for (i = 0; err.msg[i]; i++)
      if ((unsigned char)err.msg[i] < 0x20)
        abort();
  }
  idtok_cleanup(&t);
  return 0;
}

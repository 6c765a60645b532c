/* fuzz_reqhead - libFuzzer over the front's screen of a request head
 * (host/reqhead.c). Invariants (abort on violation): the verdict is one of
 * the four; REQHEAD_OK has a head length within the input that ends with
 * a line feed; a refusal has a reason; the request line of an accepted
 * head has no NUL or control byte. */
#include "host/reqhead.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct reqhead_result r;
  const char *d = (const char *)data;
  size_t i;

  reqhead_screen(d, size, 1ULL << 26, &r);
  switch (r.verdict) {
  case REQHEAD_INCOMPLETE: break;
  case REQHEAD_OK:
    if (r.head_len == 0 || r.head_len > size || d[r.head_len - 1] != '\n')
      abort();
    for (i = 0; i < r.head_len && d[i] != '\n'; i++) {
      unsigned char c = (unsigned char)d[i];
      if ((c < 0x20 && !(c == '\r' && d[i + 1] == '\n')) || c == 0x7f)
        abort();
    }
    break;
  case REQHEAD_BAD:
  case REQHEAD_TOO_LARGE:
    if (!r.why || !*r.why)
      abort();
    break;
  default: abort();
  }
  return 0;
}

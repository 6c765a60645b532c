/* fuzz_envelope.c - libFuzzer over envelope_parse (handler/host/envelope.c) and
 * the response builder.
 *
 * The first input byte picks how Data.<binding> is declared in function.json
 * (binary/string/unset x one/many, HTTP, unknown); the rest is the request
 * body as the host would POST it. Whatever the input, parsing must return a
 * result without crashing, leaking or touching memory outside the arena, and
 * every message it returns must have a consistent body/length; and
 * envelope_parse_mutable (in place, what the handler runs) must give the
 * same result, message and invocation (tests/unit/envelope_same.h). */
#include "common/arena.h"
#include "host/envelope.h"
#include "../unit/envelope_same.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fn_name[] = "Changes";
static char fn_path[] = "Changes/function.json";
static char sb_type[] = "serviceBusTrigger";
static char http_type[] = "httpTrigger";
static char binding[] = "msgs";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const struct envelope_limits lim = {4096, 64, 32};
  struct function_def fn;
  struct arena a;
  struct invocation *inv = NULL;
  struct app_err err;
  unsigned sel;
  size_t i;

  if (size < 1)
    return 0;
  sel = data[0];
  memset(&fn, 0, sizeof fn);
  fn.name = fn_name;
  fn.path = fn_path;
  fn.trigger_name = binding;
  fn.trigger = (sel & 0x10) ? FN_TRIGGER_HTTP : FN_TRIGGER_SERVICE_BUS;
  fn.trigger_type = (sel & 0x10) ? http_type : sb_type;
  fn.data_type = (enum fn_data_type)(sel % 4);
  fn.cardinality = (enum fn_cardinality)((sel >> 2) % 3);

  /* the handler parses in place (envelope_parse_mutable): same results */
  if (envelope_same_check((const char *)data + 1, size - 1, (sel & 0x20) ? NULL : &fn, &lim))
    abort();
  arena_init(&a, 1 << 22);
  if (envelope_parse(&a, (const char *)data + 1, size - 1, (sel & 0x20) ? NULL : &fn, &lim, &inv,
                     &err) == APP_OK) {
    struct envelope_response r;
    struct buf out;
    envelope_response_init(&r, 1 << 20);
    for (i = 0; i < inv->nmessages; i++) {
      const struct envelope_message *m = &inv->messages[i];
      if (m->oversize ? m->body != NULL : (m->body == NULL || m->body[m->body_len] != '\0'))
        abort();
      if (envelope_response_add_log(&r, "%zu %s", m->body_len,
                                    m->message_id ? m->message_id : "-") != APP_OK)
        break;
      if (m->body &&
          envelope_response_add_output_string(&r, "out", m->body, m->body_len, &err) != APP_OK)
        break;
    }
    if (inv->kind == ENVELOPE_HTTP && inv->http.body && inv->http.body[inv->http.body_len] != '\0')
      abort();
    buf_init(&out, 0);
    if (envelope_response_write(&r, &out) == APP_OK && (!out.data || out.data[0] != '{'))
      abort();
    buf_cleanup(&out);
    envelope_response_cleanup(&r);
  } else if (!err.msg[0]) {
    abort(); /* every failure explains itself */
  }
  arena_cleanup(&a);
  return 0;
}

/* test_altkey.c - canonical alternate-key values: a JSON value the
 * pipeline writes and the OData literal an app sends meet in one form. */
#include "map/altkey.h"
#include "check.h"

#include <string.h>

static void canon_json(const char *json, const char *want)
{
  struct arena a;
  const char *c = NULL;
  size_t n = 0;
  bool ok;
  arena_init(&a, 0);
  ok = altkey_canon_json(&a, json, strlen(json), &c, &n);
  if (!want) {
    CHECK_MSG(!ok, "%s is not a key value", json);
  } else {
    CHECK_MSG(ok, "%s is a key value", json);
    if (ok) {
      CHECK_STREQ(c, want);
      CHECK_INTEQ(n, strlen(want));
    }
  }
  arena_cleanup(&a);
}

static void canon_prop(enum doc_kind kind, const char *text, const char *want)
{
  struct doc_prop p;
  struct buf b;
  bool ok = false;
  memset(&p, 0, sizeof p);
  p.kind = kind;
  p.text = text;
  p.text_len = text ? strlen(text) : 0;
  buf_init(&b, 0);
  CHECK(altkey_canon_prop(&p, &b, &ok) == APP_OK);
  CHECK_INTEQ(ok, want != NULL);
  if (want && ok) {
    CHECK_INTEQ(b.len, strlen(want));
    CHECK(memcmp(b.data, want, b.len) == 0);
  }
  buf_cleanup(&b);
}

int main(void)
{
  struct buf b;
  TEST_CASE("JSON values");
  canon_json("\"A1\"", "sA1");
  canon_json("\"a\\u00e9\\\"\"", "sa\xc3\xa9\"");
  canon_json("2500000.0000000000", "n2500000");
  canon_json("1.50", "n1.5");
  canon_json("-0.0", "n0");
  canon_json("0.0", "n0");
  canon_json("-12", "n-12");
  canon_json("1e5", NULL);
  canon_json("null", NULL);
  canon_json("true", NULL);
  canon_json("[1]", NULL);
  canon_json("{\"a\":1}", NULL);

  TEST_CASE("document properties (the writer) meet JSON values (the reader)");
  canon_prop(DOC_STRING, "A1", "sA1");
  canon_prop(DOC_NUMBER, "1.500", "n1.5");
  canon_prop(DOC_NUMBER, "12", "n12");
  canon_prop(DOC_NULL, NULL, NULL);
  canon_prop(DOC_BOOL, "true", NULL);
  canon_prop(DOC_NUMBER, "1e5", NULL);

  TEST_CASE("index key");
  buf_init(&b, 0);
  CHECK(altkey_index_key(&b, "d365", "account", "ak_accountnumber", "sA1", 3) == APP_OK);
  CHECK(b.len == strlen("d365:akey:account:ak_accountnumber:sA1") &&
        memcmp(b.data, "d365:akey:account:ak_accountnumber:sA1", b.len) == 0);
  buf_cleanup(&b);
  return check_report("test_altkey");
}

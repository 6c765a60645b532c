/* test_redis_bindings.c - Outputs for a Redis output binding (pure). */
#include "common/arena.h"
#include "common/json.h"
#include "redis/redis_bindings.h"
#include "check.h"

#include <stdlib.h>

#define S(lit) lit, sizeof(lit) - 1
#define VER    "001731053106000000000000000000123450000000007"

static const struct doc_annotation name_ann[] = {
    {"OData.Community.Display.V1.FormattedValue", S("\"Contoso  Ltd\"")}};
static const struct doc_prop props[] = {
    {"name", "name", DOC_STRING, DOC_T_TEXT, S("\"Contoso  Ltd \\\"HQ\\\"\""), NULL, 0, name_ann,
     1},
    {"revenue", "revenue", DOC_NUMBER, DOC_T_DECIMAL, S("1000.5000000000"), NULL, 0, NULL, 0},
    {"description", "description", DOC_STRING, DOC_T_TEXT, S("\"50% off\\ttabs\\nnew line\""), NULL,
     0, NULL, 0},
};

static struct doc make_doc(enum cdc_op op, bool full)
{
  struct doc d;
  memset(&d, 0, sizeof d);
  d.op = op;
  d.table = "account";
  d.entity_set = "accounts";
  d.key_name = "accountid";
  d.id = "5f1c2a3b-0000-0000-0000-000000000001";
  memcpy(d.version_text, VER, sizeof d.version_text);
  d.version_text[CDC_VERSION_TEXT_LEN] = '\0';
  d.op_time_ms = 1731053106000;
  if (op != CDC_OP_DELETE && op != CDC_OP_ASSOCIATE && op != CDC_OP_DISASSOCIATE) {
    d.props = props;
    d.nprops = 3;
  }
  d.full_row = full;
  return d;
}

static const struct doc_related rel[] = {
    {"lead", "leads", "00000000-0000-0000-0000-0000000000aa"},
    {"lead", "leads", "00000000-0000-0000-0000-0000000000bb"},
};

/* Parse the fragment as {fragment} and check each item has no space and
 * decodes back to what we expect. */
static void check_no_split(const char *frag, size_t nitems_expected)
{
  struct arena a;
  struct json *root = NULL;
  const struct json *arr, *it;
  struct buf b;
  size_t n = 0;
  buf_init(&b, 0);
  arena_init(&a, 0);
  CHECK_INTEQ(buf_printf(&b, "{%s}", frag), APP_OK);
  CHECK_INTEQ(json_parse(&a, b.data, b.len, 16, &root, NULL), APP_OK);
  arr = root ? root->child : NULL;
  CHECK(json_is(arr, JSON_ARRAY));
  for (it = arr ? arr->child : NULL; it; it = it->next) {
    CHECK(json_is(it, JSON_STRING));
    /* no empty argument, no control characters */
    CHECK(strstr(it->str, "  ") == NULL);
    CHECK(it->str[0] != ' ' && it->str[it->len - 1] != ' ');
    n++;
  }
  CHECK_INTEQ(n, nitems_expected);
  arena_cleanup(&a);
  buf_cleanup(&b);
}

static void test_set(void)
{
  struct doc full = make_doc(CDC_OP_CREATE, true), partial = make_doc(CDC_OP_UPDATE, false);
  struct doc del = make_doc(CDC_OP_DELETE, false);
  const struct doc *docs[] = {&full, &partial, &del};
  struct buf out;
  struct app_err err = {0};

  TEST_CASE("SET: full rows only, encoded JSON, EX ttl");
  full.ttl_seconds = 3600;
  buf_init(&out, 0);
  CHECK_INTEQ(redis_bindings_outputs(docs, 3, "redisOut", "set", "d365", &out, &err), APP_OK);
  CHECK_STREQ(out.data,
              "\"redisOut\":[\"d365:{account:5f1c2a3b-0000-0000-0000-000000000001} "
              "{\\\"@odata.etag\\\":\\\"W/\\\\\\\"" VER "\\\\\\\"\\\","
              "\\\"name\\\":\\\"Contoso%20%20Ltd%20\\\\\\\"HQ\\\\\\\"\\\","
              "\\\"name@OData.Community.Display.V1.FormattedValue\\\":\\\"Contoso%20%20Ltd\\\","
              "\\\"revenue\\\":1000.5000000000,"
              "\\\"description\\\":\\\"50%25%20off\\\\ttabs\\\\nnew%20line\\\"} EX 3600\"]");
  check_no_split(out.data, 1);
  CHECK(redis_bindings_expressible("SET", &full));
  CHECK(!redis_bindings_expressible("SET", &partial));
  CHECK(!redis_bindings_expressible("SET", &del));
  buf_cleanup(&out);
}

static void test_hset_del(void)
{
  struct doc upd = make_doc(CDC_OP_UPDATE, false), del = make_doc(CDC_OP_DELETE, false);
  struct doc reread = make_doc(CDC_OP_UPDATE, false);
  const struct doc *docs[] = {&upd, &del, &reread};
  struct buf out;
  struct app_err err = {0};

  reread.needs_reread = true;
  TEST_CASE("HSET: one field per property and annotation");
  buf_init(&out, 0);
  CHECK_INTEQ(redis_bindings_outputs(docs, 3, "h", "HSET", "d365", &out, &err), APP_OK);
  CHECK_STREQ(out.data, "\"h\":[\"d365:{account:5f1c2a3b-0000-0000-0000-000000000001} "
                        "name \\\"Contoso%20%20Ltd%20\\\\\\\"HQ\\\\\\\"\\\" "
                        "name@OData.Community.Display.V1.FormattedValue \\\"Contoso%20%20Ltd\\\" "
                        "revenue 1000.5000000000 "
                        "description \\\"50%25%20off\\\\ttabs\\\\nnew%20line\\\" "
                        "_version " VER " _op_time 1731053106000\"]");
  check_no_split(out.data, 1);

  TEST_CASE("DEL: deletes only");
  buf_reset(&out);
  CHECK_INTEQ(redis_bindings_outputs(docs, 3, "d", "DEL", "d365", &out, &err), APP_OK);
  CHECK_STREQ(out.data, "\"d\":[\"d365:{account:5f1c2a3b-0000-0000-0000-000000000001}\"]");
  CHECK(!redis_bindings_expressible("DEL", &reread));
  CHECK(!redis_bindings_expressible("HSET", &reread));

  TEST_CASE("nothing expressible: an empty array");
  buf_reset(&out);
  CHECK_INTEQ(redis_bindings_outputs(docs + 1, 1, "h", "HSET", "d365", &out, &err), APP_OK);
  CHECK_STREQ(out.data, "\"h\":[]");
  buf_cleanup(&out);
}

static void test_sets(void)
{
  struct doc as = make_doc(CDC_OP_ASSOCIATE, false), dis = make_doc(CDC_OP_DISASSOCIATE, false);
  const struct doc *docs[] = {&as, &dis};
  struct buf out;
  struct app_err err = {0};

  as.relationship = dis.relationship = "accountleads_association";
  as.related = rel;
  as.nrelated = 2;
  dis.related = rel + 1;
  dis.nrelated = 1;
  TEST_CASE("SADD: both directions");
  buf_init(&out, 0);
  CHECK_INTEQ(redis_bindings_outputs(docs, 2, "s", "SADD", "p", &out, &err), APP_OK);
  CHECK_STREQ(out.data,
              "\"s\":[\"p:{account:5f1c2a3b-0000-0000-0000-000000000001}:rel:accountleads_"
              "association lead:00000000-0000-0000-0000-0000000000aa "
              "lead:00000000-0000-0000-0000-0000000000bb\","
              "\"p:{lead:00000000-0000-0000-0000-0000000000aa}:rel:accountleads_association "
              "account:5f1c2a3b-0000-0000-0000-000000000001\","
              "\"p:{lead:00000000-0000-0000-0000-0000000000bb}:rel:accountleads_association "
              "account:5f1c2a3b-0000-0000-0000-000000000001\"]");
  check_no_split(out.data, 3);

  TEST_CASE("SREM");
  buf_reset(&out);
  CHECK_INTEQ(redis_bindings_outputs(docs, 2, "s", "srem", "p", &out, &err), APP_OK);
  CHECK_STREQ(out.data,
              "\"s\":[\"p:{account:5f1c2a3b-0000-0000-0000-000000000001}:rel:accountleads_"
              "association lead:00000000-0000-0000-0000-0000000000bb\","
              "\"p:{lead:00000000-0000-0000-0000-0000000000bb}:rel:accountleads_association "
              "account:5f1c2a3b-0000-0000-0000-000000000001\"]");
  buf_cleanup(&out);
}

static void test_refusals(void)
{
  struct doc d = make_doc(CDC_OP_UPDATE, false);
  const struct doc *docs[] = {&d};
  struct buf out;
  struct app_err err = {0};

  buf_init(&out, 0);
  TEST_CASE("unsupported command");
  CHECK_INTEQ(buf_append_str(&out, "{"), APP_OK);
  CHECK_INTEQ(redis_bindings_outputs(docs, 1, "x", "LPUSH", "p", &out, &err), APP_ERR_UNSUPPORTED);
  CHECK_CONTAINS(err.msg, "command 'LPUSH' is not supported");
  CHECK_STREQ(out.data, "{");

  TEST_CASE("a table that would break the key");
  d.table = "acc ount";
  CHECK_INTEQ(redis_bindings_outputs(docs, 1, "x", "HSET", "p", &out, &err), APP_ERR_INPUT);
  CHECK_CONTAINS(err.msg, "cannot be a key");
  CHECK_STREQ(out.data, "{");

  TEST_CASE("the output cap");
  d.table = "account";
  buf_cleanup(&out);
  buf_init(&out, 40);
  CHECK_INTEQ(redis_bindings_outputs(docs, 1, "x", "HSET", "p", &out, &err), APP_ERR_LIMIT);
  CHECK_INTEQ(out.len, 0);
  buf_cleanup(&out);

  TEST_CASE("encoding");
  buf_init(&out, 0);
  CHECK_INTEQ(redis_bindings_encode(&out, S("a b%c\x01\x7f\xc3\xa9+")), APP_OK);
  CHECK_STREQ(out.data, "a%20b%25c%01%7F\xc3\xa9+");
  buf_cleanup(&out);
}

int main(void)
{
  test_set();
  test_hset_del();
  test_sets();
  test_refusals();
  return check_report("test_redis_bindings");
}

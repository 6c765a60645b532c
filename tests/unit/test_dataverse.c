/* test_dataverse.c - RemoteExecutionContext decoding (dataverse.h, dvbody.h).
 *
 * Fixtures in tests/fixtures/d365 are decoded and checked against their
 * README facts and more; each is re-encoded by the test into every wrapping
 * the decoder must accept (pretty/compact, escaped/unescaped '/', BOM,
 * string literal, DataContract preamble, UTF-16) and must decode to the
 * same canonical dump; truncated forms must keep table, id and version.
 * A table of invalid inputs checks each result code and error text. */
#include "common/arena.h"
#include "common/buf.h"
#include "dataverse/dataverse.h"
#include "dataverse/dvbody.h"
#include "common/json.h"
#include "check.h"
#include "dv_dump.h"

#include <dirent.h>
#include <stdlib.h>
#include "testfile.h"

/* ---- helpers ---------------------------------------------------------------- */

static struct arena arena;

static char *fixture(const char *name, size_t *out_len)
{
  char path[512];
  const char *root = getenv("ROOT");
  char *data;
  snprintf(path, sizeof path, "%s/tests/fixtures/d365/%s", root ? root : ".", name);
  data = test_read_file(path, out_len);
  if (!data) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(1);
  }
  return data;
}

static enum app_result decode_opt(const char *ct, const char *body, size_t len,
                                  const struct dv_options *opt, struct cdc_change *ch,
                                  struct app_err *err)
{
  arena_reset(&arena);
  app_err_clear(err);
  return dv_decode(&arena, ct, body, len, opt, ch, err);
}

static enum app_result decode(const char *ct, const char *body, size_t len, struct cdc_change *ch,
                              struct app_err *err)
{
  return decode_opt(ct, body, len, NULL, ch, err);
}

/* Full dump of a decode, or "ERROR <code>: <msg>"; caller frees. */
static char *dump_of(const char *ct, const char *body, size_t len, const struct dv_options *opt)
{
  struct cdc_change ch;
  struct app_err err;
  struct buf b;
  buf_init(&b, 0);
  if (decode_opt(ct, body, len, opt, &ch, &err) == APP_OK)
    dv_dump(&b, &ch);
  else
    dd_fmt(&b, "ERROR %s: %s", app_result_str(err.code), err.msg);
  dd_fmt(&b, "%s", "");
  return buf_steal(&b, NULL);
}

static const struct dv_attr *attr(const struct dv_attr *attrs, size_t n, const char *name)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (!strcmp(attrs[i].name, name))
      return &attrs[i];
  return NULL;
}

static const struct dv_value *val(const struct cdc_change *ch, const char *name)
{
  const struct dv_attr *a = attr(ch->attrs, ch->nattrs, name);
  static const struct dv_value missing = {.kind = DV_RAW, .s = "(missing)"};
  return a ? &a->value : &missing;
}

static uint32_t fnv1a(const char *s)
{
  uint32_t h = 0x811c9dc5u;
  for (; *s; s++) {
    h ^= (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    h *= 0x01000193u;
  }
  return h;
}

/* ---- re-encoding the fixtures ------------------------------------------------ */

/* A JSON string as DataContractJsonSerializer writes it: '"', '\\' and
 * controls escaped (\u00xx, lower case), '/' optionally escaped, the rest raw. */
static void put_str(struct buf *b, const char *s, size_t n, bool esc_slash)
{
  size_t i;
  dd_fmt(b, "\"");
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\')
      dd_fmt(b, "\\%c", ch);
    else if (ch == '/' && esc_slash)
      dd_fmt(b, "\\/");
    else if (ch < 0x20)
      dd_fmt(b, "\\u%04x", ch);
    else if (buf_append_char(b, (char)ch) != APP_OK)
      abort();
  }
  dd_fmt(b, "\"");
}

static void put_json(struct buf *b, const struct json *v, bool pretty, bool esc, int depth,
                     const char *const *skip)
{
  const struct json *c;
  bool first = true;
  switch (v->type) {
  case JSON_NULL: dd_fmt(b, "null"); return;
  case JSON_TRUE: dd_fmt(b, "true"); return;
  case JSON_FALSE: dd_fmt(b, "false"); return;
  case JSON_NUMBER: dd_fmt(b, "%.*s", (int)v->len, v->str); return;
  case JSON_STRING: put_str(b, v->str, v->len, esc); return;
  default: break;
  }
  dd_fmt(b, "%c", v->type == JSON_ARRAY ? '[' : '{');
  for (c = v->child; c; c = c->next) {
    const char *const *s;
    bool skipped = false;
    for (s = skip; s && *s && c->key; s++)
      skipped = skipped || !strcmp(*s, c->key);
    if (skipped)
      continue;
    if (!first)
      dd_fmt(b, ",");
    first = false;
    if (pretty) {
      dd_fmt(b, "\n");
      dd_indent(b, depth + 1);
    }
    if (c->key) {
      put_str(b, c->key, c->key_len, esc);
      dd_fmt(b, pretty ? ": " : ":");
    }
    put_json(b, c, pretty, esc, depth + 1, NULL);
  }
  if (pretty && !first) {
    dd_fmt(b, "\n");
    dd_indent(b, depth);
  }
  dd_fmt(b, "%c", v->type == JSON_ARRAY ? ']' : '}');
}

static char *reencode(const char *body, size_t len, bool pretty, bool esc, const char *const *skip,
                      size_t *out_len)
{
  struct arena a;
  struct json *root;
  struct app_err err;
  struct buf b;
  char *out;
  arena_init(&a, 0);
  buf_init(&b, 0);
  if (json_parse(&a, body, len, 64, &root, &err) != APP_OK)
    abort();
  put_json(&b, root, pretty, esc, 0, skip);
  arena_cleanup(&a);
  dd_fmt(&b, "%s", "");
  out = buf_steal(&b, out_len);
  return out;
}

/* Replace top-level member `name` with the raw JSON text `with`. */
static char *replace_member(const char *body, size_t len, const char *name, const char *with,
                            size_t *out_len)
{
  const char *skip[] = {name, NULL};
  size_t n;
  char *s = reencode(body, len, false, true, skip, &n), *out;
  struct buf b;
  buf_init(&b, 0);
  dd_fmt(&b, "{\"%s\":%s,", name, with);
  if (buf_append(&b, s + 1, n - 1) != APP_OK)
    abort();
  free(s);
  out = buf_steal(&b, out_len);
  return out;
}

static void utf8_to_utf16le(struct buf *b, const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    unsigned cp;
    size_t k;
    if (c < 0x80) {
      cp = c;
      k = 1;
    } else if (c < 0xE0) {
      cp = c & 0x1F;
      k = 2;
    } else if (c < 0xF0) {
      cp = c & 0x0F;
      k = 3;
    } else {
      cp = c & 0x07;
      k = 4;
    }
    for (size_t j = 1; j < k; j++)
      cp = cp << 6 | ((unsigned char)s[i + j] & 0x3F);
    i += k;
    if (cp >= 0x10000) {
      unsigned hi = 0xD800 + ((cp - 0x10000) >> 10), lo = 0xDC00 + ((cp - 0x10000) & 0x3FF);
      char u[4] = {(char)(hi & 0xFF), (char)(hi >> 8), (char)(lo & 0xFF), (char)(lo >> 8)};
      if (buf_append(b, u, 4) != APP_OK)
        abort();
    } else {
      char u[2] = {(char)(cp & 0xFF), (char)(cp >> 8)};
      if (buf_append(b, u, 2) != APP_OK)
        abort();
    }
  }
}

static void put_bytes(struct buf *b, const void *p, size_t n)
{
  if (buf_append(b, p, n) != APP_OK)
    abort();
}

/* A text record as XmlBinaryNodeWriter writes it: the 8/16/32-bit length
 * form by size, type+1 when it closes the element. */
static void put_record(struct buf *b, unsigned type8, const char *p, size_t n, bool last)
{
  unsigned char h[5];
  size_t hn;
  if (n < 256) {
    h[0] = (unsigned char)(type8 + last);
    h[1] = (unsigned char)n;
    hn = 2;
  } else if (n < 65536) {
    h[0] = (unsigned char)(type8 + 2 + last);
    h[1] = (unsigned char)(n & 0xFF);
    h[2] = (unsigned char)(n >> 8);
    hn = 3;
  } else {
    h[0] = (unsigned char)(type8 + 4 + last);
    h[1] = (unsigned char)(n & 0xFF);
    h[2] = (unsigned char)(n >> 8 & 0xFF);
    h[3] = (unsigned char)(n >> 16 & 0xFF);
    h[4] = (unsigned char)(n >> 24);
    hn = 5;
  }
  put_bytes(b, h, hn);
  put_bytes(b, p, n);
}

enum pre_mode { PRE_WRITER, PRE_SPLIT, PRE_UTF16, PRE_BYTES };

/* The DataContract body of BrokeredMessage(string) (or byte[] for PRE_BYTES). */
static char *preamble(const char *text, size_t n, enum pre_mode mode, size_t *out_len)
{
  static const char ns[] = "http://schemas.microsoft.com/2003/10/Serialization/";
  struct buf b;
  buf_init(&b, 0);
  if (mode == PRE_BYTES)
    put_bytes(&b,
              "\x40\x0c"
              "base64Binary",
              14);
  else
    put_bytes(&b,
              "\x40\x06"
              "string",
              8);
  put_bytes(&b, "\x08\x33", 2);
  put_bytes(&b, ns, sizeof ns - 1);
  if (mode == PRE_WRITER) {
    put_record(&b, 0x98, text, n, true);
  } else if (mode == PRE_BYTES) {
    put_record(&b, 0x9E, text, n, true);
  } else if (mode == PRE_UTF16) {
    struct buf u;
    buf_init(&u, 0);
    utf8_to_utf16le(&u, text, n);
    put_record(&b, 0xB6, u.data, u.len, true);
    buf_cleanup(&u);
  } else {
    /* several Chars8Text records cut at UTF-8 character boundaries, then
     * EndElement */
    size_t i = 0;
    while (i < n) {
      size_t k = n - i < 200 ? n - i : 200;
      while (i + k < n && ((unsigned char)text[i + k] & 0xC0) == 0x80)
        k--;
      put_record(&b, 0x98, text + i, k, false);
      i += k;
    }
    put_bytes(&b, "\x01", 1);
  }
  return buf_steal(&b, out_len);
}

static char *string_wrap(const char *text, size_t n, size_t *out_len)
{
  struct buf b;
  buf_init(&b, 0);
  if (buf_append_json_str(&b, text, n) != APP_OK)
    abort();
  return buf_steal(&b, out_len);
}

static char *prefix(const char *pre, size_t pn, const char *text, size_t n, size_t *out_len)
{
  struct buf b;
  buf_init(&b, 0);
  put_bytes(&b, pre, pn);
  put_bytes(&b, text, n);
  return buf_steal(&b, out_len);
}

static char *utf16_bom(const char *text, size_t n, size_t *out_len)
{
  struct buf b;
  buf_init(&b, 0);
  put_bytes(&b, "\xFF\xFE", 2);
  utf8_to_utf16le(&b, text, n);
  return buf_steal(&b, out_len);
}

/* ---- fixtures: facts ---------------------------------------------------------- */

static void test_create(void)
{
  size_t len;
  char *body = fixture("create_account.json", &len);
  struct cdc_change ch;
  struct app_err err;
  const struct dv_value *v;

  TEST_CASE("create_account");
  CHECK_INTEQ(decode("application/json", body, len, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.op, CDC_OP_CREATE);
  CHECK_STREQ(ch.message, "Create");
  CHECK_STREQ(ch.table, "account");
  CHECK_STREQ(ch.id, "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1");
  CHECK_INTEQ(ch.nattrs, 23);
  CHECK(ch.full_row);
  CHECK(!ch.needs_reread);
  /* top-level OperationCreatedOn, not ParentContext's 1731053106000 */
  CHECK_INTEQ(ch.op_time_ms, 1731053107412LL);
  CHECK_INTEQ(ch.version.ts_ms, 1731053107412LL);
  CHECK_INTEQ(ch.version.row_version, 0);
  CHECK_INTEQ(ch.version.tie,
              (1u << 29) | (fnv1a("f8a13ba5-d91d-4dd5-936c-7f3b6d6adb95") & 0x1FFFFFFFu));
  v = val(&ch, "createdon");
  CHECK_INTEQ(v->kind, DV_DATE);
  CHECK_INTEQ(v->date_ms, 1731053106000LL);
  CHECK(!v->date_has_offset);
  v = val(&ch, "revenue");
  CHECK_INTEQ(v->kind, DV_MONEY);
  CHECK_STREQ(v->s, "2500000");
  v = val(&ch, "exchangerate");
  CHECK_INTEQ(v->kind, DV_NUMBER);
  CHECK_STREQ(v->s, "1.0000000000");
  CHECK_INTEQ(v->len, 12);
  CHECK_STREQ(attr(ch.attrs, ch.nattrs, "exchangerate")->formatted, "1.0000000000");
  CHECK_STREQ(attr(ch.attrs, ch.nattrs, "revenue")->formatted, "\xe2\x82\xac"
                                                               "2,500,000.00");
  v = val(&ch, "name");
  CHECK_INTEQ(v->kind, DV_STRING);
  CHECK_STREQ(v->s, "Contoso Pharmaceuticals (Z\xc3\xbcrich)");
  v = val(&ch, "territorycode");
  CHECK_INTEQ(v->kind, DV_OPTIONSET);
  CHECK_STREQ(v->s, "1");
  CHECK_STREQ(attr(ch.attrs, ch.nattrs, "territorycode")->formatted, "Default Value");
  v = val(&ch, "ownerid");
  CHECK_INTEQ(v->kind, DV_ENTITYREF);
  CHECK_STREQ(v->ref.logical_name, "systemuser");
  CHECK_STREQ(v->ref.id, "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d");
  CHECK(v->ref.name == NULL && v->ref.row_version == NULL && v->ref.nkeys == 0);
  CHECK_INTEQ(val(&ch, "modifiedonbehalfby")->kind, DV_NULL);
  v = val(&ch, "donotemail");
  CHECK(v->kind == DV_BOOL && !v->b);
  CHECK_STREQ(attr(ch.attrs, ch.nattrs, "donotemail")->formatted, "Allow");
  CHECK_INTEQ(val(&ch, "processid")->kind, DV_STRING);
  CHECK(attr(ch.attrs, ch.nattrs, "accountid")->formatted == NULL);
  /* only the AsynchronousStepPrimaryName image: no post image */
  CHECK(ch.post_image == NULL);
  CHECK(ch.pre_image == NULL);
  CHECK_STREQ(ch.origin.correlation_id, "7038a274-4877-4f3f-a57a-0f4493a6c7c6");
  CHECK_STREQ(ch.origin.operation_id, "f8a13ba5-d91d-4dd5-936c-7f3b6d6adb95");
  CHECK_STREQ(ch.origin.request_id, "3fab629b-b795-4834-a2ca-5a09b2cc6934");
  CHECK_STREQ(ch.origin.initiating_user_id, "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d");
  CHECK_STREQ(ch.origin.user_id, "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d");
  CHECK_STREQ(ch.origin.initiating_user_agent, "");
  CHECK_STREQ(ch.origin.business_unit_id, "8d3e2f1a-9c7b-ef11-8a6a-000d3a4b5c6d");
  CHECK_STREQ(ch.origin.organization_id, "c2a1f0e4-7b3d-4e8a-9f21-6d5b4c3a2e10");
  CHECK_STREQ(ch.origin.organization_name, "unqc2a1f0e47b3d4e8a9f216d5b4c3a");
  CHECK_STREQ(ch.origin.owning_extension_id, "a89a1ed8-a79d-ef11-8a69-000d3a30b0c1");
  CHECK(ch.origin.message_id == NULL);
  CHECK_INTEQ(ch.origin.depth, 1);
  CHECK_INTEQ(ch.origin.stage, 40);
  CHECK_INTEQ(ch.origin.mode, 1);
  CHECK(ch.relationship == NULL && ch.relationship_role == -1 && ch.nrelated == 0);
  free(body);
}

static void test_update_partial(void)
{
  size_t len;
  char *body = fixture("update_contact_partial.json", &len);
  struct cdc_change ch;
  struct app_err err;
  const struct dv_attr *a;

  TEST_CASE("update_contact_partial");
  CHECK_INTEQ(decode("application/json", body, len, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.op, CDC_OP_UPDATE);
  CHECK_STREQ(ch.table, "contact");
  CHECK_STREQ(ch.id, "6d81597f-2b4e-ef11-a317-000d3a2c9e1b");
  CHECK_INTEQ(ch.nattrs, 6);
  CHECK(!ch.full_row);
  CHECK_INTEQ(val(&ch, "modifiedonbehalfby")->kind, DV_NULL);
  CHECK_STREQ(val(&ch, "jobtitle")->s, "Head of Procurement");
  /* the -0700 suffix is ignored */
  CHECK_INTEQ(ch.op_time_ms, 1731421270532LL);
  CHECK_INTEQ(ch.version.row_version, 0);
  CHECK(ch.origin.request_id == NULL);
  CHECK(ch.pre_image && ch.post_image);
  a = attr(ch.pre_image->attrs, ch.pre_image->nattrs, "jobtitle");
  CHECK(a && a->value.kind == DV_STRING && !strcmp(a->value.s, "Buyer"));
  a = attr(ch.post_image->attrs, ch.post_image->nattrs, "jobtitle");
  CHECK(a && !strcmp(a->value.s, "Head of Procurement"));
  CHECK_INTEQ(ch.post_image->nattrs, 9);
  CHECK_STREQ(ch.post_image->logical_name, "contact");
  CHECK_STREQ(ch.post_image->id, "6d81597f-2b4e-ef11-a317-000d3a2c9e1b");
  a = attr(ch.post_image->attrs, ch.post_image->nattrs, "modifiedon");
  CHECK(a && a->value.kind == DV_DATE && a->value.date_ms == 1731421269000LL);
  CHECK_STREQ(a->formatted, "2024-11-12T14:21:09+00:00");
  a = attr(ch.post_image->attrs, ch.post_image->nattrs, "parentcustomerid");
  CHECK(a && a->value.kind == DV_ENTITYREF);
  CHECK_STREQ(a->value.ref.name, "Fabrikam Ltd");
  free(body);
}

static void test_delete(void)
{
  size_t len;
  char *body = fixture("delete_account.json", &len);
  struct cdc_change ch;
  struct app_err err;

  TEST_CASE("delete_account");
  CHECK_INTEQ(decode("application/json", body, len, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.op, CDC_OP_DELETE);
  CHECK_STREQ(ch.table, "account");
  CHECK_STREQ(ch.id, "01b5eeb5-455e-ee11-be6f-000d3a1aaa29");
  CHECK_INTEQ(ch.nattrs, 0);
  CHECK(ch.post_image == NULL);
  CHECK(ch.pre_image && ch.pre_image->nattrs == 4);
  CHECK(ch.version.row_version == UINT64_MAX);
  CHECK_INTEQ(ch.version.tie >> 29, 7);
  CHECK_INTEQ(ch.version.ts_ms, 1732095931877LL);
  free(body);
}

static void test_associate(void)
{
  size_t len;
  char *body = fixture("associate.json", &len);
  struct cdc_change ch;
  struct app_err err;

  TEST_CASE("associate");
  CHECK_INTEQ(decode("application/json", body, len, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.op, CDC_OP_ASSOCIATE);
  CHECK_STREQ(ch.table, "account");
  CHECK_STREQ(ch.id, "3c8e1f20-6a7b-ef11-ac21-6045bdd4c6be");
  CHECK_STREQ(ch.relationship, "accountleads_association");
  CHECK_INTEQ(ch.relationship_role, -1);
  CHECK_INTEQ(ch.nrelated, 2);
  CHECK_STREQ(ch.related[0].logical_name, "lead");
  CHECK_STREQ(ch.related[0].id, "a1d2e3f4-6a7b-ef11-ac21-6045bdd4c6be");
  CHECK_STREQ(ch.related[1].id, "b2e3f4a5-6a7b-ef11-ac21-6045bdd4c6be");
  CHECK_INTEQ(ch.nattrs, 0);
  CHECK_INTEQ(ch.version.ts_ms, 1732204965105LL);
  free(body);
}

static void test_setstate(void)
{
  size_t len;
  char *body = fixture("setstate.json", &len);
  struct cdc_change ch;
  struct app_err err;

  TEST_CASE("setstate");
  CHECK_INTEQ(decode("application/json", body, len, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.op, CDC_OP_SETSTATE);
  CHECK_STREQ(ch.table, "account");
  CHECK_STREQ(ch.id, "7a6b5c4d-747b-ef11-ac21-6045bdd4c6be");
  CHECK_INTEQ(ch.nattrs, 2);
  CHECK_INTEQ(val(&ch, "statecode")->kind, DV_OPTIONSET);
  CHECK_STREQ(val(&ch, "statecode")->s, "1");
  CHECK_STREQ(val(&ch, "statuscode")->s, "2");
  CHECK(ch.pre_image && attr(ch.pre_image->attrs, ch.pre_image->nattrs, "statecode"));
  CHECK_STREQ(attr(ch.pre_image->attrs, ch.pre_image->nattrs, "statecode")->formatted, "Active");
  free(body);
}

static void test_kitchen_sink(void)
{
  size_t len;
  char *body = fixture("update_with_money_optionset_multiselect_lookup_dates.json", &len);
  struct cdc_change ch;
  struct app_err err;
  const struct dv_value *v;

  TEST_CASE("kitchen sink");
  CHECK_INTEQ(decode("application/json", body, len, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.op, CDC_OP_UPDATE);
  CHECK_STREQ(ch.table, "opportunity");
  CHECK_INTEQ(ch.nattrs, 23);
  v = val(&ch, "new_regions");
  CHECK_INTEQ(v->kind, DV_MULTISELECT);
  CHECK_INTEQ(v->nitems, 2);
  CHECK(v->nitems == 2 && !strcmp(v->items[0].s, "100000000") &&
        !strcmp(v->items[1].s, "100000002") && v->items[0].kind == DV_OPTIONSET);
  CHECK_STREQ(attr(ch.attrs, ch.nattrs, "new_regions")->formatted, "EMEA; APAC");
  CHECK_INTEQ(val(&ch, "new_channels")->kind, DV_NULL);
  v = val(&ch, "parentaccountid");
  CHECK_INTEQ(v->kind, DV_ENTITYREF);
  CHECK_INTEQ(v->ref.nkeys, 1);
  CHECK(v->ref.nkeys == 1 && !strcmp(v->ref.keys[0].key, "accountnumber") &&
        !strcmp(v->ref.keys[0].value, "ACC-0042"));
  CHECK_INTEQ(val(&ch, "new_primarycontactid")->kind, DV_NULL);
  v = val(&ch, "new_legacystart");
  CHECK(v->kind == DV_DATE && v->date_ms == -315619200000LL);
  CHECK_STREQ(val(&ch, "new_bigcounter")->s, "9007199254740993");
  CHECK_STREQ(val(&ch, "estimatedvalue")->s, "125000.5");
  CHECK_INTEQ(val(&ch, "estimatedvalue")->kind, DV_MONEY);
  CHECK_STREQ(val(&ch, "new_weight")->s, "0.1");
  CHECK_STREQ(val(&ch, "new_discountpct")->s, "12.5");
  CHECK_STREQ(val(&ch, "closeprobability")->s, "65");
  CHECK(val(&ch, "new_isstrategic")->kind == DV_BOOL && val(&ch, "new_isstrategic")->b);
  v = val(&ch, "description");
  CHECK_STREQ(v->s,
              "Line 1\r\nLine 2: \"quoted\" and a back\\slash \xe2\x80\x93 price \xe2\x82\xac "
              "1.234,50 \xf0\x9f\x9a\x80\tTab");
  CHECK_STREQ(attr(ch.attrs, ch.nattrs, "new_bigcounter")->formatted, "9,007,199,254,740,993");
  /* Target RowVersion "5948260" is the caller's value from before the
   * write (issue 11): not the row version; there is no post image */
  CHECK(ch.version.row_version == 0u);
  CHECK_STREQ(ch.origin.initiating_user_agent,
              "Microsoft Dynamics CRM Core SDK (9.2.49.5, x64) (DataverseSvcClient:1.1.22)");
  CHECK(ch.post_image == NULL && ch.pre_image && ch.pre_image->nattrs == 8);
  v = &attr(ch.pre_image->attrs, ch.pre_image->nattrs, "new_channels")->value;
  CHECK(v->kind == DV_MULTISELECT && v->nitems == 2);
  free(body);
}

/* ---- fixtures: variants --------------------------------------------------------- */

static const char *const fixture_names[] = {
    "create_account.json", "update_contact_partial.json",
    "delete_account.json", "associate.json",
    "setstate.json",       "update_with_money_optionset_multiselect_lookup_dates.json",
};

/* Same fields that survive truncation: everything in the head but the
 * row version (it comes from the dropped Target/images). */
static char *key_dump(const struct cdc_change *ch)
{
  struct cdc_change k = *ch;
  struct buf b;
  k.version.row_version = 0;
  buf_init(&b, 0);
  dv_dump_head(&b, &k);
  dd_fmt(&b, "%s", "");
  return buf_steal(&b, NULL);
}

static void check_variant(const char *fname, const char *vname, const char *expect, const char *ct,
                          const char *body, size_t len)
{
  char *got = dump_of(ct, body, len, NULL);
  check_count++;
  if (strcmp(got, expect) != 0) {
    check_failures++;
    fprintf(stderr, "FAIL variant %s of %s (content type %s):\n%s\n--- expected\n%s\n", vname,
            fname, ct ? ct : "(none)", got, expect);
  }
  free(got);
}

static void test_variants(void)
{
  size_t f;
  TEST_CASE("variants");
  for (f = 0; f < sizeof fixture_names / sizeof fixture_names[0]; f++) {
    const char *name = fixture_names[f];
    size_t len, n, n2, i;
    char *body = fixture(name, &len), *expect = dump_of("application/json", body, len, NULL);
    char *v, *w;
    struct {
      const char *name;
      char *body;
      size_t len;
    } vs[32];
    size_t nv = 0;

    CHECK_MSG(strncmp(expect, "ERROR", 5) != 0, "%s: %s", name, expect);
#define ADD(label, expr)                                                                           \
  do {                                                                                             \
    vs[nv].name = (label);                                                                         \
    vs[nv].body = (expr);                                                                          \
    vs[nv].len = n;                                                                                \
    nv++;                                                                                          \
  } while (0)
    ADD("compact unescaped", reencode(body, len, false, false, NULL, &n));
    ADD("compact escaped", reencode(body, len, false, true, NULL, &n));
    ADD("pretty unescaped", reencode(body, len, true, false, NULL, &n));
    ADD("pretty escaped", reencode(body, len, true, true, NULL, &n));
    ADD("BOM", prefix("\xEF\xBB\xBF", 3, body, len, &n));
    ADD("whitespace around", prefix(" \r\n\t", 4, body, len, &n));
    ADD("string literal", string_wrap(body, len, &n));
    v = prefix("\xEF\xBB\xBF", 3, body, len, &n2);
    ADD("string literal with BOM inside, BOM outside",
        (w = string_wrap(v, n2, &n2), prefix("\xEF\xBB\xBF", 3, w, n2, &n)));
    free(v);
    free(w);
    ADD("DataContract preamble", preamble(body, len, PRE_WRITER, &n));
    ADD("DataContract preamble, split records", preamble(body, len, PRE_SPLIT, &n));
    ADD("DataContract preamble, UTF-16 record", preamble(body, len, PRE_UTF16, &n));
    ADD("DataContract byte[]", preamble(body, len, PRE_BYTES, &n));
    v = string_wrap(body, len, &n2);
    ADD("DataContract preamble around a string literal", preamble(v, n2, PRE_WRITER, &n));
    free(v);
    v = reencode(body, len, true, false, NULL, &n2);
    ADD("DataContract preamble around pretty JSON", preamble(v, n2, PRE_WRITER, &n));
    free(v);
    ADD("UTF-16LE with BOM", utf16_bom(body, len, &n));
#undef ADD
    for (i = 0; i < nv; i++) {
      check_variant(name, vs[i].name, expect, "application/json", vs[i].body, vs[i].len);
      check_variant(name, vs[i].name, expect, NULL, vs[i].body, vs[i].len);
      free(vs[i].body);
    }
    check_variant(name, "charset parameter", expect, "Application/JSON; charset=\"utf-8\"", body,
                  len);
    check_variant(name, "text/plain", expect, "text/plain", body, len);
    check_variant(name, "octet-stream", expect, "application/octet-stream", body, len);
    v = utf16_bom(body, len, &n);
    check_variant(name, "UTF-16 without BOM, charset=utf-16", expect,
                  "application/json; charset=utf-16", v + 2, n - 2);
    check_variant(name, "UTF-16LE without BOM or charset", expect, NULL, v + 2, n - 2);
    {
      /* big-endian, no BOM */
      size_t k;
      for (k = 2; k + 1 < n; k += 2) {
        char t = v[k];
        v[k] = v[k + 1];
        v[k + 1] = t;
      }
      check_variant(name, "UTF-16BE without BOM or charset", expect, "application/json", v + 2,
                    n - 2);
      v[0] = '\xFE';
      v[1] = '\xFF';
      check_variant(name, "UTF-16BE with BOM", expect, NULL, v, n);
    }
    free(v);
    free(expect);
    free(body);
  }
}

static void test_truncated(void)
{
  size_t f;
  TEST_CASE("truncated");
  for (f = 0; f < sizeof fixture_names / sizeof fixture_names[0]; f++) {
    const char *name = fixture_names[f];
    const char *dropped[] = {"InputParameters", "PreEntityImages", "PostEntityImages",
                             "ParentContext", NULL};
    struct dv_options hint = {0, 0, true};
    struct cdc_change full, ch;
    struct app_err err;
    size_t len, n, i;
    char *body = fixture(name, &len), *expect, *got;
    char *vs[4];
    size_t lens[4];

    CHECK_INTEQ(decode("application/json", body, len, &full, &err), APP_OK);
    expect = key_dump(&full);
    vs[0] = reencode(body, len, false, true, dropped, &lens[0]);
    vs[1] = replace_member(body, len, "InputParameters", "null", &lens[1]);
    vs[2] = replace_member(body, len, "InputParameters", "[]", &lens[2]);
    vs[3] = NULL;
    for (i = 0; i < 4; i++) {
      const struct dv_options *opt = vs[i] ? NULL : &hint;
      n = vs[i] ? lens[i] : len;
      CHECK_INTEQ(decode_opt(NULL, vs[i] ? vs[i] : body, n, opt, &ch, &err), APP_OK);
      CHECK_MSG(ch.needs_reread, "%s variant %zu", name, i);
      CHECK(ch.nattrs == 0 && ch.attrs == NULL && ch.pre_image == NULL && ch.post_image == NULL);
      CHECK(!ch.full_row && ch.nrelated == 0 && ch.relationship == NULL);
      got = key_dump(&ch);
      CHECK_MSG(!strcmp(got, expect), "%s truncated variant %zu:\n%s--- expected\n%s", name, i, got,
                expect);
      free(got);
      free(vs[i]);
    }
    free(expect);
    free(body);
  }
}

/* ---- synthetic messages: every message shape and value kind --------------------- */

#define D                "\\/Date(1700000000000)\\/"
#define G1               "11111111-2222-3333-4444-555555555555"
#define G2               "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
#define G3               "99999999-8888-7777-6666-555555555555"
#define NS               ":http:\\/\\/schemas.microsoft.com\\/xrm\\/2011\\/Contracts"
#define HEAD(msg)        "{\"MessageName\":\"" msg "\",\"OperationCreatedOn\":\"" D "\","
#define PRIMARY          "\"PrimaryEntityName\":\"account\",\"PrimaryEntityId\":\"" G1 "\","
#define CTX(msg, params) HEAD(msg) PRIMARY "\"InputParameters\":" params "}"
#define P(key, v)        "{\"key\":\"" key "\",\"value\":" v "}"
#define ENT(attrs)                                                                                 \
  "{\"__type\":\"Entity" NS "\",\"Attributes\":" attrs ",\"Id\":\"" G1                             \
  "\",\"LogicalName\":\"account\"}"
#define REF(ln, id)                                                                                \
  "{\"__type\":\"EntityReference" NS "\",\"Id\":\"" id "\",\"LogicalName\":\"" ln "\"}"
#define OSV(v) "{\"__type\":\"OptionSetValue" NS "\",\"Value\":" v "}"
#define DEEP_OPEN                                                                                  \
  HEAD("Update")                                                                                   \
  PRIMARY "\"InputParameters\":[{\"key\":\"Target\",\"value\":{\"LogicalName\":"                   \
          "\"account\",\"Attributes\":[{\"key\":\"deep\",\"value\":"
#define DEEP_CLOSE "}]}}]}"
#define UPD(attrs) CTX("Update", "[" P("Target", ENT(attrs)) "]")

static void must_decode(const char *body, struct cdc_change *ch)
{
  struct app_err err;
  enum app_result rc = decode("application/json", body, strlen(body), ch, &err);
  CHECK_MSG(rc == APP_OK, "%s: %s", app_result_str(rc), err.msg);
}

static void test_messages(void)
{
  struct cdc_change ch;
  const struct dv_value *v;

  TEST_CASE("minimal update");
  must_decode(UPD("[" P("name", "\"A\"") "]"), &ch);
  CHECK_INTEQ(ch.op, CDC_OP_UPDATE);
  CHECK_STREQ(ch.table, "account");
  CHECK_STREQ(ch.id, G1);
  CHECK_INTEQ(ch.nattrs, 1);
  /* older payloads: no origin members at all */
  CHECK(ch.origin.initiating_user_agent == NULL && ch.origin.operation_id == NULL);
  CHECK(ch.origin.depth == -1 && ch.origin.stage == -1 && ch.origin.mode == -1);
  CHECK_INTEQ(ch.version.tie, (3u << 29) | (0x811c9dc5u & 0x1FFFFFFFu));

  TEST_CASE("upper-case GUIDs are lower-cased");
  must_decode(HEAD("Update") "\"OperationId\":\"ABCDEF01-2345-6789-ABCD-EF0123456789\","
                             "\"InputParameters\":[" P("Target",
                                                       "{\"__type\":\"Entity" NS
                                                       "\",\"Attributes\":[],\"Id\":\"AAAAAAAA-"
                                                       "BBBB-CCCC-DDDD-EEEEEEEEEEEE\","
                                                       "\"LogicalName\":\"account\"}") "]}",
              &ch);
  CHECK_STREQ(ch.id, G2);
  CHECK_STREQ(ch.origin.operation_id, "abcdef01-2345-6789-abcd-ef0123456789");
  CHECK_INTEQ(ch.version.tie,
              dv_version_tie(CDC_OP_UPDATE, "abcdef01-2345-6789-abcd-ef0123456789"));

  TEST_CASE("alternate-key update: id from PrimaryEntityId");
  must_decode(CTX("Update", "[" P("Target", "{\"__type\":\"Entity" NS "\",\"Attributes\":[],"
                                            "\"Id\":\"00000000-0000-0000-0000-000000000000\","
                                            "\"KeyAttributes\":[" P(
                                                "accountnumber",
                                                "\"A-1\"") "],"
                                                           "\"LogicalName\":\"account\"}") "]"),
              &ch);
  CHECK_STREQ(ch.id, G1);

  TEST_CASE("Delete by alternate key: id from PrimaryEntityId");
  must_decode(CTX("Delete",
                  "[" P("Target",
                        "{\"__type\":\"EntityReference" NS
                        "\",\"Id\":\"00000000-0000-0000-0000-000000000000\",\"KeyAttributes\":[" P(
                            "accountnumber", "\"A-1\"") "],\"LogicalName\":\"account\"}") "]"),
              &ch);
  CHECK_STREQ(ch.id, G1);

  TEST_CASE("Update produced by SetState");
  must_decode(CTX("Update", "[" P("EntityMoniker", REF("account", G2)) "," P(
                                "State", OSV("1")) "," P("Status", OSV("2")) "]"),
              &ch);
  CHECK_INTEQ(ch.op, CDC_OP_UPDATE);
  CHECK_STREQ(ch.id, G2);
  CHECK_INTEQ(ch.nattrs, 2);
  CHECK_STREQ(val(&ch, "statecode")->s, "1");
  CHECK_STREQ(val(&ch, "statuscode")->s, "2");

  TEST_CASE("Update with Target and EntityMoniker: Target columns win");
  must_decode(
      CTX("Update",
          "[" P("Target", ENT("[" P("statecode", OSV("0")) "," P("name", "\"n\"") "]")) "," P(
              "EntityMoniker", REF("account", G1)) "," P("State", OSV("1")) "," P("Status",
                                                                                  "2") "]"),
      &ch);
  CHECK_INTEQ(ch.nattrs, 3);
  CHECK_STREQ(val(&ch, "statecode")->s, "0");
  CHECK_STREQ(val(&ch, "statuscode")->s, "2");
  CHECK_INTEQ(val(&ch, "statuscode")->kind, DV_OPTIONSET);

  TEST_CASE("SetStateDynamicEntity");
  must_decode(CTX("SetStateDynamicEntity", "[" P("EntityMoniker", REF("contact", G2)) "," P(
                                               "State", OSV("1")) "," P("Status", OSV("-1")) "]"),
              &ch);
  CHECK_INTEQ(ch.op, CDC_OP_SETSTATE);
  CHECK_STREQ(ch.table, "contact");
  CHECK_STREQ(val(&ch, "statuscode")->s, "-1");

  TEST_CASE("Assign");
  must_decode(
      CTX("Assign", "[" P("Target", REF("account", G1)) "," P("Assignee", REF("team", G3)) "]"),
      &ch);
  CHECK_INTEQ(ch.op, CDC_OP_ASSIGN);
  CHECK(ch.assignee && !strcmp(ch.assignee->logical_name, "team"));
  CHECK_INTEQ(ch.nattrs, 1);
  CHECK_INTEQ(val(&ch, "ownerid")->kind, DV_ENTITYREF);
  CHECK_STREQ(val(&ch, "ownerid")->ref.id, G3);

  TEST_CASE("Merge");
  must_decode(
      CTX("Merge",
          "[" P("Target", REF("account", G1)) "," P("SubordinateId", "\"" G2 "\"") "," P(
              "UpdateContent",
              ENT("[" P("telephone1", "\"1\"") "]")) "," P("PerformParentingChecks", "false") "]"),
      &ch);
  CHECK_INTEQ(ch.op, CDC_OP_MERGE);
  CHECK_STREQ(ch.subordinate_id, G2);
  CHECK_INTEQ(ch.nattrs, 1);
  CHECK_STREQ(val(&ch, "telephone1")->s, "1");

  TEST_CASE("Merge without UpdateContent");
  must_decode(
      CTX("Merge", "[" P("Target", REF("account", G1)) "," P("SubordinateId", "\"" G2 "\"") "]"),
      &ch);
  CHECK_INTEQ(ch.nattrs, 0);

  TEST_CASE("Upsert: id from OutputParameters Target");
  must_decode(
      HEAD("Upsert") PRIMARY "\"InputParameters\":[" P(
          "Target",
          "{\"__type\":\"Entity" NS "\",\"Attributes\":[" P(
              "name", "\"x\"") "],"
                               "\"Id\":\"00000000-0000-0000-0000-000000000000\",\"LogicalName\":"
                               "\"account\"}") "],"
                                               "\"OutputParameters\":[" P(
                                                   "RecordCreated",
                                                   "true") "," P("Target", REF("account", G3)) "]}",
      &ch);
  CHECK_INTEQ(ch.op, CDC_OP_UPSERT);
  CHECK_STREQ(ch.id, G3);
  CHECK(!ch.full_row);

  TEST_CASE("Disassociate with role");
  must_decode(CTX("Disassociate",
                  "[" P("Target", REF("contact", G1)) "," P(
                      "Relationship",
                      "{\"__type\":\"Relationship" NS
                      "\",\"PrimaryEntityRole\":1,\"SchemaName\":\"r\"}") "," P("RelatedEntities",
                                                                                "[]") "]"),
              &ch);
  CHECK_INTEQ(ch.op, CDC_OP_DISASSOCIATE);
  CHECK_STREQ(ch.table, "contact");
  CHECK_STREQ(ch.relationship, "r");
  CHECK_INTEQ(ch.relationship_role, 1);
  CHECK_INTEQ(ch.nrelated, 0);

  TEST_CASE("other message");
  must_decode(HEAD("Win") PRIMARY "\"InputParameters\":[" P("Status", OSV("3")) "]}", &ch);
  CHECK_INTEQ(ch.op, CDC_OP_OTHER);
  CHECK_STREQ(ch.message, "Win");
  CHECK_STREQ(ch.table, "account");
  CHECK_STREQ(ch.id, G1);
  CHECK(!ch.needs_reread);

  TEST_CASE("other message without parameters or primary entity");
  must_decode(HEAD("msdyn_CustomApi") "\"PrimaryEntityName\":\"none\"}", &ch);
  CHECK_INTEQ(ch.op, CDC_OP_OTHER);
  CHECK(ch.id == NULL && !ch.needs_reread);
  CHECK_STREQ(ch.table, "none");

  TEST_CASE("other message with MessageMaxSizeExceeded and no record");
  {
    struct dv_options hint = {0, 0, true};
    struct app_err err;
    const char *body = HEAD("new_UnboundApi") "\"PrimaryEntityName\":\"none\",\"PrimaryEntityId\":"
                                              "\"00000000-0000-0000-0000-000000000000\"}";
    CHECK_INTEQ(decode_opt(NULL, body, strlen(body), &hint, &ch, &err), APP_OK);
    CHECK(ch.op == CDC_OP_OTHER && ch.needs_reread);
    CHECK_STREQ(ch.id, "00000000-0000-0000-0000-000000000000");
  }

  TEST_CASE("message names are case-insensitive");
  must_decode(CTX("update", "[" P("Target", ENT("[]")) "]"), &ch);
  CHECK_INTEQ(ch.op, CDC_OP_UPDATE);
  CHECK_STREQ(ch.message, "update");

  TEST_CASE("null and unknown members are tolerated");
  must_decode(
      HEAD("Update") PRIMARY "\"InputParameters\":[" P(
          "Target",
          ENT("null")) "],"
                       "\"OutputParameters\":null,\"PreEntityImages\":null,"
                       "\"PostEntityImages\":null,\"ParentContext\":null,\"SharedVariables\":null,"
                       "\"OwningExtension\":null,\"RequestId\":null,\"Depth\":null,"
                       "\"SomethingNew\":{\"x\":[1]},\"InitiatingUserAgent\":null}",
      &ch);
  CHECK_INTEQ(ch.nattrs, 0);
  CHECK(ch.origin.initiating_user_agent == NULL && ch.origin.owning_extension_id == NULL);

  TEST_CASE("images: post image skips AsynchronousStepPrimaryName, first pre image");
  must_decode(
      HEAD("Update") PRIMARY "\"InputParameters\":[" P(
          "Target",
          ENT("[]")) "],"
                     "\"PostEntityImages\":[" P(
                         "AsynchronousStepPrimaryName",
                         "{\"Attribut"
                         "es\":[],"
                         "\"LogicalNa"
                         "me\":"
                         "\"account\""
                         "}") "," P("Post",
                                    "{\"Attributes\":[" P(
                                        "versionnumber",
                                        "1234") "],\"LogicalName\":\"account\",\"RowVersion\":"
                                                "\"99\"}") "],"
                                                           "\"PreEntityImages\":[" P(
                                                               "A",
                                                               "{\"Attributes\":[" P(
                                                                   "n", "1") "]}") "," P("B",
                                                                                         "{\"Attrib"
                                                                                         "utes\":[]"
                                                                                         "}") "]}",
      &ch);
  CHECK(ch.post_image && ch.post_image->nattrs == 1);
  CHECK(ch.pre_image && ch.pre_image->nattrs == 1);
  /* post image versionnumber beats its RowVersion */
  CHECK(ch.version.row_version == 1234u);

  TEST_CASE("value kinds");
  must_decode(
      UPD(
          "[" P("coll",
                "{\"__type\":\"EntityCollection" NS "\",\"Entities\":[{\"Attributes\":[" P(
                    "partyid",
                    REF("contact", G2)) "],\"LogicalName\":\"activityparty\"}],\"EntityName\":"
                                        "\"activityparty\",\"MoreRecords\":false}") "," P("al", "{"
                                                                                                "\""
                                                                                                "__"
                                                                                                "ty"
                                                                                                "pe"
                                                                                                "\""
                                                                                                ":"
                                                                                                "\""
                                                                                                "Al"
                                                                                                "ia"
                                                                                                "se"
                                                                                                "dV"
                                                                                                "al"
                                                                                                "u"
                                                                                                "e" NS "\",\"AttributeLogicalName\":\"name\",\"EntityLogicalName\":\"contact\",\"Value\":" OSV("4") "}") "," P("bmp",
                                                                                                                                                                                                               "{\"__type\":\"BooleanManagedProperty" NS "\",\"CanBeChanged\":true,\"ManagedPropertyLogicalName\":\"iscustomizable\",\"Value\":true}") "," P("kv", "[{\"__type\":\"KeyValuePairOfstringstring:#System.Collections.Generic\",\"key\":\"account\",\"value\":\"Update\"}]") "," P("refs", "[" REF("lead", G2) "," REF("lead", G3) "]") "," P("unknown", "{\"__type\":\"Guid:#System\",\"__value\":\"x\\/y\"}") "," P("untyped",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  "{\"b\":1,\"a\":[true,null]}") "," P("mixed",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "[1,\"a\"," OSV("1") "]") "," P("empty", "[]") "," P("ent", "{\"__type\":\"Entity" NS
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                   "\",\"Attributes\":[" P(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "x",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "1") "],\"LogicalName\":\"note\"}") "," P("nul",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                 "\"a\\u0000b\"") "," P("d1", "\"\\/Date(-5+0100)\\/\"") "," P("d2",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "\"/Date(1700000000000)/\"") "," P("notdate1",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                  "\"\\/Date(1700000000000)\\/ \"") "," P("notdate2", "\"\\/Date()\\/\"") "," P("notdate3", "\"\\/Date(1+01)\\/\"") "," P("notdate4", "\"\\/Date(253402300800000)\\/\"") "," P("bigdec",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "79228162514264337593543950335") "," P("dbl",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "1.7976931348623157E+308") "," P("neg",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "-0.5e-10") "]"),
      &ch);
  v = val(&ch, "coll");
  CHECK(v->kind == DV_ENTITYCOLLECTION && v->nitems == 1 && v->items[0].kind == DV_ENTITY);
  CHECK_STREQ(v->s, "activityparty");
  CHECK(v->nitems == 1 && v->items[0].entity->nattrs == 1 &&
        v->items[0].entity->attrs[0].value.kind == DV_ENTITYREF);
  v = val(&ch, "al");
  CHECK(v->kind == DV_ALIASED && v->nitems == 1 && v->items[0].kind == DV_OPTIONSET);
  CHECK_STREQ(v->s, "name");
  CHECK_STREQ(v->s2, "contact");
  v = val(&ch, "bmp");
  CHECK(v->kind == DV_BOOLMANAGED && v->b);
  CHECK_STREQ(v->s, "iscustomizable");
  v = val(&ch, "kv");
  CHECK(v->kind == DV_ARRAY && v->nitems == 1 && v->items[0].kind == DV_KVPAIR);
  CHECK(v->nitems == 1 && !strcmp(v->items[0].s, "account") && !strcmp(v->items[0].s2, "Update"));
  v = val(&ch, "refs");
  CHECK(v->kind == DV_ENTITYREFCOLLECTION && v->nitems == 2 && !strcmp(v->items[1].ref.id, G3));
  v = val(&ch, "unknown");
  CHECK_INTEQ(v->kind, DV_RAW);
  CHECK_STREQ(v->s, "{\"__type\":\"Guid:#System\",\"__value\":\"x/y\"}");
  v = val(&ch, "untyped");
  CHECK_INTEQ(v->kind, DV_RAW);
  CHECK_STREQ(v->s, "{\"b\":1,\"a\":[true,null]}");
  v = val(&ch, "mixed");
  CHECK(v->kind == DV_ARRAY && v->nitems == 3 && v->items[0].kind == DV_NUMBER &&
        v->items[1].kind == DV_STRING && v->items[2].kind == DV_OPTIONSET);
  v = val(&ch, "empty");
  CHECK(v->kind == DV_ARRAY && v->nitems == 0);
  v = val(&ch, "ent");
  CHECK(v->kind == DV_ENTITY && v->entity && !strcmp(v->entity->logical_name, "note"));
  v = val(&ch, "nul");
  CHECK(v->kind == DV_STRING && v->len == 3 && !memcmp(v->s, "a\0b", 3));
  v = val(&ch, "d1");
  CHECK(v->kind == DV_DATE && v->date_ms == -5 && v->date_has_offset);
  v = val(&ch, "d2");
  CHECK(v->kind == DV_DATE && v->date_ms == 1700000000000LL && !v->date_has_offset);
  CHECK_INTEQ(val(&ch, "notdate1")->kind, DV_STRING);
  CHECK_INTEQ(val(&ch, "notdate2")->kind, DV_STRING);
  CHECK_INTEQ(val(&ch, "notdate3")->kind, DV_STRING);
  CHECK_INTEQ(val(&ch, "notdate4")->kind, DV_STRING);
  CHECK_STREQ(val(&ch, "bigdec")->s, "79228162514264337593543950335");
  CHECK_STREQ(val(&ch, "dbl")->s, "1.7976931348623157E+308");
  CHECK_STREQ(val(&ch, "neg")->s, "-0.5e-10");

  TEST_CASE("formatted values: many attributes, duplicates, unknown names");
  {
    struct buf b;
    int i;
    char *body;
    buf_init(&b, 0);
    dd_fmt(&b, "%s",
           HEAD("Update") PRIMARY
           "\"InputParameters\":[{\"key\":\"Target\",\"value\":{\"Attributes\":[");
    for (i = 0; i < 40; i++)
      dd_fmt(&b, "%s{\"key\":\"c%02d\",\"value\":%d}", i ? "," : "", i % 39, i);
    dd_fmt(&b, "],\"FormattedValues\":[");
    for (i = 39; i >= 0; i--)
      dd_fmt(&b, "{\"key\":\"c%02d\",\"value\":\"f%d\"},", i, i);
    dd_fmt(&b, "{\"key\":\"c00\",\"value\":\"again\"},{\"key\":\"nope\",\"value\":null}],"
               "\"LogicalName\":\"account\"}}]}");
    body = buf_steal(&b, NULL);
    must_decode(body, &ch);
    CHECK_INTEQ(ch.nattrs, 40);
    CHECK_STREQ(ch.attrs[0].formatted, "f0");   /* c00, first of two */
    CHECK(ch.attrs[39].formatted == NULL);      /* the second c00 */
    CHECK_STREQ(ch.attrs[38].formatted, "f38"); /* c38 */
    CHECK_STREQ(ch.attrs[5].formatted, "f5");
    free(body);
  }
}

/* ---- the version rule ------------------------------------------------------------ */

static void test_versions(void)
{
  struct cdc_change a, b;
  size_t len;
  char *body;
  struct app_err err;

  TEST_CASE("tie");
  CHECK_INTEQ(dv_version_tie(CDC_OP_UPDATE, NULL), (3u << 29) | (0x811c9dc5u & 0x1FFFFFFFu));
  CHECK_INTEQ(dv_version_tie(CDC_OP_CREATE, "a"), (1u << 29) | (0xe40c292cu & 0x1FFFFFFFu));
  CHECK_INTEQ(dv_version_tie(CDC_OP_DELETE, "A"), (7u << 29) | (0xe40c292cu & 0x1FFFFFFFu));
  CHECK_INTEQ(dv_version_tie(CDC_OP_UPSERT, "foobar"), (2u << 29) | (0xbf9cf968u & 0x1FFFFFFFu));
  CHECK_INTEQ(dv_version_tie(CDC_OP_ASSIGN, "foobar"), dv_version_tie(CDC_OP_MERGE, "FOOBAR"));

  TEST_CASE("redelivery gives the identical version");
  body = fixture("update_with_money_optionset_multiselect_lookup_dates.json", &len);
  CHECK_INTEQ(decode("application/json", body, len, &a, &err), APP_OK);
  CHECK_INTEQ(decode(NULL, body, len, &b, &err), APP_OK);
  CHECK_INTEQ(cdc_version_cmp(&a.version, &b.version), 0);
  free(body);

  TEST_CASE("same millisecond: create < update < delete");
#define OPID "\"OperationId\":\"" G2 "\","
  must_decode(HEAD("Create") OPID PRIMARY "\"InputParameters\":[" P(
                  "Target", "{\"__type\":\"Entity" NS "\",\"Attributes\":[],\"Id\":\"" G1
                            "\",\"LogicalName\":\"account\",\"RowVersion\":\"500\"}") "]}",
              &a);
  CHECK(a.version.row_version == 0); /* a Create is the first version of a row */
  must_decode(HEAD("Update") OPID PRIMARY "\"InputParameters\":[" P("Target", ENT("[]")) "]}", &b);
  CHECK(cdc_version_cmp(&a.version, &b.version) < 0);
  must_decode(
      HEAD("Delete") OPID PRIMARY "\"InputParameters\":[" P("Target", REF("account", G1)) "]}", &a);
  CHECK(cdc_version_cmp(&b.version, &a.version) < 0);
  /* even an Update carrying a row version loses to a Delete in the same ms */
  must_decode(HEAD("Update") OPID PRIMARY "\"InputParameters\":[" P(
                  "Target", "{\"__type\":\"Entity" NS "\",\"Attributes\":[" P(
                                "versionnumber",
                                "18446744073709551614") "],\"LogicalName\":\"account\"}") "]}",
              &b);
  CHECK(b.version.row_version == UINT64_MAX - 1);
  CHECK(cdc_version_cmp(&b.version, &a.version) < 0);

  TEST_CASE("row version sources");
  must_decode(
      HEAD("Update") PRIMARY "\"InputParameters\":[" P(
          "Target", "{\"Attributes\":[" P(
                        "versionnumber",
                        "\"77\"") "],\"LogicalName\":\"account\",\"RowVersion\":\"5\"}") "]}",
      &a);
  CHECK(a.version.row_version == 77u);
  must_decode(HEAD("Update") PRIMARY "\"InputParameters\":[" P(
                  "Target", "{\"Attributes\":[" P(
                                "versionnumber",
                                "null") "],\"LogicalName\":\"account\",\"RowVersion\":5}") "]}",
              &a);
  CHECK(a.version.row_version == 0u); /* Target RowVersion: before the write, ignored */
  must_decode(HEAD("Assign") PRIMARY "\"InputParameters\":[" P(
                  "Target",
                  "{\"Id\":\"" G1
                  "\",\"LogicalName\":\"account\",\"RowVersion\":\"42\"}") "," P("Assignee",
                                                                                 REF("systemuser",
                                                                                     G2)) "]}",
              &a);
  CHECK(a.version.row_version == 0u); /* Target RowVersion: before the write, ignored */

  TEST_CASE("later operation wins");
  must_decode(UPD("[]"), &a);
  must_decode("{\"MessageName\":\"Update\",\"OperationCreatedOn\":\"\\/Date(1700000000001-0800)\\/"
              "\"," PRIMARY
              "\"InputParameters\":[" P("Target", ENT("[" P("versionnumber", "1") "]")) "]}",
              &b);
  CHECK(cdc_version_cmp(&a.version, &b.version) < 0);

  TEST_CASE("dates before 1970 clamp ts_ms, not op_time_ms");
  must_decode("{\"MessageName\":\"Update\",\"OperationCreatedOn\":\"\\/Date(-1000)\\/\"," PRIMARY
              "\"InputParameters\":[" P("Target", ENT("[]")) "]}",
              &a);
  CHECK_INTEQ(a.op_time_ms, -1000);
  CHECK_INTEQ(a.version.ts_ms, 0);
}

/* ---- invalid input ----------------------------------------------------------------- */

struct bad_case {
  const char *ct;
  const char *body;
  size_t len; /* 0: strlen */
  enum app_result code;
  const char *msg;
  size_t max_body; /* 0: default */
};

static const struct bad_case bad_cases[] = {
    /* issue 17: duplicates of the members that decide what happens are
     * poison (the first used to win; .NET's readers keep the last or
     * refuse the document) */
    {NULL,
     HEAD("Create") "\"MessageName\":\"Delete\"," PRIMARY
                    "\"InputParameters\":[" P("Target", ENT("[]")) "]}",
     0, APP_ERR_INPUT,
     "MessageName: the member appears twice;"
     " a message whose meaning depends on which one counts is poison",
     0},
    {NULL,
     HEAD("Create") PRIMARY "\"PrimaryEntityId\":\"" G2
                            "\",\"InputParameters\":[" P("Target", ENT("[]")) "]}",
     0, APP_ERR_INPUT,
     "PrimaryEntityId: the member appears twice;"
     " a message whose meaning depends on which one counts is poison",
     0},
    {NULL, CTX("Create", "[" P("Target", ENT("[]")) "," P("Target", ENT("[]")) "]"), 0,
     APP_ERR_INPUT,
     "InputParameters[1] (key \"Target\"): parameter Target appears twice;"
     " a message whose meaning depends on which one counts is poison",
     0},
    {NULL,
     CTX("Create", "[" P("Target", "{\"__type\":\"Entity" NS "\",\"Attributes\":[],\"Id\":\"" G1
                                   "\",\"Id\":\"" G2 "\",\"LogicalName\":\"account\"}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.Id (key \"Target\"): the member appears twice (poison)", 0},
    {NULL,
     CTX("Delete",
         "[" P("Target", "{\"__type\":\"EntityReference" NS "\",\"Id\":\"" G1
                         "\",\"LogicalName\":\"account\",\"LogicalName\":\"contact\"}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.LogicalName (key \"Target\"): the member appears twice (poison)", 0},
    {"application/msbin1", "\x40\x16RemoteExecutionContext", 0, APP_ERR_UNSUPPORTED,
     "content type application/msbin1: the body is .NET binary XML, the service endpoint's "
     "default format; set the service endpoint's Message Format to JSON (Plug-in Registration "
     "Tool, service endpoint properties)",
     0},
    {"application/xml", "<RemoteExecutionContext/>", 0, APP_ERR_UNSUPPORTED,
     "content type application/xml: the body is XML (service endpoint Message Format XML); set "
     "the service endpoint's Message Format to JSON (Plug-in Registration Tool, service endpoint "
     "properties)",
     0},
    {" Text/XML ; charset=utf-8", "<x/>", 0, APP_ERR_UNSUPPORTED,
     "content type  Text/XML ; charset=utf-8: the body is XML (service endpoint Message Format "
     "XML); set the service endpoint's Message Format to JSON (Plug-in Registration Tool, service "
     "endpoint properties)",
     0},
    {NULL, "\x40\x16RemoteExecutionContext\x08\x2dhttp://schemas.microsoft.com/xrm/2011/Contracts",
     0, APP_ERR_UNSUPPORTED,
     "message body is .NET binary XML (byte 0x40 then binary records), not JSON; set the service "
     "endpoint's Message Format to JSON (Plug-in Registration Tool, service endpoint properties)",
     0},
    {"application/json", "\x56\x02\x0b\x01s\x04\x0b", 0, APP_ERR_UNSUPPORTED,
     "message body is .NET binary XML (byte 0x56 then binary records), not JSON; set the service "
     "endpoint's Message Format to JSON (Plug-in Registration Tool, service endpoint properties)",
     0},
    {NULL, "\xEF\xBB\xBF  <?xml version=\"1.0\"?><RemoteExecutionContext/>", 0, APP_ERR_UNSUPPORTED,
     "message body is XML (it starts with '<'), not JSON; set the service endpoint's Message "
     "Format to JSON (Plug-in Registration Tool, service endpoint properties)",
     0},
    {"application/json; charset=iso-8859-1", "{}", 0, APP_ERR_UNSUPPORTED,
     "content type charset \"iso-8859-1\" is not supported (Dataverse sends UTF-8)", 0},
    {"application/json", "", 0, APP_ERR_INPUT, "message body is empty", 0},
    {NULL, " \r\n ", 0, APP_ERR_INPUT, "message body is empty (only whitespace)", 0},
    {NULL, "\xEF\xBB\xBF", 0, APP_ERR_INPUT, "message body is empty", 0},
    {NULL, "hello", 0, APP_ERR_INPUT,
     "message body: JSON syntax error at line 1, column 1 (offset 0): unexpected character, "
     "value expected",
     0},
    {NULL, "{\"MessageName\":\"Create\"", 0, APP_ERR_INPUT,
     "message body: JSON syntax error at line 1, column 24 (offset 23): unexpected end of input "
     "in object",
     0},
    {NULL,
     "{\"MessageName\":\"Cr\xE9"
     "ate\"}",
     0, APP_ERR_INPUT,
     "message body: JSON syntax error at line 1, column 19 (offset 18): invalid UTF-8 in string",
     0},
    {NULL, "\xFF{}", 0, APP_ERR_INPUT,
     "message body: JSON syntax error at line 1, column 1 (offset 0): unexpected character, "
     "value expected",
     0},
    {NULL, "[{\"MessageName\":\"Create\"}]", 0, APP_ERR_INPUT,
     "message body is not a RemoteExecutionContext: expected a JSON object, got an array", 0},
    {NULL, "42", 0, APP_ERR_INPUT,
     "message body is not a RemoteExecutionContext: expected a JSON object, got 42", 0},
    {NULL, "\"hello\"", 0, APP_ERR_INPUT,
     "JSON string in the message body: JSON syntax error at line 1, column 1 (offset 0): "
     "unexpected character, value expected",
     0},
    {NULL, "\"[1]\"", 0, APP_ERR_INPUT,
     "message body is not a RemoteExecutionContext: expected a JSON object, got an array", 0},
    {NULL, "{\"Attributes\":[]}", 0, APP_ERR_INPUT,
     "message body is not a RemoteExecutionContext: it has no MessageName member", 0},
    {NULL, "{\"MessageName\":42}", 0, APP_ERR_INPUT, "MessageName: expected a string, got 42", 0},
    {NULL, "{\"MessageName\":\"\\u0000\"}", 0, APP_ERR_INPUT,
     "MessageName: expected a string without NUL characters, got \"\\u0000\"", 0},
    {NULL, "{\"MessageName\\u0000x\":\"Create\"}", 0, APP_ERR_INPUT,
     "message body is not a RemoteExecutionContext: it has no MessageName member", 0},
    {NULL, UPD("[" P("na\\u0000me", "1") "]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].key (key \"Target\"): expected a string without NUL "
     "characters, got \"na\\u0000me\"",
     0},
    {NULL,
     CTX("Update", "[" P("Target", "{\"Attributes\":[" P("n", "1") "],\"FormattedValues\":[" P(
                                       "n", "\"1\\u0000\"") "],\"LogicalName\":\"a\"}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.FormattedValues[0].value (key \"n\"): expected a formatted string "
     "without NUL characters, got \"1\\u0000\"",
     0},
    {NULL,
     UPD("[" P("r", "{\"__type\":\"EntityReference" NS "\",\"Id\":\"" G1
                    "\",\"KeyAttributes\":[" P("k", "\"\\u0000\"") "],\"LogicalName\":\"a\"}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.KeyAttributes[0].value (key \"k\"): expected a "
     "string without NUL characters, got \"\\u0000\"",
     0},
    {NULL, "{\"MessageName\":\"\"}", 0, APP_ERR_INPUT,
     "MessageName: expected a non-empty string, got \"\"", 0},
    {NULL, "{\"MessageName\":\"Update\"}", 0, APP_ERR_INPUT,
     "OperationCreatedOn: missing, expected a /Date(ms)/ string", 0},
    {NULL, "{\"MessageName\":\"Update\",\"OperationCreatedOn\":\"2024-01-01T00:00:00Z\"}", 0,
     APP_ERR_INPUT,
     "OperationCreatedOn: expected a /Date(ms)/ string, got \"2024-01-01T00:00:00Z\"", 0},
    {NULL, "{\"MessageName\":\"Update\",\"OperationCreatedOn\":\"\\/Date(abc)\\/\"}", 0,
     APP_ERR_INPUT, "OperationCreatedOn: expected a /Date(ms)/ string, got \"/Date(abc)/\"", 0},
    {NULL, "{\"MessageName\":\"Update\",\"OperationCreatedOn\":\"\\/Date(1700000000000+01)\\/\"}",
     0, APP_ERR_INPUT,
     "OperationCreatedOn: expected a /Date(ms)/ string, got \"/Date(1700000000000+01)/\"", 0},
    {NULL,
     "{\"MessageName\":\"Update\",\"OperationCreatedOn\":\"\\/Date(99999999999999999999)\\/\"}", 0,
     APP_ERR_INPUT,
     "OperationCreatedOn: expected a /Date(ms)/ string, got \"/Date(99999999999999999999)/\"", 0},
    {NULL, "{\"MessageName\":\"Update\",\"OperationCreatedOn\":1700000000000}", 0, APP_ERR_INPUT,
     "OperationCreatedOn: expected a /Date(ms)/ string, got 1700000000000", 0},
    {NULL, HEAD("Update") "\"PrimaryEntityId\":42}", 0, APP_ERR_INPUT,
     "PrimaryEntityId: expected a GUID string, got 42", 0},
    {NULL, HEAD("Update") "\"PrimaryEntityId\":\"not-a-guid\"}", 0, APP_ERR_INPUT,
     "PrimaryEntityId: expected a GUID string, got \"not-a-guid\"", 0},
    {NULL, HEAD("Update") "\"OperationId\":\"{" G1 "}\"}", 0, APP_ERR_INPUT,
     "OperationId: expected a GUID string, got \"{11111111-2222-3333-4444-555555555555}\"", 0},
    {NULL, HEAD("Update") "\"UserId\":\"11111111-2222-3333-4444-55555555555g\"}", 0, APP_ERR_INPUT,
     "UserId: expected a GUID string, got \"11111111-2222-3333-4444-55555555555g\"", 0},
    {NULL, HEAD("Update") "\"Depth\":\"1\"}", 0, APP_ERR_INPUT,
     "Depth: expected an integer, got \"1\"", 0},
    {NULL, HEAD("Update") "\"Stage\":40.5}", 0, APP_ERR_INPUT,
     "Stage: expected an integer, got 40.5", 0},
    {NULL, HEAD("Update") "\"OrganizationName\":[]}", 0, APP_ERR_INPUT,
     "OrganizationName: expected a string, got an array", 0},
    {NULL, HEAD("Update") "\"OwningExtension\":7}", 0, APP_ERR_INPUT,
     "OwningExtension: expected an EntityReference, got 7", 0},
    {NULL, HEAD("Update") "\"ParentContext\":\"x\"}", 0, APP_ERR_INPUT,
     "ParentContext: expected a RemoteExecutionContext object or null, got \"x\"", 0},
    {NULL, CTX("Update", "{}"), 0, APP_ERR_INPUT,
     "InputParameters: expected an array of key/value pairs, got an object", 0},
    {NULL, CTX("Update", "[1]"), 0, APP_ERR_INPUT,
     "InputParameters[0]: expected a {\"key\":...,\"value\":...} object, got 1", 0},
    {NULL, CTX("Update", "[{\"key\":1,\"value\":2}]"), 0, APP_ERR_INPUT,
     "InputParameters[0].key: expected a string, got 1", 0},
    {NULL, CTX("Update", "[{\"value\":2}]"), 0, APP_ERR_INPUT, "InputParameters[0].key: missing",
     0},
    {NULL, CTX("Create", "[" P("x", "1") "]"), 0, APP_ERR_INPUT,
     "InputParameters: Create message has no Target parameter", 0},
    {NULL, CTX("Create", "[" P("Target", REF("account", G1)) "]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value (key \"Target\"): expected an Entity, got an object of __type "
     "EntityReference",
     0},
    {NULL, CTX("Delete", "[" P("Target", ENT("[]")) "]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value (key \"Target\"): expected an EntityReference, got an object of "
     "__type Entity",
     0},
    {NULL, CTX("Update", "[" P("x", "1") "," P("Target", "\"account\"") "]"), 0, APP_ERR_INPUT,
     "InputParameters[1].value (key \"Target\"): expected an Entity, got \"account\"", 0},
    {NULL, HEAD("Update") "\"InputParameters\":[" P("Target", "{\"Attributes\":[]}") "]}", 0,
     APP_ERR_INPUT,
     "InputParameters[0].value (key \"Target\"): Update record table unknown: no Target "
     "LogicalName and no PrimaryEntityName",
     0},
    {NULL, HEAD("Update") "\"InputParameters\":[" P("Target", "{\"LogicalName\":\"a\"}") "]}", 0,
     APP_ERR_INPUT,
     "InputParameters[0].value (key \"Target\"): Update record id unknown: no Target Id and no "
     "PrimaryEntityId",
     0},
    {NULL, UPD("{}"), 0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes (key \"Target\"): expected an array of key/value "
     "pairs, got an object",
     0},
    {NULL, UPD("[" P("a", "1") ",{\"value\":1}]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[1].key (key \"Target\"): missing", 0},
    {NULL, UPD("[" P("statuscode", OSV("\"1\"")) "]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.Value (key \"statuscode\"): expected an "
     "integer, got \"1\"",
     0},
    {NULL, UPD("[" P("statuscode", OSV("1.5")) "]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.Value (key \"statuscode\"): expected an "
     "integer, got 1.5",
     0},
    {NULL, UPD("[" P("revenue", "{\"__type\":\"Money" NS "\"}") "]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.Value (key \"revenue\"): missing", 0},
    {NULL,
     UPD("[" P("a", "1") "," P("b", "2") "," P("c", "3") "," P("ownerid",
                                                               REF("systemuser", "42")) "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[3].value.Id (key \"ownerid\"): expected a GUID string, "
     "got \"42\"",
     0},
    {NULL, UPD("[" P("ownerid", "{\"__type\":\"EntityReference" NS "\",\"Id\":\"" G1 "\"}") "]"), 0,
     APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.LogicalName (key \"ownerid\"): missing, "
     "expected a non-empty string",
     0},
    {NULL, UPD("[" P("x", "{\"__type\":\"KeyValuePairOfstringstring:#S\",\"value\":\"v\"}") "]"), 0,
     APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.key (key \"x\"): expected a string", 0},
    {NULL, UPD("[" P("x", "{\"__type\":\"BooleanManagedProperty" NS "\",\"Value\":\"yes\"}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.Value (key \"x\"): expected true or false, got "
     "\"yes\"",
     0},
    {NULL,
     UPD("[" P("c", "{\"__type\":\"EntityCollection" NS "\",\"Entities\":[" REF("a", G1) "]}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value.Entities[0] (key \"c\"): expected an Entity, "
     "got an object of __type EntityReference",
     0},
    {NULL, UPD("[" P("versionnumber", "\"x1\"") "]"), 0, APP_ERR_INPUT,
     "InputParameters[0].value.Attributes[0].value (key \"versionnumber\"): expected an unsigned "
     "integer versionnumber, got \"x1\"",
     0},
    {NULL,
     CTX("Update",
         "[" P("Target", "{\"Attributes\":[],\"LogicalName\":\"a\",\"RowVersion\":\"abc\"}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.RowVersion (key \"Target\"): expected a decimal row version, got "
     "\"abc\"",
     0},
    {NULL,
     CTX("Update", "[" P("Target", "{\"Attributes\":[" P("n", "1") "],\"FormattedValues\":[" P(
                                       "n", "1") "],\"LogicalName\":\"a\"}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[0].value.FormattedValues[0].value (key \"n\"): expected a formatted string "
     "without NUL characters, got 1",
     0},
    {NULL,
     CTX("Associate",
         "[" P("Target", REF("account", G1)) "," P("Relationship", "{\"__type\":\"Relationship" NS
                                                                   "\",\"SchemaName\":\"r\"}") "]"),
     0, APP_ERR_INPUT, "InputParameters: Associate message has no RelatedEntities parameter", 0},
    {NULL,
     CTX("Associate",
         "[" P("Target", REF("account", G1)) "," P(
             "Relationship", "{\"__type\":\"Relationship" NS
                             "\",\"SchemaName\":\"r\"}") "," P("RelatedEntities", "{}") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[2].value (key \"RelatedEntities\"): expected an array of EntityReference, "
     "got an object",
     0},
    {NULL,
     CTX("Associate",
         "[" P("Target", REF("account", G1)) "," P(
             "Relationship",
             "{\"__type\":\"Relationship" NS
             "\",\"PrimaryEntityRole\":5,\"SchemaName\":\"r\"}") "," P("RelatedEntities",
                                                                       "[]") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[1].value.PrimaryEntityRole (key \"Relationship\"): expected 0 "
     "(Referencing), 1 (Referenced) or null, got 5",
     0},
    {NULL,
     CTX("Associate", "[" P("Target", REF("account", G1)) "," P("Relationship", "\"r\"") "," P(
                          "RelatedEntities", "[]") "]"),
     0, APP_ERR_INPUT,
     "InputParameters[1].value (key \"Relationship\"): expected a Relationship, got \"r\"", 0},
    {NULL, CTX("SetState", "[" P("EntityMoniker", REF("account", G1)) "," P("State", OSV("1")) "]"),
     0, APP_ERR_INPUT, "InputParameters: SetState message has no Status parameter", 0},
    {NULL,
     CTX("SetState", "[" P("EntityMoniker", REF("account", G1)) "," P("State", "\"1\"") "," P(
                         "Status", OSV("1")) "]"),
     0, APP_ERR_INPUT,
     "InputParameters[1].value (key \"State\"): expected an OptionSetValue, got \"1\"", 0},
    {NULL, CTX("Assign", "[" P("Target", REF("account", G1)) "]"), 0, APP_ERR_INPUT,
     "InputParameters: Assign message has no Assignee parameter", 0},
    {NULL,
     HEAD("SetState") "\"InputParameters\":[" P(
         "EntityMoniker",
         REF("account",
             "00000000-0000-0000-0000-000000000000")) "," P("State", OSV("1")) "," P("Status",
                                                                                     OSV("2")) "]}",
     0, APP_ERR_INPUT,
     "InputParameters: SetState record id unknown: the EntityMoniker reference has no Id and there "
     "is no PrimaryEntityId",
     0},
    {NULL, CTX("Merge", "[" P("Target", REF("account", G1)) "," P("SubordinateId", "\"x\"") "]"), 0,
     APP_ERR_INPUT,
     "InputParameters[1].value (key \"SubordinateId\"): expected a GUID string, got \"x\"", 0},
    {NULL,
     HEAD("Create") PRIMARY "\"InputParameters\":[" P(
         "Target", ENT("[]")) "],\"OutputParameters\":[" P("id", "\"x\"") "]}",
     0, APP_ERR_INPUT, "OutputParameters[0].value (key \"id\"): expected a GUID string, got \"x\"",
     0},
    {NULL,
     HEAD("Update") PRIMARY
     "\"InputParameters\":[" P("Target", ENT("[]")) "],\"PostEntityImages\":[" P("Img", "[]") "]}",
     0, APP_ERR_INPUT, "PostEntityImages[0].value (key \"Img\"): expected an Entity, got an array",
     0},
    {NULL, HEAD("Update") "\"PrimaryEntityName\":\"account\"}", 0, APP_ERR_INPUT,
     "PrimaryEntityId: missing, needed to re-read a truncated context (no InputParameters)", 0},
    {NULL,
     HEAD("Delete") "\"PrimaryEntityId\":\"00000000-0000-0000-0000-000000000000\","
                    "\"PrimaryEntityName\":\"account\",\"InputParameters\":[]}",
     0, APP_ERR_INPUT,
     "PrimaryEntityId: expected a record GUID to re-read a truncated context (no "
     "InputParameters), got \"00000000-0000-0000-0000-000000000000\"",
     0},
    {NULL,
     HEAD("Create") "\"PrimaryEntityId\":\"" G1
                    "\",\"PrimaryEntityName\":\"\",\"InputParameters\":null}",
     0, APP_ERR_INPUT,
     "PrimaryEntityName: expected a table name to re-read a truncated context (no "
     "InputParameters), got \"\"",
     0},
    {NULL, "\x40\x06string\x08\x33http://schemas.microsoft.com/2003/10/Serialization/\x99\x40{}", 0,
     APP_ERR_INPUT,
     "DataContract string preamble: text record at byte 61 claims more bytes than the body has", 0},
    {NULL, "\x40\x06string\x08\x33http://schemas.microsoft.com/2003/10/Serialization/\x99\x02{}xx",
     0, APP_ERR_INPUT,
     "DataContract string preamble: 2 unexpected bytes after the end of the <string> element at "
     "byte 65",
     0},
    {NULL, "\x40\x06string\x08\x33http://schemas.microsoft.com/2003/10/Serialization/\x8b\x02", 0,
     APP_ERR_INPUT,
     "DataContract string preamble: record type 0x8B at byte 61 is not a text record of a "
     "<string> element",
     0},
    {NULL, "\x40\x06string\x08\x33http://schemas.microsoft.com/2003/10/Serialization/\x98\x02{}", 0,
     APP_ERR_INPUT,
     "DataContract string preamble: truncated, the body ends at byte 65 before the end of the "
     "<string> element",
     0},
    {NULL, "\x40\x06string\x08\x33http://schemas.microsoft.com/2003/10/Serialization/\xa9", 0,
     APP_ERR_INPUT, "DataContract string in the message body is empty", 0},
    {NULL, "\xFF\xFE{\0}", 5, APP_ERR_INPUT,
     "message body: UTF-16 text has an odd number of bytes (3)", 0},
    {NULL, "\xFF\xFE{\0\x00\xDC}\0", 8, APP_ERR_INPUT,
     "message body: invalid UTF-16: unpaired low surrogate at byte 2", 0},
    {NULL, "{\"MessageName\":\"Update\"}", 0, APP_ERR_LIMIT,
     "message body of 24 bytes is larger than the limit of 20 bytes", 20},
};

static void test_invalid(void)
{
  size_t i;
  TEST_CASE("invalid inputs");
  CHECK(sizeof bad_cases / sizeof bad_cases[0] >= 40);
  for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const struct bad_case *bc = &bad_cases[i];
    struct dv_options opt = {bc->max_body, 0, false};
    struct cdc_change ch;
    struct app_err err;
    size_t len = bc->len ? bc->len : strlen(bc->body);
    enum app_result rc;
    static const struct cdc_change zero;

    memset(&ch, 0x5A, sizeof ch);
    rc = decode_opt(bc->ct, bc->body, len, &opt, &ch, &err);
    CHECK_MSG(rc == bc->code, "case %zu: got %s (%s), expected %s", i, app_result_str(rc), err.msg,
              app_result_str(bc->code));
    CHECK_MSG(err.code == bc->code, "case %zu: err.code %d", i, err.code);
    CHECK_MSG(!strcmp(err.msg, bc->msg), "case %zu:\n  got:      %s\n  expected: %s", i, err.msg,
              bc->msg);
    CHECK_MSG(!memcmp(&ch, &zero, sizeof ch), "case %zu: *out not zeroed on failure", i);
  }
}

static void test_limits(void)
{
  struct buf b;
  struct app_err err;
  struct cdc_change ch;
  struct dv_options opt = {0, 16, false};
  struct arena small;
  size_t len;
  char *body;
  int i;

  TEST_CASE("nesting depth");
  buf_init(&b, 0);
  dd_fmt(&b, "%s", DEEP_OPEN);
  for (i = 0; i < 70; i++)
    dd_fmt(&b, "[");
  for (i = 0; i < 70; i++)
    dd_fmt(&b, "]");
  dd_fmt(&b, "%s", DEEP_CLOSE);
  body = buf_steal(&b, &len);
  CHECK_INTEQ(decode(NULL, body, len, &ch, &err), APP_ERR_LIMIT);
  CHECK_CONTAINS(err.msg, "message body: JSON nested deeper than 64 levels at offset ");
  CHECK_INTEQ(decode_opt(NULL, body, len, &opt, &ch, &err), APP_ERR_LIMIT);
  CHECK_CONTAINS(err.msg, "JSON nested deeper than 16 levels");
  free(body);

  TEST_CASE("depth limit applies inside a string literal");
  buf_init(&b, 0);
  for (i = 0; i < 20; i++)
    dd_fmt(&b, "[");
  for (i = 0; i < 20; i++)
    dd_fmt(&b, "]");
  body = buf_steal(&b, &len);
  {
    size_t n;
    char *w = string_wrap(body, len, &n);
    CHECK_INTEQ(decode_opt(NULL, w, n, &opt, &ch, &err), APP_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "JSON string in the message body: JSON nested deeper than 16 levels");
    free(w);
  }
  free(body);

  TEST_CASE("default body limit");
  body = malloc(DV_DEFAULT_MAX_BODY_BYTES + 1);
  memset(body, ' ', DV_DEFAULT_MAX_BODY_BYTES + 1);
  CHECK_INTEQ(decode(NULL, body, DV_DEFAULT_MAX_BODY_BYTES + 1, &ch, &err), APP_ERR_LIMIT);
  CHECK_STREQ(err.msg, "message body of 1048577 bytes is larger than the limit of 1048576 bytes");
  free(body);

  TEST_CASE("arena ceiling");
  body = fixture("create_account.json", &len);
  arena_init(&small, 20000);
  CHECK_INTEQ(dv_decode(&small, NULL, body, len, NULL, &ch, &err), APP_ERR_LIMIT);
  CHECK_STREQ(err.msg, "message needs more memory than the configured decode limit");
  arena_cleanup(&small);
  arena_init(&small, 24 * 1024 + 256);
  CHECK_INTEQ(dv_decode(&small, NULL, body, len, NULL, &ch, &err), APP_ERR_LIMIT);
  CHECK_STREQ(err.msg, "message needs more memory than the configured decode limit");
  arena_cleanup(&small);
  free(body);

  TEST_CASE("long paths are shortened");
  buf_init(&b, 0);
  dd_fmt(&b, "%s", DEEP_OPEN);
  for (i = 0; i < 40; i++)
    dd_fmt(&b, "[");
  dd_fmt(&b, "%s", OSV("true"));
  for (i = 0; i < 40; i++)
    dd_fmt(&b, "]");
  dd_fmt(&b, "%s", DEEP_CLOSE);
  body = buf_steal(&b, &len);
  CHECK_INTEQ(decode(NULL, body, len, &ch, &err), APP_ERR_INPUT);
  CHECK_CONTAINS(err.msg, "InputParameters[0].value.Attributes[0].value[0][0]...[0][0]");
  CHECK_CONTAINS(err.msg, "[0].Value (key \"deep\"): expected an integer, got true");
  free(body);
}

/* ---- body layers ------------------------------------------------------------------- */

static void test_body(void)
{
  struct arena a;
  struct dvbody_result r;
  struct app_err err;
  const char *small = "{\"a\":1}";
  char *w, big[70000 + 16];
  size_t n;

  TEST_CASE("content types");
  CHECK_INTEQ(dvbody_ctype(NULL), DVBODY_CT_NONE);
  CHECK_INTEQ(dvbody_ctype(" ; charset=utf-8"), DVBODY_CT_NONE);
  CHECK_INTEQ(dvbody_ctype("application/json"), DVBODY_CT_JSON);
  CHECK_INTEQ(dvbody_ctype("APPLICATION/JSON;charset=UTF-8"), DVBODY_CT_JSON);
  CHECK_INTEQ(dvbody_ctype("application/vnd.contoso+json"), DVBODY_CT_JSON);
  CHECK_INTEQ(dvbody_ctype("application/msbin1"), DVBODY_CT_MSBIN1);
  CHECK_INTEQ(dvbody_ctype("application/soap+xml"), DVBODY_CT_XML);
  CHECK_INTEQ(dvbody_ctype("text/plain"), DVBODY_CT_OTHER);
  CHECK_INTEQ(dvbody_ctype("application/jsonx"), DVBODY_CT_OTHER);

  arena_init(&a, 0);
  TEST_CASE("wrap flags");
  CHECK_INTEQ(dvbody_parse(&a, NULL, small, strlen(small), 0, &r, &err), APP_OK);
  CHECK_INTEQ(r.wraps, 0);
  w = prefix("\xEF\xBB\xBF", 3, small, strlen(small), &n);
  CHECK_INTEQ(dvbody_parse(&a, NULL, w, n, 0, &r, &err), APP_OK);
  CHECK_INTEQ(r.wraps, DVBODY_WRAP_BOM);
  free(w);
  w = preamble(small, strlen(small), PRE_UTF16, &n);
  CHECK_INTEQ(dvbody_parse(&a, NULL, w, n, 0, &r, &err), APP_OK);
  CHECK_INTEQ(r.wraps, DVBODY_WRAP_PREAMBLE);
  CHECK(json_is(r.root, JSON_OBJECT) && json_get(r.root, "a"));
  free(w);
  w = string_wrap(small, strlen(small), &n);
  {
    size_t n2;
    char *w2 = utf16_bom(w, n, &n2);
    CHECK_INTEQ(dvbody_parse(&a, "application/json", w2, n2, 0, &r, &err), APP_OK);
    CHECK_INTEQ(r.wraps, DVBODY_WRAP_UTF16 | DVBODY_WRAP_STRING);
    free(w2);
  }
  free(w);

  TEST_CASE("Chars16 and Chars32 records");
  memset(big, ' ', sizeof big);
  big[0] = '[';
  big[sizeof big - 2] = ']';
  big[sizeof big - 1] = '\n';
  w = preamble(big, 300, PRE_WRITER, &n);
  CHECK((unsigned char)w[61] == 0x9B);
  free(w);
  big[299] = ']';
  w = preamble(big, 300, PRE_WRITER, &n);
  CHECK_INTEQ(dvbody_parse(&a, NULL, w, n, 0, &r, &err), APP_OK);
  CHECK(json_is(r.root, JSON_ARRAY));
  free(w);
  big[299] = ' ';
  w = preamble(big, sizeof big, PRE_WRITER, &n);
  CHECK((unsigned char)w[61] == 0x9D);
  CHECK_INTEQ(dvbody_parse(&a, NULL, w, n, 0, &r, &err), APP_OK);
  CHECK(json_is(r.root, JSON_ARRAY));
  free(w);
  w = preamble(big, sizeof big, PRE_UTF16, &n);
  CHECK((unsigned char)w[61] == 0xBB);
  CHECK_INTEQ(dvbody_parse(&a, NULL, w, n, 0, &r, &err), APP_OK);
  free(w);

  TEST_CASE("layers are bounded");
  {
    char *s1 = string_wrap(small, strlen(small), &n), *s2, *s3, *s4;
    s2 = string_wrap(s1, n, &n);
    s3 = string_wrap(s2, n, &n);
    CHECK_INTEQ(dvbody_parse(&a, NULL, s3, n, 0, &r, &err), APP_OK);
    CHECK(json_is(r.root, JSON_OBJECT));
    s4 = string_wrap(s3, n, &n);
    CHECK_INTEQ(dvbody_parse(&a, NULL, s4, n, 0, &r, &err), APP_OK);
    CHECK(json_is(r.root, JSON_STRING));
    free(s1);
    free(s2);
    free(s3);
    free(s4);
  }
  arena_cleanup(&a);
}

/* Every committed fuzz input decodes without a crash or leak and with a
 * result the pipeline understands (regression corpus). */
static void test_corpus(void)
{
  char dir[512];
  const char *root = getenv("ROOT");
  DIR *d;
  struct dirent *e;
  int files = 0;

  TEST_CASE("fuzz corpus");
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/decode", root ? root : ".");
  d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  if (!d)
    return;
  while ((e = readdir(d)) != NULL) {
    char path[1024];
    size_t len = 0;
    char *data;
    struct cdc_change ch;
    struct app_err err;
    enum app_result rc;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    data = test_read_file(path, &len);
    if (!data)
      continue;
    files++;
    rc = decode(NULL, data, len, &ch, &err);
    CHECK_MSG(rc == APP_OK || rc == APP_ERR_INPUT || rc == APP_ERR_LIMIT ||
                  rc == APP_ERR_UNSUPPORTED,
              "%s: %d", e->d_name, rc);
    if (rc == APP_OK) {
      struct buf b;
      buf_init(&b, 0);
      dv_dump(&b, &ch);
      buf_cleanup(&b);
    }
    free(data);
  }
  closedir(d);
  CHECK(files >= 6);
}

int main(void)
{
  arena_init(&arena, 64u << 20);
  test_create();
  test_update_partial();
  test_delete();
  test_associate();
  test_setstate();
  test_kitchen_sink();
  test_variants();
  test_truncated();
  test_messages();
  test_versions();
  test_invalid();
  test_limits();
  test_body();
  test_corpus();
  arena_cleanup(&arena);
  return check_report("test_dataverse");
}

/* test_envelope.c - the invocation envelope, both ways (handler/host/envelope.c).
 *
 * Fixtures in tests/fixtures/envelopes/ are the exact bodies the host posts
 * (made by generate.py there from the Dataverse bodies in bodies/). */
#include "common/arena.h"
#include "common/base64.h"
#include "host/envelope.h"
#include "check.h"
#include "envelope_same.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testfile.h"

static char fn_name[] = "ChangesOne";
static char fn_path[] = "ChangesOne/function.json";
static char sb_type[] = "serviceBusTrigger";
static char http_type[] = "httpTrigger";
static char timer_type[] = "timerTrigger";
static char b_msg[] = "msg";
static char b_msgs[] = "msgs";
static char b_req[] = "req";

static struct function_def mkfn(enum fn_trigger t, char *binding, enum fn_data_type dt,
                                enum fn_cardinality c)
{
  struct function_def f;
  memset(&f, 0, sizeof f);
  f.name = fn_name;
  f.path = fn_path;
  f.trigger = t;
  f.trigger_type = t == FN_TRIGGER_SERVICE_BUS ? sb_type
                   : t == FN_TRIGGER_HTTP      ? http_type
                                               : timer_type;
  f.trigger_name = binding;
  f.data_type = dt;
  f.cardinality = c;
  return f;
}

static char *read_file(const char *rel, size_t *out_len)
{
  const char *root = getenv("ROOT");
  char path[1024];
  char *data;

  snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
  data = test_read_file(path, out_len);
  if (!data) {
    fprintf(stderr, "cannot read %s (run from the repository root or set ROOT)\n", path);
    exit(1);
  }
  return data;
}

static const struct envelope_limits default_limits = {1024 * 1024, 5000, 64};

/* envelope_parse, after checking that envelope_parse_mutable (what the
 * handler runs, in place) gives the same for this input */
static enum app_result parse_checked(struct arena *a, const char *text, size_t n,
                                     const struct function_def *fn,
                                     const struct envelope_limits *lim, struct invocation **inv,
                                     struct app_err *err)
{
  const char *diff = envelope_same_check(text, n, fn, lim);
  CHECK_MSG(diff == NULL, "envelope_parse_mutable differs from envelope_parse: %s", diff);
  return envelope_parse(a, text, n, fn, lim, inv, err);
}

/* Parse text with fn; on failure the error is in *err. */
static enum app_result parse(struct arena *a, const char *text, const struct function_def *fn,
                             const struct envelope_limits *lim, struct invocation **inv,
                             struct app_err *err)
{
  app_err_clear(err);
  *inv = NULL;
  return parse_checked(a, text, strlen(text), fn, lim ? lim : &default_limits, inv, err);
}

static bool body_is(const struct envelope_message *m, const char *file)
{
  size_t n = 0;
  char *want = read_file(file, &n);
  bool ok = m->body && m->body_len == n && memcmp(m->body, want, n) == 0;
  free(want);
  return ok;
}

static const char *claim(const struct envelope_message *m, const char *name)
{
  char key[160];
  snprintf(key, sizeof key, "http://schemas.microsoft.com/xrm/2011/Claims/%s", name);
  return json_get_str(m->app_properties, key);
}

/* ---- single messages ------------------------------------------------------- */

static void test_single_binary(void)
{
  struct function_def fn = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_BINARY, FN_CARDINALITY_ONE);
  struct arena a;
  struct invocation *inv = NULL;
  struct app_err err;
  size_t n;
  char *text = read_file("tests/fixtures/envelopes/single_binary.json", &n);
  const struct envelope_message *m;
  const struct json *v;

  TEST_CASE("single binary");
  arena_init(&a, 0);
  CHECK_INTEQ(parse_checked(&a, text, n, &fn, &default_limits, &inv, &err), APP_OK);
  if (!inv) {
    fprintf(stderr, "  %s\n", err.msg);
    goto out;
  }
  CHECK_INTEQ(inv->kind, ENVELOPE_MESSAGES);
  CHECK(!inv->batch);
  CHECK(!inv->sniffed);
  CHECK_INTEQ(inv->nmessages, 1);
  m = &inv->messages[0];
  CHECK(body_is(m, "tests/fixtures/envelopes/bodies/create_account.json"));
  CHECK(!m->oversize);
  CHECK_STREQ(m->message_id, "9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d");
  CHECK_STREQ(m->content_type, "application/json");
  CHECK_STREQ(m->correlation_id, "sb-correlation-1");
  CHECK_INTEQ(m->delivery_count, 1);
  CHECK_INTEQ(m->sequence_number, 1234);
  CHECK_INTEQ(m->enqueued_ms, 1731053106000LL); /* 2024-11-08T08:05:06, no zone = UTC */
  CHECK_STREQ(claim(m, "RequestName"), "Create");
  CHECK_STREQ(claim(m, "EntityLogicalName"), "account");
  CHECK_STREQ(claim(m, "Organization"), "contoso.crm4.dynamics.com");
  CHECK(inv->shadowed == NULL);
  CHECK_INTEQ(inv->retry_count, -1);
  CHECK(inv->retry_context == NULL);
  CHECK_STREQ(json_get_str(inv->sys, "MethodName"), "ChangesOne");
  /* Metadata decoded a second time where it is JSON text, raw otherwise */
  v = envelope_metadata(inv, "LockToken");
  CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "1a2b3c4d-0000-4000-8000-000000000001"));
  v = envelope_metadata(inv, "ExpiresAt");
  CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "2024-11-22T08:05:06+00:00"));
  v = envelope_metadata(inv, "deliverycount"); /* case-insensitive fallback */
  CHECK(json_is(v, JSON_NUMBER) && v->len == 1 && v->str[0] == '1');
  CHECK(json_is(envelope_metadata(inv, "MessageReceiver"), JSON_OBJECT));
out:
  arena_cleanup(&a);
  free(text);
}

static void test_single_string(void)
{
  struct function_def unset =
      mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_UNSET, FN_CARDINALITY_UNSET);
  struct function_def str = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_STRING, FN_CARDINALITY_ONE);
  const struct function_def *fns[] = {&unset, &str, NULL};
  size_t n, i;
  char *text = read_file("tests/fixtures/envelopes/single_string.json", &n);

  TEST_CASE("single string (double-encoded), ApplyBindingData shadowing");
  for (i = 0; i < 3; i++) {
    struct arena a;
    struct invocation *inv = NULL;
    struct app_err err;
    const struct envelope_message *m;
    const struct json *v;

    arena_init(&a, 0);
    CHECK_INTEQ(parse_checked(&a, text, n, fns[i], &default_limits, &inv, &err), APP_OK);
    if (!inv) {
      fprintf(stderr, "  %s\n", err.msg);
      arena_cleanup(&a);
      continue;
    }
    CHECK_INTEQ(inv->sniffed, fns[i] == NULL);
    CHECK_INTEQ(inv->nmessages, 1);
    m = &inv->messages[0];
    CHECK(body_is(m, "tests/fixtures/envelopes/bodies/create_account.json"));
    CHECK_STREQ(m->message_id, "msg-string-1");
    CHECK_INTEQ(m->delivery_count, 1);
    /* the body's top-level CorrelationId overwrote the broker's in Metadata */
    CHECK(m->correlation_id == NULL);
    CHECK_STREQ(inv->shadowed, "CorrelationId");
    v = envelope_metadata(inv, "CorrelationId");
    CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "7038a274-4877-4f3f-a57a-0f4493a6c7c6"));
    v = envelope_metadata(inv, "Depth");
    CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "1"));
    CHECK(json_is(envelope_metadata(inv, "ParentContext"), JSON_OBJECT));
    CHECK_STREQ(claim(m, "RequestName"), "Create");
    arena_cleanup(&a);
  }
  free(text);
}

static void test_single_retry(void)
{
  struct function_def fn = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_BINARY, FN_CARDINALITY_ONE);
  struct arena a;
  struct invocation *inv = NULL;
  struct app_err err;
  size_t n;
  char *text = read_file("tests/fixtures/envelopes/single_retry.json", &n);

  TEST_CASE("RetryContext");
  arena_init(&a, 0);
  CHECK_INTEQ(parse_checked(&a, text, n, &fn, &default_limits, &inv, &err), APP_OK);
  if (inv) {
    CHECK_INTEQ(inv->retry_count, 2);
    CHECK_INTEQ(inv->max_retry_count, 5);
    CHECK(json_is(inv->retry_context, JSON_OBJECT));
    CHECK_INTEQ(inv->messages[0].delivery_count, 3);
    CHECK(body_is(&inv->messages[0], "tests/fixtures/envelopes/bodies/delete_account.json"));
    CHECK_STREQ(claim(&inv->messages[0], "RequestName"), "Delete");
  }
  arena_cleanup(&a);
  free(text);
}

/* ---- batches ------------------------------------------------------------------- */

static void check_batch(const struct invocation *inv)
{
  static const char *const files[] = {"tests/fixtures/envelopes/bodies/create_account.json",
                                      "tests/fixtures/envelopes/bodies/update_contact_partial.json",
                                      "tests/fixtures/envelopes/bodies/delete_account.json"};
  size_t i;
  CHECK(inv->batch);
  CHECK_INTEQ(inv->nmessages, 3);
  if (inv->nmessages != 3)
    return;
  for (i = 0; i < 3; i++)
    CHECK_MSG(body_is(&inv->messages[i], files[i]), "message %zu", i);
  CHECK_STREQ(inv->messages[0].message_id, "id-1");
  CHECK_STREQ(inv->messages[2].message_id, "id-3");
  CHECK_INTEQ(inv->messages[1].delivery_count, 2);
  CHECK_INTEQ(inv->messages[0].sequence_number, 101);
  CHECK_INTEQ(inv->messages[2].sequence_number, 9007199254740993LL);
  CHECK_INTEQ(inv->messages[0].enqueued_ms, 1731053106123LL);
  CHECK_INTEQ(inv->messages[1].enqueued_ms, 1731053107500LL);
  CHECK_INTEQ(inv->messages[2].enqueued_ms, 1731053108000LL);
  CHECK_STREQ(inv->messages[0].content_type, "application/json");
  CHECK(inv->messages[2].content_type == NULL);
  CHECK(inv->messages[0].correlation_id == NULL);
  CHECK_STREQ(inv->messages[1].correlation_id, "corr-2");
  CHECK_STREQ(claim(&inv->messages[1], "RequestName"), "Update");
  CHECK_STREQ(claim(&inv->messages[1], "EntityLogicalName"), "contact");
  CHECK_STREQ(claim(&inv->messages[2], "RequestName"), "Delete");
  CHECK(inv->shadowed == NULL);
}

static void test_batches(void)
{
  struct function_def bin =
      mkfn(FN_TRIGGER_SERVICE_BUS, b_msgs, FN_DATA_BINARY, FN_CARDINALITY_MANY);
  struct function_def str =
      mkfn(FN_TRIGGER_SERVICE_BUS, b_msgs, FN_DATA_STRING, FN_CARDINALITY_MANY);
  static const struct {
    const char *file;
    int fn; /* 0 binary, 1 string, 2 unknown (sniffed) */
  } cases[] = {
      {"tests/fixtures/envelopes/batch_binary.json", 0},
      {"tests/fixtures/envelopes/batch_string.json", 1},
      {"tests/fixtures/envelopes/batch_real_arrays.json", 0},
      {"tests/fixtures/envelopes/batch_binary.json", 2},
      {"tests/fixtures/envelopes/batch_string.json", 2},
      {"tests/fixtures/envelopes/batch_real_arrays.json", 2},
  };
  size_t i;

  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct arena a;
    struct invocation *inv = NULL;
    struct app_err err;
    size_t n;
    char *text = read_file(cases[i].file, &n);
    const struct function_def *fn = cases[i].fn == 0 ? &bin : cases[i].fn == 1 ? &str : NULL;
    char name[160];

    snprintf(name, sizeof name, "batch %s (%s)", strrchr(cases[i].file, '/') + 1,
             cases[i].fn == 2 ? "sniffed" : "function.json");
    TEST_CASE(name);
    arena_init(&a, 0);
    CHECK_INTEQ(parse_checked(&a, text, n, fn, &default_limits, &inv, &err), APP_OK);
    if (inv) {
      check_batch(inv);
      CHECK_INTEQ(inv->sniffed, cases[i].fn == 2);
    } else {
      fprintf(stderr, "  %s\n", err.msg);
    }
    arena_cleanup(&a);
    free(text);
  }
}

/* ---- limits ----------------------------------------------------------------------- */

static void test_limits(void)
{
  struct function_def one = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_BINARY, FN_CARDINALITY_ONE);
  struct function_def many =
      mkfn(FN_TRIGGER_SERVICE_BUS, b_msgs, FN_DATA_BINARY, FN_CARDINALITY_MANY);
  struct function_def str =
      mkfn(FN_TRIGGER_SERVICE_BUS, b_msgs, FN_DATA_STRING, FN_CARDINALITY_MANY);
  struct envelope_limits lim = {8, 2, 64};
  struct arena a;
  struct invocation *inv;
  struct app_err err;

  TEST_CASE("oversize messages are marked, not errors");
  arena_init(&a, 0);
  /* "QUJDREVGR0hJSg==" is 10 bytes, more than 8; "QUJD" is 3 */
  CHECK_INTEQ(parse(&a, "{\"Data\":{\"msg\":\"QUJDREVGR0hJSg==\"}}", &one, &lim, &inv, &err),
              APP_OK);
  if (inv) {
    CHECK(inv->messages[0].oversize);
    CHECK(inv->messages[0].body == NULL);
    CHECK_INTEQ(inv->messages[0].body_len, 10);
  }
  CHECK_INTEQ(parse(&a, "{\"Data\":{\"msgs\":\"[\\\"QUJD\\\",\\\"QUJDREVGR0hJSg\\\"]\"}}", &many,
                    &lim, &inv, &err),
              APP_OK);
  if (inv) {
    CHECK(!inv->messages[0].oversize);
    CHECK_INTEQ(inv->messages[0].body_len, 3);
    CHECK(inv->messages[0].body && !memcmp(inv->messages[0].body, "ABC", 3));
    CHECK(inv->messages[1].oversize); /* unpadded tail: still 10 bytes */
    CHECK_INTEQ(inv->messages[1].body_len, 10);
  }
  CHECK_INTEQ(parse(&a, "{\"Data\":{\"msgs\":\"[\\\"short\\\",\\\"much too long\\\"]\"}}", &str,
                    &lim, &inv, &err),
              APP_OK);
  if (inv) {
    CHECK(!inv->messages[0].oversize);
    CHECK(inv->messages[1].oversize);
    CHECK_INTEQ(inv->messages[1].body_len, 13);
  }

  TEST_CASE("batch message cap");
  CHECK_INTEQ(parse(&a, "{\"Data\":{\"msgs\":\"[\\\"QQ==\\\",\\\"QQ==\\\",\\\"QQ==\\\"]\"}}", &many,
                    &lim, &inv, &err),
              APP_ERR_LIMIT);
  CHECK_CONTAINS(err.msg, "Data.msgs has 3 messages, more than the limit of 2");

  TEST_CASE("empty batch");
  CHECK_INTEQ(parse(&a, "{\"Data\":{\"msgs\":\"[]\"},\"Metadata\":{\"MessageIdArray\":\"[]\"}}",
                    &many, &lim, &inv, &err),
              APP_OK);
  if (inv)
    CHECK_INTEQ(inv->nmessages, 0);

  TEST_CASE("JSON depth cap");
  {
    char deep[400];
    size_t i, k = 0;
    struct envelope_limits shallow = {1024, 10, 8};
    k += (size_t)snprintf(deep, sizeof deep, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"x\":");
    for (i = 0; i < 20; i++)
      deep[k++] = '[';
    for (i = 0; i < 20; i++)
      deep[k++] = ']';
    deep[k++] = '}';
    deep[k++] = '}';
    deep[k] = '\0';
    CHECK_INTEQ(parse(&a, deep, &one, &shallow, &inv, &err), APP_ERR_LIMIT);
    CHECK_CONTAINS(err.msg, "envelope");
  }

  TEST_CASE("arena ceiling");
  {
    struct arena small;
    size_t n;
    char *text = read_file("tests/fixtures/envelopes/batch_binary.json", &n);
    arena_init(&small, 16 * 1024);
    app_err_clear(&err);
    CHECK_INTEQ(parse_checked(&small, text, n, &many, &default_limits, &inv, &err), APP_ERR_LIMIT);
    arena_cleanup(&small);
    free(text);
  }
  arena_cleanup(&a);
}

/* ---- Metadata encodings, unknown keys, dates -------------------------------------- */

static void test_metadata(void)
{
  struct function_def one = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_BINARY, FN_CARDINALITY_ONE);
  struct arena a;
  struct invocation *inv;
  struct app_err err;
  const struct json *v;

  TEST_CASE("Metadata double-encoding and unknown keys");
  arena_init(&a, 0);
  CHECK_INTEQ(parse(&a,
                    "{\"Extra\":1,\"Data\":{\"msg\":\"QUJD\",\"otherInput\":\"x\"},\"Metadata\":{"
                    "\"MessageId\":\"\\\"m-1\\\"\",\"DeliveryCount\":\"7\",\"SequenceNumber\":42,"
                    "\"EnqueuedTimeUtc\":\"2024-05-01T10:22:31.5Z\",\"ContentType\":\"text/plain\","
                    "\"CorrelationId\":\"null\",\"Foo\":\"\\\"bar\\\"\",\"Broken\":\"{oops\","
                    "\"Trailing\":\"5 6\",\"List\":\"[1,2]\",\"Num\":\"12345678901234567890123\","
                    "\"UserProperties\":{\"tenant\":\"contoso\",\"prio\":3}}}",
                    &one, NULL, &inv, &err),
              APP_OK);
  if (inv) {
    const struct envelope_message *m = &inv->messages[0];
    CHECK(m->body_len == 3 && !memcmp(m->body, "ABC", 3));
    CHECK_STREQ(m->message_id, "m-1");
    CHECK_INTEQ(m->delivery_count, 7);
    CHECK_INTEQ(m->sequence_number, 42); /* a real number is accepted too */
    CHECK_INTEQ(m->enqueued_ms, 1714558951500LL);
    CHECK_STREQ(m->content_type, "text/plain");                        /* not JSON text: kept raw */
    CHECK(m->correlation_id == NULL);                                  /* "null" */
    CHECK_STREQ(json_get_str(m->app_properties, "tenant"), "contoso"); /* UserProperties */
    v = envelope_metadata(inv, "Foo");
    CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "bar"));
    v = envelope_metadata(inv, "Broken");
    CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "{oops"));
    v = envelope_metadata(inv, "Trailing");
    CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "5 6"));
    v = envelope_metadata(inv, "List");
    CHECK(json_is(v, JSON_ARRAY) && v->len == 2);
    v = envelope_metadata(inv, "Num"); /* the lexeme is kept exactly */
    CHECK(json_is(v, JSON_NUMBER) && v->len == 23 &&
          !memcmp(v->str, "12345678901234567890123", 23));
    CHECK(envelope_metadata(inv, "Missing") == NULL);
    CHECK_INTEQ(inv->metadata->len, 12);
  }

  TEST_CASE("EnqueuedTime (offset) when EnqueuedTimeUtc is absent");
  CHECK_INTEQ(parse(&a,
                    "{\"Data\":{\"msg\":\"\"},\"Metadata\":{\"EnqueuedTime\":"
                    "\"2024-05-01T10:22:31-07:00\"}}",
                    &one, NULL, &inv, &err),
              APP_OK);
  if (inv) {
    CHECK_INTEQ(inv->messages[0].enqueued_ms, 1714584151000LL);
    CHECK_INTEQ(inv->messages[0].body_len, 0); /* an empty body is a valid message */
    CHECK(inv->messages[0].message_id == NULL);
    CHECK_INTEQ(inv->messages[0].sequence_number, -1);
  }

  TEST_CASE("no Metadata at all");
  CHECK_INTEQ(parse(&a, "{\"Data\":{\"msg\":\"QQ==\"}}", &one, NULL, &inv, &err), APP_OK);
  if (inv) {
    CHECK(inv->metadata != NULL && inv->metadata->len == 0);
    CHECK(inv->sys == NULL);
  }

  TEST_CASE("other triggers keep Data and Metadata only");
  {
    struct function_def timer = mkfn(FN_TRIGGER_OTHER, b_msg, FN_DATA_UNSET, FN_CARDINALITY_UNSET);
    CHECK_INTEQ(parse(&a, "{\"Data\":{\"timer\":{\"IsPastDue\":false}},\"Metadata\":{}}", &timer,
                      NULL, &inv, &err),
                APP_OK);
    if (inv) {
      CHECK_INTEQ(inv->kind, ENVELOPE_OTHER);
      CHECK_INTEQ(inv->nmessages, 0);
      CHECK(json_is(json_get(inv->data, "timer"), JSON_OBJECT));
    }
  }
  arena_cleanup(&a);
}

/* UserPropertiesArray is a copy of ApplicationPropertiesArray: decoded once
 * and shared; texts that differ are each decoded */
static void test_twin_metadata(void)
{
  struct function_def fn =
      mkfn(FN_TRIGGER_SERVICE_BUS, b_msgs, FN_DATA_BINARY, FN_CARDINALITY_MANY);
  struct arena a;
  struct invocation *inv = NULL;
  struct app_err err;
  struct buf env, x, y;
  size_t i, k;
  int variant;
  static const char pad[] =
      "0123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789";

  TEST_CASE("identical Metadata strings decoded once, different ones each");
  for (variant = 0; variant < 2; variant++) {
    buf_init(&env, 0);
    CHECK(buf_append_str(&env,
                         "{\"Data\":{\"msgs\":\"[\\\"eyJhIjoxfQ==\\\",\\\"eyJhIjoyfQ==\\\"]\"},"
                         "\"Metadata\":{") == APP_OK);
    for (k = 0; k < 3; k++) {
      static const char *const keys[] = {"ApplicationPropertiesArray", "UserPropertiesArray",
                                         "OtherArray"};
      CHECK(buf_printf(&env, "%s\"%s\":\"[", k ? "," : "", keys[k]) == APP_OK);
      for (i = 0; i < 2; i++) {
        if (i)
          CHECK(buf_append_char(&env, ',') == APP_OK);
        /* long enough to be compared; variant 1: the user copy differs */
        CHECK(buf_printf(
                  &env,
                  "{\\\"tenant\\\":\\\"contoso-%zu\\\",\\\"prio\\\":%zu,\\\"pad\\\":\\\"%s\\\"}",
                  i + (variant && k == 1 ? 10 : 0), i * 1000000000, pad) == APP_OK);
      }
      CHECK(buf_append_str(&env, "]\"") == APP_OK);
    }
    CHECK(buf_append_str(&env, "}}") == APP_OK);
    arena_init(&a, 0);
    CHECK_INTEQ(parse_checked(&a, env.data, env.len, &fn, &default_limits, &inv, &err), APP_OK);
    if (inv) {
      const struct json *app = json_get(inv->metadata, "ApplicationPropertiesArray");
      const struct json *user = json_get(inv->metadata, "UserPropertiesArray");
      const struct json *other = json_get(inv->metadata, "OtherArray");
      buf_init(&x, 0);
      buf_init(&y, 0);
      CHECK(json_is(app, JSON_ARRAY) && json_is(user, JSON_ARRAY) && json_is(other, JSON_ARRAY));
      CHECK(app && user && json_write(&x, app) == APP_OK && json_write(&y, user) == APP_OK);
      CHECK(x.data && !strncmp(x.data, "[{\"tenant\":\"contoso-0\",\"prio\":0,\"pad\":\"0123", 38));
      CHECK(x.data && strstr(x.data, "{\"tenant\":\"contoso-1\",\"prio\":1000000000,"));
      CHECK(x.len > 300);
      if (variant)
        CHECK(y.data && !strncmp(y.data, "[{\"tenant\":\"contoso-10\",", 23) &&
              strstr(y.data, "\"contoso-11\"") && y.len == x.len + 2);
      else
        CHECK_STREQ(y.data, x.data);
      buf_reset(&y);
      CHECK(other && json_write(&y, other) == APP_OK);
      CHECK_STREQ(y.data, x.data);
      CHECK_STREQ(json_get_str(inv->messages[1].app_properties, "tenant"), "contoso-1");
      CHECK(user && user->next && !strcmp(user->next->key, "OtherArray"));
      buf_cleanup(&x);
      buf_cleanup(&y);
    }
    arena_cleanup(&a);
    buf_cleanup(&env);
  }
}

/* a Metadata string that decodes too deep: the error names the key */
static void test_metadata_too_deep(void)
{
  struct function_def fn = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_BINARY, FN_CARDINALITY_ONE);
  static const struct envelope_limits shallow = {1024 * 1024, 5000, 8};
  struct arena a;
  struct invocation *inv = NULL;
  struct app_err err;
  static const char text[] = "{\"Data\":{\"msg\":\"eyJhIjoxfQ==\"},\"Metadata\":{\"Fine\":\"[1]\","
                             "\"Deep\":\"[[[[[[[[[[1]]]]]]]]]]\"}}";

  TEST_CASE("Metadata nested too deep");
  arena_init(&a, 0);
  app_err_clear(&err);
  CHECK_INTEQ(parse_checked(&a, text, sizeof text - 1, &fn, &shallow, &inv, &err), APP_ERR_LIMIT);
  CHECK_CONTAINS(err.msg, "Metadata.Deep: JSON nested deeper than 8 levels");
  arena_cleanup(&a);
}

static void test_dates(void)
{
  static const struct {
    const char *in;
    bool ok;
    long long ms;
  } cases[] = {
      {"2024-05-01T10:22:31", true, 1714558951000LL},
      {"2024-05-01T10:22:31Z", true, 1714558951000LL},
      {"2024-05-01T10:22:31z", true, 1714558951000LL},
      {"2024-05-01 10:22:31", true, 1714558951000LL},
      {"2024-05-01T10:22:31.1234567", true, 1714558951123LL},
      {"2024-05-01T10:22:31.5", true, 1714558951500LL},
      {"2024-05-01T10:22:31,25Z", true, 1714558951250LL},
      {"2024-05-01T10:22:31+00:00", true, 1714558951000LL},
      {"2024-05-01T10:22:31.123-07:00", true, 1714584151123LL},
      {"2024-05-01T10:22:31+0530", true, 1714539151000LL},
      {"2024-05-01T10:22:31+05", true, 1714540951000LL},
      {"2024-05-01T10:22", true, 1714558920000LL},
      {"2024-02-29T00:00:00", true, 1709164800000LL},
      {"1970-01-01T00:00:00Z", true, 0},
      {"1969-12-31T23:59:59.999Z", true, -1},
      {"0001-01-01T00:00:00", true, -62135596800000LL},
      {"9999-12-31T23:59:59", true, 253402300799000LL},
      {"2016-12-31T23:59:60Z", true, 1483228799000LL},
      {"2023-02-29T00:00:00", false, 0},
      {"2024-13-01T00:00:00", false, 0},
      {"2024-04-31T00:00:00", false, 0},
      {"2024-05-01T24:00:00", false, 0},
      {"2024-05-01T10:60:00", false, 0},
      {"2024-05-01", false, 0},
      {"2024-05-01T10:22:31+", false, 0},
      {"2024-05-01T10:22:31Zjunk", false, 0},
      {"2024-05-01T10:22:31.", false, 0},
      {"2024-05-01T10:22:31 ", false, 0},
      {"2024/05/01T10:22:31", false, 0},
      {"\"2024-05-01T10:22:31\"", false, 0},
      {"/Date(1714558951000)/", false, 0},
      {"yesterday", false, 0},
      {"", false, 0},
  };
  size_t i;
  TEST_CASE("dates");
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t ms = 42;
    bool ok = envelope_parse_time(cases[i].in, strlen(cases[i].in), &ms);
    CHECK_MSG(ok == cases[i].ok, "'%s' parsed=%d", cases[i].in, ok);
    if (ok && cases[i].ok)
      CHECK_MSG(ms == cases[i].ms, "'%s' -> %lld, expected %lld", cases[i].in, (long long)ms,
                cases[i].ms);
  }
}

/* ---- HTTP trigger --------------------------------------------------------------- */

static void test_http(void)
{
  struct function_def fn = mkfn(FN_TRIGGER_HTTP, b_req, FN_DATA_UNSET, FN_CARDINALITY_UNSET);
  struct arena a;
  struct invocation *inv = NULL;
  struct app_err err;
  size_t n;
  char *text;

  TEST_CASE("HTTP GET");
  arena_init(&a, 0);
  text = read_file("tests/fixtures/envelopes/http_get.json", &n);
  CHECK_INTEQ(parse_checked(&a, text, n, &fn, &default_limits, &inv, &err), APP_OK);
  if (inv) {
    const struct envelope_http *h = &inv->http;
    const struct json *v;
    CHECK_INTEQ(inv->kind, ENVELOPE_HTTP);
    CHECK_STREQ(h->method, "GET");
    CHECK_CONTAINS(h->url, "/api/data/v9.2/accounts(5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1)");
    CHECK_STREQ(json_get_str(h->query, "$select"), "name,revenue");
    CHECK_STREQ(json_get_str(h->params, "table"), "accounts");
    CHECK_STREQ(envelope_http_header(h, "accept"), "application/json");
    CHECK_STREQ(envelope_http_header(h, "X-MS-CLIENT-REQUEST-ID"), "r-1");
    CHECK_STREQ(envelope_http_header(h, "Prefer"), "a");
    CHECK(envelope_http_header(h, "Cookie") == NULL);
    CHECK(json_is(h->identities, JSON_ARRAY));
    CHECK(h->body == NULL);
    v = envelope_metadata(inv, "id");
    CHECK(json_is(v, JSON_STRING) && !strcmp(v->str, "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1"));
    CHECK_INTEQ(inv->nmessages, 0);
  }
  free(text);

  TEST_CASE("HTTP POST (and sniffed)");
  text = read_file("tests/fixtures/envelopes/http_post.json", &n);
  CHECK_INTEQ(parse_checked(&a, text, n, NULL, &default_limits, &inv, &err), APP_OK);
  if (inv) {
    CHECK_INTEQ(inv->kind, ENVELOPE_HTTP);
    CHECK_STREQ(inv->http.method, "POST");
    CHECK(inv->http.body_len == 8 && !strcmp(inv->http.body, "{\"id\":1}"));
    CHECK(json_is(inv->http.query, JSON_OBJECT) && inv->http.query->len == 0); /* "{}" text */
    CHECK_STREQ(envelope_http_header(&inv->http, "content-length"), "8");
  }
  free(text);

  TEST_CASE("HTTP body as a JSON value, headers as plain strings");
  CHECK_INTEQ(parse(&a,
                    "{\"Data\":{\"req\":{\"Method\":\"PATCH\",\"Headers\":{\"If-Match\":\"*\"},"
                    "\"Body\":{\"a\":[1,2.50]}}}}",
                    &fn, NULL, &inv, &err),
              APP_OK);
  if (inv) {
    CHECK_STREQ(inv->http.body, "{\"a\":[1,2.50]}");
    CHECK_STREQ(envelope_http_header(&inv->http, "if-match"), "*");
  }
  arena_cleanup(&a);
}

/* ---- malformed envelopes ---------------------------------------------------------- */

static void test_malformed(void)
{
  struct function_def one = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_BINARY, FN_CARDINALITY_ONE);
  struct function_def str = mkfn(FN_TRIGGER_SERVICE_BUS, b_msg, FN_DATA_STRING, FN_CARDINALITY_ONE);
  struct function_def many =
      mkfn(FN_TRIGGER_SERVICE_BUS, b_msgs, FN_DATA_BINARY, FN_CARDINALITY_MANY);
  struct function_def http = mkfn(FN_TRIGGER_HTTP, b_req, FN_DATA_UNSET, FN_CARDINALITY_UNSET);
  const struct function_def *fns[] = {&one, &str, &many, &http, NULL};
  static const struct {
    int fn; /* index into fns; 4 = unknown */
    const char *in;
    enum app_result code;
    const char *msg;
  } cases[] = {
      {0, "", APP_ERR_INPUT, "envelope: JSON syntax error at line 1, column 1"},
      {0, "not json", APP_ERR_INPUT, "envelope: JSON syntax error at line 1, column 1"},
      {0, "{\"Data\":{\"msg\":\"QQ==\"}", APP_ERR_INPUT, "envelope: JSON syntax error at line 1"},
      {0, "[1]", APP_ERR_INPUT,
       "envelope: expected a JSON object with Data and Metadata, got an array"},
      {0, "{\"Data\":5}", APP_ERR_INPUT, "Data: expected an object, got the number 5"},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":[]}", APP_ERR_INPUT,
       "Metadata: expected an object, got an array"},
      {0, "{\"Metadata\":{}}", APP_ERR_INPUT, "envelope: no Data object (expected Data.msg)"},
      {0, "{\"Data\":{}}", APP_ERR_INPUT,
       "Data.msg is missing (the trigger binding of function ChangesOne)"},
      {0, "{\"Data\":{\"msg\":5}}", APP_ERR_INPUT,
       "Data.msg: expected a base64 string, got the number 5"},
      {0, "{\"Data\":{\"msg\":null}}", APP_ERR_INPUT,
       "Data.msg: expected a base64 string, got null"},
      {0, "{\"Data\":{\"msg\":\"ab$d\"}}", APP_ERR_INPUT,
       "Data.msg: invalid base64 at character 2"},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"DeliveryCount\":\"\\\"abc\\\"\"}}",
       APP_ERR_INPUT, "Metadata.DeliveryCount: expected an integer, got the string \"abc\""},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"DeliveryCount\":\"1.5\"}}", APP_ERR_INPUT,
       "Metadata.DeliveryCount: expected an integer, got the number 1.5"},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"DeliveryCount\":\"-1\"}}", APP_ERR_INPUT,
       "Metadata.DeliveryCount: -1 is out of range"},
      {0,
       "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"SequenceNumber\":\"99999999999999999999\"}}",
       APP_ERR_INPUT, "Metadata.SequenceNumber: expected an integer, got the number 9999"},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"EnqueuedTimeUtc\":\"yesterday\"}}",
       APP_ERR_INPUT,
       "Metadata.EnqueuedTimeUtc: expected an ISO 8601 date-time, got the string \"yesterday\""},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"MessageId\":{\"a\":1}}}", APP_ERR_INPUT,
       "Metadata.MessageId: expected a string, got an object"},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"ApplicationProperties\":\"\\\"x\\\"\"}}",
       APP_ERR_INPUT, "Metadata.ApplicationProperties: expected an object, got the string \"x\""},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"RetryContext\":[]}}", APP_ERR_INPUT,
       "Metadata.RetryContext: expected an object, got an array"},
      {0, "{\"Data\":{\"msg\":\"QQ==\"},\"Metadata\":{\"RetryContext\":{\"RetryCount\":\"x\"}}}",
       APP_ERR_INPUT, "Metadata.RetryContext.RetryCount: expected an integer"},
      {1, "{\"Data\":{\"msg\":\"\\\"abc\"}}", APP_ERR_INPUT,
       "Data.msg: the double-encoded body is not one JSON string: JSON syntax error at line 1, "
       "column 1 (offset 0): unterminated string"},
      {1, "{\"Data\":{\"msg\":\"\\\"a\\\" x\"}}", APP_ERR_INPUT,
       "Data.msg: the double-encoded body is not one JSON string"},
      {1, "{\"Data\":{\"msg\":{}}}", APP_ERR_INPUT,
       "Data.msg: expected a string holding the message as a JSON string literal, got an object"},
      {2, "{\"Data\":{\"msgs\":\"[\\\"QUJD\\\",5]\"}}", APP_ERR_INPUT,
       "Data.msgs[1]: expected a base64 string, got the number 5"},
      {2, "{\"Data\":{\"msgs\":\"[\\\"QUJD\\\",\\\"Q!==\\\"]\"}}", APP_ERR_INPUT,
       "Data.msgs[1]: invalid base64 at character 1"},
      {2, "{\"Data\":{\"msgs\":\"{\\\"a\\\":1}\"}}", APP_ERR_INPUT,
       "Data.msgs: expected an array of messages (cardinality many), got JSON text of an object"},
      {2, "{\"Data\":{\"msgs\":\"oops\"}}", APP_ERR_INPUT,
       "Data.msgs: expected an array of messages (cardinality many), got the string \"oops\""},
      {2, "{\"Data\":{\"msgs\":{}}}", APP_ERR_INPUT,
       "Data.msgs: expected an array of messages (cardinality many), got an object"},
      {2,
       "{\"Data\":{\"msgs\":\"[\\\"QQ==\\\",\\\"QQ==\\\"]\"},\"Metadata\":{\"MessageIdArray\":"
       "\"[\\\"a\\\",\\\"b\\\",\\\"c\\\"]\"}}",
       APP_ERR_INPUT, "Metadata.MessageIdArray has 3 entries but the batch has 2 messages"},
      {2, "{\"Data\":{\"msgs\":[\"QQ==\"]},\"Metadata\":{\"MessageIdArray\":\"5\"}}", APP_ERR_INPUT,
       "Metadata.MessageIdArray: expected an array (JSON text of an array), got the number 5"},
      {2,
       "{\"Data\":{\"msgs\":[\"QQ==\",\"QQ==\"]},\"Metadata\":{\"DeliveryCountArray\":"
       "\"[1,\\\"x\\\"]\"}}",
       APP_ERR_INPUT, "Metadata.DeliveryCountArray[1]: expected an integer, got the string \"x\""},
      {2, "{\"Data\":{\"msgs\":[\"QQ==\"]},\"Metadata\":{\"EnqueuedTimeUtcArray\":[\"nope\"]}}",
       APP_ERR_INPUT,
       "Metadata.EnqueuedTimeUtcArray[0]: expected an ISO 8601 date-time, got the string \"nope\""},
      {2,
       "{\"Data\":{\"msgs\":[\"QQ==\",\"QQ==\"]},\"Metadata\":{\"ApplicationPropertiesArray\":"
       "\"[1,2]\"}}",
       APP_ERR_INPUT,
       "Metadata.ApplicationPropertiesArray[0]: expected an object, got the number 1"},
      {2, "{\"Data\":{\"msgs\":[\"QQ==\"]},\"Metadata\":{\"SequenceNumberArray\":[[1]]}}",
       APP_ERR_INPUT, "Metadata.SequenceNumberArray[0]: expected an integer, got an array"},
      {3, "{\"Data\":{\"req\":5}}", APP_ERR_INPUT,
       "Data.req: expected the HTTP request object, got the number 5"},
      {3, "{\"Data\":{\"req\":{\"Query\":5}}}", APP_ERR_INPUT,
       "Data.req.Query: expected an object, got the number 5"},
      {3, "{\"Data\":{\"req\":{\"Headers\":\"[]\"}}}", APP_ERR_INPUT,
       "Data.req.Headers: expected an object, got the string \"[]\""},
      {3, "{\"Data\":{\"req\":{\"Method\":[]}}}", APP_ERR_INPUT,
       "Data.req.Method: expected a string, got an array"},
      {4, "{\"Data\":{\"a\":\"QQ==\",\"b\":\"QQ==\"}}", APP_ERR_INPUT,
       "Data has 2 members and the trigger binding is unknown"},
      {4, "{\"Data\":{\"m\":5}}", APP_ERR_INPUT,
       "Data.m: expected a message (a string) or an array of messages, got the number 5"},
      {4, "{\"Data\":{\"m\":\"not base64!\"}}", APP_ERR_INPUT,
       "Data.m: invalid base64 at character 3"},
      {4, "{\"Data\":{\"m\":\"\\u0001\\n\\\"x\"}}", APP_ERR_INPUT, "Data.m: invalid base64"},
  };
  struct arena a;
  size_t i;

  TEST_CASE("malformed envelopes");
  arena_init(&a, 0);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct invocation *inv = NULL;
    struct app_err err;
    enum app_result r = parse(&a, cases[i].in, fns[cases[i].fn], NULL, &inv, &err);
    CHECK_MSG(r == cases[i].code, "case %zu %s: got %s (%s)", i, cases[i].in, app_result_str(r),
              err.msg);
    if (r != APP_OK)
      CHECK_MSG(strstr(err.msg, cases[i].msg) != NULL, "case %zu:\n  got:      %s\n  expected: %s",
                i, err.msg, cases[i].msg);
    arena_reset(&a);
  }
  arena_cleanup(&a);
}

/* ---- response building --------------------------------------------------------------- */

static char *written(const struct envelope_response *r)
{
  struct buf b;
  struct arena a;
  struct json *root = NULL;
  struct app_err err;
  char *s;

  buf_init(&b, 0);
  if (envelope_response_write(r, &b) != APP_OK)
    return NULL;
  s = buf_steal(&b, NULL);
  /* every response must be one valid JSON object */
  arena_init(&a, 0);
  CHECK_MSG(json_parse(&a, s, strlen(s), 64, &root, &err) == APP_OK && root->type == JSON_OBJECT,
            "not JSON: %s", s);
  arena_cleanup(&a);
  return s;
}

static void test_response(void)
{
  struct envelope_response r;
  struct app_err err;
  char *s;
  static const char *const hdrs[] = {"Content-Type", "application/json", "X-Note", "a\"b"};
  unsigned char raw[8];
  size_t rawlen = 0;

  TEST_CASE("empty response");
  envelope_response_init(&r, 0);
  s = written(&r);
  CHECK_STREQ(s, ENVELOPE_EMPTY_RESPONSE);
  CHECK_STREQ(s, "{\"Outputs\":{},\"Logs\":[],\"ReturnValue\":null}");
  free(s);

  TEST_CASE("string outputs are wrapped in arrays (the base64 trap)");
  /* "abcd" is valid base64: a bare string would reach Redis as 3 bytes */
  CHECK(base64_decode("abcd", 4, raw, &rawlen, NULL) && rawlen == 3);
  CHECK_INTEQ(envelope_response_add_output_string(&r, "cache", "abcd", 4, &err), APP_OK);
  CHECK_INTEQ(envelope_response_add_output_string(&r, "cache", "k2 \"v\"\n", 7, &err), APP_OK);
  CHECK_INTEQ(
      envelope_response_add_output(&r, "row", "{\"Id\":1,\"Amount\":1.0000000000}", 30, &err),
      APP_OK);
  CHECK_INTEQ(envelope_response_add_output(&r, "row", "{}", 2, &err), APP_ERR_INPUT);
  CHECK_CONTAINS(err.msg, "Outputs.row is already set");
  CHECK_INTEQ(envelope_response_add_output_string(&r, "row", "x", 1, &err), APP_ERR_INPUT);
  CHECK_INTEQ(envelope_response_add_output(&r, "cache", "[]", 2, &err), APP_ERR_INPUT);
  CHECK_INTEQ(envelope_response_add_output(&r, "", "[]", 2, &err), APP_ERR_INPUT);
  CHECK_INTEQ(envelope_response_add_output(&r, "empty", "", 0, &err), APP_ERR_INPUT);
  CHECK_INTEQ(envelope_response_add_log(&r, "processed %d change(s)", 2), APP_OK);
  CHECK_INTEQ(envelope_response_add_log(&r, "tab\there \"quoted\""), APP_OK);
  s = written(&r);
  CHECK_STREQ(s, "{\"Outputs\":{\"cache\":[\"abcd\",\"k2 \\\"v\\\"\\n\"],"
                 "\"row\":{\"Id\":1,\"Amount\":1.0000000000}},"
                 "\"Logs\":[\"processed 2 change(s)\",\"tab\\there \\\"quoted\\\"\"],"
                 "\"ReturnValue\":null}");
  free(s);
  envelope_response_cleanup(&r);

  TEST_CASE("HTTP res output and $return");
  envelope_response_init(&r, 0);
  CHECK_INTEQ(envelope_response_add_http(&r, "res", 201, hdrs, 2, "{\"ok\":true}", 11, &err),
              APP_OK);
  CHECK_INTEQ(envelope_response_add_http(&r, "res2", 99, hdrs, 0, NULL, 0, &err), APP_ERR_INPUT);
  s = written(&r);
  CHECK_STREQ(s, "{\"Outputs\":{\"res\":{\"statusCode\":201,\"headers\":{\"Content-Type\":"
                 "\"application/json\",\"X-Note\":\"a\\\"b\"},\"body\":\"{\\\"ok\\\":true}\"}},"
                 "\"Logs\":[],\"ReturnValue\":null}");
  free(s);
  envelope_response_cleanup(&r);
  envelope_response_init(&r, 0);
  CHECK_INTEQ(envelope_response_add_http(&r, "$return", 404, hdrs, 0, NULL, 0, &err), APP_OK);
  s = written(&r);
  CHECK_STREQ(s, "{\"Outputs\":{},\"Logs\":[],\"ReturnValue\":{\"statusCode\":404,\"headers\":{},"
                 "\"body\":\"\"}}");
  free(s);
  CHECK_INTEQ(envelope_response_set_return(&r, "[1,2]", 5, &err), APP_OK);
  s = written(&r);
  CHECK_STREQ(s, "{\"Outputs\":{},\"Logs\":[],\"ReturnValue\":[1,2]}");
  free(s);
  envelope_response_cleanup(&r);

  TEST_CASE("response size limit keeps the response valid");
  envelope_response_init(&r, 32);
  CHECK_INTEQ(envelope_response_add_output_string(&r, "out", "0123456789", 10, &err), APP_OK);
  CHECK_INTEQ(envelope_response_add_output_string(&r, "out", "0123456789012345678901234", 25, &err),
              APP_ERR_LIMIT);
  CHECK_INTEQ(
      envelope_response_add_output(&r, "big", "[\"0123456789012345678901234567890\"]", 35, &err),
      APP_ERR_LIMIT);
  CHECK_INTEQ(envelope_response_add_log(&r, "%s", "a line that is longer than thirty-two bytes"),
              APP_ERR_LIMIT);
  {
    char longline[2000];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    CHECK_INTEQ(envelope_response_add_log(&r, "%s", longline), APP_ERR_LIMIT);
  }
  CHECK_INTEQ(envelope_response_add_log(&r, "ok"), APP_OK);
  s = written(&r);
  CHECK_STREQ(s, "{\"Outputs\":{\"out\":[\"0123456789\"]},\"Logs\":[\"ok\"],\"ReturnValue\":null}");
  free(s);
  envelope_response_cleanup(&r);
  envelope_response_cleanup(NULL);

  TEST_CASE("long log lines");
  envelope_response_init(&r, 0);
  {
    char longline[3000];
    memset(longline, 'y', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    CHECK_INTEQ(envelope_response_add_log(&r, "%s!", longline), APP_OK);
    s = written(&r);
    CHECK(s && strlen(s) == strlen("{\"Outputs\":{},\"Logs\":[\"\"],\"ReturnValue\":null}") + 3000);
    free(s);
  }
  envelope_response_cleanup(&r);
}

int main(void)
{
  test_single_binary();
  test_single_string();
  test_single_retry();
  test_batches();
  test_limits();
  test_metadata();
  test_twin_metadata();
  test_metadata_too_deep();
  test_dates();
  test_http();
  test_malformed();
  test_response();
  return check_report("test_envelope");
}

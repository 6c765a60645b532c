/* test_dv_order.c - what the decoder and mapper say about order under
 * what Dataverse really sends (issue 11): the row version comes from the
 * post image, never from an Update's Target RowVersion; a recycle-bin
 * Restore revives the record; a nested change (Depth >= 2 on the row its
 * parent changed) is flagged as of uncertain order unless a post image
 * carries versionnumber; date-only values keep the day of the server's
 * offset.
 *
 * Messages are the pipeline templates (tests/fixtures/pipeline/) with
 * members replaced, so they stay what the e2e tests send. */
#include "common/arena.h"
#include "dataverse/dataverse.h"
#include "map/mapping.h"
#include "check.h"
#include "testfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID  "a0000000-0000-4000-8000-0000000000aa"
#define OPI "00000001-0000-4000-8000-000000000001"

static struct arena arena;

/* s with every "from" replaced by "to" (caller frees) */
static char *replace(const char *s, const char *from, const char *to)
{
  size_t nf = strlen(from), nt = strlen(to), n = 0;
  const char *p;
  char *out, *o;
  for (p = strstr(s, from); p; p = strstr(p + nf, from))
    n++;
  out = malloc(strlen(s) + n * (nt + 1) + 1);
  if (!out)
    return NULL;
  for (o = out; (p = strstr(s, from)) != NULL; s = p + nf) {
    memcpy(o, s, (size_t)(p - s));
    o += p - s;
    memcpy(o, to, nt);
    o += nt;
  }
  strcpy(o, s);
  return out;
}

/* the account_update template for ID at ts with telephone1 = v, then the
 * pairs of further replacements (NULL-terminated) */
static char *update_msg(const char *ts, const char *col, const char *v, ...)
{
  char path[512], *t, *x;
  size_t n;
  const char *from;
  va_list ap;
  snprintf(path, sizeof path, "%s/tests/fixtures/pipeline/account_update.json",
           getenv("ROOT") ? getenv("ROOT") : ".");
  t = test_read_file(path, &n);
  CHECK_MSG(t != NULL, "cannot read %s", path);
  if (!t)
    return NULL;
  x = replace(t, "@ID@", ID), free(t), t = x;
  x = replace(t, "@TS@", ts), free(t), t = x;
  x = replace(t, "@OPID@", OPI), free(t), t = x;
  x = replace(t, "@COL@", col), free(t), t = x;
  x = replace(t, "@VAL@", v), free(t), t = x;
  va_start(ap, v);
  while ((from = va_arg(ap, const char *)) != NULL) {
    const char *to = va_arg(ap, const char *);
    x = replace(t, from, to);
    free(t);
    t = x;
  }
  va_end(ap);
  return t;
}

static enum app_result decode(const char *body, struct cdc_change *ch, struct app_err *err)
{
  return dv_decode(&arena, "application/json", body, strlen(body), NULL, ch, err);
}

#define TARGET_RV     "\"RowVersion\":null}}],\"IsExecutingOffline\""
#define TARGET_RV5000 "\"RowVersion\":\"5000\"}}],\"IsExecutingOffline\""
#define POST_IMAGE(attrs)                                                                          \
  "\"PostEntityImages\":[{\"key\":\"PostImage\",\"value\":{\"Attributes\":[" attrs                 \
  "],\"EntityState\":null,\"FormattedValues\":[],\"Id\":\"" ID "\",\"KeyAttributes\":[],"          \
  "\"LogicalName\":\"account\",\"RelatedEntities\":[],\"RowVersion\":null}}]"
#define VN(n) "{\"key\":\"versionnumber\",\"value\":" n "}"

/* An Update's Target RowVersion is the caller's optimistic-concurrency
 * value from before the write: it must not order the change. */
static void test_row_version_source(void)
{
  struct cdc_change ch;
  struct app_err err = {0};
  char *m;

  TEST_CASE("Target RowVersion of an Update is ignored");
  m = update_msg("1731000001000", "telephone1", "x", TARGET_RV, TARGET_RV5000, NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.version.row_version, 0);
  free(m);

  TEST_CASE("post image versionnumber orders the change");
  m = update_msg("1731000001000", "telephone1", "x", TARGET_RV, TARGET_RV5000,
                 "\"PostEntityImages\":[]", POST_IMAGE(VN("7001")), NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK_INTEQ(ch.version.row_version, 7001);
  CHECK(!ch.order_uncertain);
  free(m);
}

/* A synchronous plug-in's Update of the row its parent changed (Depth 2,
 * ParentContext on the same record) can be stamped before its parent: its
 * order is uncertain unless the post image carries versionnumber. */
static void test_nested(void)
{
  struct cdc_change ch;
  struct app_err err = {0};
  char *m;
  static const char parent_same[] =
      "\"ParentContext\":{\"Depth\":1,\"MessageName\":\"Update\",\"PrimaryEntityId\":\"" ID
      "\",\"PrimaryEntityName\":\"account\"}";
  static const char parent_other[] =
      "\"ParentContext\":{\"Depth\":1,\"MessageName\":\"Update\",\"PrimaryEntityId\":"
      "\"b0000000-0000-4000-8000-000000000001\",\"PrimaryEntityName\":\"contact\"}";

  TEST_CASE("Depth 1: certain");
  m = update_msg("1731000001000", "telephone1", "x", NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK(!ch.order_uncertain);
  free(m);

  TEST_CASE("Depth 2 on the parent's row, no versionnumber: uncertain");
  m = update_msg("1731000001000", "telephone1", "x", "\"Depth\":1", "\"Depth\":2",
                 "\"ParentContext\":null", parent_same, NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK(ch.order_uncertain);
  free(m);

  TEST_CASE("Depth 2 without ParentContext: uncertain");
  m = update_msg("1731000001000", "telephone1", "x", "\"Depth\":1", "\"Depth\":2", NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK(ch.order_uncertain);
  free(m);

  TEST_CASE("Depth 2: own stage-30 context, then the parent on another record: certain");
  m = update_msg("1731000001000", "telephone1", "x", "\"Depth\":1", "\"Depth\":2",
                 "\"ParentContext\":null",
                 "\"ParentContext\":{\"Depth\":2,\"PrimaryEntityId\":\"" ID "\",\"ParentContext\":{"
                 "\"Depth\":1,\"PrimaryEntityId\":\"b0000000-0000-4000-8000-000000000001\"}}",
                 NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK(!ch.order_uncertain);
  free(m);

  TEST_CASE("Depth 2: own stage-30 context, then the parent on this record: uncertain");
  m = update_msg("1731000001000", "telephone1", "x", "\"Depth\":1", "\"Depth\":2",
                 "\"ParentContext\":null",
                 "\"ParentContext\":{\"Depth\":2,\"PrimaryEntityId\":\"" ID "\",\"ParentContext\":{"
                 "\"Depth\":1,\"PrimaryEntityId\":\"" ID "\"}}",
                 NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK(ch.order_uncertain);
  free(m);

  TEST_CASE("Depth 2 on another record: certain");
  m = update_msg("1731000001000", "telephone1", "x", "\"Depth\":1", "\"Depth\":2",
                 "\"ParentContext\":null", parent_other, NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK(!ch.order_uncertain);
  free(m);

  TEST_CASE("Depth 2 with a post image versionnumber: certain");
  m = update_msg("1731000001000", "telephone1", "x", "\"Depth\":1", "\"Depth\":2",
                 "\"ParentContext\":null", parent_same, "\"PostEntityImages\":[]",
                 POST_IMAGE(VN("7002")), NULL);
  CHECK_INTEQ(decode(m, &ch, &err), APP_OK);
  CHECK(!ch.order_uncertain);
  CHECK_INTEQ(ch.version.row_version, 7002);
  free(m);
}

/* Restore (recycle bin): the record lives again. With a post image the
 * image is the whole row; without one the row must be re-read. */
static void test_restore(void)
{
  struct cdc_change ch;
  struct app_err err = {0};
  char *m;

  TEST_CASE("Restore with a post image: a full row");
  m = update_msg("1731000005000", "telephone1", "x", "\"MessageName\":\"Update\"",
                 "\"MessageName\":\"Restore\"", "\"PostEntityImages\":[]",
                 POST_IMAGE("{\"key\":\"name\",\"value\":\"Back\"},"
                            "{\"key\":\"telephone1\",\"value\":\"P1\"}," VN("9001")),
                 NULL);
  CHECK_MSG(decode(m, &ch, &err) == APP_OK, "%s", err.msg);
  CHECK_INTEQ(ch.op, CDC_OP_RESTORE);
  CHECK_STREQ(ch.id, ID);
  CHECK_STREQ(ch.table, "account");
  CHECK(ch.full_row);
  CHECK(!ch.needs_reread);
  CHECK(ch.post_image != NULL);
  CHECK_INTEQ(ch.version.row_version, 9001);
  free(m);

  TEST_CASE("Restore without a post image: re-read");
  m = update_msg("1731000005000", "telephone1", "x", "\"MessageName\":\"Update\"",
                 "\"MessageName\":\"Restore\"", NULL);
  CHECK_MSG(decode(m, &ch, &err) == APP_OK, "%s", err.msg);
  CHECK_INTEQ(ch.op, CDC_OP_RESTORE);
  CHECK_STREQ(ch.id, ID);
  CHECK(ch.needs_reread);
  free(m);
}

/* A date-only column written by a server at +0300: DCJS writes local
 * midnight as the UTC instant 21:00 the day before, with the offset. */
static void test_date_only_offset(void)
{
  struct cdc_change ch;
  struct app_err err = {0};
  struct map_config *cfg = NULL;
  static const char map[] = "{\"tables\":{\"account\":{\"date_only\":[\"new_opened\"]}}}";
  enum map_verdict verdict;
  struct doc d;
  size_t i;
  const char *got = NULL;
  char *m;

  TEST_CASE("date-only with +0300");
  CHECK(map_config_parse(map, strlen(map), "test", NULL, &cfg, &err) == APP_OK);
  m = update_msg("1731000001000", "new_opened", "x", "\"value\":\"x\"",
                 "\"value\":\"\\/Date(1735592400000+0300)\\/\"", NULL);
  CHECK_MSG(decode(m, &ch, &err) == APP_OK, "%s", err.msg);
  if (cfg && map_change(cfg, &arena, &ch, &verdict, &d, &err) == APP_OK) {
    for (i = 0; i < d.nprops; i++)
      if (!strcmp(d.props[i].name, "new_opened"))
        got = d.props[i].text;
    CHECK_STREQ(got, "2024-12-31");
  } else {
    CHECK_MSG(0, "map: %s", err.msg);
  }
  free(m);

  TEST_CASE("date-only with -0500");
  /* 2024-12-31 00:00 at -05:00 is 05:00 UTC the same day */
  m = update_msg("1731000001000", "new_opened", "x", "\"value\":\"x\"",
                 "\"value\":\"\\/Date(1735621200000-0500)\\/\"", NULL);
  CHECK_MSG(decode(m, &ch, &err) == APP_OK, "%s", err.msg);
  got = NULL;
  if (cfg && map_change(cfg, &arena, &ch, &verdict, &d, &err) == APP_OK) {
    for (i = 0; i < d.nprops; i++)
      if (!strcmp(d.props[i].name, "new_opened"))
        got = d.props[i].text;
    CHECK_STREQ(got, "2024-12-31");
  }
  free(m);
  map_config_free(cfg);
}

/* The pairwise order of the sinks and the tie test on version texts. */
static void test_version_text_order(void)
{
  /* ts 15 digits, row version 20, tie 10 */
#define V(ts, rv, tie) ts rv tie
  const char *a = V("001731000006000", "00000000000000000300", "1610612737");
  const char *b = V("001731000005500", "00000000000000000301", "1610612738");
  const char *c = V("001731000005500", "00000000000000000000", "1610612739");
  const char *d = V("001731000005500", "00000000000000000000", "1610612740");
  const char *del = V("001731000005000", "18446744073709551615", "3758096385");
  const char *cre = V("001731000005500", "00000000000000000000", "0536870913");

  TEST_CASE("row versions on both sides decide");
  CHECK(cdc_version_text_order(b, a) > 0); /* 301 > 300 though stamped earlier */
  CHECK(cdc_version_text_order(a, b) < 0);
  TEST_CASE("otherwise time first");
  CHECK(cdc_version_text_order(a, c) > 0);
  CHECK(cdc_version_text_order(a, del) > 0); /* a Delete's 2^64-1 is no row version */
  CHECK(cdc_version_text_order(del, b) < 0);
  CHECK(cdc_version_text_order(a, a) == 0);
  TEST_CASE("ties");
  CHECK(cdc_version_text_tied(c, d));    /* same time, no row versions, same rank */
  CHECK(cdc_version_text_tied(b, c));    /* a row version against none */
  CHECK(!cdc_version_text_tied(c, c));   /* the same change */
  CHECK(!cdc_version_text_tied(a, b));   /* different times */
  CHECK(!cdc_version_text_tied(c, cre)); /* Create's rank orders */
#undef V
}

int main(void)
{
  arena_init(&arena, 0);
  test_version_text_order();
  test_row_version_source();
  test_nested();
  test_restore();
  test_date_only_offset();
  arena_cleanup(&arena);
  return check_report("dv_order");
}

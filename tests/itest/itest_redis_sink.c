/* itest_redis_sink.c - the sink's correctness rules against a real
 * redis-server ($REDIS_PORT), each delivered in adversarial orders through
 * redis_sink_apply and read back with redis_read. Run by
 * tests/e2e/redis_sink.sh. */
#include "itest_redis.h"

#include <pthread.h>

#define T0    INT64_C(1731053106000)
#define ID(n) "00000000-0000-0000-0000-0000000000" #n

static struct arena A;

static struct sink_stats apply_ok(struct redis_sink *s, struct doc **docs, size_t n)
{
  struct sink_stats st;
  struct app_err err = {0};
  enum app_result r = itest_apply(s, docs, n, &st, &err);
  CHECK_MSG(r == APP_OK, "apply: %s", err.msg);
  return st;
}

static struct sink_stats apply1(struct redis_sink *s, struct doc *d)
{
  return apply_ok(s, &d, 1);
}

static void test_reversed_duplicated(struct redis_sink *s)
{
  struct doc *d[7];
  struct sink_stats st;
  struct redis_record rec;
  static const char *const names[] = {"\"v1\"", "\"v2\"", "\"v3\"", "\"v4\"", "\"v5\""};
  int order[] = {4, 3, 2, 1, 0, 4, 2}, i;

  TEST_CASE("reversed and duplicated updates");
  for (i = 0; i < 7; i++)
    d[i] = itest_doc(&A, CDC_OP_UPDATE, "account", ID(01), T0 + order[i] * 1000, false, "name",
                     names[order[i]], NULL);
  st = apply_ok(s, d, 7);
  CHECK_INTEQ(st.applied, 1);
  CHECK_INTEQ(st.stale, 6);
  CHECK_INTEQ(st.round_trips, 1);
  rec = itest_read(s, &A, "account", ID(01));
  CHECK_INTEQ(rec.state, RREC_LIVE);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"v5\"");
  CHECK_STREQ(rec.version_text, d[0]->version_text);
  CHECK_INTEQ(rec.op_time_ms, T0 + 4000);
  CHECK_INTEQ(rec.nprops, 1);
  /* a redelivery of everything changes nothing */
  st = apply_ok(s, d, 7);
  CHECK_INTEQ(st.applied, 0);
  CHECK_INTEQ(st.stale, 7);
}

static void test_two_partials(struct redis_sink *s)
{
  struct doc *a1, *b1, *a2, *b2;
  struct redis_record rec;

  TEST_CASE("two partial updates to different properties, both orders");
  a1 = itest_doc(&A, CDC_OP_UPDATE, "contact", ID(02), T0 + 2000, false, "firstname", "\"Ann\"",
                 NULL);
  b1 = itest_doc(&A, CDC_OP_UPDATE, "contact", ID(02), T0 + 3000, false, "lastname", "\"Lee\"",
                 NULL);
  apply1(s, a1);
  apply1(s, b1);
  a2 = itest_doc(&A, CDC_OP_UPDATE, "contact", ID(03), T0 + 2000, false, "firstname", "\"Ann\"",
                 NULL);
  b2 = itest_doc(&A, CDC_OP_UPDATE, "contact", ID(03), T0 + 3000, false, "lastname", "\"Lee\"",
                 NULL);
  CHECK_INTEQ(apply1(s, b2).applied, 1);
  CHECK_INTEQ(apply1(s, a2).applied, 1); /* older, but a different property */
  rec = itest_read(s, &A, "contact", ID(02));
  CHECK_STREQ(itest_prop_json(&rec, "firstname"), "\"Ann\"");
  CHECK_STREQ(itest_prop_json(&rec, "lastname"), "\"Lee\"");
  CHECK_STREQ(rec.version_text, b1->version_text);
  rec = itest_read(s, &A, "contact", ID(03));
  CHECK_INTEQ(rec.nprops, 2);
  CHECK_STREQ(itest_prop_json(&rec, "firstname"), "\"Ann\"");
  CHECK_STREQ(itest_prop_json(&rec, "lastname"), "\"Lee\"");
  CHECK_STREQ(itest_prop(&rec, "firstname")->version_text, a2->version_text);
  CHECK_STREQ(itest_prop(&rec, "lastname")->version_text, b2->version_text);
  CHECK_STREQ(rec.version_text, b2->version_text); /* the latest, not the last applied */
  CHECK_INTEQ(rec.op_time_ms, T0 + 3000);
}

static void test_full_row(struct redis_sink *s)
{
  struct doc *p3, *c2, *f4, *late;
  struct redis_record rec;

  TEST_CASE("full row vs partial");
  p3 = itest_doc(&A, CDC_OP_UPDATE, "account", ID(04), T0 + 3000, false, "x", "\"new\"", "y",
                 "\"p\"", NULL);
  c2 = itest_doc(&A, CDC_OP_CREATE, "account", ID(04), T0 + 2000, true, "x", "\"old\"", "z",
                 "\"c\"", "w", "\"w\"", NULL);
  apply1(s, p3);
  CHECK_INTEQ(apply1(s, c2).applied, 1); /* z and w are new to the record */
  rec = itest_read(s, &A, "account", ID(04));
  CHECK_INTEQ(rec.nprops, 4);
  CHECK_STREQ(itest_prop_json(&rec, "x"), "\"new\"");
  CHECK_STREQ(itest_prop_json(&rec, "y"), "\"p\"");
  CHECK_STREQ(itest_prop_json(&rec, "z"), "\"c\"");
  CHECK_STREQ(itest_prop_json(&rec, "w"), "\"w\"");
  /* a newer full row (post image) drops older properties it does not list */
  f4 = itest_doc(&A, CDC_OP_UPDATE, "account", ID(04), T0 + 4000, true, "x", "\"x4\"", "z", "null",
                 NULL);
  apply1(s, f4);
  rec = itest_read(s, &A, "account", ID(04));
  CHECK_INTEQ(rec.nprops, 2);
  CHECK_STREQ(itest_prop_json(&rec, "x"), "\"x4\"");
  CHECK_STREQ(itest_prop_json(&rec, "z"), "null");
  CHECK(itest_prop(&rec, "y") == NULL);
  CHECK(itest_prop(&rec, "w") == NULL);
  /* a late partial older than that full row cannot bring w back */
  late = itest_doc(&A, CDC_OP_UPDATE, "account", ID(04), T0 + 3500, false, "w", "\"late\"", NULL);
  CHECK_INTEQ(apply1(s, late).stale, 1);
  rec = itest_read(s, &A, "account", ID(04));
  CHECK(itest_prop(&rec, "w") == NULL);
  CHECK_INTEQ(rec.state, RREC_LIVE);
}

static void test_delete(struct redis_sink *s, const struct app_config *cfg)
{
  struct doc *c1, *d3, *u2, *u4, *u5, *d4b;
  struct redis_record rec;
  long long ttl;

  TEST_CASE("delete, then a late older update");
  c1 = itest_doc(&A, CDC_OP_CREATE, "account", ID(05), T0 + 1000, true, "name", "\"A\"", "city",
                 "\"B\"", NULL);
  c1->ttl_seconds = 1000;
  d3 = itest_doc(&A, CDC_OP_DELETE, "account", ID(05), T0 + 3000, false, NULL);
  u2 =
      itest_doc(&A, CDC_OP_UPDATE, "account", ID(05), T0 + 2000, false, "name", "\"zombie\"", NULL);
  apply1(s, c1);
  CHECK_INTEQ(apply1(s, d3).applied, 1);
  CHECK_INTEQ(apply1(s, u2).stale, 1);
  CHECK_INTEQ(apply1(s, d3).stale, 1); /* redelivered delete */
  rec = itest_read(s, &A, "account", ID(05));
  CHECK_INTEQ(rec.state, RREC_DELETED);
  CHECK_INTEQ(rec.nprops, 0);
  CHECK_STREQ(rec.deleted_version, d3->version_text);
  ttl = itest_int(s, "TTL", "d365:{account:00000000-0000-0000-0000-000000000005}", NULL);
  CHECK_MSG(ttl > cfg->tombstone_ttl_s - 10 && ttl <= cfg->tombstone_ttl_s,
            "tombstone TTL %lld, want ~%d", ttl, cfg->tombstone_ttl_s);

  TEST_CASE("a newer change revives a deleted record");
  u4 = itest_doc(&A, CDC_OP_UPDATE, "account", ID(05), T0 + 4000, false, "name", "\"back\"", NULL);
  CHECK_INTEQ(apply1(s, u4).applied, 1);
  rec = itest_read(s, &A, "account", ID(05));
  CHECK_INTEQ(rec.state, RREC_LIVE);
  CHECK_INTEQ(rec.nprops, 1);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"back\"");
  CHECK_INTEQ(itest_int(s, "TTL", "d365:{account:00000000-0000-0000-0000-000000000005}", NULL), -1);

  TEST_CASE("a delete older than a partial update");
  u5 = itest_doc(&A, CDC_OP_UPDATE, "account", ID(06), T0 + 5000, false, "a", "1", NULL);
  d4b = itest_doc(&A, CDC_OP_DELETE, "account", ID(06), T0 + 4000, false, NULL);
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(06), T0 + 1000, false, "b", "2", NULL));
  apply1(s, u5);
  CHECK_INTEQ(apply1(s, d4b).applied, 1);
  rec = itest_read(s, &A, "account", ID(06));
  CHECK_INTEQ(rec.state, RREC_LIVE);
  CHECK_INTEQ(rec.nprops, 1);
  CHECK_STREQ(itest_prop_json(&rec, "a"), "1");
  CHECK_STREQ(rec.deleted_version, d4b->version_text);
  /* an update between the delete and the newest change still applies */
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(06), T0 + 4500, false, "b", "3", NULL));
  rec = itest_read(s, &A, "account", ID(06));
  CHECK_STREQ(itest_prop_json(&rec, "b"), "3");
  /* and one older than the delete does not */
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(06), T0 + 3000, false, "c", "4", NULL));
  rec = itest_read(s, &A, "account", ID(06));
  CHECK(itest_prop(&rec, "c") == NULL);
}

static void check_members(struct redis_sink *s, const char *table, const char *id,
                          const char *expect /* "id,id" or "" */)
{
  struct doc_related *m = NULL;
  size_t n = 0, i;
  struct app_err err = {0};
  struct buf b;
  buf_init(&b, 0);
  CHECK_INTEQ(redis_read_related(itest_mux(s), redis_sink_prefix(s), &A, table, id,
                                 "accountleads_association", 0, &m, &n, &err),
              APP_OK);
  for (i = 0; i < n; i++)
    CHECK_INTEQ(buf_printf(&b, "%s%s:%s", i ? "," : "", m[i].table, m[i].id), APP_OK);
  CHECK_STREQ(b.data ? b.data : "", expect);
  buf_cleanup(&b);
}

static void test_relationships(struct redis_sink *s)
{
  static const char *const b1b2[] = {ID(b1), ID(b2)}, *const b1[] = {ID(b1)};
  struct doc *dis3, *as2, *as4;
  struct doc_related *m = NULL;
  struct redis_record recs[2];
  size_t n = 0;
  struct app_err err = {0};

  TEST_CASE("associate and disassociate out of order");
  dis3 = itest_rel_doc(&A, CDC_OP_DISASSOCIATE, "account", ID(a1), "accountleads_association",
                       T0 + 3000, "lead", b1, 1);
  as2 = itest_rel_doc(&A, CDC_OP_ASSOCIATE, "account", ID(a1), "accountleads_association",
                      T0 + 2000, "lead", b1b2, 2);
  CHECK_INTEQ(apply1(s, dis3).applied, 1);
  CHECK_INTEQ(apply1(s, as2).applied, 1); /* b2 is new; b1 stays disassociated */
  check_members(s, "account", ID(a1), "lead:" ID(b2));
  check_members(s, "lead", ID(b1), "");
  check_members(s, "lead", ID(b2), "account:" ID(a1));
  CHECK_INTEQ(apply1(s, as2).stale, 1);  /* redelivered */
  CHECK_INTEQ(apply1(s, dis3).stale, 1); /* redelivered */
  as4 = itest_rel_doc(&A, CDC_OP_ASSOCIATE, "account", ID(a1), "accountleads_association",
                      T0 + 4000, "lead", b1, 1);
  CHECK_INTEQ(apply1(s, as4).applied, 1);
  check_members(s, "account", ID(a1), "lead:" ID(b1) ",lead:" ID(b2));
  check_members(s, "lead", ID(b1), "account:" ID(a1));

  TEST_CASE("related records in one more round trip");
  apply1(s, itest_doc(&A, CDC_OP_CREATE, "lead", ID(b1), T0, true, "subject", "\"L1\"", NULL));
  CHECK_INTEQ(redis_read_related(itest_mux(s), "d365", &A, "account", ID(a1),
                                 "accountleads_association", 0, &m, &n, &err),
              APP_OK);
  CHECK_INTEQ(n, 2);
  if (n == 2) {
    CHECK_STREQ(m[0].entity_set, "lead");
    CHECK_INTEQ(redis_read_records(itest_mux(s), "d365", &A, m, n, 0, recs, &err), APP_OK);
    CHECK_INTEQ(recs[0].state, RREC_LIVE);
    CHECK_STREQ(itest_prop_json(&recs[0], "subject"), "\"L1\"");
    CHECK_INTEQ(recs[1].state, RREC_ABSENT);
    CHECK_STREQ(recs[1].id, ID(b2));
  }
}

/* Disassociations older than the tombstone TTL are forgotten, a page of
 * HSCAN per associate/disassociate call, resuming at the '#cursor' field;
 * recent ones and associations stay, and readers never see the cursor. */
static void test_prune(struct redis_sink *s)
{
  static const char *const key = "d365:{account:00000000-0000-0000-0000-0000000000e1}:"
                                 "rel:accountleads_association";
  char field[64], value[128], ids[40][40];
  const char *fresh[40];
  struct doc *d;
  int i, calls;
  long long hlen = 0;

  TEST_CASE("old disassociations are pruned page by page, recent ones kept");
  /* 300 disassociations applied in 2001 (15-digit ms), written as the
   * script writes them, plus 5 old associations */
  for (i = 0; i < 305; i++) {
    snprintf(field, sizeof field, "lead:00000000-0000-0000-0001-%012d", i);
    snprintf(value, sizeof value, "%045d%c%015lld%s", 1, i < 300 ? '0' : '1', 1000000000000LL,
             "leads");
    freeReplyObject(itest_cmd(s, "HSET", key, field, value, NULL));
  }
  for (i = 0; i < 40; i++) {
    snprintf(ids[i], sizeof ids[i], "00000000-0000-0000-0002-%012d", i);
    fresh[i] = ids[i];
  }
  /* a recent disassociation, which must survive the pruning */
  d = itest_rel_doc(&A, CDC_OP_DISASSOCIATE, "account", ID(e1), "accountleads_association",
                    T0 + 1000, "lead", fresh, 1);
  CHECK_INTEQ(apply1(s, d).applied, 1);
  /* then associations of new members, until only the 5 old associations,
   * the recent disassociation and the new members are left */
  for (calls = 0; calls < 400; calls++) {
    int distinct = calls < 39 ? calls : 39;
    hlen = itest_int(s, "HLEN", key, NULL) - itest_int(s, "HEXISTS", key, "#cursor", NULL);
    if (hlen == 5 + 1 + distinct)
      break;
    d = itest_rel_doc(&A, CDC_OP_ASSOCIATE, "account", ID(e1), "accountleads_association",
                      T0 + 2000 + calls, "lead", &fresh[calls < 39 ? calls + 1 : 39], 1);
    CHECK_INTEQ(apply1(s, d).applied, 1);
  }
  CHECK_MSG(calls < 400, "300 old disassociations not pruned after %d calls (HLEN %lld)", calls,
            hlen);
  CHECK_MSG(calls >= 300 / 16 / 2, "pruned in %d calls: more than one page per call?", calls);
  fprintf(stderr, "  300 old disassociations pruned in %d calls\n", calls);
  CHECK_INTEQ(itest_int(s, "HEXISTS", key, "lead:00000000-0000-0000-0002-000000000000", NULL), 1);
  CHECK_INTEQ(itest_int(s, "HEXISTS", key, "lead:00000000-0000-0000-0001-000000000300", NULL), 1);
  CHECK_INTEQ(itest_int(s, "HEXISTS", key, "lead:00000000-0000-0000-0001-000000000007", NULL), 0);
  {
    struct doc_related *m = NULL;
    size_t n = 0, k;
    struct app_err err = {0};
    /* members: the 5 old associations and the new ones; the cursor field
     * is not one */
    freeReplyObject(itest_cmd(s, "HSET", key, "#cursor", "17", NULL));
    CHECK_INTEQ(redis_read_related(itest_mux(s), redis_sink_prefix(s), &A, "account", ID(e1),
                                   "accountleads_association", 0, &m, &n, &err),
                APP_OK);
    CHECK_INTEQ(n, (size_t)(5 + (calls < 39 ? calls : 39)));
    for (k = 0; k < n; k++)
      CHECK(m[k].id[0] != '#' && strcmp(m[k].table, "lead") == 0);
  }
}

/* The script writes a record that does not exist yet in one step (its fast
 * path): the same rules must hold as for an existing record. */
static void test_new_records(struct redis_sink *s)
{
  struct doc *c, *late, *p, *older;
  struct redis_record rec;
  const char *key = "d365:{account:00000000-0000-0000-0000-000000000031}";
  long long ttl;

  TEST_CASE("new records: full row with TTL, then a late older partial");
  c = itest_doc(&A, CDC_OP_CREATE, "account", ID(31), T0 + 2000, true, "name", "\"c\"", "revenue",
                "12.50", "revenue@OData.Community.Display.V1.FormattedValue", "\"$12.50\"", NULL);
  c->ttl_seconds = 100;
  CHECK_INTEQ(apply1(s, c).applied, 1);
  ttl = itest_int(s, "TTL", key, NULL);
  CHECK_MSG(ttl > 90 && ttl <= 100, "ttl %lld", ttl);
  rec = itest_read(s, &A, "account", ID(31));
  CHECK_INTEQ(rec.state, RREC_LIVE);
  CHECK_STREQ(rec.version_text, c->version_text);
  CHECK_INTEQ(rec.op_time_ms, T0 + 2000);
  CHECK_INTEQ(rec.nprops, 2);
  CHECK_STREQ(itest_prop_json(&rec, "revenue"), "12.50");
  CHECK(itest_prop(&rec, "revenue") && itest_prop(&rec, "revenue")->nann == 1);
  CHECK(itest_prop(&rec, "name") &&
        !strcmp(itest_prop(&rec, "name")->version_text, c->version_text));
  /* the full row set the floor: an older partial cannot add a property */
  late = itest_doc(&A, CDC_OP_UPDATE, "account", ID(31), T0 + 1000, false, "w", "\"late\"", NULL);
  CHECK_INTEQ(apply1(s, late).stale, 1);
  rec = itest_read(s, &A, "account", ID(31));
  CHECK(itest_prop(&rec, "w") == NULL);
  CHECK_INTEQ(rec.nprops, 2);

  TEST_CASE("new records: a partial sets no floor, no TTL");
  p = itest_doc(&A, CDC_OP_UPDATE, "account", ID(32), T0 + 2000, false, "x", "\"p\"", NULL);
  CHECK_INTEQ(apply1(s, p).applied, 1);
  CHECK_INTEQ(itest_int(s, "TTL", "d365:{account:00000000-0000-0000-0000-000000000032}", NULL), -1);
  /* an older partial to another property still applies (no floor) ... */
  older = itest_doc(&A, CDC_OP_UPDATE, "account", ID(32), T0 + 1000, false, "y", "\"o\"", "x",
                    "\"older\"", NULL);
  CHECK_INTEQ(apply1(s, older).applied, 1);
  rec = itest_read(s, &A, "account", ID(32));
  CHECK_STREQ(itest_prop_json(&rec, "y"), "\"o\"");
  /* ... but not to the newer one, and the record keeps the newer version */
  CHECK_STREQ(itest_prop_json(&rec, "x"), "\"p\"");
  CHECK_STREQ(rec.version_text, p->version_text);
  CHECK_INTEQ(rec.op_time_ms, T0 + 2000);
  /* a redelivery of the first write changes nothing */
  CHECK_INTEQ(apply1(s, p).stale, 1);
}

static void test_ttl(struct redis_sink *s)
{
  struct doc *d;
  const char *key = "d365:{account:00000000-0000-0000-0000-000000000007}";
  long long ttl;
  redisReply *r;

  TEST_CASE("TTL set and re-armed on each applied write");
  d = itest_doc(&A, CDC_OP_CREATE, "account", ID(07), T0, true, "name", "\"t\"", NULL);
  d->ttl_seconds = 100;
  apply1(s, d);
  ttl = itest_int(s, "TTL", key, NULL);
  CHECK_MSG(ttl > 90 && ttl <= 100, "ttl %lld", ttl);
  r = itest_cmd(s, "EXPIRE", key, "50", NULL);
  freeReplyObject(r);
  apply1(s, d); /* stale: no re-arm */
  ttl = itest_int(s, "TTL", key, NULL);
  CHECK_MSG(ttl <= 50, "stale write re-armed the TTL: %lld", ttl);
  d = itest_doc(&A, CDC_OP_UPDATE, "account", ID(07), T0 + 1, false, "name", "\"u\"", NULL);
  d->ttl_seconds = 100;
  apply1(s, d);
  ttl = itest_int(s, "TTL", key, NULL);
  CHECK_MSG(ttl > 90 && ttl <= 100, "ttl %lld", ttl);
  d = itest_doc(&A, CDC_OP_UPDATE, "account", ID(07), T0 + 2, false, "name", "\"v\"", NULL);
  apply1(s, d); /* the mapping says no TTL now */
  CHECK_INTEQ(itest_int(s, "TTL", key, NULL), -1);
}

static void test_reread(struct redis_sink *s)
{
  struct doc *c, *m, *f;
  struct redis_record rec;

  TEST_CASE("needs_reread marker");
  c = itest_doc(&A, CDC_OP_CREATE, "account", ID(08), T0, true, "name", "\"keep\"", NULL);
  m = itest_doc(&A, CDC_OP_UPDATE, "account", ID(08), T0 + 5000, false, NULL);
  m->needs_reread = true;
  apply1(s, c);
  CHECK_INTEQ(apply1(s, m).applied, 1);
  CHECK_INTEQ(apply1(s, m).stale, 1);
  rec = itest_read(s, &A, "account", ID(08));
  CHECK(rec.needs_reread);
  CHECK_STREQ(rec.reread_version, m->version_text);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"keep\""); /* properties untouched */
  CHECK_STREQ(rec.version_text, c->version_text);
  CHECK_INTEQ(itest_int(s, "ZSCORE", "d365:reread", "account:" ID(08), NULL), T0 + 5000);
  /* a newer full row (the re-read itself) clears the record's marker */
  f = itest_doc(&A, CDC_OP_UPDATE, "account", ID(08), T0 + 6000, true, "name", "\"fresh\"", NULL);
  apply1(s, f);
  rec = itest_read(s, &A, "account", ID(08));
  CHECK(!rec.needs_reread);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"fresh\"");
  /* a marker for a record never seen: absent, but flagged */
  m = itest_doc(&A, CDC_OP_DELETE, "account", ID(09), T0, false, NULL);
  m->needs_reread = true;
  apply1(s, m);
  rec = itest_read(s, &A, "account", ID(09));
  CHECK_INTEQ(rec.state, RREC_ABSENT);
  CHECK(rec.needs_reread);
}

static void test_exact_values(struct redis_sink *s)
{
  struct doc *d;
  struct redis_record rec;
  const struct redis_read_prop *p;

  TEST_CASE("values and annotations read back exactly");
  d = itest_doc(&A, CDC_OP_CREATE, "account", ID(10), T0, true, "revenue",
                "12345678901234567890.1234567890",
                "revenue@OData.Community.Display.V1.FormattedValue",
                "\"$12,345,678,901,234,567,890.12\"", "big", "9007199254740993", "scale",
                "1.0000000000", "name", "\"caf\xc3\xa9 \\\"q\\\" \\u0000 \\ud83d\\ude00\"",
                "_ownerid_value", "\"11111111-2222-3333-4444-555555555555\"",
                "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname", "\"systemuser\"",
                "_ownerid_value@OData.Community.Display.V1.FormattedValue", "\"Jo \\\"X\\\"\"",
                "nothing", "null", "tags", "[1,{\"a\":[]}]", NULL);
  apply1(s, d);
  rec = itest_read(s, &A, "account", ID(10));
  CHECK_INTEQ(rec.nprops, 7);
  CHECK_STREQ(itest_prop_json(&rec, "revenue"), "12345678901234567890.1234567890");
  CHECK_STREQ(itest_prop_json(&rec, "big"), "9007199254740993");
  CHECK_STREQ(itest_prop_json(&rec, "scale"), "1.0000000000");
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"caf\xc3\xa9 \\\"q\\\" \\u0000 \\ud83d\\ude00\"");
  CHECK_STREQ(itest_prop_json(&rec, "nothing"), "null");
  CHECK_STREQ(itest_prop_json(&rec, "tags"), "[1,{\"a\":[]}]");
  p = itest_prop(&rec, "revenue");
  CHECK(p && p->nann == 1);
  if (p && p->nann == 1) {
    CHECK_STREQ(p->ann[0].name, "OData.Community.Display.V1.FormattedValue");
    CHECK_STREQ(p->ann[0].json, "\"$12,345,678,901,234,567,890.12\"");
  }
  p = itest_prop(&rec, "_ownerid_value");
  CHECK(p && p->nann == 2);
  if (p && p->nann == 2) {
    CHECK_STREQ(p->ann[0].name, "Microsoft.Dynamics.CRM.lookuplogicalname");
    CHECK_STREQ(p->ann[0].json, "\"systemuser\"");
    CHECK_STREQ(p->ann[1].name, "OData.Community.Display.V1.FormattedValue");
    CHECK_STREQ(p->ann[1].json, "\"Jo \\\"X\\\"\"");
  }
  /* sorted by name */
  CHECK_STREQ(rec.props[0].name, "_ownerid_value");
  CHECK_STREQ(rec.props[6].name, "tags");
  /* a newer write without annotations removes them */
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(10), T0 + 1, false, "revenue", "1", NULL));
  rec = itest_read(s, &A, "account", ID(10));
  p = itest_prop(&rec, "revenue");
  CHECK(p && p->nann == 0 && !strcmp(p->json, "1"));
}

static enum app_result read_err(struct redis_sink *s, const char *id, struct app_err *err)
{
  struct redis_record rec;
  return redis_read_record(itest_mux(s), redis_sink_prefix(s), &A, "account", id, 0, &rec, err);
}

static void hset(struct redis_sink *s, const char *key, const char *f, const char *v)
{
  redisReply *r = itest_cmd(s, "HSET", key, f, v, NULL);
  CHECK_MSG(r && r->type == REDIS_REPLY_INTEGER, "HSET %s %s", key, f);
  if (r)
    freeReplyObject(r);
}

static void test_layout(struct redis_sink *s)
{
  static const char key20[] = "d365:{account:00000000-0000-0000-0000-000000000020}";
  static const char key21[] = "d365:{account:00000000-0000-0000-0000-000000000021}";
  static const char key22[] = "d365:{account:00000000-0000-0000-0000-000000000022}";
  struct doc *d;
  struct redis_record rec;
  const struct redis_read_prop *p;
  struct app_err err = {0};
  char want[256], ver[CDC_VERSION_TEXT_LEN + 1];
  redisReply *r;

  TEST_CASE("one field per property: version, annotations length, ':', annotations, value");
  d = itest_doc(&A, CDC_OP_CREATE, "account", ID(20), T0, true, "v", "\"12:{}\"", "v@a.b",
                "\"5:\\\"x\"", "plain", "{\"n\":1}", NULL);
  apply1(s, d);
  memcpy(ver, d->version_text, sizeof ver);
  r = itest_cmd(s, "HGET", key20, "p:v", NULL);
  snprintf(want, sizeof want, "%s%zu:%s%s", ver, strlen("{\"a.b\":\"5:\\\"x\"}"),
           "{\"a.b\":\"5:\\\"x\"}", "\"12:{}\"");
  CHECK(r && r->type == REDIS_REPLY_STRING);
  if (r && r->type == REDIS_REPLY_STRING)
    CHECK_STREQ(r->str, want);
  if (r)
    freeReplyObject(r);
  r = itest_cmd(s, "HGET", key20, "p:plain", NULL);
  snprintf(want, sizeof want, "%s0:{\"n\":1}", ver);
  CHECK(r && r->type == REDIS_REPLY_STRING);
  if (r && r->type == REDIS_REPLY_STRING)
    CHECK_STREQ(r->str, want);
  if (r)
    freeReplyObject(r);
  CHECK_INTEQ(itest_int(s, "HLEN", key20, NULL), 5); /* 2 p:, _ver, _op, _floor */
  rec = itest_read(s, &A, "account", ID(20));
  CHECK_INTEQ(rec.nprops, 2);
  p = itest_prop(&rec, "v");
  CHECK(p && p->nann == 1 && !strcmp(p->json, "\"12:{}\"") && !strcmp(p->version_text, ver));
  if (p && p->nann == 1)
    CHECK_STREQ(p->ann[0].json, "\"5:\\\"x\"");
  CHECK_STREQ(itest_prop_json(&rec, "plain"), "{\"n\":1}");
  /* an existing record takes the slow path: same layout, older one kept */
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(20), T0 + 5, false, "plain", "2", NULL));
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(20), T0 + 1, false, "plain", "3", "v", "4",
                      NULL));
  CHECK_INTEQ(itest_int(s, "HLEN", key20, NULL), 5);
  rec = itest_read(s, &A, "account", ID(20));
  CHECK_STREQ(itest_prop_json(&rec, "plain"), "2");
  CHECK_STREQ(itest_prop_json(&rec, "v"), "4");
  p = itest_prop(&rec, "v");
  CHECK(p && p->nann == 0);

  TEST_CASE("malformed p: fields are errors naming the record and the property");
  hset(s, key20, "p:bad", "123");
  CHECK_INTEQ(read_err(s, ID(20), &err), APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "account 00000000-0000-0000-0000-000000000020");
  CHECK_CONTAINS(err.msg, "property 'bad'");
  snprintf(want, sizeof want, "%s9:{}1", ver); /* annotations longer than the rest */
  hset(s, key20, "p:bad", want);
  CHECK_INTEQ(read_err(s, ID(20), &err), APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "property 'bad'");
  snprintf(want, sizeof want, "%s2:{}", ver); /* no value */
  hset(s, key20, "p:bad", want);
  CHECK_INTEQ(read_err(s, ID(20), &err), APP_ERR_REDIS);
  snprintf(want, sizeof want, "%s\"x\"", ver); /* no length */
  hset(s, key20, "p:bad", want);
  CHECK_INTEQ(read_err(s, ID(20), &err), APP_ERR_REDIS);
  snprintf(want, sizeof want, "%s3:[1]1", ver); /* annotations not an object */
  hset(s, key20, "p:bad", want);
  CHECK_INTEQ(read_err(s, ID(20), &err), APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "annotations");
  snprintf(want, sizeof want, "%s2:{}1", ver);
  hset(s, key20, "p:bad", want);
  CHECK_INTEQ(read_err(s, ID(20), &err), APP_OK);

  TEST_CASE("a record in the older layout (v:/m: fields) is refused, also after a new write");
  hset(s, key21, "_ver", ver);
  hset(s, key21, "v:name", "\"old\"");
  snprintf(want, sizeof want, "%s", ver);
  hset(s, key21, "m:name", want);
  CHECK_INTEQ(read_err(s, ID(21), &err), APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "account 00000000-0000-0000-0000-000000000021");
  CHECK_CONTAINS(err.msg, "older layout");
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(21), T0 + 9, true, "name", "\"new\"", NULL));
  CHECK_INTEQ(read_err(s, ID(21), &err), APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "older layout");
  hset(s, key22, "m:x", ver);
  CHECK_INTEQ(read_err(s, ID(22), &err), APP_ERR_REDIS);
  CHECK_CONTAINS(err.msg, "'m:x'");
}

static void test_many_props(struct redis_sink *s)
{
  /* more properties than one unpack() can take: the script works in chunks */
  enum { N = 4500 };
  struct doc *d = itest_doc(&A, CDC_OP_CREATE, "account", ID(11), T0, true, NULL);
  struct doc_prop *p = arena_alloc(&A, N * sizeof *p);
  struct redis_record rec;
  size_t i;

  TEST_CASE("4500 properties");
  memset(p, 0, N * sizeof *p);
  for (i = 0; i < N; i++) {
    char *name = arena_alloc(&A, 16), *json = arena_alloc(&A, 16);
    snprintf(name, 16, "c%05zu", i);
    snprintf(json, 16, "%zu", i * 7);
    p[i].name = name;
    p[i].json = json;
    p[i].json_len = strlen(json);
  }
  d->props = p;
  d->nprops = N;
  CHECK_INTEQ(apply1(s, d).applied, 1);
  rec = itest_read(s, &A, "account", ID(11));
  CHECK_INTEQ(rec.nprops, N);
  CHECK_STREQ(itest_prop_json(&rec, "c04499"), "31493");
  /* a full row listing only one drops the other 4499 */
  d = itest_doc(&A, CDC_OP_UPDATE, "account", ID(11), T0 + 1, true, "c00001", "0", NULL);
  apply1(s, d);
  rec = itest_read(s, &A, "account", ID(11));
  CHECK_INTEQ(rec.nprops, 1);
}

static void test_poison(struct redis_sink *s)
{
  static const char body[] = "\x00\x01not json\xff\xfe";
  struct sink_poison p[2];
  struct sink_batch b;
  struct sink_stats st;
  struct app_err err = {0};
  struct doc *d;
  const struct doc *docs[1];
  redisReply *r;

  TEST_CASE("poison records in the same pipeline");
  memset(p, 0, sizeof p);
  p[0].message_id = "msg-1";
  p[0].reason = "body is not JSON: line 1, column 1";
  p[0].body = body;
  p[0].body_len = sizeof body - 1;
  p[0].content_type = "application/json";
  p[0].delivery_count = 3;
  p[0].enqueued_ms = 1731053106123;
  p[1].reason = ".NET binary format is not supported";
  p[1].body = "@\x06string";
  p[1].body_len = 8;
  d = itest_doc(&A, CDC_OP_CREATE, "account", ID(12), T0, true, "name", "\"ok\"", NULL);
  docs[0] = d;
  memset(&b, 0, sizeof b);
  b.docs = docs;
  b.ndocs = 1;
  b.poison = p;
  b.npoison = 2;
  b.function = "ChangeQueue";
  b.invocation_id = "inv-42";
  CHECK_INTEQ(redis_sink_apply(s, &b, &st, &err), APP_OK);
  CHECK_INTEQ(st.poison, 2);
  CHECK_INTEQ(st.applied, 1);
  CHECK_INTEQ(st.round_trips, 1);
  r = itest_cmd(s, "XRANGE", "d365:poison", "-", "+", NULL);
  CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
  if (r && r->elements == 2) {
    redisReply *f = r->element[0]->element[1];
    static const char *const want[] = {"reason",
                                       "body is not JSON: line 1, column 1",
                                       "message_id",
                                       "msg-1",
                                       "function",
                                       "ChangeQueue",
                                       "invocation_id",
                                       "inv-42",
                                       "delivery_count",
                                       "3",
                                       "enqueued_ms",
                                       "1731053106123",
                                       "content_type",
                                       "application/json",
                                       "body"};
    size_t i;
    CHECK_INTEQ(f->elements, 16);
    for (i = 0; i < 15 && i < f->elements; i++)
      CHECK_STREQ(f->element[i]->str, want[i]);
    if (f->elements == 16) {
      CHECK_INTEQ(f->element[15]->len, sizeof body - 1);
      CHECK(memcmp(f->element[15]->str, body, sizeof body - 1) == 0);
    }
    f = r->element[1]->element[1];
    CHECK_STREQ(f->element[3]->str, ""); /* no message id */
  }
  if (r)
    freeReplyObject(r);
}

static void test_batch_round_trips(struct redis_sink *s)
{
  enum { N = 1000 };
  struct doc **docs = arena_alloc(&A, N * sizeof *docs);
  struct sink_stats st;
  long long calls0, calls1, total0, total1;
  size_t i;

  TEST_CASE("1000 documents in one round trip");
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(13), T0, false, "w", "1", NULL)); /* warm */
  for (i = 0; i < N; i++) {
    char *id = arena_alloc(&A, 40);
    snprintf(id, 40, "00000000-0000-0000-0001-%012zu", i);
    docs[i] = itest_doc(&A, CDC_OP_CREATE, "account", id, T0, true, "name", "\"batch\"", "revenue",
                        "1.50", "accountnumber", "\"A-1\"", NULL);
  }
  calls0 = itest_info(s, "commandstats", "cmdstat_evalsha:calls");
  total0 = itest_info(s, "stats", "total_commands_processed");
  st = apply_ok(s, docs, N);
  total1 = itest_info(s, "stats", "total_commands_processed");
  calls1 = itest_info(s, "commandstats", "cmdstat_evalsha:calls");
  CHECK_INTEQ(st.round_trips, 1);
  CHECK_INTEQ(st.applied, N);
  CHECK_INTEQ(st.retries, 0);
  CHECK_INTEQ(calls1 - calls0, N);
  /* nothing else was sent: total_commands_processed counts the commands
   * scripts run too, here EXISTS and HSET per new record (the script's
   * path for a key that did not exist), so the 1000 EVALSHA, their 2000
   * inner calls and the first INFO */
  CHECK_INTEQ(total1 - total0, 3 * N + 1);
}

/* N new account documents with ids 00000000-0000-0000-<block>-<i> */
static struct doc **new_docs(size_t n, int block, const char *name)
{
  struct doc **docs = arena_alloc(&A, n * sizeof *docs);
  size_t i;
  for (i = 0; i < n; i++) {
    char *id = arena_alloc(&A, 40);
    snprintf(id, 40, "00000000-0000-0000-%04d-%012zu", block, i);
    docs[i] = itest_doc(&A, CDC_OP_CREATE, "account", id, T0, true, "name", name, "revenue", "1.50",
                        "accountnumber", "\"A-1\"", NULL);
  }
  return docs;
}

static enum app_result apply_stream(struct redis_sink *s, struct redis_sink_stream *st,
                                    struct doc **docs, size_t n, struct sink_stats *out,
                                    struct app_err *err)
{
  struct sink_batch b;
  memset(&b, 0, sizeof b);
  b.docs = (const struct doc *const *)docs;
  b.ndocs = n;
  b.function = "itest";
  b.invocation_id = "inv-stream";
  return redis_sink_apply_stream(s, st, &b, out, err);
}

static void test_stream(struct redis_sink *s)
{
  enum { N = 1000 };
  struct doc **docs, **other;
  struct redis_sink_stream *st;
  struct sink_stats stats;
  struct app_err err = {0}, err2 = {0};
  struct redis_pool_stats ps0, ps1;
  struct redis_record rec;
  long long calls0, calls_mid = 0, calls1, total0, total1;
  enum app_result r;
  size_t i;
  int tries;
  redisReply *x;

  TEST_CASE("a streamed batch: written while added, one round trip, nothing else sent");
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(13), T0 + 1, false, "w", "2", NULL));
  docs = new_docs(N, 21, "\"streamed\"");
  calls0 = itest_info(s, "commandstats", "cmdstat_evalsha:calls");
  total0 = itest_info(s, "stats", "total_commands_processed");
  st = redis_sink_stream_begin(s);
  for (i = 0; i < N; i++)
    redis_sink_stream_add(st, docs[i]);
  /* Redis applies what was written before the batch is complete */
  for (tries = 0; tries < 200 && calls_mid <= calls0; tries++) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    calls_mid = itest_info(s, "commandstats", "cmdstat_evalsha:calls");
    if (calls_mid <= calls0)
      nanosleep(&ts, NULL);
  }
  CHECK_MSG(calls_mid > calls0, "nothing was applied before redis_sink_apply_stream");
  CHECK_MSG(calls_mid < calls0 + N, "everything was applied before the apply call: %lld",
            calls_mid - calls0);
  r = apply_stream(s, st, docs, N, &stats, &err);
  CHECK_MSG(r == APP_OK, "%s", err.msg);
  total1 = itest_info(s, "stats", "total_commands_processed");
  calls1 = itest_info(s, "commandstats", "cmdstat_evalsha:calls");
  CHECK_INTEQ(stats.round_trips, 1);
  CHECK_INTEQ(stats.applied, N);
  CHECK_INTEQ(stats.retries, 0);
  CHECK_INTEQ(calls1 - calls0, N);
  /* the EVALSHAs, 2 inner calls each, and the INFO calls made meanwhile
   * (+1 when those opened a connection: SCRIPT LOAD in its handshake) */
  CHECK_MSG(total1 - total0 == 3 * N + 1 + tries || total1 - total0 == 3 * N + 2 + tries,
            "%lld commands", total1 - total0);
  rec = itest_read(s, &A, "account", docs[N - 1]->id);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"streamed\"");
  /* a redelivery through a stream: all stale */
  st = redis_sink_stream_begin(s);
  for (i = 0; i < N; i++)
    redis_sink_stream_add(st, docs[i]);
  r = apply_stream(s, st, docs, N, &stats, &err);
  CHECK(r == APP_OK && stats.stale == N && stats.applied == 0 && stats.round_trips == 1);

  TEST_CASE("a stream whose documents are not the batch's: the batch is planned again");
  other = new_docs(3, 22, "\"other\"");
  st = redis_sink_stream_begin(s);
  for (i = 0; i < N; i++)
    redis_sink_stream_add(st, new_docs(1, 23, "\"dropped\"")[0]);
  r = apply_stream(s, st, other, 3, &stats, &err);
  CHECK(r == APP_OK && stats.applied == 3 && stats.round_trips == 1);
  rec = itest_read(s, &A, "account", other[2]->id);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"other\"");

  TEST_CASE("a document refused while streaming: the error redis_sink_apply gives");
  docs = new_docs(300, 24, "\"refused\"");
  docs[200]->table = "bad table";
  st = redis_sink_stream_begin(s);
  for (i = 0; i < 300; i++)
    redis_sink_stream_add(st, docs[i]);
  r = apply_stream(s, st, docs, 300, &stats, &err);
  CHECK_INTEQ(r, APP_ERR_INPUT);
  CHECK_INTEQ(itest_apply(s, docs, 300, &stats, &err2), APP_ERR_INPUT);
  CHECK_STREQ(err.msg, err2.msg);

  TEST_CASE("an aborted stream: what it wrote is applied, its connection is not reused");
  docs = new_docs(300, 25, "\"aborted\"");
  /* an idle connection for the stream to take */
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(13), T0 + 2, false, "w", "3", NULL));
  redis_pool_get_stats(redis_sink_pool(s), &ps0);
  CHECK(ps0.open >= 1);
  st = redis_sink_stream_begin(s);
  for (i = 0; i < 300; i++)
    redis_sink_stream_add(st, docs[i]);
  redis_sink_stream_abort(st);
  redis_pool_get_stats(redis_sink_pool(s), &ps1);
  CHECK_INTEQ(ps1.open, ps0.open - 1);
  rec = itest_read(s, &A, "account", docs[0]->id);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"aborted\"");

  TEST_CASE("NOSCRIPT on a streamed batch: loaded again, the rest resent");
  apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(13), T0 + 3, false, "w", "4", NULL));
  x = itest_cmd(s, "SCRIPT", "FLUSH", NULL);
  CHECK(x && x->type == REDIS_REPLY_STATUS);
  if (x)
    freeReplyObject(x);
  docs = new_docs(300, 26, "\"reloaded\"");
  st = redis_sink_stream_begin(s);
  for (i = 0; i < 300; i++)
    redis_sink_stream_add(st, docs[i]);
  r = apply_stream(s, st, docs, 300, &stats, &err);
  CHECK_MSG(r == APP_OK, "%s", err.msg);
  CHECK(stats.applied == 300 && stats.round_trips == 2 && stats.retries == 0);
  rec = itest_read(s, &A, "account", docs[299]->id);
  CHECK_STREQ(itest_prop_json(&rec, "name"), "\"reloaded\"");
}

static void test_noscript(struct redis_sink *s)
{
  struct sink_stats st;
  redisReply *r;

  TEST_CASE("NOSCRIPT: the script is loaded again");
  r = itest_cmd(s, "SCRIPT", "FLUSH", NULL);
  CHECK(r && r->type == REDIS_REPLY_STATUS);
  if (r)
    freeReplyObject(r);
  st = apply1(s, itest_doc(&A, CDC_OP_UPDATE, "account", ID(14), T0, false, "n", "1", NULL));
  CHECK_INTEQ(st.applied, 1);
  CHECK_INTEQ(st.round_trips, 2);
  CHECK_INTEQ(st.retries, 0);
}

static void test_fatal(struct redis_sink *s)
{
  struct doc *d;
  struct sink_stats st;
  struct app_err err = {0};
  redisReply *r;
  int64_t t0;

  TEST_CASE("WRONGTYPE fails at once with the server's text");
  r = itest_cmd(s, "SET", "d365:{account:00000000-0000-0000-0000-000000000015}", "not ours", NULL);
  if (r)
    freeReplyObject(r);
  d = itest_doc(&A, CDC_OP_UPDATE, "account", ID(15), T0, false, "n", "1", NULL);
  t0 = sink_now_ms();
  CHECK_INTEQ(itest_apply(s, &d, 1, &st, &err), APP_ERR_REDIS);
  CHECK(sink_now_ms() - t0 < 1000);
  CHECK_INTEQ(st.retries, 0);
  CHECK_CONTAINS(err.msg, "WRONGTYPE");
  CHECK_CONTAINS(err.msg, "account 00000000-0000-0000-0000-000000000015");
  CHECK_CONTAINS(err.msg, "not retryable");

  TEST_CASE("bad names are input errors");
  d = itest_doc(&A, CDC_OP_UPDATE, "acc}ount", ID(16), T0, false, "n", "1", NULL);
  CHECK_INTEQ(itest_apply(s, &d, 1, &st, &err), APP_ERR_INPUT);
  CHECK_CONTAINS(err.msg, "table 'acc}ount'");
  d = itest_doc(&A, CDC_OP_UPDATE, "account", "a:b", T0, false, "n", "1", NULL);
  CHECK_INTEQ(itest_apply(s, &d, 1, &st, &err), APP_ERR_INPUT);
  CHECK_CONTAINS(err.msg, "id 'a:b'");
}

struct thread_arg {
  struct redis_sink *s;
  int t;
  int failures;
};

static void *worker(void *p)
{
  struct thread_arg *ta = p;
  struct arena a;
  int i;
  arena_init(&a, 0);
  for (i = 0; i < 50; i++) {
    struct doc *d[20];
    struct sink_stats st;
    struct app_err err = {0};
    int k;
    for (k = 0; k < 20; k++) {
      char *id = arena_alloc(&a, 40);
      snprintf(id, 40, "00000000-0000-0000-%04d-%012d", 10 + ta->t, i * 20 + k);
      d[k] = itest_doc(&a, CDC_OP_CREATE, "account", id, T0 + i, true, "v", "1", NULL);
    }
    if (itest_apply(ta->s, d, 20, &st, &err) != APP_OK || st.applied != 20) {
      fprintf(stderr, "thread %d: %s\n", ta->t, err.msg);
      ta->failures++;
    }
    arena_reset(&a);
  }
  arena_cleanup(&a);
  return NULL;
}

static void test_threads(void)
{
  struct app_config cfg;
  struct redis_sink *s;
  pthread_t th[6];
  struct thread_arg ta[6];
  struct redis_pool_stats ps;
  int i, fails = 0;

  TEST_CASE("6 threads share a pool of 2 connections");
  itest_set("CDC_REDIS_POOL=2");
  s = itest_sink(&cfg);
  for (i = 0; i < 6; i++) {
    ta[i].s = s;
    ta[i].t = i;
    ta[i].failures = 0;
    pthread_create(&th[i], NULL, worker, &ta[i]);
  }
  for (i = 0; i < 6; i++) {
    pthread_join(th[i], NULL);
    fails += ta[i].failures;
  }
  CHECK_INTEQ(fails, 0);
  redis_pool_get_stats(redis_sink_pool(s), &ps);
  CHECK(ps.open <= 2);
  CHECK_INTEQ(ps.connects, ps.open);
  CHECK_INTEQ(itest_int(s, "HLEN", "d365:{account:00000000-0000-0000-0015-000000000999}", NULL),
              4); /* p:, _ver, _op, _floor */
  itest_mux_free();
  redis_sink_destroy(s);
  config_cleanup(&cfg);
  itest_set("CDC_REDIS_POOL=32");
}

int main(void)
{
  struct app_config cfg;
  struct redis_sink *s;
  redisReply *r;

  log_set_level(LOG_LEVEL_WARN);
  arena_init(&A, 0);
  itest_set("CDC_TOMBSTONE_TTL_SECONDS=3600");
  itest_set("CDC_RETRY_BUDGET_MS=3000");
  s = itest_sink(&cfg);
  r = itest_cmd(s, "FLUSHALL", NULL);
  if (!r) {
    fprintf(stderr, "cannot reach redis\n");
    return 1;
  }
  freeReplyObject(r);
  test_reversed_duplicated(s);
  test_two_partials(s);
  test_full_row(s);
  test_delete(s, &cfg);
  test_relationships(s);
  test_prune(s);
  test_ttl(s);
  test_new_records(s);
  test_reread(s);
  test_exact_values(s);
  test_layout(s);
  test_many_props(s);
  test_poison(s);
  test_batch_round_trips(s);
  test_stream(s);
  test_noscript(s);
  test_fatal(s);
  itest_mux_free();
  redis_sink_destroy(s);
  config_cleanup(&cfg);
  test_threads();
  arena_cleanup(&A);
  return check_report("itest_redis_sink");
}

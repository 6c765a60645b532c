/* replica.c - snapshot, reconciliation and re-reads (replica.h). */
#include "replica/replica.h"

#include "common/arena.h"
#include "common/log.h"
#include "dataverse/dvapi.h"
#include "dataverse/dvclient.h"
#include "identity/azid.h"
#include "identity/token.h"
#include "map/sink.h"
#include "redis/redis_conn.h"
#include "redis/redis_pool.h"
#include "sql/sql_sink.h"

#include <hiredis/hiredis.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define PAGE_ARENA (512u << 20)

struct rtable {
  char name[MAP_MAX_NAME + 1];
};

struct replica {
  const struct app_config *cfg;
  const struct map_config *map;
  struct redis_sink *redis;
  struct sql_sink *sql; /* NULL: rows to Redis only */
  bool to_redis;
  struct azid *id;
  struct dvclient *dv;
  struct schema *schema;
  struct rtable *tables;
  size_t ntables;
  char owner[64]; /* lock value: host:pid:random */
};

static int64_t wall_ms(void)
{
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

enum app_result replica_create(const struct app_config *cfg, const struct map_config *map,
                               struct redis_sink *redis, struct sql_sink *sql, struct replica **out,
                               struct app_err *err)
{
  struct replica *r;
  struct idcred_settings s;
  struct idcred cred;
  struct dvclient_options o;
  enum app_result res;
  const char *p;

  *out = NULL;
  if (!cfg->dataverse_url || !*cfg->dataverse_url)
    return APP_OK;
  r = calloc(1, sizeof *r);
  if (!r)
    return app_err_set(err, APP_ERR_NOMEM, "out of memory");
  r->cfg = cfg;
  r->map = map;
  r->redis = redis;
  r->to_redis = cfg->target == CFG_TARGET_REDIS || cfg->target == CFG_TARGET_BOTH;
  r->sql = cfg->target == CFG_TARGET_SQL || cfg->target == CFG_TARGET_BOTH ? sql : NULL;
  /* tables */
  for (p = cfg->reconcile_tables; p && *p;) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    while (n && isspace((unsigned char)*p)) {
      p++;
      n--;
    }
    while (n && isspace((unsigned char)p[n - 1]))
      n--;
    if (n) {
      struct rtable *t = realloc(r->tables, (r->ntables + 1) * sizeof *t);
      if (!t) {
        replica_destroy(r);
        return app_err_set(err, APP_ERR_NOMEM, "out of memory");
      }
      r->tables = t;
      snprintf(r->tables[r->ntables].name, sizeof r->tables[0].name, "%.*s", (int)n, p);
      if (n > MAP_MAX_NAME || !redis_sink_name_ok(r->tables[r->ntables].name, false)) {
        replica_destroy(r);
        return app_err_set(err, APP_ERR_CONFIG,
                           "CDC_RECONCILE_TABLES: \"%.*s\" is not a table logical name",
                           (int)(n > 60 ? 60 : n), p);
      }
      r->ntables++;
    }
    p = e ? e + 1 : NULL;
  }
  idcred_settings_from_config(cfg, &s);
  res = idcred_select(&s, &cred, err);
  if (res != APP_OK) {
    replica_destroy(r);
    return app_err_wrap(err, "DataverseUrl is set, but no credential for it");
  }
  {
    struct azid_options ao;
    memset(&ao, 0, sizeof ao);
    ao.timeout_ms = cfg->identity_timeout_ms;
    res = azid_create(&cred, &ao, &r->id, err);
    idcred_cleanup(&cred);
    if (res != APP_OK) {
      replica_destroy(r);
      return res;
    }
  }
  memset(&o, 0, sizeof o);
  o.timeout_ms = cfg->dataverse_timeout_ms;
  o.maxpagesize = cfg->reconcile_page_size;
  o.max_bytes = cfg->dataverse_max_bytes;
  res = dvclient_create(cfg->dataverse_url, r->id, &o, &r->dv, err);
  if (res != APP_OK) {
    replica_destroy(r);
    return res;
  }
  {
    char host[32] = "";
    gethostname(host, sizeof host - 1);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(r->owner, sizeof r->owner, "%.31s:%ld:%ld", host, (long)getpid(),
             (long)(tv.tv_usec ^ tv.tv_sec));
  }
  LOG_INFO("replica: Dataverse %s, tables %s, credential %s", dvclient_base(r->dv),
           r->ntables ? cfg->reconcile_tables : "(none: re-reads only)", azid_describe(r->id));
  *out = r;
  return APP_OK;
}

void replica_destroy(struct replica *r)
{
  if (!r)
    return;
  dvclient_destroy(r->dv);
  azid_destroy(r->id);
  free(r->tables);
  free(r);
}

/* ---- Redis: state, lock ------------------------------------------------ */

/* One command; *reply (may be NULL) gets the reply (caller frees). */
static enum app_result rcmd(struct replica *r, size_t argc, const char *const *argv,
                            redisReply **reply, int64_t deadline_ms, struct app_err *err)
{
  struct redis_pool *pool = redis_sink_pool(r->redis);
  struct redis_conn *c;
  struct buf b;
  redisReply *rep = NULL;
  size_t nread = 0;
  enum app_result res;

  if (reply)
    *reply = NULL;
  buf_init(&b, 16u << 20);
  res = redis_cmd_argv(&b, argc, argv, NULL);
  if (res != APP_OK) {
    buf_cleanup(&b);
    return app_err_set(err, res, "replica state command too large");
  }
  res = redis_pool_acquire(pool, deadline_ms, &c, err);
  if (res != APP_OK) {
    buf_cleanup(&b);
    return res;
  }
  res = redis_conn_exchange(c, b.data, b.len, 1, &rep, &nread, deadline_ms, err);
  redis_pool_release(pool, c);
  buf_cleanup(&b);
  if (res != APP_OK) {
    if (rep)
      freeReplyObject(rep);
    return res;
  }
  if (rep && rep->type == REDIS_REPLY_ERROR) {
    res = redis_reply_error(rep, err, "replica %s", argv[0]);
    freeReplyObject(rep);
    return res;
  }
  if (reply)
    *reply = rep;
  else if (rep)
    freeReplyObject(rep);
  return APP_OK;
}

static void state_key(const struct replica *r, const char *table, const char *suffix, char *out,
                      size_t n)
{
  snprintf(out, n, "%s:{replica:%s}%s", redis_sink_prefix(r->redis), table, suffix);
}

static const char LOCK_RENEW[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
static const char LOCK_RELEASE[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                   "return redis.call('DEL', KEYS[1]) else return 0 end";

/* take (SET NX PX) or renew the table's lock; *held = false when another
 * worker has it */
static enum app_result lock_table(struct replica *r, const char *table, bool renew, bool *held,
                                  int64_t deadline_ms, struct app_err *err)
{
  char key[400], ttl[24];
  redisReply *rep;
  enum app_result res;
  state_key(r, table, ":lock", key, sizeof key);
  snprintf(ttl, sizeof ttl, "%d", r->cfg->reconcile_lock_s * 1000);
  if (renew) {
    const char *argv[] = {"EVAL", LOCK_RENEW, "1", key, r->owner, ttl};
    res = rcmd(r, 6, argv, &rep, deadline_ms, err);
    *held = res == APP_OK && rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
  } else {
    const char *argv[] = {"SET", key, r->owner, "NX", "PX", ttl};
    res = rcmd(r, 6, argv, &rep, deadline_ms, err);
    *held = res == APP_OK && rep && rep->type == REDIS_REPLY_STATUS;
  }
  if (rep)
    freeReplyObject(rep);
  return res;
}

static void unlock_table(struct replica *r, const char *table)
{
  char key[400];
  struct app_err e;
  state_key(r, table, ":lock", key, sizeof key);
  const char *argv[] = {"EVAL", LOCK_RELEASE, "1", key, r->owner};
  (void)rcmd(r, 5, argv, NULL, sink_now_ms() + 2000, &e);
}

struct tstate {
  char phase[16];
  char *next;  /* owned */
  char *delta; /* owned */
  long long rows, pages, deleted, restarts;
};

static void tstate_cleanup(struct tstate *s)
{
  free(s->next);
  free(s->delta);
  memset(s, 0, sizeof *s);
}

static enum app_result state_load(struct replica *r, const char *table, struct tstate *s,
                                  int64_t deadline_ms, struct app_err *err)
{
  char key[400];
  redisReply *rep;
  enum app_result res;
  memset(s, 0, sizeof *s);
  state_key(r, table, "", key, sizeof key);
  const char *argv[] = {"HMGET", key,     "phase",   "next",    "delta",
                        "rows",  "pages", "deleted", "restarts"};
  res = rcmd(r, 9, argv, &rep, deadline_ms, err);
  if (res != APP_OK)
    return res;
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 7) {
    redisReply **e = rep->element;
    if (e[0]->type == REDIS_REPLY_STRING)
      snprintf(s->phase, sizeof s->phase, "%s", e[0]->str);
    if (e[1]->type == REDIS_REPLY_STRING && e[1]->len)
      s->next = strdup(e[1]->str);
    if (e[2]->type == REDIS_REPLY_STRING && e[2]->len)
      s->delta = strdup(e[2]->str);
    s->rows = e[3]->type == REDIS_REPLY_STRING ? atoll(e[3]->str) : 0;
    s->pages = e[4]->type == REDIS_REPLY_STRING ? atoll(e[4]->str) : 0;
    s->deleted = e[5]->type == REDIS_REPLY_STRING ? atoll(e[5]->str) : 0;
    s->restarts = e[6]->type == REDIS_REPLY_STRING ? atoll(e[6]->str) : 0;
  }
  freeReplyObject(rep);
  return APP_OK;
}

/* HSET key field value ... (pairs); values NULL are stored as "" */
static enum app_result state_set(struct replica *r, const char *table, size_t npairs,
                                 const char *const *pairs, int64_t deadline_ms, struct app_err *err)
{
  char key[400];
  const char *argv[2 + 2 * 16];
  size_t i;
  if (npairs > 16)
    return app_err_set(err, APP_ERR_LIMIT, "too many state fields");
  state_key(r, table, "", key, sizeof key);
  argv[0] = "HSET";
  argv[1] = key;
  for (i = 0; i < 2 * npairs; i++)
    argv[2 + i] = pairs[i] ? pairs[i] : "";
  return rcmd(r, 2 + 2 * npairs, argv, NULL, deadline_ms, err);
}

static void state_error(struct replica *r, const char *table, const char *msg)
{
  char now[24];
  struct app_err e;
  snprintf(now, sizeof now, "%lld", (long long)wall_ms());
  const char *pairs[] = {"last_error", msg, "last_error_ms", now};
  (void)state_set(r, table, 2, pairs, sink_now_ms() + 2000, &e);
}

/* ---- applying rows ------------------------------------------------------ */

/* Map and write the rows of one page. */
static enum app_result apply_rows(struct replica *r, struct arena *a, const char *table,
                                  const struct map_table_info *ti, const struct dvapi_row *rows,
                                  size_t n, int64_t asked_ms, int64_t deadline_ms,
                                  struct replica_report *rep, struct app_err *err)
{
  const struct doc **docs;
  size_t nd = 0, i;
  int64_t now = asked_ms;
  struct sink_batch batch;
  struct sink_stats st;
  enum app_result res;

  if (n == 0)
    return APP_OK;
  docs = arena_alloc(a, n * sizeof *docs);
  if (!docs)
    return app_err_set(err, APP_ERR_LIMIT, "replica: page needs more memory than allowed");
  for (i = 0; i < n; i++) {
    struct cdc_change ch;
    struct doc *d;
    enum map_verdict v;
    struct app_err e;
    res = dvapi_row_change(a, &rows[i], table, ti->key_name, now, &ch, &e);
    if (res == APP_OK) {
      ch.origin.initiating_user_agent = "d365-cdc-handler replica";
      d = arena_alloc(a, sizeof *d);
      if (!d)
        return app_err_set(err, APP_ERR_LIMIT, "replica: page needs more memory than allowed");
      res = map_change(r->map, a, &ch, &v, d, &e);
      if (res == APP_OK && v == MAP_ACCEPT && r->to_redis)
        res = redis_sink_check_doc(d, &e);
      if (res == APP_OK && v == MAP_ACCEPT && r->sql)
        res = sql_sink_check_doc(r->sql, d, &e);
      if (res == APP_OK && v == MAP_ACCEPT)
        docs[nd++] = d;
    }
    if (res == APP_ERR_LIMIT || res == APP_ERR_NOMEM)
      return app_err_set(err, res, "replica %s: %s", table, e.msg);
    if (res != APP_OK)
      /* one bad row never stops the table: logged, and the next
       * reconciliation reads it again once it changes */
      LOG_WARN("replica %s: row %zu skipped: %s", table, i, e.msg);
    if (rows[i].kind == DVAPI_ROW_DELETED)
      rep->deleted++;
  }
  rep->rows += n;
  if (nd == 0)
    return APP_OK;
  memset(&batch, 0, sizeof batch);
  batch.docs = docs;
  batch.ndocs = nd;
  batch.function = "Reconcile";
  batch.invocation_id = "replica";
  batch.deadline_ms = deadline_ms;
  memset(&st, 0, sizeof st);
  res = r->to_redis ? redis_sink_apply(r->redis, &batch, &st, err) : APP_OK;
  rep->applied += st.applied;
  rep->stale += st.stale;
  if (res == APP_OK && r->sql) {
    memset(&st, 0, sizeof st);
    res = sql_sink_write(r->sql, &batch, &st, err);
    if (!r->to_redis) {
      rep->applied += st.applied;
      rep->stale += st.stale;
    }
  }
  return res;
}

enum fetch_kind { FETCH_OK = 0, FETCH_EXPIRED };

/* GET url and parse it as a page (in a). */
static enum app_result fetch_page(struct replica *r, struct arena *a, const char *url, bool track,
                                  int64_t deadline_ms, struct dvapi_page *page,
                                  enum fetch_kind *kind, int64_t *asked_ms, struct app_err *err)
{
  struct buf body;
  long status = 0;
  enum app_result res;
  *kind = FETCH_OK;
  /* before the request: the rows show the table as of a later time, so
   * every change stamped after this is newer than them */
  *asked_ms = wall_ms();
  buf_init(&body, 0);
  res = dvclient_get(r->dv, url, track, deadline_ms, &body, &status, err);
  if (res == APP_ERR_HTTP && (status == 410 || (status == 400 && strstr(err->msg, "delta")))) {
    *kind = FETCH_EXPIRED;
    buf_cleanup(&body);
    return APP_OK;
  }
  if (res == APP_OK) {
    char *text = arena_alloc(a, body.len + 1);
    if (!text)
      res = app_err_set(err, APP_ERR_LIMIT, "replica: page larger than the page arena");
    else {
      memcpy(text, body.data ? body.data : "", body.len);
      text[body.len] = '\0';
      res = dvapi_page_parse(a, text, body.len, page, err);
    }
  }
  buf_cleanup(&body);
  if (res == APP_OK) {
    if (page->next_link && !dvapi_link_ok(dvclient_base(r->dv), page->next_link))
      res = app_err_set(err, APP_ERR_INPUT, "@odata.nextLink does not point to DataverseUrl");
    if (page->delta_link && !dvapi_link_ok(dvclient_base(r->dv), page->delta_link))
      res = app_err_set(err, APP_ERR_INPUT, "@odata.deltaLink does not point to DataverseUrl");
  }
  return res;
}

static void add_client_stats(struct replica *r, const struct dvclient_stats *before,
                             struct replica_report *rep)
{
  struct dvclient_stats now;
  dvclient_get_stats(r->dv, &now);
  rep->requests += now.requests - before->requests;
  rep->throttled += now.throttled - before->throttled;
  rep->throttle_wait_ms += (int64_t)(now.throttle_wait_ms - before->throttle_wait_ms);
}

struct lock_hook {
  struct replica *r;
  const char *table;
  int64_t deadline_ms;
};

/* before every Web API attempt: the lock is still ours, for another TTL */
static bool renew_hook(void *ctx)
{
  struct lock_hook *h = ctx;
  struct app_err e;
  bool held = false;
  return lock_table(h->r, h->table, true, &held, h->deadline_ms, &e) == APP_OK && held;
}

/* One table: snapshot pages, then one pass over the delta link. *done: the
 * table reached and followed its delta link in this run. */
static enum app_result work_table(struct replica *r, const char *table, int64_t deadline_ms,
                                  struct replica_report *rep, bool *done, struct app_err *err)
{
  struct arena a, ta;
  struct map_table_info ti;
  struct tstate s;
  int expired_now = 0; /* delta tokens refused in this run */
  enum app_result res;
  struct buf url;
  bool held;
  char num[4][24], now[24];

  *done = false;
  arena_init(&a, PAGE_ARENA);
  arena_init(&ta, 1u << 20); /* ti's strings: kept for the whole table */
  buf_init(&url, DVAPI_MAX_URL);
  res = map_table_info(r->map, &ta, table, &ti, err);
  if (res == APP_OK && !ti.accepted)
    res = app_err_set(err, APP_ERR_CONFIG,
                      "CDC_RECONCILE_TABLES: table %s is not accepted by the mapping", table);
  if (res != APP_OK) {
    arena_cleanup(&a);
    arena_cleanup(&ta);
    buf_cleanup(&url);
    return res;
  }
  res = state_load(r, table, &s, deadline_ms, err);
  if (res != APP_OK)
    goto out;
  for (;;) {
    struct dvapi_page page;
    enum fetch_kind kind;
    int64_t asked;
    bool snapshot = strcmp(s.phase, "delta") != 0;
    const char *link;

    if (sink_now_ms() >= deadline_ms || sink_cancelled())
      break;
    arena_reset(&a);
    buf_reset(&url);
    if (snapshot && !s.next) {
      /* start (or restart) the snapshot */
      res = dvapi_snapshot_url(&url, dvclient_base(r->dv), ti.entity_set, ti.select);
      if (res != APP_OK)
        goto out;
      snprintf(now, sizeof now, "%lld", (long long)wall_ms());
      const char *pairs[] = {"phase", "snapshot", "next", url.data, "started_ms",
                             now,     "rows",     "0",    "pages",  "0"};
      res = state_set(r, table, 5, pairs, deadline_ms, err);
      if (res != APP_OK)
        goto out;
      snprintf(s.phase, sizeof s.phase, "snapshot");
      s.next = strdup(url.data);
      s.rows = s.pages = 0;
      LOG_INFO("replica %s: snapshot started", table);
    }
    link = snapshot ? s.next : s.delta;
    if (!link) {
      /* delta phase without a link: start over */
      snprintf(s.phase, sizeof s.phase, "snapshot");
      continue;
    }
    res = fetch_page(r, &a, link, true, deadline_ms, &page, &kind, &asked, err);
    if (res != APP_OK)
      goto out;
    if (kind == FETCH_EXPIRED) {
      if (++expired_now > 1) {
        /* refused again right after a fresh snapshot: not an old token */
        res = app_err_set(err, APP_ERR_HTTP,
                          "replica %s: Dataverse refused the delta token of a snapshot just made",
                          table);
        goto out;
      }
      LOG_WARN("replica %s: the delta token expired: the snapshot starts again", table);
      const char *pairs[] = {"phase", "snapshot", "next", "", "delta", ""};
      res = state_set(r, table, 3, pairs, deadline_ms, err);
      if (res != APP_OK)
        goto out;
      tstate_cleanup(&s);
      rep->restarts++;
      s.restarts++;
      snprintf(num[0], sizeof num[0], "%lld", s.restarts);
      const char *p2[] = {"restarts", num[0]};
      res = state_set(r, table, 1, p2, deadline_ms, err);
      if (res != APP_OK)
        goto out;
      continue;
    }
    res = apply_rows(r, &a, table, &ti, page.rows, page.nrows, asked, deadline_ms, rep, err);
    if (res != APP_OK)
      goto out;
    rep->pages++;
    s.pages++;
    s.rows += (long long)page.nrows;
    /* save the place only after the page's writes are confirmed */
    snprintf(num[0], sizeof num[0], "%lld", s.rows);
    snprintf(num[1], sizeof num[1], "%lld", s.pages);
    snprintf(now, sizeof now, "%lld", (long long)wall_ms());
    if (snapshot && page.next_link) {
      const char *pairs[] = {"next", page.next_link, "rows", num[0], "pages", num[1]};
      res = state_set(r, table, 3, pairs, deadline_ms, err);
      free(s.next);
      s.next = strdup(page.next_link);
    } else if (snapshot) {
      if (!page.delta_link) {
        res = app_err_set(err, APP_ERR_INPUT,
                          "the last snapshot page of %s has no @odata.deltaLink (is Track "
                          "changes on for the table?)",
                          table);
        goto out;
      }
      const char *pairs[] = {"phase",
                             "delta",
                             "next",
                             "",
                             "delta",
                             page.delta_link,
                             "rows",
                             num[0],
                             "pages",
                             num[1],
                             "snapshot_done_ms",
                             now};
      res = state_set(r, table, 6, pairs, deadline_ms, err);
      LOG_INFO("replica %s: snapshot done: %lld rows in %lld pages", table, s.rows, s.pages);
      free(s.next);
      s.next = NULL;
      free(s.delta);
      s.delta = strdup(page.delta_link);
      snprintf(s.phase, sizeof s.phase, "delta");
    } else {
      /* a delta page: the next link (more changes) or the new delta link */
      const char *nl = page.next_link ? page.next_link : page.delta_link;
      if (!nl) {
        res = app_err_set(err, APP_ERR_INPUT, "a change-tracking page of %s has no link", table);
        goto out;
      }
      const char *pairs[] = {"delta", nl, "last_success_ms", now};
      res = state_set(r, table, 2, pairs, deadline_ms, err);
      free(s.delta);
      s.delta = strdup(nl);
      if (!page.next_link) {
        *done = true;
        const char *p2[] = {"last_error", ""};
        if (res == APP_OK)
          res = state_set(r, table, 1, p2, deadline_ms, err);
        if (res != APP_OK)
          goto out;
        break;
      }
    }
    if (res != APP_OK)
      goto out;
    res = lock_table(r, table, true, &held, deadline_ms, err);
    if (res != APP_OK)
      goto out;
    if (!held) {
      res = app_err_set(err, APP_ERR_TIMEOUT, "replica %s: the lock expired while working", table);
      goto out;
    }
  }
out:
  tstate_cleanup(&s);
  arena_cleanup(&a);
  arena_cleanup(&ta);
  buf_cleanup(&url);
  return res;
}

/* ---- re-reads ------------------------------------------------------------ */

static enum app_result reread(struct replica *r, int64_t deadline_ms, struct replica_report *rep,
                              bool *left, struct app_err *err)
{
  char zkey[300];
  redisReply *list = NULL;
  enum app_result res;
  struct arena a;
  size_t batch = (size_t)r->cfg->reread_batch;
  char cnt[24];

  *left = false;
  snprintf(zkey, sizeof zkey, "%s:reread", redis_sink_prefix(r->redis));
  snprintf(cnt, sizeof cnt, "%zu", batch * 4);
  arena_init(&a, PAGE_ARENA);
  while (sink_now_ms() < deadline_ms) {
    const char *argv[] = {"ZRANGE", zkey, "0", cnt};
    size_t i;
    res = rcmd(r, 4, argv, &list, deadline_ms, err);
    if (res != APP_OK)
      goto out;
    if (list->type != REDIS_REPLY_ARRAY || list->elements == 0)
      break;
    /* the first member's table, and the members of that table */
    char table[MAP_MAX_NAME + 1];
    const char *ids[DVAPI_MAX_IDS];
    const char *members[DVAPI_MAX_IDS];
    size_t n = 0;
    const char *c0 = strchr(list->element[0]->str, ':');
    snprintf(table, sizeof table, "%.*s", c0 ? (int)(c0 - list->element[0]->str) : 0,
             list->element[0]->str);
    for (i = 0; i < list->elements && n < batch && n < DVAPI_MAX_IDS; i++) {
      const char *m = list->element[i]->str;
      const char *c = strchr(m, ':');
      if (c && (size_t)(c - m) == strlen(table) && !strncmp(m, table, strlen(table)) &&
          dvapi_is_guid(c + 1)) {
        members[n] = m;
        ids[n++] = c + 1;
      }
    }
    arena_reset(&a);
    struct map_table_info ti;
    struct buf url;
    buf_init(&url, DVAPI_MAX_URL);
    /* ti's strings live in a too: nothing below resets it */
    res = n ? map_table_info(r->map, &a, table, &ti, err) : APP_OK;
    if (res == APP_OK && n)
      res = dvapi_ids_url(&url, dvclient_base(r->dv), ti.entity_set, ti.select, ti.key_name, ids, n,
                          err);
    if (res == APP_OK && n) {
      struct dvapi_page page;
      enum fetch_kind kind;
      int64_t asked;
      res = fetch_page(r, &a, url.data, false, deadline_ms, &page, &kind, &asked, err);
      if (res == APP_OK)
        res = apply_rows(r, &a, table, &ti, page.rows, page.nrows, asked, deadline_ms, rep, err);
      /* a record the Web API no longer returns was deleted: a versioned
       * delete at the time it was read (rows it did return are written) */
      if (res == APP_OK) {
        struct dvapi_row *gone = arena_alloc(&a, n * sizeof *gone);
        size_t ng = 0;
        for (i = 0; gone && i < n; i++) {
          bool found = false;
          for (size_t k = 0; k < page.nrows && !found; k++) {
            const char *id = json_get_str(page.rows[k].obj, ti.key_name);
            found = id && !strcasecmp(id, ids[i]);
          }
          if (!found) {
            gone[ng].kind = DVAPI_ROW_DELETED;
            gone[ng].obj = NULL;
            gone[ng++].id = ids[i];
          }
        }
        if (ng) {
          size_t before = rep->rows, bdel = rep->deleted;
          res = apply_rows(r, &a, table, &ti, gone, ng, asked, deadline_ms, rep, err);
          rep->rows = before;
          rep->deleted = bdel;
        }
      }
      rep->reread += n;
    }
    buf_cleanup(&url);
    if (res != APP_OK)
      goto out;
    /* done with them: ZREM (a member marked again meanwhile is re-read on
     * the next run only if marked after this; ZREM of a re-added member
     * loses its mark, which the row just written already covers) */
    {
      const char *argv2[2 + DVAPI_MAX_IDS];
      size_t k = 0;
      argv2[k++] = "ZREM";
      argv2[k++] = zkey;
      if (n == 0) /* a member that is not <table>:<guid>: drop it */
        argv2[k++] = list->element[0]->str;
      for (i = 0; i < n; i++)
        argv2[k++] = members[i];
      res = rcmd(r, k, argv2, NULL, deadline_ms, err);
    }
    freeReplyObject(list);
    list = NULL;
    if (res != APP_OK)
      goto out;
  }
  res = APP_OK;
  if (list && list->type == REDIS_REPLY_ARRAY && list->elements)
    *left = true;
out:
  if (list)
    freeReplyObject(list);
  arena_cleanup(&a);
  return res;
}

/* ---- run -------------------------------------------------------------- */

enum app_result replica_run(struct replica *r, const char *table, int64_t deadline_ms,
                            struct replica_report *out, struct app_err *err)
{
  struct dvclient_stats before;
  enum app_result res = APP_OK, first = APP_OK;
  size_t i;
  bool all_done = true, left = false;

  memset(out, 0, sizeof *out);
  dvclient_get_stats(r->dv, &before);
  for (i = 0; i < r->ntables; i++) {
    const char *t = r->tables[i].name;
    bool held = false, done = false;
    struct app_err e;
    if (table && strcmp(table, t))
      continue;
    if (sink_now_ms() >= deadline_ms) {
      all_done = false;
      break;
    }
    res = lock_table(r, t, false, &held, deadline_ms, &e);
    if (res == APP_OK && !held) {
      out->busy++;
      all_done = false;
      LOG_INFO("replica %s: another worker holds the lock", t);
      continue;
    }
    if (res == APP_OK) {
      struct lock_hook hook = {r, t, deadline_ms};
      out->tables++;
      dvclient_set_hook(r->dv, renew_hook, &hook);
      res = work_table(r, t, deadline_ms, out, &done, &e);
      dvclient_set_hook(r->dv, NULL, NULL);
      unlock_table(r, t);
    }
    if (res != APP_OK) {
      LOG_ERROR("replica %s: %s", t, e.msg);
      state_error(r, t, e.msg);
      if (first == APP_OK) {
        first = res;
        *err = e;
      }
    }
    all_done = all_done && done;
  }
  if (!table && first == APP_OK && sink_now_ms() < deadline_ms) {
    struct app_err e;
    res = reread(r, deadline_ms, out, &left, &e);
    if (res != APP_OK) {
      LOG_ERROR("replica re-reads: %s", e.msg);
      first = res;
      *err = e;
    }
  }
  add_client_stats(r, &before, out);
  out->complete = first == APP_OK && all_done && !left;
  return first;
}

enum app_result replica_restart(struct replica *r, const char *table, struct app_err *err)
{
  size_t i;
  char key[400];
  for (i = 0; i < r->ntables; i++)
    if (!strcmp(r->tables[i].name, table))
      break;
  if (i == r->ntables)
    return app_err_set(err, APP_ERR_NOTFOUND, "table %.60s is not in CDC_RECONCILE_TABLES", table);
  state_key(r, table, "", key, sizeof key);
  const char *argv[] = {"HSET", key, "phase", "snapshot", "next", "", "delta", ""};
  return rcmd(r, 8, argv, NULL, sink_now_ms() + 5000, err);
}

enum app_result replica_state_json(struct replica *r, struct buf *out, struct app_err *err)
{
  static const char *const fields[] = {"phase",           "rows",       "pages",
                                       "restarts",        "started_ms", "snapshot_done_ms",
                                       "last_success_ms", "last_error", "last_error_ms"};
  const size_t nf = sizeof fields / sizeof fields[0];
  size_t i, k;
  char zkey[300];
  redisReply *rep;
  enum app_result res;
  int64_t deadline = sink_now_ms() + 5000;

  APP_RETURN_IF_FAILED(buf_append_str(out, "{\"tables\":{"));
  for (i = 0; i < r->ntables; i++) {
    char key[400];
    const char *argv[2 + 9];
    state_key(r, r->tables[i].name, "", key, sizeof key);
    argv[0] = "HMGET";
    argv[1] = key;
    for (k = 0; k < nf; k++)
      argv[2 + k] = fields[k];
    res = rcmd(r, 2 + nf, argv, &rep, deadline, err);
    if (res != APP_OK)
      return res;
    res = buf_printf(out, "%s\"%s\":{", i ? "," : "", r->tables[i].name);
    for (k = 0; res == APP_OK && k < nf && rep->type == REDIS_REPLY_ARRAY && k < rep->elements;
         k++) {
      redisReply *e = rep->element[k];
      bool num = k > 0 && k != 7;
      res = buf_printf(out, "%s\"%s\":", k ? "," : "", fields[k]);
      if (res != APP_OK)
        break;
      if (e->type != REDIS_REPLY_STRING || (num && !e->len))
        res = buf_append_str(out, k == 0 ? "\"new\"" : "null");
      else if (num)
        res = buf_append(out, e->str, e->len);
      else
        res = buf_append_json_str(out, e->str, e->len);
    }
    freeReplyObject(rep);
    APP_RETURN_IF_FAILED(res);
    APP_RETURN_IF_FAILED(buf_append_char(out, '}'));
  }
  snprintf(zkey, sizeof zkey, "%s:reread", redis_sink_prefix(r->redis));
  const char *argv[] = {"ZCARD", zkey};
  res = rcmd(r, 2, argv, &rep, deadline, err);
  if (res != APP_OK)
    return res;
  res = buf_printf(out, "},\"reread_pending\":%lld}",
                   rep->type == REDIS_REPLY_INTEGER ? (long long)rep->integer : 0LL);
  freeReplyObject(rep);
  return res;
}

enum app_result replica_report_text(const struct replica_report *rep, struct buf *out)
{
  return buf_printf(out,
                    "tables=%zu busy=%zu pages=%zu rows=%zu applied=%zu stale=%zu deleted=%zu "
                    "reread=%zu restarts=%zu requests=%zu throttled=%zu throttle_wait_ms=%lld "
                    "complete=%s",
                    rep->tables, rep->busy, rep->pages, rep->rows, rep->applied, rep->stale,
                    rep->deleted, rep->reread, rep->restarts, rep->requests, rep->throttled,
                    (long long)rep->throttle_wait_ms, rep->complete ? "true" : "false");
}

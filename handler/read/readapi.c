/* readapi.c - Web API-shaped reads over the Redis replica. */
#include "read/readapi.h"

#include "common/log.h"
#include "common/metrics.h"
#include "read/odata.h"
#include "redis/redis_entra.h"

#include "redis/redis_cluster.h"
#include "redis/redis_pool.h"
#include "redis/redis_read.h"
#include "map/altkey.h"
#include "map/sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <time.h>

/* most reads sent in one pipeline; more wait for the next batch */
#define READAPI_MAX_BATCH 64

struct readapi {
  const struct app_config *cfg;
  const struct map_config *map;
  struct schema *schema;
  struct redis_pool *pool;       /* reads only: a write load never holds these */
  struct redis_mux *mux;         /* over pool: concurrent reads pipelined */
  struct redis_cluster *cluster; /* over pool: routing by hash slot on a cluster */
  char *prefix;                  /* CDC_KEY_PREFIX */
  int timeout_ms;                /* one whole read */
};

enum app_result readapi_create(const struct app_config *cfg, const struct map_config *map,
                               struct schema *schema, struct readapi **out, struct app_err *err)
{
  struct readapi *api = NULL;
  struct redis_conninfo ci;
  size_t nconn = (size_t)(cfg->read_connections > 0 ? cfg->read_connections : 1);
  size_t nqueue = (size_t)(cfg->max_connections > 0 ? cfg->max_connections : 1);
  enum app_result r;

  *out = NULL;
  r = redis_conninfo_from_config(cfg, &ci, err);
  if (r != APP_OK) {
    redis_conninfo_cleanup(&ci);
    return r;
  }
  if (!cfg->key_prefix || !*cfg->key_prefix) {
    redis_conninfo_cleanup(&ci);
    return app_err_set(err, APP_ERR_CONFIG, "setting CDC_KEY_PREFIX must not be empty");
  }
  api = xcalloc(1, sizeof *api);
  api->cfg = cfg;
  api->map = map;
  api->schema = schema;
  api->prefix = xstrdup(cfg->key_prefix);
  api->timeout_ms = ci.sync_timeout_ms > 0 ? ci.sync_timeout_ms : 5000;
  /* no setup commands: reads need neither the apply script nor anything
   * but AUTH/SELECT, which redis_conn_open does */
  r = redis_pool_create(&ci, nconn + 1, NULL, 0, 0, &api->pool, err);
  /* one more connection than leaders: schema look-ups never wait behind
   * reads; one queued read per HTTP connection at most (a thread each) */
  if (r == APP_OK)
    r = redis_mux_create(api->pool, nconn, READAPI_MAX_BATCH, nqueue, &api->mux, err);
  /* a Redis Cluster: reads go to each key's primary (redis_cluster.h) */
  if (r == APP_OK)
    r = redis_cluster_create(api->pool, (enum redis_cluster_mode)cfg->redis_cluster, nconn + 1,
                             NULL, 0, 0, &api->cluster, err);
  if (r == APP_OK)
    redis_pool_set_cluster(api->pool, api->cluster);
  if (r != APP_OK) {
    redis_conninfo_cleanup(&ci);
    readapi_destroy(api);
    return r;
  }
  LOG_INFO("read API: own %zu Redis connections, concurrent reads pipelined on them, %d ms per "
           "read",
           nconn, api->timeout_ms);
  *out = api;
  return APP_OK;
}

void readapi_destroy(struct readapi *api)
{
  if (!api)
    return;
  if (api->mux) {
    struct redis_mux_stats st;
    redis_mux_get_stats(api->mux, &st);
    if (st.calls)
      LOG_INFO("read API: %zu Redis exchanges in %zu batches (largest %zu); %zu reads gave up "
               "while queued, %zu in flight, %zu refused (queue full)",
               st.calls, st.batches, st.max_batch, st.expired, st.abandoned, st.refused);
  }
  redis_mux_destroy(api->mux);
  redis_cluster_destroy(api->cluster);
  redis_pool_destroy(api->pool);
  free(api->prefix);
  free(api);
}

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum app_result readapi_split_url(struct arena *a, const char *url, const char **out_base,
                                  const char **out_path, const char **out_query)
{
  const char *p = url, *path, *q;
  *out_base = NULL;
  *out_path = NULL;
  *out_query = NULL;
  if (!url)
    return APP_ERR_INPUT;
  if ((p = strstr(url, "://")) != NULL) {
    path = strchr(p + 3, '/');
    if (!path)
      path = p + 3 + strlen(p + 3);
    *out_base = arena_strndup(a, url, (size_t)(path - url));
    if (!*out_base)
      return APP_ERR_LIMIT;
  } else {
    path = url;
  }
  q = strchr(path, '?');
  if (q) {
    *out_path = arena_strndup(a, path, (size_t)(q - path));
    *out_query = arena_strndup(a, q + 1, strlen(q + 1));
    if (!*out_path || !*out_query)
      return APP_ERR_LIMIT;
  } else {
    *out_path = *path ? path : "/";
  }
  return APP_OK;
}

static void add_header(struct arena *a, struct readapi_response *res, const char *name,
                       const char *value)
{
  if (res->nheaders >= READAPI_MAX_HEADERS || !value)
    return;
  res->header_names[res->nheaders] = name;
  res->header_values[res->nheaders] = arena_strndup(a, value, strlen(value));
  if (res->header_values[res->nheaders])
    res->nheaders++;
}

static enum app_result answer_error(struct arena *a, struct readapi_response *res,
                                    const struct odata_error *e)
{
  res->status = e->status;
  buf_reset(&res->body);
  if (e->status >= 500)
    metrics_add(M_READS_FAILED, 1);
  else if (e->status == 404)
    metrics_add(M_READS_NOT_FOUND, 1);
  add_header(a, res, "OData-Version", "4.0");
  return odata_render_error(e, &res->body);
}

static void freshness(struct arena *a, struct readapi_response *res, const struct redis_record *rec)
{
  char tmp[32];
  if (rec->op_time_ms > 0) {
    int64_t age = wall_ms() - rec->op_time_ms;
    snprintf(tmp, sizeof tmp, "%lld", (long long)(age > 0 ? age : 0));
    add_header(a, res, "x-cdc-freshness-ms", tmp);
  }
  if (rec->version_text[0])
    add_header(a, res, "x-cdc-version", rec->version_text);
}

/* redis_read_prop and odata_prop have the same fields; copy the view. */
static const struct odata_prop *props_view(struct arena *a, const struct redis_record *rec)
{
  struct odata_prop *v = arena_alloc(a, (rec->nprops ? rec->nprops : 1) * sizeof *v);
  size_t i;
  if (!v)
    return NULL;
  for (i = 0; i < rec->nprops; i++) {
    v[i].name = rec->props[i].name;
    v[i].json = rec->props[i].json;
    v[i].json_len = rec->props[i].json_len;
    v[i].ann = rec->props[i].ann;
    v[i].nann = rec->props[i].nann;
  }
  return v;
}

static const struct redis_read_prop *find_prop(const struct redis_record *rec, const char *name)
{
  size_t i;
  for (i = 0; i < rec->nprops; i++)
    if (!strcmp(rec->props[i].name, name))
      return &rec->props[i];
  return NULL;
}

/* A read that failed: a name that cannot be a key is the client's fault
 * (400), a record too large for the arena ours (500), anything else means
 * Redis did not answer properly in time (503, retry later). */
/* Most index entries read for one alternate-key lookup (records that held
 * the value once included: altkey.h). */
#define READAPI_MAX_KEY_CANDIDATES 64
/* Most index entries read for one list (all pages are cut from them). */
#define READAPI_MAX_LIST_CANDIDATES 5000

static int hexval(char c)
{
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static enum app_result read_failed(struct arena *a, struct readapi_response *res, enum app_result r,
                                   const struct app_err *err)
{
  struct odata_error e;
  if (r == APP_ERR_INPUT) {
    odata_error_set(&e, 400, ODATA_CODE_SYNTAX, "Bad Request - %s", err->msg);
  } else if (r == APP_ERR_LIMIT) {
    odata_error_set(&e, 500, ODATA_CODE_SYNTAX, "The answer is larger than allowed: %s", err->msg);
  } else {
    /* the detail names Redis's host and port: the log only (issue 17) */
    char cid[LOG_CID_SIZE];
    log_new_correlation_id(cid);
    LOG_WARN("read API: Redis unavailable (%s), correlation id %s: %s", app_result_str(r), cid,
             err->msg);
    odata_error_set(&e, 503, ODATA_CODE_UNAVAILABLE,
                    "The replica store is unavailable (%s); retry later. Correlation id %s.",
                    app_result_str(r), cid);
    add_header(a, res, "Retry-After", "1");
    snprintf(e.correlation_id, sizeof e.correlation_id, "%s", cid);
  }
  return answer_error(a, res, &e);
}

/* $select names none of recs holds must be columns the table has had
 * (schema.h). *out_known_all=false and e filled when one is unknown. */
static enum app_result check_select(struct readapi *api, struct arena *a,
                                    const struct odata_request *q, const char *table,
                                    const char *key_name, const struct redis_record *recs,
                                    size_t nrecs, int64_t deadline, bool *out_known_all,
                                    struct odata_error *e, struct app_err *err)
{
  const char **missing;
  bool *known;
  size_t i, k, nmissing = 0;

  *out_known_all = true;
  if (!q->select)
    return APP_OK;
  missing = arena_alloc(a, q->nselect * sizeof *missing);
  known = arena_alloc(a, q->nselect * sizeof *known);
  if (!missing || !known)
    return app_err_set(err, APP_ERR_LIMIT, "out of request memory");
  for (i = 0; i < q->nselect; i++) {
    bool have = key_name && !strcmp(q->select[i], key_name);
    for (k = 0; k < nrecs && !have; k++)
      have = find_prop(&recs[k], q->select[i]) != NULL;
    if (!have)
      missing[nmissing++] = q->select[i];
  }
  if (!nmissing)
    return APP_OK;
  APP_RETURN_IF_FAILED(
      schema_known(api->schema, api->pool, table, missing, nmissing, known, deadline, err));
  for (i = 0; i < nmissing; i++) {
    if (!known[i]) {
      *out_known_all = false;
      odata_error_set(e, 400, ODATA_CODE_PROPERTY,
                      "Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.",
                      missing[i], table);
      break;
    }
  }
  return APP_OK;
}

static enum app_result not_found(struct arena *a, struct readapi_response *res, const char *table,
                                 const char *id)
{
  struct odata_error e;
  odata_error_set(&e, 404, ODATA_CODE_NOT_FOUND, "Entity '%s' With Id = %s Does Not Exist", table,
                  id);
  return answer_error(a, res, &e);
}

static void ok_headers(struct arena *a, const struct odata_request *q, struct readapi_response *res)
{
  add_header(a, res, "OData-Version", "4.0");
  if (q->preference_applied)
    add_header(a, res, "Preference-Applied", q->preference_applied);
}

/* A list row: the record and its sort key */
struct list_row {
  const struct redis_record *rec;
  const char *id;
  const char *sort; /* canonical value of $orderby's column, or NULL (null sorts first) */
  size_t sort_len;
};

static _Thread_local bool sort_desc; /* qsort has no context argument */

static int cmp_canon(const char *a, size_t al, const char *b, size_t bl)
{
  if (!a || !b)
    return a ? 1 : b ? -1 : 0;
  if (al && bl && a[0] == 'n' && b[0] == 'n') {
    double x = strtod(a + 1, NULL), y = strtod(b + 1, NULL);
    if (x != y)
      return x < y ? -1 : 1;
    return 0;
  }
  {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : al < bl ? -1 : al > bl ? 1 : 0;
  }
}

static int cmp_rows(const void *pa, const void *pb)
{
  const struct list_row *x = pa, *y = pb;
  int c = cmp_canon(x->sort, x->sort_len, y->sort, y->sort_len);
  if (!c)
    c = strcmp(x->id, y->id);
  return sort_desc ? -c : c;
}

/* hex of "<sort canon>\x1f<id>": opaque to the client, a position in the
 * order (keyset), so it stays valid while records change */
static const char *make_token(struct arena *a, const struct list_row *r)
{
  static const char hx[] = "0123456789abcdef";
  size_t sl = r->sort ? r->sort_len : 0, n = sl + 1 + strlen(r->id), i;
  char *raw = arena_alloc(a, n), *t = arena_alloc(a, 2 * n + 2);
  if (!raw || !t)
    return NULL;
  if (sl)
    memcpy(raw, r->sort, sl);
  raw[sl] = 0x1f;
  memcpy(raw + sl + 1, r->id, n - sl - 1);
  t[0] = r->sort ? 'v' : 'z';
  for (i = 0; i < n; i++) {
    t[1 + 2 * i] = hx[(unsigned char)raw[i] >> 4];
    t[2 + 2 * i] = hx[(unsigned char)raw[i] & 15];
  }
  t[1 + 2 * n] = '\0';
  return t;
}

static bool parse_token(struct arena *a, const char *t, struct list_row *out)
{
  size_t n = strlen(t), i;
  char *raw, *sep;
  if (n < 3 || !(n % 2) || (t[0] != 'v' && t[0] != 'z'))
    return false;
  raw = arena_alloc(a, n / 2 + 1);
  if (!raw)
    return false;
  for (i = 0; i < n / 2; i++) {
    int h = hexval(t[1 + 2 * i]), l = hexval(t[2 + 2 * i]);
    if (h < 0 || l < 0)
      return false;
    raw[i] = (char)(h << 4 | l);
  }
  raw[n / 2] = '\0';
  sep = memchr(raw, 0x1f, n / 2);
  if (!sep || !odata_is_guid(sep + 1, strlen(sep + 1)))
    return false;
  out->id = sep + 1;
  out->sort = t[0] == 'v' ? raw : NULL;
  out->sort_len = (size_t)(sep - raw);
  return true;
}

/* The lookup's value as a lower-case GUID, or NULL (absent, null, not a
 * GUID string). */
static const char *lookup_id(struct arena *a, const struct redis_record *rec, const char *property)
{
  const struct redis_read_prop *p = find_prop(rec, property);
  char *id;
  size_t i;
  if (!p || p->json_len != 38 || p->json[0] != '"' || p->json[37] != '"' ||
      !odata_is_guid(p->json + 1, 36))
    return NULL;
  id = arena_strndup(a, p->json + 1, 36);
  for (i = 0; id && id[i]; i++)
    id[i] = (char)tolower((unsigned char)id[i]);
  return id;
}

/* Is the expansion ordered by the key (no $orderby, or on the key)? */
static bool by_key(const struct odata_expand *x, const char *key_name)
{
  return !x->orderby || !strcmp(x->orderby, key_name);
}

static int cmp_ref_ids(const void *pa, const void *pb)
{
  const struct doc_related *x = pa, *y = pb;
  int c = strcmp(x->id, y->id);
  return sort_desc ? -c : c;
}

/* The rows of a collection expansion: candidates (the index set) that are
 * live, reference the record (nav->property holds its id) and pass the
 * nested $filter; sorted by the nested $orderby (else the key), cut at
 * $top. */
static size_t collection_rows(struct arena *a, const struct odata_expand *x,
                              const struct map_nav *nav, const char *key_name, const char *id,
                              struct redis_record *recs, const struct doc_related *refs, size_t n,
                              struct list_row *rows)
{
  size_t i, k, nrows = 0;
  for (i = 0; i < n; i++) {
    const struct redis_read_prop *p = find_prop(&recs[i], nav->property);
    const char *c;
    size_t cl;
    bool match = recs[i].state == RREC_LIVE && p &&
                 altkey_canon_json(a, p->json, p->json_len, &c, &cl) && cl == 37 && c[0] == 's' &&
                 !memcmp(c + 1, id, 36);
    for (k = 0; match && k < x->nfilter; k++) {
      p = find_prop(&recs[i], x->filter[k].prop);
      match = p && altkey_canon_json(a, p->json, p->json_len, &c, &cl) &&
              cl == x->filter[k].canon_len && !memcmp(c, x->filter[k].canon, cl);
    }
    if (!match)
      continue;
    rows[nrows].rec = &recs[i];
    rows[nrows].id = refs[i].id;
    rows[nrows].sort = NULL;
    rows[nrows].sort_len = 0;
    if (x->orderby && strcmp(x->orderby, key_name) != 0) {
      p = find_prop(&recs[i], x->orderby);
      if (p &&
          !altkey_canon_json(a, p->json, p->json_len, &rows[nrows].sort, &rows[nrows].sort_len)) {
        rows[nrows].sort = p->json_len == 4 && !memcmp(p->json, "null", 4) ? NULL : p->json;
        rows[nrows].sort_len = p->json_len;
      }
    }
    nrows++;
  }
  sort_desc = x->orderby_desc;
  if (nrows > 1)
    qsort(rows, nrows, sizeof *rows, cmp_rows);
  if (x->top && nrows > (size_t)x->top)
    nrows = (size_t)x->top;
  return nrows;
}

/* GET <set>(<id>)?$expand=<nav>[(options)],...: navs were resolved and the
 * record read together with the index set of every collection (one round
 * trip, read_record); here every expanded record, lookups' targets and
 * collections' candidates alike, is read in one more pipelined round trip,
 * whatever the number of navigation properties; one more (SISMEMBER,
 * schema.h) only when a nested $select names a column none of the records
 * holds. */
static enum app_result read_expanded(struct readapi *api, struct arena *a,
                                     const struct odata_request *q, const struct map_table_info *ti,
                                     const struct redis_record *rec, const char *etag,
                                     const struct map_nav *navs, const char ***members,
                                     const size_t *nmembers, int64_t deadline,
                                     struct readapi_response *res)
{
  size_t nx = q->nexpand, i, k, nref = 0, total = nx;
  struct map_table_info *tis = arena_alloc(a, nx * sizeof *tis);
  struct odata_request *subs = arena_alloc(a, nx * sizeof *subs);
  size_t *first = arena_alloc(a, nx * sizeof *first), *count = arena_alloc(a, nx * sizeof *count);
  size_t *loaded = arena_alloc(a, nx * sizeof *loaded);
  struct list_row **rows = arena_alloc(a, nx * sizeof *rows);
  struct doc_related *refs;
  struct redis_record *recs;
  const struct redis_record *oldest = rec;
  const struct odata_prop *props;
  struct odata_error e;
  struct app_err err;
  enum app_result r;

  if (!tis || !subs || !first || !count || !rows || !loaded)
    return APP_ERR_LIMIT;
  for (i = 0; i < nx; i++)
    total += navs[i].collection ? nmembers[i] : 0;
  refs = arena_alloc(a, total * sizeof *refs);
  recs = arena_alloc(a, total * sizeof *recs);
  if (!refs || !recs)
    return APP_ERR_LIMIT;
  for (i = 0; i < nx; i++) {
    const struct odata_expand *x = &q->expand[i];
    if (map_table_info(api->map, a, navs[i].table, &tis[i], &err) != APP_OK)
      return APP_ERR_LIMIT;
    subs[i] = *q;
    subs[i].select = x->select;
    subs[i].nselect = x->nselect;
    subs[i].expand = NULL;
    subs[i].nexpand = 0;
    first[i] = nref;
    count[i] = 0;
    /* every record returned passes the mapping (issue 17's rule) */
    if (!tis[i].accepted)
      continue;
    if (!navs[i].collection) {
      const char *rid = lookup_id(a, rec, navs[i].property);
      if (rid) {
        refs[nref].table = navs[i].table;
        refs[nref].id = rid;
        refs[nref].entity_set = tis[i].entity_set;
        nref++;
        count[i] = 1;
      }
      continue;
    }
    for (k = 0; k < nmembers[i]; k++) {
      if (!odata_is_guid(members[i][k], strlen(members[i][k])))
        continue;
      refs[nref].table = navs[i].table;
      refs[nref].id = members[i][k];
      refs[nref].entity_set = tis[i].entity_set;
      nref++;
      count[i]++;
    }
    /* ordered by the key (no $orderby on a column): the answer is the
     * first $top candidates in key order that pass, so read them in that
     * order, $top at first, more only when some did not pass */
    if (by_key(&q->expand[i], tis[i].key_name) && q->expand[i].top) {
      sort_desc = q->expand[i].orderby_desc;
      qsort(refs + first[i], count[i], sizeof *refs, cmp_ref_ids);
      loaded[i] = count[i] < (size_t)q->expand[i].top ? count[i] : (size_t)q->expand[i].top;
    } else {
      loaded[i] = count[i];
    }
  }
  {
    /* one pipelined round trip for everything to read at first */
    struct doc_related *rd = arena_alloc(a, (nref ? nref : 1) * sizeof *rd);
    struct redis_record *rr = arena_alloc(a, (nref ? nref : 1) * sizeof *rr);
    size_t *pos = arena_alloc(a, (nref ? nref : 1) * sizeof *pos), nrd = 0, j;
    if (!rd || !rr || !pos)
      return APP_ERR_LIMIT;
    for (i = 0; i < nx; i++) {
      size_t upto = navs[i].collection ? loaded[i] : count[i];
      for (j = 0; j < upto; j++) {
        rd[nrd] = refs[first[i] + j];
        pos[nrd++] = first[i] + j;
      }
    }
    if (nrd) {
      r = redis_read_records(api->mux, api->prefix, a, rd, nrd, deadline, rr, &err);
      if (r != APP_OK)
        return read_failed(a, res, r, &err);
    }
    for (j = 0; j < nrd; j++)
      recs[pos[j]] = rr[j];
  }
  for (i = 0; i < nx; i++) {
    bool known_all = true;
    size_t n;
    rows[i] = arena_alloc(a, (count[i] ? count[i] : 1) * sizeof **rows);
    if (!rows[i])
      return APP_ERR_LIMIT;
    if (navs[i].collection) {
      n = collection_rows(a, &q->expand[i], &navs[i], tis[i].key_name, q->id, recs + first[i],
                          refs + first[i], loaded[i], rows[i]);
      /* some candidates did not pass (stale index entries, the nested
       * $filter): read the next ones, one more round trip each time */
      while (loaded[i] < count[i] && q->expand[i].top && n < (size_t)q->expand[i].top) {
        size_t more = 2 * ((size_t)q->expand[i].top - n) + 8;
        if (more > count[i] - loaded[i])
          more = count[i] - loaded[i];
        r = redis_read_records(api->mux, api->prefix, a, refs + first[i] + loaded[i], more,
                               deadline, recs + first[i] + loaded[i], &err);
        if (r != APP_OK)
          return read_failed(a, res, r, &err);
        loaded[i] += more;
        n = collection_rows(a, &q->expand[i], &navs[i], tis[i].key_name, q->id, recs + first[i],
                            refs + first[i], loaded[i], rows[i]);
      }
    } else {
      n = count[i] && recs[first[i]].state == RREC_LIVE ? 1 : 0;
      if (n) {
        rows[i][0].rec = &recs[first[i]];
        rows[i][0].id = refs[first[i]].id;
      }
    }
    count[i] = n;
    r = check_select(api, a, &subs[i], navs[i].table, tis[i].key_name, recs + first[i],
                     navs[i].collection ? (size_t)0 : n, deadline, &known_all, &e, &err);
    if (r != APP_OK)
      return read_failed(a, res, r, &err);
    if (!known_all)
      return answer_error(a, res, &e);
    for (k = 0; k < n; k++)
      if (rows[i][k].rec->op_time_ms &&
          (!oldest->op_time_ms || rows[i][k].rec->op_time_ms < oldest->op_time_ms))
        oldest = rows[i][k].rec;
  }

  props = props_view(a, rec);
  if (!props)
    return APP_ERR_LIMIT;
  res->status = 200;
  add_header(a, res, "ETag", etag);
  ok_headers(a, q, res);
  freshness(a, res, oldest); /* of the oldest record in the answer */
  if (rec->needs_reread)
    add_header(a, res, "x-cdc-needs-reread", "true");
  APP_RETURN_IF_FAILED(odata_render_record_open(q, ti->entity_set, ti->key_name, q->id,
                                                rec->version_text, props, rec->nprops, true,
                                                &res->body));
  for (i = 0; i < nx; i++) {
    if (!navs[i].collection) {
      const struct redis_record *m = count[i] ? rows[i][0].rec : NULL;
      const struct odata_prop *mp = m ? props_view(a, m) : NULL;
      if (m && !mp)
        return APP_ERR_LIMIT;
      APP_RETURN_IF_FAILED(odata_render_expanded(
          &subs[i], q->expand[i].name, tis[i].key_name, m ? rows[i][0].id : NULL,
          m ? m->version_text : NULL, mp, m ? m->nprops : 0, &res->body));
      continue;
    }
    APP_RETURN_IF_FAILED(buf_append_char(&res->body, ','));
    APP_RETURN_IF_FAILED(
        buf_append_json_str(&res->body, q->expand[i].name, strlen(q->expand[i].name)));
    APP_RETURN_IF_FAILED(buf_append_str(&res->body, ":["));
    for (k = 0; k < count[i]; k++) {
      const struct odata_prop *mp = props_view(a, rows[i][k].rec);
      if (!mp)
        return APP_ERR_LIMIT;
      if (k)
        APP_RETURN_IF_FAILED(buf_append_char(&res->body, ','));
      APP_RETURN_IF_FAILED(odata_render_record(&subs[i], NULL, tis[i].key_name, rows[i][k].id,
                                               rows[i][k].rec->version_text, mp,
                                               rows[i][k].rec->nprops, false, &res->body));
    }
    APP_RETURN_IF_FAILED(buf_append_char(&res->body, ']'));
  }
  return buf_append_char(&res->body, '}');
}

/* GET <set>(<id>): one HGETALL, plus one SISMEMBER round trip only when
 * $select names a column this record does not hold and this process has
 * not seen for the table yet. */
static enum app_result read_record(struct readapi *api, struct arena *a,
                                   const struct odata_request *q, const char *table,
                                   const struct map_table_info *ti, int64_t deadline,
                                   struct readapi_response *res)
{
  struct redis_record rec;
  struct odata_error e;
  struct app_err err;
  const struct odata_prop *props;
  char etag[CDC_VERSION_TEXT_LEN + 8];
  bool known_all;
  enum app_result r;
  struct map_nav *navs = NULL;
  const char **skeys = NULL;
  const char ***members = NULL;
  size_t *nmembers = NULL, nsk = 0;

  if (q->nexpand) {
    size_t i;
    navs = arena_alloc(a, q->nexpand * sizeof *navs);
    skeys = arena_alloc(a, q->nexpand * sizeof *skeys);
    members = arena_alloc(a, q->nexpand * sizeof *members);
    nmembers = arena_alloc(a, q->nexpand * sizeof *nmembers);
    if (!navs || !skeys || !members || !nmembers)
      return APP_ERR_LIMIT;
    for (i = 0; i < q->nexpand; i++) {
      const struct odata_expand *x = &q->expand[i];
      members[i] = NULL;
      nmembers[i] = 0;
      if (map_navigation(api->map, table, x->name, &navs[i]) != APP_OK) {
        odata_error_set(&e, 400, ODATA_CODE_PROPERTY,
                        "Could not find a property named '%s' on type "
                        "'Microsoft.Dynamics.CRM.%s'. Navigation properties are declared in the "
                        "mapping file (tables.%s.navigation, docs/mapping.md).",
                        x->name, table, table);
        return answer_error(a, res, &e);
      }
      if (!navs[i].collection && (x->filter || x->orderby || x->top)) {
        odata_error_set(&e, 400, ODATA_CODE_SYNTAX,
                        "'%s' is a single-valued navigation property: only $select is allowed "
                        "inside its $expand",
                        x->name);
        return answer_error(a, res, &e);
      }
      if (navs[i].collection) {
        const struct doc_altkey *ix;
        struct buf kb;
        char canon[40];
        canon[0] = 's';
        memcpy(canon + 1, q->id, 37);
        if (map_index(api->map, navs[i].table, navs[i].lookup, &ix) != APP_OK)
          return APP_ERR_LIMIT; /* checked at start-up */
        buf_init(&kb, 0);
        if (altkey_set_key(&kb, api->prefix, navs[i].table, ix, canon, 37) != APP_OK ||
            !(skeys[nsk] = arena_strndup(a, kb.data, kb.len))) {
          buf_cleanup(&kb);
          return APP_ERR_LIMIT;
        }
        buf_cleanup(&kb);
        nsk++;
      }
    }
  }
  if (nsk) {
    const char ***sm = arena_alloc(a, nsk * sizeof *sm);
    size_t *sn = arena_alloc(a, nsk * sizeof *sn), i, k = 0;
    if (!sm || !sn)
      return APP_ERR_LIMIT;
    r = redis_read_record_sets(api->mux, api->prefix, a, table, q->id, skeys, nsk,
                               READAPI_MAX_LIST_CANDIDATES, deadline, &rec, sm, sn, &err);
    for (i = 0; r == APP_OK && i < q->nexpand; i++)
      if (navs[i].collection) {
        members[i] = sm[k];
        nmembers[i] = sn[k++];
      }
  } else {
    r = redis_read_record(api->mux, api->prefix, a, table, q->id, deadline, &rec, &err);
  }
  if (r != APP_OK)
    return read_failed(a, res, r, &err);
  if (rec.state != RREC_LIVE) {
    if (rec.state == RREC_DELETED)
      freshness(a, res, &rec);
    return not_found(a, res, table, q->id);
  }
  snprintf(etag, sizeof etag, "W/\"%s\"", rec.version_text);
  if (odata_etag_matches(q, rec.version_text)) {
    res->status = 304;
    add_header(a, res, "ETag", etag);
    freshness(a, res, &rec);
    metrics_add(M_READS_NOT_MODIFIED, 1);
    return APP_OK;
  }
  r = check_select(api, a, q, table, ti->key_name, &rec, 1, deadline, &known_all, &e, &err);
  if (r != APP_OK)
    return read_failed(a, res, r, &err);
  if (!known_all)
    return answer_error(a, res, &e);
  if (q->nexpand)
    return read_expanded(api, a, q, ti, &rec, etag, navs, members, nmembers, deadline, res);
  props = props_view(a, &rec);
  if (!props)
    return APP_ERR_LIMIT;
  res->status = 200;
  add_header(a, res, "ETag", etag);
  ok_headers(a, q, res);
  freshness(a, res, &rec);
  if (rec.needs_reread)
    add_header(a, res, "x-cdc-needs-reread", "true");
  return odata_render_record(q, ti->entity_set, ti->key_name, q->id, rec.version_text, props,
                             rec.nprops, true, &res->body);
}

/* GET <set>(<id>)/<name>: the members of relationship <name>, or the
 * record's property <name>. Round trips: the member hash; then the record
 * and every member's record, pipelined; then, only for a live record with
 * no members and no such property, one SISMEMBER (is <name> a column?).
 * The record decides what exists: deleted, or absent with no members, is
 * 404. */
static enum app_result read_nav(struct readapi *api, struct arena *a, const struct odata_request *q,
                                const char *table, const struct map_table_info *ti,
                                int64_t deadline, struct readapi_response *res)
{
  struct doc_related *members = NULL, *refs;
  struct redis_record *recs, *self;
  const struct redis_read_prop *prop;
  size_t n = 0, i, k;
  struct odata_error e;
  struct app_err err;
  const char *item_set = NULL, *item_table = NULL;
  bool known_all;
  enum app_result r;

  r = redis_read_related(api->mux, api->prefix, a, table, q->id, q->navigation, deadline, &members,
                         &n, &err);
  if (r != APP_OK)
    return read_failed(a, res, r, &err);
  /* every record a read returns passes the mapping, as GET <set>(<id>)
   * does: members of tables the mapping does not accept are left out,
   * rows and keys alike (issue 17) */
  for (i = 0, k = 0; i < n; i++) {
    struct map_table_info mti;
    if (map_table_info(api->map, a, members[i].table, &mti, &err) != APP_OK || !mti.accepted)
      continue;
    members[k++] = members[i];
  }
  n = k;
  /* refs[0] is the record, refs[1..n] its related records */
  refs = arena_alloc(a, (n + 1) * sizeof *refs);
  recs = arena_alloc(a, (n + 1) * sizeof *recs);
  if (!refs || !recs)
    return APP_ERR_LIMIT;
  refs[0].table = table;
  refs[0].id = q->id;
  refs[0].entity_set = ti->entity_set;
  for (i = 0; i < n; i++)
    refs[i + 1] = members[i];
  r = redis_read_records(api->mux, api->prefix, a, refs, n + 1, deadline, recs, &err);
  if (r != APP_OK)
    return read_failed(a, res, r, &err);
  self = &recs[0];
  if (self->state == RREC_DELETED || (self->state == RREC_ABSENT && n == 0)) {
    if (self->state == RREC_DELETED)
      freshness(a, res, self);
    return not_found(a, res, table, q->id);
  }

  if (self->state == RREC_LIVE && n == 0) {
    /* a property of the record rather than a relationship? The key is
     * one even when no change listed it (SetState, Delete) */
    if (ti->key_name && !strcmp(q->navigation, ti->key_name) && !find_prop(self, ti->key_name)) {
      char idjson[64];
      int len = snprintf(idjson, sizeof idjson, "\"%s\"", q->id);
      ok_headers(a, q, res);
      freshness(a, res, self);
      res->status = 200;
      return odata_render_property(q, ti->entity_set, q->id, q->navigation, idjson, (size_t)len,
                                   &res->body);
    }
    prop = find_prop(self, q->navigation);
    if (prop) {
      ok_headers(a, q, res);
      freshness(a, res, self);
      if (prop->json_len == 4 && !memcmp(prop->json, "null", 4)) {
        res->status = 204; /* as the Web API answers a null property */
        return APP_OK;
      }
      res->status = 200;
      return odata_render_property(q, ti->entity_set, q->id, q->navigation, prop->json,
                                   prop->json_len, &res->body);
    }
    {
      const char *name = q->navigation;
      bool known = false;
      r = schema_known(api->schema, api->pool, table, &name, 1, &known, deadline, &err);
      if (r != APP_OK)
        return read_failed(a, res, r, &err);
      if (known) {
        ok_headers(a, q, res);
        freshness(a, res, self);
        res->status = 204;
        return APP_OK;
      }
    }
  }

  if (n) {
    item_table = members[0].table;
    item_set = members[0].entity_set;
    for (i = 1; i < n; i++)
      if (strcmp(members[i].table, item_table) != 0)
        item_set = item_table = NULL;
  }
  if (item_table) {
    struct map_table_info iti;
    if (map_table_info(api->map, a, item_table, &iti, &err) != APP_OK)
      return APP_ERR_LIMIT;
    r = check_select(api, a, q, item_table, iti.key_name, recs + 1, n, deadline, &known_all, &e,
                     &err);
    if (r != APP_OK)
      return read_failed(a, res, r, &err);
    if (!known_all)
      return answer_error(a, res, &e);
  }
  res->status = 200;
  ok_headers(a, q, res);
  freshness(a, res, self);
  APP_RETURN_IF_FAILED(odata_render_list_begin(q, item_set ? item_set : q->navigation, &res->body));
  for (i = 0; i < n; i++) {
    struct map_table_info mti;
    const struct redis_record *m = &recs[i + 1];
    const struct odata_prop *props;
    if (i)
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, ','));
    if (map_table_info(api->map, a, members[i].table, &mti, &err) != APP_OK)
      return APP_ERR_LIMIT;
    if (m->state != RREC_LIVE) {
      /* related, but the replica holds no row for it (its table is not
       * replicated, or it was deleted): the key tells the app which
       * record it is */
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, '{'));
      APP_RETURN_IF_FAILED(buf_append_json_str(&res->body, mti.key_name, strlen(mti.key_name)));
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, ':'));
      APP_RETURN_IF_FAILED(buf_append_json_str(&res->body, members[i].id, strlen(members[i].id)));
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, '}'));
      continue;
    }
    props = props_view(a, m);
    if (!props)
      return APP_ERR_LIMIT;
    APP_RETURN_IF_FAILED(odata_render_record(q, mti.entity_set, mti.key_name, members[i].id,
                                             m->version_text, props, m->nprops, false, &res->body));
  }
  return odata_render_list_end(&res->body);
}

/* <set>(col='v'[,...]): the record whose alternate key (tables.<t>.keys)
 * has these values. Round trips: SRANDMEMBER of the index set of the first
 * key column's value, then every candidate record, pipelined; each
 * candidate must be live and hold every requested value itself (the index
 * may list records that held the value once: altkey.h), so the answer
 * never names a record whose key is not the one asked for. Then the usual
 * read of the record by its id (one more round trip: the answer is the
 * record as it is then, with its own etag). On success q->id is set and
 * *out_resolved is true; otherwise *res is the answer (400 no such key,
 * 404 no record, 409 more than one, 503). */
static enum app_result resolve_altkey(struct readapi *api, struct arena *a, struct odata_request *q,
                                      const char *table, const struct map_table_info *ti,
                                      int64_t deadline, struct readapi_response *res,
                                      bool *out_resolved)
{
  const char *cols[ODATA_MAX_KEY_PARTS];
  const struct doc_altkey *ak;
  const struct odata_keyval *first = NULL;
  const char **ids = NULL, *found = NULL;
  struct doc_related *refs;
  struct redis_record *recs;
  struct odata_error e;
  struct app_err err;
  struct buf key;
  size_t i, k, n = 0, nfound = 0;
  enum app_result r;

  *out_resolved = false;
  /* accounts(accountid=<guid>) is the primary key written as a key */
  if (q->nkey == 1 && ti->key_name && !strcmp(q->key[0].name, ti->key_name) &&
      q->key[0].canon_len == 37) {
    q->id = q->key[0].canon + 1;
    *out_resolved = true;
    return APP_OK;
  }
  for (i = 0; i < q->nkey; i++)
    cols[i] = q->key[i].name;
  if (map_altkey(api->map, table, cols, q->nkey, &ak) != APP_OK) {
    odata_error_set(&e, 400, ODATA_CODE_SYNTAX,
                    "No alternate key of table '%s' is made of the columns given (%s%s); declare "
                    "it in the mapping file (tables.%s.keys, docs/mapping.md)",
                    table, q->key[0].name, q->nkey > 1 ? ", ..." : "", table);
    return answer_error(a, res, &e);
  }
  for (i = 0; i < q->nkey; i++)
    if (!strcmp(q->key[i].name, ak->props[0]))
      first = &q->key[i];
  if (!first)
    return APP_ERR_LIMIT; /* map_altkey matched every column */
  buf_init(&key, 0);
  r = altkey_index_key(&key, api->prefix, table, ak->name, first->canon, first->canon_len);
  if (r == APP_OK)
    r = redis_read_set(api->mux, a, key.data, key.len, READAPI_MAX_KEY_CANDIDATES, deadline, &ids,
                       &n, &err);
  else
    app_err_set(&err, r, "alternate key: cannot build the index key");
  buf_cleanup(&key);
  if (r != APP_OK)
    return read_failed(a, res, r, &err);
  refs = arena_alloc(a, (n ? n : 1) * sizeof *refs);
  recs = arena_alloc(a, (n ? n : 1) * sizeof *recs);
  if (!refs || !recs)
    return APP_ERR_LIMIT;
  for (i = 0, k = 0; i < n; i++) {
    if (!odata_is_guid(ids[i], strlen(ids[i])))
      continue; /* not an id the sink writes: ignored */
    refs[k].table = table;
    refs[k].id = ids[i];
    refs[k].entity_set = ti->entity_set;
    k++;
  }
  n = k;
  if (n) {
    r = redis_read_records(api->mux, api->prefix, a, refs, n, deadline, recs, &err);
    if (r != APP_OK)
      return read_failed(a, res, r, &err);
  }
  for (i = 0; i < n; i++) {
    bool match = recs[i].state == RREC_LIVE;
    for (k = 0; match && k < q->nkey; k++) {
      const struct redis_read_prop *p = find_prop(&recs[i], q->key[k].name);
      const char *c;
      size_t cl;
      match = p && altkey_canon_json(a, p->json, p->json_len, &c, &cl) &&
              cl == q->key[k].canon_len && !memcmp(c, q->key[k].canon, cl);
    }
    if (match) {
      nfound++;
      found = refs[i].id;
    }
  }
  if (nfound == 0) {
    odata_error_set(&e, 404, ODATA_CODE_NOT_FOUND,
                    "A record with the specified key values does not exist in %s entity", table);
    return answer_error(a, res, &e);
  }
  if (nfound > 1) {
    odata_error_set(&e, 409, ODATA_CODE_DUPLICATE_KEY,
                    "More than one record of %s has the values of key %s in the replica (%zu "
                    "records); Dataverse keeps key values unique, so a change that moves the key "
                    "has not reached the replica yet. Retry later or read by id.",
                    table, ak->name, nfound);
    return answer_error(a, res, &e);
  }
  q->id = found;
  *out_resolved = true;
  return APP_OK;
}

/* GET <set>?$filter=<col> eq <v>[ and ...][&$select][&$orderby][&$top][&$count=true]
 * [&$skiptoken], Prefer: odata.maxpagesize=n. Served from an index the
 * mapping declares (tables.<t>.indexes or a single-column key): one round
 * trip for the index set, one pipelined for the candidate records; every
 * candidate is checked against every condition (the index is a superset,
 * altkey.h) and passes the mapping. Never a scan. */
static enum app_result read_list(struct readapi *api, struct arena *a,
                                 const struct odata_request *q, const char *table,
                                 const struct map_table_info *ti, int64_t deadline,
                                 struct readapi_response *res)
{
  const struct doc_altkey *ix = NULL;
  const struct odata_cond *used = NULL;
  const char **ids = NULL;
  struct doc_related *refs;
  struct redis_record *recs;
  struct list_row *rows, after;
  size_t lo, loaded;
  bool keyorder;
  const struct redis_record *oldest = NULL;
  struct odata_error e;
  struct app_err err;
  struct buf key;
  size_t i, k, n = 0, nrows = 0, first = 0, page, shown;
  bool known_all;
  enum app_result r;

  for (i = 0; i < q->nfilter && !ix; i++) {
    const char *col = q->filter[i].prop;
    size_t l = strlen(col);
    if (l > 7 && col[0] == '_' && !strcmp(col + l - 6, "_value")) {
      char *c = arena_strndup(a, col + 1, l - 7);
      if (!c)
        return APP_ERR_LIMIT;
      col = c;
    }
    if (map_index(api->map, table, col, &ix) == APP_OK)
      used = &q->filter[i];
  }
  if (!ix) {
    odata_error_set(&e, 400, ODATA_CODE_SYNTAX,
                    "The $filter column '%s' has no index in this replica, which never scans the "
                    "whole store; declare it in the mapping file (tables.%s.indexes: [\"%s\"], "
                    "docs/mapping.md; a lookup by its column name)",
                    q->filter[0].prop, table, q->filter[0].prop);
    return answer_error(a, res, &e);
  }
  if (q->orderby) {
    const char *name = q->orderby;
    bool known = true;
    r = schema_known(api->schema, api->pool, table, &name, 1, &known, deadline, &err);
    if (r != APP_OK)
      return read_failed(a, res, r, &err);
    if (!known && strcmp(q->orderby, ti->key_name) != 0) {
      odata_error_set(&e, 400, ODATA_CODE_PROPERTY,
                      "Could not find a property named '%s' on type 'Microsoft.Dynamics.CRM.%s'.",
                      q->orderby, table);
      return answer_error(a, res, &e);
    }
  }
  if (q->skiptoken && !parse_token(a, q->skiptoken, &after)) {
    odata_error_set(&e, 400, ODATA_CODE_SYNTAX, "Invalid $skiptoken");
    return answer_error(a, res, &e);
  }
  buf_init(&key, 0);
  r = altkey_set_key(&key, api->prefix, table, ix, used->canon, used->canon_len);
  if (r == APP_OK)
    r = redis_read_set(api->mux, a, key.data, key.len, READAPI_MAX_LIST_CANDIDATES + 1, deadline,
                       &ids, &n, &err);
  else
    app_err_set(&err, r, "list: cannot build the index key");
  buf_cleanup(&key);
  if (r != APP_OK)
    return read_failed(a, res, r, &err);
  if (n > READAPI_MAX_LIST_CANDIDATES) {
    odata_error_set(&e, 400, ODATA_CODE_SYNTAX,
                    "More than %d records of %s have %s in this replica's index; narrow the "
                    "$filter with an indexed column",
                    READAPI_MAX_LIST_CANDIDATES, table, used->prop);
    return answer_error(a, res, &e);
  }
  refs = arena_alloc(a, (n ? n : 1) * sizeof *refs);
  recs = arena_alloc(a, (n ? n : 1) * sizeof *recs);
  rows = arena_alloc(a, (n ? n : 1) * sizeof *rows);
  if (!refs || !recs || !rows)
    return APP_ERR_LIMIT;
  for (i = 0, k = 0; i < n; i++) {
    if (!odata_is_guid(ids[i], strlen(ids[i])))
      continue;
    refs[k].table = table;
    refs[k].id = ids[i];
    refs[k].entity_set = ti->entity_set;
    k++;
  }
  n = k;
  page = q->top ? (size_t)q->top : q->maxpagesize ? (size_t)q->maxpagesize : ODATA_MAX_TOP;
  /* in key order without $count, the page is the first candidates in key
   * order that pass: read page + 1 of them (the one more tells whether a
   * next page exists), more only when some do not pass */
  keyorder = !q->count && (!q->orderby || !strcmp(q->orderby, ti->key_name));
  if (keyorder) {
    sort_desc = q->orderby_desc;
    qsort(refs, n, sizeof *refs, cmp_ref_ids);
    if (q->skiptoken) {
      size_t f = 0;
      while (f < n &&
             (sort_desc ? -strcmp(refs[f].id, after.id) : strcmp(refs[f].id, after.id)) <= 0)
        f++;
      refs += f;
      n -= f;
    }
  }
  loaded = keyorder && n > page + 1 ? page + 1 : n;
  for (lo = 0; lo < loaded;) {
    r = redis_read_records(api->mux, api->prefix, a, refs + lo, loaded - lo, deadline, recs + lo,
                           &err);
    if (r != APP_OK)
      return read_failed(a, res, r, &err);
    for (i = lo; i < loaded; i++) {
      bool match = recs[i].state == RREC_LIVE;
      for (k = 0; match && k < q->nfilter; k++) {
        const struct redis_read_prop *p = find_prop(&recs[i], q->filter[k].prop);
        const char *c;
        size_t cl;
        match = p && altkey_canon_json(a, p->json, p->json_len, &c, &cl) &&
                cl == q->filter[k].canon_len && !memcmp(c, q->filter[k].canon, cl);
      }
      if (!match)
        continue;
      rows[nrows].rec = &recs[i];
      rows[nrows].id = refs[i].id;
      rows[nrows].sort = NULL;
      rows[nrows].sort_len = 0;
      if (q->orderby) {
        const struct redis_read_prop *p = find_prop(&recs[i], q->orderby);
        if (!strcmp(q->orderby, ti->key_name)) {
          rows[nrows].sort = NULL;
        } else if (p && !altkey_canon_json(a, p->json, p->json_len, &rows[nrows].sort,
                                           &rows[nrows].sort_len)) {
          /* dates, booleans: ordered by their JSON text */
          rows[nrows].sort = p->json_len == 4 && !memcmp(p->json, "null", 4) ? NULL : p->json;
          rows[nrows].sort_len = p->json_len;
        }
      }
      nrows++;
    }
    lo = loaded;
    if (keyorder && nrows <= page && loaded < n) {
      size_t more = 2 * (page + 1 - nrows) + 8;
      loaded = loaded + more < n ? loaded + more : n;
    }
  }
  n = loaded;
  sort_desc = q->orderby_desc;
  if (nrows > 1)
    qsort(rows, nrows, sizeof *rows, cmp_rows);
  if (q->skiptoken)
    while (first < nrows && cmp_rows(&rows[first], &after) <= 0)
      first++;
  shown = nrows - first < page ? nrows - first : page;
  r = check_select(api, a, q, table, ti->key_name, recs, n, deadline, &known_all, &e, &err);
  if (r != APP_OK)
    return read_failed(a, res, r, &err);
  if (!known_all)
    return answer_error(a, res, &e);

  res->status = 200;
  add_header(a, res, "OData-Version", "4.0");
  if (q->maxpagesize || q->preference_applied) {
    size_t cap = 64 + (q->preference_applied ? strlen(q->preference_applied) : 0);
    char *pa = arena_alloc(a, cap);
    int plen = 0;
    if (!pa)
      return APP_ERR_LIMIT;
    pa[0] = '\0';
    if (q->maxpagesize)
      plen = snprintf(pa, cap, "odata.maxpagesize=%ld", q->maxpagesize);
    if (q->preference_applied && plen >= 0 && (size_t)plen < cap)
      snprintf(pa + plen, cap - (size_t)plen, "%s%s", plen ? "," : "", q->preference_applied);
    add_header(a, res, "Preference-Applied", pa);
  }
  for (i = first; i < first + shown; i++)
    if (!oldest || (rows[i].rec->op_time_ms && rows[i].rec->op_time_ms < oldest->op_time_ms))
      oldest = rows[i].rec;
  if (oldest)
    freshness(a, res, oldest);
  APP_RETURN_IF_FAILED(
      odata_render_list_open(q, ti->entity_set, q->count ? (long)nrows : -1, &res->body));
  for (i = first; i < first + shown; i++) {
    const struct odata_prop *props = props_view(a, rows[i].rec);
    if (!props)
      return APP_ERR_LIMIT;
    if (i > first)
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, ','));
    APP_RETURN_IF_FAILED(odata_render_record(q, ti->entity_set, ti->key_name, rows[i].id,
                                             rows[i].rec->version_text, props, rows[i].rec->nprops,
                                             false, &res->body));
  }
  {
    const char *next = NULL;
    if (!q->top && first + shown < nrows) {
      next = make_token(a, &rows[first + shown - 1]);
      if (!next)
        return APP_ERR_LIMIT;
    }
    return odata_render_list_close(q, ti->entity_set, next, &res->body);
  }
}

enum app_result readapi_handle(struct readapi *api, struct arena *a,
                               const struct readapi_request *req, size_t max_bytes,
                               struct readapi_response *res)
{
  struct odata_request q;
  struct odata_error e;
  struct app_err err;
  struct map_table_info ti;
  char table[MAP_MAX_NAME + 1];
  int64_t deadline = sink_now_ms() + api->timeout_ms;
  enum app_result r;

  memset(res, 0, sizeof *res);
  buf_init(&res->body, max_bytes);
  res->status = 500;
  metrics_add(M_READS, 1);
  if (odata_parse(a, req->method, req->path, req->query, req->prefer, req->if_none_match,
                  req->base_url, &q, &e) != APP_OK)
    return answer_error(a, res, &e);
  if (map_table_for_entity_set(api->map, q.entity_set, table, sizeof table) != APP_OK) {
    odata_error_set(&e, 404, ODATA_CODE_SEGMENT, "Resource not found for the segment '%s'.",
                    q.entity_set);
    return answer_error(a, res, &e);
  }
  if (map_table_info(api->map, a, table, &ti, &err) != APP_OK) {
    char cid[LOG_CID_SIZE];
    log_new_correlation_id(cid);
    LOG_ERROR("read API: table %s, correlation id %s: %s", table, cid, err.msg);
    odata_error_set(&e, 500, ODATA_CODE_SYNTAX, "Internal error. Correlation id %s.", cid);
    snprintf(e.correlation_id, sizeof e.correlation_id, "%s", cid);
    return answer_error(a, res, &e);
  }
  if (q.key) {
    bool resolved = false;
    r = resolve_altkey(api, a, &q, table, &ti, deadline, res, &resolved);
    if (r != APP_OK || !resolved) {
      if (r != APP_OK) {
        res->nheaders = 0;
        odata_error_set(&e, 500, ODATA_CODE_SYNTAX, "The answer is larger than allowed");
        return answer_error(a, res, &e);
      }
      return APP_OK;
    }
  }
  if (q.kind == ODATA_LIST)
    r = read_list(api, a, &q, table, &ti, deadline, res);
  else
    r = q.kind == ODATA_RECORD ? read_record(api, a, &q, table, &ti, deadline, res)
                               : read_nav(api, a, &q, table, &ti, deadline, res);
  if (r != APP_OK) {
    res->nheaders = 0;
    odata_error_set(&e, 500, ODATA_CODE_SYNTAX, "The answer is larger than allowed");
    return answer_error(a, res, &e);
  }
  return APP_OK;
}

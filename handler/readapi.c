/* readapi.c - Web API-shaped reads over the Redis replica. */
#include "readapi.h"

#include "log.h"
#include "metrics.h"
#include "odata.h"
#include "redis_read.h"
#include "sink.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

struct readapi {
  const struct app_config *cfg;
  const struct map_config *map;
  struct redis_sink *redis;
  struct schema *schema;
};

/* Reads give up quickly: an app would rather retry than hang. */
#define READAPI_DEADLINE_MS 5000

struct readapi *readapi_create(const struct app_config *cfg, const struct map_config *map,
                               struct redis_sink *redis, struct schema *schema)
{
  struct readapi *api = xcalloc(1, sizeof *api);
  api->cfg = cfg;
  api->map = map;
  api->redis = redis;
  api->schema = schema;
  return api;
}

void readapi_destroy(struct readapi *api)
{
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

static void freshness(struct arena *a, struct readapi_response *res, int64_t op_time_ms,
                      const char *version_text)
{
  char tmp[32];
  if (op_time_ms > 0) {
    int64_t age = wall_ms() - op_time_ms;
    snprintf(tmp, sizeof tmp, "%lld", (long long)(age > 0 ? age : 0));
    add_header(a, res, "x-cdc-freshness-ms", tmp);
  }
  if (version_text && *version_text)
    add_header(a, res, "x-cdc-version", version_text);
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

static enum app_result unavailable(struct arena *a, struct readapi_response *res,
                                   const struct app_err *err)
{
  struct odata_error e;
  LOG_WARN("read API: Redis unavailable: %s", err->msg);
  odata_error_set(&e, 503, ODATA_CODE_UNAVAILABLE, "The replica store is unavailable: %s",
                  err->msg);
  add_header(a, res, "Retry-After", "1");
  return answer_error(a, res, &e);
}

/* $select names the record lacks must be known columns of the table. */
static enum app_result check_select(struct readapi *api, struct arena *a,
                                    const struct odata_request *q, const char *table,
                                    const char *key_name, const struct redis_record *rec,
                                    int64_t deadline, struct odata_error *e, struct app_err *err)
{
  const char **missing;
  bool *known;
  size_t i, k, nmissing = 0;

  if (!q->select)
    return APP_OK;
  missing = arena_alloc(a, q->nselect * sizeof *missing);
  known = arena_alloc(a, q->nselect * sizeof *known);
  if (!missing || !known)
    return app_err_set(err, APP_ERR_LIMIT, "out of request memory");
  for (i = 0; i < q->nselect; i++) {
    bool have = key_name && !strcmp(q->select[i], key_name);
    for (k = 0; rec && k < rec->nprops && !have; k++)
      have = !strcmp(rec->props[k].name, q->select[i]);
    if (!have)
      missing[nmissing++] = q->select[i];
  }
  if (!nmissing)
    return APP_OK;
  APP_RETURN_IF_FAILED(schema_known(api->schema, table, missing, nmissing, known, deadline, err));
  for (i = 0; i < nmissing; i++)
    if (!known[i])
      return odata_error_set(e, 400, ODATA_CODE_SYNTAX,
                             "Could not find a property named '%s' on type "
                             "'Microsoft.Dynamics.CRM.%s'.",
                             missing[i], table);
  return APP_OK;
}

static enum app_result read_record(struct readapi *api, struct arena *a,
                                   const struct odata_request *q, const char *table,
                                   const struct map_table_info *ti, struct readapi_response *res)
{
  struct redis_record rec;
  struct odata_error e;
  struct app_err err;
  int64_t deadline = sink_now_ms() + READAPI_DEADLINE_MS;
  const struct odata_prop *props;
  char etag[CDC_VERSION_TEXT_LEN + 8];
  enum app_result r;

  r = redis_read_record(redis_sink_pool(api->redis), redis_sink_prefix(api->redis), a, table,
                        q->id, deadline, &rec, &err);
  if (r == APP_ERR_INPUT) {
    odata_error_set(&e, 400, ODATA_CODE_SYNTAX, "Bad Request - %s", err.msg);
    return answer_error(a, res, &e);
  }
  if (r == APP_ERR_LIMIT) {
    odata_error_set(&e, 500, ODATA_CODE_SYNTAX, "The record is too large to serve: %s", err.msg);
    return answer_error(a, res, &e);
  }
  if (r != APP_OK)
    return unavailable(a, res, &err);
  if (rec.state != RREC_LIVE) {
    if (rec.state == RREC_DELETED)
      freshness(a, res, rec.op_time_ms, rec.version_text);
    odata_error_set(&e, 404, ODATA_CODE_NOT_FOUND, "%s With Id = %s Does Not Exist", table, q->id);
    return answer_error(a, res, &e);
  }
  snprintf(etag, sizeof etag, "W/\"%s\"", rec.version_text);
  freshness(a, res, rec.op_time_ms, rec.version_text);
  if (rec.needs_reread)
    add_header(a, res, "x-cdc-needs-reread", "true");
  if (odata_etag_matches(q, rec.version_text)) {
    res->status = 304;
    add_header(a, res, "ETag", etag);
    metrics_add(M_READS_NOT_MODIFIED, 1);
    return APP_OK;
  }
  e.status = 0;
  r = check_select(api, a, q, table, ti->key_name, &rec, deadline, &e, &err);
  if (r == APP_ERR_INPUT && e.status)
    return answer_error(a, res, &e);
  if (r != APP_OK)
    return unavailable(a, res, &err);
  props = props_view(a, &rec);
  if (!props)
    return APP_ERR_LIMIT;
  res->status = 200;
  add_header(a, res, "ETag", etag);
  add_header(a, res, "OData-Version", "4.0");
  if (q->preference_applied)
    add_header(a, res, "Preference-Applied", q->preference_applied);
  return odata_render_record(q, ti->entity_set, ti->key_name, q->id, rec.version_text, props,
                             rec.nprops, true, &res->body);
}

static enum app_result read_related(struct readapi *api, struct arena *a,
                                    const struct odata_request *q, const char *table,
                                    struct readapi_response *res)
{
  struct doc_related *members = NULL;
  struct redis_record *recs = NULL;
  size_t n = 0, i;
  struct odata_error e;
  struct app_err err;
  int64_t deadline = sink_now_ms() + READAPI_DEADLINE_MS;
  const char *item_set = NULL;
  enum app_result r;

  r = redis_read_related(redis_sink_pool(api->redis), redis_sink_prefix(api->redis), a, table,
                         q->id, q->navigation, deadline, &members, &n, &err);
  if (r == APP_ERR_INPUT) {
    odata_error_set(&e, 400, ODATA_CODE_SYNTAX, "Bad Request - %s", err.msg);
    return answer_error(a, res, &e);
  }
  if (r != APP_OK)
    return unavailable(a, res, &err);
  if (n) {
    recs = arena_alloc(a, n * sizeof *recs);
    if (!recs)
      return APP_ERR_LIMIT;
    r = redis_read_records(redis_sink_pool(api->redis), redis_sink_prefix(api->redis), a, members,
                           n, deadline, recs, &err);
    if (r != APP_OK)
      return unavailable(a, res, &err);
    item_set = members[0].entity_set;
    for (i = 1; i < n; i++)
      if (strcmp(members[i].table, members[0].table) != 0)
        item_set = NULL;
  }
  res->status = 200;
  add_header(a, res, "OData-Version", "4.0");
  if (q->preference_applied)
    add_header(a, res, "Preference-Applied", q->preference_applied);
  APP_RETURN_IF_FAILED(odata_render_list_begin(q, item_set ? item_set : q->navigation, &res->body));
  for (i = 0; i < n; i++) {
    struct map_table_info ti;
    const struct odata_prop *props;
    if (i)
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, ','));
    if (map_table_info(api->map, a, members[i].table, &ti, &err) != APP_OK)
      return APP_ERR_LIMIT;
    if (recs[i].state != RREC_LIVE) {
      /* related, but the replica holds no row for it (not replicated, or
       * deleted): the key alone tells the app which record it is */
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, '{'));
      APP_RETURN_IF_FAILED(buf_append_json_str(&res->body, ti.key_name, strlen(ti.key_name)));
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, ':'));
      APP_RETURN_IF_FAILED(
          buf_append_json_str(&res->body, members[i].id, strlen(members[i].id)));
      APP_RETURN_IF_FAILED(buf_append_char(&res->body, '}'));
      continue;
    }
    props = props_view(a, &recs[i]);
    if (!props)
      return APP_ERR_LIMIT;
    APP_RETURN_IF_FAILED(odata_render_record(q, ti.entity_set, ti.key_name, members[i].id,
                                             recs[i].version_text, props, recs[i].nprops, false,
                                             &res->body));
  }
  return odata_render_list_end(&res->body);
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
  enum app_result r;

  memset(res, 0, sizeof *res);
  buf_init(&res->body, max_bytes);
  res->status = 500;
  metrics_add(M_READS, 1);
  if (odata_parse(a, req->method, req->path, req->query, req->prefer, req->if_none_match,
                  req->base_url, &q, &e) != APP_OK)
    return answer_error(a, res, &e);
  if (map_table_for_entity_set(api->map, q.entity_set, table, sizeof table) != APP_OK) {
    odata_error_set(&e, 404, ODATA_CODE_SYNTAX, "Resource not found for the segment '%s'.",
                    q.entity_set);
    return answer_error(a, res, &e);
  }
  if (map_table_info(api->map, a, table, &ti, &err) != APP_OK) {
    odata_error_set(&e, 500, ODATA_CODE_SYNTAX, "%s", err.msg);
    return answer_error(a, res, &e);
  }
  r = q.kind == ODATA_RECORD ? read_record(api, a, &q, table, &ti, res)
                             : read_related(api, a, &q, table, res);
  if (r != APP_OK) {
    odata_error_set(&e, 500, ODATA_CODE_SYNTAX, "the answer is larger than allowed");
    return answer_error(a, res, &e);
  }
  return APP_OK;
}

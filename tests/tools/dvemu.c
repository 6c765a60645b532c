/* dvemu.c - a Dataverse Web API emulator for tests: a real HTTP server
 * (libmicrohttpd) answering the requests the replica makes, the way
 * Microsoft Learn documents the Web API, and writing the Service Bus
 * messages Dataverse would send for every change made through it.
 *
 *   GET /api/data/v9.2/<set>[?$select=a,b][&$filter=<key> in ('id',..)]
 *        rows in id order, Prefer odata.maxpagesize=N (default 5000) pages
 *        with @odata.nextLink ($skiptoken); with Prefer odata.track-changes
 *        the last page has @odata.deltaLink ($deltatoken = the version when
 *        the first page was read); annotations (lookuplogicalname,
 *        FormattedValue) when Prefer odata.include-annotations="*"
 *   GET ...?$deltatoken=V  rows changed after V, and removed rows as
 *        {"@odata.context":".../$metadata#<set>/$deletedEntity","id":..,
 *        "reason":"deleted"}; 410 Gone when V has expired (_control expire)
 *   Authorization: Bearer <token>, checked with tokensvc's GET /_check when
 *        --tokensvc URL is given (401 with an OData error otherwise)
 *
 * Control (tests only, no token):
 *   POST /_records?table=T   body: JSON array of partial rows (key required);
 *        each is merged into the record (created when new) as one write:
 *        versionnumber = the next version, modifiedon = now (whole seconds);
 *        with --messages DIR a Create/Update message (Target: the written
 *        columns; post image: versionnumber) is written to DIR
 *   POST /_delete?table=T&id=G   removes a record (message: Delete); or a
 *        JSON array of ids as the body
 *   POST /_messages?dir=D   later messages go to D (without dir: none)
 *   GET /_records?table=T    every live record as a JSON array, sorted by id
 *   GET /_lines?table=T&cols=a,b   one "a|b" line per live record (strings as
 *        they are, null as "", numbers as JSON writes them), sorted by id
 *   POST /_control?mode=M[&count=N][&status=S][&retry_after=S][&ms=N]
 *        ok | throttle (S: 429 default or 503, Retry-After S seconds) |
 *        slow (wait ms) | malformed (a truncated JSON body) | error (500) |
 *        unauthorized (401) | expire (every delta token issued so far: 410)
 *        for the next count Web API requests (default 1)
 *   GET /_stats  {"requests":..,"pages":..,"rows":..,"throttled":..,
 *        "early":..,"unauthorized":..,"delta":..,"filter":..}; early counts
 *        Web API requests that arrived before a Retry-After had elapsed
 *
 * Options: --port N (0: any; printed on stdout), --base URL (what links
 *   start with; default http://127.0.0.1:PORT), --table logical:set:key
 *   (repeatable), --generate logical:N (N contacts-like rows, see gen_row),
 *   --messages DIR, --shuffle SEED (messages named in a random order),
 *   --dup-every N (every Nth message written twice), --no-post-image 1
 *   (messages without the versionnumber post image: only times order them),
 *   --tokensvc URL. */
#include "common/buf.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <microhttpd.h>

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct rec {
  char id[40];
  cJSON *row; /* NULL when deleted */
  uint64_t ver;
};

struct table {
  char name[64], set[64], key[64];
  struct rec *recs; /* sorted by id */
  size_t n, cap;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct table tables[16];
static size_t ntables;
static uint64_t version = 1000;
static uint64_t delta_floor; /* delta tokens below: 410 */
static char base[256];
static char msgdir_buf[512];
static const char *msgdir;
static unsigned shuffle_seed; /* 0: messages named in order */
static unsigned dup_every;    /* every Nth message written twice (0: never) */
static bool no_post_image;    /* messages without the versionnumber post image */
static const char *tokensvc;
static unsigned long msgseq;

static char mode[16] = "ok";
static int mode_count, mode_status = 429, mode_retry = 1, mode_ms;
static int64_t throttle_until_ms;
static long n_requests, n_pages, n_rows, n_throttled, n_early, n_unauth, n_delta, n_filter;

static int64_t now_ms(void)
{
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct table *table_by(const char *name, bool by_set)
{
  for (size_t i = 0; i < ntables; i++)
    if (!strcmp(by_set ? tables[i].set : tables[i].name, name))
      return &tables[i];
  return NULL;
}

static struct rec *rec_find(struct table *t, const char *id, bool create)
{
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(id, t->recs[mid].id);
    if (!c)
      return &t->recs[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  if (!create)
    return NULL;
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 1024;
    t->recs = realloc(t->recs, t->cap * sizeof *t->recs);
    if (!t->recs)
      abort();
  }
  memmove(&t->recs[lo + 1], &t->recs[lo], (t->n - lo) * sizeof *t->recs);
  memset(&t->recs[lo], 0, sizeof *t->recs);
  snprintf(t->recs[lo].id, sizeof t->recs[lo].id, "%s", id);
  t->n++;
  return &t->recs[lo];
}

static void iso(int64_t ms, char *out, size_t n)
{
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- messages (RemoteExecutionContext as the Service Bus body) ---------- */

#define CONTRACTS ":http://schemas.microsoft.com/xrm/2011/Contracts"

static bool is_iso(const char *s)
{
  return s && strlen(s) == 20 && s[4] == '-' && s[10] == 'T' && s[19] == 'Z';
}

static int64_t iso_ms(const char *s)
{
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (!strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return 0;
  return (int64_t)timegm(&tm) * 1000;
}

static cJSON *kv(const char *k, cJSON *v)
{
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "key", k);
  cJSON_AddItemToObject(o, "value", v);
  return o;
}

/* Target attributes for the written columns of row (names in cols) */
static void add_attrs(cJSON *attrs, cJSON *fvs, const cJSON *row, const cJSON *cols)
{
  const cJSON *c;
  cJSON_ArrayForEach(c, cols)
  {
    const char *name = c->string;
    size_t n = strlen(name);
    char buf[200];
    if (strchr(name, '@') || !strcmp(name, "versionnumber"))
      continue;
    if (n > 7 && name[0] == '_' && !strcmp(name + n - 6, "_value")) {
      char col[128];
      snprintf(col, sizeof col, "%.*s", (int)(n - 7), name + 1);
      if (cJSON_IsNull(c)) {
        cJSON_AddItemToArray(attrs, kv(col, cJSON_CreateNull()));
        continue;
      }
      cJSON *ref = cJSON_CreateObject();
      cJSON_AddStringToObject(ref, "__type", "EntityReference" CONTRACTS);
      cJSON_AddStringToObject(ref, "Id", c->valuestring);
      cJSON_AddItemToObject(ref, "KeyAttributes", cJSON_CreateArray());
      snprintf(buf, sizeof buf, "%s@Microsoft.Dynamics.CRM.lookuplogicalname", name);
      cJSON_AddStringToObject(ref, "LogicalName",
                              cJSON_GetStringValue(cJSON_GetObjectItem(row, buf)));
      snprintf(buf, sizeof buf, "%s@OData.Community.Display.V1.FormattedValue", name);
      const char *nm = cJSON_GetStringValue(cJSON_GetObjectItem(row, buf));
      if (nm)
        cJSON_AddStringToObject(ref, "Name", nm);
      else
        cJSON_AddNullToObject(ref, "Name");
      cJSON_AddNullToObject(ref, "RowVersion");
      cJSON_AddItemToArray(attrs, kv(col, ref));
      continue;
    }
    snprintf(buf, sizeof buf, "%s@OData.Community.Display.V1.FormattedValue", name);
    const char *fv = cJSON_GetStringValue(cJSON_GetObjectItem(row, buf));
    if (cJSON_IsString(c) && is_iso(c->valuestring)) {
      char d[64];
      snprintf(d, sizeof d, "/Date(%" PRId64 ")/", iso_ms(c->valuestring));
      cJSON_AddItemToArray(attrs, kv(name, cJSON_CreateString(d)));
    } else if (cJSON_IsNumber(c) && fv) {
      cJSON *os = cJSON_CreateObject();
      cJSON_AddStringToObject(os, "__type", "OptionSetValue" CONTRACTS);
      cJSON_AddNumberToObject(os, "Value", c->valuedouble);
      cJSON_AddItemToArray(attrs, kv(name, os));
    } else {
      cJSON_AddItemToArray(attrs, kv(name, cJSON_Duplicate(c, 1)));
    }
    if (fv)
      cJSON_AddItemToArray(fvs, kv(name, cJSON_CreateString(fv)));
  }
}

static void write_message(const struct table *t, const char *msg, const char *id, const cJSON *row,
                          const cJSON *cols, uint64_t ver, int64_t ms)
{
  char path[512], opid[40], d[64];
  cJSON *m, *target, *attrs, *fvs;
  char *text;
  FILE *f;
  if (!msgdir)
    return;
  msgseq++;
  snprintf(opid, sizeof opid, "%08lx-0000-4000-8000-%012" PRIx64, msgseq, ver);
  m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "BusinessUnitId", "8d3e2f1a-9c7b-ef11-8a6a-000d3a4b5c6d");
  cJSON_AddStringToObject(m, "CorrelationId", opid);
  cJSON_AddNumberToObject(m, "Depth", 1);
  cJSON_AddStringToObject(m, "InitiatingUserId", "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d");
  cJSON_AddStringToObject(m, "MessageName", msg);
  cJSON_AddNumberToObject(m, "Mode", 1);
  snprintf(d, sizeof d, "/Date(%" PRId64 "+0000)/", ms);
  cJSON_AddStringToObject(m, "OperationCreatedOn", d);
  cJSON_AddStringToObject(m, "OperationId", opid);
  cJSON_AddStringToObject(m, "OrganizationId", "c2a1f0e4-7b3d-4e8a-9f21-6d5b4c3a2e10");
  cJSON_AddStringToObject(m, "OrganizationName", "dvemu");
  cJSON_AddNullToObject(m, "ParentContext");
  cJSON_AddStringToObject(m, "PrimaryEntityId", id);
  cJSON_AddStringToObject(m, "PrimaryEntityName", t->name);
  cJSON_AddStringToObject(m, "RequestId", opid);
  cJSON_AddStringToObject(m, "SecondaryEntityName", "none");
  cJSON_AddNumberToObject(m, "Stage", 40);
  cJSON_AddStringToObject(m, "UserId", "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d");
  cJSON *in = cJSON_AddArrayToObject(m, "InputParameters");
  cJSON_AddArrayToObject(m, "OutputParameters");
  cJSON_AddArrayToObject(m, "PreEntityImages");
  cJSON *post = cJSON_AddArrayToObject(m, "PostEntityImages");
  if (!strcmp(msg, "Delete")) {
    target = cJSON_CreateObject();
    cJSON_AddStringToObject(target, "__type", "EntityReference" CONTRACTS);
    cJSON_AddStringToObject(target, "Id", id);
    cJSON_AddItemToObject(target, "KeyAttributes", cJSON_CreateArray());
    cJSON_AddStringToObject(target, "LogicalName", t->name);
    cJSON_AddNullToObject(target, "Name");
    cJSON_AddNullToObject(target, "RowVersion");
  } else {
    target = cJSON_CreateObject();
    cJSON_AddStringToObject(target, "__type", "Entity" CONTRACTS);
    attrs = cJSON_AddArrayToObject(target, "Attributes");
    fvs = cJSON_CreateArray();
    add_attrs(attrs, fvs, row, cols);
    cJSON_AddItemToArray(attrs, kv(t->key, cJSON_CreateString(id)));
    cJSON_AddNullToObject(target, "EntityState");
    cJSON_AddItemToObject(target, "FormattedValues", fvs);
    cJSON_AddStringToObject(target, "Id", id);
    cJSON_AddItemToObject(target, "KeyAttributes", cJSON_CreateArray());
    cJSON_AddStringToObject(target, "LogicalName", t->name);
    cJSON_AddItemToObject(target, "RelatedEntities", cJSON_CreateArray());
    cJSON_AddNullToObject(target, "RowVersion");
    /* post image with versionnumber (docs/d365-setup.md) */
    cJSON *img = no_post_image ? NULL : cJSON_CreateObject();
    if (img) {
      cJSON_AddStringToObject(img, "__type", "Entity" CONTRACTS);
      cJSON *ia = cJSON_AddArrayToObject(img, "Attributes");
      cJSON_AddItemToArray(ia, kv("versionnumber", cJSON_CreateNumber((double)ver)));
      cJSON_AddNullToObject(img, "EntityState");
      cJSON_AddItemToObject(img, "FormattedValues", cJSON_CreateArray());
      cJSON_AddStringToObject(img, "Id", id);
      cJSON_AddItemToObject(img, "KeyAttributes", cJSON_CreateArray());
      cJSON_AddStringToObject(img, "LogicalName", t->name);
      cJSON_AddItemToObject(img, "RelatedEntities", cJSON_CreateArray());
      cJSON_AddNullToObject(img, "RowVersion");
      cJSON_AddItemToArray(post, kv("PostImage", img));
    }
  }
  cJSON_AddItemToArray(in, kv("Target", target));
  text = cJSON_PrintUnformatted(m);
  for (int copy = 0; copy < (dup_every && msgseq % dup_every == 0 ? 2 : 1); copy++) {
    if (shuffle_seed)
      snprintf(path, sizeof path, "%s/%08x-m%08lu-%d.json", msgdir, (unsigned)rand_r(&shuffle_seed),
               msgseq, copy);
    else
      snprintf(path, sizeof path, "%s/m%08lu%s.json", msgdir, msgseq, copy ? "-dup" : "");
    f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
      fprintf(stderr, "dvemu: cannot write %s\n", path);
      exit(1);
    }
  }
  free(text);
  cJSON_Delete(m);
}

/* One write: merge cols into the record, new version, message. */
static void apply_write(struct table *t, const cJSON *cols, int64_t ms)
{
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(cols, t->key));
  struct rec *r;
  const cJSON *c;
  bool created;
  char when[32];
  if (!id)
    return;
  r = rec_find(t, id, true);
  if (!r->row && r->ver) /* deleted: Dataverse answers 404, nothing is written */
    return;
  created = r->row == NULL;
  if (created)
    r->row = cJSON_CreateObject();
  cJSON *written = cJSON_Duplicate(cols, 1);
  iso(ms, when, sizeof when);
  cJSON_DeleteItemFromObject(written, "modifiedon");
  cJSON_AddStringToObject(written, "modifiedon", when);
  cJSON_ArrayForEach(c, written)
  {
    /* a written column loses its old annotations (a lookup set to null has none) */
    if (!strchr(c->string, '@')) {
      size_t n = strlen(c->string);
      cJSON *o = r->row->child;
      while (o) {
        cJSON *nx = o->next;
        if (!strncmp(o->string, c->string, n) && o->string[n] == '@')
          cJSON_Delete(cJSON_DetachItemViaPointer(r->row, o));
        o = nx;
      }
    }
    cJSON_DeleteItemFromObject(r->row, c->string);
    cJSON_AddItemToObject(r->row, c->string, cJSON_Duplicate(c, 1));
  }
  r->ver = ++version;
  cJSON_DeleteItemFromObject(r->row, "versionnumber");
  cJSON_AddNumberToObject(r->row, "versionnumber", (double)r->ver);
  write_message(t, created ? "Create" : "Update", id, r->row, created ? r->row : written, r->ver,
                ms);
  cJSON_Delete(written);
}

static void apply_delete(struct table *t, const char *id, int64_t ms)
{
  struct rec *r = rec_find(t, id, false);
  if (!r || !r->row)
    return;
  cJSON_Delete(r->row);
  r->row = NULL;
  r->ver = ++version;
  write_message(t, "Delete", id, NULL, NULL, r->ver, ms);
}

/* contact-like rows: deterministic, every value kind the mapping handles */
static void gen_row(struct table *t, unsigned i, int64_t ms)
{
  char id[40], s[64];
  cJSON *o = cJSON_CreateObject();
  snprintf(id, sizeof id, "%08x-0000-4000-8000-%012x", i, i * 7919u);
  cJSON_AddStringToObject(o, t->key, id);
  snprintf(s, sizeof s, "First%u", i);
  cJSON_AddStringToObject(o, "firstname", s);
  snprintf(s, sizeof s, "Last \"%u\" \xc3\xa9", i);
  cJSON_AddStringToObject(o, "lastname", s);
  snprintf(s, sizeof s, "p%u@example.com", i);
  cJSON_AddStringToObject(o, "emailaddress1", s);
  cJSON_AddNumberToObject(o, "numberofchildren", i % 5);
  cJSON_AddBoolToObject(o, "donotemail", i % 3 == 0);
  cJSON_AddNumberToObject(o, "statecode", 0);
  cJSON_AddStringToObject(o, "statecode@OData.Community.Display.V1.FormattedValue", "Active");
  if (i % 4) {
    snprintf(s, sizeof s, "%08x-1111-4000-8000-000000000001", i % 50);
    cJSON_AddStringToObject(o, "_parentcustomerid_value", s);
    cJSON_AddStringToObject(o, "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname",
                            "account");
    snprintf(s, sizeof s, "Account %u", i % 50);
    cJSON_AddStringToObject(o, "_parentcustomerid_value@OData.Community.Display.V1.FormattedValue",
                            s);
  } else {
    cJSON_AddNullToObject(o, "_parentcustomerid_value");
  }
  apply_write(t, o, ms);
  cJSON_Delete(o);
}

/* ---- Web API ---------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body,
                              size_t len, const char *retry_after)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ret;
  MHD_add_response_header(r, "Content-Type", "application/json; odata.metadata=minimal");
  MHD_add_response_header(r, "OData-Version", "4.0");
  if (retry_after)
    MHD_add_response_header(r, "Retry-After", retry_after);
  ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result odata_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *msg, const char *retry_after)
{
  char b[512];
  int n = snprintf(b, sizeof b, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
  return answer(c, status, b, (size_t)n, retry_after);
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
  (void)p;
  (void)u;
  return s * n;
}

static bool token_ok(struct MHD_Connection *c)
{
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  char url[300], hdr[4200];
  long status = 0;
  if (!h || strncmp(h, "Bearer ", 7) != 0 || strlen(h) > 4096)
    return false;
  if (!tokensvc)
    return true;
  CURL *e = curl_easy_init();
  struct curl_slist *l;
  snprintf(url, sizeof url, "%s/_check", tokensvc);
  snprintf(hdr, sizeof hdr, "Authorization: %s", h);
  l = curl_slist_append(NULL, hdr);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  if (curl_easy_perform(e) == CURLE_OK)
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(l);
  curl_easy_cleanup(e);
  return status == 200;
}

static bool selected(const char *name, const char *select)
{
  const char *p = select;
  size_t n;
  const char *at = strchr(name, '@');
  n = at ? (size_t)(at - name) : strlen(name);
  if (!select || !*select)
    return true;
  while (p && *p) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == n && !strncmp(p, name, n))
      return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

static void add_row(struct buf *b, const struct table *t, const struct rec *r, const char *select,
                    bool ann, bool *first)
{
  cJSON *o = cJSON_CreateObject();
  const cJSON *c;
  char etag[40];
  snprintf(etag, sizeof etag, "W/\"%" PRIu64 "\"", r->ver);
  cJSON_AddStringToObject(o, "@odata.etag", etag);
  cJSON_ArrayForEach(c, r->row)
  {
    if (strcmp(c->string, t->key) && !selected(c->string, select))
      continue;
    if (!ann && strchr(c->string, '@'))
      continue;
    cJSON_AddItemToObject(o, c->string, cJSON_Duplicate(c, 1));
  }
  char *s = cJSON_PrintUnformatted(o);
  if ((!*first && buf_append_char(b, ',') != APP_OK) || buf_append_str(b, s) != APP_OK)
    abort();
  *first = false;
  free(s);
  cJSON_Delete(o);
  n_rows++;
}

/* ids of "<key> in ('a','b')" or "<key> eq 'a'" */
static size_t filter_ids(const char *f, const char *key, char ids[][40], size_t max)
{
  size_t n = 0, kl = strlen(key);
  const char *p;
  if (strncmp(f, key, kl) != 0)
    return (size_t)-1;
  p = f + kl;
  while (*p == ' ')
    p++;
  if (strncmp(p, "in", 2) && strncmp(p, "eq", 2))
    return (size_t)-1;
  for (p += 2; *p && n < max; p++) {
    if (*p == '\'') {
      const char *e = strchr(p + 1, '\'');
      if (!e || e - p - 1 >= 40)
        return (size_t)-1;
      snprintf(ids[n], 40, "%.*s", (int)(e - p - 1), p + 1);
      for (char *q = ids[n]; *q; q++)
        *q = (char)tolower((unsigned char)*q);
      n++;
      p = e;
    }
  }
  return n;
}

static enum MHD_Result web_api(struct MHD_Connection *c, const char *set)
{
  const char *select = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "$select");
  const char *filter = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "$filter");
  const char *skip = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "$skiptoken");
  const char *delta = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "$deltatoken");
  const char *prefer = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Prefer");
  size_t pagesize = 5000;
  bool track = prefer && strstr(prefer, "odata.track-changes");
  bool ann = prefer && strstr(prefer, "odata.include-annotations");
  struct table *t;
  struct buf b;
  bool first = true;
  char m[16];
  int slow = 0;
  enum MHD_Result ret;
  char sel[1024] = "";

  if (prefer && strstr(prefer, "odata.maxpagesize="))
    pagesize = strtoul(strstr(prefer, "odata.maxpagesize=") + 18, NULL, 10);
  if (pagesize == 0 || pagesize > 5000)
    pagesize = 5000;
  if (select)
    snprintf(sel, sizeof sel, "%s", select);

  pthread_mutex_lock(&mu);
  n_requests++;
  if (now_ms() < throttle_until_ms)
    n_early++;
  snprintf(m, sizeof m, "%s", mode_count > 0 ? mode : "ok");
  if (mode_count > 0)
    mode_count--;
  if (!strcmp(m, "throttle")) {
    char ra[16];
    snprintf(ra, sizeof ra, "%d", mode_retry);
    n_throttled++;
    throttle_until_ms = now_ms() + mode_retry * 1000;
    pthread_mutex_unlock(&mu);
    return odata_error(c, (unsigned)mode_status, "0x80072322",
                       "Number of requests exceeded the limit of 6000 over time window of 300 "
                       "seconds.",
                       ra);
  }
  if (!strcmp(m, "error")) {
    pthread_mutex_unlock(&mu);
    return odata_error(c, 500, "0x80040216", "An unexpected error occurred.", NULL);
  }
  if (!strcmp(m, "unauthorized") || !token_ok(c)) {
    n_unauth++;
    pthread_mutex_unlock(&mu);
    return odata_error(c, 401, "0x80072560", "The user is not a member of the organization.", NULL);
  }
  if (!strcmp(m, "slow"))
    slow = mode_ms;
  t = table_by(set, true);
  if (!t) {
    pthread_mutex_unlock(&mu);
    return odata_error(c, 404, "0x8006088a", "Resource not found for the segment.", NULL);
  }
  buf_init(&b, 1u << 30);
  if (buf_printf(&b, "{\"@odata.context\":\"%s/api/data/v9.2/$metadata#%s\",\"value\":[", base,
                 t->set) != APP_OK)
    abort();
  if (delta) {
    uint64_t v = strtoull(delta, NULL, 10);
    n_delta++;
    if (v < delta_floor) {
      pthread_mutex_unlock(&mu);
      buf_cleanup(&b);
      return odata_error(c, 410, "0x80044352",
                         "The specified delta token has expired. Retrieve all records again.",
                         NULL);
    }
    for (size_t i = 0; i < t->n; i++) {
      const struct rec *r = &t->recs[i];
      if (r->ver <= v)
        continue;
      if (r->row)
        add_row(&b, t, r, sel, ann, &first);
      else if (buf_printf(&b,
                          "%s{\"@odata.context\":\"%s/api/data/v9.2/$metadata#%s/$deletedEntity\","
                          "\"id\":\"%s\",\"reason\":\"deleted\"}",
                          first ? "" : ",", base, t->set, r->id) == APP_OK)
        first = false;
    }
    if (buf_printf(&b,
                   "],\"@odata.deltaLink\":\"%s/api/data/v9.2/%s?%s%s%s$deltatoken=%" PRIu64 "\"}",
                   base, t->set, *sel ? "$select=" : "", sel, *sel ? "&" : "", version) != APP_OK)
      abort();
  } else if (filter) {
    char ids[100][40];
    size_t n = filter_ids(filter, t->key, ids, 100);
    n_filter++;
    if (n == (size_t)-1) {
      pthread_mutex_unlock(&mu);
      buf_cleanup(&b);
      return odata_error(c, 400, "0x80060888", "Invalid $filter (dvemu: <key> in (...) only).",
                         NULL);
    }
    for (size_t i = 0; i < n; i++) {
      const struct rec *r = rec_find(t, ids[i], false);
      if (r && r->row)
        add_row(&b, t, r, sel, ann, &first);
    }
    if (buf_append_str(&b, "]}") != APP_OK)
      abort();
  } else {
    /* $skiptoken = <last id>.<version when the snapshot started> */
    char after[40] = "";
    uint64_t start = version;
    size_t i, k = 0;
    if (skip) {
      const char *dot = strchr(skip, '.');
      if (!dot || dot - skip >= 40) {
        pthread_mutex_unlock(&mu);
        buf_cleanup(&b);
        return odata_error(c, 400, "0x80060888", "Invalid $skiptoken.", NULL);
      }
      snprintf(after, sizeof after, "%.*s", (int)(dot - skip), skip);
      start = strtoull(dot + 1, NULL, 10);
    }
    for (i = 0; i < t->n && k < pagesize; i++) {
      const struct rec *r = &t->recs[i];
      if (!r->row || strcmp(r->id, after) <= 0)
        continue;
      add_row(&b, t, r, sel, ann, &first);
      snprintf(after, sizeof after, "%s", r->id);
      k++;
    }
    while (i < t->n && !t->recs[i].row)
      i++;
    if (buf_append_char(&b, ']') != APP_OK)
      abort();
    if (i < t->n) {
      if (buf_printf(
              &b, ",\"@odata.nextLink\":\"%s/api/data/v9.2/%s?%s%s%s$skiptoken=%s.%" PRIu64 "\"",
              base, t->set, *sel ? "$select=" : "", sel, *sel ? "&" : "", after, start) != APP_OK)
        abort();
    } else if (track) {
      if (buf_printf(&b,
                     ",\"@odata.deltaLink\":\"%s/api/data/v9.2/%s?%s%s%s$deltatoken=%" PRIu64 "\"",
                     base, t->set, *sel ? "$select=" : "", sel, *sel ? "&" : "", start) != APP_OK)
        abort();
    }
    if (buf_append_char(&b, '}') != APP_OK)
      abort();
  }
  n_pages++;
  pthread_mutex_unlock(&mu);
  if (slow > 0)
    usleep((useconds_t)slow * 1000);
  if (!strcmp(m, "malformed"))
    b.len = b.len / 2;
  ret = answer(c, 200, b.data, b.len, NULL);
  buf_cleanup(&b);
  return ret;
}

/* ---- control ---------------------------------------------------------- */

struct req {
  struct buf body;
};

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *s)
{
  return answer(c, status, s, strlen(s), NULL);
}

static enum MHD_Result control(struct MHD_Connection *c, const char *method, const char *url,
                               struct req *rq)
{
  const char *tn = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "table");
  struct table *t = tn ? table_by(tn, false) : NULL;
  if (!strcmp(url, "/_stats")) {
    char b[512];
    pthread_mutex_lock(&mu);
    snprintf(b, sizeof b,
             "{\"requests\":%ld,\"pages\":%ld,\"rows\":%ld,\"throttled\":%ld,\"early\":%ld,"
             "\"unauthorized\":%ld,\"delta\":%ld,\"filter\":%ld,\"version\":%" PRIu64 "}\n",
             n_requests, n_pages, n_rows, n_throttled, n_early, n_unauth, n_delta, n_filter,
             version);
    pthread_mutex_unlock(&mu);
    return text(c, 200, b);
  }
  if (!strcmp(url, "/_control") && !strcmp(method, "POST")) {
    const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
    const char *n = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "count");
    const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
    const char *ra = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "retry_after");
    const char *ms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ms");
    pthread_mutex_lock(&mu);
    if (m && !strcmp(m, "expire")) {
      delta_floor = ++version; /* tokens issued from now on are valid */
    } else {
      snprintf(mode, sizeof mode, "%s", m ? m : "ok");
      mode_count = n ? atoi(n) : 1;
      mode_status = s ? atoi(s) : 429;
      mode_retry = ra ? atoi(ra) : 1;
      mode_ms = ms ? atoi(ms) : 0;
    }
    pthread_mutex_unlock(&mu);
    return text(c, 200, "{}\n");
  }
  if (!t && strcmp(url, "/_messages") != 0)
    return text(c, 404, "{\"error\":\"no such table\"}\n");
  if (!strcmp(url, "/_lines") && !strcmp(method, "GET")) {
    /* ?cols=a,b,c: one line per live record, "a|b|c", strings as they
     * are, null as "", numbers and booleans as JSON writes them (for
     * comparisons with SQL query output) */
    const char *cols = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cols");
    struct buf b;
    enum MHD_Result ret;
    buf_init(&b, 1u << 30);
    pthread_mutex_lock(&mu);
    for (size_t i = 0; cols && i < t->n; i++) {
      const char *p = cols;
      if (!t->recs[i].row)
        continue;
      while (p && *p) {
        const char *e = strchr(p, ',');
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->recs[i].row, name);
        if (cJSON_IsString(v)) {
          if (buf_append_str(&b, v->valuestring) != APP_OK)
            abort();
        } else if (v && !cJSON_IsNull(v)) {
          char *s = cJSON_PrintUnformatted(v);
          if (buf_append_str(&b, s) != APP_OK)
            abort();
          free(s);
        }
        p = e ? e + 1 : NULL;
        if (buf_append_char(&b, p ? '|' : '\n') != APP_OK)
          abort();
      }
    }
    pthread_mutex_unlock(&mu);
    ret = answer(c, 200, b.data ? b.data : "", b.len, NULL);
    buf_cleanup(&b);
    return ret;
  }
  if (!strcmp(url, "/_records") && !strcmp(method, "GET")) {
    struct buf b;
    bool first = true;
    enum MHD_Result ret;
    buf_init(&b, 1u << 30);
    pthread_mutex_lock(&mu);
    if (buf_append_char(&b, '[') != APP_OK)
      abort();
    for (size_t i = 0; i < t->n; i++) {
      if (!t->recs[i].row)
        continue;
      char *s = cJSON_PrintUnformatted(t->recs[i].row);
      if ((!first && buf_append_char(&b, ',') != APP_OK) || buf_append_str(&b, s) != APP_OK)
        abort();
      first = false;
      free(s);
    }
    pthread_mutex_unlock(&mu);
    if (buf_append_str(&b, "]\n") != APP_OK)
      abort();
    ret = answer(c, 200, b.data, b.len, NULL);
    buf_cleanup(&b);
    return ret;
  }
  if (!strcmp(url, "/_records") && !strcmp(method, "POST")) {
    cJSON *arr = cJSON_ParseWithLength(rq->body.data ? rq->body.data : "", rq->body.len);
    const cJSON *o;
    if (!cJSON_IsArray(arr)) {
      cJSON_Delete(arr);
      return text(c, 400, "{\"error\":\"expected a JSON array\"}\n");
    }
    pthread_mutex_lock(&mu);
    cJSON_ArrayForEach(o, arr)
    {
      /* at least 1 ms between writes: message times order them */
      static int64_t last;
      int64_t ms = now_ms();
      if (ms <= last)
        ms = last + 1;
      last = ms;
      apply_write(t, o, ms);
    }
    pthread_mutex_unlock(&mu);
    cJSON_Delete(arr);
    return text(c, 200, "{}\n");
  }
  if (!strcmp(url, "/_delete") && !strcmp(method, "POST")) {
    const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
    cJSON *arr =
        id ? NULL : cJSON_ParseWithLength(rq->body.data ? rq->body.data : "", rq->body.len);
    const cJSON *o;
    if (!id && !cJSON_IsArray(arr)) {
      cJSON_Delete(arr);
      return text(c, 400, "{\"error\":\"?id= or a JSON array of ids\"}\n");
    }
    pthread_mutex_lock(&mu);
    if (id)
      apply_delete(t, id, now_ms());
    cJSON_ArrayForEach(o, arr)
    {
      if (cJSON_IsString(o))
        apply_delete(t, o->valuestring, now_ms());
    }
    pthread_mutex_unlock(&mu);
    cJSON_Delete(arr);
    return text(c, 200, "{}\n");
  }
  if (!strcmp(url, "/_messages") && !strcmp(method, "POST")) {
    const char *d = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dir");
    pthread_mutex_lock(&mu);
    if (d) {
      snprintf(msgdir_buf, sizeof msgdir_buf, "%s", d);
      msgdir = msgdir_buf;
    } else
      msgdir = NULL;
    pthread_mutex_unlock(&mu);
    return text(c, 200, "{}\n");
  }
  return text(c, 404, "{\"error\":\"not found\"}\n");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *ver, const char *data, size_t *size,
                              void **con_cls)
{
  struct req *rq = *con_cls;
  static const char prefix[] = "/api/data/v9.2/";
  (void)cls;
  (void)ver;
  if (!rq) {
    rq = calloc(1, sizeof *rq);
    if (!rq)
      return MHD_NO;
    buf_init(&rq->body, 256u << 20);
    *con_cls = rq;
    return MHD_YES;
  }
  if (*size) {
    if (buf_append(&rq->body, data, *size) != APP_OK)
      return MHD_NO;
    *size = 0;
    return MHD_YES;
  }
  if (!strncmp(url, prefix, sizeof prefix - 1) && !strcmp(method, "GET"))
    return web_api(c, url + sizeof prefix - 1);
  if (url[0] == '/' && url[1] == '_')
    return control(c, method, url, rq);
  return odata_error(c, 404, "0x8006088a", "Resource not found.", NULL);
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
  struct req *rq = *con_cls;
  (void)cls;
  (void)c;
  (void)toe;
  if (rq) {
    buf_cleanup(&rq->body);
    free(rq);
  }
  *con_cls = NULL;
}

int main(int argc, char **argv)
{
  unsigned port = 0;
  struct MHD_Daemon *d;
  const char *gen[8];
  size_t ngen = 0;
  sigset_t ss;
  int sig;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fprintf(stderr, "dvemu: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--port"))
      port = (unsigned)atoi(v);
    else if (!strcmp(a, "--base"))
      snprintf(base, sizeof base, "%s", v);
    else if (!strcmp(a, "--messages"))
      msgdir = v;
    else if (!strcmp(a, "--shuffle"))
      shuffle_seed = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--no-post-image"))
      no_post_image = atoi(v) != 0;
    else if (!strcmp(a, "--dup-every"))
      dup_every = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--tokensvc"))
      tokensvc = v;
    else if (!strcmp(a, "--generate") && ngen < 8)
      gen[ngen++] = v;
    else if (!strcmp(a, "--table") && ntables < 16) {
      struct table *t = &tables[ntables++];
      if (sscanf(v, "%63[^:]:%63[^:]:%63s", t->name, t->set, t->key) != 3) {
        fprintf(stderr, "dvemu: --table logical:set:key\n");
        return 2;
      }
    } else {
      fprintf(stderr, "dvemu: unknown option %s\n", a);
      return 2;
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  sigemptyset(&ss);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGINT);
  pthread_sigmask(SIG_BLOCK, &ss, NULL);
  signal(SIGPIPE, SIG_IGN);
  for (size_t g = 0; g < ngen; g++) {
    char name[64];
    unsigned n;
    struct table *t;
    if (sscanf(gen[g], "%63[^:]:%u", name, &n) != 2 || !(t = table_by(name, false))) {
      fprintf(stderr, "dvemu: --generate <table>:<count> needs a --table first\n");
      return 2;
    }
    int64_t ms = now_ms() - (int64_t)n * 2;
    for (unsigned i = 0; i < n; i++)
      gen_row(t, i, ms + i);
  }
  d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                           MHD_USE_POLL,
                       (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED, done,
                       NULL, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "dvemu: cannot listen on port %u\n", port);
    return 1;
  }
  port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
  if (!base[0])
    snprintf(base, sizeof base, "http://127.0.0.1:%u", port);
  printf("%u\n", port);
  fflush(stdout);
  sigwait(&ss, &sig);
  MHD_stop_daemon(d);
  return 0;
}

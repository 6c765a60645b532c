/* opsmetrics.c - local deltas of the shared metrics, and their renderings. */
#include "common/opsmetrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Local table: open addressing on the field name. Fields are few (tables x
 * outcomes + a fixed set), and a flush empties it. */
#define OPSM_MAX_FIELDS 2048
#define OPSM_SLOTS      4096

static struct opsm_field slots[OPSM_SLOTS];
static size_t nused;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

const int64_t opsm_fresh_bounds[] = {100,  250,   500,   1000,  2000,   3000,
                                     5000, 10000, 30000, 60000, 300000, 3600000};
const size_t opsm_fresh_nbounds = sizeof opsm_fresh_bounds / sizeof opsm_fresh_bounds[0];

static const char *const outcome_names[OPS_OUTCOME_COUNT] = {[OPS_APPLIED] = "applied",
                                                             [OPS_STALE] = "stale",
                                                             [OPS_SKIPPED] = "skipped",
                                                             [OPS_POISON] = "poison",
                                                             [OPS_DEADLETTERED] = "deadlettered",
                                                             [OPS_REPLAYED] = "replayed",
                                                             [OPS_REPLAY_FAILED] = "replay_failed"};
static const char *const stage_names[OPS_STAGE_COUNT] = {"decode", "map", "write"};
static const char *const error_names[OPS_ERROR_COUNT] = {"redis_errors", "redis_retries",
                                                         "sql_errors", "sql_retries"};

const char *ops_outcome_name(enum ops_outcome o)
{
  return (unsigned)o < OPS_OUTCOME_COUNT ? outcome_names[o] : "?";
}

static uint32_t hash(const char *s)
{
  uint32_t h = 2166136261u;
  while (*s)
    h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

/* Add v to field name; the caller holds mu. */
static void add_locked(const char *name, int64_t v)
{
  uint32_t i = hash(name) & (OPSM_SLOTS - 1);
  while (slots[i].name[0]) {
    if (!strcmp(slots[i].name, name)) {
      slots[i].value += v;
      return;
    }
    i = (i + 1) & (OPSM_SLOTS - 1);
  }
  if (nused >= OPSM_MAX_FIELDS)
    return; /* the caller falls back to the unknown table; fixed fields fit */
  snprintf(slots[i].name, sizeof slots[i].name, "%s", name);
  slots[i].value = v;
  nused++;
}

static void add(const char *name, int64_t v)
{
  pthread_mutex_lock(&mu);
  add_locked(name, v);
  pthread_mutex_unlock(&mu);
}

static bool table_ok(const char *t)
{
  size_t n = 0;
  if (!t || !*t)
    return false;
  for (; t[n]; n++) {
    char c = t[n];
    if (n >= 128 ||
        !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

void opsm_count(const char *table, enum ops_outcome o, uint64_t n)
{
  char name[OPSM_FIELD_MAX];
  if (!n || (unsigned)o >= OPS_OUTCOME_COUNT)
    return;
  if (!table_ok(table))
    table = OPS_TABLE_UNKNOWN;
  snprintf(name, sizeof name, "c|%s|%s", table, outcome_names[o]);
  pthread_mutex_lock(&mu);
  if (nused >= OPSM_MAX_FIELDS - 64) /* keep room for the fixed fields */
    snprintf(name, sizeof name, "c|%s|%s", OPS_TABLE_UNKNOWN, outcome_names[o]);
  add_locked(name, (int64_t)n);
  pthread_mutex_unlock(&mu);
}

void opsm_freshness_ms(int64_t ms)
{
  char name[32];
  size_t i;
  if (ms < 0)
    ms = 0;
  for (i = 0; i < opsm_fresh_nbounds && ms > opsm_fresh_bounds[i]; i++)
    ;
  if (i < opsm_fresh_nbounds)
    snprintf(name, sizeof name, "f|%lld", (long long)opsm_fresh_bounds[i]);
  else
    snprintf(name, sizeof name, "f|inf");
  pthread_mutex_lock(&mu);
  add_locked(name, 1);
  add_locked("f|sum", ms);
  add_locked("f|n", 1);
  pthread_mutex_unlock(&mu);
}

void opsm_stage_us(enum ops_stage s, uint64_t us)
{
  char a[32], b[32];
  if ((unsigned)s >= OPS_STAGE_COUNT)
    return;
  snprintf(a, sizeof a, "t|%s|us", stage_names[s]);
  snprintf(b, sizeof b, "t|%s|n", stage_names[s]);
  pthread_mutex_lock(&mu);
  add_locked(a, (int64_t)us);
  add_locked(b, 1);
  pthread_mutex_unlock(&mu);
}

void opsm_error(enum ops_error e, uint64_t n)
{
  char name[32];
  if (!n || (unsigned)e >= OPS_ERROR_COUNT)
    return;
  snprintf(name, sizeof name, "e|%s", error_names[e]);
  add(name, (int64_t)n);
}

void opsm_take(struct opsm_field **out, size_t *n)
{
  size_t i, k = 0;
  struct opsm_field *f;
  pthread_mutex_lock(&mu);
  f = nused ? malloc(nused * sizeof *f) : NULL;
  if (f) {
    for (i = 0; i < OPSM_SLOTS; i++) {
      if (!slots[i].name[0])
        continue;
      if (slots[i].value)
        f[k++] = slots[i];
      slots[i].name[0] = '\0';
    }
    nused = 0;
  }
  pthread_mutex_unlock(&mu);
  *out = f;
  *n = k;
}

void opsm_restore(const struct opsm_field *f, size_t n)
{
  size_t i;
  pthread_mutex_lock(&mu);
  for (i = 0; i < n; i++)
    add_locked(f[i].name, f[i].value);
  pthread_mutex_unlock(&mu);
}

/* ---- rendering ---- */

static int64_t get(const struct opsm_field *f, size_t n, const char *name)
{
  size_t i;
  int64_t v = 0;
  for (i = 0; i < n; i++)
    if (!strcmp(f[i].name, name))
      v += f[i].value;
  return v;
}

/* Bucket counts in bound order, inf last; returns the total. */
static int64_t buckets(const struct opsm_field *f, size_t n, int64_t *b)
{
  char name[32];
  size_t i;
  int64_t total = 0;
  for (i = 0; i <= opsm_fresh_nbounds; i++) {
    if (i < opsm_fresh_nbounds)
      snprintf(name, sizeof name, "f|%lld", (long long)opsm_fresh_bounds[i]);
    else
      snprintf(name, sizeof name, "f|inf");
    b[i] = get(f, n, name);
    if (b[i] < 0)
      b[i] = 0;
    total += b[i];
  }
  return total;
}

double opsm_quantile(const struct opsm_field *f, size_t n, double q)
{
  int64_t b[64];
  int64_t total = buckets(f, n, b), seen = 0;
  double rank;
  size_t i;
  if (total <= 0)
    return -1;
  rank = q * (double)total;
  for (i = 0; i <= opsm_fresh_nbounds; i++) {
    double lo = i ? (double)opsm_fresh_bounds[i - 1] : 0;
    if (b[i] && (double)(seen + b[i]) >= rank) {
      double hi;
      if (i == opsm_fresh_nbounds)
        return lo;
      hi = (double)opsm_fresh_bounds[i];
      return lo + (hi - lo) * ((rank - (double)seen) / (double)b[i]);
    }
    seen += b[i];
  }
  return (double)opsm_fresh_bounds[opsm_fresh_nbounds - 1];
}

/* Split "c|<table>|<outcome>": table into t (NUL-terminated), outcome
 * index, or false. */
static bool split_count(const char *name, char *t, size_t tcap, int *outcome)
{
  const char *bar;
  int o;
  if (strncmp(name, "c|", 2))
    return false;
  bar = strrchr(name + 2, '|');
  if (!bar || (size_t)(bar - (name + 2)) >= tcap || bar == name + 2)
    return false;
  for (o = 0; o < OPS_OUTCOME_COUNT; o++)
    if (!strcmp(bar + 1, outcome_names[o]))
      break;
  if (o == OPS_OUTCOME_COUNT)
    return false;
  memcpy(t, name + 2, (size_t)(bar - (name + 2)));
  t[bar - (name + 2)] = '\0';
  *outcome = o;
  return true;
}

static int cmp_field(const void *a, const void *b)
{
  return strcmp(((const struct opsm_field *)a)->name, ((const struct opsm_field *)b)->name);
}

/* The c| fields sorted by name (so by table), malloc'd; *k gets the count. */
static struct opsm_field *sorted_counts(const struct opsm_field *f, size_t n, size_t *k)
{
  struct opsm_field *s = malloc((n ? n : 1) * sizeof *s);
  size_t i, m = 0;
  if (!s)
    return NULL;
  for (i = 0; i < n; i++)
    if (!strncmp(f[i].name, "c|", 2))
      s[m++] = f[i];
  qsort(s, m, sizeof *s, cmp_field);
  *k = m;
  return s;
}

static enum app_result json_num(struct buf *out, double v)
{
  if (v < 0)
    return buf_append_str(out, "null");
  return buf_printf(out, "%.1f", v);
}

enum app_result opsm_render_json(const struct opsm_field *f, size_t n, struct buf *out)
{
  struct opsm_field *s;
  size_t k = 0, i;
  int64_t totals[OPS_OUTCOME_COUNT] = {0}, b[64];
  char cur[OPSM_FIELD_MAX] = "";
  enum app_result r = APP_OK;
  bool first_table = true;

  s = sorted_counts(f, n, &k);
  if (!s)
    return APP_ERR_NOMEM;
  r = buf_append_str(out, "{\"tables\":{");
  for (i = 0; r == APP_OK && i < k; i++) {
    char t[OPSM_FIELD_MAX];
    int o;
    if (!split_count(s[i].name, t, sizeof t, &o))
      continue;
    totals[o] += s[i].value;
    if (strcmp(t, cur)) {
      r = buf_printf(out, "%s\"%s\":{", first_table ? "" : "},", t);
      snprintf(cur, sizeof cur, "%s", t);
      first_table = false;
    } else {
      r = buf_append_char(out, ',');
    }
    if (r == APP_OK)
      r = buf_printf(out, "\"%s\":%lld", outcome_names[o], (long long)s[i].value);
  }
  free(s);
  if (r == APP_OK && !first_table)
    r = buf_append_char(out, '}');
  if (r == APP_OK)
    r = buf_append_str(out, "},\"totals\":{");
  for (i = 0; r == APP_OK && i < OPS_OUTCOME_COUNT; i++)
    r = buf_printf(out, "%s\"%s\":%lld", i ? "," : "", outcome_names[i], (long long)totals[i]);
  if (r == APP_OK)
    r = buf_printf(out, "},\"freshness_ms\":{\"count\":%lld,\"sum\":%lld,\"p50\":",
                   (long long)get(f, n, "f|n"), (long long)get(f, n, "f|sum"));
  if (r == APP_OK)
    r = json_num(out, opsm_quantile(f, n, 0.50));
  if (r == APP_OK)
    r = buf_append_str(out, ",\"p95\":");
  if (r == APP_OK)
    r = json_num(out, opsm_quantile(f, n, 0.95));
  if (r == APP_OK)
    r = buf_append_str(out, ",\"p99\":");
  if (r == APP_OK)
    r = json_num(out, opsm_quantile(f, n, 0.99));
  if (r == APP_OK)
    r = buf_append_str(out, ",\"buckets\":{");
  buckets(f, n, b);
  for (i = 0; r == APP_OK && i <= opsm_fresh_nbounds; i++) {
    if (i < opsm_fresh_nbounds)
      r = buf_printf(out, "%s\"%lld\":%lld", i ? "," : "", (long long)opsm_fresh_bounds[i],
                     (long long)b[i]);
    else
      r = buf_printf(out, ",\"inf\":%lld", (long long)b[i]);
  }
  if (r == APP_OK)
    r = buf_append_str(out, "}},\"stages\":{");
  for (i = 0; r == APP_OK && i < OPS_STAGE_COUNT; i++) {
    char a[32], c[32];
    snprintf(a, sizeof a, "t|%s|n", stage_names[i]);
    snprintf(c, sizeof c, "t|%s|us", stage_names[i]);
    r = buf_printf(out, "%s\"%s\":{\"count\":%lld,\"total_us\":%lld}", i ? "," : "", stage_names[i],
                   (long long)get(f, n, a), (long long)get(f, n, c));
  }
  if (r == APP_OK)
    r = buf_append_str(out, "},\"errors\":{");
  for (i = 0; r == APP_OK && i < OPS_ERROR_COUNT; i++) {
    char a[32];
    snprintf(a, sizeof a, "e|%s", error_names[i]);
    r = buf_printf(out, "%s\"%s\":%lld", i ? "," : "", error_names[i], (long long)get(f, n, a));
  }
  if (r == APP_OK)
    r = buf_append_str(out, "}}");
  return r;
}

enum app_result opsm_render_prometheus(const struct opsm_field *f, size_t n, struct buf *out)
{
  struct opsm_field *s;
  size_t k = 0, i;
  int64_t b[64], cum = 0;
  enum app_result r;

  s = sorted_counts(f, n, &k);
  if (!s)
    return APP_ERR_NOMEM;
  r = buf_append_str(out, "# HELP d365cdc_changes_total Changes per table and outcome, all "
                          "instances\n# TYPE d365cdc_changes_total counter\n");
  for (i = 0; r == APP_OK && i < k; i++) {
    char t[OPSM_FIELD_MAX];
    int o;
    if (split_count(s[i].name, t, sizeof t, &o))
      r = buf_printf(out, "d365cdc_changes_total{table=\"%s\",outcome=\"%s\"} %lld\n", t,
                     outcome_names[o], (long long)s[i].value);
  }
  free(s);
  if (r == APP_OK)
    r = buf_append_str(out, "# HELP d365cdc_freshness_seconds D365 operation time to confirmed "
                            "write, all instances\n# TYPE d365cdc_freshness_seconds histogram\n");
  buckets(f, n, b);
  for (i = 0; r == APP_OK && i <= opsm_fresh_nbounds; i++) {
    cum += b[i];
    if (i < opsm_fresh_nbounds)
      r = buf_printf(out, "d365cdc_freshness_seconds_bucket{le=\"%g\"} %lld\n",
                     (double)opsm_fresh_bounds[i] / 1000.0, (long long)cum);
    else
      r = buf_printf(out, "d365cdc_freshness_seconds_bucket{le=\"+Inf\"} %lld\n", (long long)cum);
  }
  if (r == APP_OK)
    r = buf_printf(out,
                   "d365cdc_freshness_seconds_sum %.3f\nd365cdc_freshness_seconds_count %lld\n",
                   (double)get(f, n, "f|sum") / 1000.0, (long long)get(f, n, "f|n"));
  if (r == APP_OK)
    r = buf_append_str(out, "# HELP d365cdc_stage_seconds_total Time spent per stage, all "
                            "instances\n# TYPE d365cdc_stage_seconds_total counter\n");
  for (i = 0; r == APP_OK && i < OPS_STAGE_COUNT; i++) {
    char a[32];
    snprintf(a, sizeof a, "t|%s|us", stage_names[i]);
    r = buf_printf(out, "d365cdc_stage_seconds_total{stage=\"%s\"} %.6f\n", stage_names[i],
                   (double)get(f, n, a) / 1e6);
  }
  if (r == APP_OK)
    r = buf_append_str(out, "# HELP d365cdc_stage_runs_total Stage runs, all instances\n"
                            "# TYPE d365cdc_stage_runs_total counter\n");
  for (i = 0; r == APP_OK && i < OPS_STAGE_COUNT; i++) {
    char a[32];
    snprintf(a, sizeof a, "t|%s|n", stage_names[i]);
    r = buf_printf(out, "d365cdc_stage_runs_total{stage=\"%s\"} %lld\n", stage_names[i],
                   (long long)get(f, n, a));
  }
  if (r == APP_OK)
    r = buf_append_str(out, "# HELP d365cdc_store_events_total Store errors and retries, all "
                            "instances\n# TYPE d365cdc_store_events_total counter\n");
  for (i = 0; r == APP_OK && i < OPS_ERROR_COUNT; i++) {
    char a[32];
    const char *nm = error_names[i], *us = strchr(nm, '_');
    snprintf(a, sizeof a, "e|%s", nm);
    r = buf_printf(out, "d365cdc_store_events_total{store=\"%.*s\",kind=\"%s\"} %lld\n",
                   (int)(us - nm), nm, us + 1, (long long)get(f, n, a));
  }
  return r;
}

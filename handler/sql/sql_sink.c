/* sql_sink.c - the direct SQL sink: pool, schema, transaction, retries. */
#include "sql/sql_sink.h"

#include "common/arena.h"
#include "common/log.h"
#include "sql/sql_connstr.h"
#include "sql/sql_ddl.h"
#include "sql/sql_odbc.h"
#include "sql/sql_plan.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PLAN_ARENA_MAX          ((size_t)1 << 30)
#define DEFAULT_LOGIN_TIMEOUT_S 15
#define DEFAULT_QUERY_TIMEOUT_S 30
#define DEFAULT_RETRY_MAX_MS    5000

/* What the database has for one table (from the catalogue). */
struct table_info {
  char *table;
  bool link;
  bool tombstone; /* "<table>__tombstone" exists (hard deletes) */
  bool stale;     /* the database said the table or a column is missing: look again */
  char **names;
  enum doc_type *types;
  size_t n, cap;
  struct table_info *next;
};

struct pool_slot {
  struct sql_conn *conn;
  bool busy;
};

struct sql_sink {
  struct sql_connstr cs;
  struct sql_odbc_env *env;
  enum sql_dialect dialect;
  enum sql_delete_mode delete_mode;
  bool validate_only;
  int login_timeout_s, query_timeout_s, retry_initial_ms, retry_max_ms;

  pthread_mutex_t pool_mu;
  pthread_cond_t pool_cv;
  struct pool_slot *slots;
  size_t nslots;

  pthread_mutex_t schema_mu; /* guards tables and serialises our DDL */
  struct table_info *tables;
  bool record_poison;
  bool poison_ready; /* the poison table exists (under schema_mu) */

  pthread_mutex_t rng_mu;
  uint64_t rng;
};

void sql_sink_options_from_config(const struct app_config *cfg, struct sql_sink_options *out)
{
  struct app_err e;
  memset(out, 0, sizeof *out);
  out->connection_string = cfg->sql_connection;
  if (sql_dialect_parse(cfg->sql_dialect, &out->dialect, &e) != APP_OK)
    out->dialect = SQL_DIALECT_NONE; /* config_load already checked the names */
  out->odbc_driver = cfg->sql_odbc_driver && *cfg->sql_odbc_driver ? cfg->sql_odbc_driver : NULL;
  out->delete_mode = cfg->sql_delete == CFG_SQL_DELETE_HARD ? SQL_DELETE_HARD : SQL_DELETE_SOFT;
  out->validate_only = cfg->sql_schema == CFG_SQL_SCHEMA_VALIDATE;
  out->pool_size = cfg->sql_pool;
  out->login_timeout_s = cfg->sql_login_timeout_s;
  out->query_timeout_s = cfg->sql_query_timeout_s;
  out->retry_initial_ms = cfg->retry_initial_ms;
  out->retry_max_ms = DEFAULT_RETRY_MAX_MS;
  out->record_poison = cfg->poison == CFG_POISON_RECORD && cfg->target == CFG_TARGET_SQL;
}

static char *join_path(const char *dir, const char *rel)
{
  size_t a = strlen(dir), b = strlen(rel);
  char *p = xmalloc(a + b + 2);
  memcpy(p, dir, a);
  if (a && dir[a - 1] != '/')
    p[a++] = '/';
  memcpy(p + a, rel, b + 1);
  return p;
}

char *sql_sink_app_driver(const char *app_root, const char *configured, enum sql_dialect dialect)
{
  char *p;
  if (!app_root || !*app_root)
    return NULL;
  if (configured && *configured)
    return configured[0] != '/' && strchr(configured, '/') ? join_path(app_root, configured) : NULL;
  if (dialect == SQL_DIALECT_TSQL)
    return NULL;
  p = join_path(app_root, SQL_SINK_BUNDLED_PG_DRIVER);
  if (access(p, R_OK) == 0)
    return p;
  free(p);
  return NULL;
}

enum app_result sql_sink_create(const struct sql_sink_options *opt, struct sql_sink **out_sink,
                                struct app_err *err)
{
  struct sql_sink *s = xcalloc(1, sizeof *s);
  enum app_result r;

  r = sql_connstr_parse(opt->connection_string, opt->dialect, opt->odbc_driver, &s->cs, err);
  if (r != APP_OK) {
    free(s);
    return r;
  }
  r = sql_odbc_env_create(&s->env, err);
  if (r != APP_OK) {
    sql_connstr_cleanup(&s->cs);
    free(s);
    return r;
  }
  s->dialect = s->cs.dialect;
  s->delete_mode = opt->delete_mode;
  s->validate_only = opt->validate_only;
  s->record_poison = opt->record_poison;
  s->login_timeout_s = opt->login_timeout_s > 0    ? opt->login_timeout_s
                       : s->cs.login_timeout_s > 0 ? s->cs.login_timeout_s
                                                   : DEFAULT_LOGIN_TIMEOUT_S;
  s->query_timeout_s = opt->query_timeout_s > 0    ? opt->query_timeout_s
                       : s->cs.query_timeout_s > 0 ? s->cs.query_timeout_s
                                                   : DEFAULT_QUERY_TIMEOUT_S;
  s->retry_initial_ms = opt->retry_initial_ms > 0 ? opt->retry_initial_ms : 100;
  s->retry_max_ms = opt->retry_max_ms > 0 ? opt->retry_max_ms : DEFAULT_RETRY_MAX_MS;
  s->nslots = opt->pool_size > 0 ? (size_t)opt->pool_size : 1;
  s->slots = xcalloc(s->nslots, sizeof *s->slots);
  pthread_mutex_init(&s->pool_mu, NULL);
  pthread_cond_init(&s->pool_cv, NULL);
  pthread_mutex_init(&s->schema_mu, NULL);
  pthread_mutex_init(&s->rng_mu, NULL);
  s->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
  LOG_INFO("sql sink: %s, %s deletes, schema %s, pool %zu, login timeout %ds, query timeout "
           "%ds, target %s",
           sql_dialect_name(s->dialect), s->delete_mode == SQL_DELETE_HARD ? "hard" : "soft",
           s->validate_only ? "validate" : "evolve", s->nslots, s->login_timeout_s,
           s->query_timeout_s, s->cs.redacted);
  *out_sink = s;
  return APP_OK;
}

static void table_info_free(struct table_info *t)
{
  size_t i;
  if (!t)
    return;
  for (i = 0; i < t->n; i++)
    free(t->names[i]);
  free(t->names);
  free(t->types);
  free(t->table);
  free(t);
}

void sql_sink_destroy(struct sql_sink *s)
{
  size_t i;
  if (!s)
    return;
  for (i = 0; i < s->nslots; i++)
    sql_odbc_disconnect(s->slots[i].conn);
  free(s->slots);
  while (s->tables) {
    struct table_info *n = s->tables->next;
    table_info_free(s->tables);
    s->tables = n;
  }
  pthread_mutex_destroy(&s->pool_mu);
  pthread_cond_destroy(&s->pool_cv);
  pthread_mutex_destroy(&s->schema_mu);
  pthread_mutex_destroy(&s->rng_mu);
  sql_odbc_env_destroy(s->env);
  sql_connstr_cleanup(&s->cs);
  free(s);
}

enum sql_dialect sql_sink_dialect(const struct sql_sink *s)
{
  return s->dialect;
}

const char *sql_sink_redacted(const struct sql_sink *s)
{
  return s->cs.redacted;
}

/* ---- pool ---------------------------------------------------------------- */

static int remaining_s(int64_t deadline_ms, int cap_s)
{
  int64_t left = deadline_ms - sink_now_ms();
  int64_t s = (left + 999) / 1000;
  if (s < 1)
    s = 1;
  return s < cap_s ? (int)s : cap_s;
}

/* A free slot, waiting until deadline_ms. The slot's connection may be NULL
 * (to be opened by the caller). */
static enum app_result pool_acquire(struct sql_sink *s, int64_t deadline_ms, struct pool_slot **out,
                                    struct app_err *err)
{
  enum app_result r = APP_OK;
  pthread_mutex_lock(&s->pool_mu);
  for (;;) {
    size_t i, pick = s->nslots;
    for (i = 0; i < s->nslots; i++) {
      if (!s->slots[i].busy) {
        pick = i;
        if (s->slots[i].conn)
          break; /* prefer an open connection */
      }
    }
    if (pick < s->nslots) {
      s->slots[pick].busy = true;
      *out = &s->slots[pick];
      break;
    }
    {
      struct timespec ts;
      int64_t left = deadline_ms - sink_now_ms();
      if (left <= 0) {
        r = app_err_set(err, APP_ERR_TIMEOUT,
                        "all %zu SQL connections stayed busy until the deadline (CDC_SQL_POOL)",
                        s->nslots);
        break;
      }
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += left / 1000;
      ts.tv_nsec += (long)(left % 1000) * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      (void)pthread_cond_timedwait(&s->pool_cv, &s->pool_mu, &ts);
    }
  }
  pthread_mutex_unlock(&s->pool_mu);
  return r;
}

static void pool_release(struct sql_sink *s, struct pool_slot *slot, bool drop)
{
  if (drop && slot->conn) {
    sql_odbc_disconnect(slot->conn);
    slot->conn = NULL;
  }
  pthread_mutex_lock(&s->pool_mu);
  slot->busy = false;
  pthread_cond_signal(&s->pool_cv);
  pthread_mutex_unlock(&s->pool_mu);
}

static enum app_result slot_connect(struct sql_sink *s, struct pool_slot *slot, int64_t deadline_ms,
                                    struct sql_odbc_diag *out_diag, struct app_err *err)
{
  memset(out_diag, 0, sizeof *out_diag);
  if (slot->conn)
    return APP_OK;
  return sql_odbc_connect(s->env, s->cs.odbc, s->cs.target, s->dialect,
                          remaining_s(deadline_ms, s->login_timeout_s), &slot->conn, out_diag, err);
}

enum app_result sql_sink_ping(struct sql_sink *s, struct app_err *err)
{
  struct pool_slot *slot;
  struct sql_odbc_diag dg;
  int64_t deadline = sink_now_ms() + (int64_t)s->login_timeout_s * 1000;
  enum app_result r = pool_acquire(s, deadline, &slot, err);
  if (r != APP_OK)
    return r;
  r = slot_connect(s, slot, deadline, &dg, err);
  pool_release(s, slot, false);
  return r;
}

/* ---- schema --------------------------------------------------------------- */

static struct table_info *table_find(struct sql_sink *s, const char *table, bool link)
{
  struct table_info *t;
  for (t = s->tables; t; t = t->next)
    if (t->link == link && !strcmp(t->table, table))
      return t;
  return NULL;
}

static enum app_result collect_column(void *ctx, const char *name, const char *type,
                                      struct app_err *err)
{
  struct table_info *t = ctx;
  (void)err;
  if (!name)
    return APP_OK;
  if (t->n == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 32;
    t->names = xrealloc(t->names, t->cap * sizeof *t->names);
    t->types = xrealloc(t->types, t->cap * sizeof *t->types);
  }
  t->names[t->n] = xstrdup(name);
  t->types[t->n] = sql_dialect_type_from_db(type);
  t->n++;
  return APP_OK;
}

static enum app_result count_column(void *ctx, const char *name, const char *type,
                                    struct app_err *err)
{
  (void)name, (void)type, (void)err;
  (*(size_t *)ctx)++;
  return APP_OK;
}

/* Read the table's columns from the catalogue into a fresh table_info. */
static enum app_result introspect(struct sql_sink *s, struct sql_conn *c, const char *table,
                                  bool link, int timeout_s, struct table_info **out,
                                  struct app_err *err)
{
  struct sql_stmt q;
  struct table_info *t = xcalloc(1, sizeof *t);
  enum app_result r;

  sql_stmt_init(&q);
  t->table = xstrdup(table);
  t->link = link;
  r = sql_dialect_columns_query(s->dialect, table, &q, err);
  if (r == APP_OK)
    r = sql_odbc_query(c, &q, timeout_s, collect_column, t, err);
  if (r == APP_OK && !link && s->delete_mode == SQL_DELETE_HARD) {
    char tomb[600];
    size_t n = 0;
    snprintf(tomb, sizeof tomb, "%s__tombstone", table);
    r = sql_dialect_columns_query(s->dialect, tomb, &q, err);
    if (r == APP_OK)
      r = sql_odbc_query(c, &q, timeout_s, count_column, &n, err);
    t->tombstone = n > 0;
  }
  sql_stmt_cleanup(&q);
  if (r != APP_OK) {
    table_info_free(t);
    return r;
  }
  *out = t;
  return APP_OK;
}

static bool has_column(const struct table_info *t, const char *name)
{
  size_t i;
  for (i = 0; i < t->n; i++)
    if (!strcmp(t->names[i], name))
      return true;
  return false;
}

/* Columns of g that t lacks (value or version column). */
static size_t missing_columns(const struct sql_group *g, const struct table_info *t,
                              struct sql_column *out)
{
  size_t i, n = 0;
  char v[300];
  for (i = 0; i < g->ncols; i++) {
    snprintf(v, sizeof v, "%s__v", g->cols[i].name);
    if (!has_column(t, g->cols[i].name) || !has_column(t, v))
      out[n++] = g->cols[i];
  }
  return n;
}

static enum app_result run_ddl(struct sql_sink *s, struct sql_conn *c, const char *sql,
                               int timeout_s, size_t *round_trips, struct app_err *err)
{
  struct sql_stmt st;
  enum app_result r;
  sql_stmt_init(&st);
  r = buf_append_str(&st.sql, sql);
  if (r == APP_OK)
    r = sql_odbc_exec(c, &st, timeout_s, NULL, err);
  (*round_trips)++;
  if (r == APP_OK) {
    r = sql_odbc_commit(c, err);
    (*round_trips)++;
  }
  if (r != APP_OK)
    sql_odbc_rollback(c);
  sql_stmt_cleanup(&st);
  (void)s;
  return r;
}

static bool satisfied(const struct sql_sink *s, const struct sql_group *g,
                      const struct table_info *t, struct sql_column *scratch)
{
  if (!t || !t->n || t->stale)
    return false;
  if (g->kind == SQL_GROUP_LINK)
    return true;
  if (s->delete_mode == SQL_DELETE_HARD && !t->tombstone)
    return false;
  return missing_columns(g, t, scratch) == 0;
}

/* The type a new column gets. The mapper types a value by its look: an
 * integral number is DOC_T_INT although a Decimal or Float column sends
 * integral values too, and any GUID-looking string is DOC_T_GUID. A column
 * created from the first value seen must take every later value, so whole
 * numbers get decimal(38,10)/numeric, and only lookups (`_<name>_value`)
 * get uniqueidentifier/uuid; other GUID-looking strings get text. */
static enum doc_type ddl_type(const struct sql_column *c)
{
  size_t n = strlen(c->name);
  if (c->type == DOC_T_INT)
    return DOC_T_DECIMAL;
  if (c->type == DOC_T_GUID && !(c->name[0] == '_' && n > 7 && !strcmp(c->name + n - 6, "_value")))
    return DOC_T_TEXT;
  return c->type;
}

/* Make sure g's table has every column g writes; remember what it has. On
 * success *out_info is the cached table (valid while the sink lives; its
 * contents only grow under schema_mu). */
static enum app_result ensure_table(struct sql_sink *s, struct sql_conn *c, struct sql_group *g,
                                    int timeout_s, size_t *round_trips,
                                    struct table_info **out_info, struct app_err *err)
{
  bool link = g->kind == SQL_GROUP_LINK;
  struct table_info *t, *fresh = NULL;
  struct sql_column *miss = xcalloc(g->ncols ? g->ncols : 1, sizeof *miss);
  struct buf ddl;
  enum app_result r = APP_OK;
  struct app_err ddl_err;
  int round;

  app_err_clear(&ddl_err);
  buf_init(&ddl, 0);
  pthread_mutex_lock(&s->schema_mu);
  t = table_find(s, g->table, link);
  if (satisfied(s, g, t, miss))
    goto out;
  /* Twice at most: look, change what is missing, look again. */
  for (round = 0; round < 2; round++) {
    size_t nmiss;
    r = introspect(s, c, g->table, link, timeout_s, &fresh, err);
    (*round_trips)++;
    if (r != APP_OK)
      goto out;
    if (t) {
      /* swap contents, keep the node (others may hold a pointer) */
      struct table_info tmp = *t;
      struct table_info *next = t->next;
      *t = *fresh;
      t->next = next;
      *fresh = tmp;
      fresh->next = NULL;
      table_info_free(fresh);
    } else {
      t = fresh;
      t->next = s->tables;
      s->tables = t;
    }
    fresh = NULL;
    if (satisfied(s, g, t, miss))
      goto out;
    if (round == 1)
      break;
    if (s->validate_only) {
      r = app_err_set(err, APP_ERR_CONFIG,
                      "table %s lacks %s and CDC_SQL_SCHEMA is validate; create it with the DDL "
                      "that tests/tools/sqlddl prints",
                      g->table, !t->n ? "entirely" : "columns or its tombstone table");
      goto out;
    }
    buf_reset(&ddl);
    if (link) {
      r = sql_ddl_create_link(s->dialect, g->table, &ddl, err);
    } else if (!t->n) {
      for (size_t k = 0; k < g->ncols; k++) {
        miss[k] = g->cols[k];
        miss[k].type = ddl_type(&g->cols[k]);
      }
      r = sql_ddl_create(s->dialect, g->table, g->key, miss, g->ncols, s->delete_mode, &ddl, err);
    } else {
      nmiss = missing_columns(g, t, miss);
      for (size_t k = 0; k < nmiss; k++)
        miss[k].type = ddl_type(&miss[k]);
      r = sql_ddl_add_columns(s->dialect, g->table, miss, nmiss, &ddl, err);
      if (r == APP_OK && s->delete_mode == SQL_DELETE_HARD && !t->tombstone) {
        /* the table predates hard deletes: CREATE ... IF NOT EXISTS adds
         * only the missing tombstone table */
        r = sql_ddl_create(s->dialect, g->table, g->key, NULL, 0, s->delete_mode, &ddl, err);
      }
    }
    if (r != APP_OK)
      goto out;
    LOG_INFO("sql sink: schema change for %s: %s", g->table,
             link    ? "create link table"
             : !t->n ? "create table"
                     : "add columns");
    r = run_ddl(s, c, ddl.data, timeout_s, round_trips, err);
    if (r != APP_OK) {
      /* Another instance may have made the same change at the same time:
       * look again before giving up. */
      const struct sql_odbc_diag *dg = sql_odbc_last(c);
      if (dg->broken)
        goto out;
      if (err)
        ddl_err = *err;
      LOG_WARN("sql sink: DDL for %s failed (%s); checking the catalogue again", g->table,
               ddl_err.msg);
    }
  }
  if (!satisfied(s, g, t, miss) && r == APP_OK) {
    if (ddl_err.code != APP_OK && err) {
      *err = ddl_err; /* the DDL's own failure says why */
      r = ddl_err.code;
    } else {
      r = app_err_set(err, APP_ERR_SQL, "table %s still lacks columns after DDL", g->table);
    }
  }
out:
  pthread_mutex_unlock(&s->schema_mu);
  if (r == APP_OK)
    *out_info = t;
  table_info_free(fresh);
  buf_cleanup(&ddl);
  free(miss);
  return r;
}

/* Mapped columns the table has (not the key, _cdc_* or __v columns). */
/* Cast every value to the type its column has in the database, not to the
 * type the mapper guessed from this batch's first value: a GUID-looking
 * value then lands in a text column, an integral number in a decimal one,
 * and a value that does not fit fails loudly instead of being converted. */
static void use_db_types(struct sql_sink *s, struct sql_group *g, const struct table_info *t)
{
  size_t i, j;
  pthread_mutex_lock(&s->schema_mu);
  for (i = 0; i < g->ncols; i++)
    for (j = 0; j < t->n; j++)
      if (!strcmp(t->names[j], g->cols[i].name)) {
        g->cols[i].type = t->types[j];
        break;
      }
  pthread_mutex_unlock(&s->schema_mu);
}

static enum app_result fill_full_rows(struct sql_sink *s, struct arena *a, struct sql_group *g,
                                      const struct table_info *t, struct app_err *err)
{
  struct sql_column *known;
  size_t i, n = 0;
  enum app_result r;
  if (!g->has_full_rows)
    return APP_OK;
  pthread_mutex_lock(&s->schema_mu);
  known = xcalloc(t->n ? t->n : 1, sizeof *known);
  for (i = 0; i < t->n; i++) {
    size_t len = strlen(t->names[i]);
    if (!strcmp(t->names[i], g->key) || !strncmp(t->names[i], "_cdc_", 5) ||
        (len > 3 && !strcmp(t->names[i] + len - 3, "__v")))
      continue;
    known[n].name = arena_strndup(a, t->names[i], len);
    known[n].type = t->types[i];
    if (!known[n].name) {
      pthread_mutex_unlock(&s->schema_mu);
      free(known);
      return app_err_set(err, APP_ERR_LIMIT, "sql plan: arena ceiling reached");
    }
    n++;
  }
  pthread_mutex_unlock(&s->schema_mu);
  r = sql_plan_fill_full_rows(a, g, known, n, err);
  free(known);
  return r;
}

/* ---- poison ----------------------------------------------------------------- */

/* Rows for batch->poison: keyed by MessageId, else by the body's SHA-256,
 * and deduplicated (a batch may carry one message twice). Strings live in a. */
static enum app_result poison_rows(struct arena *a, const struct sink_batch *batch,
                                   struct sql_poison_row **out_rows, size_t *out_n,
                                   struct app_err *err)
{
  struct sql_poison_row *rows =
      arena_alloc(a, (batch->npoison ? batch->npoison : 1) * sizeof *rows);
  size_t i, j, n = 0;
  if (!rows)
    return app_err_set(err, APP_ERR_LIMIT, "sql sink: arena ceiling reached (poison)");
  for (i = 0; i < batch->npoison; i++) {
    const struct sink_poison *p = &batch->poison[i];
    char *key = arena_alloc(a, 101);
    bool dup = false;
    if (!key)
      return app_err_set(err, APP_ERR_LIMIT, "sql sink: arena ceiling reached (poison)");
    if (p->message_id && *p->message_id) {
      snprintf(key, 101, "%.100s", p->message_id);
    } else {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int mdlen = 0, k;
      if (EVP_Digest(p->body ? p->body : "", p->body ? p->body_len : 0, md, &mdlen, EVP_sha256(),
                     NULL) != 1)
        return app_err_set(err, APP_ERR_NOMEM, "sql sink: SHA-256 of a poison body failed");
      memcpy(key, "sha256:", 7);
      for (k = 0; k < mdlen && 7 + k * 2 + 2 < 101; k++)
        snprintf(key + 7 + k * 2, 3, "%02x", md[k]);
    }
    for (j = 0; j < n && !dup; j++)
      dup = !strcmp(rows[j].key, key);
    if (dup)
      continue;
    rows[n].key = key;
    rows[n].message_id = p->message_id;
    rows[n].reason = p->reason;
    rows[n].body = p->body;
    rows[n].body_len = p->body_len;
    rows[n].content_type = p->content_type;
    rows[n].delivery_count = p->delivery_count;
    rows[n].enqueued_ms = p->enqueued_ms;
    rows[n].function = batch->function;
    rows[n].invocation_id = batch->invocation_id;
    n++;
  }
  *out_rows = rows;
  *out_n = n;
  return APP_OK;
}

static enum app_result ensure_poison_table(struct sql_sink *s, struct sql_conn *c, int timeout_s,
                                           size_t *round_trips, struct app_err *err)
{
  struct buf ddl;
  enum app_result r = APP_OK;
  pthread_mutex_lock(&s->schema_mu);
  if (s->poison_ready)
    goto out;
  buf_init(&ddl, 0);
  if (s->validate_only) {
    /* trust the DBA; a missing table fails the insert with its SQLSTATE */
    s->poison_ready = true;
  } else {
    r = sql_ddl_create_poison(s->dialect, &ddl, err);
    if (r == APP_OK)
      r = run_ddl(s, c, ddl.data, timeout_s, round_trips, err);
    if (r == APP_OK)
      s->poison_ready = true;
  }
  buf_cleanup(&ddl);
out:
  pthread_mutex_unlock(&s->schema_mu);
  return r;
}

static enum app_result write_poison(struct sql_sink *s, struct sql_conn *c,
                                    const struct sql_poison_row *rows, size_t n, int timeout_s,
                                    size_t *round_trips, struct sql_stmt *st, struct app_err *err)
{
  size_t from = 0, count;
  while (from < n) {
    APP_RETURN_IF_FAILED(sql_dialect_poison_insert(s->dialect, rows, n, from, st, &count, err));
    APP_RETURN_IF_FAILED(sql_odbc_exec(c, st, timeout_s, NULL, err));
    (*round_trips)++;
    from += count;
  }
  return APP_OK;
}

/* ---- one attempt ------------------------------------------------------------ */

struct attempt {
  size_t changed;
  size_t round_trips;
};

static enum app_result exec_counted(struct sql_conn *c, const struct sql_stmt *st, int timeout_s,
                                    struct attempt *at, long *out_rows, const char *table,
                                    struct app_err *err)
{
  enum app_result r = sql_odbc_exec(c, st, timeout_s, out_rows, err);
  at->round_trips++;
  if (r != APP_OK)
    app_err_wrap(err, "table %s", table);
  return r;
}

static enum app_result write_entity(struct sql_sink *s, struct sql_conn *c,
                                    const struct sql_group *g, int timeout_s, struct attempt *at,
                                    struct sql_stmt *st, struct app_err *err)
{
  size_t from = 0, count;
  long rows;
  bool hard = s->delete_mode == SQL_DELETE_HARD;
  while (from < g->nrows) {
    APP_RETURN_IF_FAILED(sql_dialect_upsert(s->dialect, g, from, st, &count, err));
    if (hard) {
      /* per-key locks first (PostgreSQL): a concurrent Delete of one of
       * these records commits before the restore reads its tombstone */
      if (s->dialect == SQL_DIALECT_POSTGRES) {
        APP_RETURN_IF_FAILED(
            sql_dialect_hard_delete(s->dialect, g, from, count, SQL_HARD_LOCK, st, err));
        APP_RETURN_IF_FAILED(exec_counted(c, st, timeout_s, at, NULL, g->table, err));
      }
      /* restore needs its own statement text; build it, run it, rebuild */
      APP_RETURN_IF_FAILED(
          sql_dialect_hard_delete(s->dialect, g, from, count, SQL_HARD_RESTORE, st, err));
      APP_RETURN_IF_FAILED(exec_counted(c, st, timeout_s, at, NULL, g->table, err));
      APP_RETURN_IF_FAILED(sql_dialect_upsert(s->dialect, g, from, st, &count, err));
    }
    APP_RETURN_IF_FAILED(exec_counted(c, st, timeout_s, at, &rows, g->table, err));
    if (rows > 0)
      at->changed += (size_t)rows;
    if (hard) {
      APP_RETURN_IF_FAILED(
          sql_dialect_hard_delete(s->dialect, g, from, count, SQL_HARD_ARCHIVE, st, err));
      APP_RETURN_IF_FAILED(exec_counted(c, st, timeout_s, at, NULL, g->table, err));
      APP_RETURN_IF_FAILED(
          sql_dialect_hard_delete(s->dialect, g, from, count, SQL_HARD_REMOVE, st, err));
      APP_RETURN_IF_FAILED(exec_counted(c, st, timeout_s, at, NULL, g->table, err));
    }
    from += count;
  }
  return APP_OK;
}

static enum app_result write_links(struct sql_sink *s, struct sql_conn *c,
                                   const struct sql_group *g, int timeout_s, struct attempt *at,
                                   struct sql_stmt *st, struct app_err *err)
{
  size_t from = 0, count;
  long rows;
  while (from < g->nlinks) {
    APP_RETURN_IF_FAILED(sql_dialect_link_upsert(s->dialect, g, from, st, &count, err));
    APP_RETURN_IF_FAILED(exec_counted(c, st, timeout_s, at, &rows, g->table, err));
    if (rows > 0)
      at->changed += (size_t)rows;
    from += count;
  }
  return APP_OK;
}

static enum app_result attempt_write(struct sql_sink *s, struct sql_conn *c, struct arena *a,
                                     struct sql_plan *plan, const struct sql_poison_row *poison,
                                     size_t npoison, int timeout_s, struct attempt *at,
                                     struct app_err *err)
{
  struct sql_stmt st;
  enum app_result r = APP_OK;
  size_t i;

  sql_stmt_init(&st);
  /* schema first, each change in its own short transaction */
  for (i = 0; i < plan->ngroups && r == APP_OK; i++) {
    struct table_info *t = NULL;
    r = ensure_table(s, c, &plan->groups[i], timeout_s, &at->round_trips, &t, err);
    if (r == APP_OK && plan->groups[i].kind == SQL_GROUP_ENTITY) {
      r = fill_full_rows(s, a, &plan->groups[i], t, err);
      use_db_types(s, &plan->groups[i], t);
    }
  }
  if (r == APP_OK && npoison)
    r = ensure_poison_table(s, c, timeout_s, &at->round_trips, err);
  /* then the batch: one transaction, tables in name order */
  for (i = 0; i < plan->ngroups && r == APP_OK; i++) {
    const struct sql_group *g = &plan->groups[i];
    r = g->kind == SQL_GROUP_ENTITY ? write_entity(s, c, g, timeout_s, at, &st, err)
                                    : write_links(s, c, g, timeout_s, at, &st, err);
  }
  if (r == APP_OK && npoison) {
    r = write_poison(s, c, poison, npoison, timeout_s, &at->round_trips, &st, err);
    if (r != APP_OK)
      app_err_wrap(err, "table %s", SQL_POISON_TABLE);
  }
  if (r == APP_OK) {
    r = sql_odbc_commit(c, err);
    at->round_trips++;
  }
  sql_stmt_cleanup(&st);
  return r;
}

/* Undefined table or column (PostgreSQL, and ODBC's codes for SQL Server's
 * 208 and 207). */
static bool schema_gone(const char *st)
{
  return !strcmp(st, "42P01") || !strcmp(st, "42703") || !strcmp(st, "42S02") ||
         !strcmp(st, "42S22");
}

static void forget_tables(struct sql_sink *s, const struct sql_plan *plan)
{
  size_t i;
  pthread_mutex_lock(&s->schema_mu);
  for (i = 0; i < plan->ngroups; i++) {
    struct table_info *t =
        table_find(s, plan->groups[i].table, plan->groups[i].kind == SQL_GROUP_LINK);
    if (t)
      t->stale = true;
  }
  pthread_mutex_unlock(&s->schema_mu);
}

static int64_t backoff_ms(struct sql_sink *s, unsigned attempt)
{
  int64_t d = s->retry_initial_ms;
  uint64_t x;
  while (attempt-- > 1 && d < s->retry_max_ms)
    d *= 2;
  if (d > s->retry_max_ms)
    d = s->retry_max_ms;
  pthread_mutex_lock(&s->rng_mu);
  x = s->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  s->rng = x;
  pthread_mutex_unlock(&s->rng_mu);
  /* full jitter in [d/2, d] so retries of many instances spread out */
  return d / 2 + (int64_t)(x % (uint64_t)(d / 2 + 1));
}

enum app_result sql_sink_check_doc(const struct sql_sink *s, const struct doc *d,
                                   struct app_err *err)
{
  struct arena a;
  struct sql_plan plan;
  const struct doc *docs[1];
  enum app_result r;
  size_t i;

  docs[0] = d;
  arena_init(&a, PLAN_ARENA_MAX);
  r = sql_plan_build(&a, docs, 1, sql_dialect_max_ident(s->dialect), &plan, err);
  for (i = 0; r == APP_OK && i < plan.ngroups; i++)
    r = sql_dialect_check_group(s->dialect, &plan.groups[i], err);
  arena_cleanup(&a);
  return r;
}

enum app_result sql_sink_write(struct sql_sink *s, const struct sink_batch *batch,
                               struct sink_stats *out_stats, struct app_err *err)
{
  struct arena a;
  struct sql_plan plan;
  struct sink_stats st;
  enum app_result r;
  unsigned attempt = 0;
  bool schema_retried = false;
  struct sql_poison_row *poison = NULL;
  size_t npoison = 0;

  memset(&st, 0, sizeof st);
  arena_init(&a, PLAN_ARENA_MAX);
  r = sql_plan_build(&a, batch->docs, batch->ndocs, sql_dialect_max_ident(s->dialect), &plan, err);
  if (r == APP_OK && (s->record_poison || batch->audit) && batch->npoison)
    r = poison_rows(&a, batch, &poison, &npoison, err);
  if (r != APP_OK || (plan.ngroups == 0 && npoison == 0))
    goto out;

  for (;;) {
    struct pool_slot *slot = NULL;
    struct sql_odbc_diag dg;
    struct attempt at = {0, 0};
    bool drop = false;
    int64_t delay;

    attempt++;
    r = pool_acquire(s, batch->deadline_ms, &slot, err);
    if (r != APP_OK)
      goto out;
    r = slot_connect(s, slot, batch->deadline_ms, &dg, err);
    if (r == APP_OK) {
      r = attempt_write(s, slot->conn, &a, &plan, poison, npoison,
                        remaining_s(batch->deadline_ms, s->query_timeout_s), &at, err);
      st.round_trips += at.round_trips;
      if (r == APP_OK) {
        st.applied = at.changed;
        st.stale = plan.ndocs > at.changed ? plan.ndocs - at.changed : 0;
        st.poison = npoison;
        pool_release(s, slot, false);
        LOG_DEBUG("sql sink: %zu docs, %zu poison: %zu rows changed, %zu round trips, %u "
                  "attempts",
                  batch->ndocs, npoison, st.applied, st.round_trips, attempt);
        break;
      }
      dg = *sql_odbc_last(slot->conn);
      sql_odbc_rollback(slot->conn);
      drop = dg.broken || sql_odbc_last(slot->conn)->broken;
    } else {
      st.round_trips++;
    }
    pool_release(s, slot, drop);
    if (r == APP_ERR_SQL && !schema_retried && schema_gone(dg.sqlstate)) {
      /* Someone dropped or altered a table behind our cache: look at the
       * catalogue again (and recreate what is missing) once, at once. */
      LOG_WARN("sql sink: %s; refreshing the cached table definitions", err ? err->msg : "");
      forget_tables(s, &plan);
      schema_retried = true;
      continue;
    }
    if (r != APP_ERR_SQL || !dg.transient) {
      if (r == APP_ERR_SQL)
        LOG_ERROR("sql sink: batch of %zu docs failed, not retried: %s", batch->ndocs,
                  err ? err->msg : "");
      /* data exception / integrity violation: a value of the batch, not
       * the store (sql_sink.h) */
      st.data_fault = r == APP_ERR_SQL && dg.sqlstate[0] == '2' &&
                      (dg.sqlstate[1] == '2' || dg.sqlstate[1] == '3');
      goto out;
    }
    delay = backoff_ms(s, attempt);
    if (sink_now_ms() + delay >= batch->deadline_ms) {
      LOG_ERROR("sql sink: batch of %zu docs failed after %u attempts: %s", batch->ndocs, attempt,
                err ? err->msg : "");
      app_err_wrap(err, "gave up after %u attempts (deadline)", attempt);
      goto out;
    }
    LOG_WARN("sql sink: transient failure (attempt %u, retry in %lld ms): %s", attempt,
             (long long)delay, err ? err->msg : "");
    if (!sink_sleep_ms(delay)) {
      app_err_wrap(err, "shutting down after %u attempts", attempt);
      goto out;
    }
    st.retries++;
  }
out:
  arena_cleanup(&a);
  if (out_stats)
    *out_stats = st;
  return r;
}

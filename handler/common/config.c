/* config.c - the settings table and its loader. */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum setting_type { ST_INT, ST_SIZE, ST_STRING, ST_ENUM };

struct enum_name {
  const char *name;
  int value;
};

static const struct enum_name target_names[] = {{"redis", CFG_TARGET_REDIS},
                                                {"sql", CFG_TARGET_SQL},
                                                {"redis+sql", CFG_TARGET_BOTH},
                                                {"none", CFG_TARGET_NONE},
                                                {NULL, 0}};
static const struct enum_name mode_names[] = {
    {"direct", CFG_MODE_DIRECT}, {"bindings", CFG_MODE_BINDINGS}, {NULL, 0}};
static const struct enum_name poison_names[] = {
    {"record", CFG_POISON_RECORD}, {"fail", CFG_POISON_FAIL}, {NULL, 0}};
static const struct enum_name level_names[] = {
    {"debug", LOG_LEVEL_DEBUG}, {"info", LOG_LEVEL_INFO}, {"warn", LOG_LEVEL_WARN},
    {"error", LOG_LEVEL_ERROR}, {"off", LOG_LEVEL_OFF},   {NULL, 0}};
static const struct enum_name sql_delete_names[] = {
    {"soft", CFG_SQL_DELETE_SOFT}, {"hard", CFG_SQL_DELETE_HARD}, {NULL, 0}};
static const struct enum_name sql_schema_names[] = {
    {"evolve", CFG_SQL_SCHEMA_EVOLVE}, {"validate", CFG_SQL_SCHEMA_VALIDATE}, {NULL, 0}};
static const struct enum_name cluster_names[] = {{"auto", 0}, {"on", 1}, {"off", 2}, {NULL, 0}};
static const struct enum_name dialect_names[] = {
    {"auto", 0}, {"tsql", 1}, {"postgres", 2}, {NULL, 0}};

struct setting {
  const char *name;
  const char *fallback; /* second name tried when name is unset, or NULL */
  enum setting_type type;
  const char *def;    /* default as text */
  long long min, max; /* bounds for ST_INT/ST_SIZE */
  const struct enum_name *enums;
  bool secret;
  size_t offset; /* into struct app_config */
  const char *doc;
};

#define OFF(field) offsetof(struct app_config, field)

static const struct setting settings[] = {
    {"FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT", ST_INT, "8081", 1, 65535, NULL,
     false, OFF(port),
     "Port to listen on; set by the Functions host (falls back to FUNCTIONS_HTTPWORKER_PORT)."},
    {"CDC_LISTEN_ADDRESS", NULL, ST_STRING, "127.0.0.1", 0, 0, NULL, false, OFF(listen_address),
     "IPv4 address to bind; the host always calls 127.0.0.1."},
    {"CDC_LOG_LEVEL", NULL, ST_ENUM, "info", 0, 0, level_names, false, OFF(log_level),
     "debug, info, warn, error or off."},
    {"CDC_MAPPING_FILE", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(mapping_file),
     "Path of the mapping file (relative paths from the app root); empty: mapping.json in the "
     "app root if present, else built-in defaults."},
    {"FUNCTIONS_APP_ROOT_PATH", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(app_root),
     "App root; set by the Functions host."},
    {"CDC_TARGET", NULL, ST_ENUM, "redis", 0, 0, target_names, false, OFF(target),
     "Where changes go: redis, sql, redis+sql or none (decode and map only)."},
    {"CDC_MODE", NULL, ST_ENUM, "direct", 0, 0, mode_names, false, OFF(mode),
     "direct: the handler writes and confirms each write; bindings: it returns Outputs for "
     "Redis/SQL output bindings."},
    {"RedisConnection", NULL, ST_STRING, "127.0.0.1:6379", 0, 0, NULL, true, OFF(redis_connection),
     "Redis in StackExchange.Redis form: host:port,password=...,ssl=True,abortConnect=False."},
    {"CDC_REDIS_CA_FILE", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(redis_ca_file),
     "PEM file of CA certificates trusted for Redis TLS (ssl=True); empty: the system CA store."},
    {"SqlConnectionString", NULL, ST_STRING, "", 0, 0, NULL, true, OFF(sql_connection),
     "SQL database: ADO.NET form (Server=...;Database=...) or an ODBC connection string."},
    {"CDC_SQL_DIALECT", NULL, ST_ENUM, "auto", 0, 0, dialect_names, false, OFF(sql_dialect),
     "auto (from the connection string), tsql (Azure SQL / SQL Server) or postgres."},
    {"CDC_SQL_ODBC_DRIVER", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(sql_odbc_driver),
     "ODBC driver name or path used when SqlConnectionString is in ADO.NET form; empty: "
     "ODBC Driver 18 for SQL Server (tsql) or PostgreSQL Unicode (postgres)."},
    {"CDC_SQL_DELETE", NULL, ST_ENUM, "soft", 0, 0, sql_delete_names, false, OFF(sql_delete),
     "SQL deletes: soft (row kept with _cdc_deleted = 1, it is its own tombstone) or hard (row "
     "removed, version kept in <table>__tombstone)."},
    {"CDC_SQL_SCHEMA", NULL, ST_ENUM, "evolve", 0, 0, sql_schema_names, false, OFF(sql_schema),
     "evolve: create missing tables and add columns for new properties (never drops or "
     "retypes); validate: fail when a table or column is missing."},
    {"CDC_SQL_POOL", NULL, ST_INT, "8", 1, 256, NULL, false, OFF(sql_pool),
     "SQL connections kept open (one per concurrent invocation)."},
    {"CDC_SQL_LOGIN_TIMEOUT_SECONDS", NULL, ST_INT, "0", 0, 300, NULL, false,
     OFF(sql_login_timeout_s),
     "SQL login timeout; 0: Connection Timeout from the connection string, else 15."},
    {"CDC_SQL_QUERY_TIMEOUT_SECONDS", NULL, ST_INT, "0", 0, 3600, NULL, false,
     OFF(sql_query_timeout_s),
     "SQL statement timeout; 0: Command Timeout from the connection string, else 30 (never "
     "past the invocation's retry budget)."},
    {"CDC_MAX_REQUEST_BYTES", NULL, ST_SIZE, "67108864", 1024, 1LL << 32, NULL, false,
     OFF(max_request_bytes), "Largest request body accepted; larger requests get 413."},
    {"CDC_MAX_MESSAGE_BYTES", NULL, ST_SIZE, "1048576", 1024, 1LL << 30, NULL, false,
     OFF(max_message_bytes), "Largest single message body decoded; larger ones are poison."},
    {"CDC_MAX_BATCH_MESSAGES", NULL, ST_INT, "5000", 1, 1000000, NULL, false,
     OFF(max_batch_messages), "Most messages accepted in one batch invocation."},
    {"CDC_MAX_JSON_DEPTH", NULL, ST_INT, "64", 8, 1024, NULL, false, OFF(max_json_depth),
     "Deepest JSON nesting accepted in a message."},
    {"CDC_POISON", NULL, ST_ENUM, "record", 0, 0, poison_names, false, OFF(poison),
     "Poison messages: record (write to the poison stream and acknowledge) or fail (non-2xx, "
     "so Service Bus dead-letters them; single-message functions only)."},
    {"CDC_POISON_STREAM", NULL, ST_STRING, "d365:poison", 0, 0, NULL, false, OFF(poison_stream),
     "Redis stream that records poison messages."},
    {"CDC_POISON_MAXLEN", NULL, ST_INT, "10000", 1, 100000000, NULL, false, OFF(poison_maxlen),
     "Approximate cap on the poison stream length (oldest entries trimmed)."},
    {"CDC_RETRY_BUDGET_MS", NULL, ST_INT, "30000", 0, 600000, NULL, false, OFF(retry_budget_ms),
     "Time one invocation may spend retrying a failing Redis/SQL write before it fails."},
    {"CDC_RETRY_INITIAL_MS", NULL, ST_INT, "100", 1, 60000, NULL, false, OFF(retry_initial_ms),
     "First retry delay; doubles up to 5 s, with jitter."},
    {"CDC_REDIS_POOL", NULL, ST_INT, "32", 1, 4096, NULL, false, OFF(redis_pool),
     "Redis connections kept open (one per concurrent invocation)."},
    {"CDC_READ_CONNECTIONS", NULL, ST_INT, "4", 1, 1024, NULL, false, OFF(read_connections),
     "Redis connections of the read API. Concurrent reads share them: while one batch of reads "
     "is in flight on each, the reads that arrive meanwhile are sent together as the next batch "
     "(pipelined). As many as there are concurrent reads gives each read its own connection."},
    {"CDC_REDIS_CLUSTER", NULL, ST_ENUM, "auto", 0, 0, cluster_names, false, OFF(redis_cluster),
     "Redis Cluster (Azure Managed Redis' OSS clustering policy): auto (ask the first endpoint "
     "once: INFO cluster), on (route by hash slot, every RedisConnection endpoint a seed) or off "
     "(one node, the first endpoint)."},
    {"CDC_REDIS_WAIT_REPLICAS", NULL, ST_INT, "0", 0, 5, NULL, false, OFF(redis_wait_replicas),
     "Redis Cluster only: a batch's writes on a primary count once this many of its replicas have "
     "them (WAIT, up to half of syncTimeout), so a confirmed change survives a primary lost "
     "before it replicated. 0: confirmed when the primary applied them."},
    {"CDC_KEY_PREFIX", NULL, ST_STRING, "d365", 0, 0, NULL, false, OFF(key_prefix),
     "Prefix of every Redis key the handler writes."},
    {"CDC_TOMBSTONE_TTL_SECONDS", NULL, ST_INT, "604800", 60, 315360000, NULL, false,
     OFF(tombstone_ttl_s),
     "How long a deleted record's tombstone is kept, so a late older update cannot revive it."},
    {"CDC_MAX_CONNECTIONS", NULL, ST_INT, "512", 4, 65536, NULL, false, OFF(max_connections),
     "Most HTTP connections served at once."},
    {"CDC_CONNECTION_TIMEOUT_SECONDS", NULL, ST_INT, "300", 1, 86400, NULL, false,
     OFF(connection_timeout_s), "Idle keep-alive connections are closed after this long."},
    {"CDC_SHUTDOWN_GRACE_MS", NULL, ST_INT, "10000", 0, 600000, NULL, false, OFF(shutdown_grace_ms),
     "On SIGTERM/SIGINT, how long in-flight requests may take to finish."},
};

static const char *env_lookup(const char *name)
{
  return getenv(name);
}

static enum app_result parse_number(const struct setting *s, const char *v, long long *out,
                                    struct app_err *err)
{
  char *end = NULL;
  long long n;
  errno = 0;
  n = strtoll(v, &end, 10);
  if (errno || end == v || *end != '\0')
    return app_err_set(err, APP_ERR_CONFIG, "setting %s: '%s' is not a whole number", s->name, v);
  if (n < s->min || n > s->max)
    return app_err_set(err, APP_ERR_CONFIG, "setting %s: %lld is out of range [%lld, %lld]",
                       s->name, n, s->min, s->max);
  *out = n;
  return APP_OK;
}

static enum app_result apply(struct app_config *cfg, const struct setting *s, const char *v,
                             struct app_err *err)
{
  char *field = (char *)cfg + s->offset;
  long long n;
  const struct enum_name *e;

  switch (s->type) {
  case ST_INT:
    APP_RETURN_IF_FAILED(parse_number(s, v, &n, err));
    *(int *)field = (int)n;
    return APP_OK;
  case ST_SIZE:
    APP_RETURN_IF_FAILED(parse_number(s, v, &n, err));
    *(size_t *)field = (size_t)n;
    return APP_OK;
  case ST_STRING:
    free(*(char **)field);
    *(char **)field = xstrdup(v);
    return APP_OK;
  case ST_ENUM:
    for (e = s->enums; e->name; e++) {
      if (!strcasecmp(e->name, v)) {
        if (s->offset == OFF(sql_dialect)) {
          free(cfg->sql_dialect);
          cfg->sql_dialect = xstrdup(e->name);
        } else {
          *(int *)field = e->value;
        }
        return APP_OK;
      }
    }
    {
      char list[128] = "";
      size_t used = 0;
      for (e = s->enums; e->name; e++) {
        int k = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", e->name);
        if (k < 0 || (size_t)k >= sizeof list - used)
          break;
        used += (size_t)k;
      }
      return app_err_set(err, APP_ERR_CONFIG, "setting %s: '%s' is not one of %s", s->name, v,
                         list);
    }
  }
  return APP_ERR_CONFIG;
}

enum app_result config_load(struct app_config *cfg, config_lookup_fn lookup, struct app_err *err)
{
  size_t i;
  memset(cfg, 0, sizeof *cfg);
  if (!lookup)
    lookup = env_lookup;
  for (i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    const struct setting *s = &settings[i];
    const char *v = lookup(s->name);
    enum app_result r;
    if ((!v || !*v) && s->fallback)
      v = lookup(s->fallback);
    if (!v || (!*v && s->type != ST_STRING))
      v = s->def;
    r = apply(cfg, s, v, err);
    if (r != APP_OK) {
      config_cleanup(cfg);
      return r;
    }
  }
  return APP_OK;
}

void config_cleanup(struct app_config *cfg)
{
  if (!cfg)
    return;
  free(cfg->listen_address);
  free(cfg->mapping_file);
  free(cfg->app_root);
  free(cfg->redis_connection);
  free(cfg->redis_ca_file);
  free(cfg->sql_connection);
  free(cfg->sql_dialect);
  free(cfg->sql_odbc_driver);
  free(cfg->poison_stream);
  free(cfg->key_prefix);
  memset(cfg, 0, sizeof *cfg);
}

static enum app_result value_text(const struct app_config *cfg, const struct setting *s,
                                  struct buf *out)
{
  const char *field = (const char *)cfg + s->offset;
  const struct enum_name *e;
  const char *str;

  switch (s->type) {
  case ST_INT: return buf_append_i64(out, *(const int *)field);
  case ST_SIZE: return buf_append_u64(out, *(const size_t *)field);
  case ST_STRING:
    str = *(char *const *)field;
    if (s->secret)
      return buf_append_str(out, str && *str ? "<set>" : "<unset>");
    return buf_append_str(out, str ? str : "");
  case ST_ENUM:
    if (s->offset == OFF(sql_dialect))
      return buf_append_str(out, cfg->sql_dialect ? cfg->sql_dialect : "");
    for (e = s->enums; e->name; e++)
      if (e->value == *(const int *)field)
        return buf_append_str(out, e->name);
    return buf_append_str(out, "?");
  }
  return APP_OK;
}

enum app_result config_dump(const struct app_config *cfg, struct buf *out)
{
  size_t i;
  for (i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    APP_RETURN_IF_FAILED(buf_append_str(out, settings[i].name));
    APP_RETURN_IF_FAILED(buf_append_char(out, '='));
    APP_RETURN_IF_FAILED(value_text(cfg, &settings[i], out));
    APP_RETURN_IF_FAILED(buf_append_char(out, '\n'));
  }
  return APP_OK;
}

enum app_result config_doc_table(struct buf *out)
{
  size_t i;
  APP_RETURN_IF_FAILED(buf_append_str(out, "| Setting | Default | Meaning |\n|---|---|---|\n"));
  for (i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    const struct setting *s = &settings[i];
    APP_RETURN_IF_FAILED(buf_printf(out, "| `%s` | %s%s%s | %s%s%s%s%s |\n", s->name,
                                    *s->def ? "`" : "", *s->def ? s->def : "(empty)",
                                    *s->def ? "`" : "", s->doc, s->secret ? " Secret." : "",
                                    s->fallback ? " Fallback name: `" : "",
                                    s->fallback ? s->fallback : "", s->fallback ? "`." : ""));
  }
  return APP_OK;
}

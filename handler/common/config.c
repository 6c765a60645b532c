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
     "Redis in StackExchange.Redis form: host:port,password=...,ssl=True,abortConnect=False. "
     "Required in Azure for CDC_TARGET redis or redis+sql (the default is for local runs)."},
    {"CDC_REDIS_CA_FILE", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(redis_ca_file),
     "PEM file of CA certificates trusted for Redis TLS (ssl=True); empty: the system CA store."},
    {"RedisConnection__redisHostName", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(redis_host_name),
     "Redis with Microsoft Entra ID (identity-based connection): host[:port] (port default "
     "6380; Azure Managed Redis: 10000). When set, RedisConnection is not used: TLS is on and "
     "every connection AUTHs as RedisConnection__principalId with a token for "
     "https://redis.azure.com/.default, renewed before it expires."},
    {"RedisConnection__principalId", NULL, ST_STRING, "", 0, 0, NULL, false,
     OFF(redis_principal_id),
     "Object (principal) id of the identity: the Redis user name of its data access policy "
     "assignment. Required with RedisConnection__redisHostName."},
    {"RedisConnection__clientId", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(redis_client_id),
     "Client id of the user-assigned managed identity to use (empty: the system-assigned one), "
     "or of the app registration with RedisConnection__tenantId + __clientSecret."},
    {"RedisConnection__tenantId", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(redis_tenant_id),
     "Local development: tenant of the service principal (with __clientId and __clientSecret); "
     "wins over every AZURE_* setting and the managed identity."},
    {"RedisConnection__clientSecret", NULL, ST_STRING, "", 0, 0, NULL, true,
     OFF(redis_client_secret), "Local development: the service principal's client secret."},
    {"AZURE_TENANT_ID", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(azure_tenant_id),
     "Entra ID tenant for the AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH and "
     "AZURE_FEDERATED_TOKEN_FILE credentials (Azure Identity's environment settings)."},
    {"AZURE_CLIENT_ID", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(azure_client_id),
     "Client id of the app registration for those credentials; without them, the user-assigned "
     "managed identity to use (a connection's __clientId wins)."},
    {"AZURE_CLIENT_SECRET", NULL, ST_STRING, "", 0, 0, NULL, true, OFF(azure_client_secret),
     "Client secret (first of the environment credentials)."},
    {"AZURE_CLIENT_CERTIFICATE_PATH", NULL, ST_STRING, "", 0, 0, NULL, false,
     OFF(azure_client_certificate_path),
     "The app's certificate with its RSA private key, PEM or PFX: a signed client assertion "
     "instead of a secret (used when AZURE_CLIENT_SECRET is unset)."},
    {"AZURE_CLIENT_CERTIFICATE_PASSWORD", NULL, ST_STRING, "", 0, 0, NULL, true,
     OFF(azure_client_certificate_password),
     "Password of the certificate file (a PFX, or a PEM with an encrypted key)."},
    {"AZURE_FEDERATED_TOKEN_FILE", NULL, ST_STRING, "", 0, 0, NULL, false,
     OFF(azure_federated_token_file),
     "Workload identity: file whose contents are the client assertion, read at every token "
     "request (used when neither a secret nor a certificate is set)."},
    {"AZURE_AUTHORITY_HOST", NULL, ST_STRING, "https://login.microsoftonline.com", 0, 0, NULL,
     false, OFF(azure_authority_host),
     "Entra ID authority of the v2.0 token endpoint (sovereign clouds: e.g. "
     "https://login.microsoftonline.us); https, or http to a loopback host."},
    {"IDENTITY_ENDPOINT", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(identity_endpoint),
     "Managed identity endpoint; set by App Service / Functions when the app has an identity "
     "(used when no AZURE_* credential is complete)."},
    {"IDENTITY_HEADER", NULL, ST_STRING, "", 0, 0, NULL, true, OFF(identity_header),
     "Sent as X-IDENTITY-HEADER to IDENTITY_ENDPOINT; set by the platform with it."},
    {"CDC_IDENTITY_TIMEOUT_MS", NULL, ST_INT, "10000", 100, 120000, NULL, false,
     OFF(identity_timeout_ms),
     "Longest one token request may take (connect and response); failures back off 0.5 s "
     "doubling to 30 s."},
    {"DataverseUrl", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(dataverse_url),
     "Root URL of the Dataverse environment (https://<org>.crm<N>.dynamics.com) for the "
     "snapshot, reconciliation and re-reads (function Reconcile); tokens for "
     "<DataverseUrl>/.default come from the AZURE_*/IDENTITY_* credential. Empty: no replica "
     "work."},
    {"CDC_RECONCILE_TABLES", NULL, ST_STRING, "", 0, 0, NULL, false, OFF(reconcile_tables),
     "Tables (logical names, comma-separated) the Reconcile function snapshots and then keeps "
     "exact through their change-tracking delta links (Track changes must be on for each)."},
    {"CDC_RECONCILE_SCHEDULE", NULL, ST_STRING, "0 */5 * * * *", 0, 0, NULL, false,
     OFF(reconcile_schedule),
     "NCRONTAB schedule of the Reconcile timer (function.json reads it as "
     "%CDC_RECONCILE_SCHEDULE%; the host resolves it, the handler only documents it)."},
    {"CDC_RECONCILE_BUDGET_SECONDS", NULL, ST_INT, "120", 5, 3600, NULL, false,
     OFF(reconcile_budget_s),
     "Longest one Reconcile invocation works before it saves its place and answers (keep it "
     "well under host.json functionTimeout)."},
    {"CDC_RECONCILE_PAGE_SIZE", NULL, ST_INT, "1000", 1, 5000, NULL, false,
     OFF(reconcile_page_size), "Rows per Web API page (Prefer: odata.maxpagesize)."},
    {"CDC_DATAVERSE_TIMEOUT_MS", NULL, ST_INT, "30000", 100, 300000, NULL, false,
     OFF(dataverse_timeout_ms), "Longest one Dataverse Web API request may take."},
    {"CDC_RECONCILE_LOCK_SECONDS", NULL, ST_INT, "60", 2, 3600, NULL, false, OFF(reconcile_lock_s),
     "Expiry of a table's worker lock; renewed after every page, so it only matters when a "
     "worker dies: another instance takes the table over that long after."},
    {"CDC_DATAVERSE_MAX_RESPONSE_BYTES", NULL, ST_SIZE, "67108864", 4096, 1LL << 30, NULL, false,
     OFF(dataverse_max_bytes),
     "Largest Web API answer read (one page); a larger one fails the run with that reason."},
    {"CDC_REREAD_BATCH", NULL, ST_INT, "50", 1, 100, NULL, false, OFF(reread_batch),
     "Records re-read per Web API request ($filter=<key> in (...))."},
    {"SqlConnectionString", NULL, ST_STRING, "", 0, 0, NULL, true, OFF(sql_connection),
     "SQL database: ADO.NET form (Server=...;Database=...) or an ODBC connection string. "
     "Required for CDC_TARGET sql or redis+sql."},
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
    {"CDC_METRICS_FLUSH_MS", NULL, ST_INT, "10000", 0, 3600000, NULL, false, OFF(metrics_flush_ms),
     "How often each instance adds its metrics to the shared Redis hash <CDC_KEY_PREFIX>:{ops}:"
     "metrics (one round trip); 0 = only when the metrics are read and at shutdown."},
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
    {"CDC_TOMBSTONE_TTL_SECONDS", NULL, ST_INT, "0", 0, 315360000, NULL, false,
     OFF(tombstone_ttl_s),
     "How long a deleted record's tombstone (and a disassociation) is kept; 0 keeps them "
     "(a few fields each). When set, a change whose OperationCreatedOn is older than this "
     "horizon is refused as poison, since the tombstone it must be compared with may be gone "
     "(docs/versioning.md)."},
    {"CDC_MAX_CONNECTIONS", NULL, ST_INT, "512", 4, 65536, NULL, false, OFF(max_connections),
     "Most HTTP connections served at once; at the limit a new one closes the oldest connection "
     "that is trickling a request (else the one idle longest)."},
    {"CDC_CONNECTION_TIMEOUT_SECONDS", NULL, ST_INT, "300", 1, 86400, NULL, false,
     OFF(connection_timeout_s), "Idle keep-alive connections are closed after this long."},
    {"CDC_SHUTDOWN_GRACE_MS", NULL, ST_INT, "10000", 0, 600000, NULL, false, OFF(shutdown_grace_ms),
     "On SIGTERM/SIGINT, how long in-flight requests may take to finish."},
    {"CDC_HEADER_TIMEOUT_SECONDS", NULL, ST_INT, "10", 1, 3600, NULL, false, OFF(header_timeout_s),
     "A new connection must have sent its request line and headers within this time, however "
     "slowly the bytes trickle in; then it is closed."},
    {"CDC_BODY_TIMEOUT_SECONDS", NULL, ST_INT, "60", 1, 86400, NULL, false, OFF(body_timeout_s),
     "A request body must have arrived in full within this time after its headers; then the "
     "connection is closed (the host retries the invocation)."},
    {"CDC_MAX_PENDING_CONNECTIONS", NULL, ST_INT, "0", 0, 65536, NULL, false,
     OFF(max_pending_connections),
     "Most connections that have not yet sent their first request's headers; one more closes "
     "the oldest of them, so slow clients never take the host's capacity. 0: half of "
     "CDC_MAX_CONNECTIONS."},
    {"CDC_MAX_BUFFERED_BYTES", NULL, ST_SIZE, "268435456", 1024, 1LL << 40, NULL, false,
     OFF(max_buffered_bytes),
     "Request bodies held in memory at once, all connections together (a declared "
     "Content-Length is reserved when the headers arrive); over it: 503 with Retry-After. "
     "At least CDC_MAX_REQUEST_BYTES."},
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

/* Running in Azure: WEBSITE_INSTANCE_ID is set on every App Service /
 * Functions instance; AZURE_FUNCTIONS_ENVIRONMENT is Development under Core
 * Tools (func start) and Production by default in Azure. */
static bool in_azure(config_lookup_fn lookup)
{
  const char *id = lookup("WEBSITE_INSTANCE_ID");
  const char *env = lookup("AZURE_FUNCTIONS_ENVIRONMENT");
  return (id && *id) || (env && *env && strcasecmp(env, "Development") != 0);
}

static bool given(config_lookup_fn lookup, const char *name)
{
  const char *v = lookup(name);
  return v && *v;
}

/* In Azure the local default (127.0.0.1:6379) would only make every write
 * fail: the connection the target needs must be set. */
static enum app_result check_azure(const struct app_config *cfg, config_lookup_fn lookup,
                                   struct app_err *err)
{
  bool redis = cfg->target == CFG_TARGET_REDIS || cfg->target == CFG_TARGET_BOTH;
  if (cfg->mode != CFG_MODE_DIRECT || !in_azure(lookup))
    return APP_OK;
  /* identity-based (Entra ID) connections name the host in
   * RedisConnection__redisHostName instead */
  if (redis && !given(lookup, "RedisConnection") &&
      !given(lookup, "RedisConnection__redisHostName"))
    return app_err_set(err, APP_ERR_CONFIG,
                       "RedisConnection is not set: CDC_TARGET=%s writes to Redis; add the app "
                       "setting (host:port,password=...,ssl=True, or "
                       "RedisConnection__redisHostName for Entra ID) or set CDC_TARGET",
                       cfg->target == CFG_TARGET_BOTH ? "redis+sql" : "redis");
  return APP_OK;
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
  if (check_azure(cfg, lookup, err) != APP_OK) {
    config_cleanup(cfg);
    return APP_ERR_CONFIG;
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
  free(cfg->redis_host_name);
  free(cfg->redis_principal_id);
  free(cfg->redis_client_id);
  free(cfg->redis_tenant_id);
  free(cfg->redis_client_secret);
  free(cfg->azure_tenant_id);
  free(cfg->azure_client_id);
  free(cfg->azure_client_secret);
  free(cfg->azure_client_certificate_path);
  free(cfg->azure_client_certificate_password);
  free(cfg->azure_federated_token_file);
  free(cfg->azure_authority_host);
  free(cfg->identity_endpoint);
  free(cfg->identity_header);
  free(cfg->sql_connection);
  free(cfg->sql_dialect);
  free(cfg->sql_odbc_driver);
  free(cfg->poison_stream);
  free(cfg->key_prefix);
  free(cfg->dataverse_url);
  free(cfg->reconcile_tables);
  free(cfg->reconcile_schedule);
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

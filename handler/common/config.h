/* config.h - app settings: one table, read once at start-up.
 *
 * Settings come from environment variables, which is how the Functions host
 * passes App Settings (and local.settings.json Values under `func start`).
 * Every setting, its default and its bounds are in the table in config.c,
 * and docs/configuration.md lists the same. Secret settings are never
 * printed: config_dump writes "<set>" for them. */
#ifndef D365CDC_CONFIG_H
#define D365CDC_CONFIG_H

#include "common/buf.h"
#include "common/log.h"
#include "common/result.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_target {
  CFG_TARGET_REDIS = 1,
  CFG_TARGET_SQL = 2,
  CFG_TARGET_BOTH = 3,
  CFG_TARGET_NONE = 4
};
enum cfg_mode { CFG_MODE_DIRECT = 0, CFG_MODE_BINDINGS };
enum cfg_poison { CFG_POISON_RECORD = 0, CFG_POISON_FAIL };
enum cfg_sql_delete { CFG_SQL_DELETE_SOFT = 0, CFG_SQL_DELETE_HARD };
enum cfg_sql_schema { CFG_SQL_SCHEMA_EVOLVE = 0, CFG_SQL_SCHEMA_VALIDATE };

struct app_config {
  int port;                       /* FUNCTIONS_CUSTOMHANDLER_PORT, FUNCTIONS_HTTPWORKER_PORT */
  char *listen_address;           /* CDC_LISTEN_ADDRESS */
  enum log_level log_level;       /* CDC_LOG_LEVEL */
  char *mapping_file;             /* CDC_MAPPING_FILE ("" = built-in defaults) */
  char *app_root;                 /* FUNCTIONS_APP_ROOT_PATH ("" when unset) */
  enum cfg_target target;         /* CDC_TARGET */
  enum cfg_mode mode;             /* CDC_MODE */
  char *redis_connection;         /* RedisConnection (secret) */
  char *redis_ca_file;            /* CDC_REDIS_CA_FILE ("" = system CA store) */
  char *sql_connection;           /* SqlConnectionString (secret) */
  char *sql_dialect;              /* CDC_SQL_DIALECT: auto|tsql|postgres */
  char *sql_odbc_driver;          /* CDC_SQL_ODBC_DRIVER ("" = default for the dialect) */
  enum cfg_sql_delete sql_delete; /* CDC_SQL_DELETE */
  enum cfg_sql_schema sql_schema; /* CDC_SQL_SCHEMA */
  int sql_pool;                   /* CDC_SQL_POOL */
  int sql_login_timeout_s;  /* CDC_SQL_LOGIN_TIMEOUT_SECONDS (0 = from the connection string) */
  int sql_query_timeout_s;  /* CDC_SQL_QUERY_TIMEOUT_SECONDS (0 = from the connection string) */
  size_t max_request_bytes; /* CDC_MAX_REQUEST_BYTES */
  size_t max_message_bytes; /* CDC_MAX_MESSAGE_BYTES */
  int max_batch_messages;   /* CDC_MAX_BATCH_MESSAGES */
  int max_json_depth;       /* CDC_MAX_JSON_DEPTH */
  enum cfg_poison poison;   /* CDC_POISON */
  char *poison_stream;      /* CDC_POISON_STREAM */
  int poison_maxlen;        /* CDC_POISON_MAXLEN */
  int metrics_flush_ms;     /* CDC_METRICS_FLUSH_MS */
  int retry_budget_ms;      /* CDC_RETRY_BUDGET_MS */
  int retry_initial_ms;     /* CDC_RETRY_INITIAL_MS */
  int redis_pool;           /* CDC_REDIS_POOL */
  int read_connections;     /* CDC_READ_CONNECTIONS: batches of reads in flight */
  int redis_cluster;        /* CDC_REDIS_CLUSTER: 0 auto, 1 on, 2 off (enum redis_cluster_mode) */
  int redis_wait_replicas;  /* CDC_REDIS_WAIT_REPLICAS: WAIT after each node's writes (cluster) */
  char *key_prefix;         /* CDC_KEY_PREFIX */
  int tombstone_ttl_s;      /* CDC_TOMBSTONE_TTL_SECONDS */
  int max_connections;      /* CDC_MAX_CONNECTIONS */
  int connection_timeout_s; /* CDC_CONNECTION_TIMEOUT_SECONDS */
  int shutdown_grace_ms;    /* CDC_SHUTDOWN_GRACE_MS */

  /* Microsoft Entra ID (handler/identity/, redis/redis_entra.h) */
  char *redis_host_name;               /* RedisConnection__redisHostName ("" = RedisConnection) */
  char *redis_principal_id;            /* RedisConnection__principalId */
  char *redis_client_id;               /* RedisConnection__clientId */
  char *redis_tenant_id;               /* RedisConnection__tenantId */
  char *redis_client_secret;           /* RedisConnection__clientSecret (secret) */
  char *azure_tenant_id;               /* AZURE_TENANT_ID */
  char *azure_client_id;               /* AZURE_CLIENT_ID */
  char *azure_client_secret;           /* AZURE_CLIENT_SECRET (secret) */
  char *azure_client_certificate_path; /* AZURE_CLIENT_CERTIFICATE_PATH */
  char *azure_client_certificate_password; /* AZURE_CLIENT_CERTIFICATE_PASSWORD (secret) */
  char *azure_federated_token_file;        /* AZURE_FEDERATED_TOKEN_FILE */
  char *azure_authority_host;              /* AZURE_AUTHORITY_HOST */
  char *identity_endpoint;                 /* IDENTITY_ENDPOINT */
  char *identity_header;                   /* IDENTITY_HEADER (secret) */
  int identity_timeout_ms;                 /* CDC_IDENTITY_TIMEOUT_MS */

  /* the HTTP front's hardening (issue 17) */
  int header_timeout_s;        /* CDC_HEADER_TIMEOUT_SECONDS */
  int body_timeout_s;          /* CDC_BODY_TIMEOUT_SECONDS */
  int max_pending_connections; /* CDC_MAX_PENDING_CONNECTIONS; 0: half the connections */
  size_t max_buffered_bytes;   /* CDC_MAX_BUFFERED_BYTES */

  /* Replica: snapshot, reconciliation and re-reads (replica/replica.h) */
  char *dataverse_url;        /* DataverseUrl ("" = no replica work) */
  char *reconcile_tables;     /* CDC_RECONCILE_TABLES (comma list of logical names) */
  char *reconcile_schedule;   /* CDC_RECONCILE_SCHEDULE (for function.json) */
  int reconcile_budget_s;     /* CDC_RECONCILE_BUDGET_SECONDS */
  int reconcile_page_size;    /* CDC_RECONCILE_PAGE_SIZE */
  int dataverse_timeout_ms;   /* CDC_DATAVERSE_TIMEOUT_MS */
  int reread_batch;           /* CDC_REREAD_BATCH */
  int reconcile_lock_s;       /* CDC_RECONCILE_LOCK_SECONDS */
  size_t dataverse_max_bytes; /* CDC_DATAVERSE_MAX_RESPONSE_BYTES */
};

/* Looks a setting up by name; NULL when unset. getenv fits. */
typedef const char *(*config_lookup_fn)(const char *name);

/* Fill *cfg from the settings table, using lookup (NULL: getenv).
 * APP_ERR_CONFIG with a message naming the setting, the bad value and what
 * was expected (never the value of a secret). On failure *cfg is cleaned. */
APP_NODISCARD enum app_result config_load(struct app_config *cfg, config_lookup_fn lookup,
                                          struct app_err *err);

/* Free the strings. NULL-safe. */
void config_cleanup(struct app_config *cfg);

/* Append "name=value" lines for every setting (secrets as <set>/<unset>). */
APP_NODISCARD enum app_result config_dump(const struct app_config *cfg, struct buf *out);

/* Append the settings table as a Markdown table (for docs/configuration.md). */
APP_NODISCARD enum app_result config_doc_table(struct buf *out);

#endif

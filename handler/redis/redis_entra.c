/* redis_entra.c - identity-based Redis settings and the shared provider. */
#include "redis/redis_entra.h"

#include "common/log.h"
#include "identity/azid.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static struct azid *shared;

static enum app_result shared_provider(const struct app_config *cfg, struct azid **out,
                                       struct app_err *err)
{
  struct idcred_settings s;
  struct idcred cred;
  struct azid_options opt;
  enum app_result r = APP_OK;

  pthread_mutex_lock(&shared_mu);
  if (!shared) {
    idcred_settings_from_config(cfg, &s);
    s.conn_name = "RedisConnection";
    s.conn_tenant_id = cfg->redis_tenant_id;
    s.conn_client_id = cfg->redis_client_id;
    s.conn_client_secret = cfg->redis_client_secret;
    r = idcred_select(&s, &cred, err);
    if (r == APP_OK) {
      memset(&opt, 0, sizeof opt);
      opt.timeout_ms = cfg->identity_timeout_ms;
      r = azid_create(&cred, &opt, &shared, err);
      idcred_cleanup(&cred);
    }
  }
  *out = shared;
  pthread_mutex_unlock(&shared_mu);
  return r;
}

void redis_entra_shutdown(void)
{
  pthread_mutex_lock(&shared_mu);
  azid_destroy(shared);
  shared = NULL;
  pthread_mutex_unlock(&shared_mu);
}

enum app_result redis_conninfo_from_config(const struct app_config *cfg, struct redis_conninfo *out,
                                           struct app_err *err)
{
  const char *host = cfg->redis_host_name;
  struct buf text;
  struct azid *id = NULL;
  enum app_result r;

  if (!host || !*host) {
    r = redis_conninfo_parse(cfg->redis_connection, out, err);
    if (r == APP_OK && cfg->redis_ca_file && *cfg->redis_ca_file)
      out->ca_file = xstrdup(cfg->redis_ca_file);
    return r;
  }
  memset(out, 0, sizeof *out);
  if (strpbrk(host, ",= \t"))
    return app_err_set(err, APP_ERR_CONFIG,
                       "setting RedisConnection__redisHostName: '%s' must be host[:port] only "
                       "(no options)",
                       host);
  if (!cfg->redis_principal_id || !*cfg->redis_principal_id)
    return app_err_set(err, APP_ERR_CONFIG,
                       "setting RedisConnection__principalId is required with "
                       "RedisConnection__redisHostName: the object (principal) id of the "
                       "identity, which is its Redis user name");
  buf_init(&text, 0);
  r = buf_printf(&text, "%s,ssl=True,abortConnect=False", host);
  if (r == APP_OK)
    r = redis_conninfo_parse(text.data, out, err);
  buf_cleanup(&text);
  if (r != APP_OK)
    return app_err_wrap(err, "setting RedisConnection__redisHostName");
  if (cfg->redis_ca_file && *cfg->redis_ca_file)
    out->ca_file = xstrdup(cfg->redis_ca_file);
  r = shared_provider(cfg, &id, err);
  if (r != APP_OK)
    return r;
  out->user = xstrdup(cfg->redis_principal_id);
  out->identity = id;
  LOG_INFO("redis: Microsoft Entra ID authentication as '%s' with %s (RedisConnection__*; "
           "RedisConnection is not used)",
           cfg->redis_principal_id, azid_describe(id));
  return APP_OK;
}

/* redis_entra.h - the Redis connection settings, with Microsoft Entra ID.
 *
 * RedisConnection__redisHostName set: an identity-based connection the way
 * the Functions Redis extension documents it - host[:port] (TLS on, port
 * 6380 by default), RedisConnection__principalId as the Redis user, a
 * token for https://redis.azure.com/.default as the password, from the
 * credential token.h's idcred_select picks (the connection's
 * __tenantId/__clientId/__clientSecret first, then AZURE_*, workload
 * identity, the managed identity). Unset: RedisConnection, as before.
 *
 * The token provider is one per process (the writers' pool, the read API's
 * pool and any per-node connection share its cache), created on first use. */
#ifndef D365CDC_REDIS_ENTRA_H
#define D365CDC_REDIS_ENTRA_H

#include "common/config.h"
#include "redis/redis_conn.h"

/* Fill *out (caller frees with redis_conninfo_cleanup, also on failure)
 * from cfg: RedisConnection__* or RedisConnection, plus CDC_REDIS_CA_FILE.
 * APP_ERR_CONFIG naming the setting when something is missing or wrong
 * (principalId unset, options in redisHostName, no usable credential). */
APP_NODISCARD enum app_result redis_conninfo_from_config(const struct app_config *cfg,
                                                         struct redis_conninfo *out,
                                                         struct app_err *err);

/* Free the process's token provider; every connection using it must be
 * closed. main calls it at exit. */
void redis_entra_shutdown(void);

#endif

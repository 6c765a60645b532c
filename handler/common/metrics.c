/* metrics.c - atomic counters and their renderings. */
#include "common/metrics.h"

static uint64_t values[M_COUNT];

static const struct {
  const char *name;
  const char *help;
  int gauge;
} info[M_COUNT] = {
    [M_INVOCATIONS] = {"invocations", "Change invocations handled", 0},
    [M_INVOCATIONS_FAILED] = {"invocations_failed", "Change invocations answered non-2xx", 0},
    [M_MESSAGES] = {"messages", "Service Bus messages received", 0},
    [M_APPLIED] = {"applied", "Documents whose write changed the target", 0},
    [M_STALE] = {"stale", "Documents older than or equal to the stored version", 0},
    [M_SKIPPED] = {"skipped", "Changes the mapping did not accept", 0},
    [M_POISON] = {"poison", "Poison messages found", 0},
    [M_POISON_RECORDED] = {"poison_recorded", "Poison messages recorded in the poison stream", 0},
    [M_REREAD] = {"reread", "Truncated contexts marked for a re-read", 0},
    [M_ORDER_TIES] = {"order_ties",
                      "Changes applied in an order the payloads could not decide (same time, "
                      "no row version; nested changes), their records marked for a re-read",
                      0},
    [M_RETRIES] = {"retries", "Sink attempts after the first", 0},
    [M_ROUND_TRIPS] = {"round_trips", "Sink round trips", 0},
    [M_READS] = {"reads", "Read API requests", 0},
    [M_READS_NOT_FOUND] = {"reads_not_found", "Read API requests answered 404", 0},
    [M_READS_NOT_MODIFIED] = {"reads_not_modified", "Read API requests answered 304", 0},
    [M_READS_FAILED] = {"reads_failed", "Read API requests answered 5xx", 0},
    [M_LAST_APPLY_AGE_MS] = {"last_apply_age_ms",
                             "Age of the newest applied change when it was applied (ms since "
                             "its OperationCreatedOn)",
                             1},
    [M_LAST_SUCCESS_UNIX_MS] = {"last_success_unix_ms",
                                "Wall clock of the last successful change invocation", 1},
    [M_TOKEN_FETCHES] = {"token_fetches", "Microsoft Entra ID token requests", 0},
    [M_TOKEN_FAILURES] = {"token_failures", "Microsoft Entra ID token requests that failed", 0},
    [M_REDIS_TOKEN_AUTHS] = {"redis_token_auths", "Redis AUTHs with an Entra ID token", 0},
    [M_REDIS_REAUTHS] = {"redis_reauths", "Redis re-AUTHs of open connections with a newer token",
                         0},
    [M_REDIS_AUTH_FAILURES] = {"redis_auth_failures",
                               "Redis AUTHs with an Entra ID token that were refused", 0},
};

void metrics_add(enum metric m, uint64_t n)
{
  __atomic_add_fetch(&values[m], n, __ATOMIC_RELAXED);
}

void metrics_set(enum metric m, uint64_t v)
{
  __atomic_store_n(&values[m], v, __ATOMIC_RELAXED);
}

uint64_t metrics_get(enum metric m)
{
  return __atomic_load_n(&values[m], __ATOMIC_RELAXED);
}

enum app_result metrics_json(struct buf *out)
{
  int i;
  APP_RETURN_IF_FAILED(buf_append_char(out, '{'));
  for (i = 0; i < M_COUNT; i++) {
    APP_RETURN_IF_FAILED(buf_printf(out, "%s\"%s\":", i ? "," : "", info[i].name));
    APP_RETURN_IF_FAILED(buf_append_u64(out, metrics_get((enum metric)i)));
  }
  return buf_append_char(out, '}');
}

enum app_result metrics_prometheus(struct buf *out)
{
  int i;
  for (i = 0; i < M_COUNT; i++) {
    const char *type = info[i].gauge ? "gauge" : "counter";
    const char *suffix = info[i].gauge ? "" : "_total";
    APP_RETURN_IF_FAILED(buf_printf(out, "# HELP d365cdc_%s%s %s\n# TYPE d365cdc_%s%s %s\n",
                                    info[i].name, suffix, info[i].help, info[i].name, suffix,
                                    type));
    APP_RETURN_IF_FAILED(buf_printf(out, "d365cdc_%s%s ", info[i].name, suffix));
    APP_RETURN_IF_FAILED(buf_append_u64(out, metrics_get((enum metric)i)));
    APP_RETURN_IF_FAILED(buf_append_char(out, '\n'));
  }
  return APP_OK;
}

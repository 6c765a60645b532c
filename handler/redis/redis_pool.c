/* redis_pool.c - connection pool: mutex + condvar, lazy connects, shared
 * reconnect backoff. */
#include "redis/redis_pool.h"

#include "common/log.h"
#include "map/sink.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_BACKOFF_FIRST_MS 100
#define POOL_BACKOFF_MAX_MS   5000

struct redis_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a slot or an idle connection became available */
  struct redis_conninfo ci;
  struct redis_tls *tls;
  char *setup;
  size_t setup_len, nsetup;
  struct redis_conn **idle; /* stack of idle connections */
  size_t nidle;
  size_t size;     /* most connections */
  size_t borrowed; /* slots in use: borrowed or being connected */
  /* connect backoff, shared by every thread */
  int64_t retry_at_ms;
  int backoff_ms;
  struct app_err last_err;
  size_t connects, connect_failures;
  struct redis_cluster *cluster; /* redis_pool_set_cluster; not owned */
};

enum app_result redis_pool_create(struct redis_conninfo *ci, size_t size, const char *setup,
                                  size_t setup_len, size_t nsetup, struct redis_pool **out,
                                  struct app_err *err)
{
  struct redis_pool *p;
  pthread_condattr_t ca;
  enum app_result r;

  *out = NULL;
  if (size == 0)
    size = 1;
  p = xcalloc(1, sizeof *p);
  p->ci = *ci;
  memset(ci, 0, sizeof *ci);
  if (p->ci.ssl) {
    r = redis_tls_create(&p->ci, &p->tls, err);
    if (r != APP_OK) {
      redis_conninfo_cleanup(&p->ci);
      free(p);
      return r;
    }
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  p->size = size;
  p->idle = xcalloc(size, sizeof *p->idle);
  if (setup_len) {
    p->setup = xmalloc(setup_len);
    memcpy(p->setup, setup, setup_len);
    p->setup_len = setup_len;
    p->nsetup = nsetup;
  }
  *out = p;
  return APP_OK;
}

void redis_pool_destroy(struct redis_pool *p)
{
  size_t i;
  if (!p)
    return;
  for (i = 0; i < p->nidle; i++)
    redis_conn_close(p->idle[i]);
  free(p->idle);
  free(p->setup);
  redis_tls_destroy(p->tls);
  redis_conninfo_cleanup(&p->ci);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* Give a slot back (caller holds no connection for it). */
static void slot_free(struct redis_pool *p)
{
  pthread_mutex_lock(&p->mu);
  p->borrowed--;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static enum app_result connect_slot(struct redis_pool *p, int64_t deadline_ms,
                                    struct redis_conn **out, struct app_err *err)
{
  int64_t retry_at, cdeadline;
  enum app_result r;
  struct app_err last;

  pthread_mutex_lock(&p->mu);
  retry_at = p->retry_at_ms;
  last = p->last_err;
  pthread_mutex_unlock(&p->mu);
  if (retry_at > sink_now_ms()) {
    if (retry_at > deadline_ms) {
      if (err)
        *err = last;
      app_err_wrap(err, "redis: reconnect backing off (next attempt in %lld ms); last error",
                   (long long)(retry_at - sink_now_ms()));
      return last.code != APP_OK ? last.code : APP_ERR_IO;
    }
    /* a shutdown must not wait out the backoff (sink.h) */
    if (!sink_sleep_ms(retry_at - sink_now_ms())) {
      if (err)
        *err = last;
      app_err_wrap(err, "redis: shutting down during the reconnect backoff; last error");
      return last.code != APP_OK ? last.code : APP_ERR_IO;
    }
  }
  cdeadline = sink_now_ms() + p->ci.connect_timeout_ms;
  if (cdeadline > deadline_ms && deadline_ms > sink_now_ms())
    cdeadline = deadline_ms;
  r = redis_conn_open(&p->ci, p->tls, p->setup, p->setup_len, p->nsetup, cdeadline, out, err);
  pthread_mutex_lock(&p->mu);
  if (r == APP_OK) {
    p->connects++;
    p->backoff_ms = 0;
    p->retry_at_ms = 0;
  } else {
    p->connect_failures++;
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : POOL_BACKOFF_FIRST_MS;
    if (p->backoff_ms > POOL_BACKOFF_MAX_MS)
      p->backoff_ms = POOL_BACKOFF_MAX_MS;
    p->retry_at_ms = sink_now_ms() + p->backoff_ms;
    if (err)
      p->last_err = *err;
    else
      app_err_set(&p->last_err, r, "connect failed");
  }
  pthread_mutex_unlock(&p->mu);
  return r;
}

enum app_result redis_pool_acquire(struct redis_pool *p, int64_t deadline_ms,
                                   struct redis_conn **out, struct app_err *err)
{
  struct redis_conn *c = NULL;
  enum app_result r;

  *out = NULL;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    if (p->nidle) {
      c = p->idle[--p->nidle];
      p->borrowed++;
      break;
    }
    if (p->borrowed < p->size) {
      p->borrowed++;
      break;
    }
    {
      struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
      if (sink_now_ms() >= deadline_ms) {
        pthread_mutex_unlock(&p->mu);
        return app_err_set(err, APP_ERR_TIMEOUT,
                           "redis: all %zu pooled connections stayed busy (CDC_REDIS_POOL)",
                           p->size);
      }
      pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
  }
  pthread_mutex_unlock(&p->mu);
  if (c && redis_conn_idle_dead(c)) {
    /* the server closed it while idle (restart, idle timeout): reconnect
     * now instead of failing the caller's first exchange */
    LOG_DEBUG("redis: pooled connection was closed by the server; reconnecting");
    redis_conn_close(c);
    c = NULL;
  }
  if (!c) {
    r = connect_slot(p, deadline_ms, &c, err);
    if (r != APP_OK) {
      slot_free(p);
      return r;
    }
  }
  *out = c;
  return APP_OK;
}

struct redis_conn *redis_pool_try_acquire(struct redis_pool *p)
{
  struct redis_conn *c = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->nidle) {
    c = p->idle[--p->nidle];
    p->borrowed++;
  }
  pthread_mutex_unlock(&p->mu);
  if (c && redis_conn_idle_dead(c)) {
    redis_conn_close(c);
    slot_free(p);
    c = NULL;
  }
  return c;
}

void redis_pool_release(struct redis_pool *p, struct redis_conn *c)
{
  if (!c)
    return;
  if (redis_conn_broken(c)) {
    redis_conn_close(c);
    slot_free(p);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->idle[p->nidle++] = c;
  p->borrowed--;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

void redis_pool_drop_idle(struct redis_pool *p)
{
  struct redis_conn **list;
  size_t n, i;
  pthread_mutex_lock(&p->mu);
  n = p->nidle;
  list = xcalloc(n ? n : 1, sizeof *list);
  memcpy(list, p->idle, n * sizeof *list);
  p->nidle = 0;
  pthread_mutex_unlock(&p->mu);
  for (i = 0; i < n; i++)
    redis_conn_close(list[i]);
  free(list);
}

const struct redis_conninfo *redis_pool_info(const struct redis_pool *p)
{
  return &p->ci;
}

void redis_pool_set_cluster(struct redis_pool *p, struct redis_cluster *cl)
{
  p->cluster = cl;
}

struct redis_cluster *redis_pool_cluster(const struct redis_pool *p)
{
  return p->cluster;
}

void redis_pool_get_stats(struct redis_pool *p, struct redis_pool_stats *out)
{
  pthread_mutex_lock(&p->mu);
  out->size = p->size;
  out->open = p->nidle + p->borrowed;
  out->connects = p->connects;
  out->connect_failures = p->connect_failures;
  pthread_mutex_unlock(&p->mu);
}

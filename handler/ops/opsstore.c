/* opsstore.c - flush and read the shared metrics (see opsstore.h). */
#include "ops/opsstore.h"

#include "common/log.h"
#include "common/opsmetrics.h"
#include "map/sink.h"
#include "redis/redis_ops.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct opsstore {
  struct redis_pool *pool; /* borrowed; NULL: no shared store */
  char *key;               /* <prefix>:{ops}:metrics */
  int flush_ms;
  int sync_timeout_ms;
  pthread_t thread;
  bool running;
  bool stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static enum app_result flush(struct opsstore *s, int64_t deadline_ms, struct app_err *err)
{
  struct opsm_field *f = NULL;
  size_t n = 0;
  enum app_result r = APP_OK;
  if (!s->pool)
    return APP_OK;
  opsm_take(&f, &n);
  if (n) {
    r = redis_ops_hincr(s->pool, s->key, f, n, deadline_ms, err);
    /* an error after the write reached Redis could count twice; a lost
     * flush would undercount: the put-back is the safer side for alerts */
    if (r != APP_OK)
      opsm_restore(f, n);
  }
  free(f);
  return r;
}

enum app_result opsstore_flush(struct opsstore *s, int64_t deadline_ms, struct app_err *err)
{
  return s ? flush(s, deadline_ms, err) : APP_OK;
}

static void *flusher(void *arg)
{
  struct opsstore *s = arg;
  bool failing = false;
  pthread_mutex_lock(&s->mu);
  while (!s->stop) {
    struct timespec ts;
    struct app_err err;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += s->flush_ms / 1000;
    ts.tv_nsec += (long)(s->flush_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
      ;
    if (s->stop)
      break;
    pthread_mutex_unlock(&s->mu);
    if (flush(s, sink_now_ms() + s->sync_timeout_ms, &err) != APP_OK) {
      if (!failing)
        LOG_WARN("metrics flush to Redis failed (kept for the next one): %s", err.msg);
      failing = true;
    } else {
      failing = false;
    }
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

enum app_result opsstore_create(const struct app_config *cfg, struct redis_pool *pool,
                                struct opsstore **out, struct app_err *err)
{
  struct opsstore *s = xcalloc(1, sizeof *s);
  const char *prefix = cfg->key_prefix ? cfg->key_prefix : "";
  size_t kl = strlen(prefix) + 32;
  s->pool = pool;
  s->key = xmalloc(kl);
  snprintf(s->key, kl, "%s%s{ops}:metrics", prefix, *prefix ? ":" : "");
  s->flush_ms = cfg->metrics_flush_ms;
  s->sync_timeout_ms = pool ? redis_pool_info(pool)->sync_timeout_ms : 5000;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pool && s->flush_ms > 0) {
    int e = pthread_create(&s->thread, NULL, flusher, s);
    if (e) {
      opsstore_destroy(s);
      return app_err_set(err, APP_ERR_IO, "cannot start the metrics flusher: %s", strerror(e));
    }
    s->running = true;
  }
  *out = s;
  return APP_OK;
}

void opsstore_destroy(struct opsstore *s)
{
  struct app_err err;
  if (!s)
    return;
  if (s->running) {
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
  }
  if (s->pool && flush(s, sink_now_ms() + 1000, &err) != APP_OK)
    LOG_WARN("metrics flush at shutdown failed (this instance's last counts are lost): %s",
             err.msg);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s->key);
  free(s);
}

enum app_result opsstore_render(struct opsstore *s, bool prometheus, struct buf *out)
{
  struct opsm_field *f = NULL;
  size_t n = 0;
  struct app_err err;
  enum app_result r;
  int64_t deadline = sink_now_ms() + s->sync_timeout_ms;

  app_err_clear(&err);
  if (!s->pool) {
    r = app_err_set(&err, APP_ERR_UNSUPPORTED,
                    "shared metrics need a Redis target (CDC_TARGET=redis or redis+sql)");
  } else {
    r = flush(s, deadline, &err);
    if (r == APP_OK)
      r = redis_ops_hgetall(s->pool, s->key, &f, &n, deadline, &err);
  }
  if (r != APP_OK) {
    free(f);
    if (prometheus)
      return buf_printf(out, "# shared metrics unavailable: %s\n",
                        r == APP_ERR_UNSUPPORTED ? err.msg : app_result_str(r));
    APP_RETURN_IF_FAILED(buf_append_str(out, "{\"scope\":\"unavailable\",\"error\":"));
    /* client-facing: the class only for store errors (no internal host names) */
    {
      const char *e = r == APP_ERR_UNSUPPORTED ? err.msg : app_result_str(r);
      APP_RETURN_IF_FAILED(buf_append_json_str(out, e, strlen(e)));
    }
    return buf_append_char(out, '}');
  }
  if (prometheus) {
    r = opsm_render_prometheus(f, n, out);
  } else {
    r = buf_append_str(out, "{\"scope\":\"shared\",");
    if (r == APP_OK) {
      size_t at = out->len;
      r = opsm_render_json(f, n, out);
      /* opsm_render_json starts with '{': drop it, we opened the object */
      if (r == APP_OK) {
        memmove(out->data + at, out->data + at + 1, out->len - at - 1);
        out->len--;
        out->data[out->len] = '\0';
      }
    }
  }
  free(f);
  return r;
}

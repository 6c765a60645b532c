/* redis_mux.c - leader/follower auto-pipelining of reads (redis_mux.h).
 *
 * Why leader/follower and not a dispatcher thread: on a small machine every
 * wake-up costs; here the thread that starts a batch does its I/O itself,
 * so the only wake-ups are the followers' (each would have waited on its
 * own socket otherwise) and one hand-off per batch.
 *
 * Everything shared is under one mutex: the queue, the batches in flight
 * and the counters. The I/O runs without it. A caller's struct mux_req
 * lives on its own stack; it is reachable from the queue or from a batch
 * slot, and the caller unlinks it under the mutex before returning, so a
 * leader never touches a request whose caller has left.
 *
 * Waking: a waiter sleeps on a futex word of its request (wait with an
 * absolute CLOCK_MONOTONIC deadline). Whoever changes its state does so
 * under the mutex and bumps the word there too, but makes the wake-up call
 * only after releasing the mutex, so the woken thread does not at once
 * block on the mutex its waker still holds (measured: a third more context
 * switches per read with pthread_cond_signal under the mutex). A wake-up
 * only names an address: if its waiter has already left (it saw the new
 * state on a spurious wake-up), the call wakes nobody or, at worst, gives a
 * later waiter at that address a spurious wake-up, which every wait loop
 * here tolerates. */
#include "redis/redis_mux.h"

#include "map/sink.h"
#include "redis/redis_cluster.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum mux_state {
  MQ_QUEUED,   /* in the queue, waiting for a leader */
  MQ_LEADER,   /* handed the lead: takes the queue and does the I/O */
  MQ_INFLIGHT, /* in a leader's batch */
  MQ_DONE      /* result, err and replies filled */
};

struct mux_req {
  struct mux_req *prev, *next; /* queue links while MQ_QUEUED */
  struct mux_req **slot;       /* its entry in a batch while MQ_INFLIGHT */
  const char *cmds;            /* the caller's, valid while it waits */
  size_t len, n;
  redisReply **replies; /* the caller's array of n */
  int64_t deadline_ms;
  int state; /* enum mux_state; written under the mutex (atomically) */
  int word;  /* futex word, bumped under the mutex at each state change */
  enum app_result result;
  struct app_err err;
};

/* One batch in flight; at most max_leaders of them. */
struct mux_batch {
  bool busy;
  struct mux_req **reqs; /* max_batch entries; NULL once its caller left */
  size_t *first;         /* index of each request's first reply */
  size_t *n;             /* its number of replies */
  size_t count;
};

struct redis_mux {
  struct redis_pool *pool;
  size_t max_leaders, max_batch, max_queue;
  pthread_mutex_t mu;
  struct mux_req *head, *tail;
  size_t nqueued;
  size_t active; /* leaders (designated or doing I/O) */
  struct mux_batch *batches;
  struct redis_mux_stats stats;
};

/* The word first: once a waiter sees MQ_DONE it may return, and its
 * request (on its stack) must not be written after that. */
static void set_state(struct mux_req *q, enum mux_state st)
{
  __atomic_store_n(&q->word, q->word + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&q->state, (int)st, __ATOMIC_RELEASE);
}

static void futex_wake_one(int *w)
{
  syscall(SYS_futex, w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}

/* Sleep while *w == seen, until woken or the absolute monotonic time ts.
 * Returns ETIMEDOUT when the time passed, 0 otherwise (also spuriously). */
static int futex_wait_until(int *w, int seen, const struct timespec *ts)
{
  if (syscall(SYS_futex, w, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen, ts, NULL,
              FUTEX_BITSET_MATCH_ANY) == 0)
    return 0;
  return errno == ETIMEDOUT ? ETIMEDOUT : 0;
}

enum app_result redis_mux_create(struct redis_pool *pool, size_t max_leaders, size_t max_batch,
                                 size_t max_queue, struct redis_mux **out, struct app_err *err)
{
  struct redis_mux *m;
  size_t i;

  *out = NULL;
  if (!pool || !max_leaders || !max_batch || !max_queue)
    return app_err_set(err, APP_ERR_CONFIG,
                       "redis mux: leaders (%zu), batch (%zu) and queue (%zu) must be >= 1",
                       max_leaders, max_batch, max_queue);
  m = xcalloc(1, sizeof *m);
  m->pool = pool;
  m->max_leaders = max_leaders;
  m->max_batch = max_batch;
  m->max_queue = max_queue;
  pthread_mutex_init(&m->mu, NULL);
  m->batches = xcalloc(max_leaders, sizeof *m->batches);
  for (i = 0; i < max_leaders; i++) {
    m->batches[i].reqs = xcalloc(max_batch, sizeof *m->batches[i].reqs);
    m->batches[i].first = xcalloc(max_batch, sizeof *m->batches[i].first);
    m->batches[i].n = xcalloc(max_batch, sizeof *m->batches[i].n);
  }
  *out = m;
  return APP_OK;
}

void redis_mux_destroy(struct redis_mux *m)
{
  size_t i;
  if (!m)
    return;
  APP_ASSERT(m->active == 0 && m->nqueued == 0);
  for (i = 0; i < m->max_leaders; i++) {
    free(m->batches[i].reqs);
    free(m->batches[i].first);
    free(m->batches[i].n);
  }
  free(m->batches);
  pthread_mutex_destroy(&m->mu);
  free(m);
}

struct redis_pool *redis_mux_pool(struct redis_mux *m)
{
  return m->pool;
}

void redis_mux_get_stats(struct redis_mux *m, struct redis_mux_stats *out)
{
  pthread_mutex_lock(&m->mu);
  *out = m->stats;
  pthread_mutex_unlock(&m->mu);
}

static void enqueue(struct redis_mux *m, struct mux_req *q)
{
  q->next = NULL;
  q->prev = m->tail;
  if (m->tail)
    m->tail->next = q;
  else
    m->head = q;
  m->tail = q;
  m->nqueued++;
}

static void unlink_req(struct redis_mux *m, struct mux_req *q)
{
  if (q->prev)
    q->prev->next = q->next;
  else
    m->head = q->next;
  if (q->next)
    q->next->prev = q->prev;
  else
    m->tail = q->prev;
  q->prev = q->next = NULL;
  m->nqueued--;
}

/* Hand the lead to queued callers while fewer than max_leaders lead: each
 * time to the one due last, so the batch it gathers (everything due no
 * later) is the whole queue when deadlines are uniform. Mutex held; the
 * futex words to wake are appended to wake[*nwake] (room for max_leaders). */
static void promote(struct redis_mux *m, int **wake, size_t *nwake)
{
  while (m->active < m->max_leaders && m->head) {
    struct mux_req *q, *best = m->head;
    for (q = m->head->next; q; q = q->next)
      if (q->deadline_ms >= best->deadline_ms)
        best = q;
    unlink_req(m, best);
    set_state(best, MQ_LEADER);
    m->active++;
    wake[(*nwake)++] = &best->word;
  }
}

static void wake_all(int **wake, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    futex_wake_one(wake[i]);
}

static void free_replies(redisReply **replies, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (replies[i])
      freeReplyObject(replies[i]);
}

/* Gather a batch (me first, then queued callers due no later than me),
 * send it as one pipeline, hand the replies back. Mutex held on entry,
 * released on return; me->state is MQ_DONE. */
static void lead(struct redis_mux *m, struct mux_req *me)
{
  int **wake = xmalloc((m->max_batch + m->max_leaders) * sizeof *wake);
  size_t nwake = 0;
  struct mux_batch *b = NULL;
  struct mux_req *q, *next;
  struct redis_conn *c = NULL;
  redisReply **replies = NULL;
  char *cmds = NULL;
  size_t i, total = 0, len = 0, nread = 0;
  struct app_err err;
  enum app_result r;

  for (i = 0; i < m->max_leaders && !b; i++)
    if (!m->batches[i].busy)
      b = &m->batches[i];
  APP_ASSERT(b); /* active <= max_leaders, one batch each */
  b->busy = true;
  b->count = 0;
  q = me;
  next = m->head;
  for (;;) {
    /* no wake-up needed: the follower waits on as before */
    __atomic_store_n(&q->state, (int)MQ_INFLIGHT, __ATOMIC_RELAXED);
    q->slot = &b->reqs[b->count];
    b->reqs[b->count] = q;
    b->first[b->count] = total;
    b->n[b->count] = q->n;
    b->count++;
    total += q->n;
    len += q->len;
    for (q = next; q && q->deadline_ms > me->deadline_ms; q = q->next)
      ;
    if (!q || b->count == m->max_batch)
      break;
    next = q->next;
    unlink_req(m, q);
  }
  m->stats.batches++;
  if (b->count > m->stats.max_batch)
    m->stats.max_batch = b->count;
  /* copied under the mutex: a follower may leave once it is released */
  cmds = malloc(len);
  replies = calloc(total, sizeof *replies);
  if (cmds && replies) {
    len = 0;
    for (i = 0; i < b->count; i++) {
      memcpy(cmds + len, b->reqs[i]->cmds, b->reqs[i]->len);
      len += b->reqs[i]->len;
    }
  }
  pthread_mutex_unlock(&m->mu);

  if (!cmds || !replies) {
    r = app_err_set(&err, APP_ERR_NOMEM, "redis read: no memory for a batch of %zu commands",
                    total);
  } else {
    struct redis_cluster *cl = redis_pool_cluster(m->pool);
    if (cl && !redis_cluster_known_single(cl)) {
      /* a Redis Cluster: the batch split by primary, all at once */
      r = redis_cluster_exchange(cl, cmds, len, total, replies, me->deadline_ms, &err);
    } else {
      r = redis_pool_acquire(m->pool, me->deadline_ms, &c, &err);
      if (r == APP_OK) {
        r = redis_conn_exchange(c, cmds, len, total, replies, &nread, me->deadline_ms, &err);
        redis_pool_release(m->pool, c);
      }
    }
  }

  pthread_mutex_lock(&m->mu);
  for (i = 0; i < b->count; i++) {
    q = b->reqs[i];
    if (q && r == APP_OK) {
      memcpy(q->replies, replies + b->first[i], b->n[i] * sizeof *replies);
    } else if (replies) {
      /* a caller that left, or a failed exchange: read and dropped */
      free_replies(replies + b->first[i], b->n[i]);
    }
    if (!q)
      continue;
    q->result = r;
    if (r != APP_OK)
      q->err = err;
    q->slot = NULL;
    set_state(q, MQ_DONE);
    if (q != me)
      wake[nwake++] = &q->word;
  }
  b->busy = false;
  m->active--;
  promote(m, wake, &nwake);
  pthread_mutex_unlock(&m->mu);
  wake_all(wake, nwake);
  free(wake);
  free(cmds);
  free(replies);
}

/* The caller leaves: its deadline passed. Mutex held. */
static void give_up(struct redis_mux *m, struct mux_req *me, int **wake, size_t *nwake)
{
  if (me->state == MQ_QUEUED) {
    unlink_req(m, me);
    m->stats.expired++;
    me->result = app_err_set(&me->err, APP_ERR_TIMEOUT,
                             "redis read: the deadline passed waiting for a connection");
  } else if (me->state == MQ_INFLIGHT) {
    /* the leader reads this reply and drops it */
    *me->slot = NULL;
    me->slot = NULL;
    m->stats.abandoned++;
    me->result = app_err_set(&me->err, APP_ERR_TIMEOUT,
                             "redis read: the deadline passed waiting for the reply");
  } else { /* MQ_LEADER, handed the lead too late: pass it on */
    m->active--;
    m->stats.expired++;
    promote(m, wake, nwake);
    me->result = app_err_set(&me->err, APP_ERR_TIMEOUT,
                             "redis read: the deadline passed waiting for a connection");
  }
  set_state(me, MQ_DONE);
}

enum app_result redis_mux_exchange(struct redis_mux *m, const char *cmds, size_t len, size_t n,
                                   redisReply **replies, int64_t deadline_ms, struct app_err *err)
{
  struct mux_req me;
  struct timespec ts;
  int **wake = NULL;
  size_t nwake = 0;
  enum app_result r;

  APP_ASSERT(n >= 1 && len > 0);
  if (deadline_ms <= 0)
    deadline_ms = sink_now_ms() + redis_pool_info(m->pool)->sync_timeout_ms;
  {
    /* a Redis Cluster? (asked once; the leaders then send each batch to
     * the primaries of its keys, redis_cluster.h) */
    struct redis_cluster *cl = redis_pool_cluster(m->pool);
    bool on = false;
    if (cl && !redis_cluster_known_single(cl)) {
      r = redis_cluster_active(cl, deadline_ms, &on, err);
      if (r != APP_OK)
        return r;
    }
  }
  memset(&me, 0, sizeof me);
  me.cmds = cmds;
  me.len = len;
  me.n = n;
  me.replies = replies;
  me.deadline_ms = deadline_ms;
  ts.tv_sec = (time_t)(deadline_ms / 1000);
  ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;

  pthread_mutex_lock(&m->mu);
  m->stats.calls++;
  if (m->active < m->max_leaders) {
    m->active++;
    me.state = MQ_LEADER;
  } else if (m->nqueued >= m->max_queue) {
    m->stats.refused++;
    pthread_mutex_unlock(&m->mu);
    return app_err_set(err, APP_ERR_TIMEOUT,
                       "redis read: busy (%zu reads already queued for a connection)",
                       m->max_queue);
  } else {
    enqueue(m, &me);
    me.state = MQ_QUEUED;
  }
  for (;;) {
    int seen;
    if (me.state == MQ_LEADER && sink_now_ms() < deadline_ms) {
      lead(m, &me);
      goto out;
    }
    if (me.state == MQ_DONE)
      break;
    if (sink_now_ms() >= deadline_ms) {
      wake = xmalloc(m->max_leaders * sizeof *wake);
      give_up(m, &me, wake, &nwake);
      break;
    }
    seen = __atomic_load_n(&me.word, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&m->mu);
    /* woken by a state change, a spurious wake-up or the deadline; the
     * state is only read under the mutex, except DONE, which is final */
    futex_wait_until(&me.word, seen, &ts);
    if (__atomic_load_n(&me.state, __ATOMIC_ACQUIRE) == MQ_DONE)
      goto out; /* result and replies were filled before the state */
    pthread_mutex_lock(&m->mu);
  }
  pthread_mutex_unlock(&m->mu);
out:
  if (wake) {
    wake_all(wake, nwake);
    free(wake);
  }
  r = me.result;
  if (r != APP_OK && err)
    *err = me.err;
  return r;
}

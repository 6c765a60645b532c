/* he_run.c - the engine (see he_run.h).
 *
 * Life of a message: generated lazily from the message set (so a long load
 * run holds only what is in flight), delivered in an invocation, then
 * completed (2xx + JSON object) or abandoned: DeliveryCount + 1 and back in
 * the queue after --redelivery-delay-ms, or dead-lettered once it has been
 * delivered --max-delivery-count times. Redeliveries go ahead of new
 * messages, as an abandoned message keeps its place in a Service Bus queue.
 *
 * Life of the handler: spawned, probed with GET / every 25 ms until any
 * HTTP answer, then invoked. Exit 200 restarts it without counting; other
 * non-zero exits, signals and readiness timeouts restart it and count, and
 * the third counted error within 30 minutes gives up (the host shuts
 * down); exit 0 is not restarted, so later invocations fail with connection
 * refused. An invocation timeout kills and restarts the handler (not
 * counted), failing everything in flight, as the host does. */
#include "he_run.h"

#include "common/arena.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/json.h"
#include "he_net.h"
#include "he_nj.h"
#include "he_result.h"
#include "he_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_INTERVAL_NS (25 * HE_NS_PER_MS) /* WorkerReadyCheckPollingIntervalMilliseconds */
#define ERROR_WINDOW_NS   (30LL * 60 * 1000000000LL)
#define ERRORS_TO_GIVE_UP 3
#define MAX_HEAD          (64 * 1024)
#define MAX_LINE          (16 * 1024)

enum ev_kind { EV_CONN = 1, EV_PROBE, EV_PIPE, EV_SIGNAL };

/* Every epoll registration points at one of these. A closed connection or
 * probe socket is only marked dead and freed after the current batch of
 * events, so a later event of the same batch never touches freed memory or
 * a newer socket that reused the descriptor. */
struct ev {
  enum ev_kind kind;
  bool dead;
  struct ev *next_dead;
};

/* H_KILLING: SIGKILL sent (timeout or init timeout), waiting for the exit
 * before restarting; nothing is dispatched meanwhile */
enum hstate { H_STARTING, H_READY, H_DEAD_NO_RESTART, H_GAVE_UP, H_KILLING };

enum kill_reason { KILL_NONE, KILL_TIMEOUT, KILL_INIT, KILL_END };

struct delivery {
  struct delivery *next;
  bool dlq;                      /* in the dead-letter queue */
  struct he_msg_props dlq_props; /* its properties (app_props owned) */
  char *dlq_app_props;
  struct he_sb_message m;
  const struct he_msg *src;
  char *owned_body;
  char id_buf[33];
  int64_t ready_ns;
  char last_failure[200];
};

struct conn;

struct inv {
  struct inv *prev, *next;
  struct delivery **msgs;
  size_t n;
  char id[37];
  struct buf req;
  size_t req_off;
  int64_t start_ns, first_byte_ns, deadline_ns;
  struct conn *conn;
  int attempts;
  bool responded; /* a complete HTTP response arrived */
  bool dlq;       /* messages of the dead-letter queue, for its function */
};

enum cstate { C_CONNECTING, C_SENDING, C_RECEIVING, C_IDLE };

struct conn {
  struct ev ev;
  int fd;
  enum cstate state;
  struct inv *inv;
  struct he_resp resp;
  bool reused;
  struct conn *next_idle;
};

struct pipe_ev {
  struct ev ev;
  int fd;
  bool is_err;
  struct buf line;
};

struct probe {
  struct ev *tok; /* epoll token of the current probe socket */
  int fd;
  bool active, connected;
  int64_t next_ns;
  uint64_t count;
};

struct run {
  const struct he_run_cfg *cfg;
  struct he_summary *sum;
  int ep;
  struct ev sig_ev;
  int sfd;
  int port;
  bool launched;
  /* handler */
  struct he_proc proc;
  enum hstate hs;
  enum kill_reason kill_reason;
  int64_t spawn_ns;
  bool ever_ready;
  int64_t err_times[16];
  int n_err_times;
  struct pipe_ev out, err;
  struct probe probe;
  struct ev *graveyard; /* closed sockets' tokens, freed after the batch */
  /* connections */
  struct conn *idle;
  size_t n_conns;
  /* work */
  struct delivery *q_head, *q_tail;
  struct delivery *dq_head, *dq_tail; /* the dead-letter queue */
  uint64_t copy;
  size_t idx;
  bool src_done;
  int64_t seq;
  struct inv *inf_head, *inf_tail;
  size_t inflight;
  uint64_t dispatched;
  int64_t t0, t_end, duration_end;
  double cpu0; /* CPU time used before delivery started */
  int signals;
  int64_t suspect_until; /* pause after a transport failure (see suspect()) */
  bool ending;
  bool fatal;
  struct app_err fatal_err;
  /* base64 of each message file, encoded once (not with --vary) */
  char **b64;
  size_t *b64_len;
  /* scratch */
  struct he_env env;
  struct buf envelope;
  struct arena ja;
  bool http_done;
};

static void say(struct run *r, const char *fmt, ...) APP_PRINTF(2, 3);

/* CPU time (user + system) this process has used, in seconds. */
static double cpu_seconds(void)
{
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void say(struct run *r, const char *fmt, ...)
{
  va_list ap;
  if (r->cfg->quiet)
    return;
  va_start(ap, fmt);
  fputs("hostemu: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void warn_once(struct run *r, const char *text)
{
  size_t before = r->sum->n_warnings;
  he_count_add(r->sum->warnings, &r->sum->n_warnings, HE_MAX_WARNINGS, &r->sum->other_warnings,
               text);
  if (r->sum->n_warnings > before)
    say(r, "WARNING: %s", text);
}

static void ep_add(struct run *r, int fd, struct ev *ev, uint32_t events)
{
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = events;
  e.data.ptr = ev;
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) != 0)
    APP_ASSERT(!"epoll_ctl ADD failed");
}

/* ---------------------------------------------------------------- output */

static void pipe_flush_line(struct run *r, struct pipe_ev *p)
{
  FILE *f = r->cfg->handler_log ? r->cfg->handler_log : stderr;
  const char *level = "info";
  if (!p->line.len)
    return;
  APP_ASSERT(buf_reserve(&p->line, 1) == APP_OK);
  p->line.data[p->line.len] = '\0';
  /* the host logs stdout lines at Information, stderr lines at Error, or
   * Warning when they contain "warn" (protocol doc 1.2) */
  if (p->is_err)
    level = strcasestr(p->line.data, "warn") ? "warning" : "error";
  fprintf(f, "[handler %s] %s\n", level, p->line.data);
  fflush(f);
  buf_reset(&p->line);
}

static void pipe_read(struct run *r, struct pipe_ev *p)
{
  char tmp[8192];
  for (;;) {
    ssize_t n = read(p->fd, tmp, sizeof tmp), i;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        pipe_flush_line(r, p);
        epoll_ctl(r->ep, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
        p->fd = -1;
        if (p->is_err)
          r->proc.err_fd = -1;
        else
          r->proc.out_fd = -1;
      }
      return;
    }
    for (i = 0; i < n; i++) {
      if (tmp[i] == '\n') {
        pipe_flush_line(r, p);
        continue;
      }
      if (tmp[i] == '\r')
        continue;
      if (p->line.len >= MAX_LINE)
        pipe_flush_line(r, p);
      APP_ASSERT(buf_append_char(&p->line, tmp[i]) == APP_OK);
    }
  }
}

/* ---------------------------------------------------------------- stats */

static void count_reason(struct run *r, const char *reason)
{
  /* "HTTP 500 Internal Server Error: <body excerpt>" is counted without the
   * excerpt so equal statuses add up; other reasons are counted as they are */
  char key[160];
  size_t n = strlen(reason);
  if (!strncmp(reason, "HTTP ", 5)) {
    const char *colon = strstr(reason, ": ");
    if (colon)
      n = (size_t)(colon - reason);
  }
  snprintf(key, sizeof key, "%.*s", (int)(n > 150 ? 150 : n), reason);
  he_count_add(r->sum->reasons, &r->sum->n_reasons, HE_MAX_REASONS, &r->sum->other_reasons, key);
}

/* ---------------------------------------------------------------- messages */

static void delivery_free(struct delivery *d)
{
  if (!d)
    return;
  free(d->owned_body);
  free(d->dlq_app_props);
  free(d);
}

static void enqueue(struct run *r, struct delivery *d)
{
  d->next = NULL;
  if (r->q_tail)
    r->q_tail->next = d;
  else
    r->q_head = d;
  r->q_tail = d;
}

static void mark_src_done(struct run *r, int64_t now)
{
  if (r->src_done)
    return;
  if (r->cfg->repeat && r->copy >= r->cfg->repeat)
    r->src_done = true;
  if (r->duration_end && now >= r->duration_end)
    r->src_done = true;
  if (r->signals)
    r->src_done = true;
}

static struct delivery *generate(struct run *r, int64_t now)
{
  const struct he_run_cfg *c = r->cfg;
  const struct he_msg *m;
  struct delivery *d;
  int64_t ttl;

  mark_src_done(r, now);
  if (r->src_done)
    return NULL;
  m = &c->msgs->v[r->idx];
  d = xcalloc(1, sizeof *d);
  d->src = m;
  if (c->vary && m->n_spans) {
    char fresh[37];
    size_t len;
    he_guid(fresh);
    d->owned_body = he_msg_vary(m, r->copy, fresh, &len);
    d->m.body = d->owned_body;
    d->m.len = len;
  } else {
    d->m.body = m->body;
    d->m.len = m->len;
  }
  if (c->target.binary && !d->owned_body) {
    if (!r->b64[r->idx]) {
      struct buf b;
      buf_init(&b, 0);
      APP_ASSERT(base64_encode_buf(&b, m->body, m->len) == APP_OK);
      r->b64_len[r->idx] = b.len;
      r->b64[r->idx] = buf_steal(&b, NULL);
      if (!r->b64[r->idx]) /* an empty body */
        r->b64[r->idx] = xstrdup("");
    }
    d->m.b64 = r->b64[r->idx];
    d->m.b64_len = r->b64_len[r->idx];
  }
  if (m->props.message_id) {
    d->m.message_id = m->props.message_id;
  } else {
    he_guid_n(d->id_buf);
    d->m.message_id = d->id_buf;
  }
  d->m.props = &m->props;
  d->m.sequence_number = ++r->seq;
  d->m.delivery_count = 1;
  /* Service Bus stamps EnqueuedTime with millisecond precision */
  d->m.enqueued_ticks = he_wall_ticks() / 10000 * 10000;
  ttl = m->props.ttl_set ? m->props.ttl_ms : c->ttl_ms;
  d->m.expires_ticks = ttl < 0 || ttl >= (HE_TICKS_MAX_DATE - d->m.enqueued_ticks) / 10000
                           ? HE_TICKS_MAX_DATE
                           : d->m.enqueued_ticks + ttl * 10000;
  r->sum->generated++;
  if (++r->idx == c->msgs->n) {
    r->idx = 0;
    r->copy++;
  }
  return d;
}

static void sanitize_name(const char *in, char *out, size_t cap)
{
  size_t i;
  for (i = 0; in[i] && i + 1 < cap; i++) {
    char ch = in[i];
    out[i] = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.')
                 ? ch
                 : '_';
  }
  out[i] = '\0';
  if (!strcmp(out, ".") || !strcmp(out, "..") || !out[0])
    snprintf(out, cap, "_");
}

/* Service Bus moves a dead-lettered message into the entity's dead-letter
 * queue with the same body, MessageId, SequenceNumber and EnqueuedTime, and
 * adds DeadLetterReason and DeadLetterErrorDescription to its application
 * properties. Receiving it there is a new delivery (DeliveryCount + 1). */
static void dlq_enqueue(struct run *r, const struct delivery *d)
{
  struct delivery *q = xcalloc(1, sizeof *q);
  const char *ap = d->m.props->app_props;
  size_t apl = strlen(ap);
  char extra[200];
  struct buf b;

  q->dlq = true;
  q->src = d->src;
  q->owned_body = xmalloc(d->m.len + 1);
  memcpy(q->owned_body, d->m.body, d->m.len);
  q->owned_body[d->m.len] = '\0';
  q->m = d->m;
  q->m.body = q->owned_body;
  q->m.b64 = NULL; /* encoded when the envelope is built */
  q->m.b64_len = 0;
  if (d->m.message_id == d->id_buf) {
    memcpy(q->id_buf, d->id_buf, sizeof q->id_buf);
    q->m.message_id = q->id_buf;
  }
  q->m.delivery_count = d->m.delivery_count + 1;
  snprintf(extra, sizeof extra,
           "\"DeadLetterReason\":\"MaxDeliveryCountExceeded\",\"DeadLetterErrorDescription\":"
           "\"Message could not be consumed after %d delivery attempts.\"",
           d->m.delivery_count);
  buf_init(&b, 0);
  /* ap is a compact JSON object: "{}" or "{...}" */
  if (apl >= 2 && buf_append(&b, ap, apl - 1) == APP_OK &&
      buf_append_str(&b, apl > 2 ? "," : "") == APP_OK && buf_append_str(&b, extra) == APP_OK &&
      buf_append_char(&b, '}') == APP_OK)
    q->dlq_app_props = buf_steal(&b, NULL);
  buf_cleanup(&b);
  q->dlq_props = *d->m.props;
  q->dlq_props.app_props = q->dlq_app_props ? q->dlq_app_props : ap;
  q->m.props = &q->dlq_props;
  q->next = NULL;
  if (r->dq_tail)
    r->dq_tail->next = q;
  else
    r->dq_head = q;
  r->dq_tail = q;
}

static void dead_letter(struct run *r, struct delivery *d)
{
  const struct he_run_cfg *c = r->cfg;
  char name[160], base[220], path_body[300];
  struct buf j;
  struct app_err err;
  struct stat st;
  char date[48];
  char *p;

  r->sum->dead_lettered++;
  say(r, "dead-lettered message %s after %d deliveries: %s", d->m.message_id, d->m.delivery_count,
      d->last_failure);
  if (c->dlq_target.function)
    dlq_enqueue(r, d);
  if (!c->deadletter_dir)
    return;
  sanitize_name(d->m.message_id, name, sizeof name);
  snprintf(base, sizeof base, "%s", name);
  p = he_path_join(c->deadletter_dir, base);
  snprintf(path_body, sizeof path_body, "%s.body", p);
  if (stat(path_body, &st) == 0) {
    /* the same MessageId was dead-lettered before (duplicates are legal) */
    snprintf(base, sizeof base, "%s~%lld", name, (long long)d->m.sequence_number);
    free(p);
    p = he_path_join(c->deadletter_dir, base);
    snprintf(path_body, sizeof path_body, "%s.body", p);
  }
  if (he_file_write(path_body, d->m.body, d->m.len, &err) != APP_OK)
    say(r, "cannot write the dead-letter body: %s", err.msg);
  buf_init(&j, 0);
  he_date_format(he_wall_ticks(), HE_DATE_FULL_Z, date);
  if (buf_append_str(&j, "{\"messageId\":") == APP_OK &&
      he_nj_str(&j, d->m.message_id, strlen(d->m.message_id)) == APP_OK &&
      buf_printf(&j,
                 ",\"reason\":\"MaxDeliveryCountExceeded\",\"description\":\"Message could not be "
                 "consumed after %d delivery attempts.\",\"deliveryCount\":%d,"
                 "\"sequenceNumber\":%lld,\"function\":",
                 d->m.delivery_count, d->m.delivery_count,
                 (long long)d->m.sequence_number) == APP_OK &&
      he_nj_str(&j, c->target.function, strlen(c->target.function)) == APP_OK &&
      buf_append_str(&j, ",\"lastFailure\":") == APP_OK &&
      he_nj_str(&j, d->last_failure, strlen(d->last_failure)) == APP_OK &&
      buf_append_str(&j, ",\"source\":") == APP_OK &&
      he_nj_str(&j, d->src->path, strlen(d->src->path)) == APP_OK &&
      buf_printf(&j, ",\"deadLetteredAtUtc\":\"%s\",\"applicationProperties\":%s}\n", date,
                 d->m.props->app_props) == APP_OK) {
    char path_json[300];
    snprintf(path_json, sizeof path_json, "%s.json", p);
    if (he_file_write(path_json, j.data, j.len, &err) != APP_OK)
      say(r, "cannot write the dead-letter record: %s", err.msg);
  }
  buf_cleanup(&j);
  free(p);
}

/* ---------------------------------------------------------------- connections */

static void conn_close(struct run *r, struct conn *c)
{
  struct conn **pp;
  if (c->state == C_IDLE) {
    for (pp = &r->idle; *pp; pp = &(*pp)->next_idle) {
      if (*pp == c) {
        *pp = c->next_idle;
        break;
      }
    }
  }
  if (c->fd >= 0) {
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  he_resp_cleanup(&c->resp);
  r->n_conns--;
  c->ev.dead = true;
  c->ev.next_dead = r->graveyard;
  r->graveyard = &c->ev;
}

static void bury(struct run *r)
{
  while (r->graveyard) {
    struct ev *e = r->graveyard;
    r->graveyard = e->next_dead;
    free(e); /* a struct conn or a probe token: struct ev comes first */
  }
}

static void close_idle(struct run *r)
{
  while (r->idle)
    conn_close(r, r->idle);
}

static void inv_finish(struct run *r, struct inv *inv, bool ok, const char *reason);

/* A connection to a launched handler failed. If the process died, its exit
 * (SIGCHLD) may arrive a moment after the reset or refusal; dispatching
 * the redelivery at once would burn its delivery attempts against a dead
 * port before the restart. The host never races like that (every retry
 * costs a broker round trip), so pause dispatch up to 100 ms, until the
 * exit is seen or the process proves alive. */
static void suspect(struct run *r)
{
  if (r->launched && r->proc.pid)
    r->suspect_until = he_now_ns() + 100 * HE_NS_PER_MS;
}
static bool conn_send(struct run *r, struct conn *c);
static void inv_start(struct run *r, struct inv *inv);

/* A transport failure on c. A request on a reused keep-alive connection
 * that the server had closed gets one more try on a fresh connection, as
 * .NET's HttpClient does; anything else fails the invocation. */
static void conn_fail(struct run *r, struct conn *c, const char *reason)
{
  struct inv *inv = c->inv;
  bool retry = inv && c->reused && c->resp.bytes_seen == 0 && inv->attempts < 2;
  c->inv = NULL;
  conn_close(r, c);
  if (!inv)
    return;
  inv->conn = NULL;
  if (!retry)
    suspect(r);
  if (retry) {
    inv_start(r, inv);
    return;
  }
  inv_finish(r, inv, false, reason);
}

static struct conn *conn_new(struct run *r, int *out_errno)
{
  struct sockaddr_in sa;
  struct conn *c;
  int fd, one = 1;

  fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *out_errno = errno;
    return NULL;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)r->port);
  c = xcalloc(1, sizeof *c);
  c->ev.kind = EV_CONN;
  c->fd = fd;
  he_resp_init(&c->resp, MAX_HEAD, r->cfg->max_response);
  r->n_conns++;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
    c->state = C_SENDING;
  } else if (errno == EINPROGRESS) {
    c->state = C_CONNECTING;
  } else {
    *out_errno = errno;
    close(fd);
    c->fd = -1;
    he_resp_cleanup(&c->resp);
    r->n_conns--;
    free(c);
    return NULL;
  }
  ep_add(r, fd, &c->ev, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  return c;
}

/* Attach inv to a connection (an idle keep-alive one, or a new one) and
 * start sending. When no connection can be made the invocation fails (and
 * is settled) right here. */
static void inv_start(struct run *r, struct inv *inv)
{
  struct conn *c = r->idle;
  int e = 0;
  char reason[160];

  inv->attempts++;
  inv->req_off = 0;
  inv->first_byte_ns = 0;
  if (c && inv->attempts == 1) {
    r->idle = c->next_idle;
    c->next_idle = NULL;
    c->state = C_SENDING;
    c->reused = true;
  } else {
    c = conn_new(r, &e);
    if (!c) {
      snprintf(reason, sizeof reason, "cannot connect to 127.0.0.1:%d: %s", r->port, strerror(e));
      inv->conn = NULL;
      suspect(r);
      inv_finish(r, inv, false, reason);
      return;
    }
  }
  he_resp_reset(&c->resp, r->cfg->http && !strcasecmp(r->cfg->http->method, "HEAD"));
  c->inv = inv;
  inv->conn = c;
  if (c->state == C_SENDING)
    conn_send(r, c);
}

/* ---------------------------------------------------------------- requests */

static enum app_result frame_chunked(struct buf *req, const char *body, size_t len, size_t chunk)
{
  size_t off = 0;
  if (chunk == 0)
    chunk = len ? len : 1;
  while (off < len) {
    size_t n = len - off < chunk ? len - off : chunk;
    APP_RETURN_IF_FAILED(buf_printf(req, "%zx\r\n", n));
    APP_RETURN_IF_FAILED(buf_append(req, body + off, n));
    APP_RETURN_IF_FAILED(buf_append(req, "\r\n", 2));
    off += n;
  }
  return buf_append(req, "0\r\n\r\n", 5);
}

static enum app_result build_sb_request(struct run *r, struct inv *inv, struct app_err *err)
{
  const struct he_run_cfg *c = r->cfg;
  struct he_sb_message *ms[4096];
  struct he_env_notes notes;
  size_t i;
  APP_ASSERT(inv->n <= sizeof ms / sizeof ms[0]);
  for (i = 0; i < inv->n; i++) {
    he_guid(inv->msgs[i]->m.lock_token); /* a new lock for every delivery */
    ms[i] = &inv->msgs[i]->m;
  }
  buf_reset(&r->envelope);
  memset(&notes, 0, sizeof notes);
  const struct he_sb_target *target = inv->dlq ? &c->dlq_target : &c->target;
  APP_RETURN_IF_FAILED(
      he_env_servicebus(&r->env, &r->envelope, target, ms, inv->n, he_wall_ticks(), &notes, err));
  if (notes.lossy_utf8) {
    char w[160];
    snprintf(w, sizeof w,
             "a message body bound as string by %s is not valid UTF-8: the host replaces the bad "
             "bytes with U+FFFD (use dataType binary)",
             c->target.function);
    warn_once(r, w);
  }
  {
    /* framing adds "<hex>\r\n" and "\r\n" per chunk: size the request once */
    size_t chunks = c->chunk_size ? r->envelope.len / c->chunk_size + 1 : 1;
    if (buf_reserve(&inv->req, r->envelope.len + chunks * 16 + 512) != APP_OK)
      return app_err_set(err, APP_ERR_LIMIT, "request larger than --max-request-bytes");
  }
  if (buf_printf(&inv->req,
                 "POST /%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "X-Azure-Functions-HostVersion: %s\r\nX-Azure-Functions-InvocationId: %s\r\n"
                 "User-Agent: Azure-Functions-Host/%s\r\n"
                 "Content-Type: application/json; charset=utf-8\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 target->function, r->port, c->host_version, inv->id, c->host_version) != APP_OK ||
      frame_chunked(&inv->req, r->envelope.data, r->envelope.len, c->chunk_size) != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "request larger than --max-request-bytes");
  return APP_OK;
}

/* Uri.EscapeDataString / UrlEncoder: keep unreserved characters only. */
static enum app_result append_escaped(struct buf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '_' || ch == '.' || ch == '~')
      APP_RETURN_IF_FAILED(buf_append_char(b, (char)ch));
    else
      APP_RETURN_IF_FAILED(buf_printf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]));
  }
  return APP_OK;
}

/* The query string the forwarding path rebuilds from the parsed query
 * (QueryHelpers.AddQueryString over name -> values joined with ','). */
static enum app_result append_forward_query(struct run *r, struct buf *b, const char *q)
{
  const char *names[128];
  struct buf vals[128];
  size_t n = 0, i;
  enum app_result res = APP_OK;
  arena_reset(&r->ja);
  while (q && *q) {
    const char *amp = strchr(q, '&'), *eq;
    size_t len = amp ? (size_t)(amp - q) : strlen(q);
    eq = memchr(q, '=', len);
    if (len) {
      char *k = he_url_decode(&r->ja, q, eq ? (size_t)(eq - q) : len, true);
      const char *v = eq ? he_url_decode(&r->ja, eq + 1, len - (size_t)(eq - q) - 1, true) : "";
      for (i = 0; i < n; i++)
        if (!strcasecmp(names[i], k))
          break;
      if (i == n && n < 128) {
        names[n] = k;
        buf_init(&vals[n], 0);
        n++;
      } else if (i < n) {
        APP_ASSERT(buf_append_char(&vals[i], ',') == APP_OK);
      }
      if (i < 128)
        APP_ASSERT(buf_append_str(&vals[i], v) == APP_OK);
    }
    q += len;
    if (*q == '&')
      q++;
  }
  for (i = 0; i < n && res == APP_OK; i++) {
    res = buf_append_char(b, i ? '&' : '?');
    if (res == APP_OK)
      res = append_escaped(b, names[i]);
    if (res == APP_OK)
      res = buf_append_char(b, '=');
    if (res == APP_OK)
      res = append_escaped(b, vals[i].data ? vals[i].data : "");
  }
  for (i = 0; i < n; i++)
    buf_cleanup(&vals[i]);
  return res;
}

static enum app_result build_http_request(struct run *r, struct inv *inv, struct app_err *err)
{
  const struct he_run_cfg *c = r->cfg;
  const struct he_http_request *h = c->http;
  struct buf *q = &inv->req;
  size_t i;
  const char *ua = NULL;

  if (c->timer) {
    buf_reset(&r->envelope);
    APP_RETURN_IF_FAILED(he_env_timer(&r->env, &r->envelope, c->target.function, c->http_binding,
                                      c->timer_interval_s, he_wall_ticks(), err));
  } else if (!c->forward) {
    buf_reset(&r->envelope);
    APP_RETURN_IF_FAILED(he_env_http(&r->env, &r->envelope, c->target.function, c->http_binding, h,
                                     c->params, c->n_params, he_wall_ticks(), err));
  }
  if (c->timer || !c->forward) {
    if (buf_printf(q,
                   "POST /%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "X-Azure-Functions-HostVersion: %s\r\nX-Azure-Functions-InvocationId: %s\r\n"
                   "User-Agent: Azure-Functions-Host/%s\r\n"
                   "Content-Type: application/json; charset=utf-8\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n",
                   c->target.function, r->port, c->host_version, inv->id,
                   c->host_version) != APP_OK ||
        frame_chunked(q, r->envelope.data, r->envelope.len, c->chunk_size) != APP_OK)
      return app_err_set(err, APP_ERR_LIMIT, "request larger than --max-request-bytes");
    return APP_OK;
  }
  /* forwarding: the original method, path (with the route prefix) and
   * headers, plus the host's headers; the body only if Content-Length > 0 */
  if (buf_printf(q, "%s ", h->method) != APP_OK || buf_append_str(q, h->path) != APP_OK ||
      append_forward_query(r, q, h->query) != APP_OK ||
      buf_append_str(q, " HTTP/1.1\r\n") != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "request too large");
  for (i = 0; i < h->n_headers; i++) {
    const char *name = h->headers[i].name;
    if (!strcasecmp(name, "Content-Length") || !strcasecmp(name, "Content-Type") ||
        !strcasecmp(name, "Transfer-Encoding"))
      continue; /* content headers travel with the content */
    if (!strcasecmp(name, "User-Agent")) {
      ua = h->headers[i].value;
      continue;
    }
    if (buf_printf(q, "%s: %s\r\n", name, h->headers[i].value) != APP_OK)
      return app_err_set(err, APP_ERR_LIMIT, "request too large");
  }
  if (buf_printf(q,
                 "X-Azure-Functions-HostVersion: %s\r\nX-Azure-Functions-InvocationId: %s\r\n"
                 "User-Agent: %s%sAzure-Functions-Host/%s\r\n",
                 c->host_version, inv->id, ua ? ua : "", ua ? " " : "", c->host_version) != APP_OK)
    return app_err_set(err, APP_ERR_LIMIT, "request too large");
  if (h->body_len > 0) {
    const char *ct = NULL;
    for (i = 0; i < h->n_headers; i++)
      if (!strcasecmp(h->headers[i].name, "Content-Type"))
        ct = h->headers[i].value;
    if (ct && buf_printf(q, "Content-Type: %s\r\n", ct) != APP_OK)
      return app_err_set(err, APP_ERR_LIMIT, "request too large");
    if (buf_printf(q, "Content-Length: %zu\r\n\r\n", h->body_len) != APP_OK ||
        buf_append(q, h->body, h->body_len) != APP_OK)
      return app_err_set(err, APP_ERR_LIMIT, "request too large");
  } else if (buf_append_str(q, "\r\n") != APP_OK) {
    return app_err_set(err, APP_ERR_LIMIT, "request too large");
  }
  return APP_OK;
}

/* ---------------------------------------------------------------- responses */

static void warn_cb(void *ctx, const char *text)
{
  warn_once(ctx, text);
}

/* Print what the HTTP trigger's client would receive. */
static void print_http_result(struct run *r, bool ok, const struct he_resp *resp,
                              const struct json *root)
{
  FILE *f = r->cfg->http_out ? r->cfg->http_out : stdout;
  struct buf out;
  char note[160];
  buf_init(&out, 0);
  arena_reset(&r->env.a);
  if (he_result_http(r->cfg->fn, r->cfg->forward, ok, resp, root, &r->env.a, &out, note,
                     sizeof note) != APP_OK)
    say(r, "out of memory rendering the HTTP response");
  if (note[0])
    say(r, "%s: the host answers 500", note);
  fwrite(out.data ? out.data : "", 1, out.len, f);
  fflush(f);
  buf_cleanup(&out);
}

/* The Logs of an accepted answer, which the host logs at Information. */
static void print_logs(struct run *r, const struct json *root)
{
  const struct json *logs = json_get_ci(root, "Logs"), *it;
  FILE *f = r->cfg->handler_log ? r->cfg->handler_log : stderr;
  for (it = json_is(logs, JSON_ARRAY) ? logs->child : NULL; it; it = it->next)
    if (it->type == JSON_STRING)
      fprintf(f, "[handler log] %s\n", it->str);
}

/* ---------------------------------------------------------------- settlement */

static void inflight_remove(struct run *r, struct inv *inv)
{
  if (inv->prev)
    inv->prev->next = inv->next;
  else
    r->inf_head = inv->next;
  if (inv->next)
    inv->next->prev = inv->prev;
  else
    r->inf_tail = inv->prev;
  inv->prev = inv->next = NULL;
  r->inflight--;
}

static void inv_finish(struct run *r, struct inv *inv, bool ok, const char *reason)
{
  const struct he_run_cfg *c = r->cfg;
  int64_t now = he_now_ns();
  size_t i;

  inflight_remove(r, inv);
  r->sum->invocations++;
  r->t_end = now;
  if (inv->responded && inv->first_byte_ns)
    he_hist_add(&r->sum->lat, now - inv->first_byte_ns);
  if (ok) {
    r->sum->inv_ok++;
  } else {
    r->sum->inv_failed++;
    count_reason(r, reason);
  }
  if (c->verbose)
    say(r, "invocation %s: %zu message(s), %s%s%s (%.3f ms)", inv->id, inv->n,
        ok ? "succeeded" : "FAILED", ok ? "" : ": ", ok ? "" : reason,
        inv->first_byte_ns ? (double)(now - inv->first_byte_ns) / 1e6 : 0.0);
  for (i = 0; i < inv->n; i++) {
    struct delivery *d = inv->msgs[i];
    if (d->dlq) {
      /* the dead-letter queue: no further dead-lettering; a message that
       * keeps failing stays there (counted as left at the end) */
      if (ok) {
        r->sum->dlq_succeeded++;
        delivery_free(d);
      } else if (d->m.delivery_count >= c->max_delivery * 2) {
        r->sum->dlq_left++;
        say(r, "dead-letter queue: message %s keeps failing; left in the queue", d->m.message_id);
        delivery_free(d);
      } else {
        d->m.delivery_count++;
        d->ready_ns = now + c->redelivery_delay_ms * HE_NS_PER_MS;
        d->next = NULL;
        if (r->dq_tail)
          r->dq_tail->next = d;
        else
          r->dq_head = d;
        r->dq_tail = d;
      }
      continue;
    }
    if (ok) {
      r->sum->succeeded++;
      delivery_free(d);
      continue;
    }
    snprintf(d->last_failure, sizeof d->last_failure, "%s", reason);
    if (d->m.delivery_count >= c->max_delivery) {
      dead_letter(r, d);
      delivery_free(d);
      continue;
    }
    d->m.delivery_count++;
    d->ready_ns = now + c->redelivery_delay_ms * HE_NS_PER_MS;
    r->sum->retried++;
    enqueue(r, d);
  }
  buf_cleanup(&inv->req);
  free(inv->msgs);
  free(inv);
}

/* The response to inv arrived in full on c. */
static void on_response(struct run *r, struct conn *c)
{
  struct inv *inv = c->inv;
  char reason[400] = "";
  const struct json *root = NULL;
  bool ok;

  if (r->cfg->http && r->cfg->forward) {
    ok = true; /* forwarding: any HTTP response goes back to the client */
  } else {
    struct app_err err;
    arena_reset(&r->ja);
    ok = he_result_evaluate(&r->ja, &c->resp, &root, &err) == APP_OK;
    if (!ok) {
      snprintf(reason, sizeof reason, "%s", err.msg);
    } else {
      he_result_check_outputs(r->cfg->fn, r->cfg->target.function, root, warn_cb, r);
      if (r->cfg->verbose)
        print_logs(r, root);
    }
  }
  if (r->cfg->timer && !r->http_done) {
    FILE *f = r->cfg->http_out ? r->cfg->http_out : stdout;
    const struct json *logs = root ? json_get_ci(root, "Logs") : NULL, *it;
    r->http_done = true;
    fprintf(f, "%s %d\n", ok ? "succeeded" : "failed", c->resp.status);
    for (it = json_is(logs, JSON_ARRAY) ? logs->child : NULL; it; it = it->next)
      if (it->type == JSON_STRING)
        fprintf(f, "log: %s\n", it->str);
    if (!ok)
      fprintf(f, "reason: %s\n", reason);
    fflush(f);
  } else if (r->cfg->http && !r->http_done) {
    r->http_done = true;
    if (!ok)
      say(r, "invocation failed: %s", reason);
    print_http_result(r, ok, &c->resp, root);
  }
  c->inv = NULL;
  inv->conn = NULL;
  inv->responded = true;
  inv_finish(r, inv, ok, reason);
}

/* ---------------------------------------------------------------- I/O */

static void conn_recv(struct run *r, struct conn *c)
{
  char tmp[65536];
  struct app_err err;
  for (;;) {
    ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
    size_t used = 0;
    bool done = false;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      snprintf(err.msg, sizeof err.msg, "connection error: %s", strerror(errno));
      conn_fail(r, c, err.msg);
      return;
    }
    if (n == 0) {
      if (he_resp_eof(&c->resp, &done, &err) != APP_OK) {
        char reason[300];
        snprintf(reason, sizeof reason, "%s (handler closed the connection)", err.msg);
        conn_fail(r, c, reason);
        return;
      }
    } else if (he_resp_feed(&c->resp, tmp, (size_t)n, &used, &done, &err) != APP_OK) {
      char reason[300];
      snprintf(reason, sizeof reason, "malformed HTTP response: %s", err.msg);
      c->reused = false; /* not retryable */
      conn_fail(r, c, reason);
      return;
    }
    if (done) {
      bool reusable =
          n > 0 && used == (size_t)n && c->resp.keep_alive && c->inv->req_off == c->inv->req.len;
      on_response(r, c);
      if (reusable && !r->ending) {
        c->state = C_IDLE;
        c->next_idle = r->idle;
        r->idle = c;
      } else {
        conn_close(r, c);
      }
      return;
    }
    if (n == 0)
      return;
  }
}

/* Send what is left of the request. Returns false when the connection
 * failed (c has been freed). */
static bool conn_send(struct run *r, struct conn *c)
{
  struct inv *inv = c->inv;
  while (inv->req_off < inv->req.len) {
    ssize_t n =
        send(c->fd, inv->req.data + inv->req_off, inv->req.len - inv->req_off, MSG_NOSIGNAL);
    if (n < 0) {
      char reason[200];
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return true;
      snprintf(reason, sizeof reason, "connection error while sending: %s", strerror(errno));
      conn_fail(r, c, reason);
      return false;
    }
    if (!inv->first_byte_ns)
      inv->first_byte_ns = he_now_ns();
    inv->req_off += (size_t)n;
  }
  c->state = C_RECEIVING;
  return true;
}

static void conn_event(struct run *r, struct conn *c, uint32_t events)
{
  if (c->state == C_CONNECTING) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
      return;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
      char reason[200];
      snprintf(reason, sizeof reason, "cannot connect to 127.0.0.1:%d: %s", r->port,
               strerror(soerr));
      conn_fail(r, c, reason);
      return;
    }
    c->state = C_SENDING;
    if (!conn_send(r, c))
      return;
  } else if (c->state == C_IDLE) {
    /* the server closed (or wrote to) an idle keep-alive connection */
    conn_close(r, c);
    return;
  } else if (c->state == C_SENDING && (events & EPOLLOUT)) {
    if (!conn_send(r, c))
      return;
  }
  /* edge-triggered: a readable edge reported with a writable one must be
   * handled now, it will not be reported again */
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    conn_recv(r, c);
}

/* ---------------------------------------------------------------- handler process */

static void probe_close(struct run *r)
{
  if (r->probe.fd >= 0) {
    epoll_ctl(r->ep, EPOLL_CTL_DEL, r->probe.fd, NULL);
    close(r->probe.fd);
  }
  if (r->probe.tok) {
    r->probe.tok->dead = true;
    r->probe.tok->next_dead = r->graveyard;
    r->graveyard = r->probe.tok;
    r->probe.tok = NULL;
  }
  r->probe.fd = -1;
  r->probe.active = false;
  r->probe.connected = false;
}

static void on_ready(struct run *r)
{
  int64_t now = he_now_ns();
  double ms = (double)(now - r->spawn_ns) / 1e6;
  probe_close(r);
  r->hs = H_READY;
  if (!r->ever_ready) {
    r->ever_ready = true;
    r->sum->cold_start_ms = r->launched ? ms : -1;
    r->sum->probes = r->probe.count;
    r->t0 = now;
    r->cpu0 = cpu_seconds();
    if (r->cfg->duration_s > 0)
      r->duration_end = now + (int64_t)(r->cfg->duration_s * 1e9);
  }
  if (r->launched)
    say(r, "handler ready on 127.0.0.1:%d after %.1f ms (%llu readiness probes)", r->port, ms,
        (unsigned long long)r->probe.count);
  else
    say(r, "handler on 127.0.0.1:%d answers", r->port);
}

static void probe_refused(struct run *r)
{
  probe_close(r);
  r->probe.next_ns = he_now_ns() + PROBE_INTERVAL_NS;
}

static void probe_send(struct run *r)
{
  char req[96];
  int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", r->port);
  r->probe.connected = true;
  /* a short request on a fresh socket fits in the send buffer */
  if (send(r->probe.fd, req, (size_t)n, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
    on_ready(r); /* connected, then failed: not a SocketException for the host */
}

static void probe_begin(struct run *r)
{
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  r->probe.count++;
  if (fd < 0) {
    r->probe.next_ns = he_now_ns() + PROBE_INTERVAL_NS;
    return;
  }
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)r->port);
  r->probe.fd = fd;
  r->probe.active = true;
  r->probe.connected = false;
  r->probe.tok = xcalloc(1, sizeof *r->probe.tok);
  r->probe.tok->kind = EV_PROBE;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
    ep_add(r, fd, r->probe.tok, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    probe_send(r);
  } else if (errno == EINPROGRESS) {
    ep_add(r, fd, r->probe.tok, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  } else {
    probe_refused(r);
  }
}

static void probe_event(struct run *r, uint32_t events)
{
  char tmp[512];
  if (!r->probe.connected) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(r->probe.fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
      probe_refused(r); /* connection refused: keep waiting */
      return;
    }
    if (!(events & EPOLLOUT))
      return;
    probe_send(r);
    if (!r->probe.active)
      return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    /* any HTTP answer means ready; so does any failure after connecting
     * (the host keeps waiting only on a SocketException from connect) */
    ssize_t n = recv(r->probe.fd, tmp, sizeof tmp, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    on_ready(r);
  }
}

static void handler_start(struct run *r);

static int count_recent_errors(struct run *r, int64_t now)
{
  int i, n = 0;
  for (i = 0; i < r->n_err_times; i++)
    if (now - r->err_times[i] < ERROR_WINDOW_NS)
      n++;
  return n;
}

/* An error event (crash, failed start, readiness timeout): restart, or
 * give up at the third within 30 minutes. */
static void handler_error(struct run *r, const char *what)
{
  int64_t now = he_now_ns();
  int recent;
  if (r->n_err_times < (int)(sizeof r->err_times / sizeof r->err_times[0]))
    r->err_times[r->n_err_times++] = now;
  r->sum->error_exits++;
  recent = count_recent_errors(r, now);
  if (recent >= ERRORS_TO_GIVE_UP) {
    r->hs = H_GAVE_UP;
    r->sum->gave_up = true;
    snprintf(r->sum->gave_up_reason, sizeof r->sum->gave_up_reason,
             "%d handler errors within 30 minutes (last: %s): the host stops", recent, what);
    say(r, "Exceeded http worker restart retry count: %s", r->sum->gave_up_reason);
    probe_close(r);
    return;
  }
  say(r, "%s: restarting the handler (error %d of %d)", what, recent, ERRORS_TO_GIVE_UP);
  r->sum->restarts++;
  handler_start(r);
}

static void handler_start(struct run *r)
{
  struct app_err err;
  close_idle(r);
  probe_close(r);
  r->hs = H_STARTING;
  r->kill_reason = KILL_NONE;
  r->probe.count = 0;
  r->spawn_ns = he_now_ns();
  if (r->launched) {
    he_proc_release(&r->proc);
    if (he_proc_spawn(&r->proc, r->cfg->launch, r->port, &err) != APP_OK) {
      he_proc_release(&r->proc);
      handler_error(r, err.msg);
      return;
    }
    r->sum->pid = (int)r->proc.pid;
    if (r->cfg->verbose) {
      char **a;
      fprintf(stderr, "hostemu: started pid %d:", (int)r->proc.pid);
      for (a = r->proc.argv; *a; a++)
        fprintf(stderr, " [%s]", *a);
      fputc('\n', stderr);
    }
    r->out.fd = r->proc.out_fd;
    r->err.fd = r->proc.err_fd;
    ep_add(r, r->out.fd, &r->out.ev, EPOLLIN | EPOLLET);
    ep_add(r, r->err.fd, &r->err.ev, EPOLLIN | EPOLLET);
  }
  /* the host probes at once, then every 25 ms */
  probe_begin(r);
}

static void drain_pipes(struct run *r)
{
  if (r->out.fd >= 0)
    pipe_read(r, &r->out);
  if (r->err.fd >= 0)
    pipe_read(r, &r->err);
  if (r->out.fd >= 0) {
    epoll_ctl(r->ep, EPOLL_CTL_DEL, r->out.fd, NULL);
    pipe_flush_line(r, &r->out);
  }
  if (r->err.fd >= 0) {
    epoll_ctl(r->ep, EPOLL_CTL_DEL, r->err.fd, NULL);
    pipe_flush_line(r, &r->err);
  }
  r->out.fd = r->err.fd = -1;
  he_proc_release(&r->proc); /* closes whatever is still open */
}

static void on_child_exit(struct run *r, int status)
{
  enum kill_reason why = r->kill_reason;
  char what[160];
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

  r->proc.pid = 0;
  r->suspect_until = 0;
  r->sum->exit_known = true;
  r->sum->exit_code = code;
  r->sum->exit_signal = sig;
  drain_pipes(r);
  close_idle(r);
  r->kill_reason = KILL_NONE;
  if (r->ending || why == KILL_END)
    return;
  if (sig)
    snprintf(what, sizeof what, "handler killed by signal %d", sig);
  else
    snprintf(what, sizeof what, "handler exited with code %d", code);
  if (why == KILL_TIMEOUT) {
    say(r, "handler killed after an invocation timeout: restarting it (not counted)");
    r->sum->restarts++;
    handler_start(r);
  } else if (why == KILL_INIT) {
    handler_error(r, "handler did not answer GET / within the initialization timeout");
  } else if (!sig && code == 200) {
    say(r, "%s (intentional restart): restarting it, not counted as an error", what);
    r->sum->restarts++;
    handler_start(r);
  } else if (!sig && code == 0) {
    say(r,
        "%s: not restarted (as the host does); invocations will fail with connection "
        "refused",
        what);
    if (r->hs == H_READY)
      r->hs = H_DEAD_NO_RESTART;
    /* while starting, the host keeps probing until its init timeout */
  } else {
    handler_error(r, what);
  }
}

static void reap(struct run *r)
{
  int status;
  pid_t p;
  if (!r->proc.pid)
    return;
  do {
    p = waitpid(r->proc.pid, &status, WNOHANG);
  } while (p < 0 && errno == EINTR);
  if (p == r->proc.pid)
    on_child_exit(r, status);
}

static void on_signal(struct run *r)
{
  struct signalfd_siginfo si;
  while (read(r->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (si.ssi_signo == SIGCHLD)
      continue; /* reaped below */
    r->signals++;
    if (r->signals == 1)
      say(r, "interrupted: finishing the invocations in flight (again to abort)");
  }
  reap(r);
}

/* ---------------------------------------------------------------- dispatch */

static bool can_dispatch(struct run *r)
{
  return (r->hs == H_READY || r->hs == H_DEAD_NO_RESTART) && !r->signals && !r->fatal &&
         (!r->suspect_until || he_now_ns() >= r->suspect_until || !r->proc.pid);
}

static int64_t rate_next_ns(struct run *r)
{
  /* deliveries allowed by time t: rate * (t - t0) + 1 */
  return r->t0 + (int64_t)((double)r->dispatched / r->cfg->rate * 1e9);
}

static void dispatch(struct run *r)
{
  const struct he_run_cfg *c = r->cfg;
  int64_t now = he_now_ns();
  while (can_dispatch(r) && r->inflight < (size_t)c->concurrency) {
    struct inv *inv;
    struct app_err err;
    size_t cap = c->http ? 0 : (size_t)c->batch;
    if (c->rate > 0 && rate_next_ns(r) > now)
      break;
    inv = xcalloc(1, sizeof *inv);
    buf_init(&inv->req, c->max_request);
    he_guid(inv->id);
    if (c->http) {
      mark_src_done(r, now);
      if (r->src_done) {
        free(inv);
        break;
      }
      r->sum->generated++;
      r->sum->deliveries++;
      r->dispatched++;
      if (c->repeat && r->sum->generated >= c->repeat)
        r->copy = c->repeat; /* all requests issued */
      if (build_http_request(r, inv, &err) != APP_OK) {
        say(r, "cannot build the request: %s", err.msg);
        r->fatal = true;
        r->fatal_err = err;
        buf_cleanup(&inv->req);
        free(inv);
        break;
      }
    } else {
      inv->msgs = xcalloc(cap, sizeof *inv->msgs);
      if (r->dq_head && r->dq_head->ready_ns <= now) {
        /* the dead-letter queue's function has its own batches */
        size_t dcap = c->dlq_target.many ? cap : 1;
        inv->dlq = true;
        while (inv->n < dcap && r->dq_head && r->dq_head->ready_ns <= now) {
          struct delivery *d = r->dq_head;
          r->dq_head = d->next;
          if (!r->dq_head)
            r->dq_tail = NULL;
          inv->msgs[inv->n++] = d;
          r->sum->dlq_deliveries++;
          r->dispatched++;
        }
        cap = 0; /* nothing from the main queue in this invocation */
      }
      while (inv->n < cap) {
        struct delivery *d = NULL;
        if (c->rate > 0 && inv->n && rate_next_ns(r) > now)
          break;
        if (r->q_head && r->q_head->ready_ns <= now) {
          d = r->q_head;
          r->q_head = d->next;
          if (!r->q_head)
            r->q_tail = NULL;
        } else {
          d = generate(r, now);
        }
        if (!d)
          break;
        inv->msgs[inv->n++] = d;
        r->sum->deliveries++;
        r->dispatched++;
      }
      if (inv->n == 0) {
        free(inv->msgs);
        buf_cleanup(&inv->req);
        free(inv);
        break;
      }
      if (build_sb_request(r, inv, &err) != APP_OK) {
        size_t i;
        say(r, "cannot build the request: %s", err.msg);
        r->fatal = true;
        r->fatal_err = err;
        for (i = 0; i < inv->n; i++) {
          r->sum->unsettled++;
          delivery_free(inv->msgs[i]);
        }
        free(inv->msgs);
        buf_cleanup(&inv->req);
        free(inv);
        break;
      }
    }
    inv->start_ns = now;
    inv->deadline_ns = c->timeout_ms >= 0 ? now + c->timeout_ms * HE_NS_PER_MS : INT64_MAX;
    inv->prev = r->inf_tail;
    if (r->inf_tail)
      r->inf_tail->next = inv;
    else
      r->inf_head = inv;
    r->inf_tail = inv;
    r->inflight++;
    if (r->inflight > r->sum->max_in_flight)
      r->sum->max_in_flight = r->inflight;
    inv_start(r, inv);
  }
}

/* ---------------------------------------------------------------- timers */

static void check_timers(struct run *r)
{
  int64_t now = he_now_ns();
  bool restart = false;

  if (r->hs == H_STARTING && !r->probe.active && now >= r->probe.next_ns)
    probe_begin(r);
  if (r->hs == H_STARTING && now - r->spawn_ns > r->cfg->init_timeout_ms * HE_NS_PER_MS) {
    if (!r->launched) {
      r->fatal = true;
      app_err_set(&r->fatal_err, APP_ERR_TIMEOUT,
                  "the handler on 127.0.0.1:%d did not answer GET / within %lld ms", r->port,
                  (long long)r->cfg->init_timeout_ms);
      probe_close(r);
    } else if (r->proc.pid) {
      if (r->kill_reason == KILL_NONE) {
        r->kill_reason = KILL_INIT;
        r->hs = H_KILLING;
        probe_close(r);
        kill(r->proc.pid, SIGKILL);
      }
    } else {
      /* the process is gone (it exited 0 while starting) */
      probe_close(r);
      handler_error(r, "handler did not answer GET / within the initialization timeout");
    }
  }
  while (r->inf_head && r->inf_head->deadline_ns <= now) {
    struct inv *inv = r->inf_head;
    char reason[200];
    snprintf(reason, sizeof reason,
             "timeout: no response within %lld ms (functionTimeout); the host restarts the "
             "handler process",
             (long long)r->cfg->timeout_ms);
    if (inv->conn) {
      struct conn *c = inv->conn;
      c->inv = NULL;
      conn_close(r, c);
      inv->conn = NULL;
    }
    inv_finish(r, inv, false, reason);
    restart = true;
  }
  if (restart && r->launched && r->proc.pid && r->kill_reason == KILL_NONE) {
    r->kill_reason = KILL_TIMEOUT;
    r->hs = H_KILLING;
    kill(r->proc.pid, SIGKILL);
  }
  mark_src_done(r, now);
}

static int next_timeout_ms(struct run *r)
{
  int64_t now = he_now_ns(), next = now + 1000 * HE_NS_PER_MS;
  if (r->hs == H_STARTING) {
    if (!r->probe.active && r->probe.next_ns < next)
      next = r->probe.next_ns;
    if (r->spawn_ns + r->cfg->init_timeout_ms * HE_NS_PER_MS + HE_NS_PER_MS < next)
      next = r->spawn_ns + r->cfg->init_timeout_ms * HE_NS_PER_MS + HE_NS_PER_MS;
  }
  if (r->inf_head && r->inf_head->deadline_ns < next)
    next = r->inf_head->deadline_ns;
  if (r->suspect_until > now && r->suspect_until < next)
    next = r->suspect_until;
  if (can_dispatch(r) && r->inflight < (size_t)r->cfg->concurrency) {
    if (r->q_head && r->q_head->ready_ns < next)
      next = r->q_head->ready_ns;
    if (r->dq_head && r->dq_head->ready_ns < next)
      next = r->dq_head->ready_ns;
    if (r->cfg->rate > 0 && rate_next_ns(r) < next)
      next = rate_next_ns(r);
  }
  if (r->duration_end && !r->src_done && r->duration_end < next)
    next = r->duration_end;
  if (next <= now)
    return 0;
  return (int)((next - now + HE_NS_PER_MS - 1) / HE_NS_PER_MS);
}

static bool finished(struct run *r)
{
  if (r->fatal || r->signals > 1)
    return true;
  if (r->inflight)
    return false;
  if (r->hs == H_GAVE_UP || r->signals)
    return true;
  if (!r->ever_ready)
    return false;
  return r->src_done && !r->q_head && !r->dq_head;
}

static void poll_once(struct run *r, int timeout_ms)
{
  struct epoll_event evs[256];
  int n, i;
  n = epoll_wait(r->ep, evs, 256, timeout_ms);
  if (n < 0 && errno != EINTR)
    APP_ASSERT(!"epoll_wait failed");
  for (i = 0; i < n; i++) {
    struct ev *ev = evs[i].data.ptr;
    if (ev->dead)
      continue;
    switch (ev->kind) {
    case EV_CONN: conn_event(r, (struct conn *)ev, evs[i].events); break;
    case EV_PROBE:
      if (r->probe.active && ev == r->probe.tok)
        probe_event(r, evs[i].events);
      break;
    case EV_PIPE: {
      struct pipe_ev *p = (struct pipe_ev *)ev;
      if (p->fd >= 0)
        pipe_read(r, p);
      break;
    }
    case EV_SIGNAL: on_signal(r); break;
    }
  }
  bury(r);
}

/* After the work: stop the handler. With --stop, SIGTERM and wait (up to
 * --stop-timeout) for its exit code; otherwise SIGKILL, as the host does
 * when it disposes of the worker. */
static void stop_handler(struct run *r)
{
  int64_t deadline;
  r->ending = true;
  if (!r->launched || !r->proc.pid)
    return;
  if (r->cfg->stop) {
    r->sum->stopped = true;
    r->kill_reason = KILL_END;
    kill(r->proc.pid, SIGTERM);
    deadline = he_now_ns() + r->cfg->stop_timeout_ms * HE_NS_PER_MS;
    while (r->proc.pid && he_now_ns() < deadline)
      poll_once(r, 50);
    if (!r->proc.pid) {
      say(r, "handler stopped: %s %d", r->sum->exit_signal ? "signal" : "exit code",
          r->sum->exit_signal ? r->sum->exit_signal : r->sum->exit_code);
      return;
    }
    say(r, "handler did not exit within %lld ms of SIGTERM: killing it",
        (long long)r->cfg->stop_timeout_ms);
  }
  r->kill_reason = KILL_END;
  kill(r->proc.pid, SIGKILL);
  while (r->proc.pid) {
    int status;
    pid_t p = waitpid(r->proc.pid, &status, 0);
    if (p == r->proc.pid)
      on_child_exit(r, status);
    else if (p < 0 && errno != EINTR)
      break;
  }
}

static enum app_result pick_port(int *out, struct app_err *err)
{
  /* as the host does: bind 127.0.0.1:0 and take what the kernel gave */
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return app_err_set(err, APP_ERR_IO, "socket: %s", strerror(errno));
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    close(fd);
    return app_err_set(err, APP_ERR_IO, "cannot pick a free port: %s", strerror(errno));
  }
  close(fd);
  *out = ntohs(sa.sin_port);
  return APP_OK;
}

enum app_result he_run(const struct he_run_cfg *cfg, struct he_summary *sum, struct app_err *err)
{
  enum app_result res = APP_OK;
  struct run *r = xcalloc(1, sizeof *r);
  sigset_t mask, old;
  struct delivery *d;

  r->cfg = cfg;
  r->sum = sum;
  r->launched = cfg->launch != NULL;
  r->ep = -1;
  r->sfd = -1;
  r->probe.fd = -1;
  r->out.ev.kind = EV_PIPE;
  r->err.ev.kind = EV_PIPE;
  r->err.is_err = true;
  r->out.fd = r->err.fd = -1;
  r->proc.out_fd = r->proc.err_fd = -1;
  r->sig_ev.kind = EV_SIGNAL;
  buf_init(&r->out.line, 0);
  buf_init(&r->err.line, 0);
  buf_init(&r->envelope, cfg->max_request);
  he_env_init(&r->env);
  arena_init(&r->ja, cfg->max_response * 8 + 1024 * 1024);
  if (cfg->msgs && cfg->msgs->n) {
    r->b64 = xcalloc(cfg->msgs->n, sizeof *r->b64);
    r->b64_len = xcalloc(cfg->msgs->n, sizeof *r->b64_len);
  }
  sum->launched = r->launched;
  sum->concurrency = cfg->concurrency;
  sum->cold_start_ms = -1;

  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, &old);
  signal(SIGPIPE, SIG_IGN);
  r->ep = epoll_create1(EPOLL_CLOEXEC);
  r->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (r->ep < 0 || r->sfd < 0) {
    res = app_err_set(err, APP_ERR_IO, "epoll/signalfd: %s", strerror(errno));
    goto out;
  }
  ep_add(r, r->sfd, &r->sig_ev, EPOLLIN | EPOLLET);
  if (cfg->connect_port > 0) {
    r->port = cfg->connect_port;
  } else {
    res = pick_port(&r->port, err);
    if (res != APP_OK)
      goto out;
  }
  sum->port = r->port;
  handler_start(r);
  while (!finished(r)) {
    check_timers(r);
    dispatch(r);
    if (finished(r))
      break;
    poll_once(r, next_timeout_ms(r));
    reap(r);
  }
  sum->elapsed_s = r->t0 && r->t_end > r->t0 ? (double)(r->t_end - r->t0) / 1e9 : 0;
  /* the CPU spent delivering, comparable with elapsed_s */
  sum->cpu_s = r->t0 ? cpu_seconds() - r->cpu0 : 0;
  /* abort whatever is still in flight (second ^C or a fatal error) */
  while (r->inf_head) {
    struct inv *inv = r->inf_head;
    size_t i;
    if (inv->conn) {
      inv->conn->inv = NULL;
      conn_close(r, inv->conn);
    }
    inflight_remove(r, inv);
    for (i = 0; i < inv->n; i++) {
      sum->unsettled++;
      delivery_free(inv->msgs[i]);
    }
    buf_cleanup(&inv->req);
    free(inv->msgs);
    free(inv);
  }
  while ((d = r->q_head) != NULL) {
    r->q_head = d->next;
    sum->unsettled++;
    delivery_free(d);
  }
  while ((d = r->dq_head) != NULL) {
    r->dq_head = d->next;
    sum->dlq_left++;
    delivery_free(d);
  }
  /* messages of a --repeat run that were never delivered are unsettled too */
  if (!cfg->http && cfg->repeat && !cfg->duration_s && sum->generated < cfg->repeat * cfg->msgs->n)
    sum->unsettled += cfg->repeat * cfg->msgs->n - sum->generated;
  stop_handler(r);
  if (r->fatal && !r->ever_ready) {
    *err = r->fatal_err;
    res = r->fatal_err.code ? r->fatal_err.code : APP_ERR_TIMEOUT;
  } else if (r->fatal) {
    *err = r->fatal_err;
    res = r->fatal_err.code ? r->fatal_err.code : APP_ERR_INPUT;
  }
out:
  while (r->idle)
    conn_close(r, r->idle);
  probe_close(r);
  bury(r);
  if (r->launched && r->proc.pid) {
    int status;
    kill(r->proc.pid, SIGKILL);
    waitpid(r->proc.pid, &status, 0);
  }
  he_proc_release(&r->proc);
  if (r->sfd >= 0)
    close(r->sfd);
  if (r->ep >= 0)
    close(r->ep);
  sigprocmask(SIG_SETMASK, &old, NULL);
  buf_cleanup(&r->out.line);
  buf_cleanup(&r->err.line);
  buf_cleanup(&r->envelope);
  he_env_cleanup(&r->env);
  arena_cleanup(&r->ja);
  if (r->b64) {
    size_t i;
    for (i = 0; i < cfg->msgs->n; i++)
      free(r->b64[i]);
  }
  free(r->b64);
  free(r->b64_len);
  free(r);
  return res;
}

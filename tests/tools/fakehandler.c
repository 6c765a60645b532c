/* fakehandler.c - a scripted custom handler for testing the host emulator.
 *
 *   fakehandler [options]        serve on FUNCTIONS_CUSTOMHANDLER_PORT
 *   fakehandler json [--str|--b64|--keys|--len|--type] FILE [KEY|#N]...
 *                                print a value of a JSON file (FILE "-" = stdin):
 *                                raw JSON (exact lexemes) by default, a string's
 *                                content (--str), its base64-decoded bytes (--b64),
 *                                an object's keys, a length or a type name
 *
 * Serve options (the behaviour the tests script):
 *   --dir DIR            record every request: DIR/req-<ns>-<pid>-<n>.head (request
 *                        line and headers as received) and .body (after de-chunking);
 *                        DIR/env-<pid> (FUNCTIONS_* variables, argv, cwd);
 *                        DIR/max_inflight (most simultaneous invocations seen);
 *                        DIR/gets (one line per GET /)
 *   --port N             listen port (default FUNCTIONS_CUSTOMHANDLER_PORT, then
 *                        FUNCTIONS_HTTPWORKER_PORT)
 *   --fail-first K       fail the first K deliveries of each MessageId
 *   --always-fail        fail every invocation
 *   --status N           status of failures (default 500)
 *   --empty-body         answer 200 with an empty body
 *   --null-body          answer 200 with the JSON text null
 *   --content-type T     Content-Type of answers ("" = none; default application/json)
 *   --outputs JSON       the Outputs object of successful answers (default {}; also
 *                        from FAKE_OUTPUTS, since host.json arguments lose quotes)
 *   --return JSON        the ReturnValue (default null; also FAKE_RETURN)
 *   --sleep-ms N         wait N ms before answering an invocation
 *   --hold-until N       hold invocations until N have been in flight at once (at most
 *                        5 s), so a concurrency test does not depend on timing
 *   --ready-delay-ms N   wait N ms before listening
 *   --exit-after N       answer N invocations, then exit on the next one, unanswered
 *   --exit-code C        exit status for --exit-after and --exit-at-start (default 1)
 *   --exit-at-start      exit with --exit-code right away, before listening
 *   --term-code C        exit status after SIGTERM (default 0)
 *   --threads N          MHD thread pool of N (default: a thread per connection)
 *   --raw                capture raw request bytes (DIR/raw-<n>), one connection at a time
 */
#include "common/arena.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (256u * 1024 * 1024)

struct config {
  const char *dir;
  int port;
  long fail_first;
  bool always_fail;
  int status;
  bool empty_body, null_body;
  const char *content_type;
  const char *outputs, *ret;
  long sleep_ms, ready_delay_ms;
  long hold_until;
  long exit_after;
  int exit_code;
  bool exit_at_start;
  int term_code;
  int threads;
  bool raw;
};

static struct config cfg = {
    .status = 500,
    .content_type = "application/json",
    .outputs = "{}",
    .ret = "null",
    .exit_after = -1,
    .exit_code = 1,
};

static atomic_long inflight, max_inflight, invocations, seq;
static pthread_mutex_t ids_lock = PTHREAD_MUTEX_INITIALIZER;

/* MessageId -> deliveries seen, a small open-addressing table */
struct seen {
  char *id;
  long count;
};
static struct seen *ids;
static size_t ids_cap, ids_n;

struct reqstate {
  struct buf body;
  struct buf head;
  bool counted; /* an invocation (not GET /), counted in inflight */
};

/* A decimal option value; anything else ends the program (exit 2). */
static long num(const char *s)
{
  char *end = NULL;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || !*s || *end) {
    fprintf(stderr, "fakehandler: not a number: \"%s\"\n", s);
    exit(2);
  }
  return v;
}

static long long now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static void write_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  if (!f)
    return;
  if (len)
    fwrite(data, 1, len, f);
  fclose(f);
}

static void append_line(const char *name, const char *line)
{
  char path[4096];
  FILE *f;
  if (!cfg.dir)
    return;
  snprintf(path, sizeof path, "%s/%s", cfg.dir, name);
  f = fopen(path, "a");
  if (!f)
    return;
  fprintf(f, "%s\n", line);
  fclose(f);
}

static unsigned long hash(const char *s)
{
  unsigned long h = 5381;
  while (*s)
    h = h * 33 + (unsigned char)*s++;
  return h;
}

/* Count one more delivery of id; returns the new count. */
static long seen_inc(const char *id)
{
  size_t i;
  long c;
  pthread_mutex_lock(&ids_lock);
  if (ids_n * 2 >= ids_cap) {
    size_t ncap = ids_cap ? ids_cap * 2 : 1024, k;
    struct seen *n = calloc(ncap, sizeof *n);
    if (!n)
      abort();
    for (k = 0; k < ids_cap; k++) {
      if (!ids[k].id)
        continue;
      for (i = hash(ids[k].id) % ncap; n[i].id; i = (i + 1) % ncap)
        ;
      n[i] = ids[k];
    }
    free(ids);
    ids = n;
    ids_cap = ncap;
  }
  for (i = hash(id) % ids_cap; ids[i].id && strcmp(ids[i].id, id); i = (i + 1) % ids_cap)
    ;
  if (!ids[i].id) {
    ids[i].id = strdup(id);
    ids_n++;
  }
  c = ++ids[i].count;
  pthread_mutex_unlock(&ids_lock);
  return c;
}

/* The MessageIds of an envelope: Metadata.MessageId (double-encoded) or
 * Metadata.MessageIdArray (a double-encoded array). Returns the highest
 * delivery count seen among them after counting this delivery, or 0 when
 * the envelope has no message ids. */
static long count_deliveries(const char *body, size_t len)
{
  struct arena a;
  struct json *root = NULL, *inner = NULL;
  const struct json *md, *v, *c;
  struct app_err err;
  long maxc = 0;

  arena_init(&a, (size_t)len * 8 + 65536);
  if (json_parse(&a, body, len, 64, &root, &err) != APP_OK)
    goto out;
  md = json_get(root, "Metadata");
  v = json_get(md, "MessageId");
  if (json_is(v, JSON_STRING) && json_parse(&a, v->str, v->len, 4, &inner, &err) == APP_OK &&
      json_is(inner, JSON_STRING)) {
    maxc = seen_inc(inner->str);
    goto out;
  }
  v = json_get(md, "MessageIdArray");
  if (json_is(v, JSON_STRING) && json_parse(&a, v->str, v->len, 4, &inner, &err) == APP_OK &&
      json_is(inner, JSON_ARRAY)) {
    for (c = inner->child; c; c = c->next) {
      if (json_is(c, JSON_STRING)) {
        long n = seen_inc(c->str);
        if (n > maxc)
          maxc = n;
      }
    }
  }
out:
  arena_cleanup(&a);
  return maxc;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
  struct buf *h = cls;
  (void)kind;
  if (buf_printf(h, "%s: %s\n", key, value ? value : "") != APP_OK)
    return MHD_NO;
  return MHD_YES;
}

static void record(struct MHD_Connection *conn, const char *method, const char *url,
                   const char *version, struct reqstate *st)
{
  char base[4096], path[4200];
  long n = atomic_fetch_add(&seq, 1) + 1;
  if (!cfg.dir)
    return;
  snprintf(base, sizeof base, "%s/req-%019lld-%d-%06ld", cfg.dir, now_ns(), (int)getpid(), n);
  buf_reset(&st->head);
  if (buf_printf(&st->head, "%s %s %s\n", method, url, version) != APP_OK)
    return;
  MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &st->head);
  snprintf(path, sizeof path, "%s.body", base);
  write_file(path, st->body.data ? st->body.data : "", st->body.len);
  /* the head last: a test that sees .head knows .body is complete */
  snprintf(path, sizeof path, "%s.head", base);
  write_file(path, st->head.data, st->head.len);
}

static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *body,
                             const char *ctype)
{
  struct MHD_Response *resp;
  enum MHD_Result r;
  resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  if (ctype && *ctype)
    MHD_add_response_header(resp, "Content-Type", ctype);
  r = MHD_queue_response(conn, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return r;
}

static void note_inflight(void)
{
  long cur = atomic_fetch_add(&inflight, 1) + 1, prev = atomic_load(&max_inflight);
  while (cur > prev) {
    if (atomic_compare_exchange_weak(&max_inflight, &prev, cur)) {
      char path[4096], txt[32];
      if (cfg.dir) {
        snprintf(path, sizeof path, "%s/max_inflight", cfg.dir);
        snprintf(txt, sizeof txt, "%ld\n", cur);
        /* several threads may race here: the file keeps the largest */
        pthread_mutex_lock(&ids_lock);
        if (atomic_load(&max_inflight) == cur)
          write_file(path, txt, strlen(txt));
        pthread_mutex_unlock(&ids_lock);
      }
      break;
    }
  }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_cls)
{
  struct reqstate *st = *req_cls;
  char answer[65536];
  long n, deliveries;
  bool fail;
  (void)cls;

  if (!st) {
    st = calloc(1, sizeof *st);
    if (!st)
      return MHD_NO;
    buf_init(&st->body, MAX_BODY);
    buf_init(&st->head, 0);
    *req_cls = st;
    if (strcmp(url, "/") || strcmp(method, "GET")) {
      st->counted = true;
      note_inflight();
    }
    return MHD_YES;
  }
  if (*upload_size) {
    if (buf_append(&st->body, upload_data, *upload_size) != APP_OK)
      return MHD_NO;
    *upload_size = 0;
    return MHD_YES;
  }
  if (!strcmp(url, "/") && !strcmp(method, "GET")) {
    char line[64];
    snprintf(line, sizeof line, "%lld %d", now_ns(), (int)getpid());
    append_line("gets", line);
    return reply(conn, 200, "fakehandler", "text/plain");
  }
  n = atomic_fetch_add(&invocations, 1) + 1;
  if (cfg.exit_after >= 0 && n > cfg.exit_after) {
    record(conn, method, url, version, st);
    _exit(cfg.exit_code);
  }
  record(conn, method, url, version, st);
  /* parse only when needed: a load test should measure the emulator */
  deliveries =
      cfg.fail_first > 0 ? count_deliveries(st->body.data ? st->body.data : "", st->body.len) : 0;
  if (cfg.hold_until > 0) {
    long waited = 0;
    /* a one-time barrier: the first N wait for each other, later ones pass */
    while (atomic_load(&max_inflight) < cfg.hold_until && waited < 5000) {
      sleep_ms(2);
      waited += 2;
    }
  }
  if (cfg.sleep_ms > 0)
    sleep_ms(cfg.sleep_ms);
  fail = cfg.always_fail || (cfg.fail_first > 0 && deliveries > 0 && deliveries <= cfg.fail_first);
  if (fail) {
    snprintf(answer, sizeof answer, "{\"error\":\"fakehandler: scripted failure\"}");
    return reply(conn, cfg.status, answer, "application/json");
  }
  if (cfg.empty_body)
    return reply(conn, 200, "", cfg.content_type);
  if (cfg.null_body)
    return reply(conn, 200, "null", cfg.content_type);
  snprintf(answer, sizeof answer,
           "{\"Outputs\":%s,\"Logs\":[\"fakehandler: invocation %ld\"],\"ReturnValue\":%s}",
           cfg.outputs, n, cfg.ret);
  return reply(conn, 200, answer, cfg.content_type);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct reqstate *st = *req_cls;
  (void)cls;
  (void)conn;
  (void)toe;
  if (!st)
    return;
  if (st->counted)
    atomic_fetch_sub(&inflight, 1);
  buf_cleanup(&st->body);
  buf_cleanup(&st->head);
  free(st);
  *req_cls = NULL;
}

static void write_env(int argc, char **argv)
{
  static const char *names[] = {"FUNCTIONS_CUSTOMHANDLER_PORT",
                                "FUNCTIONS_HTTPWORKER_PORT",
                                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                                "FUNCTIONS_HTTPWORKER_ID",
                                "FUNCTIONS_APP_ROOT_PATH",
                                "FAKE_SETTING",
                                "FAKE_ENV",
                                "FAKE_PRESET"};
  char path[4096], cwd[4096];
  FILE *f;
  size_t i;
  int k;
  if (!cfg.dir)
    return;
  snprintf(path, sizeof path, "%s/env-%d", cfg.dir, (int)getpid());
  f = fopen(path, "w");
  if (!f)
    return;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v)
      fprintf(f, "%s=%s\n", names[i], v);
  }
  for (k = 0; k < argc; k++)
    fprintf(f, "ARG%d=%s\n", k, argv[k]);
  if (getcwd(cwd, sizeof cwd))
    fprintf(f, "CWD=%s\n", cwd);
  fclose(f);
}

/* ---- raw capture: one connection at a time, bytes exactly as sent ---- */

static int raw_serve(int lfd)
{
  static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 14\r\nConnection: close\r\n\r\n{\"Outputs\":{}}";
  static const char get_ok[] =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    struct buf in;
    char tmp[65536], path[4200];
    size_t head_end = 0;
    bool chunked = false, done = false;
    long clen = -1;
    if (fd < 0) {
      if (errno == EINTR)
        continue;
      return 1;
    }
    buf_init(&in, MAX_BODY);
    while (!done) {
      ssize_t n = read(fd, tmp, sizeof tmp);
      if (n <= 0)
        break;
      if (buf_append(&in, tmp, (size_t)n) != APP_OK)
        break;
      if (!head_end) {
        char *e = strstr(in.data, "\r\n\r\n");
        if (!e)
          continue;
        head_end = (size_t)(e - in.data) + 4;
        chunked = strcasestr(in.data, "\r\nTransfer-Encoding: chunked") != NULL;
        if (strcasestr(in.data, "\r\nContent-Length:"))
          clen = strtol(strcasestr(in.data, "\r\nContent-Length:") + 17, NULL, 10);
      }
      if (chunked)
        done = in.len >= head_end + 5 && !memcmp(in.data + in.len - 5, "0\r\n\r\n", 5);
      else
        done = in.len >= head_end + (size_t)(clen > 0 ? clen : 0);
    }
    if (head_end && !strncmp(in.data, "GET / ", 6)) {
      if (write(fd, get_ok, sizeof get_ok - 1) < 0)
        perror("write");
    } else if (head_end) {
      long n = atomic_fetch_add(&seq, 1) + 1;
      snprintf(path, sizeof path, "%s/raw-%06ld", cfg.dir ? cfg.dir : ".", n);
      write_file(path, in.data, in.len);
      if (write(fd, ok, sizeof ok - 1) < 0)
        perror("write");
    }
    buf_cleanup(&in);
    close(fd);
  }
}

static int serve(int argc, char **argv)
{
  struct MHD_Daemon *d;
  struct sockaddr_in sa;
  sigset_t set;
  int sig = 0;
  unsigned flags;

  if (cfg.exit_at_start)
    return cfg.exit_code;
  if (!cfg.port) {
    const char *p = getenv("FUNCTIONS_CUSTOMHANDLER_PORT");
    if (!p)
      p = getenv("FUNCTIONS_HTTPWORKER_PORT");
    cfg.port = p ? (int)num(p) : 0;
  }
  if (cfg.port <= 0 || cfg.port > 65535) {
    fprintf(stderr, "fakehandler: no port (FUNCTIONS_CUSTOMHANDLER_PORT or --port)\n");
    return 2;
  }
  write_env(argc, argv);
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  if (cfg.ready_delay_ms > 0)
    sleep_ms(cfg.ready_delay_ms);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)cfg.port);
  if (cfg.raw) {
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 64) != 0) {
      perror("fakehandler: listen");
      return 2;
    }
    fprintf(stdout, "fakehandler raw capture on port %d\n", cfg.port);
    fflush(stdout);
    return raw_serve(lfd);
  }
  flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  flags |= cfg.threads > 0 ? MHD_USE_EPOLL : MHD_USE_THREAD_PER_CONNECTION;
  if (cfg.threads > 0)
    d = MHD_start_daemon(flags, (uint16_t)cfg.port, NULL, NULL, on_request, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg.threads,
                         MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                         MHD_OPTION_END);
  else
    d = MHD_start_daemon(flags, (uint16_t)cfg.port, NULL, NULL, on_request, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 10000u,
                         MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "fakehandler: cannot listen on 127.0.0.1:%d\n", cfg.port);
    return 2;
  }
  /* a stdout line, a stderr line and a stderr warning, so the emulator's
   * log levels show (information, error, warning) */
  fprintf(stdout, "fakehandler listening on 127.0.0.1:%d\n", cfg.port);
  fflush(stdout);
  fprintf(stderr, "fakehandler pid %d on stderr\n", (int)getpid());
  fprintf(stderr, "fakehandler warning: this is a test double\n");
  while (sigwait(&set, &sig) != 0)
    ;
  MHD_stop_daemon(d);
  fprintf(stdout, "fakehandler stopping on signal %d after %ld invocations\n", sig,
          atomic_load(&invocations));
  fflush(stdout);
  return cfg.term_code;
}

/* ---- the json query tool ---- */

static int json_tool(int argc, char **argv)
{
  enum { RAW, STR, B64, KEYS, LEN, TYPE } mode = RAW;
  struct arena a;
  struct json *root = NULL;
  const struct json *v;
  struct app_err err;
  struct buf in, out;
  const char *file;
  char tmp[65536];
  int i = 2, rc = 0;
  static const char *types[] = {"null", "false", "true", "number", "string", "array", "object"};

  if (i < argc && argv[i][0] == '-' && argv[i][1] == '-') {
    const char *m = argv[i++];
    if (!strcmp(m, "--str"))
      mode = STR;
    else if (!strcmp(m, "--b64"))
      mode = B64;
    else if (!strcmp(m, "--keys"))
      mode = KEYS;
    else if (!strcmp(m, "--len"))
      mode = LEN;
    else if (!strcmp(m, "--type"))
      mode = TYPE;
    else if (strcmp(m, "--raw")) {
      fprintf(stderr, "fakehandler json: unknown mode %s\n", m);
      return 2;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "usage: fakehandler json [--str|--b64|--keys|--len|--type] FILE [KEY|#N]...\n");
    return 2;
  }
  file = argv[i++];
  buf_init(&in, 0);
  buf_init(&out, 0);
  arena_init(&a, 0);
  {
    int fd = strcmp(file, "-") ? open(file, O_RDONLY) : 0;
    ssize_t n;
    if (fd < 0) {
      fprintf(stderr, "fakehandler json: %s: %s\n", file, strerror(errno));
      rc = 2;
      goto out;
    }
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
      if (buf_append(&in, tmp, (size_t)n) != APP_OK)
        abort();
    if (fd)
      close(fd);
  }
  if (json_parse(&a, in.data ? in.data : "", in.len, 256, &root, &err) != APP_OK) {
    fprintf(stderr, "fakehandler json: %s: %s\n", file, err.msg);
    rc = 2;
    goto out;
  }
  v = root;
  for (; i < argc; i++) {
    const char *k = argv[i];
    if (k[0] == '#' && json_is(v, JSON_ARRAY)) {
      long idx = num(k + 1);
      const struct json *c = v->child;
      while (c && idx-- > 0)
        c = c->next;
      v = c;
    } else {
      v = json_get(v, k);
    }
    if (!v) {
      fprintf(stderr, "fakehandler json: %s: no %s\n", file, k);
      rc = 3;
      goto out;
    }
  }
  switch (mode) {
  case RAW:
    if (json_write(&out, v) != APP_OK)
      abort();
    fwrite(out.data, 1, out.len, stdout);
    fputc('\n', stdout);
    break;
  case STR:
  case B64:
    if (v->type != JSON_STRING) {
      fprintf(stderr, "fakehandler json: %s: the value is a %s, not a string\n", file,
              types[v->type]);
      rc = 3;
      goto out;
    }
    if (mode == STR) {
      fwrite(v->str, 1, v->len, stdout);
    } else {
      char *dec = NULL;
      size_t dl = 0;
      if (base64_decode_arena(&a, v->str, v->len, &dec, &dl, &err) != APP_OK) {
        fprintf(stderr, "fakehandler json: %s: %s\n", file, err.msg);
        rc = 3;
        goto out;
      }
      fwrite(dec, 1, dl, stdout);
    }
    break;
  case KEYS: {
    const struct json *c;
    for (c = json_is(v, JSON_OBJECT) ? v->child : NULL; c; c = c->next)
      printf("%s\n", c->key);
    break;
  }
  case LEN: printf("%u\n", (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->len : 0); break;
  case TYPE: printf("%s\n", types[v->type]); break;
  }
out:
  fflush(stdout);
  buf_cleanup(&in);
  buf_cleanup(&out);
  arena_cleanup(&a);
  return rc;
}

int main(int argc, char **argv)
{
  int i;
  if (argc > 1 && !strcmp(argv[1], "json"))
    return json_tool(argc, argv);
  if (getenv("FAKE_OUTPUTS"))
    cfg.outputs = getenv("FAKE_OUTPUTS");
  if (getenv("FAKE_RETURN"))
    cfg.ret = getenv("FAKE_RETURN");
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes = true;
    if (!strcmp(a, "--always-fail"))
      cfg.always_fail = true, takes = false;
    else if (!strcmp(a, "--empty-body"))
      cfg.empty_body = true, takes = false;
    else if (!strcmp(a, "--null-body"))
      cfg.null_body = true, takes = false;
    else if (!strcmp(a, "--exit-at-start"))
      cfg.exit_at_start = true, takes = false;
    else if (!strcmp(a, "--raw"))
      cfg.raw = true, takes = false;
    else if (!v)
      takes = false, a = NULL;
    else if (!strcmp(a, "--dir"))
      cfg.dir = v;
    else if (!strcmp(a, "--port"))
      cfg.port = (int)num(v);
    else if (!strcmp(a, "--fail-first"))
      cfg.fail_first = num(v);
    else if (!strcmp(a, "--status"))
      cfg.status = (int)num(v);
    else if (!strcmp(a, "--content-type"))
      cfg.content_type = v;
    else if (!strcmp(a, "--outputs"))
      cfg.outputs = v;
    else if (!strcmp(a, "--return"))
      cfg.ret = v;
    else if (!strcmp(a, "--sleep-ms"))
      cfg.sleep_ms = num(v);
    else if (!strcmp(a, "--hold-until"))
      cfg.hold_until = num(v);
    else if (!strcmp(a, "--ready-delay-ms"))
      cfg.ready_delay_ms = num(v);
    else if (!strcmp(a, "--exit-after"))
      cfg.exit_after = num(v);
    else if (!strcmp(a, "--exit-code"))
      cfg.exit_code = (int)num(v);
    else if (!strcmp(a, "--term-code"))
      cfg.term_code = (int)num(v);
    else if (!strcmp(a, "--threads"))
      cfg.threads = (int)num(v);
    else
      a = NULL;
    if (!a) {
      fprintf(stderr, "fakehandler: bad option %s\n", argv[i]);
      return 2;
    }
    if (takes)
      i++;
  }
  return serve(argc, argv);
}

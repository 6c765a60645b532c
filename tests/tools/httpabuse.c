/* httpabuse.c - misbehaving HTTP clients for the server hardening tests
 * (tests/e2e/server_hardening.sh). Loopback only; every mode is bounded in
 * connections and time.
 *
 *   httpabuse trickle PORT N SECONDS [valid-first]
 *       keep N connections open that send a request's header one byte per
 *       second; a connection the server closes is opened again at once.
 *       With valid-first, each connection first sends a complete GET / (so
 *       it passes any screening of first requests), then trickles.
 *       Prints: opened=, closed_by_server=, open_at_end=
 *   httpabuse raw PORT FILE [TIMEOUT_MS]
 *       send FILE's bytes as they are, print what comes back until the
 *       server closes (or TIMEOUT_MS, default 3000)
 *   httpabuse hold PORT N PATH DECLARED SENT SECONDS
 *       N uploads: POST PATH with Content-Length DECLARED, SENT bytes of
 *       body, then held open for SECONDS (never finished). Prints how each
 *       was answered meanwhile: answered_<status>=count, unanswered=count
 *   httpabuse keepslow PORT SECONDS
 *       one kept-alive connection: GET / answered, then the next request
 *       line one byte per second; prints closed_after_ms=N when the server
 *       closes it, or "open" after SECONDS
 *   httpabuse stall PORT PATH DECLARED SENT
 *       one upload that sends SENT of DECLARED bytes, then waits until the
 *       server closes the connection (at most 60 s); prints "closed" or
 *       "timeout" */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 2000

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port)
{
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((unsigned short)port);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Has the server closed fd (EOF, reset)? Reads and drops what is there. */
static int closed_by_peer(int fd)
{
  char buf[4096];
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0)
    return 0;
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0)
      return 1;
    if (r < 0)
      return !(errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

static int trickle(int port, int n, int seconds, int valid_first)
{
  static const char first[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  static const char head[] = "POST /Changes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  static int fds[MAX_CONNS];
  static size_t sent[MAX_CONNS];
  long long end = now_ms() + seconds * 1000LL;
  long opened = 0, closed = 0, refused = 0;
  int i, open_now = 0;

  if (n > MAX_CONNS)
    n = MAX_CONNS;
  for (i = 0; i < n; i++)
    fds[i] = -1;
  while (now_ms() < end) {
    long long tick = now_ms() + 1000;
    for (i = 0; i < n; i++) {
      if (fds[i] >= 0 && closed_by_peer(fds[i])) {
        close(fds[i]);
        fds[i] = -1;
        closed++;
      }
      if (fds[i] < 0) {
        fds[i] = dial(port);
        sent[i] = 0;
        if (fds[i] < 0) {
          refused++;
          continue;
        }
        opened++;
        if (valid_first)
          (void)send_all(fds[i], first, sizeof first - 1);
      }
      if (sent[i] < sizeof head - 1 &&
          send(fds[i], head + sent[i], 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
        sent[i]++;
    }
    while (now_ms() < tick && now_ms() < end) {
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  for (i = 0; i < n; i++) {
    if (fds[i] >= 0) {
      if (!closed_by_peer(fds[i]))
        open_now++;
      close(fds[i]);
    }
  }
  printf("opened=%ld closed_by_server=%ld refused=%ld open_at_end=%d\n", opened, closed, refused,
         open_now);
  return 0;
}

static int raw(int port, const char *file, int timeout_ms)
{
  char buf[65536];
  size_t n;
  FILE *f = fopen(file, "rb");
  int fd;
  long long end = now_ms() + timeout_ms;

  if (!f)
    return 2;
  n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  fd = dial(port);
  if (fd < 0 || send_all(fd, buf, n) != 0)
    return 1;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int left = (int)(end - now_ms());
    ssize_t r;
    if (left <= 0 || poll(&p, 1, left) <= 0)
      break;
    r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0)
      break;
    fwrite(buf, 1, (size_t)r, stdout);
  }
  close(fd);
  return 0;
}

static int upload(int port, const char *path, long long declared, long long sent)
{
  char head[512], chunk[65536];
  int fd = dial(port);
  if (fd < 0)
    return -1;
  snprintf(head, sizeof head,
           "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: %lld\r\n\r\n",
           path, declared);
  memset(chunk, ' ', sizeof chunk);
  if (send_all(fd, head, strlen(head)) != 0)
    return fd;
  while (sent > 0) {
    size_t k = sent > (long long)sizeof chunk ? sizeof chunk : (size_t)sent;
    if (send_all(fd, chunk, k) != 0)
      break;
    sent -= (long long)k;
  }
  return fd;
}

static int hold(int port, int n, const char *path, long long declared, long long sent, int seconds)
{
  static int fds[MAX_CONNS];
  static int status[MAX_CONNS];
  long long end = now_ms() + seconds * 1000LL;
  int i, unanswered = 0;
  int counts[600] = {0};

  if (n > MAX_CONNS)
    n = MAX_CONNS;
  for (i = 0; i < n; i++) {
    fds[i] = upload(port, path, declared, sent);
    status[i] = 0;
  }
  while (now_ms() < end) {
    for (i = 0; i < n; i++) {
      char buf[512];
      ssize_t r;
      if (fds[i] < 0 || status[i])
        continue;
      r = recv(fds[i], buf, sizeof buf - 1, MSG_DONTWAIT);
      if (r > 12 && !memcmp(buf, "HTTP/1.1 ", 9))
        status[i] = atoi(buf + 9);
      else if (r == 0)
        status[i] = -1;
    }
    {
      struct timespec ts = {0, 100 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  for (i = 0; i < n; i++) {
    if (status[i] > 0 && status[i] < 600)
      counts[status[i]]++;
    else if (status[i] < 0 || fds[i] < 0)
      counts[0]++;
    else
      unanswered++;
    if (fds[i] >= 0)
      close(fds[i]);
  }
  for (i = 1; i < 600; i++)
    if (counts[i])
      printf("answered_%d=%d\n", i, counts[i]);
  printf("closed=%d\nunanswered=%d\n", counts[0], unanswered);
  return 0;
}

static int stall(int port, const char *path, long long declared, long long sent)
{
  int fd = upload(port, path, declared, sent);
  long long end = now_ms() + 60000;
  if (fd < 0)
    return 1;
  while (now_ms() < end) {
    if (closed_by_peer(fd)) {
      printf("closed\n");
      close(fd);
      return 0;
    }
    {
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  printf("timeout\n");
  close(fd);
  return 0;
}

static int keepslow(int port, int seconds)
{
  static const char first[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  static const char next[] =
      "GET /api/data/v9.2/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  char buf[4096];
  int fd = dial(port);
  long long start, end;
  size_t i = 0;
  struct pollfd p;

  if (fd < 0 || send_all(fd, first, sizeof first - 1) != 0)
    return 1;
  p.fd = fd;
  p.events = POLLIN;
  if (poll(&p, 1, 3000) <= 0 || recv(fd, buf, sizeof buf, 0) <= 0) {
    printf("no answer to the first request\n");
    return 1;
  }
  start = now_ms();
  end = start + seconds * 1000LL;
  while (now_ms() < end) {
    if (closed_by_peer(fd)) {
      printf("closed_after_ms=%lld\n", now_ms() - start);
      close(fd);
      return 0;
    }
    if (i < sizeof next - 1 && now_ms() - start >= (long long)i * 1000)
      (void)send(fd, next + i++, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    {
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  printf("open\n");
  close(fd);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc == 4 && !strcmp(argv[1], "keepslow"))
    return keepslow(atoi(argv[2]), atoi(argv[3]));
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "trickle"))
    return trickle(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                   argc == 6 && !strcmp(argv[5], "valid-first"));
  if ((argc == 4 || argc == 5) && !strcmp(argv[1], "raw"))
    return raw(atoi(argv[2]), argv[3], argc == 5 ? atoi(argv[4]) : 3000);
  if (argc == 8 && !strcmp(argv[1], "hold"))
    return hold(atoi(argv[2]), atoi(argv[3]), argv[4], atoll(argv[5]), atoll(argv[6]),
                atoi(argv[7]));
  if (argc == 6 && !strcmp(argv[1], "stall"))
    return stall(atoi(argv[2]), argv[3], atoll(argv[4]), atoll(argv[5]));
  fprintf(stderr, "usage: see the comment at the top of tests/tools/httpabuse.c\n");
  return 2;
}

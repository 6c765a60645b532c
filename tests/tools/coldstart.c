/* coldstart.c - how long the handler takes from exec to its first answer.
 *
 *   coldstart HANDLER [RUNS]
 *
 * Each run picks a free port, forks and execs HANDLER with
 * FUNCTIONS_CUSTOMHANDLER_PORT set (the rest of the environment is
 * inherited, e.g. FUNCTIONS_APP_ROOT_PATH), then connects and sends GET /
 * every 0.2 ms until an HTTP status line comes back, as the host's
 * readiness probe does every 25 ms. It records that time and the
 * handler's resident set size at that moment, stops it with SIGTERM and
 * checks it exits 200 (the status SIGTERM gives, handler/main.c). Prints
 * every run and the medians (ms, KiB). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "benchutil.h"

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int free_port(void)
{
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* One readiness probe: true when an HTTP status line came back. */
static int probe(int port)
{
  struct sockaddr_in sa;
  static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  char buf[64];
  struct pollfd p;
  int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
  ssize_t n;

  if (fd < 0)
    return 0;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((unsigned short)port);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, 5000) == 1) {
      n = recv(fd, buf, sizeof buf - 1, 0);
      ok = n >= 12 && !memcmp(buf, "HTTP/1.1 ", 9);
    }
  }
  close(fd);
  return ok;
}

static long rss_kib(pid_t pid)
{
  char path[64], line[256];
  long kib = -1;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6))
      kib = strtol(line + 6, NULL, 10);
  fclose(f);
  return kib;
}

int main(int argc, char **argv)
{
  int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20, i, bad_exit = 0;
  double *ms, *rss;

  if (argc < 2 || runs < 1 || runs > 1000) {
    fprintf(stderr, "usage: coldstart HANDLER [RUNS]\n");
    return 2;
  }
  ms = calloc((size_t)runs, sizeof *ms);
  rss = calloc((size_t)runs, sizeof *rss);
  if (!ms || !rss)
    return 1;
  for (i = 0; i < runs; i++) {
    int port = free_port(), status = 0;
    char portstr[16];
    double t0, t1;
    pid_t pid;

    snprintf(portstr, sizeof portstr, "%d", port);
    t0 = now_ms();
    pid = fork();
    if (pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      setenv("FUNCTIONS_CUSTOMHANDLER_PORT", portstr, 1);
      execl(argv[1], argv[1], (char *)NULL);
      _exit(127);
    }
    if (pid < 0)
      return 1;
    for (;;) {
      struct timespec ts = {0, 200 * 1000};
      if (probe(port))
        break;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        fprintf(stderr, "the handler exited before answering (status %d)\n", status);
        return 1;
      }
      if (now_ms() - t0 > 30000) {
        fprintf(stderr, "no answer within 30 s\n");
        kill(pid, SIGKILL);
        return 1;
      }
      nanosleep(&ts, NULL);
    }
    t1 = now_ms();
    ms[i] = t1 - t0;
    rss[i] = (double)rss_kib(pid);
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    /* 200: the status a SIGTERM gives (handler/main.c: the host restarts it) */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 200)
      bad_exit++;
    printf("run %2d: first answer after %.2f ms, RSS %.0f KiB\n", i + 1, ms[i], rss[i]);
  }
  qsort(ms, (size_t)runs, sizeof *ms, bench_cmp_double);
  qsort(rss, (size_t)runs, sizeof *rss, bench_cmp_double);
  printf("median of %d: exec to first GET / answer %.2f ms (min %.2f, max %.2f); RSS at "
         "readiness %.0f KiB\n",
         runs, runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2, ms[0], ms[runs - 1],
         runs % 2 ? rss[runs / 2] : (rss[runs / 2 - 1] + rss[runs / 2]) / 2);
  free(ms);
  free(rss);
  if (bad_exit) {
    fprintf(stderr, "%d run(s) did not exit 200 on SIGTERM\n", bad_exit);
    return 1;
  }
  return 0;
}

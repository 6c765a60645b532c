/* freeport.c - small socket helpers for the test scripts.
 *
 *   freeport                 print a free TCP port on 127.0.0.1
 *   freeport --wait PORT S   wait up to S seconds until 127.0.0.1:PORT accepts
 *                            (exit 0), else exit 1 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int try_connect(int port)
{
  struct sockaddr_in sa = {0};
  int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
  if (fd < 0)
    return 0;
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((unsigned short)port);
  ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

int main(int argc, char **argv)
{
  struct sockaddr_in sa = {0};
  socklen_t len = sizeof sa;
  int fd;

  if (argc == 4 && !strcmp(argv[1], "--wait")) {
    int port = atoi(argv[2]);
    double secs = atof(argv[3]);
    struct timespec ts = {0, 20 * 1000 * 1000};
    int i, n = (int)(secs * 50);
    for (i = 0; i <= n; i++) {
      if (try_connect(port))
        return 0;
      nanosleep(&ts, NULL);
    }
    return 1;
  }
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 1;
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
    close(fd);
    return 1;
  }
  printf("%d\n", ntohs(sa.sin_port));
  close(fd);
  return 0;
}

/* test_redis_lua.c - the apply script stays within Redis 6.0.
 *
 * Azure Cache for Redis still offers Redis 6.0, and the tests here run
 * against Debian's redis-server 7.0, so a command or option added in 6.2
 * or 7.0 would pass every other test and fail in production. This reads
 * every redis.call of the script and checks the command against the
 * version that introduced it (and the options that came later). A
 * command missing from the table fails the test: add it with its version
 * from the Redis documentation ("Available since"). */
#include "redis/redis_lua.h"
#include "check.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

struct since {
  const char *cmd;
  int major, minor;
};

/* commands a script could reasonably use, with "Available since" */
static const struct since known[] = {
    {"EXISTS", 1, 0},  {"EXPIRE", 1, 0},     {"PERSIST", 2, 2},    {"TTL", 1, 0},
    {"PTTL", 2, 6},    {"DEL", 1, 0},        {"UNLINK", 4, 0},     {"HSET", 2, 0},
    {"HGET", 2, 0},    {"HMGET", 2, 0},      {"HDEL", 2, 0},       {"HKEYS", 2, 0},
    {"HLEN", 2, 0},    {"HEXISTS", 2, 0},    {"HGETALL", 2, 0},    {"HSCAN", 2, 8},
    {"HINCRBY", 2, 0}, {"HSETNX", 2, 0},     {"XADD", 5, 0},       {"GET", 1, 0},
    {"SET", 1, 0},     {"HRANDFIELD", 6, 2}, {"GETEX", 6, 2},      {"GETDEL", 6, 2},
    {"COPY", 6, 2},    {"EXPIRETIME", 7, 0}, {"SINTERCARD", 7, 0}, {"LMPOP", 7, 0},
    {"ZADD", 1, 2},    {"ZSCORE", 1, 2},
};

/* options that a later version added to a command that 6.0 has */
static const struct {
  const char *cmd, *opt;
} later_opts[] = {
    {"EXPIRE", "NX"},  {"EXPIRE", "XX"},       {"EXPIRE", "GT"},  {"EXPIRE", "LT"},
    {"XADD", "MINID"}, {"XADD", "NOMKSTREAM"}, {"XADD", "LIMIT"}, {"SET", "GET"},
    {"SET", "EXAT"},   {"SET", "PXAT"},        {"ZADD", "GT"},    {"ZADD", "LT"},
};

static const struct since *lookup(const char *cmd, size_t n)
{
  size_t i;
  for (i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strlen(known[i].cmd) == n && memcmp(known[i].cmd, cmd, n) == 0)
      return &known[i];
  return NULL;
}

/* the call's text up to its closing parenthesis (scripts have no nested
 * calls with parentheses inside string arguments here) */
static size_t call_len(const char *p)
{
  int depth = 0;
  const char *q = p;
  for (; *q; q++) {
    if (*q == '(')
      depth++;
    else if (*q == ')' && --depth == 0)
      return (size_t)(q - p) + 1;
  }
  return (size_t)(q - p);
}

/* the problems in script, each printed unless quiet; *calls counts the
 * redis.call (and calls of its helper chunked) found */
static int check_script(const char *script, const char *name, bool quiet, int *calls)
{
  const char *p = script;
  int problems = 0;
  *calls = 0;
  for (;;) {
    const char *rc = strstr(p, "redis.call("), *ch = strstr(p, "chunked(");
    const char *cmd;
    if (!rc && !ch)
      break;
    p = !ch || (rc && rc < ch) ? rc : ch;
    cmd = strchr(p, '(') + 1;
    /* the helper chunked(cmd, list, step) runs redis.call(cmd, ...): its
     * callers name the command */
    if (strncmp(cmd, "cmd,", 4) == 0) {
      p = cmd;
      continue;
    }
    size_t n = 0, len = call_len(p), i;
    const struct since *v;
    char text[256];

    ++*calls;
    if (*cmd == '\'' || *cmd == '"') {
      cmd++;
      while (isalpha((unsigned char)cmd[n]))
        n++;
    }
    snprintf(text, sizeof text, "%.*s", (int)(len < 200 ? len : 200), p);
    p += len;
    if (n == 0) {
      problems++;
      if (!quiet)
        fprintf(stderr, "%s: redis.call without a literal command name: %s\n", name, text);
      continue;
    }
    v = lookup(cmd, n);
    if (!v) {
      problems++;
      if (!quiet)
        fprintf(stderr,
                "%s: command %.*s is not in the table of this test: add it with its "
                "'Available since' version\n",
                name, (int)n, cmd);
    } else if (v->major > 6 || (v->major == 6 && v->minor > 0)) {
      problems++;
      if (!quiet)
        fprintf(stderr, "%s: %s needs Redis %d.%d, the oldest supported server is 6.0: %s\n", name,
                v->cmd, v->major, v->minor, text);
    }
    for (i = 0; i < sizeof later_opts / sizeof later_opts[0]; i++) {
      char quoted[32];
      if (strlen(later_opts[i].cmd) != n || memcmp(later_opts[i].cmd, cmd, n) != 0)
        continue;
      snprintf(quoted, sizeof quoted, "'%s'", later_opts[i].opt);
      if (strstr(text, quoted)) {
        problems++;
        if (!quiet)
          fprintf(stderr, "%s: %s %s is newer than Redis 6.0: %s\n", name, later_opts[i].cmd,
                  later_opts[i].opt, text);
      }
    }
  }
  return problems;
}

int main(void)
{
  int calls;

  TEST_CASE("the apply script uses Redis 6.0 commands only");
  CHECK_INTEQ(check_script(redis_lua_apply, "redis_lua_apply", false, &calls), 0);
  CHECK_MSG(calls >= 10, "only %d redis.call found: is the scan broken?", calls);

  TEST_CASE("the checker catches what it is for");
  CHECK_INTEQ(check_script("redis.call('HRANDFIELD', key, 4)", "bad", true, &calls), 1);
  CHECK_INTEQ(check_script("redis.call('EXPIRE', key, ttl, 'NX')", "bad", true, &calls), 1);
  CHECK_INTEQ(check_script("redis.call('OBJECT', 'ENCODING', key)", "bad", true, &calls), 1);
  CHECK_INTEQ(check_script("redis.call(name, key)", "bad", true, &calls), 1);
  CHECK_INTEQ(check_script("redis.call('HSCAN', key, '0', 'COUNT', 16) redis.call('TTL', key)",
                           "good", true, &calls),
              0);
  CHECK_INTEQ(calls, 2);
  CHECK_INTEQ(check_script("local function chunked(cmd, list) redis.call(cmd, key) end "
                           "chunked('HDEL', del) chunked('HSET', set)",
                           "good", true, &calls),
              0);
  CHECK_INTEQ(calls, 2);
  return check_report("test_redis_lua");
}

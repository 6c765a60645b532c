/* test_redis_lua.c - the apply script stays within Redis 6.0.
 *
 * Azure Cache for Redis still offers Redis 6.0, and the tests here run
 * against Debian's redis-server 7.0, so a command or option added in 6.2
 * or 7.0 would pass every other test and fail in production. This reads
 * every redis.call of the script and checks the command against the
 * version that introduced it (and the options that came later). A
 * command missing from the table fails the test: add it with its version
 * from the Redis documentation ("Available since").
 *
 * The same holds for every command the C code sends (issue 11: ZADD GT,
 * 6.2, was sent for every truncated message): every string literal of the
 * modules that build Redis commands (handler/redis/, handler/read/) is
 * split into upper-case words; a word that is a command of the table must
 * be 6.0's, and a word that only later versions know (a 6.2/7.x command or
 * option, newer_words below) fails wherever it appears. */
#include "redis/redis_lua.h"
#include "check.h"

#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* commands the C code sends (and a few it could), "Available since" */
static const struct since c_known[] = {
    {"EVALSHA", 2, 6},    {"SCRIPT", 2, 6},      {"AUTH", 1, 0},       {"SELECT", 1, 0},
    {"CLIENT", 2, 4},     {"HELLO", 6, 0},       {"PING", 1, 0},       {"ZADD", 1, 2},
    {"XADD", 5, 0},       {"HGETALL", 2, 0},     {"HMGET", 2, 0},      {"HGET", 2, 0},
    {"HSET", 2, 0},       {"SADD", 1, 0},        {"SREM", 1, 0},       {"SET", 1, 0},
    {"DEL", 1, 0},        {"EXISTS", 1, 0},      {"EXPIRE", 1, 0},     {"ZREM", 1, 2},
    {"ZRANGE", 1, 2},     {"SMEMBERS", 1, 0},    {"MULTI", 1, 2},      {"EXEC", 1, 2},
    {"INFO", 1, 0},       {"ROLE", 2, 8},        {"READONLY", 3, 0},   {"ASKING", 3, 0},
    {"CLUSTER", 3, 0},    {"HSCAN", 2, 8},       {"GETEX", 6, 2},      {"GETDEL", 6, 2},
    {"HRANDFIELD", 6, 2}, {"COPY", 6, 2},        {"LMOVE", 6, 2},      {"RESET", 6, 2},
    {"FAILOVER", 6, 2},   {"ZRANGESTORE", 6, 2}, {"EXPIRETIME", 7, 0}, {"SINTERCARD", 7, 0},
    {"FCALL", 7, 0},      {"FUNCTION", 7, 0},
};

/* words only later servers know: options added after 6.0 (ZADD GT/LT,
 * SET EXAT/PXAT, XADD MINID/NOMKSTREAM, CLIENT NO-EVICT, ...) and commands */
static const char *const newer_words[] = {
    "GT",       "LT",         "EXAT",       "PXAT",        "MINID",       "NOMKSTREAM", "NO-EVICT",
    "NO-TOUCH", "GETEX",      "GETDEL",     "HRANDFIELD",  "ZRANDMEMBER", "LMOVE",      "BLMOVE",
    "ZMSCORE",  "SMISMEMBER", "XAUTOCLAIM", "ZRANGESTORE", "EVAL_RO",     "EVALSHA_RO", "FCALL_RO",
    "LMPOP",    "ZMPOP",      "BZMPOP",     "WAITAOF",
};

/* The problems in the string literals of one C source, each printed unless
 * quiet; *words counts the command words found. */
static int check_c_text(const char *text, const char *name, bool quiet, int *words)
{
  const char *p = text;
  int problems = 0, line = 1;
  while (*p) {
    if (*p == '\n')
      line++;
    if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      for (; *p && p != e; p++)
        if (*p == '\n')
          line++;
      p = *p ? p + 2 : p;
      continue;
    }
    if (*p == '\'') { /* a character constant: skip it */
      p += p[1] == '\\' ? 4 : 3;
      continue;
    }
    if (*p != '"') {
      p++;
      continue;
    }
    for (p++; *p && *p != '"'; p++) {
      size_t n = 0, i;
      if (*p == '\\') {
        p++;
        continue;
      }
      if (!isupper((unsigned char)*p) || (p[-1] != '"' && p[-1] != ' '))
        continue;
      while (isupper((unsigned char)p[n]) || p[n] == '_' || p[n] == '-')
        n++;
      if (p[n] != '"' && p[n] != ' ')
        continue;
      for (i = 0; i < sizeof newer_words / sizeof newer_words[0]; i++)
        if (strlen(newer_words[i]) == n && !memcmp(newer_words[i], p, n)) {
          problems++;
          if (!quiet)
            fprintf(stderr, "%s:%d: \"%.*s\" needs a Redis newer than 6.0\n", name, line, (int)n,
                    p);
        }
      for (i = 0; i < sizeof c_known / sizeof c_known[0]; i++)
        if (strlen(c_known[i].cmd) == n && !memcmp(c_known[i].cmd, p, n)) {
          ++*words;
          if (c_known[i].major > 6 || (c_known[i].major == 6 && c_known[i].minor > 0)) {
            problems++;
            if (!quiet)
              fprintf(stderr, "%s:%d: %s needs Redis %d.%d\n", name, line, c_known[i].cmd,
                      c_known[i].major, c_known[i].minor);
          }
        }
      p += n - 1;
    }
    if (*p)
      p++;
  }
  return problems;
}

/* check_c_text over every .c file of dir; *files counts them */
static int check_c_dir(const char *dir, int *words, int *files)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int problems = 0;
  if (!d) {
    fprintf(stderr, "cannot open %s (run from the repository root)\n", dir);
    return 1;
  }
  while ((e = readdir(d)) != NULL) {
    char path[512];
    FILE *f;
    char *text;
    long n;
    size_t len = strlen(e->d_name);
    if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    f = fopen(path, "rb");
    if (!f)
      continue;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    if (text && fread(text, 1, (size_t)n, f) == (size_t)n) {
      problems += check_c_text(text, path, false, words);
      ++*files;
    }
    free(text);
    fclose(f);
  }
  closedir(d);
  return problems;
}

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

  TEST_CASE("every command the C code sends is Redis 6.0's");
  {
    int words = 0, files = 0;
    CHECK_INTEQ(check_c_dir("handler/redis", &words, &files) +
                    check_c_dir("handler/read", &words, &files),
                0);
    CHECK_MSG(files >= 5 && words >= 10, "%d files, %d command words: is the scan broken?", files,
              words);
    CHECK_INTEQ(check_c_text("redis_cmd_arg(b, \"ZADD\", 4); redis_cmd_arg(b, \"GT\", 2);", "bad",
                             true, &words),
                1);
    CHECK_INTEQ(check_c_text("const char *argv[] = {\"GETDEL\", key};", "bad", true, &words), 2);
    CHECK_INTEQ(check_c_text("/* \"GT\" in a comment */ \"ZADD\" \"NX\"", "good", true, &words), 0);
  }

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

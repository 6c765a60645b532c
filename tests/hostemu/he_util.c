/* he_util.c - clocks, identifiers, .NET date text and file helpers. */
#include "he_util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t he_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t he_wall_ticks(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 10000000LL + ts.tv_nsec / 100;
}

/* splitmix64: tiny, fast, and good enough for unique identifiers. The
 * emulator is single-threaded, so plain static state is fine. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

void he_rng_seed(void)
{
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = (uint64_t)he_wall_ticks() ^ ((uint64_t)getpid() << 32);
  rng_state ^= seed;
}

uint64_t he_rng_u64(void)
{
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void guid_bytes(unsigned char b[16])
{
  uint64_t hi = he_rng_u64(), lo = he_rng_u64();
  int i;
  for (i = 0; i < 8; i++) {
    b[i] = (unsigned char)(hi >> (56 - 8 * i));
    b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void he_guid(char out[37])
{
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  int i, o = 0;
  guid_bytes(b);
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
}

void he_guid_n(char out[33])
{
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  int i;
  guid_bytes(b);
  for (i = 0; i < 16; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[32] = '\0';
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm),
 * valid for the whole DateTime range; avoids gmtime's static state and
 * its time_t range. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
  int64_t era, yoe, doy, mp;
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  yoe = z - era * 146097;
  yoe = (yoe - yoe / 1460 + yoe / 36524 - yoe / 146096) / 365;
  doy = z - era * 146097 - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

size_t he_date_format(int64_t unix_ticks, enum he_date_fmt fmt, char out[48])
{
  int64_t days, rem, frac;
  int y, mo, d, h, mi, s, n;
  char fr[16] = "";

  days = unix_ticks / 864000000000LL;
  rem = unix_ticks % 864000000000LL;
  if (rem < 0) {
    rem += 864000000000LL;
    days--;
  }
  civil_from_days(days, &y, &mo, &d);
  frac = rem % 10000000LL;
  rem /= 10000000LL;
  h = (int)(rem / 3600);
  mi = (int)(rem / 60 % 60);
  s = (int)(rem % 60);

  if (fmt == HE_DATE_FULL || fmt == HE_DATE_FULL_Z || fmt == HE_DATE_FULL_OFFSET) {
    /* "FFFFFFF": seven digits with trailing zeros removed, and no dot at
     * all when the fraction is zero */
    if (frac) {
      int len;
      snprintf(fr, sizeof fr, ".%07lld", (long long)frac);
      len = (int)strlen(fr);
      while (len > 1 && fr[len - 1] == '0')
        fr[--len] = '\0';
    }
  }
  switch (fmt) {
  case HE_DATE_SECONDS:
    n = snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h, mi, s);
    break;
  case HE_DATE_SECONDS_OFFSET:
    n = snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", y, mo, d, h, mi, s);
    break;
  case HE_DATE_FULL:
    n = snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d%s", y, mo, d, h, mi, s, fr);
    break;
  case HE_DATE_FULL_Z:
    n = snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, mo, d, h, mi, s, fr);
    break;
  case HE_DATE_FULL_OFFSET:
    n = snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d%s+00:00", y, mo, d, h, mi, s, fr);
    break;
  case HE_DATE_INVARIANT:
  default: n = snprintf(out, 48, "%02d/%02d/%04d %02d:%02d:%02d", mo, d, y, h, mi, s); break;
  }
  return n < 0 ? 0 : (size_t)n;
}

enum app_result he_file_read(const char *path, size_t max, char **out, size_t *out_len,
                             struct app_err *err)
{
  enum app_result r = APP_OK;
  struct buf b;
  int fd;
  char tmp[65536];

  buf_init(&b, max);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return app_err_set(err, APP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
  for (;;) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = app_err_set(err, APP_ERR_IO, "cannot read %s: %s", path, strerror(errno));
      goto out;
    }
    if (n == 0)
      break;
    if (buf_append(&b, tmp, (size_t)n) != APP_OK) {
      r = app_err_set(err, APP_ERR_LIMIT, "%s is larger than %zu bytes", path, max);
      goto out;
    }
  }
  /* an empty file still yields a NUL-terminated empty string */
  if (buf_reserve(&b, 1) != APP_OK) {
    r = app_err_set(err, APP_ERR_LIMIT, "%s is larger than %zu bytes", path, max);
    goto out;
  }
  b.data[b.len] = '\0';
  *out_len = b.len;
  *out = buf_steal(&b, NULL);
out:
  close(fd);
  buf_cleanup(&b);
  return r;
}

enum app_result he_file_write(const char *path, const void *data, size_t len, struct app_err *err)
{
  const char *p = data;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return app_err_set(err, APP_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      close(fd);
      return app_err_set(err, APP_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    p += n;
    len -= (size_t)n;
  }
  if (close(fd) != 0)
    return app_err_set(err, APP_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  return APP_OK;
}

enum app_result he_mkdirs(const char *path, struct app_err *err)
{
  char *p = xstrdup(path), *s;
  enum app_result r = APP_OK;
  for (s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      r = app_err_set(err, APP_ERR_IO, "cannot create directory %s: %s", p, strerror(errno));
      goto out;
    }
    *s = '/';
  }
  if (mkdir(p, 0755) != 0 && errno != EEXIST)
    r = app_err_set(err, APP_ERR_IO, "cannot create directory %s: %s", p, strerror(errno));
out:
  free(p);
  return r;
}

char *he_path_join(const char *dir, const char *name)
{
  size_t dl = strlen(dir), nl = strlen(name);
  char *p = xmalloc(dl + nl + 2);
  memcpy(p, dir, dl);
  if (dl == 0 || dir[dl - 1] != '/')
    p[dl++] = '/';
  memcpy(p + dl, name, nl + 1);
  return p;
}

bool he_streq_ci(const char *a, const char *b)
{
  return strcasecmp(a, b) == 0;
}

bool he_has_suffix_ci(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

bool he_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
  char *end = NULL;
  long long v;
  if (!s || !*s || isspace((unsigned char)*s))
    return false;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || *end || v < min || v > max)
    return false;
  *out = v;
  return true;
}

bool he_parse_timespan_ms(const char *s, int64_t *out_ms)
{
  int64_t days = 0, h = 0, m = 0, sec = 0, frac_ms = 0;
  const char *p = s;
  bool neg = false;
  char *end;

  if (!s || !*s)
    return false;
  if (*p == '-') {
    neg = true;
    p++;
  }
  /* "-1" (an integer) is how host.json says "no timeout" */
  if (!strchr(p, ':')) {
    if (!he_parse_i64(p, 0, 10675199, &days))
      return false;
    *out_ms = neg ? -1 : days * 86400000LL;
    return true;
  }
  {
    const char *dot = strchr(p, '.'), *colon = strchr(p, ':');
    if (dot && dot < colon) { /* "d.hh:mm:ss" */
      days = strtoll(p, &end, 10);
      if (end != dot)
        return false;
      p = dot + 1;
    }
  }
  h = strtoll(p, &end, 10);
  if (*end != ':' || h < 0 || h > 23)
    return false;
  p = end + 1;
  m = strtoll(p, &end, 10);
  if (*end != ':' || m < 0 || m > 59)
    return false;
  p = end + 1;
  sec = strtoll(p, &end, 10);
  if (sec < 0 || sec > 59)
    return false;
  if (*end == '.') {
    int digits = 0;
    int64_t scale = 100;
    for (p = end + 1; isdigit((unsigned char)*p); p++, digits++) {
      if (digits < 3) {
        frac_ms += (*p - '0') * scale;
        scale /= 10;
      }
    }
    if (digits == 0 || digits > 7 || *p)
      return false;
  } else if (*end) {
    return false;
  }
  *out_ms = ((days * 24 + h) * 60 + m) * 60000LL + sec * 1000 + frac_ms;
  if (neg)
    *out_ms = -1;
  return true;
}

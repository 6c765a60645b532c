/* replcmp.c - does the Redis replica equal the Dataverse emulator's state,
 * record for record and column for column?
 *
 *   replcmp REDIS_PORT PREFIX TABLE KEY RECORDS.json [DELETED_IDS_FILE]
 *
 * RECORDS.json is dvemu's GET /_records?table=TABLE (every live record).
 * Each record is read the way the read API reads it (redis_read_record)
 * and must be live with exactly the record's properties: the same JSON
 * values (strings decoded, number lexemes as written), and the
 * FormattedValue / lookuplogicalname annotations. Every id in
 * DELETED_IDS_FILE (one per line) must be deleted or absent.
 * Prints "records=N equal=N different=N deleted_ok=N" and the first ten
 * differences; exits 0 only when everything is equal. */
#include "common/arena.h"
#include "common/json.h"
#include "map/sink.h"
#include "redis/redis_conn.h"
#include "redis/redis_mux.h"
#include "redis/redis_pool.h"
#include "redis/redis_read.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int shown;

__attribute__((format(printf, 2, 3))) static void diff(const char *id, const char *fmt, ...)
{
  va_list ap;
  if (shown++ < 10) {
    printf("DIFF %s: ", id);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
  }
}

static bool json_equal(const char *a, size_t alen, const char *b, size_t blen)
{
  struct arena ar;
  struct json *x, *y;
  struct app_err e;
  bool eq = false;
  arena_init(&ar, 1u << 20);
  if (json_parse(&ar, a, alen, 8, &x, &e) == APP_OK &&
      json_parse(&ar, b, blen, 8, &y, &e) == APP_OK && x->type == y->type) {
    if (x->type == JSON_STRING || x->type == JSON_NUMBER)
      eq = x->len == y->len && !memcmp(x->str, y->str, x->len);
    else if (x->type == JSON_NULL || x->type == JSON_TRUE || x->type == JSON_FALSE)
      eq = true;
    else
      eq = alen == blen && !memcmp(a, b, alen);
  }
  arena_cleanup(&ar);
  return eq;
}

static const struct redis_read_prop *prop(const struct redis_record *r, const char *name, size_t n)
{
  for (size_t i = 0; i < r->nprops; i++)
    if (strlen(r->props[i].name) == n && !memcmp(r->props[i].name, name, n))
      return &r->props[i];
  return NULL;
}

static const char *ann_of(const struct redis_read_prop *p, const char *name)
{
  for (size_t i = 0; p && i < p->nann; i++)
    if (!strcmp(p->ann[i].name, name))
      return p->ann[i].json;
  return NULL;
}

int main(int argc, char **argv)
{
  struct redis_conninfo ci;
  struct redis_pool *pool;
  struct redis_mux *mux;
  struct app_err e;
  struct arena a, ra;
  struct json *root;
  char conn[64];
  FILE *f;
  char *text;
  long len;
  size_t nrec = 0, equal = 0, different = 0, delok = 0;

  if (argc < 6) {
    fprintf(stderr, "usage: replcmp REDIS_PORT PREFIX TABLE KEY RECORDS.json [DELETED_IDS]\n");
    return 2;
  }
  const char *prefix = argv[2], *table = argv[3], *key = argv[4];
  snprintf(conn, sizeof conn, "127.0.0.1:%s", argv[1]);
  if (redis_conninfo_parse(conn, &ci, &e) != APP_OK ||
      redis_pool_create(&ci, 4, NULL, 0, 0, &pool, &e) != APP_OK ||
      redis_mux_create(pool, 2, 64, 1024, &mux, &e) != APP_OK) {
    fprintf(stderr, "replcmp: %s\n", e.msg);
    return 2;
  }
  f = fopen(argv[5], "rb");
  if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fprintf(stderr, "replcmp: cannot read %s\n", argv[5]);
    return 2;
  }
  text = malloc((size_t)len + 1);
  if (!text || fread(text, 1, (size_t)len, f) != (size_t)len)
    return 2;
  fclose(f);
  arena_init(&a, 0);
  if (json_parse(&a, text, (size_t)len, 16, &root, &e) != APP_OK || root->type != JSON_ARRAY) {
    fprintf(stderr, "replcmp: %s: %s\n", argv[5], e.msg);
    return 2;
  }
  arena_init(&ra, 64u << 20);
  for (const struct json *rec = root->child; rec; rec = rec->next) {
    const char *id = json_get_str(rec, key);
    struct redis_record rr;
    bool same = true;
    size_t ncols = 0;
    nrec++;
    arena_reset(&ra);
    if (!id ||
        redis_read_record(mux, prefix, &ra, table, id, sink_now_ms() + 5000, &rr, &e) != APP_OK) {
      diff(id ? id : "?", "read failed: %s", e.msg);
      different++;
      continue;
    }
    if (rr.state != RREC_LIVE) {
      diff(id, "not live in the replica");
      different++;
      continue;
    }
    for (const struct json *m = rec->child; m; m = m->next) {
      struct buf v;
      const char *at = strchr(m->key, '@');
      size_t n = at ? (size_t)(at - m->key) : m->key_len;
      const struct redis_read_prop *p = prop(&rr, m->key, n);
      if (!p) {
        diff(id, "property %s missing", m->key);
        same = false;
        continue;
      }
      buf_init(&v, 0);
      if (json_write(&v, m) != APP_OK)
        return 2;
      if (at) {
        const char *got = ann_of(p, at + 1);
        if (!got || !json_equal(got, strlen(got), v.data, v.len)) {
          diff(id, "annotation %s: replica %s", m->key, got ? got : "(none)");
          same = false;
        }
      } else {
        ncols++;
        if (!json_equal(p->json, p->json_len, v.data, v.len)) {
          char got[200];
          snprintf(got, sizeof got, "%.*s", (int)(p->json_len > 150 ? 150 : p->json_len), p->json);
          diff(id, "property %s: replica %s", m->key, got);
          same = false;
        }
      }
      buf_cleanup(&v);
    }
    if (rr.nprops != ncols) {
      diff(id, "the replica has %zu properties, the emulator %zu", rr.nprops, ncols);
      same = false;
    }
    if (same)
      equal++;
    else
      different++;
  }
  if (argc > 6) {
    char line[128];
    f = fopen(argv[6], "r");
    while (f && fgets(line, sizeof line, f)) {
      struct redis_record rr;
      line[strcspn(line, "\r\n")] = '\0';
      if (!*line)
        continue;
      arena_reset(&ra);
      if (redis_read_record(mux, prefix, &ra, table, line, sink_now_ms() + 5000, &rr, &e) ==
              APP_OK &&
          rr.state != RREC_LIVE)
        delok++;
      else {
        diff(line, "deleted in the emulator, live in the replica");
        different++;
      }
    }
    if (f)
      fclose(f);
  }
  printf("records=%zu equal=%zu different=%zu deleted_ok=%zu\n", nrec, equal, different, delok);
  arena_cleanup(&ra);
  arena_cleanup(&a);
  free(text);
  redis_mux_destroy(mux);
  redis_pool_destroy(pool);
  redis_conninfo_cleanup(&ci);
  return different ? 1 : 0;
}

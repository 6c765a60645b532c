/* histgen.c - random change histories for the ordering property test
 * (tests/e2e/pipeline_property.sh, issue 11).
 *
 *   histgen TEMPLATES OUTDIR N SEED
 *
 * Generates N account histories as Dataverse would post them, in their
 * true order: a Create, then Updates of one column (some as two Updates of
 * the same column stamped with the same time: with a post image
 * versionnumber in half of the histories, without in the others), Deletes,
 * recycle-bin Restores (with the post image of the row as it was deleted),
 * Associates and Disassociates with two leads; in the histories with
 * versionnumber, some Updates are stamped before the Update the database
 * wrote just before them (clock skew between servers). Half of the histories are
 * stamped in whole seconds (as on-premises and webhook-era captures are).
 * Every message is written to OUTDIR/msgs under a random name (the
 * delivery order is the name order: a shuffle), about one in ten twice
 * (a redelivery). OUTDIR/expected gets the final state of each history:
 *
 *   R|<id>|<deleted 0/1>|<name>|<accountnumber>|<telephone1>|<fax>|<mark>
 *   L|<id>|<lead id>|<associated 0/1>
 *
 * A column is "~" when absent, or "a/b" when its last write was one of two
 * same-time Updates without a row version (nothing orders them: either
 * value is right, and <mark> is 1: the record must be marked for a
 * re-read). <mark> is 0 when the history has no such pair (the record must
 * not be marked), '-' when it has one that a later write decided (either).
 * TEMPLATES is tests/fixtures/pipeline. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NCOLS 4
static const char *const col_names[NCOLS] = {"name", "accountnumber", "telephone1", "fax"};

static uint64_t rng;
static uint64_t rnd(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static unsigned pick(unsigned n)
{
  return (unsigned)(rnd() % n);
}

static char *read_all(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *s;
  long n;
  if (!f) {
    fprintf(stderr, "histgen: cannot open %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  s = calloc(1, (size_t)n + 1);
  if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
    exit(2);
  fclose(f);
  return s;
}

/* a growing string */
struct str {
  char *s;
  size_t n, cap;
};
static void put(struct str *b, const char *p, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->s = realloc(b->s, b->cap);
    if (!b->s)
      exit(2);
  }
  memcpy(b->s + b->n, p, n);
  b->n += n;
  b->s[b->n] = '\0';
}
static void putf(struct str *b, const char *fmt, ...)
{
  char tmp[4096];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(b, tmp, (size_t)n);
}

/* tpl with each "@KEY@" of keys[] replaced by vals[] */
static void fill(struct str *out, const char *tpl, const char *const *keys, const char *const *vals,
                 size_t n)
{
  const char *p = tpl;
  out->n = 0;
  while (*p) {
    size_t i, done = 0;
    if (*p == '@')
      for (i = 0; i < n && !done; i++) {
        size_t k = strlen(keys[i]);
        if (!strncmp(p, keys[i], k)) {
          put(out, vals[i], strlen(vals[i]));
          p += k;
          done = 1;
        }
      }
    if (!done)
      put(out, p++, 1);
  }
}

/* replace the first "from" in s by "to" */
static void replace1(struct str *s, const char *from, const char *to)
{
  char *at = strstr(s->s, from);
  struct str o = {0};
  if (!at)
    return;
  put(&o, s->s, (size_t)(at - s->s));
  put(&o, to, strlen(to));
  put(&o, at + strlen(from), strlen(at + strlen(from)));
  free(s->s);
  *s = o;
}

static const char *outdir;
static unsigned long nfiles;
static uint64_t opseq;

static void write_msg(const struct str *m)
{
  int copies = pick(10) == 0 ? 2 : 1, c;
  for (c = 0; c < copies; c++) {
    char path[600];
    FILE *f;
    snprintf(path, sizeof path, "%s/msgs/%016llx%06lu", outdir, (unsigned long long)rnd(),
             nfiles++);
    f = fopen(path, "wb");
    if (!f || fwrite(m->s, 1, m->n, f) != m->n || fclose(f) != 0) {
      fprintf(stderr, "histgen: cannot write %s\n", path);
      exit(2);
    }
  }
}

static const char *tpl_create, *tpl_update, *tpl_delete, *tpl_relate;

static void opid(char *out)
{
  opseq++;
  snprintf(out, 40, "%08llx-0000-4000-8000-%012llx", (unsigned long long)(opseq >> 16),
           (unsigned long long)(rnd() & 0xffffffffffffULL));
}

/* a post image of cols (and versionnumber vn when > 0) */
static void post_image(struct str *m, const char *id, char cols[NCOLS][32], long long vn)
{
  struct str img = {0};
  int i, first = 1;
  put(&img, "\"PostEntityImages\":[{\"key\":\"PostImage\",\"value\":{\"Attributes\":[", 62);
  for (i = 0; i < NCOLS; i++) {
    if (!cols[i][0])
      continue;
    putf(&img, "%s{\"key\":\"%s\",\"value\":\"%s\"}", first ? "" : ",", col_names[i], cols[i]);
    first = 0;
  }
  if (vn > 0)
    putf(&img, "%s{\"key\":\"versionnumber\",\"value\":%lld}", first ? "" : ",", vn);
  putf(&img,
       "],\"EntityState\":null,\"FormattedValues\":[],\"Id\":\"%s\",\"KeyAttributes\":[],"
       "\"LogicalName\":\"account\",\"RelatedEntities\":[],\"RowVersion\":null}}]",
       id);
  replace1(m, "\"PostEntityImages\":[]", img.s);
  free(img.s);
}

struct colstate {
  char v[32];   /* current value ("" = absent) */
  char alt[32]; /* the other value of an unordered same-time pair, or "" */
};

int main(int argc, char **argv)
{
  char path[600], id[40], ts[32], op[40], lead[2][40];
  struct str m = {0}, exp = {0};
  long n, h;
  FILE *f;

  if (argc != 5) {
    fprintf(stderr, "usage: histgen TEMPLATES OUTDIR N SEED\n");
    return 2;
  }
  outdir = argv[2];
  n = atol(argv[3]);
  rng = (uint64_t)strtoull(argv[4], NULL, 10) * 0x9e3779b97f4a7c15ULL + 1;
  snprintf(path, sizeof path, "%s/account_create.json", argv[1]);
  tpl_create = read_all(path);
  snprintf(path, sizeof path, "%s/account_update.json", argv[1]);
  tpl_update = read_all(path);
  snprintf(path, sizeof path, "%s/account_delete.json", argv[1]);
  tpl_delete = read_all(path);
  snprintf(path, sizeof path, "%s/account_relate.json", argv[1]);
  tpl_relate = read_all(path);
  snprintf(path, sizeof path, "%s/msgs", outdir);
  mkdir(outdir, 0755);
  mkdir(path, 0755);

  for (h = 0; h < n; h++) {
    struct colstate cs[NCOLS];
    char snap[NCOLS][32];
    bool alive = true, whole = pick(2), withvn = pick(2), mark = false, anypair = false;
    int link[2] = {-1, -1}, nev = 2 + (int)pick(6), e, i;
    long long t = 1731000000000LL + (long long)pick(1000) * 1000 + (whole ? 0 : pick(1000));
    long long vn = 1000, plain_t;
    bool last_vn = false;

    memset(cs, 0, sizeof cs);
    snprintf(id, sizeof id, "e0000000-0000-4000-8000-%012lx", (unsigned long)h);
    snprintf(lead[0], sizeof lead[0], "f0000000-0000-4000-8000-%012lx", (unsigned long)h * 2);
    snprintf(lead[1], sizeof lead[1], "f0000000-0000-4000-8000-%012lx", (unsigned long)h * 2 + 1);

    /* the Create */
    snprintf(cs[0].v, sizeof cs[0].v, "n%ld", h);
    snprintf(cs[1].v, sizeof cs[1].v, "a%ld", h);
    snprintf(cs[2].v, sizeof cs[2].v, "p%ld", h);
    snprintf(ts, sizeof ts, "%lld", t);
    plain_t = t;
    opid(op);
    {
      const char *k[] = {"@ID@", "@TS@", "@OPID@", "@NAME@", "@NUMBER@", "@PHONE@", "@REVENUE@"};
      const char *v[] = {id, ts, op, cs[0].v, cs[1].v, cs[2].v, "1"};
      fill(&m, tpl_create, k, v, 7);
      write_msg(&m);
    }
    for (e = 0; e < nev; e++) {
      unsigned r = pick(100);
      t += whole ? 1000 * (1 + (long long)pick(3)) : 1 + (long long)pick(3000);
      snprintf(ts, sizeof ts, "%lld", t);
      if (!alive) {
        if (r < 60) {
          /* Restore: the row as it was deleted (snap) */
          const char *k[] = {"@ID@", "@TS@", "@OPID@", "@COL@", "@VAL@"};
          const char *v[] = {id, ts, op, "name", "x"};
          opid(op);
          fill(&m, tpl_update, k, v, 5);
          replace1(&m, "\"MessageName\":\"Update\"", "\"MessageName\":\"Restore\"");
          post_image(&m, id, snap, withvn ? ++vn : 0);
          write_msg(&m);
          last_vn = withvn;
          for (i = 0; i < NCOLS; i++) {
            memcpy(cs[i].v, snap[i], sizeof cs[i].v);
            cs[i].alt[0] = '\0';
          }
          alive = true;
          continue;
        }
        r = 70; /* else: a relationship change */
      }
      if (r < 45 || (r >= 85 && r < 95)) {
        /* one Update, or (85..94) two Updates of one column at one time */
        int c = (int)pick(NCOLS), k2, pair = r >= 85;
        /* clock skew: the database wrote this Update after the previous
         * one (higher versionnumber), but its server stamped it earlier;
         * never before the last Create or Delete (no row version there,
         * so the time must decide) */
        if (withvn && !pair && last_vn && pick(4) == 0) {
          long long ut = t - (whole ? 1000 * (1 + (long long)pick(2)) : 1 + (long long)pick(800));
          snprintf(ts, sizeof ts, "%lld", ut > plain_t ? ut : plain_t + (whole ? 1000 : 1));
        }
        for (k2 = 0; k2 <= pair; k2++) {
          char val[32];
          const char *k[] = {"@ID@", "@TS@", "@OPID@", "@COL@", "@VAL@"};
          const char *v[] = {id, ts, op, col_names[c], val};
          snprintf(val, sizeof val, "u%d_%lld_%d", c, t % 1000000, k2);
          opid(op);
          fill(&m, tpl_update, k, v, 5);
          if (withvn) {
            char one[NCOLS][32];
            memset(one, 0, sizeof one);
            snprintf(one[c], sizeof one[c], "%s", val);
            post_image(&m, id, one, ++vn);
          }
          write_msg(&m);
          last_vn = withvn;
          if (k2 == 1 && !withvn) {
            memcpy(cs[c].alt, cs[c].v, sizeof cs[c].alt);
            anypair = true;
          } else
            cs[c].alt[0] = '\0';
          memcpy(cs[c].v, val, sizeof cs[c].v);
        }
      } else if (r < 55) {
        const char *k[] = {"@ID@", "@TS@", "@OPID@"};
        const char *v[] = {id, ts, op};
        opid(op);
        fill(&m, tpl_delete, k, v, 3);
        write_msg(&m);
        plain_t = t;
        last_vn = false;
        for (i = 0; i < NCOLS; i++) {
          memcpy(snap[i], cs[i].v, sizeof snap[i]);
          cs[i].v[0] = cs[i].alt[0] = '\0';
        }
        alive = false;
      } else {
        int l = (int)pick(2), assoc = pick(2);
        const char *k[] = {"@ID@", "@TS@", "@OPID@", "@MSG@", "@LEAD@"};
        const char *v[] = {id, ts, op, assoc ? "Associate" : "Disassociate", lead[l]};
        opid(op);
        fill(&m, tpl_relate, k, v, 5);
        write_msg(&m);
        link[l] = assoc;
      }
    }
    /* the final state */
    for (i = 0; i < NCOLS; i++)
      if (alive && cs[i].alt[0])
        mark = true;
    putf(&exp, "R|%s|%d", id, alive ? 0 : 1);
    for (i = 0; i < NCOLS; i++) {
      if (!alive)
        put(&exp, "|", 1);
      else if (cs[i].alt[0])
        putf(&exp, "|%s/%s", cs[i].v, cs[i].alt);
      else
        putf(&exp, "|%s", cs[i].v[0] ? cs[i].v : "~");
    }
    putf(&exp, "|%c\n", mark ? '1' : anypair ? '-' : '0');
    for (i = 0; i < 2; i++)
      if (link[i] >= 0)
        putf(&exp, "L|%s|%s|%d\n", id, lead[i], link[i]);
  }
  snprintf(path, sizeof path, "%s/expected", outdir);
  f = fopen(path, "wb");
  if (!f || fwrite(exp.s, 1, exp.n, f) != exp.n || fclose(f) != 0)
    return 2;
  printf("%ld histories, %lu messages\n", n, nfiles);
  free(m.s);
  free(exp.s);
  return 0;
}

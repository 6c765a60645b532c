/* mapping.c - load and validate the mapping file; decide about changes.
 *
 * The file is parsed with cJSON (it is our own configuration, numbers in it
 * are small) and turned into an immutable struct map_config whose memory is
 * one arena. Validation is strict on purpose: a mapping that silently does
 * the wrong thing (a typo in a key, a rename onto another column) loses or
 * leaks data, so every such mistake stops start-up with the file name and
 * the JSON path. */
#include "map/mapping.h"

#include "map/docmap.h"
#include "common/json.h"
#include "common/log.h"

#include <cJSON.h>
#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ messages */

enum msg_bit {
  MSG_CREATE = 1u << 0,
  MSG_UPDATE = 1u << 1,
  MSG_DELETE = 1u << 2,
  MSG_ASSOCIATE = 1u << 3,
  MSG_DISASSOCIATE = 1u << 4,
  MSG_SETSTATE = 1u << 5,
  MSG_SETSTATEDYN = 1u << 6,
  MSG_ASSIGN = 1u << 7,
  MSG_MERGE = 1u << 8,
  MSG_UPSERT = 1u << 9,
  MSG_RESTORE = 1u << 10
};

static const struct {
  const char *name;
  unsigned bit;
} message_names[] = {
    {"Create", MSG_CREATE},
    {"Update", MSG_UPDATE},
    {"Delete", MSG_DELETE},
    {"Associate", MSG_ASSOCIATE},
    {"Disassociate", MSG_DISASSOCIATE},
    {"SetState", MSG_SETSTATE},
    {"SetStateDynamicEntity", MSG_SETSTATEDYN},
    {"Assign", MSG_ASSIGN},
    {"Merge", MSG_MERGE},
    {"Upsert", MSG_UPSERT},
    {"Restore", MSG_RESTORE},
};
#define NMESSAGES (sizeof message_names / sizeof message_names[0])
/* the brief's CDC set: everything but Upsert (Dataverse runs Create or
 * Update steps for an upsert, so a step on Upsert itself is unusual) */
#define MSG_DEFAULT                                                                                \
  (MSG_CREATE | MSG_UPDATE | MSG_DELETE | MSG_ASSOCIATE | MSG_DISASSOCIATE | MSG_SETSTATE |        \
   MSG_SETSTATEDYN | MSG_ASSIGN | MSG_MERGE | MSG_RESTORE)

static unsigned change_message_bit(const struct cdc_change *ch)
{
  size_t i;
  if (ch->message)
    for (i = 0; i < NMESSAGES; i++)
      if (strcmp(ch->message, message_names[i].name) == 0)
        return message_names[i].bit;
  switch (ch->op) {
  case CDC_OP_CREATE: return MSG_CREATE;
  case CDC_OP_UPDATE: return MSG_UPDATE;
  case CDC_OP_DELETE: return MSG_DELETE;
  case CDC_OP_ASSOCIATE: return MSG_ASSOCIATE;
  case CDC_OP_DISASSOCIATE: return MSG_DISASSOCIATE;
  case CDC_OP_SETSTATE: return MSG_SETSTATE;
  case CDC_OP_ASSIGN: return MSG_ASSIGN;
  case CDC_OP_MERGE: return MSG_MERGE;
  case CDC_OP_UPSERT: return MSG_UPSERT;
  case CDC_OP_RESTORE: return MSG_RESTORE;
  case CDC_OP_OTHER: return 0;
  }
  return 0;
}

/* ------------------------------------------------------ the loaded config */

struct strlist {
  const char **v;
  size_t n;
};

struct map_table {
  const char *name;          /* logical name, or "*" */
  struct docmap_rules rules; /* entity_set/key_name/sql_table unset for "*" */
  const char *sql_template;  /* sql_table with "{table}" placeholders */
  unsigned messages;         /* enum msg_bit set */
  bool all_relationships;
  struct strlist relationships;
  const struct map_nav *navs; /* "navigation", in file order */
  size_t nnavs;
};

struct map_config {
  struct arena mem; /* every string and array below */
  const char *source;
  bool all_tables;             /* accept_tables "*" */
  struct strlist accept, skip; /* sorted */
  struct map_table *tables;    /* listed tables, sorted by name */
  size_t ntables;
  struct map_table *star; /* the "*" default, or NULL */
  struct strlist echo_initiating, echo_users, echo_agents;
  unsigned char *salt; /* secret: wiped in map_config_free */
  size_t salt_len;
};

/* ---------------------------------------------------------- name checks */

static bool is_lower_ident(const char *s)
{
  size_t i;
  if (!s[0] || !(s[0] >= 'a' && s[0] <= 'z'))
    return false;
  for (i = 0; s[i]; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return i <= MAP_MAX_NAME;
}

static bool is_ident(const char *s, size_t len)
{
  size_t i;
  if (!len || len > MAP_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return true;
}

static bool is_guid_text(const char *s)
{
  size_t i;
  if (strlen(s) != 36)
    return false;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return false;
    } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                 (s[i] >= 'A' && s[i] <= 'F'))) {
      return false;
    }
  }
  return true;
}

/* "name" or "schema.name", each an identifier: what SQL sinks can quote. */
static bool is_sql_table(const char *s)
{
  const char *dot = strchr(s, '.');
  if (!dot)
    return is_ident(s, strlen(s));
  return is_ident(s, (size_t)(dot - s)) && is_ident(dot + 1, strlen(dot + 1));
}

size_t map_default_entity_set(const char *name, char *out, size_t outsz)
{
  size_t n = strlen(name);
  const char *suffix = "s";
  size_t keep = n, len;
  char last = n ? name[n - 1] : '\0', prev = n > 1 ? name[n - 2] : '\0';

  if (last == 'y' && n > 1 && !strchr("aeiou", prev)) {
    keep = n - 1; /* opportunity -> opportunities, activityparty -> activityparties */
    suffix = "ies";
  } else if (last == 's' || last == 'x' || last == 'z' ||
             (last == 'h' && (prev == 'c' || prev == 's'))) {
    suffix = "es"; /* address -> addresses, mailbox -> mailboxes */
  }
  len = keep + strlen(suffix);
  if (!n || len + 1 > outsz) {
    if (outsz)
      out[0] = '\0';
    return 0;
  }
  memcpy(out, name, keep);
  memcpy(out + keep, suffix, strlen(suffix) + 1);
  return len;
}

/* ------------------------------------------------------- parse context */

#define PATH_MAX_LEN 200

struct pctx {
  const char *file;
  char path[PATH_MAX_LEN];
  size_t plen;
  struct app_err *err;
  struct map_config *cfg;
};

static void *pmem(struct pctx *p, size_t n)
{
  void *m = arena_alloc(&p->cfg->mem, n ? n : 1);
  if (!m) {
    /* start-up, our own small file: like xmalloc, running out is fatal */
    LOG_ERROR("out of memory loading the mapping file (%zu bytes)", n);
    abort();
  }
  memset(m, 0, n ? n : 1); /* zeroed: optional fields stay NULL */
  return m;
}

static const char *pstr(struct pctx *p, const char *s)
{
  size_t n = strlen(s);
  char *d = pmem(p, n + 1);
  memcpy(d, s, n + 1);
  return d;
}

static size_t path_push_key(struct pctx *p, const char *key)
{
  size_t old = p->plen;
  int n = snprintf(p->path + p->plen, sizeof p->path - p->plen, "%s%s", p->plen ? "." : "", key);
  if (n > 0)
    p->plen = p->plen + (size_t)n < sizeof p->path ? p->plen + (size_t)n : sizeof p->path - 1;
  return old;
}

static size_t path_push_index(struct pctx *p, size_t i)
{
  size_t old = p->plen;
  int n = snprintf(p->path + p->plen, sizeof p->path - p->plen, "[%zu]", i);
  if (n > 0)
    p->plen = p->plen + (size_t)n < sizeof p->path ? p->plen + (size_t)n : sizeof p->path - 1;
  return old;
}

static void path_pop(struct pctx *p, size_t old)
{
  p->plen = old;
  p->path[old] = '\0';
}

static enum app_result perr(struct pctx *p, const char *fmt, ...) APP_PRINTF(2, 3);

/* "<file>: <path>: <what>" */
static enum app_result perr(struct pctx *p, const char *fmt, ...)
{
  char what[APP_ERR_MSG_MAX];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (p->plen)
    return app_err_set(p->err, APP_ERR_CONFIG, "%s: %s: %s", p->file, p->path, what);
  return app_err_set(p->err, APP_ERR_CONFIG, "%s: %s", p->file, what);
}

/* A short description of a JSON value for "got ..." (strings quoted and
 * cut at 40 bytes). */
static const char *describe(const cJSON *v, char *out, size_t outsz)
{
  if (cJSON_IsString(v)) {
    const char *s = v->valuestring;
    size_t i, o = 0, n = strlen(s);
    out[o++] = '"';
    for (i = 0; i < n && i < 40 && o + 6 < outsz; i++) {
      unsigned char ch = (unsigned char)s[i];
      if (ch < 0x20 || ch == '"' || ch == '\\')
        o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", ch);
      else
        out[o++] = (char)ch;
    }
    if (i < n && o + 5 < outsz) {
      memcpy(out + o, "...", 3);
      o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
  } else if (cJSON_IsNumber(v)) {
    snprintf(out, outsz, "%.17g", v->valuedouble);
  } else if (cJSON_IsArray(v)) {
    snprintf(out, outsz, "an array");
  } else if (cJSON_IsObject(v)) {
    snprintf(out, outsz, "an object");
  } else if (cJSON_IsTrue(v)) {
    snprintf(out, outsz, "true");
  } else if (cJSON_IsFalse(v)) {
    snprintf(out, outsz, "false");
  } else {
    snprintf(out, outsz, "null");
  }
  return out;
}

#define GOT(v) describe((v), got_, sizeof got_)

static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b), i, j, row[65];
  if (la > 64 || lb > 64)
    return 99;
  for (j = 0; j <= lb; j++)
    row[j] = j;
  for (i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

/* Reject keys not in allowed[] (with a suggestion) and duplicate keys
 * (cJSON keeps both, and which one wins would be an accident). */
static enum app_result check_keys(struct pctx *p, const cJSON *obj, const char *const *allowed,
                                  size_t nallowed)
{
  const cJSON *k, *prev;
  size_t i;

  for (k = obj->child; k; k = k->next) {
    bool known = false;
    const char *best = NULL;
    size_t bestd = 3;
    for (prev = obj->child; prev != k; prev = prev->next)
      if (strcmp(prev->string, k->string) == 0)
        return perr(p, "duplicate key \"%s\"", k->string);
    for (i = 0; i < nallowed; i++) {
      size_t d;
      if (strcmp(k->string, allowed[i]) == 0) {
        known = true;
        break;
      }
      d = edit_distance(k->string, allowed[i]);
      if (d < bestd) {
        bestd = d;
        best = allowed[i];
      }
    }
    if (known)
      continue;
    if (best)
      return perr(p, "unknown key \"%.60s\" (did you mean \"%s\"?)", k->string, best);
    return perr(p, "unknown key \"%.60s\"", k->string);
  }
  return APP_OK;
}

static enum app_result expect_object(struct pctx *p, const cJSON *v, const char *what)
{
  char got_[64];
  if (!cJSON_IsObject(v))
    return perr(p, "expected %s, got %s", what, GOT(v));
  return APP_OK;
}

/* ------------------------------------------------------------ the spec */

/* What one tables.<name> entry says, before "*" is merged in. */
enum spec_key {
  K_KEEP,
  K_DROP,
  K_RENAME,
  K_MASK,
  K_REQUIRED,
  K_LOOKUPS,
  K_DATE_ONLY,
  K_TTL,
  K_SQL_TABLE,
  K_ENTITY_SET,
  K_PRIMARY_KEY,
  K_MESSAGES,
  K_RELATIONSHIPS,
  K_POST_IMAGE,
  K_COMMENT,
  K_NAVIGATION,
  K_KEYS,
  K_INDEXES,
  K_COUNT
};

static const char *const table_keys[K_COUNT] = {
    "keep",          "drop",        "rename",    "mask",       "required",    "lookups",
    "date_only",     "ttl_seconds", "sql_table", "entity_set", "primary_key", "messages",
    "relationships", "post_image",  "comment",   "navigation", "keys",        "indexes"};

struct rename {
  const char *from, *to;
};

struct mask {
  const char *column;
  enum docmap_mask kind;
  const char *redact_text;
};

struct spec {
  const char *table; /* as listed ("*" for the default) */
  bool has[K_COUNT];
  bool keep_all;
  struct strlist keep, drop, required, lookups, date_only, relationships;
  bool all_relationships;
  struct rename *renames;
  size_t nrenames;
  struct mask *masks;
  size_t nmasks;
  int64_t ttl;
  const char *sql_table, *entity_set, *primary_key;
  unsigned messages;
  enum docmap_image post_image;
  struct map_nav *navs; /* "navigation" (issue 14) */
  size_t nnavs;
  struct doc_altkey *keys; /* "keys" then "indexes" (issue 14) */
  size_t nkeys;
  struct strlist indexes;
};

static enum app_result parse_column_list(struct pctx *p, const cJSON *v, bool allow_star,
                                         bool *out_star, struct strlist *out)
{
  char got_[64];
  const cJSON *it;
  size_t i = 0, j;

  if (allow_star && cJSON_IsString(v) && strcmp(v->valuestring, "*") == 0) {
    *out_star = true;
    return APP_OK;
  }
  if (!cJSON_IsArray(v))
    return perr(p,
                allow_star ? "expected \"*\" or an array of column names, got %s"
                           : "expected an array of column names, got %s",
                GOT(v));
  out->n = (size_t)cJSON_GetArraySize(v);
  if (!out->n && allow_star)
    return perr(p, "empty list (use \"*\" for every column, or name the columns)");
  out->v = pmem(p, out->n * sizeof *out->v);
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_index(p, i);
    if (!cJSON_IsString(it))
      return perr(p, "expected a column name, got %s", GOT(it));
    if (it->valuestring[0] == '_' && strlen(it->valuestring) > 7 &&
        strcmp(it->valuestring + strlen(it->valuestring) - 6, "_value") == 0)
      return perr(p,
                  "\"%.60s\" is a Web API property name; use the column's logical name "
                  "\"%.*s\"",
                  it->valuestring, (int)(strlen(it->valuestring) - 7), it->valuestring + 1);
    if (!is_lower_ident(it->valuestring))
      return perr(p,
                  "%s is not a column logical name (lower-case letters, digits and '_', "
                  "starting with a letter)",
                  GOT(it));
    for (j = 0; j < i; j++)
      if (strcmp(out->v[j], it->valuestring) == 0)
        return perr(p, "duplicate column \"%s\"", it->valuestring);
    out->v[i] = pstr(p, it->valuestring);
    path_pop(p, old);
  }
  return APP_OK;
}

static enum app_result parse_rename(struct pctx *p, const cJSON *v, struct spec *s)
{
  char got_[64];
  const cJSON *it;
  size_t i = 0, j;

  if (!cJSON_IsObject(v))
    return perr(p, "expected an object of \"column\": \"new name\", got %s", GOT(v));
  s->nrenames = (size_t)cJSON_GetArraySize(v);
  s->renames = pmem(p, s->nrenames * sizeof *s->renames);
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_key(p, it->string);
    for (j = 0; j < i; j++)
      if (strcmp(s->renames[j].from, it->string) == 0)
        return perr(p, "duplicate key");
    if (!is_lower_ident(it->string))
      return perr(p,
                  "\"%.60s\" is not a column logical name (lower-case letters, digits and "
                  "'_', starting with a letter)",
                  it->string);
    if (!cJSON_IsString(it))
      return perr(p, "expected the new property name, got %s", GOT(it));
    if (!is_ident(it->valuestring, strlen(it->valuestring)))
      return perr(p,
                  "%s is not a valid property name (letters, digits and '_', not starting "
                  "with a digit, at most %d)",
                  GOT(it), MAP_MAX_NAME);
    for (j = 0; j < i; j++)
      if (strcmp(s->renames[j].to, it->valuestring) == 0)
        return perr(p, "\"%s\" is also the new name of \"%s\"", it->valuestring,
                    s->renames[j].from);
    s->renames[i].from = pstr(p, it->string);
    s->renames[i].to = pstr(p, it->valuestring);
    path_pop(p, old);
  }
  return APP_OK;
}

static enum app_result parse_mask(struct pctx *p, const cJSON *v, struct spec *s)
{
  char got_[64];
  const cJSON *it;
  size_t i = 0, j;

  if (!cJSON_IsObject(v))
    return perr(p, "expected an object of \"column\": \"hash\" | \"redact\", got %s", GOT(v));
  s->nmasks = (size_t)cJSON_GetArraySize(v);
  s->masks = pmem(p, s->nmasks * sizeof *s->masks);
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_key(p, it->string);
    struct mask *m = &s->masks[i];
    for (j = 0; j < i; j++)
      if (strcmp(s->masks[j].column, it->string) == 0)
        return perr(p, "duplicate key");
    if (!is_lower_ident(it->string))
      return perr(p,
                  "\"%.60s\" is not a column logical name (lower-case letters, digits and "
                  "'_', starting with a letter)",
                  it->string);
    m->column = pstr(p, it->string);
    if (cJSON_IsString(it)) {
      if (strcmp(it->valuestring, "hash") == 0)
        m->kind = DOCMAP_MASK_HASH;
      else if (strcmp(it->valuestring, "redact") == 0)
        m->kind = DOCMAP_MASK_REDACT;
      else
        return perr(p, "expected \"hash\" or \"redact\", got %s", GOT(it));
    } else if (cJSON_IsObject(it)) {
      static const char *const mask_keys[] = {"redact"};
      const cJSON *with;
      size_t o2;
      APP_RETURN_IF_FAILED(check_keys(p, it, mask_keys, 1));
      with = cJSON_GetObjectItemCaseSensitive(it, "redact");
      if (!with)
        return perr(p, "expected {\"redact\": \"replacement text\"}, got an empty object");
      o2 = path_push_key(p, "redact");
      if (!cJSON_IsString(with) && !cJSON_IsNull(with))
        return perr(p, "expected the replacement text (a string) or null, got %s", GOT(with));
      path_pop(p, o2);
      m->kind = DOCMAP_MASK_REDACT;
      m->redact_text = cJSON_IsString(with) ? pstr(p, with->valuestring) : NULL;
    } else {
      return perr(p, "expected \"hash\", \"redact\" or {\"redact\": \"replacement text\"}, got %s",
                  GOT(it));
    }
    path_pop(p, old);
  }
  return APP_OK;
}

static enum app_result parse_messages(struct pctx *p, const cJSON *v, unsigned *out)
{
  char got_[64];
  const cJSON *it;
  size_t i = 0, k;

  if (!cJSON_IsArray(v))
    return perr(p, "expected an array of message names, got %s", GOT(v));
  if (!v->child)
    return perr(p, "empty list (leave the table out of accept_tables to skip it)");
  *out = 0;
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_index(p, i);
    unsigned bit = 0;
    if (!cJSON_IsString(it))
      return perr(p, "expected a message name, got %s", GOT(it));
    for (k = 0; k < NMESSAGES; k++)
      if (strcmp(it->valuestring, message_names[k].name) == 0)
        bit = message_names[k].bit;
    if (!bit)
      return perr(
          p,
          "unknown message %s (expected Create, Update, Delete, Associate, "
          "Disassociate, SetState, SetStateDynamicEntity, Assign, Merge, Upsert or Restore)",
          GOT(it));
    if (*out & bit)
      return perr(p, "duplicate message \"%s\"", it->valuestring);
    *out |= bit;
    path_pop(p, old);
  }
  return APP_OK;
}

static enum app_result parse_relationships(struct pctx *p, const cJSON *v, struct spec *s)
{
  char got_[64];
  const cJSON *it;
  size_t i = 0, j;

  if (cJSON_IsString(v) && strcmp(v->valuestring, "*") == 0) {
    s->all_relationships = true;
    return APP_OK;
  }
  if (!cJSON_IsArray(v))
    return perr(p, "expected \"*\" or an array of relationship schema names, got %s", GOT(v));
  s->relationships.n = (size_t)cJSON_GetArraySize(v);
  s->relationships.v = pmem(p, s->relationships.n * sizeof *s->relationships.v);
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_index(p, i);
    if (!cJSON_IsString(it))
      return perr(p, "expected a relationship schema name, got %s", GOT(it));
    if (!is_ident(it->valuestring, strlen(it->valuestring)))
      return perr(p, "%s is not a relationship schema name (letters, digits and '_')", GOT(it));
    for (j = 0; j < i; j++)
      if (strcasecmp(s->relationships.v[j], it->valuestring) == 0)
        return perr(p, "duplicate relationship \"%s\"", it->valuestring);
    s->relationships.v[i] = pstr(p, it->valuestring);
    path_pop(p, old);
  }
  return APP_OK;
}

/* "navigation": {"<name>": {"table": "<target>", "lookup": "<column>"}}:
 * single-valued navigation properties ($expand) through a lookup column. */
static enum app_result parse_navigation(struct pctx *p, const cJSON *v, struct spec *s)
{
  static const char *const nav_keys[] = {"table", "lookup", "referencing", "comment"};
  char got_[64];
  const cJSON *it;
  size_t i = 0, j;

  APP_RETURN_IF_FAILED(expect_object(p, v, "an object of navigation properties"));
  s->nnavs = (size_t)cJSON_GetArraySize(v);
  s->navs = pmem(p, (s->nnavs ? s->nnavs : 1) * sizeof *s->navs);
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_key(p, it->string);
    const cJSON *t, *l;
    struct map_nav *n = &s->navs[i];
    if (!is_ident(it->string, strlen(it->string)) || strlen(it->string) > MAP_MAX_NAME)
      return perr(p, "\"%.60s\" is not a navigation property name (letters, digits and '_')",
                  it->string);
    for (j = 0; j < i; j++)
      if (strcmp(s->navs[j].name, it->string) == 0)
        return perr(p, "duplicate navigation property \"%s\"", it->string);
    APP_RETURN_IF_FAILED(expect_object(p, it, "an object with \"table\" and \"lookup\""));
    APP_RETURN_IF_FAILED(check_keys(p, it, nav_keys, sizeof nav_keys / sizeof nav_keys[0]));
    t = cJSON_GetObjectItemCaseSensitive(it, "table");
    l = cJSON_GetObjectItemCaseSensitive(it, "lookup");
    if (l && cJSON_GetObjectItemCaseSensitive(it, "referencing"))
      return perr(p, "\"lookup\" (single-valued) and \"referencing\" (a collection) exclude "
                     "each other");
    if (!l && (l = cJSON_GetObjectItemCaseSensitive(it, "referencing")) != NULL)
      n->collection = true;
    if (!t || !l)
      return perr(p, "needs \"table\" and either \"lookup\" (this table's lookup column) or "
                     "\"referencing\" (the related table's lookup column: a 1:N collection)");
    if (!cJSON_IsString(t) || !is_lower_ident(t->valuestring))
      return perr(p, "table: %s is not a table logical name", GOT(t));
    if (!cJSON_IsString(l) || !is_lower_ident(l->valuestring))
      return perr(p,
                  "%s: %s is not a column logical name (write \"primarycontactid\", not "
                  "\"_primarycontactid_value\")",
                  n->collection ? "referencing" : "lookup", GOT(l));
    n->name = pstr(p, it->string);
    n->table = pstr(p, t->valuestring);
    n->lookup = pstr(p, l->valuestring);
    {
      size_t ln = strlen(l->valuestring);
      char *prop = pmem(p, ln + 8);
      prop[0] = '_';
      memcpy(prop + 1, l->valuestring, ln);
      memcpy(prop + 1 + ln, "_value", 7);
      n->property = prop;
    }
    path_pop(p, old);
  }
  return APP_OK;
}

/* "keys": {"<key name>": ["col", ...]}: alternate keys (single or
 * composite), for GET <set>(col='v'). */
static enum app_result parse_keys(struct pctx *p, const cJSON *v, struct spec *s)
{
  char got_[64];
  const cJSON *it;
  size_t i = 0, j;

  APP_RETURN_IF_FAILED(expect_object(p, v, "an object of alternate keys (name: [columns])"));
  s->nkeys = (size_t)cJSON_GetArraySize(v);
  if (s->nkeys > MAP_MAX_KEYS)
    return perr(p, "more than %d alternate keys", MAP_MAX_KEYS);
  s->keys = pmem(p, (s->nkeys ? s->nkeys : 1) * sizeof *s->keys);
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_key(p, it->string), n = 0;
    const cJSON *c;
    const char **props;
    int ncols = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0;
    if (!is_ident(it->string, strlen(it->string)) || strlen(it->string) > MAP_MAX_NAME)
      return perr(p, "\"%.60s\" is not a key name (letters, digits and '_')", it->string);
    if (ncols < 1 || ncols > MAP_MAX_KEY_COLUMNS)
      return perr(p, "expected an array of 1 to %d column names, got %s", MAP_MAX_KEY_COLUMNS,
                  GOT(it));
    props = pmem(p, (size_t)ncols * sizeof *props);
    for (c = it->child; c; c = c->next, n++) {
      size_t o2 = path_push_index(p, n);
      if (!cJSON_IsString(c) || !is_lower_ident(c->valuestring))
        return perr(p,
                    "%s is not a column logical name (lower-case letters, digits and '_', "
                    "starting with a letter)",
                    GOT(c));
      for (j = 0; j < n; j++)
        if (strcmp(props[j], c->valuestring) == 0)
          return perr(p, "column \"%s\" is listed twice", c->valuestring);
      props[n] = pstr(p, c->valuestring);
      path_pop(p, o2);
    }
    for (j = 0; j < i; j++) {
      size_t k, same = 0;
      if (s->keys[j].nprops != n)
        continue;
      for (k = 0; k < n; k++)
        for (size_t m = 0; m < n; m++)
          same += strcmp(s->keys[j].props[k], props[m]) == 0;
      if (same == n)
        return perr(p, "the same columns as key \"%s\"", s->keys[j].name);
    }
    s->keys[i].name = pstr(p, it->string);
    s->keys[i].props = props;
    s->keys[i].nprops = n;
    path_pop(p, old);
  }
  return APP_OK;
}

static enum app_result parse_table(struct pctx *p, const cJSON *obj, struct spec *s)
{
  char got_[64];
  const cJSON *it;
  bool star = strcmp(s->table, "*") == 0;

  APP_RETURN_IF_FAILED(expect_object(p, obj, "an object of table settings"));
  APP_RETURN_IF_FAILED(check_keys(p, obj, table_keys, K_COUNT));
  for (it = obj->child; it; it = it->next) {
    size_t old = path_push_key(p, it->string), k;
    for (k = 0; k < K_COUNT; k++)
      if (strcmp(it->string, table_keys[k]) == 0)
        break;
    s->has[k] = true;
    switch ((enum spec_key)k) {
    case K_KEEP:
      APP_RETURN_IF_FAILED(parse_column_list(p, it, true, &s->keep_all, &s->keep));
      break;
    case K_DROP: {
      bool unused = false;
      APP_RETURN_IF_FAILED(parse_column_list(p, it, false, &unused, &s->drop));
      break;
    }
    case K_REQUIRED: {
      bool unused = false;
      APP_RETURN_IF_FAILED(parse_column_list(p, it, false, &unused, &s->required));
      break;
    }
    case K_LOOKUPS: {
      bool unused = false;
      APP_RETURN_IF_FAILED(parse_column_list(p, it, false, &unused, &s->lookups));
      break;
    }
    case K_DATE_ONLY: {
      bool unused = false;
      APP_RETURN_IF_FAILED(parse_column_list(p, it, false, &unused, &s->date_only));
      break;
    }
    case K_RENAME: APP_RETURN_IF_FAILED(parse_rename(p, it, s)); break;
    case K_MASK: APP_RETURN_IF_FAILED(parse_mask(p, it, s)); break;
    case K_TTL:
      if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
          it->valuedouble != floor(it->valuedouble) || it->valuedouble < 0 ||
          it->valuedouble > MAP_MAX_TTL_SECONDS)
        return perr(p, "expected a whole number of seconds from 0 (no expiry) to %d, got %s",
                    MAP_MAX_TTL_SECONDS, GOT(it));
      s->ttl = (int64_t)it->valuedouble;
      break;
    case K_SQL_TABLE: {
      char sample[2 * MAP_MAX_NAME + 64];
      const char *src, *hole;
      size_t o = 0;
      if (!cJSON_IsString(it))
        return perr(p, "expected a table name such as \"dbo.account\", got %s", GOT(it));
      if (star && !strstr(it->valuestring, "{table}"))
        return perr(p, "the \"*\" default must contain \"{table}\" (e.g. \"dbo.{table}\"), or "
                       "every table would share one SQL table");
      /* check the shape with {table} filled in; the length check comes
       * first so the sample (never longer than the value) fits */
      if (strlen(it->valuestring) > 2 * MAP_MAX_NAME + 1)
        return perr(p, "longer than %d characters", 2 * MAP_MAX_NAME + 1);
      for (src = it->valuestring; (hole = strstr(src, "{table}")); src = hole + 7) {
        memcpy(sample + o, src, (size_t)(hole - src));
        o += (size_t)(hole - src);
        sample[o++] = 't';
      }
      memcpy(sample + o, src, strlen(src) + 1);
      if (!is_sql_table(sample))
        return perr(p,
                    "%s is not a valid SQL table name (\"name\" or \"schema.name\": "
                    "letters, digits and '_')",
                    GOT(it));
      s->sql_table = pstr(p, it->valuestring);
      break;
    }
    case K_ENTITY_SET:
      if (star)
        return perr(p, "not allowed in the \"*\" default (it names one table's entity set)");
      if (!cJSON_IsString(it) || !is_ident(it->valuestring, strlen(it->valuestring)))
        return perr(p, "%s is not a valid entity set name (letters, digits and '_')", GOT(it));
      s->entity_set = pstr(p, it->valuestring);
      break;
    case K_PRIMARY_KEY:
      if (star)
        return perr(p, "not allowed in the \"*\" default (each table has its own key)");
      if (!cJSON_IsString(it) || !is_lower_ident(it->valuestring))
        return perr(p,
                    "%s is not a column logical name (lower-case letters, digits and '_', "
                    "starting with a letter)",
                    GOT(it));
      s->primary_key = pstr(p, it->valuestring);
      break;
    case K_MESSAGES: APP_RETURN_IF_FAILED(parse_messages(p, it, &s->messages)); break;
    case K_RELATIONSHIPS: APP_RETURN_IF_FAILED(parse_relationships(p, it, s)); break;
    case K_POST_IMAGE:
      if (cJSON_IsString(it) && strcmp(it->valuestring, "full") == 0)
        s->post_image = DOCMAP_IMAGE_FULL;
      else if (cJSON_IsString(it) && strcmp(it->valuestring, "partial") == 0)
        s->post_image = DOCMAP_IMAGE_PARTIAL;
      else if (cJSON_IsString(it) && strcmp(it->valuestring, "ignore") == 0)
        s->post_image = DOCMAP_IMAGE_IGNORE;
      else
        return perr(p, "expected \"full\", \"partial\" or \"ignore\", got %s", GOT(it));
      break;
    case K_COMMENT:
      if (!cJSON_IsString(it))
        return perr(p, "expected a string, got %s", GOT(it));
      break;
    case K_NAVIGATION:
      if (star)
        return perr(p, "not allowed in the \"*\" default (navigation names one table's related "
                       "tables)");
      APP_RETURN_IF_FAILED(parse_navigation(p, it, s));
      break;
    case K_INDEXES: {
      bool unused = false;
      if (star)
        return perr(p, "not allowed in the \"*\" default (indexes are one table's)");
      APP_RETURN_IF_FAILED(parse_column_list(p, it, false, &unused, &s->indexes));
      if (s->indexes.n > MAP_MAX_KEYS)
        return perr(p, "more than %d indexes", MAP_MAX_KEYS);
      break;
    }
    case K_KEYS:
      if (star)
        return perr(p, "not allowed in the \"*\" default (alternate keys are one table's)");
      APP_RETURN_IF_FAILED(parse_keys(p, it, s));
      break;
    case K_COUNT: break;
    }
    path_pop(p, old);
  }
  return APP_OK;
}

/* ------------------------------------------------- merge and cross-check */

/* The effective value of one key for a table: its own, else the default's. */
struct eff {
  const struct spec *own, *star;
};

static const struct spec *src(const struct eff *e, enum spec_key k)
{
  if (e->own->has[k] || !e->star)
    return e->own;
  return e->star;
}

static bool list_has(const struct strlist *l, const char *name)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    if (strcmp(l->v[i], name) == 0)
      return true;
  return false;
}

/* Sets the error path to tables.<table>.<key>[index] / .<member>. */
static void path_at(struct pctx *p, const char *table, enum spec_key k, const char *member,
                    size_t index)
{
  path_pop(p, 0);
  path_push_key(p, "tables");
  path_push_key(p, table);
  path_push_key(p, table_keys[k]);
  if (member)
    path_push_key(p, member);
  else
    path_push_index(p, index);
}

/* Why the column is not written, or NULL when it is kept. */
static const char *not_kept(const struct eff *e, const char *col, char *why, size_t whysz)
{
  const struct spec *ks = src(e, K_KEEP), *ds = src(e, K_DROP);
  if (list_has(&ds->drop, col)) {
    snprintf(why, whysz, "is dropped by tables.%s.drop", ds->table);
    return why;
  }
  if (ks->has[K_KEEP] && !ks->keep_all && !list_has(&ks->keep, col)) {
    snprintf(why, whysz, "is not in tables.%s.keep", ks->table);
    return why;
  }
  return NULL;
}

static const char *renamed_to(const struct eff *e, const char *col)
{
  const struct spec *rs = src(e, K_RENAME);
  size_t i;
  for (i = 0; i < rs->nrenames; i++)
    if (strcmp(rs->renames[i].from, col) == 0)
      return rs->renames[i].to;
  return NULL;
}

/* Column-list checks shared by required, lookups and date_only. */
static enum app_result check_listed_kept(struct pctx *p, const struct eff *e, enum spec_key k,
                                         const struct strlist *l, const char *key)
{
  const struct spec *s = src(e, k);
  char why[160];
  size_t i;
  for (i = 0; i < l->n; i++) {
    if (key && strcmp(l->v[i], key) == 0)
      continue; /* the key is always written */
    if (not_kept(e, l->v[i], why, sizeof why)) {
      path_at(p, s->table, k, NULL, i);
      return perr(p, "column \"%s\" %s", l->v[i], why);
    }
  }
  return APP_OK;
}

/* Checks on the merged settings of one table. key is the primary key, or
 * NULL for "*" (whose key differs per table). */
static enum app_result cross_check(struct pctx *p, const struct eff *e, const char *key)
{
  const struct spec *ks = src(e, K_KEEP), *ds = src(e, K_DROP), *rs = src(e, K_RENAME),
                    *ms = src(e, K_MASK), *rl = src(e, K_RELATIONSHIPS), *mg = src(e, K_MESSAGES);
  char why[160];
  size_t i, j;

  for (i = 0; i < ds->drop.n; i++) {
    const char *col = ds->drop.v[i];
    if (key && strcmp(col, key) == 0) {
      path_at(p, ds->table, K_DROP, NULL, i);
      return perr(p, "the primary key \"%s\" cannot be dropped", key);
    }
    if (ks->has[K_KEEP] && !ks->keep_all && list_has(&ks->keep, col)) {
      path_at(p, ds->table, K_DROP, NULL, i);
      return perr(p, "\"%s\" is also in tables.%s.keep", col, ks->table);
    }
  }
  APP_RETURN_IF_FAILED(check_listed_kept(p, e, K_REQUIRED, &src(e, K_REQUIRED)->required, key));
  APP_RETURN_IF_FAILED(check_listed_kept(p, e, K_LOOKUPS, &src(e, K_LOOKUPS)->lookups, key));
  APP_RETURN_IF_FAILED(check_listed_kept(p, e, K_DATE_ONLY, &src(e, K_DATE_ONLY)->date_only, key));
  if (key) {
    const struct spec *ls = src(e, K_LOOKUPS), *dt = src(e, K_DATE_ONLY);
    for (i = 0; i < ls->lookups.n; i++)
      if (strcmp(ls->lookups.v[i], key) == 0) {
        path_at(p, ls->table, K_LOOKUPS, NULL, i);
        return perr(p, "\"%s\" is the primary key, not a lookup", key);
      }
    for (i = 0; i < dt->date_only.n; i++)
      if (strcmp(dt->date_only.v[i], key) == 0) {
        path_at(p, dt->table, K_DATE_ONLY, NULL, i);
        return perr(p, "\"%s\" is the primary key, not a date", key);
      }
  }

  for (i = 0; i < ms->nmasks; i++) {
    const char *col = ms->masks[i].column;
    if (key && strcmp(col, key) == 0) {
      path_at(p, ms->table, K_MASK, col, 0);
      return perr(p, "the primary key cannot be masked");
    }
    if (not_kept(e, col, why, sizeof why)) {
      path_at(p, ms->table, K_MASK, col, 0);
      return perr(p, "column \"%s\" %s", col, why);
    }
  }

  for (i = 0; i < rs->nrenames; i++) {
    const char *from = rs->renames[i].from, *to = rs->renames[i].to;
    const struct strlist *known[4];
    if (key && strcmp(from, key) == 0) {
      path_at(p, rs->table, K_RENAME, from, 0);
      return perr(p, "the primary key cannot be renamed (its property is always \"%s\")", key);
    }
    if (not_kept(e, from, why, sizeof why)) {
      path_at(p, rs->table, K_RENAME, from, 0);
      return perr(p, "column \"%s\" %s", from, why);
    }
    if (key && strcmp(to, key) == 0) {
      path_at(p, rs->table, K_RENAME, from, 0);
      return perr(p, "\"%s\" is the primary key property", to);
    }
    /* a rename onto the name of another column that is written as is */
    known[0] = ks->keep_all ? NULL : &ks->keep;
    known[1] = &src(e, K_REQUIRED)->required;
    known[2] = &src(e, K_DATE_ONLY)->date_only;
    known[3] = &src(e, K_LOOKUPS)->lookups;
    for (j = 0; j < 4; j++) {
      if (known[j] && list_has(known[j], to) && strcmp(to, from) != 0 && !renamed_to(e, to)) {
        path_at(p, rs->table, K_RENAME, from, 0);
        return perr(p, "\"%s\" is the name of another column of this table", to);
      }
    }
    for (j = 0; j < ms->nmasks; j++) {
      if (strcmp(ms->masks[j].column, to) == 0 && !renamed_to(e, to)) {
        path_at(p, rs->table, K_RENAME, from, 0);
        return perr(p, "\"%s\" is the name of another column of this table", to);
      }
    }
  }

  if (rl->has[K_RELATIONSHIPS] && mg->has[K_MESSAGES] &&
      !(mg->messages & (MSG_ASSOCIATE | MSG_DISASSOCIATE))) {
    path_pop(p, 0);
    path_push_key(p, "tables");
    path_push_key(p, rl->table);
    path_push_key(p, "relationships");
    return perr(p, "has no effect: tables.%s.messages has neither Associate nor Disassociate",
                mg->table);
  }
  path_pop(p, 0);
  return APP_OK;
}

static int cmp_column(const void *a, const void *b)
{
  return strcmp(((const struct docmap_column *)a)->name, ((const struct docmap_column *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_table(const void *a, const void *b)
{
  return strcmp(((const struct map_table *)a)->name, ((const struct map_table *)b)->name);
}

/* One column rule, created on first mention. */
static struct docmap_column *col_get(struct docmap_column *cols, size_t *n, const char *name)
{
  size_t i;
  for (i = 0; i < *n; i++)
    if (strcmp(cols[i].name, name) == 0)
      return &cols[i];
  memset(&cols[*n], 0, sizeof cols[*n]);
  cols[*n].name = name;
  return &cols[(*n)++];
}

static const char *sql_fill(struct arena *a, const char *tmpl, const char *table)
{
  size_t tl = strlen(table), n = 0;
  const char *s, *hole;
  char *out, *o;

  for (s = tmpl; (hole = strstr(s, "{table}")); s = hole + 7)
    n += (size_t)(hole - s) + tl;
  n += strlen(s);
  out = arena_alloc(a, n + 1);
  if (!out)
    return NULL;
  o = out;
  for (s = tmpl; (hole = strstr(s, "{table}")); s = hole + 7) {
    memcpy(o, s, (size_t)(hole - s));
    o += hole - s;
    memcpy(o, table, tl);
    o += tl;
  }
  memcpy(o, s, strlen(s) + 1);
  return out;
}

/* Build the runtime rules of a table from its merged settings. */
static void build_table(struct pctx *p, const struct eff *e, const char *name, struct map_table *t)
{
  const struct spec *ks = src(e, K_KEEP), *ds = src(e, K_DROP), *rq = src(e, K_REQUIRED),
                    *lk = src(e, K_LOOKUPS), *dt = src(e, K_DATE_ONLY), *rs = src(e, K_RENAME),
                    *ms = src(e, K_MASK), *tt = src(e, K_TTL), *sq = src(e, K_SQL_TABLE),
                    *mg = src(e, K_MESSAGES), *rl = src(e, K_RELATIONSHIPS),
                    *pi = src(e, K_POST_IMAGE);
  size_t max = (ks->keep_all ? 0 : ks->keep.n) + ds->drop.n + rq->required.n + lk->lookups.n +
               dt->date_only.n + rs->nrenames + ms->nmasks,
         n = 0, i;
  struct docmap_column *cols = pmem(p, max * sizeof *cols);
  bool star = strcmp(name, "*") == 0;

  memset(t, 0, sizeof *t);
  t->name = name;
  t->rules.keep_all = !ks->has[K_KEEP] || ks->keep_all;
  if (!t->rules.keep_all)
    for (i = 0; i < ks->keep.n; i++)
      col_get(cols, &n, ks->keep.v[i])->flags |= DOCMAP_COL_KEEP;
  for (i = 0; i < ds->drop.n; i++)
    col_get(cols, &n, ds->drop.v[i])->flags |= DOCMAP_COL_DROP;
  for (i = 0; i < rq->required.n; i++)
    col_get(cols, &n, rq->required.v[i])->flags |= DOCMAP_COL_REQUIRED;
  for (i = 0; i < lk->lookups.n; i++)
    col_get(cols, &n, lk->lookups.v[i])->flags |= DOCMAP_COL_LOOKUP;
  for (i = 0; i < dt->date_only.n; i++)
    col_get(cols, &n, dt->date_only.v[i])->flags |= DOCMAP_COL_DATE_ONLY;
  for (i = 0; i < rs->nrenames; i++)
    col_get(cols, &n, rs->renames[i].from)->rename = rs->renames[i].to;
  for (i = 0; i < ms->nmasks; i++) {
    struct docmap_column *c = col_get(cols, &n, ms->masks[i].column);
    c->mask = ms->masks[i].kind;
    c->redact_text = ms->masks[i].redact_text;
  }
  qsort(cols, n, sizeof *cols, cmp_column);
  t->rules.cols = cols;
  t->rules.ncols = n;
  t->rules.ttl_seconds = tt->ttl;
  t->rules.post_image = pi->post_image;
  t->messages = mg->has[K_MESSAGES] ? mg->messages : MSG_DEFAULT;
  t->all_relationships = !rl->has[K_RELATIONSHIPS] || rl->all_relationships;
  t->relationships = rl->relationships;
  t->sql_template = sq->sql_table ? sq->sql_table : "{table}";
  t->navs = e->own->navs;
  t->nnavs = e->own->nnavs;
  {
    /* keys, then one single-column entry per index */
    size_t nk = e->own->nkeys, ni = e->own->indexes.n, k;
    struct doc_altkey *all = pmem(p, (nk + ni ? nk + ni : 1) * sizeof *all);
    for (k = 0; k < nk; k++)
      all[k] = e->own->keys[k];
    for (k = 0; k < ni; k++) {
      all[nk + k].is_index = true;
      all[nk + k].name = e->own->indexes.v[k];
      all[nk + k].props = &e->own->indexes.v[k];
      all[nk + k].nprops = 1;
    }
    t->rules.altkeys = all;
    t->rules.naltkeys = nk + ni;
  }
  if (!star) {
    char set[MAP_MAX_NAME + 8];
    const char *key = e->own->primary_key;
    if (e->own->entity_set) {
      t->rules.entity_set = e->own->entity_set;
    } else {
      map_default_entity_set(name, set, sizeof set);
      t->rules.entity_set = pstr(p, set);
    }
    if (!key) {
      char *k = pmem(p, strlen(name) + 3);
      memcpy(k, name, strlen(name));
      memcpy(k + strlen(name), "id", 3);
      key = k;
    }
    t->rules.key_name = key;
    t->rules.sql_table = sql_fill(&p->cfg->mem, t->sql_template, name);
    if (!t->rules.sql_table) {
      LOG_ERROR("out of memory loading the mapping file");
      abort();
    }
  }
}

/* ---------------------------------------------------------- top level */

enum name_kind { NAME_TABLE, NAME_GUID, NAME_TEXT };

static enum app_result parse_name_list(struct pctx *p, const cJSON *v, bool allow_star,
                                       bool *out_star, struct strlist *out, enum name_kind kind)
{
  static const char *const whats[] = {"table logical name", "user id", "user agent substring"};
  const char *what = whats[kind];
  bool guids = kind == NAME_GUID;
  char got_[64];
  const cJSON *it;
  size_t i = 0, j;

  if (allow_star && cJSON_IsString(v) && strcmp(v->valuestring, "*") == 0) {
    *out_star = true;
    return APP_OK;
  }
  if (!cJSON_IsArray(v))
    return perr(p,
                allow_star ? "expected \"*\" or an array of %ss, got %s"
                           : "expected an array of %ss, got %s",
                what, GOT(v));
  out->n = (size_t)cJSON_GetArraySize(v);
  out->v = pmem(p, out->n * sizeof *out->v);
  for (it = v->child; it; it = it->next, i++) {
    size_t old = path_push_index(p, i);
    char *s;
    if (!cJSON_IsString(it))
      return perr(p, "expected a %s, got %s", what, GOT(it));
    if (guids && !is_guid_text(it->valuestring))
      return perr(p, "%s is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", GOT(it));
    if (kind == NAME_TABLE && !is_lower_ident(it->valuestring))
      return perr(p,
                  "%s is not a table logical name (lower-case letters, digits and '_', "
                  "starting with a letter)",
                  GOT(it));
    if (!it->valuestring[0])
      return perr(p, "empty %s", what);
    s = pmem(p, strlen(it->valuestring) + 1);
    memcpy(s, it->valuestring, strlen(it->valuestring) + 1);
    if (guids)
      for (j = 0; s[j]; j++)
        if (s[j] >= 'A' && s[j] <= 'F')
          s[j] = (char)(s[j] - 'A' + 'a'); /* change.h GUIDs are lower case */
    for (j = 0; j < i; j++)
      if (strcmp(out->v[j], s) == 0)
        return perr(p, "duplicate %s \"%.60s\"", what, s);
    out->v[i] = s;
    path_pop(p, old);
  }
  qsort(out->v, out->n, sizeof *out->v, cmp_str);
  return APP_OK;
}

static bool sorted_has(const struct strlist *l, const char *s)
{
  return l->n && bsearch(&s, l->v, l->n, sizeof *l->v, cmp_str) != NULL;
}

static enum app_result parse_echo(struct pctx *p, const cJSON *v)
{
  static const char *const keys[] = {"initiating_user_ids", "user_ids", "user_agent_contains",
                                     "comment"};
  char got_[64];
  const cJSON *it;

  APP_RETURN_IF_FAILED(expect_object(p, v, "an object"));
  APP_RETURN_IF_FAILED(check_keys(p, v, keys, 4));
  for (it = v->child; it; it = it->next) {
    size_t old = path_push_key(p, it->string);
    bool unused = false;
    if (strcmp(it->string, "initiating_user_ids") == 0)
      APP_RETURN_IF_FAILED(
          parse_name_list(p, it, false, &unused, &p->cfg->echo_initiating, NAME_GUID));
    else if (strcmp(it->string, "user_ids") == 0)
      APP_RETURN_IF_FAILED(parse_name_list(p, it, false, &unused, &p->cfg->echo_users, NAME_GUID));
    else if (strcmp(it->string, "user_agent_contains") == 0)
      APP_RETURN_IF_FAILED(parse_name_list(p, it, false, &unused, &p->cfg->echo_agents, NAME_TEXT));
    else if (!cJSON_IsString(it))
      return perr(p, "expected a string, got %s", GOT(it));
    path_pop(p, old);
  }
  return APP_OK;
}

static bool uses_hash(const struct map_table *t)
{
  size_t i;
  for (i = 0; i < t->rules.ncols; i++)
    if (t->rules.cols[i].mask == DOCMAP_MASK_HASH)
      return true;
  return false;
}

static enum app_result load_salt(struct pctx *p, const char *setting, config_lookup_fn lookup)
{
  const char *v = lookup ? lookup(setting) : getenv(setting);
  size_t n;

  path_pop(p, 0);
  path_push_key(p, "salt_setting");
  if (!v || !*v)
    return perr(p, "app setting \"%s\" is not set (it must hold the salt for \"hash\" masking)",
                setting);
  n = strlen(v);
  if (n < MAP_MIN_SALT_BYTES)
    return perr(p, "app setting \"%s\" is shorter than %d bytes; use a long random salt", setting,
                MAP_MIN_SALT_BYTES);
  p->cfg->salt = pmem(p, n);
  memcpy(p->cfg->salt, v, n);
  p->cfg->salt_len = n;
  path_pop(p, 0);
  return APP_OK;
}

/* JSON syntax errors: cJSON reports only where it stopped. */
static enum app_result syntax_error(struct pctx *p, const char *text, size_t len, size_t off)
{
  size_t line = 1, col = 1, i;
  for (i = 0; i < off && i < len; i++) {
    if (text[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  for (i = off; i < len && strchr(" \t\r\n", text[i]); i++)
    ;
  /* cJSON's position is where it gave up, which can be a character or two
   * past the real mistake: say "near" */
  if (i >= len)
    return perr(p, "not valid JSON: the text ends early (near line %zu, column %zu)", line, col);
  return perr(p, "not valid JSON (near line %zu, column %zu)", line, col);
}

static enum app_result parse_doc(struct pctx *p, const cJSON *root, config_lookup_fn lookup)
{
  static const char *const top_keys[] = {"version",       "comment",     "salt_setting",
                                         "accept_tables", "skip_tables", "echo_suppression",
                                         "tables"};
  char got_[64];
  struct map_config *cfg = p->cfg;
  const cJSON *tables, *it, *salt_setting = NULL;
  struct spec *specs, *star_spec = NULL;
  size_t nspecs, i, k;
  bool need_salt = false;

  if (!cJSON_IsObject(root))
    return perr(p, "expected an object at the top level, got %s", GOT(root));
  APP_RETURN_IF_FAILED(check_keys(p, root, top_keys, sizeof top_keys / sizeof top_keys[0]));
  cfg->all_tables = true;
  for (it = root->child; it; it = it->next) {
    size_t old = path_push_key(p, it->string);
    if (strcmp(it->string, "version") == 0) {
      if (!cJSON_IsNumber(it) || it->valuedouble != 1)
        return perr(p, "expected 1, got %s", GOT(it));
    } else if (strcmp(it->string, "comment") == 0) {
      if (!cJSON_IsString(it))
        return perr(p, "expected a string, got %s", GOT(it));
    } else if (strcmp(it->string, "salt_setting") == 0) {
      if (!cJSON_IsString(it) || !is_ident(it->valuestring, strlen(it->valuestring)))
        return perr(p, "expected the name of an app setting (letters, digits and '_'), got %s",
                    GOT(it));
      salt_setting = it;
    } else if (strcmp(it->string, "accept_tables") == 0) {
      cfg->all_tables = false;
      APP_RETURN_IF_FAILED(
          parse_name_list(p, it, true, &cfg->all_tables, &cfg->accept, NAME_TABLE));
    } else if (strcmp(it->string, "skip_tables") == 0) {
      bool unused = false;
      APP_RETURN_IF_FAILED(parse_name_list(p, it, false, &unused, &cfg->skip, NAME_TABLE));
    } else if (strcmp(it->string, "echo_suppression") == 0) {
      APP_RETURN_IF_FAILED(parse_echo(p, it));
    }
    path_pop(p, old);
  }
  for (i = 0; i < cfg->skip.n; i++)
    if (sorted_has(&cfg->accept, cfg->skip.v[i])) {
      path_push_key(p, "skip_tables");
      return perr(p, "\"%s\" is also in accept_tables", cfg->skip.v[i]);
    }

  tables = cJSON_GetObjectItemCaseSensitive(root, "tables");
  if (!tables)
    return perr(p, "missing key \"tables\" (use {\"tables\": {\"*\": {}}} to accept every "
                   "table)");
  path_push_key(p, "tables");
  APP_RETURN_IF_FAILED(expect_object(p, tables, "an object of table logical name: settings"));
  nspecs = (size_t)cJSON_GetArraySize(tables);
  if (!nspecs)
    return perr(p, "no table is configured (add \"*\" to accept every table)");
  specs = pmem(p, nspecs * sizeof *specs);
  memset(specs, 0, nspecs * sizeof *specs);
  i = 0;
  for (it = tables->child; it; it = it->next, i++) {
    size_t old = path_push_key(p, it->string);
    const cJSON *prev;
    for (prev = tables->child; prev != it; prev = prev->next)
      if (strcmp(prev->string, it->string) == 0)
        return perr(p, "duplicate table");
    if (strcmp(it->string, "*") != 0 && !is_lower_ident(it->string))
      return perr(p,
                  "\"%.60s\" is not a table logical name (lower-case letters, digits and "
                  "'_', starting with a letter)",
                  it->string);
    specs[i].table = pstr(p, it->string);
    APP_RETURN_IF_FAILED(parse_table(p, it, &specs[i]));
    if (strcmp(it->string, "*") == 0)
      star_spec = &specs[i];
    else if (sorted_has(&cfg->skip, it->string))
      return perr(p, "the table is also in skip_tables");
    else if (!cfg->all_tables && !sorted_has(&cfg->accept, it->string))
      return perr(p, "the table is not in accept_tables");
    path_pop(p, old);
  }
  path_pop(p, 0);
  for (i = 0; i < cfg->accept.n; i++) {
    bool listed = false;
    for (k = 0; k < nspecs; k++)
      if (strcmp(specs[k].table, cfg->accept.v[i]) == 0)
        listed = true;
    if (!listed && !star_spec) {
      path_push_key(p, "accept_tables");
      return perr(p, "\"%s\" has no entry in tables and there is no \"*\" default",
                  cfg->accept.v[i]);
    }
  }

  /* merge "*" into each listed table, check, build */
  cfg->ntables = nspecs - (star_spec ? 1 : 0);
  cfg->tables = pmem(p, (cfg->ntables ? cfg->ntables : 1) * sizeof *cfg->tables);
  k = 0;
  for (i = 0; i < nspecs; i++) {
    struct eff e;
    const char *key;
    char keybuf[MAP_MAX_NAME + 3];
    if (&specs[i] == star_spec) {
      e.own = star_spec;
      e.star = NULL;
      APP_RETURN_IF_FAILED(cross_check(p, &e, NULL));
      cfg->star = pmem(p, sizeof *cfg->star);
      build_table(p, &e, "*", cfg->star);
      need_salt |= uses_hash(cfg->star);
      continue;
    }
    e.own = &specs[i];
    e.star = star_spec;
    key = specs[i].primary_key;
    if (!key) {
      snprintf(keybuf, sizeof keybuf, "%sid", specs[i].table);
      key = keybuf;
    }
    APP_RETURN_IF_FAILED(cross_check(p, &e, key));
    build_table(p, &e, specs[i].table, &cfg->tables[k]);
    need_salt |= uses_hash(&cfg->tables[k]);
    k++;
  }
  qsort(cfg->tables, cfg->ntables, sizeof *cfg->tables, cmp_table);
  for (i = 0; i + 1 < cfg->ntables; i++)
    for (k = i + 1; k < cfg->ntables; k++)
      if (strcmp(cfg->tables[i].rules.entity_set, cfg->tables[k].rules.entity_set) == 0) {
        path_push_key(p, "tables");
        path_push_key(p, cfg->tables[k].name);
        path_push_key(p, "entity_set");
        return perr(p, "\"%s\" is also the entity set of table \"%s\"",
                    cfg->tables[k].rules.entity_set, cfg->tables[i].name);
      }

  if (need_salt) {
    if (!salt_setting) {
      for (i = 0; i < nspecs; i++)
        for (k = 0; k < specs[i].nmasks; k++)
          if (specs[i].masks[k].kind == DOCMAP_MASK_HASH) {
            path_at(p, specs[i].table, K_MASK, specs[i].masks[k].column, 0);
            return perr(p, "\"hash\" needs \"salt_setting\" at the top level (the name of the "
                           "app setting that holds the salt)");
          }
    }
    APP_RETURN_IF_FAILED(load_salt(p, salt_setting->valuestring, lookup));
  }
  for (i = 0; i < cfg->ntables; i++) {
    cfg->tables[i].rules.salt = cfg->salt;
    cfg->tables[i].rules.salt_len = cfg->salt_len;
  }
  if (cfg->star) {
    cfg->star->rules.salt = cfg->salt;
    cfg->star->rules.salt_len = cfg->salt_len;
  }
  return APP_OK;
}

static const char *entity_set_of(const void *ctx, const char *table, struct arena *a);
static const struct map_table *table_rules(const struct map_config *cfg, const char *name,
                                           bool *listed);

/* Every navigation property's table must be one the mapping accepts: an
 * $expand must never return a record that GET <set>(<id>) would refuse. */
static enum app_result check_navigation(struct pctx *p)
{
  size_t i, k;
  for (i = 0; i < p->cfg->ntables; i++) {
    const struct map_table *t = &p->cfg->tables[i];
    for (k = 0; k < t->nnavs; k++) {
      bool listed;
      const struct doc_altkey *ix;
      if (table_rules(p->cfg, t->navs[k].table, &listed) &&
          (!t->navs[k].collection ||
           map_index(p->cfg, t->navs[k].table, t->navs[k].lookup, &ix) == APP_OK))
        continue;
      if (table_rules(p->cfg, t->navs[k].table, &listed)) {
        path_push_key(p, "tables");
        path_push_key(p, t->name);
        path_push_key(p, "navigation");
        path_push_key(p, t->navs[k].name);
        path_push_key(p, "referencing");
        return perr(p,
                    "a collection needs an index on the referencing column: add \"%s\" to "
                    "tables.%s.indexes",
                    t->navs[k].lookup, t->navs[k].table);
      }
      path_push_key(p, "tables");
      path_push_key(p, t->name);
      path_push_key(p, "navigation");
      path_push_key(p, t->navs[k].name);
      path_push_key(p, "table");
      return perr(p,
                  "table \"%s\" is not replicated by this mapping (add it to \"tables\" or "
                  "accept_tables), so its records cannot be expanded",
                  t->navs[k].table);
    }
  }
  return APP_OK;
}

enum app_result map_config_parse(const char *text, size_t len, const char *name,
                                 config_lookup_fn lookup, struct map_config **out,
                                 struct app_err *err)
{
  struct pctx p;
  struct map_config *cfg = xcalloc(1, sizeof *cfg);
  cJSON *root = NULL;
  const char *end = NULL;
  enum app_result r;
  size_t i, bad;

  *out = NULL;
  memset(&p, 0, sizeof p);
  p.file = name ? name : "mapping";
  p.err = err;
  p.cfg = cfg;
  arena_init(&cfg->mem, 0);
  cfg->source = pstr(&p, p.file);

  for (i = 0; i < len && strchr(" \t\r\n", text[i]); i++)
    ;
  if (i == len) {
    r = perr(&p, "file is empty");
    goto out;
  }
  if (len > MAP_MAX_FILE_BYTES) {
    r = perr(&p, "file is larger than %u bytes", MAP_MAX_FILE_BYTES);
    goto out;
  }
  if (!json_utf8_valid(text, len, &bad)) {
    r = perr(&p, "invalid UTF-8 at byte offset %zu", bad);
    goto out;
  }
  /* cJSON ends strings at an escaped NUL; refuse rather than truncate */
  for (i = 0; i + 6 <= len; i++)
    if (text[i] == '\\' && strncasecmp(text + i + 1, "u0000", 5) == 0) {
      r = perr(&p, "\\u0000 is not allowed (byte offset %zu)", i);
      goto out;
    }
  root = cJSON_ParseWithLengthOpts(text, len, &end, false);
  if (!root) {
    r = syntax_error(&p, text, len, end ? (size_t)(end - text) : 0);
    goto out;
  }
  for (i = (size_t)(end - text); i < len; i++)
    if (!strchr(" \t\r\n", text[i])) {
      r = syntax_error(&p, text, len, i);
      goto out;
    }
  r = parse_doc(&p, root, lookup);
  if (r == APP_OK)
    r = check_navigation(&p);
  if (r != APP_OK)
    goto out;
  for (i = 0; i < cfg->ntables; i++) {
    cfg->tables[i].rules.entity_set_of = entity_set_of;
    cfg->tables[i].rules.ctx = cfg;
  }
  if (cfg->star) {
    cfg->star->rules.entity_set_of = entity_set_of;
    cfg->star->rules.ctx = cfg;
  }
  *out = cfg;
  cfg = NULL;
out:
  cJSON_Delete(root);
  map_config_free(cfg);
  return r;
}

enum app_result map_config_default(struct map_config **out, struct app_err *err)
{
  static const char builtin[] = "{\"tables\": {\"*\": {}}}";
  enum app_result r =
      map_config_parse(builtin, sizeof builtin - 1, "built-in defaults", NULL, out, err);
  return r;
}

static enum app_result read_file(const char *path, char **out_text, size_t *out_len,
                                 struct app_err *err)
{
  int fd = -1;
  struct stat st;
  char *text = NULL;
  size_t got = 0;
  enum app_result r = APP_OK;
  char ebuf[128];

  *out_text = NULL;
  *out_len = 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r = app_err_set(err, APP_ERR_IO, "%s: cannot open: %s", path,
                    strerror_r(errno, ebuf, sizeof ebuf));
    goto out;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    r = app_err_set(err, APP_ERR_IO, "%s: not a regular file", path);
    goto out;
  }
  if ((uint64_t)st.st_size > MAP_MAX_FILE_BYTES) {
    r = app_err_set(err, APP_ERR_CONFIG, "%s: file is larger than %u bytes", path,
                    MAP_MAX_FILE_BYTES);
    goto out;
  }
  text = xmalloc((size_t)st.st_size + 1);
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r = app_err_set(err, APP_ERR_IO, "%s: cannot read: %s", path,
                      strerror_r(errno, ebuf, sizeof ebuf));
      goto out;
    }
    if (n == 0)
      break; /* shrank while reading: parse what is there */
    got += (size_t)n;
  }
  text[got] = '\0';
  *out_text = text;
  *out_len = got;
  text = NULL;
out:
  free(text);
  if (fd >= 0)
    close(fd);
  return r;
}

enum app_result map_config_load(const char *path, config_lookup_fn lookup, struct map_config **out,
                                struct app_err *err)
{
  char *text = NULL;
  size_t len = 0;
  enum app_result r;

  *out = NULL;
  r = read_file(path, &text, &len, err);
  if (r == APP_OK)
    r = map_config_parse(text, len, path, lookup, out, err);
  free(text);
  return r;
}

enum app_result map_config_load_settings(const struct app_config *settings, config_lookup_fn lookup,
                                         struct map_config **out, struct app_err *err)
{
  const char *root = settings->app_root && *settings->app_root ? settings->app_root : NULL;
  const char *file = settings->mapping_file ? settings->mapping_file : "";
  char path[4096];
  int n;

  *out = NULL;
  if (*file) {
    if (file[0] == '/' || !root)
      n = snprintf(path, sizeof path, "%s", file);
    else
      n = snprintf(path, sizeof path, "%s/%s", root, file);
    if (n < 0 || (size_t)n >= sizeof path)
      return app_err_set(err, APP_ERR_CONFIG, "setting CDC_MAPPING_FILE: path is too long");
    return map_config_load(path, lookup, out, err);
  }
  n = snprintf(path, sizeof path, "%s/mapping.json", root ? root : ".");
  if (n < 0 || (size_t)n >= sizeof path)
    return app_err_set(err, APP_ERR_CONFIG, "setting FUNCTIONS_APP_ROOT_PATH: path is too long");
  if (access(path, F_OK) == 0)
    return map_config_load(path, lookup, out, err);
  return map_config_default(out, err);
}

const char *map_config_source(const struct map_config *cfg)
{
  return cfg->source;
}

void map_config_free(struct map_config *cfg)
{
  if (!cfg)
    return;
  if (cfg->salt)
    OPENSSL_cleanse(cfg->salt, cfg->salt_len);
  arena_cleanup(&cfg->mem);
  free(cfg);
}

/* ------------------------------------------------------------ runtime */

const char *map_verdict_str(enum map_verdict v)
{
  switch (v) {
  case MAP_ACCEPT: return "accept";
  case MAP_SKIP_TABLE: return "skip-table";
  case MAP_SKIP_MESSAGE: return "skip-message";
  case MAP_SKIP_ECHO: return "skip-echo";
  case MAP_SKIP_RELATIONSHIP: return "skip-relationship";
  }
  return "unknown";
}

static const struct map_table *listed_table(const struct map_config *cfg, const char *name)
{
  size_t lo = 0, hi = cfg->ntables;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, cfg->tables[mid].name);
    if (c == 0)
      return &cfg->tables[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* The rules for a table: its own entry, or "*" when that applies. */
static const struct map_table *table_rules(const struct map_config *cfg, const char *name,
                                           bool *out_listed)
{
  const struct map_table *t = listed_table(cfg, name);
  *out_listed = t != NULL;
  if (t)
    return t;
  if (!cfg->star || sorted_has(&cfg->skip, name))
    return NULL;
  if (!cfg->all_tables && !sorted_has(&cfg->accept, name))
    return NULL;
  return cfg->star;
}

static const char *entity_set_of(const void *ctx, const char *table, struct arena *a)
{
  const struct map_config *cfg = ctx;
  const struct map_table *t = listed_table(cfg, table);
  size_t n = strlen(table) + 4;
  char *out;

  if (t)
    return t->rules.entity_set;
  out = arena_alloc(a, n);
  if (!out)
    return NULL;
  map_default_entity_set(table, out, n);
  return out;
}

/* Fill the per-table names of an unlisted table that inherits "*". */
static bool unlisted_rules(const struct map_table *star, const char *table, struct arena *a,
                           struct docmap_rules *out)
{
  size_t n = strlen(table);
  char *set = arena_alloc(a, n + 4), *key = arena_alloc(a, n + 3);

  *out = star->rules;
  if (!set || !key)
    return false;
  map_default_entity_set(table, set, n + 4);
  memcpy(key, table, n);
  memcpy(key + n, "id", 3);
  out->entity_set = set;
  out->key_name = key;
  out->sql_table = sql_fill(a, star->sql_template, table);
  return out->sql_table != NULL;
}

static bool contains_ci(const char *hay, const char *needle)
{
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0)
      return true;
  return false;
}

static bool is_echo(const struct map_config *cfg, const struct cdc_origin *o)
{
  size_t i;
  if (o->initiating_user_id && sorted_has(&cfg->echo_initiating, o->initiating_user_id))
    return true;
  if (o->user_id && sorted_has(&cfg->echo_users, o->user_id))
    return true;
  if (o->initiating_user_agent)
    for (i = 0; i < cfg->echo_agents.n; i++)
      if (contains_ci(o->initiating_user_agent, cfg->echo_agents.v[i]))
        return true;
  return false;
}

enum app_result map_change(const struct map_config *cfg, struct arena *a,
                           const struct cdc_change *ch, enum map_verdict *out_verdict,
                           struct doc *out, struct app_err *err)
{
  const struct map_table *t;
  struct docmap_rules rules;
  bool listed;
  size_t i;

  *out_verdict = MAP_SKIP_TABLE;
  /* a truncated context of an unknown message may name no table: nothing
   * can accept it, and it is not poison either */
  if (!ch->table || !*ch->table)
    return APP_OK;
  t = table_rules(cfg, ch->table, &listed);
  if (!t)
    return APP_OK;
  if (!(change_message_bit(ch) & t->messages)) {
    *out_verdict = MAP_SKIP_MESSAGE;
    return APP_OK;
  }
  if (is_echo(cfg, &ch->origin)) {
    *out_verdict = MAP_SKIP_ECHO;
    return APP_OK;
  }
  /* the filters passed: from here on, bad input is poison. Table and id
   * end up in keys and names, so hold them to their shapes. */
  if (!is_lower_ident(ch->table))
    return app_err_set(err, APP_ERR_INPUT, "change for table \"%.60s\": not a logical name",
                       ch->table);
  if (!ch->id || !is_guid_text(ch->id))
    return app_err_set(err, APP_ERR_INPUT, "table %s: record id \"%.60s\" is not a GUID", ch->table,
                       ch->id ? ch->id : "(none)");
  /* A truncated context lost its Relationship with the InputParameters:
   * the filter cannot be applied, and the record gets a re-read marker
   * (harmless if the relationship was not wanted) instead of becoming
   * poison for a part Dataverse dropped. */
  if ((ch->op == CDC_OP_ASSOCIATE || ch->op == CDC_OP_DISASSOCIATE) && !ch->needs_reread) {
    bool kept = t->all_relationships;
    if (!ch->relationship || !*ch->relationship)
      return app_err_set(err, APP_ERR_INPUT, "table %s record %s: %s without a relationship name",
                         ch->table, ch->id, cdc_op_name(ch->op));
    if (!is_ident(ch->relationship, strlen(ch->relationship)))
      return app_err_set(err, APP_ERR_INPUT,
                         "table %s record %s: relationship \"%.60s\" is not a schema name",
                         ch->table, ch->id, ch->relationship);
    for (i = 0; !kept && i < t->relationships.n; i++)
      kept = strcasecmp(t->relationships.v[i], ch->relationship) == 0;
    if (!kept) {
      *out_verdict = MAP_SKIP_RELATIONSHIP;
      return APP_OK;
    }
  }
  if (listed) {
    rules = t->rules;
  } else if (!unlisted_rules(t, ch->table, a, &rules)) {
    return app_err_set(err, APP_ERR_LIMIT,
                       "table %s record %s: memory limit of the invocation reached while mapping",
                       ch->table, ch->id);
  }
  APP_RETURN_IF_FAILED(docmap_build(&rules, a, ch, out, err));
  *out_verdict = MAP_ACCEPT;
  return APP_OK;
}

/* Names for a table no rule applies to (map_table_info still answers). */
static const struct map_table no_table = {.sql_template = "{table}"};

enum app_result map_table_info(const struct map_config *cfg, struct arena *a, const char *table,
                               struct map_table_info *out, struct app_err *err)
{
  const struct map_table *t;
  struct docmap_rules rules;
  bool listed;

  memset(out, 0, sizeof *out);
  if (!table || !is_lower_ident(table))
    return app_err_set(err, APP_ERR_INPUT, "\"%.60s\" is not a table logical name",
                       table ? table : "(none)");
  t = table_rules(cfg, table, &listed);
  out->accepted = t != NULL;
  if (listed) {
    rules = t->rules;
  } else if (!unlisted_rules(t ? t : &no_table, table, a, &rules)) {
    return app_err_set(err, APP_ERR_LIMIT, "memory limit reached");
  }
  out->entity_set = rules.entity_set;
  out->key_name = rules.key_name;
  out->sql_table = rules.sql_table;
  out->ttl_seconds = t ? rules.ttl_seconds : 0;
  out->select = NULL;
  if (t && !rules.keep_all) {
    /* the kept columns, the key, and what the version needs */
    size_t n = strlen(rules.key_name) + sizeof ",versionnumber,modifiedon";
    size_t i;
    char *sel, *p;
    for (i = 0; i < rules.ncols; i++)
      n += strlen(rules.cols[i].name) + 9;
    sel = arena_alloc(a, n);
    if (!sel)
      return app_err_set(err, APP_ERR_LIMIT, "memory limit reached");
    p = sel + snprintf(sel, n, "%s,versionnumber,modifiedon", rules.key_name);
    for (i = 0; i < rules.ncols; i++) {
      const struct docmap_column *c = &rules.cols[i];
      if (!(c->flags & DOCMAP_COL_KEEP) || !strcmp(c->name, rules.key_name) ||
          !strcmp(c->name, "versionnumber") || !strcmp(c->name, "modifiedon"))
        continue;
      p += snprintf(p, n - (size_t)(p - sel), (c->flags & DOCMAP_COL_LOOKUP) ? ",_%s_value" : ",%s",
                    c->name);
    }
    out->select = sel;
  }
  return APP_OK;
}

static bool try_candidate(const struct map_config *cfg, const char *entity_set, const char *cand,
                          size_t len, char *out, size_t outsz)
{
  char name[MAP_MAX_NAME + 1], plural[MAP_MAX_NAME + 8];
  bool listed;
  const struct map_table *t;

  if (len == 0 || len > MAP_MAX_NAME || len + 1 > outsz)
    return false;
  memcpy(name, cand, len);
  name[len] = '\0';
  if (!is_lower_ident(name) || !map_default_entity_set(name, plural, sizeof plural) ||
      strcmp(plural, entity_set) != 0)
    return false;
  t = table_rules(cfg, name, &listed);
  if (!t)
    return false;
  /* a listed table with its own entity_set does not answer to the plural */
  if (listed && strcmp(t->rules.entity_set, entity_set) != 0)
    return false;
  memcpy(out, name, len + 1);
  return true;
}

enum app_result map_table_for_entity_set(const struct map_config *cfg, const char *entity_set,
                                         char *out, size_t outsz)
{
  size_t i, n = strlen(entity_set);
  char stem[MAP_MAX_NAME + 2];

  for (i = 0; i < cfg->ntables; i++)
    if (strcmp(cfg->tables[i].rules.entity_set, entity_set) == 0) {
      if (strlen(cfg->tables[i].name) + 1 > outsz)
        return APP_ERR_NOTFOUND;
      memcpy(out, cfg->tables[i].name, strlen(cfg->tables[i].name) + 1);
      return APP_OK;
    }
  if (n < 2 || n > MAP_MAX_NAME)
    return APP_ERR_NOTFOUND;
  /* undo the plural rules, most specific first */
  if (n > 3 && strcmp(entity_set + n - 3, "ies") == 0) {
    memcpy(stem, entity_set, n - 3);
    stem[n - 3] = 'y';
    if (try_candidate(cfg, entity_set, stem, n - 2, out, outsz))
      return APP_OK;
  }
  if (n > 2 && strcmp(entity_set + n - 2, "es") == 0 &&
      try_candidate(cfg, entity_set, entity_set, n - 2, out, outsz))
    return APP_OK;
  if (entity_set[n - 1] == 's' && try_candidate(cfg, entity_set, entity_set, n - 1, out, outsz))
    return APP_OK;
  return APP_ERR_NOTFOUND;
}

enum app_result map_navigation(const struct map_config *cfg, const char *table, const char *name,
                               struct map_nav *out)
{
  const struct map_table *t;
  bool listed = false;
  size_t i;

  t = table && is_lower_ident(table) ? table_rules(cfg, table, &listed) : NULL;
  if (!t || !listed || !name)
    return APP_ERR_NOTFOUND;
  for (i = 0; i < t->nnavs; i++)
    if (strcmp(t->navs[i].name, name) == 0) {
      *out = t->navs[i];
      return APP_OK;
    }
  return APP_ERR_NOTFOUND;
}

enum app_result map_altkey(const struct map_config *cfg, const char *table, const char *const *cols,
                           size_t ncols, const struct doc_altkey **out)
{
  const struct map_table *t;
  bool listed = false;
  size_t i, k, m;

  t = table && is_lower_ident(table) ? table_rules(cfg, table, &listed) : NULL;
  if (!t || !listed)
    return APP_ERR_NOTFOUND;
  for (i = 0; i < t->rules.naltkeys; i++) {
    const struct doc_altkey *key = &t->rules.altkeys[i];
    size_t same = 0;
    if (key->is_index || key->nprops != ncols)
      continue;
    for (k = 0; k < ncols; k++)
      for (m = 0; m < ncols; m++)
        same += strcmp(key->props[k], cols[m]) == 0;
    if (same == ncols) {
      *out = key;
      return APP_OK;
    }
  }
  return APP_ERR_NOTFOUND;
}

enum app_result map_index(const struct map_config *cfg, const char *table, const char *column,
                          const struct doc_altkey **out)
{
  const struct map_table *t;
  bool listed = false;
  size_t i;

  t = table && is_lower_ident(table) ? table_rules(cfg, table, &listed) : NULL;
  if (!t || !listed)
    return APP_ERR_NOTFOUND;
  /* an index, else a single-column alternate key on that column */
  for (i = 0; i < t->rules.naltkeys; i++)
    if (t->rules.altkeys[i].is_index && strcmp(t->rules.altkeys[i].name, column) == 0) {
      *out = &t->rules.altkeys[i];
      return APP_OK;
    }
  for (i = 0; i < t->rules.naltkeys; i++)
    if (!t->rules.altkeys[i].is_index && t->rules.altkeys[i].nprops == 1 &&
        strcmp(t->rules.altkeys[i].props[0], column) == 0) {
      *out = &t->rules.altkeys[i];
      return APP_OK;
    }
  return APP_ERR_NOTFOUND;
}

/* he_msg.c - message bodies, sidecars, Dataverse properties, --vary. */
#include "he_msg.h"

#include "common/json.h"
#include "he_nj.h"
#include "he_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define SIDECAR_SUFFIX  ".props.json"
#define SIDECAR_MAX     (1024 * 1024)
#define SB_STANDARD_MAX 262144

static const char dv_claims[] = "http://schemas.microsoft.com/xrm/2011/Claims/";

void he_msgset_init(struct he_msgset *s, size_t max_body)
{
  memset(s, 0, sizeof *s);
  s->max_body = max_body;
}

static void msg_cleanup(struct he_msg *m)
{
  size_t i;
  free(m->path);
  free(m->body);
  free(m->spans);
  for (i = 0; i < m->n_owned; i++)
    free(m->owned[i]);
}

void he_msgset_cleanup(struct he_msgset *s)
{
  size_t i;
  if (!s)
    return;
  for (i = 0; i < s->n; i++)
    msg_cleanup(&s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

static const char *own(struct he_msg *m, char *s)
{
  APP_ASSERT(m->n_owned < sizeof m->owned / sizeof m->owned[0]);
  m->owned[m->n_owned++] = s;
  return s;
}

/* Sidecar keys that are plain strings, and where they go. */
static const char **sidecar_slot(struct he_msg_props *p, const char *key)
{
  static const struct {
    const char *key;
    size_t off;
  } slots[] = {
      {"MessageId", offsetof(struct he_msg_props, message_id)},
      {"ContentType", offsetof(struct he_msg_props, content_type)},
      {"CorrelationId", offsetof(struct he_msg_props, correlation_id)},
      {"SessionId", offsetof(struct he_msg_props, session_id)},
      {"Subject", offsetof(struct he_msg_props, subject)},
      {"Label", offsetof(struct he_msg_props, subject)},
      {"To", offsetof(struct he_msg_props, to)},
      {"ReplyTo", offsetof(struct he_msg_props, reply_to)},
      {"ReplyToSessionId", offsetof(struct he_msg_props, reply_to_session_id)},
      {"PartitionKey", offsetof(struct he_msg_props, partition_key)},
      {"TransactionPartitionKey", offsetof(struct he_msg_props, transaction_partition_key)},
      {"DeadLetterSource", offsetof(struct he_msg_props, dead_letter_source)},
  };
  size_t i;
  for (i = 0; i < sizeof slots / sizeof slots[0]; i++)
    if (!strcasecmp(slots[i].key, key))
      return (const char **)((char *)p + slots[i].off);
  return NULL;
}

static enum app_result parse_sidecar(struct he_msg *m, const char *path, struct app_err *err)
{
  enum app_result r;
  struct arena a;
  struct json *root = NULL;
  const struct json *c;
  struct buf props;
  char *text = NULL;
  size_t len = 0;

  arena_init(&a, 16 * SIDECAR_MAX);
  buf_init(&props, SIDECAR_MAX);
  r = he_file_read(path, SIDECAR_MAX, &text, &len, err);
  if (r != APP_OK)
    goto out;
  r = json_parse(&a, text, len, 16, &root, err);
  if (r != APP_OK) {
    app_err_wrap(err, "%s", path);
    goto out;
  }
  if (root->type != JSON_OBJECT) {
    r = app_err_set(err, APP_ERR_INPUT, "%s: expected a JSON object of message properties", path);
    goto out;
  }
  for (c = root->child; c; c = c->next) {
    const char **slot = sidecar_slot(&m->props, c->key);
    if (slot) {
      if (c->type == JSON_NULL)
        continue;
      if (c->type != JSON_STRING) {
        r = app_err_set(err, APP_ERR_INPUT, "%s: \"%s\" must be a string", path, c->key);
        goto out;
      }
      *slot = own(m, xstrndup(c->str, c->len));
    } else if (!strcasecmp(c->key, "TimeToLive")) {
      int64_t secs;
      m->props.ttl_set = true;
      if (c->type == JSON_NUMBER && json_number_i64(c, &secs) && secs > 0 &&
          secs < 922337203685LL) {
        m->props.ttl_ms = secs * 1000;
      } else if (c->type == JSON_STRING && !strcasecmp(c->str, "max")) {
        m->props.ttl_ms = -1;
      } else if (c->type == JSON_STRING && he_parse_timespan_ms(c->str, &m->props.ttl_ms) &&
                 m->props.ttl_ms > 0) {
        /* TimeSpan text such as "1.00:00:00" */
      } else {
        r = app_err_set(err, APP_ERR_INPUT,
                        "%s: \"TimeToLive\" must be positive seconds, a TimeSpan such as "
                        "\"01:00:00\", or \"max\"",
                        path);
        goto out;
      }
    } else if (!strcasecmp(c->key, "ApplicationProperties") ||
               !strcasecmp(c->key, "UserProperties")) {
      const struct json *p;
      if (c->type != JSON_OBJECT) {
        r = app_err_set(err, APP_ERR_INPUT, "%s: \"%s\" must be an object", path, c->key);
        goto out;
      }
      /* Service Bus application properties are scalars (string, number,
       * bool, null); written the way Newtonsoft writes a dictionary */
      buf_reset(&props);
      if (buf_append_char(&props, '{') != APP_OK)
        goto toobig;
      for (p = c->child; p; p = p->next) {
        if (p->type == JSON_OBJECT || p->type == JSON_ARRAY) {
          r = app_err_set(err, APP_ERR_INPUT,
                          "%s: application property \"%s\" must be a string, number, boolean "
                          "or null (Service Bus allows no nested values)",
                          path, p->key);
          goto out;
        }
        if ((p != c->child && buf_append_char(&props, ',') != APP_OK) ||
            he_nj_str(&props, p->key, p->key_len) != APP_OK ||
            buf_append_char(&props, ':') != APP_OK)
          goto toobig;
        if ((p->type == JSON_STRING ? he_nj_str(&props, p->str, p->len) : json_write(&props, p)) !=
            APP_OK)
          goto toobig;
      }
      if (buf_append_char(&props, '}') != APP_OK)
        goto toobig;
      m->props.app_props = own(m, buf_steal(&props, NULL));
    } else {
      r = app_err_set(err, APP_ERR_INPUT,
                      "%s: unknown message property \"%s\" (known: MessageId, ContentType, "
                      "CorrelationId, SessionId, Subject/Label, To, ReplyTo, ReplyToSessionId, "
                      "PartitionKey, TransactionPartitionKey, DeadLetterSource, TimeToLive, "
                      "ApplicationProperties)",
                      path, c->key);
      goto out;
    }
  }
  r = APP_OK;
  goto out;
toobig:
  r = app_err_set(err, APP_ERR_LIMIT, "%s: properties larger than %d bytes", path, SIDECAR_MAX);
out:
  free(text);
  buf_cleanup(&props);
  arena_cleanup(&a);
  return r;
}

static bool find_ci(const char *hay, size_t n, const char *needle, size_t k, size_t from,
                    size_t *out)
{
  size_t i;
  for (i = from; i + k <= n; i++) {
    if (strncasecmp(hay + i, needle, k) == 0) {
      *out = i;
      return true;
    }
  }
  return false;
}

static void add_span(struct he_msg *m, size_t *cap, size_t off, size_t len, int64_t ms,
                     bool is_date)
{
  if (m->n_spans == *cap) {
    *cap = *cap ? *cap * 2 : 8;
    m->spans = xrealloc(m->spans, *cap * sizeof *m->spans);
  }
  m->spans[m->n_spans].off = off;
  m->spans[m->n_spans].len = len;
  m->spans[m->n_spans].ms = ms;
  m->spans[m->n_spans].is_date = is_date;
  m->n_spans++;
}

static int span_cmp(const void *a, const void *b)
{
  const struct he_msg_span *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

/* Locate the --vary rewrite points in the raw body text: every occurrence
 * of the record id, and the milliseconds of every "OperationCreatedOn"
 * value (top level and ParentContext), escaped "\/Date(" or plain. */
static void find_vary_spans(struct he_msg *m)
{
  static const char key[] = "\"OperationCreatedOn\"";
  size_t cap = 0, at = 0, k = strlen(m->record_id);
  const char *b = m->body;
  size_t n = m->len;

  if (k == 36) {
    while (find_ci(b, n, m->record_id, k, at, &at)) {
      add_span(m, &cap, at, k, 0, false);
      at += k;
    }
  }
  at = 0;
  while (find_ci(b, n, key, sizeof key - 1, at, &at)) {
    size_t i = at + sizeof key - 1, d0;
    int64_t ms = 0;
    at = i;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
      i++;
    if (i >= n || b[i++] != ':')
      continue;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
      i++;
    if (i >= n || b[i++] != '"')
      continue;
    if (i < n && b[i] == '\\')
      i++;
    if (i + 6 > n || memcmp(b + i, "/Date(", 6) != 0)
      continue;
    i += 6;
    d0 = i;
    while (i < n && b[i] >= '0' && b[i] <= '9' && i - d0 < 16)
      ms = ms * 10 + (b[i++] - '0');
    if (i == d0)
      continue;
    add_span(m, &cap, d0, i - d0, ms, true);
  }
  if (m->n_spans > 1)
    qsort(m->spans, m->n_spans, sizeof *m->spans, span_cmp);
}

static enum app_result append_prop(struct buf *b, const char *name, const char *val, size_t len)
{
  char key[128];
  int n = snprintf(key, sizeof key, "%s%s", dv_claims, name);
  if (b->len > 1)
    APP_RETURN_IF_FAILED(buf_append_char(b, ','));
  APP_RETURN_IF_FAILED(he_nj_str(b, key, (size_t)n));
  APP_RETURN_IF_FAILED(buf_append_char(b, ':'));
  return he_nj_str(b, val, len);
}

/* If the body is a Dataverse RemoteExecutionContext, note it, remember its
 * record id, and (without a sidecar) derive the application properties
 * Dataverse sets on the messages it posts. */
static enum app_result inspect_dataverse(struct he_msg *m, bool have_sidecar, struct app_err *err)
{
  enum app_result r = APP_OK;
  struct arena a;
  struct json *root = NULL;
  const struct json *v;
  struct buf props;
  const char *text = m->body;
  size_t len = m->len;
  struct app_err perr;

  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
    text += 3;
    len -= 3;
  }
  arena_init(&a, len * 8 + 65536);
  buf_init(&props, 0);
  if (json_parse(&a, text, len, JSON_DEFAULT_MAX_DEPTH * 2, &root, &perr) != APP_OK ||
      root->type != JSON_OBJECT || !json_is(json_get(root, "MessageName"), JSON_STRING) ||
      !json_is(json_get(root, "PrimaryEntityName"), JSON_STRING))
    goto out; /* not a Dataverse context: nothing to derive */
  m->dataverse = true;
  v = json_get(root, "PrimaryEntityId");
  if (json_is(v, JSON_STRING) && v->len == 36)
    memcpy(m->record_id, v->str, 37);
  if (!have_sidecar) {
    static const struct {
      const char *claim, *member, *fallback;
    } map[] = {
        {"Organization", "OrganizationName", "OrganizationId"},
        {"User", "UserId", NULL},
        {"InitiatingUser", "InitiatingUserId", NULL},
        {"EntityLogicalName", "PrimaryEntityName", NULL},
        {"RequestName", "MessageName", NULL},
        {"InitiatingUserAgent", "InitiatingUserAgent", NULL},
    };
    size_t i;
    if (buf_append_char(&props, '{') != APP_OK)
      goto nomem;
    for (i = 0; i < sizeof map / sizeof map[0]; i++) {
      v = json_get(root, map[i].member);
      if (!json_is(v, JSON_STRING) && map[i].fallback)
        v = json_get(root, map[i].fallback);
      if (!json_is(v, JSON_STRING))
        continue;
      if (append_prop(&props, map[i].claim, v->str, v->len) != APP_OK)
        goto nomem;
    }
    if (buf_append_char(&props, '}') != APP_OK)
      goto nomem;
    m->props.app_props = own(m, buf_steal(&props, NULL));
    m->props.content_type = "application/json";
  }
  goto out;
nomem:
  r = app_err_set(err, APP_ERR_NOMEM, "%s: out of memory deriving properties", m->path);
out:
  buf_cleanup(&props);
  arena_cleanup(&a);
  return r;
}

static enum app_result add_file(struct he_msgset *s, const char *path, struct app_err *err)
{
  enum app_result r;
  struct he_msg m;
  char *sidecar = NULL;
  struct stat st;
  bool have_sidecar;

  memset(&m, 0, sizeof m);
  m.path = xstrdup(path);
  m.props.ttl_ms = 0;
  r = he_file_read(path, s->max_body, &m.body, &m.len, err);
  if (r != APP_OK) {
    if (r == APP_ERR_LIMIT)
      app_err_set(err, APP_ERR_LIMIT, "%s: message body larger than --max-message-bytes (%zu)",
                  path, s->max_body);
    goto fail;
  }
  sidecar = xmalloc(strlen(path) + sizeof SIDECAR_SUFFIX);
  snprintf(sidecar, strlen(path) + sizeof SIDECAR_SUFFIX, "%s%s", path, SIDECAR_SUFFIX);
  have_sidecar = stat(sidecar, &st) == 0;
  if (have_sidecar) {
    r = parse_sidecar(&m, sidecar, err);
    if (r != APP_OK)
      goto fail;
  }
  r = inspect_dataverse(&m, have_sidecar, err);
  if (r != APP_OK)
    goto fail;
  if (!m.props.app_props)
    m.props.app_props = "{}";
  if (m.dataverse)
    find_vary_spans(&m);
  if (m.len > SB_STANDARD_MAX)
    s->n_over_256k++;
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->v = xrealloc(s->v, s->cap * sizeof *s->v);
  }
  s->v[s->n++] = m;
  free(sidecar);
  return APP_OK;
fail:
  free(sidecar);
  msg_cleanup(&m);
  return r;
}

static int name_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

enum app_result he_msgset_add_path(struct he_msgset *s, const char *path, struct app_err *err)
{
  enum app_result r = APP_OK;
  struct stat st;
  DIR *d;
  struct dirent *e;
  char **names = NULL;
  size_t n = 0, cap = 0, i;

  if (stat(path, &st) != 0)
    return app_err_set(err, APP_ERR_IO, "--messages %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return add_file(s, path, err);
  d = opendir(path);
  if (!d)
    return app_err_set(err, APP_ERR_IO, "--messages %s: %s", path, strerror(errno));
  while ((e = readdir(d)) != NULL) {
    char *full;
    if (e->d_name[0] == '.' || he_has_suffix_ci(e->d_name, SIDECAR_SUFFIX))
      continue;
    full = he_path_join(path, e->d_name);
    if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
      free(full);
      continue;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      names = xrealloc(names, cap * sizeof *names);
    }
    names[n++] = full;
  }
  closedir(d);
  if (n == 0) {
    r = app_err_set(err, APP_ERR_INPUT, "--messages %s: the folder has no message files", path);
    goto out;
  }
  qsort(names, n, sizeof *names, name_cmp);
  for (i = 0; i < n && r == APP_OK; i++)
    r = add_file(s, names[i], err);
out:
  for (i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return r;
}

char *he_msg_vary(const struct he_msg *m, uint64_t copy, const char *fresh_id, size_t *out_len)
{
  struct buf b;
  size_t i, at = 0;
  char digits[32];

  buf_init(&b, 0);
  /* xmalloc-style: growth failures here are allocation failures */
  if (buf_reserve(&b, m->len + 16 * m->n_spans + 1) != APP_OK)
    APP_ASSERT(!"out of memory");
  for (i = 0; i < m->n_spans; i++) {
    const struct he_msg_span *sp = &m->spans[i];
    if (sp->off < at)
      continue; /* overlapping (cannot happen for well-formed bodies) */
    APP_ASSERT(buf_append(&b, m->body + at, sp->off - at) == APP_OK);
    if (sp->is_date) {
      int n = snprintf(digits, sizeof digits, "%lld", (long long)(sp->ms + (int64_t)copy + 1));
      APP_ASSERT(buf_append(&b, digits, (size_t)n) == APP_OK);
    } else {
      APP_ASSERT(buf_append(&b, fresh_id, 36) == APP_OK);
    }
    at = sp->off + sp->len;
  }
  APP_ASSERT(buf_append(&b, m->body + at, m->len - at) == APP_OK);
  APP_ASSERT(buf_append_char(&b, '\0') == APP_OK);
  *out_len = b.len - 1;
  return buf_steal(&b, NULL);
}

/* redis_bindings.c - argument strings for a Redis output binding. */
#include "redis/redis_bindings.h"

#include "redis/redis_sink.h"

#include <string.h>
#include <strings.h>

enum bcmd { B_NONE = 0, B_SET, B_HSET, B_DEL, B_SADD, B_SREM };

static enum bcmd parse_cmd(const char *c)
{
  if (!c)
    return B_NONE;
  if (!strcasecmp(c, "SET"))
    return B_SET;
  if (!strcasecmp(c, "HSET"))
    return B_HSET;
  if (!strcasecmp(c, "DEL"))
    return B_DEL;
  if (!strcasecmp(c, "SADD"))
    return B_SADD;
  if (!strcasecmp(c, "SREM"))
    return B_SREM;
  return B_NONE;
}

static bool is_rel(const struct doc *d)
{
  return d->op == CDC_OP_ASSOCIATE || d->op == CDC_OP_DISASSOCIATE;
}

static bool expressible(enum bcmd c, const struct doc *d)
{
  if (d->needs_reread)
    return false;
  switch (c) {
  case B_SET: return d->op != CDC_OP_DELETE && !is_rel(d) && d->full_row;
  case B_HSET: return d->op != CDC_OP_DELETE && !is_rel(d) && d->nprops > 0;
  case B_DEL: return d->op == CDC_OP_DELETE;
  case B_SADD: return d->op == CDC_OP_ASSOCIATE && d->nrelated > 0;
  case B_SREM: return d->op == CDC_OP_DISASSOCIATE && d->nrelated > 0;
  case B_NONE: return false;
  }
  return false;
}

bool redis_bindings_expressible(const char *command, const struct doc *d)
{
  return expressible(parse_cmd(command), d);
}

enum app_result redis_bindings_encode(struct buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t i, start = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[3];
    if (c > 0x20 && c != 0x7f && c != '%')
      continue;
    APP_RETURN_IF_FAILED(buf_append(b, s + start, i - start));
    esc[0] = '%';
    esc[1] = hex[c >> 4];
    esc[2] = hex[c & 15];
    APP_RETURN_IF_FAILED(buf_append(b, esc, 3));
    start = i + 1;
  }
  return buf_append(b, s + start, n - start);
}

/* one argument: a separating space, then the encoded bytes */
static enum app_result arg(struct buf *line, const char *s, size_t n)
{
  if (line->len)
    APP_RETURN_IF_FAILED(buf_append_char(line, ' '));
  return redis_bindings_encode(line, s, n);
}

static enum app_result arg_str(struct buf *line, const char *s)
{
  return arg(line, s, strlen(s));
}

/* The document as Web API JSON: @odata.etag, then properties and their
 * annotations ("name@annotation"). */
static enum app_result doc_json(struct buf *j, const struct doc *d, struct buf *name)
{
  size_t k, a;
  APP_RETURN_IF_FAILED(buf_printf(j, "{\"@odata.etag\":\"W/\\\"%s\\\"\"", d->version_text));
  for (k = 0; k < d->nprops; k++) {
    const struct doc_prop *p = &d->props[k];
    APP_RETURN_IF_FAILED(buf_append_char(j, ','));
    APP_RETURN_IF_FAILED(buf_append_json_str(j, p->name, strlen(p->name)));
    APP_RETURN_IF_FAILED(buf_append_char(j, ':'));
    APP_RETURN_IF_FAILED(buf_append(j, p->json, p->json_len));
    for (a = 0; a < p->nann; a++) {
      buf_reset(name);
      APP_RETURN_IF_FAILED(buf_printf(name, "%s@%s", p->name, p->ann[a].name));
      APP_RETURN_IF_FAILED(buf_append_char(j, ','));
      APP_RETURN_IF_FAILED(buf_append_json_str(j, name->data, name->len));
      APP_RETURN_IF_FAILED(buf_append_char(j, ':'));
      APP_RETURN_IF_FAILED(buf_append(j, p->ann[a].json, p->ann[a].json_len));
    }
  }
  return buf_append_char(j, '}');
}

static enum app_result emit(struct buf *out, bool *first, const struct buf *line)
{
  if (!*first)
    APP_RETURN_IF_FAILED(buf_append_char(out, ','));
  *first = false;
  return buf_append_json_str(out, line->data ? line->data : "", line->len);
}

static enum app_result doc_items(enum bcmd c, const struct doc *d, const char *prefix,
                                 struct buf *out, bool *first, struct buf *line, struct buf *tmp)
{
  size_t k, a;
  buf_reset(line);
  buf_reset(tmp);
  switch (c) {
  case B_SET:
    APP_RETURN_IF_FAILED(redis_sink_record_key(tmp, prefix, d->table, d->id));
    APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
    {
      struct buf js, name;
      enum app_result r;
      buf_init(&js, 0);
      buf_init(&name, 0);
      r = doc_json(&js, d, &name);
      if (r == APP_OK)
        r = arg(line, js.data, js.len);
      buf_cleanup(&js);
      buf_cleanup(&name);
      APP_RETURN_IF_FAILED(r);
    }
    if (d->ttl_seconds > 0)
      APP_RETURN_IF_FAILED(buf_printf(line, " EX %lld", (long long)d->ttl_seconds));
    return emit(out, first, line);
  case B_HSET:
    APP_RETURN_IF_FAILED(redis_sink_record_key(tmp, prefix, d->table, d->id));
    APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
    for (k = 0; k < d->nprops; k++) {
      const struct doc_prop *p = &d->props[k];
      APP_RETURN_IF_FAILED(arg_str(line, p->name));
      APP_RETURN_IF_FAILED(arg(line, p->json, p->json_len));
      for (a = 0; a < p->nann; a++) {
        buf_reset(tmp);
        APP_RETURN_IF_FAILED(buf_printf(tmp, "%s@%s", p->name, p->ann[a].name));
        APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
        APP_RETURN_IF_FAILED(arg(line, p->ann[a].json, p->ann[a].json_len));
      }
    }
    APP_RETURN_IF_FAILED(arg_str(line, "_version"));
    APP_RETURN_IF_FAILED(arg_str(line, d->version_text));
    APP_RETURN_IF_FAILED(buf_printf(line, " _op_time %lld", (long long)d->op_time_ms));
    return emit(out, first, line);
  case B_DEL:
    APP_RETURN_IF_FAILED(redis_sink_record_key(tmp, prefix, d->table, d->id));
    APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
    return emit(out, first, line);
  case B_SADD:
  case B_SREM:
    APP_RETURN_IF_FAILED(redis_sink_rel_key(tmp, prefix, d->table, d->id, d->relationship));
    APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
    for (k = 0; k < d->nrelated; k++) {
      buf_reset(tmp);
      APP_RETURN_IF_FAILED(buf_printf(tmp, "%s:%s", d->related[k].table, d->related[k].id));
      APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
    }
    APP_RETURN_IF_FAILED(emit(out, first, line));
    for (k = 0; k < d->nrelated; k++) {
      buf_reset(line);
      buf_reset(tmp);
      APP_RETURN_IF_FAILED(
          redis_sink_rel_key(tmp, prefix, d->related[k].table, d->related[k].id, d->relationship));
      APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
      buf_reset(tmp);
      APP_RETURN_IF_FAILED(buf_printf(tmp, "%s:%s", d->table, d->id));
      APP_RETURN_IF_FAILED(arg(line, tmp->data, tmp->len));
      APP_RETURN_IF_FAILED(emit(out, first, line));
    }
    return APP_OK;
  case B_NONE: break;
  }
  return APP_ERR_UNSUPPORTED;
}

static enum app_result check_keys(enum bcmd c, const struct doc *d, size_t i, struct app_err *err)
{
  size_t k;
  if (!redis_sink_name_ok(d->table, false) || !redis_sink_name_ok(d->id, true))
    return app_err_set(err, APP_ERR_INPUT,
                       "redis binding: document %zu: table '%.64s' / id '%.64s' cannot be a key", i,
                       d->table ? d->table : "", d->id ? d->id : "");
  if (c == B_SADD || c == B_SREM) {
    if (!redis_sink_name_ok(d->relationship, false))
      return app_err_set(err, APP_ERR_INPUT,
                         "redis binding: document %zu: relationship '%.64s' cannot be a key", i,
                         d->relationship ? d->relationship : "");
    for (k = 0; k < d->nrelated; k++)
      if (!redis_sink_name_ok(d->related[k].table, false) ||
          !redis_sink_name_ok(d->related[k].id, true))
        return app_err_set(err, APP_ERR_INPUT,
                           "redis binding: document %zu: related record %zu cannot be a key", i, k);
  }
  return APP_OK;
}

enum app_result redis_bindings_outputs(const struct doc *const *docs, size_t n,
                                       const char *binding_name, const char *command,
                                       const char *prefix, struct buf *out_json,
                                       struct app_err *err)
{
  enum bcmd c = parse_cmd(command);
  struct buf line, tmp;
  size_t i, mark = out_json->len;
  bool first = true;
  enum app_result r = APP_OK;

  if (c == B_NONE)
    return app_err_set(err, APP_ERR_UNSUPPORTED,
                       "redis binding '%s': command '%s' is not supported in binding mode (use "
                       "SET, HSET, DEL, SADD or SREM)",
                       binding_name ? binding_name : "", command ? command : "");
  for (i = 0; i < n; i++)
    if (expressible(c, docs[i]))
      APP_RETURN_IF_FAILED(check_keys(c, docs[i], i, err));
  buf_init(&line, 0);
  buf_init(&tmp, 0);
  if (!binding_name)
    binding_name = "";
  r = buf_append_json_str(out_json, binding_name, strlen(binding_name));
  if (r == APP_OK)
    r = buf_append_str(out_json, ":[");
  for (i = 0; i < n && r == APP_OK; i++)
    if (expressible(c, docs[i]))
      r = doc_items(c, docs[i], prefix, out_json, &first, &line, &tmp);
  if (r == APP_OK)
    r = buf_append_char(out_json, ']');
  buf_cleanup(&line);
  buf_cleanup(&tmp);
  if (r != APP_OK) {
    out_json->len = mark;
    if (out_json->data)
      out_json->data[mark] = '\0';
    return app_err_set(err, r, "redis binding '%s': output larger than its cap",
                       binding_name ? binding_name : "");
  }
  return APP_OK;
}

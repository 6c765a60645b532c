/* he_result.c - the host's view of a handler's answer (see he_result.h). */
#include "he_result.h"

#include "he_nj.h"
#include "he_util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* JsonMediaTypeFormatter reads application/json and text/json (any
 * parameters); anything else, or no Content-Type (octet-stream), makes
 * ReadAsAsync throw for a non-empty body. */
static bool is_json_media_type(const char *ct)
{
  char mt[128];
  size_t n = strcspn(ct, ";");
  while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  while (n && (*ct == ' ' || *ct == '\t')) {
    ct++;
    n--;
  }
  if (n >= sizeof mt)
    return false;
  memcpy(mt, ct, n);
  mt[n] = '\0';
  return !strcasecmp(mt, "application/json") || !strcasecmp(mt, "text/json");
}

static const char *type_name(const struct json *v)
{
  switch (v->type) {
  case JSON_NULL: return "null";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NUMBER: return "number";
  case JSON_STRING: return "string";
  case JSON_ARRAY: return "array";
  default: return "object";
  }
}

static void excerpt(const struct buf *b, char *out, size_t cap)
{
  size_t i, o = 0;
  for (i = 0; i < b->len && o + 1 < cap && i < 120; i++) {
    char ch = b->data[i];
    out[o++] = (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
  }
  out[o] = '\0';
}

enum app_result he_result_evaluate(struct arena *a, const struct he_resp *resp,
                                   const struct json **out_root, struct app_err *err)
{
  struct json *root = NULL;
  const struct json *v, *it;
  struct app_err perr;
  char ex[128];
  const char *body = resp->body.data ? resp->body.data : "";
  size_t len = resp->body.len;

  *out_root = NULL;
  if (resp->status < 200 || resp->status > 299) {
    excerpt(&resp->body, ex, sizeof ex);
    return app_err_set(err, APP_ERR_HTTP, "HTTP %d %s: %s", resp->status,
                       he_http_reason(resp->status), ex);
  }
  /* ReadAsAsync returns null for an empty body or JSON null, and the host
   * has no branch for null: the invocation would never complete */
  if (len == 0)
    return app_err_set(err, APP_ERR_HTTP,
                       "empty response body (HTTP %d): the real host would hang until "
                       "functionTimeout, then restart the handler",
                       resp->status);
  if (!resp->has_content_type)
    return app_err_set(err, APP_ERR_HTTP,
                       "response Content-Type (none: application/octet-stream) is not JSON: the "
                       "host fails the invocation (\"Invalid HttpResponseMessage\")");
  if (!is_json_media_type(resp->content_type))
    return app_err_set(err, APP_ERR_HTTP,
                       "response Content-Type \"%.60s\" is not JSON: the host fails the "
                       "invocation (\"Invalid HttpResponseMessage\")",
                       resp->content_type);
  if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3)) {
    body += 3;
    len -= 3;
  }
  if (json_parse(a, body, len, JSON_DEFAULT_MAX_DEPTH, &root, &perr) != APP_OK)
    return app_err_set(err, APP_ERR_HTTP, "malformed JSON response: %.200s", perr.msg);
  if (root->type == JSON_NULL)
    return app_err_set(err, APP_ERR_HTTP,
                       "JSON null response body: the real host would hang until functionTimeout, "
                       "then restart the handler");
  if (root->type != JSON_OBJECT)
    return app_err_set(err, APP_ERR_HTTP,
                       "response body is a JSON %s, not an object: it does not deserialise into "
                       "HttpScriptInvocationResult",
                       type_name(root));
  /* Newtonsoft matches Outputs / Logs / ReturnValue ignoring case */
  v = json_get_ci(root, "Outputs");
  if (v && v->type != JSON_NULL && v->type != JSON_OBJECT)
    return app_err_set(err, APP_ERR_HTTP, "\"Outputs\" is a JSON %s, not an object", type_name(v));
  v = json_get_ci(root, "Logs");
  if (v && v->type != JSON_NULL) {
    if (v->type != JSON_ARRAY)
      return app_err_set(err, APP_ERR_HTTP, "\"Logs\" is a JSON %s, not an array of strings",
                         type_name(v));
    for (it = v->child; it; it = it->next)
      if (it->type == JSON_ARRAY || it->type == JSON_OBJECT)
        return app_err_set(err, APP_ERR_HTTP, "\"Logs\" holds a JSON %s: only strings are accepted",
                           type_name(it));
  }
  *out_root = root;
  return APP_OK;
}

void he_result_check_outputs(const struct he_function *fn, const char *function,
                             const struct json *root, he_warn_fn warn, void *ctx)
{
  const struct json *outs = json_get_ci(root, "Outputs"), *rv = json_get_ci(root, "ReturnValue"),
                    *o;
  char w[200];
  bool has_return = fn && he_app_output(fn, "$return");

  for (o = json_is(outs, JSON_OBJECT) ? outs->child : NULL; o; o = o->next) {
    const struct he_binding *b = fn ? he_app_output(fn, o->key) : NULL;
    if (fn && !b) {
      snprintf(w, sizeof w,
               "Outputs.%.40s of %.40s matches no output binding (names are case-sensitive): "
               "the host ignores it",
               o->key, function);
      warn(ctx, w);
      continue;
    }
    /* the host tries Convert.FromBase64String on string outputs unless the
     * binding is http or dataType binary */
    if (b &&
        (!strcasecmp(b->type, "http") || (b->data_type && !strcasecmp(b->data_type, "binary"))))
      continue;
    if (o->type == JSON_STRING && he_nj_is_base64(o->str, o->len)) {
      snprintf(w, sizeof w,
               "base64 trap: Outputs.%.40s of %.40s is a string that is valid base64; the host "
               "binds its decoded bytes (wrap it in an array)",
               o->key, function);
      warn(ctx, w);
    }
  }
  if (json_is(rv, JSON_STRING) && has_return && he_nj_is_base64(rv->str, rv->len)) {
    snprintf(w, sizeof w,
             "base64 trap: ReturnValue of %.40s is a string that is valid base64; the host binds "
             "its decoded bytes",
             function);
    warn(ctx, w);
  }
  if (json_is(rv, JSON_OBJECT) && fn && !has_return) {
    snprintf(w, sizeof w,
             "ReturnValue of %.40s is an object and there is no $return binding: the host turns "
             "its properties into outputs",
             function);
    warn(ctx, w);
  }
}

/* Newtonsoft Formatting.Indented (two spaces, "\n" on Linux), for an object
 * "body" of an HTTP output. */
static enum app_result write_indented(struct buf *b, const struct json *v, int depth)
{
  const struct json *c;
  int i;
  if (v->type != JSON_OBJECT && v->type != JSON_ARRAY)
    return he_nj_write_parsed(b, v);
  if (!v->child)
    return buf_append_str(b, v->type == JSON_OBJECT ? "{}" : "[]");
  APP_RETURN_IF_FAILED(buf_append_char(b, v->type == JSON_OBJECT ? '{' : '['));
  for (c = v->child; c; c = c->next) {
    APP_RETURN_IF_FAILED(buf_append_str(b, c == v->child ? "\n" : ",\n"));
    for (i = 0; i < depth + 1; i++)
      APP_RETURN_IF_FAILED(buf_append_str(b, "  "));
    if (v->type == JSON_OBJECT) {
      APP_RETURN_IF_FAILED(he_nj_str(b, c->key, c->key_len));
      APP_RETURN_IF_FAILED(buf_append_str(b, ": "));
    }
    APP_RETURN_IF_FAILED(write_indented(b, c, depth + 1));
  }
  APP_RETURN_IF_FAILED(buf_append_str(b, "\n"));
  for (i = 0; i < depth; i++)
    APP_RETURN_IF_FAILED(buf_append_str(b, "  "));
  return buf_append_char(b, v->type == JSON_OBJECT ? '}' : ']');
}

static enum app_result response(struct buf *out, int status, const char *headers, const char *body,
                                size_t body_len)
{
  APP_RETURN_IF_FAILED(
      buf_printf(out, "HTTP/1.1 %d %s\r\n%s\r\n", status, he_http_reason(status), headers));
  return buf_append(out, body, body_len);
}

/* The handler's answer as the host relays it in forwarding mode: status and
 * headers as they came (framing headers are the server's business). */
static enum app_result forwarded(const struct he_resp *resp, struct buf *out)
{
  const char *p = resp->head.data, *end = p + resp->head.len, *nl;
  struct buf hdr;
  enum app_result r;
  buf_init(&hdr, 0);
  nl = p ? memchr(p, '\n', (size_t)(end - p)) : NULL;
  p = nl ? nl + 1 : end;
  while (p < end) {
    size_t len;
    nl = memchr(p, '\n', (size_t)(end - p));
    len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (len && p[len - 1] == '\r')
      len--;
    if (len && strncasecmp(p, "Transfer-Encoding:", 18) && strncasecmp(p, "Connection:", 11) &&
        strncasecmp(p, "Keep-Alive:", 11) && buf_printf(&hdr, "%.*s\r\n", (int)len, p) != APP_OK) {
      buf_cleanup(&hdr);
      return APP_ERR_NOMEM;
    }
    p = nl ? nl + 1 : end;
  }
  r = response(out, resp->status, hdr.data ? hdr.data : "", resp->body.data ? resp->body.data : "",
               resp->body.len);
  buf_cleanup(&hdr);
  return r;
}

enum app_result he_result_http(const struct he_function *fn, bool forward, bool ok,
                               const struct he_resp *resp, const struct json *root, struct arena *a,
                               struct buf *out, char *note, size_t cap)
{
  const struct he_binding *ob = NULL;
  const struct json *res = NULL, *v, *h, *c;
  struct buf hdr, body;
  enum app_result r = APP_OK;
  int status = 200;
  size_t i;
  bool has_ct = false;
  struct json *parsed = NULL;
  struct app_err perr;

  note[0] = '\0';
  if (!ok)
    return response(out, 500, "Content-Length: 0\r\n", "", 0);
  if (forward)
    return forwarded(resp, out);
  buf_init(&hdr, 0);
  buf_init(&body, 0);
  for (i = 0; fn && i < fn->n_bindings; i++)
    if (fn->bindings[i].out && !strcasecmp(fn->bindings[i].type, "http"))
      ob = &fn->bindings[i];
  if (ob && !strcmp(ob->name, "$return"))
    res = json_get_ci(root, "ReturnValue");
  else
    res = json_get(json_get_ci(root, "Outputs"), ob ? ob->name : "res");
  if (res && res->type == JSON_STRING) {
    /* a JSON string holding an object is deserialised; anything else
     * throws InvalidOperationException */
    if (json_parse(a, res->str, res->len, JSON_DEFAULT_MAX_DEPTH, &parsed, &perr) != APP_OK ||
        parsed->type != JSON_OBJECT) {
      snprintf(note, cap, "the http output is a string that is not a JSON object");
      r = response(out, 500, "Content-Length: 0\r\n", "", 0);
      goto out;
    }
    res = parsed;
  }
  if (!res || res->type == JSON_NULL) {
    r = response(out, 200, "Content-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\n",
                 "{}", 2);
    goto out;
  }
  if (res->type != JSON_OBJECT) {
    snprintf(note, cap, "the http output is a JSON %s, not an object", type_name(res));
    r = response(out, 500, "Content-Length: 0\r\n", "", 0);
    goto out;
  }
  /* HttpOutputBindingResponse always has StatusCode (null when absent), so
   * "status" counts only when ReturnValue goes to HttpBinding directly */
  v = json_get_ci(res, "statusCode");
  if (!v && ob && !strcmp(ob->name, "$return"))
    v = json_get_ci(res, "status");
  if (v && v->type != JSON_NULL) {
    int64_t code;
    if ((v->type == JSON_NUMBER && json_number_i64(v, &code) && code >= 100 && code <= 999) ||
        (v->type == JSON_STRING && he_parse_i64(v->str, 100, 999, &code))) {
      status = (int)code;
    } else {
      snprintf(note, cap, "statusCode is not a status number");
      r = response(out, 500, "Content-Length: 0\r\n", "", 0);
      goto out;
    }
  }
  h = json_get_ci(res, "headers");
  v = json_get_ci(res, "body");
  if (v && v->type == JSON_STRING)
    r = buf_append(&body, v->str, v->len);
  else if (v && (v->type == JSON_OBJECT || v->type == JSON_ARRAY))
    r = write_indented(&body, v, 0);
  else if (v && v->type != JSON_NULL)
    r = he_nj_scalar_text(&body, v);
  for (c = json_is(h, JSON_OBJECT) ? h->child : NULL; c && r == APP_OK; c = c->next) {
    r = buf_printf(&hdr, "%s: ", c->key);
    if (r == APP_OK && c->type == JSON_STRING)
      r = buf_append(&hdr, c->str, c->len);
    else if (r == APP_OK && c->type != JSON_NULL && c->type != JSON_OBJECT && c->type != JSON_ARRAY)
      r = he_nj_scalar_text(&hdr, c);
    if (r == APP_OK)
      r = buf_append_str(&hdr, "\r\n");
    if (!strcasecmp(c->key, "Content-Type"))
      has_ct = true;
  }
  if (r == APP_OK && !has_ct && body.len)
    r = buf_append_str(&hdr, v && v->type == JSON_STRING
                                 ? "Content-Type: text/plain; charset=utf-8\r\n"
                                 : "Content-Type: application/json; charset=utf-8\r\n");
  if (r == APP_OK)
    r = buf_printf(&hdr, "Content-Length: %zu\r\n", body.len);
  if (r == APP_OK)
    r = response(out, status, hdr.data, body.data ? body.data : "", body.len);
out:
  buf_cleanup(&hdr);
  buf_cleanup(&body);
  return r == APP_OK ? APP_OK : APP_ERR_NOMEM;
}

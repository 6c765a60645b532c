/* token.c - credential choice, token requests, token responses (pure). */
#include "identity/token.h"

#include "common/arena.h"
#include "common/base64.h"
#include "common/config.h"
#include "common/json.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool set(const char *s)
{
  return s && *s;
}

static char *dup_or_null(const char *s)
{
  return set(s) ? xstrdup(s) : NULL;
}

void idcred_cleanup(struct idcred *c)
{
  if (!c)
    return;
  free(c->authority);
  free(c->tenant_id);
  free(c->client_id);
  free(c->client_secret);
  free(c->cert_path);
  if (c->cert_password) {
    explicit_bzero(c->cert_password, strlen(c->cert_password));
    free(c->cert_password);
  }
  free(c->federated_token_file);
  free(c->identity_endpoint);
  free(c->identity_header);
  memset(c, 0, sizeof *c);
}

/* http(s)://host[:port][/...]: https, or http to a loopback host. */
static bool url_ok(const char *url)
{
  const char *h;
  size_t n;
  if (!strncasecmp(url, "https://", 8))
    return url[8] != '\0' && url[8] != '/';
  if (strncasecmp(url, "http://", 7))
    return false;
  h = url + 7;
  n = strcspn(h, ":/?#");
  return (n == 9 && !strncasecmp(h, "localhost", 9)) || (n == 9 && !strncmp(h, "127.0.0.1", 9)) ||
         !strncmp(h, "[::1]", 5);
}

static bool id_ok(const char *s)
{
  /* tenant and client ids are GUIDs or domain names: keep them to what
   * can go into a URL path or form field unchanged */
  size_t i;
  for (i = 0; s[i]; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
      return false;
  return i > 0 && i <= 128;
}

void idcred_settings_from_config(const struct app_config *cfg, struct idcred_settings *out)
{
  memset(out, 0, sizeof *out);
  out->tenant_id = cfg->azure_tenant_id;
  out->client_id = cfg->azure_client_id;
  out->client_secret = cfg->azure_client_secret;
  out->cert_path = cfg->azure_client_certificate_path;
  out->cert_password = cfg->azure_client_certificate_password;
  out->authority_host = cfg->azure_authority_host;
  out->federated_token_file = cfg->azure_federated_token_file;
  out->identity_endpoint = cfg->identity_endpoint;
  out->identity_header = cfg->identity_header;
}

enum app_result idcred_select(const struct idcred_settings *s, struct idcred *out,
                              struct app_err *err)
{
  const char *cn = set(s->conn_name) ? s->conn_name : "connection";
  const char *authority = set(s->authority_host) ? s->authority_host : IDTOK_DEFAULT_AUTHORITY;
  size_t alen;

  memset(out, 0, sizeof *out);
  if (!url_ok(authority))
    return app_err_set(err, APP_ERR_CONFIG,
                       "setting AZURE_AUTHORITY_HOST: '%s' must be an https:// URL (http:// only "
                       "for a loopback host)",
                       authority);
  alen = strlen(authority);
  while (alen && authority[alen - 1] == '/')
    alen--;
  if (set(s->conn_tenant_id) || set(s->conn_client_secret)) {
    if (!set(s->conn_tenant_id) || !set(s->conn_client_secret) || !set(s->conn_client_id))
      return app_err_set(err, APP_ERR_CONFIG,
                         "settings %s__tenantId, %s__clientId and %s__clientSecret go together "
                         "(a service principal for local development); %s is missing",
                         cn, cn, cn,
                         !set(s->conn_tenant_id)   ? "tenantId"
                         : !set(s->conn_client_id) ? "clientId"
                                                   : "clientSecret");
    if (!id_ok(s->conn_tenant_id) || !id_ok(s->conn_client_id))
      return app_err_set(err, APP_ERR_CONFIG,
                         "settings %s__tenantId / %s__clientId: expected a GUID or domain name", cn,
                         cn);
    out->kind = IDCRED_CLIENT_SECRET;
    out->tenant_id = xstrdup(s->conn_tenant_id);
    out->client_id = xstrdup(s->conn_client_id);
    out->client_secret = xstrdup(s->conn_client_secret);
    snprintf(out->source, sizeof out->source, "%s__tenantId/__clientId/__clientSecret", cn);
  } else if (set(s->tenant_id) && set(s->client_id) &&
             (set(s->client_secret) || set(s->cert_path) || set(s->federated_token_file))) {
    if (!id_ok(s->tenant_id) || !id_ok(s->client_id))
      return app_err_set(err, APP_ERR_CONFIG,
                         "settings AZURE_TENANT_ID / AZURE_CLIENT_ID: expected a GUID or domain "
                         "name");
    out->tenant_id = xstrdup(s->tenant_id);
    out->client_id = xstrdup(s->client_id);
    if (set(s->client_secret)) {
      out->kind = IDCRED_CLIENT_SECRET;
      out->client_secret = xstrdup(s->client_secret);
      snprintf(out->source, sizeof out->source, "AZURE_CLIENT_SECRET");
    } else if (set(s->cert_path)) {
      out->kind = IDCRED_CLIENT_CERT;
      out->cert_path = xstrdup(s->cert_path);
      out->cert_password = dup_or_null(s->cert_password);
      snprintf(out->source, sizeof out->source, "AZURE_CLIENT_CERTIFICATE_PATH");
    } else {
      out->kind = IDCRED_WORKLOAD;
      out->federated_token_file = xstrdup(s->federated_token_file);
      snprintf(out->source, sizeof out->source, "AZURE_FEDERATED_TOKEN_FILE");
    }
  } else if (set(s->identity_endpoint) && set(s->identity_header)) {
    const char *cid = set(s->conn_client_id) ? s->conn_client_id : s->client_id;
    if (!url_ok(s->identity_endpoint))
      return app_err_set(err, APP_ERR_CONFIG,
                         "setting IDENTITY_ENDPOINT: must be an https:// URL or http:// to a "
                         "loopback host");
    if (set(cid) && !id_ok(cid))
      return app_err_set(err, APP_ERR_CONFIG,
                         "setting %s: expected the GUID of a user-assigned identity",
                         set(s->conn_client_id) ? "<connection>__clientId" : "AZURE_CLIENT_ID");
    out->kind = IDCRED_MANAGED;
    out->identity_endpoint = xstrdup(s->identity_endpoint);
    out->identity_header = xstrdup(s->identity_header);
    out->client_id = dup_or_null(cid);
    snprintf(out->source, sizeof out->source, "managed identity (%s%s)",
             set(cid) ? "user-assigned, " : "system-assigned",
             set(s->conn_client_id) ? "clientId from the connection"
             : set(cid)             ? "AZURE_CLIENT_ID"
                                    : "");
  } else {
    const char *why =
        set(s->tenant_id) || set(s->client_id)
            ? "AZURE_TENANT_ID and AZURE_CLIENT_ID need AZURE_CLIENT_SECRET, "
              "AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE"
        : set(s->identity_endpoint) || set(s->identity_header)
            ? "IDENTITY_ENDPOINT and IDENTITY_HEADER go together (the platform sets both when "
              "the app has a managed identity)"
            : "no managed identity (IDENTITY_ENDPOINT/IDENTITY_HEADER unset: enable the Function "
              "App's identity) and no AZURE_* or connection credential settings";
    return app_err_set(err, APP_ERR_CONFIG, "%s: Microsoft Entra ID credential: %s", cn, why);
  }
  out->authority = xstrndup(authority, alen);
  return APP_OK;
}

/* ---- request ----------------------------------------------------------- */

void idreq_cleanup(struct idreq *r)
{
  if (!r)
    return;
  free(r->url);
  if (r->header) {
    explicit_bzero(r->header, strlen(r->header));
    free(r->header);
  }
  if (r->body.data)
    explicit_bzero(r->body.data, r->body.len);
  buf_cleanup(&r->body);
  memset(r, 0, sizeof *r);
}

enum app_result idtok_urlencode(struct buf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      APP_RETURN_IF_FAILED(buf_append_char(b, (char)c));
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      APP_RETURN_IF_FAILED(buf_append(b, e, 3));
    }
  }
  return APP_OK;
}

enum app_result idtok_b64url(struct buf *b, const void *in, size_t n)
{
  size_t start = b->len, i, end;
  APP_RETURN_IF_FAILED(base64_encode_buf(b, in, n));
  end = b->len;
  while (end > start && b->data[end - 1] == '=')
    end--;
  for (i = start; i < end; i++) {
    if (b->data[i] == '+')
      b->data[i] = '-';
    else if (b->data[i] == '/')
      b->data[i] = '_';
  }
  b->len = end;
  b->data[end] = '\0';
  return APP_OK;
}

enum app_result idtok_scope_resource(const char *scope, struct buf *out)
{
  size_t n = strlen(scope);
  if (n >= 9 && !strcmp(scope + n - 9, "/.default"))
    n -= 9;
  return buf_append(out, scope, n);
}

enum app_result idtok_token_url(const struct idcred *c, struct buf *out)
{
  return buf_printf(out, "%s/%s/oauth2/v2.0/token", c->authority, c->tenant_id);
}

static enum app_result form_field(struct buf *b, const char *name, const char *value)
{
  if (b->len)
    APP_RETURN_IF_FAILED(buf_append_char(b, '&'));
  APP_RETURN_IF_FAILED(buf_append_str(b, name));
  APP_RETURN_IF_FAILED(buf_append_char(b, '='));
  return idtok_urlencode(b, value);
}

enum app_result idtok_build(const struct idcred *c, const char *scope, const char *assertion,
                            struct idreq *out, struct app_err *err)
{
  struct buf u;
  enum app_result r = APP_OK;

  memset(out, 0, sizeof *out);
  buf_init(&out->body, 0);
  buf_init(&u, 0);
  if (!scope || !*scope) {
    buf_cleanup(&u);
    return app_err_set(err, APP_ERR_INPUT, "token request: empty scope");
  }
  switch (c->kind) {
  case IDCRED_MANAGED: {
    struct buf res;
    buf_init(&res, 0);
    r = idtok_scope_resource(scope, &res);
    if (r == APP_OK)
      r = buf_printf(&u, "%s%sapi-version=%s&resource=", c->identity_endpoint,
                     strchr(c->identity_endpoint, '?') ? "&" : "?", IDTOK_MI_API_VERSION);
    if (r == APP_OK)
      r = idtok_urlencode(&u, res.data ? res.data : "");
    if (r == APP_OK && c->client_id) {
      r = buf_append_str(&u, "&client_id=");
      if (r == APP_OK)
        r = idtok_urlencode(&u, c->client_id);
    }
    buf_cleanup(&res);
    if (r == APP_OK) {
      size_t n = strlen(c->identity_header) + 32;
      out->header = xmalloc(n);
      snprintf(out->header, n, "X-IDENTITY-HEADER: %s", c->identity_header);
    }
    break;
  }
  case IDCRED_CLIENT_SECRET:
  case IDCRED_CLIENT_CERT:
  case IDCRED_WORKLOAD:
    out->post = true;
    r = idtok_token_url(c, &u);
    if (r == APP_OK)
      r = form_field(&out->body, "client_id", c->client_id);
    if (r == APP_OK)
      r = form_field(&out->body, "scope", scope);
    if (r == APP_OK && c->kind == IDCRED_CLIENT_SECRET)
      r = form_field(&out->body, "client_secret", c->client_secret);
    if (r == APP_OK && c->kind != IDCRED_CLIENT_SECRET) {
      if (!assertion || !*assertion) {
        buf_cleanup(&u);
        return app_err_set(err, APP_ERR_INPUT, "token request: empty client assertion");
      }
      r = form_field(&out->body, "client_assertion_type",
                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      if (r == APP_OK)
        r = form_field(&out->body, "client_assertion", assertion);
    }
    if (r == APP_OK)
      r = form_field(&out->body, "grant_type", "client_credentials");
    break;
  default:
    buf_cleanup(&u);
    return app_err_set(err, APP_ERR_CONFIG, "token request: no credential configured");
  }
  if (r != APP_OK) {
    buf_cleanup(&u);
    return app_err_set(err, r, "token request: cannot build it");
  }
  out->url = buf_steal(&u, NULL);
  return APP_OK;
}

/* ---- JWT client assertion ----------------------------------------------- */

static enum app_result json_field(struct buf *b, const char *name, const char *value, bool first)
{
  if (!first)
    APP_RETURN_IF_FAILED(buf_append_char(b, ','));
  APP_RETURN_IF_FAILED(buf_append_json_str(b, name, strlen(name)));
  APP_RETURN_IF_FAILED(buf_append_char(b, ':'));
  return buf_append_json_str(b, value, strlen(value));
}

enum app_result idtok_jwt_assertion(EVP_PKEY *key, X509 *cert, const char *aud,
                                    const char *client_id, const char *jti, int64_t now_s,
                                    struct buf *out, struct app_err *err)
{
  unsigned char sha1[SHA_DIGEST_LENGTH], sha256[SHA256_DIGEST_LENGTH];
  unsigned int n1 = sizeof sha1, n256 = sizeof sha256;
  struct buf hdr, claims, t1, t256, sig;
  unsigned char *sigbytes = NULL;
  size_t siglen = 0;
  EVP_MD_CTX *md = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  enum app_result r = APP_OK;

  buf_init(&hdr, 0);
  buf_init(&claims, 0);
  buf_init(&t1, 0);
  buf_init(&t256, 0);
  buf_init(&sig, 0);
  if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    r = app_err_set(err, APP_ERR_CONFIG,
                    "client certificate: the private key is not an RSA key (Entra ID signs "
                    "client assertions with RS256/PS256)");
    goto out;
  }
  if (X509_digest(cert, EVP_sha1(), sha1, &n1) != 1 ||
      X509_digest(cert, EVP_sha256(), sha256, &n256) != 1) {
    r = app_err_set(err, APP_ERR_CONFIG, "client certificate: cannot compute its thumbprint");
    goto out;
  }
  if (idtok_b64url(&t1, sha1, n1) != APP_OK || idtok_b64url(&t256, sha256, n256) != APP_OK ||
      buf_append_char(&hdr, '{') != APP_OK || json_field(&hdr, "alg", "PS256", true) != APP_OK ||
      json_field(&hdr, "typ", "JWT", false) != APP_OK ||
      json_field(&hdr, "x5t", t1.data, false) != APP_OK ||
      json_field(&hdr, "x5t#S256", t256.data, false) != APP_OK ||
      buf_append_char(&hdr, '}') != APP_OK || buf_append_char(&claims, '{') != APP_OK ||
      json_field(&claims, "aud", aud, true) != APP_OK ||
      json_field(&claims, "iss", client_id, false) != APP_OK ||
      json_field(&claims, "sub", client_id, false) != APP_OK ||
      json_field(&claims, "jti", jti, false) != APP_OK ||
      buf_printf(&claims, ",\"nbf\":%lld,\"iat\":%lld,\"exp\":%lld}", (long long)now_s,
                 (long long)now_s, (long long)(now_s + 600)) != APP_OK ||
      idtok_b64url(out, hdr.data, hdr.len) != APP_OK || buf_append_char(out, '.') != APP_OK ||
      idtok_b64url(out, claims.data, claims.len) != APP_OK) {
    r = app_err_set(err, APP_ERR_NOMEM, "client assertion: out of memory");
    goto out;
  }
  md = EVP_MD_CTX_new();
  if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
      EVP_DigestSignUpdate(md, out->data, out->len) != 1 ||
      EVP_DigestSignFinal(md, NULL, &siglen) != 1) {
    r = app_err_set(err, APP_ERR_CONFIG, "client assertion: OpenSSL cannot sign with the key");
    goto out;
  }
  sigbytes = xmalloc(siglen);
  if (EVP_DigestSignFinal(md, sigbytes, &siglen) != 1) {
    r = app_err_set(err, APP_ERR_CONFIG, "client assertion: OpenSSL signing failed");
    goto out;
  }
  if (buf_append_char(out, '.') != APP_OK || idtok_b64url(out, sigbytes, siglen) != APP_OK)
    r = app_err_set(err, APP_ERR_NOMEM, "client assertion: out of memory");
out:
  ERR_clear_error();
  EVP_MD_CTX_free(md);
  free(sigbytes);
  buf_cleanup(&hdr);
  buf_cleanup(&claims);
  buf_cleanup(&t1);
  buf_cleanup(&t256);
  buf_cleanup(&sig);
  return r;
}

/* ---- response ----------------------------------------------------------- */

void idtok_cleanup(struct idtok *t)
{
  if (!t)
    return;
  if (t->access_token) {
    explicit_bzero(t->access_token, strlen(t->access_token));
    free(t->access_token);
  }
  memset(t, 0, sizeof *t);
}

/* seconds from a number or a string of digits */
static bool json_seconds(const struct json *v, int64_t *out)
{
  const char *s;
  char *end = NULL;
  long long n;
  if (json_is(v, JSON_NUMBER))
    return json_number_i64(v, out) && *out >= 0;
  if (!json_is(v, JSON_STRING))
    return false;
  s = v->str;
  if (!*s || !isdigit((unsigned char)*s))
    return false;
  errno = 0;
  n = strtoll(s, &end, 10);
  if (errno || *end || n < 0)
    return false;
  *out = n;
  return true;
}

/* printable, at most n characters, "..." when cut */
static void safe_text(char *dst, size_t dstsz, const char *s, size_t n)
{
  size_t i, o = 0;
  for (i = 0; s && s[i] && o + 4 < dstsz; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i == n) {
      memcpy(dst + o, "...", 3);
      o += 3;
      break;
    }
    if (c == '\r' || c == '\n' || c == '\t')
      c = ' ';
    if (c == ' ' && o && dst[o - 1] == ' ')
      continue; /* Entra puts "\r\nTrace ID: ..." in descriptions */
    dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  dst[o] = '\0';
}

static bool token_chars_ok(const char *t, size_t len)
{
  size_t i;
  for (i = 0; i < len; i++)
    if (t[i] <= 0x20 || t[i] >= 0x7f)
      return false;
  return true;
}

enum app_result idtok_parse(long status, const char *body, size_t len, int64_t now_s,
                            struct idtok *out, struct app_err *err)
{
  struct arena a;
  struct json *root = NULL;
  const struct json *tok, *v;
  int64_t exp = 0, refresh = 0, secs;
  enum app_result r;
  struct app_err jerr;

  arena_init(&a, 4 * IDTOK_MAX_RESPONSE_BYTES);
  if (len > IDTOK_MAX_RESPONSE_BYTES) {
    arena_cleanup(&a);
    return app_err_set(err, APP_ERR_LIMIT, "token response: larger than %d bytes (HTTP %ld)",
                       IDTOK_MAX_RESPONSE_BYTES, status);
  }
  r = json_parse(&a, body ? body : "", len, 8, &root, &jerr);
  if (status != 200) {
    char e[64] = "", d[170] = "";
    const char *code = r == APP_OK ? json_get_str(root, "error") : NULL;
    const char *desc = r == APP_OK ? json_get_str(root, "error_description") : NULL;
    bool permanent;
    if (r == APP_OK && !code) {
      /* the managed identity endpoint may answer {"statusCode":..,"message":..} */
      desc = json_get_str(root, "message");
    }
    safe_text(e, sizeof e, code, 60);
    safe_text(d, sizeof d, desc, 160);
    permanent = (status == 400 || status == 401 || status == 403) && code &&
                (!strcmp(code, "invalid_client") || !strcmp(code, "unauthorized_client") ||
                 !strcmp(code, "invalid_scope") || !strcmp(code, "invalid_request") ||
                 !strcmp(code, "invalid_grant"));
    arena_cleanup(&a);
    return app_err_set(err, permanent ? APP_ERR_CONFIG : APP_ERR_HTTP,
                       "token request refused: HTTP %ld%s%s%s%s", status, e[0] ? " " : "", e,
                       d[0] ? ": " : "", d);
  }
  if (r != APP_OK) {
    arena_cleanup(&a);
    /* jerr names a position, never the text */
    return app_err_set(err, APP_ERR_INPUT, "token response (HTTP 200) is not JSON: %s", jerr.msg);
  }
  tok = json_get(root, "access_token");
  if (!json_is(root, JSON_OBJECT) || !json_is(tok, JSON_STRING) || tok->len == 0) {
    arena_cleanup(&a);
    return app_err_set(err, APP_ERR_INPUT, "token response (HTTP 200) has no access_token");
  }
  if (tok->len > IDTOK_MAX_TOKEN_BYTES || !token_chars_ok(tok->str, tok->len)) {
    arena_cleanup(&a);
    return app_err_set(err, APP_ERR_INPUT,
                       "token response: access_token is longer than %d bytes or has characters "
                       "a token cannot have",
                       IDTOK_MAX_TOKEN_BYTES);
  }
  if ((v = json_get(root, "expires_on")) != NULL && json_seconds(v, &secs))
    exp = secs;
  else if ((v = json_get(root, "expires_in")) != NULL && json_seconds(v, &secs) &&
           secs < (int64_t)1 << 40)
    exp = now_s + secs;
  else {
    arena_cleanup(&a);
    return app_err_set(err, APP_ERR_INPUT,
                       "token response: no usable expires_in or expires_on (seconds)");
  }
  if (exp <= now_s) {
    arena_cleanup(&a);
    return app_err_set(err, APP_ERR_INPUT, "token response: the token has already expired");
  }
  if ((v = json_get(root, "refresh_in")) != NULL && json_seconds(v, &secs) &&
      secs < (int64_t)1 << 40 && now_s + secs < exp)
    refresh = now_s + secs;
  out->access_token = xstrndup(tok->str, tok->len);
  out->expires_s = exp;
  out->refresh_s = refresh;
  explicit_bzero((char *)tok->str, tok->len); /* the arena is ours */
  arena_cleanup(&a);
  return APP_OK;
}

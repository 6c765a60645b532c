/* tokensvc.c - a Microsoft Entra ID token service for tests: a real HTTP
 * server speaking the two protocols the handler uses, as Microsoft Learn
 * documents them, issuing short-lived tokens.
 *
 *   POST /<tenant>/oauth2/v2.0/token      client credentials (v2.0 endpoint):
 *        form grant_type=client_credentials, client_id, scope, and either
 *        client_secret, or client_assertion_type=urn:ietf:params:oauth:
 *        client-assertion-type:jwt-bearer + client_assertion (a JWT signed
 *        with --cert's key and naming it in x5t/x5t#S256, or the
 *        --federated-token). Answers {"token_type":"Bearer","expires_in":..,
 *        "ext_expires_in":..,"access_token":..}; errors as Entra ID writes
 *        them: 400/401 {"error":..,"error_description":"AADSTS...."}.
 *   GET /msi/token?api-version=2019-08-01&resource=..[&client_id=..]
 *        App Service / Functions managed identity: requires the header
 *        X-IDENTITY-HEADER; answers {"access_token":..,"expires_on":"<unix
 *        seconds>","resource":..,"token_type":"Bearer","client_id":..}.
 *   POST /_control?mode=ok|fail|refuse|garbage|delay[&ms=N][&count=N]
 *        the next count token requests (default: all from now) answer 500
 *        (fail), 401 invalid_client (refuse), a 200 that is not JSON
 *        (garbage) or wait ms first (delay); ok restores.
 *   POST /_revoke  every live token stops working in Redis at once
 *   GET /_check  with "Authorization: Bearer <token>": 200 while the token
 *        is live (issued here, not expired, not revoked), else 401; other
 *        test servers (tests/tools/dvemu.c) validate tokens with it
 *   GET /_stats  {"issued":..,"rejected":..,"failed":..,"secret":..,
 *        "assertion":..,"federated":..,"managed":..,"live":..}
 *
 * Options: --port N (0: any; the port is printed on stdout), --lifetime S,
 *   --tenant T, --client-id C, --client-secret S, --cert PEM,
 *   --federated-token TEXT, --identity-header H, --mi-client-id C,
 *   --scope S (expected; default any ending in /.default),
 *   --redis PORT --redis-user U [--redis-admin A --redis-pass P]: every issued token
 *   becomes a password of the ACL user U (ACL SETUSER U on >token) and is
 *   removed when it expires (<token), so Redis accepts exactly the tokens
 *   that are currently valid.
 * Tokens are never printed. */
#include "common/buf.h"

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
#define MHD_Result int
#endif

static struct {
  int port, lifetime;
  const char *tenant, *client_id, *client_secret, *federated, *identity_header, *mi_client_id;
  const char *scope;
  X509 *cert;
  int redis_port;
  const char *redis_user, *redis_pass, *redis_admin;
} opt = {0, 5, "tenant1", "client1", NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char mode[16] = "ok";
static int mode_ms, mode_count = -1; /* -1: until changed */
static long n_issued, n_rejected, n_failed, n_secret, n_assertion, n_federated, n_managed;

/* live tokens (for the Redis ACL) */
struct live {
  char tok[80];
  time_t exp;
};
static struct live lives[1024];
static size_t nlive;
static redisContext *rds;

static redisReply *rcmd(const char *fmt, const char *a, const char *b)
{
  redisReply *r;
  if (!rds)
    return NULL;
  r = redisCommand(rds, fmt, a, b);
  if (!r || r->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, "tokensvc: redis: %s\n", r ? r->str : rds->errstr);
    exit(1);
  }
  return r;
}

/* Redis 6.2 added channel rules (&*); 6.0 (Debian 11) allows every channel
 * and refuses the rule */
static bool acl_channels = true;

static void acl_add(const char *tok, time_t exp)
{
  char pw[100];
  snprintf(pw, sizeof pw, ">%s", tok);
  if (rds) {
    if (acl_channels)
      freeReplyObject(rcmd("ACL SETUSER %s on %s ~* &* +@all", opt.redis_user, pw));
    else
      freeReplyObject(rcmd("ACL SETUSER %s on %s ~* +@all", opt.redis_user, pw));
  }
  if (nlive < sizeof lives / sizeof lives[0]) {
    snprintf(lives[nlive].tok, sizeof lives[nlive].tok, "%s", tok);
    lives[nlive++].exp = exp;
  }
}

static void *expirer(void *arg)
{
  (void)arg;
  for (;;) {
    size_t i;
    time_t now = time(NULL);
    pthread_mutex_lock(&mu);
    for (i = 0; i < nlive;) {
      if (lives[i].exp <= now) {
        char pw[100];
        snprintf(pw, sizeof pw, "<%s", lives[i].tok);
        if (rds)
          freeReplyObject(rcmd("ACL SETUSER %s %s", opt.redis_user, pw));
        lives[i] = lives[--nlive];
      } else {
        i++;
      }
    }
    pthread_mutex_unlock(&mu);
    usleep(100 * 1000);
  }
  return NULL;
}

/* ---- helpers ---------------------------------------------------------- */

static int hexval(int c)
{
  return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* value of name in an x-www-form-urlencoded body (decoded, malloc), or NULL */
static char *form_get(const char *body, const char *name)
{
  size_t nl = strlen(name);
  const char *p = body;
  while (p && *p) {
    const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
    if ((size_t)(end - p) > nl && !strncmp(p, name, nl) && p[nl] == '=') {
      const char *v = p + nl + 1;
      char *out = malloc((size_t)(end - v) + 1), *o = out;
      for (; v < end; v++) {
        if (*v == '+')
          *o++ = ' ';
        else if (*v == '%' && v + 2 < end + 1 && isxdigit((unsigned char)v[1]) &&
                 isxdigit((unsigned char)v[2])) {
          *o++ = (char)(hexval((unsigned char)v[1]) * 16 + hexval((unsigned char)v[2]));
          v += 2;
        } else
          *o++ = *v;
      }
      *o = '\0';
      return out;
    }
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}

static unsigned char *b64url_dec(const char *s, size_t n, size_t *outlen)
{
  char *t = malloc(n + 4);
  size_t i, m = n;
  unsigned char *out;
  int k;
  for (i = 0; i < n; i++)
    t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
  while (m % 4)
    t[m++] = '=';
  out = malloc(m / 4 * 3 + 1);
  k = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
  free(t);
  if (k < 0) {
    free(out);
    return NULL;
  }
  while (m > n) { /* EVP_DecodeBlock counts padding as zero bytes */
    k--;
    m--;
  }
  *outlen = (size_t)k;
  out[k] = 0;
  return out;
}

static void b64url_enc(const unsigned char *in, size_t n, char *out)
{
  int k = EVP_EncodeBlock((unsigned char *)out, in, (int)n), i;
  while (k > 0 && out[k - 1] == '=')
    out[--k] = 0;
  for (i = 0; i < k; i++)
    out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

/* why the assertion is not acceptable, or NULL */
static const char *check_jwt(const char *jwt, const char *aud)
{
  const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  unsigned char *hdr = NULL, *pay = NULL, *sig = NULL;
  size_t hl, pl, sl;
  cJSON *h = NULL, *p = NULL;
  const char *why = NULL;
  unsigned char dg[32], dg1[20];
  unsigned int dl = 32, dl1 = 20;
  char t256[64], t1[40];
  EVP_MD_CTX *md = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  time_t now = time(NULL);

  if (!opt.cert)
    return "no certificate registered for this application";
  if (!d1 || !d2)
    return "not a JWS";
  hdr = b64url_dec(jwt, (size_t)(d1 - jwt), &hl);
  pay = b64url_dec(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
  sig = b64url_dec(d2 + 1, strlen(d2 + 1), &sl);
  if (!hdr || !pay || !sig) {
    why = "bad base64url";
    goto out;
  }
  h = cJSON_Parse((char *)hdr);
  p = cJSON_Parse((char *)pay);
  if (!h || !p) {
    why = "header or claims not JSON";
    goto out;
  }
  X509_digest(opt.cert, EVP_sha256(), dg, &dl);
  X509_digest(opt.cert, EVP_sha1(), dg1, &dl1);
  b64url_enc(dg, dl, t256);
  b64url_enc(dg1, dl1, t1);
#define JS(o, k)                                                                                   \
  (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, k))                                          \
       ? cJSON_GetObjectItemCaseSensitive(o, k)->valuestring                                       \
       : "")
#define JN(o, k)                                                                                   \
  (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, k))                                          \
       ? cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble                                       \
       : -1)
  if (strcmp(JS(h, "alg"), "PS256") || strcmp(JS(h, "typ"), "JWT"))
    why = "alg must be PS256 and typ JWT";
  else if (strcmp(JS(h, "x5t#S256"), t256) || strcmp(JS(h, "x5t"), t1))
    why = "x5t/x5t#S256 do not name the registered certificate";
  else if (strcmp(JS(p, "aud"), aud))
    why = "aud is not the token endpoint";
  else if (strcmp(JS(p, "iss"), opt.client_id) || strcmp(JS(p, "sub"), opt.client_id))
    why = "iss/sub are not the client id";
  else if (strlen(JS(p, "jti")) != 36)
    why = "jti is not a GUID";
  else if (JN(p, "exp") < (double)now || JN(p, "nbf") > (double)now + 60 ||
           JN(p, "exp") > (double)now + 3600)
    why = "exp/nbf out of range";
  if (why)
    goto out;
  md = EVP_MD_CTX_new();
  if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(opt.cert)) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
      EVP_DigestVerifyUpdate(md, jwt, (size_t)(d2 - jwt)) != 1 ||
      EVP_DigestVerifyFinal(md, sig, sl) != 1)
    why = "signature does not verify with the certificate's key";
out:
  EVP_MD_CTX_free(md);
  cJSON_Delete(h);
  cJSON_Delete(p);
  free(hdr);
  free(pay);
  free(sig);
  return why;
}

/* ---- HTTP --------------------------------------------------------------- */

struct req {
  struct buf body;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result rc;
  MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
  rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result oauth_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *desc)
{
  char b[512];
  pthread_mutex_lock(&mu);
  n_rejected++;
  pthread_mutex_unlock(&mu);
  snprintf(b, sizeof b,
           "{\"error\":\"%s\",\"error_description\":\"%s\\r\\nTrace ID: "
           "00000000-0000-0000-0000-000000000000\",\"error_codes\":[7000215],\"timestamp\":"
           "\"2026-01-01 00:00:00Z\"}",
           code, desc);
  return answer(c, status, b);
}

/* apply the failure mode; returns true when it answered */
static bool scripted(struct MHD_Connection *c, enum MHD_Result *rc)
{
  char m[16];
  int ms;
  pthread_mutex_lock(&mu);
  snprintf(m, sizeof m, "%s", mode);
  ms = mode_ms;
  if (strcmp(m, "ok") && mode_count > 0 && --mode_count == 0)
    snprintf(mode, sizeof mode, "ok");
  pthread_mutex_unlock(&mu);
  if (!strcmp(m, "delay")) {
    usleep((useconds_t)ms * 1000);
    return false;
  }
  if (!strcmp(m, "ok"))
    return false;
  pthread_mutex_lock(&mu);
  n_failed++;
  pthread_mutex_unlock(&mu);
  if (!strcmp(m, "fail"))
    *rc = answer(c, 500,
                 "{\"error\":\"temporarily_unavailable\",\"error_description\":\"AADSTS50196: "
                 "the server is busy\"}");
  else if (!strcmp(m, "refuse"))
    *rc = answer(c, 401,
                 "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                 "Invalid client secret provided.\"}");
  else
    *rc = answer(c, 200, "<html><body>Service Unavailable</body></html>");
  return true;
}

static void new_token(char *out, size_t n, time_t *exp)
{
  unsigned char r[16];
  char hex[33];
  int i;
  static long seq;
  RAND_bytes(r, sizeof r);
  for (i = 0; i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", r[i]);
  pthread_mutex_lock(&mu);
  seq++;
  snprintf(out, n, "tok%ld.%s", seq, hex);
  *exp = time(NULL) + opt.lifetime;
  n_issued++;
  acl_add(out, *exp);
  pthread_mutex_unlock(&mu);
}

static enum MHD_Result token_endpoint(struct MHD_Connection *c, const char *url, const char *body)
{
  char aud[256], tok[80], b[512], path[160];
  char *grant = form_get(body, "grant_type"), *cid = form_get(body, "client_id");
  char *scope = form_get(body, "scope"), *secret = form_get(body, "client_secret");
  char *atype = form_get(body, "client_assertion_type"), *as = form_get(body, "client_assertion");
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  enum MHD_Result rc;
  time_t exp;
  int kind = 0;

  snprintf(path, sizeof path, "/%s/oauth2/v2.0/token", opt.tenant);
  snprintf(aud, sizeof aud, "http://127.0.0.1:%d%s", opt.port, path);
  if (strcmp(url, path))
    rc = oauth_error(c, 400, "invalid_tenant", "AADSTS90002: Tenant not found.");
  else if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33))
    rc = oauth_error(c, 400, "invalid_request",
                     "AADSTS900144: the request body must be application/x-www-form-urlencoded");
  else if (!grant || strcmp(grant, "client_credentials"))
    rc = oauth_error(c, 400, "unsupported_grant_type", "AADSTS70003: grant_type");
  else if (!cid || strcmp(cid, opt.client_id))
    rc = oauth_error(c, 400, "unauthorized_client", "AADSTS700016: Application not found.");
  else if (!scope ||
           (opt.scope ? strcmp(scope, opt.scope) != 0
                      : (strlen(scope) < 10 || strcmp(scope + strlen(scope) - 9, "/.default"))))
    rc = oauth_error(c, 400, "invalid_scope", "AADSTS70011: The provided scope is not valid.");
  else if (secret && opt.client_secret && !strcmp(secret, opt.client_secret) && !as)
    kind = 1;
  else if (secret)
    rc = oauth_error(c, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
  else if (!atype || strcmp(atype, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") || !as)
    rc = oauth_error(c, 400, "invalid_request",
                     "AADSTS7000216: client_assertion or client_secret is required");
  else if (opt.federated && !strcmp(as, opt.federated))
    kind = 3;
  else {
    const char *why = check_jwt(as, aud);
    if (why)
      rc = oauth_error(c, 401, "invalid_client", why);
    else
      kind = 2;
  }
  if (kind && !scripted(c, &rc)) {
    new_token(tok, sizeof tok, &exp);
    pthread_mutex_lock(&mu);
    if (kind == 1)
      n_secret++;
    else if (kind == 2)
      n_assertion++;
    else
      n_federated++;
    pthread_mutex_unlock(&mu);
    snprintf(b, sizeof b,
             "{\"token_type\":\"Bearer\",\"expires_in\":%d,\"ext_expires_in\":%d,"
             "\"access_token\":\"%s\"}",
             opt.lifetime, opt.lifetime, tok);
    rc = answer(c, 200, b);
  }
  free(grant);
  free(cid);
  free(scope);
  free(secret);
  free(atype);
  free(as);
  return rc;
}

static enum MHD_Result managed(struct MHD_Connection *c)
{
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-IDENTITY-HEADER");
  const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api-version");
  const char *res = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "resource");
  const char *cid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "client_id");
  char tok[80], b[768];
  time_t exp;
  enum MHD_Result rc;

  if (!h || !opt.identity_header || strcmp(h, opt.identity_header))
    return oauth_error(c, 401, "invalid_request", "X-IDENTITY-HEADER missing or wrong");
  if (!v || strcmp(v, "2019-08-01"))
    return oauth_error(c, 400, "invalid_request", "api-version must be 2019-08-01");
  if (!res || !*res || strstr(res, "/.default"))
    return oauth_error(c, 400, "invalid_request", "resource (not a scope) is required");
  if ((opt.mi_client_id && (!cid || strcmp(cid, opt.mi_client_id))) || (!opt.mi_client_id && cid))
    return oauth_error(c, 400, "invalid_request", "no such identity (client_id)");
  if (scripted(c, &rc))
    return rc;
  new_token(tok, sizeof tok, &exp);
  pthread_mutex_lock(&mu);
  n_managed++;
  pthread_mutex_unlock(&mu);
  snprintf(b, sizeof b,
           "{\"access_token\":\"%s\",\"expires_on\":\"%lld\",\"resource\":\"%.200s\","
           "\"token_type\":\"Bearer\",\"client_id\":\"%s\"}",
           tok, (long long)exp, res, cid ? cid : "00000000-0000-0000-0000-000000000001");
  return answer(c, 200, b);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
  struct req *r = *con_cls;
  (void)cls;
  (void)version;
  if (!r) {
    r = calloc(1, sizeof *r);
    buf_init(&r->body, 1 << 20);
    *con_cls = r;
    return MHD_YES;
  }
  if (*size) {
    if (buf_append(&r->body, data, *size) != APP_OK)
      return MHD_NO;
    *size = 0;
    return MHD_YES;
  }
  if (!strcmp(method, "GET") && !strcmp(url, "/msi/token"))
    return managed(c);
  if (!strcmp(method, "GET") && !strcmp(url, "/_stats")) {
    char b[512];
    pthread_mutex_lock(&mu);
    snprintf(b, sizeof b,
             "{\"issued\":%ld,\"rejected\":%ld,\"failed\":%ld,\"secret\":%ld,\"assertion\":%ld,"
             "\"federated\":%ld,\"managed\":%ld,\"live\":%zu}\n",
             n_issued, n_rejected, n_failed, n_secret, n_assertion, n_federated, n_managed, nlive);
    pthread_mutex_unlock(&mu);
    return answer(c, 200, b);
  }
  if (!strcmp(method, "GET") && !strcmp(url, "/_check")) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    bool live = false;
    time_t now = time(NULL);
    pthread_mutex_lock(&mu);
    if (h && !strncmp(h, "Bearer ", 7))
      for (size_t i = 0; i < nlive && !live; i++)
        live = !strcmp(lives[i].tok, h + 7) && lives[i].exp > now;
    pthread_mutex_unlock(&mu);
    return answer(c, live ? 200 : 401, live ? "{}\n" : "{\"error\":\"invalid_token\"}\n");
  }
  if (!strcmp(method, "POST") && !strcmp(url, "/_revoke")) {
    /* every live token stops working in Redis now (early expiry) */
    pthread_mutex_lock(&mu);
    while (nlive) {
      char pw[100];
      snprintf(pw, sizeof pw, "<%s", lives[--nlive].tok);
      if (rds)
        freeReplyObject(rcmd("ACL SETUSER %s %s", opt.redis_user, pw));
    }
    pthread_mutex_unlock(&mu);
    return answer(c, 200, "{}\n");
  }
  if (!strcmp(method, "POST") && !strcmp(url, "/_control")) {
    const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
    const char *ms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ms");
    const char *n = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "count");
    pthread_mutex_lock(&mu);
    snprintf(mode, sizeof mode, "%s", m ? m : "ok");
    mode_ms = ms ? (int)strtol(ms, NULL, 10) : 0;
    mode_count = n ? (int)strtol(n, NULL, 10) : -1;
    pthread_mutex_unlock(&mu);
    return answer(c, 200, "{}\n");
  }
  if (!strcmp(method, "POST") && strstr(url, "/oauth2/v2.0/token")) {
    if (buf_append_char(&r->body, '\0') != APP_OK)
      return MHD_NO;
    return token_endpoint(c, url, r->body.data);
  }
  return answer(c, 404, "{\"error\":\"not_found\"}");
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode t)
{
  struct req *r = *con_cls;
  (void)cls;
  (void)c;
  (void)t;
  if (r) {
    buf_cleanup(&r->body);
    free(r);
  }
  *con_cls = NULL;
}

int main(int argc, char **argv)
{
  struct MHD_Daemon *d;
  const union MHD_DaemonInfo *info;
  pthread_t th;
  sigset_t ss;
  int i, sig;

  for (i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--port"))
      opt.port = atoi(v);
    else if (!strcmp(k, "--lifetime"))
      opt.lifetime = atoi(v);
    else if (!strcmp(k, "--tenant"))
      opt.tenant = v;
    else if (!strcmp(k, "--client-id"))
      opt.client_id = v;
    else if (!strcmp(k, "--client-secret"))
      opt.client_secret = v;
    else if (!strcmp(k, "--federated-token"))
      opt.federated = v;
    else if (!strcmp(k, "--identity-header"))
      opt.identity_header = v;
    else if (!strcmp(k, "--mi-client-id"))
      opt.mi_client_id = v;
    else if (!strcmp(k, "--scope"))
      opt.scope = v;
    else if (!strcmp(k, "--redis"))
      opt.redis_port = atoi(v);
    else if (!strcmp(k, "--redis-user"))
      opt.redis_user = v;
    else if (!strcmp(k, "--redis-pass"))
      opt.redis_pass = v;
    else if (!strcmp(k, "--redis-admin"))
      opt.redis_admin = v;
    else if (!strcmp(k, "--cert")) {
      FILE *f = fopen(v, "r");
      if (!f || !(opt.cert = PEM_read_X509(f, NULL, NULL, NULL))) {
        fprintf(stderr, "tokensvc: cannot read a certificate from %s\n", v);
        return 2;
      }
      fclose(f);
    } else {
      fprintf(stderr, "tokensvc: unknown option %s\n", k);
      return 2;
    }
  }
  if (opt.redis_port) {
    rds = redisConnect("127.0.0.1", opt.redis_port);
    if (!rds || rds->err || !opt.redis_user) {
      fprintf(stderr, "tokensvc: cannot connect to redis on %d (or no --redis-user)\n",
              opt.redis_port);
      return 2;
    }
    if (opt.redis_pass && opt.redis_admin)
      freeReplyObject(rcmd("AUTH %s %s", opt.redis_admin, opt.redis_pass));
    else if (opt.redis_pass)
      freeReplyObject(rcmd("AUTH %s%s", opt.redis_pass, ""));
    {
      redisReply *v = redisCommand(rds, "INFO server");
      const char *p = v && v->type == REDIS_REPLY_STRING ? strstr(v->str, "redis_version:") : NULL;
      int major = 0, minor = 0;
      if (p && sscanf(p, "redis_version:%d.%d", &major, &minor) == 2)
        acl_channels = major > 6 || (major == 6 && minor >= 2);
      freeReplyObject(v);
    }
    /* the user exists, without a password until the first token */
    freeReplyObject(rcmd("ACL SETUSER %s%s reset", opt.redis_user, ""));
  }
  sigemptyset(&ss);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGINT);
  pthread_sigmask(SIG_BLOCK, &ss, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_create(&th, NULL, expirer, NULL);
  d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                           MHD_USE_ERROR_LOG,
                       (uint16_t)opt.port, NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                       done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "tokensvc: cannot listen on port %d\n", opt.port);
    return 1;
  }
  info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  opt.port = info ? info->port : opt.port;
  printf("%d\n", opt.port);
  fflush(stdout);
  sigwait(&ss, &sig);
  MHD_stop_daemon(d);
  return 0;
}

/* test_identity.c - Entra ID tokens without a server: credential choice,
 * token requests, token responses, the JWT client assertion (verified with
 * OpenSSL), and the cache (expiry, refresh ahead, single flight, backoff,
 * invalidation) over a scripted fetch function. The same code against a
 * real HTTP token service: tests/e2e/identity_tokens.sh. */
#include "check.h"
#include "common/base64.h"
#include "common/json.h"
#include "identity/azid.h"
#include "map/sink.h"
#include "redis/redis_entra.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- credential choice ----------------------------------------------------- */

static void test_select(void)
{
  struct idcred c;
  struct app_err err;
  struct idcred_settings s;

  TEST_CASE("select: DefaultAzureCredential order");
  memset(&s, 0, sizeof s);
  s.conn_name = "RedisConnection";
  s.identity_endpoint = "http://127.0.0.1:41000/msi/token";
  s.identity_header = "h";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  CHECK_INTEQ(c.kind, IDCRED_MANAGED);
  CHECK(c.client_id == NULL);
  CHECK_STREQ(c.authority, "https://login.microsoftonline.com");
  idcred_cleanup(&c);
  /* user-assigned: the connection's clientId wins over AZURE_CLIENT_ID */
  s.client_id = "env-client";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  CHECK_STREQ(c.client_id, "env-client");
  idcred_cleanup(&c);
  s.conn_client_id = "conn-client";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  CHECK_INTEQ(c.kind, IDCRED_MANAGED);
  CHECK_STREQ(c.client_id, "conn-client");
  idcred_cleanup(&c);
  /* workload < certificate < secret */
  s.tenant_id = "tenant1";
  s.federated_token_file = "/var/run/token";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  CHECK_INTEQ(c.kind, IDCRED_WORKLOAD);
  CHECK_STREQ(c.client_id, "env-client");
  idcred_cleanup(&c);
  s.cert_path = "/x/cert.pem";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  CHECK_INTEQ(c.kind, IDCRED_CLIENT_CERT);
  idcred_cleanup(&c);
  s.client_secret = "envsecret";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  CHECK_INTEQ(c.kind, IDCRED_CLIENT_SECRET);
  CHECK_STREQ(c.client_secret, "envsecret");
  idcred_cleanup(&c);
  /* the connection's service principal wins over everything */
  s.conn_tenant_id = "t2";
  s.conn_client_secret = "connsecret";
  s.authority_host = "https://login.microsoftonline.us/";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  CHECK_INTEQ(c.kind, IDCRED_CLIENT_SECRET);
  CHECK_STREQ(c.tenant_id, "t2");
  CHECK_STREQ(c.client_id, "conn-client");
  CHECK_STREQ(c.client_secret, "connsecret");
  CHECK_STREQ(c.authority, "https://login.microsoftonline.us");
  CHECK_CONTAINS(c.source, "RedisConnection__tenantId");
  idcred_cleanup(&c);

  TEST_CASE("select: errors name the setting, never a secret");
  s.conn_client_id = NULL; /* tenantId + clientSecret without clientId */
  CHECK(idcred_select(&s, &c, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "clientId is missing");
  CHECK(!strstr(err.msg, "connsecret"));
  memset(&s, 0, sizeof s);
  s.conn_name = "RedisConnection";
  CHECK(idcred_select(&s, &c, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "enable the Function App's identity");
  s.tenant_id = "t";
  s.client_id = "c";
  CHECK(idcred_select(&s, &c, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "AZURE_CLIENT_SECRET");
  s.client_secret = "x";
  s.authority_host = "http://login.example.com";
  CHECK(idcred_select(&s, &c, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "AZURE_AUTHORITY_HOST");
  s.authority_host = "http://localhost:8080";
  CHECK(idcred_select(&s, &c, &err) == APP_OK);
  idcred_cleanup(&c);
  s.tenant_id = "bad/tenant";
  CHECK(idcred_select(&s, &c, &err) == APP_ERR_CONFIG);
  memset(&s, 0, sizeof s);
  s.identity_endpoint = "http://10.0.0.1/msi/token";
  s.identity_header = "h";
  CHECK(idcred_select(&s, &c, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "IDENTITY_ENDPOINT");
}

/* ---- requests -------------------------------------------------------------- */

static void test_requests(void)
{
  struct idcred c;
  struct idreq r;
  struct app_err err;
  struct buf b;

  TEST_CASE("urlencode and base64url");
  buf_init(&b, 0);
  CHECK(idtok_urlencode(&b, "https://redis.azure.com/.default a+b~") == APP_OK);
  CHECK_STREQ(b.data, "https%3A%2F%2Fredis.azure.com%2F.default%20a%2Bb~");
  buf_reset(&b);
  CHECK(idtok_b64url(&b, "\xfb\xff\xfe", 3) == APP_OK);
  CHECK_STREQ(b.data, "-__-");
  buf_reset(&b);
  CHECK(idtok_b64url(&b, "ab", 2) == APP_OK);
  CHECK_STREQ(b.data, "YWI");
  buf_reset(&b);
  CHECK(idtok_scope_resource("https://org.crm.dynamics.com/.default", &b) == APP_OK);
  CHECK_STREQ(b.data, "https://org.crm.dynamics.com");
  buf_cleanup(&b);

  TEST_CASE("client secret request");
  memset(&c, 0, sizeof c);
  c.kind = IDCRED_CLIENT_SECRET;
  c.authority = xstrdup("https://login.microsoftonline.com");
  c.tenant_id = xstrdup("contoso.onmicrosoft.com");
  c.client_id = xstrdup("11111111-2222-3333-4444-555555555555");
  c.client_secret = xstrdup("s&e=c+r/e t");
  CHECK(idtok_build(&c, "https://redis.azure.com/.default", NULL, &r, &err) == APP_OK);
  CHECK(r.post);
  CHECK_STREQ(r.url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
  CHECK_STREQ(r.body.data, "client_id=11111111-2222-3333-4444-555555555555&scope=https%3A%2F%2F"
                           "redis.azure.com%2F.default&client_secret=s%26e%3Dc%2Br%2Fe%20t&"
                           "grant_type=client_credentials");
  CHECK(r.header == NULL);
  idreq_cleanup(&r);

  TEST_CASE("assertion request");
  c.kind = IDCRED_WORKLOAD;
  CHECK(idtok_build(&c, "https://x/.default", NULL, &r, &err) == APP_ERR_INPUT);
  idreq_cleanup(&r);
  CHECK(idtok_build(&c, "https://x/.default", "eyJ.a.b", &r, &err) == APP_OK);
  CHECK_CONTAINS(r.body.data, "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
                              "assertion-type%3Ajwt-bearer&client_assertion=eyJ.a.b&grant_type=");
  CHECK(!strstr(r.body.data, "client_secret"));
  idreq_cleanup(&r);

  TEST_CASE("managed identity request");
  idcred_cleanup(&c);
  c.kind = IDCRED_MANAGED;
  c.identity_endpoint = xstrdup("http://127.0.0.1:41741/msi/token/");
  c.identity_header = xstrdup("853b9a84-5bfa-4b22-a3f3-0b9a43d9ad8a");
  CHECK(idtok_build(&c, "https://redis.azure.com/.default", NULL, &r, &err) == APP_OK);
  CHECK(!r.post);
  CHECK_STREQ(r.url, "http://127.0.0.1:41741/msi/token/?api-version=2019-08-01&resource=https%3A%2F"
                     "%2Fredis.azure.com");
  CHECK_STREQ(r.header, "X-IDENTITY-HEADER: 853b9a84-5bfa-4b22-a3f3-0b9a43d9ad8a");
  CHECK_INTEQ(r.body.len, 0);
  idreq_cleanup(&r);
  c.client_id = xstrdup("aaaa-bbbb");
  CHECK(idtok_build(&c, "https://org.crm.dynamics.com/.default", NULL, &r, &err) == APP_OK);
  CHECK_STREQ(r.url, "http://127.0.0.1:41741/msi/token/?api-version=2019-08-01&resource=https%3A%2F"
                     "%2Forg.crm.dynamics.com&client_id=aaaa-bbbb");
  idreq_cleanup(&r);
  CHECK(idtok_build(&c, "", NULL, &r, &err) == APP_ERR_INPUT);
  idreq_cleanup(&r);
  idcred_cleanup(&c);
}

/* ---- responses --------------------------------------------------------------- */

struct resp_case {
  long status;
  const char *body;
  enum app_result want;
  const char *token;   /* expected token */
  int64_t expires_s;   /* expected, with now = 1000000 */
  const char *message; /* substring of the error */
};

static const struct resp_case resp_cases[] = {
    {200,
     "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
     "\"access_token\":\"eyJ0eXAi.x.y\"}",
     APP_OK, "eyJ0eXAi.x.y", 1003599, NULL},
    /* managed identity: expires_on as a string of unix seconds */
    {200,
     "{\"access_token\":\"abc\",\"expires_on\":\"1086400\",\"resource\":\"https://redis."
     "azure.com\",\"token_type\":\"Bearer\",\"client_id\":\"x\"}",
     APP_OK, "abc", 1086400, NULL},
    {200, "{\"access_token\":\"abc\",\"expires_in\":\"60\"}", APP_OK, "abc", 1000060, NULL},
    {200, "{\"access_token\":\"abc\",\"expires_on\":1000010,\"expires_in\":5}", APP_OK, "abc",
     1000010, NULL},
    {200, "{\"access_token\":\"\",\"expires_in\":60}", APP_ERR_INPUT, NULL, 0, "no access_token"},
    {200, "{\"expires_in\":60}", APP_ERR_INPUT, NULL, 0, "no access_token"},
    {200, "{\"access_token\":7,\"expires_in\":60}", APP_ERR_INPUT, NULL, 0, "no access_token"},
    {200, "{\"access_token\":\"a b\",\"expires_in\":60}", APP_ERR_INPUT, NULL, 0, "characters"},
    {200, "{\"access_token\":\"a\\r\\nAUTH\",\"expires_in\":60}", APP_ERR_INPUT, NULL, 0,
     "characters"},
    {200, "{\"access_token\":\"abc\"}", APP_ERR_INPUT, NULL, 0, "expires_in"},
    {200, "{\"access_token\":\"abc\",\"expires_in\":-5}", APP_ERR_INPUT, NULL, 0, "expires_in"},
    {200, "{\"access_token\":\"abc\",\"expires_in\":1.5}", APP_ERR_INPUT, NULL, 0, "expires_in"},
    {200, "{\"access_token\":\"abc\",\"expires_on\":\"11/27/2020 12:00:00 AM +00:00\"}",
     APP_ERR_INPUT, NULL, 0, "expires_in"},
    {200, "{\"access_token\":\"abc\",\"expires_in\":0}", APP_ERR_INPUT, NULL, 0, "expired"},
    {200, "<html>Service Unavailable</html>", APP_ERR_INPUT, NULL, 0, "not JSON"},
    {200, "", APP_ERR_INPUT, NULL, 0, "not JSON"},
    {200, "[]", APP_ERR_INPUT, NULL, 0, "no access_token"},
    {401,
     "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client "
     "secret provided.\"}",
     APP_ERR_CONFIG, NULL, 0, "HTTP 401 invalid_client: AADSTS7000215: Invalid client secret"},
    {400, "{\"error\":\"invalid_scope\",\"error_description\":\"AADSTS70011\"}", APP_ERR_CONFIG,
     NULL, 0, "invalid_scope"},
    {500, "{\"error\":\"temporarily_unavailable\"}", APP_ERR_HTTP, NULL, 0,
     "HTTP 500 temporarily_unavailable"},
    {429, "too many", APP_ERR_HTTP, NULL, 0, "HTTP 429"},
    {400, "{\"statusCode\":400,\"message\":\"No managed identity found\"}", APP_ERR_HTTP, NULL, 0,
     "No managed identity found"},
    /* an error body that carries a token-looking value is not echoed */
    {503, "{\"access_token\":\"leaked\",\"error\":\"x\\u0001y\"}", APP_ERR_HTTP, NULL, 0,
     "HTTP 503 x?y"},
};

static void test_responses(void)
{
  size_t i;
  for (i = 0; i < sizeof resp_cases / sizeof resp_cases[0]; i++) {
    const struct resp_case *k = &resp_cases[i];
    struct idtok t = {0};
    struct app_err err;
    enum app_result r;
    TEST_CASE(k->body);
    app_err_clear(&err);
    r = idtok_parse(k->status, k->body, strlen(k->body), 1000000, &t, &err);
    CHECK_MSG(r == k->want, "got %d (%s)", (int)r, err.msg);
    if (k->token) {
      CHECK_STREQ(t.access_token, k->token);
      CHECK_INTEQ(t.expires_s, k->expires_s);
    } else {
      CHECK(t.access_token == NULL);
      CHECK_CONTAINS(err.msg, k->message);
      CHECK(!strstr(err.msg, "leaked"));
    }
    idtok_cleanup(&t);
  }
  {
    /* refresh_in and the size cap */
    struct idtok t = {0};
    struct app_err err;
    const char *b = "{\"access_token\":\"abc\",\"expires_in\":3600,\"refresh_in\":1800}";
    char *big;
    TEST_CASE("refresh_in, caps");
    CHECK(idtok_parse(200, b, strlen(b), 1000, &t, &err) == APP_OK);
    CHECK_INTEQ(t.refresh_s, 2800);
    idtok_cleanup(&t);
    big = malloc(IDTOK_MAX_TOKEN_BYTES + 100);
    memset(big, 'a', IDTOK_MAX_TOKEN_BYTES + 100);
    memcpy(big, "{\"access_token\":\"", 17);
    memcpy(big + IDTOK_MAX_TOKEN_BYTES + 80, "\",\"expires_in\":9}", 18);
    CHECK(idtok_parse(200, big, strlen(big), 1000, &t, &err) == APP_ERR_INPUT);
    CHECK_CONTAINS(err.msg, "longer than");
    CHECK(idtok_parse(200, big, IDTOK_MAX_RESPONSE_BYTES + 1, 1000, &t, &err) == APP_ERR_LIMIT);
    free(big);
  }
}

/* ---- JWT client assertion ------------------------------------------------------- */

static unsigned char *b64url_decode(const char *s, size_t n, size_t *outlen)
{
  char *t = malloc(n + 4);
  unsigned char *out = malloc(n + 4);
  size_t i, m = n, bad;
  for (i = 0; i < n; i++)
    t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
  while (m % 4)
    t[m++] = '=';
  if (!base64_decode(t, m, out, outlen, &bad)) {
    free(out);
    out = NULL;
  }
  free(t);
  return out;
}

/* A fresh key of type (EVP_PKEY_RSA, 2048 bits, or EVP_PKEY_EC, P-256)
 * through EVP_PKEY_CTX, which OpenSSL 1.1.1 (Debian 11) has as well as 3.x
 * (EVP_RSA_gen / EVP_EC_gen are 3.0 only). NULL on failure. */
static EVP_PKEY *gen_key(int type)
{
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(type, NULL);
  EVP_PKEY *k = NULL;
  if (!ctx)
    return NULL;
  if (EVP_PKEY_keygen_init(ctx) > 0 &&
      (type == EVP_PKEY_RSA
           ? EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048)
           : EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1)) > 0 &&
      EVP_PKEY_keygen(ctx, &k) <= 0)
    k = NULL;
  EVP_PKEY_CTX_free(ctx);
  return k;
}

static void test_assertion(void)
{
  EVP_PKEY *key = gen_key(EVP_PKEY_RSA);
  X509 *cert = X509_new();
  struct buf a;
  struct app_err err;
  const char *d1, *d2;
  unsigned char *hdr, *pay, *sig, sha[SHA256_DIGEST_LENGTH];
  unsigned int shan = sizeof sha;
  size_t hl, pl, sl;
  struct arena ar;
  struct json *h = NULL, *p = NULL;
  struct buf thumb;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  int64_t v;

  TEST_CASE("JWT client assertion");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             (const unsigned char *)"test", -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  CHECK(X509_sign(cert, key, EVP_sha256()) > 0);
  buf_init(&a, 0);
  CHECK(idtok_jwt_assertion(key, cert, "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                            "client1", "0f8fad5b-d9cb-469f-a165-70867728950e", 1700000000, &a,
                            &err) == APP_OK);
  d1 = strchr(a.data, '.');
  d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  CHECK(d1 && d2);
  if (!d1 || !d2)
    return;
  hdr = b64url_decode(a.data, (size_t)(d1 - a.data), &hl);
  pay = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &pl);
  sig = b64url_decode(d2 + 1, strlen(d2 + 1), &sl);
  CHECK(hdr && pay && sig);
  arena_init(&ar, 0);
  CHECK(json_parse(&ar, (char *)hdr, hl, 8, &h, &err) == APP_OK);
  CHECK(json_parse(&ar, (char *)pay, pl, 8, &p, &err) == APP_OK);
  CHECK_STREQ(json_get_str(h, "alg"), "PS256");
  CHECK_STREQ(json_get_str(h, "typ"), "JWT");
  X509_digest(cert, EVP_sha256(), sha, &shan);
  buf_init(&thumb, 0);
  CHECK(idtok_b64url(&thumb, sha, shan) == APP_OK);
  CHECK_STREQ(json_get_str(h, "x5t#S256"), thumb.data);
  CHECK(json_get_str(h, "x5t") != NULL && strlen(json_get_str(h, "x5t")) == 27);
  CHECK_STREQ(json_get_str(p, "aud"), "https://login.microsoftonline.com/t/oauth2/v2.0/token");
  CHECK_STREQ(json_get_str(p, "iss"), "client1");
  CHECK_STREQ(json_get_str(p, "sub"), "client1");
  CHECK_STREQ(json_get_str(p, "jti"), "0f8fad5b-d9cb-469f-a165-70867728950e");
  CHECK(json_number_i64(json_get(p, "nbf"), &v) && v == 1700000000);
  CHECK(json_number_i64(json_get(p, "exp"), &v) && v == 1700000600);
  /* the signature verifies with the certificate's public key (RSA-PSS) */
  CHECK(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(cert)) == 1);
  CHECK(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
  CHECK(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1);
  CHECK(EVP_DigestVerify(md, sig, sl, (const unsigned char *)a.data, (size_t)(d2 - a.data)) == 1);
  EVP_MD_CTX_free(md);
  arena_cleanup(&ar);
  buf_cleanup(&thumb);
  free(hdr);
  free(pay);
  free(sig);
  buf_cleanup(&a);
  {
    /* a key that is not RSA is refused with a clear message */
    EVP_PKEY *ec = gen_key(EVP_PKEY_EC);
    buf_init(&a, 0);
    CHECK(idtok_jwt_assertion(ec, cert, "aud", "c", "j", 1, &a, &err) == APP_ERR_CONFIG);
    CHECK_CONTAINS(err.msg, "not an RSA key");
    buf_cleanup(&a);
    EVP_PKEY_free(ec);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
}

/* ---- the cache over a scripted fetch ------------------------------------------ */

struct script {
  atomic_int calls;
  int lifetime_s;   /* of issued tokens */
  int sleep_ms;     /* each fetch takes this long */
  atomic_int fail;  /* fail the next n fetches */
  int refresh_in_s; /* 0: none */
};

static enum app_result fetch(void *ctx, const char *scope, int timeout_ms, struct idtok *out,
                             struct app_err *err)
{
  struct script *s = ctx;
  int n = atomic_fetch_add(&s->calls, 1) + 1;
  char tok[64];
  (void)timeout_ms;
  if (s->sleep_ms)
    usleep((useconds_t)s->sleep_ms * 1000);
  if (atomic_load(&s->fail) > 0) {
    atomic_fetch_sub(&s->fail, 1);
    return app_err_set(err, APP_ERR_HTTP, "token request refused: HTTP 500");
  }
  snprintf(tok, sizeof tok, "%s#%d", scope, n);
  out->access_token = xstrdup(tok);
  out->expires_s = (int64_t)time(NULL) + s->lifetime_s;
  out->refresh_s = s->refresh_in_s ? (int64_t)time(NULL) + s->refresh_in_s : 0;
  return APP_OK;
}

struct getter {
  struct azid *p;
  char got[64];
  enum app_result r;
};

static void *get_thread(void *arg)
{
  struct getter *g = arg;
  struct azid_token t;
  struct app_err err;
  g->r = azid_get(g->p, "s1", sink_now_ms() + 5000, &t, &err);
  if (g->r == APP_OK)
    snprintf(g->got, sizeof g->got, "%s", t.value);
  azid_token_cleanup(&t);
  return NULL;
}

static void test_cache(void)
{
  struct script s;
  struct azid *p;
  struct azid_options o;
  struct azid_token t, t2;
  struct azid_stats st;
  struct app_err err;
  int64_t t0;
  int i;

  TEST_CASE("cache: per scope, hits");
  memset(&s, 0, sizeof s);
  s.lifetime_s = 3600;
  memset(&o, 0, sizeof o);
  o.no_thread = true;
  o.backoff_first_ms = 200;
  CHECK(azid_create_fetch(fetch, &s, &o, &p, &err) == APP_OK);
  CHECK(!azid_cached(p, "s1", &t));
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  CHECK_STREQ(t.value, "s1#1");
  CHECK(t.expires_ms > sink_now_ms() + 3590 * 1000);
  azid_token_cleanup(&t);
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  CHECK_STREQ(t.value, "s1#1");
  CHECK(azid_get(p, "s2", sink_now_ms() + 1000, &t2, &err) == APP_OK);
  CHECK_STREQ(t2.value, "s2#2");
  CHECK(t2.serial != t.serial);
  azid_token_cleanup(&t2);
  CHECK(azid_cached(p, "s1", &t2) && !strcmp(t2.value, "s1#1"));
  azid_token_cleanup(&t2);
  CHECK_INTEQ(atomic_load(&s.calls), 2);

  TEST_CASE("cache: invalidate");
  {
    uint64_t before = azid_serial(p);
    azid_invalidate(p, "s1", t.serial + 1000); /* another token: ignored */
    CHECK(azid_cached(p, "s1", &t2));
    azid_token_cleanup(&t2);
    azid_invalidate(p, "s1", t.serial);
    CHECK(!azid_cached(p, "s1", &t2));
    CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t2, &err) == APP_OK);
    CHECK_STREQ(t2.value, "s1#3");
    CHECK(azid_serial(p) != before);
    azid_token_cleanup(&t2);
  }
  azid_token_cleanup(&t);
  azid_destroy(p);

  TEST_CASE("cache: expiry and refresh (caller's thread)");
  memset(&s, 0, sizeof s);
  s.lifetime_s = 4; /* (expires_s is whole seconds: 3-4 s) refresh at half, 1.5-2 s */
  CHECK(azid_create_fetch(fetch, &s, &o, &p, &err) == APP_OK);
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  azid_token_cleanup(&t);
  usleep(500 * 1000);
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  CHECK_STREQ(t.value, "s1#1");
  azid_token_cleanup(&t);
  usleep(1600 * 1000); /* past the refresh point */
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  CHECK_STREQ(t.value, "s1#2");
  azid_token_cleanup(&t);
  azid_destroy(p);

  TEST_CASE("cache: failures back off, then recover");
  memset(&s, 0, sizeof s);
  s.lifetime_s = 3600;
  atomic_store(&s.fail, 2);
  CHECK(azid_create_fetch(fetch, &s, &o, &p, &err) == APP_OK);
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_ERR_HTTP);
  CHECK_CONTAINS(err.msg, "HTTP 500");
  /* within the backoff and a deadline before it ends: the last error, no fetch */
  CHECK(azid_get(p, "s1", sink_now_ms() + 50, &t, &err) == APP_ERR_HTTP);
  CHECK_CONTAINS(err.msg, "backing off");
  CHECK_INTEQ(atomic_load(&s.calls), 1);
  /* a deadline past the backoff: waits for it, fails again (2nd), backs off 400 ms */
  t0 = sink_now_ms();
  CHECK(azid_get(p, "s1", sink_now_ms() + 300, &t, &err) == APP_ERR_HTTP);
  CHECK(sink_now_ms() - t0 >= 100);
  CHECK_INTEQ(atomic_load(&s.calls), 2);
  CHECK(azid_get(p, "s1", sink_now_ms() + 2000, &t, &err) == APP_OK);
  CHECK_STREQ(t.value, "s1#3");
  azid_token_cleanup(&t);
  azid_get_stats(p, &st);
  CHECK_INTEQ(st.failures, 2);
  azid_destroy(p);

  TEST_CASE("cache: concurrent callers share one fetch");
  memset(&s, 0, sizeof s);
  s.lifetime_s = 3600;
  s.sleep_ms = 200;
  CHECK(azid_create_fetch(fetch, &s, &o, &p, &err) == APP_OK);
  {
    struct getter g[12];
    pthread_t th[12];
    for (i = 0; i < 12; i++) {
      g[i].p = p;
      g[i].got[0] = '\0';
      pthread_create(&th[i], NULL, get_thread, &g[i]);
    }
    for (i = 0; i < 12; i++) {
      pthread_join(th[i], NULL);
      CHECK(g[i].r == APP_OK);
      CHECK_STREQ(g[i].got, "s1#1");
    }
  }
  CHECK_INTEQ(atomic_load(&s.calls), 1);
  azid_get_stats(p, &st);
  CHECK(st.waits >= 1);
  /* a caller whose deadline passes while waiting for the fetch: timeout */
  CHECK(azid_cached(p, "s1", &t));
  azid_invalidate(p, "s1", t.serial);
  azid_token_cleanup(&t);
  s.sleep_ms = 400;
  {
    struct getter g = {p, "", APP_OK};
    pthread_t th;
    pthread_create(&th, NULL, get_thread, &g);
    usleep(100 * 1000);
    CHECK(azid_get(p, "s1", sink_now_ms() + 50, &t, &err) == APP_ERR_TIMEOUT);
    pthread_join(th, NULL);
    CHECK(g.r == APP_OK);
  }
  azid_destroy(p);

  TEST_CASE("cache: the refresh thread fetches ahead of expiry");
  memset(&s, 0, sizeof s);
  s.lifetime_s = 4;
  o.no_thread = false;
  CHECK(azid_create_fetch(fetch, &s, &o, &p, &err) == APP_OK);
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  CHECK_STREQ(t.value, "s1#1");
  azid_token_cleanup(&t);
  usleep(2300 * 1000); /* the thread refreshed at 1.5-2 s */
  t0 = sink_now_ms();
  CHECK(azid_cached(p, "s1", &t));
  CHECK_STREQ(t.value, "s1#2");
  azid_token_cleanup(&t);
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  CHECK_STREQ(t.value, "s1#2");
  CHECK(sink_now_ms() - t0 < 100); /* not fetched on the caller's path */
  azid_token_cleanup(&t);
  azid_get_stats(p, &st);
  CHECK(st.background >= 1);
  /* refresh_in from the issuer comes first */
  azid_destroy(p);
  memset(&s, 0, sizeof s);
  s.lifetime_s = 3600;
  s.refresh_in_s = 1;
  CHECK(azid_create_fetch(fetch, &s, &o, &p, &err) == APP_OK);
  CHECK(azid_get(p, "s1", sink_now_ms() + 1000, &t, &err) == APP_OK);
  azid_token_cleanup(&t);
  usleep(1500 * 1000);
  CHECK(azid_cached(p, "s1", &t) && strcmp(t.value, "s1#1") != 0);
  azid_token_cleanup(&t);
  azid_destroy(p);
}

/* ---- Redis settings (RedisConnection__*) ------------------------------------------ */

static const char *const *lookup_env;
static const char *lookup(const char *name)
{
  size_t i;
  for (i = 0; lookup_env[i]; i += 2)
    if (!strcmp(lookup_env[i], name))
      return lookup_env[i + 1];
  return NULL;
}

static enum app_result redis_settings(const char *const *env, struct redis_conninfo *ci,
                                      struct app_err *err)
{
  struct app_config cfg;
  enum app_result r;
  lookup_env = env;
  memset(ci, 0, sizeof *ci);
  if (config_load(&cfg, lookup, err) != APP_OK)
    return APP_ERR_INPUT;
  r = redis_conninfo_from_config(&cfg, ci, err);
  config_cleanup(&cfg);
  return r;
}

static void test_redis_settings(void)
{
  struct redis_conninfo ci;
  struct app_err err;
  static const char *const plain[] = {"RedisConnection", "h1:7000,password=pw", NULL};
  static const char *const entra[] = {"RedisConnection",
                                      "ignored:1,password=pw",
                                      "RedisConnection__redisHostName",
                                      "contoso.redis.azure.net",
                                      "RedisConnection__principalId",
                                      "p-123",
                                      "IDENTITY_ENDPOINT",
                                      "http://127.0.0.1:1/msi/token",
                                      "IDENTITY_HEADER",
                                      "h",
                                      NULL};
  static const char *const no_principal[] = {"RedisConnection__redisHostName", "h:10000", NULL};
  static const char *const options[] = {"RedisConnection__redisHostName", "h:10000,ssl=False",
                                        "RedisConnection__principalId", "p", NULL};
  static const char *const no_cred[] = {"RedisConnection__redisHostName", "h:10000",
                                        "RedisConnection__principalId", "p", NULL};

  TEST_CASE("redis settings: RedisConnection when redisHostName is unset");
  CHECK(redis_settings(plain, &ci, &err) == APP_OK);
  CHECK_STREQ(ci.host, "h1");
  CHECK(ci.identity == NULL);
  CHECK_STREQ(ci.password, "pw");
  redis_conninfo_cleanup(&ci);

  TEST_CASE("redis settings: Entra ID wins, TLS on, principal as user");
  CHECK(redis_settings(entra, &ci, &err) == APP_OK);
  CHECK_STREQ(ci.host, "contoso.redis.azure.net");
  CHECK_INTEQ(ci.port, 6380);
  CHECK(ci.ssl);
  CHECK_STREQ(ci.user, "p-123");
  CHECK(ci.password == NULL);
  CHECK(ci.identity != NULL);
  redis_conninfo_cleanup(&ci);
  redis_entra_shutdown();

  TEST_CASE("redis settings: errors");
  CHECK(redis_settings(no_principal, &ci, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "RedisConnection__principalId is required");
  redis_conninfo_cleanup(&ci);
  CHECK(redis_settings(options, &ci, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "host[:port] only");
  redis_conninfo_cleanup(&ci);
  CHECK(redis_settings(no_cred, &ci, &err) == APP_ERR_CONFIG);
  CHECK_CONTAINS(err.msg, "RedisConnection: Microsoft Entra ID credential");
  redis_conninfo_cleanup(&ci);
  redis_entra_shutdown();
}

int main(void)
{
  test_redis_settings();
  test_select();
  test_requests();
  test_responses();
  test_assertion();
  test_cache();
  return check_report("test_identity");
}

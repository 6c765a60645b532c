/* token.h - Microsoft Entra ID access tokens: which credential, the token
 * request, the token response. Pure: no I/O, no clock (callers pass now).
 *
 * Credentials, in the order Azure Identity's DefaultAzureCredential tries
 * them (the first one configured is used; see idcred_select):
 *   client secret      AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET:
 *                      POST <authority>/<tenant>/oauth2/v2.0/token,
 *                      grant_type=client_credentials
 *   client certificate AZURE_TENANT_ID + AZURE_CLIENT_ID +
 *                      AZURE_CLIENT_CERTIFICATE_PATH (PEM or PFX, with
 *                      AZURE_CLIENT_CERTIFICATE_PASSWORD when encrypted): the
 *                      same request with a JWT client assertion signed by the
 *                      certificate's key
 *   workload identity  AZURE_TENANT_ID + AZURE_CLIENT_ID +
 *                      AZURE_FEDERATED_TOKEN_FILE: the file's contents are
 *                      the client assertion
 *   managed identity   IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service,
 *                      Functions): GET <endpoint>?api-version=2019-08-01
 *                      &resource=<scope without /.default>[&client_id=...]
 *                      with the header X-IDENTITY-HEADER
 * A binding's own settings in the Functions identity-connection style
 * (<Connection>__tenantId/__clientId/__clientSecret) come first. */
#ifndef D365CDC_IDENTITY_TOKEN_H
#define D365CDC_IDENTITY_TOKEN_H

#include "common/buf.h"
#include "common/result.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDTOK_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define IDTOK_MI_API_VERSION    "2019-08-01"
/* Longest access token accepted (Entra tokens are 1-4 KB). */
#define IDTOK_MAX_TOKEN_BYTES 16384
/* Largest token response read (the cap of the HTTP client). */
#define IDTOK_MAX_RESPONSE_BYTES 65536

enum idcred_kind {
  IDCRED_NONE = 0,
  IDCRED_CLIENT_SECRET,
  IDCRED_CLIENT_CERT,
  IDCRED_WORKLOAD,
  IDCRED_MANAGED
};

/* One credential. Strings are owned (idcred_cleanup). */
struct idcred {
  enum idcred_kind kind;
  char *authority;     /* scheme://host[:port] without a trailing '/' */
  char *tenant_id;     /* secret / certificate / workload */
  char *client_id;     /* the app; for a managed identity the user-assigned one, or NULL */
  char *client_secret; /* secret: never logged */
  char *cert_path;     /* PEM (key + certificate) or PFX/PKCS#12 */
  char *cert_password; /* of an encrypted PEM key or a PFX; secret: never logged */
  char *federated_token_file;
  char *identity_endpoint;
  char *identity_header; /* secret: never logged */
  char source[96];       /* which settings chose it, for logs ("AZURE_CLIENT_SECRET") */
};

/* The settings a credential can come from ("" or NULL: unset). conn_* are
 * a binding's identity-connection settings (<Connection>__tenantId, ...),
 * conn_name the connection's name for messages ("RedisConnection"). */
struct idcred_settings {
  const char *conn_name;
  const char *conn_tenant_id, *conn_client_id, *conn_client_secret;
  const char *tenant_id, *client_id, *client_secret, *cert_path, *cert_password, *authority_host;
  const char *federated_token_file;
  const char *identity_endpoint, *identity_header;
};

struct app_config;
/* The process-wide credential settings of cfg (AZURE_*, IDENTITY_*) into
 * *out, the connection's own ones (conn_*) left NULL for the caller: a
 * binding without identity-connection settings (the Dataverse client) uses
 * it as it is. */
void idcred_settings_from_config(const struct app_config *cfg, struct idcred_settings *out);

/* Pick the credential (order above): the binding's tenantId+clientSecret
 * (client secret; clientId is the app), else AZURE_* client secret, client
 * certificate, workload identity, else the managed identity (user-assigned
 * when the binding's clientId or AZURE_CLIENT_ID is set). APP_ERR_CONFIG
 * with a message naming the missing or bad setting when nothing usable is
 * configured, when a set is incomplete (tenantId without clientSecret), or
 * an endpoint is not https (http is allowed for loopback hosts only, as
 * App Service's own endpoint is). Never copies a secret into the message. */
APP_NODISCARD enum app_result idcred_select(const struct idcred_settings *s, struct idcred *out,
                                            struct app_err *err);
void idcred_cleanup(struct idcred *c);

/* ---- request ----------------------------------------------------------- */

struct idreq {
  char *url;       /* owned */
  char *header;    /* one extra header line ("X-IDENTITY-HEADER: ...") or NULL; secret */
  struct buf body; /* application/x-www-form-urlencoded; empty for GET */
  bool post;
};

/* "https://redis.azure.com/.default" -> "https://redis.azure.com" (the
 * managed identity endpoint takes a resource, not a scope). */
APP_NODISCARD enum app_result idtok_scope_resource(const char *scope, struct buf *out);

/* <authority>/<tenant>/oauth2/v2.0/token */
APP_NODISCARD enum app_result idtok_token_url(const struct idcred *c, struct buf *out);

/* Build the token request of credential c for scope. assertion: the client
 * assertion for IDCRED_CLIENT_CERT (idtok_jwt_assertion) and
 * IDCRED_WORKLOAD (the federated token file's contents); NULL otherwise.
 * Caller frees with idreq_cleanup (also on failure). */
APP_NODISCARD enum app_result idtok_build(const struct idcred *c, const char *scope,
                                          const char *assertion, struct idreq *out,
                                          struct app_err *err);
void idreq_cleanup(struct idreq *r);

/* Append s form-urlencoded (RFC 3986 unreserved kept, everything else %XX). */
APP_NODISCARD enum app_result idtok_urlencode(struct buf *b, const char *s);

/* Append base64url (no padding) of in[0..n). */
APP_NODISCARD enum app_result idtok_b64url(struct buf *b, const void *in, size_t n);

/* A client assertion (RFC 7523, Microsoft identity platform certificate
 * credentials): header {"alg":"PS256","typ":"JWT","x5t":<SHA-1 thumbprint>,
 * "x5t#S256":<SHA-256 thumbprint>}, claims aud=token URL, iss=sub=client
 * id, jti=jti (a GUID), nbf=iat=now_s, exp=now_s+600; signed RSA-PSS
 * SHA-256 with key. APP_ERR_CONFIG when the key is not RSA or signing
 * fails. */
APP_NODISCARD enum app_result idtok_jwt_assertion(EVP_PKEY *key, X509 *cert, const char *aud,
                                                  const char *client_id, const char *jti,
                                                  int64_t now_s, struct buf *out,
                                                  struct app_err *err);

/* ---- response ---------------------------------------------------------- */

struct idtok {
  char *access_token; /* owned (free); secret */
  int64_t expires_s;  /* unix seconds */
  int64_t refresh_s;  /* unix seconds the issuer suggests refreshing (refresh_in), or 0 */
};

/* Parse an HTTP response of the token endpoint or the managed identity
 * endpoint. status 200 and a JSON object with a string access_token
 * (printable ASCII, no spaces, at most IDTOK_MAX_TOKEN_BYTES) and its
 * lifetime as expires_in (seconds from now_s) or expires_on (unix seconds),
 * either a number or a string of digits; refresh_in when present. Else:
 *   APP_ERR_CONFIG  400/401/403 with an OAuth error the caller cannot fix by
 *                   retrying (invalid_client, unauthorized_client,
 *                   invalid_scope, ...); still retried later, with backoff
 *   APP_ERR_HTTP    another status (429, 5xx, ...) or an error body
 *   APP_ERR_INPUT   200 with a body that is not a usable token response
 * The message carries the status and the response's error and
 * error_description (printable characters, cut at 160), never the body
 * itself or a token. *out is untouched on failure. */
APP_NODISCARD enum app_result idtok_parse(long status, const char *body, size_t len, int64_t now_s,
                                          struct idtok *out, struct app_err *err);
void idtok_cleanup(struct idtok *t);

#endif

/* redis_conn.c - connection string, transport (TCP + OpenSSL), handshake,
 * pipelined exchanges; the one place that turns socket, OpenSSL and hiredis
 * errors into enum app_result. */
#include "redis/redis_conn.h"

#include "common/log.h"
#include "common/metrics.h"
#include "identity/azid.h"
#include "map/sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ====================================================================== */
/* Connection string                                                        */
/* ====================================================================== */

/* Options StackExchange.Redis accepts that change nothing for us. */
static const char *const ignored_options[] = {"allowAdmin",
                                              "asyncTimeout",
                                              "channelPrefix",
                                              "configChannel",
                                              "configCheckSeconds",
                                              "connectRetry",
                                              "highPriorityThreads",
                                              "keepAlive",
                                              "preserveAsyncOrder",
                                              "proxy",
                                              "resolveDns",
                                              "responseTimeout",
                                              "serviceName",
                                              "sslProtocols",
                                              "tiebreaker",
                                              "version",
                                              "writeBuffer",
                                              "checkCertificateRevocation",
                                              "tunnel",
                                              "setlib",
                                              "protocol",
                                              NULL};

static char *trim(char *s)
{
  char *e;
  while (*s == ' ' || *s == '\t')
    s++;
  e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
    *--e = '\0';
  return s;
}

/* StackExchange.Redis booleans: true/false (any case), 1/0, yes/no, on/off */
static bool parse_bool(const char *v, bool *out)
{
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
    *out = true;
    return true;
  }
  if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
    *out = false;
    return true;
  }
  return false;
}

static bool parse_int(const char *v, long min, long max, int *out)
{
  char *end = NULL;
  long n;
  if (!*v)
    return false;
  errno = 0;
  n = strtol(v, &end, 10);
  if (errno || *end || n < min || n > max)
    return false;
  *out = (int)n;
  return true;
}

/* endpoint: "host", "host:port", "[v6]", "[v6]:port", bare "v6". Port 0 =
 * not given. */
static enum app_result parse_endpoint(const char *item, size_t pos, char **out_host, int *out_port,
                                      struct app_err *err)
{
  const char *colon, *host = item, *port = NULL;
  size_t hlen;
  int p = 0;

  if (item[0] == '[') {
    const char *close = strchr(item, ']');
    if (!close || close == item + 1)
      return app_err_set(err, APP_ERR_CONFIG,
                         "RedisConnection: endpoint '%s' at position %zu: missing ']' after an "
                         "IPv6 address",
                         item, pos);
    host = item + 1;
    hlen = (size_t)(close - host);
    if (close[1] == ':')
      port = close + 2;
    else if (close[1])
      return app_err_set(err, APP_ERR_CONFIG,
                         "RedisConnection: endpoint '%s' at position %zu: expected ':port' after "
                         "']'",
                         item, pos);
  } else {
    colon = strchr(item, ':');
    if (colon && strchr(colon + 1, ':')) {
      /* several colons and no brackets: a bare IPv6 address, no port */
      struct in6_addr a6;
      if (inet_pton(AF_INET6, item, &a6) != 1)
        return app_err_set(err, APP_ERR_CONFIG,
                           "RedisConnection: endpoint '%s' at position %zu is not host:port (write "
                           "IPv6 addresses as [addr]:port)",
                           item, pos);
      hlen = strlen(item);
    } else if (colon) {
      hlen = (size_t)(colon - item);
      port = colon + 1;
    } else {
      hlen = strlen(item);
    }
  }
  if (hlen == 0)
    return app_err_set(err, APP_ERR_CONFIG,
                       "RedisConnection: endpoint '%s' at position %zu has an empty host", item,
                       pos);
  if (hlen > 253)
    return app_err_set(err, APP_ERR_CONFIG,
                       "RedisConnection: host name at position %zu is longer than 253 bytes", pos);
  if (port && !parse_int(port, 0, 65535, &p))
    return app_err_set(err, APP_ERR_CONFIG,
                       "RedisConnection: endpoint '%s' at position %zu: port '%s' is not a number "
                       "in 0..65535",
                       item, pos, port);
  *out_host = xstrndup(host, hlen);
  *out_port = p;
  return APP_OK;
}

static void add_warning(struct redis_conninfo *ci, const char *fmt, ...) APP_PRINTF(2, 3);
static void add_warning(struct redis_conninfo *ci, const char *fmt, ...)
{
  size_t used = strlen(ci->warnings);
  va_list ap;
  if (used && used + 2 < sizeof ci->warnings) {
    memcpy(ci->warnings + used, "; ", 3);
    used += 2;
  }
  va_start(ap, fmt);
  vsnprintf(ci->warnings + used, sizeof ci->warnings - used, fmt, ap);
  va_end(ap);
}

static void set_str(char **field, const char *v)
{
  free(*field);
  *field = *v ? xstrdup(v) : NULL;
}

static enum app_result apply_option(struct redis_conninfo *ci, const char *key, const char *v,
                                    size_t pos, bool *ssl_seen, struct app_err *err)
{
  size_t i;
  if (!strcasecmp(key, "password")) {
    set_str(&ci->password, v);
  } else if (!strcasecmp(key, "user")) {
    set_str(&ci->user, v);
  } else if (!strcasecmp(key, "ssl")) {
    if (!parse_bool(v, &ci->ssl))
      return app_err_set(err, APP_ERR_CONFIG,
                         "RedisConnection: option ssl at position %zu: '%s' is not a boolean "
                         "(true/false)",
                         pos, v);
    *ssl_seen = true;
  } else if (!strcasecmp(key, "sslHost")) {
    set_str(&ci->ssl_host, v);
  } else if (!strcasecmp(key, "abortConnect")) {
    if (!parse_bool(v, &ci->abort_connect))
      return app_err_set(err, APP_ERR_CONFIG,
                         "RedisConnection: option abortConnect at position %zu: '%s' is not a "
                         "boolean (true/false)",
                         pos, v);
  } else if (!strcasecmp(key, "connectTimeout") || !strcasecmp(key, "syncTimeout")) {
    int *field =
        !strcasecmp(key, "connectTimeout") ? &ci->connect_timeout_ms : &ci->sync_timeout_ms;
    if (!parse_int(v, 1, 3600000, field))
      return app_err_set(err, APP_ERR_CONFIG,
                         "RedisConnection: option %s at position %zu: '%s' is not a number of "
                         "milliseconds in 1..3600000",
                         key, pos, v);
  } else if (!strcasecmp(key, "defaultDatabase")) {
    if (!parse_int(v, 0, 1000000, &ci->database))
      return app_err_set(err, APP_ERR_CONFIG,
                         "RedisConnection: option defaultDatabase at position %zu: '%s' is not a "
                         "database number >= 0",
                         pos, v);
  } else if (!strcasecmp(key, "name")) {
    set_str(&ci->client_name, v);
  } else {
    for (i = 0; ignored_options[i]; i++)
      if (!strcasecmp(key, ignored_options[i]))
        return APP_OK;
    if (key[0] == '$')
      add_warning(ci, "command rename '%s' ignored", key);
    else
      add_warning(ci, "unknown option '%s' ignored", key);
  }
  return APP_OK;
}

enum app_result redis_conninfo_parse(const char *text, struct redis_conninfo *out,
                                     struct app_err *err)
{
  char *copy = NULL, *p, *item;
  bool ssl_seen = false;
  enum app_result r = APP_OK;
  size_t pos;

  memset(out, 0, sizeof *out);
  out->connect_timeout_ms = RCONN_DEFAULT_TIMEOUT_MS;
  out->sync_timeout_ms = RCONN_DEFAULT_TIMEOUT_MS;
  if (!text)
    text = "";
  copy = xstrdup(text);
  p = copy;
  for (;;) {
    char *comma = strchr(p, ',');
    char *eq;
    if (comma)
      *comma = '\0';
    pos = (size_t)(p - copy);
    item = trim(p);
    if (*item) {
      eq = strchr(item, '=');
      if (eq == item) {
        r = app_err_set(err, APP_ERR_CONFIG,
                        "RedisConnection: option at position %zu has no name before '='", pos);
        goto out;
      }
      if (eq) {
        *eq = '\0';
        r = apply_option(out, trim(item), trim(eq + 1), pos, &ssl_seen, err);
        if (r != APP_OK)
          goto out;
      } else {
        char *host = NULL;
        int port = 0;
        r = parse_endpoint(item, pos, &host, &port, err);
        if (r != APP_OK)
          goto out;
        out->endpoints = xrealloc(out->endpoints, (out->nendpoints + 1) * sizeof *out->endpoints);
        out->endpoints[out->nendpoints].host = host;
        out->endpoints[out->nendpoints].port = port;
        if (out->nendpoints++ == 0) {
          out->host = xstrdup(host);
          out->port = port;
        }
      }
    }
    if (!comma)
      break;
    p = comma + 1;
  }
  if (!out->host) {
    r = app_err_set(err, APP_ERR_CONFIG,
                    "RedisConnection: no endpoint (expected host:port, e.g. "
                    "'myredis.redis.cache.windows.net:6380,password=...,ssl=True')");
    goto out;
  }
  if (out->port == 0)
    out->port = out->ssl ? RCONN_DEFAULT_TLS_PORT : RCONN_DEFAULT_PORT;
  for (pos = 0; pos < out->nendpoints; pos++)
    if (out->endpoints[pos].port == 0)
      out->endpoints[pos].port = out->ssl ? RCONN_DEFAULT_TLS_PORT : RCONN_DEFAULT_PORT;
  (void)ssl_seen;
out:
  free(copy);
  if (r != APP_OK)
    redis_conninfo_cleanup(out);
  return r;
}

void redis_conninfo_cleanup(struct redis_conninfo *ci)
{
  if (!ci)
    return;
  free(ci->host);
  if (ci->endpoints) {
    size_t i;
    for (i = 0; i < ci->nendpoints; i++)
      free(ci->endpoints[i].host);
    free(ci->endpoints);
  }
  free(ci->user);
  if (ci->password) {
    /* do not leave the secret in freed memory */
    volatile char *v = ci->password;
    size_t i, n = strlen(ci->password);
    for (i = 0; i < n; i++)
      v[i] = 0;
  }
  free(ci->password);
  free(ci->ssl_host);
  free(ci->client_name);
  free(ci->ca_file);
  memset(ci, 0, sizeof *ci);
}

void redis_conninfo_copy(struct redis_conninfo *dst, const struct redis_conninfo *src)
{
  size_t i;
  *dst = *src;
  dst->host = src->host ? xstrdup(src->host) : NULL;
  dst->user = src->user ? xstrdup(src->user) : NULL;
  dst->password = src->password ? xstrdup(src->password) : NULL;
  dst->ssl_host = src->ssl_host ? xstrdup(src->ssl_host) : NULL;
  dst->client_name = src->client_name ? xstrdup(src->client_name) : NULL;
  dst->ca_file = src->ca_file ? xstrdup(src->ca_file) : NULL;
  dst->endpoints = NULL;
  if (src->endpoints && src->nendpoints) {
    dst->endpoints = xcalloc(src->nendpoints, sizeof *dst->endpoints);
    for (i = 0; i < src->nendpoints; i++) {
      dst->endpoints[i].host = xstrdup(src->endpoints[i].host);
      dst->endpoints[i].port = src->endpoints[i].port;
    }
  }
}

enum app_result redis_conninfo_redacted(const struct redis_conninfo *ci, struct buf *out)
{
  bool v6 = ci->host && strchr(ci->host, ':');
  APP_RETURN_IF_FAILED(buf_printf(out, "%s%s%s:%d", v6 ? "[" : "", ci->host ? ci->host : "",
                                  v6 ? "]" : "", ci->port));
  if (ci->user)
    APP_RETURN_IF_FAILED(buf_printf(out, ",user=%s", ci->user));
  if (ci->password)
    APP_RETURN_IF_FAILED(buf_append_str(out, ",password=*****"));
  APP_RETURN_IF_FAILED(buf_printf(out, ",ssl=%s", ci->ssl ? "True" : "False"));
  if (ci->ssl_host)
    APP_RETURN_IF_FAILED(buf_printf(out, ",sslHost=%s", ci->ssl_host));
  if (ci->database)
    APP_RETURN_IF_FAILED(buf_printf(out, ",defaultDatabase=%d", ci->database));
  if (ci->client_name)
    APP_RETURN_IF_FAILED(buf_printf(out, ",name=%s", ci->client_name));
  return buf_printf(out, ",connectTimeout=%d,syncTimeout=%d", ci->connect_timeout_ms,
                    ci->sync_timeout_ms);
}

enum app_result redis_connstr_redact(const char *text, struct buf *out)
{
  const char *p = text ? text : "";
  while (*p) {
    const char *end = strchr(p, ',');
    const char *eq;
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *k = p;
    while (k < p + n && (*k == ' ' || *k == '\t'))
      k++;
    eq = memchr(p, '=', n);
    if (eq) {
      const char *ke = eq;
      while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
        ke--;
      if ((size_t)(ke - k) == 8 && !strncasecmp(k, "password", 8)) {
        APP_RETURN_IF_FAILED(buf_append(out, p, (size_t)(eq - p) + 1));
        APP_RETURN_IF_FAILED(buf_append_str(out, "*****"));
        goto next;
      }
    }
    APP_RETURN_IF_FAILED(buf_append(out, p, n));
  next:
    if (!end)
      break;
    APP_RETURN_IF_FAILED(buf_append_char(out, ','));
    p = end + 1;
  }
  return APP_OK;
}

/* ====================================================================== */
/* RESP commands                                                           */
/* ====================================================================== */

static enum app_result resp_len_line(struct buf *b, char kind, size_t n)
{
  char tmp[32];
  size_t i = sizeof tmp;
  tmp[--i] = '\n';
  tmp[--i] = '\r';
  do {
    tmp[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  tmp[--i] = kind;
  return buf_append(b, tmp + i, sizeof tmp - i);
}

enum app_result redis_cmd_begin(struct buf *b, size_t argc)
{
  return resp_len_line(b, '*', argc);
}

enum app_result redis_cmd_arg(struct buf *b, const void *p, size_t n)
{
  /* one reservation and straight copies: a batch writes ~50 arguments per
   * document (the length line needs at most 1 + 20 + 2 bytes) */
  char tmp[24], *w;
  size_t i = sizeof tmp, k = n;
  tmp[--i] = '\n';
  tmp[--i] = '\r';
  do {
    tmp[--i] = (char)('0' + k % 10);
    k /= 10;
  } while (k);
  tmp[--i] = '$';
  if (n > SIZE_MAX - sizeof tmp - 2)
    return APP_ERR_LIMIT;
  APP_RETURN_IF_FAILED(buf_reserve(b, sizeof tmp - i + n + 2));
  w = b->data + b->len;
  memcpy(w, tmp + i, sizeof tmp - i);
  w += sizeof tmp - i;
  if (n)
    memcpy(w, p, n);
  w[n] = '\r';
  w[n + 1] = '\n';
  b->len += sizeof tmp - i + n + 2;
  b->data[b->len] = '\0';
  return APP_OK;
}

enum app_result redis_cmd_arg_str(struct buf *b, const char *s)
{
  return redis_cmd_arg(b, s, strlen(s));
}

enum app_result redis_cmd_arg_i64(struct buf *b, int64_t v)
{
  char tmp[24];
  size_t i = sizeof tmp;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    tmp[--i] = '-';
  return redis_cmd_arg(b, tmp + i, sizeof tmp - i);
}

enum app_result redis_cmd_argv(struct buf *b, size_t argc, const char *const *argv,
                               const size_t *argvlen)
{
  size_t i;
  APP_RETURN_IF_FAILED(redis_cmd_begin(b, argc));
  for (i = 0; i < argc; i++)
    APP_RETURN_IF_FAILED(redis_cmd_arg(b, argv[i], argvlen ? argvlen[i] : strlen(argv[i])));
  return APP_OK;
}

/* ====================================================================== */
/* Error replies                                                           */
/* ====================================================================== */

#define MAXCLIENTS "ERR max number of clients reached"

static bool has_prefix_word(const char *s, size_t n, const char *word)
{
  size_t w = strlen(word);
  return n >= w && !memcmp(s, word, w) && (n == w || s[w] == ' ');
}

enum redis_reply_class redis_reply_classify(const redisReply *r)
{
  const char *s;
  size_t n;
  if (!r)
    return RREPLY_FATAL;
  if (r->type != REDIS_REPLY_ERROR)
    return RREPLY_OK;
  s = r->str ? r->str : "";
  n = r->str ? r->len : 0;
  if (has_prefix_word(s, n, "NOSCRIPT"))
    return RREPLY_NOSCRIPT;
  if (has_prefix_word(s, n, "READONLY"))
    return RREPLY_RETRY_RECONNECT;
  if (has_prefix_word(s, n, "LOADING") || has_prefix_word(s, n, "BUSY") ||
      has_prefix_word(s, n, "TRYAGAIN") || has_prefix_word(s, n, "OOM") ||
      has_prefix_word(s, n, "MASTERDOWN") || has_prefix_word(s, n, "CLUSTERDOWN"))
    return RREPLY_RETRY;
  if (n >= sizeof MAXCLIENTS - 1 && !memcmp(s, MAXCLIENTS, sizeof MAXCLIENTS - 1))
    return RREPLY_RETRY_RECONNECT;
  return RREPLY_FATAL;
}

enum app_result redis_reply_error(const redisReply *r, struct app_err *err, const char *fmt, ...)
{
  char ctx[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx, sizeof ctx, fmt, ap);
  va_end(ap);
  if (!r)
    return app_err_set(err, APP_ERR_REDIS, "%s: no reply", ctx);
  if (r->type != REDIS_REPLY_ERROR)
    return app_err_set(err, APP_ERR_REDIS, "%s: unexpected reply type %d", ctx, r->type);
  return app_err_set(err, APP_ERR_REDIS, "%s: %.*s", ctx, (int)(r->len > 180 ? 180 : r->len),
                     r->str ? r->str : "");
}

/* ====================================================================== */
/* TLS context                                                             */
/* ====================================================================== */

struct redis_tls {
  SSL_CTX *ctx;
};

/* OpenSSL's error queue as text: "error:0A000086:SSL routines::certificate
 * verify failed". Empties the queue (it is per thread). */
static void ssl_error_text(char *out, size_t n)
{
  unsigned long e = ERR_get_error(), last = e;
  out[0] = '\0';
  while (e) {
    last = e;
    e = ERR_get_error();
  }
  if (last)
    ERR_error_string_n(last, out, n);
  else
    snprintf(out, n, "no OpenSSL error detail");
}

enum app_result redis_tls_create(const struct redis_conninfo *ci, struct redis_tls **out,
                                 struct app_err *err)
{
  struct redis_tls *t = NULL;
  char why[200];
  enum app_result r = APP_OK;

  *out = NULL;
  ERR_clear_error();
  t = xcalloc(1, sizeof *t);
  t->ctx = SSL_CTX_new(TLS_client_method());
  if (!t->ctx) {
    ssl_error_text(why, sizeof why);
    r = app_err_set(err, APP_ERR_TLS, "TLS: cannot create a context: %s", why);
    goto out;
  }
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  /* non-blocking writes may be retried with the buffer having moved, and
   * may complete partially */
  SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (ci->ca_file && *ci->ca_file) {
    FILE *f = fopen(ci->ca_file, "r");
    if (!f) {
      char tmp[128];
      r = app_err_set(err, APP_ERR_TLS, "TLS: cannot open CA file '%s' (CDC_REDIS_CA_FILE): %s",
                      ci->ca_file, strerror_r(errno, tmp, sizeof tmp));
      goto out;
    }
    fclose(f);
    if (SSL_CTX_load_verify_locations(t->ctx, ci->ca_file, NULL) != 1) {
      ssl_error_text(why, sizeof why);
      r = app_err_set(err, APP_ERR_TLS, "TLS: cannot load CA file '%s' (CDC_REDIS_CA_FILE): %s",
                      ci->ca_file, why);
      goto out;
    }
  } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
    ssl_error_text(why, sizeof why);
    r = app_err_set(err, APP_ERR_TLS, "TLS: cannot load the system CA store: %s", why);
    goto out;
  }
  *out = t;
  t = NULL;
out:
  redis_tls_destroy(t);
  return r;
}

void redis_tls_destroy(struct redis_tls *t)
{
  if (!t)
    return;
  SSL_CTX_free(t->ctx);
  free(t);
}

/* A socket BIO that writes with MSG_NOSIGNAL: a peer that closed must give
 * EPIPE, not kill the process with SIGPIPE. */
static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int nosig_write(BIO *b, const char *data, int len)
{
  int fd = -1;
  ssize_t n;
  BIO_get_fd(b, &fd);
  BIO_clear_retry_flags(b);
  n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    BIO_set_retry_write(b);
  return (int)n;
}

static void nosig_init(void)
{
  const BIO_METHOD *sock = BIO_s_socket();
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                               "socket-nosigpipe");
  if (!m)
    return;
  BIO_meth_set_write(m, nosig_write);
  BIO_meth_set_read(m, BIO_meth_get_read(sock));
  BIO_meth_set_puts(m, BIO_meth_get_puts(sock));
  BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock));
  BIO_meth_set_create(m, BIO_meth_get_create(sock));
  BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock));
  nosig_method = m;
}

/* ====================================================================== */
/* Connections                                                             */
/* ====================================================================== */

struct redis_conn {
  int fd;
  SSL *ssl;
  redisReader *reader;
  bool broken;
  size_t round_trips;
  char peer[300]; /* "host:port" for messages */
  /* Entra ID: the token this connection is authenticated with, and an
   * AUTH with a newer one queued in front of the next pipeline */
  struct azid *identity; /* borrowed; NULL: password or no AUTH */
  char *user;
  uint64_t auth_serial, seen_serial, pending_serial;
  int64_t auth_expires_ms, pending_expires_ms;
  struct buf pre;  /* AUTH command not yet (fully) written */
  size_t pre_sent; /* bytes of pre written */
  bool pre_reply;  /* its reply is still to be read */
  bool streaming;  /* redis_conn_send began a pipeline: nothing goes in front any more */
};

bool redis_conn_broken(const struct redis_conn *c)
{
  return c->broken;
}

void redis_conn_mark_broken(struct redis_conn *c)
{
  c->broken = true;
}

size_t redis_conn_round_trips(const struct redis_conn *c)
{
  return c->round_trips;
}

void redis_conn_close(struct redis_conn *c)
{
  if (!c)
    return;
  if (c->ssl) {
    /* no close_notify round trip: the socket may be dead, and we never
     * wait for the peer's answer anyway */
    SSL_set_quiet_shutdown(c->ssl, 1);
    SSL_free(c->ssl);
  }
  if (c->fd >= 0)
    close(c->fd);
  if (c->reader)
    redisReaderFree(c->reader);
  if (c->pre.data)
    explicit_bzero(c->pre.data, c->pre.len);
  buf_cleanup(&c->pre);
  free(c->user);
  free(c);
}

/* Entra ID: when the provider has stored a token since this connection
 * last looked, and it is not the one the connection is authenticated
 * with, queue AUTH with it in front of the next pipeline. Only looks at
 * the cache: never fetches, never waits. */
static void reauth_queue(struct redis_conn *c)
{
  struct azid_token t;
  uint64_t s;
  if (!c->identity || c->pre_reply)
    return;
  s = azid_serial(c->identity);
  if (s == c->seen_serial)
    return;
  c->seen_serial = s;
  if (!azid_cached(c->identity, REDIS_ENTRA_SCOPE, &t))
    return;
  if (t.serial != c->auth_serial) {
    const char *argv[] = {"AUTH", c->user, t.value};
    buf_reset(&c->pre);
    c->pre_sent = 0;
    if (redis_cmd_argv(&c->pre, 3, argv, NULL) == APP_OK) {
      c->pre_reply = true;
      c->pending_serial = t.serial;
      c->pending_expires_ms = t.expires_ms;
    } else {
      buf_reset(&c->pre); /* nothing half-built goes out; the next exchange tries again */
      c->seen_serial = 0;
    }
  }
  azid_token_cleanup(&t);
}

/* The reply to a queued re-AUTH. A refusal leaves the connection
 * authenticated with its current token (Redis keeps the user of a
 * connection whose AUTH fails); the token is reported to the provider. */
static void reauth_reply(struct redis_conn *c, redisReply *x)
{
  if (redis_reply_classify(x) == RREPLY_OK) {
    c->auth_serial = c->pending_serial;
    c->auth_expires_ms = c->pending_expires_ms;
    metrics_add(M_REDIS_TOKEN_AUTHS, 1);
    metrics_add(M_REDIS_REAUTHS, 1);
  } else {
    metrics_add(M_REDIS_AUTH_FAILURES, 1);
    LOG_WARN("redis %s: re-AUTH with a newer Entra ID token as '%s' refused: %.*s", c->peer,
             c->user, x && x->str ? (int)(x->len > 120 ? 120 : x->len) : 0,
             x && x->str ? x->str : "");
    azid_invalidate(c->identity, REDIS_ENTRA_SCOPE, c->pending_serial);
  }
  if (c->pre.data)
    explicit_bzero(c->pre.data, c->pre.len);
  buf_reset(&c->pre);
  c->pre_sent = 0;
  c->pre_reply = false;
}

static int remaining_ms(int64_t deadline_ms)
{
  int64_t left = deadline_ms - sink_now_ms();
  if (left <= 0)
    return 0;
  return left > 1000000 ? 1000000 : (int)left;
}

/* ---- the error translation for sockets ---- */
static enum app_result sock_fail(struct app_err *err, int e, const char *what, const char *peer)
{
  char tmp[128];
  const char *msg = strerror_r(e, tmp, sizeof tmp);
  return app_err_set(err, APP_ERR_IO, "redis %s: %s: %s (errno %d)", peer, what, msg, e);
}

/* ---- the error translation for OpenSSL ---- */
static enum app_result tls_fail(struct redis_conn *c, int ssl_rc, int e, const char *what,
                                struct app_err *err)
{
  int kind = SSL_get_error(c->ssl, ssl_rc);
  char why[200];
  long vr;

  c->broken = true;
  if (kind == SSL_ERROR_SYSCALL) {
    ERR_clear_error();
    if (e == 0)
      return app_err_set(err, APP_ERR_IO, "redis %s: %s: connection closed by the server", c->peer,
                         what);
    return sock_fail(err, e, what, c->peer);
  }
  if (kind == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    return app_err_set(err, APP_ERR_IO, "redis %s: %s: TLS connection closed by the server",
                       c->peer, what);
  }
  vr = SSL_get_verify_result(c->ssl);
  if (vr != X509_V_OK) {
    ERR_clear_error();
    return app_err_set(err, APP_ERR_TLS,
                       "redis %s: %s: certificate verification failed: %s (X509 error %ld)",
                       c->peer, what, X509_verify_cert_error_string(vr), vr);
  }
  ssl_error_text(why, sizeof why);
  return app_err_set(err, APP_ERR_TLS, "redis %s: %s: %s", c->peer, what, why);
}

/* ---- the error translation for the hiredis reader ---- */
static enum app_result reader_fail(struct redis_conn *c, struct app_err *err)
{
  c->broken = true;
  if (c->reader->err == REDIS_ERR_OOM)
    return app_err_set(err, APP_ERR_NOMEM, "redis %s: out of memory reading a reply", c->peer);
  return app_err_set(err, APP_ERR_REDIS, "redis %s: protocol error (hiredis %d): %s", c->peer,
                     c->reader->err, c->reader->errstr);
}

/* ---- name resolution with a deadline ----
 * getaddrinfo has no timeout. It runs on a detached helper thread; if the
 * deadline passes first we return and the thread frees the job when it
 * finishes (a reference count decides who frees). Numeric addresses skip
 * all this. */
struct resolve_job {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  bool done;
  int rc;
  struct addrinfo *res;
  char port[8];
  char host[];
};

static void resolve_job_unref(struct resolve_job *j)
{
  bool last;
  pthread_mutex_lock(&j->mu);
  last = --j->refs == 0;
  pthread_mutex_unlock(&j->mu);
  if (last) {
    if (j->res)
      freeaddrinfo(j->res);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
  }
}

static void *resolve_thread(void *arg)
{
  struct resolve_job *j = arg;
  struct addrinfo hints, *res = NULL;
  int rc;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  rc = getaddrinfo(j->host, j->port, &hints, &res);
  pthread_mutex_lock(&j->mu);
  j->rc = rc;
  j->res = res;
  j->done = true;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  resolve_job_unref(j);
  return NULL;
}

static enum app_result resolve(const char *host, int port, int64_t deadline_ms,
                               struct addrinfo **out, const char *peer, struct app_err *err)
{
  struct addrinfo hints, *res = NULL;
  struct resolve_job *j;
  pthread_condattr_t ca;
  pthread_attr_t ta;
  pthread_t th;
  char portstr[8];
  int rc;
  size_t hl = strlen(host);

  snprintf(portstr, sizeof portstr, "%d", port);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo(host, portstr, &hints, &res) == 0) {
    *out = res;
    return APP_OK;
  }

  j = xcalloc(1, sizeof *j + hl + 1);
  memcpy(j->host, host, hl + 1);
  memcpy(j->port, portstr, sizeof j->port);
  pthread_mutex_init(&j->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&j->cv, &ca);
  pthread_condattr_destroy(&ca);
  j->refs = 2;
  pthread_attr_init(&ta);
  pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
  rc = pthread_create(&th, &ta, resolve_thread, j);
  pthread_attr_destroy(&ta);
  if (rc != 0) {
    j->refs = 1;
    resolve_job_unref(j);
    return sock_fail(err, rc, "cannot start name resolution", peer);
  }
  pthread_mutex_lock(&j->mu);
  while (!j->done) {
    struct timespec ts;
    int64_t d = deadline_ms;
    if (sink_now_ms() >= d)
      break;
    ts.tv_sec = d / 1000;
    ts.tv_nsec = (long)(d % 1000) * 1000000L;
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
  }
  if (!j->done) {
    pthread_mutex_unlock(&j->mu);
    resolve_job_unref(j);
    return app_err_set(err, APP_ERR_TIMEOUT, "redis %s: name resolution timed out", peer);
  }
  rc = j->rc;
  res = j->res;
  j->res = NULL;
  pthread_mutex_unlock(&j->mu);
  resolve_job_unref(j);
  if (rc != 0)
    return app_err_set(err, APP_ERR_IO, "redis %s: cannot resolve host '%s': %s", peer, host,
                       gai_strerror(rc));
  *out = res;
  return APP_OK;
}

static enum app_result wait_fd(int fd, short events, int64_t deadline_ms, const char *what,
                               const char *peer, struct app_err *err)
{
  struct pollfd p;
  int rc;
  for (;;) {
    int ms = remaining_ms(deadline_ms);
    if (ms == 0)
      return app_err_set(err, APP_ERR_TIMEOUT, "redis %s: %s timed out", peer, what);
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    rc = poll(&p, 1, ms);
    if (rc > 0)
      return APP_OK;
    if (rc < 0 && errno != EINTR)
      return sock_fail(err, errno, what, peer);
  }
}

static enum app_result tcp_connect(const struct addrinfo *ai, int64_t deadline_ms, int *out_fd,
                                   const char *peer, struct app_err *err)
{
  int fd, e = 0, one = 1;
  socklen_t el = sizeof e;
  enum app_result r;

  fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0)
    return sock_fail(err, errno, "socket", peer);
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    if (errno != EINPROGRESS) {
      r = sock_fail(err, errno, "connect", peer);
      close(fd);
      return r;
    }
    r = wait_fd(fd, POLLOUT, deadline_ms, "connect", peer, err);
    if (r != APP_OK) {
      close(fd);
      return r;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
      e = errno;
    if (e) {
      r = sock_fail(err, e, "connect", peer);
      close(fd);
      return r;
    }
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* Azure closes idle connections after 10 minutes; keepalives find dead
   * peers long before a write would */
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  {
    int idle = 60, intvl = 15, cnt = 4;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  }
  *out_fd = fd;
  return APP_OK;
}

static bool is_ip_literal(const char *h)
{
  unsigned char tmp[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

static enum app_result tls_handshake(struct redis_conn *c, const struct redis_conninfo *ci,
                                     struct redis_tls *tls, int64_t deadline_ms,
                                     struct app_err *err)
{
  const char *name = ci->ssl_host ? ci->ssl_host : ci->host;
  BIO *bio;
  char why[200];

  pthread_once(&nosig_once, nosig_init);
  ERR_clear_error();
  c->ssl = SSL_new(tls->ctx);
  if (!c->ssl || !nosig_method) {
    ssl_error_text(why, sizeof why);
    return app_err_set(err, APP_ERR_TLS, "redis %s: TLS setup failed: %s", c->peer, why);
  }
  bio = BIO_new(nosig_method);
  if (!bio) {
    ssl_error_text(why, sizeof why);
    return app_err_set(err, APP_ERR_TLS, "redis %s: TLS setup failed: %s", c->peer, why);
  }
  BIO_set_fd(bio, c->fd, BIO_NOCLOSE);
  SSL_set_bio(c->ssl, bio, bio);
  if (is_ip_literal(name)) {
    /* no SNI for addresses (RFC 6066); check the IP SAN instead */
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) != 1)
      return app_err_set(err, APP_ERR_TLS, "redis %s: bad IP address '%s' for the check", c->peer,
                         name);
  } else {
    SSL_set_tlsext_host_name(c->ssl, name);
    if (SSL_set1_host(c->ssl, name) != 1)
      return app_err_set(err, APP_ERR_TLS, "redis %s: bad host name '%s' for the check", c->peer,
                         name);
  }
  for (;;) {
    int rc, kind;
    enum app_result r;
    errno = 0;
    rc = SSL_connect(c->ssl);
    if (rc == 1)
      return APP_OK;
    kind = SSL_get_error(c->ssl, rc);
    if (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE) {
      r = wait_fd(c->fd, kind == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_ms,
                  "TLS handshake", c->peer, err);
      if (r != APP_OK)
        return r;
      continue;
    }
    return tls_fail(c, rc, errno, "TLS handshake", err);
  }
}

/* Outcome of one non-blocking send or receive. */
enum io_state { IO_DONE, IO_WANT_READ, IO_WANT_WRITE, IO_FAIL };

static enum io_state conn_send(struct redis_conn *c, const char *p, size_t n, size_t *out_n,
                               struct app_err *err)
{
  if (c->ssl) {
    int rc, kind;
    size_t chunk = n > (1u << 30) ? (1u << 30) : n;
    ERR_clear_error();
    errno = 0;
    rc = SSL_write(c->ssl, p, (int)chunk);
    if (rc > 0) {
      *out_n = (size_t)rc;
      return IO_DONE;
    }
    kind = SSL_get_error(c->ssl, rc);
    if (kind == SSL_ERROR_WANT_READ)
      return IO_WANT_READ;
    if (kind == SSL_ERROR_WANT_WRITE)
      return IO_WANT_WRITE;
    tls_fail(c, rc, errno, "send", err);
    return IO_FAIL;
  }
  for (;;) {
    ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
    if (k >= 0) {
      *out_n = (size_t)k;
      return IO_DONE;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return IO_WANT_WRITE;
    c->broken = true;
    sock_fail(err, errno, "send", c->peer);
    return IO_FAIL;
  }
}

/* *out_n == 0 with IO_DONE means the peer closed the connection. */
static enum io_state conn_recv(struct redis_conn *c, char *p, size_t n, size_t *out_n,
                               struct app_err *err)
{
  if (c->ssl) {
    int rc, kind;
    ERR_clear_error();
    errno = 0;
    rc = SSL_read(c->ssl, p, (int)n);
    if (rc > 0) {
      *out_n = (size_t)rc;
      return IO_DONE;
    }
    kind = SSL_get_error(c->ssl, rc);
    if (kind == SSL_ERROR_WANT_READ)
      return IO_WANT_READ;
    if (kind == SSL_ERROR_WANT_WRITE)
      return IO_WANT_WRITE;
    if (kind == SSL_ERROR_ZERO_RETURN || (kind == SSL_ERROR_SYSCALL && errno == 0)) {
      ERR_clear_error();
      *out_n = 0;
      return IO_DONE;
    }
    tls_fail(c, rc, errno, "receive", err);
    return IO_FAIL;
  }
  for (;;) {
    ssize_t k = recv(c->fd, p, n, 0);
    if (k >= 0) {
      *out_n = (size_t)k;
      return IO_DONE;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return IO_WANT_READ;
    c->broken = true;
    sock_fail(err, errno, "receive", c->peer);
    return IO_FAIL;
  }
}

enum app_result redis_conn_send(struct redis_conn *c, const char *cmds, size_t len,
                                size_t *out_sent, struct app_err *err)
{
  size_t written = 0;

  *out_sent = 0;
  if (c->broken)
    return app_err_set(err, APP_ERR_IO, "redis %s: connection is broken", c->peer);
  if (!c->streaming) /* the first bytes of a pipeline (later calls continue it) */
    reauth_queue(c);
  c->streaming = true;
  while (c->pre_sent < c->pre.len) { /* a queued AUTH goes first */
    size_t k = 0;
    enum io_state st = conn_send(c, c->pre.data + c->pre_sent, c->pre.len - c->pre_sent, &k, err);
    if (st == IO_FAIL) {
      c->broken = true;
      return err ? err->code : APP_ERR_IO;
    }
    if (st != IO_DONE)
      return APP_OK;
    c->pre_sent += k;
  }
  while (written < len) {
    size_t k = 0;
    enum io_state st = conn_send(c, cmds + written, len - written, &k, err);
    if (st == IO_FAIL) {
      c->broken = true;
      *out_sent = written;
      return err ? err->code : APP_ERR_IO;
    }
    if (st != IO_DONE)
      break; /* the socket is full (or TLS wants to read): the rest later */
    written += k;
  }
  *out_sent = written;
  return APP_OK;
}

enum app_result redis_conn_exchange(struct redis_conn *c, const char *cmds, size_t len,
                                    size_t nreplies, redisReply **replies, size_t *out_nread,
                                    int64_t deadline_ms, struct app_err *err)
{
  return redis_conn_exchange_rest(c, cmds, len, 0, nreplies, replies, out_nread, deadline_ms, err);
}

/* One step of an exchange: write what the socket takes, read and parse
 * what has arrived, without waiting. Sets x->done (with x->r) when every
 * byte is written and every reply read, or on failure; returns whether
 * anything moved. */
static bool xfer_step(struct redis_conn_xfer *x, char *rbuf, size_t rbuf_size)
{
  struct redis_conn *c = x->c;
  struct app_err *err = &x->err;
  bool progress = false;

  /* a queued AUTH (Entra ID token renewal) goes first */
  while (c->pre_sent < c->pre.len) {
    size_t k = 0;
    x->wstate = conn_send(c, c->pre.data + c->pre_sent, c->pre.len - c->pre_sent, &k, err);
    if (x->wstate == IO_FAIL) {
      x->r = err->code ? err->code : APP_ERR_IO;
      goto fail;
    }
    if (x->wstate != IO_DONE)
      break;
    c->pre_sent += k;
    progress = true;
  }
  while (c->pre_sent == c->pre.len && x->written < x->len) {
    size_t k = 0;
    x->wstate = conn_send(c, x->cmds + x->written, x->len - x->written, &k, err);
    if (x->wstate == IO_FAIL) {
      x->r = err->code ? err->code : APP_ERR_IO;
      goto fail;
    }
    if (x->wstate != IO_DONE)
      break;
    x->written += k;
    progress = true;
  }
  /* read whatever has arrived (SSL may hold decrypted bytes) */
  for (;;) {
    size_t k = 0;
    void *reply = NULL;
    x->rstate = conn_recv(c, rbuf, rbuf_size, &k, err);
    if (x->rstate == IO_FAIL) {
      x->r = err->code ? err->code : APP_ERR_IO;
      goto fail;
    }
    if (x->rstate != IO_DONE)
      break;
    if (k == 0) {
      c->broken = true;
      x->r = app_err_set(err, APP_ERR_IO,
                         "redis %s: connection closed by the server after %zu of %zu replies",
                         c->peer, x->nread, x->nreplies);
      goto fail;
    }
    x->received += k;
    if (x->received > RCONN_MAX_REPLY_BYTES) {
      c->broken = true;
      x->r = app_err_set(err, APP_ERR_LIMIT, "redis %s: replies larger than %zu bytes", c->peer,
                         RCONN_MAX_REPLY_BYTES);
      goto fail;
    }
    progress = true;
    if (redisReaderFeed(c->reader, rbuf, k) != REDIS_OK) {
      x->r = reader_fail(c, err);
      goto fail;
    }
    for (;;) {
      if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
        x->r = reader_fail(c, err);
        goto fail;
      }
      if (!reply)
        break;
      if (c->pre_reply) { /* the queued AUTH's reply comes first */
        reauth_reply(c, reply);
        freeReplyObject(reply);
        continue;
      }
      if (x->nread == x->nreplies) {
        freeReplyObject(reply);
        c->broken = true;
        x->r = app_err_set(err, APP_ERR_REDIS, "redis %s: unexpected reply after %zu replies",
                           c->peer, x->nreplies);
        goto fail;
      }
      x->replies[x->nread++] = reply;
    }
    if (k < rbuf_size && !c->ssl)
      break; /* drained the socket */
  }
  if (x->written == x->len && x->nread == x->nreplies && !c->pre_reply)
    x->done = true;
  return progress;
fail:
  x->done = true;
  return true;
}

enum app_result redis_conn_exchange_many(struct redis_conn_xfer *xs, size_t n, int64_t deadline_ms)
{
  char rbuf[64 * 1024];
  struct pollfd pfd[RCONN_MAX_XFER];
  size_t i, left = 0;
  enum app_result first = APP_OK;

  if (n > RCONN_MAX_XFER)
    n = RCONN_MAX_XFER;
  for (i = 0; i < n; i++) {
    struct redis_conn_xfer *x = &xs[i];
    x->nread = 0;
    x->received = 0;
    x->r = APP_OK;
    x->err.code = APP_OK;
    x->err.msg[0] = '\0';
    x->wstate = IO_DONE;
    x->rstate = IO_DONE;
    x->done = false;
    if (x->c->broken) {
      x->r = app_err_set(&x->err, APP_ERR_IO, "redis %s: connection is broken", x->c->peer);
      x->done = true;
      continue;
    }
    if (x->written == 0 && !x->c->streaming)
      reauth_queue(x->c); /* a newer token: AUTH in front of this pipeline */
    x->c->round_trips++;
    left++;
  }
  while (left > 0) {
    bool progress = false;
    size_t np = 0;
    int rc, ms;
    for (i = 0; i < n; i++) {
      if (xs[i].done)
        continue;
      if (xfer_step(&xs[i], rbuf, sizeof rbuf))
        progress = true;
      if (xs[i].done)
        left--;
    }
    if (left == 0)
      break;
    if (progress)
      continue;
    ms = remaining_ms(deadline_ms);
    for (i = 0; i < n; i++) {
      struct redis_conn_xfer *x = &xs[i];
      if (x->done)
        continue;
      if (ms == 0) {
        x->c->broken = true;
        x->r = app_err_set(&x->err, APP_ERR_TIMEOUT,
                           "redis %s: no reply within the timeout (%zu of %zu replies, %zu of %zu "
                           "bytes sent)",
                           x->c->peer, x->nread, x->nreplies, x->written, x->len);
        x->done = true;
        left--;
        continue;
      }
      pfd[np].fd = x->c->fd;
      pfd[np].events = POLLIN;
      if (((x->written < x->len || x->c->pre_sent < x->c->pre.len) && x->wstate == IO_WANT_WRITE) ||
          x->rstate == IO_WANT_WRITE)
        pfd[np].events |= POLLOUT;
      pfd[np].revents = 0;
      np++;
    }
    if (np == 0)
      break;
    rc = poll(pfd, (nfds_t)np, ms);
    if (rc < 0 && errno != EINTR) {
      int e = errno;
      for (i = 0; i < n; i++)
        if (!xs[i].done) {
          xs[i].c->broken = true;
          xs[i].r = sock_fail(&xs[i].err, e, "poll", xs[i].c->peer);
          xs[i].done = true;
        }
      break;
    }
  }
  for (i = 0; i < n; i++)
    xs[i].c->streaming = false; /* the pipeline ended (sent in one or several parts) */
  for (i = 0; i < n; i++)
    if (xs[i].r != APP_OK) {
      xs[i].c->broken = true;
      if (first == APP_OK)
        first = xs[i].r;
    }
  return first;
}

enum app_result redis_conn_exchange_rest(struct redis_conn *c, const char *cmds, size_t len,
                                         size_t sent, size_t nreplies, redisReply **replies,
                                         size_t *out_nread, int64_t deadline_ms,
                                         struct app_err *err)
{
  struct redis_conn_xfer x;
  enum app_result r;

  memset(&x, 0, sizeof x);
  x.c = c;
  x.cmds = cmds;
  x.len = len;
  x.written = sent;
  x.nreplies = nreplies;
  x.replies = replies;
  r = redis_conn_exchange_many(&x, 1, deadline_ms);
  *out_nread = x.nread;
  if (r != APP_OK && err)
    *err = x.err;
  return r;
}

bool redis_conn_idle_dead(struct redis_conn *c)
{
  struct pollfd p;
  if (c->broken)
    return true;
  p.fd = c->fd;
  p.events = POLLIN;
  p.revents = 0;
  /* an idle connection has nothing to read: readable means EOF, an error
   * or data we did not ask for; all make it unusable */
  if (poll(&p, 1, 0) != 0)
    return true;
  if (c->ssl && SSL_pending(c->ssl) > 0)
    return true;
  /* Azure closes a connection whose token expired: do not hand it out */
  if (c->identity && sink_now_ms() >= c->auth_expires_ms)
    return true;
  return false;
}

static enum app_result config_fail(struct app_err *err)
{
  if (err)
    err->code = APP_ERR_CONFIG;
  return APP_ERR_CONFIG;
}

/* AUTH/SELECT failures are configuration errors: they will not fix
 * themselves, so the caller should not retry them. */
static enum app_result handshake(struct redis_conn *c, const struct redis_conninfo *ci,
                                 const char *setup, size_t setup_len, size_t nsetup,
                                 int64_t deadline_ms, bool *token_refused, struct app_err *err)
{
  struct buf b;
  redisReply *rep[4 + 64];
  redisReply **replies = rep;
  size_t n = 0, nread = 0, i, auth_i = (size_t)-1, select_i = (size_t)-1, name_i = (size_t)-1;
  enum app_result r = APP_OK;
  struct azid_token tok = {0};

  buf_init(&b, 0);
  if (ci->identity) {
    /* Entra ID: the password is a token (cached, or fetched by the deadline) */
    r = azid_get(ci->identity, REDIS_ENTRA_SCOPE, deadline_ms, &tok, err);
    if (r != APP_OK) {
      app_err_wrap(err, "redis %s: no Entra ID token to authenticate with", c->peer);
      if (r != APP_ERR_TIMEOUT && err)
        err->code = APP_ERR_IO; /* retryable: the provider backs off meanwhile */
      r = r == APP_ERR_TIMEOUT ? r : APP_ERR_IO;
      goto out;
    }
    auth_i = n++;
    {
      const char *argv[] = {"AUTH", ci->user ? ci->user : "default", tok.value};
      r = redis_cmd_argv(&b, 3, argv, NULL);
    }
  } else if (ci->password) {
    auth_i = n++;
    if (ci->user) {
      const char *argv[] = {"AUTH", ci->user, ci->password};
      r = redis_cmd_argv(&b, 3, argv, NULL);
    } else {
      const char *argv[] = {"AUTH", ci->password};
      r = redis_cmd_argv(&b, 2, argv, NULL);
    }
  }
  if (r == APP_OK && ci->database) {
    select_i = n++;
    r = redis_cmd_begin(&b, 2);
    if (r == APP_OK)
      r = redis_cmd_arg_str(&b, "SELECT");
    if (r == APP_OK)
      r = redis_cmd_arg_i64(&b, ci->database);
  }
  if (r == APP_OK && ci->client_name) {
    const char *argv[] = {"CLIENT", "SETNAME", ci->client_name};
    name_i = n++;
    r = redis_cmd_argv(&b, 3, argv, NULL);
  }
  if (r == APP_OK && setup_len)
    r = buf_append(&b, setup, setup_len);
  if (r != APP_OK) {
    r = app_err_set(err, r, "redis %s: cannot build the handshake", c->peer);
    goto out;
  }
  n += nsetup;
  if (n == 0)
    goto out;
  if (n > sizeof rep / sizeof rep[0])
    replies = xcalloc(n, sizeof *replies);
  r = redis_conn_exchange(c, b.data, b.len, n, replies, &nread, deadline_ms, err);
  if (r != APP_OK)
    goto out;
  for (i = 0; i < nread; i++) {
    redisReply *x = replies[i];
    enum redis_reply_class k = redis_reply_classify(x);
    if (k == RREPLY_OK || i == name_i)
      continue;
    if (i == auth_i && ci->identity) {
      /* a token the server refuses (expired early, revoked, not yet known):
       * the retry gets a new one */
      metrics_add(M_REDIS_AUTH_FAILURES, 1);
      azid_invalidate(ci->identity, REDIS_ENTRA_SCOPE, tok.serial);
      *token_refused = true;
      r = redis_reply_error(x, err,
                            "redis %s: authentication with an Entra ID token as user '%s' "
                            "failed (the token is renewed for the retry)",
                            c->peer, ci->user ? ci->user : "default");
    } else if (i == auth_i) {
      redis_reply_error(x, err, "redis %s: authentication%s%s%s failed", c->peer,
                        ci->user ? " as user '" : "", ci->user ? ci->user : "",
                        ci->user ? "'" : "");
      r = config_fail(err);
    } else if (i == select_i) {
      redis_reply_error(x, err, "redis %s: SELECT %d (defaultDatabase) failed", c->peer,
                        ci->database);
      r = config_fail(err);
    } else if (x->len >= 6 && !memcmp(x->str, "NOAUTH", 6)) {
      redis_reply_error(x, err,
                        "redis %s: connection setup refused (set password= or user= in "
                        "RedisConnection)",
                        c->peer);
      r = config_fail(err);
    } else if (x->len >= 6 && !memcmp(x->str, "NOPERM", 6)) {
      redis_reply_error(x, err,
                        "redis %s: the Redis user lacks a permission the handler needs "
                        "(ACL: +@read +@write +@scripting +@stream on its keys)",
                        c->peer);
      r = config_fail(err);
    } else {
      r = redis_reply_error(x, err, "redis %s: connection setup failed", c->peer);
    }
    c->broken = true;
    goto out;
  }
  if (ci->identity) {
    c->identity = ci->identity;
    c->user = xstrdup(ci->user ? ci->user : "default");
    c->auth_serial = c->seen_serial = tok.serial;
    c->auth_expires_ms = tok.expires_ms;
    metrics_add(M_REDIS_TOKEN_AUTHS, 1);
  }
out:
  for (i = 0; i < nread; i++)
    freeReplyObject(replies[i]);
  if (replies != rep)
    free(replies);
  if (b.data)
    explicit_bzero(b.data, b.len);
  buf_cleanup(&b);
  azid_token_cleanup(&tok);
  return r;
}

enum app_result redis_conn_open(const struct redis_conninfo *ci, struct redis_tls *tls,
                                const char *setup, size_t setup_len, size_t nsetup,
                                int64_t deadline_ms, struct redis_conn **out, struct app_err *err)
{
  struct redis_conn *c;
  struct addrinfo *res = NULL, *ai;
  enum app_result r = APP_OK;
  bool v6 = strchr(ci->host, ':') != NULL;

  *out = NULL;
  c = xcalloc(1, sizeof *c);
  c->fd = -1;
  buf_init(&c->pre, 0);
  snprintf(c->peer, sizeof c->peer, "%s%s%s:%d", v6 ? "[" : "", ci->host, v6 ? "]" : "", ci->port);
  c->reader = redisReaderCreate();
  if (!c->reader) {
    r = app_err_set(err, APP_ERR_NOMEM, "redis %s: cannot create a reply reader", c->peer);
    goto out;
  }
  r = resolve(ci->host, ci->port, deadline_ms, &res, c->peer, err);
  if (r != APP_OK)
    goto out;
  r = APP_ERR_IO;
  for (ai = res; ai; ai = ai->ai_next) {
    r = tcp_connect(ai, deadline_ms, &c->fd, c->peer, err);
    if (r == APP_OK || r == APP_ERR_TIMEOUT)
      break;
  }
  if (r != APP_OK)
    goto out;
  if (ci->ssl) {
    if (!tls) {
      r = app_err_set(err, APP_ERR_TLS, "redis %s: ssl=True but no TLS context", c->peer);
      goto out;
    }
    r = tls_handshake(c, ci, tls, deadline_ms, err);
    if (r != APP_OK)
      goto out;
  }
  {
    bool refused = false;
    r = handshake(c, ci, setup, setup_len, nsetup, deadline_ms, &refused, err);
    if (r != APP_OK && refused) {
      /* the server refused a token we held for valid (revoked, or expired
       * early): once more on the same connection with a new one (every
       * reply was read, so the stream is in step) */
      c->broken = false;
      refused = false;
      r = handshake(c, ci, setup, setup_len, nsetup, deadline_ms, &refused, err);
    }
    if (r != APP_OK)
      goto out;
  }
  *out = c;
  c = NULL;
out:
  if (res)
    freeaddrinfo(res);
  redis_conn_close(c);
  return r;
}

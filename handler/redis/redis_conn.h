/* redis_conn.h - one connection to Redis: connection string, socket, TLS,
 * handshake, pipelined exchanges, and the one place where hiredis, OpenSSL
 * and socket errors become enum app_result.
 *
 * Why not hiredis' own I/O: Debian 12 ships hiredis 0.14.1, which has no
 * TLS, and Azure Cache for Redis requires TLS. So hiredis is used for the
 * protocol only (its reply reader), over our own non-blocking socket and
 * OpenSSL transport. Every wait is a poll() with a deadline: nothing here
 * blocks past the deadline it is given.
 *
 * Thread model: a struct redis_conn is used by one thread at a time (the
 * pool in redis_pool.h hands them out). A struct redis_tls is shared. */
#ifndef D365CDC_REDIS_CONN_H
#define D365CDC_REDIS_CONN_H

#include "common/buf.h"
#include "common/result.h"

#include <hiredis/hiredis.h>

struct azid;

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- connection string (pure) ---------------------------------------- */

#define RCONN_DEFAULT_PORT       6379
#define RCONN_DEFAULT_TLS_PORT   6380 /* StackExchange.Redis: ssl=true and no port */
#define RCONN_DEFAULT_TIMEOUT_MS 5000

/* A parsed RedisConnection setting (StackExchange.Redis format):
 *   host[:port][,host2[:port]...][,option=value...]
 * Options (names case-insensitive): password, user, ssl, sslHost,
 * connectTimeout (ms), syncTimeout (ms), defaultDatabase, abortConnect,
 * name. Options StackExchange.Redis knows but that do not apply to us
 * (allowAdmin, asyncTimeout, keepAlive, connectRetry, ...) are accepted
 * silently; unknown ones are listed in `warnings`. Several endpoints: a
 * single node uses the first (a primary/replica list from the portal
 * starts with the primary); a Redis Cluster (redis_cluster.h) uses them all
 * as seeds. IPv6 literals are written [::1]:6380 (or bare, without port). */
struct redis_endpoint {
  char *host;
  int port; /* 1..65535 (the default port filled in) */
};
struct redis_conninfo {
  char *host;     /* host name or IP literal without brackets */
  int port;       /* 1..65535 */
  char *user;     /* NULL: default user */
  char *password; /* NULL: no AUTH. Secret: never logged */
  bool ssl;
  char *ssl_host;         /* name checked in the certificate and sent as SNI; NULL: host */
  int connect_timeout_ms; /* TCP connect + TLS handshake + AUTH/SELECT */
  int sync_timeout_ms;    /* one pipelined exchange */
  int database;           /* SELECT when not 0 */
  bool abort_connect;     /* parsed for completeness; we always connect lazily */
  char *client_name;      /* CLIENT SETNAME when set */
  char *ca_file;          /* CDC_REDIS_CA_FILE; NULL: system CA store (not from the string) */
  struct azid *identity;  /* borrowed; set: AUTH user with an Entra ID token (redis_entra.h) */
  size_t nendpoints;      /* endpoints listed in the string */
  struct redis_endpoint *endpoints; /* all nendpoints, in order ([0] is host:port) */
  char warnings[256];               /* "unknown option 'foo'; ..." or "" (never holds values) */
};

/* Parse text into *out (caller frees with redis_conninfo_cleanup, also on
 * failure). APP_ERR_CONFIG when the string is empty, has no endpoint, a bad
 * port, a non-numeric or out-of-range number, a non-boolean ssl/abortConnect,
 * or an option without a name; the message names the option and the
 * position, and never contains the password. */
APP_NODISCARD enum app_result redis_conninfo_parse(const char *text, struct redis_conninfo *out,
                                                   struct app_err *err);
void redis_conninfo_cleanup(struct redis_conninfo *ci);
/* A deep copy of src into dst (freed with redis_conninfo_cleanup): e.g. one
 * per Redis Cluster node, which then changes host and port. Every owned
 * field of struct redis_conninfo is copied here. */
void redis_conninfo_copy(struct redis_conninfo *dst, const struct redis_conninfo *src);

/* Append a rendering of *ci that is safe to log: the endpoint and every
 * option, with the password as "*****". */
APP_NODISCARD enum app_result redis_conninfo_redacted(const struct redis_conninfo *ci,
                                                      struct buf *out);

/* Append text with the value of every password= option replaced by
 * "*****", for logging a string that did not parse. */
APP_NODISCARD enum app_result redis_connstr_redact(const char *text, struct buf *out);

/* ---- commands (pure) --------------------------------------------------- */

/* Append one command in RESP (the bytes redisFormatCommandArgv makes):
 * redis_cmd_begin(b, argc) then exactly argc redis_cmd_arg* calls. */
APP_NODISCARD enum app_result redis_cmd_begin(struct buf *b, size_t argc);
APP_NODISCARD enum app_result redis_cmd_arg(struct buf *b, const void *p, size_t n);
APP_NODISCARD enum app_result redis_cmd_arg_str(struct buf *b, const char *s);
APP_NODISCARD enum app_result redis_cmd_arg_i64(struct buf *b, int64_t v);
/* A whole command from argv. */
APP_NODISCARD enum app_result redis_cmd_argv(struct buf *b, size_t argc, const char *const *argv,
                                             const size_t *argvlen);

/* ---- error replies ------------------------------------------------------ */

enum redis_reply_class {
  RREPLY_OK = 0,          /* not an error reply */
  RREPLY_NOSCRIPT,        /* EVALSHA of a script the server does not have */
  RREPLY_RETRY,           /* transient: LOADING, BUSY, TRYAGAIN, OOM, MASTERDOWN, CLUSTERDOWN */
  RREPLY_RETRY_RECONNECT, /* transient, but this connection is wrong: READONLY (a replica) */
  RREPLY_FATAL            /* retrying cannot help: WRONGTYPE, NOPERM, NOAUTH, MOVED, ERR ... */
};

/* Classify a reply (NULL counts as fatal). */
enum redis_reply_class redis_reply_classify(const redisReply *r);

/* Fill *err with APP_ERR_REDIS and "<context>: <server error text>".
 * context is printf-formatted. Returns APP_ERR_REDIS. */
enum app_result redis_reply_error(const redisReply *r, struct app_err *err, const char *fmt, ...)
    APP_PRINTF(3, 4);

/* ---- TLS context ---------------------------------------------------------- */

struct redis_tls;

/* An OpenSSL client context for ci (ci->ssl must be true): TLS >= 1.2,
 * peer verification against ci->ca_file or the system CA store. No I/O.
 * APP_ERR_TLS when OpenSSL fails or the CA file cannot be loaded (the
 * message names the file and OpenSSL's reason). Caller frees with
 * redis_tls_destroy. Shared by every connection, thread-safe. */
APP_NODISCARD enum app_result redis_tls_create(const struct redis_conninfo *ci,
                                               struct redis_tls **out, struct app_err *err);
void redis_tls_destroy(struct redis_tls *t);

/* ---- connections ------------------------------------------------------------ */

struct redis_conn;

/* Most bytes one exchange may receive (replies of a pipeline); past it the
 * exchange fails with APP_ERR_LIMIT and the connection is broken. */
#define RCONN_MAX_REPLY_BYTES ((size_t)512 * 1024 * 1024)

/* Connect to ci's endpoint (name resolution, TCP, TLS handshake with SNI
 * and host-name check when tls is not NULL), then in one round trip send
 * AUTH (user+password or password), SELECT, CLIENT SETNAME (when set, its
 * failure ignored), followed by the nsetup commands in setup[0..setup_len)
 * (e.g. SCRIPT LOAD). Everything must finish by deadline_ms (sink_now_ms
 * clock).
 * With ci->identity the password is an Entra ID token for
 * REDIS_ENTRA_SCOPE (fetched by this deadline if none is cached), and the
 * connection keeps itself authenticated: when the provider holds a newer
 * token, the next exchange or send puts AUTH in front of the caller's
 * commands in the same write and consumes its reply (no extra round trip,
 * nothing waits); a connection whose token has expired counts as dead
 * (redis_conn_idle_dead). A refused token AUTH is invalidated at the
 * provider and answered APP_ERR_REDIS (retryable: the retry gets a new
 * token); a token that cannot be fetched gives APP_ERR_IO or
 * APP_ERR_TIMEOUT (retryable) with the provider's reason. Results:
 *   APP_OK           *out is a ready connection; caller frees with redis_conn_close
 *   APP_ERR_TIMEOUT  the deadline passed (name resolution, connect, TLS, handshake)
 *   APP_ERR_IO       resolution or connect failed (refused, unreachable, reset)
 *   APP_ERR_TLS      handshake failed or the certificate did not verify
 *                    (reason from OpenSSL, e.g. "hostname mismatch")
 *   APP_ERR_CONFIG   AUTH or SELECT was refused (WRONGPASS, NOPERM, DB index)
 *   APP_ERR_REDIS    another error reply (e.g. LOADING) or a protocol error
 * TLS and CONFIG failures are permanent: retrying cannot fix them. */
APP_NODISCARD enum app_result redis_conn_open(const struct redis_conninfo *ci,
                                              struct redis_tls *tls, const char *setup,
                                              size_t setup_len, size_t nsetup, int64_t deadline_ms,
                                              struct redis_conn **out, struct app_err *err);

/* Close and free. NULL-safe. */
void redis_conn_close(struct redis_conn *c);

/* Send cmds[0..len) (nreplies pipelined commands) and read nreplies
 * replies into replies[0..nreplies), writing and reading at the same time
 * so a large pipeline cannot deadlock. *out_nread gets the number of
 * replies stored; the caller frees each with freeReplyObject, also on
 * failure (replies read before a failure are real confirmations). Error
 * replies are stored like any reply: the caller classifies them.
 *   APP_OK           all nreplies replies read
 *   APP_ERR_TIMEOUT  deadline_ms passed first
 *   APP_ERR_IO       the connection broke or the server closed it
 *   APP_ERR_TLS      a TLS error on the established connection
 *   APP_ERR_REDIS    a protocol error (hiredis reader) or unexpected extra data
 *   APP_ERR_LIMIT    the replies passed RCONN_MAX_REPLY_BYTES
 *   APP_ERR_NOMEM    hiredis ran out of memory
 * After any failure the connection is broken (redis_conn_broken). */
APP_NODISCARD enum app_result redis_conn_exchange(struct redis_conn *c, const char *cmds,
                                                  size_t len, size_t nreplies, redisReply **replies,
                                                  size_t *out_nread, int64_t deadline_ms,
                                                  struct app_err *err);

/* Streaming a pipeline: write as much of cmds[0..len) as the connection
 * takes now, without waiting and without reading replies; *out_sent gets
 * the bytes written (0 is fine). The exchange is completed by
 * redis_conn_exchange_rest with the bytes written so far. Redis buffers
 * the replies meanwhile, so not reading cannot deadlock. APP_ERR_IO or
 * APP_ERR_TLS when the connection failed (it is then broken). */
APP_NODISCARD enum app_result redis_conn_send(struct redis_conn *c, const char *cmds, size_t len,
                                              size_t *out_sent, struct app_err *err);

/* redis_conn_exchange of a pipeline whose first sent bytes were already
 * written with redis_conn_send: writes cmds[sent..len), reads all nreplies
 * replies; same results. */
APP_NODISCARD enum app_result redis_conn_exchange_rest(struct redis_conn *c, const char *cmds,
                                                       size_t len, size_t sent, size_t nreplies,
                                                       redisReply **replies, size_t *out_nread,
                                                       int64_t deadline_ms, struct app_err *err);

/* Exchanges on several connections at once (e.g. one per Redis Cluster
 * node): every connection's cmds are written and its replies read as its
 * socket allows, one poll() over all of them, so every server works at the
 * same time. Fill c, cmds, len, written (bytes already sent with
 * redis_conn_send, else 0), nreplies and replies; the rest is output: nread
 * replies stored (the caller frees them, also on failure), r and err as
 * redis_conn_exchange_rest gives them for that connection (a failed one is
 * broken). Returns the first failure, APP_OK when all succeeded. At most
 * RCONN_MAX_XFER connections. */
#define RCONN_MAX_XFER 128
struct redis_conn_xfer {
  struct redis_conn *c;
  const char *cmds;
  size_t len, written;
  size_t nreplies, nread;
  redisReply **replies;
  enum app_result r;
  struct app_err err;
  /* private */
  size_t received;
  int wstate, rstate;
  bool done;
};
APP_NODISCARD enum app_result redis_conn_exchange_many(struct redis_conn_xfer *xs, size_t n,
                                                       int64_t deadline_ms);

/* Did an exchange fail (or the caller mark it)? A broken connection must
 * not be reused: the protocol stream may be out of step. */
bool redis_conn_broken(const struct redis_conn *c);
void redis_conn_mark_broken(struct redis_conn *c);

/* Is the peer known to have closed or sent unexpected data while the
 * connection sat idle? (poll without waiting; used by the pool) */
bool redis_conn_idle_dead(struct redis_conn *c);

/* The scope of Azure Redis tokens. */
#define REDIS_ENTRA_SCOPE "https://redis.azure.com/.default"

/* Exchanges done on this connection, the handshake included. */
size_t redis_conn_round_trips(const struct redis_conn *c);

#endif

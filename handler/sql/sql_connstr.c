/* sql_connstr.c - ADO.NET connection strings to ODBC, and redaction. */
#include "sql/sql_connstr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PAIRS 64
#define MAX_PART  1024

struct pair {
  char key[128];        /* as written, trimmed */
  char norm[128];       /* lower case, spaces and underscores removed */
  char value[MAX_PART]; /* unquoted / unbraced */
};

struct pairs {
  struct pair p[MAX_PAIRS];
  size_t n;
};

static void normalise(const char *in, char *out, size_t cap)
{
  size_t n = 0;
  for (; *in && n + 1 < cap; in++)
    if (*in != ' ' && *in != '_' && *in != '\t')
      out[n++] = (char)tolower((unsigned char)*in);
  out[n] = '\0';
}

static bool is_secret_key(const char *norm)
{
  return strstr(norm, "password") || strstr(norm, "pwd") || strstr(norm, "secret") ||
         strstr(norm, "token") || strstr(norm, "key");
}

/* Split "k=v;k2=v2" accepting both syntaxes: ODBC {braced} values (with }}
 * for a literal brace) and ADO.NET "quoted" or 'quoted' values (doubled
 * quote inside), ADO.NET == for '=' inside a key. Never quotes the text of
 * a value in an error. */
static enum app_result split(const char *s, struct pairs *out, struct app_err *err)
{
  size_t i = 0, len = strlen(s);
  out->n = 0;
  while (i < len) {
    struct pair *p;
    size_t kn = 0, vn = 0, start = i;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ';'))
      i++;
    if (i >= len)
      break;
    if (out->n == MAX_PAIRS)
      return app_err_set(err, APP_ERR_CONFIG, "connection string has more than %d parts",
                         MAX_PAIRS);
    p = &out->p[out->n];
    /* key up to a single '=' */
    for (;;) {
      if (i >= len || s[i] == ';')
        return app_err_set(err, APP_ERR_CONFIG,
                           "connection string: part %zu (at offset %zu) has no '='", out->n + 1,
                           start);
      if (s[i] == '=') {
        if (i + 1 < len && s[i + 1] == '=') { /* "==" is a literal '=' in a key */
          i += 2;
          if (kn + 1 < sizeof p->key)
            p->key[kn++] = '=';
          continue;
        }
        i++;
        break;
      }
      if (kn + 1 < sizeof p->key)
        p->key[kn++] = s[i];
      i++;
    }
    while (kn && (p->key[kn - 1] == ' ' || p->key[kn - 1] == '\t'))
      kn--;
    p->key[kn] = '\0';
    {
      size_t k0 = 0;
      while (p->key[k0] == ' ')
        k0++;
      memmove(p->key, p->key + k0, kn - k0 + 1);
    }
    if (!p->key[0])
      return app_err_set(err, APP_ERR_CONFIG,
                         "connection string: part %zu (at offset %zu) has an empty key", out->n + 1,
                         start);
    normalise(p->key, p->norm, sizeof p->norm);
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
      i++;
    if (i < len && (s[i] == '{' || s[i] == '"' || s[i] == '\'')) {
      char close = s[i] == '{' ? '}' : s[i];
      i++;
      for (;;) {
        if (i >= len)
          return app_err_set(err, APP_ERR_CONFIG,
                             "connection string: the value of '%.60s' has no closing %c", p->key,
                             close);
        if (s[i] == close) {
          if (i + 1 < len && s[i + 1] == close) {
            i += 2;
            if (vn + 1 < sizeof p->value)
              p->value[vn++] = close;
            continue;
          }
          i++;
          break;
        }
        if (vn + 1 >= sizeof p->value)
          return app_err_set(err, APP_ERR_CONFIG,
                             "connection string: the value of '%.60s' is longer than %d bytes",
                             p->key, MAX_PART - 1);
        p->value[vn++] = s[i++];
      }
      while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
      if (i < len && s[i] != ';')
        return app_err_set(err, APP_ERR_CONFIG,
                           "connection string: unexpected text after the quoted value of "
                           "'%.60s' (offset %zu)",
                           p->key, i);
    } else {
      while (i < len && s[i] != ';') {
        if (vn + 1 >= sizeof p->value)
          return app_err_set(err, APP_ERR_CONFIG,
                             "connection string: the value of '%.60s' is longer than %d bytes",
                             p->key, MAX_PART - 1);
        p->value[vn++] = s[i++];
      }
      while (vn && (p->value[vn - 1] == ' ' || p->value[vn - 1] == '\t'))
        vn--;
    }
    p->value[vn] = '\0';
    out->n++;
  }
  if (!out->n)
    return app_err_set(err, APP_ERR_CONFIG, "connection string is empty");
  return APP_OK;
}

static const struct pair *find(const struct pairs *ps, const char *norm)
{
  size_t i;
  const struct pair *last = NULL;
  for (i = 0; i < ps->n; i++)
    if (!strcmp(ps->p[i].norm, norm))
      last = &ps->p[i]; /* ADO.NET: the last occurrence wins */
  return last;
}

/* Append key=value; braced when ODBC would misread it. */
static enum app_result emit(struct buf *b, const char *key, const char *value, bool force_brace)
{
  size_t n = strlen(value);
  bool brace =
      force_brace || strpbrk(value, ";{}=") || (n && (value[0] == ' ' || value[n - 1] == ' '));
  APP_RETURN_IF_FAILED(buf_printf(b, "%s=", key));
  if (!brace)
    APP_RETURN_IF_FAILED(buf_append_str(b, value));
  else {
    const char *p;
    APP_RETURN_IF_FAILED(buf_append_char(b, '{'));
    for (p = value; *p; p++) {
      if (*p == '}')
        APP_RETURN_IF_FAILED(buf_append_char(b, '}'));
      APP_RETURN_IF_FAILED(buf_append_char(b, *p));
    }
    APP_RETURN_IF_FAILED(buf_append_char(b, '}'));
  }
  return buf_append_char(b, ';');
}

static enum app_result emit_redacted(struct buf *b, const char *key, const char *norm,
                                     const char *value)
{
  if (is_secret_key(norm))
    return buf_printf(b, "%s=***;", key);
  return emit(b, key, value, false);
}

static enum app_result parse_bool(const struct pair *p, bool *out, struct app_err *err)
{
  const char *v = p->value;
  if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
    *out = true;
  else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
    *out = false;
  else
    return app_err_set(err, APP_ERR_CONFIG,
                       "connection string: %s must be True or False, not '%.40s'", p->key, v);
  return APP_OK;
}

static enum app_result parse_seconds(const struct pair *p, int *out, struct app_err *err)
{
  char *end = NULL;
  long v;
  errno = 0;
  v = strtol(p->value, &end, 10);
  if (errno || end == p->value || *end || v < 0 || v > 86400)
    return app_err_set(err, APP_ERR_CONFIG,
                       "connection string: %s must be a number of seconds (0-86400), not '%.40s'",
                       p->key, p->value);
  *out = (int)v;
  return APP_OK;
}

/* ADO.NET keys that only configure the .NET client itself. */
static bool ignored_key(const char *norm)
{
  static const char *const keys[] = {"persistsecurityinfo",
                                     "persistsecurityinformation",
                                     "pooling",
                                     "minpoolsize",
                                     "maxpoolsize",
                                     "loadbalancetimeout",
                                     "connectionlifetime",
                                     "enlist",
                                     "packetsize",
                                     "typesystemversion",
                                     "transactionbinding",
                                     "poolblockingperiod",
                                     "multipleactiveresultsets",
                                     "replication",
                                     "currentlanguage",
                                     "language",
                                     "ipaddresspreference",
                                     "contextconnection",
                                     "userinstance",
                                     "connectionreset",
                                     NULL};
  size_t i;
  for (i = 0; keys[i]; i++)
    if (!strcmp(norm, keys[i]))
      return true;
  return false;
}

static enum app_result auth_value(const struct pair *p, const char **out, struct app_err *err)
{
  static const struct {
    const char *ado, *odbc;
  } map[] = {{"sqlpassword", "SqlPassword"},
             {"activedirectorypassword", "ActiveDirectoryPassword"},
             {"activedirectoryintegrated", "ActiveDirectoryIntegrated"},
             {"activedirectoryinteractive", "ActiveDirectoryInteractive"},
             {"activedirectoryserviceprincipal", "ActiveDirectoryServicePrincipal"},
             {"activedirectorymanagedidentity", "ActiveDirectoryMsi"},
             {"activedirectorymsi", "ActiveDirectoryMsi"},
             /* ODBC Driver 18 has no "Default" chain; in a Function App the
              * default credential is the app's managed identity. */
             {"activedirectorydefault", "ActiveDirectoryMsi"},
             {NULL, NULL}};
  char norm[128];
  size_t i;
  normalise(p->value, norm, sizeof norm);
  for (i = 0; map[i].ado; i++) {
    if (!strcmp(norm, map[i].ado)) {
      *out = map[i].odbc;
      return APP_OK;
    }
  }
  return app_err_set(err, APP_ERR_CONFIG,
                     "connection string: Authentication '%.60s' is not supported by ODBC Driver "
                     "18 (use Active Directory Managed Identity, Active Directory Service "
                     "Principal, Active Directory Password or Sql Password)",
                     p->value);
}

static enum app_result translate_tsql(const struct pairs *ps, const char *driver,
                                      struct sql_connstr *cs, struct buf *o, struct buf *r,
                                      struct app_err *err)
{
  static const struct {
    const char *norm, *odbc;
    int kind; /* 0 text, 1 yes/no bool */
  } simple[] = {{"server", "Server", 0},
                {"datasource", "Server", 0},
                {"address", "Server", 0},
                {"addr", "Server", 0},
                {"networkaddress", "Server", 0},
                {"initialcatalog", "Database", 0},
                {"database", "Database", 0},
                {"userid", "UID", 0},
                {"uid", "UID", 0},
                {"user", "UID", 0},
                {"username", "UID", 0},
                {"password", "PWD", 0},
                {"pwd", "PWD", 0},
                {"trustservercertificate", "TrustServerCertificate", 1},
                {"applicationname", "APP", 0},
                {"app", "APP", 0},
                {"workstationid", "WSID", 0},
                {"wsid", "WSID", 0},
                {"applicationintent", "ApplicationIntent", 0},
                {"multisubnetfailover", "MultiSubnetFailover", 1},
                {"connectretrycount", "ConnectRetryCount", 0},
                {"connectretryinterval", "ConnectRetryInterval", 0},
                {"hostnameincertificate", "HostNameInCertificate", 0},
                {"servercertificate", "ServerCertificate", 0},
                {NULL, NULL, 0}};
  size_t i, j;
  bool have_server = false;

  APP_RETURN_IF_FAILED(emit(o, "Driver", driver, true));
  APP_RETURN_IF_FAILED(emit(r, "Driver", driver, true));
  for (i = 0; i < ps->n; i++) {
    const struct pair *p = &ps->p[i];
    bool done = false;
    if (find(ps, p->norm) != p)
      continue; /* a later duplicate wins */
    for (j = 0; simple[j].norm && !done; j++) {
      if (strcmp(p->norm, simple[j].norm))
        continue;
      done = true;
      if (simple[j].kind == 1) {
        bool v;
        APP_RETURN_IF_FAILED(parse_bool(p, &v, err));
        APP_RETURN_IF_FAILED(emit(o, simple[j].odbc, v ? "yes" : "no", false));
        APP_RETURN_IF_FAILED(emit(r, simple[j].odbc, v ? "yes" : "no", false));
      } else {
        bool secret = !strcmp(simple[j].odbc, "PWD");
        APP_RETURN_IF_FAILED(emit(o, simple[j].odbc, p->value, secret));
        APP_RETURN_IF_FAILED(emit_redacted(r, simple[j].odbc, secret ? "pwd" : "", p->value));
        if (!strcmp(simple[j].odbc, "Server"))
          have_server = true;
      }
    }
    if (done)
      continue;
    if (!strcmp(p->norm, "encrypt")) {
      const char *v;
      if (!strcasecmp(p->value, "true") || !strcasecmp(p->value, "yes") ||
          !strcasecmp(p->value, "mandatory"))
        v = "yes";
      else if (!strcasecmp(p->value, "false") || !strcasecmp(p->value, "no") ||
               !strcasecmp(p->value, "optional"))
        v = "no";
      else if (!strcasecmp(p->value, "strict"))
        v = "strict";
      else
        return app_err_set(err, APP_ERR_CONFIG,
                           "connection string: Encrypt must be True, False, Mandatory, Optional "
                           "or Strict, not '%.40s'",
                           p->value);
      APP_RETURN_IF_FAILED(emit(o, "Encrypt", v, false));
      APP_RETURN_IF_FAILED(emit(r, "Encrypt", v, false));
    } else if (!strcmp(p->norm, "authentication")) {
      const char *v = NULL;
      APP_RETURN_IF_FAILED(auth_value(p, &v, err));
      APP_RETURN_IF_FAILED(emit(o, "Authentication", v, false));
      APP_RETURN_IF_FAILED(emit(r, "Authentication", v, false));
    } else if (!strcmp(p->norm, "connecttimeout") || !strcmp(p->norm, "connectiontimeout") ||
               !strcmp(p->norm, "timeout")) {
      APP_RETURN_IF_FAILED(parse_seconds(p, &cs->login_timeout_s, err));
    } else if (!strcmp(p->norm, "commandtimeout")) {
      APP_RETURN_IF_FAILED(parse_seconds(p, &cs->query_timeout_s, err));
    } else if (!strcmp(p->norm, "integratedsecurity") || !strcmp(p->norm, "trustedconnection")) {
      bool v;
      APP_RETURN_IF_FAILED(parse_bool(p, &v, err));
      if (v)
        return app_err_set(err, APP_ERR_CONFIG,
                           "connection string: %s (Windows authentication) is not available to a "
                           "Linux Function App; use Authentication=Active Directory Managed "
                           "Identity",
                           p->key);
    } else if (!ignored_key(p->norm)) {
      return app_err_set(err, APP_ERR_CONFIG,
                         "connection string: unknown or unsupported keyword '%.60s'", p->key);
    }
  }
  if (!have_server)
    return app_err_set(err, APP_ERR_CONFIG, "connection string has no Server (or Data Source)");
  return APP_OK;
}

static enum app_result translate_pg(const struct pairs *ps, const char *driver,
                                    struct sql_connstr *cs, struct buf *o, struct buf *r,
                                    struct app_err *err)
{
  size_t i;
  bool have_server = false;
  APP_RETURN_IF_FAILED(emit(o, "Driver", driver, true));
  APP_RETURN_IF_FAILED(emit(r, "Driver", driver, true));
  for (i = 0; i < ps->n; i++) {
    const struct pair *p = &ps->p[i];
    const char *n = p->norm;
    if (find(ps, n) != p)
      continue;
    if (!strcmp(n, "host") || !strcmp(n, "server") || !strcmp(n, "datasource")) {
      /* "tcp:host,port" (SQL Server habit) -> host and port */
      char host[MAX_PART];
      const char *h = p->value, *comma;
      if (!strncasecmp(h, "tcp:", 4))
        h += 4;
      snprintf(host, sizeof host, "%s", h);
      comma = strchr(host, ',');
      if (comma) {
        host[comma - host] = '\0';
        APP_RETURN_IF_FAILED(emit(o, "Port", comma + 1, false));
        APP_RETURN_IF_FAILED(emit(r, "Port", comma + 1, false));
      }
      APP_RETURN_IF_FAILED(emit(o, "Servername", host, false));
      APP_RETURN_IF_FAILED(emit(r, "Servername", host, false));
      have_server = true;
    } else if (!strcmp(n, "port")) {
      APP_RETURN_IF_FAILED(emit(o, "Port", p->value, false));
      APP_RETURN_IF_FAILED(emit(r, "Port", p->value, false));
    } else if (!strcmp(n, "database") || !strcmp(n, "initialcatalog")) {
      APP_RETURN_IF_FAILED(emit(o, "Database", p->value, false));
      APP_RETURN_IF_FAILED(emit(r, "Database", p->value, false));
    } else if (!strcmp(n, "username") || !strcmp(n, "userid") || !strcmp(n, "user") ||
               !strcmp(n, "uid")) {
      APP_RETURN_IF_FAILED(emit(o, "Username", p->value, false));
      APP_RETURN_IF_FAILED(emit(r, "Username", p->value, false));
    } else if (!strcmp(n, "password") || !strcmp(n, "pwd")) {
      APP_RETURN_IF_FAILED(emit(o, "Password", p->value, true));
      APP_RETURN_IF_FAILED(buf_append_str(r, "Password=***;"));
    } else if (!strcmp(n, "sslmode")) {
      char v[32];
      size_t k;
      static const char *const modes[] = {"disable",   "allow",       "prefer", "require",
                                          "verify-ca", "verify-full", NULL};
      bool ok = false;
      for (k = 0; k + 1 < sizeof v && p->value[k]; k++)
        v[k] = (char)tolower((unsigned char)p->value[k]);
      v[k] = '\0';
      if (!strcmp(v, "verifyca"))
        snprintf(v, sizeof v, "verify-ca");
      if (!strcmp(v, "verifyfull"))
        snprintf(v, sizeof v, "verify-full");
      for (k = 0; modes[k]; k++)
        ok = ok || !strcmp(v, modes[k]);
      if (!ok)
        return app_err_set(err, APP_ERR_CONFIG,
                           "connection string: SSL Mode '%.40s' is not one of Disable, Allow, "
                           "Prefer, Require, VerifyCA, VerifyFull",
                           p->value);
      APP_RETURN_IF_FAILED(emit(o, "SSLmode", v, false));
      APP_RETURN_IF_FAILED(emit(r, "SSLmode", v, false));
    } else if (!strcmp(n, "timeout") || !strcmp(n, "connecttimeout") ||
               !strcmp(n, "connectiontimeout")) {
      APP_RETURN_IF_FAILED(parse_seconds(p, &cs->login_timeout_s, err));
    } else if (!strcmp(n, "commandtimeout")) {
      APP_RETURN_IF_FAILED(parse_seconds(p, &cs->query_timeout_s, err));
    } else if (!ignored_key(n) && strcmp(n, "applicationname") &&
               strcmp(n, "trustservercertificate")) {
      return app_err_set(err, APP_ERR_CONFIG,
                         "connection string: unknown or unsupported keyword '%.60s' for "
                         "PostgreSQL",
                         p->key);
    }
  }
  if (!have_server)
    return app_err_set(err, APP_ERR_CONFIG, "connection string has no Host (or Server)");
  return APP_OK;
}

static enum sql_dialect dialect_of_driver(const char *v)
{
  char low[MAX_PART];
  size_t i;
  for (i = 0; v[i] && i + 1 < sizeof low; i++)
    low[i] = (char)tolower((unsigned char)v[i]);
  low[i] = '\0';
  if (strstr(low, "postgres") || strstr(low, "psqlodbc"))
    return SQL_DIALECT_POSTGRES;
  if (strstr(low, "sql server") || strstr(low, "msodbcsql") || strstr(low, "freetds") ||
      strstr(low, "tdsodbc"))
    return SQL_DIALECT_TSQL;
  return SQL_DIALECT_NONE;
}

enum app_result sql_connstr_parse(const char *in, enum sql_dialect want, const char *odbc_driver,
                                  struct sql_connstr *out, struct app_err *err)
{
  struct pairs *ps = NULL;
  struct buf o, r;
  enum app_result res;
  const struct pair *drv, *dsn;

  memset(out, 0, sizeof *out);
  buf_init(&o, 0);
  buf_init(&r, 0);
  if (!in || !*in) {
    res = app_err_set(err, APP_ERR_CONFIG, "SqlConnectionString is empty");
    goto out;
  }
  ps = xmalloc(sizeof *ps);
  res = split(in, ps, err);
  if (res != APP_OK)
    goto out;
  drv = find(ps, "driver");
  dsn = find(ps, "dsn");
  if (!dsn)
    dsn = find(ps, "filedsn");
  if (drv || dsn) {
    /* plain ODBC: used as it is */
    out->dialect = want != SQL_DIALECT_NONE ? want
                   : drv                    ? dialect_of_driver(drv->value)
                                            : SQL_DIALECT_NONE;
    if (out->dialect == SQL_DIALECT_NONE) {
      res = app_err_set(err, APP_ERR_CONFIG,
                        "cannot tell from the ODBC connection string whether the database is "
                        "SQL Server or PostgreSQL; set CDC_SQL_DIALECT to tsql or postgres");
      goto out;
    }
    res = buf_append_str(&o, in);
    if (res == APP_OK)
      res = sql_connstr_redact(in, &r);
  } else {
    out->dialect = want != SQL_DIALECT_NONE ? want : SQL_DIALECT_TSQL;
    out->translated = true;
    if (out->dialect == SQL_DIALECT_TSQL)
      res =
          translate_tsql(ps, odbc_driver ? odbc_driver : SQL_CONNSTR_TSQL_DRIVER, out, &o, &r, err);
    else
      res = translate_pg(ps, odbc_driver ? odbc_driver : SQL_CONNSTR_PG_DRIVER, out, &o, &r, err);
  }
  if (res != APP_OK) {
    if (res != APP_ERR_CONFIG)
      res = app_err_set(err, res, "connection string: out of memory");
    goto out;
  }
  {
    static const char *const servers[] = {"server",  "servername", "datasource",     "host",
                                          "address", "addr",       "networkaddress", "dsn",
                                          "filedsn", NULL};
    const struct pair *srv = NULL, *db = find(ps, "database");
    size_t k;
    char t[300];
    for (k = 0; servers[k] && !srv; k++)
      srv = find(ps, servers[k]);
    if (!db)
      db = find(ps, "initialcatalog");
    snprintf(t, sizeof t, "%.200s%s%.90s", srv ? srv->value : "?", db ? "/" : "",
             db ? db->value : "");
    out->target = xstrdup(t);
  }
  out->odbc = buf_steal(&o, NULL);
  out->redacted = buf_steal(&r, NULL);
  if (!out->redacted)
    out->redacted = xstrdup("");
out:
  if (res != APP_OK)
    sql_connstr_cleanup(out);
  if (ps)
    memset(ps, 0, sizeof *ps); /* the values may hold a password */
  free(ps);
  if (o.data)
    memset(o.data, 0, o.len);
  buf_cleanup(&o);
  buf_cleanup(&r);
  return res;
}

void sql_connstr_cleanup(struct sql_connstr *cs)
{
  if (!cs)
    return;
  if (cs->odbc)
    memset(cs->odbc, 0, strlen(cs->odbc));
  free(cs->odbc);
  free(cs->redacted);
  free(cs->target);
  memset(cs, 0, sizeof *cs);
}

enum app_result sql_connstr_redact(const char *s, struct buf *out)
{
  struct pairs *ps = xmalloc(sizeof *ps);
  struct app_err e;
  enum app_result r = APP_OK;
  size_t i;
  if (split(s ? s : "", ps, &e) != APP_OK) {
    r = buf_printf(out, "<unparseable connection string, %zu bytes>", s ? strlen(s) : 0);
  } else {
    for (i = 0; i < ps->n && r == APP_OK; i++)
      r = emit_redacted(out, ps->p[i].key, ps->p[i].norm, ps->p[i].value);
  }
  memset(ps, 0, sizeof *ps);
  free(ps);
  return r;
}

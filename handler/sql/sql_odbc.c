/* sql_odbc.c - unixODBC calls and the translation of their diagnostics. */
#include "sql/sql_odbc.h"

#include <sql.h>
#include <sqlext.h>
#include <sqlucode.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sql_odbc_env {
  SQLHENV henv;
};

struct sql_conn {
  SQLHDBC hdbc;
  enum sql_dialect dialect;
  bool connected;
  struct sql_odbc_diag last;
};

static size_t utf8_to_utf16(const char *s, size_t n, SQLWCHAR *out);
static SQLWCHAR *wide(const char *s, size_t n, SQLINTEGER *out_units);

bool sql_odbc_is_broken(const char *st)
{
  return !strncmp(st, "08", 2) || !strcmp(st, "HYT00") || !strcmp(st, "HYT01") ||
         !strcmp(st, "40003") || !strcmp(st, "57P01") || !strcmp(st, "57P02") ||
         !strcmp(st, "57P03");
}

bool sql_odbc_is_transient(enum sql_dialect d, const char *st, long native)
{
  /* Azure SQL transient error numbers (throttling, failover, reconfiguration)
   * from Microsoft's retry guidance, plus deadlock victim 1205. */
  static const long tsql_natives[] = {1205,  4060,  4221,  10053, 10054, 10060, 10928, 10929, 40143,
                                      40197, 40501, 40540, 40613, 49918, 49919, 49920, 233,   64};
  size_t i;
  /* 57014: PostgreSQL cancelled the statement, which is how psqlODBC
   * enforces SQL_ATTR_QUERY_TIMEOUT */
  if (sql_odbc_is_broken(st) || !strcmp(st, "40001") || !strcmp(st, "40P01") ||
      !strncmp(st, "53", 2) || !strcmp(st, "55P03") || !strcmp(st, "57014"))
    return true;
  if (d == SQL_DIALECT_TSQL)
    for (i = 0; i < sizeof tsql_natives / sizeof tsql_natives[0]; i++)
      if (native == tsql_natives[i])
        return true;
  return false;
}

/* The one translation of ODBC diagnostics: first record's SQLSTATE, native
 * code and text (one line), plus the second record's text when it adds
 * something. */
static enum app_result odbc_fail(struct sql_conn *c, SQLSMALLINT type, SQLHANDLE h, SQLRETURN rc,
                                 const char *what, struct app_err *err)
{
  SQLCHAR state[6] = "", text[512] = "", text2[256] = "", state2[6];
  SQLINTEGER native = 0, native2;
  SQLSMALLINT len;
  struct sql_odbc_diag dg = {{0}, 0, false, false};
  size_t i;

  if (SQLGetDiagRec(type, h, 1, state, &native, text, sizeof text, &len) != SQL_SUCCESS &&
      rc != SQL_SUCCESS_WITH_INFO) {
    snprintf((char *)text, sizeof text, "no diagnostic (ODBC return code %d)", (int)rc);
    state[0] = '\0';
  }
  if (SQLGetDiagRec(type, h, 2, state2, &native2, text2, sizeof text2, &len) != SQL_SUCCESS)
    text2[0] = '\0';
  for (i = 0; text[i]; i++)
    if (text[i] == '\n' || text[i] == '\r')
      text[i] = ' ';
  for (i = 0; text2[i]; i++)
    if (text2[i] == '\n' || text2[i] == '\r')
      text2[i] = ' ';
  snprintf(dg.sqlstate, sizeof dg.sqlstate, "%s", (const char *)state);
  dg.native = (long)native;
  dg.transient = sql_odbc_is_transient(c ? c->dialect : SQL_DIALECT_NONE, dg.sqlstate, dg.native);
  dg.broken = sql_odbc_is_broken(dg.sqlstate);
  if (c && c->hdbc && !dg.broken) {
    /* psqlODBC reports some lost connections with a generic state */
    SQLUINTEGER dead = SQL_CD_FALSE;
    if (SQLGetConnectAttr(c->hdbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL) == SQL_SUCCESS &&
        dead == SQL_CD_TRUE) {
      dg.broken = true;
      dg.transient = true;
    }
  }
  if (c)
    c->last = dg;
  if (text2[0] && !strstr((const char *)text, (const char *)text2))
    return app_err_set(err, APP_ERR_SQL, "%s: SQLSTATE %s (native %ld): %s; %s", what,
                       dg.sqlstate[0] ? dg.sqlstate : "-", dg.native, (const char *)text,
                       (const char *)text2);
  return app_err_set(err, APP_ERR_SQL, "%s: SQLSTATE %s (native %ld): %s", what,
                     dg.sqlstate[0] ? dg.sqlstate : "-", dg.native, (const char *)text);
}

static bool ok(SQLRETURN rc)
{
  return rc == SQL_SUCCESS || rc == SQL_SUCCESS_WITH_INFO;
}

enum app_result sql_odbc_env_create(struct sql_odbc_env **out_env, struct app_err *err)
{
  struct sql_odbc_env *e = xcalloc(1, sizeof *e);
  if (!ok(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &e->henv))) {
    free(e);
    return app_err_set(err, APP_ERR_SQL, "ODBC: cannot allocate an environment handle");
  }
  if (!ok(SQLSetEnvAttr(e->henv, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0))) {
    enum app_result r =
        odbc_fail(NULL, SQL_HANDLE_ENV, e->henv, SQL_ERROR, "ODBC: set version 3", err);
    SQLFreeHandle(SQL_HANDLE_ENV, e->henv);
    free(e);
    return r;
  }
  *out_env = e;
  return APP_OK;
}

void sql_odbc_env_destroy(struct sql_odbc_env *env)
{
  if (!env)
    return;
  SQLFreeHandle(SQL_HANDLE_ENV, env->henv);
  free(env);
}

enum app_result sql_odbc_connect(struct sql_odbc_env *env, const char *connstr, const char *target,
                                 enum sql_dialect d, int login_timeout_s,
                                 struct sql_conn **out_conn, struct sql_odbc_diag *out_diag,
                                 struct app_err *err)
{
  struct sql_conn *c = xcalloc(1, sizeof *c);
  enum app_result r = APP_OK;
  SQLRETURN rc;
  char what[200];

  c->dialect = d;
  snprintf(what, sizeof what, "connect to %.150s", target ? target : "SQL database");
  if (!ok(SQLAllocHandle(SQL_HANDLE_DBC, env->henv, &c->hdbc))) {
    r = odbc_fail(c, SQL_HANDLE_ENV, env->henv, SQL_ERROR, what, err);
    c->hdbc = SQL_NULL_HDBC;
    goto out;
  }
  if (login_timeout_s > 0) {
    /* Not every driver supports these; a failure is not fatal. */
    (void)SQLSetConnectAttr(c->hdbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)(uintptr_t)login_timeout_s,
                            0);
    (void)SQLSetConnectAttr(c->hdbc, SQL_ATTR_CONNECTION_TIMEOUT,
                            (SQLPOINTER)(uintptr_t)login_timeout_s, 0);
  }
  {
    SQLINTEGER wlen = 0;
    SQLWCHAR *wcs = wide(connstr, strlen(connstr), &wlen);
    if (!wcs || wlen > 32767) {
      free(wcs);
      r = app_err_set(err, APP_ERR_CONFIG, "%s: connection string too long or out of memory", what);
      goto out;
    }
    rc = SQLDriverConnectW(c->hdbc, NULL, wcs, (SQLSMALLINT)wlen, NULL, 0, NULL,
                           SQL_DRIVER_NOPROMPT);
    memset(wcs, 0, (size_t)wlen * sizeof *wcs); /* it holds the password */
    free(wcs);
  }
  if (!ok(rc)) {
    r = odbc_fail(c, SQL_HANDLE_DBC, c->hdbc, rc, what, err);
    /* a refused login is worth retrying only when the server is unreachable */
    goto out;
  }
  c->connected = true;
  rc = SQLSetConnectAttr(c->hdbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER)SQL_AUTOCOMMIT_OFF, 0);
  if (!ok(rc)) {
    r = odbc_fail(c, SQL_HANDLE_DBC, c->hdbc, rc, "set autocommit off", err);
    goto out;
  }
out:
  if (out_diag)
    *out_diag = c->last;
  if (r != APP_OK) {
    sql_odbc_disconnect(c);
    return r;
  }
  *out_conn = c;
  return APP_OK;
}

void sql_odbc_disconnect(struct sql_conn *c)
{
  if (!c)
    return;
  if (c->connected) {
    (void)SQLEndTran(SQL_HANDLE_DBC, c->hdbc, SQL_ROLLBACK);
    (void)SQLDisconnect(c->hdbc);
  }
  if (c->hdbc)
    SQLFreeHandle(SQL_HANDLE_DBC, c->hdbc);
  free(c);
}

const struct sql_odbc_diag *sql_odbc_last(const struct sql_conn *c)
{
  return &c->last;
}

/* UTF-8 to UTF-16 (SQLWCHAR is 16 bits with unixODBC). Invalid bytes become
 * U+FFFD; the JSON reader has already validated document text. Returns the
 * number of code units written (out has room for 2*n). */
static size_t utf8_to_utf16(const char *s, size_t n, SQLWCHAR *out)
{
  size_t i = 0, o = 0;
  while (i < n) {
    unsigned char b = (unsigned char)s[i];
    uint32_t cp;
    size_t k, need;
    if (b < 0x80) {
      out[o++] = b;
      i++;
      continue;
    }
    if ((b & 0xE0) == 0xC0)
      need = 1, cp = b & 0x1F;
    else if ((b & 0xF0) == 0xE0)
      need = 2, cp = b & 0x0F;
    else if ((b & 0xF8) == 0xF0)
      need = 3, cp = b & 0x07;
    else {
      out[o++] = 0xFFFD;
      i++;
      continue;
    }
    if (i + need >= n) { /* truncated sequence */
      out[o++] = 0xFFFD;
      i++;
      continue;
    }
    for (k = 1; k <= need; k++) {
      unsigned char cb = (unsigned char)s[i + k];
      if ((cb & 0xC0) != 0x80)
        break;
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (k <= need || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      out[o++] = 0xFFFD;
      i++;
      continue;
    }
    i += need + 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out[o++] = (SQLWCHAR)(0xD800 + (cp >> 10));
      out[o++] = (SQLWCHAR)(0xDC00 + (cp & 0x3FF));
    } else {
      out[o++] = (SQLWCHAR)cp;
    }
  }
  return o;
}

/* The statement text as UTF-16: the driver manager's own ANSI-to-Unicode
 * conversion depends on the process locale, ours does not. Caller frees. */
static SQLWCHAR *wide(const char *s, size_t n, SQLINTEGER *out_units)
{
  SQLWCHAR *w = n < (size_t)INT32_MAX ? malloc((n + 1) * sizeof *w) : NULL;
  size_t u;
  if (!w)
    return NULL;
  u = utf8_to_utf16(s, n, w);
  w[u] = 0;
  *out_units = (SQLINTEGER)u;
  return w;
}

/* A statement handle with the parameter buffers bound to it (they must
 * outlive the execution). */
struct stmt_handle {
  SQLHSTMT h;
  SQLWCHAR *wbuf;
  SQLLEN *ind;
};

static void stmt_handle_free(struct stmt_handle *sh)
{
  if (sh->h)
    SQLFreeHandle(SQL_HANDLE_STMT, sh->h);
  free(sh->wbuf);
  free(sh->ind);
  memset(sh, 0, sizeof *sh);
}

static enum app_result prepare(struct sql_conn *c, const struct sql_stmt *s, int timeout_s,
                               struct stmt_handle *out, struct app_err *err)
{
  SQLHSTMT h = SQL_NULL_HSTMT;
  SQLWCHAR *wbuf = NULL;
  SQLLEN *ind = NULL;
  size_t *off = NULL, total = 0, i;
  SQLRETURN rc;
  enum app_result r = APP_OK;

  rc = SQLAllocHandle(SQL_HANDLE_STMT, c->hdbc, &h);
  if (!ok(rc)) {
    r = odbc_fail(c, SQL_HANDLE_DBC, c->hdbc, rc, "allocate statement", err);
    h = SQL_NULL_HSTMT;
    goto out;
  }
  if (timeout_s > 0)
    (void)SQLSetStmtAttr(h, SQL_ATTR_QUERY_TIMEOUT, (SQLPOINTER)(uintptr_t)timeout_s, 0);
  if (s->nparams) {
    for (i = 0; i < s->nparams; i++)
      total += s->lens[i] + 1;
    /* sized by the documents' text: allocation failure is an error, not an abort */
    wbuf = malloc(total * sizeof *wbuf);
    ind = malloc(s->nparams * sizeof *ind);
    off = malloc(s->nparams * sizeof *off);
    if (!wbuf || !ind || !off) {
      r = app_err_set(err, APP_ERR_NOMEM, "bind parameters: cannot allocate %zu bytes",
                      total * sizeof *wbuf);
      goto out;
    }
    total = 0;
    for (i = 0; i < s->nparams; i++) {
      size_t units = utf8_to_utf16(s->vals[i], s->lens[i], wbuf + total);
      off[i] = total;
      ind[i] = (SQLLEN)(units * sizeof(SQLWCHAR));
      wbuf[total + units] = 0;
      total += s->lens[i] + 1;
    }
    for (i = 0; i < s->nparams; i++) {
      SQLULEN chars = (SQLULEN)ind[i] / sizeof(SQLWCHAR);
      SQLSMALLINT sqltype = chars > 4000 ? SQL_WLONGVARCHAR : SQL_WVARCHAR;
      rc = SQLBindParameter(h, (SQLUSMALLINT)(i + 1), SQL_PARAM_INPUT, SQL_C_WCHAR, sqltype,
                            chars ? chars : 1, 0, wbuf + off[i], ind[i], &ind[i]);
      if (!ok(rc)) {
        r = odbc_fail(c, SQL_HANDLE_STMT, h, rc, "bind parameter", err);
        goto out;
      }
    }
  }
out:
  free(off);
  if (r != APP_OK) {
    if (h)
      SQLFreeHandle(SQL_HANDLE_STMT, h);
    free(wbuf);
    free(ind);
    return r;
  }
  out->h = h;
  out->wbuf = wbuf;
  out->ind = ind;
  return APP_OK;
}

/* Prepare s (what names the step in messages) and execute it directly;
 * *out_rc gets SQLExecDirectW's return code for the caller to judge. On
 * success the caller frees *out with stmt_handle_free. */
static enum app_result execute(struct sql_conn *c, const struct sql_stmt *s, int timeout_s,
                               const char *what, struct stmt_handle *out, SQLRETURN *out_rc,
                               struct app_err *err)
{
  SQLWCHAR *wsql;
  SQLINTEGER wlen;

  memset(&c->last, 0, sizeof c->last);
  APP_RETURN_IF_FAILED(prepare(c, s, timeout_s, out, err));
  wsql = wide(s->sql.data, s->sql.len, &wlen);
  if (!wsql) {
    stmt_handle_free(out);
    return app_err_set(err, APP_ERR_NOMEM, "%s: cannot allocate the statement text", what);
  }
  *out_rc = SQLExecDirectW(out->h, wsql, wlen);
  free(wsql);
  return APP_OK;
}

enum app_result sql_odbc_exec(struct sql_conn *c, const struct sql_stmt *s, int timeout_s,
                              long *out_rows, struct app_err *err)
{
  struct stmt_handle sh = {0};
  SQLLEN rows = -1;
  SQLRETURN rc = SQL_ERROR;
  enum app_result r = execute(c, s, timeout_s, "execute", &sh, &rc, err);

  if (r != APP_OK)
    return r;
  if (rc == SQL_NO_DATA) {
    rows = 0; /* e.g. a DELETE or UPDATE that matched nothing */
  } else if (!ok(rc)) {
    r = odbc_fail(c, SQL_HANDLE_STMT, sh.h, rc, "execute", err);
    goto out;
  } else if (!ok(SQLRowCount(sh.h, &rows))) {
    rows = -1;
  }
  if (out_rows)
    *out_rows = (long)rows;
out:
  stmt_handle_free(&sh);
  return r;
}

/* Column col of the current row as UTF-8 (fetched as UTF-16, so the text
 * does not depend on the process locale); cut to cap - 1 bytes. */
static enum app_result get_text(struct sql_conn *c, SQLHSTMT h, SQLUSMALLINT col, char *out,
                                size_t cap, bool *out_null, struct app_err *err)
{
  SQLWCHAR w[512];
  SQLLEN ind = SQL_NULL_DATA;
  size_t i, n, o = 0;
  SQLRETURN rc = SQLGetData(h, col, SQL_C_WCHAR, w, sizeof w, &ind);
  if (!ok(rc))
    return odbc_fail(c, SQL_HANDLE_STMT, h, rc, "get data", err);
  *out_null = ind == SQL_NULL_DATA;
  out[0] = '\0';
  if (*out_null)
    return APP_OK;
  n = ind == SQL_NO_TOTAL || (size_t)ind >= sizeof w ? sizeof w / sizeof w[0] - 1
                                                     : (size_t)ind / sizeof w[0];
  for (i = 0; i < n; i++) {
    uint32_t cp = w[i];
    char enc[4];
    size_t k, len;
    if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < n && w[i + 1] >= 0xDC00 && w[i + 1] <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (w[i + 1] - 0xDC00);
      i++;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
      cp = 0xFFFD;
    }
    if (cp < 0x80) {
      enc[0] = (char)cp;
      len = 1;
    } else if (cp < 0x800) {
      enc[0] = (char)(0xC0 | (cp >> 6));
      enc[1] = (char)(0x80 | (cp & 0x3F));
      len = 2;
    } else if (cp < 0x10000) {
      enc[0] = (char)(0xE0 | (cp >> 12));
      enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
      enc[2] = (char)(0x80 | (cp & 0x3F));
      len = 3;
    } else {
      enc[0] = (char)(0xF0 | (cp >> 18));
      enc[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
      enc[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
      enc[3] = (char)(0x80 | (cp & 0x3F));
      len = 4;
    }
    if (o + len >= cap)
      break;
    for (k = 0; k < len; k++)
      out[o++] = enc[k];
  }
  out[o] = '\0';
  return APP_OK;
}

enum app_result sql_odbc_query(struct sql_conn *c, const struct sql_stmt *s, int timeout_s,
                               sql_odbc_row_fn fn, void *ctx, struct app_err *err)
{
  struct stmt_handle sh = {0};
  SQLHSTMT h;
  SQLRETURN rc = SQL_ERROR;
  enum app_result r = execute(c, s, timeout_s, "query", &sh, &rc, err);

  if (r != APP_OK)
    return r;
  h = sh.h;
  if (!ok(rc)) {
    r = odbc_fail(c, SQL_HANDLE_STMT, h, rc, "query", err);
    goto out;
  }
  for (;;) {
    char v1[512], v2[512];
    SQLSMALLINT ncols = 0;
    bool null1 = true, null2 = true;
    rc = SQLFetch(h);
    if (rc == SQL_NO_DATA)
      break;
    if (!ok(rc)) {
      r = odbc_fail(c, SQL_HANDLE_STMT, h, rc, "fetch", err);
      goto out;
    }
    (void)SQLNumResultCols(h, &ncols);
    r = get_text(c, h, 1, v1, sizeof v1, &null1, err);
    if (r == APP_OK && ncols >= 2)
      r = get_text(c, h, 2, v2, sizeof v2, &null2, err);
    if (r != APP_OK)
      goto out;
    r = fn(ctx, null1 ? NULL : v1, null2 ? NULL : v2, err);
    if (r != APP_OK)
      goto out;
  }
out:
  stmt_handle_free(&sh);
  return r;
}

enum app_result sql_odbc_commit(struct sql_conn *c, struct app_err *err)
{
  SQLRETURN rc;
  memset(&c->last, 0, sizeof c->last);
  rc = SQLEndTran(SQL_HANDLE_DBC, c->hdbc, SQL_COMMIT);
  if (!ok(rc))
    return odbc_fail(c, SQL_HANDLE_DBC, c->hdbc, rc, "commit", err);
  return APP_OK;
}

void sql_odbc_rollback(struct sql_conn *c)
{
  SQLRETURN rc;
  if (!c || !c->connected)
    return;
  rc = SQLEndTran(SQL_HANDLE_DBC, c->hdbc, SQL_ROLLBACK);
  if (!ok(rc)) {
    struct app_err e;
    struct sql_odbc_diag keep = c->last;
    (void)odbc_fail(c, SQL_HANDLE_DBC, c->hdbc, rc, "rollback", &e);
    keep.broken = true; /* a connection that cannot roll back is not reused */
    c->last = keep;
  }
}

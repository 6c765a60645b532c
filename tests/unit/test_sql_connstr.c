/* test_sql_connstr.c - SqlConnectionString translation and redaction. */
#include "sql/sql_connstr.h"
#include "check.h"

#include <stdlib.h>

struct ok_case {
  const char *name;
  const char *in;
  enum sql_dialect want;
  const char *odbc;     /* expected ODBC string */
  const char *redacted; /* expected redacted form */
  enum sql_dialect dialect;
  int login, query;
  const char *target;
};

static const struct ok_case ok_cases[] = {
    {"portal ADO.NET, SQL authentication",
     "Server=tcp:x.database.windows.net,1433;Initial Catalog=db;Persist Security Info=False;User "
     "ID=u;Password=p@ss;MultipleActiveResultSets=False;Encrypt=True;TrustServerCertificate="
     "False;Connection Timeout=30;",
     SQL_DIALECT_NONE,
     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:x.database.windows.net,1433;Database=db;"
     "UID=u;PWD={p@ss};Encrypt=yes;TrustServerCertificate=no;",
     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:x.database.windows.net,1433;Database=db;"
     "UID=u;PWD=***;Encrypt=yes;TrustServerCertificate=no;",
     SQL_DIALECT_TSQL, 30, 0, "tcp:x.database.windows.net,1433/db"},
    {"Active Directory Default (quoted value)",
     "Server=tcp:x.database.windows.net,1433;Initial Catalog=db;Encrypt=True;"
     "TrustServerCertificate=False;Connection Timeout=30;Authentication=\"Active Directory "
     "Default\";",
     SQL_DIALECT_NONE,
     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:x.database.windows.net,1433;Database=db;"
     "Encrypt=yes;TrustServerCertificate=no;Authentication=ActiveDirectoryMsi;",
     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:x.database.windows.net,1433;Database=db;"
     "Encrypt=yes;TrustServerCertificate=no;Authentication=ActiveDirectoryMsi;",
     SQL_DIALECT_TSQL, 30, 0, NULL},
    {"user-assigned managed identity, odd spacing and case",
     "  server = x.database.windows.net ; DATABASE=db;authentication=Active Directory Managed "
     "Identity; User Id = 11111111-2222-3333-4444-555555555555 ;Command Timeout=45",
     SQL_DIALECT_NONE,
     "Driver={ODBC Driver 18 for SQL Server};Server=x.database.windows.net;Database=db;"
     "Authentication=ActiveDirectoryMsi;UID=11111111-2222-3333-4444-555555555555;",
     NULL, SQL_DIALECT_TSQL, 0, 45, NULL},
    {"service principal, Encrypt=Strict",
     "Data Source=s;Initial Catalog=d;Authentication=ActiveDirectoryServicePrincipal;User "
     "Id=appid;Password=secret;Encrypt=Strict",
     SQL_DIALECT_NONE,
     "Driver={ODBC Driver 18 for SQL Server};Server=s;Database=d;"
     "Authentication=ActiveDirectoryServicePrincipal;UID=appid;PWD={secret};Encrypt=strict;",
     NULL, SQL_DIALECT_TSQL, 0, 0, NULL},
    {"password with ; quotes and braces", "Server=s;User ID=u;Password=\"p;a\"\"ss}{\"",
     SQL_DIALECT_NONE, "Driver={ODBC Driver 18 for SQL Server};Server=s;UID=u;PWD={p;a\"ss}}{};",
     "Driver={ODBC Driver 18 for SQL Server};Server=s;UID=u;PWD=***;", SQL_DIALECT_TSQL, 0, 0,
     NULL},
    {"last duplicate wins", "Server=a;Server=b;Database=x;Database=y", SQL_DIALECT_NONE,
     "Driver={ODBC Driver 18 for SQL Server};Server=b;Database=y;", NULL, SQL_DIALECT_TSQL, 0, 0,
     "b/y"},
    {"plain ODBC for SQL Server is kept",
     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:s,1433;UID=u;PWD={x;y};Encrypt=yes;",
     SQL_DIALECT_NONE,
     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:s,1433;UID=u;PWD={x;y};Encrypt=yes;",
     "Driver=ODBC Driver 18 for SQL Server;Server=tcp:s,1433;UID=u;PWD=***;Encrypt=yes;",
     SQL_DIALECT_TSQL, 0, 0, NULL},
    {"plain ODBC with a psqlODBC path",
     "Driver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so;Servername=/tmp/x;Port=5432;"
     "Database=postgres;Username=postgres;Password=pw",
     SQL_DIALECT_NONE,
     "Driver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so;Servername=/tmp/x;Port=5432;"
     "Database=postgres;Username=postgres;Password=pw",
     "Driver=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so;Servername=/tmp/x;Port=5432;"
     "Database=postgres;Username=postgres;Password=***;",
     SQL_DIALECT_POSTGRES, 0, 0, "/tmp/x/postgres"},
    {"DSN with the dialect configured", "DSN=warehouse;UID=u;PWD=p", SQL_DIALECT_POSTGRES,
     "DSN=warehouse;UID=u;PWD=p", "DSN=warehouse;UID=u;PWD=***;", SQL_DIALECT_POSTGRES, 0, 0,
     "warehouse"},
    {"Npgsql form for PostgreSQL",
     "Host=h.postgres.database.azure.com;Port=5432;Database=d;Username=u;Password=p;Ssl "
     "Mode=Require;Timeout=20",
     SQL_DIALECT_POSTGRES,
     "Driver={PostgreSQL Unicode};Servername=h.postgres.database.azure.com;Port=5432;Database=d;"
     "Username=u;Password={p};SSLmode=require;",
     "Driver={PostgreSQL Unicode};Servername=h.postgres.database.azure.com;Port=5432;Database=d;"
     "Username=u;Password=***;SSLmode=require;",
     SQL_DIALECT_POSTGRES, 20, 0, NULL},
    {"ADO.NET Server=tcp:host,port for PostgreSQL",
     "Server=tcp:pg,6432;Database=d;User Id=u;SSL Mode=VerifyFull", SQL_DIALECT_POSTGRES,
     "Driver={PostgreSQL Unicode};Port=6432;Servername=pg;Database=d;Username=u;"
     "SSLmode=verify-full;",
     NULL, SQL_DIALECT_POSTGRES, 0, 0, NULL},
};

struct bad_case {
  const char *name;
  const char *in;
  enum sql_dialect want;
  const char *msg_has;
  const char *secret; /* must not appear in the message */
};

static const struct bad_case bad_cases[] = {
    {"empty", "", SQL_DIALECT_NONE, "empty", NULL},
    {"only separators", " ; ;", SQL_DIALECT_NONE, "empty", NULL},
    {"part without =", "Server=s;Password=hunter2;garbage", SQL_DIALECT_NONE, "has no '='",
     "hunter2"},
    {"unclosed quote", "Server=s;Password=\"hunter2", SQL_DIALECT_NONE, "no closing", "hunter2"},
    {"unclosed brace", "Driver={x;PWD=hunter2", SQL_DIALECT_NONE, "no closing", "hunter2"},
    {"text after a quoted value", "Server=s;Password='hunter2' x", SQL_DIALECT_NONE,
     "unexpected text", "hunter2"},
    {"unknown keyword", "Server=s;Password=hunter2;Flux Capacitor=1", SQL_DIALECT_NONE,
     "'Flux Capacitor'", "hunter2"},
    {"no server", "Initial Catalog=db;Password=hunter2", SQL_DIALECT_NONE, "no Server", "hunter2"},
    {"integrated security", "Server=s;Integrated Security=True", SQL_DIALECT_NONE, "not available",
     NULL},
    {"bad Encrypt", "Server=s;Encrypt=maybe", SQL_DIALECT_NONE, "Encrypt must be", NULL},
    {"bad bool", "Server=s;TrustServerCertificate=perhaps", SQL_DIALECT_NONE, "True or False",
     NULL},
    {"bad timeout", "Server=s;Connection Timeout=soon", SQL_DIALECT_NONE, "seconds", NULL},
    {"unsupported Entra method", "Server=s;Authentication=Active Directory Device Code Flow",
     SQL_DIALECT_NONE, "not supported by ODBC Driver 18", NULL},
    {"DSN without dialect", "DSN=warehouse;PWD=hunter2", SQL_DIALECT_NONE, "CDC_SQL_DIALECT",
     "hunter2"},
    {"unknown driver without dialect", "Driver={Some ODBC};PWD=hunter2", SQL_DIALECT_NONE,
     "CDC_SQL_DIALECT", "hunter2"},
    {"bad SSL Mode", "Host=h;SSL Mode=Sometimes", SQL_DIALECT_POSTGRES, "SSL Mode", NULL},
    {"SQL Server keyword for PostgreSQL", "Host=h;MultiSubnetFailover=True;Password=hunter2",
     SQL_DIALECT_POSTGRES, "MultiSubnetFailover", "hunter2"},
};

int main(void)
{
  size_t i;
  for (i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
    const struct ok_case *c = &ok_cases[i];
    struct sql_connstr cs;
    struct app_err e;
    TEST_CASE(c->name);
    if (sql_connstr_parse(c->in, c->want, NULL, &cs, &e) != APP_OK) {
      CHECK_MSG(0, "unexpected error: %s", e.msg);
      continue;
    }
    CHECK_STREQ(cs.odbc, c->odbc);
    if (c->redacted)
      CHECK_STREQ(cs.redacted, c->redacted);
    CHECK(!strstr(cs.redacted, "p@ss") && !strstr(cs.redacted, "secret"));
    CHECK_INTEQ(cs.dialect, c->dialect);
    CHECK_INTEQ(cs.login_timeout_s, c->login);
    CHECK_INTEQ(cs.query_timeout_s, c->query);
    if (c->target)
      CHECK_STREQ(cs.target, c->target);
    sql_connstr_cleanup(&cs);
  }
  for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const struct bad_case *c = &bad_cases[i];
    struct sql_connstr cs;
    struct app_err e;
    enum app_result r;
    TEST_CASE(c->name);
    memset(&cs, 0x5a, sizeof cs);
    r = sql_connstr_parse(c->in, c->want, NULL, &cs, &e);
    CHECK_INTEQ(r, APP_ERR_CONFIG);
    if (r == APP_OK) {
      sql_connstr_cleanup(&cs);
      continue;
    }
    CHECK_CONTAINS(e.msg, c->msg_has);
    if (c->secret)
      CHECK_MSG(!strstr(e.msg, c->secret), "secret leaked: %s", e.msg);
    CHECK(cs.odbc == NULL && cs.redacted == NULL);
  }

  TEST_CASE("a chosen ODBC driver name is used when translating");
  {
    struct sql_connstr cs;
    struct app_err e;
    CHECK(sql_connstr_parse("Server=s;Database=d", SQL_DIALECT_TSQL,
                            "ODBC Driver 17 for SQL Server", &cs, &e) == APP_OK);
    CHECK_STREQ(cs.odbc, "Driver={ODBC Driver 17 for SQL Server};Server=s;Database=d;");
    sql_connstr_cleanup(&cs);
  }

  TEST_CASE("redaction of any string");
  {
    struct buf b;
    buf_init(&b, 0);
    CHECK(sql_connstr_redact("Server=s;Password=\"a;b\";AccessToken=tok;SharedAccessKey=k;"
                             "ClientSecret=c;User=u",
                             &b) == APP_OK);
    CHECK_STREQ(b.data, "Server=s;Password=***;AccessToken=***;SharedAccessKey=***;"
                        "ClientSecret=***;User=u;");
    buf_reset(&b);
    CHECK(sql_connstr_redact("Server=s;Password=\"hunter2", &b) == APP_OK);
    CHECK_STREQ(b.data, "<unparseable connection string, 26 bytes>");
    buf_reset(&b);
    CHECK(sql_connstr_redact(NULL, &b) == APP_OK);
    CHECK_CONTAINS(b.data, "unparseable");
    buf_cleanup(&b);
  }
  sql_connstr_cleanup(NULL);
  return check_report("test_sql_connstr");
}

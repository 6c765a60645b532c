/* sql_connstr.h - the SqlConnectionString app setting, made an ODBC string.
 *
 * The Azure portal shows Azure SQL connection strings in ADO.NET form:
 *   Server=tcp:x.database.windows.net,1433;Initial Catalog=db;Persist Security
 *   Info=False;User ID=u;Password=p;MultipleActiveResultSets=False;
 *   Encrypt=True;TrustServerCertificate=False;Connection Timeout=30;
 * (or with Authentication="Active Directory Default" / "Active Directory
 * Managed Identity"). Such a string is translated to the keywords of
 * Microsoft ODBC Driver 18 for SQL Server. A plain ODBC connection string
 * (one with Driver= or DSN= or FILEDSN=) is used as it is. With the
 * postgres dialect an ADO.NET/Npgsql-style string (Host/Server, Port,
 * Database, Username, Password, SSL Mode) is translated to psqlODBC keywords.
 *
 * Secrets (Password, PWD, access tokens, ...) never appear in error
 * messages; the redacted form replaces their values with "***". */
#ifndef D365CDC_SQL_CONNSTR_H
#define D365CDC_SQL_CONNSTR_H

#include "common/buf.h"
#include "common/result.h"
#include "sql/sql_dialect.h"

#include <stdbool.h>

#define SQL_CONNSTR_TSQL_DRIVER "ODBC Driver 18 for SQL Server"
#define SQL_CONNSTR_PG_DRIVER   "PostgreSQL Unicode"

struct sql_connstr {
  char *odbc;               /* ODBC connection string for SQLDriverConnect (secret); owned */
  char *redacted;           /* the same with secret values as ***; owned, safe to log */
  char *target;             /* short name for messages: "server/database" or "DSN name"; owned */
  enum sql_dialect dialect; /* forced, or detected from the driver; NONE if unknown */
  int login_timeout_s;      /* from Connect(ion) Timeout / LoginTimeout; 0: not given */
  int query_timeout_s;      /* from Command Timeout; 0: not given */
  bool translated;          /* the input was ADO.NET form */
};

/* Parse and translate in. want: the configured dialect (NONE = auto).
 * odbc_driver: driver name or path used when translating (NULL: the
 * defaults above). On success *out owns two strings (sql_connstr_cleanup).
 *   APP_ERR_CONFIG  empty string, bad syntax (unbalanced quotes or braces,
 *                   a part without '='), an unknown or unsupported ADO.NET
 *                   keyword or value (named in the message; values of secret
 *                   keys never), or dialect auto with a DSN that does not
 *                   tell the database kind */
APP_NODISCARD enum app_result sql_connstr_parse(const char *in, enum sql_dialect want,
                                                const char *odbc_driver, struct sql_connstr *out,
                                                struct app_err *err);

/* Free the strings. NULL-safe. */
void sql_connstr_cleanup(struct sql_connstr *cs);

/* Append s (either form) with the values of secret keys replaced by ***.
 * A string that cannot be parsed is rendered as "<unparseable connection
 * string, N bytes>" so nothing of it leaks. */
APP_NODISCARD enum app_result sql_connstr_redact(const char *s, struct buf *out);

#endif

#!/bin/sh
# sql_postgres.sh - the SQL sink against a private PostgreSQL 15 over psqlODBC:
# every correctness rule (build/itest/itest_sql_sink), including a server
# restart in the middle of a stream of batches.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
[ -x "$BUILD/itest/itest_sql_sink" ] || die "build $BUILD/itest/itest_sql_sink first (make tools)"
dir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $dir" # tmpdir runs in a subshell here
start_postgres "$dir"
log "PostgreSQL on $PG_SOCKDIR port $PG_PORT"
if [ "$(id -u)" = 0 ]; then as_pg="runuser -u postgres --"; else as_pg=""; fi
# the crash-like stop (no shutdown checkpoint) is what a failover looks like
PG_STOP_CMD="$as_pg $PG_BIN/pg_ctl -D $PG_DATA -m immediate -w -t 30 stop >/dev/null"
PG_START_CMD="$as_pg $PG_BIN/pg_ctl -D $PG_DATA -l $PG_SOCKDIR/postgres.log -w -t 30 start >/dev/null"
export PG_STOP_CMD PG_START_CMD
"$BUILD/itest/itest_sql_sink"

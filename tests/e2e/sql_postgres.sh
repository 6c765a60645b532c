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
"$BUILD/itest/itest_sql_sink" || exit 1

# The DDL tool's output runs on PostgreSQL, twice (idempotent), and a sink in
# validate mode writes into the table it made.
ddl=$BUILD/tools/sqlddl
[ -x "$ddl" ] || die "build $ddl first (make tools)"
for i in 1 2; do
  "$ddl" --dialect postgres public.t_tool accountid name:text revenue:decimal | pg_psql "$(cat)" ||
    die "sqlddl CREATE TABLE failed on PostgreSQL"
  "$ddl" --dialect postgres --add public.t_tool new_col:int | pg_psql "$(cat)" ||
    die "sqlddl ADD COLUMN failed on PostgreSQL"
  "$ddl" --dialect postgres --link public.rel_tool | pg_psql "$(cat)" ||
    die "sqlddl link table failed on PostgreSQL"
done
cols=$(pg_psql "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 't_tool'")
[ "$cols" = "accountid,_cdc_version,_cdc_deleted,_cdc_deleted_version,_cdc_full_version,_cdc_reread_version,_cdc_updated_at,name,name__v,revenue,revenue__v,new_col,new_col__v" ] ||
  die "unexpected columns of t_tool: $cols"
"$BUILD/itest/itest_sql_sink" validate public.t_tool || die "validate mode against the sqlddl table failed"
[ "$(pg_psql "SELECT name || ' ' || revenue || ' ' || new_col FROM t_tool")" = "via sqlddl 2.5 7" ] ||
  die "row written in validate mode is wrong"
log "sqlddl output applied and used"

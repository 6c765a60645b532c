#!/bin/sh
# pipeline_sql_concurrency.sh - two handler processes, CDC_SQL_DELETE=hard,
# PostgreSQL: a Delete and an older Update of the same row arrive together
# (issue 11). The Delete's transaction is held open for 2 s after it wrote
# the tombstone (a test trigger on <table>__tombstone sleeps; it is the
# window a busy server gives), and the Update starts inside that window on
# the other process. Without per-key locking the Update's restore step read
# the tombstone table before the Delete committed, waited on the row, and
# then inserted it again, live, with the stale value. Now: the row stays
# deleted, the tombstone holds the Delete.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
pgdir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $pgdir"
start_postgres "$pgdir"
start_redis "$dir"
log "PostgreSQL on $PG_SOCKDIR port $PG_PORT"

T=1731000000000
ID=d0000000-0000-4000-8000-000000000001
PL_ENV="--env CDC_TARGET=sql --env CDC_SQL_DELETE=hard --env SqlConnectionString=$PG_ODBC
--env CDC_MAPPING_FILE= --env RedisConnection=127.0.0.1:$REDIS_PORT"

mkdir -p "$dir/c" "$dir/d" "$dir/u"
msg_create "$dir/c/01" "$ID" $((T + 1000)) "Live" N-1 P1 1
msg_delete "$dir/d/01" "$ID" $((T + 3000))
msg_update "$dir/u/01" "$ID" $((T + 2000)) telephone1 "stale"
hostemu "$BUILD/app" create --messages "$dir/c" --batch 1 --concurrency 1 --stop || bad "create: hostemu exited $?"
settled create 1
expect_eq "$(pg_psql "SELECT count(*) FROM account__tombstone")" 0 "tombstone table made, empty"
# the window: the Delete's transaction sleeps 2 s after writing the tombstone
pg_psql "CREATE FUNCTION slow_tomb() RETURNS trigger LANGUAGE plpgsql AS
  \$\$ BEGIN PERFORM pg_sleep(2); RETURN NEW; END \$\$;
  CREATE TRIGGER slow_tomb AFTER INSERT ON account__tombstone FOR EACH ROW EXECUTE FUNCTION slow_tomb();" >/dev/null

hostemu "$BUILD/app" delete --messages "$dir/d" --batch 1 --concurrency 1 --stop &
pid_d=$!
# the Update starts once the Delete is inside its transaction (the trigger
# is sleeping), on a second handler process
i=0
while [ "$(pg_psql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%account__tombstone%' AND state = 'active' AND pid <> pg_backend_pid()")" = 0 ] && [ $i -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
[ $i -lt 100 ] || bad "the Delete never reached its tombstone write"
hostemu "$BUILD/app" update --messages "$dir/u" --batch 1 --concurrency 1 --stop &
pid_u=$!
wait $pid_d || bad "delete: hostemu exited $?"
wait $pid_u || bad "update: hostemu exited $?"
settled delete 1
settled update 1
expect_eq "$(pg_psql "SELECT count(*) FROM account WHERE accountid = '$ID'")" 0 "the row stays deleted"
case "$(pg_psql "SELECT _cdc_version FROM account__tombstone WHERE accountid = '$ID'")" in
"$(printf '%015d' $((T + 3000)))18446744073709551615"*) ok "the tombstone holds the Delete's version" ;;
*) bad "tombstone: $(pg_psql "SELECT _cdc_version FROM account__tombstone WHERE accountid = '$ID'")" ;;
esac

grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

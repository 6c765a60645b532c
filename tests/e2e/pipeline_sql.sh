#!/bin/sh
# pipeline_sql.sh - the SQL target end to end: build/hostemu -> build/handler
# -> psqlODBC (driver-path connection string) -> a private PostgreSQL 15,
# with the adversarial stream of pipeline_order.sh plus a poison message:
#   CDC_TARGET=sql, single-message function: final rows exact, links exact,
#   the poison message in _cdc_poison; a replay of the whole stream changes
#   no row (not even _cdc_updated_at);
#   CDC_TARGET=redis+sql, batch function: the same rows, Redis current too,
#   the poison message in the Redis stream (not in _cdc_poison).
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
pgdir=$(tmpdir) # handed to the postgres user by start_postgres
CLEANUP_DIRS="$CLEANUP_DIRS $pgdir"
start_postgres "$pgdir"
start_redis "$dir"
log "PostgreSQL on $PG_SOCKDIR port $PG_PORT, Redis on $REDIS_PORT"

m=$dir/msgs
order_stream "$m"
cp "$ROOT/tests/fixtures/demo/messages/16_poison_msbin1.bin" "$m/20_poison"
sidecar "$m/20_poison" p-sql-msbin1 application/msbin1
N=$((N + 1))
app_variant "$dir/app_single" single

# rows: the account table as "id|name|number|phone|revenue|state|status|createdon|deleted"
rows() {
  pg_psql "SELECT accountid, name, accountnumber, telephone1, revenue, statecode, statuscode,
    to_char(createdon AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), _cdc_deleted
    FROM account WHERE accountid <> '$Y' ORDER BY accountid"
}
C=2024-11-08T08:05:06Z
expected_rows() {
  cat <<EOF
$R|R v3|N-R|R P4|100|0|1|$C|f
$D|D v2|N-D|D P3|200|0|1|$C|f
$X||||||||t
$P|P N3|N-P|P P2|400|0|1|$C|f
$Q|Q N3|N-Q|Q P2|400|0|1|$C|f
$U|U N3|U P2|||||f
$A1|A1 v1|N-A1|P1|500|0|1|$C|f
$A2|A2 v1|N-A2|P1|500|0|1|$C|f
EOF
}
check_sql() { # check_sql LABEL
  rows >"$dir/rows" 2>&1
  expected_rows | sed "s/^$U|U N3|U P2|/$U|U N3||U P2|/" >"$dir/want"
  if cmp -s "$dir/rows" "$dir/want"; then ok "$1: account rows exact"; else
    bad "$1: account rows differ: $(diff "$dir/want" "$dir/rows")"
  fi
  # Y: deleted, then updated after the delete: live again with that
  # update only; the late update from before the delete did not land, and
  # the columns from before the delete stay gone (the Delete nulled them),
  # as in Redis.
  expect_eq "$(pg_psql "SELECT name || '|' || coalesce(telephone1, 'null') || '|' || _cdc_deleted FROM account WHERE accountid = '$Y'")" \
    "Y back|null|false" "$1: Y revived by the newer update, the late older one ignored"
  expect_eq "$(pg_psql "SELECT count(*) FROM account")" 9 "$1: one row per record"
  expect_eq "$(pg_psql "SELECT table1 || '|' || id1 || '|' || table2 || '|' || id2 || '|' || _cdc_associated
      FROM accountleads_association ORDER BY id1" | tr '\n' ' ')" \
    "account|$A1|lead|$LEAD|false account|$A2|lead|$LEAD|true " "$1: links resolved by version"
}
reset_sql() {
  pg_psql "DROP TABLE IF EXISTS account, accountleads_association, _cdc_poison" >/dev/null
}

# ---- CDC_TARGET=sql, single -------------------------------------------------------
PL_ENV="--env CDC_TARGET=sql --env SqlConnectionString=$PG_ODBC --env CDC_MAPPING_FILE=
--env RedisConnection=127.0.0.1:$REDIS_PORT"
hostemu "$dir/app_single" sql --messages "$m" --concurrency 1 --stop || bad "sql: hostemu exited $?: $(tail -3 "$dir/sql.err")"
settled sql "$N"
expect_eq "$(logs_sum sql stale)/$(logs_sum sql poison)/$(logs_sum sql recorded)" "8/1/1" "sql: stale/poison/recorded"
check_sql sql
expect_eq "$(pg_psql "SELECT poison_key || '|' || content_type || '|' || md5(body) || '|' || function_name || '|' || delivery_count FROM _cdc_poison")" \
  "p-sql-msbin1|application/msbin1|$(md5sum "$m/20_poison" | cut -d' ' -f1)|Changes|1" "sql: the poison message (exact body) is in _cdc_poison"
case "$(pg_psql "SELECT reason FROM _cdc_poison")" in
*"content type application/msbin1"*) ok "sql: the poison reason is kept" ;;
*) bad "sql: poison reason: $(pg_psql "SELECT reason FROM _cdc_poison")" ;;
esac
expect_eq "$(redis-cli -p "$REDIS_PORT" DBSIZE)" 0 "sql: nothing written to Redis"

# a replay changes no row
pg_psql "SELECT * FROM account ORDER BY accountid" >"$dir/before"
pg_psql "SELECT * FROM accountleads_association ORDER BY id1" >>"$dir/before"
pg_psql "SELECT poison_key, recorded_at FROM _cdc_poison" >>"$dir/before"
hostemu "$dir/app_single" sql_replay --messages "$m" --concurrency 1 --stop || bad "sql replay: hostemu exited $?"
settled sql_replay "$N"
expect_eq "$(logs_sum sql_replay applied)" 0 "sql replay: nothing applied"
pg_psql "SELECT * FROM account ORDER BY accountid" >"$dir/after"
pg_psql "SELECT * FROM accountleads_association ORDER BY id1" >>"$dir/after"
pg_psql "SELECT poison_key, recorded_at FROM _cdc_poison" >>"$dir/after"
if cmp -s "$dir/before" "$dir/after"; then ok "sql replay: no row changed"; else
  bad "sql replay changed rows: $(diff "$dir/before" "$dir/after" | head -6)"
fi

# ---- CDC_TARGET=redis+sql, batch ------------------------------------------------------
reset_sql
PL_ENV="--env CDC_TARGET=redis+sql --env SqlConnectionString=$PG_ODBC --env CDC_MAPPING_FILE=
--env RedisConnection=127.0.0.1:$REDIS_PORT"
hostemu "$BUILD/app" both --messages "$m" --batch 3 --concurrency 1 --stop || bad "redis+sql: hostemu exited $?"
settled both "$N"
check_sql redis+sql
expect_eq "$(pg_psql "SELECT count(*) FROM _cdc_poison" 2>/dev/null || echo 0)" 0 "redis+sql: no _cdc_poison rows"
expect_eq "$(redis-cli -p "$REDIS_PORT" XLEN d365:poison)" 1 "redis+sql: the poison message is in the Redis stream"
A=/api/data/v9.2/accounts
expect_read "$BUILD/app" "$A($R)?\$select=name,telephone1" \
  "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name,telephone1)/\$entity\",\"accountid\":\"$R\",\"name\":\"R v3\",\"telephone1\":\"R P4\"}"
expect_read "$BUILD/app" "$A($X)" \
  "404 {\"error\":{\"code\":\"0x80040217\",\"message\":\"Entity 'account' With Id = $X Does Not Exist\"}}"

grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

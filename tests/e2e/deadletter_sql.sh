#!/bin/sh
# deadletter_sql.sh - the dead-letter audit with CDC_TARGET=sql alone
# (build/hostemu -> build/handler -> psqlODBC -> a private PostgreSQL 15):
# a message that fails every delivery (CDC_POISON=fail, single function, a
# required column missing) is dead-lettered by hostemu and recorded by the
# DeadLetters function as a _cdc_poison row (exact body, reason
# "dead-lettered (MaxDeliveryCountExceeded): ..."), even though
# CDC_POISON=fail keeps the pipeline's own poison out of the table; the
# admin API answers 501 (it needs the records in Redis); the metrics answer
# says the shared part is unavailable.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
pgdir=$(tmpdir) # handed to the postgres user by start_postgres
CLEANUP_DIRS="$CLEANUP_DIRS $pgdir"
start_postgres "$pgdir"
log "PostgreSQL on $PG_SOCKDIR port $PG_PORT"
cat >"$dir/strict.json" <<'JEOF'
{ "version": 1, "tables": { "*": {}, "account": { "required": ["accountnumber"] } } }
JEOF
G1=c0000000-0000-4000-8000-0000000000e1
m=$dir/msgs
mkdir -p "$m"
msg_create "$dir/c" "$G1" 1731000001000 "SQL DL" N-E1 P1 100
sed 's|"value":"N-E1"|"value":null|' "$dir/c" >"$m/01_required"
sidecar "$m/01_required" sql-dl-required
app_variant "$dir/app_single" single
PL_ENV="--env CDC_TARGET=sql --env SqlConnectionString=$PG_ODBC --env CDC_POISON=fail
--env CDC_MAPPING_FILE=$dir/strict.json --env RedisConnection=127.0.0.1:1"
hostemu "$dir/app_single" dl --messages "$m" --concurrency 1 --max-delivery-count 2 --stop
expect_eq "$?" 1 "hostemu reports the dead-lettered message (exit 1)"
grep -q '"deadLetterQueue":{"delivered":1,"completed":1,"left":0}' "$dir/dl.json" &&
  ok "the DeadLetters function recorded it" || bad "dead-letter queue: $(cat "$dir/dl.json")"
expect_eq "$(pg_psql "SELECT poison_key || '|' || function_name || '|' || md5(body) FROM _cdc_poison")" \
  "sql-dl-required|DeadLetters|$(md5sum "$m/01_required" | cut -d' ' -f1)" "a _cdc_poison row with the exact body"
case "$(pg_psql "SELECT reason FROM _cdc_poison")" in
"dead-lettered (MaxDeliveryCountExceeded): Message could not be consumed after 2 delivery attempts.") ok "the reason is Service Bus's" ;;
*) bad "reason: $(pg_psql "SELECT reason FROM _cdc_poison")" ;;
esac
"$BUILD/hostemu" --script-root "$BUILD/app" $PL_ENV --quiet --handler-log "$dir/admin.log" --http GET "/api/cdc/admin/records" >"$dir/admin" 2>&1
head -1 "$dir/admin" | grep -q ' 501 ' && ok "admin API: 501 without Redis" || bad "admin: $(head -3 "$dir/admin")"
"$BUILD/hostemu" --script-root "$BUILD/app" $PL_ENV --http GET "/api/cdc/metrics" >"$dir/metrics" 2>&1
grep -q '"shared":{"scope":"unavailable","error":"shared metrics need a Redis target' "$dir/metrics" &&
  ok "metrics: the shared part says why it is unavailable" || bad "metrics: $(tail -2 "$dir/metrics")"
grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

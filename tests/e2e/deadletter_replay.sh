#!/bin/sh
# deadletter_replay.sh - the dead-letter audit function and the replay admin
# API end to end (build/hostemu -> build/handler -> redis-server):
#   a message that fails every delivery (CDC_POISON=fail, single function, a
#   required column missing) is dead-lettered by hostemu after
#   --max-delivery-count deliveries and delivered to the DeadLetters function
#   (subscription/$DeadLetterQueue), which records it in the poison stream
#   with Service Bus's reason (MaxDeliveryCountExceeded), description,
#   delivery count, application properties, table and record id, exact body;
#   an undecodable dead-lettered body is recorded too (decode_error);
#   the Admin function (forwarded and envelope call styles) lists and shows
#   it; a replay before the cause is fixed fails again and keeps the record
#   open with the new reason; after the fix (the mapping) the replay applies
#   it and the read API serves the record; delete by id and by filter;
#   the shared metrics count per table and outcome;
#   two handler processes running at once: metrics read from the second one
#   equal the sum of both processes' work.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
start_redis "$dir"
cat >"$dir/strict.json" <<'EOF2'
{ "version": 1, "tables": { "*": {}, "account": { "required": ["accountnumber"] } } }
EOF2
cat >"$dir/fixed.json" <<'EOF2'
{ "version": 1, "tables": { "*": {} } }
EOF2
ENV0="--env RedisConnection=127.0.0.1:$REDIS_PORT --env CDC_TARGET=redis --env CDC_MODE=direct
--env CDC_POISON_STREAM=d365:poison --env CDC_METRICS_FLUSH_MS=100"
T=1731000000000
G1=c0000000-0000-4000-8000-0000000000d1
G2=c0000000-0000-4000-8000-0000000000d2
A=/api/data/v9.2/accounts

# field ID FIELD: a field of the stream entry ID
field() {
  rc --raw XRANGE d365:poison "$1" "$1" | awk -v f="$2" 'NR == 1 { next } k == "" { k = $0; next } { if (k == f) print; k = "" }'
}
# admin OUT METHOD PATH [hostemu args]: one admin request, the client's
# response in $dir/OUT (status line, headers, body)
admin() {
  _o=$1 _m=$2 _p=$3
  shift 3
  # shellcheck disable=SC2086
  "$BUILD/hostemu" --script-root "${ADMIN_APP:-$BUILD/app}" $PL_ENV --http "$_m" "$_p" "$@" \
    >"$dir/$_o" 2>"$dir/$_o.err"
}
body_of() { sed -n '/^\r*$/,$p' "$dir/$1" | tr -d '\r' | sed '/^$/d'; }
has() { # has NAME TEXT WANT
  case "$2" in *"$3"*) ok "$1" ;; *) bad "$1: '$3' not in: $(printf '%s' "$2" | head -c 600)" ;; esac
}

# ---- dead-lettered by Service Bus (hostemu), recorded by DeadLetters ----------
m=$dir/msgs
mkdir -p "$m"
msg_create "$dir/c" "$G1" $((T + 1000)) "DL one" N-D1 P1 100
sed 's|"value":"N-D1"|"value":null|' "$dir/c" >"$m/01_required"
sidecar "$m/01_required" dl-required application/json '"tenant": "contoso"'
printf 'not json at all' >"$m/02_garbage"; sidecar "$m/02_garbage" dl-garbage text/plain
msg_create "$m/03_good" "$G2" $((T + 1000)) "good" N-D2 P2 200; sidecar "$m/03_good" dl-good
app_variant "$dir/app_single" single
PL_ENV="$ENV0 --env CDC_POISON=fail --env CDC_MAPPING_FILE=$dir/strict.json"
hostemu "$dir/app_single" dl --messages "$m" --concurrency 1 --max-delivery-count 3 --stop
expect_eq "$?" 1 "hostemu reports the dead-lettered messages (exit 1)"
expect_eq "$(sum_num dl generated)/$(sum_num dl succeeded)/$(sum_num dl deadLettered)" "3/1/2" \
  "generated/succeeded/dead-lettered"
grep -q '"deadLetterQueue":{"delivered":[0-9]*,"completed":2,"left":0}' "$dir/dl.json" &&
  ok "the DeadLetters function completed both dead-lettered messages" ||
  bad "dead-letter queue summary: $(cat "$dir/dl.json")"
expect_eq "$(rc XLEN d365:poison)" 2 "two records in the poison stream"
ID=$(rc --raw XRANGE d365:poison - + | awk 'NR == 1')
IDG=$(rc --raw XREVRANGE d365:poison + - | awk 'NR == 1')
expect_eq "$(field "$ID" kind)" deadletter "record kind"
expect_eq "$(field "$ID" message_id)" dl-required "record message id"
expect_eq "$(field "$ID" reason)" MaxDeliveryCountExceeded "Service Bus's reason"
expect_eq "$(field "$ID" description)" "Message could not be consumed after 3 delivery attempts." \
  "Service Bus's description"
expect_eq "$(field "$ID" delivery_count)" 4 "delivery count (the dead-letter queue's delivery)"
expect_eq "$(field "$ID" table)/$(field "$ID" record_id)" "account/$G1" "table and record id"
has "application properties kept" "$(field "$ID" app_properties)" '"tenant":"contoso"'
rc --raw XRANGE d365:poison "$ID" "$ID" | awk 'p { print } $0 == "body" { p = 1 }' | head -c -1 >"$dir/body"
cmp -s "$dir/body" "$m/01_required" && ok "exact body" || bad "the recorded body differs"
expect_eq "$(field "$IDG" message_id)/$(field "$IDG" table)" "dl-garbage/" "undecodable message recorded"
has "undecodable: decode_error" "$(field "$IDG" decode_error)" "JSON syntax error"
grep -q '"event":"deadletter","mid":"dl-required","table":"account","id":"'"$G1"'","outcome":"deadlettered"' \
  "$dir/dl.log" && ok "one event line per dead-lettered message" || bad "no deadletter event line"

# ---- admin: list, show (forwarded requests, the default) ----------------------------
PL_ENV="$ENV0 --env CDC_MAPPING_FILE=$dir/strict.json"
admin list GET "/api/cdc/admin/records?kind=deadletter&table=account"
b=$(body_of list)
has "list by kind and table: 200" "$(head -1 "$dir/list")" "200"
has "list: the record" "$b" "\"id\":\"$ID\",\"kind\":\"deadletter\",\"state\":\"open\",\"table\":\"account\",\"reason\":\"MaxDeliveryCountExceeded\""
has "list: count 1" "$b" '"count":1,'
admin list2 GET "/api/cdc/admin/records?reason=maxdelivery&from=2000-01-01T00:00:00Z&limit=10"
has "list by reason and time: both" "$(body_of list2)" '"count":2,'
admin list3 GET "/api/cdc/admin/records?to=1000"
has "list before 1970+1s: none" "$(body_of list3)" '"count":0,'
admin bad GET "/api/cdc/admin/records?state=sleeping"
has "bad filter: 400 naming it" "$(head -1 "$dir/bad") $(body_of bad)" "state must be open, replayed or all"
admin show GET "/api/cdc/admin/records/$ID"
has "show: the body" "$(body_of show)" '"body":"{'
has "show: app properties" "$(body_of show)" '"app_properties":{'
admin nf GET "/api/cdc/admin/records/1-0"
has "show unknown: 404" "$(head -1 "$dir/nf")" "404"

# ---- replay before the fix: fails again, stays open with the new reason --------------
admin r1 POST "/api/cdc/admin/records/$ID/replay"
b=$(body_of r1)
has "replay before the fix: poison again" "$b" '"outcome":"poison"'
NEW=$(printf '%s' "$b" | sed -n 's/.*"new_id":"\([0-9-]*\)".*/\1/p')
expect_eq "$(field "$NEW" state)/$(field "$NEW" replays)" "open/1" "record kept open, replays 1"
has "the new reason" "$(field "$NEW" reason)" "required column is null"
expect_eq "$(field "$NEW" previous_reason)" MaxDeliveryCountExceeded "previous reason kept"
expect_eq "$(rc XLEN d365:poison)" 2 "still two records (replaced, not added)"

# ---- fix the cause (the mapping), replay: applied, the read API serves it -----------
PL_ENV="$ENV0 --env CDC_MAPPING_FILE=$dir/fixed.json"
admin r2 POST "/api/cdc/admin/replay?kind=deadletter&table=account"
b=$(body_of r2)
has "replay by filter after the fix: applied" "$b" '"outcome":"applied"'
has "replay by filter: counts" "$b" '"replayed":1,"failed_again":0,"errors":0'
expect_read "$BUILD/app" "$A($G1)?\$select=name" \
  "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name)/\$entity\",\"accountid\":\"$G1\",\"name\":\"DL one\"}"
admin l4 GET "/api/cdc/admin/records?state=replayed"
has "the replayed record: state replayed, outcome applied" "$(body_of l4)" '"state":"replayed"'
has "the replayed record: outcome" "$(body_of l4)" '"outcome":"applied"'
admin l5 GET "/api/cdc/admin/records"
has "open records: only the undecodable one" "$(body_of l5)" '"count":1,'

# ---- envelope call style (enableForwardingHttpRequest false) ---------------------------
ADMIN_APP=$dir/app_env
mkdir -p "$ADMIN_APP" && cp -R "$BUILD/app/." "$ADMIN_APP/"
sed 's/"enableForwardingHttpRequest": true/"enableForwardingHttpRequest": false/' "$BUILD/app/host.json" >"$ADMIN_APP/host.json"
admin e1 GET "/api/cdc/admin/records?kind=deadletter&state=all"
has "envelope style: list" "$(body_of e1)" '"count":2,'
admin e2 DELETE "/api/cdc/admin/records?kind=deadletter"
has "envelope style: delete by filter" "$(body_of e2)" '{"deleted":1}'
ADMIN_APP=
admin d0 DELETE "/api/cdc/admin/records"
has "delete without a filter: 400" "$(head -1 "$dir/d0")" "400"
admin d1 DELETE "/api/cdc/admin/records?state=all&all=true"
has "delete all" "$(body_of d1)" '{"deleted":1}'
expect_eq "$(rc XLEN d365:poison)" 0 "stream empty"

# ---- shared metrics of the above -------------------------------------------------------------
admin mx GET "/api/cdc/metrics"
b=$(body_of mx)
has "metrics: shared per table" "$b" '"shared":{"scope":"shared","tables":{"_unknown":{"deadlettered":1},"account":{"applied":1,"deadlettered":1,"replay_failed":1,"replayed":1}}'
admin mp GET "/api/cdc/metrics?format=prometheus"
has "prometheus: per table and outcome" "$(body_of mp)" 'd365cdc_changes_total{table="account",outcome="deadlettered"} 1'

# ---- two processes at once: the second one serves the sum --------------------------------
rc DEL 'd365:{ops}:metrics' >/dev/null
n=$dir/load
mkdir -p "$n"
for i in 1 2 3 4 5 6; do
  msg_create "$n/m$i" "c0000000-0000-4000-8000-00000000010$i" $((T + 5000 + i)) "L$i" N-L$i P 1
done
start_h() { # start_h PORTVAR PIDVAR LOG
  _p=$(free_port)
  (cd "$BUILD/app" && exec env FUNCTIONS_CUSTOMHANDLER_PORT="$_p" FUNCTIONS_APP_ROOT_PATH="$BUILD/app" \
    RedisConnection="127.0.0.1:$REDIS_PORT" CDC_TARGET=redis CDC_METRICS_FLUSH_MS=100 \
    CDC_LOG_LEVEL=debug ./handler) >"$dir/$3" 2>&1 &
  _pid=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $_pid"
  wait_port "$_p" 20 || die "handler did not start: $(tail -5 "$dir/$3")"
  eval "$1=$_p; $2=$_pid"
}
start_h P1 PID1 h1.log
start_h P2 PID2 h2.log
"$BUILD/hostemu" --connect "$P1" --script-root "$BUILD/app" --messages "$n/m1" --messages "$n/m2" \
  --messages "$n/m3" --messages "$n/m4" -q >"$dir/p1.out" 2>&1 || bad "process 1 delivery failed"
"$BUILD/hostemu" --connect "$P2" --script-root "$BUILD/app" --messages "$n/m5" --messages "$n/m6" \
  --messages "$n/m1" -q >"$dir/p2.out" 2>&1 || bad "process 2 delivery failed"
sleep 0.5 # process 1 flushes every 100 ms; process 2 flushes when it is read
"$BUILD/hostemu" --connect "$P2" --script-root "$BUILD/app" --http GET /api/cdc/metrics >"$dir/sum" 2>&1
b=$(body_of sum)
has "process 2's own counters: 3 messages, 2 applied, 1 stale" "$b" '"messages":3,"applied":2,"stale":1,' 
has "shared from process 2: 6 applied + 1 stale of both" "$b" '"tables":{"account":{"applied":6,"stale":1}}'
has "shared freshness count" "$b" '"freshness_ms":{"count":6,'
grep -q '"event":"change","mid":"[^"]*","table":"account","id":"c0000000-0000-4000-8000-000000000105","outcome":"applied","fresh_ms":' "$dir/h2.log" &&
  ok "debug: one change line per document" || bad "no change event line in $(head -c 2000 "$dir/h2.log")"
grep -q '"event":"invocation","outcome":"ok","messages":3,"applied":2,"stale":1,' "$dir/h2.log" &&
  ok "invocation event line" || bad "no invocation event line"
stop_pid "$PID1"
stop_pid "$PID2"

grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

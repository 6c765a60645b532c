#!/bin/sh
# pipeline_poison.sh - poison messages and truncated contexts end to end
# (build/hostemu -> build/handler -> redis-server):
#   CDC_POISON=record, batch: each kind of poison (.NET binary, not JSON, not
#   a RemoteExecutionContext, a context without OperationCreatedOn, a mapping
#   validation failure, a body over CDC_MAX_MESSAGE_BYTES) is recorded in the
#   poison stream with its reason, id and exact body, acknowledged, and the
#   rest of the batch applied; a truncated context (MessageMaxSizeExceeded)
#   leaves a re-read marker, which a newer full row clears on the record.
#   CDC_POISON=fail, single: the poison message fails its invocation, hostemu
#   redelivers it and dead-letters it after maxDeliveryCount with the reason;
#   the other messages are applied.
#   CDC_POISON=fail, batch: batches record instead (failing the batch would
#   dead-letter its good messages).
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
start_redis "$dir"
# accountnumber is required: a change that sets it to null is poison
cat >"$dir/mapping.json" <<'EOF'
{ "version": 1, "tables": { "*": {}, "account": { "required": ["accountnumber"] } } }
EOF
BASE_ENV="--env RedisConnection=127.0.0.1:$REDIS_PORT --env CDC_TARGET=redis --env CDC_MODE=direct
--env CDC_MAPPING_FILE=$dir/mapping.json --env CDC_MAX_MESSAGE_BYTES=65536 --env CDC_POISON_STREAM=d365:poison"
T=1731000000000
G1=c0000000-0000-4000-8000-000000000001
G2=c0000000-0000-4000-8000-000000000002
TR=c0000000-0000-4000-8000-000000000003
MSBIN1=$ROOT/tests/fixtures/demo/messages/16_poison_msbin1.bin

# poison_field ID FIELD: a field of the poison stream entry of message ID
poison_field() {
  rc --raw XRANGE d365:poison - + | awk -v id="$1" -v f="$2" '
    function done() { if (cur == id && v != "" && !printed) { print v; printed = 1 } }
    /^[0-9]+-[0-9]+$/ { done(); cur = ""; v = ""; k = ""; next }
    k == "" { k = $0; next }
    { if (k == "message_id") cur = $0; if (k == f) v = $0; k = "" }
    END { done() }'
}
expect_reason() { # expect_reason ID TEXT
  _r=$(poison_field "$1" reason)
  case "$_r" in *"$2"*) ok "poison $1: $2" ;; *) bad "poison $1: reason '$_r' lacks '$2'" ;; esac
}

# ---- record, batch -------------------------------------------------------------
m=$dir/record
mkdir -p "$m"
msg_create "$m/01_good" "$G1" $((T + 1000)) "G1 v1" N-G1 P1 100
cp "$MSBIN1" "$m/02_msbin1"; sidecar "$m/02_msbin1" p-msbin1 application/msbin1
printf 'this is not json' >"$m/03_notjson"; sidecar "$m/03_notjson" p-notjson
printf '{"hello":"world"}' >"$m/04_notctx"; sidecar "$m/04_notctx" p-notctx
msg_update "$dir/u" "$G1" $((T + 1500)) name "no date"
sed 's|"OperationCreatedOn":"[^"]*",||' "$dir/u" >"$m/05_nodate"; sidecar "$m/05_nodate" p-nodate
msg_create "$dir/c" "$G2" $((T + 1000)) "G2 v1" N-G2 P1 100
sed 's|"value":"N-G2"|"value":null|' "$dir/c" >"$m/06_required"; sidecar "$m/06_required" p-required
msg_update "$m/07_big" "$G1" $((T + 1600)) description "$(head -c 70000 /dev/zero | tr '\0' x)"
sidecar "$m/07_big" p-big
msg_update "$m/08_good" "$G1" $((T + 2000)) name "G1 v2"
msg_truncated "$m/09_truncated" "$TR" $((T + 3000))
sidecar "$m/09_truncated" t-truncated application/json '"MessageMaxSizeExceeded": true'
msg_truncated "$m/10_truncated_older" "$G1" $((T + 500))
sidecar "$m/10_truncated_older" t-truncated-older application/json '"MessageMaxSizeExceeded": true'
msg_create "$m/11_newer_full_row" "$G1" $((T + 4000)) "G1 v4" N-G1 P4 400

PL_ENV="$BASE_ENV --env CDC_POISON=record"
hostemu "$BUILD/app" record --messages "$m" --batch 100 --stop || bad "record: hostemu exited $?: $(tail -3 "$dir/record.err")"
settled record 11
expect_eq "$(sum_num record invocations)" 1 "record: one batch invocation"
expect_eq "$(logs_sum record poison)/$(logs_sum record recorded)/$(logs_sum record reread)" "6/6/2" \
  "record: poison/recorded/reread in the answer"
expect_eq "$(rc XLEN d365:poison)" 6 "record: 6 poison stream entries"
expect_reason p-msbin1 "content type application/msbin1: the body is .NET binary XML"
expect_reason p-notjson "message body: JSON syntax error at line 1, column 1"
expect_reason p-notctx "decode (input)"
expect_reason p-nodate "OperationCreatedOn"
expect_reason p-required "column accountnumber: required column"
expect_reason p-big "larger than CDC_MAX_MESSAGE_BYTES (65536)"
expect_eq "$(poison_field p-notjson body)" "this is not json" "record: the body is kept exactly"
expect_eq "$(poison_field p-msbin1 content_type)/$(poison_field p-msbin1 delivery_count)/$(poison_field p-msbin1 function)" \
  "application/msbin1/1/Changes" "record: content type, delivery count, function"
# the exact bytes of a binary body, through a Lua length + a byte check
len=$(rc EVAL "for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = e[2]; local id, body
  for i = 1, #f, 2 do if f[i] == 'message_id' then id = f[i+1] elseif f[i] == 'body' then body = f[i+1] end end
  if id == ARGV[1] then return #body .. ':' .. redis.sha1hex(body) end end return 'none'" 1 d365:poison p-msbin1)
expect_eq "$len" "$(wc -c <"$MSBIN1" | tr -d ' '):$(sha1sum "$MSBIN1" | cut -d' ' -f1)" "record: binary body byte-exact"
grep -q 'poison message p-nodate (delivery 1): decode' "$dir/record.log" && ok "record: the reason is logged" ||
  bad "record: no log line for p-nodate"
# the rest of the batch applied, around the poison
A=/api/data/v9.2/accounts
expect_read "$BUILD/app" "$A($G1)?\$select=name,telephone1" \
  "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name,telephone1)/\$entity\",\"accountid\":\"$G1\",\"name\":\"G1 v4\",\"telephone1\":\"P4\"}"
expect_eq "$(rc HEXISTS "d365:{account:$G1}" p:description)" 0 "record: the oversize update wrote nothing"
# truncated: re-read marker on the record and in the to-do list; a newer
# full row clears the record's marker (G1), an older truncated change cannot
expect_eq "$(rc ZSCORE d365:reread "account:$TR")" $((T + 3000)) "truncated: in the re-read list"
expect_eq "$(rc HEXISTS "d365:{account:$TR}" _reread)" 1 "truncated: marker on the record"
expect_eq "$(rc HEXISTS "d365:{account:$G1}" _reread)" 0 "truncated: a newer full row clears the record's marker"

# the replay recipe of docs/operations.md: take the body out of the stream
# byte for byte, fix the cause (here: the mapping), send it again, delete
# the entry
eid=$(rc --raw XRANGE d365:poison - + | awk '/^[0-9]+-[0-9]+$/ { held = $0 }
  want { if ($0 == "p-required") { print held; exit } want = 0 } $0 == "message_id" { want = 1 }')
[ -n "$eid" ] || bad "replay: no entry id for p-required"
rc --raw EVAL "local f = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1][2]
  for i = 1, #f, 2 do if f[i] == 'body' then return f[i + 1] end end" 1 d365:poison "$eid" |
  head -c -1 >"$dir/replay.json"
cmp -s "$dir/replay.json" "$m/06_required" && ok "replay: the body comes out byte for byte" ||
  bad "replay: the extracted body differs from the message"
printf '{ "version": 1, "tables": { "*": {} } }\n' >"$dir/mapping.json"
hostemu "$BUILD/app" replay --messages "$dir/replay.json" --stop || bad "replay: hostemu exited $?"
expect_eq "$(logs_sum replay applied)/$(logs_sum replay poison)" "1/0" "replay: applied once the cause is fixed"
expect_eq "$(rc XDEL d365:poison "$eid")/$(rc XLEN d365:poison)" "1/5" "replay: the entry deleted"
expect_read "$BUILD/app" "$A($G2)?\$select=name,accountnumber" \
  "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name,accountnumber)/\$entity\",\"accountid\":\"$G2\",\"accountnumber\":null,\"name\":\"G2 v1\"}"

# ---- fail, single ---------------------------------------------------------------
rc FLUSHALL >/dev/null
m=$dir/fail
mkdir -p "$m"
msg_create "$m/01_good" "$G2" $((T + 1000)) "G2 v1" N-G2 P1 100
cp "$MSBIN1" "$m/02_msbin1"; sidecar "$m/02_msbin1" p-fail-msbin1 application/msbin1
msg_update "$m/03_good" "$G2" $((T + 2000)) name "G2 v2"
app_variant "$dir/app_single" single
PL_ENV="$BASE_ENV --env CDC_POISON=fail"
# (the DeadLetters function would record the dead-lettered message: that is
# tests/e2e/deadletter_replay.sh; here only the pipeline's side is checked)
hostemu "$dir/app_single" fail --messages "$m" --concurrency 1 --max-delivery-count 3 \
  --deadletter "$dir/dl" --no-deadletter-function --stop
expect_eq "$?" 1 "fail: hostemu reports the dead-lettered message (exit 1)"
expect_eq "$(sum_num fail generated)/$(sum_num fail succeeded)/$(sum_num fail retried)/$(sum_num fail deadLettered)" \
  "3/2/2/1" "fail: generated/succeeded/retried/dead-lettered"
dl=$dir/dl/p-fail-msbin1
if [ -f "$dl.json" ] && cmp -s "$dl.body" "$MSBIN1"; then ok "fail: dead-lettered with the exact body"; else
  bad "fail: no dead-letter record: $(ls "$dir/dl" 2>&1)"
fi
for want in '"reason":"MaxDeliveryCountExceeded"' '"deliveryCount":3' \
  '"lastFailure":"HTTP 400 Bad Request: {\"error\":\"input\",\"message\":\"poison message p-fail-msbin1 (CDC_POISON=fail'; do
  grep -qF "$want" "$dl.json" 2>/dev/null && ok "fail: dead-letter record has $want" ||
    bad "fail: dead-letter record lacks $want: $(cat "$dl.json" 2>/dev/null)"
done
grep -q 'CDC_POISON=fail, so Service Bus will dead-letter it after maxDeliveryCount): decode (unsupported): content type application/msbin1' \
  "$dir/fail.log" && ok "fail: the full reason is on stderr" ||
  bad "fail: the failure reason is not logged"
expect_eq "$(rc XLEN d365:poison)" 0 "fail: nothing in the poison stream"
expect_read "$dir/app_single" "$A($G2)?\$select=name" \
  "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name)/\$entity\",\"accountid\":\"$G2\",\"name\":\"G2 v2\"}"

# ---- fail, batch: recorded instead --------------------------------------------------
hostemu "$BUILD/app" failbatch --messages "$m" --batch 100 --max-delivery-count 3 --stop ||
  bad "failbatch: hostemu exited $?"
settled failbatch 3
expect_eq "$(rc XLEN d365:poison)" 1 "fail in a batch: recorded in the poison stream"
expect_reason p-fail-msbin1 "application/msbin1"

grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

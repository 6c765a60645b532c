#!/bin/sh
# hostemu_settle.sh - settlement like Service Bus and the host: failed
# invocations are redelivered with DeliveryCount + 1 (after the redelivery
# delay), dead-lettered after --max-delivery-count with reason files; empty,
# null, non-JSON and malformed answers are failures; a functionTimeout
# restarts the handler; the base64 trap and unknown outputs are warned about.
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
HOSTEMU_LIB=1 . "$ROOT/tests/e2e/hostemu_cli.sh"
he_init

mkdir -p "$T/msgs"
cp "$FIX/create_account.json" "$T/msgs/a.json"
cp "$FIX/update_contact_partial.json" "$T/msgs/b.json"
printf '{"n":3}' >"$T/msgs/c.json"
FN='{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "q", "connection": "SB", "dataType": "binary" } ] }'

log "fail the first 2 deliveries of each message: redelivered with DeliveryCount 1, 2, 3"
he_app retry ProcessChange "$FN"
FAKE_ARGS='--fail-first 2' he_run retry --messages "$T/msgs" --concurrency 1 \
  --redelivery-delay-ms 100 --json "$T/retry.json" >"$T/retry.out" 2>&1
expect_eq "exit status (all settled in the end)" "$?" 0
expect_eq "invocations" "$(jget "$T/retry.json" invocations)" 9
expect_eq "failed invocations" "$(jget "$T/retry.json" invocationsFailed)" 6
expect_eq "messages" "$(jget "$T/retry.json" messages)" \
  '{"generated":3,"delivered":9,"succeeded":3,"retried":6,"deadLettered":0,"unsettled":0}'
expect_eq "failure reason" "$(jstr "$T/retry.json" failures '#0' text)" "HTTP 500 Internal Server Error"
for b in $(bodies retry); do
  t=${b##*/req-}
  printf '%s %s %s %s %s\n' "$(jstr "$b" Metadata MessageId | fh json --str -)" \
    "$(jstr "$b" Metadata DeliveryCount)" "$(jstr "$b" Metadata SequenceNumber)" \
    "$(jstr "$b" Metadata LockToken)" "${t%%-*}"
done >"$T/deliveries"
expect_eq "distinct messages" "$(cut -d' ' -f1 "$T/deliveries" | sort -u | wc -l)" 3
expect_eq "distinct lock tokens" "$(cut -d' ' -f4 "$T/deliveries" | sort -u | wc -l)" 9
for id in $(cut -d' ' -f1 "$T/deliveries" | sort -u); do
  expect_eq "DeliveryCount sequence of $id" "$(grep "^$id " "$T/deliveries" | cut -d' ' -f2 | tr '\n' ' ')" "1 2 3 "
  expect_eq "SequenceNumber kept for $id" "$(grep "^$id " "$T/deliveries" | cut -d' ' -f3 | sort -u | wc -l)" 1
  # the redelivery delay is a lower bound between deliveries of a message
  grep "^$id " "$T/deliveries" | cut -d' ' -f5 | awk -v id="$id" '
    NR > 1 && ($1 - prev) < 100000000 { print "redelivery of " id " after " ($1 - prev) / 1e6 " ms"; bad = 1 }
    { prev = $1 } END { exit bad }' || die "redelivery delay not honoured"
done

log "always fail: dead-lettered after --max-delivery-count with reason files"
he_app dead ProcessChange "$FN"
FAKE_ARGS='--always-fail --status 503' he_run dead --messages "$T/msgs/a.json" --messages "$T/msgs/c.json" \
  --max-delivery-count 3 --deadletter "$T/dlq" --json "$T/dead.json" >"$T/dead.out" 2>&1
expect_eq "exit status" "$?" 1
expect_eq "dead-lettered" "$(jget "$T/dead.json" messages deadLettered)" 2
expect_eq "deliveries" "$(jget "$T/dead.json" messages delivered)" 6
expect_eq "dead-letter files" "$(ls "$T/dlq" | wc -l)" 4
for j in "$T/dlq"/*.json; do
  id=$(jstr "$j" messageId)
  [ -f "$T/dlq/$id.body" ] || die "no body file for $id"
  expect_eq "reason" "$(jstr "$j" reason)" "MaxDeliveryCountExceeded"
  expect_eq "deliveryCount" "$(jget "$j" deliveryCount)" 3
  expect_eq "function" "$(jstr "$j" function)" "ProcessChange"
  expect_match "lastFailure" "$(jstr "$j" lastFailure)" '^HTTP 503 Service Unavailable: .*scripted failure'
  src=$(jstr "$j" source)
  cmp "$T/dlq/$id.body" "$src" || die "dead-lettered body of $id differs from $src"
done
grep -q "dead-lettered   2" "$T/dead.out" || grep -q "2 dead-lettered" "$T/dead.out" || die "summary: $(cat "$T/dead.out")"

log "answers the host cannot use are failures"
he_app bad ProcessChange "$FN"
check_failure() { # FAKE_ARGS EXPECTED-REASON-ERE [FAKE_OUTPUTS]
  FAKE_OUTPUTS=${3:-'{}'} FAKE_ARGS=$1 he_run bad --messages "$T/msgs/c.json" --max-delivery-count 2 \
    --json "$T/bad.json" >"$T/bad.out" 2>&1
  expect_eq "exit status for $1" "$?" 1
  expect_eq "invocations for $1" "$(jget "$T/bad.json" invocationsFailed)" 2
  expect_match "reason for $1" "$(jstr "$T/bad.json" failures '#0' text)" "$2"
}
check_failure '--empty-body' '^empty response body \(HTTP 200\): the real host would hang'
check_failure '--null-body' '^JSON null response body'
check_failure '--content-type text/plain' '^response Content-Type "text/plain" is not JSON'
check_failure '--content-type ""' 'Content-Type \(none: application/octet-stream\) is not JSON'
check_failure '' '^"Outputs" is a JSON array' '[1]'
check_failure '' '^malformed JSON response: ' '{"x":'
check_failure '--status 404 --always-fail' '^HTTP 404 Not Found'
FAKE_ARGS='--content-type text/json' he_run bad --messages "$T/msgs/c.json" >"$T/bad.out" 2>&1
expect_eq "text/json is JSON" "$?" 0

log "functionTimeout: the invocation fails and the handler is restarted"
he_app slow ProcessChange "$FN"
FAKE_ARGS='--sleep-ms 5000' he_run slow --messages "$T/msgs/c.json" --timeout-ms 300 \
  --max-delivery-count 2 --json "$T/slow.json" >"$T/slow.out" 2>&1
expect_eq "exit status" "$?" 1
expect_match "reason" "$(jstr "$T/slow.json" failures '#0' text)" '^timeout: no response within 300 ms'
expect_eq "timed-out invocations" "$(jget "$T/slow.json" invocationsFailed)" 2
[ "$(jget "$T/slow.json" handler restarts)" -ge 1 ] || die "no restart after a timeout"
expect_eq "timeouts are not errors" "$(jget "$T/slow.json" handler errorExits)" 0
expect_eq "two handler processes" "$(ls "$T/slow/rec"/env-* | wc -l)" 2

log "output checks: base64 trap, unknown outputs key, ReturnValue object"
he_app outs ProcessChange '{ "bindings": [
  { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "q", "connection": "SB", "dataType": "binary" },
  { "type": "redis", "direction": "out", "name": "cache", "connection": "R", "command": "SET" },
  { "type": "sql", "direction": "out", "name": "row", "commandText": "dbo.T", "connectionStringSetting": "S" },
  { "type": "serviceBus", "direction": "out", "name": "outMsg", "queueName": "o", "connection": "SB" },
  { "type": "serviceBus", "direction": "out", "name": "raw", "queueName": "o", "connection": "SB", "dataType": "binary" } ] }'
FAKE_OUTPUTS='{"cache":"abcd","row":{"Id":1},"outMsg":["YWJj"],"raw":"YWJj","Cache":["x"]}' FAKE_RETURN='{"a":1}' \
  he_run outs --messages "$T/msgs/a.json" --messages "$T/msgs/c.json" --json "$T/outs.json" >"$T/outs.out" 2>&1
expect_eq "exit status (warnings only)" "$?" 0
jget "$T/outs.json" warnings >"$T/warnings"
grep -q 'base64 trap: Outputs.cache of ProcessChange' "$T/warnings" || die "no base64 trap warning: $(cat "$T/warnings")"
grep -q 'Outputs.Cache of ProcessChange matches no output binding' "$T/warnings" || die "no unknown-key warning: $(cat "$T/warnings")"
grep -q 'ReturnValue of ProcessChange is an object' "$T/warnings" || die "no ReturnValue warning: $(cat "$T/warnings")"
grep -q 'Outputs.raw\|Outputs.outMsg\|Outputs.row' "$T/warnings" && die "false warning: $(cat "$T/warnings")"
expect_eq "warning count per invocation" "$(jget "$T/outs.json" warnings '#0' count)" 2
grep -q "WARNING .*base64 trap" "$T/outs.out" || die "summary lacks the warning: $(cat "$T/outs.out")"
log "ok"

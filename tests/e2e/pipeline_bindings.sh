#!/bin/sh
# pipeline_bindings.sh - output-binding mode end to end (CDC_MODE=bindings):
# a script root whose change function declares Redis (SET, DEL, SADD) and SQL
# output bindings; build/hostemu delivers the demo messages (batch and single
# function) and checks every answer's Outputs the way the host would bind
# them: no base64 trap (a plain string output on a non-binary binding), no
# output without a binding. The Outputs themselves are checked on one batch
# envelope posted to the handler: arrays of percent-encoded Redis arguments
# and SQL rows. A change function without output bindings in bindings mode
# stops the handler at start-up with a clear message.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
command -v curl >/dev/null 2>&1 || skip "curl not installed (run make deps)"
pl_begin

# bind_app DIR many|one: the script root with output bindings
bind_app() {
  app_variant "$1" batch
  if [ "$2" = many ]; then trig=msgs; else trig=msg; fi
  cat >"$1/Changes/function.json" <<EOF
{
  "bindings": [
    { "type": "serviceBusTrigger", "direction": "in", "name": "$trig", "topicName": "%CDC_TOPIC%",
      "subscriptionName": "%CDC_SUBSCRIPTION%", "connection": "ServiceBusConnection",
      "dataType": "binary", "cardinality": "$2", "autoCompleteMessages": true },
    { "type": "redis", "direction": "out", "name": "redisSet", "connection": "RedisConnection", "command": "SET" },
    { "type": "redis", "direction": "out", "name": "redisDel", "connection": "RedisConnection", "command": "DEL" },
    { "type": "redis", "direction": "out", "name": "redisSadd", "connection": "RedisConnection", "command": "SADD" },
    { "type": "sql", "direction": "out", "name": "accountRows", "commandText": "account",
      "connectionStringSetting": "SqlConnectionString" }
  ]
}
EOF
}
bind_app "$dir/app_many" many
bind_app "$dir/app_one" one
MSGS=$ROOT/tests/fixtures/demo/messages
PL_ENV="--env CDC_MODE=bindings --env CDC_MAPPING_FILE= --env RedisConnection=127.0.0.1:1"

for shape in many one; do
  hostemu "$dir/app_$shape" "bind_$shape" --messages "$MSGS" --concurrency 4 --stop ||
    bad "$shape: hostemu exited $?: $(tail -3 "$dir/bind_$shape.err")"
  settled "bind_$shape" 16
  expect_eq "$(sum_num "bind_$shape" invocationsFailed)" 0 "$shape: no invocation failed"
  if grep -q '"warnings":\[\]' "$dir/bind_$shape.json"; then
    ok "$shape: no output warnings (base64 trap, unbound outputs)"
  else
    bad "$shape: warnings: $(sed -n 's/.*"warnings":\(.*\)}$/\1/p' "$dir/bind_$shape.json")"
  fi
  grep -q 'poison message demo-16-msbin1' "$dir/bind_$shape.log" && ok "$shape: the poison message is logged" ||
    bad "$shape: the poison message is not in the log"
done

# the Outputs of one batch (create_account, delete_account, update_contact_partial)
port=$(free_port)
(cd "$dir/app_many" && FUNCTIONS_CUSTOMHANDLER_PORT=$port FUNCTIONS_APP_ROOT_PATH=$dir/app_many \
  CDC_MODE=bindings CDC_MAPPING_FILE='' RedisConnection=127.0.0.1:1 exec ./handler) >"$dir/h.out" 2>"$dir/h.err" &
H=$!
CLEANUP_PIDS="$CLEANUP_PIDS $H"
wait_port "$port" 5 || die "the handler did not listen: $(cat "$dir/h.err")"
code=$(curl -s -m 20 -o "$dir/resp.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary @"$ROOT/tests/fixtures/envelopes/batch_binary.json" "http://127.0.0.1:$port/Changes")
expect_eq "$code" 200 "the batch invocation succeeds"
resp=$(cat "$dir/resp.json")
has_resp() {
  case "$resp" in *"$1"*) ok "Outputs: $2" ;; *) bad "Outputs lack $2 ($1): $(printf '%s' "$resp" | head -c 400)" ;; esac
}
has_resp '"redisDel":["d365:{account:01b5eeb5-455e-ee11-be6f-000d3a1aaa29}"]' "DEL of the deleted account"
has_resp '"redisSet":["d365:{account:5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1} {' "SET of the created account"
has_resp '\"name\":\"Contoso%20Pharmaceuticals%20(Zürich)\"' "spaces percent-encoded, UTF-8 kept"
has_resp '\"exchangerate\":1.0000000000,' "number lexemes exact"
has_resp '"redisSadd":[]' "an empty array where nothing applies"
has_resp '"accountRows":[{"accountid":' "SQL rows"
has_resp '"_cdc_deleted":true' "the Delete as a soft-delete row"
# every output is an array (a JSON string output would be the base64 trap)
for o in redisSet redisDel redisSadd accountRows; do
  case "$resp" in *"\"$o\":["*) ok "$o is an array" ;; *) bad "$o is not an array" ;; esac
done
kill -TERM "$H"
wait "$H" 2>/dev/null

# bindings mode without output bindings: refused at start-up
PL_ENV="--env CDC_MODE=bindings --env CDC_MAPPING_FILE= --env RedisConnection=127.0.0.1:1"
hostemu "$BUILD/app" nobind --messages "$MSGS/02_contoso_create.json" --max-delivery-count 1 --stop
[ $? != 0 ] && ok "no output binding: hostemu reports the failure" || bad "no output binding: hostemu succeeded"
grep -q 'cannot start: CDC_MODE=bindings, but function Changes .* has no redis or sql output binding' "$dir/nobind.log" &&
  ok "no output binding: the handler names the problem" || bad "no output binding: $(grep -i error "$dir/nobind.log" | head -2)"

grep -q "Sanitizer" "$dir"/*.log "$dir/h.err" && bad "sanitizer report in the handler log"
pl_finish

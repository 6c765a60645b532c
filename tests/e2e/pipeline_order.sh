#!/bin/sh
# pipeline_order.sh - the correctness rules end to end: build/hostemu (as the
# Functions host) -> build/handler -> a real redis-server, with changes
# delivered in adversarial orders, through the single-message function
# (cardinality one) and the batch function (cardinality many, batches of 3):
#   reversed; duplicated (same MessageId twice, same change under two
#   MessageIds, a whole replay); delete then a late older update (and a newer
#   update reviving the record); two partial updates to different columns in
#   both orders; associate/disassociate out of order.
# Final state checked exactly through the read API, and the replay checked
# to change no byte in Redis. With PL_CLUSTER=1 the same on a Redis Cluster
# (tests/cluster/order.sh).
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
pl_start_redis
PL_ENV="--env RedisConnection=$PL_REDIS_CONN --env CDC_TARGET=redis --env CDC_MODE=direct --env CDC_MAPPING_FILE="

m=$dir/msgs
order_stream "$m"

CTX='"@odata.context":"BASE/api/data/v9.2/$metadata#accounts/$entity"'
full() { # full ID NUMBER NAME REVENUE PHONE: the whole document of a created record
  printf '200 {%s,"accountid":"%s","accountnumber":"%s","createdon":"2024-11-08T08:05:06Z","name":"%s","revenue":%s,"statecode":0,"statuscode":1,"telephone1":"%s"}' \
    "$CTX" "$1" "$2" "$3" "$4" "$5"
}
gone() { printf '404 {"error":{"code":"0x80040217","message":"Entity '"'account'"' With Id = %s Does Not Exist"}}' "$1"; }

check_state() { # check_state ROOT
  A=/api/data/v9.2/accounts
  expect_read "$1" "$A($R)" "$(full "$R" N-R "R v3" 100 "R P4")"
  expect_read "$1" "$A($D)" "$(full "$D" N-D "D v2" 200 "D P3")"
  expect_read "$1" "$A($X)" "$(gone "$X")"
  expect_read "$1" "$A($Y)" "200 {$CTX,\"accountid\":\"$Y\",\"name\":\"Y back\"}"
  expect_read "$1" "$A($P)" "$(full "$P" N-P "P N3" 400 "P P2")"
  expect_read "$1" "$A($Q)" "$(full "$Q" N-Q "Q N3" 400 "Q P2")"
  expect_read "$1" "$A($U)?\$select=name,telephone1" \
    "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name,telephone1)/\$entity\",\"accountid\":\"$U\",\"name\":\"U N3\",\"telephone1\":\"U P2\"}"
  L='"@odata.context":"BASE/api/data/v9.2/$metadata#leads"'
  # an empty list cannot name the related entity set (no member to take it
  # from): the context names the relationship
  expect_read "$1" "$A($A1)/accountleads_association" \
    "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accountleads_association\",\"value\":[]}"
  expect_read "$1" "$A($A2)/accountleads_association" "200 {$L,\"value\":[{\"leadid\":\"$LEAD\"}]}"
  expect_read "$1" "/api/data/v9.2/leads($LEAD)/accountleads_association?\$select=name" \
    "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts(name)\",\"value\":[{\"accountid\":\"$A2\",\"name\":\"A2 v1\"}]}"
  # the tombstone keeps the Delete's version; the late update wrote nothing
  expect_eq "$(rc HEXISTS "d365:{account:$X}" _del)/$(rc HEXISTS "d365:{account:$X}" p:telephone1)" \
    "1/0" "X: tombstone kept, the late update did not write"
  expect_eq "$(rc HEXISTS "d365:{account:$Y}" p:telephone1)" 0 \
    "Y: the late update stayed out after the revival"
}

for mode in single batch; do
  log "---- $mode"
  rc_flushall
  app=$dir/app_$mode
  app_variant "$app" $mode
  if [ $mode = single ]; then args="--concurrency 1"; else args="--batch 3 --concurrency 1"; fi
  # shellcheck disable=SC2086
  hostemu "$app" "$mode" --messages "$m" $args --stop || bad "$mode: hostemu exited $?: $(tail -3 "$dir/$mode.err")"
  settled "$mode" "$N"
  grep -q "serviceBusTrigger, binary, $([ $mode = single ] && echo single || echo 'batch of up to 3')" "$dir/$mode.out" ||
    bad "$mode: not the expected function shape: $(grep function "$dir/$mode.out")"
  expect_eq "$(logs_sum "$mode" poison)" 0 "$mode: no poison"
  # stale: 03_r (older name), 07_d and 10_d (redeliveries), 09_d (the same
  # change again), 13_X and 13_Y (older than the Delete), 19_A1 and 19_A2
  # (older relationship changes)
  expect_eq "$(logs_sum "$mode" stale)/$(logs_sum "$mode" applied)" "8/$((N - 8))" "$mode: stale/applied"
  check_state "$app"

  # replay everything (every message is now a duplicate): nothing changes
  rec_dump d365: >"$dir/before_$mode"
  [ "$(grep -c '^d365:{account:' "$dir/before_$mode")" -ge 9 ] || bad "$mode: the snapshot is missing records"
  # shellcheck disable=SC2086
  hostemu "$app" "replay_$mode" --messages "$m" $args --stop || bad "$mode replay: hostemu exited $?"
  settled "replay_$mode" "$N"
  expect_eq "$(logs_sum "replay_$mode" applied)" 0 "$mode replay: nothing applied"
  rec_dump d365: >"$dir/after_$mode"
  if cmp -s "$dir/before_$mode" "$dir/after_$mode"; then ok "$mode replay: Redis unchanged"; else
    bad "$mode replay changed Redis: $(diff "$dir/before_$mode" "$dir/after_$mode" | head -10)"
  fi
done
# the batch run must really have batched
[ "$(sum_num batch invocations)" -lt "$N" ] && ok "batch: $(sum_num batch invocations) invocations for $N messages" ||
  bad "batch: $(sum_num batch invocations) invocations for $N messages"
grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

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
# to change no byte in Redis.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
[ -x "$BUILD/hostemu" ] && [ -x "$BUILD/app/handler" ] || die "build first: make BUILD=$BUILD all"
dir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $dir"
start_redis "$dir"
PL_ENV="--env RedisConnection=127.0.0.1:$REDIS_PORT --env CDC_TARGET=redis --env CDC_MODE=direct --env CDC_MAPPING_FILE="

T=1731000000000
id() { printf 'a0000000-0000-4000-8000-0000000000%s' "$1"; }
R=$(id 01) D=$(id 02) X=$(id 03) Y=$(id 04) P=$(id 05) Q=$(id 06) U=$(id 07) A1=$(id 08) A2=$(id 09)
LEAD=b0000000-0000-4000-8000-000000000001
m=$dir/msgs
mkdir -p "$m"

# Files are delivered in name order.
# reversed: Create, name v2, name v3, phone, delivered newest first
msg_create "$m/r1" "$R" $((T + 1000)) "R v1" N-R P1 100
msg_update "$m/r2" "$R" $((T + 2000)) name "R v2"
msg_update "$m/r3" "$R" $((T + 3000)) name "R v3"
msg_update "$m/r4" "$R" $((T + 4000)) telephone1 "R P4"
mv "$m/r4" "$m/01_r"; mv "$m/r3" "$m/02_r"; mv "$m/r2" "$m/03_r"; mv "$m/r1" "$m/04_r"

# duplicated: the Create redelivered (same MessageId) after the updates, an
# update twice with one MessageId, another under two MessageIds
msg_create "$m/05_d" "$D" $((T + 1000)) "D v1" N-D P1 200
sidecar "$m/05_d" dup-create
msg_update "$m/06_d" "$D" $((T + 2000)) name "D v2"
sidecar "$m/06_d" dup-name
cp "$m/06_d" "$m/07_d"; cp "$m/06_d.props.json" "$m/07_d.props.json"
msg_update "$m/08_d" "$D" $((T + 3000)) telephone1 "D P3"
sidecar "$m/08_d" dup-phone-a
cp "$m/08_d" "$m/09_d"; sidecar "$m/09_d" dup-phone-b
cp "$m/05_d" "$m/10_d"; cp "$m/05_d.props.json" "$m/10_d.props.json"

# delete then a late older update; for Y also a newer update after the delete
for r in X Y; do
  eval "rid=\$$r"
  msg_create "$m/11_$r" "$rid" $((T + 1000)) "$r v1" "N-$r" P1 300
  msg_delete "$m/12_$r" "$rid" $((T + 3000))
  msg_update "$m/13_$r" "$rid" $((T + 2000)) telephone1 "$r late"
done
msg_update "$m/14_Y" "$Y" $((T + 4000)) name "Y back"

# two partial updates to different columns: P gets them newest first, Q
# oldest first, U (no Create) newest first
for r in P Q U; do
  eval "rid=\$$r"
  [ $r = U ] || msg_create "$m/15_$r" "$rid" $((T + 1000)) "$r v1" "N-$r" P1 400
  msg_update "$dir/phone_$r" "$rid" $((T + 2000)) telephone1 "$r P2"
  msg_update "$dir/name_$r" "$rid" $((T + 3000)) name "$r N3"
done
mv "$dir/name_P" "$m/16_P"; mv "$dir/phone_P" "$m/17_P"
mv "$dir/phone_Q" "$m/16_Q"; mv "$dir/name_Q" "$m/17_Q"
mv "$dir/name_U" "$m/16_U"; mv "$dir/phone_U" "$m/17_U"

# associate/disassociate out of order: A1 associated then disassociated
# (delivered the other way round), A2 disassociated then associated
# (delivered the other way round)
msg_relate "$m/18_A1" "$A1" $((T + 2000)) Disassociate "$LEAD"
msg_relate "$m/19_A1" "$A1" $((T + 1000)) Associate "$LEAD"
msg_relate "$m/18_A2" "$A2" $((T + 2000)) Associate "$LEAD"
msg_relate "$m/19_A2" "$A2" $((T + 1000)) Disassociate "$LEAD"
N=$(ls "$m" | grep -vc '\.props\.json$')

CTX='"@odata.context":"BASE/api/data/v9.2/$metadata#accounts/$entity"'
full() { # full ID NUMBER NAME REVENUE PHONE: the whole document of a created record
  printf '200 {%s,"accountid":"%s","accountnumber":"%s","createdon":"2024-11-08T08:05:06Z","name":"%s","revenue":%s,"statecode":0,"statuscode":1,"telephone1":"%s"}' \
    "$CTX" "$1" "$2" "$3" "$4" "$5"
}
gone() { printf '404 {"error":{"code":"0x80040217","message":"account With Id = %s Does Not Exist"}}' "$1"; }

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
  expect_read "$1" "/api/data/v9.2/leads($LEAD)/accountleads_association" \
    "200 {\"@odata.context\":\"BASE/api/data/v9.2/\$metadata#accounts\",\"value\":[{\"accountid\":\"$A2\"}]}"
  # the tombstone keeps the Delete's version; the late update wrote nothing
  expect_eq "$(redis-cli -p "$REDIS_PORT" HEXISTS "d365:{account:$X}" _del)/$(redis-cli -p "$REDIS_PORT" HEXISTS "d365:{account:$X}" v:telephone1)" \
    "1/0" "X: tombstone kept, the late update did not write"
  expect_eq "$(redis-cli -p "$REDIS_PORT" HEXISTS "d365:{account:$Y}" v:telephone1)" 0 \
    "Y: the late update stayed out after the revival"
}

for mode in single batch; do
  log "---- $mode"
  redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
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

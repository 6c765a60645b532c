#!/bin/sh
# pipeline_restart.sh - Redis killed (SIGKILL) and restarted by the test in
# the middle of a stream delivered through build/hostemu to build/handler:
#   outage shorter than CDC_RETRY_BUDGET_MS, single-message and batch
#   functions: every invocation rides it out (retries inside the handler),
#   nothing is failed, redelivered or dead-lettered, and every change of
#   every message hostemu settled is in Redis at the end. Redis runs with
#   appendfsync always, so a write it confirmed survives the kill: a message
#   acknowledged without its write would show as a missing or stale record
#   (a settled message is never delivered again).
#   outage longer than the budget: invocations fail (non-2xx) and hostemu
#   redelivers them; after the restart they succeed; nothing is lost or
#   dead-lettered.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
REDIS_ARGS="--appendonly yes --appendfsync always"
# shellcheck disable=SC2086
start_redis "$dir" $REDIS_ARGS
NREC=150
T=1731000000000
app_variant "$dir/app_single" single

# stream PREFIX (a hex digit): NREC Creates and NREC later Updates of records
# <PREFIX>0000-...-<n>, interleaved (Update of n-10 after Create of n), in
# $dir/stream_PREFIX
stream() {
  _m=$dir/stream_$1
  mkdir -p "$_m"
  _n=1
  while [ $_n -le $NREC ]; do
    _id=$(printf '%s0000000-0000-4000-8000-%012d' "$1" $_n)
    msg_create "$_m/$(printf '%05d' $((_n * 2)))" "$_id" $((T + _n)) "$1 $_n v1" "N-$_n" "P-$_n" $_n
    msg_update "$_m/$(printf '%05d' $((_n * 2 + 21)))" "$_id" $((T + 100000 + _n)) name "$1 $_n v2"
    _n=$((_n + 1))
  done
}
# verify PREFIX: every record has the Update's name and the Create's other
# columns (one redis-cli connection for all reads)
verify() {
  _n=1
  : >"$dir/cmds" && : >"$dir/want"
  while [ $_n -le $NREC ]; do
    _k=$(printf 'd365:{account:%s0000000-0000-4000-8000-%012d}' "$1" $_n)
    printf 'HMGET %s p:name p:accountnumber p:telephone1 p:revenue\n' "$_k" >>"$dir/cmds"
    printf '"%s %d v2"\n"N-%d"\n"P-%d"\n%d\n' "$1" $_n $_n $_n $_n >>"$dir/want"
    _n=$((_n + 1))
  done
  rc --raw <"$dir/cmds" | prop_values >"$dir/got"
  if cmp -s "$dir/want" "$dir/got"; then ok "$1: all $NREC records exact ($((NREC * 2)) changes)"; else
    bad "$1: records differ: $(diff "$dir/want" "$dir/got" | head -6)"
  fi
}
# wait_dbsize N: until Redis holds at least N keys (the stream is under way)
wait_dbsize() {
  _i=0
  until [ "$(rc DBSIZE 2>/dev/null || echo 0)" -ge "$1" ]; do
    _i=$((_i + 1))
    [ $_i -lt 400 ] || die "the stream did not start: $(cat "$dir"/*.err | tail -5)"
    sleep 0.05
  done
}
# outage SECONDS: SIGKILL Redis, wait, restart it on the same port and files
outage() {
  log "killing redis-server (SIGKILL) with $(rc DBSIZE) keys written"
  kill -9 "$REDIS_PID"
  wait "$REDIS_PID" 2>/dev/null
  sleep "$1"
  # shellcheck disable=SC2086
  REDIS_PORT_WANTED=$REDIS_PORT start_redis "$dir" $REDIS_ARGS
  log "redis-server restarted (pid $REDIS_PID) with $(rc DBSIZE) keys"
}

# ---- outage shorter than the budget: single, then batch ----------------------------
for mode in single batch; do
  if [ $mode = single ]; then
    p=e app=$dir/app_single args="--concurrency 8"
  else
    p=f app=$BUILD/app args="--batch 10 --concurrency 2"
  fi
  stream $p
  PL_ENV="--env RedisConnection=127.0.0.1:$REDIS_PORT --env CDC_RETRY_BUDGET_MS=20000 --env CDC_MAPPING_FILE="
  # shellcheck disable=SC2086
  hostemu "$app" "short_$mode" --messages "$dir/stream_$p" $args --rate 120 --stop &
  hpid=$!
  on_exit "kill $hpid"
  wait_dbsize $(($(rc DBSIZE) + 40))
  outage 2
  wait $hpid
  st=$?
  expect_eq "$st" 0 "short outage, $mode: hostemu exit status"
  settled "short_$mode" $((NREC * 2))
  expect_eq "$(sum_num "short_$mode" invocationsFailed)" 0 "short outage, $mode: no invocation failed"
  r=$(logs_sum "short_$mode" retries)
  [ "$r" -gt 0 ] && ok "short outage, $mode: the handler retried $r times inside invocations" ||
    bad "short outage, $mode: no retries: the outage missed the stream"
  grep -q '"level":"warn".*retry' "$dir/short_$mode.log" && ok "short outage, $mode: retries logged at warn" ||
    bad "short outage, $mode: no retry warning in the handler log"
  expect_eq "$(logs_sum "short_$mode" poison)" 0 "short outage, $mode: no poison"
  verify $p
done

# ---- outage longer than the budget ---------------------------------------------------
p=d
stream $p
PL_ENV="--env RedisConnection=127.0.0.1:$REDIS_PORT --env CDC_RETRY_BUDGET_MS=800 --env CDC_RETRY_INITIAL_MS=50 --env CDC_MAPPING_FILE="
hostemu "$dir/app_single" long --messages "$dir/stream_$p" --concurrency 8 --rate 120 \
  --redelivery-delay-ms 300 --max-delivery-count 50 --stop &
hpid=$!
on_exit "kill $hpid"
wait_dbsize $(($(rc DBSIZE) + 40))
outage 3
wait $hpid
expect_eq "$?" 0 "long outage: hostemu exit status (everything settled in the end)"
expect_eq "$(sum_num long generated)/$(sum_num long succeeded)/$(sum_num long deadLettered)/$(sum_num long unsettled)" \
  "$((NREC * 2))/$((NREC * 2))/0/0" "long outage: generated/succeeded/dead-lettered/unsettled"
f=$(sum_num long invocationsFailed)
[ "$f" -gt 0 ] && ok "long outage: $f invocations failed and were redelivered ($(sum_num long retried) redeliveries)" ||
  bad "long outage: no invocation failed"
grep -q 'HTTP 5[0-9][0-9]' "$dir/long.out" && ok "long outage: failures are HTTP 5xx" ||
  bad "long outage: failure reasons: $(grep -A3 failure "$dir/long.out")"
grep -q '"level":"error".*invocation failed' "$dir/long.log" && ok "long outage: failures logged at error" ||
  bad "long outage: no error line for the failed invocations"
expect_eq "$(logs_sum long poison)" 0 "long outage: no poison"
verify $p

grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

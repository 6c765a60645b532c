#!/bin/sh
# pipeline_sigterm.sh - SIGTERM of the handler in the middle of a stream
# delivered through build/hostemu, while Redis is down and the in-flight
# invocations are retrying: they fail at once (the sinks stop retrying on
# shutdown, so the drain ends long before CDC_SHUTDOWN_GRACE_MS and far
# before CDC_RETRY_BUDGET_MS), the handler exits with a code that makes the
# host start it again, hostemu restarts it, the failed messages are
# redelivered, and after Redis is back every change is present; nothing is
# dead-lettered.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
REDIS_ARGS="--appendonly yes --appendfsync always"
# shellcheck disable=SC2086
start_redis "$dir" $REDIS_ARGS
NREC=100
T=1731000000000
app_variant "$dir/app" single

m=$dir/stream
mkdir -p "$m"
n=1
while [ $n -le $NREC ]; do
  id=$(printf 'e0000000-0000-4000-8000-%012d' $n)
  msg_create "$m/$(printf '%05d' $((n * 2)))" "$id" $((T + n)) "S $n v1" "N-$n" "P-$n" $n
  msg_update "$m/$(printf '%05d' $((n * 2 + 21)))" "$id" $((T + 100000 + n)) name "S $n v2"
  n=$((n + 1))
done

# A 30 s budget and a 5 s grace: if the in-flight invocations kept
# retrying after SIGTERM, the drain would pass the grace and exit 1.
PL_ENV="--env RedisConnection=127.0.0.1:$REDIS_PORT --env CDC_RETRY_BUDGET_MS=30000
--env CDC_SHUTDOWN_GRACE_MS=5000 --env CDC_MAPPING_FILE="
hostemu "$dir/app" sigterm --messages "$m" --concurrency 8 --rate 100 --max-delivery-count 5 \
  --deadletter "$dir/dl" --stop &
hpid=$!
on_exit "kill $hpid"

i=0
until [ "$(rc DBSIZE 2>/dev/null || echo 0)" -ge 40 ]; do
  i=$((i + 1)); [ $i -lt 400 ] || die "the stream did not start: $(tail -5 "$dir/sigterm.err")"
  sleep 0.05
done
handler=$(sed -n 's/.*"msg":"listening on http:[^ ]* (pid \([0-9]*\))".*/\1/p' "$dir/sigterm.log" | head -1)
[ -n "$handler" ] || die "no handler pid in the log"
log "killing redis-server with $(rc DBSIZE) keys written; handler pid $handler"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
# wait until invocations are in their retry loops
i=0
until grep -q '"level":"warn".*redis write attempt [2-9] failed' "$dir/sigterm.log"; do
  i=$((i + 1)); [ $i -lt 200 ] || die "no invocation is retrying"
  sleep 0.05
done
log "SIGTERM to the handler (pid $handler) while invocations retry"
kill -TERM "$handler"
i=0
while kill -0 "$handler" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 300 ] || die "the handler did not exit within 15 s of SIGTERM"
  sleep 0.05
done
log "the handler exited"
# shellcheck disable=SC2086
REDIS_PORT_WANTED=$REDIS_PORT start_redis "$dir" $REDIS_ARGS
log "redis-server restarted"
wait $hpid
expect_eq "$?" 0 "hostemu: every message settled in the end"

grep -q '"msg":"received SIGTERM: draining, then exiting"' "$dir/sigterm.log" && ok "the handler drained" ||
  bad "no drain in the handler log"
grep -q 'still running after the' "$dir/sigterm.log" && bad "the drain outlived the grace period"
grep -q '"level":"error".*invocation failed.*shutting down' "$dir/sigterm.log" &&
  ok "in-flight invocations failed with 'shutting down'" || bad "no in-flight invocation failed on shutdown"
code=$(sed -n 's/.*"msg":"stopped; exiting \([0-9]*\)".*/\1/p' "$dir/sigterm.log" | head -1)
expect_eq "$code" 200 "exit code after SIGTERM (the host starts the handler again)"
expect_eq "$(sum_num sigterm restarts)/$(sum_num sigterm errorExits)" "1/0" "hostemu: restarts/counted errors"
expect_eq "$(sum_num sigterm generated)/$(sum_num sigterm succeeded)/$(sum_num sigterm deadLettered)/$(sum_num sigterm unsettled)" \
  "$((NREC * 2))/$((NREC * 2))/0/0" "generated/succeeded/dead-lettered/unsettled"
f=$(sum_num sigterm invocationsFailed)
[ "$f" -gt 0 ] && ok "$f invocations failed and were redelivered" || bad "no invocation failed"

n=1
: >"$dir/cmds"
: >"$dir/want"
while [ $n -le $NREC ]; do
  printf 'HMGET d365:{account:e0000000-0000-4000-8000-%012d} p:name p:accountnumber\n' $n >>"$dir/cmds"
  printf '"S %d v2"\n"N-%d"\n' $n $n >>"$dir/want"
  n=$((n + 1))
done
rc --raw <"$dir/cmds" | prop_values >"$dir/got"
if cmp -s "$dir/want" "$dir/got"; then ok "all $NREC records exact"; else
  bad "records differ: $(diff "$dir/want" "$dir/got" | head -6)"
fi
grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

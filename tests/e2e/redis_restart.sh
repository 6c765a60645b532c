#!/bin/sh
# redis_restart.sh - redis-server is killed (SIGKILL) and restarted on the
# same port in the middle of a stream of batches: no batch is reported OK
# without its write (AOF with appendfsync always keeps every confirmed
# write), every change is present at the end, nothing is lost for an outage
# shorter than the retry budget, and an outage longer than the budget gives
# a clear error.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
T="$BUILD/itest/itest_redis_restart"
[ -x "$T" ] || die "build $T first (make tools)"
dir=$(tmpdir)
N=80
SIZE=400
ARGS="--appendonly yes --appendfsync always"
# shellcheck disable=SC2086
start_redis "$dir" $ARGS
log "redis on port $REDIS_PORT (pid $REDIS_PID)"

CDC_RETRY_BUDGET_MS=20000 "$T" stream $N $SIZE >"$dir/stream.out" 2>"$dir/stream.err" &
spid=$!
on_exit "kill $spid"
i=0
until [ "$(grep -c '^ok' "$dir/stream.out")" -ge 30 ]; do
  i=$((i + 1)); [ $i -lt 600 ] || die "stream did not start: $(cat "$dir/stream.err")"
  sleep 0.05
done
log "killing redis (SIGKILL) after $(grep -c '^ok' "$dir/stream.out") batches"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
sleep 2
# shellcheck disable=SC2086
REDIS_PORT_WANTED=$REDIS_PORT start_redis "$dir" $ARGS
log "redis restarted (pid $REDIS_PID)"
wait $spid
rc=$?
cat "$dir/stream.err" >&2
grep -v '^ok .* retries=0 ' "$dir/stream.out" >&2
[ $rc = 0 ] || die "the stream failed (exit $rc)"
oks=$(grep -c '^ok' "$dir/stream.out")
[ "$oks" = $N ] || die "only $oks of $N batches confirmed"
log "all $N batches confirmed across the restart"
"$T" verify $N $SIZE || die "verification failed"

log "outage longer than the budget"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
CDC_RETRY_BUDGET_MS=1500 "$T" outage || die "outage case failed"
log "restart passed"

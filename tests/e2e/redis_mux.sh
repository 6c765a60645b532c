#!/bin/sh
# redis_mux.sh - the read multiplexer (handler/redis/redis_mux.h) against a private
# redis-server: ordering under many callers, batching, callers timing out
# while queued and in flight, the queue cap, a connection killed mid-batch
# (tests/itest/itest_redis_mux.c); then callers streaming while
# redis-server is killed (SIGKILL) and restarted on the same port: no
# caller ever gets another's reply, and calls succeed again afterwards.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
T="$BUILD/itest/itest_redis_mux"
[ -x "$T" ] || die "build $T first (make tools)"
dir=$(tmpdir)
start_redis "$dir"
export REDIS_PORT
log "redis on port $REDIS_PORT (pid $REDIS_PID)"
"$T" || die "itest_redis_mux failed"

"$T" stream 6 >"$dir/stream.out" 2>"$dir/stream.err" &
spid=$!
on_exit "kill $spid"
i=0
until [ "$(grep -c '^round' "$dir/stream.out")" -ge 3 ]; do
  i=$((i + 1)); [ $i -lt 200 ] || die "stream did not start: $(cat "$dir/stream.err")"
  sleep 0.05
done
log "killing redis (SIGKILL) mid-stream"
kill -9 "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
sleep 1
REDIS_PORT_WANTED=$REDIS_PORT start_redis "$dir"
log "redis restarted (pid $REDIS_PID)"
wait $spid
rc=$?
tail -1 "$dir/stream.out"
[ $rc = 0 ] || die "stream failed (exit $rc): $(tail -5 "$dir/stream.err")"
log "redis_mux passed"

#!/bin/sh
# readapi_concurrency.sh - reads never block writes, nor writes reads. One
# handler serves a Service Bus write load and a read load at once:
#  1. both loads run to completion side by side (every message settled,
#     every read answered 200);
#  2. with Redis refusing to run writes (CLIENT PAUSE WRITE) and the write
#     pool (CDC_REDIS_POOL=2) held by blocked writes, reads still answer 200
#     while the writes are still blocked; the writes then finish once Redis
#     runs them. With one shared pool the reads would wait for a connection
#     past their timeout and answer 503.
# No timings are asserted; the summaries are logged.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
start_redis "$T"
log "redis on port $REDIS_PORT"
RCONN="127.0.0.1:$REDIS_PORT,syncTimeout=2000"
APP=$(ra_app app "$(grep -q '"enableForwardingHttpRequest": *true' "$BUILD/app/host.json" &&
  echo true || echo false)")
ra_deliver "$APP" "$FIX/create_account.json"

accounts() { redis-cli -p "$REDIS_PORT" --scan --pattern 'd365:{account:*}' | grep -vc ':rel:'; }
blocked() { redis-cli -p "$REDIS_PORT" info clients | tr -d '\r' | grep '^blocked_clients:' | cut -d: -f2; }

ra_start "$APP" CDC_REDIS_POOL=2
before=$(accounts)

log "1. a write load and a read load side by side"
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --messages "$FIX/create_account.json" \
  --vary --batch 1 --repeat 3000 --concurrency 8 >"$T/w1.out" 2>"$T/w1.err" &
wpid=$!
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --http GET "$API/accounts($ACC)?\$select=name" \
  --repeat 3000 --concurrency 8 >"$T/r1.out" 2>"$T/r1.err" || die "read load failed: $(cat "$T/r1.err")"
wait $wpid || die "write load failed: $(cat "$T/w1.out" "$T/w1.err")"
grep -E 'invocations|throughput|latency' "$T/w1.out" | sed 's/^/  writes: /' >&2
grep -E 'invocations|throughput|latency' "$T/r1.err" | sed 's/^/  reads:  /' >&2
grep -q "3000 generated, 3000 deliveries, 3000 succeeded" "$T/w1.out" ||
  die "not every message settled once: $(cat "$T/w1.out")"
expect_eq "records written" "$(accounts)" $((before + 3000))
ra_expect "read during writes" "$T/r1.out" 200
expect_eq "reads failed" "$(ra_metric reads_failed)" 0
expect_eq "reads" "$(ra_metric reads)" 3000

if ! redis_at_least 6 2; then
  # Debian 11's Redis 6.0 can only pause every command, reads included
  log "2. skipped: CLIENT PAUSE WRITE needs Redis 6.2 ($(redis-server --version | cut -d' ' -f3))"
  ra_stop
  ra_sanitizers
  log "ok (part 1 only)"
  exit 0
fi
log "2. writes blocked in Redis (CLIENT PAUSE WRITE), the write pool held: reads go on"
before=$(accounts)
redis-cli -p "$REDIS_PORT" client pause 60000 write >/dev/null || die "CLIENT PAUSE failed"
on_exit "redis-cli -p $REDIS_PORT client unpause"
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --messages "$FIX/create_account.json" \
  --vary --batch 1 --repeat 40 --concurrency 8 >"$T/w2.out" 2>"$T/w2.err" &
wpid=$!
i=0
until [ "$(blocked)" -ge 2 ]; do
  i=$((i + 1))
  [ $i -lt 200 ] || die "the writes never reached Redis"
  sleep 0.05
done
log "  $(blocked) write connections blocked in Redis; reading"
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --http GET "$API/accounts($ACC)?\$select=name,nosuchcolumn" \
  --repeat 200 --concurrency 8 >"$T/r2a.out" 2>"$T/r2a.err" || die "reads failed: $(cat "$T/r2a.err")"
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --http GET "$API/accounts($ACC)?\$select=name" \
  --repeat 200 --concurrency 8 >"$T/r2.out" 2>"$T/r2.err" || die "reads failed: $(cat "$T/r2.err")"
grep -E 'throughput|latency' "$T/r2.err" | sed 's/^/  reads:  /' >&2
ra_expect "read while writes are blocked" "$T/r2.out" 200
ra_expect "\$select check (schema set) while writes are blocked" "$T/r2a.out" 400
expect_eq "reads failed while writes are blocked" "$(ra_metric reads_failed)" 0
# the writes were still waiting when the reads were done
[ "$(blocked)" -ge 2 ] || die "the writes were no longer blocked: the test proved nothing"
expect_eq "records written while paused" "$(accounts)" "$before"
kill -0 $wpid 2>/dev/null || die "the write load ended while Redis refused writes"
redis-cli -p "$REDIS_PORT" client unpause >/dev/null
wait $wpid || die "write load failed after the pause: $(cat "$T/w2.out" "$T/w2.err")"
grep -q "40 generated, 40 deliveries, 40 succeeded" "$T/w2.out" ||
  die "not every message settled once: $(cat "$T/w2.out")"
expect_eq "records written after the pause" "$(accounts)" $((before + 40))
ra_stop
ra_sanitizers
log "ok"

#!/bin/sh
# readapi_unavailable.sh - the read API when Redis fails, in both call
# styles: Redis accepting connections but not answering (SIGSTOP) and Redis
# gone (killed) each give 503 with an OData error body and Retry-After
# within the read timeout (syncTimeout=1500 here), never a hang: hostemu
# fails any answer slower than its --timeout-ms (functionTimeout, 10 s
# here). Reads recover by themselves when Redis is back. The metrics
# function keeps answering meanwhile (it needs no Redis).
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
start_redis "$T"
REDIS_DIR=$T
log "redis on port $REDIS_PORT"
RCONN="127.0.0.1:$REDIS_PORT,syncTimeout=1500,connectTimeout=1500"

ENV_APP=$(ra_app envelope false)
FWD_APP=$(ra_app forward true)
ra_deliver "$ENV_APP" "$FIX/create_account.json"
redis-cli -p "$REDIS_PORT" save >/dev/null || die "redis SAVE failed"

# get_timed OUT PATH: a GET that must be answered within 10 s; logs how long
get_timed() {
  _t0=$(now_ms)
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$HAPP" --timeout-ms 10000 \
    --http GET "$2" >"$1" 2>"$1.err" || die "no answer for GET $2 within 10 s: $(cat "$1.err")"
  log "  answered $(ra_status "$1") in $(($(now_ms) - _t0)) ms"
}

expect_503() {
  ra_expect "$1" "$2" 503
  b=$(ra_body "$2")
  expect_has "$1" "$b" '{"error":{"code":"0x80040224","message":"The replica store is unavailable'
  expect_eq "$1 Retry-After" "$(ra_header "$2" Retry-After)" 1
  expect_eq "$1 OData-Version" "$(ra_header "$2" OData-Version)" 4.0
}

check_style() {
  style=$1
  o=$T/$style
  mkdir -p "$o"
  ra_start "$2"
  ra_get "$o/ok" "$API/accounts($ACC)?\$select=name"
  ra_expect "$style before" "$o/ok" 200

  log "$style: Redis accepts connections but does not answer (SIGSTOP)"
  on_exit "kill -CONT $REDIS_PID"
  kill -STOP "$REDIS_PID"
  get_timed "$o/stopped" "$API/accounts($ACC)?\$select=name"
  expect_503 "$style stopped" "$o/stopped"
  expect_has "$style stopped" "$(ra_body "$o/stopped")" "(timeout)"
  get_timed "$o/stopped-rel" "$API/accounts($ACC)/accountleads_association"
  expect_503 "$style stopped, relationship" "$o/stopped-rel"
  log "$style: 16 more reads, 8 at a time, while stopped"
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$HAPP" --timeout-ms 10000 \
    --http GET "$API/accounts($ACC)" --repeat 16 --concurrency 8 >"$o/many" 2>"$o/many.err" ||
    die "$style: concurrent reads against a stopped Redis: $(cat "$o/many.err")"
  expect_503 "$style stopped, concurrent" "$o/many"
  ra_get "$o/metrics" /api/cdc/metrics
  ra_expect "$style metrics while Redis is stopped" "$o/metrics" 200
  expect_has "$style metrics" "$(ra_body "$o/metrics")" '"reads_failed":18,'
  kill -CONT "$REDIS_PID"
  ra_get "$o/cont" "$API/accounts($ACC)?\$select=name"
  ra_expect "$style after SIGCONT" "$o/cont" 200

  log "$style: Redis gone (killed)"
  stop_pid "$REDIS_PID"
  get_timed "$o/gone" "$API/accounts($ACC)?\$select=name"
  expect_503 "$style gone" "$o/gone"
  get_timed "$o/gone2" "$API/accounts($ACC)?\$select=name"
  expect_503 "$style gone, again (reconnect backing off)" "$o/gone2"

  log "$style: Redis back on the same port: reads recover by themselves"
  REDIS_PORT_WANTED=$REDIS_PORT start_redis "$REDIS_DIR"
  i=0
  while :; do
    ra_get "$o/back" "$API/accounts($ACC)?\$select=name"
    [ "$(ra_status "$o/back")" = 200 ] && break
    expect_503 "$style while reconnecting" "$o/back"
    i=$((i + 1))
    [ $i -lt 40 ] || die "$style: reads did not recover after Redis came back"
    sleep 0.25
  done
  log "  recovered after $i retries"
  expect_has "$style back" "$(ra_body "$o/back")" '"name":"Contoso'
  ra_stop
}

check_style envelope "$ENV_APP"
check_style forward "$FWD_APP"
ra_sanitizers
log "ok"

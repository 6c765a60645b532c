#!/bin/sh
# server_measure.sh - the HTTP server's figures (reported, never asserted):
#   1. cold start: exec to the first answer on GET /, median of 20 runs
#   2. RSS at readiness (same runs) and idle after a warm-up
#   3. invocations/s of POST /__noop (the HTTP floor) and of POST /Changes
#      (envelope parsed, interim app) at 32 concurrent connections (wrk)
#   sh tests/scripts/server_measure.sh [BUILD]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export ROOT BUILD
. "$ROOT/tests/scripts/lib.sh"
test_init

app=$BUILD/app
[ -x "$app/handler" ] || die "run: make BUILD=$BUILD app $BUILD/tools/coldstart $BUILD/tools/freeport"
[ -x "$BUILD/tools/coldstart" ] || die "missing $BUILD/tools/coldstart"
command -v wrk >/dev/null 2>&1 || skip "wrk not installed (make deps)"
dir=$(tmpdir)

echo "== cold start (exec -> first GET / answer), 20 runs"
FUNCTIONS_APP_ROOT_PATH=$app CDC_LOG_LEVEL=info "$BUILD/tools/coldstart" "$app/handler" 20 | tail -1

port=$(free_port)
FUNCTIONS_CUSTOMHANDLER_PORT=$port FUNCTIONS_APP_ROOT_PATH=$app CDC_LOG_LEVEL=warn \
  "$app/handler" >"$dir/out" 2>"$dir/err" &
pid=$!
CLEANUP_PIDS="$CLEANUP_PIDS $pid"
wait_port "$port" 5 || die "the handler did not start"
for i in 1 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null "http://127.0.0.1:$port/"; done
echo "== RSS idle after 10 requests: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

# bench PATH: 3 wrk runs of 10 s at 32 connections; prints each and the median
bench() {
  for run in 1 2 3; do
    wrk -t2 -c32 -d10s -s "$ROOT/tests/scripts/server_noop.lua" "http://127.0.0.1:$port" -- "$1" \
      >"$dir/wrk$run"
    grep -q "Non-2xx" "$dir/wrk$run" && die "non-2xx answers: $(cat "$dir/wrk$run")"
    rps=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk$run")
    lat=$(awk '/Latency/ {print $2}' "$dir/wrk$run")
    echo "  run $run: $rps invocations/s, mean latency $lat"
    echo "$rps" >>"$dir/rps"
  done
  echo "  median: $(sort -n "$dir/rps" | sed -n 2p) invocations/s"
  rm -f "$dir/rps"
}
echo "== POST /__noop (HTTP floor), wrk -t2 -c32 -d10s x3"
bench /__noop
echo "== POST /Changes (envelope parsed, 1 message, interim app), wrk -t2 -c32 -d10s x3"
bench /Changes
echo "== RSS after the load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status), threads $(awk '/Threads/ {print $2}' /proc/$pid/status)"
kill -TERM "$pid"
wait "$pid"
echo "handler exit code $?"

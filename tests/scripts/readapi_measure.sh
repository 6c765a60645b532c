#!/bin/sh
# readapi_measure.sh - read API figures (reported, never asserted): reads/s
# and latency of a single-record GET at 32 concurrent calls against a
# private local redis-server, in both call styles, with hostemu's load
# options (--http with --duration/--concurrency); plus wrk straight at the
# raw route of forwarding mode when wrk is installed. The record is written
# through the pipeline first (fixtures delivered by hostemu).
#   sh tests/scripts/readapi_measure.sh [BUILD] [SECONDS] [RUNS]
# Prints every run and the median of the runs per style.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
SECONDS_PER_RUN=${2:-5}
RUNS=${3:-3}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export ROOT BUILD
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
start_redis "$T"
RCONN=127.0.0.1:$REDIS_PORT
ENV_APP=$(ra_app envelope false)
FWD_APP=$(ra_app forward true)
ra_deliver "$ENV_APP" "$FIX/create_account.json"
URL="$API/accounts($ACC)?\$select=name,revenue"

# json_num FILE KEY...: a number from hostemu's --json summary
json_num() { "$BUILD/tools/fakehandler" json "$@" 2>/dev/null; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() {
  style=$1
  ra_start "$2"
  # warm-up: opens the pooled connections
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$HAPP" --http GET "$URL" --duration 1 \
    --concurrency 32 -q >/dev/null 2>&1
  : >"$T/$style.rps"
  : >"$T/$style.p99"
  i=0
  while [ $i -lt "$RUNS" ]; do
    "$BUILD/hostemu" --connect "$HPORT" --script-root "$HAPP" --http GET "$URL" \
      --duration "$SECONDS_PER_RUN" --concurrency 32 --json "$T/$style.json" -q >"$T/out" 2>"$T/err" ||
      die "$style run failed: $(cat "$T/err")"
    [ "$(ra_status "$T/out")" = 200 ] || die "$style: $(head -1 "$T/out")"
    rps=$(json_num "$T/$style.json" invocationsPerSecond)
    p50=$(json_num "$T/$style.json" latencyMs p50)
    p99=$(json_num "$T/$style.json" latencyMs p99)
    cpu=$(json_num "$T/$style.json" emulatorCpuSeconds)
    echo "$style run $((i + 1)): $rps reads/s, p50 $p50 ms, p99 $p99 ms (hostemu cpu $cpu s)"
    echo "$rps" >>"$T/$style.rps"
    echo "$p99" >>"$T/$style.p99"
    i=$((i + 1))
  done
  echo "$style median of $RUNS: $(median <"$T/$style.rps") reads/s, p99 $(median <"$T/$style.p99") ms"
  expect_eq "$style reads failed" "$(ra_metric reads_failed)" 0
  if [ "$style" = forward ] && command -v wrk >/dev/null 2>&1; then
    echo "wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency http://127.0.0.1:$HPORT$URL (raw route)"
    wrk -t2 -c32 -d"${SECONDS_PER_RUN}s" --latency "http://127.0.0.1:$HPORT$URL" |
      grep -E 'Requests/sec|50%|99%|Non-2xx'
  fi
  ra_stop
}

echo "single-record GET $URL, 32 concurrent, ${SECONDS_PER_RUN}s x $RUNS runs, $(nproc) cores"
measure envelope "$ENV_APP"
measure forward "$FWD_APP"

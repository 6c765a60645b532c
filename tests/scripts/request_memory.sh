#!/bin/sh
# request_memory.sh - memory per request (reported, never asserted): peak
# RSS of the handler (VmHWM) for one large batch invocation written to a
# private redis-server, and for several at once, as a multiple of the request
# body (docs/operations.md, "The HTTP front").
#   sh tests/scripts/request_memory.sh [BUILD]
# Settings (environment): MEM_MESSAGES=45, MEM_PAD=980000 (bytes added to
# each message: 45 x ~1 MB messages make a ~59 MB body, under the default
# CDC_MAX_REQUEST_BYTES), MEM_CONCURRENT=3, MEM_BUDGET (CDC_MAX_BUFFERED_BYTES
# for the concurrent run; default: the handler's default).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export ROOT BUILD
. "$ROOT/tests/scripts/lib.sh"
test_init

app=$BUILD/app
[ -x "$app/handler" ] && [ -x "$BUILD/tools/bigbatch" ] || die "run: make BUILD=$BUILD all"
command -v curl >/dev/null 2>&1 || skip "curl not installed (make deps)"
N=${MEM_MESSAGES:-45}
PAD=${MEM_PAD:-980000}
C=${MEM_CONCURRENT:-3}
dir=$(tmpdir)
start_redis "$dir"
"$BUILD/tools/bigbatch" "$ROOT/tests/fixtures/d365/create_account.json" \
  5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1 "$N" "$PAD" >"$dir/batch.json" || die "bigbatch failed"
size=$(wc -c <"$dir/batch.json")

# run LABEL CONCURRENT [VAR=value...]: a fresh handler, CONCURRENT posts of the
# batch at once, then its peak RSS
run() {
  _label=$1
  _c=$2
  shift 2
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  port=$(free_port)
  env FUNCTIONS_CUSTOMHANDLER_PORT="$port" FUNCTIONS_APP_ROOT_PATH="$app" \
    "RedisConnection=127.0.0.1:$REDIS_PORT" CDC_LOG_LEVEL=warn "$@" "$app/handler" \
    >"$dir/out" 2>"$dir/err" &
  pid=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $pid"
  wait_port "$port" 10 || die "the handler did not start: $(tail -3 "$dir/err")"
  idle=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
  posts=
  i=0
  while [ $i -lt "$_c" ]; do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
      --data-binary "@$dir/batch.json" "http://127.0.0.1:$port/Changes" >"$dir/code.$i" &
    posts="$posts $!"
    i=$((i + 1))
  done
  for j in $posts; do wait "$j"; done
  codes=$(cat "$dir"/code.* | sort | uniq -c | tr -s ' \n' ' ')
  rm -f "$dir"/code.*
  peak=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
  stop_pid "$pid"
  echo "$_label: $_c x $size bytes -> answers [$codes], idle ${idle} kB, peak ${peak} kB," \
    "(peak - idle) / body = $(awk -v p="$peak" -v i="$idle" -v s="$size" -v c="$_c" \
      'BEGIN { printf "%.1f", (p - i) * 1024 / s / c }') per request"
}

echo "== memory per request: $N messages, $size bytes of body"
run "one batch" 1
run "concurrent" "$C" ${MEM_BUDGET:+CDC_MAX_BUFFERED_BYTES=$MEM_BUDGET}

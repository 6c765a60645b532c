#!/bin/sh
# server_binary.sh - the real handler binary ($BUILD/handler), driven with curl
# the way the Functions host drives it: listens fast, GET /, 404/405/413,
# an invocation, SIGTERM with requests in flight (they complete, exit 200),
# the drain bound (exit 1), SIGHUP (exit 200), SIGINT (exit 0), bad settings
# and bad function.json (exit 1 with a clear message), port in use (exit 1).
set -u
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$ROOT/tests/scripts/lib.sh"
test_init

command -v curl >/dev/null 2>&1 || skip "curl not installed (run make deps)"
HANDLER=$BUILD/handler
[ -x "$HANDLER" ] || die "$HANDLER is missing: make BUILD=$BUILD handler"

dir=$(tmpdir)
app=$dir/app
mkdir -p "$app/Changes"
cp "$ROOT/host.json" "$app/"
cp "$ROOT/function_app/Changes/function.json" "$app/Changes/"
fixture=$ROOT/tests/fixtures/envelopes/batch_binary.json

failures=0
ms() { date +%s%3N; }
ok() { log "ok: $*"; }
bad() {
  log "FAIL: $*"
  failures=$((failures + 1))
}
expect_eq() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', expected '$2'"; fi; }
expect_contains() {
  case "$1" in
  *"$2"*) ok "$3" ;;
  *) bad "$3: '$2' not found in: $(printf '%s' "$1" | head -c 600)" ;;
  esac
}
expect_file_contains() {
  if grep -qF -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in $1:
$(tail -5 "$1")"; fi
}

# start_handler NAME PORT [VAR=value...]: run the handler in the background
# (CDC_TARGET=none: decode and map only, these tests need no Redis)
# with the app root above; sets H (its pid).
start_handler() {
  _name=$1
  _port=$2
  shift 2
  env FUNCTIONS_CUSTOMHANDLER_PORT="$_port" FUNCTIONS_APP_ROOT_PATH="$app" \
    CDC_MAX_REQUEST_BYTES=65536 CDC_TARGET=none CDC_LOG_LEVEL=debug "$@" "$HANDLER" >"$dir/$_name.out" 2>"$dir/$_name.err" &
  H=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $H"
}

# wait_exit PID SECONDS: wait for a child to exit (SIGKILL after SECONDS);
# sets EXIT_CODE.
wait_exit() {
  (
    sleep "$2"
    kill -9 "$1" 2>/dev/null
  ) &
  _wd=$!
  wait "$1"
  EXIT_CODE=$?
  kill "$_wd" 2>/dev/null
  wait "$_wd" 2>/dev/null
  return 0
}

url() { echo "http://127.0.0.1:$port$1"; }
# status METHOD PATH [curl args...]: print the HTTP status (000 if none);
# the body goes to $dir/body, the headers to $dir/headers
status() {
  _m=$1
  _p=$2
  shift 2
  curl -s -m 20 -X "$_m" -o "$dir/body" -D "$dir/headers" -w '%{http_code}' "$@" "$(url "$_p")"
}

# ---- start, readiness, routing, limits, one invocation -------------------------
port=$(free_port)
t0=$(ms)
start_handler h1 "$port" CDC_TEST_HOOKS=1 CDC_SHUTDOWN_GRACE_MS=5000
wait_port "$port" 5 || die "the handler did not listen within 5 s: $(cat "$dir/h1.err")"
t1=$(ms)
log "listening $((t1 - t0)) ms after exec"
[ $((t1 - t0)) -lt 3000 ] && ok "listens fast" || bad "listening took $((t1 - t0)) ms"

expect_eq "$(status GET /)" 200 "GET / is 200"
expect_eq "$(cat "$dir/body")" '{"status":"ready"}' "GET / body"
expect_file_contains "$dir/headers" "Content-Type: application/json" "GET / is JSON"
expect_eq "$(status HEAD / -I)" 200 "HEAD / is 200"
expect_eq "$(status POST /Nope -d '{}')" 404 "unknown function is 404"
expect_contains "$(cat "$dir/body")" '"error":"not_found"' "404 body is a JSON error"
expect_eq "$(status GET /Changes)" 405 "GET on a function is 405"
expect_file_contains "$dir/headers" "Allow: POST" "405 carries Allow"

head -c 70000 /dev/zero | tr '\0' 'x' >"$dir/big"
expect_eq "$(status POST /Changes -H 'Expect:' --data-binary @"$dir/big")" 413 \
  "Content-Length past CDC_MAX_REQUEST_BYTES is 413"
expect_eq "$(status POST /Changes -H 'Expect:' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$dir/big")" 413 "chunked body past CDC_MAX_REQUEST_BYTES is 413"
expect_contains "$(cat "$dir/body")" '"error":"payload_too_large"' "413 body is a JSON error"

expect_eq "$(status POST /Changes -H 'X-Azure-Functions-InvocationId: e2e-inv-1' \
  -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$fixture")" 200 "a batch invocation is 200"
expect_contains "$(cat "$dir/body")" '"Logs":["messages=3 applied=0 stale=0 skipped=0 poison=0' \
  "the response summarises the messages"
expect_eq "$(status POST /Changes -H 'X-Azure-Functions-InvocationId: e2e-inv-2' -d 'nope')" 400 \
  "a malformed envelope is 400"
expect_contains "$(cat "$dir/body")" 'envelope: JSON syntax error at line 1, column 1' \
  "the 400 says what was wrong"
expect_file_contains "$dir/h1.err" '"inv":"e2e-inv-2","fn":"Changes","msg":"invocation failed: HTTP 400' \
  "the failure is on stderr with the invocation id"
expect_file_contains "$dir/h1.out" '"inv":"e2e-inv-1","fn":"Changes","msg":"messages=3 applied=0' \
  "stdout log lines carry the invocation id"
expect_file_contains "$dir/h1.out" '"msg":"function Changes: serviceBusTrigger' "start-up lists the functions"
expect_file_contains "$dir/h1.out" 'RedisConnection=<set>' "start-up logs the settings, secrets redacted"

# ---- SIGTERM with requests in flight: they complete, exit 200 --------------------
for i in 1 2 3; do
  curl -s -m 20 -o /dev/null -w '%{http_code}' -X POST "$(url '/__sleep?ms=1500')" >"$dir/sleep$i" &
  eval "c$i=\$!"
done
sleep 0.4
t0=$(ms)
kill -TERM "$H"
sleep 0.2
curl -s -m 2 -o /dev/null "$(url /)"
expect_eq "$?" 7 "new connections are refused while draining"
wait_exit "$H" 10
t1=$(ms)
expect_eq "$EXIT_CODE" 200 "SIGTERM after a clean drain exits 200 (the host starts it again)"
# shellcheck disable=SC2154
wait "$c1" "$c2" "$c3"
for i in 1 2 3; do
  expect_eq "$(cat "$dir/sleep$i")" 200 "in-flight request $i completed"
done
log "drain took $((t1 - t0)) ms"
[ $((t1 - t0)) -ge 700 ] && ok "the drain waited for the requests" ||
  bad "exited $((t1 - t0)) ms after SIGTERM, before the requests could finish"
[ $((t1 - t0)) -lt 5000 ] && ok "the drain ended when they finished" || bad "drain took $((t1 - t0)) ms"
expect_file_contains "$dir/h1.out" '"msg":"stopped; exiting 200"' "shutdown is logged"

# ---- the drain bound: a request longer than the grace period ---------------------
port=$(free_port)
start_handler h2 "$port" CDC_TEST_HOOKS=1 CDC_SHUTDOWN_GRACE_MS=300
wait_port "$port" 5 || die "h2 did not listen"
curl -s -m 20 -o /dev/null -w '%{http_code}' -X POST "$(url '/__sleep?ms=5000')" >"$dir/sleep-long" &
cl=$!
sleep 0.3
t0=$(ms)
kill -TERM "$H"
wait_exit "$H" 10
t1=$(ms)
expect_eq "$EXIT_CODE" 1 "a drain that outlives CDC_SHUTDOWN_GRACE_MS exits 1"
[ $((t1 - t0)) -lt 2000 ] && ok "the grace period bounds the shutdown ($((t1 - t0)) ms)" ||
  bad "shutdown took $((t1 - t0)) ms with a 300 ms grace"
expect_file_contains "$dir/h2.err" "1 request(s) still running after the 300 ms grace period" \
  "the overrun is logged"
wait "$cl"

# ---- SIGHUP: clean restart, exit 200; SIGINT: exit 0 -------------------------------
port=$(free_port)
start_handler h3 "$port"
wait_port "$port" 5 || die "h3 did not listen"
kill -HUP "$H"
wait_exit "$H" 10
expect_eq "$EXIT_CODE" 200 "SIGHUP exits 200 (intentional restart)"
port=$(free_port)
start_handler h4 "$port"
wait_port "$port" 5 || die "h4 did not listen"
kill -INT "$H"
wait_exit "$H" 10
expect_eq "$EXIT_CODE" 0 "SIGINT exits 0"

# ---- fatal start-up errors exit 1 with a clear message -----------------------------
port=$(free_port)
start_handler h5 "$port" CDC_MAX_CONNECTIONS=abc
wait_exit "$H" 10
expect_eq "$EXIT_CODE" 1 "a bad setting exits 1"
expect_file_contains "$dir/h5.err" "setting CDC_MAX_CONNECTIONS: 'abc' is not a whole number" \
  "the bad setting is named"

mkdir -p "$dir/badapp/Broken"
printf '{"bindings": [\n  {"type": "serviceBusTrigger",}\n]}\n' >"$dir/badapp/Broken/function.json"
env FUNCTIONS_CUSTOMHANDLER_PORT="$port" FUNCTIONS_APP_ROOT_PATH="$dir/badapp" "$HANDLER" \
  >"$dir/h6.out" 2>"$dir/h6.err" &
H=$!
wait_exit "$H" 10
expect_eq "$EXIT_CODE" 1 "a bad function.json exits 1"
expect_file_contains "$dir/h6.err" "$dir/badapp/Broken/function.json: invalid JSON at line 2" \
  "the bad file and position are named"

port=$(free_port)
start_handler h7 "$port"
first=$H
wait_port "$port" 5 || die "h7 did not listen"
start_handler h8 "$port"
wait_exit "$H" 10
expect_eq "$EXIT_CODE" 1 "port in use exits 1"
expect_file_contains "$dir/h8.err" "bind 127.0.0.1:$port: Address already in use" "the port clash is named"
kill -TERM "$first"
wait_exit "$first" 10
expect_eq "$EXIT_CODE" 200 "the first handler is unaffected and stops cleanly (SIGTERM: 200)"

# a sanitizer build reports through stderr (and a non-zero exit, checked above)
if grep -l "Sanitizer" "$dir"/h*.err >/dev/null 2>&1; then
  bad "sanitizer report in $(grep -l "Sanitizer" "$dir"/h*.err | tr '\n' ' ')"
fi

if [ "$failures" -ne 0 ]; then
  log "$failures check(s) failed; handler logs:"
  tail -n 5 "$dir"/h*.err >&2
  exit 1
fi
log "all checks passed"

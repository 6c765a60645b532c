# readapi_lib.sh - helpers for the read API's end-to-end tests (POSIX sh).
# Source after lib.sh and test_init. Needs BUILD and ROOT; sets T (a
# temporary directory) on ra_init.
#
# The tests run the real handler from a copy of $BUILD/app whose host.json
# picks the call style, write data by delivering fixtures through the
# pipeline with hostemu, and read with `hostemu --connect PORT --http ...`,
# which speaks to the handler as the Functions host does in that style.

ra_init() {
  [ -x "$BUILD/app/handler" ] || die "build $BUILD/app first (make BUILD=$BUILD all)"
  [ -x "$BUILD/hostemu" ] || die "build $BUILD/hostemu first (make BUILD=$BUILD tools)"
  T=$(tmpdir)
  FIX=$ROOT/tests/fixtures/d365
  ACC=5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1   # create_account.json
  ACC_VER=001731053107412000000000000000000000781319089
  SETSTATE=7a6b5c4d-747b-ef11-ac21-6045bdd4c6be # setstate.json (statecode only)
  DELETED=01b5eeb5-455e-ee11-be6f-000d3a1aaa29  # delete_account.json
  ASSOC=3c8e1f20-6a7b-ef11-ac21-6045bdd4c6be    # associate.json (no record)
  LEAD1=a1d2e3f4-6a7b-ef11-ac21-6045bdd4c6be
  LEAD2=b2e3f4a5-6a7b-ef11-ac21-6045bdd4c6be
  ABSENT=00000000-1111-2222-3333-444444444444
  API=/api/data/v9.2
}

# ra_app NAME true|false: a script root in $T/NAME with
# enableForwardingHttpRequest set as given; prints its path.
ra_app() {
  _d=$T/$1
  rm -rf "$_d" && mkdir -p "$_d" && cp -R "$BUILD/app/." "$_d/" || die "cannot copy $BUILD/app"
  sed -E 's/("enableForwardingHttpRequest"[[:space:]]*:[[:space:]]*)(true|false)/\1'"$2"'/' \
    "$BUILD/app/host.json" >"$_d/host.json"
  grep -q "\"enableForwardingHttpRequest\": *$2" "$_d/host.json" ||
    die "host.json has no enableForwardingHttpRequest to set"
  echo "$_d"
}

# ra_deliver APPDIR FILE...: deliver message bodies through the pipeline
# (a handler launched by hostemu, stopped at the end); fails unless every
# message settled.
ra_deliver() {
  _app=$1
  shift
  _args=
  for _f in "$@"; do _args="$_args --messages $_f"; done
  # shellcheck disable=SC2086
  "$BUILD/hostemu" --script-root "$_app" --env "RedisConnection=$RCONN" --env CDC_LOG_LEVEL=warn \
    $_args --stop -q >>"$T/deliver.log" 2>&1 || die "delivery failed: $(tail -20 "$T/deliver.log")"
}

# ra_start APPDIR [NAME=VALUE...]: start the handler from APPDIR on a free
# port, as the host would (FUNCTIONS_CUSTOMHANDLER_PORT, working directory =
# the app root); sets HPORT, HPID and HAPP. RCONN is the RedisConnection.
ra_start() {
  HAPP=$1
  shift
  HPORT=$(free_port)
  (cd "$HAPP" && exec env FUNCTIONS_CUSTOMHANDLER_PORT="$HPORT" FUNCTIONS_APP_ROOT_PATH="$HAPP" \
    "RedisConnection=$RCONN" CDC_LOG_LEVEL=warn "$@" ./handler) >>"$T/handler.log" 2>&1 &
  HPID=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $HPID"
  wait_port "$HPORT" 20 || die "the handler did not start: $(tail -5 "$T/handler.log")"
}

ra_stop() {
  stop_pid "$HPID"
}

# ra_get OUT PATH [hostemu options...]: one GET through the host emulator
# in the app's call style; the client's response (status line, headers,
# body, CRLF) goes to OUT.
ra_get() {
  _out=$1
  _path=$2
  shift 2
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$HAPP" --timeout-ms 30000 \
    --http GET "$_path" "$@" >"$_out" 2>"$_out.err" ||
    die "hostemu GET $_path failed: $(cat "$_out.err")"
}

ra_status() { head -1 "$1" | cut -d' ' -f2; }
# ra_header FILE NAME: the value of a response header (case-insensitive)
ra_header() {
  sed -n '2,/^\r$/p' "$1" | tr -d '\r' | grep -i "^$2:" | head -1 | sed 's/^[^:]*: *//'
}
ra_body() { sed '1,/^\r$/d' "$1"; }

expect_eq() {
  [ "$2" = "$3" ] || die "$1: got '$2', expected '$3'"
}
expect_has() {
  case "$2" in *"$3"*) ;; *) die "$1: '$2' does not contain '$3'" ;; esac
}
expect_not() {
  case "$2" in *"$3"*) die "$1: '$2' contains '$3'" ;; esac
}

# ra_expect LABEL OUT STATUS [BODY]: check the status and, when given, the
# exact body.
ra_expect() {
  expect_eq "$1: status" "$(ra_status "$2")" "$3"
  if [ $# -ge 4 ]; then
    expect_eq "$1: body" "$(ra_body "$2")" "$4"
  fi
}

# ra_metric NAME: a counter from the JSON metrics of the running handler
ra_metric() {
  ra_get "$T/metrics.out" /api/cdc/metrics
  ra_body "$T/metrics.out" | tr ',{}' '\n\n\n' | grep "^\"$1\":" | cut -d: -f2
}

# ra_sanitizers: fail when a handler (built with SAN=1) reported a memory
# error, a leak or undefined behaviour in its output.
ra_sanitizers() {
  if cat "$T/handler.log" "$T/deliver.log" 2>/dev/null |
    grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)" >&2; then
    die "sanitizer report in the handler's output ($T/handler.log)"
  fi
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

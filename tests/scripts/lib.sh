# lib.sh - shell helpers for the end-to-end tests and scripts (POSIX sh).
# Source it: . "$ROOT/tests/scripts/lib.sh"
#
# Servers are private: each runs on a free port with its files in a fresh
# temporary directory, and is stopped by cleanup_all (called from an EXIT
# trap set by test_init).

: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILD:=$ROOT/build}"
CLEANUP_PIDS=""
CLEANUP_DIRS=""
CLEANUP_CMDS=""

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
skip() { echo "skipped: $*"; exit 77; }

# free_port: print a TCP port nobody listens on (the kernel picks it).
free_port() {
  "$BUILD/tools/freeport" 2>/dev/null && return 0
  # fallback: random high port not in /proc/net/tcp
  while :; do
    p=$(( ( $(od -An -N2 -tu2 /dev/urandom) % 20000 ) + 30000 ))
    hex=$(printf '%04X' "$p")
    grep -q ":$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return 0; }
  done
}

# wait_port PORT [SECONDS]: wait until something accepts on 127.0.0.1:PORT.
wait_port() {
  "$BUILD/tools/freeport" --wait "$1" "${2:-10}"
}

tmpdir() {
  _d=$(mktemp -d "${TMPDIR:-/tmp}/d365cdc.XXXXXX")
  CLEANUP_DIRS="$CLEANUP_DIRS $_d"
  echo "$_d"
}

on_exit() { CLEANUP_CMDS="$CLEANUP_CMDS
$*"; }

cleanup_all() {
  _rc=$?
  if [ -n "$CLEANUP_CMDS" ]; then
    printf '%s\n' "$CLEANUP_CMDS" | while IFS= read -r c; do [ -n "$c" ] && eval "$c" >/dev/null 2>&1; done
  fi
  for p in $CLEANUP_PIDS; do kill "$p" 2>/dev/null; done
  for p in $CLEANUP_PIDS; do
    _i=0
    while kill -0 "$p" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
    kill -9 "$p" 2>/dev/null
  done
  if [ -z "${KEEP_TMP:-}" ]; then
    for d in $CLEANUP_DIRS; do rm -rf "$d"; done
  else
    log "kept: $CLEANUP_DIRS"
  fi
  exit $_rc
}

test_init() {
  trap cleanup_all EXIT
  trap 'exit 130' INT TERM
}

# start_redis DIR [extra redis-server args...]: start a private redis-server
# in DIR on a free port; sets REDIS_PORT and REDIS_PID.
start_redis() {
  _dir=$1
  shift
  command -v redis-server >/dev/null 2>&1 || skip "redis-server not installed (run make deps)"
  REDIS_PORT=${REDIS_PORT_WANTED:-$(free_port)}
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$_dir" --save '' --appendonly no \
    --daemonize no --logfile "$_dir/redis.log" --pidfile "$_dir/redis.pid" "$@" &
  REDIS_PID=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $REDIS_PID"
  _i=0
  until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    _i=$((_i + 1))
    if [ $_i -gt 100 ] || ! kill -0 "$REDIS_PID" 2>/dev/null; then
      cat "$_dir/redis.log" >&2
      die "redis-server did not start on port $REDIS_PORT"
    fi
    sleep 0.05
  done
  export REDIS_PORT REDIS_PID
}

stop_pid() {
  kill "$1" 2>/dev/null
  _i=0
  while kill -0 "$1" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

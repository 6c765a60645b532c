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

# tmpdir: make a temporary directory, print its path, and remove it at exit.
# Usually called as d=$(tmpdir), i.e. in a subshell, so the path is also
# written to a list file that outlives the subshell.
tmpdir() {
  _d=$(mktemp -d "${TMPDIR:-/tmp}/d365cdc.XXXXXX")
  CLEANUP_DIRS="$CLEANUP_DIRS $_d"
  [ -n "${CLEANUP_LIST:-}" ] && echo "$_d" >>"$CLEANUP_LIST"
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
  if [ -n "${CLEANUP_LIST:-}" ] && [ -f "$CLEANUP_LIST" ]; then
    CLEANUP_DIRS="$CLEANUP_DIRS $(cat "$CLEANUP_LIST")"
    rm -f "$CLEANUP_LIST"
  fi
  if [ -z "${KEEP_TMP:-}" ]; then
    for d in $CLEANUP_DIRS; do rm -rf "$d"; done
  else
    log "kept: $CLEANUP_DIRS"
  fi
  exit $_rc
}

test_init() {
  CLEANUP_LIST=$(mktemp "${TMPDIR:-/tmp}/d365cdc-cleanup.XXXXXX")
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

# redis_at_least MAJOR MINOR: the installed redis-server is that version or
# later (Debian 11 has 6.0: no CLIENT PAUSE WRITE, no ACL channel rules).
redis_at_least() {
  _v=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  [ -n "$_v" ] || return 1
  set -- "$1" "$2" $_v
  [ "$3" -gt "$1" ] || { [ "$3" -eq "$1" ] && [ "$4" -ge "$2" ]; }
}

stop_pid() {
  kill "$1" 2>/dev/null
  _i=0
  while kill -0 "$1" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

# start_postgres DIR: start a private PostgreSQL (15 on Debian 12, 13 on 11) whose data directory and
# unix socket live in DIR, on a free port (no TCP listener). PostgreSQL refuses
# to run as root, so when we are root the server runs as the `postgres` user
# and DIR is handed to it. Authentication is `trust` on the socket only.
# Sets PG_BIN, PG_SOCKDIR, PG_PORT, PG_DATA and PG_ODBC (an ODBC connection
# string for psqlODBC by driver path: no odbcinst.ini needed). The server is
# stopped by cleanup_all (pg_ctl stop -m immediate).
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -1)}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PSQLODBC_DRIVER=${PSQLODBC_DRIVER:-/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so}
pg_run() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
start_postgres() {
  _pgdir=$1
  [ -x "$PG_BIN/initdb" ] || skip "PostgreSQL not installed (run make deps)"
  [ -f "$PSQLODBC_DRIVER" ] || skip "psqlODBC not installed (run make deps)"
  PG_DATA=$_pgdir/data
  PG_SOCKDIR=$_pgdir
  PG_PORT=${PG_PORT_WANTED:-$(free_port)}
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || skip "no postgres user to run PostgreSQL as"
    chown postgres "$_pgdir"
    chmod 0755 "$_pgdir"
  fi
  pg_run "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    --no-sync >"$_pgdir/initdb.log" 2>&1 || { cat "$_pgdir/initdb.log" >&2; die "initdb failed"; }
  cat >>"$PG_DATA/postgresql.conf" <<PGCONF
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PG_SOCKDIR'
fsync = off
full_page_writes = off
max_connections = 50
shared_buffers = 64MB
PGCONF
  on_exit "pg_run '$PG_BIN/pg_ctl' -D '$PG_DATA' -m immediate -w -t 20 stop"
  pg_postgres_start
  PG_ODBC="Driver=$PSQLODBC_DRIVER;Servername=$PG_SOCKDIR;Port=$PG_PORT;Database=postgres;Username=postgres;"
  export PG_BIN PG_SOCKDIR PG_PORT PG_DATA PG_ODBC
}
# pg_postgres_start / pg_postgres_stop [mode]: (re)start or stop the server
# started by start_postgres (for restart tests).
pg_postgres_start() {
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_SOCKDIR/postgres.log" -w -t 30 start >/dev/null ||
    { cat "$PG_SOCKDIR/postgres.log" >&2; die "PostgreSQL did not start on port $PG_PORT"; }
}
pg_postgres_stop() {
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "${1:-fast}" -w -t 30 stop >/dev/null
}
# pg_psql SQL: run SQL with psql on the private server, unaligned output.
pg_psql() {
  psql -h "$PG_SOCKDIR" -p "$PG_PORT" -U postgres -d postgres -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

#!/bin/sh
# run.sh - `make run`: the handler on a local Redis, waiting for invocations.
#
#   sh tests/scripts/run.sh [BUILD_DIR]
#
# Starts the handler from BUILD_DIR/app the way the Functions host does (the
# app root as working directory, FUNCTIONS_CUSTOMHANDLER_PORT and
# FUNCTIONS_APP_ROOT_PATH set, the app settings as environment), with a
# private redis-server on a free port unless RedisConnection is set, prints
# the commands that send it messages and read what it wrote, and waits.
# Ctrl-C (or SIGTERM) stops the handler and the Redis it started.
#
# Environment: RedisConnection (use that Redis instead of a private one),
# FUNCTIONS_CUSTOMHANDLER_PORT (listen there instead of on a free port), and
# any other app setting (CDC_LOG_LEVEL=debug, CDC_TARGET=..., see
# docs/configuration.md). Like the host, the handler is restarted when it
# exits 200 (an intentional restart); any other exit ends the run.
set -u
BUILD=${1:-${BUILD:-build}}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
. "$ROOT/tests/scripts/lib.sh"
test_init
APP=$BUILD/app
HOSTEMU=$BUILD/hostemu

for f in "$APP/handler" "$APP/host.json" "$HOSTEMU"; do
  [ -e "$f" ] || die "$f is missing: run 'make run' (or 'make BUILD=$BUILD all') first"
done
dir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $dir"

if [ -n "${RedisConnection:-}" ]; then
  redis_note="RedisConnection from the environment"
  redis_cli="redis-cli   # with the host/port/password of your RedisConnection"
else
  command -v redis-server >/dev/null 2>&1 ||
    die "redis-server is not installed: run 'make deps' as root, or set RedisConnection"
  start_redis "$dir" >"$dir/redis.out" 2>&1
  RedisConnection=127.0.0.1:$REDIS_PORT
  redis_note="private redis-server on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID, data discarded at exit)"
  redis_cli="redis-cli -p $REDIS_PORT"
fi
export RedisConnection
port=${FUNCTIONS_CUSTOMHANDLER_PORT:-$(free_port)}
app_abs=$(cd "$APP" && pwd)
HPID=""
stopping=""

start_handler() {
  # as the host launches it: cwd = app root, the port variables, the app root
  (cd "$app_abs" && FUNCTIONS_CUSTOMHANDLER_PORT=$port FUNCTIONS_HTTPWORKER_PORT=$port \
    FUNCTIONS_APP_ROOT_PATH=$app_abs exec ./handler) &
  HPID=$!
}

stop_all() {
  stopping=1
  if [ -n "$HPID" ] && kill -0 "$HPID" 2>/dev/null; then
    log "stopping the handler (pid $HPID)"
    kill -TERM "$HPID" 2>/dev/null
    wait "$HPID" 2>/dev/null
  fi
  [ -n "${REDIS_PID:-}" ] && log "stopping redis-server (pid $REDIS_PID)"
  exit 0 # cleanup_all (EXIT trap) stops Redis and removes the temporary directory
}
trap stop_all INT TERM HUP

start_handler
# the host's readiness wait: until something answers on the port (or the
# handler exits: a bad setting or a port in use is reported on its stderr)
i=0
until "$BUILD/tools/freeport" --wait "$port" 1 2>/dev/null; do
  kill -0 "$HPID" 2>/dev/null || { wait "$HPID"; die "the handler exited $? before it listened (its messages are above)"; }
  i=$((i + 1))
  [ $i -lt 30 ] || die "the handler did not listen on 127.0.0.1:$port within 30 s"
done
sleep 0.1 # let its start-up lines come out before the banner

cat <<EOF

================================================================================
 d365-cdc-handler is running: http://127.0.0.1:$port (pid $HPID), app root $APP
 Redis: $redis_note
 Functions: $(cd "$APP" && ls -d */ | tr -d / | tr '\n' ' ')

 Send Service Bus messages (files or folders of D365 message bodies; a
 <file>.props.json sidecar sets MessageId, ContentType, properties):
   $HOSTEMU --connect $port --script-root $APP --messages tests/fixtures/demo/messages
   $HOSTEMU --connect $port --script-root $APP --messages tests/fixtures/d365/create_account.json

 Read through the API (as an app calls GET /api/data/v9.2/...):
   $HOSTEMU --connect $port --script-root $APP --http GET '/api/data/v9.2/accounts(5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1)?\$select=name,revenue'
   $HOSTEMU --connect $port --script-root $APP --http GET '/api/cdc/metrics'
   $redis_cli XRANGE d365:poison - +

 Ctrl-C stops the handler$( [ -n "${REDIS_PID:-}" ] && printf ' and Redis'). The handler's log follows (JSON lines).
================================================================================

EOF

# Like the host: restart after exit 200, stop on anything else.
while :; do
  wait "$HPID"
  code=$?
  [ -n "$stopping" ] && break
  if [ "$code" = 200 ]; then
    log "the handler exited 200 (restart requested): restarting it, as the host does"
    start_handler
    continue
  fi
  log "the handler exited $code; stopping"
  exit "$code"
done

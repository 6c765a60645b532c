#!/bin/sh
# entra_measure.sh - what Microsoft Entra ID costs: the same write load and
# read load through hostemu against one TLS redis-server, once with an ACL
# password (RedisConnection=...,user=,password=) and once with tokens from
# build/tools/tokensvc that live LIFETIME seconds (rotating every
# LIFETIME/2 s). Prints hostemu's summaries and the token/AUTH counters.
# Not part of make check (figures, not assertions):
#   sh tests/scripts/entra_measure.sh [build] [messages] [lifetime]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
N=${2:-20000}
LIFETIME=${3:-5}
export ROOT BUILD
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
PRINCIPAL=6c1f5e52-3b1d-4f4e-9d0a-2f7e8a9b0c1d
IHDR=ih-measure
cd "$T" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=d365cdc test CA" >/dev/null 2>&1 || die "openssl"
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" \
  >/dev/null 2>&1 || die "openssl"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
  -extfile san.ext >/dev/null 2>&1 || die "openssl"
cd "$ROOT" || exit 1
TLS_PORT=$(free_port)
start_redis "$T" --tls-port "$TLS_PORT" --tls-cert-file "$T/server.pem" \
  --tls-key-file "$T/server.key" --tls-ca-cert-file "$T/ca.pem" --tls-auth-clients no
wait_port "$TLS_PORT" 10 || die "no TLS port"
redis-cli -p "$REDIS_PORT" ACL SETUSER pwuser on '>pw-measure' '~*' '&*' '+@all' >/dev/null
"$BUILD/tools/tokensvc" --port 0 --identity-header "$IHDR" --lifetime "$LIFETIME" \
  --redis "$REDIS_PORT" --redis-user "$PRINCIPAL" >"$T/ts.port" 2>"$T/ts.err" &
CLEANUP_PIDS="$CLEANUP_PIDS $!"
sleep 0.5
TS=$(cat "$T/ts.port")
APP=$(ra_app app "$(grep -q '"enableForwardingHttpRequest": *true' "$BUILD/app/host.json" &&
  echo true || echo false)")

run() { # LABEL env...
  _label=$1
  shift
  ra_start "$APP" "$@"
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --messages "$FIX/create_account.json" \
    --batch 1 >/dev/null 2>&1 || die "$_label: first delivery failed"
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --messages "$FIX/create_account.json" \
    --vary --batch 1 --repeat "$N" --concurrency 8 >"$T/w.out" 2>&1 || die "$_label: writes failed"
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" \
    --http GET "$API/accounts($ACC)?\$select=name" --repeat "$N" --concurrency 8 \
    >"$T/r.out" 2>"$T/r.err" || die "$_label: reads failed"
  echo "== $_label"
  grep -E 'messages|throughput|latency' "$T/w.out" | sed 's/^/  writes /'
  grep -E 'throughput|latency' "$T/r.err" | sed 's/^/  reads  /'
  echo "  metrics: $(ra_metric invocations_failed | sed 's/^/invocations_failed=/') $(ra_metric reads_failed | sed 's/^/reads_failed=/') token_fetches=$(ra_metric token_fetches) redis_token_auths=$(ra_metric redis_token_auths) redis_reauths=$(ra_metric redis_reauths)"
  ra_stop
}
RCONN="localhost:$TLS_PORT,ssl=True,user=pwuser,password=pw-measure"
run "TLS + ACL password" "CDC_REDIS_CA_FILE=$T/ca.pem"
RCONN=127.0.0.1:1
run "TLS + Entra ID tokens (lifetime ${LIFETIME}s)" "CDC_REDIS_CA_FILE=$T/ca.pem" \
  "RedisConnection__redisHostName=localhost:$TLS_PORT" "RedisConnection__principalId=$PRINCIPAL" \
  "IDENTITY_ENDPOINT=http://127.0.0.1:$TS/msi/token" "IDENTITY_HEADER=$IHDR"
echo "token service: $(curl -s "http://127.0.0.1:$TS/_stats")"

#!/bin/sh
# redis_entra.sh - the handler against an Entra-only Redis: no password
# setting at all, TLS, and an ACL user (the identity's principal id) whose
# passwords are exactly the tokens build/tools/tokensvc has issued and not
# yet expired (tokens live a few seconds, so they rotate every ~2.5 s).
# The handler gets its tokens from the managed identity endpoint
# (IDENTITY_ENDPOINT/IDENTITY_HEADER) of tokensvc.
#   1. a write load (Service Bus messages through hostemu, each a new
#      record) and a read load (GETs through hostemu) side by side for
#      LOAD_SECONDS, through at least 3 token rotations, with the token
#      service failing once (HTTP 500), answering garbage once, and all
#      live tokens revoked in Redis with the handler's connections killed
#      (so reconnects meet a refused token): every message settled on its
#      first delivery (none failed, redelivered or dead-lettered), every
#      record written, every read answered 200;
#   2. the token service failing for 3 s while no token is valid (all
#      revoked, connections killed): writes retry inside their budget and
#      all succeed on their first delivery;
#   3. the figures: token requests, AUTHs and re-AUTHs, refused AUTHs,
#      latency (hostemu's summaries), logged for the note;
#   4. no token or secret in the handler's log.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
. "$ROOT/tests/scripts/readapi_lib.sh"
ra_init
S="$BUILD/tools/tokensvc"
[ -x "$S" ] || die "build $S first (make BUILD=$BUILD tools)"
command -v openssl >/dev/null 2>&1 || skip "openssl not installed"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
LOAD_SECONDS=${LOAD_SECONDS:-16}
LIFETIME=5
PRINCIPAL=6c1f5e52-3b1d-4f4e-9d0a-2f7e8a9b0c1d
IHDR=ih-5b0e77d2
ADMINPW=admin-$$

# a CA and a certificate for localhost (Azure Redis is TLS only)
cd "$T" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=d365cdc test CA" >/dev/null 2>&1 || die "openssl: CA"
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" \
  >/dev/null 2>&1 || die "openssl: server key"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
  -extfile san.ext >/dev/null 2>&1 || die "openssl: server certificate"
cd "$ROOT" || exit 1
TLS_PORT=$(free_port)
start_redis "$T" --tls-port "$TLS_PORT" --tls-cert-file "$T/server.pem" \
  --tls-key-file "$T/server.key" --tls-ca-cert-file "$T/ca.pem" --tls-auth-clients no
wait_port "$TLS_PORT" 10 || die "TLS port $TLS_PORT not listening"
# Entra only: the default user is off; an admin for the test and tokensvc
chan='&*' # channel rules: Redis 6.2 (6.0 allows every channel)
redis_at_least 6 2 || chan='+@all'
redis-cli -p "$REDIS_PORT" ACL SETUSER admin on ">$ADMINPW" '~*' "$chan" '+@all' >/dev/null || die "ACL"
redis-cli -p "$REDIS_PORT" --user admin --pass "$ADMINPW" --no-auth-warning ACL SETUSER default off \
  >/dev/null || die "ACL default off"
rc() { redis-cli -p "$REDIS_PORT" --user admin --pass "$ADMINPW" --no-auth-warning "$@"; }
"$S" --port 0 --identity-header "$IHDR" --lifetime $LIFETIME --redis "$REDIS_PORT" \
  --redis-user "$PRINCIPAL" --redis-admin admin --redis-pass "$ADMINPW" >"$T/ts.port" 2>"$T/ts.err" &
CLEANUP_PIDS="$CLEANUP_PIDS $!"
i=0
until [ -s "$T/ts.port" ]; do
  i=$((i + 1)); [ $i -lt 100 ] || die "tokensvc did not start: $(cat "$T/ts.err")"
  sleep 0.05
done
TS=$(cat "$T/ts.port")
TSURL=http://127.0.0.1:$TS
log "redis TLS $TLS_PORT (plain $REDIS_PORT for the test), token service $TS, tokens live ${LIFETIME}s"
tstat() { curl -s "$TSURL/_stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
cmdstat() { rc INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\).*/\1/p"; }
accounts() { rc --scan --pattern 'd365:{account:*}' | grep -vc ':rel:'; }

RCONN=127.0.0.1:1 # RedisConnection: must not be used
APP=$(ra_app app "$(grep -q '"enableForwardingHttpRequest": *true' "$BUILD/app/host.json" &&
  echo true || echo false)")
ra_start "$APP" CDC_LOG_LEVEL=info "RedisConnection__redisHostName=localhost:$TLS_PORT" \
  "RedisConnection__principalId=$PRINCIPAL" "CDC_REDIS_CA_FILE=$T/ca.pem" \
  "IDENTITY_ENDPOINT=$TSURL/msi/token" "IDENTITY_HEADER=$IHDR" CDC_REDIS_POOL=8 \
  CDC_READ_CONNECTIONS=2
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --messages "$FIX/create_account.json" \
  --batch 1 >"$T/first.out" 2>&1 || die "first delivery failed: $(cat "$T/first.out" "$T/handler.log")"
ra_get "$T/first_read.out" "$API/accounts($ACC)?\$select=name"
ra_expect "first read" "$T/first_read.out" 200
issued0=$(tstat issued)
auth0=$(cmdstat auth)

log "1. writes and reads for ${LOAD_SECONDS}s while tokens rotate"
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --messages "$FIX/create_account.json" \
  --vary --batch 1 --duration "$LOAD_SECONDS" --concurrency 6 --rate 400 \
  >"$T/w.out" 2>"$T/w.err" &
wpid=$!
reads() { # NAME SECONDS
  "$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" \
    --http GET "$API/accounts($ACC)?\$select=name" --duration "$2" --concurrency 3 \
    --rate 300 >"$T/$1.out" 2>"$T/$1.err"
}
reads r1 $((LOAD_SECONDS - 6)) &
rpid=$!
sleep 3
log "  token service: one HTTP 500, then one garbage answer"
curl -s -X POST "$TSURL/_control?mode=fail&count=1" >/dev/null
sleep 3
curl -s -X POST "$TSURL/_control?mode=garbage&count=1" >/dev/null
wait $rpid || die "read load failed: $(tail -5 "$T/r1.out" "$T/r1.err")"
# (a kill would fail a read in flight: the read API answers 503 rather than
# retry, as for any connection Redis drops, so none is in flight now)
log "  every live token revoked in Redis, the handler's connections killed"
# the next token requests wait 300 ms: a renewal that happens to start now
# cannot hand the reconnecting connections a fresh token before they try
# the revoked one (the case this step is about; seen under ASan)
curl -s -X POST "$TSURL/_control?mode=delay&ms=300&count=3" >/dev/null
curl -s -X POST "$TSURL/_revoke" >/dev/null
rc CLIENT KILL USER "$PRINCIPAL" >/dev/null
reads r2 4 || die "read load failed: $(tail -5 "$T/r2.out" "$T/r2.err")"
wait $wpid || die "write load failed: $(tail -5 "$T/w.out" "$T/w.err")"
grep -E 'invocations|throughput|latency' "$T/w.out" "$T/w.err" | sed 's/^/  writes: /' >&2
grep -E 'invocations|throughput|latency' "$T/r1.err" "$T/r2.err" | sed 's/^/  reads:  /' >&2
gen=$(sed -n 's/^ *messages *\([0-9]*\) generated, \([0-9]*\) deliveries, \([0-9]*\) succeeded, \([0-9]*\) retried, \([0-9]*\) dead-lettered, \([0-9]*\) unsettled.*/\1 \2 \3 \4 \5 \6/p' "$T/w.out")
# shellcheck disable=SC2086
set -- $gen
[ $# = 6 ] && [ "$1" -gt 0 ] || die "no write summary: $(cat "$T/w.out")"
expect_eq "deliveries/succeeded/retried/dead-lettered/unsettled" "$2/$3/$4/$5/$6" "$1/$1/0/0/0"
expect_eq "records written" "$(accounts)" $(($1 + 1))
ra_expect "a read during the rotations" "$T/r1.out" 200
ra_expect "a read after the revocation" "$T/r2.out" 200
expect_eq "invocations failed" "$(ra_metric invocations_failed)" 0
expect_eq "reads failed" "$(ra_metric reads_failed)" 0
issued=$(($(tstat issued) - issued0))
[ "$issued" -ge 3 ] || die "only $issued token(s) issued during the load: fewer than 3 rotations"
reauths=$(ra_metric redis_reauths)
[ "$reauths" -gt 0 ] || die "no connection re-AUTHed: $(ra_body "$T/metrics.out")"
refused=$(ra_metric redis_auth_failures)
[ "$refused" -gt 0 ] || die "no AUTH was refused after the revocation: the case did not happen"

log "2. the token service down for 3 s with no valid token (all revoked, connections killed)"
curl -s -X POST "$TSURL/_control?mode=fail" >/dev/null
curl -s -X POST "$TSURL/_revoke" >/dev/null
rc CLIENT KILL USER "$PRINCIPAL" >/dev/null
before=$(accounts)
retries0=$(ra_metric retries)
failed0=$(tstat failed)
"$BUILD/hostemu" --connect "$HPORT" --script-root "$APP" --messages "$FIX/create_account.json" \
  --vary --batch 1 --repeat 200 --concurrency 4 --rate 50 >"$T/o.out" 2>"$T/o.err" &
opid=$!
sleep 3
# at least 3 s, and until the handler has met the outage (a slow start of the
# load generator on a busy machine must not let the writes miss it; 20 s cap)
n=0
while [ "$(tstat failed)" -le "$failed0" ] && [ $n -lt 100 ]; do
  sleep 0.2
  n=$((n + 1))
done
curl -s -X POST "$TSURL/_control?mode=ok" >/dev/null
wait $opid || die "writes across the token outage failed: $(tail -5 "$T/o.out" "$T/o.err")"
grep -q "200 generated, 200 deliveries, 200 succeeded, 0 retried, 0 dead-lettered, 0 unsettled" \
  "$T/o.out" || die "not every message settled at once: $(grep messages "$T/o.out")"
expect_eq "records written across the outage" "$(accounts)" $((before + 200))
expect_eq "invocations failed" "$(ra_metric invocations_failed)" 0
[ "$(ra_metric retries)" -gt "$retries0" ] || die "no write retried: the outage missed the writes"
log "  200 writes rode out the outage with $(($(ra_metric retries) - retries0)) retries inside their budget"

log "3. figures"
log "  messages $1, token service: issued $issued during the load ($(tstat failed) scripted failures), handler: token_fetches $(ra_metric token_fetches) token_failures $(ra_metric token_failures)"
log "  AUTH calls at redis during the load $(($(cmdstat auth) - auth0)); handler: redis_token_auths $(ra_metric redis_token_auths) redis_reauths $reauths redis_auth_failures $refused retries $(ra_metric retries)"
ra_stop

log "4. no token or secret in the handler's log"
grep -E "tok[0-9]+\.|$IHDR|$ADMINPW" "$T/handler.log" && die "a token or secret reached the log"
grep -q "Microsoft Entra ID authentication as '$PRINCIPAL' with managed identity" "$T/handler.log" ||
  die "no start-up line naming the identity: $(head -20 "$T/handler.log")"
ra_sanitizers
log "Entra ID rotation passed: $issued tokens, $reauths re-AUTHs, every delivery and read succeeded"

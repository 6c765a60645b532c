#!/bin/sh
# identity_tokens.sh - the Entra ID token provider (handler/identity/) over
# real HTTP against build/tools/tokensvc, our token service: every
# credential (client secret, certificate-signed JWT assertion, workload
# identity, system- and user-assigned managed identity, the connection's
# own service principal), the service's failures (HTTP 500, garbage, a
# refusal, a delay past the timeout, a wrong identity header, a certificate
# it does not know), concurrent callers sharing one request, and the
# renewal ahead of expiry. No message may contain a secret or a token.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
T="$BUILD/itest/itest_identity"
S="$BUILD/tools/tokensvc"
[ -x "$T" ] && [ -x "$S" ] || die "build first: make BUILD=$BUILD tools"
command -v openssl >/dev/null 2>&1 || skip "openssl not installed"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
dir=$(tmpdir)
fails=0
SECRET='s3cr3t+/=&value'
IHDR='ih-7f1c2d9e'

# the app's certificate (key + certificate in one PEM, as
# AZURE_CLIENT_CERTIFICATE_PATH takes it) and another one Entra ID does not know
for n in app other; do
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/$n.key" -out "$dir/$n.crt" -days 2 \
    -subj "/CN=d365cdc $n" >/dev/null 2>&1 || die "openssl: $n certificate"
  cat "$dir/$n.key" "$dir/$n.crt" >"$dir/$n.pem"
done
# the same certificate as a PFX and as a PEM with an encrypted key (password-protected)
openssl pkcs12 -export -inkey "$dir/app.key" -in "$dir/app.crt" -out "$dir/app.pfx" \
  -passout pass:pfx-pw-9 >/dev/null 2>&1 || die "openssl: pfx"
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$dir/app.key" -out "$dir/app.enc.key" \
  -passout pass:pem-pw-3 >/dev/null 2>&1 || die "openssl: encrypted key"
cat "$dir/app.enc.key" "$dir/app.crt" >"$dir/app.enc.pem"
printf 'eyJhbGciOiJSUzI1NiJ9.federated-sa-token.sig\n' >"$dir/federated"

# start_svc NAME [tokensvc options]: sets <NAME>_PORT
start_svc() {
  _n=$1
  shift
  "$S" --port 0 --tenant tenant1 --client-id client1 "$@" >"$dir/$_n.port" 2>"$dir/$_n.err" &
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  _i=0
  until [ -s "$dir/$_n.port" ]; do
    _i=$((_i + 1)); [ $_i -lt 100 ] || die "tokensvc $_n did not start: $(cat "$dir/$_n.err")"
    sleep 0.05
  done
  eval "${_n}_PORT=$(cat "$dir/$_n.port")"
}
start_svc main --client-secret "$SECRET" --cert "$dir/app.crt" \
  --federated-token "$(cat "$dir/federated")" --identity-header "$IHDR" --lifetime 3
start_svc uami --identity-header "$IHDR" --mi-client-id uami-42 --lifetime 60
URL=http://127.0.0.1:$main_PORT
log "token service on $main_PORT (and $uami_PORT for a user-assigned identity)"

run() { # NAME ENV... -- ARGS...
  _name=$1
  shift
  log "case: $_name"
  if ! env -i PATH="$PATH" ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
    "$@" >"$dir/out" 2>"$dir/err"; then
    fails=$((fails + 1))
    log "FAILED: $_name"
    sed 's/^/  | /' "$dir/out" "$dir/err" >&2
  else
    sed 's/^/  | /' "$dir/out" >&2
  fi
}
control() { curl -s -X POST "$URL/_control?$1" >/dev/null || die "control $1"; }
stat() { curl -s "$URL/_stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

SP="AZURE_AUTHORITY_HOST=$URL AZURE_TENANT_ID=tenant1 AZURE_CLIENT_ID=client1"
MI="IDENTITY_ENDPOINT=$URL/msi/token IDENTITY_HEADER=$IHDR"
# shellcheck disable=SC2086
{
  run "client secret" $SP AZURE_CLIENT_SECRET="$SECRET" "$T" get
  run "client certificate (PS256 assertion, x5t)" $SP AZURE_CLIENT_CERTIFICATE_PATH="$dir/app.pem" "$T" get
  run "client certificate as a PFX with a password" $SP AZURE_CLIENT_CERTIFICATE_PATH="$dir/app.pfx" \
    AZURE_CLIENT_CERTIFICATE_PASSWORD=pfx-pw-9 "$T" get
  run "client certificate, PEM with an encrypted key" $SP \
    AZURE_CLIENT_CERTIFICATE_PATH="$dir/app.enc.pem" AZURE_CLIENT_CERTIFICATE_PASSWORD=pem-pw-3 "$T" get
  run "workload identity" $SP AZURE_FEDERATED_TOKEN_FILE="$dir/federated" "$T" get
  run "managed identity (system-assigned)" $MI "$T" get
  run "managed identity for Dataverse's scope" $MI "$T" get "https://org0.crm4.dynamics.com/.default"
  run "managed identity (user-assigned, AZURE_CLIENT_ID)" \
    IDENTITY_ENDPOINT="http://127.0.0.1:$uami_PORT/msi/token" IDENTITY_HEADER="$IHDR" \
    AZURE_CLIENT_ID=uami-42 "$T" get
  run "the connection's service principal wins over the managed identity" $MI \
    AZURE_AUTHORITY_HOST="$URL" REDIS_CONN_TENANT_ID=tenant1 REDIS_CONN_CLIENT_ID=client1 \
    REDIS_CONN_CLIENT_SECRET="$SECRET" "$T" get
}
[ "$(stat secret)/$(stat assertion)/$(stat federated)/$(stat managed)" = "2/3/1/2" ] ||
  { fails=$((fails + 1)); log "FAILED: service counts $(curl -s "$URL/_stats")"; }

# shellcheck disable=SC2086
{
  run "wrong secret" $SP AZURE_CLIENT_SECRET="wrong$SECRET" "$T" fail - config \
    "HTTP 401 invalid_client: AADSTS7000215"
  run "a certificate Entra ID does not know" $SP AZURE_CLIENT_CERTIFICATE_PATH="$dir/other.pem" \
    "$T" fail - config "x5t"
  run "a PFX with the wrong password" $SP AZURE_CLIENT_CERTIFICATE_PATH="$dir/app.pfx" \
    AZURE_CLIENT_CERTIFICATE_PASSWORD=bad-pfx-pw-1 "$T" fail - config "AZURE_CLIENT_CERTIFICATE_PASSWORD?"
  run "wrong identity header" IDENTITY_ENDPOINT="$URL/msi/token" IDENTITY_HEADER="wrong$IHDR" \
    "$T" fail - config "HTTP 401 invalid_request"
  run "nobody listening" IDENTITY_ENDPOINT="http://127.0.0.1:$(free_port)/msi/token" \
    IDENTITY_HEADER="$IHDR" "$T" fail - io "managed identity endpoint: Couldn't connect"
  control "mode=garbage&count=1"
  run "garbage answer" $MI "$T" fail - input "not JSON"
  control "mode=delay&ms=3000&count=1"
  run "slower than CDC_IDENTITY_TIMEOUT_MS" $MI CDC_IDENTITY_TIMEOUT_MS=300 "$T" fail - timeout \
    "Timeout was reached"
  sleep 3
  control "mode=fail&count=3"
  run "three HTTP 500s, then a token (backoff)" $MI "$T" retry - 8000
  control "mode=delay&ms=400"
  run "16 callers at once share one request" $MI "$T" concurrent - 16
  control "mode=ok"
  run "renewed ahead of expiry by the refresh thread" $MI "$T" refresh
}
grep -h 's3cr3t\|ih-7f1c\|pfx-pw-9\|pem-pw-3' "$dir"/*.err 2>/dev/null | grep -v '^$' && { fails=$((fails + 1)); log "FAILED: a secret reached a log"; }
[ "$fails" = 0 ] || die "$fails case(s) failed"
log "all token cases passed ($(curl -s "$URL/_stats"))"

#!/bin/sh
# redis_tls.sh - the sink over TLS against a private redis-server with a
# certificate from a CA made here: the right CA and host name work; a wrong
# CA, a wrong host name, the system store and TLS against a plain port each
# fail at once with a clear error.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
command -v openssl >/dev/null 2>&1 || skip "openssl not installed"
T="$BUILD/itest/itest_redis_conn"
[ -x "$T" ] || die "build $T first (make tools)"
dir=$(tmpdir)

# a CA, a server certificate for localhost and 127.0.0.1, and another CA
cd "$dir" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=d365cdc test CA" >/dev/null 2>&1 || die "openssl: CA"
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
  -subj "/CN=localhost" >/dev/null 2>&1 || die "openssl: server key"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days 2 -extfile san.ext >/dev/null 2>&1 || die "openssl: server cert"
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 \
  -subj "/CN=some other CA" >/dev/null 2>&1 || die "openssl: other CA"
cd "$ROOT" || exit 1

TLS_PORT=$(free_port)
start_redis "$dir" --tls-port "$TLS_PORT" --tls-cert-file "$dir/server.pem" \
  --tls-key-file "$dir/server.key" --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no
wait_port "$TLS_PORT" 10 || die "TLS port $TLS_PORT not listening"
log "redis plain $REDIS_PORT, TLS $TLS_PORT"
fails=0
run() { # expect args...
  log "case: $*"
  if ! "$T" "$@"; then fails=$((fails + 1)); log "FAILED: $*"; fi
}

export CDC_REDIS_CA_FILE="$dir/ca.pem"
REDIS_CONN="localhost:$TLS_PORT,ssl=True,abortConnect=False" run ok
REDIS_CONN="127.0.0.1:$TLS_PORT,ssl=true,sslHost=localhost" run ok
REDIS_CONN="127.0.0.1:$TLS_PORT,ssl=true" run ok   # IP address SAN
# X509_V_ERR_HOSTNAME_MISMATCH: its text is "Hostname mismatch" in OpenSSL
# 1.1.1 (Debian 11) and "hostname mismatch" in 3.x
REDIS_CONN="127.0.0.1:$TLS_PORT,ssl=true,sslHost=wrong.example" \
  run fail tls "ostname mismatch (X509 error 62)"
CDC_REDIS_CA_FILE="$dir/other.pem" REDIS_CONN="localhost:$TLS_PORT,ssl=True" \
  run fail tls "certificate verification failed"
# the system CA store does not know our CA
CDC_REDIS_CA_FILE="" REDIS_CONN="localhost:$TLS_PORT,ssl=True" \
  run fail tls "certificate verification failed"
CDC_REDIS_CA_FILE="$dir/missing.pem" REDIS_CONN="localhost:$TLS_PORT,ssl=True" \
  run fail tls "cannot open CA file '$dir/missing.pem' (CDC_REDIS_CA_FILE): No such file"
# TLS to a plain port: the server never answers the ClientHello, so this is
# a timeout (retried like any timeout until the budget is spent)
CDC_RETRY_BUDGET_MS=600 REDIS_CONN="127.0.0.1:$REDIS_PORT,ssl=True,connectTimeout=200" \
  run fail timeout "TLS handshake timed out" slow
[ "$fails" = 0 ] || die "$fails case(s) failed"
log "all TLS cases passed"

#!/bin/sh
# host_proxying.sh - host.json as Microsoft documents it now:
# customHandler.enableProxyingHttpRequest (instead of the older
# enableForwardingHttpRequest) and a routePrefix other than "api". The
# handler serves the read API and the metrics at the paths the host routes
# (routePrefix + each function.json route), not at hard-coded /api/...
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
d=$(tmpdir)
cp -a "$BUILD/app" "$d/app"
rm -f "$d/app/local.settings.json"
sed -e 's/"enableForwardingHttpRequest"/"enableProxyingHttpRequest"/' \
  -e 's/"extensions": {/"extensions": {\n    "http": { "routePrefix": "replica" },/' \
  "$ROOT/host.json" >"$d/app/host.json"
grep -q '"routePrefix": "replica"' "$d/app/host.json" || die "could not rewrite host.json"
emu() {
  "$BUILD/hostemu" --script-root "$d/app" --no-settings --env CDC_TARGET=none --quiet \
    --handler-log "$d/handler.log" "$@"
}
emu --http GET '/replica/cdc/metrics' >"$d/m.out" 2>"$d/m.err" || { cat "$d/m.err"; die "metrics failed"; }
head -1 "$d/m.out" | grep -q '^HTTP/1.1 200' || { cat "$d/m.out"; die "GET /replica/cdc/metrics: not 200"; }
grep -q '"invocations":' "$d/m.out" || { cat "$d/m.out"; die "no metrics in the answer"; }
grep -q 'serving GET /replica/cdc/metrics... directly (enableProxyingHttpRequest)' "$d/handler.log" ||
  { cat "$d/handler.log"; die "the handler did not take its routes from host.json"; }
grep -q 'serving GET /replica/data/v9.2/... directly' "$d/handler.log" ||
  die "the read API route is not /replica/data/v9.2/"
# a read reaches the read API at the new prefix (no Redis: 503, in OData form)
emu --http GET '/replica/data/v9.2/accounts(5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1)' \
  --env RedisConnection=127.0.0.1:1 >"$d/r.out" 2>"$d/r.err" || true
grep -q '"error"' "$d/r.out" || { cat "$d/r.out" "$d/r.err"; die "the read did not reach the read API"; }
echo "ok: enableProxyingHttpRequest and routePrefix 'replica' honoured"

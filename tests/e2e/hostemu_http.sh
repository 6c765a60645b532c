#!/bin/sh
# hostemu_http.sh - HTTP triggers: the default envelope (Data.<req> with
# Url, Method, Query, Headers, Params, Identities, Body; Metadata with query
# and route values, Query, Headers, body properties, sys), route templates
# and methods, how Outputs.res becomes the client's response, $return, and
# forwarding mode (the raw request with the host's headers, the answer
# verbatim).
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
HOSTEMU_LIB=1 . "$ROOT/tests/e2e/hostemu_cli.sh"
he_init

he_app api ReadApi '{ "bindings": [
  { "type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get", "post"], "route": "data/v9.2/{*path}", "authLevel": "anonymous" },
  { "type": "http", "direction": "out", "name": "res" } ] }'
mkdir -p "$T/api/Item" "$T/api/Ret"
cat >"$T/api/Item/function.json" <<'EOF'
{ "bindings": [ { "type": "httpTrigger", "direction": "in", "name": "request", "route": "items/{id:int}/{name?}" },
                { "type": "http", "direction": "out", "name": "response" } ] }
EOF
cat >"$T/api/Ret/function.json" <<'EOF'
{ "bindings": [ { "type": "httpTrigger", "direction": "in", "name": "req", "methods": ["delete"], "route": "ret" },
                { "type": "http", "direction": "out", "name": "$return" } ] }
EOF
RES='{"res":{"statusCode":"201","headers":{"Content-Type":"application/json","OData-Version":"4.0"},"body":{"name":"Contoso","n":[1,2],"e":{}}}}'

log "GET: the default envelope and the response built from Outputs.res"
FAKE_OUTPUTS=$RES he_run api --http GET '/api/data/v9.2/accounts(5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1)?$select=name,revenue&x=1&x=2&code=k' \
  --header 'Accept: application/json' --header 'X-Multi: a' --header 'X-Multi: b' >"$T/get.out" 2>"$T/get.err"
expect_eq "exit status" "$?" 0
B=$(bodies api)
expect_eq "request line" "$(head -1 "$(heads api)")" "POST /ReadApi HTTP/1.1"
grep -qx "Transfer-Encoding: chunked" "$(heads api)" || die "not chunked"
expect_eq "Url" "$(jstr "$B" Data req Url)" 'http://localhost:7071/api/data/v9.2/accounts(5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1)?$select=name,revenue&x=1&x=2&code=k'
expect_eq "Method" "$(jstr "$B" Data req Method)" GET
expect_eq "Query" "$(jget "$B" Data req Query)" '{"$select":"name,revenue","x":"1,2","code":"k"}'
expect_eq "Headers" "$(jget "$B" Data req Headers)" '{"Host":["localhost:7071"],"Accept":["application/json"],"X-Multi":["a","b"]}'
expect_eq "Params" "$(jget "$B" Data req Params)" '{"path":"accounts(5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1)"}'
expect_eq "Identities" "$(jget "$B" Data req Identities)" '[]'
fh json "$B" Data req Body >/dev/null 2>&1 && die "Body present without a request body"
expect_eq "Metadata keys" "$(fh json --keys "$B" Metadata | tr '\n' ' ')" '$select x path Query Headers sys '
expect_eq "query value" "$(jget "$B" Metadata x)" '"\"1,2\""'
expect_eq "route value" "$(jget "$B" Metadata path)" '"\"accounts(5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1)\""'
expect_eq "Metadata.Headers joined" "$(jstr "$B" Metadata Headers X-Multi)" "a,b"
expect_eq "sys.MethodName" "$(jstr "$B" Metadata sys MethodName)" ReadApi
printf 'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nOData-Version: 4.0\r\nContent-Length: 61\r\n\r\n{\n  "name": "Contoso",\n  "n": [\n    1,\n    2\n  ],\n  "e": {}\n}' >"$T/want"
cmp "$T/get.out" "$T/want" || die "response: $(od -c "$T/get.out" | head -20)"

log "POST with a JSON body: Body string, body properties in Metadata"
rm -f "$T/api/rec"/req-*
FAKE_OUTPUTS='{"res":{"statusCode":200,"body":"plain text"}}' he_run api --http POST /api/data/v9.2/accounts \
  --header 'Content-Type: application/json' --body '{"name":"A","n":5,"o":{"k":true}}' >"$T/post.out" 2>"$T/post.err"
expect_eq "exit status" "$?" 0
B=$(bodies api)
expect_eq "Body" "$(jstr "$B" Data req Body)" '{"name":"A","n":5,"o":{"k":true}}'
expect_eq "Content-Length header" "$(jget "$B" Data req Headers Content-Length)" '["33"]'
expect_eq "body property" "$(jget "$B" Metadata name)" '"\"A\""'
expect_eq "body number" "$(jget "$B" Metadata n)" '"\"5\""'
expect_eq "body object" "$(jget "$B" Metadata o)" '{"k":true}'
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nplain text' >"$T/want"
cmp "$T/post.out" "$T/want" || die "response: $(cat "$T/post.out")"

log "an octet-stream body is sent as base64"
rm -f "$T/api/rec"/req-*
printf '\001\002\377' >"$T/bin"
he_run api --http POST /api/data/v9.2/blob --header 'Content-Type: application/octet-stream' --body-file "$T/bin" >/dev/null 2>&1
fh json --b64 "$(bodies api)" Data req Body | cmp - "$T/bin" || die "binary Body differs"

log "route parameters, constraints and methods"
rm -f "$T/api/rec"/req-*
he_run api --http GET /api/items/42/widget >"$T/item.out" 2>"$T/item.err"
expect_eq "exit status" "$?" 0
B=$(bodies api)
expect_eq "request line" "$(head -1 "$(heads api)")" "POST /Item HTTP/1.1"
expect_eq "Data key is the binding name" "$(fh json --keys "$B" Data)" request
expect_eq "Params" "$(jget "$B" Data request Params)" '{"id":"42","name":"widget"}'
expect_match "no res output gives 200 {}" "$(head -1 "$T/item.out")" '^HTTP/1.1 200 OK'
he_run api --http GET /api/items/7 >/dev/null 2>&1 || die "optional parameter"
he_run api --http GET /api/items/abc >"$T/404.out" 2>"$T/404.err"
expect_eq "int constraint" "$?" 1
expect_match "404" "$(head -1 "$T/404.out")" '^HTTP/1.1 404 Not Found'
he_run api --http PUT /api/data/v9.2/accounts >"$T/404.out" 2>&1
expect_eq "method not allowed by function.json" "$?" 1
he_run api --http GET /data/v9.2/accounts >/dev/null 2>&1
expect_eq "route prefix required" "$?" 1

log "\$return: ReturnValue with status"
FAKE_RETURN='{"status":202,"body":"accepted"}' he_run api --http DELETE /api/ret >"$T/ret.out" 2>"$T/ret.err"
expect_eq "exit status" "$?" 0
expect_match "status from ReturnValue" "$(head -1 "$T/ret.out")" '^HTTP/1.1 202 Accepted'

log "a failed invocation gives the client a 500"
FAKE_ARGS=--always-fail he_run api --http GET /api/data/v9.2/accounts >"$T/fail.out" 2>"$T/fail.err"
expect_eq "exit status" "$?" 1
expect_match "500" "$(head -1 "$T/fail.out")" '^HTTP/1.1 500 Internal Server Error'
grep -q "invocation failed: HTTP 500" "$T/fail.err" || die "$(cat "$T/fail.err")"

log "forwarding: the raw request with the host's headers, the answer verbatim"
he_app fwd ReadApi '{ "bindings": [
  { "type": "httpTrigger", "direction": "in", "name": "req", "route": "data/v9.2/{*path}" },
  { "type": "http", "direction": "out", "name": "res" } ] }'
sed 's/"customHandler": {/"customHandler": { "enableForwardingHttpRequest": true,/' "$T/fwd/host.json" >"$T/fwd/h" && mv "$T/fwd/h" "$T/fwd/host.json"
FAKE_ARGS=--raw he_run fwd --http PATCH '/api/data/v9.2/accounts(1)?x=1&x=2&y=a%20b' \
  --header 'User-Agent: curl/8.0' --header 'Content-Type: application/json' --body '{"a":1}' >"$T/fwd.out" 2>"$T/fwd.err"
expect_eq "exit status" "$?" 0
RAW=$(ls "$T/fwd/rec"/raw-*)
tr -d '\r' <"$RAW" >"$T/fwd.req"
expect_eq "request line" "$(head -1 "$T/fwd.req")" 'PATCH /api/data/v9.2/accounts(1)?x=1%2C2&y=a%20b HTTP/1.1'
grep -qx "Host: localhost:7071" "$T/fwd.req" || die "Host: $(cat "$T/fwd.req")"
grep -qx "User-Agent: curl/8.0 Azure-Functions-Host/4.1036.1.23224" "$T/fwd.req" || die "User-Agent: $(cat "$T/fwd.req")"
grep -qx "X-Azure-Functions-HostVersion: 4.1036.1.23224" "$T/fwd.req" || die "no host version"
grep -q "^X-Azure-Functions-InvocationId: " "$T/fwd.req" || die "no invocation id"
grep -qx "Content-Length: 7" "$T/fwd.req" || die "Content-Length: $(cat "$T/fwd.req")"
grep -qx "Content-Type: application/json" "$T/fwd.req" || die "Content-Type: $(cat "$T/fwd.req")"
grep -qi "^Transfer-Encoding" "$T/fwd.req" && die "forwarded requests carry Content-Length"
expect_eq "body" "$(tail -1 "$T/fwd.req")" '{"a":1}'
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"Outputs":{}}' >"$T/want"
cmp "$T/fwd.out" "$T/want" || die "answer not verbatim: $(cat "$T/fwd.out")"
FAKE_ARGS='--always-fail --status 418' he_run fwd --http GET /api/data/v9.2/accounts >"$T/fwd2.out" 2>"$T/fwd2.err"
expect_eq "exit status (a non-2xx answer is not a failure)" "$?" 0
expect_match "status verbatim" "$(head -1 "$T/fwd2.out")" '^HTTP/1.1 418 '
grep -q 'scripted failure' "$T/fwd2.out" || die "body: $(cat "$T/fwd2.out")"
expect_eq "path with the prefix, no envelope" "$(head -1 "$(heads fwd)")" "GET /api/data/v9.2/accounts HTTP/1.1"

log "--repeat: the HTTP request as load, with a summary"
he_run api --http GET /api/items/1 --repeat 20 --concurrency 4 --json "$T/rep.json" >"$T/rep.out" 2>"$T/rep.err"
expect_eq "exit status" "$?" 0
expect_eq "invocations" "$(jget "$T/rep.json" invocationsSucceeded)" 20
grep -q "invocations     20 (20 succeeded, 0 failed)" "$T/rep.err" || die "no summary: $(cat "$T/rep.err")"
log "ok"

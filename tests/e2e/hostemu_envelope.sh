#!/bin/sh
# hostemu_envelope.sh - the invocation requests are exactly what the
# Functions host sends: request line and headers, chunked framing, Data for
# single binary / single string / batch binary / batch string, every
# Metadata key and its encoding, ApplyBindingData keys, sidecar and
# Dataverse properties, and the handler's launch (argv, env, cwd).
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
HOSTEMU_LIB=1 . "$ROOT/tests/e2e/hostemu_cli.sh"
he_init

GUID='[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'
SECS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'
CLAIMS=http://schemas.microsoft.com/xrm/2011/Claims

# three messages: a Dataverse body (properties derived), a body with a
# sidecar, and bytes that are not UTF-8
mkdir -p "$T/msgs"
cp "$FIX/create_account.json" "$T/msgs/1-create.json"
printf '{"orderId":42,"sku":"A1"}' >"$T/msgs/2-order.json"
cat >"$T/msgs/2-order.json.props.json" <<'EOF'
{ "MessageId": "id-2", "CorrelationId": "corr-2", "SessionId": "s-2", "Subject": "orders",
  "PartitionKey": "pk-2", "TransactionPartitionKey": "tpk-2", "TimeToLive": 3600,
  "ApplicationProperties": { "tenant": "contoso", "prio": 3, "vip": true } }
EOF
printf '\377\376bin\000ary\r\n' >"$T/msgs/3-binary.bin"
printf '{"IsEncrypted": false, "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "FAKE_SETTING": "from-settings", "FAKE_PRESET": "from-settings"}}' >"$T/settings.json"

log "single, dataType binary"
he_app bin ProcessChange '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "q", "connection": "SB", "dataType": "binary" } ] }'
FAKE_PRESET=from-env FAKE_ARGS='--sleep-ms 1' he_run bin --messages "$T/msgs" --concurrency 1 \
  --settings "$T/settings.json" --env FAKE_ENV=from-flag --host-version 4.9.8.7 \
  --json "$T/bin.json" >"$T/bin.out" 2>"$T/bin.err" || die "hostemu failed: $(cat "$T/bin.err")"
set -- $(bodies bin)
expect_eq "requests" "$#" 3
B1=$1 B2=$2 B3=$3

log "handler launch: argv split like .NET, environment, working directory"
ENVF=$(ls "$T/bin/rec"/env-*)
grep -qx "ARG1=--dir" "$ENVF" || die "argv: $(cat "$ENVF")"
grep -qx "ARG2=$T/bin/rec" "$ENVF" || die "argv: $(cat "$ENVF")"
grep -qx "ARG3=--sleep-ms" "$ENVF" || die "FAKE_ARGS not split into two: $(cat "$ENVF")"
grep -qx "ARG4=1" "$ENVF" || die "argv: $(cat "$ENVF")"
grep -q "^ARG5=" "$ENVF" && die "extra argument: $(cat "$ENVF")"
grep -qx "CWD=$T/bin" "$ENVF" || die "cwd: $(cat "$ENVF")"
grep -qx "FUNCTIONS_APP_ROOT_PATH=$T/bin" "$ENVF" || die "app root: $(cat "$ENVF")"
PORT=$(sed -n 's/^FUNCTIONS_CUSTOMHANDLER_PORT=//p' "$ENVF")
expect_eq "legacy port variable" "$(sed -n 's/^FUNCTIONS_HTTPWORKER_PORT=//p' "$ENVF")" "$PORT"
expect_eq "summary port" "$(jget "$T/bin.json" handler port)" "$PORT"
WID=$(sed -n 's/^FUNCTIONS_CUSTOMHANDLER_WORKER_ID=//p' "$ENVF")
expect_match "worker id" "$WID" "^$GUID\$"
expect_eq "legacy worker id" "$(sed -n 's/^FUNCTIONS_HTTPWORKER_ID=//p' "$ENVF")" "$WID"
grep -qx "FAKE_SETTING=from-settings" "$ENVF" || die "settings value missing"
grep -qx "FAKE_PRESET=from-env" "$ENVF" || die "the environment must win over local.settings.json"
grep -qx "FAKE_ENV=from-flag" "$ENVF" || die "--env value missing"

log "request line and headers"
IDS=""
for h in $(heads bin); do
  expect_eq "request line" "$(head -1 "$h")" "POST /ProcessChange HTTP/1.1"
  grep -qx "Transfer-Encoding: chunked" "$h" || die "not chunked: $(cat "$h")"
  grep -qi "^Content-Length:" "$h" && die "Content-Length sent: $(cat "$h")"
  grep -qx "Content-Type: application/json; charset=utf-8" "$h" || die "content type: $(cat "$h")"
  grep -qx "User-Agent: Azure-Functions-Host/4.9.8.7" "$h" || die "user agent: $(cat "$h")"
  grep -qx "X-Azure-Functions-HostVersion: 4.9.8.7" "$h" || die "host version: $(cat "$h")"
  grep -qx "Host: 127.0.0.1:$PORT" "$h" || die "host: $(cat "$h")"
  ID=$(sed -n 's/^X-Azure-Functions-InvocationId: //p' "$h")
  expect_match "invocation id" "$ID" "^$GUID\$"
  IDS="$IDS $ID"
done
expect_eq "distinct invocation ids" "$(printf '%s\n' $IDS | sort -u | wc -l)" 3

log "Data: base64 of the exact body bytes"
expect_eq "Data keys" "$(fh json --keys "$B1" Data)" "msg"
fh json --b64 "$B1" Data msg >"$T/d1" && cmp "$T/d1" "$T/msgs/1-create.json" || die "body 1 differs"
fh json --b64 "$B2" Data msg >"$T/d2" && cmp "$T/d2" "$T/msgs/2-order.json" || die "body 2 differs"
fh json --b64 "$B3" Data msg >"$T/d3" && cmp "$T/d3" "$T/msgs/3-binary.bin" || die "body 3 differs"

log "Metadata of a Dataverse message without a sidecar"
expect_eq "Metadata keys" "$(fh json --keys "$B1" Metadata | tr '\n' ' ')" \
  "MessageReceiver MessageSession MessageActions SessionActions ReceiveActions Client DeliveryCount LockToken ExpiresAtUtc ExpiresAt EnqueuedTimeUtc EnqueuedTime MessageId ContentType SequenceNumber ApplicationProperties UserProperties sys "
for k in MessageReceiver MessageSession MessageActions SessionActions ReceiveActions; do
  expect_eq "$k" "$(jget "$B1" Metadata $k)" "{}"
done
expect_eq "DeliveryCount" "$(jget "$B1" Metadata DeliveryCount)" '"1"'
expect_eq "SequenceNumber" "$(jget "$B1" Metadata SequenceNumber)" '"1"'
expect_eq "SequenceNumber 2" "$(jget "$B2" Metadata SequenceNumber)" '"2"'
expect_eq "SequenceNumber 3" "$(jget "$B3" Metadata SequenceNumber)" '"3"'
expect_match "LockToken" "$(jget "$B1" Metadata LockToken)" "^\"\\\\\"$GUID\\\\\"\"\$"
expect_match "MessageId" "$(jget "$B1" Metadata MessageId)" '^"\\"[0-9a-f]{32}\\""$'
expect_eq "ContentType" "$(jget "$B1" Metadata ContentType)" '"\"application/json\""'
ENQ=$(jstr "$B1" Metadata EnqueuedTimeUtc)
expect_match "EnqueuedTimeUtc" "$ENQ" "^$SECS\$"
expect_eq "EnqueuedTime" "$(jstr "$B1" Metadata EnqueuedTime)" "$ENQ+00:00"
EXP=$(date -u -d "$(echo "$ENQ" | tr T ' ') UTC + 14 days" +%Y-%m-%dT%H:%M:%S)
expect_eq "ExpiresAtUtc (14 days)" "$(jstr "$B1" Metadata ExpiresAtUtc)" "$EXP"
expect_eq "ExpiresAt" "$(jstr "$B1" Metadata ExpiresAt)" "$EXP+00:00"
expect_eq "Organization" "$(jstr "$B1" Metadata ApplicationProperties "$CLAIMS/Organization")" "unqc2a1f0e47b3d4e8a9f216d5b4c3a"
expect_eq "EntityLogicalName" "$(jstr "$B1" Metadata ApplicationProperties "$CLAIMS/EntityLogicalName")" "account"
expect_eq "RequestName" "$(jstr "$B1" Metadata ApplicationProperties "$CLAIMS/RequestName")" "Create"
expect_eq "User" "$(jstr "$B1" Metadata ApplicationProperties "$CLAIMS/User")" "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d"
expect_eq "InitiatingUser" "$(jstr "$B1" Metadata ApplicationProperties "$CLAIMS/InitiatingUser")" "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d"
expect_eq "InitiatingUserAgent" "$(jget "$B1" Metadata ApplicationProperties "$CLAIMS/InitiatingUserAgent")" '""'
expect_eq "UserProperties = ApplicationProperties" "$(jget "$B1" Metadata UserProperties)" "$(jget "$B1" Metadata ApplicationProperties)"
expect_eq "sys.MethodName" "$(jstr "$B1" Metadata sys MethodName)" "ProcessChange"
expect_match "sys.UtcNow" "$(jstr "$B1" Metadata sys UtcNow)" "^$SECS(\\.[0-9]{1,7})?Z\$"
expect_match "sys.RandGuid" "$(jstr "$B1" Metadata sys RandGuid)" "^$GUID\$"

log "Metadata from a sidecar; a body that is not JSON has no ContentType"
expect_eq "MessageId" "$(jget "$B2" Metadata MessageId)" '"\"id-2\""'
expect_eq "CorrelationId" "$(jget "$B2" Metadata CorrelationId)" '"\"corr-2\""'
expect_eq "SessionId" "$(jget "$B2" Metadata SessionId)" '"\"s-2\""'
expect_eq "Subject" "$(jget "$B2" Metadata Subject)" '"\"orders\""'
expect_eq "Label" "$(jget "$B2" Metadata Label)" '"\"orders\""'
expect_eq "PartitionKey" "$(jget "$B2" Metadata PartitionKey)" '"\"pk-2\""'
expect_eq "TransactionPartitionKey" "$(jget "$B2" Metadata TransactionPartitionKey)" '"\"tpk-2\""'
expect_eq "ApplicationProperties" "$(jget "$B2" Metadata ApplicationProperties)" '{"tenant":"contoso","prio":3,"vip":true}'
ENQ2=$(jstr "$B2" Metadata EnqueuedTimeUtc)
EXP2=$(date -u -d "$(echo "$ENQ2" | tr T ' ') UTC + 1 hour" +%Y-%m-%dT%H:%M:%S)
expect_eq "ExpiresAtUtc (TimeToLive 3600)" "$(jstr "$B2" Metadata ExpiresAtUtc)" "$EXP2"
fh json "$B3" Metadata ContentType >/dev/null 2>&1 && die "ContentType must be omitted for message 3"
fh json "$B3" Metadata ReplyTo >/dev/null 2>&1 && die "null ReplyTo must be omitted"

log "single, no dataType (string): double-encoded body and ApplyBindingData keys"
he_app str ProcessChange '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "q", "connection": "SB" } ] }'
he_run str --messages "$T/msgs" --concurrency 1 >"$T/str.out" 2>"$T/str.err" || die "hostemu failed: $(cat "$T/str.err")"
set -- $(bodies str)
S1=$1 S2=$2 S3=$3
jstr "$S1" Data msg >"$T/lit1"
expect_match "Data.msg is a JSON string literal" "$(head -c 2 "$T/lit1")" '^"\{'
fh json --str "$T/lit1" >"$T/s1" && cmp "$T/s1" "$T/msgs/1-create.json" || die "string body 1 differs"
jstr "$S2" Data msg | fh json --str - >"$T/s2" && cmp "$T/s2" "$T/msgs/2-order.json" || die "string body 2 differs"
expect_eq "MessageName" "$(jget "$S1" Metadata MessageName)" '"\"Create\""'
expect_eq "Depth (int -> text)" "$(jget "$S1" Metadata Depth)" '"\"1\""'
expect_eq "IsInTransaction (bool -> .NET text)" "$(jget "$S1" Metadata IsInTransaction)" '"\"False\""'
expect_eq "OperationCreatedOn (DateTime, invariant culture)" "$(jget "$S1" Metadata OperationCreatedOn)" '"\"11/08/2024 08:05:07\""'
expect_eq "InitiatingUserAgent" "$(jget "$S1" Metadata InitiatingUserAgent)" '"\"\""'
expect_eq "CorrelationId from the body" "$(jget "$S1" Metadata CorrelationId)" '"\"7038a274-4877-4f3f-a57a-0f4493a6c7c6\""'
expect_eq "OwningExtension stays an object" "$(jstr "$S1" Metadata OwningExtension LogicalName)" "sdkmessageprocessingstep"
expect_eq "ParentContext date re-serialised" "$(jstr "$S1" Metadata ParentContext OperationCreatedOn)" "2024-11-08T08:05:06+00:00"
fh json "$S1" Metadata InputParameters >/dev/null 2>&1 && die "arrays must not become Metadata"
expect_eq "orderId" "$(jget "$S2" Metadata orderId)" '"\"42\""'
expect_eq "sidecar CorrelationId" "$(jget "$S2" Metadata CorrelationId)" '"\"corr-2\""'
jstr "$S3" Data msg | fh json --str - | od -An -tx1 | tr -d ' \n' >"$T/s3hex"
expect_eq "invalid UTF-8 replaced like .NET" "$(cat "$T/s3hex")" "efbfbdefbfbd62696e006172790d0a"
grep -q "WARNING.*not valid UTF-8" "$T/str.out" || die "no UTF-8 warning: $(cat "$T/str.out")"

log "batch, dataType binary: arrays of base64 and *Array metadata"
he_app bb Batch '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msgs", "queueName": "q", "connection": "SB", "cardinality": "many", "dataType": "binary" } ] }'
he_run bb --messages "$T/msgs" --batch 2 --concurrency 1 >"$T/bb.out" 2>"$T/bb.err" || die "hostemu failed: $(cat "$T/bb.err")"
set -- $(bodies bb)
expect_eq "batch invocations" "$#" 2
jstr "$1" Data msgs >"$T/arr1"
jstr "$2" Data msgs >"$T/arr2"
expect_eq "first batch size" "$(fh json --len "$T/arr1")" 2
expect_eq "second batch size" "$(fh json --len "$T/arr2")" 1
fh json --b64 "$T/arr1" '#0' | cmp - "$T/msgs/1-create.json" || die "batch body 1 differs"
fh json --b64 "$T/arr1" '#1' | cmp - "$T/msgs/2-order.json" || die "batch body 2 differs"
fh json --b64 "$T/arr2" '#0' | cmp - "$T/msgs/3-binary.bin" || die "batch body 3 differs"
expect_eq "DeliveryCountArray" "$(jget "$1" Metadata DeliveryCountArray)" '"[1,1]"'
expect_eq "SequenceNumberArray" "$(jget "$1" Metadata SequenceNumberArray)" '"[1,2]"'
expect_match "MessageIdArray" "$(jget "$1" Metadata MessageIdArray)" '^"\[\\"[0-9a-f]{32}\\",\\"id-2\\"\]"$'
expect_eq "ContentTypeArray" "$(jget "$1" Metadata ContentTypeArray)" '"[\"application/json\",null]"'
expect_eq "DeadLetterSourceArray" "$(jget "$1" Metadata DeadLetterSourceArray)" '"[null,null]"'
expect_eq "CorrelationIdArray" "$(jget "$1" Metadata CorrelationIdArray)" '"[null,\"corr-2\"]"'
expect_eq "SubjectArray" "$(jget "$1" Metadata SubjectArray)" '"[null,\"orders\"]"'
expect_eq "LabelArray" "$(jget "$1" Metadata LabelArray)" '"[null,\"orders\"]"'
expect_eq "PartitionKeyArray" "$(jget "$1" Metadata PartitionKeyArray)" '"[null,\"pk-2\"]"'
expect_eq "TransactionPartitionKeyArray (extension bug: partition keys)" "$(jget "$1" Metadata TransactionPartitionKeyArray)" '"[null,\"pk-2\"]"'
jstr "$1" Metadata ApplicationPropertiesArray >"$T/apa"
expect_eq "ApplicationPropertiesArray[1]" "$(jget "$T/apa" '#1')" '{"tenant":"contoso","prio":3,"vip":true}'
expect_eq "ApplicationPropertiesArray[0] entity" "$(jstr "$T/apa" '#0' "$CLAIMS/EntityLogicalName")" "account"
expect_eq "UserPropertiesArray" "$(jget "$1" Metadata UserPropertiesArray)" "$(jget "$1" Metadata ApplicationPropertiesArray)"
jstr "$1" Metadata EnqueuedTimeUtcArray >"$T/eta"
expect_match "EnqueuedTimeUtcArray keeps fractions" "$(jstr "$T/eta" '#0')" "^$SECS(\\.[0-9]{1,7})?\$"
jstr "$1" Metadata EnqueuedTimeArray >"$T/eta2"
expect_match "EnqueuedTimeArray" "$(jstr "$T/eta2" '#1')" "^$SECS(\\.[0-9]{1,7})?\\+00:00\$"
jstr "$1" Metadata LockTokenArray >"$T/lta"
expect_match "LockTokenArray" "$(jstr "$T/lta" '#1')" "^$GUID\$"
fh json "$1" Metadata DeliveryCount >/dev/null 2>&1 && die "single keys in a batch"
fh json "$1" Metadata orderId >/dev/null 2>&1 && die "ApplyBindingData in a batch"

log "batch, dataType string: array of body strings"
he_app bs Batch '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msgs", "queueName": "q", "connection": "SB", "cardinality": "many", "dataType": "string" } ] }'
he_run bs --messages "$T/msgs/1-create.json" --messages "$T/msgs/2-order.json" >"$T/bs.out" 2>"$T/bs.err" || die "hostemu failed: $(cat "$T/bs.err")"
set -- $(bodies bs)
expect_eq "one invocation for both" "$#" 1
jstr "$1" Data msgs >"$T/sarr"
expect_eq "array length" "$(fh json --len "$T/sarr")" 2
fh json --str "$T/sarr" '#0' | cmp - "$T/msgs/1-create.json" || die "string batch body 1 differs"
fh json --str "$T/sarr" '#1' | cmp - "$T/msgs/2-order.json" || die "string batch body 2 differs"

log "chunked framing on the wire (--chunk-size 1000)"
he_app raw ProcessChange '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "dataType": "binary" } ] }'
FAKE_ARGS=--raw he_run raw --messages "$T/msgs/1-create.json" --chunk-size 1000 >"$T/raw.out" 2>"$T/raw.err" || die "hostemu failed: $(cat "$T/raw.err")"
RAW=$(ls "$T/raw/rec"/raw-*)
# after the head come "size line, data line" pairs ending with "0" and an
# empty line; the envelope has no raw CR or LF, so each chunk is one line
LC_ALL=C tr -d '\r' <"$RAW" | LC_ALL=C awk '
  body == 0 { if ($0 == "") body = 1; else if (tolower($0) ~ /^content-length:/) print "content-length"; next }
  have == 0 { size = $0; have = 1; next }
  { print size, length($0); have = 0 }' >"$T/chunks"
grep -q content-length "$T/chunks" && die "Content-Length with chunked"
n=0 last=""
while read -r size len; do
  expect_eq "chunk $n length" "$len" "$(printf '%d' "0x$size")"
  [ -n "$last" ] && [ "$last" != 3e8 ] && [ "$size" != 0 ] && die "chunk $((n - 1)) of 0x$last is short"
  n=$((n + 1)) last=$size
done <"$T/chunks"
expect_eq "terminating chunk" "$last" 0
[ "$n" -ge 10 ] || die "expected at least 10 chunks, got $n"
log "ok"

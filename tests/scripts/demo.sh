#!/bin/sh
# demo.sh - the main job, locally: `make demo`.
#
#   sh tests/scripts/demo.sh [BUILD_DIR]
#
# Starts a private redis-server on a free port, runs the handler through the
# Functions host emulator exactly as the host would (build/hostemu
# --script-root build/app), replays the bundled Dynamics 365 messages
# (tests/fixtures/demo/messages: out of order, duplicated, a delete followed
# by a late older update, an N:N association, one poison message), then shows
# what an app reads through the read API and where the poison message went.
# Leaves nothing running; exits non-zero when any step did not do what it
# should. tests/e2e/demo.sh checks the printed values.
set -u
BUILD=${1:-${BUILD:-build}}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
. "$ROOT/tests/scripts/lib.sh"
test_init
# Clean up however the demo ends: a closed terminal (HUP) runs the EXIT
# trap; output piped into `head` must not kill the script before it stops
# Redis (SIGPIPE ignored: writes fail instead).
trap 'exit 129' HUP
trap '' PIPE

MSGS=tests/fixtures/demo/messages
APP=$BUILD/app
HOSTEMU=$BUILD/hostemu
CONTOSO=5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1
NORTHWIND=01b5eeb5-455e-ee11-be6f-000d3a1aaa29
OPPORTUNITY=2f4e6a8c-787b-ef11-ac21-6045bdd4c6be
STREAM=d365:poison

fail() {
  printf '\ndemo FAILED: %s\n' "$*" >&2
  if [ -n "${dir:-}" ] && [ -f "$dir/handler.log" ]; then
    printf 'last handler log lines (%s):\n' "$dir/handler.log" >&2
    tail -n 15 "$dir/handler.log" | cut -c1-400 >&2
  fi
  exit 1
}
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
cmd() { printf '$ %s\n' "$*"; }

for f in "$HOSTEMU" "$APP/handler" "$APP/host.json"; do
  [ -e "$f" ] || fail "$f is missing: run 'make demo' (or 'make BUILD=$BUILD all') first"
done
command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
  fail "redis-server/redis-cli are not installed: run 'make deps' as root (apt-get install redis-server redis-tools)"

# json_pretty: indent the one-line JSON on stdin (strings and number lexemes
# are copied as they are). awk, because a fresh Debian has neither jq nor
# python.
json_pretty() {
  awk -v pad="    " '
  function nl() { out = out "\n" pad; for (k = 0; k < ind; k++) out = out "  " }
  {
    s = $0; out = pad; ind = 0; instr = 0; esc = 0; n = length(s)
    for (i = 1; i <= n; i++) {
      c = substr(s, i, 1)
      if (instr) {
        out = out c
        if (esc) esc = 0; else if (c == "\\") esc = 1; else if (c == "\"") instr = 0
        continue
      }
      if (c == "\"") { instr = 1; out = out c }
      else if (c == "{" || c == "[") {
        d = substr(s, i + 1, 1)
        if ((c == "{" && d == "}") || (c == "[" && d == "]")) { out = out c d; i++ }
        else { out = out c; ind++; nl() }
      } else if (c == "}" || c == "]") { ind--; nl(); out = out c }
      else if (c == ",") { out = out c; nl() }
      else if (c == ":") out = out ": "
      else out = out c
    }
    print out
  }'
}

dir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $dir"

say "d365-cdc-handler demo: Dynamics 365 changes -> Service Bus -> Functions host -> handler -> Redis -> read API"
say "(no Azure needed: a private redis-server, and build/hostemu in the role of the Functions host and Service Bus)"

# ---- 1. Redis ----------------------------------------------------------------
step "1. A private Redis"
start_redis "$dir" >"$dir/redis.out" 2>&1 || fail "redis-server did not start (see $dir/redis.log)"
RC=127.0.0.1:$REDIS_PORT
say "redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') on $RC (pid $REDIS_PID, files in $dir)"

# The settings the demo depends on, pinned so that none inherited from the
# environment changes them (everything else: defaults, docs/configuration.md).
ENVS="--env RedisConnection=$RC --env CDC_TARGET=redis --env CDC_MODE=direct --env CDC_POISON=record
--env CDC_POISON_STREAM=$STREAM --env CDC_KEY_PREFIX=d365 --env CDC_MAPPING_FILE= --env CDC_LOG_LEVEL=info"

# ---- 2. The messages ----------------------------------------------------------
nmsgs=0
for f in "$MSGS"/*; do case "$f" in *.props.json) ;; *) nmsgs=$((nmsgs + 1)) ;; esac; done
step "2. Replaying $nmsgs Dynamics 365 messages ($MSGS), 4 per batch, 4 batches at once"
cat <<'EOF'
   01  Update  account Contoso   revenue 3,100,000        (made a day after the Create, delivered first)
   02  Create  account Contoso   the full record
   03  Create  account Contoso   the same message again   (Service Bus redelivery: same MessageId)
   04  Update  account Contoso   telephone1, primary contact (older than 01, delivered after it)
   05  Update  account Contoso   = 01 under another MessageId (Dataverse posted it twice)
   06  Create  account Northwind
   07  Delete  account Northwind
   08  Update  account Northwind telephone1               (made before the Delete, arrives after it)
   09  Create  lead Ana Bauer
   10  Create  lead Ben Okafor
   11  Disassociate Contoso - Ben Okafor                  (the later change, delivered first)
   12  Associate    Contoso - Ana Bauer, Ben Okafor       (the earlier change)
   13  Update  opportunity       Money, decimals, a BigInt above 2^53, multi-select, dates
   14  Update  contact           a partial update with pre/post images
   15  SetState account
   16  (poison) .NET binary body, ContentType application/msbin1 (the endpoint's default format)
EOF
cmd "$HOSTEMU --script-root $APP --env RedisConnection=$RC --messages $MSGS --batch 4 --concurrency 4 --stop"
# shellcheck disable=SC2086
"$HOSTEMU" --script-root "$APP" $ENVS --messages "$MSGS" --batch 4 --concurrency 4 \
  --deadletter "$dir/deadletter" --handler-log "$dir/handler.log" --json "$dir/summary.json" \
  --stop --verbose >"$dir/summary.txt" 2>"$dir/hostemu.err"
rc=$?
sed 's/^/    /' "$dir/summary.txt"
[ $rc = 0 ] || fail "hostemu exited $rc: $(cat "$dir/hostemu.err")"
grep -q '"deadLettered":0,' "$dir/summary.json" || fail "messages were dead-lettered"
# each answer's Logs: "messages=4 applied=3 stale=1 ... poison=0 recorded=0 ..."
awk '/\[handler log\] messages=/ {
       for (i = 1; i <= NF; i++) { split($i, kv, "="); t[kv[1]] += kv[2] }
     }
     END { printf "The handler answered: %d changes applied, %d ignored (duplicates, or older than what Redis holds), %d poison message(s) recorded.\n",
                  t["applied"], t["stale"], t["recorded"] }' "$dir/handler.log"
say "(handler log, one JSON line per event: $dir/handler.log; KEEP_TMP=1 keeps it)"

# ---- 3. Reads -----------------------------------------------------------------
# read LABEL EXPECTED_STATUS PATH [hostemu args...]: one GET through the
# DataApi function, the way the Functions host would call it.
nread=0
read_api() {
  _label=$1
  _want=$2
  _path=$3
  shift 3
  nread=$((nread + 1))
  printf '\n%s\n' "$_label"
  cmd "$HOSTEMU --script-root $APP --http GET '$_path'$(for h in "$@"; do [ "$h" = --header ] || printf " --header '%s'" "$h"; done)"
  # shellcheck disable=SC2086
  "$HOSTEMU" --script-root "$APP" $ENVS --handler-log "$dir/handler.log" --quiet --http GET "$_path" "$@" \
    >"$dir/read$nread.txt" 2>"$dir/read$nread.err" || true
  _status=$(sed -n '1s/^HTTP\/1\.1 \([0-9]*\).*/\1/p' "$dir/read$nread.txt")
  _body=$(sed '1,/^\r\{0,1\}$/d' "$dir/read$nread.txt")
  printf '    %s\n' "$(head -1 "$dir/read$nread.txt" | tr -d '\r')"
  for h in ETag x-cdc-freshness-ms; do
    grep -i "^$h:" "$dir/read$nread.txt" | tr -d '\r' | sed 's/^/    /'
  done
  printf '%s\n' "$_body" | json_pretty
  [ "$_status" = "$_want" ] ||
    fail "expected HTTP $_want, got '${_status:-no answer}': $(cat "$dir/read$nread.err")"
}

step "3. What an app reads (GET /api/data/v9.2/..., the Dataverse Web API shape)"
say "x-cdc-freshness-ms = milliseconds since the change was made in Dynamics 365 (these samples date from 2024)."
read_api "Contoso: the Create and both partial updates merged, whatever the order they arrived in" 200 \
  "/api/data/v9.2/accounts($CONTOSO)"
read_api "The same with \$select, and annotations (formatted values, lookup names) as Prefer asks" 200 \
  "/api/data/v9.2/accounts($CONTOSO)?\$select=name,revenue,telephone1,_ownerid_value" \
  --header 'Prefer: odata.include-annotations="*"'
read_api "Contoso with its primary contact and its contacts in one request (\$expand of a lookup and a 1:N collection the mapping declares)" 200 \
  "/api/data/v9.2/accounts($CONTOSO)?\$select=name,telephone1&\$expand=primarycontactid(\$select=jobtitle,telephone1),contact_customer_accounts(\$select=fullname;\$orderby=fullname;\$top=10)"
read_api "Found by its account number (an alternate key the mapping declares)" 200 \
  "/api/data/v9.2/accounts(accountnumber='CP-10042')?\$select=name,accountnumber"
read_api "The contacts of an account, from an index the mapping declares (\$filter on a lookup, \$count)" 200 \
  "/api/data/v9.2/contacts?\$filter=_parentcustomerid_value%20eq%20$CONTOSO&\$select=fullname,jobtitle&\$count=true"
read_api "Related records (N:N accountleads_association): Ben Okafor's later Disassociate wins" 200 \
  "/api/data/v9.2/accounts($CONTOSO)/accountleads_association?\$select=fullname,subject"
read_api "Northwind: deleted; the late older update did not bring it back" 404 \
  "/api/data/v9.2/accounts($NORTHWIND)"
read_api "Exact numbers: Money, a 10-decimal exchange rate and an integer above 2^53, digit for digit" 200 \
  "/api/data/v9.2/opportunities($OPPORTUNITY)?\$select=estimatedvalue,exchangerate,new_bigcounter"

# ---- 4. The poison message -------------------------------------------------------
step "4. Where the poison message went: the Redis stream $STREAM (acknowledged, not retried)"
cmd "redis-cli -p $REDIS_PORT XRANGE $STREAM - +"
redis-cli -p "$REDIS_PORT" --raw XRANGE "$STREAM" - + >"$dir/poison.txt" 2>&1 ||
  fail "redis-cli XRANGE failed: $(cat "$dir/poison.txt")"
# the body (binary) is the last field: print the fields before it
awk 'NR == 1 { printf "    %-15s %s\n", "entry", $0; next }
     NR % 2 == 0 { f = $0; if (f == "body") exit; next }
     { printf "    %-15s %s\n", f, $0 }' "$dir/poison.txt"
npoison=$(redis-cli -p "$REDIS_PORT" XLEN "$STREAM")
id=$(head -1 "$dir/poison.txt")
blen=$(redis-cli -p "$REDIS_PORT" EVAL "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
for i = 1, #e[1][2], 2 do if e[1][2][i] == 'body' then return #e[1][2][i + 1] end end
return -1" 1 "$STREAM" "$id" 2>/dev/null)
printf '    %-15s %s bytes, exactly as received (redis-cli XRANGE prints them)\n' body "$blen"
[ "$npoison" = 1 ] || fail "expected 1 poison stream entry, found $npoison"
say "Fix at the source (service endpoint Message Format = JSON), then replay or delete the entry: docs/operations.md."

# ---- 5. A dead-lettered message, recorded and replayed ---------------------------------
step "5. A message Service Bus dead-letters: recorded by the DeadLetters function, replayed after the fix"
LEAD=c4d5e6f7-6a7b-ef11-ac21-6045bdd4c6be
say "   Suppose the mapping required lead.emailaddress1 and CDC_POISON=fail (a single-message Changes"
say "   function): the Create of lead Chloé Dubois (no e-mail address) fails every delivery, and after"
say "   MaxDeliveryCount (3 here) Service Bus moves it to the subscription's dead-letter queue, which the"
say "   DeadLetters function (function_app/DeadLetters: <subscription>/\$DeadLetterQueue) consumes."
single=$dir/app_single
mkdir -p "$single" && cp -R "$APP/." "$single/" || fail "cannot copy $APP"
sed -e 's/"cardinality": "many"/"cardinality": "one"/' -e 's/"name": "msgs"/"name": "msg"/' \
  "$APP/Changes/function.json" >"$single/Changes/function.json"
printf '{ "version": 1, "tables": { "*": {}, "lead": { "required": ["emailaddress1"] } } }\n' >"$dir/strict.json"
cmd "$HOSTEMU --script-root <app, single> --env CDC_POISON=fail --env CDC_MAPPING_FILE=strict.json --messages tests/fixtures/demo/deadletter --max-delivery-count 3 --stop"
# shellcheck disable=SC2086
"$HOSTEMU" --script-root "$single" $ENVS --env CDC_POISON=fail --env "CDC_MAPPING_FILE=$dir/strict.json" \
  --messages tests/fixtures/demo/deadletter --max-delivery-count 3 --handler-log "$dir/handler.log" \
  --json "$dir/dl.json" --stop >"$dir/dl.txt" 2>"$dir/dl.err"
grep -E '^  (messages|dead-letter q) ' "$dir/dl.txt" | sed 's/^/  /'
grep -q '"deadLettered":1,' "$dir/dl.json" || fail "the message was not dead-lettered: $(cat "$dir/dl.err")"
grep -q '"deadLetterQueue":{"delivered":1,"completed":1,' "$dir/dl.json" ||
  fail "the DeadLetters function did not record it: $(tail -5 "$dir/dl.err")"

# admin METHOD PATH: one request to the Admin function (authLevel admin)
nadmin=0
admin() {
  nadmin=$((nadmin + 1))
  cmd "$HOSTEMU --script-root $APP --http $1 '$2'"
  # shellcheck disable=SC2086
  "$HOSTEMU" --script-root "$APP" $ENVS --handler-log "$dir/handler.log" --quiet --http "$1" "$2" \
    >"$dir/admin$nadmin.txt" 2>"$dir/admin$nadmin.err" || true
  printf '    %s\n' "$(head -1 "$dir/admin$nadmin.txt" | tr -d '\r')"
  sed '1,/^\r\{0,1\}$/d' "$dir/admin$nadmin.txt" | json_pretty
}
say ""
say "The record (GET /api/cdc/admin/records?kind=deadletter), with Service Bus's reason:"
admin GET "/api/cdc/admin/records?kind=deadletter"
grep -q '"reason":"MaxDeliveryCountExceeded"' "$dir/admin$nadmin.txt" ||
  fail "no dead-letter record with Service Bus's reason"
say ""
say "After fixing the cause (the mapping: the built-in defaults again), replay the dead-lettered leads:"
admin POST "/api/cdc/admin/replay?kind=deadletter&table=lead"
grep -q '"outcome":"applied"' "$dir/admin$nadmin.txt" || fail "the replay did not apply the change"
read_api "The replayed lead, served by the read API" 200 "/api/data/v9.2/leads($LEAD)?\$select=fullname,subject"
say ""
say "Metrics every instance shares (GET /api/cdc/metrics, member \"shared\": per table and outcome, freshness):"
nadmin=$((nadmin + 1))
"$HOSTEMU" --script-root "$APP" $ENVS --handler-log "$dir/handler.log" --quiet --http GET /api/cdc/metrics \
  >"$dir/admin$nadmin.txt" 2>&1 || true
sed '1,/^\r\{0,1\}$/d' "$dir/admin$nadmin.txt" | sed -n 's/.*"shared":{"scope":"shared",\("tables":.*}\),"totals".*/    \1/p'
grep -q '"lead":{[^}]*"deadlettered":1,[^}]*"replayed":1' "$dir/admin$nadmin.txt" ||
  fail "the shared metrics do not count the dead-letter and its replay"

# ---- 6. A complete replica -----------------------------------------------------
step "6. A complete replica: the snapshot, reads of records that never produced a message, reconciliation"
. "$ROOT/tests/scripts/replica_lib.sh"
say "A Dataverse Web API emulator (tests/tools/dvemu) with 300 contacts and no messages at all, an Entra ID token service"
say "(tests/tools/tokensvc), and a handler with DataverseUrl and CDC_RECONCILE_TABLES=contact."
rp_tokensvc
rp_dvemu --table contact:contacts:contactid --generate contact:300
rp_handler CDC_RECONCILE_PAGE_SIZE=100 CDC_KEY_PREFIX=d365
RPID=$H_PID
cmd "$HOSTEMU --connect <handler port> --script-root $APP --timer Reconcile   (a timer tick, as the Functions host sends it)"
rp_reconcile "$dir/rec1.out" >"$dir/rec1.log" || fail "Reconcile failed: $(cat "$dir/rec1.out")"
say "    Logs: $(cat "$dir/rec1.log")"
C7=00000007-0000-4000-8000-00000000d889
read_api "Contact 7: no message ever mentioned it; it is there from the snapshot" 200 \
  "/api/data/v9.2/contacts($C7)?\$select=firstname,lastname,_parentcustomerid_value,versionnumber" \
  --header 'Prefer: odata.include-annotations="*"'
say ""
say "A change made only in Dataverse (no message sent): contact 7's firstname becomes 'Changed in Dataverse'."
curl -sf -X POST "$DV/_records?table=contact" \
  --data-binary "[{\"contactid\":\"$C7\",\"firstname\":\"Changed in Dataverse\"}]" >/dev/null ||
  fail "dvemu did not take the change"
cmd "$HOSTEMU --connect <handler port> --script-root $APP --timer Reconcile   (the next tick: the table's delta link)"
rp_reconcile "$dir/rec2.out" >"$dir/rec2.log" || fail "Reconcile failed: $(cat "$dir/rec2.out")"
say "    Logs: $(cat "$dir/rec2.log")"
read_api "Contact 7 after reconciliation" 200 "/api/data/v9.2/contacts($C7)?\$select=firstname,versionnumber"
stop_pid "$RPID"
stop_pid "$DV_PID"

# a sanitizer build (make BUILD=build-asan SAN=1) reports on the handler's stderr
if grep -q 'Sanitizer' "$dir/handler.log"; then
  grep -A5 'Sanitizer' "$dir/handler.log" | head -20 >&2
  fail "the handler reported a sanitizer error"
fi

step "Done"
stop_pid "$REDIS_PID"
say "Stopped everything the demo started: the handlers, dvemu, tokensvc and redis-server (pid $REDIS_PID)."
say "Next: 'make run' starts the handler on a local Redis and waits for your messages (docs/quickstart.md)."

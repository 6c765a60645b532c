#!/bin/sh
# demo.sh - `make demo` in CI: runs tests/scripts/demo.sh and checks what it
# prints against what the demo messages (tests/fixtures/demo/messages) imply:
# the merged Contoso record, annotations, the related list after the
# out-of-order Disassociate, the deleted record's 404, exact numbers, the
# poison stream entry and its reason, the counts of applied and ignored
# changes; that it leaves nothing running; and that it fails loudly when it
# cannot run.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
command -v redis-server >/dev/null 2>&1 || skip "redis-server not installed (run make deps)"
dir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $dir"
out=$dir/demo.out
failures=0
ok() { log "ok: $*"; }
bad() {
  log "FAIL: $*"
  failures=$((failures + 1))
}
# has TEXT [FILE]: the output contains TEXT as a whole line (leading blanks ignored)
has() {
  if sed 's/^ *//' "${2:-$out}" | grep -qxF -- "$1"; then ok "$1"; else bad "line not printed: $1"; fi
}
hasnt() {
  if grep -qF -- "$1" "${2:-$out}"; then bad "printed but should not be: $1"; else ok "not printed: $1"; fi
}
# section START END: the lines from the one containing START to the next containing END
section() { sed -n "/$1/,/$2/p" "$out" >"$dir/section"; }

sh "$ROOT/tests/scripts/demo.sh" "$BUILD" >"$out" 2>&1
rc=$?
cat "$out" >&2
[ $rc = 0 ] || die "the demo exited $rc"
ok "the demo exited 0"

# delivery: every message settled once, nothing retried or dead-lettered;
# the duplicates (03, 05) and the late older update (08) changed nothing
has "messages        16 generated, 16 deliveries, 16 succeeded, 0 retried, 0 dead-lettered, 0 unsettled"
has "invocations     4 (4 succeeded, 0 failed)"
has "The handler answered: 12 changes applied, 3 ignored (duplicates, or older than what Redis holds), 1 poison message(s) recorded."

# Contoso: Create (02/03) + telephone1 (04) + revenue (01/05), whatever the order
section 'Contoso: the Create' 'The same with'
has "HTTP/1.1 200 OK" "$dir/section"
has '"name": "Contoso Pharmaceuticals (Zürich)",' "$dir/section"
has '"accountnumber": "CP-10042",' "$dir/section"
has '"revenue": 3100000,' "$dir/section"
has '"revenue_base": 3100000,' "$dir/section"
has '"telephone1": "+41 44 555 09 99",' "$dir/section"
has '"address1_city": "Zürich",' "$dir/section"
has '"accountid": "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1",' "$dir/section"
has '"_ownerid_value": "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d",' "$dir/section"
has '"createdon": "2024-11-08T08:05:06Z",' "$dir/section"
# modifiedon: the newest change that wrote it (01, a day later), not the Create
has '"modifiedon": "2024-11-09T08:05:07Z",' "$dir/section"
has '"exchangerate": 1.0000000000,' "$dir/section"
hasnt 'FormattedValue' "$dir/section"
# the etag is the version of the newest change (01: OperationCreatedOn + 1 day)
has 'ETag: W/"001731139507412000000000000000000001800514812"' "$dir/section"

section 'The same with' 'Contoso with its primary contact'
has '"revenue@OData.Community.Display.V1.FormattedValue": "€3,100,000.00",' "$dir/section"
has '"_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "systemuser",' "$dir/section"
has '"revenue": 3100000,' "$dir/section"
has '"telephone1": "+41 44 555 09 99"' "$dir/section"
hasnt '"accountnumber"' "$dir/section"

# $expand: Contoso's primary contact (set by 04) is the contact of 14
section 'Contoso with its primary contact' 'Found by its account number'
has "HTTP/1.1 200 OK" "$dir/section"
has '"name": "Contoso Pharmaceuticals (Zürich)",' "$dir/section"
has '"primarycontactid": {' "$dir/section"
has '"contactid": "6d81597f-2b4e-ef11-a317-000d3a2c9e1b",' "$dir/section"
has '"jobtitle": "Head of Procurement",' "$dir/section"
has '"contact_customer_accounts": [' "$dir/section"
has '"fullname": "Aoife O'"'"'Sullivan"' "$dir/section"
# the alternate key: Northwind's record is deleted, so CP-10042 is Contoso's
section 'Found by its account number' 'The contacts of an account'
has "HTTP/1.1 200 OK" "$dir/section"
has '"accountnumber": "CP-10042",' "$dir/section"
has '"accountid": "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1",' "$dir/section"

# a filtered list: the contact of 14 has parentcustomerid Contoso (generate.py)
section 'The contacts of an account' 'Related records'
has "HTTP/1.1 200 OK" "$dir/section"
has '"@odata.count": 1,' "$dir/section"
has '"fullname": "Aoife O'"'"'Sullivan",' "$dir/section"

# 11 (Disassociate Ben, newer) arrived before 12 (Associate Ana and Ben, older)
section 'A complete replica' 'A change made only in Dataverse'
has "Logs: tables=1 busy=0 pages=4 rows=300 applied=300 stale=0 deleted=0 reread=0 restarts=0 requests=4 throttled=0 throttle_wait_ms=0 complete=true" "$dir/section"
has "HTTP/1.1 200 OK" "$dir/section"
has '"firstname": "First7",' "$dir/section"
has '"_parentcustomerid_value@OData.Community.Display.V1.FormattedValue": "Account 7",' "$dir/section"
section 'A change made only in Dataverse' '== Done'
has "Logs: tables=1 busy=0 pages=1 rows=1 applied=1 stale=0 deleted=0 reread=0 restarts=0 requests=1 throttled=0 throttle_wait_ms=0 complete=true" "$dir/section"
has '"firstname": "Changed in Dataverse",' "$dir/section"

section 'Related records' 'Northwind:'
has "HTTP/1.1 200 OK" "$dir/section"
has '"fullname": "Ana Bauer",' "$dir/section"
has '"subject": "200 Sales Hub licences"' "$dir/section"
has '"leadid": "a1d2e3f4-6a7b-ef11-ac21-6045bdd4c6be",' "$dir/section"
hasnt '"fullname": "Ben Okafor"' "$dir/section"
hasnt 'b2e3f4a5-6a7b-ef11-ac21-6045bdd4c6be' "$dir/section"

# 07 (Delete) then 08 (older Update): still deleted
section 'Northwind: deleted' 'Exact numbers'
has "HTTP/1.1 404 Not Found" "$dir/section"
has '"message": "Entity '"'account'"' With Id = 01b5eeb5-455e-ee11-be6f-000d3a1aaa29 Does Not Exist"' "$dir/section"
hasnt '+1 425 555 0199' "$dir/section"

section 'Exact numbers' '== 4'
has '"estimatedvalue": 125000.5,' "$dir/section"
has '"exchangerate": 1.0000000000,' "$dir/section"
has '"new_bigcounter": 9007199254740993,' "$dir/section"

# 16: the poison stream entry, with the reason, id and exact body size
section '== 4' '== Done'
size=$(wc -c <"$ROOT/tests/fixtures/demo/messages/16_poison_msbin1.bin" | tr -d ' ')
has "message_id      demo-16-msbin1" "$dir/section"
has "content_type    application/msbin1" "$dir/section"
has "delivery_count  1" "$dir/section"
has "function        Changes" "$dir/section"
has "body            $size bytes, exactly as received (redis-cli XRANGE prints them)" "$dir/section"
if grep -q '^ *reason  *decode (unsupported): content type application/msbin1: the body is .NET binary XML.*Message Format to JSON' "$dir/section"; then
  ok "the poison reason names msbin1 and the fix"
else
  bad "the poison reason is missing or wrong"
fi

# 17: dead-lettered by Service Bus, recorded by DeadLetters, replayed after the fix
section '== 5' '== Done'
has "messages        1 generated, 3 deliveries, 0 succeeded, 2 retried, 1 dead-lettered, 0 unsettled" "$dir/section"
has "dead-letter q   1 deliveries to the audit function, 1 completed, 0 left" "$dir/section"
has '"kind": "deadletter",' "$dir/section"
has '"reason": "MaxDeliveryCountExceeded",' "$dir/section"
has '"message_id": "demo-17-lead-c",' "$dir/section"
has '"outcome": "applied",' "$dir/section"
has '"fullname": "Chloé Dubois",' "$dir/section"
if grep -q '"lead":{"applied":2,"deadlettered":1,"replayed":1}' "$dir/section"; then
  ok "the shared metrics count the dead-letter and its replay"
else
  bad "the shared metrics line is missing or wrong"
fi

# nothing left running: the Redis and the handler it names
rpid=$(sed -n 's/.*redis-server (pid \([0-9]*\)).*/\1/p' "$out" | tail -1)
hpid=$(sed -n 's/^ *handler  *pid \([0-9]*\) .*/\1/p' "$out" | head -1)
[ -n "$rpid" ] && [ -n "$hpid" ] || bad "the demo did not print the pids it started"
for p in $rpid $hpid; do
  if kill -0 "$p" 2>/dev/null; then bad "pid $p is still running after the demo"; else ok "pid $p is gone"; fi
done
tmp=$(sed -n 's/.*files in \([^)]*\)).*/\1/p' "$out" | head -1)
if [ -n "$tmp" ] && [ ! -e "$tmp" ]; then ok "its temporary directory is removed"; else bad "temporary directory $tmp left behind"; fi

# a demo that cannot run says why and exits non-zero
sh "$ROOT/tests/scripts/demo.sh" "$dir/nobuild" >"$dir/fail.out" 2>&1
rc=$?
if [ $rc != 0 ] && grep -q "demo FAILED: .*nobuild/hostemu is missing" "$dir/fail.out"; then
  ok "a missing build fails with a clear message (exit $rc)"
else
  bad "a missing build: exit $rc, output: $(cat "$dir/fail.out")"
fi

# ---- make run: tests/scripts/run.sh ------------------------------------------------
# start_run NAME [VAR=value...]: run.sh in the background; waits for its banner.
start_run() {
  _n=$1
  shift
  env "$@" sh "$ROOT/tests/scripts/run.sh" "$BUILD" >"$dir/$_n.out" 2>&1 &
  RUN_PID=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $RUN_PID"
  _i=0
  until grep -q 'Ctrl-C stops' "$dir/$_n.out"; do
    _i=$((_i + 1))
    [ $_i -lt 200 ] && kill -0 "$RUN_PID" 2>/dev/null || die "run.sh did not start: $(cat "$dir/$_n.out")"
    sleep 0.05
  done
  RUN_HPID=$(sed -n 's/.*is running: http:\/\/127.0.0.1:\([0-9]*\) (pid \([0-9]*\)).*/\2/p' "$dir/$_n.out")
  RUN_PORT=$(sed -n 's/.*is running: http:\/\/127.0.0.1:\([0-9]*\) (pid.*/\1/p' "$dir/$_n.out")
}
# printed N PATTERN: the Nth printed command line containing PATTERN
printed() { grep -F -- "$2" "$dir/run.out" | sed -n "$1p" | sed 's/^ *//'; }
# stop_run: SIGTERM (what Ctrl-C does through its trap), wait; sets RUN_RC
stop_run() {
  kill -TERM "$RUN_PID"
  _i=0
  while kill -0 "$RUN_PID" 2>/dev/null && [ $_i -lt 200 ]; do sleep 0.05; _i=$((_i + 1)); done
  wait "$RUN_PID"
  RUN_RC=$?
}

start_run run
log "run.sh: handler pid $RUN_HPID on port $RUN_PORT"
rpid=$(sed -n 's/.*private redis-server on [0-9.:]* (pid \([0-9]*\),.*/\1/p' "$dir/run.out")
rport=$(sed -n 's/.*private redis-server on 127.0.0.1:\([0-9]*\) .*/\1/p' "$dir/run.out")
[ -n "$rpid" ] && [ -n "$RUN_HPID" ] || bad "run.sh did not name the handler and Redis it started"
# the printed commands, run as printed
c=$(printed 1 "--messages tests/fixtures/demo/messages")
log "running: $c"
(cd "$ROOT" && eval "$c") >"$dir/send.out" 2>&1 || bad "the printed send command failed: $(tail -5 "$dir/send.out")"
has "messages        16 generated, 16 deliveries, 16 succeeded, 0 retried, 0 dead-lettered, 0 unsettled" "$dir/send.out"
c=$(printed 1 "--http GET '/api/data/v9.2/accounts(")
(cd "$ROOT" && eval "$c") >"$dir/get.out" 2>&1 || bad "the printed read command failed: $(cat "$dir/get.out")"
if grep -qF '"name":"Contoso Pharmaceuticals (Zürich)","revenue":3100000}' "$dir/get.out"; then
  ok "the printed read command reads the record"
else
  bad "the printed read command: $(cat "$dir/get.out")"
fi
c=$(printed 1 "--http GET '/api/cdc/metrics'")
(cd "$ROOT" && eval "$c") >"$dir/metrics.out" 2>&1
if grep -qF '"messages":16,"applied":12,"stale":3,' "$dir/metrics.out"; then
  ok "the printed metrics command shows the counters"
else
  bad "metrics: $(cat "$dir/metrics.out")"
fi
c=$(printed 1 "XRANGE d365:poison")
(cd "$ROOT" && eval "$c") >"$dir/xrange.out" 2>&1
grep -qx "demo-16-msbin1" "$dir/xrange.out" && ok "the printed redis-cli command shows the poison entry" ||
  bad "redis-cli: $(head -5 "$dir/xrange.out")"
# an intentional restart (exit 200, SIGHUP) is restarted, as the host does
kill -HUP "$RUN_HPID"
i=0
until grep -q 'restarting it, as the host does' "$dir/run.out"; do
  i=$((i + 1)); [ $i -lt 100 ] || break
  sleep 0.05
done
if wait_port "$RUN_PORT" 5 && grep -q 'exited 200 (restart requested)' "$dir/run.out"; then
  ok "exit 200 restarts the handler on the same port"
else
  bad "no restart after exit 200: $(tail -3 "$dir/run.out")"
fi
# the restarted handler starts its counters at zero; a replay of the same
# messages applies nothing, and the freshness gauge is not set by stale ones
c=$(printed 1 "--messages tests/fixtures/demo/messages")
(cd "$ROOT" && eval "$c") >"$dir/send2.out" 2>&1 || bad "the replay failed: $(tail -5 "$dir/send2.out")"
c=$(printed 1 "--http GET '/api/cdc/metrics'")
(cd "$ROOT" && eval "$c") >"$dir/metrics2.out" 2>&1
if grep -qF '"messages":16,"applied":0,"stale":15,' "$dir/metrics2.out" &&
  grep -qF '"last_apply_age_ms":0,' "$dir/metrics2.out"; then
  ok "a replay after the restart: nothing applied, no freshness from stale changes"
else
  bad "metrics after the replay: $(cat "$dir/metrics2.out")"
fi
stop_run
[ "$RUN_RC" = 0 ] && ok "run.sh stops on SIGTERM with exit 0" || bad "run.sh exited $RUN_RC"
for p in $rpid $RUN_HPID; do
  if kill -0 "$p" 2>/dev/null; then bad "pid $p still runs after run.sh stopped"; else ok "pid $p is gone"; fi
done
redis-cli -p "$rport" ping >/dev/null 2>&1 && bad "the private Redis still answers"
"$BUILD/tools/freeport" --wait "$RUN_PORT" 0 && bad "a (restarted) handler still listens on $RUN_PORT"

# RedisConnection set: that Redis is used, none is started
start_redis "$dir"
start_run run2 "RedisConnection=127.0.0.1:$REDIS_PORT"
grep -q 'Redis: RedisConnection from the environment' "$dir/run2.out" && ok "run.sh uses RedisConnection" ||
  bad "run.sh with RedisConnection: $(grep 'Redis:' "$dir/run2.out")"
"$BUILD/hostemu" --connect "$RUN_PORT" --script-root "$BUILD/app" \
  --messages "$ROOT/tests/fixtures/d365/create_account.json" >"$dir/send2.out" 2>&1 || bad "send to run2 failed"
[ "$(redis-cli -p "$REDIS_PORT" HGET 'd365:{account:5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1}' p:name |
  sed 's/^[0-9]\{45\}0://')" = \
  '"Contoso Pharmaceuticals (Zürich)"' ] && ok "the change went to the given Redis" || bad "nothing in the given Redis"
stop_run
[ "$RUN_RC" = 0 ] || bad "run.sh (RedisConnection) exited $RUN_RC"
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && ok "the given Redis is left alone" || bad "run.sh stopped a Redis it did not start"

grep -q 'Sanitizer' "$dir"/run*.out && bad "sanitizer report in the handler output of run.sh"
[ $failures = 0 ] || die "$failures check(s) failed"
log "demo and run output checked"

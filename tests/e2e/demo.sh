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
section 'Contoso: the Create' 'The same with annotations'
has "HTTP/1.1 200 OK" "$dir/section"
has '"name": "Contoso Pharmaceuticals (Zürich)",' "$dir/section"
has '"accountnumber": "CP-10042",' "$dir/section"
has '"revenue": 3100000,' "$dir/section"
has '"telephone1": "+41 44 555 09 99"' "$dir/section"
has '"accountid": "5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1",' "$dir/section"
# the etag is the version of the newest change (01: OperationCreatedOn + 1 day)
has 'ETag: W/"001731139507412000000000000000000001800514812"' "$dir/section"

section 'The same with annotations' 'Related records'
has '"revenue@OData.Community.Display.V1.FormattedValue": "€3,100,000.00",' "$dir/section"
has '"_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "systemuser",' "$dir/section"
has '"revenue": 3100000' "$dir/section"

# 11 (Disassociate Ben, newer) arrived before 12 (Associate Ana and Ben, older)
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
has '"message": "account With Id = 01b5eeb5-455e-ee11-be6f-000d3a1aaa29 Does Not Exist"' "$dir/section"
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

[ $failures = 0 ] || die "$failures check(s) failed"
log "demo output checked"

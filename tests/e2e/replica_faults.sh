#!/bin/sh
# replica_faults.sh - the replica's Web API client and its resumable state
# against dvemu's faults (issue 13): 429 with Retry-After (dvemu records
# any request that came before it elapsed: there must be none), a revoked
# token (401, one refresh), changes made only in the emulator (no message:
# reconciliation repairs them, deletes included), an expired delta token
# (the table's snapshot restarts), re-reads of records in <prefix>:reread,
# a malformed page (the run fails, its error is in the state, the next run
# goes on), and a handler killed with SIGKILL in the middle of a snapshot
# (the next run resumes from the saved page: at most one page read twice).
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
. "$ROOT/tests/scripts/replica_lib.sh"
test_init
pl_begin
[ -x "$BUILD/tools/dvemu" ] && [ -x "$BUILD/tools/replcmp" ] || die "build first: make BUILD=$BUILD all"
N=2000
start_redis "$dir"
rp_tokensvc
rp_dvemu --table contact:contacts:contactid --generate "contact:$N"
H_ENV="CDC_RECONCILE_PAGE_SIZE=200 CDC_RECONCILE_LOCK_SECONDS=2"
# shellcheck disable=SC2086
rp_handler $H_ENV
: >"$dir/deleted"
cid() { awk -v i="$1" 'BEGIN { printf "%08x-0000-4000-8000-%012x", i, i * 7919 }'; }
dv_post() { curl -sf -X POST "$DV/$1" ${2:+--data-binary "$2"} >/dev/null || die "dvemu $1 failed"; }
logv() { sed -n "s/.*$1=\([0-9a-z]*\).*/\1/p" "$2"; }
admin() { # METHOD QUERY: the admin function, as the host invokes it
  curl -s -X POST "http://127.0.0.1:$H_PORT/Replica" -H 'Content-Type: application/json' --data \
    "{\"Data\":{\"req\":{\"Url\":\"http://localhost/api/cdc/replica?$2\",\"Method\":\"$1\",\"Query\":{},\"Headers\":{}}},\"Metadata\":{}}"
}

log "case: throttled (429, Retry-After 1 s, twice)"
dv_post "_control?mode=throttle&status=429&retry_after=1&count=2"
rp_reconcile "$dir/r1.out" >"$dir/r1.log" || bad "Reconcile failed: $(cat "$dir/r1.out")"
log "$(cat "$dir/r1.log")"
expect_eq "$(rp_dvstat throttled)" 2 "dvemu answered 429 twice"
expect_eq "$(rp_dvstat early)" 0 "no request came before Retry-After elapsed"
expect_eq "$(logv throttled "$dir/r1.log")" 2 "the run counted 2 throttled answers"
[ "$(logv throttle_wait_ms "$dir/r1.log")" -ge 1900 ] && ok "waited out both Retry-After" ||
  bad "throttle_wait_ms=$(logv throttle_wait_ms "$dir/r1.log")"
rp_compare "snapshot after throttling"

log "case: 503 with Retry-After"
dv_post "_control?mode=throttle&status=503&retry_after=1&count=1"
dv_post "_records?table=contact" "[{\"contactid\":\"$(cid 3)\",\"firstname\":\"After 503\"}]"
rp_reconcile "$dir/r2.out" >/dev/null || bad "Reconcile after 503 failed: $(cat "$dir/r2.out")"
expect_eq "$(rp_dvstat early)" 0 "no request before the 503's Retry-After"

log "case: changes made only in the emulator (no message) and deletes"
dv_post "_records?table=contact" "[{\"contactid\":\"$(cid 10)\",\"firstname\":\"Only in Dataverse\",\"numberofchildren\":9},{\"contactid\":\"$(cid 11)\",\"_parentcustomerid_value\":null}]"
dv_post "_delete?table=contact&id=$(cid 12)"
cid 12 >>"$dir/deleted"
echo >>"$dir/deleted"
rp_reconcile "$dir/r3.out" >"$dir/r3.log" || bad "Reconcile failed: $(cat "$dir/r3.out")"
expect_eq "$(logv deleted "$dir/r3.log")" 1 "one \$deletedEntity applied"
rp_compare "reconciled through the delta link" "$dir/deleted"

log "case: token revoked (401, one refresh)"
curl -sf -X POST "http://127.0.0.1:$TOK_PORT/_revoke" >/dev/null || die "tokensvc /_revoke failed"
dv_post "_records?table=contact" "[{\"contactid\":\"$(cid 20)\",\"firstname\":\"After revoke\"}]"
rp_reconcile "$dir/r4.out" >/dev/null || bad "Reconcile after revoke failed: $(cat "$dir/r4.out")"
[ "$(rp_dvstat unauthorized)" -ge 1 ] && ok "dvemu refused the revoked token" ||
  bad "dvemu never answered 401"
rp_compare "after a token refresh" "$dir/deleted"

log "case: expired delta token"
dv_post "_control?mode=expire"
dv_post "_records?table=contact" "[{\"contactid\":\"$(cid 30)\",\"firstname\":\"After expiry\"}]"
rp_reconcile "$dir/r5.out" >"$dir/r5.log" || bad "Reconcile failed: $(cat "$dir/r5.out")"
expect_eq "$(logv restarts "$dir/r5.log")" 1 "the snapshot restarted once"
expect_eq "$(logv complete "$dir/r5.log")" true "and completed"
rp_compare "after the restarted snapshot" "$dir/deleted"

log "case: re-reads of marked records"
dv_post "_records?table=contact" "[{\"contactid\":\"$(cid 40)\",\"firstname\":\"Reread me\"}]"
dv_post "_delete?table=contact&id=$(cid 41)"
cid 41 >>"$dir/deleted"
echo >>"$dir/deleted"
redis-cli -p "$REDIS_PORT" ZADD d365:reread 1 "contact:$(cid 40)" 2 "contact:$(cid 41)" >/dev/null
f0=$(rp_dvstat filter)
rp_reconcile "$dir/r6.out" >"$dir/r6.log" || bad "Reconcile failed: $(cat "$dir/r6.out")"
expect_eq "$(logv reread "$dir/r6.log")" 2 "two records re-read"
expect_eq "$(($(rp_dvstat filter) - f0))" 1 "in one \$filter=contactid in (...) request"
expect_eq "$(redis-cli -p "$REDIS_PORT" ZCARD d365:reread)" 0 "nothing left to re-read"
rp_compare "after re-reads" "$dir/deleted"

log "case: a malformed page"
dv_post "_control?mode=malformed&count=1"
dv_post "_records?table=contact" "[{\"contactid\":\"$(cid 50)\",\"firstname\":\"After garbage\"}]"
if rp_reconcile "$dir/r7.out" >/dev/null; then bad "a malformed page was accepted"; else ok "a malformed page fails the run"; fi
admin GET "" >"$dir/state.json"
grep -qF 'last_error\":\"Web API page is not JSON' "$dir/state.json" && ok "the state shows the error" ||
  bad "state: $(cat "$dir/state.json")"
rp_reconcile "$dir/r8.out" >/dev/null || bad "the next run failed: $(cat "$dir/r8.out")"
rp_compare "after the malformed page" "$dir/deleted"

log "case: an answer larger than CDC_DATAVERSE_MAX_RESPONSE_BYTES"
stop_pid "$H_PID"
# shellcheck disable=SC2086
rp_handler $H_ENV CDC_DATAVERSE_MAX_RESPONSE_BYTES=20000
admin POST "action=restart&table=contact" >/dev/null
if rp_reconcile "$dir/rcap.out" >/dev/null; then bad "a page over the cap was read"; else
  grep -q 'larger than 20000 bytes' "$dir/rcap.out" && ok "a page over the cap fails the run: $(sed -n 's/^reason: //p' "$dir/rcap.out" | cut -c1-120)" ||
    bad "cap: $(cat "$dir/rcap.out")"
fi
stop_pid "$H_PID"
# shellcheck disable=SC2086
rp_handler $H_ENV

log "case: killed in the middle of a snapshot"
admin POST "action=restart&table=contact" >"$dir/restart.json"
grep -qF 'phase\":\"snapshot' "$dir/restart.json" && ok "admin restart" || bad "restart: $(cat "$dir/restart.json")"
rows0=$(rp_dvstat rows)
dv_post "_control?mode=slow&ms=250&count=100"
rp_reconcile "$dir/r9.out" >/dev/null 2>&1 &
RC=$!
sleep 1.2
kill -9 "$H_PID"
wait "$RC" 2>/dev/null
pages=$(redis-cli -p "$REDIS_PORT" HGET 'd365:{replica:contact}' pages)
[ "${pages:-0}" -ge 1 ] && [ "$pages" -lt $((N / 200)) ] && ok "killed after $pages pages" ||
  bad "killed after ${pages:-no} pages"
dv_post "_control?mode=ok"
# shellcheck disable=SC2086
rp_handler $H_ENV
sleep 2.2 # the dead worker's lock expires (CDC_RECONCILE_LOCK_SECONDS=2)
rp_reconcile "$dir/r10.out" >"$dir/r10.log" || bad "resume failed: $(cat "$dir/r10.out")"
log "$(cat "$dir/r10.log")"
read_rows=$(($(rp_dvstat rows) - rows0))
live=$(curl -s "$DV/_records?table=contact" | grep -o '"contactid"' | wc -l)
[ "$read_rows" -le $((live + 200 + 200)) ] && ok "$read_rows rows read for $live records (at most one page twice)" ||
  bad "$read_rows rows read for $live records"
rp_compare "after resuming" "$dir/deleted"

log "case: the admin function as the host forwards it (enableForwardingHttpRequest)"
"$BUILD/hostemu" --connect "$H_PORT" --script-root "$BUILD/app" --http GET /api/cdc/replica \
  >"$dir/fwd.txt" 2>"$dir/fwd.err"
head -1 "$dir/fwd.txt" | grep -q ' 200 ' && grep -q '"contact":{"phase":"delta"' "$dir/fwd.txt" &&
  ok "GET /api/cdc/replica shows the state" || bad "forwarded GET: $(cat "$dir/fwd.txt" "$dir/fwd.err")"
pl_finish

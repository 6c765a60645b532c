#!/bin/sh
# replica_snapshot.sh - the snapshot against the messages (issue 13): dvemu
# (the Dataverse Web API emulator) holds REPLICA_RECORDS contacts (10,000;
# 2,000 under the sanitizers) and writes the Service Bus message of every
# change it makes; 3,000 updates and 100 deletes follow. The messages go to
# the handler shuffled, a fifth of them twice, through build/hostemu, *while*
# the Reconcile function snapshots the table (pages of 500), and while more
# changes are made in the emulator. Then the rest of the messages, one more
# Reconcile (the delta link), and the replica must equal the emulator's
# final state record for record and column for column (tests/tools/replcmp
# reads Redis the way the read API does), deleted records deleted; and the
# PostgreSQL table (CDC_TARGET=redis+sql) holds the same live rows, column
# for column (REPLICA_SQL=0 leaves PostgreSQL out).
# replica_snapshot_times.sh runs it with messages that carry no versionnumber.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
. "$ROOT/tests/scripts/replica_lib.sh"
test_init
pl_begin
[ -x "$BUILD/tools/dvemu" ] && [ -x "$BUILD/tools/replcmp" ] || die "build first: make BUILD=$BUILD all"
case "$BUILD" in */asan*) N=${REPLICA_RECORDS:-2000} ;; *) N=${REPLICA_RECORDS:-10000} ;; esac
mkdir -p "$dir/d1" "$dir/d2"
start_redis "$dir"
SQL=${REPLICA_SQL:-1}
if [ "$SQL" = 1 ]; then
  pgdir=$(tmpdir)
  CLEANUP_DIRS="$CLEANUP_DIRS $pgdir"
  start_postgres "$pgdir"
fi
rp_tokensvc
# messages under random names (hostemu delivers in name order), every
# fifth one twice
# REPLICA_NO_POST_IMAGE=1: messages without versionnumber (times order them)
rp_dvemu --table contact:contacts:contactid --generate "contact:$N" --messages "$dir/d1" \
  --shuffle "$(date +%s)" --dup-every 5 --no-post-image "${REPLICA_NO_POST_IMAGE:-0}"
log "dvemu on $DV_PORT with $N contacts"

# updates FROM TO STEP WORD: contacts FROM..TO by STEP get a new firstname,
# numberofchildren and a null email; deletes FROM TO STEP removes them (ids
# as dvemu generates them; awk writes the JSON in one process)
updates() {
  awk -v a="$1" -v b="$2" -v s="$3" -v w="$4" 'BEGIN {
    printf "["; for (i = a; i <= b; i += s) {
      printf "%s{\"contactid\":\"%08x-0000-4000-8000-%012x\",\"firstname\":\"%s %d\",\"numberofchildren\":%d,\"emailaddress1\":null}",
        (i == a ? "" : ","), i, i * 7919, w, i, i % 7 }
    printf "]" }' >"$dir/upd.json"
  curl -sf -X POST --data-binary @"$dir/upd.json" "$DV/_records?table=contact" >/dev/null ||
    die "dvemu update failed"
}
deletes() {
  awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { for (i = a; i <= b; i += s)
    printf "%08x-0000-4000-8000-%012x\n", i, i * 7919 }' >"$dir/del.txt"
  cat "$dir/del.txt" >>"$dir/deleted"
  awk 'BEGIN { printf "[" } { printf "%s\"%s\"", (NR > 1 ? "," : ""), $0 } END { printf "]" }' \
    "$dir/del.txt" >"$dir/del.json"
  curl -sf -X POST --data-binary @"$dir/del.json" "$DV/_delete?table=contact" >/dev/null ||
    die "dvemu delete failed"
}

updates 0 $((N - 1)) 3 "Updated"
deletes 5 $((N - 1)) $((N / 100))
curl -sf -X POST "$DV/_messages?dir=$dir/d2" >/dev/null || die "dvemu /_messages failed"
log "$(count_msgs "$dir/d1") messages to deliver (shuffled, some twice)"

if [ "$SQL" = 1 ]; then
  rp_handler CDC_RECONCILE_PAGE_SIZE=500 CDC_LOG_LEVEL=warn CDC_TARGET=redis+sql "SqlConnectionString=$PG_ODBC"
else
  rp_handler CDC_RECONCILE_PAGE_SIZE=500 CDC_LOG_LEVEL=warn
fi
"$BUILD/hostemu" --connect "$H_PORT" --function Changes --trigger-name msgs --messages "$dir/d1" \
  --batch 100 --concurrency 4 --json "$dir/d1.json" --quiet 2>"$dir/d1.err" &
HE=$!
rp_reconcile "$dir/r1.out" >"$dir/r1.log" &
RC=$!
# changes while both run: they reach the replica through messages (later)
# and through the delta link
updates 1 $((N - 1)) 11 "During"
deletes 7 $((N - 1)) $((N / 50))
wait "$HE" || bad "hostemu (first messages) exited $?: $(tail -3 "$dir/d1.err")"
wait "$RC" || bad "Reconcile failed: $(cat "$dir/r1.out")"
log "snapshot: $(cat "$dir/r1.log")"
"$BUILD/hostemu" --connect "$H_PORT" --function Changes --trigger-name msgs --messages "$dir/d2" \
  --batch 50 --concurrency 4 --quiet 2>"$dir/d2.err" || bad "hostemu (later messages) failed"
rp_reconcile "$dir/r2.out" >"$dir/r2.log" || bad "second Reconcile failed: $(cat "$dir/r2.out")"
log "delta: $(cat "$dir/r2.log")"
expect_eq "$(sed -n 's/.*complete=\([a-z]*\).*/\1/p' "$dir/r2.log")" true "the second run completed"
rp_compare "replica = emulator after snapshot + shuffled, duplicated messages" "$dir/deleted"
if [ "$SQL" = 1 ]; then
  COLS=contactid,firstname,lastname,numberofchildren,emailaddress1,donotemail,_parentcustomerid_value,versionnumber
  curl -sf "$DV/_lines?table=contact&cols=$COLS" | LC_ALL=C sort >"$dir/want.txt"
  pg_psql "SELECT contactid || '|' || coalesce(firstname, '') || '|' || coalesce(lastname, '') || '|' ||
      coalesce(numberofchildren::text, '') || '|' || coalesce(emailaddress1, '') || '|' ||
      CASE WHEN donotemail THEN 'true' WHEN NOT donotemail THEN 'false' ELSE '' END || '|' ||
      coalesce(_parentcustomerid_value::text, '') || '|' || coalesce(versionnumber::text, '')
    FROM contact WHERE NOT _cdc_deleted" 2>&1 | LC_ALL=C sort >"$dir/sql.txt"
  if cmp -s "$dir/want.txt" "$dir/sql.txt"; then
    ok "PostgreSQL = emulator: $(wc -l <"$dir/sql.txt") live rows, column for column"
  else
    bad "PostgreSQL differs: $(diff "$dir/want.txt" "$dir/sql.txt" | head -8)"
  fi
fi
log "dvemu: $(curl -s "$DV/_stats")"
pages=$(rp_dvstat pages)
# pages of 500 + the delta link reads; nothing read twice
[ "$pages" -le $((N / 500 + 3)) ] && ok "$pages Web API pages for $N records" ||
  bad "$pages Web API pages for $N records"
pl_finish

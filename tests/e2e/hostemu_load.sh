#!/bin/sh
# hostemu_load.sh - the load-generator side: --concurrency is actually
# reached (the handler sees that many simultaneous requests), batches are
# filled, --repeat / --rate / --duration shape the run, --vary rewrites
# exactly the record id and OperationCreatedOn, the summary numbers add up
# (text and --json), and ^C ends a run with a summary.
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
HOSTEMU_LIB=1 . "$ROOT/tests/e2e/hostemu_cli.sh"
he_init

FN='{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "q", "connection": "SB", "dataType": "binary" } ] }'
FNB='{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msgs", "queueName": "q", "connection": "SB", "dataType": "binary", "cardinality": "many" } ] }'
mkdir -p "$T/m24" "$T/m16" "$T/m20"
i=1
while [ $i -le 24 ]; do
  f=m$(printf %02d $i).json
  printf '{"n":%d}' $i >"$T/m24/$f"
  [ $i -le 16 ] && cp "$T/m24/$f" "$T/m16/"
  [ $i -le 20 ] && cp "$T/m24/$f" "$T/m20/"
  i=$((i + 1))
done

log "concurrency: 8 invocations in flight at once"
# the handler holds each request until 8 are in flight: reaching 8 does not
# depend on timing, and a 9th would show as a maximum above 8
he_app conc ProcessChange "$FN"
FAKE_ARGS='--hold-until 8' he_run conc --messages "$T/m16" --concurrency 8 --json "$T/conc.json" >"$T/conc.out" 2>&1
expect_eq "exit status" "$?" 0
expect_eq "handler saw at most/at least 8 at once" "$(cat "$T/conc/rec/max_inflight")" 8
expect_eq "summary max in flight" "$(jget "$T/conc.json" concurrency maxInFlight)" 8
expect_eq "limit" "$(jget "$T/conc.json" concurrency limit)" 8
expect_eq "all delivered" "$(jget "$T/conc.json" messages succeeded)" 16

log "batches: up to 5 messages per invocation, 2 invocations at once"
he_app batch Batch "$FNB"
FAKE_ARGS='--hold-until 2' he_run batch --messages "$T/m20" --batch 5 --concurrency 2 --json "$T/batch.json" >"$T/batch.out" 2>&1
expect_eq "exit status" "$?" 0
expect_eq "handler max in flight" "$(cat "$T/batch/rec/max_inflight")" 2
expect_eq "invocations" "$(jget "$T/batch.json" invocations)" 4
for b in $(bodies batch); do jstr "$b" Data msgs | fh json --len -; done | sort -n | tr '\n' ' ' >"$T/sizes"
expect_eq "batch sizes" "$(cat "$T/sizes")" "5 5 5 5 "

log "summary numbers: --repeat 5 of 3 messages"
he_app sum ProcessChange "$FN"
he_run sum --messages "$T/m24/m01.json" --messages "$T/m24/m02.json" --messages "$T/m24/m03.json" \
  --repeat 5 --concurrency 4 --json "$T/sum.json" >"$T/sum.out" 2>&1
expect_eq "exit status" "$?" 0
expect_eq "messages" "$(jget "$T/sum.json" messages)" \
  '{"generated":15,"delivered":15,"succeeded":15,"retried":0,"deadLettered":0,"unsettled":0}'
expect_eq "invocations" "$(jget "$T/sum.json" invocations)" 15
expect_eq "requests received" "$(bodies sum | wc -l)" 15
expect_eq "distinct MessageIds" "$(for b in $(bodies sum); do jstr "$b" Metadata MessageId; echo; done | sort -u | wc -l)" 15
jget "$T/sum.json" latencyMs >"$T/lat"
awk -v l="$(cat "$T/lat")" 'BEGIN {
  n = split(l, a, /[{}:,]/); for (i = 1; i <= n; i++) v[a[i]] = a[i + 1]
  exit !(v["\"p50\""] > 0 && v["\"p50\""] <= v["\"p90\""] && v["\"p90\""] <= v["\"p99\""] && v["\"p99\""] <= v["\"max\""]) }' ||
  die "latency percentiles out of order: $(cat "$T/lat")"
EL=$(jget "$T/sum.json" elapsedSeconds)
IPS=$(jget "$T/sum.json" invocationsPerSecond)
awk -v e="$EL" -v r="$IPS" 'BEGIN { d = 15 / e - r; if (d < 0) d = -d; exit !(e > 0 && d <= r * 0.01 + 0.01) }' ||
  die "invocations/s $IPS does not match 15 invocations over $EL s"
for line in "function        ProcessChange (serviceBusTrigger, binary, single)" \
  "invocations     15 (15 succeeded, 0 failed)" \
  "messages        15 generated, 15 deliveries, 15 succeeded, 0 retried, 0 dead-lettered, 0 unsettled" \
  "concurrency     limit 4, max in flight 4"; do
  grep -qF "$line" "$T/sum.out" || die "summary lacks [$line]: $(cat "$T/sum.out")"
done
grep -Eq "latency ms      p50 [0-9.]+  p90 [0-9.]+  p99 [0-9.]+  max [0-9.]+" "$T/sum.out" || die "no latency line"

log "--vary: a fresh record id and a later OperationCreatedOn per copy, nothing else"
cp "$FIX/create_account.json" "$FIX/update_contact_partial.json" "$T/"
he_app vary ProcessChange "$FN"
he_run vary --messages "$T/create_account.json" --messages "$T/update_contact_partial.json" \
  --repeat 3 --vary --concurrency 1 >"$T/vary.out" 2>&1
expect_eq "exit status" "$?" 0
k=0
for b in $(bodies vary); do
  copy=$((k / 2))
  if [ $((k % 2)) = 0 ]; then src=$T/create_account.json id=5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1; else
    src=$T/update_contact_partial.json id=6d81597f-2b4e-ef11-a317-000d3a2c9e1b; fi
  fh json --b64 "$b" Data msg >"$T/v$k"
  new=$(grep -o '"PrimaryEntityId": *"[^"]*"' "$T/v$k" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
  [ "$new" != "$id" ] || die "copy $k kept the record id"
  expect_match "fresh id" "$new" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
  expect_eq "occurrences of the new id" "$(grep -o "$new" "$T/v$k" | wc -l)" "$(grep -o "$id" "$src" | wc -l)"
  printf '%s\n' "$new" >>"$T/ids"
  # undo exactly the documented rewrite: the body must then be the original
  sed "s/$new/$id/g" "$T/v$k" | perl -pe 's/("OperationCreatedOn":\s*"\\\/Date\()(\d+)/$1 . ($2 - '"$copy"' - 1)/ge' >"$T/u$k"
  cmp "$T/u$k" "$src" || die "copy $k differs from $src beyond the id and OperationCreatedOn"
  k=$((k + 1))
done
expect_eq "copies" "$k" 6
expect_eq "distinct ids" "$(sort -u "$T/ids" | wc -l)" 6
grep -q '"OperationCreatedOn": "\\/Date(1731421270535-0700)\\/"' "$T/v5" || die "third copy OperationCreatedOn: $(grep -o '"OperationCreatedOn": "[^"]*"' "$T/v5")"

log "--rate caps deliveries per second; --duration ends the run"
he_app rate ProcessChange "$FN"
he_run rate --messages "$T/m24/m01.json" --duration 1 --rate 40 --json "$T/rate.json" >"$T/rate.out" 2>&1
expect_eq "exit status" "$?" 0
D=$(jget "$T/rate.json" messages delivered)
[ "$D" -ge 1 ] && [ "$D" -le 41 ] || die "$D deliveries in 1 s at 40/s"
expect_eq "every delivery settled" "$(jget "$T/rate.json" messages succeeded)" "$D"

log "^C finishes the invocations in flight and prints the summary"
he_app intr ProcessChange "$FN"
FAKE_ARGS='--sleep-ms 300' REC=$T/intr/rec "$HE" --script-root "$T/intr" --messages "$T/m24/m01.json" \
  --duration 60 --concurrency 2 --json "$T/intr.json" >"$T/intr.out" 2>&1 &
HP=$!
CLEANUP_PIDS="$CLEANUP_PIDS $HP"
i=0
until [ -s "$T/intr/rec/max_inflight" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $HP
i=0
while kill -0 $HP 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 $HP 2>/dev/null && die "hostemu still running 10 s after SIGINT"
wait $HP
expect_eq "exit status" "$?" 0
grep -q "interrupted: finishing the invocations in flight" "$T/intr.out" || die "$(cat "$T/intr.out")"
expect_eq "nothing left unsettled" "$(jget "$T/intr.json" messages unsettled)" 0
[ "$(jget "$T/intr.json" messages succeeded)" -ge 1 ] || die "nothing delivered"
log "ok"

#!/bin/sh
# redis_cluster.sh - the quick Redis Cluster check of make check: a real
# cluster on loopback (3 primaries + 3 replicas), found by CDC_REDIS_CLUSTER=auto
# from a RedisConnection listing every node; batches spread over all slots
# are written one round trip per primary, read back through the read
# functions (one multi-record read gathering from every primary), and every
# record and relationship is exact. The slow cluster tests (resharding,
# failover, the delivery orders) are tests/cluster/ (make cluster-check).
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/cluster_lib.sh"
test_init
T="$BUILD/itest/itest_redis_cluster"
[ -x "$T" ] || die "build $T first (make tools)"
dir=$(tmpdir)
start_cluster "$dir"
log "cluster up: $CLUSTER_SEEDS"
export REDIS_CONN="$CLUSTER_SEEDS"
N=30
SIZE=300
"$T" stream $N $SIZE 0 >"$dir/stream.out" 2>"$dir/stream.err" || {
  tail -5 "$dir/stream.out" >&2; cat "$dir/stream.err" >&2; die "the stream failed"; }
tail -3 "$dir/stream.out"
[ "$(grep -c '^ok .* read=ok' "$dir/stream.out")" = $N ] || die "not every batch was confirmed and read back"
# one round trip per primary: three per batch once the map is known
rts=$(sed -n 's/^ok [0-9]* round_trips=\([0-9]*\) .*/\1/p' "$dir/stream.out" | tail -n +2 | sort -u | tr '\n' ' ')
[ "$rts" = "3 " ] || die "round trips per batch: '$rts', expected 3 (one per primary)"
# and every multi-record read too: the stream's exchanges (a batch write and
# a read of the whole batch each) took three node round trips apiece
st=$(grep '^stats' "$dir/stream.out")
ex=$(echo "$st" | sed -n 's/.* batches=\([0-9]*\).*/\1/p')
nrt=$(echo "$st" | sed -n 's/.* node_round_trips=\([0-9]*\).*/\1/p')
[ "$ex" = $((2 * N)) ] && [ "$nrt" = $((6 * N)) ] ||
  die "expected $((2 * N)) exchanges in $((6 * N)) node round trips: $st"
log "every batch and every multi-record read in one round trip per primary ($st)"
# the keys really are spread over the three primaries
for p in $(primaries); do
  n=$(redis-cli -p "$p" DBSIZE)
  [ "$n" -gt $((N * SIZE / 5)) ] || die "primary $p holds only $n keys"
  log "primary $p: $n keys"
done
"$T" verify $N $SIZE >"$dir/verify.out" 2>&1 || { cat "$dir/verify.out" >&2; die "verification failed"; }
tail -2 "$dir/verify.out"
# one primary stalls (CLIENT PAUSE WRITE for 1.5 s, syncTimeout 500 ms): its
# part of the batch times out and is retried until it is confirmed, while the
# other primaries' parts, confirmed at the first attempt, are never sent
# again: on them every apply-script call ran exactly once (one call per key)
for p in $(primaries); do redis-cli -p "$p" FLUSHALL >/dev/null; redis-cli -p "$p" CONFIG RESETSTAT >/dev/null; done
set -- $(primaries)
stalled=$1
redis-cli -p "$stalled" CLIENT PAUSE 1500 WRITE >/dev/null
REDIS_CONN="$CLUSTER_SEEDS,syncTimeout=500" "$T" stream 1 $SIZE 0 >"$dir/stall.out" 2>&1 ||
  { cat "$dir/stall.out" >&2; die "the batch with a stalled primary failed"; }
retries=$(sed -n 's/^ok 0 .* retries=\([0-9]*\) .*/\1/p' "$dir/stall.out")
[ "${retries:-0}" -ge 1 ] || die "the stalled primary's part was not retried: $(head -1 "$dir/stall.out")"
evalsha_calls() { redis-cli -p "$1" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p'; }
for p in "$@"; do
  [ "$p" = "$stalled" ] && continue
  c=$(evalsha_calls "$p") k=$(redis-cli -p "$p" DBSIZE)
  [ "$c" = "$k" ] || die "primary $p ran $c apply-script calls for $k keys: confirmed commands were resent"
done
log "a stalled primary: its part retried ($retries retries), the others' parts sent once ($(for p in "$@"; do printf '%s:%s/%s ' "$p" "$(evalsha_calls "$p")" "$(redis-cli -p "$p" DBSIZE)"; done)calls/keys)"
"$T" verify 1 $SIZE >"$dir/stall_verify.out" 2>&1 || { cat "$dir/stall_verify.out" >&2; die "verify after the stall"; }

# the first seed is down: the others are asked (mode and topology)
dead=$(free_port)
REDIS_CONN="127.0.0.1:$dead,$CLUSTER_SEEDS" "$T" stream 2 50 0 >"$dir/seed.out" 2>&1 ||
  { cat "$dir/seed.out" >&2; die "with the first seed down"; }
log "first seed (127.0.0.1:$dead) down: found the cluster through the others"

# NOSCRIPT per node: every primary forgets the apply script while batches
# stream on open connections; each primary answers NOSCRIPT, the script is
# loaded again there, and the batches go through
"$T" stream 40 20 50 >"$dir/noscript.out" 2>&1 &
spid=$!
on_exit "kill $spid"
i=0
until [ "$(grep -c '^ok' "$dir/noscript.out")" -ge 10 ]; do
  i=$((i + 1)); [ $i -lt 400 ] || die "the stream did not start"
  sleep 0.025
done
for p in $(primaries); do redis-cli -p "$p" SCRIPT FLUSH >/dev/null; done
wait $spid || { cat "$dir/noscript.out" >&2; die "the stream failed after SCRIPT FLUSH"; }
ns=$(sed -n 's/^stats .* noscript=\([0-9]*\).*/\1/p' "$dir/noscript.out")
[ "$ns" -ge 3 ] || die "NOSCRIPT followed $ns times, expected one per primary: $(grep stats "$dir/noscript.out")"
log "after SCRIPT FLUSH on every primary: $ns NOSCRIPT answered by loading the script there"

# ASK, deterministically: the slot of the first record is being migrated
# (IMPORTING on one primary, MIGRATING on its owner) and the record does not
# exist yet, so its owner answers ASK and the write and the reads follow it
for p in $(primaries); do redis-cli -p "$p" FLUSHALL >/dev/null; done
key='d365:{account:00000000-0000-0000-0000-000000000000}'
slot=$(redis-cli -p "$(first_live_port)" CLUSTER KEYSLOT "$key")
src=$(redis-cli -c -p "$(first_live_port)" CLUSTER NODES | awk -v s="$slot" '$3 ~ /master/ { for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) { split($2, a, "[:@]"); print a[2] } } }')
for p in $(primaries); do [ "$p" != "$src" ] && dst=$p && break; done
srcid=$(redis-cli -p "$src" CLUSTER MYID) dstid=$(redis-cli -p "$dst" CLUSTER MYID)
redis-cli -p "$dst" CLUSTER SETSLOT "$slot" IMPORTING "$srcid" >/dev/null
redis-cli -p "$src" CLUSTER SETSLOT "$slot" MIGRATING "$dstid" >/dev/null
"$T" stream 1 1 0 >"$dir/ask.out" 2>&1 || { cat "$dir/ask.out" >&2; die "the write during the migration failed"; }
ask=$(sed -n 's/^stats .* ask=\([0-9]*\).*/\1/p' "$dir/ask.out")
[ "$ask" -ge 2 ] || die "ASK followed $ask times, expected the write and the read: $(grep stats "$dir/ask.out")"
# on the importing node (seen after ASKING), not on the migrating one (which
# answers ASK for a key it does not have)
on_dst=$(printf 'ASKING\nEXISTS %s\n' "$key" | redis-cli -p "$dst" | tail -1)
on_src=$(redis-cli -p "$src" EXISTS "$key")
case "$on_dst/$on_src" in 1/ASK*) ;; *) die "the record is not on the importing node only: $on_dst/$on_src" ;; esac
for p in $(primaries); do redis-cli -p "$p" CLUSTER SETSLOT "$slot" NODE "$dstid" >/dev/null; done
"$T" verify 1 1 >"$dir/ask_verify.out" 2>&1 || { cat "$dir/ask_verify.out" >&2; die "verify after the migration"; }
log "slot $slot migrating $src -> $dst: the write and its read followed ASK ($ask times); read again after the move"

# forced off: a single-node client on a cluster gets MOVED and says so
CDC_REDIS_CLUSTER=off REDIS_CONN="127.0.0.1:$(primaries | head -1)" "$T" stream 1 50 0 >"$dir/off.out" 2>&1 &&
  die "CDC_REDIS_CLUSTER=off against a cluster succeeded"
grep -q MOVED "$dir/off.out" || { cat "$dir/off.out" >&2; die "no MOVED in the error"; }
log "CDC_REDIS_CLUSTER=off: the MOVED error is reported ($(grep -o 'MOVED [0-9]* [0-9.:]*' "$dir/off.out" | head -1))"
log "cluster smoke test passed"

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
log "every batch in one round trip per primary"
# the keys really are spread over the three primaries
for p in $(primaries); do
  n=$(redis-cli -p "$p" DBSIZE)
  [ "$n" -gt $((N * SIZE / 5)) ] || die "primary $p holds only $n keys"
  log "primary $p: $n keys"
done
"$T" verify $N $SIZE >"$dir/verify.out" 2>&1 || { cat "$dir/verify.out" >&2; die "verification failed"; }
tail -2 "$dir/verify.out"
# forced off: a single-node client on a cluster gets MOVED and says so
CDC_REDIS_CLUSTER=off REDIS_CONN="127.0.0.1:$(primaries | head -1)" "$T" stream 1 50 0 >"$dir/off.out" 2>&1 &&
  die "CDC_REDIS_CLUSTER=off against a cluster succeeded"
grep -q MOVED "$dir/off.out" || { cat "$dir/off.out" >&2; die "no MOVED in the error"; }
log "CDC_REDIS_CLUSTER=off: the MOVED error is reported ($(grep -o 'MOVED [0-9]* [0-9.:]*' "$dir/off.out" | head -1))"
log "cluster smoke test passed"

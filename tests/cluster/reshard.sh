#!/bin/sh
# reshard.sh - (b) slots move between primaries under load: batches stream
# (each read back at once) while redis-cli --cluster reshard moves 4000 slots
# from one primary to another and --cluster rebalance moves them back, so
# writes and reads meet MOVED (slots already moved) and ASK (keys of a slot
# being migrated); meanwhile the whole pipeline (hostemu -> handler) delivers
# Creates, each of which must be acknowledged and stored. Every batch must be
# confirmed within its retry budget and read back exact, the client must have
# followed MOVED, and every record and relationship is in
# place afterwards.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
. "$ROOT/tests/scripts/cluster_lib.sh"
test_init
T="$BUILD/itest/itest_redis_cluster"
[ -x "$T" ] || die "build $T first (make tools)"
dir=$(tmpdir)
start_cluster "$dir"
export REDIS_CONN="$CLUSTER_SEEDS"
SIZE=100
ITEST_STOP_FILE=$dir/stop "$T" stream 100000 $SIZE 10 >"$dir/stream.out" 2>"$dir/stream.err" &
spid=$!
on_exit "kill $spid"
oks() { grep -c '^ok' "$dir/stream.out"; }
wait_oks() { # wait_oks N: until N batches are confirmed (or the stream ended)
  _i=0
  until [ "$(oks)" -ge "$1" ] || ! kill -0 $spid 2>/dev/null; do
    _i=$((_i + 1)); [ $_i -lt 1200 ] || die "the stream stalled at $(oks) batches"
    sleep 0.05
  done
}
wait_oks 40
cl_load_start load 20
set -- $(primaries)
A=$1 B=$2
ida=$(redis-cli -p "$A" cluster myid | tr -d '\r')
idb=$(redis-cli -p "$B" cluster myid | tr -d '\r')
log "resharding 4000 slots from $A to $B under load (after $(oks) batches)"
redis-cli --cluster reshard "127.0.0.1:$A" --cluster-from "$ida" --cluster-to "$idb" \
  --cluster-slots 4000 --cluster-yes --cluster-pipeline 5 >"$dir/reshard.log" 2>&1 ||
  { tail -20 "$dir/reshard.log" >&2; die "reshard failed"; }
log "reshard done (after $(oks) batches); rebalancing"
wait_cluster_ok 30
n0=$(oks)
redis-cli --cluster rebalance "127.0.0.1:$A" --cluster-pipeline 5 >"$dir/rebalance.log" 2>&1 ||
  { tail -20 "$dir/rebalance.log" >&2; die "rebalance failed"; }
log "rebalance done (after $(oks) batches)"
wait_oks $((n0 + 20))
touch "$dir/stop"
wait $spid
rc=$?
tail -4 "$dir/stream.out"
[ $rc = 0 ] || { grep -v '^ok' "$dir/stream.out" >&2; cat "$dir/stream.err" >&2; die "the stream failed (exit $rc)"; }
grep -q 'read=WRONG' "$dir/stream.out" && die "a record was read wrong"
N=$(sed -n 's/^stopped after \([0-9]*\) batches/\1/p' "$dir/stream.out")
[ "$(oks)" = "$N" ] || die "$(oks) confirmed of $N"
retried=$(grep -c '^ok .* retries=[1-9]' "$dir/stream.out")
log "$N batches confirmed, $retried retried; reads failed: $(sed -n 's/^reads failed //p' "$dir/stream.out")"
st=$(grep '^stats' "$dir/stream.out")
moved=$(echo "$st" | sed -n 's/.* moved=\([0-9]*\).*/\1/p')
ask=$(echo "$st" | sed -n 's/.* ask=\([0-9]*\).*/\1/p')
[ "$moved" -gt 0 ] || die "no MOVED followed: $st"
# ASK needs a command to meet a slot while its keys move: usually some do
# here, but not always; tests/e2e/redis_cluster.sh checks ASK deterministically
log "redirections followed: $moved MOVED, $ask ASK"
"$T" verify "$N" $SIZE >"$dir/verify.out" 2>&1 || { cat "$dir/verify.out" >&2; die "verification failed"; }
tail -2 "$dir/verify.out"
cl_load_check load
pl_finish
log "resharding under load passed"

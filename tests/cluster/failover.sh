#!/bin/sh
# failover.sh - (c) primaries lost under load: batches stream (each read
# back at once) while (1) a replica takes over with CLUSTER FAILOVER (a
# planned failover: no write is lost), then (2) another primary is killed
# with SIGKILL, its replica is promoted by the cluster after
# cluster-node-timeout (2 s), and the killed node comes back as a replica.
# CDC_REDIS_WAIT_REPLICAS=1: a batch is confirmed only once every primary's
# replica has its writes (WAIT), so a confirmed change survives the kill.
# The same while the whole pipeline (hostemu -> handler) delivers Creates.
# Every batch must be confirmed within its retry budget (30 s), none read
# wrong, and every confirmed record and relationship is there afterwards.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
. "$ROOT/tests/scripts/cluster_lib.sh"
test_init
T="$BUILD/itest/itest_redis_cluster"
[ -x "$T" ] || die "build $T first (make tools)"
dir=$(tmpdir)
CLUSTER_NODE_TIMEOUT=2000 start_cluster "$dir"
export REDIS_CONN="$CLUSTER_SEEDS"
export CDC_REDIS_WAIT_REPLICAS=1 CDC_RETRY_BUDGET_MS=30000
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
  kill -0 $spid 2>/dev/null || { tail -3 "$dir/stream.out" >&2; cat "$dir/stream.err" >&2; die "the stream ended"; }
}
wait_oks 50
cl_load_start load 25 --env CDC_REDIS_WAIT_REPLICAS=1

# (1) planned failover
set -- $(primaries)
P1=$1
R1=$(replica_of "$P1")
[ -n "$R1" ] || die "no replica of $P1"
log "CLUSTER FAILOVER: replica $R1 takes over from $P1 (after $(oks) batches)"
redis-cli -p "$R1" CLUSTER FAILOVER >/dev/null
i=0
until redis-cli -p "$R1" ROLE | head -1 | grep -q master; do
  i=$((i + 1)); [ $i -lt 200 ] || die "$R1 did not become primary"
  sleep 0.05
done
wait_cluster_ok 30
log "$R1 is primary, $P1 its replica (after $(oks) batches)"
n0=$(oks)
wait_oks $((n0 + 50))

# (2) a primary killed
set -- $(primaries)
for p in "$@"; do [ "$p" != "$R1" ] && P2=$p && break; done
R2=$(replica_of "$P2")
[ -n "$R2" ] || die "no replica of $P2"
log "SIGKILL primary $P2 (replica $R2) after $(oks) batches"
kill -9 "$(node_pid "$P2")"
t0=$(date +%s)
i=0
until redis-cli -p "$R2" ROLE | head -1 | grep -q master; do
  i=$((i + 1)); [ $i -lt 400 ] || die "$R2 was not promoted"
  sleep 0.05
done
log "replica $R2 promoted after $(($(date +%s) - t0)) s (after $(oks) batches); restarting $P2"
CLUSTER_REPLICAS=2 wait_cluster_ok 30
start_cluster_node "$dir" "$P2" "$(cat "$dir/n$P2/busport")"
wait_cluster_ok 30
log "$P2 is back as a replica (after $(oks) batches)"
n0=$(oks)
wait_oks $((n0 + 50))
touch "$dir/stop"
wait $spid
rc=$?
tail -4 "$dir/stream.out"
[ $rc = 0 ] || { grep -v '^ok' "$dir/stream.out" >&2; cat "$dir/stream.err" >&2; die "the stream failed (exit $rc)"; }
grep -q 'read=WRONG' "$dir/stream.out" && die "a record was read wrong"
N=$(sed -n 's/^stopped after \([0-9]*\) batches/\1/p' "$dir/stream.out")
[ "$(oks)" = "$N" ] || die "$(oks) confirmed of $N"
log "$N batches confirmed; retried: $(grep -c '^ok .* retries=[1-9]' "$dir/stream.out"), longest $(sed -n 's/^ok .* ms=\([0-9]*\) .*/\1/p' "$dir/stream.out" | sort -n | tail -1) ms; reads failed: $(sed -n 's/^reads failed //p' "$dir/stream.out")"
grep '^stats' "$dir/stream.out"
"$T" verify "$N" $SIZE >"$dir/verify.out" 2>&1 || { cat "$dir/verify.out" >&2; die "verification failed"; }
tail -2 "$dir/verify.out"
cl_load_check load
pl_finish
log "failover under load passed"

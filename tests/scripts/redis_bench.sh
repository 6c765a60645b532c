#!/bin/sh
# redis_bench.sh BUILD [RUNS] - Redis sink throughput against a private
# redis-server: redis_sink_apply with 1000-document and single-document
# batches (median of RUNS), and the "Redis floor": the same apply script
# with the same arguments driven by redis-benchmark (-P 1000).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
RUNS=${2:-5}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export ROOT BUILD
. "$ROOT/tests/scripts/lib.sh"
test_init
B="$BUILD/itest/itest_redis_bench"
[ -x "$B" ] || die "build $B first"
command -v redis-benchmark >/dev/null 2>&1 || die "redis-benchmark not installed (redis-tools)"
dir=$(tmpdir)
start_redis "$dir"
P=$REDIS_PORT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cli() { redis-cli -p "$P" "$@" >/dev/null; }

# with two declared indexes (an alternate key and an index: two SADDs per
# change) against none, alternated in the same run (issue 14)
for spec in "1000 100000" "1 10000" "1000 100000 indexes" "1 10000 indexes"; do
  : >"$dir/runs"
  i=0
  while [ $i -lt "$RUNS" ]; do
    cli FLUSHALL
    # shellcheck disable=SC2086
    "$B" apply $spec | tee -a "$dir/log" | sed 's/.*changes_per_s=\([0-9]*\).*/\1/' >>"$dir/runs"
    i=$((i + 1))
  done
  echo "redis_sink_apply batch=$(echo "$spec" | cut -d' ' -f1)$(case $spec in *indexes) echo ", 2 indexes" ;; esac): median $(median <"$dir/runs") changes/s over $RUNS runs ($(tr '\n' ' ' <"$dir/runs"))"
done
grep -o 'round_trips_per_change=[0-9.]*' "$dir/log" | sort -u | sed 's/^/  /'

# the floor: the same script and arguments, redis-benchmark pipelining 1000
"$B" args >"$dir/args"
sha=$(head -1 "$dir/args")
set --
while IFS= read -r l; do set -- "$@" "$l"; done <<EOF2
$(tail -n +2 "$dir/args")
EOF2
for c in 1 2; do
  : >"$dir/runs"
  i=0
  while [ $i -lt "$RUNS" ]; do
    cli FLUSHALL
    "$B" script | redis-cli -p "$P" -x SCRIPT LOAD >/dev/null
    redis-benchmark -p "$P" -c $c -P 1000 -n 200000 -r 1000000000 -q EVALSHA "$sha" 1 "$@" 2>&1 |
      tr '\r' '\n' | grep 'requests per second' | tail -1 |
      sed 's/.*: \([0-9.]*\) requests per second.*/\1/' >>"$dir/runs"
    i=$((i + 1))
  done
  echo "redis floor (redis-benchmark -c $c -P 1000 EVALSHA): median $(median <"$dir/runs") calls/s ($(tr '\n' ' ' <"$dir/runs"))"
done
redis-cli -p "$P" INFO commandstats | grep -E 'cmdstat_(evalsha|hset|hmget):' | cut -d, -f1-3 | sed 's/^/  /'

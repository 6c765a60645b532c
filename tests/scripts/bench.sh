#!/bin/sh
# bench.sh BUILD - the benchmark behind `make bench`: throughput, latency,
# memory and cold start of the handler, each against its floor measured in
# the same run on the same machine, written to docs/performance.md.
#
# One machine, one run: the handler (started here, as the Functions host
# would), a private redis-server on a free port in a temporary directory,
# and the load generators side by side: hostemu for Service Bus
# invocations, wrk for the read API, redis-benchmark for the Redis floor.
# Every row is the median of BENCH_RUNS runs (default 5). Nothing here is
# asserted: the targets are compared and reported, never enforced.
#
# Settings (environment):
#   BENCH_RUNS=5                runs per row (medians)
#   BENCH_SECONDS=5             seconds per run of the single-message and read rows
#   BENCH_BATCH_CHANGES=100000  changes per run of a batch row (and per floor run)
#   BENCH_BATCH_CONCURRENCY=1   batch invocations in flight (the host runs one
#                               batch at a time per function and instance)
#   BENCH_OUT=docs/performance.md  where the report goes ("-" = stdout only)
#   BENCH_CLUSTER=1             the Redis Cluster rows (3 primaries + 3 replicas); 0: skip
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export ROOT BUILD
. "$ROOT/tests/scripts/lib.sh"
test_init

RUNS=${BENCH_RUNS:-5}
SECS=${BENCH_SECONDS:-5}
BATCH_CHANGES=${BENCH_BATCH_CHANGES:-100000}
BATCH_CONC=${BENCH_BATCH_CONCURRENCY:-1}
OUT=${BENCH_OUT:-$ROOT/docs/performance.md}
CONC=32 # the host's concurrent calls on 2 cores (16 x cores)

HE=$BUILD/hostemu
FH=$BUILD/tools/fakehandler
BT=$BUILD/tools/benchtool
for f in "$BUILD/app/handler" "$HE" "$FH" "$BT" "$BUILD/tools/coldstart" "$BUILD/tools/freeport"; do
  [ -x "$f" ] || die "missing $f: run make BUILD=$BUILD all"
done
for c in wrk redis-server redis-cli redis-benchmark; do
  command -v "$c" >/dev/null 2>&1 || die "$c is not installed: run make deps"
done

dir=$(tmpdir)
started=$(date +%s)
start_date=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# machine CPU time (jiffies) busy and total, to tell how much of the machine
# other processes took during the run
cpu_sample() { awk '/^cpu / {b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t}' /proc/stat; }
cpu0=$(cpu_sample)

median() { awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }
jget() { "$FH" json "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f%%", 100 * a / b; else print "n/a"}'; }
fmt0() { awk -v a="$1" 'BEGIN {printf "%.0f", a}'; }
fmt2() { awk -v a="$1" 'BEGIN {printf "%.2f", a}'; }
say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- the apps, the messages, Redis --------------------------------------
mkdir -p "$dir/redis" "$dir/msgs"
start_redis "$dir/redis"
RC=127.0.0.1:$REDIS_PORT
cli() { redis-cli -p "$REDIS_PORT" "$@"; }
cli_flush() { cli FLUSHALL >/dev/null; }
FLUSH=cli_flush # before each run of a row
# the script roots: the app as built (Changes is a batch function), and the
# same app with Changes as a single-message function
cp -R "$BUILD/app" "$dir/app-batch"
cp -R "$BUILD/app" "$dir/app-single"
sed 's/"cardinality": *"many"/"cardinality": "one"/' "$BUILD/app/Changes/function.json" \
  >"$dir/app-single/Changes/function.json"
grep -q '"cardinality": "one"' "$dir/app-single/Changes/function.json" ||
  die "could not make a single-message Changes function"
cp "$ROOT"/tests/fixtures/bench/update_*.json "$dir/msgs/"
nmsgs=$(ls "$dir/msgs" | wc -l)
msg_bytes=$(cat "$dir"/msgs/*.json | wc -c)
msg_avg=$((msg_bytes / nmsgs))

# start_handler APP LOG: the handler as the host starts it; sets HPORT, HPID
start_handler() {
  HPORT=$(free_port)
  FUNCTIONS_CUSTOMHANDLER_PORT=$HPORT FUNCTIONS_APP_ROOT_PATH=$1 RedisConnection=$RC \
    "$1/handler" >"$2" 2>&1 &
  HPID=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $HPID"
  wait_port "$HPORT" 10 || die "the handler did not start: $(tail -5 "$2")"
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# ---- cold start ------------------------------------------------------------
say "cold start (20 runs)"
FUNCTIONS_APP_ROOT_PATH=$dir/app-batch RedisConnection=$RC \
  "$BUILD/tools/coldstart" "$dir/app-batch/handler" 20 >"$dir/coldstart" 2>&1 ||
  die "coldstart failed: $(tail -3 "$dir/coldstart")"
cold_ms=$(sed -n 's/.*first GET \/ answer \([0-9.]*\) ms.*/\1/p' "$dir/coldstart")
cold_rss=$(sed -n 's/.*RSS at readiness \([0-9]*\) KiB.*/\1/p' "$dir/coldstart")

# ---- the batch handler: batch rows, read API --------------------------------
start_handler "$dir/app-batch" "$dir/handler-batch.log"
BPORT=$HPORT
BPID=$HPID
for i in 1 2 3 4 5 6 7 8 9 10; do
  "$HE" --connect "$BPORT" --script-root "$dir/app-batch" --http GET /api/cdc/metrics -q \
    >/dev/null 2>&1
done
rss_idle=$(status_kb "$BPID" VmRSS)

# hostemu_row NAME ARGS...: RUNS runs of hostemu --json; leaves one JSON per
# run in $dir/NAME.<i>.json and dies on any failed invocation
hostemu_row() {
  name=$1
  shift
  i=1
  while [ "$i" -le "$RUNS" ]; do
    $FLUSH
    "$HE" "$@" --json "$dir/$name.$i.json" -q >"$dir/$name.$i.out" 2>&1 ||
      die "$name run $i failed: $(tail -5 "$dir/$name.$i.out")"
    [ "$(jget "$dir/$name.$i.json" invocationsFailed)" = 0 ] ||
      die "$name run $i: failed invocations: $(tail -5 "$dir/$name.$i.out")"
    i=$((i + 1))
  done
}
# row_median NAME KEY...: median of one summary value over the runs
row_median() {
  name=$1
  shift
  i=1
  while [ "$i" -le "$RUNS" ]; do
    jget "$dir/$name.$i.json" "$@"
    echo
    i=$((i + 1))
  done | median
}
row_values() {
  name=$1
  shift
  i=1
  while [ "$i" -le "$RUNS" ]; do
    printf '%s ' "$(fmt0 "$(jget "$dir/$name.$i.json" "$@")")"
    i=$((i + 1))
  done
}

cli CONFIG RESETSTAT >/dev/null
for B in 100 1000; do
  n=$((BATCH_CHANGES / B))
  repeat=$(((n * B + nmsgs - 1) / nmsgs))
  say "batch of $B: $RUNS runs of $n invocations ($((n * B)) changes), $BATCH_CONC in flight"
  hostemu_row "batch$B" --connect "$BPORT" --script-root "$dir/app-batch" --messages "$dir/msgs" \
    --vary --batch "$B" --repeat "$repeat" --concurrency "$BATCH_CONC"
done

evalsha_us=$(cli INFO commandstats | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')

# ---- Redis floor: the same script and arguments, same pipelining ------------
for m in "$dir"/msgs/*.json; do
  FUNCTIONS_APP_ROOT_PATH=$dir/app-batch "$BT" args "$m" >"$m.args" ||
    die "benchtool args $m failed"
done
"$BT" script >"$dir/apply.lua"
sha=$(cli -x SCRIPT LOAD <"$dir/apply.lua")
cli CONFIG RESETSTAT >/dev/null
[ "$sha" = "$(head -1 "$(ls "$dir"/msgs/*.args | head -1)")" ] ||
  die "the apply script's SHA ($sha) is not the one benchtool printed"
redis_floor() { # redis_floor PIPELINE ARGSFILE -> calls/s
  argsfile=$2
  sha=$(head -1 "$argsfile")
  set --
  while IFS= read -r l; do set -- "$@" "$l"; done <<EOF
$(tail -n +2 "$argsfile")
EOF
  cli FLUSHALL >/dev/null
  redis-benchmark -p "$REDIS_PORT" -c "$BATCH_CONC" -P "$PIPE" -n "$BATCH_CHANGES" -r 1000000000 \
    -q EVALSHA "$sha" 1 "$@" 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -1 |
    sed 's/.*: \([0-9.]*\) requests per second.*/\1/'
}
for B in 100 1000; do
  say "Redis floor, pipeline $B: $RUNS runs x $nmsgs messages"
  PIPE=$B
  : >"$dir/rfloor$B"
  i=1
  while [ "$i" -le "$RUNS" ]; do
    # messages alternate in the batches, so the floor is the harmonic mean
    inv=0
    for a in "$dir"/msgs/*.args; do
      r=$(redis_floor "$B" "$a")
      [ -n "$r" ] || die "redis-benchmark gave no result for $a"
      inv=$(awk -v s="$inv" -v r="$r" 'BEGIN {print s + 1 / r}')
    done
    awk -v s="$inv" -v n="$nmsgs" 'BEGIN {printf "%.0f\n", n / s}' >>"$dir/rfloor$B"
    i=$((i + 1))
  done
done
evalsha_floor_us=$(cli INFO commandstats | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')

# ---- read API: wrk, the GET as the host forwards it ---------------------------
say "read API: $RUNS runs of ${SECS}s at $CONC connections, and its floor"
cli FLUSHALL >/dev/null
"$HE" --connect "$BPORT" --script-root "$dir/app-batch" --messages "$dir/msgs" --batch 10 -q \
  >"$dir/seed.out" 2>&1 || die "seeding the records failed: $(tail -3 "$dir/seed.out")"
read_id=$(sed -n 's/.*"PrimaryEntityId":"\([0-9a-f-]*\)".*/\1/p' "$dir/msgs/update_account.json")
read_path="/api/data/v9.2/accounts($read_id)"
# host.json forwards HTTP requests (enableForwardingHttpRequest): the host
# sends the app's GET as it is, so wrk sends exactly that; the handler's
# answer must be the record
"$HE" --connect "$BPORT" --script-root "$dir/app-batch" --http GET "$read_path" -q \
  >"$dir/read.answer" 2>&1
grep -q '"accountid"' "$dir/read.answer" || die "the read API did not return the record: $(head -c 300 "$dir/read.answer")"
# wrk_row NAME PATH: RUNS runs of plain GETs; per run "requests/s p50_ms p99_ms"
wrk_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}'; }
wrk_row() {
  : >"$dir/$1.runs"
  i=1
  while [ "$i" -le "$RUNS" ]; do
    wrk -t2 -c"$CONC" -d"${SECS}s" --latency "http://127.0.0.1:$BPORT$2" \
      >"$dir/$1.$i.wrk" 2>&1 || die "wrk failed: $(cat "$dir/$1.$i.wrk")"
    grep -q 'Non-2xx' "$dir/$1.$i.wrk" && die "$1: non-2xx answers: $(cat "$dir/$1.$i.wrk")"
    rps=$(awk '/Requests\/sec/ {print $2}' "$dir/$1.$i.wrk")
    p50=$(awk '$1 == "50%" {print $2}' "$dir/$1.$i.wrk" | wrk_ms)
    p99=$(awk '$1 == "99%" {print $2}' "$dir/$1.$i.wrk" | wrk_ms)
    echo "$rps $p50 $p99" >>"$dir/$1.runs"
    i=$((i + 1))
  done
}
wrk_row read "$read_path"
# issue 14: 50 contacts of the read account (update_contact.json with its
# parentcustomerid pointed at it), for an $expand of a lookup (primarycontactid:
# the bench account has none, so it answers null) plus a collection of 10, and
# a list page of 50 from the parentcustomerid index (function_app/mapping.json)
mkdir -p "$dir/rel"
cid=$(sed -n 's/.*"PrimaryEntityId":"\([0-9a-f-]*\)".*/\1/p' "$dir/msgs/update_contact.json")
parent=$(grep -o '"Id":"[0-9a-f-]*","KeyAttributes":\[\],"LogicalName":"account"' \
  "$dir/msgs/update_contact.json" | head -1 | cut -d'"' -f4)
[ -n "$cid" ] && [ -n "$parent" ] || die "update_contact.json: no contact id or parent account"
i=10
while [ $i -lt 60 ]; do
  sed -e "s/$cid/${cid%????????????}0000000000$i/g" -e "s/$parent/$read_id/g" \
    "$dir/msgs/update_contact.json" >"$dir/rel/c$i.json"
  i=$((i + 1))
done
"$HE" --connect "$BPORT" --script-root "$dir/app-batch" --messages "$dir/rel" --batch 10 -q \
  >"$dir/seed-rel.out" 2>&1 || die "seeding the contacts failed: $(tail -3 "$dir/seed-rel.out")"
expand_path="$read_path?\$expand=primarycontactid,contact_customer_accounts(\$top=10)"
list_path="/api/data/v9.2/contacts?\$filter=_parentcustomerid_value%20eq%20$read_id&\$top=50"
"$HE" --connect "$BPORT" --script-root "$dir/app-batch" --http GET "$expand_path" -q \
  >"$dir/expand.answer" 2>&1
[ "$(grep -o '"contactid"' "$dir/expand.answer" | wc -l)" = 10 ] ||
  die "the expand row does not return 10 contacts: $(head -c 300 "$dir/expand.answer")"
"$HE" --connect "$BPORT" --script-root "$dir/app-batch" --http GET "$list_path" -q \
  >"$dir/list.answer" 2>&1
[ "$(grep -o '"contactid"' "$dir/list.answer" | wc -l)" = 50 ] ||
  die "the list row does not return 50 contacts: $(head -c 300 "$dir/list.answer")"
wrk_row readexpand "$expand_path"
wrk_row readlist "$list_path"
wrk_row readfloor /
# what one GET needs from Redis on its own: the same HGETALL, unpipelined,
# from as many clients (the read API's second floor, reported, not a ratio)
say "Redis floor for reads: $RUNS runs of HGETALL at $CONC clients"
read_key="$(sed -n 's/^\([^:]*:{\)account:.*/\1/p' "$dir/msgs/update_account.json.args" | head -1)account:$read_id}"
[ "$(cli EXISTS "$read_key")" = 1 ] || die "the read record $read_key is not in Redis"
: >"$dir/hgetall"
i=1
while [ "$i" -le "$RUNS" ]; do
  redis-benchmark -p "$REDIS_PORT" -c "$CONC" -n 200000 -q HGETALL "$read_key" 2>&1 | tr '\r' '\n' |
    grep 'requests per second' | tail -1 | sed 's/.*: \([0-9.]*\) requests per second.*/\1/' \
    >>"$dir/hgetall"
  i=$((i + 1))
done
col() { awk -v c="$2" '{print $c}' "$dir/$1.runs" | median; }
col_values() { awk -v c="$2" '{printf "%.0f ", $c}' "$dir/$1.runs"; }

rss_peak_batch=$(status_kb "$BPID" VmHWM)
stop_pid "$BPID"

# ---- single-message invocations ------------------------------------------------
start_handler "$dir/app-single" "$dir/handler-single.log"
SPORT=$HPORT
SPID=$HPID
say "single-message invocations: $RUNS runs of ${SECS}s at $CONC in flight, and the HTTP floor"
hostemu_row single --connect "$SPORT" --script-root "$dir/app-single" --messages "$dir/msgs" \
  --vary --concurrency "$CONC" --duration "$SECS"
hostemu_row singlefloor --connect "$SPORT" --function __noop --data-type binary --single \
  --messages "$dir/msgs" --vary --concurrency "$CONC" --duration "$SECS"
rss_peak_single=$(status_kb "$SPID" VmHWM)
stop_pid "$SPID"

# ---- Redis Cluster: batches of 1000 on 3 primaries, and the cluster floor -------
metric() { # metric PORT NAME: a counter of the handler's GET /api/cdc/metrics
  "$HE" --connect "$1" --script-root "$dir/app-batch" --http GET /api/cdc/metrics -q 2>/dev/null |
    tr ',{' '\n\n' | sed -n "s/^\"$2\":\([0-9]*\).*/\1/p" | head -1
}
cb1000=0 cb1000_p99=0 crf1000=0 c_rt=n/a c_nodes=0
if [ "${BENCH_CLUSTER:-1}" = 1 ]; then
  . "$ROOT/tests/scripts/cluster_lib.sh"
  mkdir -p "$dir/cluster"
  start_cluster "$dir/cluster"
  say "Redis Cluster up (3 primaries + 3 replicas): batch of 1000, $RUNS runs"
  c_flush() { for _p in $(primaries); do redis-cli -p "$_p" FLUSHALL >/dev/null; done; }
  FLUSH=c_flush
  RC_SINGLE=$RC
  RC=$CLUSTER_SEEDS
  start_handler "$dir/app-batch" "$dir/handler-cluster.log"
  RC=$RC_SINGLE
  CPORT=$HPORT
  n=$((BATCH_CHANGES / 1000))
  repeat=$(((n * 1000 + nmsgs - 1) / nmsgs))
  mkdir -p "$dir/cmsgs"
  cp "$dir"/msgs/*.json "$dir/cmsgs/" # the messages without benchtool's .args files
  hostemu_row cbatch1000 --connect "$CPORT" --script-root "$dir/app-batch" --messages "$dir/cmsgs" \
    --vary --batch 1000 --repeat "$repeat" --concurrency "$BATCH_CONC"
  c_inv=$(metric "$CPORT" invocations)
  c_rts=$(metric "$CPORT" round_trips)
  c_rt=$(awk -v r="$c_rts" -v i="$c_inv" 'BEGIN {if (i > 0) printf "%.2f", r / i; else print "n/a"}')
  stop_pid "$HPID"
  c_nodes=$(primaries | wc -l)
  # the floor: redis-benchmark --cluster, one client per primary pipelining
  # 1000 calls to it ({tag} puts each client's keys on its node)
  say "Redis Cluster floor (redis-benchmark --cluster -P 1000): $RUNS runs x $nmsgs messages"
  for q in $(primaries); do redis-cli -p "$q" -x SCRIPT LOAD <"$dir/apply.lua" >/dev/null; done
  cfloor() { # cfloor ARGSFILE -> calls/s
    _af=$1
    sha=$(head -1 "$_af")
    set --
    while IFS= read -r l; do set -- "$@" "$l"; done <<EOF
$(tail -n +2 "$_af" | sed '1s/^\([^{]*\){[^}]*}$/\1{tag}:account:__rand_int__/')
EOF
    c_flush
    redis-benchmark --cluster -p "$(first_live_port)" -c "$c_nodes" -P 1000 -n "$BATCH_CHANGES" \
      -r 1000000000 -q EVALSHA "$sha" 1 "$@" 2>&1 | tr '\r' '\n' | grep 'requests per second' |
      tail -1 | sed 's/.*: \([0-9.]*\) requests per second.*/\1/'
  }
  : >"$dir/crfloor"
  i=1
  while [ "$i" -le "$RUNS" ]; do
    inv=0
    for a in "$dir"/msgs/*.args; do
      r=$(cfloor "$a")
      [ -n "$r" ] || die "redis-benchmark --cluster gave no result for $a"
      inv=$(awk -v s="$inv" -v r="$r" 'BEGIN {print s + 1 / r}')
    done
    awk -v s="$inv" -v n="$nmsgs" 'BEGIN {printf "%.0f\n", n / s}' >>"$dir/crfloor"
    i=$((i + 1))
  done
  for p in $CLUSTER_PORTS; do stop_pid "$(node_pid "$p")"; done
  cb1000=$(row_median cbatch1000 messagesPerSecond)
  cb1000_p99=$(row_median cbatch1000 latencyMs p99)
  crf1000=$(median <"$dir/crfloor")
fi

# ---- decode + map per fixture ------------------------------------------------
say "decode + map per fixture"
FUNCTIONS_APP_ROOT_PATH=$dir/app-batch "$BT" decode "$ROOT"/tests/fixtures/bench/*.json \
  "$ROOT"/tests/fixtures/d365/*.json >"$dir/decode" || die "benchtool decode failed"

# ---- the report --------------------------------------------------------------------
cpu1=$(cpu_sample)
elapsed=$(($(date +%s) - started))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
stop_pid "$REDIS_PID"
# CPU of everything this script ran (children it waited for: the handlers,
# redis-server, hostemu, wrk, redis-benchmark, the tools)
times >"$dir/times" # in this shell: a pipeline would run it in a subshell without children
ours=$(tail -1 "$dir/times" | awk '{split($1,u,"m"); split($2,s,"m"); sub(/s/,"",u[2]); sub(/s/,"",s[2]); print u[1]*60+u[2]+s[1]*60+s[2]}')
hz=$(getconf CLK_TCK)
others=$(echo "$cpu0 $cpu1" | awk -v ours="$ours" -v hz="$hz" '{busy=($3-$1)/hz; o=busy-ours; if (o<0) o=0; printf "%.0f", o}')
ncpu=$(nproc)

single_ips=$(row_median single invocationsPerSecond)
single_p50=$(row_median single latencyMs p50)
single_p99=$(row_median single latencyMs p99)
sfloor_ips=$(row_median singlefloor invocationsPerSecond)
sfloor_p99=$(row_median singlefloor latencyMs p99)
b100=$(row_median batch100 messagesPerSecond)
b100_p99=$(row_median batch100 latencyMs p99)
b1000=$(row_median batch1000 messagesPerSecond)
b1000_p99=$(row_median batch1000 latencyMs p99)
rf100=$(median <"$dir/rfloor100")
rf1000=$(median <"$dir/rfloor1000")
read_rps=$(col read 1)
read_p50=$(col read 2)
read_p99=$(col read 3)
rx_rps=$(col readexpand 1)
rx_p50=$(col readexpand 2)
rx_p99=$(col readexpand 3)
rl_rps=$(col readlist 1)
rl_p50=$(col readlist 2)
rl_p99=$(col readlist 3)
rfl_rps=$(col readfloor 1)
rfl_p99=$(col readfloor 3)
hget_rps=$(median <"$dir/hgetall")
read_bound=$(awk -v x="$rfl_rps" -v y="$hget_rps" 'BEGIN {if (x > 0 && y > 0) printf "%.0f", 1 / (1 / x + 1 / y); else print 0}')
rss_peak=$rss_peak_batch
[ "$rss_peak_single" -gt "$rss_peak" ] && rss_peak=$rss_peak_single
he_cpu_b1000=$(row_median batch1000 emulatorCpuSeconds)
he_el_b1000=$(row_median batch1000 elapsedSeconds)

verdict() { # verdict OK-CONDITION
  if awk "BEGIN {exit !($1)}"; then echo met; else echo "**missed**"; fi
}
s_ratio=$(awk -v a="$single_ips" -v b="$sfloor_ips" 'BEGIN {print a / b}')
r_ratio=$(awk -v a="$read_rps" -v b="$rfl_rps" 'BEGIN {print a / b}')
# batch mode is both rows: the smaller ratio counts
b_ratio=$(awk -v a="$b1000" -v b="$rf1000" -v c="$b100" -v d="$rf100" \
  'BEGIN {x = a / b; y = c / d; print (x < y ? x : y)}')

report() {
  cat <<EOF
# Performance

Generated by \`make bench\` (tests/scripts/bench.sh) on $start_date in ${elapsed} s. Do not edit
above the analysis section: the next run rewrites it. Every figure is the median of $RUNS runs.

## Machine

| | |
|---|---|
| CPU | $ncpu x $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1) |
| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |
| system | Debian $(cat /etc/debian_version 2>/dev/null), Linux $(uname -r) |
| redis-server | $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') (private, on a free port, no persistence) |
| compiler | $(${CC:-cc} --version | head -1), \`-O2 -g\` |
| load average | $load_start at the start, $load_end at the end |
| other processes | ${others} CPU-s of the ${elapsed} s x $ncpu cores went to processes this benchmark did not start |

Everything runs on this one machine: the load generator, the handler and redis-server share
the $ncpu cores (and with whatever else ran, see above).

## Command

\`make bench\` = \`sh tests/scripts/bench.sh $(basename "$BUILD")\` with BENCH_RUNS=$RUNS,
BENCH_SECONDS=$SECS, BENCH_BATCH_CHANGES=$BATCH_CHANGES, BENCH_BATCH_CONCURRENCY=$BATCH_CONC.
Messages: \`tests/fixtures/bench/\` ($nmsgs Dataverse Update messages, $msg_avg bytes on
average), delivered by hostemu with \`--vary\` (every copy a new record id and a later
OperationCreatedOn). The rows:

| Row | Command (per run) |
|---|---|
| single | \`hostemu --connect PORT --script-root APP1 --messages MSGS --vary --concurrency $CONC --duration $SECS\` (APP1: Changes with \`"cardinality": "one"\`) |
| HTTP floor (single) | \`hostemu --connect PORT --function __noop --data-type binary --single --messages MSGS --vary --concurrency $CONC --duration $SECS\` |
| batch of B | \`hostemu --connect PORT --script-root APP --messages MSGS --vary --batch B --repeat N --concurrency $BATCH_CONC\` ($BATCH_CHANGES changes) |
| Redis floor (batch of B) | \`redis-benchmark -c $BATCH_CONC -P B -n $BATCH_CHANGES -r 1000000000 EVALSHA <sha> 1 <key> <args>\` with the arguments the sink sends for each message (\`benchtool args\`); harmonic mean over the messages |
| cluster batch of 1000 | the batch-of-1000 row against a Redis Cluster of 3 primaries + 3 replicas on this machine (RedisConnection lists every node; \`CDC_REDIS_CLUSTER=auto\`) |
| Redis Cluster floor | \`redis-benchmark --cluster -c 3 -P 1000 -n $BATCH_CHANGES -r 1000000000 EVALSHA <sha> 1 <prefix>:{tag}:account:__rand_int__ <args>\`: one client per primary, each pipelining 1000 calls to its own node |
| read API | \`wrk -t2 -c$CONC -d${SECS}s --latency http://127.0.0.1:PORT$read_path\`: the GET as the host forwards it (host.json \`enableForwardingHttpRequest\`, the default) |
| HTTP floor (read) | the same wrk command for \`GET /\` (answered by the server without a function) |
| Redis alone (read) | \`redis-benchmark -c $CONC -n 200000 HGETALL <the record's key>\` |
| cold start | \`coldstart handler 20\`: exec to the first answer on \`GET /\`, median of 20 |
| decode + map | \`benchtool decode FILE...\`: CPU time per message, median of 11 rounds |

## Results

| Row | Result (median) | p50 | p99 | Floor (median) | Ratio to floor | Runs |
|---|---|---|---|---|---|---|
| single-message invocations, $CONC in flight | $(fmt0 "$single_ips") invocations/s | $(fmt2 "$single_p50") ms | $(fmt2 "$single_p99") ms | $(fmt0 "$sfloor_ips") invocations/s (HTTP, p99 $(fmt2 "$sfloor_p99") ms) | $(ratio "$single_ips" "$sfloor_ips") | $(row_values single invocationsPerSecond) |
| batches of 100 Updates, $BATCH_CONC in flight | $(fmt0 "$b100") changes/s | | $(fmt2 "$b100_p99") ms per batch | $(fmt0 "$rf100") calls/s (Redis, -P 100) | $(ratio "$b100" "$rf100") | $(row_values batch100 messagesPerSecond) |
| batches of 1000 Updates, $BATCH_CONC in flight | $(fmt0 "$b1000") changes/s | | $(fmt2 "$b1000_p99") ms per batch | $(fmt0 "$rf1000") calls/s (Redis, -P 1000) | $(ratio "$b1000" "$rf1000") | $(row_values batch1000 messagesPerSecond) |
| Redis Cluster (3 primaries + 3 replicas): batches of 1000 Updates, $BATCH_CONC in flight | $(fmt0 "$cb1000") changes/s | | $(fmt2 "$cb1000_p99") ms per batch | $(fmt0 "$crf1000") calls/s (redis-benchmark --cluster, -P 1000) | $(ratio "$cb1000" "$crf1000") | $([ "$cb1000" != 0 ] && row_values cbatch1000 messagesPerSecond) |
| read API, single-record GET, $CONC connections | $(fmt0 "$read_rps") GETs/s | $(fmt2 "$read_p50") ms | $(fmt2 "$read_p99") ms | $(fmt0 "$rfl_rps") requests/s (HTTP, p99 $(fmt2 "$rfl_p99") ms) | $(ratio "$read_rps" "$rfl_rps") | $(col_values read 1) |
| read API, \$expand of a lookup (null) + a collection of 10 | $(fmt0 "$rx_rps") GETs/s | $(fmt2 "$rx_p50") ms | $(fmt2 "$rx_p99") ms | single-record GET $(fmt0 "$read_rps")/s | $(ratio "$rx_rps" "$read_rps") of the single GET | $(col_values readexpand 1) |
| read API, list page of 50 (\$filter on an index) | $(fmt0 "$rl_rps") GETs/s | $(fmt2 "$rl_p50") ms | $(fmt2 "$rl_p99") ms | single-record GET $(fmt0 "$read_rps")/s | $(ratio "$rl_rps" "$read_rps") of the single GET | $(col_values readlist 1) |
| Redis alone: the same HGETALL, $CONC clients, unpipelined | $(fmt0 "$hget_rps") calls/s | | | one GET = HTTP floor + one such call: at most $(fmt0 "$read_bound")/s when both share the cores | $(ratio "$read_bound" "$rfl_rps") of the HTTP floor | $(tr '\n' ' ' <"$dir/hgetall" | awk '{for (i = 1; i <= NF; i++) printf "%.0f ", $i}') |
| cold start (exec to first \`GET /\` answer) | $(fmt2 "$cold_ms") ms | | | | | 20 |
| RSS idle (after start-up and 10 requests) | $rss_idle KiB | | | RSS at readiness: $cold_rss KiB | | |
| RSS at peak (VmHWM) | $rss_peak KiB | | | batch handler $rss_peak_batch KiB, single handler $rss_peak_single KiB | | |

Inside Redis the apply script took $(fmt2 "${evalsha_us:-0}") us per call during the batch rows and
$(fmt2 "${evalsha_floor_us:-0}") us during the Redis floor runs (\`INFO commandstats\`, evalsha
usec_per_call). On the cluster each batch of 1000 took $c_rt round trips (sink round trips per
invocation, GET /api/cdc/metrics): one per primary ($c_nodes), all in flight at once. hostemu used $(awk -v c="$he_cpu_b1000" -v e="$he_el_b1000" 'BEGIN {if (e > 0) printf "%.0f%%", 100 * c / e; else print "n/a"}') of one core during the batch-of-1000 row.

## Targets

| Target | Measured | |
|---|---|---|
| batch mode >= 50,000 changes/s | $(fmt0 "$b1000") changes/s (batches of 1000), $(fmt0 "$b100") (of 100) | $(verdict "$b1000 >= 50000 && $b100 >= 50000") |
| batch mode >= 50% of the Redis floor | $(ratio "$b1000" "$rf1000") (1000), $(ratio "$b100" "$rf100") (100) | $(verdict "$b_ratio >= 0.5") |
| single-message >= 25% of the HTTP floor | $(ratio "$single_ips" "$sfloor_ips") | $(verdict "$s_ratio >= 0.25") |
| single-message p99 < 5 ms | $(fmt2 "$single_p99") ms | $(verdict "$single_p99 < 5") |
| read API >= 50% of the HTTP floor | $(ratio "$read_rps" "$rfl_rps") | $(verdict "$r_ratio >= 0.5") |
| \$expand (lookup + 10) >= 50% of the single GET | $(ratio "$rx_rps" "$read_rps") | $(verdict "$rx_rps >= 0.5 * $read_rps") |
| cold start < 10 ms | $(fmt2 "$cold_ms") ms | $(verdict "$cold_ms < 10") |
| RSS < 32 MB at peak | $(awk -v k="$rss_peak" 'BEGIN {printf "%.1f MB", k/1024}') | $(verdict "$rss_peak < 32768") |

## Decode + map per message

CPU microseconds per message (\`benchtool decode\`, the app's mapping; median of 11 rounds of
1000): \`dv_decode\`, \`map_change\` of the decoded change, and both as an invocation runs them.

| Message | Bytes | Decode us | Map us | Decode + map us |
|---|---|---|---|---|
$(awk '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' "$dir/decode")

EOF
}

marker='<!-- analysis: everything below is kept by make bench -->'
if [ "$OUT" = - ]; then
  report
else
  report >"$dir/report.md"
  {
    cat "$dir/report.md"
    echo "$marker"
    if [ -f "$OUT" ] && grep -q "^$marker" "$OUT"; then
      sed -n "/^$marker/,\$p" "$OUT" | tail -n +2
    fi
  } >"$dir/perf.md"
  cp "$dir/perf.md" "$OUT"
  cat "$dir/report.md"
  say "wrote $OUT"
fi

#!/bin/sh
# read_ab.sh OLD_BUILD NEW_BUILD [ROUNDS] - A/B of the read API between two
# builds in one session: one private redis-server, the bench records seeded
# once, both handlers running, then ROUNDS rounds of `wrk -c32` on a
# single-record GET, alternating old and new, each followed by its HTTP
# floor (GET / on the same handler). Prints every run and the medians of
# requests/s, of the ratio to the floor, and of the CPU time per GET of the
# handler and of redis-server (/proc/PID/stat; less sensitive to other load
# on the machine than the rates). Extra handler settings for the
# new build: NEW_ENV="CDC_READ_CONNECTIONS=2 ...". Nothing is asserted.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
. "$ROOT/tests/scripts/lib.sh"
test_init
OLD=$1
NEW=$2
ROUNDS=${3:-5}
SECS=${AB_SECONDS:-5}
dir=$(tmpdir)
mkdir -p "$dir/redis" "$dir/msgs"
start_redis "$dir/redis"
RC=127.0.0.1:$REDIS_PORT
cp "$ROOT"/tests/fixtures/bench/update_*.json "$dir/msgs/"
start_h() { # start_h NAME BUILD ENV...: sets HPORT
  n=$1
  b=$2
  shift 2
  cp -R "$b/app" "$dir/app-$n"
  HPORT=$(free_port)
  env FUNCTIONS_CUSTOMHANDLER_PORT=$HPORT FUNCTIONS_APP_ROOT_PATH=$dir/app-$n RedisConnection=$RC \
    "$@" "$dir/app-$n/handler" >"$dir/$n.log" 2>&1 &
  HPID=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $HPID"
  wait_port "$HPORT" 10 || die "handler $n did not start: $(tail -5 "$dir/$n.log")"
}
start_h old "$OLD"
OPORT=$HPORT
OPID=$HPID
# shellcheck disable=SC2086
start_h new "$NEW" ${NEW_ENV:-}
NPORT=$HPORT
NPID=$HPID
"$NEW/hostemu" --connect "$OPORT" --script-root "$dir/app-old" --messages "$dir/msgs" --batch 10 \
  -q >"$dir/seed.out" 2>&1 || die "seeding failed: $(tail -3 "$dir/seed.out")"
id=$(sed -n 's/.*"PrimaryEntityId":"\([0-9a-f-]*\)".*/\1/p' "$(ls "$dir"/msgs/update_account*.json | head -1)")
path="/api/data/v9.2/accounts($id)"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
run() { # run PORT PATH [PID] -> requests/s [handler-us redis-us per request]
  h0=$(ticks "${3:-$REDIS_PID}")
  r0=$(ticks "$REDIS_PID")
  wrk -t2 -c32 -d"${SECS}s" --latency "http://127.0.0.1:$1$2" >"$dir/wrk" 2>&1 || die "wrk failed"
  h1=$(ticks "${3:-$REDIS_PID}")
  r1=$(ticks "$REDIS_PID")
  grep -q 'Non-2xx' "$dir/wrk" && die "non-2xx answers on $2: $(cat "$dir/wrk")"
  n=$(awk '/requests in/ {print $1}' "$dir/wrk")
  rps=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk")
  if [ -n "${3:-}" ]; then
    echo "$rps $(awk -v a="$h0" -v b="$h1" -v n="$n" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) * 1e6 / t / n}') $(awk -v a="$r0" -v b="$r1" -v n="$n" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) * 1e6 / t / n}')"
  else
    echo "$rps"
  fi
}
for p in "$OPORT" "$NPORT"; do run "$p" "$path" >/dev/null; done # warm-up
i=1
while [ "$i" -le "$ROUNDS" ]; do
  for v in old new; do
    if [ $v = old ]; then p=$OPORT; pid=$OPID; else p=$NPORT; pid=$NPID; fi
    set -- $(run "$p" "$path" "$pid")
    f=$(run "$p" /)
    echo "$v $1 $f $(awk -v a="$1" -v b="$f" 'BEGIN {printf "%.3f", a / b}') $2 $3" | tee -a "$dir/res"
  done
  i=$((i + 1))
done
med() { awk -v v="$1" -v c="$2" '$1 == v {print $c}' "$dir/res" | sort -g |
  awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for v in old new; do
  echo "median $v: read $(med $v 2)/s floor $(med $v 3)/s ratio $(med $v 4)" \
    "handler $(med $v 5) us/GET redis $(med $v 6) us/GET"
done

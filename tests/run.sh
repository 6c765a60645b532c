#!/bin/sh
# run.sh - run the test suite: unit binaries, then end-to-end scripts.
#   tests/run.sh all|unit|e2e|cluster BUILD_DIR [name-filter]
# (cluster: the slow Redis Cluster tests of tests/cluster/, not part of all)
# A test exiting 77 is reported as skipped; anything else non-zero fails.
# Each test's output is kept in BUILD_DIR/testlogs/<name>.log.
set -u
what=${1:-all}
BUILD=${2:-build}
filter=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD ROOT
pass=0 fail=0 skip=0 failed=""
mkdir -p "$BUILD/testlogs/e2e" "$BUILD/testlogs/cluster"

run_one() {
  name=$1
  shift
  case "$name" in *"$filter"*) ;; *) return 0 ;; esac
  start=$(date +%s)
  "$@" >"$BUILD/testlogs/$name.log" 2>&1
  rc=$?
  dur=$(($(date +%s) - start))
  case $rc in
  0) pass=$((pass + 1)); printf '  PASS  %-40s %4ss\n' "$name" "$dur" ;;
  77) skip=$((skip + 1)); printf '  SKIP  %-40s %4ss  (%s)\n' "$name" "$dur" "$(tail -1 "$BUILD/testlogs/$name.log")" ;;
  *)
    fail=$((fail + 1)); failed="$failed $name"
    printf '  FAIL  %-40s %4ss (exit %s)\n' "$name" "$dur" "$rc"
    tail -40 "$BUILD/testlogs/$name.log" | sed 's/^/        | /'
    ;;
  esac
}

if [ "$what" = all ] || [ "$what" = unit ]; then
  echo "unit tests"
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
  done
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
  echo "end-to-end tests"
  for t in tests/e2e/*.sh; do
    [ -f "$t" ] || continue
    run_one "e2e/$(basename "$t" .sh)" sh "$t"
  done
fi
if [ "$what" = cluster ]; then
  echo "Redis Cluster tests"
  for t in tests/cluster/*.sh; do
    [ -f "$t" ] || continue
    run_one "cluster/$(basename "$t" .sh)" sh "$t"
  done
fi
echo "passed $pass, failed $fail, skipped $skip"
[ "$fail" = 0 ] || { echo "failed:$failed"; exit 1; }
exit 0

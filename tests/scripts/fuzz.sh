#!/bin/sh
# fuzz.sh - run libFuzzer targets for a while each; fail on any crash, leak,
# timeout or out-of-memory.
#
#   tests/scripts/fuzz.sh BUILD_DIR SECONDS TARGET...
#
# BUILD_DIR holds the fuzz binaries (make fuzz-build puts them in
# build/fuzz). Target fuzz_<name> is seeded from tests/fuzz/corpus/<name>/
# when it exists (read only: new inputs go to BUILD_DIR/corpus/<name>, kept
# between runs)
# and uses tests/fuzz/<name>.dict when it exists. Crash inputs are written to
# BUILD_DIR/artifacts/; reproduce one with `BUILD_DIR/fuzz_<name> FILE`, then
# add it to the seed corpus once fixed (test_dataverse decodes every seed).
set -u
[ $# -ge 3 ] || { echo "usage: $0 BUILD_DIR SECONDS TARGET..." >&2; exit 2; }
BUILD_DIR=$1
SECS=$2
shift 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$(pwd)/$BUILD_DIR ;; esac
# leaks are reported by LeakSanitizer at the end of each input batch;
# UBSan findings abort (the targets are built with -fno-sanitize-recover)
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS
rc=0
for t in "$@"; do
  bin=$BUILD_DIR/$t
  name=${t#fuzz_}
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin not built (make fuzz-build)" >&2
    rc=1
    continue
  fi
  seeds=$ROOT/tests/fuzz/corpus/$name
  work=$BUILD_DIR/corpus/$name
  artifacts=$BUILD_DIR/artifacts/$t
  log=$BUILD_DIR/$t.log
  mkdir -p "$work" "$artifacts"
  set -- -max_total_time="$SECS" -detect_leaks=1 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/"
  [ -f "$ROOT/tests/fuzz/$name.dict" ] && set -- "$@" -dict="$ROOT/tests/fuzz/$name.dict"
  nseeds=0
  if [ -d "$seeds" ]; then
    nseeds=$(ls "$seeds" | wc -l)
    set -- "$@" "$work" "$seeds"
  else
    set -- "$@" "$work"
  fi
  echo "fuzz: $t for ${SECS}s (seeds $nseeds, log $log)"
  "$bin" "$@" >"$log" 2>&1
  st=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $st -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
    echo "fuzz: $t FAILED (exit $st); artifacts in $artifacts" >&2
    grep -E 'ERROR:|runtime error:|invariant violated|Test unit written' "$log" | head -20 >&2
    rc=1
  else
    echo "fuzz: $t ok: ${runs:-?} inputs, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) files"
  fi
done
exit $rc

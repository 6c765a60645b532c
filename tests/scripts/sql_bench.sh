#!/bin/sh
# sql_bench.sh - changes/s of the SQL sink into a private PostgreSQL 15.
#   sh tests/scripts/sql_bench.sh [BUILD_DIR] [DOCS_PER_BATCH] [RUNS]
# Each run writes one batch of DOCS_PER_BATCH updates (distinct records, five
# mapped columns each) in one transaction and times sql_sink_write until
# COMMIT returned; the median over RUNS is printed. The first batch (which
# creates the table) is not counted.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export ROOT BUILD
. "$ROOT/tests/scripts/lib.sh"
test_init
[ -x "$BUILD/itest/itest_sql_sink" ] || die "build $BUILD/itest/itest_sql_sink first"
dir=$(tmpdir)
CLEANUP_DIRS="$CLEANUP_DIRS $dir"
start_postgres "$dir"
"$BUILD/itest/itest_sql_sink" bench "${2:-1000}" "${3:-11}"

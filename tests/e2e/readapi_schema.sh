#!/bin/sh
# readapi_schema.sh - the schema set behind $select checks against a
# private redis-server (tests/itest/itest_readapi_schema.c).
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
bin=$BUILD/itest/itest_readapi_schema
[ -x "$bin" ] || die "build $bin first (make tools)"
dir=$(tmpdir)
start_redis "$dir"
log "redis on port $REDIS_PORT"
"$bin"

#!/bin/sh
# redis_sink.sh - the Redis sink's correctness rules, batching and poison
# stream against a private redis-server (tests/itest/itest_redis_sink.c).
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
[ -x "$BUILD/itest/itest_redis_sink" ] || die "build $BUILD/itest/itest_redis_sink first (make tools)"
dir=$(tmpdir)
start_redis "$dir"
log "redis on port $REDIS_PORT"
"$BUILD/itest/itest_redis_sink"

#!/bin/sh
# server_itest.sh - the in-process HTTP server test (tests/itest/itest_server.c):
# readiness, routing, bodies, 413s, malformed envelopes, 64 concurrent
# invocations, keep-alive, invocation ids in logs, registration gate, drain.
set -u
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$ROOT/tests/scripts/lib.sh"
test_init

bin=$BUILD/itest/itest_server
[ -x "$bin" ] || die "$bin is missing: make BUILD=$BUILD $bin"
TMPDIR=$(tmpdir) "$bin"

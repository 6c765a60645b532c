#!/bin/sh
# redis_auth.sh - AUTH with a password and with an ACL user, SELECT of
# defaultDatabase; wrong credentials and missing permissions fail at once
# with the server's text and never show the password.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
T="$BUILD/itest/itest_redis_conn"
[ -x "$T" ] || die "build $T first (make tools)"
dir=$(tmpdir)
PW='pw-Secret+/=1'
start_redis "$dir" --requirepass "$PW"
cli() { redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$PW" "$@"; }
# channel rules ('&*') exist from Redis 6.2 on; 6.0 allows every channel
chan='&*'
redis_at_least 6 2 || chan='+@all'
cli ACL SETUSER app on '>app-Secret-2' '~*' "$chan" '+@all' >/dev/null || die "ACL SETUSER app"
# a user that may read but not run scripts
cli ACL SETUSER reader on '>reader-Secret-3' '~*' '+@read' '+auth' '+client' >/dev/null ||
  die "ACL SETUSER reader"
log "redis on port $REDIS_PORT"
fails=0
out=$dir/out.log
run() {
  log "case: $*"
  if ! "$T" "$@" >>"$out" 2>&1; then fails=$((fails + 1)); log "FAILED: $*"; tail -5 "$out" >&2; fi
}
P=127.0.0.1:$REDIS_PORT
REDIS_CONN="$P,password=$PW" REDIS_SECRET="$PW" run ok
REDIS_CONN="$P,user=app,password=app-Secret-2" REDIS_SECRET=app-Secret-2 run ok
REDIS_CONN="$P,user=app,password=app-Secret-2,defaultDatabase=3" REDIS_SECRET=app-Secret-2 run ok
[ "$(cli -n 3 EXISTS 'd365:{account:00000000-0000-0000-0000-0000000000c1}')" = 1 ] ||
  { fails=$((fails + 1)); log "FAILED: defaultDatabase=3 did not write to db 3"; }
REDIS_CONN="$P,password=wrong-Secret-9" REDIS_SECRET=wrong-Secret-9 \
  run fail redis "authentication failed: WRONGPASS"
REDIS_CONN="$P,user=app,password=bad-Secret-8" REDIS_SECRET=bad-Secret-8 \
  run fail redis "authentication as user 'app' failed: WRONGPASS"
REDIS_CONN="$P" run fail redis "NOAUTH"
REDIS_CONN="$P,user=reader,password=reader-Secret-3" REDIS_SECRET=reader-Secret-3 \
  run fail redis "NOPERM"
REDIS_CONN="$P,password=$PW,defaultDatabase=99" REDIS_SECRET="$PW" \
  run fail redis "SELECT 99 (defaultDatabase) failed: ERR DB index is out of range"
# no secret in anything printed
for s in "$PW" app-Secret-2 wrong-Secret-9 bad-Secret-8 reader-Secret-3; do
  if grep -F -- "$s" "$out" >/dev/null; then fails=$((fails + 1)); log "FAILED: '$s' was printed"; fi
done
[ "$fails" = 0 ] || { cat "$out" >&2; die "$fails case(s) failed"; }
log "all AUTH cases passed"

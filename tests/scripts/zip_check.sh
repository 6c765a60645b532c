#!/bin/sh
# zip_check.sh BUILD_DIR - `make zip-check` (its own .ci/run step; root):
#
#  1. make zip: the app built in a Debian 11 root (tests/scripts/zip.sh), the
#     glibc floor 2.31 checked;
#  2. the test suite in that Debian 11 root (`make check` there: the source
#     compiles and passes against libmicrohttpd 0.9.72, OpenSSL 1.1.1,
#     hiredis 0.14, cJSON 1.7.14, Redis 6.0, PostgreSQL 13);
#  3. for Debian 11 and Debian 12: a fresh minbase root without any -dev
#     package (nor libmicrohttpd, hiredis, cJSON, unixODBC, psqlODBC), the zip
#     unpacked in /home/site/wwwroot, the handler started the way the host
#     starts it (the host emulator on this machine launches it; the handler
#     runs chrooted with the host's environment, cwd = the script root) and
#     `make demo`'s run against it: the demo messages delivered through the
#     emulator, read back through the API (tests/scripts/demo.sh checks every
#     answer); then CDC_TARGET=sql into a PostgreSQL on this machine through
#     the psqlODBC driver bundled in the zip.
# Redis and PostgreSQL run on this machine (loopback), as they would be
# services outside the Function App. D365CDC_ROOT_CACHE (optional) caches the
# fresh roots as tarballs; without it they come from the Debian archive.
set -u
BUILD=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
export BUILD ROOT
. "$ROOT/tests/scripts/lib.sh"
test_init
DEBROOT="sh $ROOT/tests/scripts/debroot.sh"
[ "$(id -u)" = 0 ] || skip "zip-check needs root (debootstrap, chroot, mount)"
t0=$(date +%s)
since() { echo "$(($(date +%s) - t0))s"; }
W=$(mktemp -d /var/tmp/d365cdc-zipcheck.XXXXXX)
MOUNTED=""
# unmount first, always; delete the roots only when nothing is mounted in them
finish() {
  for r in $MOUNTED; do $DEBROOT unmount "$r"; done
  for r in "$W"/root-*; do [ -d "$r" ] && $DEBROOT remove "$r"; done
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$W"
}
on_exit finish

log "1. make zip (Debian 11 build root)"
make --no-print-directory BUILD="$BUILD" zip || die "make zip failed"
ZIP=$BUILD/d365-cdc-handler.zip
[ -f "$ZIP" ] || die "no $ZIP"
log "   done at $(since)"

log "2. make check in the Debian 11 build root"
ZROOT=${D365CDC_ZIP_ROOT:-$BUILD/debian11}
$DEBROOT run "$ZROOT" sh -c 'cd /src && make -j2 check' >"$W/check11.log" 2>&1 ||
  { tail -60 "$W/check11.log"; die "make check failed on Debian 11 (log: $W/check11.log)"; }
grep -E '^passed ' "$W/check11.log" | tail -1 | sed 's/^/   Debian 11: /' >&2
log "   done at $(since)"

# the host emulator launches build/.../app/handler: here a script that runs
# the zip's handler in the chroot, with the environment the emulator gives
make --no-print-directory BUILD="$BUILD" all >/dev/null || die "build failed"
run_in() {
  suite=$1
  r=$W/root-$suite
  log "3. $suite: a fresh root without -dev packages, the zip in /home/site/wwwroot"
  $DEBROOT create "$suite" "$r" || die "cannot create the $suite root"
  for p in libmicrohttpd12 libhiredis0.14 libcjson1 unixodbc odbc-postgresql libodbc1 libpq5; do
    [ ! -e "$r/var/lib/dpkg/info/$p.list" ] && [ ! -e "$r/var/lib/dpkg/info/$p:amd64.list" ] ||
      die "$suite root has $p installed: not a fair test"
  done
  mkdir -p "$r/home/site/wwwroot"
  (cd "$r/home/site/wwwroot" && unzip -q "$ZIP") || die "unzip failed"
  $DEBROOT mount "$r" || die "cannot mount in $r"
  MOUNTED="$MOUNTED $r"
  # the demo hands the handler files it writes under /tmp (a stricter
  # mapping, say): the chrooted handler sees the host's /tmp (unmounted with
  # the rest by debroot.sh unmount; remove refuses while it is mounted)
  mount --bind /tmp "$r/tmp" || die "cannot bind /tmp into $r"
  chroot "$r" /home/site/wwwroot/handler --version >"$W/version-$suite" 2>&1 ||
    { cat "$W/version-$suite"; die "$suite: handler --version failed"; }
  log "   $(cat "$W/version-$suite")"
  grep -q "(app)" "$W/version-$suite" || die "$suite: no library was loaded from the app's lib/"
  b=$W/b-$suite
  mkdir -p "$b/app"
  # host.json, the mapping and every function folder (not the handler, not lib/)
  (cd "$r/home/site/wwwroot" && cp -a host.json mapping.json $(ls -d */function.json | sed 's,/function.json$,,') "$b/app/")
  cat >"$b/app/handler" <<EOF
#!/bin/sh
# started by the host emulator: the zip's handler, chrooted, in its script root
exec env FUNCTIONS_APP_ROOT_PATH=/home/site/wwwroot chroot '$r' /bin/sh -c 'cd /home/site/wwwroot && exec ./handler "\$@"' handler "\$@"
EOF
  chmod 0755 "$b/app/handler"
  ln -s "$BUILD/hostemu" "$b/hostemu"
  ln -s "$BUILD/tools" "$b/tools"
  log "   the demo against the chrooted handler"
  sh "$ROOT/tests/scripts/demo.sh" "$b" >"$W/demo-$suite.log" 2>&1 ||
    { tail -40 "$W/demo-$suite.log"; die "$suite: the demo failed against the zip"; }
  grep -q '"revenue": *3100000' "$W/demo-$suite.log" || grep -q 'revenue.*3100000' "$W/demo-$suite.log" ||
    die "$suite: the demo's reads did not show Contoso's revenue"
  log "   demo ok ($(grep -c '^    HTTP/1.1 ' "$W/demo-$suite.log") reads answered)"

  log "   CDC_TARGET=sql through the bundled psqlODBC driver"
  pgd=$(tmpdir)
  start_postgres "$pgd"
  # the chroot cannot see the unix socket: listen on loopback too
  pg_postgres_stop
  echo "listen_addresses = '127.0.0.1'" >>"$PG_DATA/postgresql.conf"
  pg_postgres_start
  "$b/hostemu" --script-root "$b/app" --no-settings --env CDC_TARGET=sql --env CDC_SQL_DIALECT=postgres \
    --env "SqlConnectionString=Host=127.0.0.1;Port=$PG_PORT;Database=postgres;Username=postgres" \
    --env CDC_POISON=record --messages tests/fixtures/demo/messages --batch 4 --stop \
    --handler-log "$W/sql-$suite.log" >"$W/sql-$suite.out" 2>&1 ||
    { cat "$W/sql-$suite.out"; tail -20 "$W/sql-$suite.log"; die "$suite: the SQL run failed"; }
  grep -q "ODBC driver /home/site/wwwroot/lib/odbc/psqlodbcw.so" "$W/sql-$suite.log" ||
    die "$suite: the handler did not use the bundled driver"
  got=$(pg_psql "SELECT name || '|' || revenue FROM account WHERE accountid = '5f1c7a2e-a89d-ef11-8a69-000d3a30b0c1'")
  log "   PostgreSQL has Contoso: $got"
  case "$got" in *"|3100000"*) ;; *) die "$suite: Contoso in PostgreSQL: got '$got'" ;; esac
  pg_postgres_stop immediate
  $DEBROOT unmount "$r" || die "cannot unmount $r"
  MOUNTED=""
  $DEBROOT remove "$r" || die "cannot remove $r"
  log "   $suite done at $(since)"
}
run_in bullseye
run_in bookworm
log "zip-check ok in $(since)"

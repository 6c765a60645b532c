#!/bin/sh
# package.sh - make zip produces a deployable script root: host.json, the
# function folders, mapping.json, the handler with every non-glibc library
# in lib/ (found through its RPATH, also by the libraries themselves), no
# local.settings.json; and the unpacked app starts and answers the host's
# readiness probe through the emulator.
set -u
. "$ROOT/tests/scripts/lib.sh"
test_init
d=$(tmpdir)
command -v unzip >/dev/null 2>&1 || skip "unzip not installed (make deps)"
# The glibc floor check fails the build when a file needs a newer glibc:
# built here (Debian 12, glibc 2.36) the handler needs 2.34, above the
# default floor 2.31 (make zip builds on Debian 11 for that reason).
host_glibc=$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)
if sh "$ROOT/tests/scripts/package.sh" "$BUILD/app" "$d/floor.zip" >"$d/floor.log" 2>&1; then
  case "$host_glibc" in
  2.31 | 2.[0-2]*) log "glibc $host_glibc here: the floor holds, nothing to show" ;;
  *) cat "$d/floor.log"; die "package.sh accepted a build for glibc $host_glibc under floor 2.31" ;;
  esac
else
  cat "$d/floor.log" >&2
  grep -q "glibc floor 2.31 violated by:.*handler (GLIBC_2\.3[2-9]" "$d/floor.log" ||
    die "the floor failure does not name the handler and its glibc version"
  [ ! -e "$d/floor.zip" ] || die "a zip was written despite the floor violation"
  log "ok: the floor check failed the build as it should"
fi
GLIBC_FLOOR=$host_glibc sh "$ROOT/tests/scripts/package.sh" "$BUILD/app" "$d/app.zip" >"$d/pkg.log" 2>&1 ||
  { cat "$d/pkg.log"; die "package.sh failed"; }
mkdir "$d/site"
(cd "$d/site" && unzip -q "$d/app.zip") || die "unzip failed"
fail=0
for f in host.json handler mapping.json Changes/function.json DataApi/function.json \
  Metrics/function.json GLIBC_REQUIRED lib/odbc/psqlodbcw.so lib/libpq.so.5; do
  [ -e "$d/site/$f" ] || { echo "missing in the zip: $f"; fail=1; }
done
[ -x "$d/site/handler" ] || { echo "handler is not executable"; fail=1; }
[ ! -e "$d/site/local.settings.json" ] || { echo "local.settings.json must not be in the zip"; fail=1; }
# every library except glibc's own must come from the bundled lib/
ldd "$d/site/handler" >"$d/ldd" 2>&1
if grep -q "not found" "$d/ldd"; then cat "$d/ldd"; fail=1; fi
awk '/=> \// {print $1, $3}' "$d/ldd" | while read -r name path; do
  case "$name" in
  libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|ld-linux*) ;;
  *)
    case "$path" in
    "$d/site/lib/"*) ;;
    *) echo "$name resolves outside the package: $path"; echo x >>"$d/outside" ;;
    esac
    ;;
  esac
done
[ -e "$d/outside" ] && fail=1
echo "glibc required: $(cat "$d/site/GLIBC_REQUIRED")"
# the unpacked app starts like the host starts it
"$BUILD/hostemu" --script-root "$d/site" --env CDC_TARGET=none --no-settings --quiet --stop \
  --http GET '/api/cdc/metrics' >"$d/emu.out" 2>&1 || { cat "$d/emu.out"; fail=1; }
grep -q '"invocations":' "$d/emu.out" || { echo "the unpacked app did not answer"; cat "$d/emu.out"; fail=1; }
[ $fail = 0 ] || die "package checks failed"
echo "package ok: $(du -h "$d/app.zip" | cut -f1), $(ls "$d/site/lib" | wc -l) bundled libraries"

#!/bin/sh
# zip.sh BUILD_DIR - `make zip`: the deployable zip BUILD_DIR/d365-cdc-handler.zip,
# built where the glibc floor holds.
#
# The Functions v4 Linux images run Debian 11 (glibc 2.31) and later. A
# binary built on a newer system needs its newer glibc, so when this machine's
# glibc is above GLIBC_FLOOR (default 2.31) the app is built in a Debian 11
# root (debootstrap; kept in BUILD_DIR/debian11 for the next run, or
# D365CDC_ZIP_ROOT) with Debian 11's libraries (libmicrohttpd 0.9.72, OpenSSL
# 1.1.1, hiredis 0.14, cJSON 1.7.14, unixODBC 2.3.6, psqlODBC 13), which the
# zip then bundles. package.sh fails the build when anything needs more than
# the floor. Needs root for that (debootstrap, chroot); GLIBC_FLOOR=<this
# machine's glibc> builds here instead, for images at least that new.
set -eu
BUILD=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
FLOOR=${GLIBC_FLOOR:-2.31}
OUT=$BUILD/d365-cdc-handler.zip
DEBROOT="sh $ROOT/tests/scripts/debroot.sh"
here=$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)
VERSION=${VERSION:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}
# what the build root needs: the -dev packages, zip, objdump, psqlODBC to bundle
PKGS="gcc make pkg-config libmicrohttpd-dev libcjson-dev libhiredis-dev libcurl4-openssl-dev
libssl-dev unixodbc-dev odbc-postgresql zip binutils"

le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -t. -k1,1n -k2,2n -k3,3n | tail -1)" = "$2" ]; }

if le "$here" "$FLOOR"; then
  echo "  ZIP     building here (glibc $here <= floor $FLOOR)"
  make -C "$ROOT" --no-print-directory BUILD="$BUILD" VERSION="$VERSION" app
  GLIBC_FLOOR=$FLOOR sh "$ROOT/tests/scripts/package.sh" "$BUILD/app" "$OUT"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "make zip: this machine has glibc $here, newer than the Functions images' floor $FLOOR;" >&2
  echo "  run make zip as root (it builds in a Debian 11 root with debootstrap and chroot)," >&2
  echo "  or GLIBC_FLOOR=$here make zip for images with glibc >= $here only" >&2
  exit 1
fi
ZROOT=${D365CDC_ZIP_ROOT:-$BUILD/debian11}
if [ ! -x "$ZROOT/usr/bin/make" ] || [ ! -f "$ZROOT/usr/include/microhttpd.h" ]; then
  $DEBROOT remove "$ZROOT"
  mkdir -p "$(dirname "$ZROOT")"
  # shellcheck disable=SC2086
  $DEBROOT create bullseye "$ZROOT" $PKGS
fi
# the working tree as it is (a local function_app/mapping.json included),
# without build output
rm -rf "$ZROOT/src"
mkdir -p "$ZROOT/src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\n" "$f"; done' sh |
    tar -cf - -T -) | tar -xf - -C "$ZROOT/src"
else
  (cd "$ROOT" && tar --exclude=./build -cf - .) | tar -xf - -C "$ZROOT/src"
fi
echo "  ZIP     building in the Debian 11 root $ZROOT"
$DEBROOT run "$ZROOT" sh -c "cd /src && make -j2 --no-print-directory BUILD=build VERSION='$VERSION' app &&
  GLIBC_FLOOR=$FLOOR sh tests/scripts/package.sh build/app /src/d365-cdc-handler.zip"
mkdir -p "$BUILD"
cp "$ZROOT/src/d365-cdc-handler.zip" "$OUT"
echo "  ZIP     $OUT (built on Debian 11, glibc floor $FLOOR)"

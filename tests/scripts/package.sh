#!/bin/sh
# package.sh APP_DIR ZIP - make the deployable zip of the script root.
#
# The zip holds host.json, the function folders, mapping.json, the handler
# binary and, in lib/, every shared library the binary needs except the C
# library itself (the binary is linked with rpath $ORIGIN/lib, so it finds
# them there), and in lib/odbc/ the psqlODBC driver with its libraries in
# lib/ (the images have no ODBC driver; the handler finds it relative to the
# app root). local.settings.json is never packed: it is for `func start`.
#
# The glibc floor: GLIBC_FLOOR (default 2.31, Debian 11, the oldest
# Functions v4 image) is the newest glibc symbol version the handler and
# every bundled library may need; the build fails naming each file that
# needs more. `make zip` builds in a Debian 11 root so that it holds
# (tests/scripts/zip.sh). GLIBC_MAX is the old name of GLIBC_FLOOR.
set -eu
APP=$1
ZIP=$2
FLOOR=${GLIBC_FLOOR:-${GLIBC_MAX:-2.31}}
PSQLODBC=${PSQLODBC_DRIVER:-/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so}
command -v zip >/dev/null 2>&1 || { echo "package: zip is not installed (make deps)" >&2; exit 1; }
command -v objdump >/dev/null 2>&1 || { echo "package: objdump is not installed (binutils)" >&2; exit 1; }
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/d365cdc-pkg.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

cp -a "$APP"/. "$STAGE"/
rm -f "$STAGE/local.settings.json"
mkdir -p "$STAGE/lib"
# glibc's own libraries stay on the host; everything else travels with us
bundle_deps() {
  ldd "$1" | awk '/=> \// {print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;
    *) [ -e "$STAGE/lib/$(basename "$lib")" ] || cp -L "$lib" "$STAGE/lib/" ;;
    esac
  done
}
bundle_deps "$STAGE/handler"
if [ -f "$PSQLODBC" ]; then
  mkdir -p "$STAGE/lib/odbc"
  cp -L "$PSQLODBC" "$STAGE/lib/odbc/psqlodbcw.so"
  bundle_deps "$PSQLODBC"
else
  echo "  PKG     no psqlODBC driver at $PSQLODBC: CDC_TARGET=sql will need one on the image" >&2
fi
chmod 0755 "$STAGE/handler"

# vercmp A B: true when A <= B (dotted numbers)
le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -t. -k1,1n -k2,2n -k3,3n | tail -1)" = "$2" ]; }
newest() { objdump -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' |
  sort -t. -k1,1n -k2,2n -k3,3n -u | tail -1; }
need=0
bad=""
for f in "$STAGE/handler" "$STAGE"/lib/*.so* "$STAGE"/lib/odbc/*.so; do
  [ -f "$f" ] || continue
  v=$(newest "$f")
  [ -n "$v" ] || continue
  le "$v" "$need" || need=$v
  le "$v" "$FLOOR" || bad="$bad ${f#"$STAGE"/} (GLIBC_$v)"
done
echo "$need" >"$STAGE/GLIBC_REQUIRED"
echo "  PKG     needs glibc >= $need (floor $FLOOR); bundled: $(cd "$STAGE/lib" && find . -type f | sed 's,^\./,,' | sort | tr '\n' ' ')"
if [ -n "$bad" ]; then
  echo "package: glibc floor $FLOOR violated by:$bad" >&2
  echo "package: build on Debian 11 (make zip does) or set GLIBC_FLOOR to the image's glibc" >&2
  exit 1
fi
case "$ZIP" in /*) ;; *) ZIP=$(pwd)/$ZIP ;; esac
rm -f "$ZIP"
(cd "$STAGE" && zip -q -r -y -X "$ZIP" .)
echo "  ZIP     $ZIP ($(du -h "$ZIP" | cut -f1))"

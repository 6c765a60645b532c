#!/bin/sh
# package.sh APP_DIR ZIP - make the deployable zip of the script root.
#
# The zip holds host.json, the function folders, mapping.json, the handler
# binary and, in lib/, every shared library the binary needs except the C
# library itself (the binary is linked with rpath $ORIGIN/lib, so it finds
# them there). local.settings.json is never packed: it is for `func start`.
#
# Linux Functions hosts run on a Debian-based image; a binary built on
# Debian 12 needs the glibc symbol versions printed below (GLIBC_REQUIRED).
# Set GLIBC_MAX=2.31 (say) to fail the build when the target's glibc is older.
set -eu
APP=$1
ZIP=$2
command -v zip >/dev/null 2>&1 || { echo "package: zip is not installed (make deps)" >&2; exit 1; }
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/d365cdc-pkg.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

cp -a "$APP"/. "$STAGE"/
rm -f "$STAGE/local.settings.json"
mkdir -p "$STAGE/lib"
# glibc's own libraries stay on the host; everything else travels with us
ldd "$STAGE/handler" | awk '/=> \// {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
  libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|ld-linux*) ;;
  *) cp -L "$lib" "$STAGE/lib/" ;;
  esac
done
chmod 0755 "$STAGE/handler"

need=$( (objdump -T "$STAGE/handler"; for l in "$STAGE"/lib/*; do [ -f "$l" ] && objdump -T "$l"; done) 2>/dev/null |
  grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -1)
echo "$need" >"$STAGE/GLIBC_REQUIRED"
echo "  PKG     needs glibc >= $need; bundled: $(ls "$STAGE/lib" | tr '\n' ' ')"
if [ -n "${GLIBC_MAX:-}" ]; then
  newest=$(printf '%s\n%s\n' "$need" "$GLIBC_MAX" | sort -t. -k1,1n -k2,2n -k3,3n | tail -1)
  if [ "$newest" != "$GLIBC_MAX" ]; then
    echo "package: the handler needs glibc $need but GLIBC_MAX=$GLIBC_MAX (build on the target's base image)" >&2
    exit 1
  fi
fi
case "$ZIP" in /*) ;; *) ZIP=$(pwd)/$ZIP ;; esac
rm -f "$ZIP"
(cd "$STAGE" && zip -q -r -y -X "$ZIP" .)
echo "  ZIP     $ZIP ($(du -h "$ZIP" | cut -f1))"

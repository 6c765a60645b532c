#!/bin/sh
# deps.sh - make sure the Debian packages the project needs are installed.
#
#   deps.sh install      install what is missing (as root), or print the command
#   deps.sh check-build  fail with the exact command if build packages are missing
set -u

BUILD_PKGS="gcc make pkg-config libmicrohttpd-dev libcjson-dev libhiredis-dev
libcurl4-openssl-dev libssl-dev unixodbc-dev"
# redis-server and postgresql are started by the tests themselves, on free
# ports in temporary directories; the packages only provide the binaries.
TEST_PKGS="redis-server redis-tools postgresql odbc-postgresql openssl clang
libclang-rt-14-dev curl procps zip unzip binutils"
BENCH_PKGS="wrk hyperfine"
# Debian 11 (where `make zip` builds): clang 11 has its runtimes in
# libclang-common-11-dev (a dependency of clang); no hyperfine package
if [ "$(. /etc/os-release 2>/dev/null && echo "${VERSION_ID:-}")" = 11 ]; then
  TEST_PKGS=$(echo $TEST_PKGS | sed 's/libclang-rt-14-dev//')
  BENCH_PKGS="wrk"
fi

missing() {
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
      printf '%s ' "$p"
    fi
  done
}

mode=${1:-install}
case "$mode" in
check-build)
  m=$(missing $BUILD_PKGS)
  if [ -n "$m" ]; then
    echo "missing build packages: $m" >&2
    echo "run 'make deps' as root, or: sudo apt-get install -y $m" >&2
    exit 1
  fi
  exit 0
  ;;
install)
  m=$(missing $BUILD_PKGS $TEST_PKGS $BENCH_PKGS)
  [ -z "$m" ] && exit 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: $m" >&2
    echo "install them with: sudo apt-get install -y --no-install-recommends $m" >&2
    exit 1
  fi
  echo "installing: $m"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if ! apt-get install -y -q --no-install-recommends $m >/tmp/d365cdc-apt.log 2>&1; then
    apt-get update -q >>/tmp/d365cdc-apt.log 2>&1
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $m >>/tmp/d365cdc-apt.log 2>&1 || {
      tail -20 /tmp/d365cdc-apt.log >&2
      echo "apt-get install failed (full log: /tmp/d365cdc-apt.log)" >&2
      exit 1
    }
  fi
  ;;
*)
  echo "usage: $0 install|check-build" >&2
  exit 2
  ;;
esac

#!/bin/sh
# debroot.sh - minimal Debian roots for the slow checks (make fresh-check,
# make zip, make zip-check), as root.
#
#   debroot.sh create SUITE DIR [PKG...]  debootstrap a minbase root of SUITE
#                                         (bookworm = Debian 12, bullseye = 11)
#                                         into DIR (must not exist), then
#                                         apt-get install PKG... inside it
#   debroot.sh run DIR CMD [ARG...]       run CMD in DIR (chroot) with /proc,
#                                         /sys and /dev mounted; they are
#                                         unmounted afterwards, even when CMD
#                                         fails or this script is interrupted
#   debroot.sh mount DIR / unmount DIR    the same mounts for a caller that
#                                         starts processes in DIR itself (its
#                                         EXIT trap must call unmount)
#   debroot.sh remove DIR                 unmount what is left, then delete DIR
#                                         (refuses while anything is mounted)
#
# D365CDC_ROOT_CACHE=DIR (optional, e.g. /var/cache/d365cdc): `create` unpacks
# DIR/<suite>-<hash of PKG list>.tar.gz when it exists and writes it after a
# fresh debootstrap; without it every root comes from the Debian archive
# (what CI does). D365CDC_MIRROR overrides http://deb.debian.org/debian.
set -u
MIRROR=${D365CDC_MIRROR:-http://deb.debian.org/debian}

die() {
  echo "debroot: $*" >&2
  exit 1
}

need_root() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"
}

abs() {
  case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$(pwd)" "$1" ;; esac
}

# mount points at or below $1, deepest first
mounts_below() {
  awk -v d="$1" '{ if ($2 == d || index($2, d "/") == 1) print $2 }' /proc/mounts | sort -r
}

# Processes whose root is DIR (left behind by a test that failed half-way:
# a redis-server, a postgres): stopped, by pid, before unmounting.
stop_processes_in() {
  d=$1
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$d" | "$d"/*) kill -TERM "${p#/proc/}" 2>/dev/null ;; esac
  done
  sleep 1
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case "$r" in "$d" | "$d"/*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
  done
}

unmount_all() {
  d=$1
  [ -n "$(mounts_below "$d")" ] || return 0
  stop_processes_in "$d"
  for m in $(mounts_below "$d"); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "debroot: cannot unmount $m" >&2
  done
  [ -z "$(mounts_below "$d")" ]
}

cmd_create() {
  suite=$1
  dir=$(abs "$2")
  shift 2
  need_root
  [ ! -e "$dir" ] || die "$dir exists"
  command -v debootstrap >/dev/null 2>&1 || {
    echo "debroot: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap \
      >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap \
          >/dev/null 2>&1; } || die "cannot install debootstrap"
  }
  tarball=
  if [ -n "${D365CDC_ROOT_CACHE:-}" ]; then
    key=$(printf 'v2 %s %s\n' "$MIRROR" "$*" | cksum | cut -d' ' -f1)
    tarball=$D365CDC_ROOT_CACHE/$suite-$key.tar.gz
  fi
  mkdir -p "$dir" || die "cannot create $dir"
  if [ -n "$tarball" ] && [ -f "$tarball" ]; then
    echo "debroot: $suite root from $tarball"
    tar -xzf "$tarball" -C "$dir" || die "cannot unpack $tarball"
    return 0
  fi
  echo "debroot: debootstrap $suite from $MIRROR into $dir"
  log=$dir.debootstrap.log
  debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >"$log" 2>&1 ||
    { tail -20 "$log" >&2; die "debootstrap $suite failed (log: $log)"; }
  rm -f "$log"
  # as in any chroot: packages do not start their services (redis-server,
  # postgresql); the tests start their own servers on free ports
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 0755 "$dir/usr/sbin/policy-rc.d"
  if [ $# -gt 0 ]; then
    echo "debroot: apt-get install $*"
    cmd_run "$dir" sh -c 'export DEBIAN_FRONTEND=noninteractive;
      apt-get update -q >/tmp/apt.log 2>&1 &&
      apt-get install -y -q --no-install-recommends "$@" >>/tmp/apt.log 2>&1 &&
      apt-get clean || { tail -20 /tmp/apt.log; exit 1; }' sh "$@" ||
      die "apt-get install in the $suite root failed"
  fi
  if [ -n "$tarball" ]; then
    mkdir -p "$D365CDC_ROOT_CACHE" &&
      tar -czf "$tarball.tmp" -C "$dir" . && mv "$tarball.tmp" "$tarball" &&
      echo "debroot: cached as $tarball" || rm -f "$tarball.tmp"
  fi
  return 0
}

mount_all() {
  mount -t proc proc "$1/proc" || die "cannot mount /proc in $1"
  mount -t sysfs sysfs "$1/sys" || die "cannot mount /sys in $1"
  mount --rbind /dev "$1/dev" || die "cannot mount /dev in $1"
  mount --make-rslave "$1/dev" 2>/dev/null
  [ -f /etc/resolv.conf ] && cp -L /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null
  return 0
}

cmd_run() {
  dir=$(abs "$1")
  shift
  need_root
  [ -x "$dir/bin/sh" ] || die "$dir is not a root (no /bin/sh)"
  [ -z "$(mounts_below "$dir")" ] || die "$dir already has mounts (another run?): $(mounts_below "$dir" | tr '\n' ' ')"
  # shellcheck disable=SC2064
  trap "unmount_all '$dir'" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  mount_all "$dir"
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM=dumb ${TMPDIR:+TMPDIR=/tmp} chroot "$dir" "$@"
  rc=$?
  unmount_all "$dir" || rc=1
  trap - EXIT INT TERM HUP
  return $rc
}

cmd_remove() {
  dir=$(abs "$1")
  need_root
  [ -e "$dir" ] || return 0
  unmount_all "$dir" || die "$dir still has mounts; not deleting it"
  [ -z "$(mounts_below "$dir")" ] || die "$dir still has mounts; not deleting it"
  rm -rf "$dir"
}

case "${1:-}" in
create) [ $# -ge 3 ] || die "usage: debroot.sh create SUITE DIR [PKG...]"; shift; cmd_create "$@" ;;
run) [ $# -ge 3 ] || die "usage: debroot.sh run DIR CMD [ARG...]"; shift; cmd_run "$@" ;;
mount)
  [ $# -eq 2 ] || die "usage: debroot.sh mount DIR"
  need_root
  d=$(abs "$2")
  [ -z "$(mounts_below "$d")" ] || die "$d already has mounts"
  mount_all "$d"
  ;;
unmount) [ $# -eq 2 ] || die "usage: debroot.sh unmount DIR"; unmount_all "$(abs "$2")" ;;
remove) [ $# -eq 2 ] || die "usage: debroot.sh remove DIR"; cmd_remove "$2" ;;
*) die "usage: debroot.sh create|run|remove ..." ;;
esac

#!/bin/sh
# fresh_check.sh BUILD_DIR - `make fresh-check` (its own .ci/run step; root):
# the README's Quickstart on a fresh machine. A minimal Debian 12 root
# (debootstrap --variant=minbase from the Debian archive) gets `make` (the
# README's first line, for a machine without it) and a clean clone of this
# repository's HEAD; then, inside it (chroot, /proc /sys /dev mounted and
# always unmounted), exactly the README's two commands: `make demo`, then
# `make check`. Both must pass the first time. The log is kept in
# BUILD_DIR/fresh-check.log. D365CDC_ROOT_CACHE (optional) caches the
# debootstrapped root (before anything of this repository touches it).
set -u
BUILD=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEBROOT="sh $ROOT/tests/scripts/debroot.sh"
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "fresh-check FAILED: $*"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "skipped: fresh-check needs root (debootstrap, chroot, mount)"; exit 77; }
command -v git >/dev/null 2>&1 || die "git is needed to make the clean clone"
mkdir -p "$BUILD"
LOG=$BUILD/fresh-check.log
: >"$LOG"
t0=$(date +%s)
since() { echo "$(($(date +%s) - t0))s"; }
W=$(mktemp -d /var/tmp/d365cdc-fresh.XXXXXX)
R=$W/root
# debroot.sh run unmounts on every exit; remove refuses while anything is mounted
trap '$DEBROOT remove "$R"; rm -rf "$W"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "fresh-check: a minimal Debian 12 root"
$DEBROOT create bookworm "$R" make >>"$LOG" 2>&1 || { tail -20 "$LOG"; die "cannot create the root"; }
log "  root ready at $(since)"

# a clean clone of what is committed (HEAD), as a user would get it
head=$(git -C "$ROOT" rev-parse HEAD) || die "not a git checkout"
git clone -q --no-hardlinks "$ROOT" "$R/root/d365-cdc-handler" >>"$LOG" 2>&1 || die "git clone failed"
git -C "$R/root/d365-cdc-handler" checkout -q "$head" >>"$LOG" 2>&1 || die "git checkout $head failed"
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ] ||
  log "  note: uncommitted changes in $ROOT are not part of the check (HEAD $head is)"

# the README's two commands, as written
for c in "make demo" "make check"; do
  grep -q "^$c " "$ROOT/README.md" || die "the README no longer says '$c'"
done
log "fresh-check: make demo, then make check, in the root (log: $LOG)"
$DEBROOT run "$R" sh -c 'cd /root/d365-cdc-handler && echo "+ make demo" && make demo &&
  echo "+ make check" && make check' >>"$LOG" 2>&1
rc=$?
grep -E '^(passed|failed:)|demo FAILED' "$LOG" | sed 's/^/  /' >&2
[ $rc = 0 ] || { tail -40 "$LOG"; die "the README's commands failed on a fresh Debian 12 (exit $rc, log: $LOG)"; }
log "fresh-check ok in $(since)"

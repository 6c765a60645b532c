#!/bin/sh
# dockerfile_steps.sh BUILD_DIR [SUITE] - run deploy/sqlserver/Dockerfile's
# steps without a Docker engine: a fresh Debian root (bookworm by default, as
# the current Functions v4 images; bullseye for the older ones) stands in for
# the base image, COPY app/ is the unpacked BUILD_DIR/d365-cdc-handler.zip,
# and each RUN runs there with the Dockerfile's ENV (root; debootstrap).
# Every step runs even after one failed (the later ones may not depend on it);
# exits 0 when every step passed, else 1 after naming the steps that failed.
# On the development machine packages.microsoft.com is not reachable, so the
# msodbcsql18 step fails there (docs/azure-setup.md says so).
set -u
BUILD=$1
case "$BUILD" in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
SUITE=${2:-bookworm}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DF=$ROOT/deploy/sqlserver/Dockerfile
DEBROOT="sh $ROOT/tests/scripts/debroot.sh"
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
[ -f "$BUILD/d365-cdc-handler.zip" ] || { echo "no $BUILD/d365-cdc-handler.zip: make zip first" >&2; exit 1; }
W=$(mktemp -d /var/tmp/d365cdc-docker.XXXXXX)
R=$W/root
trap '$DEBROOT remove "$R"; rm -rf "$W"' EXIT
$DEBROOT create "$SUITE" "$R" || exit 1
# the instructions, continuation lines joined
awk '{ if (sub(/\\$/, "")) { buf = buf $0 " "; next } print buf $0; buf = "" }' "$DF" |
  grep -E '^(RUN|ENV|COPY) ' >"$W/steps"
envs=""
n=0
failed=
while IFS= read -r line; do
  n=$((n + 1))
  case "$line" in
  ENV\ *) envs="$envs ${line#ENV }"; echo "step $n: ENV ${line#ENV }" ;;
  COPY\ app/*)
    echo "step $n: COPY app/ (the unpacked zip)"
    mkdir -p "$R/home/site/wwwroot" && (cd "$R/home/site/wwwroot" && unzip -q "$BUILD/d365-cdc-handler.zip") ||
      { echo "step $n failed"; exit 1; }
    ;;
  RUN\ *)
    echo "step $n: RUN ${line#RUN }" | cut -c1-160
    # shellcheck disable=SC2086
    if ! $DEBROOT run "$R" env $envs /bin/sh -c "${line#RUN }" >"$W/step$n.log" 2>&1; then
      tail -15 "$W/step$n.log"
      echo "dockerfile_steps: step $n FAILED in a $SUITE root (log above); going on"
      failed="$failed $n"
      continue
    fi
    tail -3 "$W/step$n.log"
    ;;
  esac
done <"$W/steps"
[ -z "$failed" ] || { echo "dockerfile_steps: failed steps:$failed"; exit 1; }
echo "dockerfile_steps: every step passed in a $SUITE root"

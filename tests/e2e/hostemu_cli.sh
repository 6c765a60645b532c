#!/bin/sh
# hostemu_cli.sh - the host emulator's command line: usage errors exit 2,
# --help exits 0, bad script roots and message files are reported clearly.
#
# The other hostemu_*.sh tests source this file with HOSTEMU_LIB=1 for its
# helpers (he_init, he_app, he_run, jget, ...); then it runs no checks.
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILD:=$ROOT/build}"
. "$ROOT/tests/scripts/lib.sh"

HE=$BUILD/hostemu
FH=$BUILD/tools/fakehandler
FIX=$ROOT/tests/fixtures/hostemu

he_init() {
  test_init
  [ -x "$HE" ] && [ -x "$FH" ] || die "build first: make BUILD=$BUILD $HE $FH"
  T=$(tmpdir)
  # tmpdir ran in a subshell: make sure this shell's exit removes T too
  CLEANUP_DIRS="${CLEANUP_DIRS:-} $T"
}

# he_app NAME FUNCTION FUNCTION_JSON: a script root $T/NAME whose handler is
# fakehandler recording into $REC, with extra arguments taken from FAKE_ARGS
# (host.json expands %FAKE_ARGS%, and drops it when it is not set).
he_app() {
  _d=$T/$1
  mkdir -p "$_d/$2" "$_d/rec"
  cat >"$_d/host.json" <<EOH
{ "version": "2.0",
  "customHandler": { "description": { "defaultExecutablePath": "handler",
    "arguments": ["--dir", "%REC%", "%FAKE_ARGS%"] } } }
EOH
  printf '%s\n' "$3" >"$_d/$2/function.json"
  ln -sf "$FH" "$_d/handler"
}

# he_run NAME [hostemu args...]: run hostemu on $T/NAME, recording into
# $T/NAME/rec. Returns hostemu's exit status.
he_run() {
  _n=$1
  shift
  REC=$T/$_n/rec "$HE" --script-root "$T/$_n" "$@"
}

# bodies NAME / heads NAME: recorded request files, oldest first
bodies() { ls "$T/$1/rec"/req-*.body 2>/dev/null | sort; }
heads() { ls "$T/$1/rec"/req-*.head 2>/dev/null | sort; }

# expect_eq WHAT GOT WANT
expect_eq() {
  [ "$2" = "$3" ] || die "$1: got [$2], want [$3]"
}

# expect_match WHAT GOT ERE
expect_match() {
  printf '%s\n' "$2" | grep -Eq "$3" || die "$1: [$2] does not match /$3/"
}

fh() { "$FH" "$@"; }

# jget FILE KEY...: a JSON value as compact JSON; jstr: a string's content
jget() { "$FH" json "$@"; }
jstr() { "$FH" json --str "$@"; }

[ -n "${HOSTEMU_LIB:-}" ] && return 0

he_init
log "usage errors exit 2 with a hint"
"$HE" >"$T/out" 2>&1
expect_eq "no arguments" "$?" 2
grep -q "give --script-root DIR or --connect PORT" "$T/out" || die "no usage hint: $(cat "$T/out")"
"$HE" --connect 1 --bogus >"$T/out" 2>&1
expect_eq "unknown option" "$?" 2
grep -q "unknown option --bogus" "$T/out" || die "bad message: $(cat "$T/out")"
"$HE" --connect 1 --messages x --batch 0 >"$T/out" 2>&1
expect_eq "bad --batch" "$?" 2
"$HE" --connect 1 --messages x --single --batch 5 >"$T/out" 2>&1
expect_eq "--single with --batch" "$?" 2
"$HE" --connect 1 --http GET nopath >"$T/out" 2>&1
expect_eq "--http path" "$?" 2
"$HE" --help >"$T/out" 2>&1
expect_eq "--help" "$?" 0
grep -q -- "--max-delivery-count" "$T/out" || die "--help lacks options"

log "configuration errors name the file and the problem"
mkdir -p "$T/empty"
"$HE" --script-root "$T/empty" --messages "$FIX/create_account.json" >"$T/out" 2>&1
expect_eq "no host.json" "$?" 2
grep -q "host.json" "$T/out" || die "bad message: $(cat "$T/out")"
he_app many Fn '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "m", "cardinality": "many" } ] }'
he_run many --messages "$FIX/create_account.json" >"$T/out" 2>&1
expect_eq "many without dataType" "$?" 2
grep -q "fails to bind" "$T/out" || die "bad message: $(cat "$T/out")"
he_app broken Fn '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "m" }'
he_run broken --messages "$FIX/create_account.json" >"$T/out" 2>&1
expect_eq "broken function.json" "$?" 2
grep -q "Fn/function.json: .*line 2" "$T/out" || die "no position: $(cat "$T/out")"
he_app ok Fn '{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "m" } ] }'
printf 'x' >"$T/m.json"
printf '{"MessageId": 5}' >"$T/m.json.props.json"
he_run ok --messages "$T/m.json" >"$T/out" 2>&1
expect_eq "bad sidecar" "$?" 2
grep -q '"MessageId" must be a string' "$T/out" || die "bad message: $(cat "$T/out")"
printf '{"Colour": "red"}' >"$T/m.json.props.json"
he_run ok --messages "$T/m.json" >"$T/out" 2>&1
expect_eq "unknown sidecar key" "$?" 2
grep -q 'unknown message property "Colour"' "$T/out" || die "bad message: $(cat "$T/out")"
he_run ok --messages "$T/nonexistent" >"$T/out" 2>&1
expect_eq "missing message file" "$?" 2
grep -q "nonexistent" "$T/out" || die "bad message: $(cat "$T/out")"
log "ok"

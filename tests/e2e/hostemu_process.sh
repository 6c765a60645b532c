#!/bin/sh
# hostemu_process.sh - the handler process is supervised like the host does
# it: readiness polling with GET / every 25 ms and the cold start measured;
# exit 200 restarts without counting, other exits count and the third
# error gives up, exit 0 is not restarted; an initialization timeout and an
# executable that cannot start are errors; --stop reports the exit code;
# stdout/stderr lines are captured with the host's levels; --connect uses a
# handler that is already running.
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
HOSTEMU_LIB=1 . "$ROOT/tests/e2e/hostemu_cli.sh"
he_init

FN='{ "bindings": [ { "type": "serviceBusTrigger", "direction": "in", "name": "msg", "queueName": "q", "connection": "SB", "dataType": "binary" } ] }'
mkdir -p "$T/six" "$T/nine" "$T/four"
for i in 1 2 3 4 5 6 7 8 9; do
  [ $i -le 4 ] && printf '{"n":%d}' $i >"$T/four/m$i.json"
  [ $i -le 6 ] && printf '{"n":%d}' $i >"$T/six/m$i.json"
  printf '{"n":%d}' $i >"$T/nine/m$i.json"
done

log "readiness: GET / polled every 25 ms until the handler answers; cold start measured"
he_app ready ProcessChange "$FN"
FAKE_ARGS='--ready-delay-ms 400' he_run ready --messages "$T/four/m1.json" --stop \
  --handler-log "$T/ready.log" --json "$T/ready.json" >"$T/ready.out" 2>&1
expect_eq "exit status" "$?" 0
COLD=$(jget "$T/ready.json" handler coldStartMs)
PROBES=$(jget "$T/ready.json" handler readinessProbes)
awk -v c="$COLD" 'BEGIN { exit !(c >= 400) }' || die "cold start $COLD ms is below the 400 ms the handler slept"
[ "$PROBES" -ge 2 ] || die "only $PROBES readiness probes"
# probes are at least 25 ms apart: no more than one per 25 ms of waiting
awk -v c="$COLD" -v p="$PROBES" 'BEGIN { exit !(p <= c / 25 + 1) }' || die "$PROBES probes in $COLD ms"
expect_eq "GET / answered once" "$(wc -l <"$T/ready/rec/gets")" 1
expect_eq "invocation after readiness" "$(jget "$T/ready.json" invocationsSucceeded)" 1
log "handler output lines carry the host's levels; --stop reports the exit"
grep -q '^\[handler info\] fakehandler listening on 127.0.0.1:' "$T/ready.log" || die "stdout line: $(cat "$T/ready.log")"
grep -q '^\[handler error\] fakehandler pid [0-9]* on stderr' "$T/ready.log" || die "stderr line: $(cat "$T/ready.log")"
grep -q '^\[handler warning\] fakehandler warning: this is a test double' "$T/ready.log" || die "warn line: $(cat "$T/ready.log")"
grep -q '^\[handler info\] fakehandler stopping on signal 15 after 1 invocations' "$T/ready.log" || die "no SIGTERM: $(cat "$T/ready.log")"
expect_eq "stopped" "$(jget "$T/ready.json" handler stopped)" true
expect_eq "exit code after SIGTERM" "$(jget "$T/ready.json" handler exitCode)" 0
FAKE_ARGS='--term-code 3' he_run ready --messages "$T/four/m1.json" --stop --json "$T/term.json" >"$T/term.out" 2>&1
expect_eq "exit code reported" "$(jget "$T/term.json" handler exitCode)" 3
grep -q "handler exit    code 3 (after SIGTERM)" "$T/term.out" || die "summary: $(cat "$T/term.out")"

log "exit 200 after 2 invocations: restarted, not counted, every message settled"
he_app r200 ProcessChange "$FN"
FAKE_ARGS='--exit-after 2 --exit-code 200' he_run r200 --messages "$T/six" --concurrency 1 \
  --json "$T/r200.json" >"$T/r200.out" 2>&1
expect_eq "exit status" "$?" 0
expect_eq "restarts" "$(jget "$T/r200.json" handler restarts)" 2
expect_eq "errors" "$(jget "$T/r200.json" handler errorExits)" 0
expect_eq "succeeded" "$(jget "$T/r200.json" messages succeeded)" 6
expect_eq "handler processes" "$(ls "$T/r200/rec"/env-* | wc -l)" 3
expect_match "in-flight failure" "$(jstr "$T/r200.json" failures '#0' text)" '[Cc]onnection|closed'

log "exit 1 after 2 invocations: restarted and counted; the third error gives up"
he_app r1 ProcessChange "$FN"
FAKE_ARGS='--exit-after 2 --exit-code 1' he_run r1 --messages "$T/nine" --concurrency 1 \
  --json "$T/r1.json" >"$T/r1.out" 2>&1
expect_eq "exit status" "$?" 1
expect_eq "gave up" "$(jget "$T/r1.json" handler gaveUp)" true
expect_eq "errors" "$(jget "$T/r1.json" handler errorExits)" 3
expect_eq "restarts" "$(jget "$T/r1.json" handler restarts)" 2
expect_eq "succeeded" "$(jget "$T/r1.json" messages succeeded)" 6
expect_eq "unsettled" "$(jget "$T/r1.json" messages unsettled)" 3
grep -q "Exceeded http worker restart retry count" "$T/r1.out" || die "no give-up message: $(cat "$T/r1.out")"

log "exit 0 after 2 invocations: not restarted; later invocations fail with connection refused"
he_app r0 ProcessChange "$FN"
FAKE_ARGS='--exit-after 2 --exit-code 0' he_run r0 --messages "$T/four" --concurrency 1 \
  --max-delivery-count 2 --json "$T/r0.json" >"$T/r0.out" 2>&1
expect_eq "exit status" "$?" 1
expect_eq "restarts" "$(jget "$T/r0.json" handler restarts)" 0
expect_eq "last exit code" "$(jget "$T/r0.json" handler exitCode)" 0
expect_eq "succeeded" "$(jget "$T/r0.json" messages succeeded)" 2
expect_eq "dead-lettered" "$(jget "$T/r0.json" messages deadLettered)" 2
jget "$T/r0.json" failures | grep -q "Connection refused" || die "no refusals: $(jget "$T/r0.json" failures)"
expect_eq "one handler process" "$(ls "$T/r0/rec"/env-* | wc -l)" 1

log "a handler that never answers GET / is killed after the initialization timeout"
he_app slowstart ProcessChange "$FN"
FAKE_ARGS='--ready-delay-ms 10000' he_run slowstart --messages "$T/four/m1.json" --init-timeout 0.3 \
  --json "$T/slowstart.json" >"$T/slowstart.out" 2>&1
expect_eq "exit status" "$?" 1
expect_eq "gave up" "$(jget "$T/slowstart.json" handler gaveUp)" true
expect_eq "errors" "$(jget "$T/slowstart.json" handler errorExits)" 3
expect_eq "unsettled" "$(jget "$T/slowstart.json" messages unsettled)" 1
grep -q "did not answer GET / within the initialization timeout" "$T/slowstart.out" || die "$(cat "$T/slowstart.out")"

log "a handler that cannot be executed"
he_app noexe ProcessChange "$FN"
rm "$T/noexe/handler"
sed 's/"handler"/"no-such-handler-binary"/' "$T/noexe/host.json" >"$T/noexe/h" && mv "$T/noexe/h" "$T/noexe/host.json"
he_run noexe --messages "$T/four/m1.json" >"$T/noexe.out" 2>&1
expect_eq "exit status" "$?" 1
grep -q "cannot start the handler: no-such-handler-binary: No such file or directory" "$T/noexe.out" || die "$(cat "$T/noexe.out")"

log "--connect: a handler that is already running"
PORT=$(free_port)
mkdir -p "$T/conn"
FUNCTIONS_CUSTOMHANDLER_PORT=$PORT "$FH" --dir "$T/conn" >"$T/conn.log" 2>&1 &
CLEANUP_PIDS="$CLEANUP_PIDS $!"
"$HE" --connect "$PORT" --function Orders --trigger-name order --data-type string \
  --messages "$T/four/m2.json" --json "$T/conn.json" >"$T/conn.out" 2>&1
expect_eq "exit status" "$?" 0
expect_eq "not launched" "$(jget "$T/conn.json" handler launched)" false
B=$(ls "$T/conn"/req-*.body)
expect_eq "request line" "$(head -1 "$(ls "$T/conn"/req-*.head)")" "POST /Orders HTTP/1.1"
jstr "$B" Data order | fh json --str - | cmp - "$T/four/m2.json" || die "body differs"
PORT=$(free_port)
"$HE" --connect "$PORT" --function Orders --messages "$T/four/m2.json" --init-timeout 0.3 \
  --json "$T/noconn.json" >"$T/noconn.out" 2>&1
expect_eq "exit status when nothing answers" "$?" 1
grep -q "did not answer GET / within 300 ms" "$T/noconn.out" || die "$(cat "$T/noconn.out")"
expect_eq "unsettled" "$(jget "$T/noconn.json" messages unsettled)" 1
"$HE" --connect "$PORT" --function 'Bad Name' --messages "$T/four/m2.json" >"$T/badname.out" 2>&1
expect_eq "invalid function name" "$?" 2
log "ok"

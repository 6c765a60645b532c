# replica_lib.sh - helpers for tests/e2e/replica_*.sh and the demo (POSIX sh;
# source after lib.sh; the caller sets $dir). Starts the real servers the
# replica talks to: redis-server, tokensvc (Entra ID) and dvemu (the
# Dataverse Web API emulator), and the handler itself, which is invoked the
# way the Functions host invokes a custom handler (POST /<function> with the
# invocation envelope).
# shellcheck disable=SC2034

# rp_tokensvc: start tokensvc (client secret credential); sets TOK_PORT
rp_tokensvc() {
  "$BUILD/tools/tokensvc" --port 0 --tenant t1 --client-id c1 --client-secret s3cr3t \
    --lifetime "${TOKEN_LIFETIME:-3600}" >"$dir/tok.port" 2>"$dir/tok.err" &
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  _i=0
  until [ -s "$dir/tok.port" ]; do
    _i=$((_i + 1)); [ $_i -lt 200 ] || die "tokensvc did not start: $(cat "$dir/tok.err")"
    sleep 0.05
  done
  TOK_PORT=$(cat "$dir/tok.port")
}

# rp_dvemu ARGS...: start dvemu with its tokens checked by tokensvc; sets
# DV_PORT, DV_PID, DV (its base URL)
rp_dvemu() {
  rm -f "$dir/dv.port"
  "$BUILD/tools/dvemu" --port 0 --tokensvc "http://127.0.0.1:$TOK_PORT" "$@" \
    >"$dir/dv.port" 2>"$dir/dv.err" &
  DV_PID=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $DV_PID"
  _i=0
  until [ -s "$dir/dv.port" ]; do
    _i=$((_i + 1)); [ $_i -lt 600 ] || die "dvemu did not start: $(cat "$dir/dv.err")"
    sleep 0.05
  done
  DV_PORT=$(cat "$dir/dv.port")
  DV=http://127.0.0.1:$DV_PORT
}

# rp_handler [NAME=VALUE...]: start the handler from $BUILD/app on a free
# port against redis, dvemu and tokensvc; sets H_PORT, H_PID
rp_handler() {
  H_PORT=$(free_port)
  _app=$(cd "$BUILD/app" && pwd) || die "no $BUILD/app"
  (cd "$_app" && exec env FUNCTIONS_CUSTOMHANDLER_PORT="$H_PORT" \
    FUNCTIONS_APP_ROOT_PATH="$_app" "RedisConnection=127.0.0.1:$REDIS_PORT" \
    "DataverseUrl=$DV" CDC_RECONCILE_TABLES=contact \
    "AZURE_AUTHORITY_HOST=http://127.0.0.1:$TOK_PORT" AZURE_TENANT_ID=t1 AZURE_CLIENT_ID=c1 \
    AZURE_CLIENT_SECRET=s3cr3t CDC_LOG_LEVEL=info "$@" ./handler) >>"$dir/handler.log" 2>&1 &
  H_PID=$!
  CLEANUP_PIDS="$CLEANUP_PIDS $H_PID"
  wait_port "$H_PORT" 20 || die "the handler did not start: $(tail -5 "$dir/handler.log")"
}

# rp_reconcile [OUT]: one timer invocation of Reconcile through build/hostemu
# (--timer: the envelope the Functions host sends for a timerTrigger); prints
# the Logs line; fails when the invocation failed
rp_reconcile() {
  _o=${1:-$dir/reconcile.out}
  "$BUILD/hostemu" --connect "$H_PORT" --script-root "$BUILD/app" --timer Reconcile \
    --timeout-ms 600000 >"$_o" 2>"$_o.err"
  _rc=$?
  sed -n 's/^log: //p' "$_o"
  return $_rc
}

# rp_dvstat NAME: a counter of dvemu's /_stats
rp_dvstat() { curl -s "$DV/_stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

# rp_records FILE: dvemu's live contacts
rp_records() { curl -sf "$DV/_records?table=contact" >"$1" || die "dvemu /_records failed"; }

# rp_compare LABEL [DELETED_IDS]: the replica equals dvemu, or bad
rp_compare() {
  rp_records "$dir/final.json"
  if "$BUILD/tools/replcmp" "$REDIS_PORT" d365 contact contactid "$dir/final.json" ${2:-} \
    >"$dir/cmp.out" 2>&1; then
    ok "$1: $(tail -1 "$dir/cmp.out")"
  else
    bad "$1: $(cat "$dir/cmp.out")"
  fi
}

# pipeline_lib.sh - helpers for tests/e2e/pipeline_*.sh (POSIX sh; source it
# after lib.sh). Messages are made from the templates in
# tests/fixtures/pipeline/ (see its README); everything goes through
# build/hostemu and the real handler. The sourcing test sets $dir (its
# temporary directory) and uses the variables order_stream sets.
# shellcheck disable=SC2034,SC2154

# pl_begin: what every pipeline test starts with: the build is there, and
# $dir is a temporary directory removed at exit (tmpdir runs in a subshell,
# so its own bookkeeping does not reach this shell)
pl_begin() {
  [ -x "$BUILD/hostemu" ] && [ -x "$BUILD/app/handler" ] || die "build first: make BUILD=$BUILD all"
  dir=$(tmpdir)
  CLEANUP_DIRS="$CLEANUP_DIRS $dir"
}

# pl_start_redis: the test's Redis, a private redis-server or, with
# PL_CLUSTER=1, a private Redis Cluster (cluster_lib.sh: 3 primaries + 3
# replicas); sets REDIS_PORT (one node; rc follows the cluster's
# redirections) and PL_REDIS_CONN (the RedisConnection value).
pl_start_redis() {
  if [ -n "${PL_CLUSTER:-}" ]; then
    . "$ROOT/tests/scripts/cluster_lib.sh"
    start_cluster "$dir"
    REDIS_PORT=$(primaries | head -1)
    PL_REDIS_CONN=$CLUSTER_SEEDS
  else
    start_redis "$dir"
    PL_REDIS_CONN=127.0.0.1:$REDIS_PORT
  fi
}
# pl_primaries: the ports holding data (every primary of the cluster)
pl_primaries() { if [ -n "${PL_CLUSTER:-}" ]; then primaries; else echo "$REDIS_PORT"; fi; }

# rc ARGS...: redis-cli on the test's Redis (-c on a cluster)
rc() { redis-cli -p "$REDIS_PORT" ${PL_CLUSTER:+-c} "$@"; }
# rc_flushall: empty the test's Redis (every primary)
rc_flushall() { for _p in $(pl_primaries); do redis-cli -p "$_p" FLUSHALL >/dev/null; done; }

# count_msgs DIR: the message files hostemu delivers from DIR (sidecars and
# dot files excluded)
count_msgs() {
  _c=0
  for _f in "$1"/*; do
    case "$_f" in *.props.json) ;; *) [ -f "$_f" ] && _c=$((_c + 1)) ;; esac
  done
  echo "$_c"
}

TPL=$ROOT/tests/fixtures/pipeline
CLAIMS=http://schemas.microsoft.com/xrm/2011/Claims/
PL_SEQ=0
PL_FAILURES=0

ok() { log "ok: $*"; }
bad() {
  log "FAIL: $*"
  PL_FAILURES=$((PL_FAILURES + 1))
}
expect_eq() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', expected '$2'"; fi; }
pl_finish() {
  [ "$PL_FAILURES" = 0 ] || die "$PL_FAILURES check(s) failed"
  log "all checks passed"
}

# _fill TEMPLATE OUT ID TS [sed expressions...]: a message from a template,
# with a fresh OperationId (a change = one OperationId; a copy of the file is
# a duplicate of that change).
_fill() {
  _t=$1 _o=$2 _id=$3 _ts=$4
  shift 4
  PL_SEQ=$((PL_SEQ + 1))
  _op=$(printf '0000%04x-0000-4000-8000-%012x' "$PL_SEQ" "$_ts")
  sed -e "s|@ID@|$_id|g" -e "s|@TS@|$_ts|g" -e "s|@OPID@|$_op|g" "$@" "$TPL/$_t.json" >"$_o"
}
# msg_create OUT ID TS NAME NUMBER PHONE REVENUE
msg_create() { _fill account_create "$1" "$2" "$3" -e "s|@NAME@|$4|g" -e "s|@NUMBER@|$5|g" -e "s|@PHONE@|$6|g" -e "s|@REVENUE@|$7|g"; }
# msg_update OUT ID TS COLUMN VALUE (a partial Update of one text column)
msg_update() { _fill account_update "$1" "$2" "$3" -e "s|@COL@|$4|g" -e "s|@VAL@|$5|g"; }
# msg_delete OUT ID TS
msg_delete() { _fill account_delete "$1" "$2" "$3"; }
# msg_relate OUT ID TS Associate|Disassociate LEAD_ID (accountleads_association)
msg_relate() { _fill account_relate "$1" "$2" "$3" -e "s|@MSG@|$4|g" -e "s|@LEAD@|$5|g"; }
# msg_truncated OUT ID TS (an Update whose InputParameters Dataverse dropped)
msg_truncated() { _fill account_truncated "$1" "$2" "$3"; }

# sidecar FILE MESSAGE_ID [CONTENT_TYPE [EXTRA_APP_PROPS]]: FILE.props.json
# with the properties Dataverse sets (EXTRA_APP_PROPS: more "key":value pairs).
sidecar() {
  _req=$(sed -n 's/.*"MessageName":"\([A-Za-z]*\)".*/\1/p' "$1" 2>/dev/null)
  cat >"$1.props.json" <<EOF
{ "MessageId": "$2", "ContentType": "${3:-application/json}",
  "ApplicationProperties": { "${CLAIMS}Organization": "unqc2a1f0e47b3d4e8a9f216d5b4c3a",
    "${CLAIMS}EntityLogicalName": "account", "${CLAIMS}RequestName": "${_req:-Update}",
    "${CLAIMS}User": "1a2b3c4d-9c7b-ef11-8a6a-000d3a4b5c6d"${4:+, $4} } }
EOF
}

# app_variant DIR single|batch: a copy of the script root $BUILD/app whose
# Changes function is single (cardinality one, binding msg) or the batch one.
app_variant() {
  mkdir -p "$1"
  cp -R "$BUILD/app/." "$1/"
  if [ "$2" = single ]; then
    sed -e 's/"cardinality": "many"/"cardinality": "one"/' -e 's/"name": "msgs"/"name": "msg"/' \
      "$BUILD/app/Changes/function.json" >"$1/Changes/function.json"
    grep -q '"cardinality": "one"' "$1/Changes/function.json" || die "could not make the single variant"
  fi
}

# hostemu ROOT NAME [args...]: run build/hostemu on script root ROOT with the
# test's settings ($PL_ENV: --env NAME=VALUE ...); summary in $dir/NAME.json,
# handler log in $dir/NAME.log (with the answers' Logs, --verbose), stdout in
# $dir/NAME.out. Returns hostemu's exit status.
hostemu() {
  _root=$1 _name=$2
  shift 2
  # shellcheck disable=SC2086
  "$BUILD/hostemu" --script-root "$_root" $PL_ENV --json "$dir/$_name.json" \
    --handler-log "$dir/$_name.log" --verbose "$@" >"$dir/$_name.out" 2>"$dir/$_name.err"
}
# sum_num NAME KEY: a number of the summary $dir/NAME.json ("succeeded", ...)
sum_num() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$dir/$1.json"; }
# logs_sum NAME KEY: the sum of KEY=n over the answers' Logs in $dir/NAME.log
logs_sum() {
  awk -v k="$2" '/\[handler log\] messages=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) t += kv[2] } }
    END { print t + 0 }' "$dir/$1.log"
}
# settled NAME N: all N messages succeeded, none retried/dead-lettered/unsettled
settled() {
  expect_eq "$(sum_num "$1" generated)/$(sum_num "$1" succeeded)/$(sum_num "$1" retried)/$(sum_num "$1" deadLettered)/$(sum_num "$1" unsettled)" \
    "$2/$2/0/0/0" "$1: generated/succeeded/retried/dead-lettered/unsettled"
}

# read_body ROOT PATH [hostemu args]: the read API's answer ("STATUS BODY")
# with @odata.etag values removed (they are checked separately where needed)
# and the scheme and host of @odata.context replaced by "BASE" (they depend
# on the call style host.json selects: envelope or forwarded request).
read_body() {
  _root=$1 _path=$2
  shift 2
  # shellcheck disable=SC2086
  "$BUILD/hostemu" --script-root "$_root" $PL_ENV --quiet --handler-log "$dir/reads.log" \
    --http GET "$_path" "$@" >"$dir/read.txt" 2>"$dir/read.err"
  printf '%s %s\n' "$(sed -n '1s/^HTTP\/1\.1 \([0-9]*\).*/\1/p' "$dir/read.txt")" \
    "$(sed '1,/^\r\{0,1\}$/d' "$dir/read.txt" | sed -e 's/"@odata\.etag":"W\/\\"[0-9]*\\"",//g' \
      -e 's|"@odata\.context":"https\{0,1\}://[^/"]*/|"@odata.context":"BASE/|')"
}
# expect_read ROOT PATH EXPECTED [hostemu args]
expect_read() {
  _r=$1 _p=$2 _e=$3
  shift 3
  _got=$(read_body "$_r" "$_p" "$@")
  if [ "$_got" = "$_e" ]; then ok "GET $_p"; else bad "GET $_p:
   got      $_got
   expected $_e"; fi
}

# prop_values: stdin, one stored p:<prop> field value a line (redis-cli
# --raw HMGET/HGET; handler/redis/redis_lua.h: version, annotations length, ':',
# annotations, value) -> the value JSON a line; empty lines (no field) stay
prop_values() {
  LC_ALL=C awk '{ v = substr($0, 46); c = index(v, ":"); print substr(v, c + 1 + substr(v, 1, c - 1)) }'
}

# rec_dump PREFIX: every key under PREFIX with its fields and values, sorted
# (a snapshot to compare before/after a replay); the shared metrics hash
# <prefix>:{ops}:metrics counts work, it is not replica state: left out
rec_dump() {
  for _p in $(pl_primaries); do redis-cli -p "$_p" --scan --pattern "$1*"; done | grep -v '{ops}:metrics$' | sort | while IFS= read -r k; do
    printf '%s %s\n' "$k" "$(rc --raw TYPE "$k")"
    case "$(rc --raw TYPE "$k")" in
    hash) rc --raw HGETALL "$k" | paste - - | sort ;;
    zset) rc --raw ZRANGE "$k" 0 -1 WITHSCORES | paste - - ;;
    stream) rc --raw XLEN "$k" ;;
    esac
  done
}

# order_stream DIR: the adversarial stream of pipeline_order.sh (and
# pipeline_sql.sh) in DIR, in delivery (name) order; sets the record ids
# R D X Y P Q U A1 A2, LEAD and N (the number of messages).
#   R: reversed (newest first); D: duplicates (same MessageId, same change
#   under two MessageIds, the Create redelivered last); X, Y: delete then a
#   late older update (Y then updated after the delete); P, Q, U: partial
#   updates of two columns in both orders (U without a Create); A1, A2:
#   associate/disassociate out of order.
order_stream() {
  m=$1
  mkdir -p "$m"
  T=1731000000000
  _o=a0000000-0000-4000-8000-0000000000
  R=${_o}01 D=${_o}02 X=${_o}03 Y=${_o}04 P=${_o}05 Q=${_o}06 U=${_o}07 A1=${_o}08 A2=${_o}09
  LEAD=b0000000-0000-4000-8000-000000000001

  # Files are delivered in name order.
  # reversed: Create, name v2, name v3, phone, delivered newest first
  msg_create "$m/r1" "$R" $((T + 1000)) "R v1" N-R P1 100
  msg_update "$m/r2" "$R" $((T + 2000)) name "R v2"
  msg_update "$m/r3" "$R" $((T + 3000)) name "R v3"
  msg_update "$m/r4" "$R" $((T + 4000)) telephone1 "R P4"
  mv "$m/r4" "$m/01_r"; mv "$m/r3" "$m/02_r"; mv "$m/r2" "$m/03_r"; mv "$m/r1" "$m/04_r"

  # duplicated: the Create redelivered (same MessageId) after the updates, an
  # update twice with one MessageId, another under two MessageIds
  msg_create "$m/05_d" "$D" $((T + 1000)) "D v1" N-D P1 200
  sidecar "$m/05_d" dup-create
  msg_update "$m/06_d" "$D" $((T + 2000)) name "D v2"
  sidecar "$m/06_d" dup-name
  cp "$m/06_d" "$m/07_d"; cp "$m/06_d.props.json" "$m/07_d.props.json"
  msg_update "$m/08_d" "$D" $((T + 3000)) telephone1 "D P3"
  sidecar "$m/08_d" dup-phone-a
  cp "$m/08_d" "$m/09_d"; sidecar "$m/09_d" dup-phone-b
  cp "$m/05_d" "$m/10_d"; cp "$m/05_d.props.json" "$m/10_d.props.json"

  # delete then a late older update; for Y also a newer update after the delete
  for r in X Y; do
    eval "rid=\$$r"
    msg_create "$m/11_$r" "$rid" $((T + 1000)) "$r v1" "N-$r" P1 300
    msg_delete "$m/12_$r" "$rid" $((T + 3000))
    msg_update "$m/13_$r" "$rid" $((T + 2000)) telephone1 "$r late"
  done
  msg_update "$m/14_Y" "$Y" $((T + 4000)) name "Y back"

  # two partial updates to different columns: P gets them newest first, Q
  # oldest first, U (no Create) newest first
  for r in P Q U; do
    eval "rid=\$$r"
    [ $r = U ] || msg_create "$m/15_$r" "$rid" $((T + 1000)) "$r v1" "N-$r" P1 400
    msg_update "$m/.phone_$r" "$rid" $((T + 2000)) telephone1 "$r P2"
    msg_update "$m/.name_$r" "$rid" $((T + 3000)) name "$r N3"
  done
  mv "$m/.name_P" "$m/16_P"; mv "$m/.phone_P" "$m/17_P"
  mv "$m/.phone_Q" "$m/16_Q"; mv "$m/.name_Q" "$m/17_Q"
  mv "$m/.name_U" "$m/16_U"; mv "$m/.phone_U" "$m/17_U"

  # associate/disassociate out of order: A1 associated then disassociated
  # (delivered the other way round), A2 disassociated then associated
  # (delivered the other way round); both accounts exist
  msg_create "$m/17_A1" "$A1" $((T + 500)) "A1 v1" N-A1 P1 500
  msg_create "$m/17_A2" "$A2" $((T + 500)) "A2 v1" N-A2 P1 500
  msg_relate "$m/18_A1" "$A1" $((T + 2000)) Disassociate "$LEAD"
  msg_relate "$m/19_A1" "$A1" $((T + 1000)) Associate "$LEAD"
  msg_relate "$m/18_A2" "$A2" $((T + 2000)) Associate "$LEAD"
  msg_relate "$m/19_A2" "$A2" $((T + 1000)) Disassociate "$LEAD"
  N=$(count_msgs "$m")
}

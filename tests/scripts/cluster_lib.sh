# cluster_lib.sh - a private Redis Cluster on loopback for the tests (POSIX sh).
# Source it after lib.sh: . "$ROOT/tests/scripts/cluster_lib.sh"
#
# start_cluster DIR: six redis-server --cluster-enabled yes on free ports
# (the bus port chosen with --cluster-port, so it never overflows), joined by
# redis-cli --cluster create --cluster-replicas 1: three primaries, each with
# a replica. Sets CLUSTER_PORTS (six ports; the first three are the
# primaries right after creation), CLUSTER_SEEDS (RedisConnection endpoints,
# every node), and NODE_PID_<port> for each node. Nodes are stopped by
# cleanup_all. CLUSTER_NODE_TIMEOUT (ms, default 2000) is how long a primary
# may be unreachable before its replica is promoted.

# start_cluster_node DIR PORT BUSPORT: start (or restart) one node.
start_cluster_node() {
  _nd=$1/n$2
  mkdir -p "$_nd"
  redis-server --port "$2" --cluster-port "$3" --bind 127.0.0.1 --dir "$_nd" --save '' \
    --appendonly no --daemonize no --logfile "$_nd/redis.log" --cluster-enabled yes \
    --cluster-config-file "$_nd/nodes.conf" --cluster-node-timeout "${CLUSTER_NODE_TIMEOUT:-2000}" \
    --cluster-require-full-coverage yes --cluster-allow-replica-migration no &
  eval "NODE_PID_$2=$!"
  CLEANUP_PIDS="$CLEANUP_PIDS $!"
  echo "$3" >"$_nd/busport"
  _i=0
  until redis-cli -p "$2" ping >/dev/null 2>&1; do
    _i=$((_i + 1))
    [ $_i -lt 100 ] || { cat "$_nd/redis.log" >&2; die "cluster node $2 did not start"; }
    sleep 0.05
  done
}

# node_pid PORT: the pid of the node on PORT.
node_pid() { eval "echo \${NODE_PID_$1:-}"; }

# wait_cluster_ok [SECONDS]: until every live node says cluster_state:ok and
# agrees on the slots.
wait_cluster_ok() {
  _t=$(( ${1:-30} * 10 ))
  _i=0
  while :; do
    _bad=0
    for _p in $CLUSTER_PORTS; do
      _st=$(redis-cli -p "$_p" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p')
      [ -z "$_st" ] && continue # a stopped node
      [ "$_st" = ok ] || _bad=1
    done
    # every replica attached (three primaries with slots, three replicas)
    _nrep=$(redis-cli -p "$(first_live_port)" cluster nodes 2>/dev/null | grep -cE '[ ,]slave ')
    [ "$_nrep" -ge "${CLUSTER_REPLICAS:-3}" ] || _bad=1
    [ $_bad = 0 ] && redis-cli --cluster check "127.0.0.1:$(first_live_port)" >/dev/null 2>&1 && return 0
    _i=$((_i + 1))
    [ $_i -lt $_t ] || { redis-cli --cluster check "127.0.0.1:$(first_live_port)" >&2; die "cluster not ok"; }
    sleep 0.1
  done
}

first_live_port() {
  for _p in $CLUSTER_PORTS; do
    redis-cli -p "$_p" ping >/dev/null 2>&1 && { echo "$_p"; return 0; }
  done
  echo 0
}

# primaries: the ports of the current primaries that own slots.
primaries() {
  redis-cli -p "$(first_live_port)" cluster nodes | tr -d '\r' |
    awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8 {split($2, a, "[:@]"); print a[2]}' | sort -n
}

# replica_of PORT: the port of a replica of the primary on PORT.
replica_of() {
  _id=$(redis-cli -p "$1" cluster myid | tr -d '\r')
  redis-cli -p "$1" cluster nodes | tr -d '\r' |
    awk -v id="$_id" '$4 == id && $3 !~ /fail/ {split($2, a, "[:@]"); print a[2]; exit}'
}

start_cluster() {
  _cd=$1
  command -v redis-server >/dev/null 2>&1 || skip "redis-server not installed (run make deps)"
  # --cluster-port and cluster-allow-replica-migration are Redis 7.0 / 6.2
  # options; the cluster client's Redis 6 path (CLUSTER SLOTS) is covered by
  # test_redis_cluster with replies captured from a real cluster
  redis_at_least 7 0 || skip "the Redis Cluster tests need redis-server 7.0 or later (this is $(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p'))"
  CLUSTER_PORTS=""
  CLUSTER_SEEDS=""
  _addrs=""
  for _n in 1 2 3 4 5 6; do
    _p=$(free_port)
    _b=$(free_port)
    while [ "$_b" = "$_p" ]; do _b=$(free_port); done
    start_cluster_node "$_cd" "$_p" "$_b"
    CLUSTER_PORTS="$CLUSTER_PORTS $_p"
    _addrs="$_addrs 127.0.0.1:$_p"
    CLUSTER_SEEDS="${CLUSTER_SEEDS:+$CLUSTER_SEEDS,}127.0.0.1:$_p"
  done
  # shellcheck disable=SC2086
  redis-cli --cluster create $_addrs --cluster-replicas 1 --cluster-yes >"$_cd/create.log" 2>&1 ||
    { cat "$_cd/create.log" >&2; die "redis-cli --cluster create failed"; }
  wait_cluster_ok 30
  export CLUSTER_PORTS CLUSTER_SEEDS
}

# cl_load_start NAME SECONDS [ENV...]: the whole pipeline under load in the
# background (pipeline_lib.sh sourced, $dir set): build/hostemu delivers
# Creates with fresh record ids (--vary, batches of 100, 2 invocations at
# once, at most 1000 messages/s) for SECONDS to the handler writing to the
# cluster ($CLUSTER_SEEDS); ENV: more --env NAME=VALUE for the handler.
cl_load_start() {
  _name=$1 _secs=$2
  shift 2
  PL_ENV="--env RedisConnection=$CLUSTER_SEEDS --env CDC_TARGET=redis --env CDC_MODE=direct --env CDC_MAPPING_FILE= $*"
  [ -d "$dir/app" ] || app_variant "$dir/app" batch
  mkdir -p "$dir/lm"
  msg_create "$dir/lm/c.json" a0000000-0000-4000-8000-000000000001 1731000000000 "Load" N-1 "P 1" 100
  sidecar "$dir/lm/c.json" m-1
  hostemu "$dir/app" "$_name" --messages "$dir/lm" --vary --batch 100 --concurrency 2 \
    --duration "$_secs" --rate 1000 --stop &
  CL_LOAD_PID=$!
  on_exit "kill $CL_LOAD_PID"
}

# cl_load_check NAME: wait for the load, then: every message delivered was
# acknowledged (none retried by the host, none dead-lettered), and each one's
# record is in the cluster (the records of the --vary copies: every account
# whose id does not start with 00000000-0000-0000-, the itest driver's).
cl_load_check() {
  wait "$CL_LOAD_PID"
  _g=$(sum_num "$1" generated)
  settled "$1" "$_g"
  _n=0
  for _p in $(primaries); do
    _c=$(redis-cli -p "$_p" --scan --pattern 'd365:{account:*' | grep -vc '^d365:{account:00000000-0000-0000-')
    _n=$((_n + _c))
  done
  expect_eq "$_n" "$_g" "$1: records of the acknowledged messages in the cluster"
  grep -q "Sanitizer" "$dir/$1.log" && bad "$1: sanitizer report in the handler log"
  log "$1: $_g messages through the pipeline; $(grep -h 'redis cluster (writes)' "$dir/$1.log" | sed 's/.*"msg":"\(.*\)"}/\1/')"
}

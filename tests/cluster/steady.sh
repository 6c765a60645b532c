#!/bin/sh
# steady.sh - (a) steady load over all slots through the whole pipeline:
# build/hostemu (as the Functions host, batches of 100, 4 invocations at
# once) delivers 4000 Creates with fresh record ids (--vary) to the handler,
# which writes them to a Redis Cluster of 3 primaries + 3 replicas; then the
# read API (through hostemu, as an app calls it) answers a sample of the
# records exactly, and 2000 reads 16 at a time, and every acknowledged record
# is in the cluster.
set -u
. "$ROOT/tests/scripts/lib.sh"
. "$ROOT/tests/scripts/pipeline_lib.sh"
test_init
pl_begin
PL_CLUSTER=1
pl_start_redis
PL_ENV="--env RedisConnection=$PL_REDIS_CONN --env CDC_TARGET=redis --env CDC_MODE=direct --env CDC_MAPPING_FILE="
app=$dir/app
app_variant "$app" batch
mkdir -p "$dir/m"
msg_create "$dir/m/c.json" a0000000-0000-4000-8000-000000000001 1731000000000 "Steady" N-1 "P 1" 100
sidecar "$dir/m/c.json" m-1
N=4000
hostemu "$app" load --messages "$dir/m" --repeat $N --vary --batch 100 --concurrency 4 --stop ||
  bad "hostemu exited $?: $(tail -3 "$dir/load.err")"
settled load $N
expect_eq "$(logs_sum load applied)" $N "every change applied"
# every acknowledged record is there, spread over the three primaries
total=0
for p in $(primaries); do
  n=$(redis-cli -p "$p" --scan --pattern 'd365:{account:*' | wc -l)
  log "primary $p: $n records"
  [ "$n" -gt $((N / 5)) ] || bad "primary $p holds only $n records"
  total=$((total + n))
done
expect_eq "$total" $N "records in the cluster"
# the read API answers a sample exactly
ids=$(for p in $(primaries); do redis-cli -p "$p" --scan --pattern 'd365:{account:*' | head -10; done |
  sed 's/^d365:{account:\(.*\)}$/\1/')
CTX='"@odata.context":"BASE/api/data/v9.2/$metadata#accounts(name,accountnumber)/$entity"'
for id in $ids; do
  expect_read "$app" "/api/data/v9.2/accounts($id)?\$select=name,accountnumber" \
    "200 {$CTX,\"accountid\":\"$id\",\"accountnumber\":\"N-1\",\"name\":\"Steady\"}"
done
# concurrent reads (16 at once): the read multiplexer's leaders send each
# batch of reads to the primaries of its keys
one=$(echo "$ids" | head -1)
hostemu "$app" reads --http GET "/api/data/v9.2/accounts($one)?\$select=name" --repeat 2000 \
  --concurrency 16 --stop || bad "read load: hostemu exited $?: $(tail -3 "$dir/reads.err")"
expect_eq "$(sum_num reads invocationsSucceeded)/$(sum_num reads invocationsFailed)" 2000/0 \
  "2000 concurrent reads answered"
grep -hE 'throughput' "$dir/reads.out" "$dir/reads.err" | sed 's/^/  reads: /' >&2
grep -h 'redis cluster (writes)' "$dir/load.log" | sed 's/.*"msg":"\(.*\)"}/\1/'
grep -q "Sanitizer" "$dir"/*.log && bad "sanitizer report in the handler log"
pl_finish

#!/bin/sh
# order.sh - (d) the adversarial delivery orders of tests/e2e/pipeline_order.sh
# (reversed, duplicated, delete then late update, partial updates in both
# orders, relationships out of order; single and batch functions; the replay
# changing nothing) on a real Redis Cluster: hostemu -> handler -> 3 primaries,
# final state checked through the read API.
PL_CLUSTER=1
export PL_CLUSTER
exec sh "$ROOT/tests/e2e/pipeline_order.sh"

#!/bin/sh
# replica_snapshot_times.sh - replica_snapshot.sh with messages that carry no
# versionnumber post image: only OperationCreatedOn orders them against the
# snapshot rows (modifiedon + 999 ms, at most the time the page was asked
# for; docs/versioning.md "Rows read from the Web API").
REPLICA_NO_POST_IMAGE=1 exec sh "$ROOT/tests/e2e/replica_snapshot.sh"

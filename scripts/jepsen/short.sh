#!/usr/bin/env bash
# The short fault runs that `npm test` includes, one per workload: 3 nodes,
# 8 clients, 20 s of partitions, crashes and kill -9 restarts each. kv also
# changes the membership once and transfers the leadership once (--cover puts
# one member fault and one transfer first, then draws from the seed; seed 2's
# member fault removes the leader and adds it back, seed 6's a follower), with 4
# watchers (2 SSE, 2 WebSocket) that must see every change; lock (fenced
# writes under one lock); lease (expiry never early, always in time, atomic);
# then kv on the default group and 2 more groups at once (--groups 2, 2
# watchers each), each crash and partition hitting several groups (seed 3:
# a crash with draws of its own in the 3 groups under test, then a partition
# drawn alike in all 4, the directory of groups included), every check per
# group plus no value of one group seen in another.
# Then every check. An anomaly (exit 1) fails at once; a harness error (exit
# 2: the runner itself could not finish, e.g. the cluster would not start) is
# retried once with another seed.
set -u
cd "$(dirname "$0")/../.."
run() {
  node --experimental-strip-types --no-warnings scripts/jepsen/run.ts \
    --nodes 3 --clients 8 --duration 20 --faults partition,crash,restart "$@"
}
# workload NAME SEED ARGS...: that seed, and seed 6 once after a harness error.
workload() {
  local name=$1 seed=$2
  shift 2
  run --seed "$seed" "$@"
  local rc=$?
  if [ "$rc" -eq 2 ]; then
    echo "jepsen (short, $name): harness error; retrying once with seed 6" >&2
    run --seed 6 "$@"
    rc=$?
  fi
  return "$rc"
}
workload kv 2 --watchers 4 --faults member,transfer,partition,crash,restart --cover || exit $?
workload lock 5 --workload lock || exit $?
workload lease 5 --workload lease || exit $?
workload groups 3 --groups 2 --watchers 2 --faults crash,partition,member --cover || exit $?

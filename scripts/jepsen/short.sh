#!/usr/bin/env bash
# The short fault run that `npm test` includes: 3 nodes, 8 clients, 20 s of
# partitions, crashes and kill -9 restarts (seed 5 schedules one of each), with
# 4 watchers (2 SSE, 2 WebSocket) that must see every change,
# then every check. An anomaly
# (exit 1) fails at once; a harness error (exit 2: the runner itself could not
# finish, e.g. the cluster would not start) is retried once with another seed.
set -u
cd "$(dirname "$0")/../.."
run() {
  node --experimental-strip-types --no-warnings scripts/jepsen/run.ts \
    --nodes 3 --clients 8 --duration 20 --faults partition,crash,restart --watchers 4 --seed "$1"
}
run 5
rc=$?
if [ "$rc" -eq 2 ]; then
  echo "jepsen (short): harness error; retrying once with seed 6" >&2
  run 6
  rc=$?
fi
exit "$rc"

#!/usr/bin/env bash
# A throwaway 3-member etcd cluster on 127.0.0.1, for `npm run bench -- --target etcd`
# (Debian: apt-get install etcd-server). Clients on :2379, :22379 and :32379; data in a
# temp folder removed on exit. Runs in the foreground until Ctrl-C (or SIGTERM).
#
#   bash scripts/etcd-local.sh &
#   npm run bench -- --target etcd --url http://127.0.0.1:2379
set -euo pipefail
command -v etcd >/dev/null || { echo "etcd not found (Debian: apt-get install etcd-server)" >&2; exit 1; }
dir=$(mktemp -d -t durable-raft-etcd-XXXXXX)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT INT TERM
cluster="e0=http://127.0.0.1:2380,e1=http://127.0.0.1:22380,e2=http://127.0.0.1:32380"
clients=(2379 22379 32379)
peers=(2380 22380 32380)
for i in 0 1 2; do
  port=${clients[$i]}
  peer=${peers[$i]}
  etcd --name "e$i" --data-dir "$dir/e$i" \
    --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token durable-raft-bench \
    --log-level error >"$dir/e$i.log" 2>&1 &
  pids+=("$!")
done
echo "etcd: 3 members, clients on http://127.0.0.1:2379 (data in $dir)" >&2
wait

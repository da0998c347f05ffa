#!/usr/bin/env bash
# The soak (issue 16): RUNS fault runs of DURATION seconds each, 3 and 5 nodes
# in turn, the kv (with 4 watchers), lock and lease workloads in turn, with
# every fault kind: each injected once first (--cover), then drawn from the
# seed. Seeds are FIRST_SEED, FIRST_SEED+1, ... With GROUPS > 0, every run
# also creates that many groups and runs the workload on each of them too
# (--groups: faults hit several groups at once, each group judged on its own;
# a row's result covers every group, its counts are the default group's).
#
#   npm run jepsen:soak -- [RUNS=30] [DURATION=60] [FIRST_SEED=1000] [GROUPS=0]
#
# Each run's output is kept in a work folder (printed first). At the end it
# prints a Markdown table, one row per run with the command that replays it,
# and exits 1 if any run found an anomaly, 2 if a run could not finish (a
# harness error), 0 if every check of every run passed.
set -u
cd "$(dirname "$0")/../.."
runs=${1:-30}
duration=${2:-60}
first=${3:-1000}
groups=${4:-0}
faults=partition,crash,restart,slow,transfer,member,compact
logs=$(mktemp -d "${TMPDIR:-/tmp}/durable-raft-soak-XXXXXX")
echo "soak: $runs runs of $duration s, faults $faults, $groups more groups; logs in $logs"

workloads=(kv lock lease)
rows=()
worst=0
for ((i = 0; i < runs; i++)); do
  seed=$((first + i))
  nodes=$((i % 2 == 0 ? 3 : 5))
  workload=${workloads[$((i % 3))]}
  extra=()
  [ "$workload" = kv ] && extra=(--watchers 4)
  [ "$groups" -gt 0 ] && extra+=(--groups "$groups")
  args=(--workload "$workload" --nodes "$nodes" --clients 8 --duration "$duration"
    --faults "$faults" --cover --seed "$seed" "${extra[@]}")
  log="$logs/run-$seed.log"
  node --experimental-strip-types --no-warnings scripts/jepsen/run.ts "${args[@]}" >"$log" 2>&1
  rc=$?
  case $rc in
    0) result=OK ;;
    1) result=ANOMALY; worst=1 ;;
    *) result="harness error ($rc)"; [ "$worst" -eq 0 ] && worst=2 ;;
  esac
  # The workload's own first summary line (kv: outcomes; lock: acquisitions; lease: grants).
  case $workload in
    kv) detail=$(grep -m1 '^  outcomes ' "$log" | sed 's/^  outcomes *//') ;;
    lock) detail=$(grep -m1 '^  lock ' "$log" | sed 's/^  lock *//; s/;.*//') ;;
    lease) detail=$(grep -m1 '^  expiries ' "$log" | sed 's/^  expiries *//; s/;.*//') ;;
  esac
  injected=$(grep -m1 '^  faults ' "$log" | sed 's/^  faults *//; s/; wrangler.*//')
  recovery=$(grep -m1 'first write' "$log" | sed 's/.*first write \([0-9]* ms\).*/\1/')
  row="| $seed | $workload | $nodes | $result | ${detail:-?} | ${injected:-?} | ${recovery:-?} | \`npm run jepsen -- ${args[*]}\` |"
  rows+=("$row")
  echo "$row"
done

echo
echo "| seed | workload | nodes | result | outcome | faults injected | first write after heal | command |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit "$worst"

#!/usr/bin/env bash
# Runs every curl example of README.md (the lines between the readme-curl
# markers that start with `curl ` and end with `# → STATUS`) against a fresh
# local cluster started with the dev config, and checks each status.
# Binds 127.0.0.1 only, uses a throwaway state directory, gives up after
# READMECURL_TIMEOUT seconds (default 120), and stops the wrangler it started.
# Usage: scripts/readme-curl.sh   (or: npm run readme:curl)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${READMECURL_PORT:-8787}"
BASE="http://127.0.0.1:${PORT}"
LIMIT="${READMECURL_TIMEOUT:-120}"
STATE="$(mktemp -d)"
LOG="${STATE}/wrangler.log"
PID=""

cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill -- "-$PID" 2>/dev/null || kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$PID" 2>/dev/null || kill -9 "$PID" 2>/dev/null || true
  fi
  rm -rf "$STATE"
}
trap cleanup EXIT
# Give up on the whole run after LIMIT seconds (its own process group, stopped on exit).
setsid bash -c "sleep $LIMIT; echo 'readme-curl: timed out after ${LIMIT}s' >&2; kill -TERM $$" &
WATCHDOG=$!
trap 'kill -- "-$WATCHDOG" 2>/dev/null || true; cleanup' EXIT

if curl -s -o /dev/null "${BASE}/healthz"; then
  echo "readme-curl: something already listens on ${BASE}; set READMECURL_PORT" >&2
  exit 1
fi

# Its own process group, so cleanup stops wrangler and workerd together.
setsid npx wrangler dev --config wrangler.dev.toml --ip 127.0.0.1 --port "$PORT" \
  --persist-to "${STATE}/persist" --show-interactive-dev-session=false >"$LOG" 2>&1 &
PID=$!

for _ in $(seq 1 600); do
  if curl -s -o /dev/null "${BASE}/healthz"; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then cat "$LOG" >&2; echo "readme-curl: wrangler dev exited" >&2; exit 1; fi
  sleep 0.2
done
curl -sf -o /dev/null "${BASE}/healthz" || { cat "$LOG" >&2; exit 1; }

examples="$(awk '/<!-- readme-curl:begin -->/{on=1; next} /<!-- readme-curl:end -->/{on=0} on && /^curl /' README.md)"
[[ -n "$examples" ]] || { echo "readme-curl: no examples found in README.md" >&2; exit 1; }

fail=0
n=0
while IFS= read -r line; do
  n=$((n + 1))
  want="$(sed -E 's/.*# → ([0-9]{3})[[:space:]]*$/\1/' <<<"$line")"
  cmd="${line%%# →*}"
  [[ "$want" =~ ^[0-9]{3}$ ]] || { echo "readme-curl: no '# → STATUS' on: $line" >&2; fail=1; continue; }
  # The examples use localhost:8787; point them at our port, discard output, print the status.
  cmd="${cmd//localhost:8787/127.0.0.1:${PORT}}"
  # A streaming example (a watch) sets its own --max-time; the others get 10 s.
  limit="--max-time 10"
  [[ "$cmd" == *"--max-time"* ]] && limit=""
  got="$(bash -c "${cmd} -s -o /dev/null -w '%{http_code}' ${limit}" || true)"
  if [[ "$got" == "$want" ]]; then
    echo "ok   $got  $cmd"
  else
    echo "FAIL got $got, want $want: $cmd" >&2
    fail=1
  fi
done <<<"$examples"

echo "readme-curl: $n examples, $([[ $fail == 0 ]] && echo 'all passed' || echo 'FAILURES')"
exit "$fail"

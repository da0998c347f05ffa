#!/usr/bin/env bash
# The long run of the API's property-based probes (test/integration/api-fuzz.test.ts, v3-fuzz.test.ts,
# groups-fuzz.test.ts, which runs a quarter as many: each of its probes reads two groups' footprints, and
# watch-socket-fuzz.test.ts, a tenth as many sockets per protocol, each of one to four messages):
# RUNS requests (default 20000, about 2 minutes) from SEED (default: a random one,
# printed first, so a failure can be replayed with SEED=...).
# Usage: npm run test:fuzz [-- RUNS [SEED]]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20000}"
seed="${2:-$(( (RANDOM << 15) | RANDOM ))}"
echo "api fuzz: $runs requests from seed $seed (replay: npm run test:fuzz -- $runs $seed)"
FUZZ_RUNS="$runs" FUZZ_SEED="$seed" exec vitest run --project workers test/integration/api-fuzz.test.ts test/integration/v3-fuzz.test.ts test/integration/groups-fuzz.test.ts test/integration/watch-socket-fuzz.test.ts

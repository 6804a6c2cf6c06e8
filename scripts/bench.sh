#!/usr/bin/env bash
# Benchmarks (not part of the test command): set-up and build, then the overlay benchmark on its
# own lab (prefix wtb): underlay vs Weft vs hand-configured wireguard-go, start-up and restart
# times. Prints a table; writes bench-results/overlay-<timestamp>.json and overlay-latest.json.
# Needs root. Options go to the benchmark: npm run bench -- --rounds 5 (see test/bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "weft bench: needs root (network namespaces, WireGuard interfaces); run: sudo npm run bench" >&2
  exit 1
fi
bash scripts/setup.sh
echo "==> type-checking the benchmark" >&2
npx tsc -p test/bench/tsconfig.json
exec npx tsx test/bench/overlay.ts "$@"

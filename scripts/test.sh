#!/usr/bin/env bash
# The test command: set-up, lint, type-check, then unit, root-level and end-to-end tests on the lab.
# Root-only suites (namespaces, WireGuard) are skipped with a message when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

start=$(date +%s)
echo "==> lint" >&2
npx eslint . --max-warnings=0
status=0
echo "==> tests" >&2
npx vitest run --reporter=default --reporter=json --outputFile=.weft-test-results.json "$@" || status=$?
node -e '
  const r = require("./.weft-test-results.json");
  const failed = r.numFailedTests, passed = r.numPassedTests, skipped = r.numPendingTests + r.numTodoTests;
  console.log(`\nweft: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' || true
echo "weft: test command took $(( $(date +%s) - start )) s" >&2
exit $status

#!/usr/bin/env bash
# The test command: set-up, lint, type-check (tests included), then the unit, root and end-to-end
# (lab) suites one after another. Root-only suites skip themselves with a message when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

start=$(date +%s)
echo "==> lint" >&2
npx eslint . --max-warnings=0
echo "==> type-check tests" >&2
npx tsc -p tsconfig.tests.json

status=0
results=()
for project in unit root e2e; do
  echo "==> tests: $project" >&2
  out=".weft-test-results-$project.json"
  rm -f "$out"
  npx vitest run --project "$project" --reporter=default --reporter=json --outputFile="$out" "$@" || status=1
  results+=("$out")
done

node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; console.log(`weft: ${f} missing: that suite did not run`); continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`\nweft: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "${results[@]}"
echo "weft: test command took $(( $(date +%s) - start )) s" >&2
exit $status

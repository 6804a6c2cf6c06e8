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
npx tsc -p console/tsconfig.json

status=0
results=()
for project in unit root e2e; do
  echo "==> tests: $project" >&2
  out=".weft-test-results-$project.json"
  rm -f "$out"
  npx vitest run --project "$project" --reporter=default --reporter=json --outputFile="$out" "$@" || status=1
  results+=("$out")
done

# The Terraform provider (Go): unit tests, and acceptance tests that start a real controller of
# this repository and drive the Terraform binary scripts/setup.sh built (never one on PATH).
echo "==> tests: terraform provider (go test, TF_ACC=1)" >&2
tf_start=$(date +%s)
tf_log=.weft-test-results-terraform.log
tf_status=0
(cd terraform && TF_ACC=1 TF_ACC_TERRAFORM_PATH="$PWD/../.tools/bin/terraform" TFPLUGINDOCS_PATH="$PWD/../.tools/bin/tfplugindocs" \
  go test -count=1 -v -timeout 30m ./...) >"$tf_log" 2>&1 || tf_status=1
grep -Ev '^[[:space:]]*(=== (RUN|PAUSE|CONT)|--- PASS)' "$tf_log" || true
tf_passed=$(grep -Ec '^[[:space:]]*--- PASS' "$tf_log" || true)
tf_failed=$(grep -Ec '^[[:space:]]*--- FAIL' "$tf_log" || true)
tf_skipped=$(grep -Ec '^[[:space:]]*--- SKIP' "$tf_log" || true)
if [ "$tf_status" -ne 0 ] && [ "$tf_failed" -eq 0 ]; then tf_failed=1; fi # did not build, or panicked
[ "$tf_status" -eq 0 ] || status=1
echo "weft: terraform provider: $tf_passed passed, $tf_failed failed, $tf_skipped skipped in $(( $(date +%s) - tf_start )) s" >&2
printf '{"numPassedTests":%d,"numFailedTests":%d,"numPendingTests":%d,"numTodoTests":0}\n' "$tf_passed" "$tf_failed" "$tf_skipped" >.weft-test-results-terraform.json
results+=(.weft-test-results-terraform.json)

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

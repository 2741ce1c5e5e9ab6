#!/usr/bin/env bash
# The whole test suite from a fresh clone: install, build, lint (biome, and tsc over the tests), test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
npm run --silent build
status=0
# Lint failures fail the run, but the tests still run so one report shows everything.
npm run --silent lint || status=1
results=$(mktemp -t thfc-vitest.XXXXXX.json)
trap 'rm -f "$results"' EXIT
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=$?
# One plain closing line that any CI reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  if (r.numTotalTests === 0) process.exit(1);
' "$results" || status=1
exit "$status"

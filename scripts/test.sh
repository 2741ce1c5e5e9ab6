#!/usr/bin/env bash
# The whole test suite from a fresh clone: install, build, lint, test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
npm test --silent

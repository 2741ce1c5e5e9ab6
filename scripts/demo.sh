#!/usr/bin/env bash
# The main job, end to end: build a sample disk image, pack it into a signed
# block store, rebuild it from the store, and check it byte for byte.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
node scripts/demo.mjs "$@"

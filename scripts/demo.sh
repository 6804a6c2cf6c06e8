#!/usr/bin/env bash
# The main job: the multi-cloud demo on the lab (AWS, Azure, GCP and on-prem sites on one machine).
# Pass --once to print the node table once and tear everything down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node cli/dist/main.js lab demo "$@"

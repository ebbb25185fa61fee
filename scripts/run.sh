#!/usr/bin/env bash
# Set up (first time) and start Magpie: no arguments opens the window; any arguments go to the
# CLI, e.g. scripts/run.sh index ~/Pictures, scripts/run.sh search "a red sled".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/magpie "$@"

#!/usr/bin/env bash
# Set up (first time) and run the whole test suite: layer contracts, lint and types first.
# MAGPIE_LONG=1 also runs the long tests (the full SIGKILL loop).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test,milvus,postgres
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
.venv/bin/lint-imports
.venv/bin/ruff check .    # the rule set and why: [tool.ruff] in pyproject.toml
.venv/bin/mypy            # the core's types: [tool.mypy] in pyproject.toml
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Every benchmark in smoke mode (tiny inputs, < 1 minute each): proves they still run.
# CI calls this; timings printed here are not meaningful. Full runs: see bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1
for script in eval_search index_rate query_latency hnsw_tune memory_startup vs_rclip watch_latency pg_load pair_index; do
    echo "=== bench/$script.py --smoke"
    start=$(date +%s)
    if [ "$script" = pair_index ]; then "$PY" bench/pair_index.py web --smoke; else "$PY" "bench/$script.py" --smoke; fi
    echo "=== bench/$script.py --smoke: ok in $(( $(date +%s) - start )) s"
done

#!/usr/bin/env bash
# Set up the pinned environment and run the test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg NUMBA_CACHE_DIR="$PWD/.numba_cache"
.venv/bin/ruff check linebreak tests benchmarks
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Set up the pinned environment and run the whole study on its default settings (outputs in runs/study).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg NUMBA_CACHE_DIR="$PWD/.numba_cache"
.venv/bin/linebreak study "$@"

#!/usr/bin/env bash
# Create .venv with the pinned CPU environment (torch 2.13.0 CPU wheel first, so nothing pulls a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -c constraints.txt -e '.[dev]'

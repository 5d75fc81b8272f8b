#!/usr/bin/env bash
# Set up .venv with the project and every extra. torch first, from the CPU build
# (a plain `pip install torch` would pull several GB of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev]"

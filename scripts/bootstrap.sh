#!/usr/bin/env bash
# Create the virtual environment and install adaptermix with everything it needs, on a fresh machine.
# torch is installed first and pinned exactly (2.13.0, CPU wheel): any looser spec would pull the
# newest CUDA build (gigabytes).
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev,ray]"

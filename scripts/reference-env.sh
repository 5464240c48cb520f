#!/usr/bin/env bash
# Create .venv-ref: a separate environment holding the reference implementations that the agreement
# tests (tests/reference/, `make test-reference`) compare adaptermix's merge rules with.
#
#   bash scripts/reference-env.sh            # create or complete .venv-ref (re-running is cheap)
#   VENV=/tmp/ref bash scripts/reference-env.sh
#
# Why a separate environment: mergekit and fusion-bench bring heavy, fast-moving dependency trees
# (accelerate, datasets, hydra-core, lightning, tensorboard, h5py, ...) that the package itself does not
# need; keeping them out of .venv keeps `make test` light and its resolution stable.
#
# Order matters: torch is installed FIRST and pinned exactly (2.13.0, the CPU wheel the project is tested
# with); both references only require torch>=2.0, so pip keeps it. Any looser torch spec would pull the
# newest CUDA build (gigabytes). The references are pinned to the versions the tests were written against.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-ref}
MERGEKIT=${MERGEKIT:-mergekit==0.1.5}
FUSION_BENCH=${FUSION_BENCH:-fusion-bench==0.2.33}
PIP=("$VENV/bin/python" -m pip install -q)

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" "torch==2.13.0" "$MERGEKIT"
"${PIP[@]}" "torch==2.13.0" "$FUSION_BENCH"
"${PIP[@]}" "torch==2.13.0" -e . "pytest>=8"

# The versions actually installed (what the agreement tests ran against).
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
print("reference env:", ", ".join(f"{p} {version(p)}" for p in ("torch", "mergekit", "fusion-bench", "adaptermix")))
PY

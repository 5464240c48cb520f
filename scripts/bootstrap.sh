#!/usr/bin/env bash
# Create the virtual environment and install adaptermix with everything it needs, on a fresh machine.
# torch is installed first and pinned exactly (2.13.0, CPU wheel): any looser spec would pull the
# newest CUDA build (gigabytes). WordNet (Debian's wordnet-base) is TextFooler's part-of-speech and
# synonym resource; it is installed with apt when we can (root), else a hint is printed.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev,ray]"
if [ ! -d /usr/share/wordnet ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base >/dev/null) \
      || echo "bootstrap: could not install wordnet-base; TextFooler will ask for it" >&2
  else
    echo "bootstrap: TextFooler needs WordNet: sudo apt-get install wordnet-base" >&2
  fi
fi

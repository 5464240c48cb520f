#!/usr/bin/env bash
# Create the virtual environment and install adaptermix with everything it needs, on a fresh machine.
# torch is installed first and pinned exactly (2.13.0, CPU wheel): any looser spec would pull the
# newest CUDA build (gigabytes).
#
# System packages come from ONE list, src/adaptermix/resources/system-packages.txt (`adaptermix doctor`
# checks the same list). Each `required` one is checked with dpkg-query and the missing ones are
# installed with apt-get when we can (root); otherwise the exact command is printed. Nothing is guessed
# from what happens to be on disk, and running this again is cheap and changes nothing.
#
#   bash scripts/bootstrap.sh                    # system packages, then the virtual environment
#   bash scripts/bootstrap.sh --system-packages  # system packages only (run by every `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE_LIST=src/adaptermix/resources/system-packages.txt

system_packages() {
  local missing=() pkg kind
  while read -r pkg kind _; do
    case "$pkg" in "" | \#*) continue ;; esac
    [ "$kind" = required ] || continue
    if ! command -v dpkg-query >/dev/null 2>&1; then
      echo "bootstrap: not a Debian system (no dpkg-query): install the equivalents of the required" \
        "packages in $PACKAGE_LIST yourself" >&2
      return 0
    fi
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done <"$PACKAGE_LIST"
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing system packages: ${missing[*]}" >&2
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null); then
      echo "bootstrap: could not install ${missing[*]}; run: apt-get install -y ${missing[*]}" >&2
    fi
  else
    echo "bootstrap: missing system packages (see $PACKAGE_LIST); run:" \
      "sudo apt-get install -y ${missing[*]}" >&2
  fi
}

system_packages
[ "${1:-}" = --system-packages ] && exit 0

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev,ray]"

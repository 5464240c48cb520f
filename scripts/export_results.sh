#!/usr/bin/env bash
# Copy what a study's numbers rest on into results/<name>/ for committing: the resolved config, the
# single-adapter table, each method's results store (compacted, no SQLite side files) and fsd.json, the
# report's tables as CSV, the dataset analysis, and `adaptermix stats` of every store.
#
#   bash scripts/export_results.sh runs/cpu-study results/cpu-study
set -euo pipefail
src=${1:?study folder}; dest=${2:?destination}
BIN=${BIN:-.venv/bin}
[ -f "$src/config.yaml" ] || { echo "export_results: $src is not a study folder (no config.yaml)" >&2; exit 2; }
mkdir -p "$dest"
cp "$src/config.yaml" "$dest/"
[ -f "$src/single_adapters.md" ] && cp "$src/single_adapters.md" "$dest/"
for store in "$src"/*/results.sqlite; do
  [ -f "$store" ] || continue
  method=$(basename "$(dirname "$store")")
  mkdir -p "$dest/$method"
  rm -f "$dest/$method/results.sqlite"
  "$BIN/python" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("VACUUM INTO ?", (sys.argv[2],))' \
    "$store" "$dest/$method/results.sqlite"
  [ -f "$src/$method/fsd.json" ] && cp "$src/$method/fsd.json" "$dest/$method/"
  rm -rf "$dest/stats/$method"
  "$BIN/adaptermix" stats "$dest/$method/results.sqlite" -o "$dest/stats/$method" >/dev/null
done
if [ -d "$src/report/tables" ]; then rm -rf "$dest/report-tables"; cp -r "$src/report/tables" "$dest/report-tables"; fi
if [ -d "$src/analysis" ]; then mkdir -p "$dest/analysis"; cp "$src"/analysis/*.json "$dest/analysis/"; fi
du -sh "$dest"

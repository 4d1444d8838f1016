#!/usr/bin/env bash
# Copies a grid's small, readable outputs into experiments/results/<grid>/:
# the report, curves, flags, and per cell metrics.csv, summary.json,
# hparams.txt, partition_summary.txt and the log. Checkpoints, TensorBoard
# events and partition arrays stay in runs/ (they are rebuilt by the command).
#   tools/collect_results.sh runs/paper/niid_bench
set -euo pipefail
src=${1:?usage: tools/collect_results.sh GRID_DIR}
[[ -f "$src/results.md" ]] || { echo "$src has no results.md (run the grid first)" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
dest="$repo/experiments/results/$(basename "$src")"
mkdir -p "$dest"
cp "$src/results.md" "$src/accuracy_curves.png" "$src/grid_flags.txt" "$dest/"
for cell in "$src"/*/; do
  name=$(basename "$cell")
  [[ -f "$cell/metrics.csv" ]] || continue
  mkdir -p "$dest/$name"
  for f in metrics.csv summary.json hparams.txt partition_summary.txt; do
    [[ -f "$cell/$f" ]] && cp "$cell/$f" "$dest/$name/"
  done
  [[ -f "$src/logs/$name.log" ]] && grep -v "^20[0-9][0-9]-.*\] \|^To enable the following\|^WARNING: All log messages" \
    "$src/logs/$name.log" > "$dest/$name/log.txt" || true
done
echo "copied to $dest"

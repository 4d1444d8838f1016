#!/usr/bin/env bash
# Copies a grid's small, readable outputs into experiments/results/<grid>/:
# the report, curves, flags, and per FINISHED cell (all its rounds run, or
# stopped at its target) metrics.csv, summary.json, hparams.txt,
# partition_summary.txt and the log, and code.txt: the commits whose frozen
# code (tools/run_grid.sh) ran its rounds, from the grid's grid.log; cells
# still running are left out. Checkpoints, TensorBoard
# events and partition arrays stay in runs/ (they are rebuilt by the command).
#   tools/collect_results.sh runs/paper/niid_bench
set -euo pipefail
src=${1:?usage: tools/collect_results.sh GRID_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
dest="$repo/experiments/results/$(basename "$src")"
mkdir -p "$dest"
for f in results.md accuracy_curves.png grid_flags.txt; do
  [[ -f "$src/$f" ]] && cp "$src/$f" "$dest/"
done
finished() {
  python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(not (s["stopped"].startswith("reached target")
              or s["rounds_run"] >= s["rounds_requested"]))' "$1"
}
py="$repo/.venv/bin/python"
[[ -x "$py" ]] || py=python3
code_txt() {  # GRID_LOG CELL OUT
  PYTHONPATH="$repo" "$py" - "$@" <<'EOF'
import sys
from tff_niid import results
spans = results.rounds_by_code(open(sys.argv[1]).read(), sys.argv[2])
if spans:
  with open(sys.argv[3], "w") as f:
    f.write("Code that ran this cell's rounds (tools/run_grid.sh runs a git "
            "archive of the commit; from the grid's grid.log):\n")
    for first, last, code in spans:
      f.write(f"rounds {first}-{last}: "
              f"{code or 'not recorded in grid.log'}\n")
EOF
}
for cell in "$src"/*/; do
  name=$(basename "$cell")
  [[ -f "$cell/metrics.csv" && -f "$cell/summary.json" ]] || continue
  finished "$cell/summary.json" || continue
  mkdir -p "$dest/$name"
  for f in metrics.csv summary.json hparams.txt partition_summary.txt; do
    [[ -f "$cell/$f" ]] && cp "$cell/$f" "$dest/$name/"
  done
  [[ -f "$src/logs/$name.log" ]] && grep -v "^20[0-9][0-9]-.*\] \|^To enable the following\|^WARNING: All log messages" \
    "$src/logs/$name.log" > "$dest/$name/log.txt" || true
  if [[ -f "$src/grid.log" ]]; then
    code_txt "$src/grid.log" "$name" "$dest/$name/code.txt"
  fi
done
echo "copied to $dest"

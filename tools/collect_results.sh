#!/usr/bin/env bash
# Copies a grid's small, readable outputs into experiments/results/<grid>/:
# the report, curves, flags, and per ENDED cell (all its rounds run,
# stopped at its target, or diverged: results.ended) metrics.csv, summary.json, hparams.txt,
# partition_summary.txt, the log, machine.txt (the CPU and TF threads of
# each start), provenance.txt (a note, written by hand, on a cell begun
# elsewhere) and code.txt: the commits whose frozen
# code (tools/run_grid.sh) ran its rounds, from the grid's grid.log; cells
# still running are left out (tools/park_unfinished.sh keeps those), and a
# finished cell's parked copy is removed. Checkpoints, TensorBoard
# events and partition arrays stay in runs/ (they are rebuilt by the command).
#   tools/collect_results.sh runs/paper/niid_bench
set -euo pipefail
src=${1:?usage: tools/collect_results.sh GRID_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
dest="$repo/experiments/results/$(basename "$src")"
mkdir -p "$dest"
for f in results.md accuracy_curves.png references.png sweep.png paired.png grid_flags.txt; do
  [[ -f "$src/$f" ]] && cp "$src/$f" "$dest/"
done
py="$repo/.venv/bin/python"
[[ -x "$py" ]] || py=python3
# One pass over the grid in Python: prints the ended cells' names and
# writes each one's code.txt (grid.log is read once).
ended_cells=$(PYTHONPATH="$repo" "$py" - "$src" "$dest" <<'EOF'
import json, os, sys
from tff_niid import grids, results
src, dest = sys.argv[1:]
log_path = os.path.join(src, "grid.log")
grid_log = open(log_path).read() if os.path.isfile(log_path) else None
for name in sorted(os.listdir(src)):
  run_dir = os.path.join(src, name)
  summary_path = os.path.join(run_dir, results.SUMMARY_FILE)
  if not os.path.isfile(summary_path):
    continue  # not a run, or one still running (one diverged in round 1
              # has no metrics.csv)
  try:
    with open(summary_path) as f:
      ended = results.ended({"summary": json.load(f), "metrics": []})
  except (OSError, ValueError, KeyError) as e:
    print(f"{name}: skipped, unreadable summary ({e})", file=sys.stderr)
    continue
  if not ended:
    continue
  print(name)
  spans = grids.rounds_by_code(grid_log, name) if grid_log else []
  if spans:
    os.makedirs(os.path.join(dest, name), exist_ok=True)
    with open(os.path.join(dest, name, "code.txt"), "w") as f:
      f.write("Code that ran this cell's rounds (tools/run_grid.sh runs a git "
              "archive of the commit; from the grid's grid.log):\n")
      for first, last, code in spans:
        f.write(f"rounds {first}-{last}: "
                f"{code or 'not recorded in grid.log'}\n")
EOF
)
for name in $ended_cells; do
  cell="$src/$name"
  mkdir -p "$dest/$name"
  for f in metrics.csv summary.json hparams.txt partition_summary.txt provenance.txt machine.txt; do
    [[ -f "$cell/$f" ]] && cp "$cell/$f" "$dest/$name/"
  done
  rm -rf "$repo/experiments/unfinished/$(basename "$src")/$name"  # parked copy
  [[ -f "$src/logs/$name.log" ]] && grep -v "^20[0-9][0-9]-.*\] \|^To enable the following\|^WARNING: All log messages" \
    "$src/logs/$name.log" > "$dest/$name/log.txt" || true
done
echo "copied to $dest"

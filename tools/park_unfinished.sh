#!/usr/bin/env bash
# Parks a grid's unfinished cells in the repository, so that a fresh machine
# resumes them where they stopped instead of from round 0:
# experiments/unfinished/<grid>/<cell>/ gets each cell's newest checkpoint and
# records (`tff_niid.rundir.copy_resumable`), its log (log.txt) and its lines
# of the grid's grid.log (grid_log.txt, so code.txt can still name the code
# that ran each round). tools/run_grid.sh puts a parked cell back when its
# grid directory lacks it; tools/collect_results.sh drops the parked copy
# once the cell is finished. Stop the grid first (SIGTERM: a save in progress
# finishes); a cell still running is refused by its lock, reported, and the
# others parked (exit status 1). To start a parked cell over, delete its
# parked copy as well as its run directory.
#
# A parked checkpoint stays in git history (each parked cell's size is
# printed), so a cell is parked only once its rounds so far took
# PARK_MIN_MINUTES of training (default 30, from its metrics.csv): a short
# cell, e.g. of a 20-round rate selection, is cheaper to run again.
#   tools/park_unfinished.sh ../runs/paper/niid_bench_paper
set -euo pipefail
src=${1:?usage: tools/park_unfinished.sh GRID_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
dest="$repo/experiments/unfinished/$(basename "$src")"
PYTHONPATH="$repo" "$repo/.venv/bin/python" - "$src" "$dest" "${PARK_MIN_MINUTES:-30}" <<'PY'
import os, shutil, sys
from tff_niid import grids, results, rundir
src, dest, min_minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
log_path = os.path.join(src, "grid.log")
grid_log = open(log_path).read() if os.path.isfile(log_path) else ""
failed = False
for name in sorted(os.listdir(src)):
  run_dir = os.path.join(src, name)
  if not (os.path.isdir(run_dir) and rundir.is_run(run_dir)):
    continue
  parked = os.path.join(dest, name)
  run = results.read_run(run_dir)
  if results.ended(run):
    continue  # collect_results.sh commits it (and drops a parked copy)
  minutes = sum(row.get("round_seconds", 0) for row in run["metrics"]) / 60
  if minutes < min_minutes:
    if run["metrics"]:
      print(f"{name}: not parked, {minutes:.0f} min of training so far "
            f"(< PARK_MIN_MINUTES={min_minutes:g})")
    continue
  try:
    round_num = rundir.copy_resumable(run_dir, parked)
  except rundir.RunDirError as e:
    print(f"{name}: not parked: {e}", file=sys.stderr)
    failed = True
    continue
  if round_num is None:
    continue
  cell_log = os.path.join(src, "logs", name + ".log")
  if os.path.isfile(cell_log):
    shutil.copy2(cell_log, os.path.join(parked, "log.txt"))
  with open(os.path.join(parked, "grid_log.txt"), "w") as f:
    f.write(grids.grid_log_of_cell(grid_log, name))
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(parked) for f in files)
  print(f"{name}: parked after round {round_num} ({size / 1e6:.1f} MB)")
sys.exit(1 if failed else 0)
PY

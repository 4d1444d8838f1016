#!/usr/bin/env bash
# Ends a session's grids without losing a round: stops every queue
# (tools/run_queue.sh) and grid (tools/run_grid.sh) writing under GRID_ROOT
# with SIGTERM, waits for their cells to save and exit, then for every grid
# directory there commits-ready its outputs: finished cells collected
# (tools/collect_results.sh), the others parked (tools/park_unfinished.sh),
# and the report regenerated. It commits nothing: review, then
#   git add -A experiments/results experiments/unfinished && git commit
#
#   tools/save_grids.sh            # GRID_ROOT as run_grid.sh's default
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "${GRID_ROOT:-$repo/../runs/paper}" && pwd)
cd "$repo"
# Queues first, so that none starts its next step meanwhile.
queues=$(pgrep -f "^bash -c run_steps" || true)
for pid in $queues; do
  [[ "$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | sed -n 's/^root=//p')" == "$root" ]] &&
    kill -TERM "$pid" && echo "stopped queue $pid"
done
grids=$(pgrep -f "experiments/grid.py .*--root_output_dir=$root( |$)" || true)
[[ -n "$grids" ]] && kill -TERM $grids && echo "stopped grids:" $grids
for _ in $(seq 120); do  # a cell gets a minute to save after SIGTERM
  pgrep -f "experiments/grid.py .*--root_output_dir=$root( |$)" >/dev/null || break
  sleep 1
done
if pgrep -f "experiments/grid.py .*--root_output_dir=$root( |$)" >/dev/null; then
  echo "grids still running under $root after 2 minutes; nothing saved" >&2
  exit 1
fi
for grid_dir in "$root"/*/; do
  [[ -f "$grid_dir/grid.log" ]] || continue
  "$repo/tools/collect_results.sh" "$grid_dir"
  "$repo/tools/park_unfinished.sh" "$grid_dir"
done
"$repo/.venv/bin/python" "$repo/experiments/report.py"
git -C "$repo" status --short experiments/results experiments/unfinished

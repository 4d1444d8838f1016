#!/usr/bin/env bash
# Ends a session's grids without losing a round: stops every queue
# (tools/run_queue.sh) and grid (tools/run_grid.sh) writing under GRID_ROOT
# with SIGTERM, waits for their cells to save and exit, then for every grid
# directory there makes its outputs ready to commit: finished cells
# collected (tools/collect_results.sh), the others parked
# (tools/park_unfinished.sh), and the report regenerated. It commits
# nothing: review, then
#   git add -A experiments/results experiments/unfinished && git commit
#
#   tools/save_grids.sh            # GRID_ROOT as run_grid.sh's default
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "${GRID_ROOT:-$repo/../runs/paper}" && pwd)
cd "$repo"
# Queues first, so that none starts its next step meanwhile: the queue's
# shell and a step still in run_grid.sh (before its grid.py starts); grid.py
# and its cells get their SIGTERM below, once.
for pid in $(pgrep -f "^bash -c run_steps" || true); do
  [[ "$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^root=//p')" == "$root" ]] || continue
  kill -TERM "$pid" $(pgrep -g "$pid" -f "tools/run_grid.sh" || true) 2>/dev/null || true
  echo "stopped queue $pid"
done
pattern="experiments/grid.py .*--root_output_dir=$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<< "$root")( |$)"
sleep 2  # a step that was past run_grid.sh's checks has exec'd grid.py by now
grids=$(pgrep -f "$pattern" || true)
[[ -n "$grids" ]] && kill -TERM $grids && echo "stopped grids:" $grids
for _ in $(seq 120); do  # a cell gets a minute to save after SIGTERM
  pgrep -f "$pattern" >/dev/null || break
  sleep 1
done
if pgrep -f "$pattern" >/dev/null; then
  echo "grids still running under $root after 2 minutes; nothing saved" >&2
  exit 1
fi
status=0
for grid_dir in "$root"/*/; do
  [[ -f "$grid_dir/grid.log" ]] || continue
  "$repo/tools/collect_results.sh" "$grid_dir" || status=1
  "$repo/tools/park_unfinished.sh" "$grid_dir" || status=1
done
"$repo/.venv/bin/python" experiments/report.py || status=1
git status --short experiments/results experiments/unfinished
exit $status

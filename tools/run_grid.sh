#!/usr/bin/env bash
# Starts (or resumes) a long paper grid in the background, from a frozen copy
# of the code, so that editing tff_niid/ meanwhile cannot break a cell that is
# starting (autograph re-reads source from disk; BUILD_NOTES.md).
#
#   tools/run_grid.sh experiments/configs/niid_bench_paper.cfg [grid.py flags]
#
# - code: `git archive HEAD` into $GRID_ROOT/code-<commit>, run with
#   PYTHONPATH pointing there (commit first: uncommitted edits are not run);
# - output: $GRID_ROOT/<grid_name>/ (default GRID_ROOT=../runs/paper beside
#   the repository, outside the work tree); ended cells (finished or
#   diverged) committed under experiments/results/<grid_name>/ are copied
#   back first, so the grid skips
#   them on a fresh machine; an interrupted cell resumes from its checkpoint
#   when its run directory survived, or else from its copy parked under
#   experiments/unfinished/<grid_name>/ (tools/park_unfinished.sh), which is
#   put back with its log and its lines of grid.log; else it restarts;
# - log: $GRID_ROOT/<grid_name>/grid.log; the pid is printed;
# - one grid per grid directory at a time: while one runs there, another
#   start is refused (exit 1), e.g. FedProx cells beside a running FedAvg
#   grid of the same config wait for it to end;
# - GRID_WAIT=1 runs the grid in the foreground and exits with its status
#   (tools/run_queue.sh runs grids one after another this way); such a start
#   waits for a grid running in its directory to end instead of being
#   refused, so a queue's step never runs beside it.
# Collect ended cells with tools/collect_results.sh $GRID_ROOT/<grid_name>.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
config=${1:?usage: tools/run_grid.sh CONFIG [grid.py flags]}
shift
grid=$(sed -n 's/^--grid_name=//p' "$repo/$config")
[[ -n "$grid" ]] || { echo "$config sets no --grid_name" >&2; exit 1; }
# The grid runs HEAD's files: a config or train flagfile not committed, or
# edited since, would not be what runs.
train=$(sed -n 's/^--train_flagfile=//p' "$repo/$config" | tail -1)
for f in "$config" ${train:+"$train"}; do
  if ! git -C "$repo" diff --quiet HEAD -- "$f" 2>/dev/null ||
     ! git -C "$repo" cat-file -e "HEAD:$f" 2>/dev/null; then
    echo "ERROR: $f is not committed as it is; the grid runs the committed code (git archive HEAD): commit it first" >&2
    exit 1
  fi
done
root=$(mkdir -p "${GRID_ROOT:-$repo/../runs/paper}" && cd "${GRID_ROOT:-$repo/../runs/paper}" && pwd)
commit=$(git -C "$repo" rev-parse --short=12 HEAD)
code="$root/code-$commit"
if [[ ! -d "$code" ]]; then
  # Grids started at once from one commit (a queue beside a grid) each
  # extract into a directory of their own; the first rename wins.
  tmp=$(mktemp -d "$code.XXXXXX")
  git -C "$repo" archive HEAD | tar -x -C "$tmp"
  mv -T "$tmp" "$code" 2>/dev/null || { rm -rf "$tmp"; [[ -d "$code" ]]; }
fi
mkdir -p "$root/$grid"
# One grid at a time per grid directory: grid.log attributes each round to
# the code named by the last header above it, so a second grid appending its
# header would claim the first one's rounds. The lock is fd 9, inherited by
# the grid process and held until it exits.
# In the foreground (GRID_WAIT=1, a queue's step) the start waits for that
# grid to end; in the background it is refused.
if command -v flock >/dev/null; then
  exec 9>>"$root/$grid/grid.lock"
  if ! flock -n 9; then
    if [[ "${GRID_WAIT:-0}" == 1 ]]; then
      echo "grid $grid is running from $root/$grid (lock $root/$grid/grid.lock): waiting for it to end" >&2
      flock 9
    else
      echo "grid $grid is already running from $root/$grid (lock held on $root/$grid/grid.lock);" \
        "wait for it to end or stop it, then start again with the flags you want" >&2
      exit 1
    fi
  fi
else
  echo "warning: no flock here; nothing stops a second grid on $root/$grid" >&2
fi
newest_round() {  # of the checkpoints in run directory $1; 0 if none
  ls "$1/checkpoints" 2>/dev/null | sed -n 's/^round_\([0-9]*\)$/\1/p' | sort -n | tail -1 | grep . || echo 0
}
# Parked cells first: one parked and also committed was taken past its
# committed finish, and the parked state is the newer. A local run directory
# behind its parked copy (parked on another machine since) is moved aside.
for cell in "$repo/experiments/unfinished/$grid"/*/; do
  [[ -d "$cell" ]] || continue
  name=$(basename "$cell")
  run_dir="$root/$grid/$name"
  if [[ -e "$run_dir" ]]; then
    here=$(newest_round "$run_dir") parked=$(newest_round "$cell")
    (( here < parked )) || continue
    mkdir -p "$root/stale/$grid"
    mv "$run_dir" "$root/stale/$grid/$name-$(date +%s)"
    echo "$name: $run_dir (round $here) is behind its parked copy (round $parked); moved to $root/stale/$grid/"
  fi
  mkdir -p "$run_dir" "$root/$grid/logs"
  cp -r "$cell/." "$run_dir/"
  cat "$run_dir/log.txt" >> "$root/$grid/logs/$name.log" 2>/dev/null || true
  cat "$run_dir/grid_log.txt" >> "$root/$grid/grid.log" 2>/dev/null || true
  rm -f "$run_dir/log.txt" "$run_dir/grid_log.txt"
  echo "$name: put back from experiments/unfinished/$grid"
done
for cell in "$repo/experiments/results/$grid"/*/; do
  name=$(basename "$cell")
  [[ -f "$cell/summary.json" && ! -e "$root/$grid/$name" ]] && cp -r "$cell" "$root/$grid/$name"
done
cd "$code"
# The data is looked up beside the repository, not beside the copy.
export TFF_NIID_DATA=${TFF_NIID_DATA:-$(cd "$repo/.." && pwd)/shared/data}
echo "=== $(date -u +%FT%TZ) code $commit: grid.py --flagfile=$config --root_output_dir=$root $*" >> "$root/$grid/grid.log"
run=(env PYTHONPATH="$code" "$repo/.venv/bin/python" experiments/grid.py
  --flagfile="$config" --root_output_dir="$root" "$@")
if [[ "${GRID_WAIT:-0}" == 1 ]]; then
  echo "grid $grid running: log $root/$grid/grid.log, code $code"
  exec "${run[@]}" >> "$root/$grid/grid.log" 2>&1 < /dev/null
fi
nohup "${run[@]}" >> "$root/$grid/grid.log" 2>&1 < /dev/null &
echo "grid $grid started: pid $!, log $root/$grid/grid.log, code $code"

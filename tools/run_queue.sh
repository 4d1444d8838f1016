#!/usr/bin/env bash
# Runs a queue of grids one after another, in the background: each line of
# the queue file is `CONFIG [grid.py flags]` for tools/run_grid.sh, split
# into words as the shell splits them, quotes grouping (`--partition='d=
# dirichlet(alpha=0.5, min_size=10)'`) but nothing expanded (xargs' rules;
# blank lines and `#` comments skipped), the config relative to the
# repository; a step starts when the one before it ends,
# whatever its exit status; a step whose grid directory has a grid running
# waits for it to end (tools/run_grid.sh, GRID_WAIT=1). A step whose cells
# are all finished (committed under experiments/results/, or in $GRID_ROOT)
# returns at once, so the same command resumes the queue on a fresh machine.
#
#   tools/run_queue.sh experiments/configs/queue_mcmahan.txt
#
# - each step archives HEAD when it starts (tools/run_grid.sh): commit first;
# - log: $GRID_ROOT/queue-<queue file name>.log (default GRID_ROOT as in
#   run_grid.sh); each grid also logs to its own grid.log;
# - one queue per queue file: a second start is refused while one runs;
# - stop: tools/save_grids.sh (it also saves the grids' outputs), or
#   `kill -TERM -- -<pgid>` with the process group printed at start (the
#   queue and its running grid; a cell resumes from its last saved round).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
queue=${1:?usage: tools/run_queue.sh QUEUE_FILE}
[[ -f "$repo/$queue" ]] || { echo "no queue file $repo/$queue" >&2; exit 1; }
root=$(mkdir -p "${GRID_ROOT:-$repo/../runs/paper}" && cd "${GRID_ROOT:-$repo/../runs/paper}" && pwd)
log="$root/queue-$(basename "$queue" .txt).log"
steps=$(grep -v '^[[:space:]]*\(#\|$\)' "$repo/$queue")
[[ -n "$steps" ]] || { echo "$queue lists no step" >&2; exit 1; }
# A step's words, one per line.
words() { xargs -n1 printf '%s\n' <<< "$1"; }
while IFS= read -r line; do
  words "$line" > /dev/null 2>&1 || {
    echo "$queue: unbalanced quotes in the step: $line" >&2; exit 1; }
done <<< "$steps"
run_steps() {
  while IFS= read -r line; do
    mapfile -t step < <(words "$line")
    echo "=== $(date -u +%FT%TZ) step: ${step[*]}"
    status=0
    GRID_ROOT="$root" GRID_WAIT=1 "$repo/tools/run_grid.sh" "${step[@]}" < /dev/null || status=$?
    echo "=== $(date -u +%FT%TZ) step ended, exit status $status"
  done <<< "$steps"
  echo "=== $(date -u +%FT%TZ) queue done"
}
export -f run_steps words
export repo root steps
exec 9>> "$log.lock"
flock -n 9 || { echo "a queue of $queue is running already (lock $log.lock)" >&2; exit 1; }
# The lock stays held by the background queue (it inherits descriptor 9).
setsid nohup bash -c run_steps >> "$log" 2>&1 < /dev/null &
echo "queue $queue started: process group $!, log $log"

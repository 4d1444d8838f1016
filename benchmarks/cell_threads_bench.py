"""Training throughput: two one-thread grid cells vs one two-thread cell.

  .venv/bin/python -m benchmarks.cell_threads_bench [--rounds=4] [--repeats=1]

The NIID-Bench grid (experiments/configs/niid_bench.cfg) runs `--jobs=2
--cell_threads=1`: two cells at a time, each on one TensorFlow thread. This
measures that choice against its alternative, one cell at a time on two
threads (`--jobs=1 --cell_threads=2`), on the grid's own cell: train.py with
`niid_bench_train.cfg` (simple CNN, MNIST IID over 10 clients, all in every
round, E=10, B=64), cut to `--rounds` rounds.

Side by side in one run: the two layouts take turns `--repeats` times, in
ABBA order. A cell's speed is the median of its `round_seconds`
(metrics.csv: a round's training, without its evaluation and checkpoint)
over rounds 2 to R−1 (round 1 includes tracing and compiling; in round R
the other cell may have finished already); a layout's
training throughput is the sum over its concurrent cells of rounds per hour.
Printed: each layout's throughput per repeat and the ratio two/one (> 1: the
grid's layout is faster). Run it on an otherwise idle machine: the load
average is printed first, since other work running beside it skews both
layouts alike only on average.
"""

import csv
import os
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

_ROUNDS = flags.DEFINE_integer(
    "rounds", 4, "Rounds per cell R (rounds 2 to R-1 are timed).",
    lower_bound=3)
_REPEATS = flags.DEFINE_integer("repeats", 1, "Turns of each layout.",
                                lower_bound=1)
_LOCAL_EPOCHS = flags.DEFINE_integer(
    "local_epochs", None, "Overrides the train flagfile's E (shorter rounds; "
    "the grid's cells run E=10).", lower_bound=1)
_TRAIN_FLAGFILE = flags.DEFINE_string(
    "train_flagfile", "experiments/configs/niid_bench_train.cfg",
    "The cell's train.py flags.")

_TRAIN = os.path.join(os.path.dirname(__file__), "..", "experiments",
                      "train.py")
# (cells run at once, TensorFlow threads of each), in the order of a repeat
# that runs them A, B (the next runs B, A).
_LAYOUTS = {"one two-thread cell": (1, 2), "two one-thread cells": (2, 1)}


def _cell_command(root_dir: str, name: str) -> list[str]:
  command = [sys.executable, _TRAIN, f"--flagfile={_TRAIN_FLAGFILE.value}",
             "--dataset=mnist", "--partition_spec=iid",
             f"--root_output_dir={root_dir}", f"--experiment_name={name}",
             f"--rounds={_ROUNDS.value}", "--quiet"]
  if _LOCAL_EPOCHS.value is not None:
    command.append(f"--local_epochs={_LOCAL_EPOCHS.value}")
  return command


def _seconds_per_round(run_dir: str) -> float:
  with open(os.path.join(run_dir, "metrics.csv")) as f:
    seconds = [float(row["round_seconds"]) for row in csv.DictReader(f)]
  if len(seconds) != _ROUNDS.value:
    raise RuntimeError(f"{run_dir}: {len(seconds)} of {_ROUNDS.value} rounds")
  return statistics.median(seconds[1:-1])


def _rounds_per_hour(cells: int, threads: int, root_dir: str) -> float:
  """Runs `cells` cells at once on `threads` threads each; their throughput."""
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads),
             TF_NUM_INTEROP_THREADS=str(threads))
  names = [f"cell{i}" for i in range(cells)]
  processes = [subprocess.Popen(_cell_command(root_dir, name), env=env,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
               for name in names]
  for name, process in zip(names, processes):
    _, stderr = process.communicate()
    if process.returncode:
      raise RuntimeError(f"{name} exited {process.returncode}:\n{stderr}")
  return sum(3600 / _seconds_per_round(os.path.join(root_dir, name))
             for name in names)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  print(f"load average (1, 5, 15 min): {os.getloadavg()}, "
        f"{os.cpu_count()} cores", flush=True)
  throughput: dict[str, list[float]] = {layout: [] for layout in _LAYOUTS}
  for repeat in range(_REPEATS.value):
    order = list(_LAYOUTS.items())
    for layout, (cells, threads) in order[::-1] if repeat % 2 else order:
      with tempfile.TemporaryDirectory() as root_dir:
        throughput[layout].append(_rounds_per_hour(cells, threads, root_dir))
      print(f"repeat {repeat + 1}: {layout}: "
            f"{throughput[layout][-1]:.1f} rounds/hour", flush=True)
  one, two = (statistics.median(throughput[layout]) for layout in _LAYOUTS)
  print(f"median rounds/hour: one two-thread cell {one:.1f}, "
        f"two one-thread cells {two:.1f}")
  print(f"throughput two one-thread cells / one two-thread cell: "
        f"{two / one:.2f}")


if __name__ == "__main__":
  app.run(main)

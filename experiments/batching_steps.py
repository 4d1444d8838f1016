"""Local steps per round: tff_niid's batching against NIID-Bench's, per cell.

  .venv/bin/python experiments/batching_steps.py \
      --output=experiments/results/batching_steps/steps.csv

tff_niid streams a client's E local epochs into batches of B
(`clientdata.local_training_batches`), so a client of n samples takes
`clientdata.local_steps` = ceil(E n / B) steps per round; NIID-Bench's
DataLoader (drop_last=False) batches each epoch on its own: E ceil(n / B)
(`local_steps(per_epoch_batches=True)`, train.py's --per_epoch_batches).
For every (dataset, partition, seed) of a grid config, this draws the
partition the grid's cells train on (`partition.spec.resolve` with the
train flagfile's --num_clients and the seed, as experiments/train.py does)
and writes one CSV row: its clients and samples, the smallest and largest
client (report.py checks them against the committed cells'
partition_summary.txt), both step counts summed over clients, their ratio
averaged with FedAvg's client weights (n / N), and the client with the
smallest ratio. E, B and the number of clients are the train flagfile's
(the grid's --algorithm_flags do not change them in niid_bench.cfg).
experiments/report.py renders the CSV. Needs no training: the partitions
are drawn in a second or two each.
"""

import csv
import itertools
import os

from absl import app
from absl import flags
import numpy as np

from tff_niid import checkout
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import partition as partition_lib
from tff_niid import grids
from tff_niid import runtime

_GRID_CONFIG = flags.DEFINE_string(
    "grid_config", "experiments/configs/niid_bench.cfg",
    "grid.py flagfile, relative to the repository root (as are the paths "
    "in it): its --datasets, --partition, --seeds and --train_flagfile (its "
    "--num_clients, --local_epochs, --batch_size).")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Directory with the idx .gz files.")
_OUTPUT = flags.DEFINE_string("output", None, "CSV file to write.",
                              required=True)

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FIELDS = ("dataset", "partition", "seed", "clients", "samples", "size_min",
          "size_max", "local_epochs", "batch_size", "steps_ours",
          "steps_niid_bench",
          "weighted_step_ratio", "smallest_step_ratio",
          "smallest_ratio_client_size")


def _last_int(flags_read, name):
  if name not in flags_read:
    raise app.UsageError(f"the train flagfile sets no --{name}.")
  return int(flags_read[name][-1])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    # Paths in configs are relative to the repository root, as grid.py
    # runs them.
    grid = grids.read_flagfile(os.path.join(_REPO, _GRID_CONFIG.value),
                                 _REPO)
    train = grids.read_flagfile(
        os.path.join(_REPO, grid["train_flagfile"][-1]), _REPO)
    dataset_names = grid["datasets"][-1].split(",")
  except (OSError, KeyError) as e:
    raise app.UsageError(f"--grid_config={_GRID_CONFIG.value}: {e}") from None
  num_clients = _last_int(train, "num_clients")
  epochs = _last_int(train, "local_epochs")
  batch_size = _last_int(train, "batch_size")
  # A grid without --seeds runs train.py's --seed, the train flagfile's.
  seeds = (grid["seeds"][-1].split(",") if "seeds" in grid
           else [str(_last_int(train, "seed"))])
  partitions = [item.partition("=")[::2] for item in grid.get("partition", [])]
  rows = []
  # The partition does not depend on the algorithm: one row per
  # (dataset, partition, seed).
  for dataset in dataset_names:
    data = datasets.load(dataset, _DATA_DIR.value)
    for seed, (name, spec) in itertools.product(seeds, partitions):
      part = partition_lib.spec.resolve(
          spec, data.train_labels,
          partition_lib.spec.num_clients_for(spec, num_clients),
          seed=int(seed), images=data.train_images)
      sizes = np.asarray(part.sizes)
      ours, niid_bench = (np.array([
          clientdata.local_steps(int(n), batch_size=batch_size,
                                 local_epochs=epochs,
                                 per_epoch_batches=per_epoch_batches)
          for n in sizes]) for per_epoch_batches in (False, True))
      ratios = ours / niid_bench
      smallest = int(np.argmin(ratios))
      rows.append(dict(
          dataset=dataset, partition=name, seed=seed, clients=len(sizes),
          samples=int(sizes.sum()), size_min=int(sizes.min()),
          size_max=int(sizes.max()),
          local_epochs=epochs, batch_size=batch_size,
          steps_ours=int(ours.sum()), steps_niid_bench=int(niid_bench.sum()),
          weighted_step_ratio=f"{np.sum(sizes / sizes.sum() * ratios):.4f}",
          smallest_step_ratio=f"{ratios[smallest]:.4f}",
          smallest_ratio_client_size=int(sizes[smallest])))
      print(", ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  with open(_OUTPUT.value, "w", newline="") as f:
    writer = csv.DictWriter(f, FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
  runtime.install_cleanup()  # first: as train.py
  checkout.require_own_checkout(__file__)
  app.run(main)

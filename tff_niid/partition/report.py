"""A partition's report: the partition saved, its metrics table and plots.

Both binaries describe a partition this way, experiments/train.py in a run
directory at the run's first start and the partition binary
(`tff-niid-partition`) in its --output_dir, so the files are the same
whoever wrote them:

  partition/               the saved partition (`partition.load`)
  partition_summary.txt    the `metrics.summary` table (committed with every
                           run, read back by `results.read_partition_summary`)
  partition_label_counts.csv
                           each client's samples per class (`metrics.
                           label_counts`): a row per client, `client` (its
                           id: `Partition.client_ids`), `size` and a column
                           `class_<k>` per class
  partition_label_mix.png, partition_sizes.png, partition_divergence.png
                           `plots.plot_all` (left out with plots=False:
                           matplotlib is not part of the numpy core)
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
from typing import Callable, Iterator, Mapping
import warnings

import numpy as np

from tff_niid.partition import attributes
from tff_niid.partition import core
from tff_niid.partition import metrics
from tff_niid.partition import plots as plots_lib
from tff_niid.partition import spec

PARTITION_DIR = core.REPORT_PARTITION_DIR
SUMMARY_FILE = "partition_summary.txt"
LABEL_COUNTS_FILE = "partition_label_counts.csv"
PLOT_PREFIX = "partition_"


@dataclasses.dataclass(frozen=True)
class Report:
  """What `write` wrote: the summary table (also in SUMMARY_FILE), the saved
  partition's directory and the plot files."""
  table: str
  partition_dir: str
  plots: list[str]


def _write_label_counts(part, labels, path):
  counts = metrics.label_counts(part, labels)
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["client", "size", *(f"class_{k}" for k in
                                         range(counts.shape[1]))])
    # One conversion of the whole matrix, not one per client.
    writer.writerows([client, size, *row] for client, size, row in zip(
        part.client_ids, counts.sum(axis=1).tolist(), counts.tolist()))


@contextlib.contextmanager
def warnings_to(emit: Callable[[str], None]) -> Iterator[None]:
  """Runs the block, then passes each warning it raised to `emit(message)`,
  also when it raises (a caveat can explain the error).

  How the binaries show a partition's caveats (samples left unassigned, a
  key dispersion of small cells) as one line each instead of Python's
  file:line form. The library's own warnings are shown every time they are
  raised, not once per place; others as their filters say.
  """
  with warnings.catch_warnings(record=True) as caught:
    # "always" only for the library's: for every UserWarning it would undo
    # other packages' own filters (pyparsing's deprecations).
    warnings.filterwarnings("always", category=UserWarning,
                            module="tff_niid")
    try:
      yield
    finally:
      for warning in caught:
        emit(str(warning.message))


def files(directory: str) -> list[str]:
  """The paths `write` writes in `directory`: partition/ first, then the
  summary, the label counts and the plots."""
  return [os.path.join(directory, name)
          for name in (PARTITION_DIR, SUMMARY_FILE, LABEL_COUNTS_FILE)
          ] + plots_lib.plot_files(directory, prefix=PLOT_PREFIX)


def write(part: core.Partition, labels: np.ndarray, directory: str, *,
          images: np.ndarray | None = None,
          keys: Mapping[str, np.ndarray] | None = None,
          plots: bool = True) -> Report:
  """Saves `part` into `directory` with its summary table, label counts and
  plots.

  The table reports the within-class key dispersion when the partition's
  spec orders classes by a key and its values are at hand: an image
  attribute (e.g. `key(slant)`) with the `images` the partition was made
  from, or a numeric user key (`key(altitude)`) in `keys` (a categorical
  one, e.g. region names, has no dispersion to measure).

  Args:
    part: the partition.
    labels: the true labels it was made from.
    directory: where to write (created if missing). A partition saved at
      directory/partition before is replaced; anything else there is refused
      (`Partition.save`).
    images: the images it was made from (for the key dispersion).
    keys: the {name: per-sample array} it was made from (`spec.resolve`).
    plots: also draw the plots (they need matplotlib: `plots_lib.available`).

  Raises:
    ValueError: directory/partition holds something other than a saved
      partition, or `keys` holds another array under the partition's key
      name than the one it was made with (`Partition.check_key`).
    OSError: the directory cannot be written.
  """
  key_name = spec.key_name(part.spec) if part.spec else None
  keys = keys or {}
  key = None
  if key_name is not None and (key_name in keys or (
      key_name in attributes.ATTRIBUTES and images is not None)):
    key = spec.key_values(key_name, images=images, keys=keys)
    if key_name in keys:  # a user's array: the one it was made with?
      part.check_key(key)
    if key.dtype.kind not in "biuf":
      key = None
  # Measured before anything is written: a measurement that fails (e.g.
  # labels of another dataset) leaves the directory as it was.
  table = metrics.format_table(metrics.summary(part, labels, key=key))
  partition_dir = part.save(os.path.join(directory, PARTITION_DIR),
                            overwrite=True)
  with open(os.path.join(directory, SUMMARY_FILE), "w") as f:
    f.write(table + "\n")
  _write_label_counts(part, labels,
                      os.path.join(directory, LABEL_COUNTS_FILE))
  return Report(table, partition_dir,
                plots_lib.plot_all(part, labels, directory, prefix=PLOT_PREFIX)
                if plots else [])

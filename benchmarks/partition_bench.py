"""Partition speed and memory, measured side by side in one run.

  python benchmarks/partition_bench.py

1. tff_niid `dirichlet(min_size=10)` vs a re-implementation of NIID-Bench's
   `noniid-labeldir` loop (Li et al. 2022, utils.py `partition_data`: per class
   Dir(beta) proportions with the "balance" mask, `np.split`, and the whole
   partition resampled until every client has >= 10 samples), on the real
   MNIST train labels. The reference gets a time budget per setting; if it
   has not produced a partition by then, the table says so.
2. tff_niid `dirichlet` on 10,000,000 synthetic labels / 10,000 clients vs one
   `np.argsort` of the same labels (time), and its peak extra memory
   (tracemalloc, which sees numpy's allocations) vs the label array's size.
"""

import statistics
import time
import tracemalloc

from absl import app
from absl import flags
import numpy as np

from tff_niid import datasets
from tff_niid import partition

_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats (median).")
_BUDGET = flags.DEFINE_float("reference_budget_seconds", 60.0,
                             "Time budget of the reference per setting.")
_LARGE_N = flags.DEFINE_integer("large_samples", 10_000_000,
                                "Synthetic labels for part 2.")


def niid_bench_labeldir(labels, n_parties, beta, rng, deadline,
                        min_require_size=10):
  """NIID-Bench's labeldir loop; returns (client lists or None, attempts)."""
  num_classes = int(labels.max()) + 1
  n = labels.shape[0]
  attempts, min_size = 0, 0
  while min_size < min_require_size:
    if time.perf_counter() > deadline:
      return None, attempts
    attempts += 1
    idx_batch = [[] for _ in range(n_parties)]
    for k in range(num_classes):
      idx_k = np.where(labels == k)[0]
      rng.shuffle(idx_k)
      proportions = rng.dirichlet(np.repeat(beta, n_parties))
      # "Balance": clients already holding N / n_parties get no more.
      proportions = np.array([p * (len(idx_j) < n / n_parties)
                              for p, idx_j in zip(proportions, idx_batch)])
      proportions = proportions / proportions.sum()
      cuts = (np.cumsum(proportions) * len(idx_k)).astype(int)[:-1]
      idx_batch = [idx_j + idx.tolist()
                   for idx_j, idx in zip(idx_batch, np.split(idx_k, cuts))]
      min_size = min(len(idx_j) for idx_j in idx_batch)
  return idx_batch, attempts


def _median_seconds(fn, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def compare_with_niid_bench(labels):
  print("## dirichlet vs NIID-Bench labeldir (MNIST train labels, min size "
        "10)\n")
  print("| clients | alpha | tff_niid (s) | NIID-Bench loop (s) | attempts | "
        "speed-up |")
  print("|---:|---:|---:|---:|---:|---:|")
  for num_clients in (100, 1000):
    for alpha in (0.5, 0.01):
      ours = _median_seconds(lambda: partition.dirichlet(  # pylint: disable=cell-var-from-loop
          labels, num_clients, alpha=alpha, min_size=10, seed=0),
                             _REPEATS.value)
      rng = np.random.default_rng(0)
      start = time.perf_counter()
      result, attempts = niid_bench_labeldir(
          labels, num_clients, alpha, rng, start + _BUDGET.value)
      theirs = time.perf_counter() - start
      if result is None:
        ref, ratio = f"did not finish in {theirs:.0f}", f"> {theirs / ours:,.0f}x"
      else:
        ref, ratio = f"{theirs:.3f}", f"{theirs / ours:,.0f}x"
      print(f"| {num_clients} | {alpha} | {ours:.4f} | {ref} | {attempts} | "
            f"{ratio} |")
  print()


def compare_with_argsort(num_samples):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, size=num_samples)  # int64
  sort_s = _median_seconds(lambda: np.argsort(labels), 3)
  ours_s = _median_seconds(lambda: partition.dirichlet(
      labels, 10_000, alpha=0.5, seed=0), 3)
  tracemalloc.start()
  part = partition.dirichlet(labels, 10_000, alpha=0.5, seed=0)
  _, peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  del part
  print(f"## dirichlet on {num_samples:,} synthetic int64 labels, 10,000 "
        "clients, alpha 0.5\n")
  print("| measure | value |")
  print("|---|---:|")
  print(f"| np.argsort(labels) | {sort_s:.3f} s |")
  print(f"| tff_niid dirichlet | {ours_s:.3f} s |")
  print(f"| time ratio (target <= 3) | {ours_s / sort_s:.2f} |")
  print(f"| peak extra memory (tracemalloc, incl. the result) | "
        f"{peak / 2**20:.0f} MiB |")
  print(f"| label array | {labels.nbytes / 2**20:.0f} MiB |")
  print(f"| memory ratio (target < 3) | {peak / labels.nbytes:.2f} |")


def main(argv):
  del argv
  labels = datasets.load("mnist").train_labels
  compare_with_niid_bench(labels)
  compare_with_argsort(_LARGE_N.value)


if __name__ == "__main__":
  app.run(main)

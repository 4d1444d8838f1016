"""Partition speed and memory, measured side by side in one run.

  python benchmarks/partition_bench.py

Prints five markdown tables:

1. tff_niid `dirichlet(min_size=10)` (anchor-exact: `self_balancing=True,
   min_size_policy="resample"`; and the default "repair", which draws from
   another distribution) vs a re-implementation of NIID-Bench's
   `noniid-labeldir` partition (Li et al. 2022, "Federated Learning on Non-IID
   Data Silos", repo Xtra-Computing/NIID-Bench, utils.py `partition_data`) on
   the real MNIST train labels, for 100 and 1,000 clients at alpha 0.5 and
   0.01. All guarantee every client >= 10 samples: NIID-Bench by resampling
   the whole partition until it holds, which may never happen, so the
   reference gets a time and attempt budget and the table says when it ran
   out; the anchor-exact mode resamples too, at most 1,000 times, then
   raises ValueError (the table gives the time it took to say so); "repair"
   always meets it. Repeats alternate between them (same machine, same
   moment); the table shows medians.
2. tff_niid `dirichlet` on 10,000,000 seeded synthetic int64 labels (10
   classes) with 10,000 clients vs one `np.argsort` of the same labels
   (time), and the peak memory it allocates during the call (tracemalloc,
   which sees numpy's allocations; the result is included) vs the label
   array's size.
3. The combined label schemes on the MNIST train labels, 100 and 1,000
   clients: `extended_dirichlet` (k classes per client, Dirichlet shares;
   default and the ExDir setting), #C=k and shards with lognormal client
   sizes, next to #C=k and shards with their own sizes, and
   `consecutive_classes` (the FedProx paper's MNIST partition); each spec
   resolved as `spec.resolve` does (parse, sizes, partition), repeats
   interleaved over the specs (median and fastest).

4. tff_niid `balanced_dirichlet(fill="by_sample")` vs a re-implementation
   of Flower Datasets' InnerDirichletPartitioner (its sample-by-sample loop,
   FedDyn's process: flwr_datasets 0.5, `inner_dirichlet_partitioner.py`)
   on the MNIST train labels, equal sizes, 100 and 1,000 clients, alpha
   0.5; repeats alternate between the two.

5. Many classes: `dirichlet` (1,000,000 synthetic labels, 100,000
   clients) and `balanced_dirichlet(fill="by_sample")` (200,000 labels,
   2,000 clients) at 100 and at 1,000 classes, the same samples and
   clients: the time ratio between the two shows how each grows with the
   classes (10 for linear, 100 for quadratic), and the peak memory at
   1,000 classes (tracemalloc) is set against one clients x classes float64
   matrix.

`--parts` picks tables (default all five), e.g. `--parts=combined`.
"""

import os
import platform
import statistics
import time
import tracemalloc

from absl import app
from absl import flags
import numpy as np

from tff_niid import datasets
from tff_niid import partition
from tff_niid.partition import spec

_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats per measurement "
                                "(the median is reported).")
_BUDGET = flags.DEFINE_float(
    "reference_budget_seconds", 30.0,
    "Time the NIID-Bench reference gets per setting before it is reported as "
    "not finished.")
_MAX_ATTEMPTS = flags.DEFINE_integer(
    "reference_max_attempts", 100_000,
    "Resampling attempts the NIID-Bench reference gets per setting.")
_LARGE_SAMPLES = flags.DEFINE_integer("large_samples", 10_000_000,
                                      "Synthetic labels in part 2.")
_LARGE_CLIENTS = flags.DEFINE_integer("large_clients", 10_000,
                                      "Clients in part 2.")
_ALL_PARTS = ["niid_bench", "large", "combined", "inner_dirichlet",
              "many_classes"]
_PARTS = flags.DEFINE_multi_enum("parts", _ALL_PARTS, _ALL_PARTS,
                                 "Tables to print (parts 1-5).")

# Part 5: (what, samples, clients, make(labels, clients)).
_MANY_CLASSES = (
    ("dirichlet(alpha=0.5)", 1_000_000, 100_000,
     lambda labels, n: partition.dirichlet(labels, n, alpha=0.5, seed=0)),
    ("balanced_dirichlet(alpha=0.5, fill=by_sample)", 200_000, 2_000,
     lambda labels, n: partition.balanced_dirichlet(
         labels, n, alpha=0.5, fill="by_sample", seed=0)),
)

# Part 3: what each spec stands for, and the spec.
_COMBINED_SPECS = (
    ("#C=2", "label_quantity(classes_per_client=2)"),
    ("#C=2, lognormal client sizes",
     "label_quantity(classes_per_client=2)+quantity(sigma=2, min_size=2)"),
    ("shards", "shards(shards_per_client=2)"),
    ("shards, lognormal client sizes",
     "shards(shards_per_client=2)+quantity(sigma=2, min_size=2)"),
    ("2 consecutive classes, lognormal pieces (FedProx's MNIST)",
     "consecutive_classes(classes_per_client=2, sigma=2.0)"),
    ("extended Dirichlet, default",
     "extended_dirichlet(alpha=0.5, classes_per_client=2)"),
    ("extended Dirichlet, ExDir (min size 10 by redraws)",
     "extended_dirichlet(alpha=0.5, classes_per_client=2, min_size=10, "
     "min_size_policy=resample)"),
)

# NIID-Bench's fixed minimum client size for noniid-labeldir.
_MIN_REQUIRE_SIZE = 10


class _OutOfBudget(Exception):
  """The reference did not finish within its budget."""

  def __init__(self, attempts):
    super().__init__(attempts)
    self.attempts = attempts


def niid_bench_labeldir(labels, num_clients, beta, rng, *, deadline,
                        max_attempts):
  """NIID-Bench's noniid-labeldir partition, step for step.

  Per class: shuffle its indices, draw client proportions ~ Dir(beta), zero
  the proportions of clients already holding N / num_clients samples (the
  "balance" step), cut the class with `np.split` at the rounded-down
  cumulative proportions and append the pieces to Python lists. The whole
  partition is redrawn until the smallest client has >= 10 samples; then each
  client's list is shuffled. `rng` is a legacy `RandomState`, the generator
  behind NIID-Bench's `np.random.*` calls.

  Returns:
    (per-client index lists, attempts used).

  Raises:
    _OutOfBudget: when `deadline` (perf_counter seconds) passes or
      `max_attempts` are used before a partition meets the minimum size.
  """
  num_samples = labels.shape[0]
  num_classes = int(labels.max()) + 1
  attempts, min_size = 0, 0
  while min_size < _MIN_REQUIRE_SIZE:
    if attempts == max_attempts or time.perf_counter() > deadline:
      raise _OutOfBudget(attempts)
    attempts += 1
    client_lists: list[list[int]] = [[] for _ in range(num_clients)]
    for k in range(num_classes):
      class_indices = np.where(labels == k)[0]
      rng.shuffle(class_indices)
      proportions = rng.dirichlet(np.repeat(beta, num_clients))
      proportions = np.array([
          p * (len(held) < num_samples / num_clients)
          for p, held in zip(proportions, client_lists)])
      proportions = proportions / proportions.sum()
      cuts = (np.cumsum(proportions) * len(class_indices)).astype(int)[:-1]
      client_lists = [
          held + piece.tolist()
          for held, piece in zip(client_lists, np.split(class_indices, cuts))]
      min_size = min(len(held) for held in client_lists)
  for held in client_lists:
    rng.shuffle(held)
  return client_lists, attempts


def _seconds(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def _ms_or_refusal(times, refusals):
  """A table cell: the median of `times` in ms, or of how long `dirichlet`
  took to refuse (ValueError: the minimum size out of reach)."""
  if refusals:
    return f"ValueError after {statistics.median(refusals) * 1e3:,.0f} ms"
  return f"{statistics.median(times) * 1e3:.2f}"


def _compare_one_setting(labels, num_clients, alpha):
  """One table row: medians of alternating repeats of the partitioners.

  `dirichlet` is timed twice: with self_balancing and
  min_size_policy="resample" (the reference's own distribution, so the
  like-for-like figure) and with its default min_size_policy="repair"
  (another distribution, which always meets the minimum size)."""
  policies = {"resample": True, "repair": False}  # its self_balancing
  times: dict[str, list[float]] = {name: [] for name in policies}
  refusals: dict[str, list[float]] = {name: [] for name in policies}
  theirs, attempts, out_of_budget = [], 0, None
  for _ in range(_REPEATS.value):
    for name, self_balancing in policies.items():
      start = time.perf_counter()
      try:
        partition.dirichlet(labels, num_clients, alpha=alpha,
                            min_size=_MIN_REQUIRE_SIZE,
                            self_balancing=self_balancing,
                            min_size_policy=name, seed=0)
        times[name].append(time.perf_counter() - start)
      except ValueError:
        refusals[name].append(time.perf_counter() - start)
    if out_of_budget is not None:
      continue  # further repeats would only spend the same budget again
    # Same seed every repeat, so every repeat does the same work.
    start = time.perf_counter()
    try:
      _, attempts = niid_bench_labeldir(
          labels, num_clients, alpha, np.random.RandomState(0),
          deadline=start + _BUDGET.value, max_attempts=_MAX_ATTEMPTS.value)
      theirs.append(time.perf_counter() - start)
    except _OutOfBudget as e:
      out_of_budget = (time.perf_counter() - start, e.attempts)
  if out_of_budget is not None:
    elapsed, tried = out_of_budget
    reference = f"did not finish in {elapsed:.0f} s ({tried:,} attempts)"
  else:
    reference = (f"{statistics.median(theirs) * 1e3:.2f} ({attempts:,} "
                 f"attempt{'s' if attempts > 1 else ''})")
  if out_of_budget is None and not refusals["resample"]:
    ratio = statistics.median(theirs) / statistics.median(times["resample"])
    speed_up = f"{ratio:,.1f}x"
  else:
    speed_up = "-"
  return (f"| {num_clients:,} | {alpha} | "
          f"{_ms_or_refusal(times['resample'], refusals['resample'])} | "
          f"{reference} | {speed_up} | "
          f"{_ms_or_refusal(times['repair'], refusals['repair'])} |")


def compare_with_niid_bench(labels):
  print(f"## dirichlet vs NIID-Bench noniid-labeldir: MNIST train labels "
        f"({labels.shape[0]:,}), every client >= {_MIN_REQUIRE_SIZE} samples\n")
  print(f"Median of {_REPEATS.value} alternating repeats; reference budget "
        f"{_BUDGET.value:g} s or {_MAX_ATTEMPTS.value:,} attempts per "
        "setting. The same distribution: `dirichlet(self_balancing=True, "
        "min_size_policy=\"resample\")` and the reference loop (speed-up "
        "between the two); the default `min_size_policy=\"repair\"` draws "
        "from another distribution and is shown for its time only.\n")
  print("| clients | alpha | tff_niid, same distribution (ms) | NIID-Bench "
        "loop (ms) | speed-up | tff_niid repair, another distribution (ms) |")
  print("|---:|---:|---:|---:|---:|---:|")
  for num_clients in (100, 1000):
    for alpha in (0.5, 0.01):
      print(_compare_one_setting(labels, num_clients, alpha), flush=True)
  print()


def compare_with_argsort(num_samples, num_clients):
  labels = np.random.default_rng(0).integers(0, 10, size=num_samples)
  make = lambda: partition.dirichlet(labels, num_clients, alpha=0.5, seed=0)
  # A continuous key (every sample its own value), as an image attribute is.
  key = np.random.default_rng(1).random(num_samples)
  make_keyed = lambda: partition.dirichlet(labels, num_clients, alpha=0.5,
                                           key=key, seed=0)
  split = lambda part: partition.split_clients(part, labels,
                                               test_fraction=0.2, seed=0)
  sort_times, ours_times, keyed_times, split_times = [], [], [], []
  for _ in range(_REPEATS.value):
    sort_times.append(_seconds(lambda: np.argsort(labels)))
    ours_times.append(_seconds(make))
    keyed_times.append(_seconds(make_keyed))
    part = make()
    split_times.append(_seconds(lambda: split(part)))
    del part
  sort_s, ours_s = statistics.median(sort_times), statistics.median(ours_times)
  keyed_s, split_s = (statistics.median(keyed_times),
                      statistics.median(split_times))
  tracemalloc.start()
  part = make()
  _, peak = tracemalloc.get_traced_memory()
  tracemalloc.stop()
  del part
  mib = 2.0**20
  print(f"## dirichlet on {num_samples:,} synthetic {labels.dtype} labels "
        f"(10 classes), {num_clients:,} clients, alpha 0.5\n")
  print(f"Median of {_REPEATS.value} alternating repeats.\n")
  print("| measure | value | target |")
  print("|---|---:|---:|")
  print(f"| np.argsort(labels) | {sort_s:.3f} s | |")
  print(f"| tff_niid dirichlet | {ours_s:.3f} s | |")
  print(f"| time ratio dirichlet / argsort | {ours_s / sort_s:.2f} | <= 3 |")
  print(f"| label array | {labels.nbytes / mib:.0f} MiB | |")
  print(f"| dirichlet peak allocation (tracemalloc, incl. the "
        f"{num_samples * 8 / mib:.0f} MiB result) | {peak / mib:.0f} MiB | |")
  print(f"| memory ratio peak / label array | {peak / labels.nbytes:.2f} "
        "| < 3 |")
  print(f"| tff_niid dirichlet with key= (a float per sample) | "
        f"{keyed_s:.3f} s | |")
  print(f"| time ratio dirichlet with key= / argsort | "
        f"{keyed_s / sort_s:.2f} | |")
  print(f"| split_clients(test_fraction=0.2) of that partition | "
        f"{split_s:.3f} s | |")
  print(f"| time ratio split_clients / argsort | {split_s / sort_s:.2f} | |")


def _resolve_seconds(text, labels, num_clients):
  """Seconds to resolve `text`, and its ValueError's message (or None)."""
  start = time.perf_counter()
  try:
    spec.resolve(text, labels, num_clients, seed=0)
  except ValueError as e:
    return time.perf_counter() - start, str(e)
  return time.perf_counter() - start, None


def time_combined_schemes(labels):
  client_counts = (100, 1000)
  times: dict[tuple[str, int], list[float]] = {
      (text, n): [] for _, text in _COMBINED_SPECS for n in client_counts}
  refused = {}
  for _ in range(_REPEATS.value):
    for (text, n), runs in times.items():
      seconds, error = _resolve_seconds(text, labels, n)
      runs.append(seconds)
      if error:
        refused[(text, n)] = error
  print(f"## Combined label schemes: MNIST train labels "
        f"({labels.shape[0]:,}), time per partition\n")
  print(f"Median (fastest) of {_REPEATS.value} repeats, interleaved over the "
        "specs; `spec.resolve` (parse, client sizes, partition), seed 0.\n")
  print("| scheme | spec | 100 clients (ms) | 1,000 clients (ms) |")
  print("|---|---|---:|---:|")
  for what, text in _COMBINED_SPECS:
    cells = []
    for n in client_counts:
      ms = statistics.median(times[(text, n)]) * 1e3
      fastest = min(times[(text, n)]) * 1e3
      cells.append(f"{ms:.2f} ({fastest:.2f})" if (text, n) not in refused
                   else f"ValueError after {ms:,.0f} ms")
    print(f"| {what} | `{text}` | {' | '.join(cells)} |", flush=True)
  print()
  for (text, n), message in refused.items():
    print(f"ValueError for `{text}` at {n:,} clients: {message}\n")


def flower_inner_dirichlet(labels, sizes, alpha, rng):
  """Flower's InnerDirichletPartitioner loop, step for step: one sample at a
  time, a client with room (a full one drawn is dropped from the candidates
  and the draw repeated), then a class from its Dirichlet prior (a used-up
  class is zeroed for every client, the priors renormalised, the draw
  repeated). Returns the per-client index lists. (The test of
  `fill="by_sample"` has its own copy, returning counts: a test does not
  import a benchmark, nor a benchmark a test.)"""
  num_classes = int(labels.max()) + 1
  priors = rng.dirichlet(np.full(num_classes, alpha), size=len(sizes))
  by_class = [np.flatnonzero(labels == k) for k in range(num_classes)]
  left_in_class = [len(indices) for indices in by_class]
  room = dict(enumerate(sizes))
  held: list[list[int]] = [[] for _ in sizes]
  candidates = list(range(len(sizes)))
  # As Flower: the room left summed over every client at every step.
  while np.sum(list(room.values())) != 0:
    client = rng.choice(candidates)
    if room[client] == 0:
      candidates.remove(client)
      continue
    room[client] -= 1
    while True:
      k = rng.choice(num_classes, p=priors[client])
      if left_in_class[k] == 0:
        priors[:, k] = 0
        priors = priors / priors.sum(axis=1, keepdims=True)
        continue
      left_in_class[k] -= 1
      held[client].append(by_class[k][left_in_class[k]])
      break
  return held


def compare_with_flower_inner_dirichlet(labels):
  print(f"## balanced_dirichlet(fill=by_sample) vs Flower's "
        f"InnerDirichletPartitioner loop: MNIST train labels "
        f"({labels.shape[0]:,}), equal sizes, alpha 0.5\n")
  print(f"Median of {_REPEATS.value} alternating repeats.\n")
  print("| clients | tff_niid (ms) | Flower's loop (ms) | speed-up |")
  print("|---:|---:|---:|---:|")
  for num_clients in (100, 1000):
    sizes = np.full(num_clients, labels.shape[0] // num_clients)
    sizes[:labels.shape[0] % num_clients] += 1
    ours, theirs = [], []
    for _ in range(_REPEATS.value):
      ours.append(_seconds(lambda: partition.balanced_dirichlet(
          labels, num_clients, alpha=0.5, fill="by_sample", seed=0)))
      theirs.append(_seconds(lambda: flower_inner_dirichlet(
          labels, sizes, 0.5, np.random.default_rng(0))))
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(f"| {num_clients:,} | {ours_s * 1e3:.1f} | {theirs_s * 1e3:,.0f} | "
          f"{theirs_s / ours_s:,.0f}x |", flush=True)
  print()


def compare_class_counts():
  print("## Many classes: the same samples and clients at 100 and 1,000 "
        "classes (synthetic labels)\n")
  print(f"Median of {_REPEATS.value} alternating repeats; peak allocation "
        "at 1,000 classes by tracemalloc (one more call).\n")
  print("| scheme | samples | clients | 100 classes (s) | 1,000 classes (s) "
        "| time ratio | peak at 1,000 (MiB) | one clients x classes float64 "
        "(MiB) |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|")
  mib = 2.0**20
  for what, num_samples, num_clients, make in _MANY_CLASSES:
    labels = {k: np.random.default_rng(0).integers(0, k, size=num_samples)
              for k in (100, 1000)}
    times: dict[int, list[float]] = {100: [], 1000: []}
    for _ in range(_REPEATS.value):
      for k in times:
        times[k].append(_seconds(lambda: make(labels[k], num_clients)))
    tracemalloc.start()
    make(labels[1000], num_clients)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    few, many = statistics.median(times[100]), statistics.median(times[1000])
    print(f"| {what} | {num_samples:,} | {num_clients:,} | {few:.2f} | "
          f"{many:.2f} | {many / few:.1f} | {peak / mib:,.0f} | "
          f"{num_clients * 1000 * 8 / mib:,.0f} |", flush=True)
  print()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  print(f"<!-- python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')} -->\n")
  if "niid_bench" in _PARTS.value:
    compare_with_niid_bench(datasets.load("mnist").train_labels)
  if "large" in _PARTS.value:
    compare_with_argsort(_LARGE_SAMPLES.value, _LARGE_CLIENTS.value)
  if "combined" in _PARTS.value:
    time_combined_schemes(datasets.load("mnist").train_labels)
  if "inner_dirichlet" in _PARTS.value:
    compare_with_flower_inner_dirichlet(datasets.load("mnist").train_labels)
  if "many_classes" in _PARTS.value:
    compare_class_counts()


if __name__ == "__main__":
  app.run(main)

"""Per-client test splits that follow each client's training label mix."""

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core
from tff_niid.partition import metrics


def match_test(partition, train_labels, test_labels, *, seed, size=None):
  """A test partition whose label proportions match each client's training mix.

  FederatedScope's "consistent label distribution" for personalised
  evaluation (Xie et al. 2023, "FederatedScope: A Flexible Federated Learning
  Platform for Heterogeneity"): client i gets round(size_i * p_i(c)) test
  samples of class c, where p_i is its training label distribution.

  Test samples are drawn without replacement within a client (with
  replacement only for a class the client needs more of than the test set
  has), independently across clients, so clients may share test samples: the
  result is marked `disjoint=False`.

  Args:
    partition: the training `Partition` (made from `train_labels`).
    train_labels, test_labels: 1-D integer label arrays.
    seed: non-negative integer seed.
    size: test samples per client; None -> n_i * len(test) / len(train),
      at least 1; an int -> that many for every client.

  Returns:
    A `Partition` over `test_labels` (scheme "match_test").
  """
  partition.check_labels(train_labels)
  test_labels, k_test = _checks.check_labels(test_labels, "test_labels")
  seed = _checks.check_seed(seed)
  num_classes = max(k_test, int(np.max(train_labels)) + 1)
  counts = metrics.label_counts(partition, train_labels, num_classes)
  sizes = counts.sum(axis=1)
  if size is None:
    target = np.maximum(
        np.rint(sizes * test_labels.shape[0] / partition.num_samples), 1)
  else:
    target = np.full(len(partition), _checks.check_positive(
        "size", size, integer=True))
  rng = np.random.default_rng(seed)
  # Exact per-client split of the target over classes, by cumulative rounding.
  bounds = np.rint(np.cumsum(counts, axis=1) *
                   (target / np.maximum(sizes, 1))[:, None]).astype(np.int64)
  want = np.diff(bounds, axis=1, prepend=0)
  order, starts = _allocate.class_sorted_indices(test_labels, num_classes)
  available = np.diff(starts)
  if np.any((want.sum(axis=0) > 0) & (available == 0)):
    missing = np.flatnonzero((want.sum(axis=0) > 0) & (available == 0))
    raise ValueError(f"test_labels has no samples of class(es) "
                     f"{missing.tolist()} that clients hold.")
  # Per class: one random permutation of its test samples; each client takes
  # a window of it at a random start (wrapping). A fixed window of a uniform
  # permutation is a uniform random subset, so every client gets a uniform
  # draw without replacement; only a window longer than the class repeats.
  flat_want = want.ravel()
  cell_start = np.concatenate([[0], np.cumsum(flat_want)])
  picks = np.empty(cell_start[-1], dtype=np.int64)
  for c in range(num_classes):
    clients = np.flatnonzero(want[:, c])
    if clients.size == 0:
      continue
    m = want[clients, c]
    perm = rng.permutation(available[c])
    within = np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m)
    start = np.repeat(rng.integers(0, available[c], size=clients.size), m)
    chosen = order[starts[c] + perm[(start + within) % available[c]]]
    picks[np.repeat(cell_start[clients * num_classes + c], m) + within] = chosen
  offsets = np.concatenate([[0], np.cumsum(want.sum(axis=1))])
  return core.make_partition(
      test_labels, picks, offsets, scheme="match_test",
      params={"train_scheme": partition.scheme, "size": size}, seed=seed,
      disjoint=False)

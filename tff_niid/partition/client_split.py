"""Each client's own train/test split, stratified by label, in random order.

Personalised federated learning evaluates each client on held-out samples
of its own data (e.g. Flower Datasets' `partition_division`, or Hugging
Face's `train_test_split` on one partition). `split_clients` does this for
every client at once, on the partition's indices, so the two halves stay
`Partition`s: saved, loaded and wrapped as ClientData like any other.
"""

from __future__ import annotations

import numbers

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core


def split_clients(partition: core.Partition, labels: np.ndarray, *,
                  test_fraction: float,
                  seed: int) -> tuple[core.Partition, core.Partition]:
  """Splits every client's samples into its own train and test part.

  Client i with n_i samples, n_ic of class c, gets t_i = floor(f n_i + 1/2)
  test samples (f = `test_fraction`), spread over its classes by cumulative
  rounding: its test count of class c is at most one from t_i n_ic / n_i and
  the counts sum to t_i, so each client's test label mix is its training mix
  (up to that rounding). Within a (client, class) the test samples are a
  uniformly random subset, drawn independently across clients and classes.
  Both parts list each client's samples in a uniformly random order (the
  label-skew schemes list them class by class).

  Args:
    partition: the partition to split (made from `labels`); not changed.
    labels: its 1-D integer labels (the partition's fingerprint must match).
    test_fraction: f, in (0, 1).
    seed: non-negative integer seed.

  Returns:
    (train, test): two `Partition`s over the same samples and clients, which
    together hold exactly the partition's samples. A client with n_i < 1/(2f)
    has no test samples, one with n_i <= 1/(2(1 - f)) no training samples.
    They keep the partition's client names, noisy labels and feature noise;
    their scheme is "split_clients", with the partition's scheme, spec and
    seed in `params`.

  Raises:
    ValueError: labels from another dataset, a fraction outside (0, 1) or a
      bad seed.
  """
  partition.check_labels(labels)
  labels, num_classes = _checks.check_labels(labels)
  if (isinstance(test_fraction, bool) or
      not isinstance(test_fraction, numbers.Real) or
      not 0 < test_fraction < 1):
    raise ValueError(f"`test_fraction` must be a number strictly between 0 "
                     f"and 1; got {test_fraction!r}.")
  seed = _checks.check_seed(seed)
  rng = np.random.default_rng(seed)
  client = partition.client_of_position()
  label = labels[partition.indices]
  cell = client * num_classes + label
  counts = np.bincount(cell, minlength=len(partition) * num_classes).reshape(
      len(partition), num_classes)
  sizes = counts.sum(axis=1)
  target = np.floor(test_fraction * sizes + 0.5)
  # Cumulative rounding over the classes: exact t_i, each class within one.
  bounds = np.rint(np.cumsum(counts, axis=1) *
                   (target / np.maximum(sizes, 1))[:, None]).astype(np.int64)
  test_counts = np.diff(bounds, axis=1, prepend=0).ravel()
  # A uniformly random subset per cell: its first samples in random order.
  by_cell = _allocate.shuffled_groups(rng, (client, len(partition)),
                                      (label, num_classes))
  cell_starts = np.cumsum(counts.ravel()) - counts.ravel()
  rank = np.arange(cell.shape[0]) - cell_starts[cell[by_cell]]
  is_test = np.empty(cell.shape[0], dtype=bool)
  is_test[by_cell] = rank < test_counts[cell[by_cell]]
  # Each client's samples in random order (drawn apart from the above).
  by_client = _allocate.shuffled_groups(rng, (client, len(partition)))
  extra = dict(client_names=partition.client_names,
               noisy_labels=partition.noisy_labels,
               feature_noise=partition.feature_noise,
               feature_noise_redraw=partition.feature_noise_redraw)
  parts = []
  for name, chosen in (("train", ~is_test), ("test", is_test)):
    positions = by_client[chosen[by_client]]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(
        client[positions], minlength=len(partition)))])
    parts.append(core.make_partition(
        labels, partition.indices[positions], offsets, scheme="split_clients",
        params={"part": name, "test_fraction": float(test_fraction),
                "scheme": partition.scheme, "spec": partition.spec,
                "seed": partition.seed},
        seed=seed, min_size=0, disjoint=partition.disjoint, **extra))
  return parts[0], parts[1]

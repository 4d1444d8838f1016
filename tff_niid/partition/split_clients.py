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
  test samples (f = `test_fraction`), spread over its classes by systematic
  sampling with a random start: its test count of class c is floor or ceil
  of t_i n_ic / n_i, equal to it in expectation, and the counts sum to t_i,
  so each client's test label mix is its training mix up to rounding, and
  no class gains from the rounding over the clients. Within a (client,
  class) the test samples are a uniformly random subset, drawn
  independently across clients and classes.
  Both parts list each client's samples in a uniformly random order (the
  label-skew schemes list them class by class).

  Args:
    partition: the partition to split (made from `labels`); not changed. A
      client may not hold a sample twice (`match_test` can give it one
      twice), which could then land on both sides.
    labels: its 1-D integer labels (the partition's fingerprint must match).
    test_fraction: f, in (0, 1).
    seed: non-negative integer seed.

  Returns:
    (train, test): two `Partition`s over the same samples and clients, which
    together hold exactly the partition's samples. A client with n_i < 1/(2f)
    has no test samples, one with n_i <= 1/(2(1 - f)) no training samples.
    They keep the partition's client names, noisy labels, feature noise and
    rotations; their scheme is "split_clients", with the partition's scheme,
    params, spec and seed in `params`.

  Raises:
    ValueError: labels from another dataset, a client holding a sample
      twice, a fraction outside (0, 1) or a bad seed.
  """
  partition.check_labels(labels)
  labels, num_classes = _checks.check_labels(labels)
  if (isinstance(test_fraction, bool) or
      not isinstance(test_fraction, numbers.Real) or
      not 0 < test_fraction < 1):
    raise ValueError(f"`test_fraction` must be a number strictly between 0 "
                     f"and 1; got {test_fraction!r}.")
  fraction = float(test_fraction)
  seed = _checks.check_seed(seed)
  rng = np.random.default_rng(seed)
  client = partition.client_of_position()
  if not partition.disjoint:
    held = client * partition.num_samples + partition.indices
    if np.unique(held).shape[0] < held.shape[0]:
      raise ValueError(
          "a client holds a sample twice (e.g. match_test's draw with "
          "replacement), which could land in both its train and test part; "
          "split a partition whose clients hold distinct samples.")
  label = labels[partition.indices]
  cell = client * num_classes + label
  counts = np.bincount(cell, minlength=len(partition) * num_classes).reshape(
      len(partition), num_classes)
  sizes = counts.sum(axis=1)
  target = np.floor(fraction * sizes + 0.5).astype(np.int64)
  # Systematic sampling over the classes, in integers: class c gets
  # floor((S_c t_i + U_i) / n_i) - floor((S_{c-1} t_i + U_i) / n_i), with
  # S_c the cumulative counts and U_i uniform on 0..n_i-1: t_i in all, and
  # t_i n_ic / n_i in expectation.
  start = rng.integers(0, np.maximum(sizes, 1))
  bounds = ((np.cumsum(counts, axis=1) * target[:, None] + start[:, None]) //
            np.maximum(sizes, 1)[:, None])
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
               feature_noise_redraw=partition.feature_noise_redraw,
               rotation=partition.rotation)
  parts = []
  for name, chosen in (("train", ~is_test), ("test", is_test)):
    positions = by_client[chosen[by_client]]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(
        client[positions], minlength=len(partition)))])
    parts.append(core.make_partition(
        labels, partition.indices[positions], offsets, scheme="split_clients",
        params={"part": name, "test_fraction": fraction,
                "scheme": partition.scheme, "params": partition.params,
                "spec": partition.spec, "seed": partition.seed},
        seed=seed, min_size=0, disjoint=partition.disjoint, **extra))
  return parts[0], parts[1]

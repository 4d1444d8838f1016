"""consecutive_classes: FedProx's MNIST, Flower's DistributionPartitioner."""

import numpy as np
import pytest
from scipy import stats

from partition_contract import assert_exact_cover
from tff_niid import partition


@pytest.mark.parametrize("num_clients,k", [(1000, 2), (20, 3), (37, 2),
                                           (9, 2), (10, 10)])
def test_client_i_holds_classes_i_to_i_plus_k(labels, num_clients, k):
  part = partition.consecutive_classes(labels, num_clients,
                                       classes_per_client=k, seed=0)
  assert_exact_cover(part, 60000)
  counts = partition.metrics.label_counts(part, labels)
  for i, row in enumerate(counts):
    held = sorted((i + j) % 10 for j in range(k))
    assert np.flatnonzero(row).tolist() == held
    assert (row[held] >= 5).all()


def test_sigma_zero_gives_equal_pieces_and_the_leftover_to_any_holder(labels):
  receivers = set()
  for seed in range(100):
    counts = partition.metrics.label_counts(partition.consecutive_classes(
        labels, 20, classes_per_client=2, sigma=0, seed=seed), labels)
    pieces = counts[:, 0][counts[:, 0] > 0]  # class 0: 4 holders
    base = 5 + (5923 - 5 * 4) // 4
    assert sorted(pieces.tolist()) == [base] * 3 + [5923 - 3 * base]
    receivers.add(int(np.argmax(pieces)))
  assert receivers == {0, 1, 2, 3}


def test_a_large_sigma_gives_each_class_to_one_piece(labels):
  # Weights exp(sigma * z) would overflow to inf / inf from sigma ~ 250.
  counts = partition.metrics.label_counts(partition.consecutive_classes(
      labels, 20, sigma=1000.0, seed=0), labels)
  for c in range(10):
    pieces = np.sort(counts[:, c][counts[:, c] > 0])
    assert pieces[:-1].tolist() == [5, 5, 5]
    assert pieces[-1] == (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                          5851, 5949)[c] - 15


def flower_distribution(labels, distribution, num_partitions, k,
                        preassigned, rng):
  """Flower Datasets' DistributionPartitioner (0.5, `rescale=True`), as its
  `_determine_partition_id_to_indices_if_needed` loop does it, on an array
  of labels; `rng` is its generator. Returns {partition id: indices}."""
  unique_labels = sorted(set(labels.tolist()))
  num_columns = int(k * num_partitions / len(unique_labels))
  distribution = distribution / np.sum(distribution, axis=-1, keepdims=True)
  label_distribution = np.array(
      [np.sum(labels == label) for label in unique_labels], dtype=float)
  label_distribution -= preassigned * num_columns
  matrix = np.floor(distribution * label_distribution[:, np.newaxis]).astype(
      int) + preassigned
  split_indices = {}
  for label in unique_labels:
    split = np.split(np.where(labels == label)[0], np.cumsum(matrix[label]))
    if len(split) > num_columns:
      last = split.pop()
      random_index = rng.integers(0, num_columns)
      split[random_index] = np.append(split[random_index], last)
    split_indices[label] = split
  tracker = {label: 0 for label in unique_labels}
  to_indices: dict[int, list[int]] = {p: [] for p in range(num_partitions)}
  for partition_id in range(num_partitions):
    for label in np.roll(unique_labels, -partition_id)[:k]:
      to_indices[partition_id].extend(split_indices[label][tracker[label]])
      tracker[label] += 1
  return to_indices


def _summary(counts):
  """Client 0's size and its top class's share, the largest and smallest
  client, class 0's largest piece."""
  sizes = counts.sum(axis=1)
  return (sizes[0], counts[0].max() / sizes[0], sizes.max(), sizes.min(),
          counts[:, 0].max())


def _flower_summary(labels, num_clients, k, sigma, seed):
  rng = np.random.default_rng(10_000 + seed)
  distribution = rng.lognormal(0.0, sigma, (10, k * num_clients // 10))
  parts = flower_distribution(labels, distribution, num_clients, k, 5, rng)
  return _summary(np.array([np.bincount(labels[np.array(v, dtype=np.int64)],
                                        minlength=10)
                            for v in parts.values()]))


def _our_summary(labels, num_clients, k, sigma, seed):
  return _summary(partition.metrics.label_counts(
      partition.consecutive_classes(labels, num_clients, classes_per_client=k,
                                    sigma=sigma, seed=seed), labels))


# Measured KS p-values vs Flower's loop (300 seeds each), for the five
# summaries: 20 clients k=2 sigma=2: 0.081, 0.85, 0.65, 0.081, 0.40; 30
# clients k=3 sigma=1: 0.46, 0.94, 0.94, 0.15, 0.59. Half Flower's sigma,
# client 0's top-class share: 2e-19 and 3e-25.
@pytest.mark.parametrize("num_clients,k,sigma", [(20, 2, 2.0), (30, 3, 1.0)])
def test_is_flowers_distribution_partitioner_in_distribution(
    labels, num_clients, k, sigma):
  seeds = range(300)
  reference = np.array([_flower_summary(labels, num_clients, k, sigma, s)
                        for s in seeds])
  ours = np.array([_our_summary(labels, num_clients, k, sigma, s)
                   for s in seeds])
  for column in range(reference.shape[1]):
    assert stats.ks_2samp(reference[:, column],
                          ours[:, column]).pvalue > 1e-3, column
  # Another sigma is another law, which the test sees.
  other = np.array([_our_summary(labels, num_clients, k, sigma / 2, s)
                    for s in seeds])
  assert stats.ks_2samp(reference[:, 1], other[:, 1]).pvalue < 1e-6


@pytest.mark.parametrize("kwargs,message", [
    (dict(num_clients=8, classes_per_client=2), "use at least 9 clients"),
    (dict(num_clients=1000, min_per_class=30),
     "class 0 has 5923 samples, fewer than min_per_class=30 for each of its "
     "200 holders"),
    (dict(num_clients=10, min_per_class=0), "min_per_class"),
    (dict(num_clients=10, min_per_class=10**30), "exceeds the 60000 samples"),
    (dict(num_clients=10, sigma=-1.0), "sigma"),
    (dict(num_clients=10, classes_per_client=11), "classes_per_client"),
])
def test_bad_input(labels, kwargs, message):
  with pytest.raises(ValueError, match=message):
    partition.consecutive_classes(labels, seed=0, **kwargs)

"""shards: McMahan et al. pathological non-IID."""

import numpy as np
import pytest
from scipy import stats

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from partition_contract import within_class_std_ratio
from tff_niid import partition
from tff_niid.partition import spec


def test_mcmahan_setting(labels):
  part = partition.shards(labels, 100, shards_per_client=2, seed=0)
  assert_exact_cover(part, 60000)
  assert (part.sizes == 600).all()  # 2 shards of 300
  classes = (partition.metrics.label_counts(part, labels) > 0).sum(1)
  assert classes.max() <= 4 and np.median(classes) == 2


@pytest.mark.parametrize("num_clients,spc", [(1, 1), (7, 3), (1000, 2),
                                             (10000, 5)])
def test_sweep(balanced_labels, num_clients, spc):
  part = partition.shards(balanced_labels, num_clients,
                          shards_per_client=spc, seed=1)
  assert_exact_cover(part, 60000)
  shard = 60000 / (num_clients * spc)
  assert part.sizes.min() >= spc * np.floor(shard)
  assert part.sizes.max() <= spc * np.ceil(shard)


def test_seeded_and_bad_input(labels):
  assert_seeded(lambda s: partition.shards(labels, 50, seed=s))
  with pytest.raises(ValueError, match="shards"):
    partition.shards(labels, 60000, shards_per_client=2, seed=0)
  with pytest.raises(ValueError, match="shards_per_client"):
    partition.shards(labels, 10, shards_per_client=0, seed=0)


def test_key_makes_shards_style_ranges(labels, key):
  keyed = partition.shards(labels, 100, seed=0, key=key)
  plain = partition.shards(labels, 100, seed=0)
  assert (within_class_std_ratio(keyed, labels, key) <
          0.5 * within_class_std_ratio(plain, labels, key))


def lognormal_sizes(num_clients, sigma, seed=0, min_size=2):
  return partition.quantity_sizes(60000, num_clients, sigma=sigma,
                                  min_size=min_size,
                                  rng=np.random.default_rng(seed))


@pytest.mark.parametrize("num_clients,spc,sigma", [
    (100, 2, 1.0), (1000, 2, 2.0), (37, 3, 0.5), (10000, 1, 1.0)])
def test_given_sizes(labels, num_clients, spc, sigma):
  sizes = lognormal_sizes(num_clients, sigma, min_size=spc)
  part = partition.shards(labels, num_clients, shards_per_client=spc,
                          sizes=sizes, seed=0)
  assert_exact_cover(part, 60000)
  assert np.array_equal(part.sizes, sizes)
  assert part.params["sizes"] == list(sizes)
  assert partition.shards(labels, num_clients, shards_per_client=spc,
                          sizes=part.params["sizes"], seed=0) == part
  classes = (partition.metrics.label_counts(part, labels) > 0).sum(1)
  # Shards are runs of the label-sorted samples: each of the 9 class
  # boundaries adds a class to at most one shard, a shard larger than a
  # class (~6,000) may span more.
  small = np.flatnonzero(sizes < 6000 * spc)
  assert classes[small].sum() <= small.shape[0] * spc + 9


def test_given_lognormal_sizes(labels):
  # As FedProx (Li et al. 2020) MNIST: 1,000 devices, lognormal sizes.
  part = spec.resolve("shards(per_client=2)+quantity(sigma=2, min_size=2)",
                      labels, 1000, seed=0)
  assert_exact_cover(part, 60000)
  assert part.spec == ("shards(shards_per_client=2)"
                       "+quantity(min_size=2, sigma=2)")
  classes = (partition.metrics.label_counts(part, labels) > 0).sum(1)
  assert np.median(classes) == 2 and classes.max() <= 4
  assert partition.metrics.summary(part, labels)["size_gini"] > 0.6


def test_given_sizes_seeded_keyed_and_checked(labels, key):
  sizes = lognormal_sizes(50, 1.0)
  assert_seeded(lambda s: partition.shards(labels, 50, sizes=sizes, seed=s))
  keyed = partition.shards(labels, 50, sizes=sizes, seed=0, key=key)
  plain = partition.shards(labels, 50, sizes=sizes, seed=0)
  assert np.array_equal(partition.metrics.label_counts(keyed, labels),
                        partition.metrics.label_counts(plain, labels))
  assert (within_class_std_ratio(keyed, labels, key) <
          0.5 * within_class_std_ratio(plain, labels, key))
  for bad, message in (
      (sizes[:-1], "`sizes` must be 50 integers summing to 60000"),
      (sizes * 2, "sum 120000"), (sizes.astype(float), "dtype float64"),
      (np.r_[1, sizes[1:-1], sizes[-1] + sizes[0] - 1],
       r"`sizes` must be >= 2 \(each of a client's 2 shards holds a "
       r"sample\); client 0 has 1.")):
    with pytest.raises(ValueError, match=message):
      partition.shards(labels, 50, sizes=bad, seed=0)


def flower_shards(labels, num_partitions, shards_per_partition, rng):
  """Flower Datasets' ShardPartitioner(num_partitions, partition_by="label",
  num_shards_per_partition=k) with its defaults (no shard_size,
  keep_incomplete_shard=False): a plain re-implementation of its loop on
  the dataset in its given order (flwr-datasets 0.6, shard_partitioner.py)."""
  order = np.argsort(labels, kind="stable")  # its dataset.sort(label)
  num_shards = num_partitions * shards_per_partition
  shard_size = int(len(labels) / num_shards)
  usable = len(labels) // shard_size
  shard_ids = rng.permutation(usable)[:num_shards]
  per_partition = np.split(
      shard_ids, np.cumsum(np.full(num_partitions, shards_per_partition)))[:-1]
  parts = []
  for shards_of_partition in per_partition:
    positions: list[int] = []
    for shard in shards_of_partition:
      positions.extend(range(int(shard * shard_size),
                             min(int((shard + 1) * shard_size), len(labels))))
    parts.append(order[positions])
  return parts


def _summary(counts):
  """Single-class clients, the most classes of a client, client 0's
  classes and its top class's share, class 0's holders."""
  held = (counts > 0).sum(axis=1)
  return ((held == 1).sum(), held.max(), held[0],
          counts[0].max() / counts[0].sum(), (counts[:, 0] > 0).sum())


# Measured KS p-values vs Flower's loop (300 seeds each), for the five
# summaries: 0.97, 0.85, 1.0, 0.99, 1.0; #C=2's most classes: 1e-179.
def test_is_flowers_shard_partitioner_in_distribution(labels):
  # McMahan's setting, where 100 x 2 shards divide the 60,000 samples (300
  # each): otherwise Flower leaves the remainder out and we do not.
  seeds = range(300)
  reference = np.array([
      _summary(np.array([np.bincount(labels[p], minlength=10) for p in
                         flower_shards(labels, 100, 2,
                                       np.random.default_rng(10_000 + s))]))
      for s in seeds])
  ours = np.array([_summary(partition.metrics.label_counts(
      partition.shards(labels, 100, shards_per_client=2, seed=s), labels))
                   for s in seeds])
  for column in range(reference.shape[1]):
    assert stats.ks_2samp(reference[:, column],
                          ours[:, column]).pvalue > 1e-3, column
  # Two classes to every client is another law, which the test sees.
  other = np.array([_summary(partition.metrics.label_counts(
      partition.label_quantity(labels, 100, classes_per_client=2, seed=s),
      labels)) for s in seeds])
  assert stats.ks_2samp(reference[:, 1], other[:, 1]).pvalue < 1e-6

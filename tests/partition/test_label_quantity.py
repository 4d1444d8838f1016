"""label_quantity: NIID-Bench #C=k, and Flower's PathologicalPartitioner."""

import warnings

import numpy as np
import pytest
from scipy import stats

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from tff_niid import partition
from tff_niid.partition import spec


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("num_clients", [10, 37, 100, 1000])
def test_exactly_k_classes(labels, k, num_clients):
  part = partition.label_quantity(labels, num_clients,
                                  classes_per_client=k, seed=0)
  assert_exact_cover(part, 60000)
  counts = partition.metrics.label_counts(part, labels)
  assert ((counts > 0).sum(axis=1) == k).all()
  # Each class split evenly (+-1) among its holders.
  for c in range(10):
    held = counts[:, c][counts[:, c] > 0]
    assert held.max() - held.min() <= 1


def test_fewer_clients_than_classes(balanced_labels):
  part = partition.label_quantity(balanced_labels, 4,
                                  classes_per_client=3, seed=0)
  assert_exact_cover(part, 60000)
  # 5 clients x 2 classes hold the 10 labels once each: which client holds
  # which labels is the seed's (it was the same for every seed).
  held = [frozenset(map(frozenset, (np.flatnonzero(row) for row in (
      partition.metrics.label_counts(partition.label_quantity(
          balanced_labels, 5, classes_per_client=2, seed=s),
          balanced_labels) > 0)))) for s in range(5)]
  assert len(set(held)) > 1
  with pytest.raises(ValueError, match="cannot cover"):
    partition.label_quantity(balanced_labels, 4,
                             classes_per_client=2, seed=0)


def test_niid_bench_first_label_rule(labels):
  part = partition.label_quantity(labels, 20, classes_per_client=2,
                                  seed=3)
  counts = partition.metrics.label_counts(part, labels)
  assert all(counts[i, i % 10] > 0 for i in range(20))


def test_seeded_and_bad_input(labels):
  assert_seeded(lambda s: partition.label_quantity(
      labels, 30, classes_per_client=2, seed=s))
  for k in (0, 11, 1.5):
    with pytest.raises(ValueError, match="classes_per_client"):
      # The ignore: a float among the refused values, on purpose.
      partition.label_quantity(
          labels, 10, classes_per_client=k,  # type: ignore[arg-type]
          seed=0)
  with pytest.raises(ValueError, match="fewer samples"):
    partition.label_quantity(np.repeat(np.arange(10), 3), 30,
                             classes_per_client=10, seed=0)


# 6,000 labels, 600 per class, in random order.
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 600))


def niid_bench_label_k(y_train, n_parties, num, rng):
  """NIID-Bench utils.py `partition_data`, `noniid-#label<num>` (num < K),
  line by line; `rng.integers(0, K)` stands for `random.randint(0, K-1)` and
  `rng` for its global `np.random`. Returns {client: indices}."""
  K = 10  # pylint: disable=invalid-name
  times = [0 for i in range(K)]
  contain = []
  for i in range(n_parties):
    current = [i % K]
    times[i % K] += 1
    j = 1
    while j < num:
      ind = int(rng.integers(0, K))
      if ind not in current:
        j = j + 1
        current.append(ind)
        times[ind] += 1
    contain.append(current)
  net_dataidx_map = {i: np.ndarray(0, dtype=np.int64)
                     for i in range(n_parties)}
  for i in range(K):
    idx_k = np.where(y_train == i)[0]
    rng.shuffle(idx_k)
    split = np.array_split(idx_k, times[i])
    ids = 0
    for j in range(n_parties):
      if i in contain[j]:
        net_dataidx_map[j] = np.append(net_dataidx_map[j], split[ids])
        ids += 1
  return net_dataidx_map


def _summary(counts):
  sizes, holders = counts.sum(axis=1), (counts > 0).sum(axis=0)
  return sizes.max(), sizes.min(), holders.max(), holders[0]


# Measured KS p-values vs the reference (300 seeds each), largest client,
# smallest client, most holders of a label, holders of label 0:
# 20 clients k=2: 0.99, 0.79, 1, 1; 10 clients k=3: 0.9, 0.18, 1, 1.
@pytest.mark.parametrize("num_clients,k", [(20, 2), (10, 3)])
def test_matches_niid_bench_in_distribution(num_clients, k):
  # With num_clients >= K, client i holds label i mod K plus k-1 uniformly
  # random others and each label is split by np.array_split among its
  # holders in client order: the same law as NIID-Bench, no preset needed.
  seeds = range(300)
  reference = np.array([_summary(np.array([
      np.bincount(LABELS[v], minlength=10) for v in niid_bench_label_k(
          LABELS, num_clients, k, np.random.default_rng(10_000 + s)).values()
  ])) for s in seeds])
  ours = np.array([_summary(partition.metrics.label_counts(
      partition.label_quantity(LABELS, num_clients, classes_per_client=k,
                               seed=s), LABELS)) for s in seeds])
  for column in range(reference.shape[1]):
    assert stats.ks_2samp(reference[:, column],
                          ours[:, column]).pvalue > 1e-3, column


def flower_pathological(labels, num_partitions, num_classes_per_partition,
                        class_assignment_mode, rng):
  """Flower Datasets' PathologicalPartitioner (flwr-datasets 0.5 and 0.6,
  `_determine_partition_id_to_unique_labels` and
  `_determine_partition_id_to_indices_if_needed`, "random" and
  "deterministic" modes), line by line; `labels` stands for its dataset
  column and `rng` for its generator. Returns {partition: indices}."""
  unique_labels = sorted(np.unique(labels).tolist())
  to_labels = {}
  for partition_id in range(num_partitions):
    if class_assignment_mode == "deterministic":
      to_labels[partition_id] = [
          unique_labels[(partition_id + i) % len(unique_labels)]
          for i in range(num_classes_per_partition)]
    else:
      to_labels[partition_id] = rng.choice(
          unique_labels, size=num_classes_per_partition,
          replace=False).tolist()
  times_used = {label: 0 for label in unique_labels}
  for held in to_labels.values():
    for label in held:
      times_used[label] += 1
  to_indices: dict[int, list[int]] = {
      partition_id: [] for partition_id in range(num_partitions)}
  for label in unique_labels:
    if times_used[label] == 0:
      continue  # Flower warns that the label is not used
    split = np.array_split(np.where(labels == label)[0], times_used[label])
    split_index = 0
    for partition_id in range(num_partitions):
      if label in to_labels[partition_id]:
        to_indices[partition_id].extend(split[split_index])
        split_index += 1
  return to_indices


def _flower_counts(num_clients, k, mode, seed):
  return np.array([np.bincount(LABELS[np.array(v, dtype=np.int64)],
                               minlength=10)
                   for v in flower_pathological(
                       LABELS, num_clients, k, mode,
                       np.random.default_rng(10_000 + seed)).values()])


def _our_counts(num_clients, k, mode, seed):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a label no client holds
    return partition.metrics.label_counts(partition.label_quantity(
        LABELS, num_clients, classes_per_client=k, seed=seed,
        class_assignment=mode), LABELS)


# Measured KS p-values vs Flower's loop (300 seeds each), largest client,
# smallest client, most holders of a label, holders of label 0, samples
# assigned: 10 clients k=2: 0.72, 1, 1, 1, 1; 30 clients k=3: 0.12, 0.999,
# 0.9, 0.996, 1. The default (NIID-Bench's rule) on the smallest client:
# 4e-21 and 3e-8.
@pytest.mark.parametrize("num_clients,k", [(10, 2), (30, 3)])
def test_random_assignment_is_flowers_in_distribution(num_clients, k):
  seeds = range(300)
  reference = np.array([(*_summary(c), c.sum()) for c in (
      _flower_counts(num_clients, k, "random", s) for s in seeds)])
  ours = np.array([(*_summary(c), c.sum()) for c in (
      _our_counts(num_clients, k, "random", s) for s in seeds)])
  for column in range(reference.shape[1]):
    assert stats.ks_2samp(reference[:, column],
                          ours[:, column]).pvalue > 1e-3, column
  # NIID-Bench's rule (the default) is another law, which the test sees.
  default = np.array([_summary(_our_counts(num_clients, k,
                                           "first_deterministic", s))
                      for s in seeds])
  assert stats.ks_2samp(reference[:, 1], default[:, 1]).pvalue < 1e-6


@pytest.mark.parametrize("num_clients,k", [(10, 2), (7, 3), (25, 4), (3, 2)])
def test_deterministic_assignment_is_flowers(num_clients, k):
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ours = _our_counts(num_clients, k, "deterministic", 0)
    partition.label_quantity(LABELS, num_clients, classes_per_client=k,
                             seed=0, class_assignment="deterministic")
  assert np.array_equal(ours, _flower_counts(num_clients, k,
                                             "deterministic", 0))
  # 3 clients x 2 labels hold 4 of 10: the rest is left out, and said.
  unheld = np.flatnonzero(ours.sum(axis=0) == 0).tolist()
  assert bool(caught) == bool(unheld)
  if unheld:
    assert str(caught[0].message) == (
        f"label_quantity(class_assignment=deterministic): no client holds "
        f"label(s) {', '.join(map(str, unheld))}; their "
        f"{600 * len(unheld)} samples are left unassigned (as Flower's "
        "PathologicalPartitioner leaves them out).")


def test_unheld_label_warning_points_at_the_callers_line():
  # Direct or through the spec grammar, the warning names this file.
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    partition.label_quantity(LABELS, 3, classes_per_client=2, seed=0,
                             class_assignment="deterministic")
    partition.spec.resolve(
        "label_quantity(classes_per_client=2,class_assignment=deterministic)",
        LABELS, 3, seed=0)
  assert [w.filename for w in caught] == [__file__, __file__]


def test_class_assignment_bad_input(labels):
  with pytest.raises(ValueError, match="class_assignment"):
    partition.label_quantity(labels, 10, classes_per_client=2, seed=0,
                             class_assignment="first-deterministic")
  with pytest.raises(ValueError, match="takes no sizes"):
    partition.label_quantity(labels, 10, classes_per_client=2, seed=0,
                             class_assignment="random",
                             sizes=np.full(10, 6000))


def test_split_is_niid_bench_array_split():
  counts = partition.metrics.label_counts(partition.label_quantity(
      LABELS[:5993], 23, classes_per_client=3, seed=1), LABELS[:5993])
  for c in range(10):
    held = counts[:, c][counts[:, c] > 0]  # holders in client order
    expected = [len(a) for a in np.array_split(np.arange(counts[:, c].sum()),
                                               held.shape[0])]
    assert held.tolist() == expected


def lognormal_sizes(num_clients, sigma, min_size=2):
  return partition.quantity_sizes(60000, num_clients, sigma=sigma,
                                  min_size=min_size,
                                  rng=np.random.default_rng(0))


@pytest.mark.parametrize("num_clients,k,sigma", [
    (100, 2, 1.0), (1000, 2, 2.0), (37, 3, 0.5), (10000, 2, 1.0)])
def test_given_sizes_are_met_where_the_classes_allow(labels,
                                                     num_clients, k, sigma):
  sizes = lognormal_sizes(num_clients, sigma, min_size=k)
  part = partition.label_quantity(labels, num_clients,
                                  classes_per_client=k, sizes=sizes, seed=0)
  assert_exact_cover(part, 60000)
  assert np.abs(part.sizes - sizes).max() <= k
  counts = partition.metrics.label_counts(part, labels)
  assert ((counts > 0).sum(axis=1) == k).all()
  # The sizes asked for are recorded (not the ones met): drawn again from
  # them, the same partition.
  assert part.params["sizes"] == list(sizes)
  assert partition.label_quantity(labels, num_clients, classes_per_client=k,
                                  sizes=part.params["sizes"], seed=0) == part


def test_given_sizes_the_classes_cannot_hold(labels):
  # 100 clients, sigma 2: a client drawn at 5,842 shares its 2 classes with
  # ~19 holders each; no partition with these sizes exists (linear program),
  # yet every client keeps exactly 2 classes and every sample is assigned.
  sizes = lognormal_sizes(100, 2.0)
  part = partition.label_quantity(labels, 100, classes_per_client=2,
                                  sizes=sizes, seed=0)
  assert_exact_cover(part, 60000)
  counts = partition.metrics.label_counts(part, labels)
  assert ((counts > 0).sum(axis=1) == 2).all()
  assert np.corrcoef(part.sizes, sizes)[0, 1] > 0.9


def test_lognormal_sizes_spec(labels):
  # As FedProx (Li et al. 2020) MNIST: 1,000 devices, 2 digits each,
  # lognormal (sigma 2) sizes; its own partition is consecutive_classes.
  text = "classes(k=2)+quantity(sigma=2, min_size=2)"
  part = spec.resolve(text, labels, 1000, seed=0)
  assert part.spec == ("label_quantity(classes_per_client=2)"
                       "+quantity(min_size=2, sigma=2)")
  assert_exact_cover(part, 60000)
  counts = partition.metrics.label_counts(part, labels)
  assert ((counts > 0).sum(axis=1) == 2).all()
  assert partition.metrics.summary(part, labels)["size_gini"] > 0.6
  assert_seeded(lambda s: spec.resolve(text, labels, 1000, seed=s))


def test_given_sizes_bad_input(labels):
  sizes = lognormal_sizes(30, 1.0, min_size=3)
  for bad, message in (
      (sizes[:-1], "`sizes` must be 30 integers summing to 60000"),
      # Strings have no sum to name (the message once failed computing it).
      (np.array(["big"] * 30),
       r"30 integers summing to 60000 \(one size per client\); got shape "
       r"\(30,\), dtype <U3\.$"),
      (np.r_[2, sizes[1:-1], sizes[-1] + sizes[0] - 2],
       r"`sizes` must be >= 3 \(a client holds >= 1 sample of each of its 3 "
       r"classes\); client 0 has 2.")):
    with pytest.raises(ValueError, match=message):
      partition.label_quantity(labels, 30, classes_per_client=3,
                               sizes=bad, seed=0)

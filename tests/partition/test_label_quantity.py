"""label_quantity: NIID-Bench #C=k."""

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_rejects_bad_labels
from partition_contract import assert_rejects_bad_num_clients
from partition_contract import assert_seeded
from tff_niid import partition


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("num_clients", [10, 37, 100, 1000])
def test_exactly_k_classes(mnist_labels, k, num_clients):
  part = partition.label_quantity(mnist_labels, num_clients,
                                  classes_per_client=k, seed=0)
  assert_exact_cover(part, 60000)
  counts = partition.metrics.label_counts(part, mnist_labels)
  assert ((counts > 0).sum(axis=1) == k).all()
  # Each class split evenly (+-1) among its holders.
  for c in range(10):
    held = counts[:, c][counts[:, c] > 0]
    assert held.max() - held.min() <= 1


def test_fewer_clients_than_classes(fashion_mnist):
  part = partition.label_quantity(fashion_mnist.train_labels, 4,
                                  classes_per_client=3, seed=0)
  assert_exact_cover(part, 60000)
  with pytest.raises(ValueError, match="cannot cover"):
    partition.label_quantity(fashion_mnist.train_labels, 4,
                             classes_per_client=2, seed=0)


def test_niid_bench_first_label_rule(mnist_labels):
  part = partition.label_quantity(mnist_labels, 20, classes_per_client=2,
                                  seed=3)
  counts = partition.metrics.label_counts(part, mnist_labels)
  assert all(counts[i, i % 10] > 0 for i in range(20))


def test_seeded_and_bad_input(mnist_labels):
  assert_seeded(lambda s: partition.label_quantity(
      mnist_labels, 30, classes_per_client=2, seed=s))
  assert_rejects_bad_labels(lambda y: partition.label_quantity(
      y, 1, classes_per_client=1, seed=0))
  assert_rejects_bad_num_clients(lambda y, n: partition.label_quantity(
      y, n, classes_per_client=1, seed=0), mnist_labels)
  for k in (0, 11, 1.5):
    with pytest.raises(ValueError, match="classes_per_client"):
      partition.label_quantity(mnist_labels, 10, classes_per_client=k, seed=0)
  with pytest.raises(ValueError, match="fewer samples"):
    partition.label_quantity(np.repeat(np.arange(10), 3), 30,
                             classes_per_client=10, seed=0)

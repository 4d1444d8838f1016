"""iid: uniform split, sizes within one."""

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from tff_niid import partition


@pytest.mark.parametrize("num_clients", [1, 7, 100, 10000, 60000])
def test_cover_and_sizes(labels, num_clients):
  part = partition.iid(labels, num_clients, seed=0)
  assert len(part) == num_clients
  assert_exact_cover(part, 60000)
  assert part.sizes.max() - part.sizes.min() <= 1


def test_label_mix_close_to_global(balanced_labels):
  part = partition.iid(balanced_labels, 10, seed=0)
  counts = partition.metrics.label_counts(part, balanced_labels)
  assert counts.min() > 500  # each client ~600 per class


def test_seeded(labels):
  assert_seeded(lambda s: partition.iid(labels, 10, seed=s))


def test_any_int_dtype(labels):
  a = partition.iid(labels.astype(np.uint8), 10, seed=0)
  b = partition.iid(labels.astype(np.int32), 10, seed=0)
  assert np.array_equal(a.indices, b.indices)

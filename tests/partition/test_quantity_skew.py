"""quantity_skew: unequal sizes, IID labels."""

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from tff_niid import partition


@pytest.mark.parametrize("kw", [dict(alpha=1e-3), dict(alpha=0.5),
                                dict(alpha=1e3), dict(sigma=0.1),
                                dict(sigma=2.0)])
@pytest.mark.parametrize("num_clients", [1, 100, 10000])
def test_sweep(mnist_labels, kw, num_clients):
  part = partition.quantity_skew(mnist_labels, num_clients, seed=0, **kw)
  assert_exact_cover(part, 60000)


def test_sizes_vary_labels_do_not(mnist_labels):
  part = partition.quantity_skew(mnist_labels, 100, sigma=1.5, min_size=50,
                                 seed=0)
  assert part.sizes.min() >= 50 and part.sizes.max() > 5 * part.sizes.min()
  summary = partition.metrics.summary(part, mnist_labels)
  assert summary["size_gini"] > 0.3
  big = np.argsort(part.sizes)[-10:]  # large clients: close to global mix
  assert partition.metrics.client_heterogeneity(
      part, mnist_labels)["js"][big].max() < 0.01


def test_seeded_and_bad_input(mnist_labels):
  assert_seeded(lambda s: partition.quantity_skew(mnist_labels, 30, sigma=1,
                                                  seed=s))
  with pytest.raises(ValueError, match="exactly one"):
    partition.quantity_skew(mnist_labels, 10, seed=0)
  with pytest.raises(ValueError, match="exactly one"):
    partition.quantity_skew(mnist_labels, 10, alpha=1, sigma=1, seed=0)
  with pytest.raises(ValueError, match="min_size"):
    partition.quantity_skew(mnist_labels, 100, sigma=1, min_size=601, seed=0)
  with pytest.raises(ValueError, match="sigma"):
    partition.quantity_skew(mnist_labels, 10, sigma=-1, seed=0)

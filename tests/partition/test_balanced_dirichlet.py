"""balanced_dirichlet: client-side Dirichlet mix with fixed sizes."""

import time

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_rejects_bad_labels
from partition_contract import assert_seeded
from tff_niid import partition
from tff_niid.partition.balanced_dirichlet import capped_split


@pytest.mark.parametrize("alpha", [1e-3, 0.1, 1.0, 1e3])
@pytest.mark.parametrize("num_clients", [1, 10, 1000, 10000])
def test_equal_sizes_sweep(labels, alpha, num_clients):
  part = partition.balanced_dirichlet(labels, num_clients, alpha=alpha,
                                      seed=0)
  assert_exact_cover(part, 60000)
  assert part.sizes.max() - part.sizes.min() <= 1
  assert part.params["sizes"] == "equal"


def test_given_sizes(balanced_labels):
  labels = balanced_labels
  sizes = partition.quantity_sizes(60000, 50, sigma=1.0,
                                   rng=np.random.default_rng(0))
  part = partition.balanced_dirichlet(labels, 50, alpha=0.3, sizes=sizes,
                                      seed=0)
  assert_exact_cover(part, 60000)
  assert np.array_equal(part.sizes, sizes)
  assert part.params["sizes"] == "given"
  with pytest.raises(ValueError, match="sizes"):
    partition.balanced_dirichlet(labels, 50, alpha=0.3, sizes=sizes[:-1],
                                 seed=0)


def test_skew_grows_as_alpha_shrinks(labels):
  js = [partition.metrics.summary(partition.balanced_dirichlet(
      labels, 100, alpha=a, seed=0), labels)["js_mean"]
        for a in (100.0, 1.0, 0.1)]
  assert js[0] < js[1] < js[2]


def test_capped_split_hand_cases():
  assert capped_split(10, [1, 1, 0], [3, 100, 100]).tolist() == [3, 7, 0]
  assert capped_split(10, [0, 0, 0], [5, 5, 5]).sum() == 10  # falls back
  assert capped_split(7, [1, 2, 4], [1, 1, 100]).tolist() == [1, 1, 5]
  x = capped_split(1000, np.random.default_rng(0).random(50),
                   np.full(50, 30))
  assert x.sum() == 1000 and x.max() <= 30


def test_seeded_and_bad_input(labels):
  assert_seeded(lambda s: partition.balanced_dirichlet(labels, 20,
                                                       alpha=0.5, seed=s))
  assert_rejects_bad_labels(lambda y: partition.balanced_dirichlet(
      y, 1, alpha=1, seed=0))
  with pytest.raises(ValueError, match="alpha"):
    partition.balanced_dirichlet(labels, 10, alpha=0, seed=0)


@pytest.mark.parametrize("num_clients,seed", [(2, 126), (3, 34), (5, 43)])
def test_tiny_alpha_regressions(labels, num_clients, seed):
  # These raised RecursionError: float rounding once gave a client one unit
  # over its cap, and the capacity left could no longer hold the classes.
  part = partition.balanced_dirichlet(labels, num_clients, alpha=1e-3,
                                      seed=seed)
  assert_exact_cover(part, 60000)
  assert part.sizes.max() - part.sizes.min() <= 1


@pytest.mark.parametrize("alpha", [1e-12, 1e-100, 1e-300])
def test_extremely_small_alpha_finishes(labels, alpha):
  # numpy's Dirichlet sampler ran for over 10 minutes at alpha <= 1e-12; the
  # log-space draw of `dirichlet` takes milliseconds.
  start = time.monotonic()
  part = partition.balanced_dirichlet(labels, 100, alpha=alpha, seed=0)
  assert time.monotonic() - start < 5
  assert_exact_cover(part, 60000)
  assert part.sizes.max() - part.sizes.min() <= 1
  # One-hot mixes, spread wherever a class outgrows its clients: most of a
  # client is one class (about 0.1 if IID).
  counts = partition.metrics.label_counts(part, labels)
  assert np.mean(counts.max(axis=1) / part.sizes) > 0.5


@pytest.mark.parametrize("alpha", [5e-324, 1e301])
def test_alpha_outside_float_range(labels, alpha):
  with pytest.raises(ValueError, match="`alpha` must be between 1e-300 and "
                     "1e[+]300; got .*: float64 Dirichlet draws overflow "
                     "outside it."):
    partition.balanced_dirichlet(labels, 10, alpha=alpha, seed=0)

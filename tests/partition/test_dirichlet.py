"""dirichlet: per-class Dir(alpha) label skew with a guaranteed min size."""

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from partition_contract import within_class_std_ratio
from tff_niid import partition


@pytest.mark.parametrize("alpha", [1e-3, 1e-2, 0.1, 1.0, 10.0, 1e3])
@pytest.mark.parametrize("num_clients", [1, 10, 100, 1000, 10000])
def test_cover_and_min_size_sweep(labels, alpha, num_clients):
  min_size = min(5, 60000 // num_clients)
  part = partition.dirichlet(labels, num_clients, alpha=alpha,
                             min_size=min_size, seed=0)
  assert len(part) == num_clients
  assert_exact_cover(part, 60000)
  assert part.sizes.min() >= min_size


def test_balanced_classes(balanced_labels):
  part = partition.dirichlet(balanced_labels, 100, alpha=0.1,
                             min_size=10, seed=4)
  assert_exact_cover(part, 60000)
  assert part.sizes.min() >= 10


def test_skew_grows_as_alpha_shrinks(labels):
  js = [partition.metrics.summary(
      partition.dirichlet(labels, 100, alpha=a, seed=0),
      labels)["js_mean"] for a in (100.0, 1.0, 0.1, 0.01)]
  assert all(x < y for x, y in zip(js, js[1:])), js
  assert js[0] < 0.01 and js[-1] > 0.6


def test_min_size_infeasible(labels):
  with pytest.raises(ValueError, match="min_size"):
    partition.dirichlet(labels, 10000, alpha=0.5, min_size=7, seed=0)
  with pytest.raises(ValueError, match="min_size"):
    partition.dirichlet(labels, 10, alpha=0.5, min_size=0, seed=0)


@pytest.mark.parametrize("alpha", [0, -1, float("nan"), float("inf"), "a"])
def test_bad_alpha(labels, alpha):
  with pytest.raises(ValueError, match="alpha"):
    partition.dirichlet(labels, 10, alpha=alpha, seed=0)


@pytest.mark.parametrize("alpha,message", [
    # 5e-324 tripped an internal assertion; 1e308 too (Gamma draws sum to inf).
    (5e-324, "`alpha` must be between 1e-300 and 1e+300; got 5e-324: float64 "
     "Dirichlet draws overflow outside it."),
    (1e308, "`alpha` must be between 1e-300 and 1e+300; got 1e+308: float64 "
     "Dirichlet draws overflow outside it."),
    # A 400-digit integer raised OverflowError.
    (10**400, "`alpha` is too large for a float; got 1000000000000000000000"
     "000000000000000000... (401 characters)."),
])
def test_alpha_outside_float_range(alpha, message):
  labels = np.arange(100) % 10
  with pytest.raises(ValueError) as e:
    partition.dirichlet(labels, 10, alpha=alpha, seed=0)
  assert str(e.value) == message


def test_bad_input(labels):
  with pytest.raises(ValueError, match="key"):
    partition.dirichlet(labels, 10, alpha=1, seed=0, key=np.zeros(5))
  with pytest.raises(ValueError, match="key_noise"):
    partition.dirichlet(labels, 10, alpha=1, seed=0,
                        key=np.zeros(60000), key_noise=2)


def test_seeded(labels):
  assert_seeded(lambda s: partition.dirichlet(labels, 50, alpha=0.3,
                                              seed=s))


def test_key_orders_clients_within_class(labels, key):
  make = lambda **kw: partition.dirichlet(labels, 50, alpha=1.0, seed=2, **kw)
  random_part, keyed = make(), make(key=key)
  half_noisy, full_noise = make(key=key, key_noise=0.5), make(key=key,
                                                              key_noise=1.0)
  # The key changes only who gets which sample of a class, not label counts.
  assert np.array_equal(
      partition.metrics.label_counts(random_part, labels),
      partition.metrics.label_counts(keyed, labels))
  ratios = [within_class_std_ratio(p, labels, key)
            for p in (keyed, half_noisy, full_noise, random_part)]
  assert ratios[0] < 0.3 and ratios[0] < ratios[1] < ratios[2]
  assert abs(ratios[2] - ratios[3]) < 0.05 and ratios[3] > 0.9
  assert partition.metrics.key_dispersion(keyed, labels, key) == pytest.approx(
      ratios[0], rel=1e-9)


def test_categorical_key(labels):
  region = np.array(["north", "south", "east"])[np.arange(60000) % 3]
  part = partition.dirichlet(labels, 30, alpha=10.0, seed=0, key=region)
  assert_exact_cover(part, 60000)
  # Sorted by region within class: most clients see a single region.
  single = sum(len(set(region[part[i]])) == 1 for i in range(30))
  assert single >= 15


@pytest.mark.parametrize("alpha", [1e-12, 1e-30, 1e-300])
def test_extremely_small_alpha_finishes(labels, alpha):
  # numpy's Dirichlet sampler stalls below ~1e-11; the log-space draw does not.
  part = partition.dirichlet(labels, 10, alpha=alpha, seed=0)
  assert_exact_cover(part, 60000)
  # Each class goes (almost) entirely to one client.
  counts = partition.metrics.label_counts(part, labels)
  assert (counts.max(axis=0) >= 0.99 * counts.sum(axis=0)).all()

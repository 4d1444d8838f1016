"""dirichlet: per-class Dir(alpha) label skew with a guaranteed min size."""

import hashlib

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from partition_contract import within_class_std_ratio
from tff_niid import partition
from tff_niid.partition.dirichlet import dirichlet_rows


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


# sha256 (first 16 hex digits) of seeds 0-2's (indices, offsets) over 6,000
# shuffled labels of 10 classes, 20 clients; computed with numpy 2.4.6 and
# checked in both venvs (numpy 1.25.2 too). Before the Gamma draw below
# alpha 0.1, dirichlet(alpha=0.001) gave 7b0b845715422207 with numpy 2.4.6
# and 0cf63c41f1a8c5ab with 1.25.2 (numpy 2.1 changed its Beta draws).
SMALL_ALPHA_PINS = [
    ("dirichlet(alpha=0.001)", "eba2a7f2f74c64fb"),
    ("dirichlet(alpha=0.01)", "11f9411b920057b1"),
    ("dirichlet(alpha=0.05)", "382d3bfe0f3ddc2a"),
    ("balanced_dirichlet(alpha=0.001)", "acd022d71dce1652"),
    ("balanced_dirichlet(alpha=0.05, fill=by_sample)", "1250bb63f6592fd5"),
    ("quantity_skew(alpha=0.05)", "ce803a41382bae40"),
]


@pytest.mark.parametrize("spec_text, digest", SMALL_ALPHA_PINS)
def test_small_alpha_partitions_are_the_same_in_every_numpy(spec_text,
                                                            digest):
  labels = np.repeat(np.arange(10), 600)[
      np.random.default_rng(0).permutation(6000)]
  h = hashlib.sha256()
  for seed in range(3):
    part = partition.spec.resolve(spec_text, labels, 20, seed=seed)
    h.update(part.indices.tobytes())
    h.update(part.offsets.tobytes())
  assert h.hexdigest()[:16] == digest


def test_small_alpha_draws_keep_tiny_shares():
  # numpy's Beta stick-breaking rounds 14-16% of the second-largest shares
  # of Dir(0.001) over 10 entries to 0; the Gamma draw keeps them (a share
  # is 0 only below float64's range, e^-745 of the largest).
  rows = dirichlet_rows(np.random.default_rng(0), 1e-3, 20000, 10)
  np.testing.assert_allclose(rows.sum(axis=1), 1.0)
  assert (np.sort(rows, axis=1)[:, -2] == 0).mean() < 0.01

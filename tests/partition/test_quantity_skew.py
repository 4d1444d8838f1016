"""quantity_skew: unequal sizes, IID labels."""

import hashlib
import time

import numpy as np
import pytest
from scipy import stats

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from tff_niid import partition


@pytest.mark.parametrize("kw", [dict(alpha=1e-3), dict(alpha=0.5),
                                dict(alpha=1e3), dict(sigma=0.1),
                                dict(sigma=2.0)])
@pytest.mark.parametrize("num_clients", [1, 100, 10000])
def test_sweep(labels, kw, num_clients):
  part = partition.quantity_skew(labels, num_clients, seed=0, **kw)
  assert_exact_cover(part, 60000)


def test_sizes_vary_labels_do_not(labels):
  part = partition.quantity_skew(labels, 100, sigma=1.5, min_size=50,
                                 seed=0)
  assert part.sizes.min() >= 50 and part.sizes.max() > 5 * part.sizes.min()
  summary = partition.metrics.summary(part, labels)
  assert summary["size_gini"] > 0.3
  big = np.argsort(part.sizes)[-10:]  # large clients: close to global mix
  assert partition.metrics.client_heterogeneity(
      part, labels)["js"][big].max() < 0.01


def test_seeded_and_bad_input(labels):
  assert_seeded(lambda s: partition.quantity_skew(labels, 30, sigma=1,
                                                  seed=s))
  with pytest.raises(ValueError, match="exactly one"):
    partition.quantity_skew(labels, 10, seed=0)
  with pytest.raises(ValueError, match="exactly one"):
    partition.quantity_skew(labels, 10, alpha=1, sigma=1, seed=0)
  with pytest.raises(ValueError, match="min_size"):
    partition.quantity_skew(labels, 100, sigma=1, min_size=601, seed=0)
  with pytest.raises(ValueError, match="sigma"):
    partition.quantity_skew(labels, 10, sigma=-1, seed=0)


# 6,000 labels, 600 per class, in random order.
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 600))


def niid_bench_iid_diff_quantity(n_train, n_parties, beta, rng):
  """NIID-Bench utils.py `partition_data`, `iid-diff-quantity`, line by line
  (`rng`, a numpy Generator, stands for its global `np.random`)."""
  idxs = rng.permutation(n_train)
  min_size = 0
  while min_size < 10:
    proportions = rng.dirichlet(np.repeat(beta, n_parties))
    proportions = proportions / proportions.sum()
    min_size = np.min(proportions * len(idxs))
  proportions = (np.cumsum(proportions) * len(idxs)).astype(int)[:-1]
  return np.split(idxs, proportions)


def test_resample_matches_niid_bench_in_distribution():
  # Sorted client sizes over 2,000 seeds (1 s). Measured KS p-values,
  # resample vs reference: smallest 0.51, second 0.82, largest 0.39; reserve
  # (the default) vs reference: smallest 8e-76, second 2e-39.
  seeds = range(2000)
  reference = np.array([np.sort([len(b) for b in niid_bench_iid_diff_quantity(
      6000, 10, 0.5, np.random.default_rng(10_000 + s))]) for s in seeds])
  make = lambda s, **kw: np.sort(partition.quantity_skew(
      LABELS, 10, alpha=0.5, min_size=10, seed=s, **kw).sizes)
  resample = np.array([make(s, min_size_policy="resample") for s in seeds])
  reserve = np.array([make(s) for s in seeds])
  for column in (0, 1, -1):  # smallest, second smallest, largest client
    assert stats.ks_2samp(reference[:, column],
                          resample[:, column]).pvalue > 1e-3
  assert stats.ks_2samp(reference[:, 0], reserve[:, 0]).pvalue < 1e-20


@pytest.mark.parametrize("kw", [dict(alpha=0.5), dict(sigma=1.0)])
def test_resample_contract(kw):
  make = lambda s: partition.quantity_skew(LABELS, 10, min_size=20, seed=s,
                                           min_size_policy="resample", **kw)
  part = make(0)
  assert_exact_cover(part, 6000)
  assert part.sizes.min() >= 20
  assert part.params["min_size_policy"] == "resample"
  assert_seeded(make)


def test_resample_unreachable_and_bad_policy():
  with pytest.raises(ValueError, match="none of 1000 draws.*"
                     "min_size_policy='reserve'"):
    partition.quantity_skew(LABELS, 100, alpha=0.01, min_size=50, seed=0,
                            min_size_policy="resample")
  with pytest.raises(ValueError, match="min_size_policy.*'reserve', "
                     "'resample'"):
    partition.quantity_skew(LABELS, 10, alpha=1, seed=0,
                            min_size_policy="repair")


# sha256(indices, offsets)[:16] of partitions made by the code before
# min_size_policy existed (commit 83e74b7).
@pytest.mark.parametrize("make,digest", [
    (lambda y: partition.quantity_skew(y, 10, alpha=0.5, min_size=10, seed=7),
     "1beb97107df2a6cb"),
    (lambda y: partition.quantity_skew(y, 20, sigma=1.0, min_size=5, seed=7),
     "58227690c951ae7a"),
    (lambda y: partition.spec.resolve(
        "dirichlet(alpha=0.3)+quantity(alpha=0.5, min_size=10)", y, 10,
        seed=7), "32115e0bf56aa847"),
])
def test_default_sizes_are_unchanged(make, digest):
  part = make(np.random.default_rng(0).integers(0, 10, size=6000))
  h = hashlib.sha256(part.indices.tobytes())
  h.update(part.offsets.tobytes())
  assert h.hexdigest()[:16] == digest


def test_sigma_is_bounded():
  # sigma=800 once overflowed the lognormal draws into sizes of -9.2e18.
  for sigma in (800, 50.5, 1e300):
    with pytest.raises(ValueError) as e:
      partition.quantity_skew(LABELS, 10, sigma=sigma, seed=0)
    assert str(e.value) == (f"`sigma` must be between 0 and 50; got {sigma!r}:"
                            " lognormal draws overflow above it.")
  part = partition.quantity_skew(LABELS, 10, sigma=50, seed=0)
  assert_exact_cover(part, 6000)


@pytest.mark.parametrize("alpha", [1e-12, 1e-100, 1e-300])
def test_tiny_alpha_finishes_fast(alpha):
  # numpy's Dirichlet sampler ran for over 10 minutes at alpha <= 1e-12.
  start = time.monotonic()
  part = partition.quantity_skew(LABELS, 100, alpha=alpha, min_size=5, seed=0)
  assert_exact_cover(part, 6000)
  assert part.sizes.max() == 6000 - 99 * 5  # one client holds the rest
  with pytest.raises(ValueError, match="none of 1000 draws"):
    partition.quantity_skew(LABELS, 100, alpha=alpha, seed=0,
                            min_size_policy="resample")
  assert time.monotonic() - start < 5


@pytest.mark.parametrize("alpha", [5e-324, 1e-301, 1e301, 10**400])
def test_alpha_outside_float_range(alpha):
  with pytest.raises(ValueError, match="`alpha` (must be between 1e-300 and "
                     "1e[+]300|is too large for a float)"):
    partition.quantity_skew(LABELS, 10, alpha=alpha, seed=0)


def flower_id_to_size(n_samples, num_partitions, size_fn):
  """Flower Datasets' `IdToSizeFncPartitioner._determine_partition_id_to_size`
  and `_check_if_partition_id_to_size_possible` (flwr_datasets 0.5), line by
  line: the sizes of Linear- (size_fn: identity), Square- (np.square) and
  ExponentialPartitioner (np.exp), or ValueError as Flower raises it."""
  with np.errstate(all="ignore"):  # e^i overflows past 709: NaN sizes
    data_division_in_units = size_fn(
        np.linspace(start=1, stop=num_partitions, num=num_partitions))
    total_units = data_division_in_units.sum()
    partition_sizes_as_fraction = data_division_in_units / total_units
    partition_sizes_as_num_of_samples = np.array(
        partition_sizes_as_fraction * n_samples, dtype=np.int64)
    assigned_samples = np.sum(partition_sizes_as_num_of_samples)
    left_unassigned_samples = n_samples - assigned_samples
    partition_sizes_as_num_of_samples[-1] += left_unassigned_samples
  if not all(value >= 1 for value in partition_sizes_as_num_of_samples):
    raise ValueError("partitions sizes that are not greater than 0")
  return partition_sizes_as_num_of_samples


FLOWER_SIZE_FNS = {"linear": lambda x: x, "square": np.square,
                   "exponential": np.exp}


@pytest.mark.parametrize("profile", ["linear", "square", "exponential"])
# 1925 samples: where the order of Flower's float operations shows (share
# times samples, not units times samples over the total).
@pytest.mark.parametrize("num_samples", [1925, 6000, 59999, 60000])
def test_profile_sizes_are_flowers(profile, num_samples):
  checked = 0
  for num_clients in (1, 2, 3, 7, 10, 11, 30, 100, 300, 1000):
    labels = np.zeros(num_samples, dtype=np.int64)
    try:
      expected = flower_id_to_size(num_samples, num_clients,
                                   FLOWER_SIZE_FNS[profile])
    except ValueError:  # some client would be empty: refused by both
      with pytest.raises(ValueError, match=f"profile='{profile}' (gives "
                         f"{num_clients} clients .* below min_size=1;|with "
                         f"{num_clients} clients: e\\^i overflows)"):
        partition.quantity_skew(labels, num_clients, profile=profile, seed=0)
      continue
    part = partition.quantity_skew(labels, num_clients, profile=profile,
                                   seed=0)
    np.testing.assert_array_equal(part.sizes, expected)
    assert_exact_cover(part, num_samples)
    checked += 1
  assert checked >= 4


GIVEN_SIZES = (3000, 1500, 700, 400, 200, 100, 50, 25, 15, 10)


@pytest.mark.parametrize("law", [dict(profile="linear"),
                                 dict(sizes=GIVEN_SIZES)])
def test_assignment_is_uniform(law):
  # Flower assigns each client a contiguous range of the shuffled dataset
  # (Linear-, Square-, ExponentialPartitioner; SizePartitioner with its
  # partition_sizes): a uniformly random subset of its size. So, over 3,000
  # seeds, sample 0 lands in client i with probability size_i / N, whatever
  # its label; and the number of a label's samples a client holds is
  # hypergeometric, where an assignment stratified by label would give
  # (nearly) the same number every time.
  make = lambda s: partition.quantity_skew(LABELS, 10, seed=s, **law)
  sizes = make(0).sizes
  where, zeros_of_client_0 = [], []
  for seed in range(3000):
    part = make(seed)
    where.append(int(np.searchsorted(
        part.offsets, np.flatnonzero(part.indices == 0)[0], side="right")) - 1)
    zeros_of_client_0.append(int(np.sum(LABELS[part[0]] == 0)))
  counts = np.bincount(where, minlength=10)
  assert stats.chisquare(counts, sizes / sizes.sum() * 3000).pvalue > 1e-3
  hypergeometric = stats.hypergeom(LABELS.shape[0], np.sum(LABELS == 0),
                                   sizes[0])
  assert abs(np.mean(zeros_of_client_0) - hypergeometric.mean()) < (
      4 * hypergeometric.std() / np.sqrt(3000))
  assert 0.85 < np.var(zeros_of_client_0) / hypergeometric.var() < 1.15
  assert_seeded(make)


def test_profile_min_size_and_policy():
  part = partition.quantity_skew(LABELS, 10, profile="square", min_size=15,
                                 seed=0)
  assert part.sizes.min() == 15 and part.params["profile"] == "square"
  with pytest.raises(ValueError) as e:
    partition.quantity_skew(LABELS, 10, profile="square", min_size=16,
                            seed=0)
  assert str(e.value) == (
      "profile='square' gives 10 clients (6000 samples) sizes from 15 "
      "(client 0) to 1562, below min_size=16; use fewer clients, a flatter "
      "profile, or sigma= / alpha= sizes.")
  with pytest.raises(ValueError, match="nothing to resample"):
    partition.quantity_skew(LABELS, 10, profile="linear", seed=0,
                            min_size_policy="resample")
  with pytest.raises(ValueError, match="`profile` must be one of "
                     r"\['linear', 'square', 'exponential'\]; got 'cubic'"):
    partition.quantity_skew(LABELS, 10, profile="cubic", seed=0)
  with pytest.raises(ValueError, match="exactly one"):
    partition.quantity_skew(LABELS, 10, profile="linear", sigma=1, seed=0)


def test_given_sizes():
  part = partition.quantity_skew(LABELS, 10, sizes=GIVEN_SIZES, seed=0)
  assert tuple(part.sizes) == GIVEN_SIZES
  assert part.params["sizes"] == list(GIVEN_SIZES)
  assert "sizes" not in partition.quantity_skew(LABELS, 10, sigma=1,
                                                seed=0).params
  text = f"quantity(sizes={GIVEN_SIZES})".replace(",)", ")")
  resolved = partition.spec.resolve(text, LABELS, 10, seed=0)
  assert resolved == part.replace(spec=f"quantity_skew(sizes={GIVEN_SIZES})")
  with pytest.raises(ValueError) as e:
    partition.quantity_skew(LABELS, 10, sizes=GIVEN_SIZES, min_size=10,
                            seed=0)
  assert str(e.value) == (
      "`sizes` gives every client's size, so `min_size` and "
      "`min_size_policy` do not apply; leave them out.")
  with pytest.raises(ValueError, match="exactly one of .* or `sizes`"):
    partition.quantity_skew(LABELS, 10, sizes=GIVEN_SIZES, sigma=1, seed=0)
  with pytest.raises(ValueError, match="10 integers summing to 6000"):
    partition.quantity_skew(LABELS, 10, sizes=GIVEN_SIZES[:-1] + (11,),
                            seed=0)


def test_profile_sizes_in_a_spec():
  # Shards cut each client's size into its shards, so the sizes stay
  # Flower's; a label-skew base takes them as any quantity(...) sizes.
  text = "shards(per_client=2)+quantity(profile=linear)"
  part = partition.spec.resolve(text, LABELS, 10, seed=0)
  assert part.spec == "shards(shards_per_client=2)+quantity(profile=linear)"
  np.testing.assert_array_equal(
      part.sizes, flower_id_to_size(6000, 10, FLOWER_SIZE_FNS["linear"]))

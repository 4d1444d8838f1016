"""dirichlet(self_balancing=True, min_size_policy="resample") is NIID-Bench's
`noniid-labeldir` in distribution; the default draw is unchanged."""

import hashlib
import importlib
from typing import Any, cast

import numpy as np
import pytest
from scipy import stats

from partition_contract import assert_exact_cover
from partition_contract import assert_seeded
from tff_niid import partition
from tff_niid.partition import _allocate

# The module, not the function `partition.dirichlet` of the same name.
dirichlet_lib = importlib.import_module("tff_niid.partition.dirichlet")

# 6,000 labels, 600 per class (10 classes), in random order.
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 600))
# Any: mypy would match its values against every keyword parameter.
ANCHOR: dict[str, Any] = dict(self_balancing=True, min_size_policy="resample")
NUM_SEEDS = 200
P_PASS = 1e-3


def niid_bench_labeldir(labels, n_parties, beta, rng, min_require_size,
                        balance=True):
  """NIID-Bench utils.py `partition_data`, `noniid-labeldir`, line by line.

  `rng` (a numpy Generator) stands for NIID-Bench's global `np.random`;
  `balance=False` drops the "## Balance" line (Flower's
  `self_balancing=False`). Returns the per-client index lists.
  """
  min_size = 0
  K = labels.max() + 1  # pylint: disable=invalid-name
  N = labels.shape[0]  # pylint: disable=invalid-name
  while min_size < min_require_size:
    idx_batch: list[list[int]] = [[] for _ in range(n_parties)]
    for k in range(K):
      idx_k = np.where(labels == k)[0]
      rng.shuffle(idx_k)
      proportions = rng.dirichlet(np.repeat(beta, n_parties))
      if balance:
        proportions = np.array([p * (len(idx_j) < N / n_parties)
                                for p, idx_j in zip(proportions, idx_batch)])
      proportions = proportions / proportions.sum()
      proportions = (np.cumsum(proportions) * len(idx_k)).astype(int)[:-1]
      idx_batch = [idx_j + idx.tolist()
                   for idx_j, idx in zip(idx_batch, np.split(idx_k,
                                                             proportions))]
      min_size = min([len(idx_j) for idx_j in idx_batch])
  for j in range(n_parties):
    rng.shuffle(idx_batch[j])
  return idx_batch


STATISTICS = ("largest client", "smallest client", "max class share",
              "classes per client")


def summary(counts):
  """Per-seed summaries of a clients x classes counts matrix."""
  sizes = counts.sum(axis=1)
  return (sizes.max(), sizes.min(), (counts.max(axis=1) / sizes).max(),
          (counts > 0).sum(axis=1).mean())


def reference_summaries(num_clients, alpha, min_size, balance):
  rows = []
  for seed in range(NUM_SEEDS):
    lists = niid_bench_labeldir(LABELS, num_clients, alpha,
                                np.random.default_rng(10_000 + seed),
                                min_size, balance)
    rows.append(summary(np.array([np.bincount(LABELS[i], minlength=10)
                                  for i in lists])))
  return np.array(rows)


def our_summaries(num_clients, alpha, min_size, **kwargs):
  return np.array([summary(partition.metrics.label_counts(
      partition.dirichlet(LABELS, num_clients, alpha=alpha, min_size=min_size,
                          seed=seed, **kwargs), LABELS))
                   for seed in range(NUM_SEEDS)])


def ks_pvalues(a, b):
  return {name: stats.ks_2samp(a[:, i], b[:, i]).pvalue
          for i, name in enumerate(STATISTICS)}


# Smallest p-value over the four statistics, anchor vs reference (200 seeds
# each): 0.022, 0.14, 0.39, 0.068 for the first four settings below, 0.39
# for the fifth. The default (repair, no balancing) against the same
# references: largest client p = 3e-29, 3e-44, 2e-24.
@pytest.mark.parametrize("num_clients,alpha,balance", [
    (10, 0.5, True),   # NIID-Bench's 10-party Dir(0.5)
    (10, 0.1, True),   # a few redraws (a few % of first draws miss min_size)
    (50, 0.5, True),
    (10, 0.5, False),  # resample without balancing (Flower's option)
    (30, 0.1, True),   # many redraws (over half of first draws miss it)
])
def test_matches_niid_bench_loop_in_distribution(num_clients, alpha, balance):
  reference = reference_summaries(num_clients, alpha, 10, balance)
  ours = our_summaries(num_clients, alpha, 10, self_balancing=balance,
                       min_size_policy="resample")
  pvalues = ks_pvalues(reference, ours)
  assert min(pvalues.values()) > P_PASS, pvalues


def test_the_default_differs_from_niid_bench_loop():
  # The default (repair, no balancing) is another distribution: the two-sample
  # test must see it. At 10 clients, alpha 0.5, a first draw almost never
  # misses min_size, so what it sees is the missing balancing.
  reference = reference_summaries(10, 0.5, 10, True)
  repair = our_summaries(10, 0.5, 10)
  pvalues = ks_pvalues(reference, repair)
  assert pvalues["largest client"] < 1e-20, pvalues
  assert min(pvalues.values()) < P_PASS, pvalues


def test_repair_differs_from_resample_where_draws_miss_min_size():
  # Balancing on both sides, so only the min-size policy differs: where most
  # first draws miss min_size, repair's smallest clients sit at min_size
  # while resampling's are drawn (smallest client p = 1e-21 when written).
  reference = reference_summaries(30, 0.1, 10, True)
  repair = our_summaries(30, 0.1, 10, self_balancing=True,
                         min_size_policy="repair")
  pvalues = ks_pvalues(reference, repair)
  assert pvalues["smallest client"] < 1e-10, pvalues


def test_balancing_zeroes_clients_at_fair_size():
  # Exact: class k (in order 0..K-1) goes only to clients holding < N / n
  # after classes 0..k-1 (min_size=1 so no redraw or repair changes counts).
  # As in NIID-Bench, the last client's piece is the remainder n_k -
  # floor(cumsum * n_k), so it can get 1 sample at share 0 when the float
  # cumsum ends just below 1.
  masked = 0
  for seed in range(20):
    counts = partition.metrics.label_counts(partition.dirichlet(
        LABELS, 10, alpha=0.1, seed=seed, **ANCHOR), LABELS)
    before = np.cumsum(counts, axis=1) - counts  # sizes before class k
    full = before >= LABELS.shape[0] / 10
    assert not counts[full].any()
    masked += full.sum()
  assert masked > 0  # the setting makes the balance step act


def test_floor_split_is_niid_bench_cut():
  rng = np.random.default_rng(0)
  for total, parts, alpha in ((600, 10, 0.5), (7, 30, 0.05), (5421, 3, 10.0)):
    shares = rng.dirichlet(np.full(parts, alpha))
    cuts = (np.cumsum(shares) * total).astype(int)[:-1]
    expected = [len(piece) for piece in np.split(np.arange(total), cuts)]
    assert _allocate.floor_split(total, shares).tolist() == expected


def test_floor_split_gives_trailing_zero_shares_nothing():
  # The positive shares' float sum times 4495 is 4494.999999999999: NIID-
  # Bench's truncated cut would hand the first zero-share client 1 sample.
  shares = np.array([0.13139089030396614, 0.019954829182505313,
                     0.00804925015178311, 0.3960769575916508,
                     0.44452807277009454, 0.0, 0.0])
  assert int(np.cumsum(shares)[4] * 4495) == 4494
  sizes = _allocate.floor_split(4495, shares)
  assert sizes.sum() == 4495 and sizes[5:].tolist() == [0, 0]


@pytest.mark.parametrize("self_balancing", [False, True])
@pytest.mark.parametrize("min_size_policy", ["repair", "resample"])
def test_contract(self_balancing, min_size_policy):
  make = lambda s: partition.dirichlet(
      LABELS, 40, alpha=0.3, min_size=20, seed=s,
      self_balancing=self_balancing, min_size_policy=min_size_policy)
  part = make(0)
  assert_exact_cover(part, LABELS.shape[0])
  assert part.sizes.min() >= 20
  assert_seeded(make)
  assert part.params["self_balancing"] is self_balancing
  assert part.params["min_size_policy"] == min_size_policy


def test_key_changes_only_who_gets_which_sample():
  # An array: the stubs pick random()'s float overload for a size typed Any.
  key = cast(np.ndarray, np.random.default_rng(1).random(LABELS.shape[0]))
  plain = partition.dirichlet(LABELS, 20, alpha=0.5, seed=3, **ANCHOR)
  keyed = partition.dirichlet(LABELS, 20, alpha=0.5, seed=3, key=key,
                              **ANCHOR)
  assert np.array_equal(partition.metrics.label_counts(plain, LABELS),
                        partition.metrics.label_counts(keyed, LABELS))
  assert_exact_cover(keyed, LABELS.shape[0])


def test_unreachable_min_size_raises():
  with pytest.raises(ValueError, match=r"none of 1000 draws .* >= "
                     r"min_size=50 .*min_size_policy='repair'"):
    partition.dirichlet(LABELS, 100, alpha=0.001, min_size=50, seed=0,
                        **ANCHOR)
  # repair reaches it.
  part = partition.dirichlet(LABELS, 100, alpha=0.001, min_size=50, seed=0)
  assert part.sizes.min() >= 50


def test_resample_attempts_are_bounded(monkeypatch):
  calls = []
  draw = dirichlet_lib.sequential_counts

  def counting_draw(*args):
    calls.append(1)
    return draw(*args)

  monkeypatch.setattr(dirichlet_lib, "sequential_counts", counting_draw)
  monkeypatch.setattr(_allocate, "MAX_RESAMPLE_ATTEMPTS", 7)
  with pytest.raises(ValueError, match="none of 7 draws"):
    partition.dirichlet(LABELS, 100, alpha=0.001, min_size=50, seed=0,
                        **ANCHOR)
  assert len(calls) == 7


def test_bad_arguments():
  with pytest.raises(ValueError, match="min_size_policy.*'repair', "
                     "'resample'.*'redraw'"):
    partition.dirichlet(LABELS, 10, alpha=1, seed=0, min_size_policy="redraw")
  for value in ("yes", 1, None):
    with pytest.raises(ValueError, match="self_balancing.*True or False"):
      # The ignore: values other than a bool, refused on purpose.
      partition.dirichlet(LABELS, 10, alpha=1, seed=0,
                          self_balancing=value)  # type: ignore[arg-type]


# sha256(indices, offsets)[:16] of partitions made by the code before
# self_balancing / min_size_policy existed (commit 83e74b7).
@pytest.mark.parametrize("num_clients,kwargs,digest", [
    (10, dict(alpha=0.5, min_size=10), "3e9ae892d9261efc"),
    (100, dict(alpha=1e-8, min_size=5), "7811e2dcf0863197"),
    (30, dict(alpha=0.1, key_noise=0.3), "da9b719b9fcee489"),
])
def test_default_draw_is_unchanged(num_clients, kwargs, digest):
  labels = np.random.default_rng(0).integers(0, 10, size=6000)
  if "key_noise" in kwargs:
    kwargs["key"] = np.random.default_rng(1).random(6000)
  part = partition.dirichlet(labels, num_clients, seed=7, **kwargs)
  h = hashlib.sha256(part.indices.tobytes())
  h.update(part.offsets.tobytes())
  assert h.hexdigest()[:16] == digest


def test_partition_saved_without_the_new_params_loads(tmp_path):
  part = partition.dirichlet(LABELS, 10, alpha=0.5, seed=0)
  old_params = {k: v for k, v in part.params.items()
                if k not in ("self_balancing", "min_size_policy")}
  path = part.replace(params=old_params).save(str(tmp_path / "old"))
  back = partition.load(path, labels=LABELS)
  assert back.params == old_params
  assert np.array_equal(back.indices, part.indices)
  anchor = partition.dirichlet(LABELS, 10, alpha=0.5, seed=0, **ANCHOR)
  back = partition.load(anchor.save(str(tmp_path / "new")), labels=LABELS)
  assert back.params == anchor.params

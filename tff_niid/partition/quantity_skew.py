"""Quantity skew: unequal client sizes, IID labels within each client."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core
from tff_niid.partition.dirichlet import check_alpha
from tff_niid.partition.dirichlet import dirichlet_rows


MIN_SIZE_POLICIES = ("reserve", "resample")

# Client i = 1..n gets a share proportional to profile(i): Flower Datasets'
# LinearPartitioner, SquarePartitioner and ExponentialPartitioner.
PROFILES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda i: i, "square": np.square, "exponential": np.exp}

# Lognormal weights exp(sigma * z) overflow float64, once summed over clients,
# when sigma * z nears 709 - log(num_clients); z stays below ~7 in 1e11
# standard normal draws, so this bound keeps a wide margin.
MAX_SIGMA = 50.0


def profile_sizes(num_samples: int, num_clients: int,
                  profile: str) -> np.ndarray:
  """Flower Datasets' deterministic sizes: client i = 1..n gets a share
  proportional to `PROFILES[profile](i)`, truncated to an integer, and the
  last (largest) client also gets what truncation leaves over
  (`IdToSizeFncPartitioner._determine_partition_id_to_size`). Sizes may be
  0: the caller checks its minimum. ValueError where e^i overflows."""
  ids = np.linspace(1, num_clients, num_clients)
  with np.errstate(over="ignore"):
    units = PROFILES[profile](ids)
  if not np.isfinite(units.sum()):
    # e^i overflows past i = 709, where Flower's shares turn NaN; client 1's
    # share, e^-708 of the total, would be empty anyway.
    raise ValueError(
        f"profile={profile!r} with {num_clients} clients: e^i overflows "
        "float64 past 709 clients, and long before that the first clients "
        "get no samples; use fewer clients, or sigma= / alpha= sizes.")
  sizes = np.array(units / units.sum() * num_samples, dtype=np.int64)
  sizes[-1] += num_samples - sizes.sum()
  return sizes


def quantity_sizes(num_samples: int, num_clients: int, *,
                   alpha: float | None = None, sigma: float | None = None,
                   profile: str | None = None,
                   sizes: Sequence[int] | None = None, min_size: int = 1,
                   min_size_policy: str = "reserve",
                   rng: np.random.Generator) -> np.ndarray:
  """Client sizes summing to `num_samples`, each >= min_size.

  Exactly one of: `alpha` in [1e-300, 1e300] -> shares ~ Dir(alpha)
  (NIID-Bench `iid-diff-quantity`); `sigma` in (0, MAX_SIGMA = 50] -> shares
  proportional to lognormal(0, sigma) draws (unbalanced clients as in FedLab /
  LEAF-style simulations); `profile` in "linear", "square", "exponential" ->
  Flower Datasets' Linear/Square/ExponentialPartitioner sizes exactly
  (`profile_sizes`: deterministic, client i of 1..n ~ i, i^2 or e^i);
  `sizes` -> these sizes, checked: `num_clients` integers >= 1 summing to
  `num_samples` (Flower Datasets' SizePartitioner's `partition_sizes`,
  which may also leave samples out).

  Given sizes are every client's size, so `min_size` and `min_size_policy`
  do not apply to them (ValueError if set).

  A profile's sizes are fixed, so `min_size` is checked, not met: ValueError
  if the profile gives a client fewer samples (as Flower refuses a size of
  0); `min_size_policy` applies to `alpha` and `sigma` only ("resample" with
  `profile` is refused: there is nothing to redraw).

  For `alpha` and `sigma`, `min_size_policy` decides how `min_size` is met,
  and so the distribution:

  * "reserve" (default): each client first gets `min_size`, the rest is split
    by the shares with exact cumulative rounding. Always terminates.
  * "resample": NIID-Bench's `iid-diff-quantity` (Li et al. 2022, utils.py
    `partition_data`): the shares are redrawn until every share * num_samples
    is >= min_size (NIID-Bench: 10), at most
    `_allocate.MAX_RESAMPLE_ATTEMPTS` times (then ValueError), and
    num_samples is cut at floor(cumsum(shares) * num_samples)
    (`_allocate.floor_split`).
  """
  if sum(law is not None for law in (alpha, sigma, profile, sizes)) != 1:
    raise ValueError("give exactly one of `alpha` (Dirichlet sizes), "
                     "`sigma` (lognormal sizes), `profile` (Flower's "
                     "linear, square or exponential sizes) or `sizes` (the "
                     "sizes themselves).")
  if sizes is not None:
    if min_size != 1 or min_size_policy != "reserve":
      raise ValueError("`sizes` gives every client's size, so `min_size` "
                       "and `min_size_policy` do not apply; leave them out.")
    return _checks.check_sizes(sizes, num_clients, num_samples)
  min_size = _checks.check_min_size(min_size, num_clients, num_samples)
  min_size_policy = _checks.check_choice("min_size_policy", min_size_policy,
                                         MIN_SIZE_POLICIES)
  if profile is not None:
    profile = _checks.check_choice("profile", profile, tuple(PROFILES))
    if min_size_policy == "resample":
      raise ValueError(
          f"profile={profile!r} gives fixed sizes, so there is nothing to "
          "resample: leave min_size_policy out (min_size is then checked).")
    fixed = profile_sizes(num_samples, num_clients, profile)
    if fixed.min() < min_size:
      raise ValueError(
          f"profile={profile!r} gives {num_clients} clients ({num_samples} "
          f"samples) sizes from {fixed.min()} (client {int(fixed.argmin())})"
          f" to {fixed.max()}, below min_size={min_size}; use fewer "
          "clients, a flatter profile, or sigma= / alpha= sizes.")
    return fixed
  if alpha is not None:
    alpha = check_alpha(alpha)
    draw_shares = lambda: dirichlet_rows(rng, alpha, 1, num_clients)[0]
  else:
    sigma = _checks.check_range("sigma", sigma, 0.0, MAX_SIGMA,
                                "lognormal draws overflow above it")
    draw_shares = lambda: rng.lognormal(0.0, sigma, size=num_clients)
  if min_size_policy == "reserve":
    return min_size + _allocate.split_total(
        num_samples - num_clients * min_size, draw_shares())

  def draw():
    shares = draw_shares()
    shares /= shares.sum()
    sizes = _allocate.floor_split(num_samples, shares)
    # NIID-Bench tests the shares. Floor cuts then give sizes >= min_size up
    # to float error in the cumulative sum, so the sizes are tested too: the
    # guarantee holds, and the distribution is unchanged.
    if shares.min() * num_samples >= min_size and sizes.min() >= min_size:
      return sizes
    return None

  return _allocate.resample(draw, min_size=min_size, alternative="reserve")


def quantity_skew(labels: np.ndarray, num_clients: int, *,
                  alpha: float | None = None, sigma: float | None = None,
                  profile: str | None = None,
                  sizes: Sequence[int] | None = None, seed: int,
                  min_size: int = 1,
                  min_size_policy: str = "reserve") -> core.Partition:
  """Clients of unequal size (see `quantity_sizes`), labels IID within each.

  Guarantees: every sample belongs to exactly one client; every client has at
  least `min_size` samples; same seed -> identical partition.
  `min_size_policy="resample", min_size=10` with `alpha` is NIID-Bench's
  `iid-diff-quantity` in distribution; `profile="linear"` (or "square",
  "exponential") is Flower Datasets' LinearPartitioner (Square-,
  ExponentialPartitioner) on a shuffled dataset in distribution: the same
  sizes, each client a uniformly random subset; so are given `sizes` and
  Flower's SizePartitioner(partition_sizes=sizes).

  Args:
    labels: (N,) integer class ids (only N matters to the sizes; they are
      fingerprinted into the partition).
    num_clients: clients to make, 1 to N.
    alpha: Dirichlet(alpha) shares of the samples (NIID-Bench).
    sigma: lognormal(0, sigma) shares.
    profile: "linear", "square" or "exponential" (Flower's sizes).
    sizes: every client's size, `num_clients` integers >= 1 summing to N.
    seed: seed of the sizes' draw and of the samples each client gets.
    min_size: the smallest client (for alpha, sigma and profile).
    min_size_policy: "reserve" or "resample": how alpha's and sigma's
      sizes meet `min_size` (`quantity_sizes`: each a different
      distribution).

  Exactly one of alpha, sigma, profile and sizes is given.

  Raises:
    ValueError: none or several of them, values out of range, or a
      `min_size` the sizes cannot meet (`quantity_sizes`).
  """
  labels, _ = _checks.check_labels(labels)
  n = labels.shape[0]
  num_clients = _checks.check_num_clients(num_clients, n)
  seed = _checks.check_seed(seed)
  rng = np.random.default_rng(seed)
  drawn = quantity_sizes(n, num_clients, alpha=alpha, sigma=sigma,
                         profile=profile, sizes=sizes, min_size=min_size,
                         min_size_policy=min_size_policy, rng=rng)
  indices = rng.permutation(n)
  offsets = np.concatenate([[0], np.cumsum(drawn)])
  params = {"num_clients": num_clients, "alpha": alpha, "sigma": sigma,
            "profile": profile, "min_size": min_size,
            "min_size_policy": min_size_policy}
  if sizes is not None:  # only then: partitions saved before keep theirs
    params["sizes"] = drawn.tolist()
  return core.make_partition(labels, indices, offsets, scheme="quantity_skew",
                             params=params, seed=seed, min_size=min_size)

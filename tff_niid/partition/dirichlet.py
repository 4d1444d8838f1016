"""Label-distribution skew by a per-class Dirichlet over clients."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core


# Below this, Dirichlet rows are drawn from Gamma variates in logs
# (`_log_gamma_rows`), not by numpy's Generator.dirichlet. numpy switches to
# a Beta stick-breaking draw there (max(alpha) < 0.1), whose Beta draws
# changed in numpy 2.1 (numpy PR #27034, fixing a left tail too heavy in 1.x:
# issue #24475): at alpha = 1e-3, 1,877 of 2,000 rows of 10 differed between
# numpy 1.25.2 and 2.4.6, so partitions were not the same across numpy
# versions. The Gamma draws are the same stream in both (their logs may
# differ in the last bit, as numpy's log does); they also keep the tiny
# shares that the stick-breaking rounds to 0 (14-16% of second-largest
# shares at 1e-3), and do not slow down (numpy: 19 s at alpha 1e-10, stalls
# below ~1e-11).
# At 0.1 and above numpy's draws (and so existing partitions) are kept.
_LOG_SPACE_BELOW = 0.1

# The alphas whose draws float64 holds: below, log(U) / alpha overflows in the
# log-space draw; above, numpy's Gamma(alpha) draws sum to inf over clients.
# Draws are one-hot (all weight on one entry) long before the floor: at
# alpha = 1e-12 in 2,000 of 2,000 draws of 10,000 entries.
ALPHA_RANGE = (1e-300, 1e300)

MIN_SIZE_POLICIES = ("repair", "resample")


def check_alpha(alpha: float) -> float:
  """The Dirichlet concentration as a float, or ValueError (every scheme
  that draws from a Dirichlet checks its alpha here)."""
  return _checks.check_range("alpha", alpha, *ALPHA_RANGE,
                             "float64 Dirichlet draws overflow outside it")


def _log_gamma_rows(rng, alpha, rows, cols):
  """log of a rows x cols array of Gamma(alpha) draws, finite for any alpha."""
  # Gamma(a) = Gamma(a + 1) * U^(1/a), taken in logs so tiny a cannot
  # underflow; 1 - U lies in (0, 1], so no log(0).
  return (np.log(rng.standard_gamma(alpha + 1, size=(rows, cols))) +
          np.log1p(-rng.random((rows, cols))) / alpha)


def _normalise_logs(log_g):
  """Gamma draws given as logs, normalised along the last axis (a Dirichlet
  draw); entries of -inf get weight 0."""
  weights = np.exp(log_g - log_g.max(axis=-1, keepdims=True))
  return weights / weights.sum(axis=-1, keepdims=True)


def dirichlet_rows(rng: np.random.Generator, alpha: float, rows: int,
                   cols: int) -> np.ndarray:
  """`rows` draws of Dir(alpha * 1_cols), finite and fast for any alpha in
  ALPHA_RANGE, from the same random stream in every numpy version (>= 1.25;
  below 0.1 numpy's own Dirichlet draws are not: see _LOG_SPACE_BELOW)."""
  if alpha >= _LOG_SPACE_BELOW:
    return rng.dirichlet(np.full(cols, alpha), size=rows)
  return _normalise_logs(_log_gamma_rows(rng, alpha, rows, cols))


def _rounded_counts(rng, alpha, class_sizes, num_clients):
  """The default draw: all classes at once, shares rounded cumulatively (exact
  column sums). A clients x classes counts matrix."""
  # In place where it can be: the matrix is classes x clients (800 MB of
  # float64 at 1,000 x 100,000), and each temporary another such matrix.
  bounds = dirichlet_rows(rng, alpha, class_sizes.shape[0], num_clients)
  np.cumsum(bounds, axis=1, out=bounds)
  bounds *= class_sizes[:, None]
  np.rint(bounds, out=bounds)
  bounds = bounds.astype(np.int64)
  counts = np.empty_like(bounds)
  counts[:, 0] = bounds[:, 0]
  np.subtract(bounds[:, 1:], bounds[:, :-1], out=counts[:, 1:])
  return counts.T


def sequential_counts(rng: np.random.Generator, alpha: float,
                      class_sizes: np.ndarray, num_clients: int,
                      self_balancing: bool, holds: np.ndarray | None = None,
                      start: np.ndarray | None = None) -> np.ndarray:
  """One pass of NIID-Bench's per-class loop: a clients x classes counts matrix.

  Class by class, in order 0, 1, ..., K-1: client shares ~ Dir(alpha); with
  `self_balancing`, the share of every client already holding >= N /
  num_clients samples is set to 0 and the others renormalised; the class is
  cut at floor(cumsum(shares) * n_k) (`_allocate.floor_split`, which leaves
  the zeroed clients empty even where the float cut falls an ulp short).

  The extended Dirichlet strategy (`extended_dirichlet`) restricts each class
  to its holders, `holds[:, k]`: the Dirichlet over all clients renormalised
  over the holders, the last holder taking the floor cut's remainder; and
  starts from counts already reserved, `start`, which count towards the
  balancing. Should balancing zero every holder of a class (all already at
  N / num_clients; common with few holders per class), the whole class goes
  to its last holder, as in the authors' loop: its shares are then 0 / 0,
  the NaN cuts cast to an integer that no slice reaches (INT64_MIN on x86,
  0 on ARM), and its remainder step gives the class to the last holder.
  """
  num_classes = class_sizes.shape[0]
  # Dir(alpha) renormalised over a subset of clients is the subset's
  # normalised Gamma(alpha) draws. In logs a zeroed share is -inf, and the
  # kept shares never underflow to 0 / 0 at small alpha.
  log_g = _log_gamma_rows(rng, alpha, num_classes, num_clients)
  counts = (np.zeros((num_clients, num_classes), dtype=np.int64)
            if start is None else np.array(start, dtype=np.int64))
  sizes = counts.sum(axis=1)
  fair_size = (class_sizes.sum() + sizes.sum()) / num_clients
  # Empty classes are skipped: balancing might have zeroed every client.
  for k in np.flatnonzero(class_sizes):
    members = slice(None) if holds is None else np.flatnonzero(holds[:, k])
    log_shares = log_g[k, members]
    if self_balancing:
      below = sizes[members] < fair_size
      # No holder below: the whole class to the last (see docstring).
      log_shares = np.where(below if below.any() else
                            np.arange(below.shape[0]) == below.shape[0] - 1,
                            log_shares, -np.inf)
    piece = _allocate.floor_split(class_sizes[k], _normalise_logs(log_shares))
    counts[members, k] += piece
    sizes[members] += piece
  return counts


def dirichlet(labels: np.ndarray, num_clients: int, *, alpha: float, seed: int,
              min_size: int = 1, key: np.ndarray | None = None,
              key_noise: float = 0.0, self_balancing: bool = False,
              min_size_policy: str = "repair") -> core.Partition:
  """Per class c, client shares p_c ~ Dir(alpha * 1); client i gets p_ci * n_c.

  The label-skew partition of Hsu et al. 2019 ("Measuring the Effects of
  Non-Identical Data Distribution for Federated Visual Classification") as used
  by NIID-Bench (Li et al. 2022, "Federated Learning on Non-IID Data Silos",
  `noniid-labeldir`). Small alpha -> each class concentrated on few clients;
  large alpha -> close to IID.

  Two ways to reach `min_size` (`min_size_policy`), which give partitions of
  different distributions:

  * "repair" (default): the shares are rounded exactly (cumulative rounding,
    so every sample is assigned once) and clients below `min_size` are then
    topped up from the largest clients (`_allocate.enforce_min_size`). Always
    terminates: at alpha=0.001 with 10,000 clients it takes milliseconds.
  * "resample": the whole draw (all classes) is repeated until every client
    has >= min_size, as NIID-Bench (utils.py `partition_data`), FedLab
    (`hetero_dir_partition`) and Flower (`DirichletPartitioner`) do, at most
    `_allocate.MAX_RESAMPLE_ATTEMPTS` (1000) times; ValueError if no draw
    meets it.

  `self_balancing=True` adds NIID-Bench's "balance" step: classes are drawn in
  order 0..K-1 and a client already holding >= N / num_clients samples gets
  no share of the later classes (FedLab and NIID-Bench always do it;
  Flower's `self_balancing=True` zeroes only clients above N / num_clients,
  and takes the classes in the order they first appear in its shuffled
  dataset). It caps client sizes near N / num_clients.

  Except for the default pair (`self_balancing=False`, "repair"), which keeps
  its original draw so existing partitions reproduce, the counts come from the
  reference loop itself: class by class, shares ~ Dir(alpha), cut at
  floor(cumsum(shares) * n_c) (NIID-Bench's `astype(int)`). So
  `self_balancing=True, min_size_policy="resample", min_size=10` draws from
  exactly the distribution of NIID-Bench's `noniid-labeldir` (statistically
  tested against a re-implementation of its loop). The samples of each class
  are cut in random order, as its shuffled `idx_k`.

  Guarantees: every sample belongs to exactly one client; every client has at
  least `min_size` samples; same seed -> identical partition.

  Args:
    labels: 1-D integer array of class ids 0..K-1.
    num_clients: number of clients, 1 <= num_clients <= len(labels).
    alpha: Dirichlet concentration, in ALPHA_RANGE = [1e-300, 1e300].
    seed: non-negative integer seed.
    min_size: minimum samples per client (>= 1, and num_clients * min_size
      <= len(labels)); NIID-Bench uses 10.
    key: optional per-sample key (numeric or categorical); a client's samples
      of each class are then a contiguous range of that class ordered by key.
    key_noise: in [0, 1]; 0 = ordered by key, 1 = random within class.
    self_balancing: bool; the balance step above.
    min_size_policy: "repair" or "resample", as above.

  Returns:
    A `Partition`.

  Raises:
    ValueError: invalid arguments, or "resample" found no draw with every
      client >= min_size in 1000 attempts.
  """
  labels, num_classes = _checks.check_labels(labels)
  n = labels.shape[0]
  num_clients = _checks.check_num_clients(num_clients, n)
  alpha = check_alpha(alpha)
  seed = _checks.check_seed(seed)
  min_size = _checks.check_min_size(min_size, num_clients, n)
  key, key_noise = _allocate.check_key(key, key_noise, n)
  self_balancing = _checks.check_bool("self_balancing", self_balancing)
  min_size_policy = _checks.check_choice("min_size_policy", min_size_policy,
                                         MIN_SIZE_POLICIES)
  rng = np.random.default_rng(seed)
  class_sizes = np.bincount(labels, minlength=num_classes)
  sequential = lambda: sequential_counts(rng, alpha, class_sizes,
                                         num_clients, self_balancing)
  if min_size_policy == "resample":

    def draw():
      counts = sequential()
      return counts if counts.sum(axis=1).min() >= min_size else None

    counts = _allocate.resample(draw, min_size=min_size,
                                alternative="repair")
  else:
    counts = _allocate.enforce_min_size(
        sequential() if self_balancing else
        _rounded_counts(rng, alpha, class_sizes, num_clients), min_size)
  indices, offsets = _allocate.assign_by_counts(
      labels, num_classes, counts, rng, key=key, key_noise=key_noise)
  params = {"num_clients": num_clients, "alpha": alpha, "min_size": min_size,
            "key": core.key_param(key), "key_noise": key_noise,
            "self_balancing": self_balancing,
            "min_size_policy": min_size_policy}
  return core.make_partition(labels, indices, offsets, scheme="dirichlet",
                             params=params, seed=seed, min_size=min_size)

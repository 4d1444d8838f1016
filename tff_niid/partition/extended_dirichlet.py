"""Extended Dirichlet: k classes per client, Dirichlet shares within them."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core
from tff_niid.partition.dirichlet import check_alpha
from tff_niid.partition.dirichlet import sequential_counts

MIN_SIZE_POLICIES = ("reserve", "resample")

# The class allocation draws at most this many uniforms per batch of tries
# (8 MiB), and gives up after 64 full batches' worth: a second or two.
_BATCH_CELLS = 1 << 20
_MAX_CELLS = 1 << 26


def min_holders(num_clients: int, num_classes: int,
                classes_per_client: int) -> int:
  """Holders every class must have: max(k * M // K // 5, 1), as in the
  authors' `ExDirPartitioner.allocate_classes` (PFLlib's copy uses // 2)."""
  return max(classes_per_client * num_clients // num_classes // 5, 1)


def class_sets(rng: np.random.Generator, num_clients: int, num_classes: int,
               classes_per_client: int) -> np.ndarray:
  """Each client's classes: a num_clients x k array, row i the k distinct
  classes of client i in random order.

  Each client draws k of the K classes uniformly without replacement; the
  whole draw is repeated until every class has `min_holders` holders. The
  draws are made in batches of 1, 2, 4, ... tries (so the common case draws
  once) and the first that qualifies is kept: the law of one draw at a time.

  Raises:
    ValueError: no draw qualified within the budget of _MAX_CELLS uniforms
      (rare enough qualifying draws, e.g. k * M close to K).
  """
  k, needed = classes_per_client, min_holders(num_clients, num_classes,
                                              classes_per_client)
  cells = num_clients * num_classes
  batch, tries = 1, 0
  while tries * cells < _MAX_CELLS:
    chosen = np.argsort(rng.random((batch, num_clients, num_classes)),
                        axis=2)[:, :, :k]
    per_try = chosen + num_classes * np.arange(batch)[:, None, None]
    holders = np.bincount(per_try.ravel(), minlength=batch * num_classes)
    qualified = np.flatnonzero(
        holders.reshape(batch, num_classes).min(axis=1) >= needed)
    if qualified.size:
      return chosen[qualified[0]]
    tries += batch
    # Rarely qualifying draws: larger batches, up to _BATCH_CELLS uniforms.
    batch = min(2 * batch, max(1, _BATCH_CELLS // cells))
  raise ValueError(
      f"none of {tries:,} random allocations of {k} of the {num_classes} "
      f"classes to each of {num_clients} clients gave every class >= "
      f"{needed} holders; use more clients or a larger classes_per_client "
      "(label_quantity holds every class by construction).")


def _reserve(chosen, min_size, class_sizes):
  """Clients x classes counts giving each client `min_size` samples spread
  over its classes (the first min_size % k of them one more)."""
  num_clients, k = chosen.shape
  per_class = min_size // k + (np.arange(k) < min_size % k)
  reserve = np.zeros((num_clients, class_sizes.shape[0]), dtype=np.int64)
  reserve[np.arange(num_clients)[:, None], chosen] = per_class
  short = np.flatnonzero(reserve.sum(axis=0) > class_sizes)
  if short.size:
    c = short[0]
    raise ValueError(
        f"`min_size`={min_size} cannot be reserved: class {c} has "
        f"{class_sizes[c]} samples but its holders need "
        f"{reserve[:, c].sum()}; lower min_size, use fewer clients, or use "
        "min_size_policy='resample'.")
  return reserve


def extended_dirichlet(labels: np.ndarray, num_clients: int, *,
                       classes_per_client: int, alpha: float, seed: int,
                       min_size: int = 1, self_balancing: bool = True,
                       min_size_policy: str = "reserve",
                       key: np.ndarray | None = None,
                       key_noise: float = 0.0) -> core.Partition:
  """Each client draws k classes; each class goes to its holders by Dir(alpha).

  The extended Dirichlet strategy ("ExDir") of Li & Lyu 2023 ("Convergence
  Analysis of Sequential Federated Learning on Heterogeneous Data", NeurIPS;
  code github.com/liyipeng00/convergence `sim/data/partition.py`
  `ExDirPartitioner`, also PFLlib's `exdir` and proposed to FedLab in its
  issue #337), which joins NIID-Bench's #C=k (`label_quantity`) and
  Dirichlet (`dirichlet`) label skews: k sets the number of classes per
  client, alpha how unevenly each class is shared among its holders.

  1. Classes: each client draws k distinct classes uniformly, redrawn until
     every class has `min_holders(M, K, k)` holders (`class_sets`).
  2. Samples: class by class, in order 0..K-1, shares ~ Dir(alpha) over the
     class's holders; with `self_balancing` (ExDir's default "Case 1") a
     holder already holding >= N / M samples gets no share; the class is cut
     at floor(cumsum(shares) * n_c), the last holder taking the remainder
     (`dirichlet.sequential_counts`).

  `min_size_policy` decides how every client reaches `min_size`, and so the
  distribution:

  * "reserve" (default): before step 2 each client gets `min_size` samples
    spread over its classes; always terminates (ValueError if a class has
    too few samples for its holders' reserve).
  * "resample": step 2 is redrawn until every client has >= min_size, as
    ExDir does (there with min_size 10), at most
    `_allocate.MAX_RESAMPLE_ATTEMPTS` times (then ValueError).
    `self_balancing=True, min_size_policy="resample", min_size=10` is ExDir
    in distribution (statistically tested against a re-implementation).

  Guarantees: every sample belongs to exactly one client; a client's samples
  are of its k classes only (it may get none of some: a Dirichlet share can
  round to 0); every client has at least `min_size` samples; same seed ->
  identical partition.

  Args:
    labels: 1-D integer array of class ids 0..K-1.
    num_clients: number of clients, with k * num_clients >= K.
    classes_per_client: k, 1 <= k <= K.
    alpha: Dirichlet concentration, in [1e-300, 1e300].
    seed: non-negative integer seed.
    min_size: minimum samples per client (>= 1).
    self_balancing: bool; the balance step above.
    min_size_policy: "reserve" or "resample", as above.
    key, key_noise: optional within-class ordering (see `dirichlet`).
  """
  labels, num_classes = _checks.check_labels(labels)
  _checks.check_every_class_held(labels, num_classes, "extended_dirichlet")
  n = labels.shape[0]
  num_clients = _checks.check_num_clients(num_clients, n)
  k = _checks.check_classes_per_client(classes_per_client, num_classes)
  if k * num_clients < num_classes:
    raise ValueError(
        f"{num_clients} clients x {k} classes cannot hold all {num_classes} "
        f"classes; use classes_per_client >= "
        f"{-(-num_classes // num_clients)}.")
  alpha = check_alpha(alpha)
  seed = _checks.check_seed(seed)
  min_size = _checks.check_min_size(min_size, num_clients, n)
  self_balancing = _checks.check_bool("self_balancing", self_balancing)
  min_size_policy = _checks.check_choice("min_size_policy", min_size_policy,
                                         MIN_SIZE_POLICIES)
  key, key_noise = _allocate.check_key(key, key_noise, n)
  rng = np.random.default_rng(seed)
  class_sizes = np.bincount(labels, minlength=num_classes)
  chosen = class_sets(rng, num_clients, num_classes, k)
  holds = np.zeros((num_clients, num_classes), dtype=bool)
  holds[np.arange(num_clients)[:, None], chosen] = True
  if min_size_policy == "reserve":
    reserve = _reserve(chosen, min_size, class_sizes)
    counts = sequential_counts(rng, alpha, class_sizes - reserve.sum(axis=0),
                               num_clients, self_balancing, holds=holds,
                               start=reserve)
  else:

    def draw():
      counts = sequential_counts(rng, alpha, class_sizes, num_clients,
                                 self_balancing, holds=holds)
      return counts if counts.sum(axis=1).min() >= min_size else None

    counts = _allocate.resample(draw, min_size=min_size,
                                alternative="reserve")
  indices, offsets = _allocate.assign_by_counts(
      labels, num_classes, counts, rng, key=key, key_noise=key_noise)
  params = {"num_clients": num_clients, "classes_per_client": k,
            "alpha": alpha, "min_size": min_size,
            "self_balancing": self_balancing,
            "min_size_policy": min_size_policy, "key": core.key_param(key),
            "key_noise": key_noise}
  return core.make_partition(labels, indices, offsets,
                             scheme="extended_dirichlet", params=params,
                             seed=seed, min_size=min_size)

"""Quantity skew: unequal client sizes, IID labels within each client."""

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core


def quantity_sizes(num_samples, num_clients, *, alpha=None, sigma=None,
                   min_size=1, rng):
  """Client sizes summing to `num_samples`, each >= min_size.

  Exactly one of: `alpha` -> shares ~ Dir(alpha) (NIID-Bench
  `iid-diff-quantity`); `sigma` -> shares proportional to lognormal(0, sigma)
  draws (unbalanced clients as in FedLab / LEAF-style simulations). Each
  client first gets `min_size`, the rest is split by the shares with exact
  cumulative rounding.
  """
  if (alpha is None) == (sigma is None):
    raise ValueError("give exactly one of `alpha` (Dirichlet sizes) or "
                     "`sigma` (lognormal sizes).")
  min_size = _checks.check_positive("min_size", min_size, integer=True)
  if num_clients * min_size > num_samples:
    raise ValueError(
        f"`min_size`={min_size} cannot be met: {num_clients} clients x "
        f"{min_size} > {num_samples} samples.")
  if alpha is not None:
    shares = rng.dirichlet(np.full(num_clients,
                                   _checks.check_positive("alpha", alpha)))
  else:
    shares = rng.lognormal(0.0, _checks.check_positive("sigma", sigma),
                           size=num_clients)
  return min_size + _allocate.split_total(num_samples - num_clients * min_size,
                                          shares)


def quantity_skew(labels, num_clients, *, alpha=None, sigma=None, seed,
                  min_size=1):
  """Clients of unequal size (see `quantity_sizes`), labels IID within each.

  Guarantees: every sample belongs to exactly one client; every client has at
  least `min_size` samples; same seed -> identical partition.
  """
  labels, _ = _checks.check_labels(labels)
  n = labels.shape[0]
  num_clients = _checks.check_num_clients(num_clients, n)
  seed = _checks.check_seed(seed)
  rng = np.random.default_rng(seed)
  sizes = quantity_sizes(n, num_clients, alpha=alpha, sigma=sigma,
                         min_size=min_size, rng=rng)
  indices = rng.permutation(n)
  offsets = np.concatenate([[0], np.cumsum(sizes)])
  params = {"num_clients": num_clients, "alpha": alpha, "sigma": sigma,
            "min_size": min_size}
  return core.make_partition(labels, indices, offsets, scheme="quantity_skew",
                             params=params, seed=seed)

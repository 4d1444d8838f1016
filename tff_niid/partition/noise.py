"""Per-client label noise and feature-noise levels.

Label noise corrupts labels client by client (the partition is unchanged):
"symmetric" flips to a uniformly random *other* class, "pair" flips class c
to c+1 mod K (Han et al. 2018, "Co-teaching: Robust Training of Deep Neural
Networks with Extremely Noisy Labels"; per-client rates as in FedCorr, Xu et
al. 2022). Feature-noise skew follows NIID-Bench (Li et al. 2022): client i
of n adds Gaussian noise of std sigma * i / (n - 1) to its inputs; the noise
itself is applied in the TFF input pipeline (`tff_niid.clientdata`), drawn
once per sample or, with `Partition.feature_noise_redraw`, afresh at every
read as NIID-Bench does.
"""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _checks
from tff_niid.partition import core

MODES = ("symmetric", "pair")


def _client_rates(num_clients, rate, rates, ramp):
  given = [name for name, v in (("rate", rate), ("rates", rates),
                                ("ramp", ramp)) if v is not None]
  if len(given) != 1:
    raise ValueError("give exactly one of `rate` (all clients), `rates` (one "
                     "per client) or `ramp=(low, high)`; got "
                     f"{given or 'none'}.")
  if rate is not None:
    values = np.full(num_clients, _checks.check_fraction("rate", rate))
  elif rates is not None:
    values = np.asarray(rates, dtype=np.float64)
    if values.shape != (num_clients,):
      raise ValueError(f"`rates` needs one rate per client ({num_clients}); "
                       f"got shape {values.shape}.")
  else:
    if np.ndim(ramp) != 1 or len(ramp) != 2:
      raise ValueError(f"`ramp` must be a pair (low, high) of rates in [0, 1]; "
                       f"got {ramp!r}.")
    low, high = (_checks.check_fraction("ramp", v) for v in ramp)
    values = np.linspace(low, high, num_clients)
  if np.any(~np.isfinite(values)) or values.min() < 0 or values.max() > 1:
    raise ValueError("noise rates must lie in [0, 1].")
  return values


def label_noise(labels: np.ndarray, partition: core.Partition, *,
                rate: float | None = None, rates: np.ndarray | None = None,
                ramp: tuple[float, float] | None = None,
                noisy_clients: float | None = None, mode: str = "symmetric",
                num_classes: int | None = None,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Flips exactly round(rate_i * n_i) random labels of each client i.

  Args:
    labels: the true labels the partition was made from.
    partition: a disjoint `Partition`.
    rate / rates / ramp: exactly one: a rate for all clients, a sequence of
      per-client rates, or (low, high) for rates rising linearly over clients.
    noisy_clients: optional fraction in [0, 1]: only a random subset of
      round(noisy_clients * num_clients) clients (fixed by `seed`) gets its
      rate, the others stay clean (FedCorr's fraction of noisy clients).
    mode: "symmetric" or "pair".
    num_classes: optional check: if given, must be max label + 1, the number
      of classes flips choose from (another K would make labels of classes
      the data does not have, or fold classes together).
    seed: non-negative integer seed.

  Returns:
    (noisy_labels, flipped): a new int64 label array and a boolean mask of the
    samples whose label was changed.
  """
  labels, k = _checks.check_labels(labels)
  partition.check_labels(labels)
  if not partition.disjoint:
    raise ValueError("label_noise needs a disjoint partition.")
  if mode not in MODES:
    raise ValueError(f"unknown noise mode {mode!r}; choose one of {MODES}.")
  if num_classes is not None and (isinstance(num_classes, bool) or
                                  num_classes != k):
    raise ValueError(
        f"`num_classes`={num_classes!r} does not match `labels`, whose class "
        f"ids run 0..{k - 1} ({k} classes): flips choose among those; omit "
        "num_classes.")
  if k < 2:
    raise ValueError("label noise needs at least 2 classes.")
  seed = _checks.check_seed(seed)
  client_rates = _client_rates(len(partition), rate, rates, ramp)
  if noisy_clients is not None:
    count = round(_checks.check_fraction("noisy_clients", noisy_clients) *
                  len(partition))
    if count == 0 and noisy_clients > 0:
      _checks.warn_caller(
          f"label_noise(noisy_clients={noisy_clients:g}) of "
          f"{len(partition)} clients rounds to 0 noisy clients: no label is "
          "flipped.")
    # A stream of its own: specs without noisy_clients draw exactly as
    # before it existed, so their saved partitions stay reproducible.
    noisy = np.random.default_rng([seed, 1]).permutation(len(partition))[:count]
    client_rates = np.where(np.isin(np.arange(len(partition)), noisy),
                            client_rates, 0.0)
  rng = np.random.default_rng(seed)
  sizes = partition.sizes
  num_flips = np.rint(client_rates * sizes).astype(np.int64)
  # Rank each client's samples by a random score; flip the lowest ranks.
  owner = partition.client_of_position()
  order = np.lexsort((rng.random(len(owner)), owner))
  rank = np.empty_like(order)
  rank[order] = np.arange(order.shape[0]) - partition.offsets[owner]
  chosen = partition.indices[rank < num_flips[owner]]
  noisy = labels.copy()
  if mode == "pair":
    noisy[chosen] = (labels[chosen] + 1) % k
  else:  # a uniformly random other class
    shift = rng.integers(1, k, size=chosen.shape[0])
    noisy[chosen] = (labels[chosen] + shift) % k
  flipped = np.zeros(labels.shape[0], dtype=bool)
  flipped[chosen] = True
  return noisy, flipped


def feature_noise_levels(num_clients: int, sigma: float) -> np.ndarray:
  """NIID-Bench feature-noise skew: client i gets std sigma * i / (n - 1).

  The levels of NIID-Bench experiments.py (`noise_type="level"`: `noise /
  (n_parties - 1) * party_id`; party 0 is clean). NIID-Bench adds fresh
  noise at every read (utils.py `AddGaussianNoise`, after `ToTensor`: pixels
  in [0, 1], no clipping, no normalisation for MNIST/FMNIST) and, with
  noise > 0, evaluates on the test set copied once per party with that
  party's noise, also fresh at every read. The spec
  `feature_noise(sigma=..., redraw=true)` (`Partition.feature_noise_redraw`)
  does both; without `redraw`, `tff_niid.clientdata` draws each sample's
  noise once and evaluation uses the clean test set.
  """
  num_clients = _checks.check_positive("num_clients", num_clients,
                                       integer=True)
  sigma = _checks.check_positive("sigma", sigma, allow_zero=True)
  if num_clients == 1:
    return np.zeros(1)
  return sigma * np.arange(num_clients) / (num_clients - 1)

"""IID partition: a uniformly random split into near-equal clients."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _checks
from tff_niid.partition import core


def iid(labels: np.ndarray, num_clients: int, *,
        seed: int) -> core.Partition:
  """Splits the samples uniformly at random into `num_clients` clients.

  The IID baseline of McMahan et al. 2017 ("Communication-Efficient Learning
  of Deep Networks from Decentralized Data", Sec. 3) and NIID-Bench (Li et
  al. 2022, "homo").

  Guarantees: every sample belongs to exactly one client; client sizes differ
  by at most one; the same seed gives the identical partition.

  Args:
    labels: 1-D integer array of class ids (only its length is used, but it is
      validated and fingerprinted like every scheme's input).
    num_clients: number of clients, 1 <= num_clients <= len(labels).
    seed: non-negative integer seed.

  Returns:
    A `Partition`.
  """
  labels, _ = _checks.check_labels(labels)
  num_clients = _checks.check_num_clients(num_clients, labels.shape[0])
  seed = _checks.check_seed(seed)
  rng = np.random.default_rng(seed)
  indices = rng.permutation(labels.shape[0])
  sizes = np.full(num_clients, labels.shape[0] // num_clients)
  sizes[:labels.shape[0] % num_clients] += 1
  offsets = np.concatenate([[0], np.cumsum(sizes)])
  return core.make_partition(labels, indices, offsets, scheme="iid",
                             params={"num_clients": num_clients}, seed=seed)

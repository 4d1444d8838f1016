"""Natural partition: one client per distinct id (writer, region, cluster)."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _checks
from tff_niid.partition import core


def natural(labels: np.ndarray, ids: np.ndarray) -> core.Partition:
  """One client per distinct value of `ids`; the data defines the clients.

  Like LEAF's FEMNIST (one client per writer, Caldas et al. 2018): pass any
  per-sample id — a writer, a region, or e.g. k-means cluster ids from
  `tff_niid.partition.attributes.kmeans_clusters`. Clients are ordered by
  sorted id and named `str(id)`. Deterministic (no seed; recorded as None).

  Guarantees: every sample belongs to exactly one client; no empty client.
  """
  labels, _ = _checks.check_labels(labels)
  ids = _checks.check_per_sample("ids", ids, labels.shape[0])
  names, owner = np.unique(ids, return_inverse=True)
  indices = np.argsort(owner, kind="stable")
  offsets = np.concatenate([[0], np.cumsum(np.bincount(owner))])
  return core.make_partition(labels, indices, offsets, scheme="natural",
                             params={"num_clients": int(names.shape[0])},
                             seed=None, client_names=[str(x) for x in names])

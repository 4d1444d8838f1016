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

  Raises:
    ValueError: `ids` not one per sample, of no single type, or floats that
      are not whole numbers: a continuous attribute (an image's slant, say)
      has about as many distinct values as samples, so one client each.
  """
  labels, _ = _checks.check_labels(labels)
  ids = _checks.check_per_sample("ids", ids, labels.shape[0])
  if ids.dtype.kind == "f":
    fractional = ids[ids != np.round(ids)]
    if fractional.size:
      raise ValueError(
          f"`ids` are client ids, but they hold fractional numbers (e.g. "
          f"{fractional[0]:.6g}; {np.unique(ids).size} distinct values for "
          f"{ids.size} samples): a continuous attribute gives about one "
          "client per sample. Bin it into ids first (e.g. np.digitize), use "
          "natural(kmeans=K), or order classes by it with key(...).")
  names, owner = np.unique(ids, return_inverse=True)
  indices = np.argsort(owner, kind="stable")
  offsets = np.concatenate([[0], np.cumsum(np.bincount(owner))])
  return core.make_partition(labels, indices, offsets, scheme="natural",
                             params={"num_clients": int(names.shape[0])},
                             seed=None, client_names=[str(x) for x in names])

"""Natural partition: one client per distinct id (writer, region, cluster)."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _checks
from tff_niid.partition import core


GROUP_MODES = ("allow_smaller", "allow_bigger", "strict")


def natural(labels: np.ndarray, ids: np.ndarray, *, group_size: int = 1,
            mode: str = "allow_smaller") -> core.Partition:
  """One client per distinct id, or per group of ids; the data defines them.

  One client per distinct value of `ids`, like LEAF's FEMNIST (one client
  per writer, Caldas et al. 2018): pass any per-sample id — a writer, a
  region, or e.g. k-means cluster ids from
  `tff_niid.partition.attributes.kmeans_clusters`. Clients are ordered by
  sorted id and named `str(id)`. Deterministic (no seed; recorded as None).

  With `group_size` k > 1, the sorted distinct ids are cut into groups of k
  consecutive ones, one client each (an organisation of k users: cross-silo
  from cross-device data), as Flower Datasets' `GroupedNaturalIdPartitioner`
  with `sort_unique_ids=True`. When k does not divide the U distinct ids,
  `mode` says where the remaining U mod k go: "allow_smaller" (default), a
  last, smaller group (one group of all ids when U < k); "allow_bigger",
  into the U // k groups, whose sizes then differ by at most one, the
  larger first (numpy's array_split, as Flower); "strict", refused. A
  group is named by its ids joined with "+".

  Guarantees: every sample belongs to exactly one client; no empty client.

  Raises:
    ValueError: `ids` not one per sample, of no single type, or floats that
      are not whole numbers: a continuous attribute (an image's slant, say)
      has about as many distinct values as samples, so one client each; a
      `group_size` that is not a positive integer, or with "allow_bigger"
      or "strict" larger than the number of distinct ids; a "strict" one
      that does not divide it.
  """
  labels, _ = _checks.check_labels(labels)
  ids = _checks.check_per_sample("ids", ids, labels.shape[0])
  group_size = _checks.check_positive("group_size", group_size, integer=True)
  mode = _checks.check_choice("mode", mode, GROUP_MODES)
  if ids.dtype.kind == "f":
    fractional = ids[ids != np.round(ids)]
    if fractional.size:
      raise ValueError(
          f"`ids` are client ids, but they hold fractional numbers (e.g. "
          f"{fractional[0]:.6g}; {np.unique(ids).size} distinct values for "
          f"{ids.size} samples): a continuous attribute gives about one "
          "client per sample. Bin it into ids first (e.g. np.digitize), use "
          "natural(kmeans=K), or order classes by it with key(...).")
  # One stable sort by id: each client's samples in their order in `ids`,
  # the clients in sorted order of their ids.
  indices = np.argsort(ids, kind="stable")
  ordered = ids[indices]
  first = np.concatenate([[True], ordered[1:] != ordered[:-1]])
  names = [str(x) for x in ordered[first]]
  owner = np.cumsum(first) - 1  # of each sample of `ordered`
  params: dict[str, object] = {}
  if group_size > 1:
    group = _groups(len(names), group_size, mode)
    owner = group[owner]
    names = ["+".join(members) for members in np.split(
        np.array(names, dtype=object), np.flatnonzero(np.diff(group)) + 1)]
    params = {"group_size": group_size, "mode": mode}
    # A group's samples in their order in `ids` too, not id by id.
    group_of_sample = np.empty_like(owner)
    group_of_sample[indices] = owner
    indices = np.argsort(group_of_sample, kind="stable")
  offsets = np.concatenate([[0], np.cumsum(np.bincount(owner))])
  return core.make_partition(labels, indices, offsets, scheme="natural",
                             params={"num_clients": len(names), **params},
                             seed=None, client_names=names)


def _groups(num_ids: int, group_size: int, mode: str) -> np.ndarray:
  """The group of each of `num_ids` sorted ids (non-decreasing), cut into
  groups of `group_size` as `mode` says (see `natural`)."""
  full, remainder = divmod(num_ids, group_size)
  position = np.arange(num_ids)
  if mode == "allow_smaller" or not remainder:
    return position // group_size
  if mode == "strict" or not full:
    problem = (f"does not divide the {num_ids} distinct ids ({remainder} "
               "left over)" if full else
               f"is more than the {num_ids} distinct ids")
    need = (f"groups of exactly {group_size}" if mode == "strict" else
            f"at least {group_size} ids")
    raise ValueError(
        f"group_size={group_size} {problem}; mode={mode} needs {need}: use "
        "mode=allow_smaller, or another group_size.")
  # allow_bigger: np.array_split into `full` groups, the first
  # num_ids mod full of them one id larger than the others.
  size, larger = divmod(num_ids, full)
  bigger = larger * (size + 1)
  return np.where(position < bigger, position // (size + 1),
                  larger + (position - bigger) // size)

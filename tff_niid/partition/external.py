"""Partitions made elsewhere: another package's client index lists."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

import numpy as np

from tff_niid.partition import _checks
from tff_niid.partition import core

# {client id: index array}, [index array, ...] or a 2-D array.
ClientIndices = Union[Mapping[Any, Any], Sequence[Any], np.ndarray]


def from_client_indices(labels: np.ndarray, clients: ClientIndices, *,
                        source: str = "external") -> core.Partition:
  """The Partition holding the clients' sample indices as given.

  For partitions drawn by another package, to be measured, saved and
  trained on as tff_niid's own: NIID-Bench's `net_dataidx_map` and FedLab's
  `client_dict` ({client id: indices}), or a list of index arrays (one per
  client, as Flower Datasets' partitioners hold them). The reverse needs no
  function: `dict(enumerate(part))` is NIID-Bench's map of a Partition, and
  `list(part)` its index arrays.

  Guarantees: client i holds `clients[i]`'s samples (of a mapping, its i-th
  entry) in the order given; a mapping's keys become the client ids
  (`str(key)`, as TFF names clients). Samples no client holds are left out,
  as by label_quantity with a class no client draws. The scheme is recorded
  as "external", with params {"source": source, "num_clients": n}, no seed
  and no spec: the partition is saved as given, not drawn again.

  Args:
    labels: the 1-D integer labels the indices point into.
    clients: {client id: index array}, a sequence of index arrays, or a
      2-D array of equal clients (a client per row).
    source: what made the partition (e.g. "NIID-Bench noniid-labeldir"),
      recorded in the params.

  Raises:
    ValueError: no clients; a client with no samples, or with indices that
      are not whole numbers, not 1-D or out of range for `labels`; a sample
      held twice; client ids that are alike as text (1 and "1").
  """
  labels, _ = _checks.check_labels(labels)
  if not isinstance(source, str) or not source:
    raise ValueError(f"`source` must be a non-empty string; got {source!r}.")
  if isinstance(clients, Mapping):
    names = [str(key) for key in clients]
    held = list(clients.values())
    if len(set(names)) != len(names):
      raise ValueError(f"client ids {list(clients)} are alike as text "
                       "(client ids are strings): give distinct ones.")
  elif (isinstance(clients, Sequence) and not isinstance(clients, str)) or (
      isinstance(clients, np.ndarray) and clients.ndim == 2):
    names, held = None, list(clients)  # a 2-D array: a client per row
  else:
    raise ValueError("`clients` must be a mapping {client id: indices}, a "
                     "sequence of index arrays or a 2-D array (a client per "
                     f"row); got {type(clients).__name__}.")
  if not held:
    raise ValueError("`clients` holds no client.")
  ids = names if names is not None else list(map(str, range(len(held))))
  arrays = [_client_indices(ids[i], each, labels.shape[0])
            for i, each in enumerate(held)]
  empty = [ids[i] for i, a in enumerate(arrays) if a.size == 0]
  if empty:
    shown = ", ".join(empty[:10]) + (f", ... ({len(empty)} in all)"
                                     if len(empty) > 10 else "")
    raise ValueError(f"client(s) {shown} hold no sample; every client needs "
                     "one (leave empty ones out).")
  indices = np.concatenate(arrays)
  sizes = [a.size for a in arrays]
  twice = core.repeated_samples(indices, labels.shape[0])
  if twice.size:
    owner = np.repeat(np.arange(len(arrays)), sizes)
    holders = [ids[i] for i in owner[indices == twice[0]]]
    raise ValueError(
        f"{twice.size} sample(s) are held more than once, e.g. sample "
        f"{twice[0]} by clients {', '.join(holders)}: a partition holds "
        "each sample once.")
  offsets = np.concatenate([[0], np.cumsum(sizes)])
  return core.make_partition(
      labels, indices, offsets, scheme="external",
      params={"source": source, "num_clients": len(arrays)}, seed=None,
      client_names=names)


def _client_indices(client: str, values, num_samples: int) -> np.ndarray:
  """One client's indices as int64, or ValueError naming the client."""
  if isinstance(values, (set, frozenset)):
    raise ValueError(f"client {client}'s indices are a set, which has no "
                     "order: give them as a list or array, in the order the "
                     "client holds them.")
  arr = np.asarray(values)
  if arr.ndim != 1:
    raise ValueError(f"client {client}'s indices must be 1-D; got shape "
                     f"{arr.shape}.")
  if arr.size == 0:
    return arr.astype(np.int64)
  if arr.dtype == bool or arr.dtype.kind not in "iuf" or (
      arr.dtype.kind == "f" and not np.all(arr == np.round(arr))):
    raise ValueError(f"client {client}'s indices must be whole numbers; got "
                     f"dtype {arr.dtype}.")
  if arr.min() < 0 or arr.max() >= num_samples:
    bad = arr[(arr < 0) | (arr >= num_samples)][0]
    raise ValueError(f"client {client} holds index {bad:g}, out of range for "
                     f"{num_samples} labels.")
  return arr.astype(np.int64)

"""Pathological non-IID: label-sorted shards (McMahan et al. 2017)."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core


def shards(labels: np.ndarray, num_clients: int, *, shards_per_client: int = 2,
           seed: int, sizes: np.ndarray | None = None,
           key: np.ndarray | None = None,
           key_noise: float = 0.0) -> core.Partition:
  """Sorts samples by label, cuts equal shards, deals each client some shards.

  McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks
  from Decentralized Data", Sec. 3): MNIST sorted by digit, 200 shards of
  300, 2 per client for 100 clients, so most clients see two digits.

  With `sizes` (e.g. from `quantity_sizes`: lognormal or Dirichlet client
  sizes, "power-law" sizes as in the FedProx paper's MNIST, whose own
  partition is `consecutive_classes`): client i's size is cut into
  `shards_per_client` shards (within one sample of each other), and all
  shards are laid in random order along the label-sorted samples
  (`_allocate.transport_cells`), so a shard is again a run of the sorted
  labels: one class, or more where it crosses a class boundary (large shards
  do).

  Within a class the order is random, or sorted by `key` (then a client's
  samples of a class are a contiguous key range of it: clients differ in
  style too).

  Guarantees: every sample belongs to exactly one client; shard sizes differ
  by at most one (num_clients * shards_per_client shards), or with `sizes`
  client i has exactly sizes[i] samples; no empty client; same seed ->
  identical partition.

  Args:
    labels: 1-D integer array of class ids 0..K-1.
    num_clients: number of clients.
    shards_per_client: shards per client (>= 1; total shards <= samples).
    seed: non-negative integer seed.
    sizes: optional client sizes, integers >= shards_per_client summing to
      len(labels).
    key, key_noise: optional within-class ordering (see `dirichlet`).
  """
  labels, num_classes = _checks.check_labels(labels)
  n = labels.shape[0]
  num_clients = _checks.check_num_clients(num_clients, n)
  shards_per_client = _checks.check_positive(
      "shards_per_client", shards_per_client, integer=True)
  num_shards = num_clients * shards_per_client
  if num_shards > n:
    raise ValueError(
        f"{num_clients} clients x {shards_per_client} shards = {num_shards} "
        f"shards exceed the {n} samples; use shards_per_client <= "
        f"{n // num_clients}.")
  seed = _checks.check_seed(seed)
  if sizes is not None:
    sizes = _checks.check_sizes(
        sizes, num_clients, n, minimum=shards_per_client,
        why=f"each of a client's {shards_per_client} shards holds a sample")
  key, key_noise = _allocate.check_key(key, key_noise, n)
  rng = np.random.default_rng(seed)
  params: dict[str, object] = {
      "num_clients": num_clients, "shards_per_client": shards_per_client,
      "key": core.key_param(key), "key_noise": key_noise}
  if sizes is None:
    indices, offsets = _equal_shards(labels, num_classes, num_clients,
                                     shards_per_client, rng, key, key_noise)
  else:
    params["sizes"] = sizes.tolist()  # recorded, to draw it again
    counts = _sized_shard_counts(labels, num_classes, sizes,
                                 shards_per_client, rng)
    indices, offsets = _allocate.assign_by_counts(
        labels, num_classes, counts, rng, key=key, key_noise=key_noise)
  return core.make_partition(labels, indices, offsets, scheme="shards",
                             params=params, seed=seed)


def _equal_shards(labels, num_classes, num_clients, shards_per_client, rng,
                  key, key_noise):
  """McMahan's deal: equal shards of the sorted order, dealt at random."""
  n = labels.shape[0]
  num_shards = num_clients * shards_per_client
  order, starts = _allocate.class_sorted_indices(labels, num_classes)
  _allocate.order_within_classes(order, starts, rng, key=key,
                                 key_noise=key_noise)
  shard_bounds = np.rint(np.linspace(0, n, num_shards + 1)).astype(np.int64)
  # Client i owns shards dealt[i * spc:(i + 1) * spc].
  dealt = rng.permutation(num_shards)
  owner = np.repeat(np.argsort(dealt) // shards_per_client,
                    np.diff(shard_bounds))
  by_client = np.argsort(owner, kind="stable")
  offsets = np.concatenate(
      [[0], np.cumsum(np.bincount(owner, minlength=num_clients))])
  return order[by_client], offsets


def _sized_shard_counts(labels, num_classes, sizes, shards_per_client, rng):
  """Clients x classes counts of shards cut from `sizes`, laid in random order
  along the label-sorted samples."""
  slot = np.arange(shards_per_client)
  lengths = (sizes[:, None] // shards_per_client +
             (slot < sizes[:, None] % shards_per_client)).ravel()
  laid = rng.permutation(lengths.shape[0])  # shard laid at each position
  rows, cols, amounts = _allocate.transport_cells(
      lengths[laid], np.bincount(labels, minlength=num_classes))
  counts = np.zeros((sizes.shape[0], num_classes), dtype=np.int64)
  np.add.at(counts, (laid[rows] // shards_per_client, cols), amounts)
  return counts

"""Pathological non-IID: label-sorted shards (McMahan et al. 2017)."""

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core


def shards(labels, num_clients, *, shards_per_client=2, seed, key=None,
           key_noise=0.0):
  """Sorts samples by label, cuts equal shards, deals each client some shards.

  McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks
  from Decentralized Data", Sec. 3): MNIST sorted by digit, 200 shards of
  300, 2 per client for 100 clients, so most clients see two digits.

  Within a class the order is random, or sorted by `key` (then a shard is a
  contiguous key range of its class: clients differ in style too).

  Guarantees: every sample belongs to exactly one client; shard sizes differ
  by at most one (num_clients * shards_per_client shards); no empty client;
  same seed -> identical partition.

  Args:
    labels: 1-D integer array of class ids 0..K-1.
    num_clients: number of clients.
    shards_per_client: shards per client (>= 1; total shards <= samples).
    seed: non-negative integer seed.
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
  key, key_noise = _allocate.check_key(key, key_noise, n)
  rng = np.random.default_rng(seed)
  order, starts = _allocate.class_sorted_indices(labels, num_classes)
  _allocate.order_within_classes(order, starts, rng, key=key,
                                 key_noise=key_noise)
  shard_bounds = np.rint(np.linspace(0, n, num_shards + 1)).astype(np.int64)
  # Client i owns shards dealt[i * spc:(i + 1) * spc].
  dealt = rng.permutation(num_shards)
  owner = np.repeat(np.argsort(dealt) // shards_per_client,
                    np.diff(shard_bounds))
  by_client = np.argsort(owner, kind="stable")
  indices = order[by_client]
  offsets = np.concatenate(
      [[0], np.cumsum(np.bincount(owner, minlength=num_clients))])
  params = {"num_clients": num_clients, "shards_per_client": shards_per_client,
            "key": key is not None, "key_noise": key_noise}
  return core.make_partition(labels, indices, offsets, scheme="shards",
                             params=params, seed=seed)

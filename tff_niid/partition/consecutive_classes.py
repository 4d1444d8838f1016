"""FedProx's MNIST partition: k consecutive classes per client, lognormal
pieces of each class."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core


def consecutive_classes(labels: np.ndarray, num_clients: int, *,
                        seed: int, classes_per_client: int = 2,
                        sigma: float = 2.0, min_per_class: int = 5,
                        key: np.ndarray | None = None,
                        key_noise: float = 0.0) -> core.Partition:
  """k consecutive classes per client in lognormal pieces (FedProx's MNIST).

  The MNIST partition of FedProx (Li et al. 2020, "Federated Optimization in
  Heterogeneous Networks", Sec. 5.1: 1,000 devices, 2 digits each, sizes
  following a power law; its `data/mnist/generate_niid.py`), which Flower
  Datasets' `DistributionPartitioner` generalises. Client i holds the k
  classes i, i+1, ..., i+k-1 (mod K). Each class c is cut into one piece
  per client holding it: every piece first gets `min_per_class` samples,
  then the rest of the class, R_c = n_c - min_per_class * h_c (h_c holders),
  is shared by weights w drawn independently from lognormal(0, sigma): a
  piece gets floor(w / sum(w) * R_c) more, and what the floors leave (fewer
  than h_c samples) goes to one of the class's pieces drawn uniformly, as
  Flower's partitioner does (FedProx's script leaves it out). A client's
  size, and its mix of its k classes, are both skewed: at sigma=2 a few
  pieces hold most of a class. Within a class, the samples are drawn at
  random, or in the order of `key`.

  With num_clients a multiple of K (FedProx: 1,000 clients, K=10; Flower
  requires it), every class has k * num_clients / K holders, and the
  partition is Flower's `DistributionPartitioner(distribution_array=
  lognormal(0, sigma, (K, k * num_clients / K)), num_unique_labels_per_
  partition=k, preassigned_num_samples_per_label=min_per_class)` in
  distribution (tested against its loop), where Flower cuts each class in
  dataset order. Other client counts are allowed; classes then have
  unequal numbers of holders (at 13 clients and k=2, 2 to 4).

  Guarantees: client i holds exactly the classes (i + j) mod K, j < k, each
  with >= `min_per_class` samples; every sample belongs to exactly one
  client; same seed -> identical partition. ValueError where a class is
  held by no client (num_clients + k - 1 < K) or has fewer samples than
  `min_per_class` for each of its holders.

  Args:
    labels: 1-D integer array of class ids 0..K-1, each present.
    num_clients: number of clients.
    seed: non-negative integer seed.
    classes_per_client: k, 1 <= k <= K (FedProx: 2).
    sigma: the lognormal's sigma, >= 0 (FedProx: 2.0; 0 gives equal pieces).
    min_per_class: samples every piece gets first, >= 1 (FedProx: 5).
    key, key_noise: optional within-class ordering (see `dirichlet`).
  """
  labels, num_classes = _checks.check_labels(labels)
  _checks.check_every_class_held(labels, num_classes, "consecutive_classes")
  num_clients = _checks.check_num_clients(num_clients, labels.shape[0])
  seed = _checks.check_seed(seed)
  k = _checks.check_classes_per_client(classes_per_client, num_classes)
  sigma = _checks.check_positive("sigma", sigma, allow_zero=True)
  min_per_class = _checks.check_positive("min_per_class", min_per_class,
                                         integer=True)
  key, key_noise = _allocate.check_key(key, key_noise, labels.shape[0])
  if min_per_class > labels.shape[0]:  # (and the products below fit int64)
    raise ValueError(f"`min_per_class`={min_per_class} exceeds the "
                     f"{labels.shape[0]} samples.")
  if num_clients + k - 1 < num_classes:
    raise ValueError(
        f"{num_clients} clients of {k} consecutive classes hold only classes "
        f"0..{num_clients + k - 2} of the {num_classes}; use at least "
        f"{num_classes - k + 1} clients or more classes_per_client.")
  offset = (np.arange(num_classes) - np.arange(num_clients)[:, None]) % (
      num_classes)
  holds = offset < k  # clients x classes
  holders = holds.sum(axis=0)
  class_sizes = np.bincount(labels, minlength=num_classes)
  short = np.flatnonzero(class_sizes < min_per_class * holders)
  if short.size:
    c = int(short[0])
    raise ValueError(
        f"class {c} has {class_sizes[c]} samples, fewer than min_per_class="
        f"{min_per_class} for each of its {holders[c]} holders; lower "
        "min_per_class or use fewer clients.")
  rng = np.random.default_rng(seed)
  # Lognormal(0, sigma) weights, each class's scaled by exp(-sigma * its
  # largest normal): the same shares, and no overflow to inf / inf at a
  # large sigma (the largest weight of a class is 1).
  normal = rng.standard_normal(holds.shape)
  top = np.where(holds, normal, -np.inf).max(axis=0)
  weights = np.where(holds, np.exp(sigma * np.minimum(normal - top, 0.0)),
                     0.0)
  rest = class_sizes - min_per_class * holders
  counts = np.where(holds, min_per_class + np.floor(
      weights / weights.sum(axis=0) * rest).astype(np.int64), 0)
  # What the floors leave goes to one holder drawn uniformly, as Flower's
  # partitioner does, so that every sample is assigned (FedProx's script
  # leaves it out).
  chosen = rng.integers(0, holders)
  rank = np.cumsum(holds, axis=0) - 1
  receiver = np.argmax(holds & (rank == chosen), axis=0)
  counts[receiver, np.arange(num_classes)] += class_sizes - counts.sum(axis=0)
  indices, offsets = _allocate.assign_by_counts(
      labels, num_classes, counts, rng, key=key, key_noise=key_noise)
  return core.make_partition(
      labels, indices, offsets, scheme="consecutive_classes",
      params={"num_clients": num_clients, "classes_per_client": k,
              "sigma": sigma, "min_per_class": min_per_class,
              "key": core.key_param(key), "key_noise": key_noise},
      seed=seed, min_size=k * min_per_class)

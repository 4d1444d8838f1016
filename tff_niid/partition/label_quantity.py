"""#C=k label-quantity skew: each client holds exactly k classes."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core

# How clients draw their classes: NIID-Bench's rule (Flower's
# "first-deterministic"), and Flower's PathologicalPartitioner's other two.
CLASS_ASSIGNMENTS = ("first_deterministic", "random", "deterministic")


def label_quantity(labels: np.ndarray, num_clients: int, *,
                   classes_per_client: int, seed: int,
                   class_assignment: str = "first_deterministic",
                   sizes: np.ndarray | None = None,
                   key: np.ndarray | None = None,
                   key_noise: float = 0.0) -> core.Partition:
  """Each client gets exactly `classes_per_client` distinct labels.

  NIID-Bench's quantity-based label imbalance "#C=k" (Li et al. 2022,
  "Federated Learning on Non-IID Data Silos: An Experimental Study",
  `noniid-#label{k}`): client i holds label i mod K plus k-1 other labels
  drawn at random; the samples of each label are split evenly (+-1) among the
  clients holding it. With num_clients >= K this is NIID-Bench's partition in
  distribution (utils.py `partition_data`: uniform distinct extra labels,
  `np.array_split` among the holders in client order; tested against a
  re-implementation). With fewer clients than labels, labels are first dealt
  round robin, in a random order, so that every label is held; NIID-Bench
  has no counterpart there (its `np.array_split` of a label nobody drew into
  0 parts raises).

  `class_assignment` chooses how clients draw their labels; the default,
  "first_deterministic", is the rule above. The other two are those of
  Flower Datasets' `PathologicalPartitioner(class_assignment_mode=...)`:
  "random", each client k distinct labels uniformly at random;
  "deterministic", client i the labels (i + j) mod K for j < k. The label
  counts are Flower's in distribution (tested against its loop); within a
  label the samples are drawn at random, where Flower cuts the label's
  samples in dataset order (random on a shuffled dataset, the same for every
  seed on a sorted one). Both modes can leave a label held by no client
  (with "random", likely where clients are few); its samples are then left
  unassigned, with a warning, as Flower does. They take no `sizes`.

  With `sizes` (e.g. from `quantity_sizes`: lognormal or Dirichlet client
  sizes; the FedProx paper's own MNIST partition, with lognormal pieces of
  each label, is `consecutive_classes`), the labels are chosen as above and
  each label is split among its holders so that client sizes match `sizes`
  where the labels' sample counts allow it: each holder first gets one
  sample of each of its labels, then the rest by iterative proportional
  fitting (`_allocate.fit_counts`). Client i then has sizes[i] samples up to
  k (rounding within each label); where the labels' samples cannot give
  every holder its size (e.g. a client drawn larger than its labels'
  samples minus what their other holders need), sizes are as near as the
  fitting comes.

  Guarantees: every client holds exactly k labels, each with >= 1 sample;
  with "first_deterministic", every label is held, so every sample is
  assigned (ValueError when k * num_clients < K, as then some label cannot
  be held); same seed -> identical partition.

  Args:
    labels: 1-D integer array of class ids 0..K-1.
    num_clients: number of clients.
    classes_per_client: k, 1 <= k <= K.
    seed: non-negative integer seed.
    class_assignment: one of `CLASS_ASSIGNMENTS` (above).
    sizes: optional target client sizes, integers >= k summing to
      len(labels).
    key, key_noise: optional within-class ordering (see `dirichlet`).
  """
  labels, num_classes = _checks.check_labels(labels)
  _checks.check_every_class_held(labels, num_classes, "label_quantity")
  n = labels.shape[0]
  num_clients = _checks.check_num_clients(num_clients, n)
  k = _checks.check_classes_per_client(classes_per_client, num_classes)
  seed = _checks.check_seed(seed)
  class_assignment = _checks.check_choice(
      "class_assignment", class_assignment, CLASS_ASSIGNMENTS)
  if sizes is not None and class_assignment != "first_deterministic":
    raise ValueError(
        f"class_assignment={class_assignment} takes no sizes: it can leave "
        "labels held by no client, whose samples no size could count; use "
        "class_assignment=first_deterministic.")
  if sizes is not None:
    sizes = _checks.check_sizes(
        sizes, num_clients, n, minimum=k,
        why=f"a client holds >= 1 sample of each of its {k} classes")
  key, key_noise = _allocate.check_key(key, key_noise, n)
  rng = np.random.default_rng(seed)
  holds = (_first_deterministic(num_clients, num_classes, k, rng)
           if class_assignment == "first_deterministic" else
           _flower_assignment(class_assignment, num_clients, num_classes, k,
                              rng))
  holders = holds.sum(axis=0)
  class_sizes = np.bincount(labels, minlength=num_classes)
  short = np.flatnonzero(holders > class_sizes)
  if short.size:
    raise ValueError(
        f"label(s) {_checks.id_list(short)} have fewer samples than the "
        "clients drawn to hold them; use fewer clients or fewer "
        "classes_per_client.")
  unheld = np.flatnonzero(holders == 0)
  if unheld.size:
    _checks.warn_caller(
        f"label_quantity(class_assignment={class_assignment}): no client "
        f"holds label(s) {_checks.id_list(unheld)}; their "
        f"{int(class_sizes[unheld].sum())} samples are left unassigned (as "
        "Flower's PathologicalPartitioner leaves them out).")
  params = {"num_clients": num_clients, "classes_per_client": k,
            "class_assignment": class_assignment,
            "key": core.key_param(key), "key_noise": key_noise}
  if sizes is None:
    # Even split of class c among its holders: the j-th holder gets
    # floor(n_c / h_c) plus one for the first (n_c mod h_c) holders.
    rank = np.cumsum(holds, axis=0) - 1
    base = np.where(holders > 0, class_sizes // np.maximum(holders, 1), 0)
    extra = rank < np.where(holders > 0,
                            class_sizes % np.maximum(holders, 1), 0)
    counts = np.where(holds, base + extra, 0)
  else:
    params["sizes"] = sizes.tolist()  # recorded, to draw it again
    counts = holds + _allocate.fit_counts(holds, sizes - k,
                                          class_sizes - holders)
  indices, offsets = _allocate.assign_by_counts(
      labels, num_classes, counts, rng, key=key, key_noise=key_noise)
  return core.make_partition(labels, indices, offsets, scheme="label_quantity",
                             params=params, seed=seed)


def _first_deterministic(num_clients, num_classes, k, rng):
  """NIID-Bench's labels (clients x classes, True where held): client i
  holds label i mod K (with fewer clients than labels, the labels dealt
  round robin in a random order) and k - 1 other labels drawn uniformly;
  every label held (ValueError where k * num_clients < K)."""
  # Required labels make every label held: client i gets label i mod K as in
  # NIID-Bench when num_clients >= K; with fewer clients, the labels are
  # dealt round robin in a random order (client j mod n gets the j-th),
  # at most ceil(K/n) <= k each. (Drawn only then: with num_clients >= K
  # the random stream, and so every partition, is as before.)
  j = np.arange(max(num_clients, num_classes))
  dealt = (rng.permutation(num_classes) if num_clients < num_classes
           else np.arange(num_classes))
  required = np.zeros((num_clients, num_classes), dtype=bool)
  required[j % num_clients, dealt[j % num_classes]] = True
  if required.sum(axis=1).max() > k:
    raise ValueError(
        f"{num_clients} clients x {k} classes cannot cover all {num_classes} "
        f"labels; use classes_per_client >= {-(-num_classes // num_clients)}.")
  # The rest: random distinct labels (required ones score -1, so they come
  # first among the k smallest scores).
  scores = np.where(required, -1.0, rng.random((num_clients, num_classes)))
  chosen = np.argsort(scores, axis=1)[:, :k]
  return _holding(chosen, num_classes)


def _flower_assignment(mode, num_clients, num_classes, k, rng):
  """The labels of Flower's "random" (k distinct uniform labels per client)
  or "deterministic" (client i: (i + j) mod K, j < k) mode, as clients x
  classes, True where held."""
  if mode == "random":
    # The k smallest of K uniform scores: a uniform k-subset per client.
    chosen = np.argsort(rng.random((num_clients, num_classes)), axis=1)[:, :k]
  else:
    chosen = (np.arange(num_clients)[:, None] + np.arange(k)) % num_classes
  return _holding(chosen, num_classes)


def _holding(chosen, num_classes):
  """Clients x classes, True at each client's `chosen` labels."""
  num_clients, k = chosen.shape
  holds = np.zeros((num_clients, num_classes), dtype=bool)
  holds[np.repeat(np.arange(num_clients), k), chosen.ravel()] = True
  return holds

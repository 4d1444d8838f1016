"""How non-IID is a partition: label skew, size skew, within-class dependence.

All per-client label measures compare client i's label distribution p_i with
the global distribution p of the assigned samples:

  js         Jensen-Shannon divergence, base 2 (0 = same mix, 1 = disjoint).
  hellinger  sqrt(1 - sum_k sqrt(p_i(k) p(k))), in [0, 1].
  emd        sum_k |p_i(k) - p(k)|: the "earth mover's distance" of Zhao et
             al. 2018 ("Federated Learning with Non-IID Data", Sec. 3.2).
  tv         total variation = emd / 2.
  effective_classes  exp(Shannon entropy of p_i) (natural log): 1 for a
             single-class client, K for a uniform one.
  classes_present    number of classes with at least one sample.

`key_dispersion` measures within-class non-independence (see its docstring).
Everything is vectorised over a (clients x classes) count matrix.
"""

import collections

import numpy as np

from tff_niid.partition import _checks


def _checked(partition, labels):
  """`labels` as int64 with its number of classes; ValueError unless they
  are the labels `partition` was made from (the fingerprint it records):
  another dataset's or split's labels would give wrong figures or index
  errors."""
  labels, num_classes = _checks.check_labels(labels)
  partition.check_labels(labels)
  return labels, num_classes


def label_counts(partition, labels, num_classes=None):
  """(num_clients x num_classes) int64 matrix of label counts per client.

  `labels` are those the partition was made from (checked); `num_classes`
  (default: the largest id + 1) may add empty classes, not drop any.
  """
  labels, k = _checked(partition, labels)
  if num_classes is None:
    num_classes = k
  elif not isinstance(num_classes, (int, np.integer)) or num_classes < k:
    raise ValueError(
        f"`num_classes`={num_classes!r} is fewer than the classes of "
        f"`labels`, whose ids run 0..{k - 1}; omit it, or give an integer "
        f">= {k}.")
  cells = (partition.client_of_position() * num_classes +
           labels[partition.indices])
  return np.bincount(cells, minlength=len(partition) * num_classes).reshape(
      len(partition), num_classes)


def _xlogy(x, y):
  return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


# Clients x classes cells per block of `client_heterogeneity`: its float
# temporaries stay ~100 MB however many clients and classes (100,000 clients
# of 1,000 classes took 5.4 GB in one piece).
_BLOCK_CELLS = 1 << 21


def client_heterogeneity(partition, labels, num_classes=None):
  """Per-client measures (dict of arrays of length num_clients), see module.

  Empty clients (only possible for partial partitions) get zero distance and
  zero classes.
  """
  counts = label_counts(partition, labels, num_classes)
  p = counts.sum(axis=0) / counts.sum()
  step = max(1, _BLOCK_CELLS // counts.shape[1])
  blocks = [_block_heterogeneity(counts[start:start + step], p)
            for start in range(0, counts.shape[0], step)]
  return collections.OrderedDict(
      (name, np.concatenate([block[name] for block in blocks]))
      for name in blocks[0])


def _block_heterogeneity(counts, p):
  """`client_heterogeneity` of a block of clients' count rows, against the
  global mix `p` (each row's figures depend on that row alone)."""
  counts = counts.astype(np.float64)
  sizes = counts.sum(axis=1)
  p_i = counts / np.maximum(sizes, 1)[:, None]
  mid = 0.5 * (p_i + p)
  safe_mid = np.where(mid > 0, mid, 1.0)
  p_all = np.broadcast_to(p, p_i.shape)
  js = 0.5 * (_xlogy(p_i, p_i / safe_mid).sum(axis=1) +
              _xlogy(p_all, p_all / safe_mid).sum(axis=1))
  js = np.where(sizes > 0, js / np.log(2), 0.0)
  hellinger = np.sqrt(np.clip(1 - np.sqrt(p_i * p).sum(axis=1), 0, None))
  emd = np.abs(p_i - p).sum(axis=1)
  entropy = -_xlogy(p_i, p_i).sum(axis=1)
  empty = sizes == 0
  return collections.OrderedDict(
      js=np.clip(js, 0, 1),
      hellinger=np.where(empty, 0.0, hellinger),
      emd=np.where(empty, 0.0, emd),
      tv=np.where(empty, 0.0, emd / 2),
      effective_classes=np.where(empty, 0.0, np.exp(entropy)),
      classes_present=(counts > 0).sum(axis=1),
      size=sizes.astype(np.int64))


def gini(values):
  """Gini coefficient of non-negative values (0 = all equal)."""
  v = np.sort(np.asarray(values, dtype=np.float64))
  n = v.shape[0]
  if n == 0 or v.sum() == 0:
    return 0.0
  return float((2 * np.arange(1, n + 1) - n - 1).dot(v) / (n * v.sum()))


def key_dispersion(partition, labels, key):
  """Within-class non-independence: how narrow is each client's key range?

    sum_{i,c} n_ic * std_ic / sum_{i,c} n_ic * std_c

  where std_ic is the standard deviation of `key` over client i's class-c
  samples and std_c over all assigned class-c samples. About 1 when each
  client's class-c samples are a random draw of class c; close to 0 when
  they are a contiguous range of class c sorted by key (as `key=` makes them).

  std_ic is a population std, which a random draw of a few samples puts
  well below std_c (0 for one sample): where clients hold only a few
  samples of a class (many clients, small clients) even a random draw reads
  well below 1. The same measure of a random draw of these cell sizes (the
  key shuffled within each class, seed 0) is then below 0.9, and a
  UserWarning gives it: compare with it, not with 1.

  `key` must be numeric; for a categorical key pass integer codes only if
  their order means something, or use a one-hot/ordinal encoding of your own.
  """
  labels, num_classes = _checked(partition, labels)
  key = _checks.check_per_sample("key", key, labels.shape[0])
  if key.dtype.kind not in "biuf":
    raise ValueError("key_dispersion needs a numeric key; got dtype "
                     f"{key.dtype}.")
  idx = partition.indices
  k = key[idx].astype(np.float64)
  c = labels[idx]
  cells = partition.client_of_position() * num_classes + c
  m = len(partition) * num_classes

  def std_by(values, groups, size):
    n = np.bincount(groups, minlength=size)
    s1 = np.bincount(groups, weights=values, minlength=size)
    s2 = np.bincount(groups, weights=values * values, minlength=size)
    mean = s1 / np.maximum(n, 1)
    return n, np.sqrt(np.clip(s2 / np.maximum(n, 1) - mean ** 2, 0, None))

  n_cell, std_cell = std_by(k, cells, m)
  _, std_class = std_by(k, c, num_classes)
  denominator = (n_cell * np.tile(std_class, len(partition))).sum()
  if denominator == 0:
    return 0.0
  # The key shuffled within each class: a random draw of the same cells.
  shuffled = np.random.default_rng(0).permutation(k.shape[0])
  drawn = np.empty_like(k)
  drawn[np.argsort(c, kind="stable")] = k[
      shuffled[np.argsort(c[shuffled], kind="stable")]]
  random_draw = float(
      (n_cell * std_by(drawn, cells, m)[1]).sum() / denominator)
  if random_draw < 0.9:
    held = n_cell[n_cell > 0]
    _checks.warn_caller(
        f"key_dispersion: clients hold few samples of each class (median "
        f"{int(np.median(held))} per client and class), so even a random draw "
        f"of these sizes reads {random_draw:.2f} here (the key shuffled "
        "within each class), not 1: compare with that.")
  return float((n_cell * std_cell).sum() / denominator)


def summary(partition, labels, *, num_classes=None, key=None):
  """Scalar summary of a partition (an ordered dict of floats/ints): sizes,
  label skew, with `key` the key dispersion, and with rotations
  (`Partition.rotation`) the clients at each angle (`clients_rotated_<deg>`).
  """
  per_client = client_heterogeneity(partition, labels, num_classes)
  sizes = per_client["size"].astype(np.float64)
  out = collections.OrderedDict(
      num_clients=len(partition),
      num_samples=partition.num_samples,
      num_assigned=int(partition.offsets[-1]),
      size_mean=float(sizes.mean()),
      size_std=float(sizes.std()),
      size_cv=float(sizes.std() / sizes.mean()) if sizes.mean() else 0.0,
      size_min=int(sizes.min()),
      size_max=int(sizes.max()),
      size_gini=gini(sizes),
      js_mean=float(per_client["js"].mean()),
      js_max=float(per_client["js"].max()),
      hellinger_mean=float(per_client["hellinger"].mean()),
      emd_mean=float(per_client["emd"].mean()),
      tv_mean=float(per_client["tv"].mean()),
      effective_classes_mean=float(per_client["effective_classes"].mean()),
      classes_present_mean=float(per_client["classes_present"].mean()))
  if key is not None:
    out["key_dispersion"] = key_dispersion(partition, labels, key)
  if partition.rotation is not None:
    angles, counts = np.unique(partition.rotation, return_counts=True)
    out.update((f"clients_rotated_{angle}", int(count))
               for angle, count in zip(angles, counts))
  return out


def format_table(values):
  """A two-column aligned text table of a `summary` dict."""
  width = max(len(k) for k in values)
  lines = []
  for name, value in values.items():
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    lines.append(f"{name:<{width}}  {text}")
  return "\n".join(lines)

"""Dirichlet label mix per client with prescribed (e.g. equal) client sizes."""

from __future__ import annotations

import numpy as np

from tff_niid.partition import _allocate
from tff_niid.partition import _checks
from tff_niid.partition import core
from tff_niid.partition.dirichlet import check_alpha
from tff_niid.partition.dirichlet import dirichlet_rows


def _fill_in_order(amount, spare):
  """`amount` units over `spare` capacities, first come first served (exact)."""
  return np.diff(np.minimum(np.cumsum(spare), amount), prepend=0)


def capped_split(total, weights, caps):
  """Integers x <= caps summing to `total`, proportional to weights if possible.

  Water-filling: x = min(caps, lam * weights) for the lam that meets the
  total, rounded by largest remainder. If the clients with positive weight
  cannot absorb `total`, they are filled and the rest is split in proportion
  to the remaining capacity. With extreme weights float rounding can leave x
  off the total or over a cap; the result is clipped to caps and the gap
  filled (or taken back) in client order, so it is always exact and nothing
  repeats. Requires
  sum(caps) >= total.
  """
  caps = np.asarray(caps, dtype=np.int64)
  if total > caps.sum():
    raise AssertionError("internal error: capacity below total")
  w = np.where(caps > 0, np.asarray(weights, dtype=np.float64), 0.0)
  if w.max(initial=0.0) > 0:
    # Scale to max 1 and drop negligible mass: Dirichlet draws at small alpha
    # are subnormal (~1e-310), and caps / w would overflow to inf and NaN.
    w = w / w.max()
    w[w < 1e-12] = 0.0
  positive = w > 0
  if caps[positive].sum() <= total:
    x = np.where(positive, caps, 0)
    spare = caps - x
    if total > x.sum():
      x += np.floor((total - x.sum()) * spare / spare.sum()).astype(np.int64)
  else:
    ratio = np.where(positive, caps / np.where(positive, w, 1.0), np.inf)
    order = np.argsort(ratio)
    caps_sorted, w_sorted, r_sorted = caps[order], w[order], ratio[order]
    # If the first j clients (smallest caps/w) are saturated, lam solves
    # sum(caps[:j]) + lam * sum(w[j:]) = total; take the first consistent j.
    cap_before = np.concatenate([[0], np.cumsum(caps_sorted)[:-1]])
    w_after = np.cumsum(w_sorted[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
      lam = (total - cap_before) / w_after
    lower = np.concatenate([[0.0], r_sorted[:-1]])
    valid = (lam >= lower) & (lam <= r_sorted) & (w_after > 0)
    lam = lam[np.argmax(valid)]
    real = np.minimum(caps, lam * w)
    x = np.floor(real).astype(np.int64)
    remainder = total - x.sum()
    if remainder > 0:
      x[np.argsort(-(real - x), kind="stable")[:remainder]] += 1
  x = np.minimum(x, caps)
  gap = total - x.sum()
  if gap > 0:
    x += _fill_in_order(gap, caps - x)
  elif gap < 0:
    x -= _fill_in_order(-gap, x)
  return x


FILLS = ("by_class", "by_sample")


# Steps x classes per batch of `fill_by_sample`: bounds a batch's memory
# (64 MiB of float64 cumulative weights).
_MAX_BATCH_CELLS = 1 << 23


def _running_count(groups):
  """For each position t, how many of groups[:t + 1] equal groups[t]."""
  order = np.argsort(groups, kind="stable")
  ordered = groups[order]
  rank = np.arange(1, groups.size + 1) - np.searchsorted(ordered, ordered)
  count = np.empty_like(rank)
  count[order] = rank
  return count


def fill_by_sample(mix, sizes, class_sizes, rng):
  """(clients x classes) counts of the InnerDirichlet process (Acar et al.
  2021, FedDyn's code; Flower Datasets' InnerDirichletPartitioner): sample
  by sample, a client with room left uniformly at random, then a class from
  its row of `mix` renormalised over the classes with samples left.

  Vectorised exactly, in batches of steps drawn independently from one
  state. A step whose client filled earlier in its batch is dropped, as
  Flower redraws a full client, which leaves the others uniform over the
  clients with room. A batch is kept up to and including its first class
  used up (the weights change) or the step that fills half of its clients
  (drops would dominate); the rest is discarded and redrawn from the new
  state. The cut is a stopping time, so what is kept has the sequential
  process's distribution.

  Args:
    mix: (clients x classes) non-negative weights, a client's Dirichlet draw
      per row.
    sizes: each client's number of samples.
    class_sizes: each class's number of samples; sums to what `sizes` sums
      to.
    rng: a numpy Generator.

  Returns:
    int64 counts whose rows sum to `sizes` and columns to `class_sizes`.

  Raises:
    ValueError: where the process is undefined: a client with room whose
      mix puts no weight on the classes left (tiny alpha; Flower's loop
      then fails on NaN probabilities).
  """
  room = np.asarray(sizes, dtype=np.int64).copy()
  left = np.asarray(class_sizes, dtype=np.int64).copy()
  if room.sum() != left.sum():
    raise AssertionError("internal error: client and class sizes sum "
                         "differently")
  counts = np.zeros(mix.shape, dtype=np.int64)
  weighted = mix > 0
  open_classes = left > 0
  # Per client, its classes with weight and samples left, kept up to date
  # as classes are used up.
  open_weighted = (weighted & open_classes).sum(axis=1)
  # Each client's row renormalised over the classes left (as cumulative
  # weights), recomputed when the client is next drawn after a class is used
  # up: renormalising every row at each class used up would grow with the
  # square of the classes.
  cumulative = np.empty(mix.shape)
  renormalised_at = np.full(mix.shape[0], -1)
  classes_used_up = 0
  num_classes = mix.shape[1]
  cap = max(64, _MAX_BATCH_CELLS // num_classes)
  batch = min(int(room.sum()), cap)
  while room.any():
    used_up = np.flatnonzero(open_classes & (left == 0))
    if used_up.size:
      open_classes[used_up] = False
      open_weighted -= weighted[:, used_up].sum(axis=1)
      classes_used_up += used_up.size
    active = np.flatnonzero(room)
    stuck = active[open_weighted[active] == 0]
    if stuck.size:
      raise ValueError(
          f"fill='by_sample': client {int(stuck[0])} still has room, but its "
          "Dirichlet mix puts no weight on the classes with samples left "
          "(alpha too small for the InnerDirichlet process, where Flower's "
          "loop fails on NaN probabilities); use a larger alpha, or "
          "fill='by_class'.")
    client = active[rng.integers(active.size, size=batch)]
    client = client[_running_count(client) <= room[client]]
    filled = np.cumsum(_running_count(client) == room[client])
    stale = np.unique(client[renormalised_at[client] != classes_used_up])
    cumulative[stale] = np.cumsum(mix[stale] * open_classes, axis=1)
    renormalised_at[stale] = classes_used_up
    drawn = cumulative[client]
    u = rng.random(client.size) * drawn[:, -1]
    picked = (drawn <= u[:, None]).sum(axis=1)
    # Float rounding can put a draw at a row's total (past every class): it
    # then takes the row's last class with weight, never one without.
    past = np.flatnonzero(picked == num_classes)
    picked[past] = num_classes - 1 - np.argmax(
        (mix[client[past]] * open_classes)[:, ::-1] > 0, axis=1)
    cut = ((_running_count(picked) == left[picked]) |
           (2 * filled > active.size))
    kept = int(np.argmax(cut)) + 1 if cut.any() else client.size
    np.add.at(counts, (client[:kept], picked[:kept]), 1)
    room -= np.bincount(client[:kept], minlength=room.size)
    left -= np.bincount(picked[:kept], minlength=left.size)
    batch = min(max(64, 2 * kept), cap, int(room.sum()))
  return counts


def balanced_dirichlet(labels: np.ndarray, num_clients: int, *, alpha: float,
                       seed: int, sizes: np.ndarray | str | None = None,
                       fill: str = "by_class",
                       key: np.ndarray | None = None,
                       key_noise: float = 0.0) -> core.Partition:
  """Client label mixes q_i ~ Dir(alpha * 1_K), fixed sizes (InnerDirichlet).

  The client-side Dirichlet of Flower Datasets' InnerDirichletPartitioner
  (after the self-balancing idea of FedLab's "balanced Dirichlet"): sizes are
  equal (+-1) by default, or given by `sizes` — which is how a Dirichlet label
  skew is combined with quantity skew in `spec` — and each client's label mix
  follows its own Dirichlet draw as far as the class sizes allow. Classes are
  filled in random order; each class goes to clients in proportion to q_ic,
  capped by their remaining capacity (`capped_split`), so the last classes
  fill whatever room is left (`fill="by_class"`, the default: each class
  is split over the clients in proportion to q_ic). `fill="by_sample"`
  fills each client from its own q_i instead, sample by sample, as Flower
  and FedDyn (Acar et al. 2021) do: a client with room uniformly, then a
  class from its q_i renormalised over the classes not yet used up
  (`fill_by_sample`: their distribution exactly on a shuffled dataset,
  vectorised; tested against a plain re-implementation of Flower's loop).
  The two are different distributions of partitions.

  Guarantees: every sample belongs to exactly one client; client i has
  exactly sizes[i] samples; same seed -> identical partition.

  Args:
    labels: 1-D integer array of class ids 0..K-1.
    num_clients: number of clients.
    alpha: Dirichlet concentration, in [1e-300, 1e300].
    seed: non-negative integer seed.
    sizes: optional int array, one size >= 1 per client, summing to
      len(labels); None or "equal" (as `params` records it): equal sizes.
    fill: "by_class" or "by_sample" (see above).
    key, key_noise: optional within-class ordering (see `dirichlet`).

  Raises:
    ValueError: malformed input; with fill="by_sample", also a client left
      with room whose mix has no weight on the classes with samples left
      (a tiny alpha), where the process is undefined.
  """
  labels, num_classes = _checks.check_labels(labels)
  n = labels.shape[0]
  num_clients = _checks.check_num_clients(num_clients, n)
  alpha = check_alpha(alpha)
  seed = _checks.check_seed(seed)
  key, key_noise = _allocate.check_key(key, key_noise, n)
  fill = _checks.check_choice("fill", fill, FILLS)
  # Recorded: equal sizes by name, given ones in full, to draw it again.
  client_sizes: np.ndarray
  if sizes is None or (isinstance(sizes, str) and sizes == "equal"):
    size_rule: object = "equal"
    client_sizes = np.full(num_clients, n // num_clients)
    client_sizes[:n % num_clients] += 1
  else:
    client_sizes = _checks.check_sizes(sizes, num_clients, n)
    size_rule = client_sizes.tolist()
  rng = np.random.default_rng(seed)
  mix = dirichlet_rows(rng, alpha, num_clients, num_classes)
  class_sizes = np.bincount(labels, minlength=num_classes)
  if fill == "by_sample":
    counts = fill_by_sample(mix, client_sizes, class_sizes, rng)
  else:
    remaining = client_sizes.astype(np.int64)
    counts = np.zeros((num_clients, num_classes), dtype=np.int64)
    for c in rng.permutation(num_classes):
      counts[:, c] = capped_split(class_sizes[c], mix[:, c], remaining)
      remaining -= counts[:, c]
  indices, offsets = _allocate.assign_by_counts(
      labels, num_classes, counts, rng, key=key, key_noise=key_noise)
  params = {"num_clients": num_clients, "alpha": alpha,
            "sizes": size_rule, "fill": fill,
            "key": core.key_param(key), "key_noise": key_noise}
  return core.make_partition(labels, indices, offsets,
                             scheme="balanced_dirichlet", params=params,
                             seed=seed)

"""The shared engine of the label-skew schemes: counts matrix -> indices.

Every label-skew scheme decides only a `counts` matrix (clients x classes:
how many samples of class c client i gets). `assign_by_counts` turns it into
index arrays in O(N) plus one radix sort:

1. Group sample indices by class (a stable radix argsort of the labels).
2. Order each class: at random (independent within class), or by a per-sample
   `key` (the *rule* that makes samples within a class non-independent), with
   `key_noise` interpolating between the two.
3. Cut each class into consecutive blocks, client 0's block first, and move
   every block to its client's slot in the output.

Because blocks are consecutive in key order, with a key client 0 receives the
smallest key values of every class it holds, client 1 the next ones, and so on:
clients differ in *style*, not only in label mix.

Also here: integer rounding helpers that keep totals exact, so no scheme ever
drops or duplicates a sample through rounding, and the bounded redraw loop of
`min_size_policy="resample"`.
"""

import numpy as np

from tff_niid.partition import _checks


def _narrowest(ids, num_ids):
  """`ids` (in [0, num_ids)) in the narrowest integer type that holds them:
  numpy's stable argsort is a radix sort for 8- and 16-bit integers, and the
  temporary copy is smallest."""
  for dtype in (np.uint8, np.uint16, np.int64):
    if num_ids <= np.iinfo(dtype).max + 1:
      break
  return ids.astype(dtype)


def class_sorted_indices(labels, num_classes):
  """Sample indices grouped by class (stable), and class start offsets."""
  order = np.argsort(_narrowest(labels, num_classes), kind="stable")
  starts = np.concatenate([[0], np.cumsum(np.bincount(labels,
                                                      minlength=num_classes))])
  return order, starts


def shuffled_groups(rng, *groupings):
  """The positions 0..n-1 grouped by each `(ids, num_ids)` of `groupings`
  (the first outermost), in uniformly random order within a group: a random
  permutation, stably sorted by the innermost grouping first."""
  order = rng.permutation(groupings[0][0].shape[0])
  for ids, num_ids in reversed(groupings):
    order = order[np.argsort(_narrowest(ids, num_ids)[order], kind="stable")]
  return order


def key_codes(key):
  """Numeric sort codes for a numeric or categorical key."""
  key = np.asarray(key)
  if key.dtype.kind in "biuf":
    return key.astype(np.float64, copy=False)
  return np.unique(key, return_inverse=True)[1].astype(np.float64)


def _order_by(primary, tie_break=None):
  """The one order of positions by `primary`, then `tie_break` (if given),
  then position: `np.lexsort((tie_break, primary))`.

  Without ties in `primary` (a continuous key or score) numpy's default
  argsort finds that order too, about 4x faster than lexsort on 1M floats
  here (it sorts with AVX-512); with ties it is left to lexsort. `primary`
  holds no NaN (`check_key` refuses them; NaN ties would go unseen).
  """
  order = np.argsort(primary)
  ordered = primary[order]
  if np.any(ordered[1:] == ordered[:-1]):
    order = np.lexsort((primary,) if tie_break is None
                       else (tie_break, primary))
  return order


def order_within_classes(order, starts, rng, key=None, key_noise=0.0):
  """Reorders each class block of `order` in place: random, or by key.

  key_noise t in [0, 1] sorts by (1 - t) * rank + t * uniform, where rank is
  the sample's normalised rank of key within its class: t=0 is fully ordered
  by key, t=1 is uniformly random (the same law as no key).
  """
  num_classes = starts.shape[0] - 1
  if key is None:
    for c in range(num_classes):
      rng.shuffle(order[starts[c]:starts[c + 1]])
    return order
  codes = key_codes(key)[order]
  # Ties in the key (e.g. categories) are broken at random.
  tie_breaks = rng.random(order.shape[0])
  noise = rng.random(order.shape[0]) if key_noise > 0 else None
  # One class block at a time: the blocks are contiguous in `order`, so
  # sorting each alone gives the order one sort by (class, key, tie break)
  # over all samples gives, with temporaries of one class's size.
  ranked = np.empty(order.shape[0], dtype=np.intp)
  for c in range(num_classes):
    lo, hi = starts[c], starts[c + 1]
    block = _order_by(codes[lo:hi], tie_breaks[lo:hi])
    if noise is not None:
      # The rank within the class, normalised to [0, 1], mixed with a
      # uniform draw. Sorted as `c + 0.5 * score`, the values (rounding
      # included) that kept classes apart when all were sorted at once, so
      # partitions stay bit for bit what they were.
      pos = np.empty(hi - lo)
      pos[block] = np.arange(hi - lo)
      score = ((1 - key_noise) * pos / max(hi - lo - 1, 1)
               + key_noise * noise[lo:hi])
      block = _order_by(c + 0.5 * score)
    ranked[lo:hi] = lo + block
  order[:] = order[ranked]
  return order


def assign_by_counts(labels, num_classes, counts, rng, key=None, key_noise=0.0):
  """Turns a clients x classes counts matrix into (indices, offsets).

  Column c of `counts` must sum to at most the number of class-c samples; the
  samples of class c beyond the column sum are left unassigned.
  """
  counts = np.asarray(counts, dtype=np.int64)
  order, starts = class_sorted_indices(labels, num_classes)
  class_sizes = np.diff(starts)
  if np.any(counts < 0) or np.any(counts.sum(axis=0) > class_sizes):
    raise AssertionError("internal error: counts exceed class sizes")
  order_within_classes(order, starts, rng, key=key, key_noise=key_noise)
  offsets = np.concatenate([[0], np.cumsum(counts.sum(axis=1))])
  # Class-major (classes x clients) so every per-class row is contiguous.
  by_class = np.ascontiguousarray(counts.T)
  indices = np.empty(offsets[-1], dtype=np.int64)
  # Where each client's block of the next class starts in the output.
  dst_start = offsets[:-1].copy()
  # One class at a time keeps temporaries at one class's size (memory), and
  # the source is a slice of `order`, so only the destination is scattered.
  for c in range(num_classes):
    taken = by_class[c]
    # Block (class c, client i) starts at dst_start[i] in the output and at
    # within_class[i] in class c's taken prefix of `order`.
    within_class = np.cumsum(taken) - taken
    dst = np.repeat(dst_start - within_class, taken)
    dst += np.arange(dst.shape[0])
    indices[dst] = order[starts[c]:starts[c] + dst.shape[0]]
    dst_start += taken
  return indices, offsets


def split_total(total, weights):
  """Integer split of `total` proportional to `weights` (exact sum).

  Rounds the cumulative sum, so each share differs from its exact value by
  less than 1 and shares of zero weight are zero.
  """
  weights = np.asarray(weights, dtype=np.float64)
  cum = np.cumsum(weights)
  if cum[-1] <= 0:
    raise AssertionError("internal error: weights sum to zero")
  bounds = np.rint(cum / cum[-1] * total).astype(np.int64)
  return np.diff(bounds, prepend=0)


def floor_split(total, shares):
  """Integer split of `total` by `shares` (summing to 1) as NIID-Bench cuts.

  NIID-Bench, FedLab and Flower cut at `(np.cumsum(shares) * total)
  .astype(int)[:-1]` (truncation, not rounding) and the last part takes the
  remainder; this returns the part sizes. Part i is >= floor(shares_i *
  total) up to float error, so a share s with s * total >= m gives >= m.

  One departure: the parts after the last positive share are empty. Their
  cuts are `total` in exact arithmetic, but the float sum before them can
  fall an ulp short of 1, and whether it does depends on the last bit of the
  log / exp that made the shares, which differs between CPUs and numpy
  builds (AVX-512 kernels); truncation then gave one sample to a zero-share
  client (a client self-balancing has closed) on some machines and not on
  others. Cutting them at `total` makes the split the same everywhere.
  """
  cuts = (np.cumsum(shares) * total).astype(np.int64)
  positive = np.flatnonzero(shares > 0)
  cuts[positive[-1] if positive.size else -1:] = total
  return np.diff(cuts, prepend=0)


# Draws `min_size_policy="resample"` makes before it gives up.
MAX_RESAMPLE_ATTEMPTS = 1000


def resample(draw, *, min_size, alternative):
  """The first non-None result of up to MAX_RESAMPLE_ATTEMPTS `draw()` calls.

  NIID-Bench's `while min_size < min_require_size` redraw, bounded: when no
  draw gives every client `min_size` samples (`draw` returns None), raises
  ValueError saying so and naming the `alternative` min-size policy, instead
  of looping forever.
  """
  for _ in range(MAX_RESAMPLE_ATTEMPTS):
    result = draw()
    if result is not None:
      return result
  raise ValueError(
      f"min_size_policy='resample': none of {MAX_RESAMPLE_ATTEMPTS} draws "
      f"gave every client >= min_size={min_size} samples. Lower min_size, "
      "use fewer clients or less skew (larger alpha, smaller sigma), or use "
      f"min_size_policy={alternative!r}, which always meets min_size but "
      "draws from a different distribution.")


def transport_cells(row_sums, col_sums):
  """The north-west-corner rule, vectorised: lay rows and columns as
  consecutive intervals on [0, total) (equal totals) and intersect them.

  Returns (rows, cols, amounts): the nonzero cells of an integer matrix with
  the given row and column sums, in order along [0, total), so row i's cells
  are a run of consecutive columns.
  """
  row_sums = np.asarray(row_sums, dtype=np.int64)
  col_sums = np.asarray(col_sums, dtype=np.int64)
  if row_sums.sum() != col_sums.sum():
    raise AssertionError("internal error: transport totals differ")
  row_cum, col_cum = np.cumsum(row_sums), np.cumsum(col_sums)
  cuts = np.union1d(row_cum, col_cum)
  lengths = np.diff(cuts, prepend=0)
  keep = lengths > 0
  starts = (cuts - lengths)[keep]
  return (np.searchsorted(row_cum, starts, side="right"),
          np.searchsorted(col_cum, starts, side="right"), lengths[keep])


# Iterations `fit_counts` allows the proportional fitting.
MAX_FIT_ITERATIONS = 1000


def fit_counts(support, row_sums, col_sums):
  """An integer matrix on `support` with exact column sums and row sums as
  close to `row_sums` as the support allows (equal totals).

  Iterative proportional fitting (alternately scaling rows and columns of the
  support to their sums, at most MAX_FIT_ITERATIONS times, until every row is
  within 0.5 or the rows stop improving) finds the real matrix a_i * b_j on
  the support with both sums whenever one exists; each column is then
  rounded cumulatively (exact column sums, so every sample is assigned),
  which moves a row by less than its number of support cells. Where no such
  matrix exists (a row larger than its columns can hold) the rows end as
  near as the fitting got. A column none of whose rows can take anything is
  split evenly over its support.
  """
  row_sums = np.asarray(row_sums, dtype=np.float64)
  col_sums = np.asarray(col_sums, dtype=np.int64)
  fitted = np.array(support, dtype=np.float64)
  previous = np.inf
  for _ in range(MAX_FIT_ITERATIONS):
    fitted *= _ratio(row_sums, fitted.sum(axis=1))[:, None]
    fitted *= _ratio(col_sums, fitted.sum(axis=0))[None, :]
    errors = np.abs(fitted.sum(axis=1) - row_sums)
    # Done, or stuck at the nearest the support allows (no exact fit).
    if errors.max() <= 0.5 or errors.sum() > previous * (1 - 1e-6):
      break
    previous = errors.sum()
  stranded = (fitted.sum(axis=0) == 0) & (col_sums > 0)
  fitted[:, stranded] = np.asarray(support, dtype=np.float64)[:, stranded]
  shares = np.cumsum(fitted, axis=0) * _ratio(col_sums, fitted.sum(axis=0))
  counts = np.diff(np.rint(shares).astype(np.int64), axis=0, prepend=0)
  if not np.array_equal(counts.sum(axis=0), col_sums):
    raise AssertionError("internal error: a column without support")
  return counts


def _ratio(target, current):
  """target / current, 0 where current is 0 (an empty row or column)."""
  return np.divide(target, current, out=np.zeros(current.shape),
                   where=current > 0)


# Cells of a block of rows in `enforce_min_size`'s float temporaries.
_BLOCK_CELLS = 1 << 21


def enforce_min_size(counts, min_size):
  """Moves samples from the largest clients so every row sums to >= min_size.

  Deterministic and terminating (no resampling): the largest clients are cut
  down to a common level L >= min_size (taking from each of their classes in
  proportion), and the freed samples go to the clients below min_size by
  `transport_cells`. Requires num_clients * min_size <= total, checked by
  callers.
  """
  counts = np.array(counts, dtype=np.int64)
  sizes = counts.sum(axis=1)
  deficit = np.maximum(min_size - sizes, 0)
  need = deficit.sum()
  if need == 0:
    return counts
  # Smallest level L >= min_size with sum(max(sizes - L, 0)) >= need.
  desc = np.sort(sizes)[::-1]
  lo, hi = min_size, int(desc[0])
  while lo < hi:  # binary search: O(log max size) steps
    mid = (lo + hi + 1) // 2
    if np.maximum(desc - mid, 0).sum() >= need:
      lo = mid
    else:
      hi = mid - 1
  take = np.maximum(sizes - lo, 0)
  excess = take.sum() - need  # < number of clients above the level
  if excess:
    above = np.flatnonzero(take > 0)[:excess]
    take[above] -= 1
  # Each donor gives from its classes in proportion (cumulative rounding keeps
  # the row total exact and never takes more of a class than it holds).
  ratio = np.divide(take, sizes, out=np.zeros(sizes.shape), where=sizes > 0)
  freed = np.zeros(counts.shape[1], dtype=np.int64)
  # A donor's cut depends on its row alone: done for blocks of donors, so
  # the float temporaries stay small beside a clients x classes matrix.
  donors = np.flatnonzero(take)
  block = max(1, _BLOCK_CELLS // max(counts.shape[1], 1))
  for start in range(0, donors.size, block):
    rows = donors[start:start + block]
    bounds = np.rint(np.cumsum(counts[rows], axis=1) *
                     ratio[rows, None]).astype(np.int64)
    removed = np.diff(bounds, axis=1, prepend=0)
    counts[rows] -= removed
    freed += removed.sum(axis=0)
  receivers, classes, amounts = transport_cells(deficit, freed)
  np.add.at(counts, (receivers, classes), amounts)
  return counts


def check_key(key, key_noise, num_samples):
  """Validates the optional key= / key_noise= pair of a label-skew scheme."""
  key_noise = _checks.check_fraction("key_noise", key_noise)
  if key is None:
    if key_noise:
      raise ValueError(
          f"`key_noise`={key_noise} needs a `key`: it mixes key order with "
          "random order within classes, and without a key the order is "
          "random already.")
    return None, key_noise
  return _checks.check_per_sample("key", key, num_samples), key_noise

"""Input validation shared by every partition scheme.

Each check raises `ValueError` naming the argument, what it got and what would
be valid, so a researcher sees the mistake in their own call, not a traceback
from deep inside numpy.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import types
import warnings
from typing import cast

import numpy as np

# Class ids index per-class arrays and clients x classes matrices, so the work
# grows with the largest id: one stray id of 1e9 would need terabytes. Ids are
# accepted below the number of samples, or below this floor for short label
# arrays (e.g. 100 samples of a 1000-class dataset).
MIN_CLASS_ID_LIMIT = 1024


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_caller(message: str) -> None:
  """Warns with `message`, attributed to the first caller outside the package.

  A scheme may be reached directly or through `spec.resolve`;
  either way the warning's file and line are the researcher's call.
  """
  frame: types.FrameType | None = sys._getframe(1)  # pylint: disable=protected-access
  level = 2  # stacklevel 2 is the frame that called warn_caller
  while frame is not None and os.path.dirname(
      os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
    frame = frame.f_back
    level += 1
  warnings.warn(message, UserWarning, stacklevel=level)


def id_list(ids, limit=10):
  """`ids` for a message: "3, 5, 9", the first `limit` then "... (N in
  all)" (a thousand-class dataset would print them all)."""
  ids = [int(i) for i in ids]
  shown = ", ".join(map(str, ids[:limit]))
  return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def _short_repr(value, limit=40):
  """repr(value), cut to `limit` characters (a 400-digit int stays readable)."""
  text = repr(value)
  if len(text) <= limit:
    return text
  return f"{text[:limit]}... ({len(text)} characters)"


def check_labels(labels, name="labels"):
  """Returns `(labels as int64 1-D array, num_classes)` or raises ValueError.

  num_classes is the largest id + 1, which must be below
  max(len(labels), MIN_CLASS_ID_LIMIT).
  """
  arr = np.asarray(labels)
  if arr.ndim != 1:
    raise ValueError(
        f"`{name}` must be a 1-D array of class ids; got shape {arr.shape}.")
  if arr.size == 0:
    raise ValueError(f"`{name}` is empty; a partition needs at least 1 sample.")
  if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
    raise ValueError(
        f"`{name}` must hold integers 0..K-1; got dtype {arr.dtype}. "
        "Map your classes to integer ids first (e.g. np.unique(y, "
        "return_inverse=True)[1]).")
  low, high = arr.min(), arr.max()
  if low < 0:
    raise ValueError(
        f"`{name}` must be non-negative class ids 0..K-1; found {low}.")
  limit = max(arr.shape[0], MIN_CLASS_ID_LIMIT)
  if high >= limit:
    raise ValueError(
        f"`{name}` has class id {high} but only {arr.shape[0]} samples; class "
        f"ids must be below max(number of samples, {MIN_CLASS_ID_LIMIT}) = "
        f"{limit} (work grows with the largest id). Map your classes to ids "
        "0..K-1 first (np.unique(y, return_inverse=True)[1]).")
  return arr.astype(np.int64, copy=False), int(high) + 1


def check_every_class_held(labels, num_classes, scheme):
  """For the schemes that deal each client class ids among 0..K-1: refuses
  labels in which an id below the largest has no samples (1-based ids, or
  a subset of a dataset's classes), which no number of clients could fix."""
  empty = np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0)
  if empty.size:
    raise ValueError(
        f"{scheme} deals each client classes among the ids 0..{num_classes - 1}"
        f", but class id(s) {id_list(empty)} have no samples; map your classes "
        "to ids "
        "0..K-1 first (np.unique(y, return_inverse=True)[1]).")


def check_num_clients(num_clients, num_samples):
  if (not isinstance(num_clients, numbers.Integral) or
      isinstance(num_clients, bool)):
    raise ValueError(
        f"`num_clients` must be an integer; got {num_clients!r}.")
  if not 1 <= int(num_clients) <= num_samples:
    raise ValueError(
        f"`num_clients` must be between 1 and the number of samples "
        f"({num_samples}); got {num_clients}.")
  return int(num_clients)


def check_positive(name, value, *, integer=False, allow_zero=False):
  """Checks a finite positive (or non-negative) number; returns int or float."""
  kind = "an integer" if integer else "a number"
  if (isinstance(value, bool) or not isinstance(value, numbers.Real) or
      (integer and not isinstance(value, numbers.Integral))):
    raise ValueError(f"`{name}` must be {kind}; got {_short_repr(value)}.")
  try:
    # Integers stay exact, whatever their size.
    number = int(cast(int, value)) if integer else float(value)
  except OverflowError:
    raise ValueError(f"`{name}` is too large for a float; got "
                     f"{_short_repr(value)}.") from None
  if not math.isfinite(number) or number < 0 or (number == 0 and
                                                 not allow_zero):
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(
        f"`{name}` must be finite and {bound}; got {_short_repr(value)}.")
  return number


def check_range(name, value, low, high, reason):
  """Checks a positive number in [low, high]; `reason` says why the bounds."""
  number = check_positive(name, value)
  if not low <= number <= high:
    raise ValueError(f"`{name}` must be between {low:g} and {high:g}; got "
                     f"{_short_repr(value)}: {reason}.")
  return number


def check_fraction(name, value):
  if (isinstance(value, bool) or not isinstance(value, numbers.Real) or
      not 0.0 <= float(value) <= 1.0):
    raise ValueError(
        f"`{name}` must be a number in [0, 1]; got {_short_repr(value)}.")
  return float(value)


def check_bool(name, value):
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(
        f"`{name}` must be True or False (true/false in a spec); got "
        f"{value!r}.")
  return bool(value)


def check_choice(name, value, choices):
  """Checks that `value` is one of the strings `choices`."""
  if not isinstance(value, str) or value not in choices:
    raise ValueError(
        f"`{name}` must be one of {list(choices)}; got {value!r}.")
  return value


def check_seed(seed):
  if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or
      seed < 0):
    raise ValueError(
        f"`seed` must be a non-negative integer (it makes the partition "
        f"reproducible); got {seed!r}.")
  return int(seed)


def check_per_sample(name, values, num_samples):
  """Checks a per-sample array (a key or ids): one number or one string per
  label."""
  arr = np.asarray(values)
  if arr.ndim != 1 or arr.shape[0] != num_samples:
    raise ValueError(
        f"`{name}` must be a 1-D array with one entry per sample "
        f"({num_samples}); got shape {arr.shape}.")
  # An object array of strings only (what a pandas column of strings
  # gives) is strings.
  if arr.dtype.kind == "O" and all(isinstance(v, str) for v in arr):
    arr = arr.astype(np.str_)
  # Sorting (np.unique, argsort) needs one comparable type: object arrays
  # (None, mixed types) would fail deep inside numpy.
  if arr.dtype.kind not in "biufUS":
    raise ValueError(
        f"`{name}` must hold numbers or strings; got dtype {arr.dtype} "
        "(None, or values of mixed types).")
  if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
    raise ValueError(f"`{name}` contains NaN or infinite values.")
  return arr


def check_min_size(min_size, num_clients, num_samples):
  """`min_size` as an int >= 1 that every one of `num_clients` clients can
  have out of `num_samples`, or ValueError."""
  min_size = check_positive("min_size", min_size, integer=True)
  if num_clients * min_size > num_samples:
    raise ValueError(
        f"`min_size`={min_size} cannot be met: {num_clients} clients x "
        f"{min_size} > {num_samples} samples; use min_size <= "
        f"{num_samples // num_clients}.")
  return min_size


def check_classes_per_client(classes_per_client, num_classes):
  """`classes_per_client` as an int in 1..num_classes, or ValueError."""
  k = check_positive("classes_per_client", classes_per_client, integer=True)
  if k > num_classes:
    raise ValueError(f"`classes_per_client`={k} exceeds the {num_classes} "
                     "classes in `labels`.")
  return k


class SizeBelowMinimum(ValueError):
  """A prescribed client size is below what the scheme needs (`minimum`)."""

  def __init__(self, message, minimum):
    super().__init__(message)
    self.minimum = minimum


def check_sizes(sizes, num_clients, num_samples, *, minimum=1, why=None):
  """Checks prescribed client sizes: `num_clients` integers >= `minimum`
  summing to `num_samples` (every sample assigned); returns them as int64.
  `why` says why the minimum, when it is above 1."""
  arr = np.asarray(sizes)
  integers = arr.dtype != bool and np.issubdtype(arr.dtype, np.integer)
  if (arr.shape != (num_clients,) or not integers or
      arr.sum() != num_samples):
    # Only integers have a sum worth naming (strings have none).
    total = f", sum {arr.sum() if arr.size else 0}" if integers else ""
    raise ValueError(
        f"`sizes` must be {num_clients} integers summing to {num_samples} "
        f"(one size per client); got shape {arr.shape}, dtype "
        f"{arr.dtype}{total}.")
  if arr.min() < minimum:
    reason = f" ({why})" if why else ""
    raise SizeBelowMinimum(f"`sizes` must be >= {minimum}{reason}; client "
                           f"{int(np.argmin(arr))} has {arr.min()}.", minimum)
  return arr.astype(np.int64)

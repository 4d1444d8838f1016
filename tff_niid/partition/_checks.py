"""Input validation shared by every partition scheme.

Each check raises `ValueError` naming the argument, what it got and what would
be valid, so a researcher sees the mistake in their own call, not a traceback
from deep inside numpy.
"""

import math
import numbers

import numpy as np


def check_labels(labels, name="labels"):
  """Returns `(labels as int64 1-D array, num_classes)` or raises ValueError."""
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
  low = arr.min()
  if low < 0:
    raise ValueError(
        f"`{name}` must be non-negative class ids 0..K-1; found {low}.")
  return arr.astype(np.int64, copy=False), int(arr.max()) + 1


def check_num_clients(num_clients, num_samples):
  if (not isinstance(num_clients, numbers.Integral) or
      isinstance(num_clients, bool)):
    raise ValueError(
        f"`num_clients` must be an integer; got {num_clients!r}.")
  if not 1 <= num_clients <= num_samples:
    raise ValueError(
        f"`num_clients` must be between 1 and the number of samples "
        f"({num_samples}); got {num_clients}.")
  return int(num_clients)


def check_positive(name, value, *, integer=False, allow_zero=False):
  """Checks a finite positive (or non-negative) number."""
  kind = "an integer" if integer else "a number"
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise ValueError(f"`{name}` must be {kind}; got {value!r}.")
  if integer and not isinstance(value, numbers.Integral):
    raise ValueError(f"`{name}` must be {kind}; got {value!r}.")
  if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"`{name}` must be finite and {bound}; got {value!r}.")
  return int(value) if integer else float(value)


def check_fraction(name, value):
  if (isinstance(value, bool) or not isinstance(value, numbers.Real) or
      not 0.0 <= value <= 1.0):
    raise ValueError(f"`{name}` must be a number in [0, 1]; got {value!r}.")
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
  """Checks a per-sample array (a key or ids) has one entry per label."""
  arr = np.asarray(values)
  if arr.ndim != 1 or arr.shape[0] != num_samples:
    raise ValueError(
        f"`{name}` must be a 1-D array with one entry per sample "
        f"({num_samples}); got shape {arr.shape}.")
  if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
    raise ValueError(f"`{name}` contains NaN or infinite values.")
  return arr

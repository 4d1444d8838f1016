"""Assertions every partition scheme's tests share (the common contract)."""

import re

import numpy as np
import pytest

from tff_niid.partition import registry
from tff_niid.partition import spec


def assert_exact_cover(part, num_samples):
  """Every sample belongs to exactly one client; no client is empty."""
  counts = np.bincount(part.indices, minlength=num_samples)
  assert counts.shape == (num_samples,)
  assert counts.min() == 1 and counts.max() == 1
  assert part.sizes.min() >= 1
  assert part.indices.dtype == np.int64
  assert all(part[i].dtype == np.int64 for i in (0, len(part) - 1))


def assert_seeded(make):
  """`make(seed)` is deterministic and depends on the seed."""
  a, b, c = make(0), make(0), make(1)
  assert (np.array_equal(a.indices, b.indices) and
          np.array_equal(a.offsets, b.offsets)), (
      "seed 0 gave two partitions: draw only from a Generator seeded with "
      "`seed`")
  assert not (np.array_equal(a.indices, c.indices) and
              np.array_equal(a.offsets, c.offsets)), (
      "seeds 0 and 1 gave the same partition: every scheme but natural uses "
      "its seed (one that draws nothing, for the order of each client's "
      "samples)")


# Malformed labels every scheme must reject with a clear ValueError.
BAD_LABELS = [
    (np.array([0.5, 1.0, 2.0]), "integers"),
    (np.array([0, -1, 2]), "non-negative"),
    (np.zeros((3, 2), dtype=int), "1-D"),
    (np.array([], dtype=int), "empty"),
    (np.array([True, False]), "integers"),
    # A stray huge id: refused at once, not looped over or allocated for.
    (np.array([0, 1, 10**6]), "class id 1000000 but only 3 samples"),
    (np.array([0, 1, 10**12]), "class id 1000000000000 but only 3 samples"),
]


def assert_refused(call, message, check):
  """`call()` raises a ValueError saying `message` (a regex); a failure names
  `check`, the shared check of tff_niid/partition/_checks.py that says it."""
  hint = (f"a scheme checks this with `_checks.{check}` "
          "(tff_niid/partition/_checks.py)")
  try:
    call()
  except ValueError as e:
    assert re.search(message, str(e)), (
        f"ValueError({str(e)!r}) does not say {message!r}: {hint}.")
  else:
    pytest.fail(f"accepted; a ValueError saying {message!r} was expected: "
                f"{hint}.")


def assert_rejects_bad_labels(call):
  for labels, message in BAD_LABELS:
    assert_refused(lambda: call(labels), message, "check_labels")


def example_scheme(name):
  """The registered scheme `name` as `call(labels, num_clients, **kw)`, with
  seed 0 and the parameters of its example spec (`kw` adds or overrides):
  what the checks every scheme shares call. `natural` takes ids, not a
  count: sample i gets id i % num_clients."""
  scheme = registry.SCHEMES[name]
  params = {k: v for k, v in spec.parse(scheme.example)["base"].items()
            if k != "scheme"}
  if name == "natural":
    return lambda labels, num_clients, **kw: scheme.function(
        labels, np.arange(np.shape(labels)[0]) % num_clients, **kw)
  return lambda labels, num_clients, **kw: scheme.function(
      labels, num_clients, **{"seed": 0, **params, **kw})


def assert_rejects_bad_num_clients(call, labels):
  for n, message in ((0, "between 1"), (labels.shape[0] + 1, "between 1"),
                     (2.5, "integer")):
    assert_refused(lambda: call(labels, n), message, "check_num_clients")


def within_class_std_ratio(part, labels, key):
  """Mean within-client-within-class std of key / global within-class std,
  computed independently of tff_niid.partition.metrics."""
  num = den = 0.0
  for i in range(len(part)):
    idx = part[i]
    for c in np.unique(labels[idx]):
      sel = idx[labels[idx] == c]
      num += len(sel) * key[sel].std()
      den += len(sel) * key[labels == c].std()
  return num / den


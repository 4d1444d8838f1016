"""`_allocate.order_within_classes` sorts one class at a time, and without a
sort of all samples; it must give the order that sort gave (partitions of
committed runs are pinned on it, tests/partition/test_committed_specs.py)."""

import numpy as np
import pytest

from tff_niid.partition import _allocate


def _one_sort_of_all(order, starts, rng, key, key_noise):
  """The order as one sort of all samples by (class, key, tie break), and
  with noise by (class + score / 2), as the code did before."""
  codes = _allocate.key_codes(key)[order]
  class_of = np.repeat(np.arange(starts.shape[0] - 1), np.diff(starts))
  ranked = np.lexsort((rng.random(order.shape[0]), codes, class_of))
  if key_noise > 0:
    sizes = np.diff(starts)
    pos = np.empty(order.shape[0])
    pos[ranked] = np.arange(order.shape[0]) - np.repeat(starts[:-1], sizes)
    denom = np.maximum(np.repeat(sizes, sizes) - 1, 1)
    score = (1 - key_noise) * pos / denom + key_noise * rng.random(
        pos.shape[0])
    ranked = np.argsort(class_of + 0.5 * score, kind="stable")
  return order[ranked]


@pytest.mark.parametrize("key_noise", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("kind", ["continuous", "ties", "strings"])
def test_class_at_a_time_is_the_one_sort_of_all_samples(kind, key_noise):
  data = np.random.default_rng(7)
  labels = data.integers(0, 5, 20_000)
  labels[labels == 3] = 4  # an empty class
  key = {"continuous": data.random(20_000),
         "ties": data.integers(0, 3, 20_000),
         "strings": np.array(list("xyz"))[data.integers(0, 3, 20_000)]}[kind]
  for seed in range(3):
    order, starts = _allocate.class_sorted_indices(labels, 5)
    expected = _one_sort_of_all(order.copy(), starts,
                                np.random.default_rng(seed), key, key_noise)
    rng = np.random.default_rng(seed)
    got = _allocate.order_within_classes(order, starts, rng, key=key,
                                         key_noise=key_noise)
    np.testing.assert_array_equal(got, expected)

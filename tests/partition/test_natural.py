"""natural: one client per id."""

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from tff_niid import partition


def test_one_client_per_id(labels):
  ids = np.random.default_rng(0).integers(0, 8, size=6000)
  part = partition.natural(labels[:6000], ids)
  assert_exact_cover(part, 6000)
  assert len(part) == len(np.unique(ids)) == 8
  for i, name in enumerate(part.client_ids):
    assert (ids[part[i]] == int(name)).all()


def test_string_ids(labels):
  ids = np.array(["writer_b", "writer_a"])[labels % 2]
  part = partition.natural(labels, ids)
  assert part.client_ids == ["writer_a", "writer_b"]
  assert (labels[part[0]] % 2 == 1).all()


def test_an_object_array_of_strings_is_string_ids(labels):
  # What a pandas column of strings gives (`.values`).
  ids = np.array(["writer_b", "writer_a"], dtype=object)[labels % 2]
  part = partition.natural(labels, ids)
  assert part.client_ids == ["writer_a", "writer_b"]


def test_bad_ids(labels):
  with pytest.raises(ValueError, match="ids"):
    partition.natural(labels, np.zeros(10))


@pytest.mark.parametrize("ids", [[None, 1, 2, 3], [1, None, "a", 2.0],
                                 [{}, {}, {}, {}]])
def test_ids_of_no_single_type(ids):
  # These raised TypeError from inside np.unique.
  with pytest.raises(ValueError) as e:
    partition.natural(np.array([0, 1, 0, 1]), np.array(ids, dtype=object))
  assert str(e.value) == ("`ids` must hold numbers or strings; got dtype "
                          "object (None, or values of mixed types).")


def test_whole_number_float_ids_are_ids(labels):
  ids = (labels % 3).astype(np.float64)
  assert partition.natural(labels, ids).client_ids == ["0.0", "1.0", "2.0"]


def test_a_continuous_attribute_is_refused_as_ids(labels):
  # An image attribute, say, once made one client per sample.
  ids = np.random.default_rng(0).normal(size=labels.shape[0])
  with pytest.raises(ValueError) as e:
    partition.natural(labels, ids)
  assert str(e.value).startswith(
      f"`ids` are client ids, but they hold fractional numbers (e.g. "
      f"{ids[0]:.6g}; 60000 distinct values for 60000 samples): a continuous "
      "attribute gives about one client per sample.")

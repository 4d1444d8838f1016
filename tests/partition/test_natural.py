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


def _flower_grouped_natural_ids(ids, group_size, mode):
  """Flower Datasets' GroupedNaturalIdPartitioner (flwr-datasets 0.5, with
  sort_unique_ids=True) as a plain loop: {partition id: its sample
  indices}."""
  unique = sorted(set(ids.tolist()))
  if mode != "allow-smaller" and group_size > len(unique):
    raise ValueError("group size above the number of ids")
  remainder = len(unique) % group_size
  num_groups = len(unique) // group_size
  if num_groups == 0 and mode == "allow-smaller":
    num_groups, remainder = 1, 0
  if mode == "allow-bigger":
    groups = np.array_split(unique, num_groups)
  elif mode == "allow-smaller":
    last = unique[len(unique) - remainder:] if remainder else None
    groups = np.array_split(unique[:num_groups * group_size], num_groups)
    if remainder:
      groups.append(np.array(last))
  else:  # strict
    if remainder:
      raise ValueError("remainder")
    groups = np.array_split(unique, num_groups)
  members: dict[object, list[int]] = {}  # natural id: its samples
  for index, natural_id in enumerate(ids.tolist()):
    members.setdefault(natural_id, []).append(index)
  return {g: sorted(i for natural_id in group.tolist()
                    for i in members[natural_id])
          for g, group in enumerate(groups)}


@pytest.mark.parametrize("num_ids", [1, 5, 6, 7, 11, 30])
@pytest.mark.parametrize("group_size", [1, 2, 3, 5, 7, 40])
@pytest.mark.parametrize("mode", ["allow_smaller", "allow_bigger", "strict"])
def test_groups_of_ids_are_flowers_grouped_natural_id_partitioner(
    labels, num_ids, group_size, mode):
  ids = np.random.default_rng(num_ids).integers(0, num_ids, size=3000)
  ids[:num_ids] = np.arange(num_ids)  # every id present
  try:
    expected = _flower_grouped_natural_ids(ids, group_size,
                                           mode.replace("_", "-"))
  except ValueError:
    with pytest.raises(ValueError, match=f"group_size={group_size}"):
      partition.natural(labels[:3000], ids, group_size=group_size, mode=mode)
    return
  part = partition.natural(labels[:3000], ids, group_size=group_size,
                           mode=mode)
  assert_exact_cover(part, 3000)
  assert {g: sorted(part[g].tolist()) for g in range(len(part))} == expected
  for g, name in enumerate(part.client_ids):
    assert sorted(set(ids[part[g]].tolist())) == [int(i)
                                                   for i in name.split("+")]


def test_grouped_ids_in_a_spec_and_their_record(labels):
  writers = np.arange(labels.shape[0]) % 10
  part = partition.spec.resolve("natural(ids=writer, group_size=4)", labels,
                                None, seed=0, keys={"writer": writers})
  assert part.client_ids == ["0+1+2+3", "4+5+6+7", "8+9"]
  assert partition.spec.makes_own_clients("natural(ids=writer)+rotate")
  assert not partition.spec.makes_own_clients("dirichlet(alpha=0.5)")
  # A client count of its own is refused, not ignored; its own is accepted.
  with pytest.raises(ValueError) as e:
    partition.spec.resolve("natural(ids=writer, group_size=4)", labels, 10,
                           seed=0, keys={"writer": writers})
  assert str(e.value) == (
      "natural(group_size=4, ids=writer) makes one client per group of ids: "
      "3 here, not num_clients=10. Pass num_clients=None (or 3).")
  assert partition.spec.resolve("natural(ids=writer, group_size=4)", labels,
                                3, seed=0, keys={"writer": writers}) == part
  with pytest.raises(ValueError, match=r"^dirichlet needs num_clients \("):
    partition.spec.resolve("dirichlet(alpha=0.5)", labels, None, seed=0)
  assert part.params == {"num_clients": 3, "group_size": 4,
                         "mode": "allow_smaller"}
  assert part.spec == "natural(group_size=4, ids=writer)"
  # One id per client records what it always did.
  assert partition.natural(labels, writers).params == {"num_clients": 10}
  with pytest.raises(ValueError) as e:
    partition.natural(labels, writers, group_size=4, mode="strict")
  assert str(e.value) == (
      "group_size=4 does not divide the 10 distinct ids (2 left over); "
      "mode=strict needs groups of exactly 4: use mode=allow_smaller, or "
      "another group_size.")
  with pytest.raises(ValueError, match="`mode` must be one of"):
    partition.natural(labels, writers, group_size=4, mode="drop_remainder")

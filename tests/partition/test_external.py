"""from_client_indices: another package's index lists as a Partition."""

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from tff_niid import partition


def _niid_bench_map(labels, num_clients, seed):
  """A `net_dataidx_map` as NIID-Bench's `partition_data` returns it for
  'homo': a permutation cut into equal parts, keyed by party number."""
  order = np.random.RandomState(seed).permutation(labels.shape[0])
  return {i: part for i, part in enumerate(np.array_split(order, num_clients))}


def test_a_niid_bench_map_round_trips(labels, tmp_path):
  net_dataidx_map = _niid_bench_map(labels, 10, 0)
  part = partition.from_client_indices(labels, net_dataidx_map,
                                       source="NIID-Bench homo")
  assert_exact_cover(part, 60000)
  assert part.client_ids == [str(i) for i in range(10)]
  for i, indices in net_dataidx_map.items():
    assert np.array_equal(part[i], indices)  # in the order given
  assert (part.scheme, part.seed, part.spec) == ("external", None, None)
  assert part.params == {"source": "NIID-Bench homo", "num_clients": 10}
  # Back to NIID-Bench's form, and through a save.
  back = dict(enumerate(part))
  assert back.keys() == net_dataidx_map.keys()
  assert partition.load(part.save(str(tmp_path / "p")), labels=labels) == part
  assert partition.metrics.summary(part, labels)["num_clients"] == 10


def test_a_two_dimensional_array_is_a_client_per_row(labels):
  part = partition.from_client_indices(labels, np.arange(20).reshape(4, 5))
  assert part.sizes.tolist() == [5] * 4 and part[3].tolist() == [15, 16, 17,
                                                                  18, 19]


def test_a_list_with_samples_left_out(labels):
  clients = [[5, 3, 1], np.array([0, 2]), (10.0, 11.0)]
  part = partition.from_client_indices(labels, clients)
  assert part.client_ids == ["0", "1", "2"]
  assert part[0].tolist() == [5, 3, 1] and part[2].tolist() == [10, 11]
  assert part.sizes.sum() == 7 and part.num_samples == 60000
  assert (part.owner() >= 0).sum() == 7


@pytest.mark.parametrize("clients,message", [
    ({}, "holds no client"),
    ([], "holds no client"),
    ("0123", "must be a mapping"),
    (np.arange(10), "must be a mapping"),
    ([{0, 1}], "client 0's indices are a set, which has no order"),
    ({"a": [0, 1], "b": []}, r"client\(s\) b hold no sample"),
    ([[0, 1], [[2]]], "client 1's indices must be 1-D"),
    ([[0, 1], [0.5]], "client 1's indices must be whole numbers"),
    ([[True, False]], "client 0's indices must be whole numbers"),
    ({"x": [0, 60000]}, "client x holds index 60000, out of range for 60000"),
    ([[0], [-1]], "client 1 holds index -1"),
    ({"a": [0, 7], "b": [3, 7]},
     r"1 sample\(s\) are held more than once, e.g. sample 7 by clients a, b"),
    ([[4, 4]], "e.g. sample 4 by clients 0, 0"),
    ({1: [0], "1": [1]}, "alike as text"),
])
def test_malformed_clients_are_refused(labels, clients, message):
  with pytest.raises(ValueError, match=message):
    partition.from_client_indices(labels, clients)


def test_malformed_labels_and_source_are_refused(labels):
  with pytest.raises(ValueError, match="1-D array of class ids"):
    partition.from_client_indices(labels.reshape(2, -1), [[0]])
  with pytest.raises(ValueError, match="`source` must be a non-empty string"):
    partition.from_client_indices(labels, [[0]], source="")

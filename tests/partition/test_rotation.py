"""rotate(...): rotated MNIST's client groups (`rotation.client_rotations`)
and the partitions that carry them (`Partition.rotation`)."""

import json

import numpy as np
import pytest
from scipy import stats

from tff_niid import partition
from tff_niid.partition import rotation

LABELS = np.arange(2000) % 10


@pytest.mark.parametrize("num_clients", [4, 7, 10, 101])
@pytest.mark.parametrize("degrees", [(0, 90, 180, 270), (0, 180), (270,)])
def test_groups_of_equal_size_each_angle_present(num_clients, degrees):
  angles = rotation.client_rotations(num_clients, degrees=degrees, seed=3)
  assert angles.dtype == np.int64 and angles.shape == (num_clients,)
  counts = [np.sum(angles == a) for a in degrees]
  assert set(angles.tolist()) == set(degrees)
  assert max(counts) - min(counts) <= 1 and sum(counts) == num_clients


def test_seeded():
  draw = lambda seed: rotation.client_rotations(12, seed=seed)
  assert np.array_equal(draw(0), draw(0))
  assert not np.array_equal(draw(0), draw(1))


def test_every_client_is_equally_likely_to_get_each_angle():
  # 6 clients, 3 angles: each client's angle over 3,000 seeds is uniform (a
  # rule dealing angles in client order would fail: client 0 always 0).
  draws = np.array([rotation.client_rotations(6, degrees=(0, 90, 180),
                                              seed=s) for s in range(3000)])
  for client in range(6):
    counts = np.bincount(draws[:, client] // 90, minlength=3)
    assert stats.chisquare(counts).pvalue > 1e-4, (client, counts)


@pytest.mark.parametrize("degrees,message", [
    ((0, 45), r"distinct angles among \(0, 90, 180, 270\); got \(0, 45\)"),
    ((0, 360), "distinct angles among"),
    ((90, 90), "gives an angle twice"),
    ((), "distinct angles among"),
    ((0.0, 90.0), "distinct angles among"),
    ((True,), "distinct angles among"),
])
def test_bad_angles_are_refused(degrees, message):
  with pytest.raises(ValueError, match=message):
    rotation.client_rotations(8, degrees=degrees, seed=0)


def test_fewer_clients_than_angles_is_refused():
  with pytest.raises(ValueError) as e:
    rotation.client_rotations(3, seed=0)
  assert str(e.value) == (
      "3 client(s) cannot form 4 rotation groups ([0, 90, 180, 270]); give "
      "at least 4 clients or fewer angles.")


def test_the_spec_modifier_draws_them():
  part = partition.spec.resolve("dirichlet(alpha=0.5)+rotate", LABELS, 20,
                                seed=5)
  assert part.spec == "dirichlet(alpha=0.5)+rotate"
  assert part.rotation is not None
  assert np.bincount(part.rotation // 90).tolist() == [5, 5, 5, 5]
  # The base's clients are unchanged: the rotation is drawn on its own seed.
  plain = partition.spec.resolve("dirichlet(alpha=0.5)", LABELS, 20, seed=5)
  assert np.array_equal(part.indices, plain.indices)
  assert plain.rotation is None
  two = partition.spec.resolve("iid+rotate(degrees=(0, 180))", LABELS, 10,
                               seed=5)
  assert two.spec == "iid+rotate(degrees=(0, 180))"
  assert two.rotation is not None
  assert sorted(set(two.rotation.tolist())) == [0, 180]
  assert partition.spec.parse({"base": {"scheme": "iid"},
                               "rotate": {"degrees": [0, 180]}}) == (
                                   partition.spec.parse(two.spec))


def test_the_spec_checks_the_angles_before_any_data():
  with pytest.raises(ValueError, match="gives an angle twice"):
    partition.spec.parse("iid+rotate(degrees=(90, 90))")


def test_saved_and_loaded_with_the_partition(tmp_path):
  part = partition.spec.resolve("classes(k=2)+rotate", LABELS, 8, seed=1)
  back = partition.load(part.save(str(tmp_path / "p")), labels=LABELS)
  assert part.rotation is not None
  assert np.array_equal(back.rotation, part.rotation) and back == part
  assert back != part.replace(rotation=np.roll(part.rotation, 1))
  assert back != part.replace(rotation=None)
  manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
  assert manifest["has_rotation"] is True
  # Saved before rotations existed: no field, no rotation.
  plain = partition.iid(LABELS, 8, seed=1)
  plain.save(str(tmp_path / "q"))
  manifest = json.loads((tmp_path / "q" / "manifest.json").read_text())
  assert manifest.pop("has_rotation") is False
  (tmp_path / "q" / "manifest.json").write_text(json.dumps(manifest))
  assert partition.load(str(tmp_path / "q")).rotation is None


@pytest.mark.parametrize("bad,message", [
    (np.array([0, 90, 45, 0]), "among"),
    (np.array([0, 90, 180]), "one integer angle per client"),
    (np.array([0.0, 90.0, 180.0, 270.0]), "one integer angle per client"),
])
def test_a_partition_refuses_other_rotations(bad, message):
  with pytest.raises(ValueError, match=message):
    partition.iid(LABELS, 4, seed=0).replace(rotation=bad)


def test_each_clients_split_keeps_its_angle():
  part = partition.spec.resolve("iid+rotate", LABELS, 8, seed=2)
  train, test = partition.split_clients(part, LABELS, test_fraction=0.25,
                                        seed=0)
  assert part.rotation is not None
  assert train.rotation is not None and test.rotation is not None
  assert np.array_equal(train.rotation, part.rotation)
  assert np.array_equal(test.rotation, part.rotation)


def test_the_summary_counts_the_clients_at_each_angle():
  part = partition.spec.resolve("iid+rotate(degrees=(0, 180))", LABELS, 9,
                                seed=0)
  summary = partition.metrics.summary(part, LABELS)
  assert (summary["clients_rotated_0"], summary["clients_rotated_180"]) in (
      (5, 4), (4, 5))
  assert "clients_rotated_0" not in partition.metrics.summary(
      partition.iid(LABELS, 9, seed=0), LABELS)


def test_a_natural_base_records_the_seed_its_rotations_were_drawn_with():
  writers = np.arange(LABELS.shape[0]) % 8
  draw = lambda seed: partition.spec.resolve(
      "natural(ids=writer)+rotate", LABELS, None, seed=seed,
      keys={"writer": writers})
  assert draw(1).seed == 1 and draw(1) == draw(1) and draw(1) != draw(2)
  assert partition.spec.resolve("natural(ids=writer)", LABELS, None, seed=1,
                                keys={"writer": writers}).seed is None

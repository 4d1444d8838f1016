"""Partition value, save/load round trip and tampering."""

import json
import os

import numpy as np
import pytest

from tff_niid import partition
from tff_niid.partition import core


def test_round_trip_keeps_everything(mnist_labels, tmp_path):
  part = partition.dirichlet(mnist_labels, 20, alpha=0.5, seed=3).replace(
      noisy_labels=(mnist_labels + 1) % 10,
      feature_noise=np.linspace(0, 1, 20), spec="dirichlet(alpha=0.5)",
      client_names=[f"c{i}" for i in range(20)])
  path = part.save(str(tmp_path / "p"))
  back = partition.load(path, labels=mnist_labels)
  for field in ("indices", "offsets", "noisy_labels", "feature_noise"):
    assert np.array_equal(getattr(back, field), getattr(part, field))
  assert back.client_names == part.client_names
  assert (back.scheme, back.params, back.seed, back.spec) == (
      part.scheme, part.params, part.seed, part.spec)
  manifest = json.load(open(os.path.join(path, "manifest.json")))
  assert manifest["tff_niid_version"] and manifest["labels_fingerprint"]
  assert part.save(path) == path  # overwriting an existing save works


def test_load_against_other_dataset(mnist_labels, fashion_mnist, tmp_path):
  part = partition.iid(mnist_labels, 10, seed=0)
  part.save(str(tmp_path / "p"))
  with pytest.raises(ValueError, match="fingerprint"):
    partition.load(str(tmp_path / "p"), labels=fashion_mnist.train_labels)


def _resave_arrays(path, **arrays):
  """Writes tampered arrays and a matching checksum (a deliberate edit)."""
  np.savez(os.path.join(path, "arrays.npz"), **arrays)
  manifest_path = os.path.join(path, "manifest.json")
  manifest = json.load(open(manifest_path))
  manifest["arrays_sha256"] = core._sha256_file(os.path.join(path,
                                                             "arrays.npz"))
  json.dump(manifest, open(manifest_path, "w"))


def test_tampering_is_detected(mnist_labels, tmp_path):
  part = partition.iid(mnist_labels[:100], 4, seed=0)
  path = part.save(str(tmp_path / "p"))
  with open(os.path.join(path, "arrays.npz"), "r+b") as f:
    f.seek(200)
    f.write(b"\xff\xff")
  with pytest.raises(ValueError, match="checksum"):
    partition.load(path)

  duplicated = part.indices.copy()
  duplicated[1] = duplicated[0]
  path = part.save(str(tmp_path / "dup"))
  _resave_arrays(path, indices=duplicated, offsets=part.offsets)
  with pytest.raises(ValueError, match="more than one client"):
    partition.load(path)

  out_of_range = part.indices.copy()
  out_of_range[0] = 100
  path = part.save(str(tmp_path / "oor"))
  _resave_arrays(path, indices=out_of_range, offsets=part.offsets)
  with pytest.raises(ValueError, match="out of range"):
    partition.load(path)

  with pytest.raises(ValueError, match="missing"):
    partition.load(str(tmp_path / "nothing"))

  path = part.save(str(tmp_path / "no_indices"))
  _resave_arrays(path, offsets=part.offsets)
  with pytest.raises(ValueError, match="indices"):
    partition.load(path)


def test_no_pickle_in_file(mnist_labels, tmp_path):
  part = partition.iid(mnist_labels[:50], 2, seed=0).replace(
      client_names=["a", "b"])
  path = part.save(str(tmp_path / "p"))
  with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as data:
    assert sorted(data.files) == ["client_names", "indices", "offsets"]


def test_sequence_protocol(mnist_labels):
  part = partition.iid(mnist_labels, 5, seed=0)
  assert len(part) == 5 and len(part[1:3]) == 2
  assert np.array_equal(part[-1], part[4])
  with pytest.raises(IndexError):
    part[5]
  owner = part.owner()
  assert np.array_equal(np.flatnonzero(owner == 2), np.sort(part[2]))

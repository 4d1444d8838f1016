"""Partition value, save/load round trip and tampering."""

import errno
import hashlib
import json
import os
import stat

import numpy as np
import pytest

import files

from tff_niid import partition
from tff_niid.partition import core


def test_round_trip_keeps_everything(labels, tmp_path):
  part = partition.dirichlet(labels, 20, alpha=0.5, seed=3).replace(
      noisy_labels=(labels + 1) % 10,
      feature_noise=np.linspace(0, 1, 20), spec="dirichlet(alpha=0.5)",
      client_names=[f"c{i}" for i in range(20)])
  path = part.save(str(tmp_path / "p"))
  back = partition.load(path, labels=labels)
  for field in ("indices", "offsets", "noisy_labels", "feature_noise"):
    assert np.array_equal(getattr(back, field), getattr(part, field))
  assert back.client_names == part.client_names
  assert (back.scheme, back.params, back.seed, back.spec) == (
      part.scheme, part.params, part.seed, part.spec)
  manifest = json.load(open(os.path.join(path, "manifest.json")))
  assert manifest["tff_niid_version"] and manifest["labels_fingerprint"]
  assert back == part


def test_equality_is_same_samples_made_the_same_way(labels):
  part = partition.dirichlet(labels, 20, alpha=0.5, seed=3)
  assert part == partition.dirichlet(labels, 20, alpha=0.5, seed=3)
  assert part != partition.dirichlet(labels, 20, alpha=0.5, seed=4)
  # The same arrays, recorded as made another way, or with extras.
  assert part != part.replace(seed=4)
  assert part != part.replace(spec="dirichlet(alpha=0.5)")
  assert part != part.replace(feature_noise=np.zeros(20))
  assert part != part.replace(client_names=[str(i) for i in range(20)])
  assert part != "a partition"
  # The same provenance, other arrays.
  swapped = part.indices.copy()
  swapped[[0, -1]] = swapped[[-1, 0]]
  assert part != part.replace(indices=swapped)
  moved = part.offsets.copy()
  moved[1] += 1
  assert part != part.replace(offsets=moved)
  noisy = part.replace(noisy_labels=labels, feature_noise=np.zeros(20))
  assert noisy != noisy.replace(noisy_labels=(labels + 1) % 10)
  assert noisy != noisy.replace(feature_noise=np.ones(20))
  nan = part.replace(feature_noise=np.full(20, np.nan))
  assert nan == nan.replace()
  with pytest.raises(TypeError):
    hash(part)


def test_fingerprint_hashes_values_not_storage():
  labels = np.arange(100) % 10
  assert core.fingerprint(labels) == core.fingerprint(labels.astype(np.uint8))
  assert core.fingerprint(labels) != core.fingerprint(labels[::-1])
  assert core.fingerprint(labels) != core.fingerprint(labels[:-1])
  # Keys: floats exactly; text whatever its storage.
  key = np.linspace(0, 1, 100)
  assert core.fingerprint(key) == core.fingerprint(key.astype(">f8"))
  assert core.fingerprint(key) != core.fingerprint(np.nextafter(key, 2))
  assert core.fingerprint(key) != core.fingerprint(labels)
  text = np.array(["north", "south"] * 50)
  assert (core.fingerprint(text) == core.fingerprint(text.astype(object))
          == core.fingerprint(np.char.encode(text))
          == core.fingerprint(text.astype(">U20")))
  assert core.fingerprint(text) != core.fingerprint(
      np.char.add(text, "s"))  # one more character
  assert core.fingerprint(np.array(["ab", "c"])) != core.fingerprint(
      np.array(["a", "bc"]))
  assert core.fingerprint(np.array([], str)) != core.fingerprint(
      np.array([""]))
  # Bytes that are not UTF-8 are text too, a character per byte.
  assert core.fingerprint(np.array([b"\xc8", b"a"])) != core.fingerprint(
      np.array([b"\xc9", b"a"]))
  # Whole-number floats are numbers: labels read as floats still match.
  assert core.fingerprint(labels.astype(float)) == core.fingerprint(labels)
  assert core.fingerprint(np.array([1e300])) != core.fingerprint(
      np.array([1e300 * 2]))
  assert core.fingerprint(text) != core.fingerprint(text[::-1])
  # Label fingerprints recorded in saved partitions must not change.
  assert core.fingerprint(labels) == "sha256:" + hashlib.sha256(
      labels.astype("u1").tobytes() + b"u1(100,)").hexdigest()[:32]


def test_loading_a_report_directory_names_its_partition(labels, tmp_path):
  part = partition.iid(labels, 5, seed=0)
  partition.report.write(part, labels, str(tmp_path), plots=False)
  with pytest.raises(ValueError) as caught:
    partition.load(str(tmp_path))
  assert str(caught.value) == (
      f"not a saved partition: {tmp_path}/manifest.json is missing. "
      f"{tmp_path} holds a report (a tff-niid-partition output or a training "
      f"run): load {tmp_path}/partition.")
  assert partition.load(str(tmp_path / "partition")) == part


def test_overwrite_replaces_only_a_saved_partition(tmp_path):
  labels = np.arange(200) % 10
  first, second = (partition.iid(labels, n, seed=0) for n in (4, 5))
  path = first.save(str(tmp_path / "p"))
  before = files.snapshot(tmp_path)
  with pytest.raises(ValueError, match=r"already holds another saved "
                     r"partition; pass overwrite=True to replace it"):
    second.save(path)
  assert files.snapshot(tmp_path) == before
  # The same partition again (a rerun of the script that saved it): nothing
  # to replace, nothing written.
  assert partition.iid(labels, 4, seed=0).save(path) == path
  assert files.snapshot(tmp_path) == before
  # One that no longer loads is not called "another" partition.
  files.rewrite_json(os.path.join(path, "manifest.json"),
                     lambda m: {**m, "num_clients": 9})
  with pytest.raises(ValueError, match=r"already holds a saved partition "
                     r"that does not load \(.*manifest describes "
                     r"integers of shape \(10,\)\); pass overwrite=True"):
    first.save(path)
  assert second.save(path, overwrite=True) == path
  assert len(partition.load(path)) == 5
  # Nothing left beside it: the old files and the temporary directories go.
  assert sorted(os.listdir(tmp_path)) == ["p"]
  assert sorted(os.listdir(path)) == ["arrays.npz", "manifest.json"]
  # A saved partition with anything else in it is not replaced.
  (tmp_path / "p" / "notes.txt").write_text("mine")
  before = files.snapshot(tmp_path)
  with pytest.raises(ValueError, match=r"non-empty directory \('arrays.npz', "
                     r"'manifest.json', 'notes.txt'\) that is not a saved "
                     "partition"):
    first.save(path, overwrite=True)
  assert files.snapshot(tmp_path) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_save_never_deletes_what_it_did_not_write(tmp_path, monkeypatch,
                                                  overwrite):
  part = partition.iid(np.arange(100) % 10, 4, seed=0)
  results = tmp_path / "results"
  (results / "run1").mkdir(parents=True)
  (results / "run1" / "metrics.csv").write_text("round,accuracy\n1,0.5\n")
  (tmp_path / "a_file").write_text("data")
  os.symlink(results, tmp_path / "link")
  monkeypatch.chdir(results)
  before = files.snapshot(tmp_path)
  for path, message in [
      ("", "`path` must name a directory to save the partition to; got ''."),
      (".", f"cannot save the partition to {results}: it is a non-empty "
       "directory ('run1') that is not a saved partition, and saving could "
       "delete its content; choose a new or empty directory."),
      (str(results), "that is not a saved partition"),
      (str(tmp_path / "a_file"), f"cannot save the partition to "
       f"{tmp_path / 'a_file'}: it is a file, not a directory; choose a new "
       "path."),
      (str(tmp_path / "link"), "it is a symbolic link, not a directory"),
  ]:
    with pytest.raises(ValueError) as e:
      part.save(path, overwrite=overwrite)
    assert message in str(e.value)
    assert files.snapshot(tmp_path) == before


def test_save_into_an_empty_directory(tmp_path):
  (tmp_path / "empty").mkdir()
  part = partition.iid(np.arange(100) % 10, 4, seed=0)
  path = part.save(str(tmp_path / "empty"))
  assert np.array_equal(partition.load(path).indices, part.indices)


def test_failed_save_changes_nothing(tmp_path, monkeypatch):
  labels = np.arange(100) % 10
  old = partition.iid(labels, 4, seed=0)
  path = old.save(str(tmp_path / "p"))
  before = files.snapshot(tmp_path)

  def disk_full(*args, **kwargs):
    del args, kwargs
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(np, "savez", disk_full)
  new = partition.iid(labels, 5, seed=0)
  for target, overwrite in ((path, True), (str(tmp_path / "q"), False)):
    with pytest.raises(OSError, match=f"cannot save the partition to "
                       f"{target}: No space left on device"):
      new.save(target, overwrite=overwrite)
    assert files.snapshot(tmp_path) == before  # no half-written files


def test_save_to_an_unwritable_place(tmp_path):
  (tmp_path / "a_file").write_text("data")
  before = files.snapshot(tmp_path)
  target = str(tmp_path / "a_file" / "p")
  with pytest.raises(OSError) as e:
    partition.iid(np.arange(100) % 10, 4, seed=0).save(target)
  assert f"cannot save the partition to {target}: " in str(e.value)
  assert "\n" not in str(e.value)
  assert files.snapshot(tmp_path) == before


def test_load_against_other_dataset(labels, balanced_labels, tmp_path):
  part = partition.iid(labels, 10, seed=0)
  part.save(str(tmp_path / "p"))
  with pytest.raises(ValueError, match="fingerprint"):
    partition.load(str(tmp_path / "p"), labels=balanced_labels)


def _resave_arrays(path, **arrays):
  """Writes tampered arrays and a matching checksum (a deliberate edit)."""
  np.savez(os.path.join(path, "arrays.npz"), **arrays)
  manifest_path = os.path.join(path, "manifest.json")
  manifest = json.load(open(manifest_path))
  manifest["arrays_sha256"] = core._sha256_file(os.path.join(path,
                                                             "arrays.npz"))
  json.dump(manifest, open(manifest_path, "w"))


def test_tampering_is_detected(labels, tmp_path):
  part = partition.iid(labels[:100], 4, seed=0)
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

  path = part.save(str(tmp_path / "float_indices"))
  _resave_arrays(path, indices=part.indices + 0.5, offsets=part.offsets)
  with pytest.raises(ValueError, match=r"indices has shape \(100,\) and dtype "
                     r"float64, but the manifest describes integers of shape "
                     r"\(100,\)\."):
    partition.load(path)


def test_no_pickle_in_file(labels, tmp_path):
  part = partition.iid(labels[:50], 2, seed=0).replace(
      client_names=["a", "b"])
  path = part.save(str(tmp_path / "p"))
  with np.load(os.path.join(path, "arrays.npz"), allow_pickle=False) as data:
    assert sorted(data.files) == ["client_names", "indices", "offsets"]


def test_sequence_protocol(labels):
  part = partition.iid(labels, 5, seed=0)
  assert len(part) == 5 and len(part[1:3]) == 2
  assert np.array_equal(part[-1], part[4])
  with pytest.raises(IndexError):
    part[5]
  owner = part.owner()
  assert np.array_equal(np.flatnonzero(owner == 2), np.sort(part[2]))


@pytest.mark.parametrize("indices,offsets,reason", [
    ([0, 1, 2, 3], [0, 2, 1, 4], "offsets are not a non-decreasing split"),
    ([0, 1, 2, 3], [0, -9223372036854775807, 4], "non-decreasing"),
    ([0, 1, 1, 3], [0, 2, 4], "1 sample(s) belong to more than one client "
     "(e.g. sample 1)"),
    ([0, 1, 2, 9], [0, 2, 4], "indices out of range [0, 4)"),
    ([0, 1, 2, 3], [0, 0, 4], "a client has 0 samples, fewer than the 1 "
     "promised"),
])
def test_every_constructed_partition_is_checked(indices, offsets, reason):
  # What quantity_skew(sigma=800) once returned (sizes of -9.2e18) can no
  # longer leave a scheme: make_partition checks every result.
  with pytest.raises(AssertionError) as e:
    core.make_partition(np.arange(4) % 2, indices, offsets, scheme="iid",
                        params={}, seed=0)
  assert str(e.value).startswith("internal error: iid built an invalid "
                                 "partition (")
  assert reason in str(e.value)


def test_min_size_is_part_of_the_check():
  with pytest.raises(AssertionError, match="a client has 1 samples, fewer "
                     "than the 2 promised"):
    core.make_partition(np.zeros(4, int), [0, 1, 2, 3], [0, 1, 4],
                        scheme="dirichlet", params={}, seed=0, min_size=2)


def _with_manifest(path, edit):
  """The saved partition at `path`, its manifest.json replaced by
  `edit(manifest dict)` (`files.rewrite_json`)."""
  files.rewrite_json(os.path.join(path, "manifest.json"), edit)
  return path


@pytest.mark.parametrize("edit,message", [
    (lambda m: b"[1, 2]", "corrupt partition manifest {}: a JSON object is "
     "needed; got list."),
    (lambda m: b"\xff\xfe\x00 not text", "corrupt partition manifest {}: "
     "'utf-8' codec can't decode byte 0xff in position 0"),
    (lambda m: b'{"format_version": 1', "corrupt partition manifest {}: "
     "Expecting"),
    (lambda m: {**m, "num_samples": "100"}, "corrupt partition manifest {}: "
     "'num_samples' has the wrong type ('100')."),
    (lambda m: {**m, "disjoint": 1}, "'disjoint' has the wrong type (1)."),
    (lambda m: {**m, "num_clients": True}, "'num_clients' has the wrong type"),
    (lambda m: {**m, "params": None}, "'params' has the wrong type (None)."),
    (lambda m: {**m, "num_clients": 0}, "'num_clients' must be >= 1; got 0."),
    (lambda m: {k: v for k, v in m.items() if k != "scheme"},
     "{} is not a complete partition manifest: ['scheme'] missing."),
    (lambda m: {**m, "num_clients": 5}, "offsets has shape (5,) and dtype "
     "int64, but the manifest describes integers of shape (6,)."),
    (lambda m: {**m, "has_noisy_labels": True}, "its arrays ['indices', "
     "'offsets'] are not the ['indices', 'noisy_labels', 'offsets'] its "
     "manifest lists."),
])
def test_malformed_manifest_is_one_clear_line(tmp_path, edit, message):
  path = partition.iid(np.arange(100) % 10, 4, seed=0).save(
      str(tmp_path / "p"))
  _with_manifest(path, edit)
  before = files.snapshot(tmp_path)
  with pytest.raises(ValueError) as e:
    partition.load(path)
  assert message.format(os.path.join(path, "manifest.json")) in str(e.value)
  assert "\n" not in str(e.value)
  assert files.snapshot(tmp_path) == before


def test_huge_num_samples_in_manifest_allocates_nothing(tmp_path):
  # 1e12 samples once meant a 7 TiB bincount in validate; the duplicate check
  # now allocates per index, and the labels reveal the edit.
  labels = np.arange(100) % 10
  path = partition.iid(labels, 4, seed=0).save(str(tmp_path / "p"))
  _with_manifest(path, lambda m: {**m, "num_samples": 10**12})
  assert partition.load(path).num_samples == 10**12
  with pytest.raises(ValueError, match=r"\(1000000000000 samples\) but the "
                     r"given labels have .* \(100 samples\)"):
    partition.load(path, labels=labels)


def test_a_saved_partition_is_as_readable_as_its_files(tmp_path, labels):
  # tempfile.mkdtemp's 0o700 once made every saved partition private to its
  # owner, whatever the umask, while its files were readable by the group.
  previous = os.umask(0o022)
  try:
    path = partition.iid(labels, 10, seed=0).save(str(tmp_path / "p"))
  finally:
    os.umask(previous)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
  for name in os.listdir(path):
    assert stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode) == 0o644

"""The idx loader on the real files, and its errors on broken copies."""

import gzip
import hashlib
import os
import shutil

import numpy as np
import pytest

from tff_niid import datasets


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_loads_real_dataset(name):
  d = datasets.load(name)
  assert d.train_images.shape == (60000, 28, 28)
  assert d.test_images.shape == (10000, 28, 28)
  assert d.train_images.dtype == np.uint8
  assert d.train_labels.dtype == np.int64
  assert d.train_labels.shape == (60000,) and d.test_labels.shape == (10000,)
  # As documented: read-only images (views of the verified bytes), labels
  # of their own.
  assert not d.train_images.flags.writeable
  assert d.train_labels.flags.writeable
  # Both datasets have all 10 classes, each 5-12% of the training set.
  counts = np.bincount(d.train_labels, minlength=10)
  assert counts.min() > 5000 and counts.max() < 7000
  assert 0 < d.train_images.mean() < 255


def test_mnist_known_values(mnist):
  assert mnist.train_labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
  assert mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]


def _copy(name, tmp_path):
  src = datasets.find_dir(name)
  dst = tmp_path / name
  shutil.copytree(src, dst)
  return dst


def test_missing_dir_names_files_and_places(tmp_path, monkeypatch):
  monkeypatch.setattr(datasets, "_repo_shared_dir", lambda: str(tmp_path / "x"))
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  with pytest.raises(datasets.DatasetError) as e:
    datasets.load("mnist", data_dir=str(tmp_path / "nowhere"))
  msg = str(e.value)
  assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
  assert str(tmp_path / "nowhere") in msg and "--data_dir" in msg
  assert datasets.ENV_VAR in msg


def test_data_dir_and_env_var_take_precedence(tmp_path, monkeypatch):
  dst = _copy("mnist", tmp_path)
  assert datasets.load("mnist", data_dir=str(tmp_path)).directory == str(dst)
  monkeypatch.setenv(datasets.ENV_VAR, str(dst))
  assert datasets.load("mnist").directory == str(dst)


def test_truncated_file_is_a_clear_error(tmp_path):
  dst = _copy("mnist", tmp_path)
  path = dst / "train-labels-idx1-ubyte.gz"
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  for verify in (True, False):  # checksum or, without it, gzip/size check
    with pytest.raises(datasets.DatasetError) as e:
      datasets.load("mnist", data_dir=str(dst), verify=verify)
    assert "train-labels-idx1-ubyte.gz" in str(e.value)


def _remove_sums(directory):
  for sums in ("MD5SUMS", "SHA256SUMS"):
    os.remove(directory / sums)


def test_altered_file_is_refused_without_sums_beside_it(tmp_path):
  dst = _copy("fashion_mnist", tmp_path)
  _remove_sums(dst)
  path = dst / "t10k-labels-idx1-ubyte.gz"
  labels = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8).copy()
  labels[-1] = (labels[-1] + 1) % 10  # a valid file, but not the original
  path.write_bytes(gzip.compress(labels.tobytes()))
  with pytest.raises(datasets.DatasetError) as e:
    datasets.load("fashion_mnist", data_dir=str(dst))
  assert str(e.value).startswith(
      f"{path} is not fashion_mnist's t10k-labels-idx1-ubyte.gz: the SHA-256 "
      "of its content is ")
  # Unverified, the altered file loads: the header and size are valid.
  unverified = datasets.load("fashion_mnist", data_dir=str(dst), verify=False)
  assert unverified.test_labels.shape == (10000,)


def test_sums_beside_the_files_are_checked(tmp_path):
  dst = _copy("fashion_mnist", tmp_path)  # FMNIST sums list the .gz files
  sums = dst / "SHA256SUMS"
  digest = hashlib.sha256(b"another file").hexdigest()
  sums.write_text(sums.read_text() + f"{digest}  train-images-idx3-ubyte.gz\n")
  with pytest.raises(datasets.DatasetError, match="sha256 checksum"):
    datasets.load("fashion_mnist", data_dir=str(dst))


@pytest.mark.parametrize("name,other", [("fashion_mnist", "mnist"),
                                        ("mnist", "fashion_mnist")])
def test_another_datasets_files_are_refused(name, other):
  other_dir = datasets.find_dir(other)
  with pytest.raises(datasets.DatasetError) as e:
    datasets.load(name, data_dir=other_dir)
  fname = "train-images-idx3-ubyte.gz"
  assert str(e.value) == (
      f"{os.path.join(other_dir, fname)} is not {name}'s {fname}: the SHA-256 "
      f"of its content is {datasets.CONTENT_SHA256[other][fname]}, expected "
      f"{datasets.CONTENT_SHA256[name][fname]} (that is {other}'s {fname}: is "
      f"the directory another dataset's?). Use the original {name} files.")


def test_recompressed_copy_is_the_same_data(fashion_mnist, tmp_path):
  """The content is verified, not its gzip wrapper."""
  dst = _copy("fashion_mnist", tmp_path)
  _remove_sums(dst)  # they list the .gz files
  for fname in datasets.FILES.values():
    raw = gzip.decompress((dst / fname).read_bytes())
    (dst / fname).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
  data = datasets.load("fashion_mnist", data_dir=str(dst))
  assert data.content_sha256 == fashion_mnist.content_sha256
  assert np.array_equal(data.train_images, fashion_mnist.train_images)


def test_known_sums_are_mnists_published_ones(mnist):
  published = {}
  with open(os.path.join(mnist.directory, "SHA256SUMS")) as f:
    for line in f:  # MNIST's list the decompressed files
      digest, fname = line.split()
      published[fname + ".gz"] = digest
  assert datasets.CONTENT_SHA256["mnist"] == published == mnist.content_sha256


def test_wrong_header_is_a_clear_error(tmp_path):
  dst = _copy("mnist", tmp_path)
  # Swap the test labels for the train labels: valid gzip, wrong count.
  shutil.copy(dst / "train-labels-idx1-ubyte.gz", dst / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(datasets.DatasetError,
                     match="that is mnist's train-labels-idx1-ubyte.gz"):
    datasets.load("mnist", data_dir=str(dst))
  with pytest.raises(datasets.DatasetError, match="header"):
    datasets.load("mnist", data_dir=str(dst), verify=False)


def test_unknown_dataset():
  with pytest.raises(datasets.DatasetError, match="unknown dataset"):
    datasets.load("cifar10")

"""The idx loader on the real files, and its errors on broken copies."""

import gzip
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


def test_checksum_mismatch_detected(tmp_path):
  dst = _copy("fashion_mnist", tmp_path)  # FMNIST sums list the .gz files
  path = dst / "t10k-labels-idx1-ubyte.gz"
  labels = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8).copy()
  labels[-1] = (labels[-1] + 1) % 10  # a valid file, but not the original
  path.write_bytes(gzip.compress(labels.tobytes()))
  with pytest.raises(datasets.DatasetError, match="checksum"):
    datasets.load("fashion_mnist", data_dir=str(dst))
  # Without checksums the altered file loads: the header and size are valid.
  for sums in ("MD5SUMS", "SHA256SUMS"):
    os.remove(dst / sums)
  assert datasets.load("fashion_mnist", data_dir=str(dst)).test_labels.shape == (10000,)


def test_wrong_header_is_a_clear_error(tmp_path):
  dst = _copy("mnist", tmp_path)
  for sums in ("MD5SUMS", "SHA256SUMS"):
    os.remove(dst / sums)
  # Swap the test labels for the train labels: valid gzip, wrong count.
  shutil.copy(dst / "train-labels-idx1-ubyte.gz", dst / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(datasets.DatasetError, match="header"):
    datasets.load("mnist", data_dir=str(dst))


def test_unknown_dataset():
  with pytest.raises(datasets.DatasetError, match="unknown dataset"):
    datasets.load("cifar10")

"""MNIST and Fashion-MNIST from their original idx `.gz` files (numpy only).

No download: this package is used on machines without internet. Files are
looked up in the first of these that is set:
  1. the `data_dir` argument (the `--data_dir` flag of the binaries),
  2. the `TFF_NIID_DATA` environment variable,
  3. `<repo>/../shared/data` (the layout of this project's CI),
either holding the four files directly or in a `<name>/` subdirectory
(`mnist/`, `fashion-mnist/`). When `SHA256SUMS` or `MD5SUMS` files lie
beside the data, every file they list is checked against them.
"""

import collections
import gzip
import hashlib
import os
import zlib

import numpy as np

ENV_VAR = "TFF_NIID_DATA"
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# Directory names per dataset, as distributed (and as in ../shared/data).
DIRNAMES = {"mnist": ("mnist",), "fashion_mnist": ("fashion-mnist",
                                                   "fashion_mnist")}
_SIZES = {"train": 60000, "test": 10000}
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049

Dataset = collections.namedtuple(
    "Dataset", ["name", "train_images", "train_labels", "test_images",
                "test_labels", "directory"])
Dataset.__doc__ = """uint8 images (N, 28, 28) and int64 labels (N,) per split."""


class DatasetError(ValueError):
  """A dataset's files are missing or corrupt; the message says what to do."""


def _repo_shared_dir():
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(repo), "shared", "data")


def candidate_dirs(name, data_dir=None):
  """The directories searched for `name`, in order.

  The first configured root wins: `data_dir` if given, else $TFF_NIID_DATA
  if set, else the repository default — so a wrong explicit location is an
  error, never silently replaced by another copy of the data.
  """
  root = data_dir or os.environ.get(ENV_VAR) or _repo_shared_dir()
  return [root] + [os.path.join(root, d) for d in DIRNAMES[name]]


def find_dir(name, data_dir=None):
  """The first candidate directory holding all four files, else DatasetError."""
  if name not in DIRNAMES:
    raise DatasetError(
        f"unknown dataset {name!r}; choose one of {sorted(DIRNAMES)}.")
  searched = candidate_dirs(name, data_dir)
  for d in searched:
    if all(os.path.isfile(os.path.join(d, f)) for f in FILES.values()):
      return d
  raise DatasetError(
      f"{name} not found. Expected the files {', '.join(FILES.values())} "
      f"in one of: {', '.join(searched)}. Put the original idx .gz files "
      f"(with their SHA256SUMS or MD5SUMS if you have them) in a directory and "
      f"pass --data_dir=DIR (or data_dir=DIR, or set {ENV_VAR}=DIR).")


def _read_checksums(directory):
  """[(filename, algorithm, hexdigest)] from SHA256SUMS and MD5SUMS.

  Distributions list either the .gz files or the decompressed files (MNIST's
  SHA256SUMS does the latter), so both kinds of entry are honoured.
  """
  sums = []
  for fname, algo in (("SHA256SUMS", "sha256"), ("MD5SUMS", "md5")):
    path = os.path.join(directory, fname)
    if os.path.isfile(path):
      with open(path) as f:
        for line in f:
          parts = line.split()
          if len(parts) == 2:
            sums.append((parts[1].lstrip("*"), algo, parts[0].lower()))
  return sums


def _verify(path, what, data, algo, digest):
  got = hashlib.new(algo, data).hexdigest()
  if got != digest:
    raise DatasetError(
        f"{path} fails its {algo} checksum ({what}: expected {digest}, got "
        f"{got}): the file is corrupt or a different version. Replace it with "
        "the original file.")


def _read_idx(path, magic, count, item_shape, checksums):
  with open(path, "rb") as f:
    compressed = f.read()
  gz_name = os.path.basename(path)
  for name, algo, digest in checksums:
    if name == gz_name:
      _verify(path, "compressed file", compressed, algo, digest)
  try:
    raw = gzip.decompress(compressed)
  except (OSError, EOFError, zlib.error) as e:
    raise DatasetError(
        f"cannot decompress {path} ({e}); the file is truncated or not a "
        "gzip file. Replace it with the original .gz file.") from None
  for name, algo, digest in checksums:
    if name == gz_name[:-len(".gz")]:
      _verify(path, "decompressed content", raw, algo, digest)
  ndim = len(item_shape) + 1
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DatasetError(f"{path} is too short to hold an idx header.")
  dims = np.frombuffer(raw, dtype=">i4", count=ndim + 1)
  expected_dims = (count,) + tuple(item_shape)
  if dims[0] != magic or tuple(dims[1:]) != expected_dims:
    raise DatasetError(
        f"{path}: idx header {tuple(dims)} is not magic {magic} with shape "
        f"{expected_dims}; is it the right file?")
  size = int(np.prod(expected_dims))
  if len(raw) != header + size:
    raise DatasetError(
        f"{path}: holds {len(raw) - header} bytes of data, expected {size}.")
  return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(
      expected_dims)


def load(name="mnist", data_dir=None, *, verify=True):
  """Loads MNIST or Fashion-MNIST as numpy arrays.

  Args:
    name: "mnist" or "fashion_mnist".
    data_dir: optional directory to look in first (see module docstring).
    verify: check files against SHA256SUMS/MD5SUMS when present.

  Returns:
    A `Dataset` namedtuple: uint8 images (N, 28, 28), int64 labels (N,),
    60,000 train and 10,000 test samples, and the directory used.

  Raises:
    DatasetError: files missing, truncated, corrupt or failing a checksum.
  """
  directory = find_dir(name, data_dir)
  sums = _read_checksums(directory) if verify else []
  arrays = {}
  for field, fname in FILES.items():
    path = os.path.join(directory, fname)
    split, kind = field.split("_")
    if kind == "images":
      arrays[field] = _read_idx(path, _IMAGE_MAGIC, _SIZES[split], (28, 28),
                                sums)
    else:
      labels = _read_idx(path, _LABEL_MAGIC, _SIZES[split], (), sums)
      if labels.max() > 9:
        raise DatasetError(f"{path}: labels outside 0..9.")
      arrays[field] = labels.astype(np.int64)
  return Dataset(name=name, directory=directory, **arrays)

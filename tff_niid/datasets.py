"""MNIST and Fashion-MNIST from their original idx `.gz` files (numpy only).

Nothing is downloaded unless asked (`load(..., download=True)`, for Colab and
fresh laptops; `tff_niid.download`). Files are looked up under the first of
these roots that is set, and only there:
  1. the `data_dir` argument (the `--data_dir` flag of the binaries),
  2. the `TFF_NIID_DATA` environment variable,
  3. the defaults: `<repo>/../shared/data` (in a source checkout: the
     layout of this project's CI), then `~/.cache/tff_niid/data`
     ($XDG_CACHE_HOME honoured; where `download=True` puts files by default),
in a `<name>/` subdirectory (`mnist/`, `fashion-mnist/`), else in the root
itself. Every file's content is checked against the dataset's published
SHA-256 (`CONTENT_SHA256`), so another dataset's files, or altered ones, are
refused under any name or path; when `SHA256SUMS` or `MD5SUMS` files lie
beside the data, every file they list is also checked against them. With
`download=True`, missing files are fetched into the `<name>/` subdirectory
of the first root (`data_dir`, else $TFF_NIID_DATA, else the cache; into the
root itself if it is so named), so both datasets can be downloaded under one
root, from the mirrors in `tff_niid.download.MIRRORS` (or `mirrors=`, or
$TFF_NIID_MIRRORS), each verified against `CONTENT_SHA256` before it is
written.
"""

import collections
import gzip
import hashlib
import os
import zlib

import numpy as np

from tff_niid import download as download_lib

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
# SHA-256 of each file's decompressed idx content. The content, not the .gz, is
# checked: the same data circulates in different gzip wrappers (the
# Fashion-MNIST .gz files in ../shared/data are 24 bytes shorter than
# Zalando's, whose gzip header also stores the file name, so their .gz sums
# differ while the content is identical). MNIST's values are its published
# SHA256SUMS; Fashion-MNIST's were computed from ../shared/data (whose .gz
# files match the SHA256SUMS and MD5SUMS beside them) and equal the content
# sums other projects publish for Zalando's original files.
CONTENT_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
_SIZES = {"train": 60000, "test": 10000}
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049

Dataset = collections.namedtuple(
    "Dataset", ["name", "train_images", "train_labels", "test_images",
                "test_labels", "directory", "content_sha256"])
Dataset.__doc__ = """uint8 images (N, 28, 28) and int64 labels (N,) per split,
the directory read and {file name: SHA-256 of its decompressed content}.
The images are read-only views of the verified file content (no second
copy of the images): copy them (`np.array(d.train_images)`) to change them in
place; the labels are writable arrays of their own."""


class DatasetError(ValueError):
  """A dataset's files are missing or corrupt; the message says what to do."""


def _repo_shared_dir():
  """`<repo>/../shared/data` when tff_niid runs from a source checkout (its
  setup.py beside the package), else None (an installed copy has no repo)."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if not os.path.isfile(os.path.join(repo, "setup.py")):
    return None
  return os.path.join(os.path.dirname(repo), "shared", "data")


def cache_dir(*parts: str) -> str:
  """The package's cache directory, $XDG_CACHE_HOME/tff_niid or
  ~/.cache/tff_niid, joined with `parts` (the datasets, worker arrays and
  the compiled bind shim live below it)."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "tff_niid", *parts)


def _configured_root(data_dir):
  """`data_dir` if given, else $TFF_NIID_DATA if set, else None; a leading
  `~` expanded (the shell leaves the one in `--data_dir=~/data` as it is)."""
  configured = data_dir or os.environ.get(ENV_VAR)
  return os.path.expanduser(configured) if configured else None


def _roots(data_dir):
  """The roots searched, in order: `data_dir` if given, else $TFF_NIID_DATA
  if set, else the defaults (a checkout's ../shared/data, then the cache) —
  so a wrong explicit location is an error, never silently replaced by
  another copy of the data."""
  configured = _configured_root(data_dir)
  if configured:
    return [configured]
  return [root for root in (_repo_shared_dir(), cache_dir("data")) if root]


def candidate_dirs(name, data_dir=None):
  """The directories searched for `name`, in order: per root (`_roots`),
  its `<name>/` subdirectories, then the root itself."""
  return [d for root in _roots(data_dir)
          for d in [os.path.join(root, sub) for sub in DIRNAMES[name]] + [root]]


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
      f"pass --data_dir=DIR (or data_dir=DIR, or set {ENV_VAR}=DIR), or "
      "fetch them with load(..., download=True) (tff-niid-partition and "
      "experiments/train.py: --download).")


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


def _decompress(path, compressed):
  """The decompressed bytes of the .gz file `path` holding `compressed`."""
  try:
    return gzip.decompress(compressed)
  except (OSError, EOFError, zlib.error) as e:
    raise DatasetError(
        f"cannot decompress {path} ({e}); the file is truncated or not a "
        "gzip file. Replace it with the original .gz file.") from None


def _check_content(name, path, content_sha256, compressed, raw, checksums):
  """Raises DatasetError unless the file holds `name`'s published content and
  matches the `checksums` (from `_read_checksums`) listing it."""
  gz_name = os.path.basename(path)
  expected = CONTENT_SHA256[name][gz_name]
  if content_sha256 != expected:
    known_as = [f" (that is {dataset}'s {fname}: is the directory another "
                "dataset's?)"
                for dataset, sums in CONTENT_SHA256.items()
                for fname, digest in sums.items() if digest == content_sha256]
    raise DatasetError(
        f"{path} is not {name}'s {gz_name}: the SHA-256 of its content is "
        f"{content_sha256}, expected {expected}{''.join(known_as)}. Use the "
        f"original {name} files.")
  for listed, algo, digest in checksums:
    if listed == gz_name:
      _verify(path, "compressed file", compressed, algo, digest)
    elif listed == gz_name[:-len(".gz")]:
      _verify(path, "decompressed content", raw, algo, digest)


def _parse_idx(path, raw, magic, count, item_shape):
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


def _download(name, data_dir, mirrors):
  """Fetches the missing files of `name` into the `<name>/` subdirectory of
  `data_dir`, else $TFF_NIID_DATA, else the cache (never a checkout's
  ../shared/data; the root itself if it is so named), where the lookup finds
  them; returns that directory."""
  root = _configured_root(data_dir) or cache_dir("data")
  destination = root
  if os.path.basename(os.path.normpath(root)) not in DIRNAMES[name]:
    destination = os.path.join(root, DIRNAMES[name][0])

  def check(fname, compressed):
    raw = _decompress(fname, compressed)
    _check_content(name, fname, hashlib.sha256(raw).hexdigest(), compressed,
                   raw, [])

  download_lib.fetch(list(FILES.values()),
                     download_lib.mirrors_for(name, mirrors), destination,
                     check)
  return destination


def load(name="mnist", data_dir=None, *, verify=True, download=False,
         mirrors=None):
  """Loads MNIST or Fashion-MNIST as numpy arrays.

  Args:
    name: "mnist" or "fashion_mnist".
    data_dir: the root to look under, and only there where given (else
      $TFF_NIID_DATA, else the defaults: the module docstring), in the
      dataset's subdirectory (`DIRNAMES[name]`: mnist/, fashion-mnist/)
      or the root itself.
    verify: check every file's content against `CONTENT_SHA256[name]`, and
      against SHA256SUMS/MD5SUMS when present.
    download: if the files are not found, fetch them (see the module
      docstring); off by default, so nothing is ever downloaded silently.
    mirrors: base URLs to download from, tried in order (default:
      $TFF_NIID_MIRRORS, else `tff_niid.download.MIRRORS[name]`).

  Returns:
    A `Dataset` namedtuple: uint8 images (N, 28, 28), read-only, int64
    labels (N,), 60,000 train and 10,000 test samples, the directory used
    and the SHA-256 of each file's content.

  Raises:
    DatasetError: files missing, truncated or corrupt, another dataset's, or
      failing a checksum.
    tff_niid.download.DownloadError: with download=True, a file no mirror
      served correctly.
  """
  try:
    directory = find_dir(name, data_dir)
  except DatasetError:
    if not download or name not in DIRNAMES:
      raise
    directory = _download(name, data_dir, mirrors)
  sums = _read_checksums(directory) if verify else []
  arrays, content_sha256 = {}, {}
  for field, fname in FILES.items():
    path = os.path.join(directory, fname)
    with open(path, "rb") as f:
      compressed = f.read()
    raw = _decompress(path, compressed)
    content_sha256[fname] = hashlib.sha256(raw).hexdigest()
    if verify:
      _check_content(name, path, content_sha256[fname], compressed, raw, sums)
    split, kind = field.split("_")
    if kind == "images":
      arrays[field] = _parse_idx(path, raw, _IMAGE_MAGIC, _SIZES[split],
                                 (28, 28))
    else:
      labels = _parse_idx(path, raw, _LABEL_MAGIC, _SIZES[split], ())
      if labels.max() > 9:
        raise DatasetError(f"{path}: labels outside 0..9.")
      arrays[field] = labels.astype(np.int64)
  return Dataset(name=name, directory=directory, content_sha256=content_sha256,
                 **arrays)

"""The `Partition` value and its pickle-free persistence.

A partition of a dataset of N samples into clients is stored as one flat int64
array of sample indices plus `offsets` (length num_clients + 1): client i holds
`indices[offsets[i]:offsets[i + 1]]`. This keeps 10,000-client partitions of
10M samples in two arrays (no per-client Python objects) and makes saving one
`np.savez` call.

On disk a partition is a directory with `arrays.npz` (loaded with
`allow_pickle=False`) and `manifest.json` (scheme, params, seed, spec, package
version, a fingerprint of the labels it was made from, and the SHA-256 of the
arrays file so tampering or truncation is detected on load).
"""

import collections.abc
import hashlib
import json
import os
import tempfile

import numpy as np

FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_ARRAYS = "arrays.npz"


def fingerprint(labels):
  """A short stable hash of a label array (values and length, not dtype).

  Hashed in the narrowest unsigned type that holds the values (chosen from
  the values, so any input dtype gives the same fingerprint): 8x less to hash
  for class ids than int64.
  """
  arr = np.asarray(labels)
  low, high = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
  for dtype in ("u1", "<u2", "<u4"):
    if low >= 0 and high <= np.iinfo(dtype).max:
      break
  else:
    dtype = "<i8"
  digest = hashlib.sha256(np.ascontiguousarray(arr, dtype=dtype).tobytes())
  digest.update(f"{dtype}{arr.shape}".encode())
  return "sha256:" + digest.hexdigest()[:32]


def _package_version():
  from tff_niid import __version__  # pylint: disable=g-import-not-at-top
  return __version__


class Partition(collections.abc.Sequence):
  """Per-client index arrays over one dataset, with how they were made.

  `len(part)` is the number of clients and `part[i]` the int64 indices (into
  the labels/images the partition was made from) of client i. Attributes:

    indices, offsets: the flat storage described in the module docstring.
    scheme, params, seed, spec: how the partition was made (recorded on save).
    num_samples: length of the label array it was made from.
    labels_fingerprint: `fingerprint(labels)` of that array.
    disjoint: True if no sample belongs to two clients (all schemes except
      `match_test`, which samples test examples per client).
    client_names: optional client ids (e.g. writer ids for `natural`).
    noisy_labels: optional full-length label array with per-client label noise.
    feature_noise: optional per-client Gaussian noise std for the inputs.
  """

  def __init__(self, indices, offsets, *, scheme, params, seed, num_samples,
               labels_fingerprint, disjoint=True, client_names=None,
               noisy_labels=None, feature_noise=None, spec=None,
               validate=True):
    self.indices = np.asarray(indices, dtype=np.int64)
    self.offsets = np.asarray(offsets, dtype=np.int64)
    self.scheme = scheme
    self.params = dict(params)
    self.seed = seed
    self.num_samples = int(num_samples)
    self.labels_fingerprint = labels_fingerprint
    self.disjoint = bool(disjoint)
    self.client_names = (None if client_names is None else
                         [str(c) for c in client_names])
    self.noisy_labels = (None if noisy_labels is None else
                         np.asarray(noisy_labels, dtype=np.int64))
    self.feature_noise = (None if feature_noise is None else
                          np.asarray(feature_noise, dtype=np.float64))
    self.spec = spec
    if validate:
      self.validate()

  # Sequence protocol.
  def __len__(self):
    return self.offsets.shape[0] - 1

  def __getitem__(self, i):
    if isinstance(i, slice):
      return [self[j] for j in range(*i.indices(len(self)))]
    n = len(self)
    if not -n <= i < n:
      raise IndexError(f"client {i} out of range for {n} clients")
    i %= n
    return self.indices[self.offsets[i]:self.offsets[i + 1]]

  @property
  def num_clients(self):
    return len(self)

  @property
  def sizes(self):
    """Number of samples per client (int64 array of length num_clients)."""
    return np.diff(self.offsets)

  @property
  def client_ids(self):
    """String client ids, as TFF's ClientData uses them."""
    if self.client_names is not None:
      return list(self.client_names)
    return [str(i) for i in range(len(self))]

  def owner(self):
    """Per-sample client id (-1 for samples no client holds); disjoint only."""
    if not self.disjoint:
      raise ValueError("owner() needs a disjoint partition.")
    out = np.full(self.num_samples, -1, dtype=np.int64)
    out[self.indices] = np.repeat(np.arange(len(self)), self.sizes)
    return out

  def __repr__(self):
    sizes = self.sizes
    return (f"Partition(scheme={self.scheme!r}, num_clients={len(self)}, "
            f"num_samples={self.num_samples}, assigned={sizes.sum()}, "
            f"sizes min/max={sizes.min()}/{sizes.max()}, seed={self.seed})")

  def validate(self):
    """Raises ValueError if the arrays are not a well-formed partition."""
    idx, off = self.indices, self.offsets
    if idx.ndim != 1 or off.ndim != 1 or off.shape[0] < 2:
      raise ValueError("partition arrays must be 1-D with >= 1 client.")
    if off[0] != 0 or off[-1] != idx.shape[0] or np.any(np.diff(off) < 0):
      raise ValueError("partition offsets are not a non-decreasing split "
                       "of the index array.")
    if idx.size and (idx.min() < 0 or idx.max() >= self.num_samples):
      raise ValueError(
          f"partition indices out of range [0, {self.num_samples}).")
    if self.disjoint and idx.size:
      counts = np.bincount(idx, minlength=self.num_samples)
      if counts.max() > 1:
        raise ValueError(
            f"partition is marked disjoint but {int((counts > 1).sum())} "
            "sample(s) belong to more than one client.")
    n = len(self)
    if self.client_names is not None and len(self.client_names) != n:
      raise ValueError("client_names must have one name per client.")
    if (self.feature_noise is not None and
        self.feature_noise.shape != (n,)):
      raise ValueError("feature_noise must have one std per client.")
    if (self.noisy_labels is not None and
        self.noisy_labels.shape != (self.num_samples,)):
      raise ValueError("noisy_labels must have one label per sample.")

  def check_labels(self, labels):
    """Raises ValueError unless `labels` is the array this was made from."""
    got = fingerprint(labels)
    if got != self.labels_fingerprint:
      raise ValueError(
          f"this partition was made from labels with fingerprint "
          f"{self.labels_fingerprint} ({self.num_samples} samples) but the "
          f"given labels have {got} ({np.asarray(labels).shape[0]} samples): "
          "it belongs to another dataset or split.")

  def replace(self, **changes):
    """A copy with some fields replaced (e.g. noisy_labels, spec)."""
    fields = dict(
        indices=self.indices, offsets=self.offsets, scheme=self.scheme,
        params=self.params, seed=self.seed, num_samples=self.num_samples,
        labels_fingerprint=self.labels_fingerprint, disjoint=self.disjoint,
        client_names=self.client_names, noisy_labels=self.noisy_labels,
        feature_noise=self.feature_noise, spec=self.spec)
    fields.update(changes)
    return Partition(**fields)

  def manifest(self):
    return {
        "format_version": FORMAT_VERSION,
        "tff_niid_version": _package_version(),
        "scheme": self.scheme,
        "params": self.params,
        "seed": self.seed,
        "spec": self.spec,
        "num_clients": len(self),
        "num_samples": self.num_samples,
        "num_assigned": int(self.offsets[-1]),
        "labels_fingerprint": self.labels_fingerprint,
        "disjoint": self.disjoint,
        "has_client_names": self.client_names is not None,
        "has_noisy_labels": self.noisy_labels is not None,
        "has_feature_noise": self.feature_noise is not None,
    }

  def save(self, path):
    """Writes the partition to directory `path` (created; replaced whole).

    Files are written to a temporary directory first and renamed into place,
    so an interrupted save never leaves a half-written partition.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".partition-", dir=parent)
    arrays = {"indices": self.indices, "offsets": self.offsets}
    if self.client_names is not None:
      arrays["client_names"] = np.asarray(self.client_names, dtype=np.str_)
    if self.noisy_labels is not None:
      arrays["noisy_labels"] = self.noisy_labels
    if self.feature_noise is not None:
      arrays["feature_noise"] = self.feature_noise
    arrays_path = os.path.join(tmp, _ARRAYS)
    np.savez(arrays_path, **arrays)
    manifest = self.manifest()
    manifest["arrays_sha256"] = _sha256_file(arrays_path)
    with open(os.path.join(tmp, _MANIFEST), "w") as f:
      json.dump(manifest, f, indent=2, sort_keys=True)
      f.write("\n")
    if os.path.isdir(path):
      old = tempfile.mkdtemp(prefix=".partition-old-", dir=parent)
      os.rename(path, os.path.join(old, "p"))
      os.rename(tmp, path)
      _rmtree(old)
    else:
      os.rename(tmp, path)
    return path


def _sha256_file(path):
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _rmtree(path):
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(path, ignore_errors=True)


def load(path, *, labels=None):
  """Loads a partition saved with `Partition.save`.

  Args:
    path: the directory written by `save`.
    labels: optional label array; if given, the partition's fingerprint must
      match it (a partition of another dataset raises ValueError).

  Raises:
    ValueError: missing/corrupt files, a checksum mismatch, indices out of
      range or duplicated, or labels from another dataset.
  """
  manifest_path = os.path.join(path, _MANIFEST)
  arrays_path = os.path.join(path, _ARRAYS)
  for p in (manifest_path, arrays_path):
    if not os.path.isfile(p):
      raise ValueError(f"not a saved partition: {p} is missing.")
  try:
    with open(manifest_path) as f:
      manifest = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"corrupt partition manifest {manifest_path}: {e}") from None
  if manifest.get("format_version") != FORMAT_VERSION:
    raise ValueError(
        f"{manifest_path}: unsupported format_version "
        f"{manifest.get('format_version')!r} (this tff_niid reads "
        f"{FORMAT_VERSION}).")
  if _sha256_file(arrays_path) != manifest.get("arrays_sha256"):
    raise ValueError(
        f"{arrays_path} does not match the checksum in its manifest: the file "
        "was modified or truncated after it was saved.")
  try:
    with np.load(arrays_path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except (ValueError, OSError) as e:
    raise ValueError(f"cannot read {arrays_path}: {e}") from None
  missing = ({"indices", "offsets"} - set(arrays)) | (
      {"scheme", "params", "seed", "num_samples", "labels_fingerprint",
       "disjoint"} - set(manifest))
  if missing:
    raise ValueError(f"{path} is not a complete saved partition: "
                     f"{sorted(missing)} missing.")
  part = Partition(
      arrays["indices"], arrays["offsets"],
      scheme=manifest["scheme"], params=manifest["params"],
      seed=manifest["seed"], num_samples=manifest["num_samples"],
      labels_fingerprint=manifest["labels_fingerprint"],
      disjoint=manifest["disjoint"],
      client_names=(arrays["client_names"].tolist()
                    if "client_names" in arrays else None),
      noisy_labels=arrays.get("noisy_labels"),
      feature_noise=arrays.get("feature_noise"),
      spec=manifest.get("spec"))
  if labels is not None:
    part.check_labels(labels)
  return part


def make_partition(labels, indices, offsets, *, scheme, params, seed, **extra):
  """Wraps a scheme's output with its provenance (used by every scheme).

  Schemes build valid partitions by construction (their tests check cover and
  ranges), so the O(N) `validate` is skipped here; `load` always validates.
  """
  return Partition(indices, offsets, scheme=scheme, params=params, seed=seed,
                   num_samples=labels.shape[0],
                   labels_fingerprint=fingerprint(labels), validate=False,
                   **extra)

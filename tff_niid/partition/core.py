"""The `Partition` value and its pickle-free persistence.

A partition of a dataset of N samples into clients is stored as one flat int64
array of sample indices plus `offsets` (length num_clients + 1): client i holds
`indices[offsets[i]:offsets[i + 1]]`. This keeps 10,000-client partitions of
10M samples in two arrays (no per-client Python objects) and makes saving one
`np.savez` call.

On disk a partition is a directory with `arrays.npz` (loaded with
`allow_pickle=False`) and `manifest.json` (scheme, params, seed, spec, package
version, a fingerprint of the labels it was made from, and the SHA-256 of the
arrays file so tampering or truncation is detected on load). `save` never
deletes anything it did not write, and every Partition -- made by a scheme,
`replace`d or loaded -- passes the same invariant check (`validate`).
"""

from __future__ import annotations

import collections.abc
import contextlib
import hashlib
import json
import os
import secrets
import tempfile

import numpy as np

from tff_niid.partition import rotation as rotation_lib

FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_ARRAYS = "arrays.npz"
_SAVED_FILES = (_MANIFEST, _ARRAYS)
# Where a report (`report.write`: the partition CLI's output directory, a
# training run) keeps its saved partition.
REPORT_PARTITION_DIR = "partition"


def fingerprint(values):
  """A short stable hash of a per-sample array: labels, or a key.

  Numbers are hashed by value: whole numbers (labels; of any dtype, floats
  included) in the narrowest unsigned type that holds them, chosen from the
  values (8x less to hash for class ids than int64), other floats as
  float64, exactly (a key recomputed on another machine may differ in the
  last bit); text as its characters (bytes as their byte values). The
  length counts too.
  """
  arr = np.asarray(values)
  if arr.dtype.kind in "OSU":
    data, width = _text_code_points(arr)
    dtype = f"text{width}"
  else:
    if arr.dtype.kind == "f" and not _whole_numbers(arr):
      dtype = "<f8"
    else:
      low, high = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
      for dtype in ("u1", "<u2", "<u4"):
        if low >= 0 and high <= np.iinfo(dtype).max:
          break
      else:
        dtype = "<i8"
    data = np.ascontiguousarray(arr, dtype=dtype).tobytes()
  digest = hashlib.sha256(data)
  digest.update(f"{dtype}{arr.shape}".encode())
  return "sha256:" + digest.hexdigest()[:32]


def _whole_numbers(arr):
  """Whether a float array holds whole numbers that int64 holds exactly."""
  return bool(np.all(np.isfinite(arr)) and np.all(arr == np.trunc(arr)) and
              (arr.size == 0 or np.abs(arr).max() <= 2.0**53))


def _text_code_points(arr):
  """(bytes, width): a 1-D text array's UTF-32 code points, at the width its
  longest value needs, so that neither its storage (str, bytes, objects)
  nor its declared width changes them. Vectorised: a Python loop took a
  quarter of a text-keyed draw's time at 2M samples."""
  if arr.dtype.kind == "S":  # any bytes, UTF-8 or not: one character each
    arr = np.char.decode(arr, "latin-1")
  text = np.ascontiguousarray(arr, dtype=np.str_).reshape(-1)
  declared = max(text.dtype.itemsize // 4, 1)
  codes = text.astype(f"<U{declared}").view(np.uint32).reshape(
      text.shape[0], declared)
  used = np.flatnonzero(codes.any(axis=0))
  width = int(used[-1]) + 1 if used.size else 0
  return np.ascontiguousarray(codes[:, :width]).tobytes(), width


def keys_alike(a, b):
  """Whether two partitions' params["key"] name the same key: equal, or one
  saved before keys were fingerprinted (True) beside any key."""
  return a == b or (True in (a, b) and False not in (a, b) and
                    None not in (a, b))


def key_param(key):
  """What a scheme's params record of its `key=`: False without one, else
  the key's `fingerprint`, so that a saved partition names the key its
  classes were ordered by (`Partition.check_key`)."""
  return False if key is None else fingerprint(key)


def _package_version():
  from tff_niid import __version__  # pylint: disable=g-import-not-at-top
  return __version__


def _new_directory(parent):
  """A new empty directory in `parent`, with the mode `os.mkdir` gives (what
  the umask allows), not `tempfile.mkdtemp`'s 0o700: renamed into place, it
  is the saved partition, which others may need to read as its files."""
  while True:
    path = os.path.join(parent, f".partition-{secrets.token_hex(8)}")
    try:
      os.mkdir(path)
      return path
    except FileExistsError:
      continue


class Partition(collections.abc.Sequence):
  """Per-client index arrays over one dataset, with how they were made.

  `len(part)` is the number of clients and `part[i]` the int64 indices (into
  the labels/images the partition was made from) of client i. The label-skew
  schemes list a client's indices class by class (within a class in random
  or key order), so shuffle them before slicing a client's own train/test
  split (`split_clients` does both) or batching them in order
  (`tff_niid.clientdata`'s training batches are shuffled; Flower Datasets
  shuffles each partition by default).
  Attributes:

    indices, offsets: the flat storage described in the module docstring.
    scheme, params, seed, spec: how the partition was made (recorded on save).
    num_samples: length of the label array it was made from.
    labels_fingerprint: `fingerprint(labels)` of that array.
    disjoint: True if no sample belongs to two clients (all schemes except
      `match_test`, which samples test examples per client).
    client_names: optional client ids (e.g. writer ids for `natural`).
    noisy_labels: optional full-length label array with per-client label noise.
    feature_noise: optional per-client Gaussian noise std for the inputs.
    feature_noise_redraw: whether that noise is drawn afresh every time a
      sample is read, as NIID-Bench's `AddGaussianNoise` transform does (Li
      et al. 2022), instead of once per sample (False, the default; a
      different distribution). Only recorded here: `tff_niid.clientdata`
      and `tff_niid.evaluation` apply it.
    rotation: optional per-client angle in degrees (0, 90, 180 or 270,
      counterclockwise) by which the client's inputs are rotated (rotated
      MNIST, `rotation.client_rotations`). Only recorded here:
      `tff_niid.clientdata` and `tff_niid.evaluation` apply it.
  """

  def __init__(self, indices, offsets, *, scheme, params, seed, num_samples,
               labels_fingerprint, disjoint=True, client_names=None,
               noisy_labels=None, feature_noise=None,
               feature_noise_redraw=False, rotation=None, spec=None):
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
    self.feature_noise_redraw = feature_noise_redraw
    self.rotation = (None if rotation is None else
                     rotation_lib.check_rotation(rotation, len(self)))
    self.spec = spec
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
    """String client ids, as TFF's ClientData uses them (a new list each
    time: take it once where you index it per client)."""
    if self.client_names is not None:
      return list(self.client_names)
    return list(map(str, range(len(self))))

  def client_of_position(self) -> np.ndarray:
    """The client holding each entry of `indices` (int64, same length):
    client i at positions offsets[i]:offsets[i + 1]. Unlike `owner`, defined
    for overlapping partitions too."""
    return np.repeat(np.arange(len(self)), self.sizes)

  def owner(self):
    """Per-sample client id (-1 for samples no client holds); disjoint only."""
    if not self.disjoint:
      raise ValueError("owner() needs a disjoint partition.")
    out = np.full(self.num_samples, -1, dtype=np.int64)
    out[self.indices] = self.client_of_position()
    return out

  def __eq__(self, other):
    """Equal: the same clients' samples in the same order, made the same way
    (the saved manifest alike, package version aside), with the same noisy
    labels, feature noise, rotations and client names. A saved and reloaded
    partition equals the one saved."""
    if not isinstance(other, Partition):
      return NotImplemented
    def provenance(part):
      manifest = part.manifest()
      del manifest["tff_niid_version"]
      manifest["params"] = {k: v for k, v in manifest["params"].items()
                            if k != "key"}  # compared by keys_alike
      # A tuple reads as a list; a numpy scalar as its value.
      return json.dumps(manifest, sort_keys=True, default=repr)
    arrays = ("indices", "offsets", "noisy_labels", "feature_noise",
              "rotation")
    return (provenance(self) == provenance(other) and
            keys_alike(self.params.get("key"), other.params.get("key")) and
            self.client_names == other.client_names and
            all(np.array_equal(getattr(self, name), getattr(other, name),
                               equal_nan=True)
                if getattr(self, name) is not None else
                getattr(other, name) is None for name in arrays))

  __hash__ = None  # type: ignore[assignment]  # mutable arrays

  def __repr__(self):
    sizes = self.sizes
    return (f"Partition(scheme={self.scheme!r}, num_clients={len(self)}, "
            f"num_samples={self.num_samples}, assigned={sizes.sum()}, "
            f"sizes min/max={sizes.min()}/{sizes.max()}, seed={self.seed})")

  def validate(self):
    """Raises ValueError if the arrays are not a well-formed partition (every
    Partition is checked on construction)."""
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
      repeated = repeated_samples(idx, self.num_samples)
      if repeated.size:
        raise ValueError(
            f"partition is marked disjoint but {repeated.size} sample(s) "
            f"belong to more than one client (e.g. sample {repeated[0]}).")
    n = len(self)
    if self.client_names is not None and len(self.client_names) != n:
      raise ValueError("client_names must have one name per client.")
    if (self.feature_noise is not None and
        self.feature_noise.shape != (n,)):
      raise ValueError("feature_noise must have one std per client.")
    if not isinstance(self.feature_noise_redraw, bool):
      raise ValueError(f"feature_noise_redraw must be True or False; got "
                       f"{self.feature_noise_redraw!r}.")
    if self.feature_noise_redraw and self.feature_noise is None:
      raise ValueError("feature_noise_redraw needs feature_noise (the "
                       "per-client stds to redraw with).")
    if (self.noisy_labels is not None and
        self.noisy_labels.shape != (self.num_samples,)):
      raise ValueError("noisy_labels must have one label per sample.")

  def check_labels(self, labels):
    """Raises ValueError unless `labels` is the array this was made from."""
    got, num_samples = fingerprint(labels), np.asarray(labels).shape[0]
    # The sample count too: a manifest's num_samples may have been edited.
    if got != self.labels_fingerprint or num_samples != self.num_samples:
      raise ValueError(
          f"this partition was made from labels with fingerprint "
          f"{self.labels_fingerprint} ({self.num_samples} samples) but the "
          f"given labels have {got} ({num_samples} samples): it belongs to "
          "another dataset or split.")

  def check_key(self, key):
    """Raises ValueError unless `key` is the per-sample key this partition's
    classes were ordered by (params["key"], its `fingerprint`). Nothing to
    check for an image attribute (recorded by name: `spec.resolve` computes
    it from the images) or a partition saved before keys were fingerprinted
    (True)."""
    recorded = self.params.get("key", False)
    if recorded is True or (isinstance(recorded, str) and
                            not recorded.startswith("sha256:")):
      return
    if recorded is False:
      raise ValueError("this partition was made without a key, so no key "
                       "orders its classes.")
    got = fingerprint(key)
    if got != recorded:
      raise ValueError(
          f"this partition's classes were ordered by a key with fingerprint "
          f"{recorded}, but the given key has {got}: it is another key, or "
          "another version of it.")

  def replace(self, **changes):
    """A copy with some fields replaced (e.g. noisy_labels, spec)."""
    fields = dict(
        indices=self.indices, offsets=self.offsets, scheme=self.scheme,
        params=self.params, seed=self.seed, num_samples=self.num_samples,
        labels_fingerprint=self.labels_fingerprint, disjoint=self.disjoint,
        client_names=self.client_names, noisy_labels=self.noisy_labels,
        feature_noise=self.feature_noise,
        feature_noise_redraw=self.feature_noise_redraw,
        rotation=self.rotation, spec=self.spec)
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
        "feature_noise_redraw": self.feature_noise_redraw,
        "has_rotation": self.rotation is not None,
    }

  def save(self, path, *, overwrite=False):
    """Writes the partition to the directory `path`; deletes nothing else.

    `path` must not exist, or be an empty directory, or hold a partition
    saved earlier (exactly the manifest.json and arrays.npz `save` writes):
    if it is this partition (`==`), nothing is written, so a script that
    saves reruns; another one is replaced only with `overwrite=True`.
    Anything else at `path` (a file, a symbolic link, a directory with other
    content such as a results tree or the current directory) is refused and
    left untouched.

    The files are written to a new directory beside `path` and renamed into
    place, so `path` holds the old partition or the new one, never a mix, and
    a failed save removes only the files it wrote.

    Returns:
      The absolute path written.

    Raises:
      ValueError: `path` is refused as above.
      OSError: the directory cannot be written; the message names `path`.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
      raise ValueError(f"`path` must name a directory to save the partition "
                       f"to; got {path!r}.")
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    try:
      replace = _holds_saved_partition(path)
      if replace and not overwrite:
        try:
          if load(path) == self:
            return path
          held = "another saved partition"
        except ValueError as e:
          held = (f"a saved partition that does not load "
                  f"({str(e).rstrip('.')})")
        raise ValueError(f"{path} already holds {held}; pass overwrite=True "
                         "to replace it, or choose a new path.")
      os.makedirs(parent, exist_ok=True)
      new = _new_directory(parent)
      try:
        self._write_files(new)
        if replace:
          _swap_in(new, path, parent)
        else:  # rename fails rather than replace a directory that has content
          os.rename(new, path)
      except BaseException:
        with contextlib.suppress(OSError):
          _remove_saved_files(new)
        raise
    except OSError as e:
      where = f" ({e.filename})" if e.filename not in (None, path) else ""
      raise OSError(e.errno, f"cannot save the partition to {path}: "
                    f"{e.strerror or e}{where}") from None
    return path

  def _write_files(self, directory):
    """Writes arrays.npz and manifest.json (with the arrays' SHA-256)."""
    arrays: dict[str, np.ndarray] = {"indices": self.indices,
                                     "offsets": self.offsets}
    if self.client_names is not None:
      arrays["client_names"] = np.asarray(self.client_names, dtype=np.str_)
    if self.noisy_labels is not None:
      arrays["noisy_labels"] = self.noisy_labels
    if self.feature_noise is not None:
      arrays["feature_noise"] = self.feature_noise
    if self.rotation is not None:
      arrays["rotation"] = self.rotation
    arrays_path = os.path.join(directory, _ARRAYS)
    np.savez(arrays_path, **arrays)  # type: ignore[arg-type]  # numpy stubs
    manifest = self.manifest()
    manifest["arrays_sha256"] = _sha256_file(arrays_path)
    with open(os.path.join(directory, _MANIFEST), "w") as f:
      json.dump(manifest, f, indent=2, sort_keys=True)
      f.write("\n")


def _holds_saved_partition(path):
  """Whether a partition is saved at `path` (False: nothing or an empty
  directory is there); ValueError if saving there could delete anything
  `save` did not write."""
  if not os.path.lexists(path):
    return False
  if os.path.islink(path) or not os.path.isdir(path):
    kind = "a symbolic link" if os.path.islink(path) else "a file"
    raise ValueError(f"cannot save the partition to {path}: it is {kind}, not "
                     "a directory; choose a new path.")
  entries = sorted(os.listdir(path))
  if not entries:
    return False
  if entries != sorted(_SAVED_FILES):
    shown = ", ".join(map(repr, entries[:3])) + (", ..." if len(entries) > 3
                                                 else "")
    raise ValueError(
        f"cannot save the partition to {path}: it is a non-empty directory "
        f"({shown}) that is not a saved partition, and saving could delete "
        "its content; choose a new or empty directory.")
  return True


def _swap_in(new, path, parent):
  """Replaces the saved partition at `path` by the directory `new`."""
  old = tempfile.mkdtemp(prefix=".partition-old-", dir=parent)
  os.rename(path, old)  # onto the empty directory just made
  try:
    os.rename(new, path)
  except OSError:
    os.rename(old, path)  # the old partition back where it was
    raise
  # The new partition is in place; a leftover (if something was added to the
  # old directory meanwhile) stays rather than being deleted unseen.
  with contextlib.suppress(OSError):
    _remove_saved_files(old)


def _remove_saved_files(directory):
  """Removes the files `save` writes, then `directory` if that emptied it."""
  for name in _SAVED_FILES:
    with contextlib.suppress(FileNotFoundError):
      os.remove(os.path.join(directory, name))
  os.rmdir(directory)


def _sha256_file(path):
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def repeated_samples(indices: np.ndarray, num_samples: int) -> np.ndarray:
  """The distinct values occurring more than once in `indices` (in range
  [0, num_samples)), sorted."""
  if num_samples <= 2 * indices.shape[0]:
    # One count per sample: fastest when the indices cover most samples, as
    # every scheme's do.
    return np.flatnonzero(np.bincount(indices) > 1)
  # Memory per index, not per sample, when num_samples (e.g. read from a
  # manifest) is far above the number of indices.
  ordered = np.sort(indices)
  return np.unique(ordered[1:][ordered[1:] == ordered[:-1]])


# Every manifest field and its JSON type(s); `save` has always written all.
_MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int, "tff_niid_version": str, "scheme": str,
    "params": dict, "seed": (int, type(None)), "spec": (str, type(None)),
    "num_clients": int, "num_samples": int, "num_assigned": int,
    "labels_fingerprint": str, "disjoint": bool, "has_client_names": bool,
    "has_noisy_labels": bool, "has_feature_noise": bool,
    "arrays_sha256": str,
}
# Manifest fields added later, absent from older manifests: their JSON type
# and the value an older manifest means.
_LATER_MANIFEST_FIELDS: dict[str, tuple[type, object]] = {
    "feature_noise_redraw": (bool, False),
    "has_rotation": (bool, False),
}


def _read_manifest(manifest_path):
  """The manifest as a dict with every field of the right type, or
  ValueError naming the first problem."""
  try:
    with open(manifest_path, encoding="utf-8") as f:
      manifest = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(
        f"corrupt partition manifest {manifest_path}: {e}") from None
  if not isinstance(manifest, dict):
    raise ValueError(f"corrupt partition manifest {manifest_path}: a JSON "
                     f"object is needed; got {type(manifest).__name__}.")
  if manifest.get("format_version") != FORMAT_VERSION:
    raise ValueError(
        f"{manifest_path}: unsupported format_version "
        f"{manifest.get('format_version')!r} (this tff_niid reads "
        f"{FORMAT_VERSION}).")
  missing = sorted(set(_MANIFEST_TYPES) - set(manifest))
  if missing:
    raise ValueError(f"{manifest_path} is not a complete partition manifest: "
                     f"{missing} missing.")
  for name, types in _MANIFEST_TYPES.items():
    value = manifest[name]
    # JSON true/false are Python bools, which are ints: not a count.
    if not isinstance(value, types) or (
        isinstance(value, bool) and types is not bool):
      raise ValueError(f"corrupt partition manifest {manifest_path}: "
                       f"{name!r} has the wrong type ({value!r}).")
  for name, (field_type, default) in _LATER_MANIFEST_FIELDS.items():
    manifest.setdefault(name, default)
    if not isinstance(manifest[name], field_type):
      raise ValueError(f"corrupt partition manifest {manifest_path}: "
                       f"{name!r} has the wrong type ({manifest[name]!r}).")
  for name in ("num_clients", "num_samples"):
    if manifest[name] < 1:
      raise ValueError(f"corrupt partition manifest {manifest_path}: "
                       f"{name!r} must be >= 1; got {manifest[name]}.")
  return manifest


# Array content -> the numpy dtype kinds that hold it.
_DTYPE_KINDS = {"integers": "iu", "floats": "f", "strings": "U"}


def _expected_arrays(manifest):
  """{array name: (shape, content)} the manifest describes."""
  n_clients = manifest["num_clients"]
  expected = {"indices": ((manifest["num_assigned"],), "integers"),
              "offsets": ((n_clients + 1,), "integers")}
  if manifest["has_client_names"]:
    expected["client_names"] = ((n_clients,), "strings")
  if manifest["has_noisy_labels"]:
    expected["noisy_labels"] = ((manifest["num_samples"],), "integers")
  if manifest["has_feature_noise"]:
    expected["feature_noise"] = ((n_clients,), "floats")
  if manifest["has_rotation"]:
    expected["rotation"] = ((n_clients,), "integers")
  return expected


def load(path, *, labels=None):
  """Loads a partition saved with `Partition.save`.

  The manifest is checked field by field, and the arrays against it, before
  any array the size of the dataset is allocated.

  Args:
    path: the directory written by `save`.
    labels: optional label array; if given, the partition's fingerprint must
      match it (a partition of another dataset raises ValueError).

  Raises:
    ValueError: missing/corrupt files, a checksum mismatch, arrays that do not
      match the manifest, indices out of range or duplicated, or labels from
      another dataset.
  """
  manifest_path = os.path.join(path, _MANIFEST)
  arrays_path = os.path.join(path, _ARRAYS)
  for p in (manifest_path, arrays_path):
    if not os.path.isfile(p):
      inner = os.path.join(path, REPORT_PARTITION_DIR)
      hint = (f" {path} holds a report (a tff-niid-partition output or a "
              f"training run): load {inner}." if os.path.isfile(
                  os.path.join(inner, _MANIFEST)) else "")
      raise ValueError(f"not a saved partition: {p} is missing.{hint}")
  manifest = _read_manifest(manifest_path)
  if _sha256_file(arrays_path) != manifest["arrays_sha256"]:
    raise ValueError(
        f"{arrays_path} does not match the checksum in its manifest: the file "
        "was modified or truncated after it was saved.")
  try:
    with np.load(arrays_path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except (ValueError, OSError) as e:
    raise ValueError(f"cannot read {arrays_path}: {e}") from None
  expected = _expected_arrays(manifest)
  if set(arrays) != set(expected):
    raise ValueError(f"{path} is not a complete saved partition: its arrays "
                     f"{sorted(arrays)} are not the {sorted(expected)} its "
                     "manifest lists.")
  for name, (shape, content) in expected.items():
    array = arrays[name]
    if array.shape != shape or array.dtype.kind not in _DTYPE_KINDS[content]:
      raise ValueError(
          f"{arrays_path}: {name} has shape {array.shape} and dtype "
          f"{array.dtype}, but the manifest describes {content} of shape "
          f"{shape}.")
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
      feature_noise_redraw=manifest["feature_noise_redraw"],
      rotation=arrays.get("rotation"), spec=manifest["spec"])
  if labels is not None:
    part.check_labels(labels)
  return part


def make_partition(labels, indices, offsets, *, scheme, params, seed,
                   min_size=1, **extra):
  """Wraps a scheme's output with its provenance (used by every scheme).

  Every result passes one invariant check, `Partition.validate` (indices in
  range, no sample twice, offsets a non-decreasing split), plus every client
  holding >= `min_size` samples (each scheme promises no empty client, some
  a larger minimum). A scheme that fails it has a bug: AssertionError, never
  a partition returned quietly wrong.
  """
  try:
    part = Partition(indices, offsets, scheme=scheme, params=params,
                     seed=seed, num_samples=labels.shape[0],
                     labels_fingerprint=fingerprint(labels), **extra)
    if part.sizes.min() < min_size:
      raise ValueError(f"a client has {part.sizes.min()} samples, fewer than "
                       f"the {min_size} promised")
  except ValueError as e:
    raise AssertionError(f"internal error: {scheme} built an invalid "
                         f"partition ({e}); please report the call.") from e
  return part

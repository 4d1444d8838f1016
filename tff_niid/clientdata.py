"""Client datasets of a `Partition` over arrays, for TFF.

`to_client_data(partition, x, y)` wraps any arrays split by a partition --
grayscale images (N, H, W), colour images (N, H, W, C), feature vectors
(N, D) -- as a lazy `tff.simulation.datasets.ClientData`
(`PartitionClientData`). The arrays live once in memory; a client's dataset is
a `tf.gather` of its index slice, built only when the client is asked for, so
10,000 clients cost one offsets table.

Elements are `OrderedDict(x=..., y=int64)`, their spec following from the
arrays (`element_spec`): x has the shape of one row of `x`, grayscale images
gaining a channel axis (H, W, 1); uint8 values are scaled to float32 in
[0, 1], other integers cast to float32, and floats passed through unchanged.
Labels of any integer type become int64. Training shuffling, epochs and
batching are in `local_training_batches`, applied per round with a seed
derived from (seed, round, client), so runs are reproducible and resumable.

Feature noise (NIID-Bench's noise-based feature skew, Li et al. 2022: client
i's inputs get Gaussian noise of std `partition.feature_noise[i]`, added to
the features above, not clipped) comes in two modes:

- fixed (the default): drawn once per sample from `feature_noise_seed` and
  the client, part of the client's elements; every epoch and round sees the
  same noisy image. Not NIID-Bench's distribution.
- redrawn (`partition.feature_noise_redraw`, spec
  `feature_noise(sigma=..., redraw=true)`): drawn afresh every time a sample
  is read, as NIID-Bench's `AddGaussianNoise` transform does. The elements
  stay clean and `local_training_batches(..., feature_noise_std=
  per_read_noise_std(client))` adds the noise batch by batch, from stateless
  seeds derived from the shuffle seed (itself a function of the run seed,
  round and client) and the batch's number in the client's stream of
  epochs: deterministic, so resumed runs repeat rounds bit for bit.

With rotations (`partition.rotation`, spec `rotate(...)`: rotated MNIST,
Ghosh et al. 2020), client i's images are rotated counterclockwise by
`rotation[i]` degrees (quarter turns, exact), before any feature noise.

A round's client datasets are built in one of two places (`RoundInputs`):

- on the workers, for a `PartitionClientData` (what `training.train` does):
  the learning process is composed with a dataset computation
  (`tff.simulation.compose_dataset_computation_with_learning_process`, TFF's
  pattern for building datasets where they are used), so a round sends per
  client only its example indices and its shuffle seed (plus its labels if the
  partition has label noise, its noise std and its noise seed if it has fixed
  feature noise, its noise std if it has redrawn feature noise, its quarter
  turns if it has rotations). Each worker memory-maps the arrays from files
  in its data directory (`worker_data_dir`), named by the SHA-256 of their
  content (`export_arrays`): a worker holding other data has no file of that
  name and fails naming it. The datasets are the same, batch for batch, as
  on the driver.
- on the driver, for any other ClientData: `local_training_batches`
  datasets, which TFF serializes with their data into every round's request.
"""

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
import hashlib
import math
import os
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import atomic
from tff_niid import client_state
from tff_niid import datasets
from tff_niid import rundir

# Where workers look for the arrays unless told otherwise.
WORKER_DATA_ENV = "TFF_NIID_WORKER_DATA"

# The elements of MNIST / Fashion-MNIST (uint8 images (N, 28, 28)).
ELEMENT_SPEC = collections.OrderedDict(
    x=tf.TensorSpec((28, 28, 1), tf.float32),
    y=tf.TensorSpec((), tf.int64))


def batch_spec(element_spec: Any) -> Any:
  """The spec of batches of `element_spec` elements (a model's input spec)."""
  return tf.nest.map_structure(
      lambda s: tf.TensorSpec((None,) + tuple(s.shape), s.dtype), element_spec)


# What `local_training_batches` yields for MNIST / Fashion-MNIST.
BATCH_SPEC = batch_spec(ELEMENT_SPEC)


def default_worker_data_dir() -> str:
  """$TFF_NIID_WORKER_DATA, else ~/.cache/tff_niid/arrays (XDG_CACHE_HOME)."""
  return os.environ.get(WORKER_DATA_ENV) or datasets.cache_dir("arrays")


def _features(rows: tf.Tensor) -> tf.Tensor:
  """Model inputs from rows of x (eager or traced; the same values either way)."""
  if rows.dtype == tf.uint8:
    # divide_no_nan, not `/`: TFF compiles traced computations with grappler,
    # which turns a division by a constant into a multiplication by its
    # reciprocal (some values then differ in the last bit); divide_no_nan is
    # left alone and divides exactly, as eager `/` does.
    x = tf.math.divide_no_nan(tf.cast(rows, tf.float32), 255.0)
  elif rows.dtype.is_floating:
    x = rows
  else:
    x = tf.cast(rows, tf.float32)
  return x[..., tf.newaxis] if rows.shape.rank == 3 else x


def _client_elements(rows: tf.Tensor, labels: tf.Tensor,
                     noise: Optional[tuple[tf.Tensor, tf.Tensor]] = None,
                     quarter_turns: Optional[tf.Tensor] = None
                     ) -> collections.OrderedDict:
  """One client's elements: its rows of x as features, rotated
  counterclockwise by `quarter_turns` (int32) quarter turns, plus fixed
  Gaussian noise of std noise[0] drawn from the stateless seed noise[1]."""
  x = _features(rows)
  if quarter_turns is not None:
    x = tf.image.rot90(x, k=quarter_turns)
  if noise is not None:
    std, seed = noise
    x += tf.cast(std, x.dtype) * tf.random.stateless_normal(
        tf.shape(x), seed=seed, dtype=x.dtype)
  return collections.OrderedDict(x=x, y=labels)


def _check_arrays(partition: Any, x: np.ndarray, y: np.ndarray) -> None:
  """Raises ValueError unless x and y are numeric arrays of one row per sample
  of `partition` and y is the labels it was made from."""
  if y.dtype.kind not in "iu" or y.ndim != 1:
    raise ValueError(f"labels must be a 1-D integer array; got dtype "
                     f"{y.dtype} and shape {y.shape}.")
  partition.check_labels(y)
  if x.ndim < 1 or x.shape[0] != partition.num_samples:
    raise ValueError(f"x must have shape ({partition.num_samples}, ...), one "
                     f"row per label; got {x.shape}.")
  if x.dtype.kind not in "iuf":
    raise ValueError(f"x must hold integers or floats; got dtype {x.dtype}.")


def _write_once(path: str, array: np.ndarray, digest: str) -> None:
  """Writes `array`'s bytes, whose `_content_digest` is `digest`, to `path`
  unless a file holding them is there: one of another content (an
  interrupted copy, a file put there by hand) is replaced, never mapped.
  Atomically (`atomic.write`: readable by this user alone, as the workers
  run), so concurrent runs exporting the same array never see half a
  file."""
  if (os.path.isfile(path) and os.path.getsize(path) == array.nbytes and
      _file_digest(path, array) == digest):
    return
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  atomic.write(path, array.tofile)


def _digest_start(array: np.ndarray) -> Any:
  """SHA-256 started on an array's dtype and shape (its bytes follow)."""
  return hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())


def _content_digest(array: np.ndarray) -> str:
  """SHA-256 of a C-contiguous array's dtype, shape and bytes."""
  digest = _digest_start(array)
  digest.update(array.data)
  return digest.hexdigest()


def _file_digest(path: str, like: np.ndarray) -> str:
  """`_content_digest` of the array of `like`'s dtype and shape whose bytes
  the file at `path` holds, read in pieces."""
  digest = _digest_start(like)
  with open(path, "rb") as f:
    while piece := f.read(1 << 24):
      digest.update(piece)
  return digest.hexdigest()


def export_arrays(x: Any, y: Any, directory: str) -> tuple[str, str]:
  """Writes x and the labels y where workers memory-map them.

  Each array goes to `directory/<SHA-256 of dtype, shape and bytes>.<dtype>`
  (raw C-order bytes; labels as int64), unless that file is there already.
  Run it on every worker host with that host's own copy of the dataset: the
  same data gives the same names, which the driver's computations open.

  Returns:
    The two paths, relative if `directory` is: a worker resolves them against
    its working directory.
  """
  x = np.ascontiguousarray(x)
  y = np.ascontiguousarray(y, dtype=np.int64)
  paths = []
  for array in (x, y):
    digest = _content_digest(array)
    paths.append(os.path.join(directory, f"{digest}.{array.dtype}"))
    _write_once(paths[-1], array, digest)
  return paths[0], paths[1]


def _memory_mapped(path: str, like: np.ndarray) -> tf.Tensor:
  """The array stored at `path` by `export_arrays`, mapped, not read: pages
  are shared by every computation and process on the host."""
  return tf.raw_ops.ImmutableConst(dtype=tf.as_dtype(like.dtype),
                                   shape=like.shape, memory_region_name=path)


class PartitionClientData(tff.simulation.datasets.ClientData):
  """The clients of a `Partition` over arrays (made by `to_client_data`).

  With fixed feature noise, a client's dataset holds its noisy features; with
  redrawn feature noise (`Partition.feature_noise_redraw`) it holds the clean
  ones, and training adds the noise per read (`per_read_noise_std`).
  """

  def __init__(self, partition: Any, x: Any, y: Any, *,
               feature_noise_seed: int = 0,
               worker_data_dir: Optional[str] = None):
    x, y = np.asarray(x), np.asarray(y)
    _check_arrays(partition, x, y)
    self._quarter_turns = quarter_turns(partition.rotation, x)
    self._partition = partition
    self._x, self._y = x, y.astype(np.int64)
    self._labels = self._y if partition.noisy_labels is None else (
        partition.noisy_labels)
    self._feature_noise_seed = feature_noise_seed
    # Which feature noise the client datasets carry (fixed), or training adds
    # per read (redrawn).
    self._fixed_noise = (partition.feature_noise is not None and
                         not partition.feature_noise_redraw)
    self._redrawn_noise = partition.feature_noise_redraw
    self._worker_data_dir = worker_data_dir or default_worker_data_dir()
    self._exported: Optional[tuple[str, str]] = None
    self._client_ids = partition.client_ids
    self._positions = {cid: i for i, cid in enumerate(self._client_ids)}
    self._dataset_fn = self._build_dataset_fn()
    self._element_spec = self._dataset_fn(self._client_ids[0]).element_spec

  @property
  def client_ids(self) -> list[str]:
    return self._client_ids

  @property
  def serializable_dataset_fn(self) -> Any:
    return self._dataset_fn

  @property
  def element_type_structure(self) -> Any:
    return self._element_spec

  @property
  def worker_data_dir(self) -> str:
    """The directory in which workers find the arrays (`export_arrays`)."""
    return self._worker_data_dir

  def _build_dataset_fn(self) -> Any:
    x_t = tf.constant(self._x)
    labels_t = tf.constant(self._labels)
    indices_t = tf.constant(self._partition.indices)
    offsets_t = tf.constant(self._partition.offsets)
    noise_t = (tf.constant(self._partition.feature_noise, dtype=tf.float32)
               if self._fixed_noise else None)
    turns_t = (None if self._quarter_turns is None else
               tf.constant(self._quarter_turns))
    if self._partition.client_names is None:
      position_of = lambda cid: tf.strings.to_number(cid, out_type=tf.int64)
    else:
      position_of = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(
              tf.constant(self._client_ids),
              tf.range(len(self._client_ids), dtype=tf.int64)),
          default_value=-1).lookup
    seed = self._feature_noise_seed

    def dataset_fn(client_id):
      i = position_of(tf.convert_to_tensor(client_id, tf.string))
      indices = indices_t[offsets_t[i]:offsets_t[i + 1]]
      noise = None if noise_t is None else (
          noise_t[i], tf.stack([tf.cast(seed, tf.int64), i]))
      return tf.data.Dataset.from_tensor_slices(_client_elements(
          tf.gather(x_t, indices), tf.gather(labels_t, indices), noise,
          None if turns_t is None else turns_t[i]))

    return dataset_fn

  def per_read_noise_std(self, client_id: str) -> Optional[np.float32]:
    """The std of the feature noise `local_training_batches` must redraw at
    every read of `client_id`'s samples (its `feature_noise_std=`), or None
    when the partition's feature noise is not redrawn (none, or fixed in the
    client's dataset)."""
    if not self._redrawn_noise:
      return None
    return np.float32(self._partition.feature_noise[self._positions[client_id]])

  @property
  def client_input_spec(self) -> collections.OrderedDict:
    """The spec of `client_input`: what a round sends per client."""
    spec = collections.OrderedDict(
        indices=tf.TensorSpec([None], tf.int64),
        shuffle_seed=tf.TensorSpec([], tf.int64))
    if self._partition.noisy_labels is not None:
      spec["labels"] = tf.TensorSpec([None], tf.int64)
    if self._partition.feature_noise is not None:
      spec["noise_std"] = tf.TensorSpec([], tf.float32)
    if self._fixed_noise:
      spec["noise_seed"] = tf.TensorSpec([2], tf.int64)
    if self._quarter_turns is not None:
      spec["quarter_turns"] = tf.TensorSpec([], tf.int32)
    return spec

  def client_input(self, client_id: str,
                   shuffle_seed: int) -> collections.OrderedDict:
    """What a round on workers sends for `client_id`: its example indices and
    `shuffle_seed`; its (noisy) labels if the partition has label noise; its
    noise std if it has feature noise, and the noise seed if that noise is
    fixed (redrawn noise is seeded by `shuffle_seed`); its quarter turns if
    it has rotations."""
    i = self._positions[client_id]
    indices = self._partition[i]
    values = collections.OrderedDict(indices=indices,
                                     shuffle_seed=np.int64(shuffle_seed))
    if self._partition.noisy_labels is not None:
      values["labels"] = self._labels[indices]
    if self._partition.feature_noise is not None:
      values["noise_std"] = np.float32(self._partition.feature_noise[i])
    if self._fixed_noise:
      values["noise_seed"] = np.array([self._feature_noise_seed, i], np.int64)
    if self._quarter_turns is not None:
      values["quarter_turns"] = self._quarter_turns[i]
    return values

  def identity(self) -> dict[str, Any]:
    """What decides the clients' datasets: the partition's checksum
    (`rundir.partition_checksum`), the arrays' content and, with fixed
    feature noise, its seed. `training.train` refuses to resume a run on
    other ones."""
    identity = {
        "partition_sha256": rundir.partition_checksum(self._partition),
        "x_sha256": _content_digest(np.ascontiguousarray(self._x)),
        "y_sha256": _content_digest(np.ascontiguousarray(self._y))}
    if self._fixed_noise:
      identity["feature_noise_seed"] = self._feature_noise_seed
    return identity

  def export_arrays(self) -> tuple[str, str]:
    """`export_arrays` of this data into `worker_data_dir` (once)."""
    if self._exported is None:
      self._exported = export_arrays(self._x, self._y, self._worker_data_dir)
    return self._exported

  def training_dataset_computation(self, *, batch_size: int,
                                   local_epochs: int = 1,
                                   max_examples: Optional[int] = None,
                                   per_epoch_batches: bool = False) -> Any:
    """A TFF computation `client_input -> client's training batches`.

    It runs on the worker, reading the arrays from `worker_data_dir` (exported
    there from this process first), and yields the same batches as
    `local_training_batches(create_tf_dataset_for_client(id),
    seed=shuffle_seed, feature_noise_std=per_read_noise_std(id), ...)`.
    """
    x_path, y_path = self.export_arrays()
    noisy = self._partition.noisy_labels is not None
    fixed_noise, redrawn_noise = self._fixed_noise, self._redrawn_noise
    rotated = self._quarter_turns is not None

    @tff.tensorflow.computation(self.client_input_spec)
    def client_dataset(client_input):
      indices = client_input["indices"]
      rows = tf.gather(_memory_mapped(x_path, self._x), indices)
      labels = (client_input["labels"] if noisy else
                tf.gather(_memory_mapped(y_path, self._y), indices))
      elements = _client_elements(
          rows, labels, (client_input["noise_std"], client_input["noise_seed"])
          if fixed_noise else None,
          client_input["quarter_turns"] if rotated else None)
      return local_training_batches(
          tf.data.Dataset.from_tensor_slices(elements), batch_size=batch_size,
          local_epochs=local_epochs, seed=client_input["shuffle_seed"],
          max_examples=max_examples,
          feature_noise_std=(client_input["noise_std"] if redrawn_noise
                             else None),
          per_epoch_batches=per_epoch_batches)

    return client_dataset


def quarter_turns(rotation: Optional[np.ndarray],
                  x: np.ndarray) -> Optional[np.ndarray]:
  """A partition's `rotation` (degrees per client) as int32 quarter turns,
  or None without one; ValueError unless the rows of `x` are square images
  ((N, H, H) or (N, H, H, C)), which a quarter turn maps onto themselves."""
  if rotation is None:
    return None
  if x.ndim not in (3, 4) or x.shape[1] != x.shape[2]:
    raise ValueError(f"the partition rotates its clients' inputs, which "
                     f"needs square images, (N, H, H) or (N, H, H, C); got "
                     f"x of shape {x.shape}.")
  return (np.asarray(rotation) // 90).astype(np.int32)


def to_client_data(partition: Any, x: Any, y: Any, *,
                   feature_noise_seed: int = 0,
                   worker_data_dir: Optional[str] = None
                   ) -> PartitionClientData:
  """Wraps a partition of arrays `x`/`y` as a lazy TFF ClientData.

  Args:
    partition: a `tff_niid.partition.Partition` made from `y`. If it carries
      `noisy_labels`, clients train on those; if it carries `feature_noise`,
      client i's features get Gaussian noise of std `feature_noise[i]`
      (NIID-Bench feature-noise skew): fixed per sample from the client and
      `feature_noise_seed`, or, with `feature_noise_redraw`, redrawn at every
      read (module docstring); if it carries `rotation`, client i's images
      are rotated by `rotation[i]` degrees (rotated MNIST).
    x: array (N, ...): images (N, H, W) or (N, H, W, C), features (N, D), ...
      of integers or floats (see the module docstring for the conversion).
    y: integer array (N,), the true labels the partition was made from
      (checked against the partition's fingerprint).
    feature_noise_seed: seed of the fixed feature noise (redrawn noise is
      seeded by the training shuffle seeds).
    worker_data_dir: where TFF workers read x and y when they build the
      client datasets (`RoundInputs`); default `default_worker_data_dir()`.
      Relative: each worker resolves it against its working directory.

  Returns:
    A `PartitionClientData` with `partition.client_ids`. Its
    `create_tf_dataset_for_client(id)` yields the client's samples in the
    partition's order, which the label-skew schemes list class by class:
    shuffle before `take` or a split of your own (`training.train` shuffles
    each client fully every round; `partition.split_clients` makes a
    stratified train/test split).

  Raises:
    ValueError: `y` is not the partition's labels, or the arrays' shapes or
      dtypes do not fit.
  """
  return PartitionClientData(partition, x, y,
                             feature_noise_seed=feature_noise_seed,
                             worker_data_dir=worker_data_dir)


# Larger than any client of a 60k-sample dataset, so `shuffle` is a full
# shuffle: a client's samples are stored grouped by class, and a partial
# shuffle (or `take` before shuffling) would give single-class batches.
_FULL_SHUFFLE = 100_000


# Mixed into the shuffle seed for the per-read noise, so that its stateless
# draws are a stream of their own.
_PER_READ_NOISE_STREAM = 1


def _with_per_read_noise(batches: tf.data.Dataset, std: Any,
                         seed: Any) -> tf.data.Dataset:
  """`batches` with Gaussian noise of std `std` (float32) added to every
  batch's x, drawn from a stateless seed of (`seed`, batch number)."""
  base_seed = tf.stack([tf.cast(seed, tf.int64),
                        tf.constant(_PER_READ_NOISE_STREAM, tf.int64)])
  std = tf.convert_to_tensor(std, tf.float32)

  def add_noise(batch_number, batch):
    x = batch["x"]
    noise = tf.random.stateless_normal(
        tf.shape(x), dtype=x.dtype, alg="philox",
        seed=tf.random.experimental.stateless_fold_in(
            base_seed, batch_number, alg="philox"))
    noisy = collections.OrderedDict(batch)
    noisy["x"] = x + tf.cast(std, x.dtype) * noise
    return noisy

  return batches.enumerate().map(add_noise)


def local_training_batches(dataset: tf.data.Dataset, *, batch_size: int,
                           local_epochs: int = 1, seed: Any = None,
                           max_examples: Optional[int] = None,
                           feature_noise_std: Any = None,
                           per_epoch_batches: bool = False) -> tf.data.Dataset:
  """Local training pipeline: full shuffle -> repeat(epochs) -> batch.

  The epochs are streamed into batches, so only the round's last batch can
  be short. With `per_epoch_batches`, each epoch is batched on its own
  (shuffle -> batch -> repeat: every epoch ends with a short batch when
  `batch_size` does not divide the client's samples), as PyTorch's
  DataLoader(shuffle=True, drop_last=False) and so NIID-Bench (Li et al.
  2022) batch.

  With `max_examples`, a random subset of that many samples (fixed for the
  given seed) is used. The order is reshuffled each epoch from `seed` (an int
  or an int64 scalar tensor), so the same (seed, round, client) always yields
  the same batches.

  With `feature_noise_std` (a float32 scalar, e.g.
  `PartitionClientData.per_read_noise_std`), Gaussian noise of that std is
  added to every batch's x as it is read: fresh for every sample in every
  epoch, as NIID-Bench's `AddGaussianNoise` transform (Li et al. 2022), and
  a function of (`seed`, the batch's number in the stream of epochs) only.

  Raises:
    ValueError: `feature_noise_std` without a `seed`.
  """
  if feature_noise_std is not None and seed is None:
    raise ValueError("feature_noise_std needs a seed: the per-read noise is "
                     "drawn from it, so that rounds can be repeated.")
  if max_examples:
    dataset = dataset.shuffle(_FULL_SHUFFLE, seed=seed,
                              reshuffle_each_iteration=False).take(max_examples)
  shuffled = dataset.shuffle(_FULL_SHUFFLE, seed=seed,
                             reshuffle_each_iteration=True)
  if per_epoch_batches:
    batches = shuffled.batch(batch_size).repeat(local_epochs)
  else:
    batches = shuffled.repeat(local_epochs).batch(batch_size)
  if feature_noise_std is not None:
    batches = _with_per_read_noise(batches, feature_noise_std, seed)
  return batches.prefetch(tf.data.AUTOTUNE)


def local_steps(num_examples: int, *, batch_size: int, local_epochs: int = 1,
                per_epoch_batches: bool = False) -> int:
  """Batches `local_training_batches` yields for a client of `num_examples`
  samples (without `max_examples`): ceil(epochs * n / batch_size) with the
  epochs streamed into batches, epochs * ceil(n / batch_size) with
  `per_epoch_batches` (NIID-Bench's DataLoader)."""
  if per_epoch_batches:
    return local_epochs * math.ceil(num_examples / batch_size)
  return math.ceil(local_epochs * num_examples / batch_size)


class RoundInputs:
  """The learning process that runs training rounds, and its client inputs.

  For a `PartitionClientData`, `process` is the given one composed with the
  client data's `training_dataset_computation`, and a round's inputs are the
  clients' `client_input`s: the datasets are built on the workers. For any
  other ClientData, `process` is the given one and the inputs are
  `local_training_batches` datasets built here (without per-read noise:
  only a `PartitionClientData` knows its clients' noise). Either way the same
  clients and seeds give the same batches, and `process` keeps the given
  one's state.
  """

  def __init__(self, process: Any, client_data: Any, *, batch_size: int,
               local_epochs: int = 1, max_examples: Optional[int] = None,
               per_epoch_batches: bool = False):
    self._client_data = client_data
    self._on_workers = isinstance(client_data, PartitionClientData)
    self._batching_args: dict[str, Any] = dict(
        batch_size=batch_size, local_epochs=local_epochs,
        max_examples=max_examples, per_epoch_batches=per_epoch_batches)
    self.process = process
    if self._on_workers:
      dataset_computation = client_data.training_dataset_computation(
          **self._batching_args)
      self.process = (
          process.with_dataset_computation(dataset_computation)
          if isinstance(process, client_state.ClientStateProcess) else
          tff.simulation.compose_dataset_computation_with_learning_process(
              dataset_computation, process))

  def next(self, state: Any, inputs: Sequence[Any],
           client_positions: Sequence[int]) -> Any:
    """One round of `process` from `state` on a round's `inputs` (this
    object's call); a `client_state.ClientStateProcess` also takes the
    clients' positions in the client data's `client_ids`."""
    if isinstance(self.process, client_state.ClientStateProcess):
      return self.process.next(state, inputs, client_positions)
    return self.process.next(state, inputs)

  def __call__(self, client_ids: Sequence[str],
               shuffle_seeds: Sequence[int]) -> list[Any]:
    """The per-client argument of `process.next` for these clients."""
    if self._on_workers:
      return [self._client_data.client_input(cid, seed)
              for cid, seed in zip(client_ids, shuffle_seeds)]
    return [local_training_batches(
        self._client_data.create_tf_dataset_for_client(cid), seed=seed,
        **self._batching_args)
            for cid, seed in zip(client_ids, shuffle_seeds)]


def test_dataset(x: Any, y: Any, batch_size: int = 1000) -> tf.data.Dataset:
  """A centralized evaluation dataset: the features of `x` as in client
  datasets (without noise; `evaluation.noisy_test_copies` adds NIID-Bench's),
  int64 labels, batched."""
  return tf.data.Dataset.from_tensor_slices(
      _client_elements(tf.constant(np.asarray(x)),
                       tf.constant(np.asarray(y, dtype=np.int64)))
  ).batch(batch_size)


def export_sql(client_data: Any, path: str, *,
               allow_overwrite: bool = False) -> None:
  """Writes a ClientData to a SQLite file TFF reads directly.

  Read it back with `tff.simulation.datasets.load_and_parse_sql_client_data(
  path, client_data.element_type_structure)`.
  """
  tff.simulation.datasets.save_to_sql_client_data(
      client_data.client_ids, client_data.serializable_dataset_fn, path,
      allow_overwrite=allow_overwrite)

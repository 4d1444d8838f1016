"""`Partition` + arrays -> a lazy `tff.simulation.datasets.ClientData`.

The images live once in memory as a single uint8 tensor; each client's dataset
is a `tf.gather` of its index slice, built only when the client is asked for
(`ClientData.from_clients_and_tf_fn`). Nothing is copied per client up front,
so 10,000 clients cost one offsets table, and nothing is embedded in a TFF
computation (client datasets are passed to `process.next` as values).

Elements are `OrderedDict(x=float32 (28, 28, 1) in [0, 1] (+ the client's
feature noise), y=int64)`. Training-time shuffling, epochs and batching are in
`preprocess`, applied per round with a seed derived from (seed, round, client)
so runs are reproducible and resumable.
"""

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff


ELEMENT_SPEC = collections.OrderedDict(
    x=tf.TensorSpec((28, 28, 1), tf.float32),
    y=tf.TensorSpec((), tf.int64))
# What `preprocess` yields: the model input spec of `tff.learning` models.
BATCH_SPEC = collections.OrderedDict(
    x=tf.TensorSpec((None, 28, 28, 1), tf.float32),
    y=tf.TensorSpec((None,), tf.int64))


def to_client_data(partition, images, labels, *, feature_noise_seed=0):
  """Wraps a partition of `images`/`labels` as a lazy TFF ClientData.

  Args:
    partition: a `tff_niid.partition.Partition` made from `labels`. If it
      carries `noisy_labels`, clients train on those; if it carries
      `feature_noise`, client i's images get Gaussian noise of std
      `feature_noise[i]` (NIID-Bench feature-noise skew), fixed per client and
      `feature_noise_seed`.
    images: uint8 array (N, 28, 28).
    labels: int array (N,), the true labels the partition was made from
      (checked against the partition's fingerprint).
    feature_noise_seed: seed of the per-client feature noise.

  Returns:
    A `tff.simulation.datasets.ClientData` with `partition.client_ids`.
  """
  partition.check_labels(labels)
  images = np.asarray(images)
  if images.shape[0] != partition.num_samples or images.shape[1:] != (28, 28):
    raise ValueError(
        f"images must have shape ({partition.num_samples}, 28, 28); got "
        f"{images.shape}.")
  train_labels = (labels if partition.noisy_labels is None
                  else partition.noisy_labels)
  images_t = tf.constant(images, dtype=tf.uint8)
  labels_t = tf.constant(np.asarray(train_labels, dtype=np.int64))
  indices_t = tf.constant(partition.indices)
  offsets_t = tf.constant(partition.offsets)
  noise_t = (None if partition.feature_noise is None else
             tf.constant(partition.feature_noise, dtype=tf.float32))
  client_ids = partition.client_ids
  if partition.client_names is None:
    position_of = lambda cid: tf.strings.to_number(cid, out_type=tf.int64)
  else:
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(client_ids), tf.range(len(client_ids), dtype=tf.int64)),
        default_value=-1)
    position_of = table.lookup

  def dataset_fn(client_id):
    i = position_of(tf.convert_to_tensor(client_id, tf.string))
    idx = indices_t[offsets_t[i]:offsets_t[i + 1]]
    x = tf.cast(tf.gather(images_t, idx), tf.float32)[..., tf.newaxis] / 255.0
    if noise_t is not None:
      seed = tf.stack([tf.cast(feature_noise_seed, tf.int64), i])
      x += noise_t[i] * tf.random.stateless_normal(tf.shape(x), seed=seed)
    return tf.data.Dataset.from_tensor_slices(
        collections.OrderedDict(x=x, y=tf.gather(labels_t, idx)))

  return tff.simulation.datasets.ClientData.from_clients_and_tf_fn(
      client_ids, dataset_fn)


# Larger than any client of a 60k-sample dataset, so `shuffle` is a full
# shuffle: a client's samples are stored grouped by class, and a partial
# shuffle (or `take` before shuffling) would give single-class batches.
_FULL_SHUFFLE = 100_000


def preprocess(dataset, *, batch_size, local_epochs=1, seed=None,
               max_examples=None):
  """Local training pipeline: full shuffle -> repeat(epochs) -> batch.

  With `max_examples`, a random subset of that many samples (fixed for the
  given seed) is used. The order is reshuffled each epoch from `seed`, so the
  same (seed, round, client) always yields the same batches.
  """
  if max_examples:
    dataset = dataset.shuffle(_FULL_SHUFFLE, seed=seed,
                              reshuffle_each_iteration=False).take(max_examples)
  return (dataset.shuffle(_FULL_SHUFFLE, seed=seed,
                          reshuffle_each_iteration=True)
          .repeat(local_epochs)
          .batch(batch_size)
          .prefetch(tf.data.AUTOTUNE))


def test_dataset(images, labels, batch_size=1000):
  """A centralized evaluation dataset (x scaled to [0, 1], batched)."""
  x = images.astype(np.float32)[..., np.newaxis] / 255.0
  return tf.data.Dataset.from_tensor_slices(
      collections.OrderedDict(x=x, y=np.asarray(labels, dtype=np.int64))
  ).batch(batch_size)


def export_sql(client_data, path, *, allow_overwrite=False):
  """Writes a ClientData to a SQLite file TFF reads directly.

  Read it back with `tff.simulation.datasets.load_and_parse_sql_client_data(
  path, ELEMENT_SPEC)`.
  """
  tff.simulation.datasets.save_to_sql_client_data(
      client_data.client_ids, client_data.serializable_dataset_fn, path,
      allow_overwrite=allow_overwrite)

"""Evaluation of the global model: centralized and per client.

The global model is the same for every client, so evaluating it on each
client's test split (federated evaluation) equals slicing one set of
predictions on the full test set by the clients' test indices. We predict once
per evaluation with a plain Keras model and derive both the centralized and
the per-client metrics from it.

For NIID-Bench's noise-based feature skew (Li et al. 2022, "Federated
Learning on Non-IID Data Silos: An Experimental Study", ICDE; experiments.py
builds `test_dl_global` when `noise > 0`), the test set is evaluated as the
concatenation of one copy per client, copy i with client i's Gaussian noise
drawn afresh for every evaluation (`noisy_test_copies`).

For rotated clients (`Partition.rotation`, rotated MNIST: Ghosh et al. 2020,
"An Efficient Framework for Clustered Federated Learning"), the test set is
evaluated once per client's angle, as IFCA evaluates each cluster on its own
rotated test set: the metrics are those of one rotated copy per client,
computed once per distinct angle and weighted by its number of clients.
"""

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
import hashlib
from typing import Any, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from tff_niid import clientdata
from tff_niid import models
from tff_niid.partition import Partition
from tff_niid.partition import rotation as rotation_lib

# Noise stds, one per test-set copy.
Stds = Union[Sequence[float], np.ndarray]


def rotated(inputs: tf.data.Dataset, quarter_turns: Any) -> tf.data.Dataset:
  """The batches of `inputs` (images) rotated counterclockwise by
  `quarter_turns` (an int32 scalar) quarter turns, as client datasets are."""
  return inputs.map(lambda x: tf.image.rot90(x, k=quarter_turns))


def rotated_test_copies(inputs: tf.data.Dataset,
                        quarter_turns: Union[Sequence[int], np.ndarray]
                        ) -> tf.data.Dataset:
  """The batches of `inputs` once per entry of `quarter_turns`, copy i
  `rotated` by quarter_turns[i]."""
  turns_t = tf.constant(np.asarray(quarter_turns, np.int32))
  return tf.data.Dataset.range(len(turns_t)).flat_map(
      lambda copy: rotated(inputs, turns_t[copy]))


def noisy_test_copies(inputs: tf.data.Dataset, stds: Stds,
                      seed: Sequence[int],
                      quarter_turns: Optional[Union[Sequence[int],
                                                    np.ndarray]] = None
                      ) -> tf.data.Dataset:
  """The batches of `inputs` once per std, copy i plus noise of std stds[i].

  NIID-Bench's global test set under feature noise: every party's copy of
  the test set with that party's `AddGaussianNoise` (added to the [0, 1]
  features, not clipped), concatenated in party order.

  Args:
    inputs: batches of model inputs (e.g. `clientdata.test_dataset`'s x).
    stds: the noise std of each copy (cast to float32); a copy of std 0 is
      `inputs` exactly.
    seed: two int64 values; copy i's batch b is drawn from the stateless seed
      (seed, i, b), so the same seed gives the same copies.
    quarter_turns: optional, one per copy: copy i is `rotated` by
      quarter_turns[i] before its noise is added (a rotated client's
      inputs, as in its training data).

  Returns:
    len(stds) copies of `inputs`' batches, one after the other.
  """
  stds_t = tf.constant(np.asarray(stds, np.float32))
  base_seed = tf.constant(seed, tf.int64)
  turns_t = (None if quarter_turns is None else
             tf.constant(np.asarray(quarter_turns, np.int32)))

  def noisy_copy(copy):
    copy_seed = tf.random.experimental.stateless_fold_in(base_seed, copy,
                                                         alg="philox")
    std = stds_t[copy]
    source = inputs if turns_t is None else rotated(inputs, turns_t[copy])

    def add_noise(batch_number, x):
      noise = tf.random.stateless_normal(
          tf.shape(x), dtype=x.dtype, alg="philox",
          seed=tf.random.experimental.stateless_fold_in(
              copy_seed, batch_number, alg="philox"))
      return x + tf.cast(std, x.dtype) * noise

    return source.enumerate().map(add_noise)

  return tf.data.Dataset.range(len(stds)).flat_map(noisy_copy)


def _weights_digest(model_weights: Any) -> int:
  """A non-negative int64 fingerprint of a model's weights."""
  digest = hashlib.sha256()
  for w in list(model_weights.trainable) + list(model_weights.non_trainable):
    digest.update(np.ascontiguousarray(w).tobytes())
  return int.from_bytes(digest.digest()[:8], "little") >> 1


class Evaluator:
  """Evaluates `tff.learning.models.ModelWeights` on a test set.

  Returns `test_loss`, `test_accuracy` and, when `client_test_partition` (a
  `tff_niid.partition.Partition` over the test labels, e.g. from
  `partition.match_test`) is given, the mean and 10th percentile of the
  per-client accuracies (`client_accuracy_mean`, `client_accuracy_p10`).

  With `noisy_copy_stds` (NIID-Bench's evaluation under redrawn feature
  noise, `Partition.feature_noise_redraw`), the test set is the concatenation
  of `noisy_test_copies`, copy i with noise of std noisy_copy_stds[i], and a
  client's split is read from its own copy. The noise is drawn afresh for
  every model evaluated, from `noise_seed` and a digest of the model's
  weights: the same weights (e.g. a round repeated after a resume) give the
  same metrics, each round's new weights new noise.

  With `rotations` (degrees per client, `Partition.rotation`), the test set
  is evaluated as one copy per client, rotated by the client's angle (then
  noisy, with `noisy_copy_stds`): the test metrics are the mean over those
  copies, computed once per distinct angle when there is no noise, and a
  client's split is read from its own angle's copy.
  """

  def __init__(self, model_name: str, images: np.ndarray, labels: np.ndarray,
               *, client_test_partition: Optional[Partition] = None,
               batch_size: int = 1000,
               noisy_copy_stds: Optional[Stds] = None,
               noise_seed: int = 0,
               rotations: Optional[Union[Sequence[int], np.ndarray]] = None):
    models.check_names(model_name)
    # Built at the first call: TFF builds its models in a tf.compat.v1 Graph,
    # which invalidates Keras models created before (BUILD_NOTES.md).
    self._model_name = model_name
    self._model: Optional[tf.keras.Model] = None
    self._labels = np.asarray(labels, dtype=np.int64)
    self._num_test = self._labels.shape[0]
    self._inputs = clientdata.test_dataset(images, labels, batch_size).map(
        lambda e: e["x"]).cache()
    self._clients = client_test_partition
    if client_test_partition is not None:
      client_test_partition.check_labels(labels)
    self._copy_stds = (None if noisy_copy_stds is None else
                       np.asarray(noisy_copy_stds, np.float32))
    self._noise_seed = noise_seed
    if self._copy_stds is not None:
      if self._copy_stds.ndim != 1 or not self._copy_stds.size:
        raise ValueError(f"noisy_copy_stds must list one std per copy; got "
                         f"{noisy_copy_stds!r}.")
      if (client_test_partition is not None and
          len(client_test_partition) != self._copy_stds.size):
        raise ValueError(
            f"client_test_partition has {len(client_test_partition)} clients "
            f"but noisy_copy_stds {self._copy_stds.size} copies: client i "
            "is evaluated on copy i.")
      self._labels = np.tile(self._labels, self._copy_stds.size)
    # Which copy each client reads (the noisy copies are one per client);
    # and, with rotations, each copy's quarter turns and weight.
    self._client_copy: Optional[np.ndarray] = (
        None if self._copy_stds is None else np.arange(self._copy_stds.size))
    self._copy_turns: Optional[np.ndarray] = None
    self._copy_weights: Optional[np.ndarray] = None
    if rotations is not None:
      self._rotate_copies(np.asarray(rotations), np.asarray(images))

  def _rotate_copies(self, rotations: np.ndarray, images: np.ndarray) -> None:
    """One rotated copy per client's angle: with noise, the noisy copies
    (one per client) rotated; without, one copy per distinct angle, weighted
    by its clients."""
    if self._clients is not None and len(self._clients) != rotations.size:
      raise ValueError(
          f"client_test_partition has {len(self._clients)} clients but "
          f"rotations {rotations.size}: client i is evaluated on its angle.")
    # The checks of a partition's rotations and of the images they turn.
    turns = clientdata.quarter_turns(
        rotation_lib.check_rotation(rotations, rotations.size), images)
    assert turns is not None
    if self._copy_stds is not None:
      if self._copy_stds.size != turns.size:
        raise ValueError(
            f"noisy_copy_stds has {self._copy_stds.size} copies but "
            f"rotations {turns.size} clients: copy i is client i's.")
      self._copy_turns, self._copy_weights = turns, np.ones(turns.size)
      return
    self._copy_turns, self._client_copy, counts = np.unique(
        turns, return_inverse=True, return_counts=True)
    self._copy_weights = counts.astype(np.float64)
    self._labels = np.tile(self._labels, self._copy_turns.size)

  @property
  def metric_names(self) -> list[str]:
    names = ["test_loss", "test_accuracy"]
    if self._clients is not None:
      names += ["client_accuracy_mean", "client_accuracy_p10"]
    return names

  def __call__(self, model_weights: Any) -> dict[str, float]:
    if self._model is None:
      self._model = models.create_keras_model(self._model_name)
    # assign_weights_to pairs the arrays with zip: another model's weights
    # would fail deep in TF, or fill this model in part.
    given = [tuple(np.shape(w)) for w in model_weights.trainable]
    expected = [tuple(w.shape) for w in self._model.trainable_weights]
    if given != expected:
      raise ValueError(
          f"this Evaluator tests the model {self._model_name!r} (trainable "
          f"shapes {expected}), but the weights given are another model's "
          f"({given}): make the Evaluator with the model the process "
          "trains.")
    model_weights.assign_weights_to(self._model)
    inputs = self._inputs
    if self._copy_stds is not None:
      inputs = noisy_test_copies(
          inputs, self._copy_stds,
          seed=(self._noise_seed, _weights_digest(model_weights)),
          quarter_turns=self._copy_turns)
    elif self._copy_turns is not None:
      inputs = rotated_test_copies(inputs, self._copy_turns)
    logits = self._model.predict(inputs, verbose=0)
    loss = np.asarray(tf.keras.losses.sparse_categorical_crossentropy(
        self._labels, logits, from_logits=True))
    correct = (np.argmax(logits, axis=1) == self._labels).astype(np.float64)
    weights = self._copy_weights
    if weights is None:
      out = collections.OrderedDict(test_loss=float(np.mean(loss)),
                                    test_accuracy=float(np.mean(correct)))
    else:  # the copies' means, weighted by their clients
      per_copy = lambda v: np.average(
          v.reshape(weights.size, -1).mean(axis=1), weights=weights)
      out = collections.OrderedDict(test_loss=float(per_copy(loss)),
                                    test_accuracy=float(per_copy(correct)))
    if self._clients is not None:
      sizes = self._clients.sizes
      owners = self._clients.client_of_position()
      # Client i's split, from its copy when there are copies.
      client_correct = (correct[self._clients.indices]
                        if self._client_copy is None else
                        correct.reshape(-1, self._num_test)[
                            self._client_copy[owners],
                            self._clients.indices])
      per_client = (np.bincount(owners, weights=client_correct,
                                minlength=sizes.shape[0]) /
                    np.maximum(sizes, 1))
      out["client_accuracy_mean"] = float(np.mean(per_client))
      out["client_accuracy_p10"] = float(np.percentile(per_client, 10))
    return out

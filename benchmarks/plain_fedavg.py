"""FedAvg written out in plain TensorFlow: the floor a TFF round is held to.

Each client of a round trains a copy of the global model from the global
weights with a `tf.function` SGD loop over its dataset; the new global
weights are the clients' weights averaged by their example counts. That is
what `tff.learning.algorithms.build_weighted_fed_avg` computes with SGD on the
clients and server learning rate 1, without TFF in between.

Build it after every TFF learning process of the program: TFF builds Keras
models inside a tf.compat.v1 Graph, which invalidates Keras models created
before (BUILD_NOTES.md).
"""

from typing import Sequence

import numpy as np
import tensorflow as tf

from tff_niid import models


class PlainFedAvg:
  """Weighted FedAvg rounds of a `tff_niid.models` model, SGD on clients."""

  def __init__(self, model_name: str, *, client_lr: float, seed: int = 0):
    self._model = models.create_keras_model(model_name, seed)
    self._client_lr = client_lr
    self._loss = tf.keras.losses.SparseCategoricalCrossentropy(
        from_logits=True)
    self.weights = [v.numpy() for v in self._model.trainable_variables]

  @tf.function
  def _train_client(self, dataset: tf.data.Dataset) -> tf.Tensor:
    """SGD over `dataset` from the model's current weights; example count."""
    count = tf.constant(0, tf.int64)
    variables = self._model.trainable_variables
    # An iterator loop, as TFF's DATASET_ITERATOR: `for batch in dataset`
    # becomes a dataset reduction whose function is instantiated on every
    # call, measured 2-3x slower per client of 60 examples.
    for batch in iter(dataset):
      with tf.GradientTape() as tape:
        loss = self._loss(batch["y"], self._model(batch["x"], training=True))
      for var, grad in zip(variables, tape.gradient(loss, variables)):
        var.assign_sub(self._client_lr * grad)
      count += tf.shape(batch["y"], out_type=tf.int64)[0]
    return count

  def round(self, datasets: Sequence[tf.data.Dataset]) -> None:
    """One round on the clients' preprocessed datasets; updates `weights`."""
    total, weighted = 0, [np.zeros_like(w) for w in self.weights]
    for dataset in datasets:
      for var, w in zip(self._model.trainable_variables, self.weights):
        var.assign(w)
      n = int(self._train_client(dataset))
      total += n
      for acc, var in zip(weighted, self._model.trainable_variables):
        acc += n * var.numpy()
    self.weights = [w / total for w in weighted]

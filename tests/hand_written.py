"""NIID-Bench's client loop written out by hand (numpy and Keras gradients),
for checking the algorithms tff_niid builds itself (scaffold, fednova)
against: small real MNIST clients, and their local training as NIID-Bench's
`train_net_*` takes it."""

import numpy as np
import tensorflow as tf

from tff_niid import models

MODEL = "2nn"
# Unequal clients of two classes each (so unequal step counts).
SIZES = (48, 64, 80)
EPOCHS, BATCH = 2, 16


def clients(mnist):
  """[(images, labels)] of SIZES, client k holding digits 2k and 2k+1."""
  arrays = []
  for k, size in enumerate(SIZES):
    idx = np.flatnonzero(np.isin(mnist.train_labels, (2 * k, 2 * k + 1)))
    idx = idx[:size]
    arrays.append((mnist.train_images[idx].astype(np.float32)[..., None] /
                   255.0, mnist.train_labels[idx].astype(np.int64)))
  return arrays


def dataset(x, y):
  """The client's batches, the same for TFF and the hand-written loop."""
  return tf.data.Dataset.from_tensor_slices(
      {"x": x, "y": y}).repeat(EPOCHS).batch(BATCH)


class LocalSGD:
  """PyTorch's SGD(lr, momentum, weight_decay) on MODEL, fresh momentum
  each call, with an optional shift subtracted after every step."""

  def __init__(self, hp):
    self._model = models.create_keras_model(MODEL)
    self._loss = tf.keras.losses.SparseCategoricalCrossentropy(
        from_logits=True)
    self._hp = hp

  def __call__(self, x, client, shift=None):
    """(final weights, steps) from weights `x` over `dataset(*client)`."""
    lr, momentum = self._hp.client_lr, self._hp.client_momentum
    decay = self._hp.client_weight_decay
    y = [w.copy() for w in x]
    velocity = [np.zeros_like(w) for w in x]
    steps = 0
    for batch in dataset(*client):
      self._model.set_weights([w.astype(np.float32) for w in y])
      with tf.GradientTape() as tape:
        loss = self._loss(batch["y"], self._model(batch["x"], training=True))
      grads = tape.gradient(loss, self._model.trainable_variables)
      for i, g in enumerate(grads):
        velocity[i] = momentum * velocity[i] + (g.numpy() + decay * y[i])
        y[i] = y[i] - lr * velocity[i]
        if shift is not None:
          y[i] = y[i] - shift[i]
      steps += 1
    return y, steps

"""Keras 2 models for 28x28 grayscale inputs, and their TFF wrappers.

Inputs are float32 batches of shape (B, 28, 28, 1) scaled to [0, 1] (see
`tff_niid.clientdata.local_training_batches`); labels are integer class
ids.
`build_model_fn` checks the client data's spec and says what it expected:
data of other shapes (`clientdata.to_client_data` takes any arrays) needs its
own model.
"""

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
import math
from typing import Any, Callable

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)


def _cnn() -> list[tf.keras.layers.Layer]:
  """CNN of McMahan et al. 2017, Sec. 3 ("Communication-Efficient Learning of
  Deep Networks from Decentralized Data"): two 5x5 conv layers (32, 64
  channels) each followed by 2x2 max pooling, a 512-unit ReLU layer and a
  10-way output (logits here: the loss applies the softmax); 1,663,370
  parameters."""
  return [
      tf.keras.layers.Conv2D(32, 5, padding="same", activation="relu"),
      tf.keras.layers.MaxPool2D(2),
      tf.keras.layers.Conv2D(64, 5, padding="same", activation="relu"),
      tf.keras.layers.MaxPool2D(2),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(512, activation="relu"),
      tf.keras.layers.Dense(NUM_CLASSES),
  ]


def _two_nn() -> list[tf.keras.layers.Layer]:
  """2NN of McMahan et al. 2017: 784-200-200-10 MLP with ReLU; 199,210
  parameters."""
  return [
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(200, activation="relu"),
      tf.keras.layers.Dense(200, activation="relu"),
      tf.keras.layers.Dense(NUM_CLASSES),
  ]


def _niid_bench_cnn() -> list[tf.keras.layers.Layer]:
  """The "simple CNN" of NIID-Bench (Li et al. 2022) for MNIST/FMNIST:
  conv(6, 5x5) -> pool -> conv(16, 5x5) -> pool -> 120 -> 84 -> 10."""
  return [
      tf.keras.layers.Conv2D(6, 5, activation="relu"),
      tf.keras.layers.MaxPool2D(2),
      tf.keras.layers.Conv2D(16, 5, activation="relu"),
      tf.keras.layers.MaxPool2D(2),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(120, activation="relu"),
      tf.keras.layers.Dense(84, activation="relu"),
      tf.keras.layers.Dense(NUM_CLASSES),
  ]


def _logistic() -> list[tf.keras.layers.Layer]:
  """Multinomial logistic regression baseline (7,850 parameters)."""
  return [tf.keras.layers.Flatten(),
          tf.keras.layers.Dense(NUM_CLASSES)]


def _layer_seeds(seed: int, layer: int) -> tuple[int, int]:
  """Two seeds of layer `layer`'s own (kernel, bias), drawn from the model
  seed: no two layers share one."""
  kernel_seed, bias_seed = np.random.SeedSequence([seed, layer]).generate_state(
      2)
  return int(kernel_seed), int(bias_seed)


def _glorot_uniform(seed: int, layer: int, fan_in: int) -> dict[str, Any]:
  """Glorot uniform kernels, zero biases, with the model seed in every
  layer: Keras draws a seeded kernel as the start of the seed's one uniform
  stream, so each layer's kernel repeats the first values of every larger
  one, rescaled to its own bound (the 2NN's second kernel is the first 200
  rows of its first, times the ratio of their bounds). What the committed
  runs of this name used, kept for their reruns; `glorot_uniform_per_layer`
  is Keras' default."""
  del layer, fan_in
  return dict(kernel_initializer=tf.keras.initializers.GlorotUniform(seed))


def _truncated_normal(seed: int, layer: int, fan_in: int) -> dict[str, Any]:
  """TensorFlow's MNIST tutorials of 2015-16 ("Deep MNIST for Experts"):
  kernels from a normal of std 0.1 truncated at 2 std, biases 0.1; the
  model seed in every layer, so the layers' kernels repeat one another as
  `_glorot_uniform`'s do (kept for the committed runs of this name)."""
  del layer, fan_in
  return dict(
      kernel_initializer=tf.keras.initializers.TruncatedNormal(
          stddev=0.1, seed=seed),
      bias_initializer=tf.keras.initializers.Constant(0.1))


def _per_layer(initializer: Callable[[int, int, int], dict[str, Any]]
               ) -> Callable[[int, int, int], dict[str, Any]]:
  """`initializer` with each layer's kernel drawn from the layer's own seed
  (`_layer_seeds`), so the layers are independent draws."""
  def each_layer(seed: int, layer: int, fan_in: int) -> dict[str, Any]:
    return initializer(_layer_seeds(seed, layer)[0], layer, fan_in)
  return each_layer


def _pytorch_default(seed: int, layer: int, fan_in: int) -> dict[str, Any]:
  """PyTorch's default for nn.Linear / nn.Conv2d (what NIID-Bench's and
  Flower's models use): kernels kaiming_uniform(a=sqrt(5)) and biases, both
  uniform on +-1/sqrt(fan_in); VarianceScaling(1/3, fan_in, uniform) has
  that bound."""
  bound = 1.0 / math.sqrt(fan_in)
  kernel_seed, bias_seed = _layer_seeds(seed, layer)
  return dict(
      kernel_initializer=tf.keras.initializers.VarianceScaling(
          1.0 / 3.0, mode="fan_in", distribution="uniform", seed=kernel_seed),
      bias_initializer=tf.keras.initializers.RandomUniform(
          -bound, bound, seed=bias_seed))


# Weight initialisations by name: (model seed, index of the layer among those
# with weights, the layer's fan-in) -> initializer arguments of that layer.
INITIALIZERS: dict[str, Callable[[int, int, int], dict[str, Any]]] = {
    "glorot_uniform_per_layer": _per_layer(_glorot_uniform),
    "pytorch_default": _pytorch_default,
    "truncated_normal_0.1_per_layer": _per_layer(_truncated_normal),
    "glorot_uniform": _glorot_uniform,
    "truncated_normal_0.1": _truncated_normal,
}
# Keras' default distribution, each layer drawn on its own.
DEFAULT_INITIALIZER = "glorot_uniform_per_layer"

MODELS = collections.OrderedDict(
    cnn=_cnn, **{"2nn": _two_nn}, niid_cnn=_niid_bench_cnn, logreg=_logistic)


def check_names(name: str, initializer: str = DEFAULT_INITIALIZER) -> None:
  """ValueError naming the valid choices unless `name` is one of `MODELS`
  and `initializer` one of `INITIALIZERS`."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose one of {list(MODELS)}.")
  if initializer not in INITIALIZERS:
    raise ValueError(f"unknown initializer {initializer!r}; choose one of "
                     f"{list(INITIALIZERS)}.")


def create_keras_model(
    name: str, seed: int = 0,
    initializer: str = DEFAULT_INITIALIZER) -> tf.keras.Model:
  """An uncompiled Keras model producing logits.

  Args:
    name: one of `MODELS`.
    seed: seed of the weight initialisation.
    initializer: one of `INITIALIZERS`.
  """
  check_names(name, initializer)
  layers = MODELS[name]()
  # Set before the layers are built; fan-in = input channels x kernel area.
  shape = (None,) + INPUT_SHAPE
  index = 0
  for layer in layers:
    if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.Dense)):
      fan_in = shape[-1] * int(np.prod(getattr(layer, "kernel_size", (1,))))
      for attribute, value in INITIALIZERS[initializer](seed, index,
                                                        fan_in).items():
        setattr(layer, attribute, value)
      index += 1
    shape = layer.compute_output_shape(shape)
  return tf.keras.Sequential(
      [tf.keras.layers.InputLayer(input_shape=INPUT_SHAPE)] + layers, name=name)


def check_input_spec(name: str, input_spec: Any) -> None:
  """Raises ValueError unless `input_spec` is what the models take.

  Args:
    name: a model name (`MODELS`), named in the message.
    input_spec: `OrderedDict(x=TensorSpec, y=TensorSpec)` of batches, e.g.
      `clientdata.batch_spec(client_data.element_type_structure)`.
  """
  try:
    x_spec, y_spec = input_spec["x"], input_spec["y"]
  except (KeyError, TypeError) as e:
    raise ValueError(f"model {name!r} needs an input spec with keys 'x' and "
                     f"'y' (batches of images and labels); got "
                     f"{input_spec!r}.") from e
  expected = (None,) + INPUT_SHAPE
  if (x_spec.shape.rank != len(expected)
      or tuple(x_spec.shape[1:]) != INPUT_SHAPE
      or x_spec.dtype != tf.float32):
    raise ValueError(
        f"model {name!r} takes float32 batches of shape {expected} "
        "(28x28 grayscale images scaled to [0, 1]); the data gives "
        f"{x_spec.dtype.name} {tuple(x_spec.shape)}. Reshape the arrays "
        "before to_client_data, or build your own model_fn for them "
        "(tff.learning.models.from_keras_model with input_spec="
        "clientdata.batch_spec(client_data.element_type_structure)).")
  if not y_spec.dtype.is_integer:
    raise ValueError(f"model {name!r} takes integer class labels; the data "
                     f"gives {y_spec.dtype.name}.")


def build_model_fn(name: str, input_spec: Any, seed: int = 0,
                   initializer: str = DEFAULT_INITIALIZER) -> Callable[[], Any]:
  """A no-arg `model_fn` for `tff.learning` algorithms (a fresh model each
  call, as TFF requires).

  Args:
    name: a model name (`MODELS`).
    input_spec: the spec of the client batches (`check_input_spec`).
    seed: seed of the weight initialisation.
    initializer: one of `INITIALIZERS`.

  Raises:
    ValueError: for an unknown model or initializer, or batches the model
      cannot take.
  """
  check_names(name, initializer)
  check_input_spec(name, input_spec)

  def model_fn():
    return tff.learning.models.from_keras_model(
        create_keras_model(name, seed, initializer),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        input_spec=input_spec,
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy()])

  return model_fn

"""The client side of the algorithms tff_niid builds itself (`scaffold`,
`fednova`): local steps of a TFF optimizer from the server's model, as TFF's
model-delta client work takes them (`tff.learning.algorithms`' FedAvg), and
what their server side shares (types, metrics, the model's first state, the
clients' weighted mean).

TFF's builders cannot express these algorithms: SCAFFOLD shifts the weights
after every step and keeps state per client; FedNova scales the averaged
update by the clients' normalised step counts.
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
from typing import Any, Callable, NamedTuple, Optional

import tensorflow as tf
import tensorflow_federated as tff


class ModelTypes(NamedTuple):
  """The TFF types of a model's client data and weights, the type of its
  trainable weights as one flat tuple (an update, a control variate), and
  the federated computation summing then finalizing its metrics."""
  data: Any
  weights: Any
  flat_trainable: Any
  metrics_aggregation: Any


def model_types(model_fn: Callable[[], Any]) -> ModelTypes:
  """The `ModelTypes` of the models `model_fn` makes."""
  with tf.Graph().as_default():
    whimsy = model_fn()
    metrics_aggregation = tff.learning.metrics.sum_then_finalize(
        whimsy.metric_finalizers())
    data = tff.SequenceType(tff.types.tensorflow_to_type(whimsy.input_spec))
  weights = tff.learning.models.weights_type_from_model(model_fn)
  flat_trainable = tff.types.to_type(tuple(
      tff.TensorType(t.dtype, t.shape) for t in weights.trainable))
  return ModelTypes(data, weights, flat_trainable, metrics_aggregation)


def initial_server_state(model_fn: Callable[[], Any], client_optimizer: Any,
                         server_optimizer: Any,
                         **extra: Callable[[tuple[Any, ...]], Any]
                         ) -> collections.OrderedDict:
  """In a TF computation: {model: the initial ModelWeights, optimizer: the
  server optimizer's state, client_hparams: the client optimizer's
  hyperparameters, and each of `extra`: its function of the flat trainable
  weights}. The client hyperparameters are in the state, as in TFF's
  learning processes, so that a checkpoint records them (`hparams`)."""
  weights = tff.learning.models.ModelWeights.from_model(model_fn())
  trainable = tuple(tf.nest.flatten(weights.trainable))
  specs = tuple(tf.TensorSpec(v.shape, v.dtype) for v in trainable)
  state = collections.OrderedDict(
      model=weights,
      optimizer=server_optimizer.initialize(specs),
      client_hparams=client_optimizer.get_hparams(
          client_optimizer.initialize(specs)))
  state.update((name, make(trainable)) for name, make in extra.items())
  return state


def hparams(state: Any, server_optimizer: Any) -> collections.OrderedDict:
  """The hyperparameters of a state of `initial_server_state`'s structure,
  by the paths of TFF's learning processes (client_work/learning_rate,
  finalizer/learning_rate, ...)."""
  return collections.OrderedDict(
      client_work=state["client_hparams"],
      finalizer=server_optimizer.get_hparams(state["optimizer"]))


def apply_update(model: Any, server_optimizer: Any, optimizer_state: Any,
                 update: tuple[Any, ...]) -> tuple[Any, Any]:
  """In a TF computation: (optimizer state, ModelWeights) after the server
  optimizer's step along `update` (x - y: TFF's sign, a gradient)."""
  optimizer_state, trainable = server_optimizer.next(
      optimizer_state, tuple(tf.nest.flatten(model.trainable)), update)
  return optimizer_state, tff.learning.models.ModelWeights(
      trainable=tf.nest.pack_sequence_as(model.trainable, list(trainable)),
      non_trainable=model.non_trainable)


class LocalResult(NamedTuple):
  """One client's local training: `update` = initial - final trainable
  weights (flat; TFF's sign), `steps` taken, `num_examples` seen,
  `metrics` the model's unfinalized metrics."""
  update: tuple[Any, ...]
  num_examples: Any
  steps: Any
  metrics: Any


def build_local_steps(model_fn: Callable[[], Any], optimizer: Any
                      ) -> Callable[..., LocalResult]:
  """A tf.function (initial ModelWeights, dataset, shift=None) ->
  LocalResult: a step of `optimizer` per batch, each followed by
  `weights -= shift` when a shift (flat, per trainable variable) is given.
  The optimizer starts afresh (zero momentum) every round, as in TFF's
  FedAvg; batches are iterated as by its DATASET_ITERATOR loop."""
  model = model_fn()

  @tf.function
  def local_steps(initial_weights, data, shift: Optional[Any] = None):
    weights = tff.learning.models.ModelWeights.from_model(model)
    tf.nest.map_structure(lambda v, t: v.assign(t), weights, initial_weights)
    trainable = tuple(tf.nest.flatten(weights.trainable))
    optimizer_state = optimizer.initialize(
        tuple(tf.TensorSpec(v.shape, v.dtype) for v in trainable))
    num_examples = tf.constant(0, tf.int64)
    steps = tf.constant(0, tf.int64)
    for batch in iter(data):
      with tf.GradientTape() as tape:
        output = model.forward_pass(batch, training=True)
      gradients = tape.gradient(output.loss, trainable)
      optimizer_state, updated = optimizer.next(optimizer_state, trainable,
                                                tuple(gradients))
      if shift is None:
        for variable, value in zip(trainable, updated):
          variable.assign(value)
      else:
        for variable, value, delta in zip(trainable, updated, shift):
          variable.assign(value - delta)
      num_examples += tf.cast(output.num_examples, tf.int64)
      steps += 1
    update = tuple(start - v for start, v in zip(
        tf.nest.flatten(initial_weights.trainable), trainable))
    return LocalResult(update, num_examples, steps,
                       model.report_local_unfinalized_metrics())

  return local_steps


def client_weight(num_examples: Any, uniform: bool) -> Any:
  """A client's aggregation weight: 1, or its examples."""
  return tf.constant(1.0) if uniform else tf.cast(num_examples, tf.float32)


def zero_if_non_finite(tensors: Any, weight: Any) -> tuple[Any, Any, Any]:
  """(tensors, weight, 1) all zeroed if any of `tensors` is NaN/inf, else
  (tensors, weight, 0): such a client adds nothing, and is counted (the
  training loop stops on it, as on TFF's `update_non_finite`)."""
  finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t))
                          for t in tf.nest.flatten(tensors)])
  tensors = tf.nest.map_structure(
      lambda t: tf.where(finite, t, tf.zeros_like(t)), tensors)
  return (tensors, tf.where(finite, weight, 0.0),
          tf.cast(tf.logical_not(finite), tf.int32))


def weighted_mean(value: Any, weight: Any) -> Any:
  """In a federated computation: the mean of the CLIENTS `value` (a tensor
  or a tuple of them) weighted by the CLIENTS float32 `weight`, at SERVER.

  Computed as TFF's compiler computes `tff.federated_mean` with a weight (a
  sum over clients of value * weight and of weight, then their quotient), so
  to the same bits, except that where every weight is 0 (a round whose
  clients saw no examples or all had non-finite updates,
  `zero_if_non_finite`) the mean is 0, as TFF's own aggregators give
  (`tff.aggregators.MeanFactory` divides with divide_no_nan), not NaN.
  """
  value_type = value.type_signature.member

  @tff.tensorflow.computation(value_type, tf.float32)
  def scale(v, w):
    return tf.nest.map_structure(lambda t: t * w, v), w

  @tff.tensorflow.computation(value_type, tf.float32)
  def divide(total, total_weight):
    return tf.nest.map_structure(
        lambda t: tf.math.divide_no_nan(t, total_weight), total)

  return tff.federated_map(divide, tff.federated_sum(
      tff.federated_map(scale, (value, weight))))


def round_metrics(metrics_aggregation: Any, unfinalized: Any,
                  non_finite: Any) -> Any:
  """In a federated computation: the metrics of a TFF learning process
  (`client_work/train`, `finalizer/update_non_finite`), at SERVER."""
  return tff.federated_zip(collections.OrderedDict(
      client_work=tff.federated_zip(collections.OrderedDict(
          train=metrics_aggregation(unfinalized))),
      finalizer=tff.federated_zip(collections.OrderedDict(
          update_non_finite=tff.federated_sum(non_finite)))))

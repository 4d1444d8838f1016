"""FedNova: the clients' updates normalised by their local steps.

Wang et al. 2020, "Tackling the Objective Inconsistency Problem in
Heterogeneous Federated Optimization" (NeurIPS), as NIID-Bench runs it (Li
et al. 2022: `train_net_fednova` and the fednova branch of its
experiments.py):

  - client i takes tau_i steps of SGD with momentum rho (and weight decay,
    as configured) from the server model x, ending at y_i, and sends
    d_i = (x - y_i) / a_i with a_i = (tau_i - rho (1 - rho^tau_i) /
    (1 - rho)) / (1 - rho): the total weight its momentum steps give to
    their gradients (a_i = tau_i without momentum);
  - the server takes  x <- x - server_lr * tau_eff * sum_i p_i d_i  with
    tau_eff = sum_i p_i a_i and p_i the clients' weights normalised (their
    examples, as FedAvg and NIID-Bench weight them, or uniform); NIID-Bench's
    server_lr is 1.

Client i's update x - y_i thus counts with weight p_i tau_eff / a_i: more
than FedAvg's p_i if it took fewer steps than the clients' weighted
average, less if more; with equal step counts this is FedAvg. The steps are
those of the client's batches: NIID-Bench batches each epoch on its own
(E ceil(n/B) steps), as `--per_epoch_batches` does; the default streams the
epochs into ceil(E n/B) batches, so a small client takes fewer steps here
(README, "Training binary"). FedNova keeps no state per client, so this is
a TFF learning process.
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
from typing import Any, Callable

import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import local_training


def build_fednova(model_fn: Callable[[], Any], *, client_optimizer: Any,
                  server_optimizer: Any, client_momentum: float,
                  uniform_weighting: bool = False
                  ) -> tff.learning.templates.LearningProcess:
  """FedNova's learning process (see the module docstring);
  `client_momentum` is rho of `client_optimizer`, which a_i needs."""
  types = local_training.model_types(model_fn)
  rho = float(client_momentum)

  @tff.tensorflow.computation
  def server_init():
    return local_training.initial_server_state(model_fn, client_optimizer,
                                               server_optimizer)

  state_type = server_init.type_signature.result

  @tff.tensorflow.computation(types.weights, types.data)
  def client_update(weights, data):
    result = local_training.build_local_steps(model_fn, client_optimizer)(
        weights, data)
    tau = tf.cast(result.steps, tf.float32)
    a = (tau - rho * (1 - rho**tau) / (1 - rho)) / (1 - rho)  # tau at rho 0
    # A client without data (a = 0) sends 0, with weight 0.
    normalised = tuple(tf.math.divide_no_nan(u, a) for u in result.update)
    (normalised, a), weight, non_finite = local_training.zero_if_non_finite(
        (normalised, a), local_training.client_weight(result.num_examples,
                                                      uniform_weighting))
    return normalised, a, weight, non_finite, result.metrics

  @tff.tensorflow.computation(state_type, types.flat_trainable, tf.float32)
  def server_update(state, mean_normalised, tau_eff):
    optimizer_state, model = local_training.apply_update(
        state["model"], server_optimizer, state["optimizer"],
        tuple(tau_eff * d for d in mean_normalised))
    return collections.OrderedDict(model=model, optimizer=optimizer_state,
                                   client_hparams=state["client_hparams"])

  @tff.federated_computation
  def initialize():
    return tff.federated_eval(server_init, tff.SERVER)

  @tff.federated_computation(tff.FederatedType(state_type, tff.SERVER),
                             tff.FederatedType(types.data, tff.CLIENTS))
  def next_fn(state, data):
    normalised, a, weight, non_finite, unfinalized_metrics = (
        tff.federated_map(client_update, (
            tff.federated_broadcast(state["model"]), data)))
    new_state = tff.federated_map(server_update, (
        state, local_training.weighted_mean(normalised, weight),
        local_training.weighted_mean(a, weight)))
    return tff.learning.templates.LearningProcessOutput(
        new_state, local_training.round_metrics(
            types.metrics_aggregation, unfinalized_metrics, non_finite))

  @tff.tensorflow.computation(state_type)
  def get_model_weights(state):
    return state["model"]

  @tff.tensorflow.computation(state_type, types.weights)
  def set_model_weights(state, weights):
    return collections.OrderedDict(model=weights,
                                   optimizer=state["optimizer"],
                                   client_hparams=state["client_hparams"])

  @tff.tensorflow.computation(state_type)
  def get_hparams(state):
    return local_training.hparams(state, server_optimizer)

  return tff.learning.templates.LearningProcess(
      initialize, next_fn, get_model_weights, set_model_weights,
      get_hparams_fn=get_hparams)

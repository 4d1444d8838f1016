"""SCAFFOLD: control variates correct the clients' drift.

Karimireddy et al. 2020, "SCAFFOLD: Stochastic Controlled Averaging for
Federated Learning" (ICML), Algorithm 1 with option II, with the client step
of NIID-Bench (Li et al. 2022, `train_net_scaffold` in its experiments.py):

  - every client i keeps a control variate c_i and the server one c, both a
    tensor per trainable variable and zero at the start (NIID-Bench starts
    them all at one random model's weights: equal too, so the correction
    c - c_i is zero until a client has trained, and where every client
    trains in the first round, c after it is theirs alone either way; under
    partial participation, its c keeps a share of that start);
  - a round's client i starts from the server model x and takes K steps of
    the client optimizer (SGD with `client_lr`, momentum and weight decay as
    configured), each followed by  y <- y - client_lr * (c - c_i)  (outside
    the optimizer, so outside its momentum, as NIID-Bench does);
  - then c_i <- c_i - c + (x - y) / (K * client_lr), K counting the
    client's batches (NIID-Bench batches each epoch on its own, as
    `--per_epoch_batches` does; by default the epochs are streamed into
    batches, fewer for a small client);
  - the server applies the clients' average update x - y (weighted as FedAvg:
    by examples, or uniformly) with its optimizer (SGD with `server_lr`; 1 is
    NIID-Bench's weighted average of the client models), and sets
    c <- c + sum_i (c_i_new - c_i) / N over the round's clients, N being
    every client (the paper's |S|/N times their mean).

TFF's learning processes have no per-client state, so `ScaffoldProcess` (a
`client_state.ClientStateProcess`) keeps the control variates of all
clients in the run's state (one row per
client, N times the trainable weights: a checkpoint holds them all) and its
`next` takes the clients' positions besides their data; only the chosen
clients' rows travel to the clients, and their new values come back.
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import client_state
from tff_niid import local_training

# Keys of the state `ScaffoldProcess` works on: TFF's server state (model,
# server optimizer state, server control variate) and the clients' controls.
SERVER = "server"
CLIENT_CONTROLS = "client_controls"


def build_scaffold_iterative_process(
    model_fn: Callable[[], Any], *, client_optimizer: Any,
    server_optimizer: Any, client_lr: float, num_clients: int,
    uniform_weighting: bool = False) -> tff.templates.IterativeProcess:
  """The TFF computations of SCAFFOLD (see the module docstring).

  `next` takes (server state, client datasets, the clients' (position,
  control variate)), all but the first at CLIENTS, and returns (server
  state, metrics, the clients' (position, new control variate) at
  CLIENTS). The metrics are those of a TFF learning process:
  `client_work/train` (the model's, summed then finalized) and
  `finalizer/update_non_finite`.
  """
  types = local_training.model_types(model_fn)
  control_type = types.flat_trainable

  @tff.tensorflow.computation
  def server_init():
    return local_training.initial_server_state(
        model_fn, client_optimizer, server_optimizer,
        control=lambda trainable: tuple(tf.zeros_like(v) for v in trainable))

  state_type = server_init.type_signature.result

  @tff.tensorflow.computation(types.weights, types.data, control_type,
                              (np.int64, control_type))
  def client_update(weights, data, server_control, client):
    position, client_control = client
    shift = tuple(client_lr * (c - c_i)
                  for c, c_i in zip(server_control, client_control))
    result = local_training.build_local_steps(model_fn, client_optimizer)(
        weights, data, shift)
    # c_i_new - c_i = -c + (x - y) / (K lr); zero for a client without data.
    scale = 1.0 / (tf.cast(tf.maximum(result.steps, 1), tf.float32) *
                   client_lr)
    control_delta = tuple(
        tf.where(result.steps > 0, u * scale - c, tf.zeros_like(c))
        for u, c in zip(result.update, server_control))
    (update, control_delta), weight, non_finite = (
        local_training.zero_if_non_finite(
            (result.update, control_delta), local_training.client_weight(
                result.num_examples, uniform_weighting)))
    new_control = tuple(c_i + d for c_i, d in zip(client_control,
                                                  control_delta))
    return (update, weight, control_delta, (position, new_control),
            non_finite, result.metrics)

  @tff.tensorflow.computation(state_type, control_type, control_type)
  def server_update(state, mean_update, control_sum):
    optimizer_state, model = local_training.apply_update(
        state["model"], server_optimizer, state["optimizer"], mean_update)
    return collections.OrderedDict(
        model=model, optimizer=optimizer_state,
        client_hparams=state["client_hparams"],
        control=tuple(c + s / num_clients
                      for c, s in zip(state["control"], control_sum)))

  @tff.federated_computation
  def initialize():
    return tff.federated_eval(server_init, tff.SERVER)

  @tff.federated_computation(
      tff.FederatedType(state_type, tff.SERVER),
      tff.FederatedType(types.data, tff.CLIENTS),
      tff.FederatedType((np.int64, control_type), tff.CLIENTS))
  def next_fn(state, data, clients):
    weights = tff.federated_broadcast(state["model"])
    server_control = tff.federated_broadcast(state["control"])
    (update, weight, control_delta, new_controls, non_finite,
     unfinalized_metrics) = tff.federated_map(
         client_update, (weights, data, server_control, clients))
    new_state = tff.federated_map(server_update, (
        state, local_training.weighted_mean(update, weight),
        tff.federated_sum(control_delta)))
    return new_state, local_training.round_metrics(
        types.metrics_aggregation, unfinalized_metrics,
        non_finite), new_controls

  return tff.templates.IterativeProcess(initialize, next_fn)


class ScaffoldProcess(client_state.ClientStateProcess):
  """SCAFFOLD with every client's control variate in the state.

  The state is {"server": TFF's server state, "client_controls": one array
  per trainable variable, of shape (num_clients, *variable shape)}, numpy
  values that `tff.program.FileProgramStateManager` saves and loads. A
  client is named by its position (0..num_clients-1, the order of the
  ClientData's `client_ids`).
  """

  def __init__(self, iterative_process: tff.templates.IterativeProcess,
               num_clients: int, server_optimizer: Any):
    self._process = iterative_process
    self.num_clients = num_clients
    self._server_optimizer = server_optimizer

  def with_dataset_computation(self, dataset_computation: Any
                               ) -> "ScaffoldProcess":
    """This process with its client datasets built by `dataset_computation`
    from its arguments, on the workers
    (`tff.simulation.compose_dataset_computation_with_iterative_process`)."""
    return ScaffoldProcess(
        tff.simulation.compose_dataset_computation_with_iterative_process(
            dataset_computation, self._process), self.num_clients,
        self._server_optimizer)

  def initialize(self) -> dict[str, Any]:
    server = self._process.initialize()
    return {SERVER: server, CLIENT_CONTROLS: [
        np.zeros((self.num_clients,) + np.shape(c), np.asarray(c).dtype)
        for c in server["control"]]}

  def next(self, state: dict[str, Any], client_data: Sequence[Any],
           client_positions: Sequence[int]
           ) -> tff.learning.templates.LearningProcessOutput:
    """One round on `client_data` of the clients at `client_positions`;
    `state` is left unchanged."""
    if len(client_positions) != len(client_data):
      raise ValueError(f"{len(client_data)} clients' data but "
                       f"{len(client_positions)} positions.")
    positions = np.asarray(client_positions, dtype=np.int64)
    if len(set(positions.tolist())) != len(positions) or (
        positions.size and not 0 <= positions.min() <= positions.max() <
        self.num_clients):
      raise ValueError(f"client positions must be distinct, in [0, "
                       f"{self.num_clients}); got {list(client_positions)}.")
    controls = state[CLIENT_CONTROLS]
    server, metrics, new_controls = self._process.next(
        state[SERVER], list(client_data),
        [(p, tuple(c[p] for c in controls)) for p in positions])
    updated = [c.copy() for c in controls]
    # Each new control comes back with its client's position: TFF's
    # multi-worker execution returns CLIENTS values in another order than
    # it was given them (seen with --workers=local:2).
    for position, control in new_controls:
      for rows, value in zip(updated, control):
        rows[position] = value
    return tff.learning.templates.LearningProcessOutput(
        state={SERVER: server, CLIENT_CONTROLS: updated}, metrics=metrics)

  def get_model_weights(self, state: dict[str, Any]
                        ) -> tff.learning.models.ModelWeights:
    return state[SERVER]["model"]

  def get_hparams(self, state: dict[str, Any]) -> Any:
    """The client and server optimizers' hyperparameters (as a TFF learning
    process names them), which `state` records."""
    return local_training.hparams(state[SERVER], self._server_optimizer)

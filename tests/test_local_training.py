"""`local_training.weighted_mean`, the server average of the processes
tff_niid builds (FedNova, SCAFFOLD): a round whose clients have no examples
leaves the model as it was, where TFF's weighted `federated_mean` (0 / 0)
made it NaN; with examples it computes what that mean did, to the bit."""

import hand_written
import numpy as np
import pytest
import tensorflow_federated as tff

from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import local_training
from tff_niid import models

HP = algorithms.Hyperparameters(client_lr=0.05, client_momentum=0.9,
                                server_lr=1.0)
MODEL_FN = models.build_model_fn(hand_written.MODEL, clientdata.BATCH_SPEC)


@pytest.mark.parametrize("algorithm", ["fednova", "scaffold"])
def test_a_round_of_clients_without_data_leaves_the_model_as_it_was(
    mnist, algorithm):
  x, y = hand_written.clients(mnist)[0]
  empty = [hand_written.dataset(x[:0], y[:0]) for _ in range(2)]
  process = algorithms.build_process(algorithm, MODEL_FN, HP, num_clients=2)
  state = process.initialize()
  if algorithm == "scaffold":
    new_state = process.next(state, empty, [0, 1]).state
  else:
    new_state = process.next(state, empty).state
  for before, after in zip(process.get_model_weights(state).trainable,
                           process.get_model_weights(new_state).trainable):
    np.testing.assert_array_equal(after, before)


def test_it_is_federated_mean_where_a_weight_is_positive():
  clients = tff.FederatedType(np.float32, tff.CLIENTS)

  @tff.federated_computation(clients, clients)
  def both(value, weight):
    return (local_training.weighted_mean(value, weight),
            tff.federated_mean(value, weight))

  values = [0.1, 0.7, 1 / 3]
  for weights in ([3.0, 5.0, 7.0], [0.0, 2.5, 0.0]):
    ours, tffs = both(values, weights)
    assert np.float32(ours).tobytes() == np.float32(tffs).tobytes()
  assert both(values, [0.0, 0.0, 0.0])[0] == 0.0

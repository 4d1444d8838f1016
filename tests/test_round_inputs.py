"""Rounds whose client datasets are built on the worker from ids: the same
weights as datasets sent from the driver and as FedAvg in plain TF, and only
ids and weights on the wire."""

import os

import numpy as np
import pytest
import tensorflow_federated as tff

from benchmarks import plain_fedavg
from benchmarks import wire
from tff_niid import clientdata
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training

LR = 0.05


def _process(model_name="2nn"):
  return training.build_fedavg(
      models.build_model_fn(model_name, clientdata.BATCH_SPEC), client_lr=LR)


def _weights(rounds, state):
  return [np.asarray(w) for w in
          rounds.process.get_model_weights(state).trainable]


def _run(rounds, client_ids, num_rounds):
  """(final state, per-round metrics) of `num_rounds` rounds."""
  state, metrics = rounds.process.initialize(), []
  for round_num in range(1, num_rounds + 1):
    seeds = [training._shuffle_seed(7, round_num, int(c)) for c in client_ids]  # pylint: disable=protected-access
    output = rounds.process.next(state, rounds(client_ids, seeds))
    state = output.state
    metrics.append(output.metrics["client_work"])
  return state, metrics


@pytest.fixture(scope="module", name="noisy_client_data")
def fixture_noisy_client_data(mnist, tmp_path_factory):
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=0.5, seed=0)
  part = part.replace(noisy_labels=(mnist.train_labels + 1) % 10,
                      feature_noise=np.linspace(0.0, 0.5, 20))
  return clientdata.to_client_data(
      part, mnist.train_images, mnist.train_labels, feature_noise_seed=3,
      worker_data_dir=str(tmp_path_factory.mktemp("arrays")))


@pytest.mark.parametrize("per_epoch_batches", [False, True])
def test_datasets_on_the_worker_give_the_driver_rounds_bit_for_bit(
    noisy_client_data, per_epoch_batches):
  as_values = tff.simulation.datasets.ClientData.from_clients_and_tf_fn(
      noisy_client_data.client_ids, noisy_client_data.serializable_dataset_fn)
  args = dict(batch_size=30, local_epochs=2, max_examples=100,
              per_epoch_batches=per_epoch_batches)
  on_worker = clientdata.RoundInputs(_process(), noisy_client_data, **args)
  from_driver = clientdata.RoundInputs(_process(), as_values, **args)
  clients = ["3", "8", "11", "19"]
  state_w, metrics_w = _run(on_worker, clients, 2)
  state_d, metrics_d = _run(from_driver, clients, 2)
  assert metrics_w == metrics_d
  assert all(np.array_equal(a, b) for a, b in
             zip(_weights(on_worker, state_w), _weights(from_driver, state_d)))


def test_a_round_sends_ids_and_weights_only(noisy_client_data):
  rounds = clientdata.RoundInputs(_process(), noisy_client_data, batch_size=20)
  state = rounds.process.initialize()
  clients = ["0", "5", "9"]
  with wire.recorded_requests() as requests:
    rounds.process.next(state, rounds(clients, [1, 2, 3]))
  values = [r.value for r in requests
            if r.value.WhichOneof("value") != "computation"]
  assert values and not any("sequence" in wire.value_kinds(v) for v in values)
  (federated,) = [v for v in values if v.WhichOneof("value") == "federated"
                  and len(v.federated.value) == len(clients)]
  fields = list(noisy_client_data.client_input_spec)
  assert fields == ["indices", "shuffle_seed", "labels", "noise_std",
                    "noise_seed"]
  for client, value in zip(clients, federated.federated.value):
    assert len(value.struct.element) == len(fields)
    indices = tff.framework.deserialize_value(
        value.struct.element[0].value)[0]
    np.testing.assert_array_equal(
        indices, noisy_client_data.client_input(client, 0)["indices"])
  examples = sum(len(noisy_client_data.client_input(c, 0)["indices"])
                 for c in clients)
  # Indices and labels (8 bytes each per example) and small scalars; the
  # examples themselves would be 3,136 bytes each.
  assert wire.sent_bytes(requests)["values"] < (
      16 * examples + 4 * 199_210 + 10_000)


def test_a_worker_without_the_arrays_names_the_missing_file(mnist, tmp_path):
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels,
                                 worker_data_dir=str(tmp_path / "arrays"))
  rounds = clientdata.RoundInputs(_process("logreg"), cd, batch_size=50)
  x_path, _ = cd.export_arrays()
  os.remove(x_path)
  with pytest.raises(Exception, match=os.path.basename(x_path)):
    rounds.process.next(rounds.process.initialize(), rounds(["1"], [0]))


def test_same_weights_as_fedavg_in_plain_tensorflow(mnist, tmp_path):
  part = partition_lib.dirichlet(mnist.train_labels, 50, alpha=0.5, seed=2)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels,
                                 worker_data_dir=str(tmp_path))
  rounds = clientdata.RoundInputs(_process(), cd, batch_size=10)
  clients, seeds = ["4", "17", "30"], [5, 6, 7]
  state = rounds.process.initialize()
  plain = plain_fedavg.PlainFedAvg("2nn", client_lr=LR)
  for _ in range(2):
    # From the same weights each round. The two sides run the same steps but
    # not always the same kernels (TFF's compiled ones are fused), so a step
    # can differ in its last bits, and SGD can amplify that over a round's
    # steps: on an AVX2-only CPU (AMD EPYC) the second round ended 1e-3 apart
    # (1.7% of the round's largest weight change) from the same start, the
    # first 1.3e-7 apart; other CPUs gave < 1e-6 for both. A wrong step,
    # batch, shuffle or weighting moves the weights by a sizeable part of the
    # round's change.
    before = _weights(rounds, state)
    plain.weights = before
    state = rounds.process.next(state, rounds(clients, seeds)).state
    plain.round([clientdata.local_training_batches(
        cd.create_tf_dataset_for_client(c), batch_size=10, seed=s)
                 for c, s in zip(clients, seeds)])
    after = _weights(rounds, state)
    change = max(float(np.abs(a - b).max()) for a, b in zip(after, before))
    diff = max(float(np.abs(a - b).max())
               for a, b in zip(after, plain.weights))
    assert change > 1e-2 and diff < 0.05 * change, (diff, change)

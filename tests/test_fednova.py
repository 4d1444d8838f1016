"""FedNova: two rounds on real MNIST clients of unequal sizes equal a
hand-written FedNova (NIID-Bench's `train_net_fednova` loop and server step),
and with equal step counts it is FedAvg."""

import dataclasses

import hand_written
import numpy as np
import pytest

from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training

HP = algorithms.Hyperparameters(client_lr=0.05, client_momentum=0.9,
                                client_weight_decay=1e-3, server_lr=1.0)
MODEL_FN = models.build_model_fn(hand_written.MODEL, clientdata.BATCH_SPEC)
ROUNDS = ((0, 1, 2), (2, 0))


@pytest.fixture(scope="module")
def clients(mnist):
  return hand_written.clients(mnist)


def _run(process, clients, rounds):
  state = process.initialize()
  initial = [np.array(w) for w in process.get_model_weights(state).trainable]
  for chosen in rounds:
    state = process.next(
        state, [hand_written.dataset(*clients[k]) for k in chosen]).state
  return initial, [np.array(w)
                   for w in process.get_model_weights(state).trainable]


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_two_rounds_equal_a_hand_written_fednova(clients, momentum):
  hp = dataclasses.replace(HP, client_momentum=momentum)
  initial, got = _run(algorithms.build_process("fednova", MODEL_FN, hp),
                      clients, ROUNDS)
  local_sgd = hand_written.LocalSGD(hp)
  rho = hp.client_momentum
  x = [np.array(w, np.float64) for w in initial]
  for chosen in ROUNDS:
    normalised, a, n = [], [], []
    for k in chosen:
      y, tau = local_sgd(x, clients[k])
      a_k = (tau - rho * (1 - rho**tau) / (1 - rho)) / (1 - rho)  # tau at 0
      normalised.append([(xi - yi) / a_k for xi, yi in zip(x, y)])
      a.append(a_k)
      n.append(len(clients[k][1]))
    p = np.array(n) / sum(n)
    tau_eff = float(p @ np.array(a))
    x = [x[i] - tau_eff * sum(p_k * d[i] for p_k, d in zip(p, normalised))
         for i in range(len(x))]
  for ours, theirs in zip(got, x):
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-6)
  # Unequal step counts: FedNova moved elsewhere than FedAvg.
  _, fedavg = _run(algorithms.build_process("fedavg", MODEL_FN, hp), clients,
                   ROUNDS)
  assert max(np.abs(f - g).max() for f, g in zip(fedavg, got)) > 1e-3


def test_equal_step_counts_make_it_fedavg(clients):
  same_size = [(x[:48], y[:48]) for x, y in clients]
  _, nova = _run(algorithms.build_process("fednova", MODEL_FN, HP),
                 same_size, ROUNDS)
  _, fedavg = _run(algorithms.build_process("fedavg", MODEL_FN, HP),
                   same_size, ROUNDS)
  for a, b in zip(nova, fedavg):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_resume_with_another_learning_rate_is_refused(mnist, tmp_path):
  part = partition_lib.iid(mnist.train_labels[:600], 3, seed=0)
  data = clientdata.to_client_data(part, mnist.train_images[:600],
                                   mnist.train_labels[:600])
  config = training.LoopConfig(rounds=1, clients_per_round=3, batch_size=20)
  training.train(algorithms.build_process("fednova", MODEL_FN, HP), data,
                 config, output_dir=str(tmp_path), log=lambda line: None)
  with pytest.raises(training.RunMismatchError,
                     match="client_work/momentum 0.9->0.5"):
    training.train(algorithms.build_process(
        "fednova", MODEL_FN, dataclasses.replace(HP, client_momentum=0.5)),
                   data, dataclasses.replace(config, rounds=2),
                   output_dir=str(tmp_path), log=lambda line: None)

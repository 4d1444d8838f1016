"""SCAFFOLD: two rounds on real MNIST clients equal a hand-written SCAFFOLD
(NIID-Bench's `train_net_scaffold` loop and server step), and a run resumed
from its checkpoint, client control variates included, equals an
uninterrupted one."""

import dataclasses

import hand_written
import numpy as np
import pytest

from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import results
from tff_niid import scaffold
from tff_niid import training
from tff_niid import workers

HP = algorithms.Hyperparameters(client_lr=0.05, client_momentum=0.9,
                                client_weight_decay=1e-3, server_lr=1.0)
MODEL_FN = models.build_model_fn(hand_written.MODEL, clientdata.BATCH_SPEC)
# Client 1 trains in both rounds, so round 2 uses its control variate from
# round 1.
ROUNDS = ((0, 1), (2, 1))


@pytest.fixture(scope="module")
def clients(mnist):
  return hand_written.clients(mnist)


def _hand_written(initial, clients):
  """(model, server control, client controls) after ROUNDS: NIID-Bench's
  client loop, each step followed by y -= lr (c - c_i), its control update,
  the server's weighted average of the models and c += sum(dc) / N."""
  local_sgd = hand_written.LocalSGD(HP)
  lr = HP.client_lr
  x = [np.array(w, np.float64) for w in initial]
  c = [np.zeros_like(w) for w in x]
  c_local = [[np.zeros_like(w) for w in x] for _ in clients]
  for chosen in ROUNDS:
    models_, weights, control_deltas = [], [], []
    for k in chosen:
      y, steps = local_sgd(x, clients[k], shift=[
          lr * (ci - cl) for ci, cl in zip(c, c_local[k])])
      new = [c_local[k][i] - c[i] + (x[i] - y[i]) / (steps * lr)
             for i in range(len(x))]
      control_deltas.append([n - o for n, o in zip(new, c_local[k])])
      c_local[k] = new
      models_.append(y)
      weights.append(len(clients[k][1]))
    total = sum(weights)
    x = [sum(w * m[i] for w, m in zip(weights, models_)) / total
         for i in range(len(x))]
    c = [c[i] + sum(d[i] for d in control_deltas) / len(clients)
         for i in range(len(x))]
  return x, c, c_local


def test_two_rounds_equal_a_hand_written_scaffold(clients):
  process = algorithms.build_process("scaffold", MODEL_FN, HP,
                                     num_clients=len(clients))
  state = process.initialize()
  initial = [np.array(w) for w in process.get_model_weights(state).trainable]
  for chosen in ROUNDS:
    output = process.next(
        state, [hand_written.dataset(*clients[k]) for k in chosen],
        list(chosen))
    state = output.state
  assert output.metrics["client_work"]["train"]["num_examples"] == (
      hand_written.EPOCHS * (hand_written.SIZES[2] + hand_written.SIZES[1]))
  x, c, c_local = _hand_written(initial, clients)
  got = [np.array(w) for w in process.get_model_weights(state).trainable]
  for ours, theirs in zip(got, x):
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=2e-6)
  for ours, theirs in zip(state[scaffold.SERVER]["control"], c):
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=2e-4)
  for k in range(len(clients)):
    for rows, theirs in zip(state[scaffold.CLIENT_CONTROLS], c_local[k]):
      np.testing.assert_allclose(rows[k], theirs, rtol=1e-3, atol=2e-4)
  # The controls moved: the comparison is not between zeros.
  assert all(np.abs(rows[1]).max() > 1e-3
             for rows in state[scaffold.CLIENT_CONTROLS])


def test_next_leaves_its_state_alone_and_checks_positions(clients):
  process = algorithms.build_process("scaffold", MODEL_FN, HP,
                                     num_clients=len(clients))
  state = process.initialize()
  process.next(state, [hand_written.dataset(*clients[0])], [0])
  assert not any(rows.any() for rows in state[scaffold.CLIENT_CONTROLS])
  with pytest.raises(ValueError, match="distinct"):
    process.next(state, [hand_written.dataset(*clients[0])] * 2, [0, 0])
  with pytest.raises(ValueError, match="in \\[0, 3\\)"):
    process.next(state, [hand_written.dataset(*clients[0])], [3])
  with pytest.raises(ValueError, match="num_clients"):
    algorithms.build_process("scaffold", MODEL_FN, HP)


def test_resumed_run_equals_an_uninterrupted_one(mnist, tmp_path):
  part = partition_lib.dirichlet(mnist.train_labels[:3000], 6, alpha=0.5,
                                 seed=0)
  data = clientdata.to_client_data(part, mnist.train_images[:3000],
                                   mnist.train_labels[:3000])
  process = algorithms.build_process("scaffold", MODEL_FN, HP,
                                     num_clients=len(part))

  def run(directory, rounds):
    config = training.LoopConfig(rounds=rounds, clients_per_round=3,
                                 batch_size=20, max_examples_per_client=100,
                                 seed=3)
    training.train(process, data, config, output_dir=str(directory),
                   log=lambda line: None)
    return training.load_checkpoint(str(directory), process)[1]

  whole = run(tmp_path / "whole", 4)
  run(tmp_path / "resumed", 2)
  resumed = run(tmp_path / "resumed", 4)
  for a, b in zip(whole[scaffold.CLIENT_CONTROLS],
                  resumed[scaffold.CLIENT_CONTROLS]):
    assert np.array_equal(a, b)
  assert all(np.array_equal(a, b) for a, b in zip(
      process.get_model_weights(whole).trainable,
      process.get_model_weights(resumed).trainable))
  losses = [r["train_loss"] for r in results.read_metrics(
      str(tmp_path / "whole"))]
  assert losses == [r["train_loss"] for r in results.read_metrics(
      str(tmp_path / "resumed"))]
  assert whole[scaffold.CLIENT_CONTROLS][0].any()
  # The state records the learning rates: another one is another run.
  with pytest.raises(training.RunMismatchError,
                     match="client_work/learning_rate 0.05->0.1"):
    training.train(algorithms.build_process(
        "scaffold", MODEL_FN, dataclasses.replace(HP, client_lr=0.1),
        num_clients=len(part)), data, training.LoopConfig(
            rounds=5, clients_per_round=3, batch_size=20,
            max_examples_per_client=100, seed=3),
                   output_dir=str(tmp_path / "whole"))
  with pytest.raises(ValueError, match="control variates of 5 clients"):
    training.train(algorithms.build_process(
        "scaffold", MODEL_FN, HP, num_clients=5), data, training.LoopConfig(
            rounds=1, clients_per_round=3, batch_size=20),
                   output_dir=str(tmp_path / "other"))


def test_two_workers_give_each_client_its_own_control_variate(mnist):
  # TFF's two-worker execution returns CLIENTS values in another order than
  # it takes them; each control must still land in its own client's row.
  part = partition_lib.iid(mnist.train_labels[:2000], 6, seed=0)
  data = clientdata.to_client_data(part, mnist.train_images[:2000],
                                   mnist.train_labels[:2000])

  def two_rounds():
    # The second round takes the first's controls: each client's dataset
    # must meet its own control too.
    rounds = clientdata.RoundInputs(
        algorithms.build_process("scaffold", MODEL_FN, HP,
                                 num_clients=len(part)),
        data, batch_size=20)
    state = rounds.process.initialize()
    for _ in range(2):
      state = rounds.next(
          state, rounds(data.client_ids, list(range(len(part)))),
          list(range(len(part)))).state
    return state[scaffold.CLIENT_CONTROLS] + list(
        rounds.process.get_model_weights(state).trainable)

  single = two_rounds()
  addresses, started = workers.parse_workers_flag("local:2")
  try:
    # Both orders of the workers: which one's clients come back first
    # depends on it.
    for order in (addresses, addresses[::-1]):
      with workers.use_workers(order):
        distributed = two_rounds()
      for a, b in zip(single, distributed):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  finally:
    for worker in started:
      worker.stop()

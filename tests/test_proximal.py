"""Client-optimizer terms. FedProx's proximal gradient, checked by hand and on
one real MNIST client against FedAvg and against TFF's build_weighted_fed_prox;
weight decay checked by hand against PyTorch's SGD(momentum, weight_decay).
"""

import os
import subprocess
import sys

import numpy as np
import processes
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import models
from tff_niid import proximal


def _step(optimizer, state, weights, gradients):
  state, weights = optimizer.next(state, weights, gradients)
  return state, [w.numpy() for w in weights]


def test_steps_follow_the_proximal_gradient_from_the_first_weights():
  lr, mu = 0.1, 0.5
  opt = proximal.build_proximal(tff.learning.optimizers.build_sgdm(lr), mu)
  w0 = (tf.constant([1.0, -2.0]),)
  g1, g2 = (tf.constant([0.5, 0.5]),), (tf.constant([-1.0, 2.0]),)
  state = opt.initialize(tf.nest.map_structure(tf.TensorSpec.from_tensor, w0))
  state, w1 = _step(opt, state, w0, g1)
  # First step: w == w^t, so the proximal term is zero.
  np.testing.assert_allclose(w1[0], [0.95, -2.05])
  state, w2 = _step(opt, state, (tf.constant(w1[0]),), g2)
  expected = w1[0] - lr * (g2[0].numpy() + mu * (w1[0] - w0[0].numpy()))
  np.testing.assert_allclose(w2[0], expected, rtol=1e-6)


def test_hparams_include_proximal_strength_and_round_trip():
  opt = proximal.build_proximal(
      tff.learning.optimizers.build_sgdm(0.01, momentum=0.9), 0.01)
  state = opt.initialize(tf.TensorSpec((), tf.float32))
  hparams = opt.get_hparams(state)
  assert dict(hparams) == pytest.approx(
      dict(learning_rate=0.01, momentum=0.9, proximal_strength=0.01))
  hparams.update(learning_rate=0.1, proximal_strength=1.0)
  assert dict(opt.get_hparams(opt.set_hparams(state, hparams))) == (
      pytest.approx(dict(learning_rate=0.1, momentum=0.9,
                         proximal_strength=1.0)))


def test_negative_proximal_strength_is_rejected():
  with pytest.raises(ValueError, match="proximal_strength"):
    proximal.build_proximal(tff.learning.optimizers.build_sgdm(0.1), -0.1)


def test_weight_decay_steps_like_torch_sgd_with_momentum():
  # torch.optim.SGD(lr, momentum, weight_decay): d = g + wd * w;
  # buf = momentum * buf + d; w -= lr * buf.
  lr, momentum, wd = 0.1, 0.9, 0.01
  opt = proximal.build_weight_decay(
      tff.learning.optimizers.build_sgdm(lr, momentum=momentum), wd)
  w = np.array([1.0, -2.0], np.float32)
  state = opt.initialize((tf.TensorSpec((2,), tf.float32),))
  buf = np.zeros(2, np.float32)
  g: list[float] | np.ndarray  # each list made an array below
  for g in ([0.5, 0.5], [-1.0, 2.0], [0.25, 0.0]):
    g = np.array(g, np.float32)
    state, (got,) = _step(opt, state, (tf.constant(w),), (tf.constant(g),))
    buf = momentum * buf + (g + wd * w)
    w = w - lr * buf
    np.testing.assert_allclose(got, w, rtol=1e-6)
  assert dict(opt.get_hparams(state)) == pytest.approx(
      dict(learning_rate=lr, momentum=momentum, weight_decay=wd))


def test_weight_decay_composes_with_the_proximal_term():
  opt = proximal.build_proximal(proximal.build_weight_decay(
      tff.learning.optimizers.build_sgdm(0.01, momentum=0.9), 1e-5), 0.01)
  state = opt.initialize(tf.TensorSpec((), tf.float32))
  hparams = opt.get_hparams(state)
  assert dict(hparams) == pytest.approx(dict(
      learning_rate=0.01, momentum=0.9, weight_decay=1e-5,
      proximal_strength=0.01))
  hparams.update(weight_decay=1e-4)
  assert opt.get_hparams(opt.set_hparams(state, hparams))["weight_decay"] == (
      pytest.approx(1e-4))
  with pytest.raises(ValueError, match="weight_decay"):
    proximal.build_weight_decay(tff.learning.optimizers.build_sgdm(0.1), -1)


@pytest.fixture(scope="module")
def one_client(mnist):
  return clientdata.test_dataset(mnist.train_images[:600],
                                 mnist.train_labels[:600], batch_size=20)


MODEL_FN = models.build_model_fn("2nn", clientdata.BATCH_SPEC)


def _fedprox_norm(mu, data):
  hp = algorithms.Hyperparameters(client_lr=0.01, client_momentum=0.9,
                                  proximal_strength=mu)
  return proximal.first_round_update_norm(
      algorithms.build_process("fedprox", MODEL_FN, hp), [data])


def test_fedprox_update_shrinks_with_mu_and_equals_fedavg_at_zero(one_client):
  hp = algorithms.Hyperparameters(client_lr=0.01, client_momentum=0.9)
  fedavg = proximal.first_round_update_norm(
      algorithms.build_process("fedavg", MODEL_FN, hp), [one_client])
  norms = [_fedprox_norm(mu, one_client) for mu in (0.0, 0.1, 1.0)]
  assert norms[0] == fedavg
  assert norms[0] > norms[1] > norms[2], norms


def test_tff_fed_prox_still_pushes_away_from_the_global_model(one_client):
  """Why fedprox does not use TFF's builder: its update grows with mu. If this
  fails, TFF fixed the sign; build_weighted_fed_prox can be used again."""
  norms = [proximal.first_round_update_norm(
      tff.learning.algorithms.build_weighted_fed_prox(
          MODEL_FN, mu, tff.learning.optimizers.build_sgdm(0.01, momentum=0.9)),
      [one_client]) for mu in (0.1, 1.0)]
  assert norms[1] > norms[0] > _fedprox_norm(0.0, one_client), norms


def test_sign_check_binary_prints_the_table_and_leaves_no_process():
  env, marker = processes.marked_env()
  script = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "experiments", "fedprox_sign.py")
  out = subprocess.run([sys.executable, script, "--num_samples=100",
                        "--mus=1"], env=env, capture_output=True, text=True,
                       timeout=300, check=True).stdout
  assert "| 0 (FedAvg) | — |" in out and "| 1 |" in out, out
  assert not processes.survivors(marker)

"""Client-optimizer terms: FedProx's proximal gradient and weight decay.

FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks",
Algorithm 2) has client k minimise F_k(w) + (mu/2) ||w - w^t||^2 from the
global model w^t, i.e. every local step follows the gradient

    g + mu * (w - w^t),

which pulls the local model back towards w^t. The authors' code does this in
the optimizer (a perturbed gradient descent holding w^t); so does this module,
wrapping a `tff.learning.optimizers.Optimizer` so that `fedprox` is weighted
FedAvg with this client optimizer.

Why not `tff.learning.algorithms.build_weighted_fed_prox`: in TFF 0.87 its
client work adds mu * (w^t - w) to the gradient, the opposite sign, so local
models are pushed away from w^t and the update grows with mu (measured with
`first_round_update_norm` by experiments/fedprox_sign.py and
tests/test_proximal.py, which fails once TFF changes this).

w^t is taken from the weights at the optimizer's first step: TFF's client work
(`model_delta_client_work`) initialises the client optimizer at the start of
every local update, so those are the broadcast global weights.

`build_weight_decay` adds lambda * w to every local gradient before the inner
optimizer's step: PyTorch's `SGD(weight_decay=lambda)` (coupled L2), which
NIID-Bench's `--reg` sets on every client (Li et al. 2022).
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import runtime

PROXIMAL_STRENGTH_KEY = "proximal_strength"
WEIGHT_DECAY_KEY = "weight_decay"


class _GradientTerm(tff.learning.optimizers.Optimizer):
  """`inner` stepped along g + a term whose strength is a hyperparameter."""

  key: ClassVar[str]  # the strength's name in the state and the hparams

  def __init__(self, inner, strength):
    self._inner = inner
    self._strength = strength

  def initialize(self, specs):
    return collections.OrderedDict(
        [("inner", self._inner.initialize(specs)), (self.key, self._strength),
         *self._extra_state(specs).items()])

  def _extra_state(self, specs):
    del specs
    return {}

  def _step(self, state, weights, gradients, **extra_state):
    inner_state, weights = self._inner.next(state["inner"], weights, gradients)
    return collections.OrderedDict(
        [("inner", inner_state), (self.key, state[self.key]),
         *extra_state.items()]), weights

  def get_hparams(self, state):
    hparams = collections.OrderedDict(self._inner.get_hparams(state["inner"]))
    hparams[self.key] = state[self.key]
    return hparams

  def set_hparams(self, state, hparams):
    inner_hparams = collections.OrderedDict(
        (k, v) for k, v in hparams.items() if k != self.key)
    state = collections.OrderedDict(state)
    state["inner"] = self._inner.set_hparams(state["inner"], inner_hparams)
    state[self.key] = hparams[self.key]
    return state


class _Proximal(_GradientTerm):
  """`inner` applied to the FedProx gradient; see `build_proximal`."""

  key = PROXIMAL_STRENGTH_KEY

  def _extra_state(self, specs):
    return collections.OrderedDict(
        anchor=tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype),
                                     specs),
        anchored=tf.constant(False))

  def next(self, state, weights, gradients):
    anchor = tf.nest.map_structure(
        lambda a, w: tf.where(state["anchored"], a, w), state["anchor"],
        weights)
    mu = state[self.key]
    gradients = tf.nest.map_structure(
        lambda g, w, a: g + tf.cast(mu, g.dtype) * (w - a), gradients,
        weights, anchor)
    return self._step(state, weights, gradients, anchor=anchor,
                      anchored=tf.constant(True))


class _WeightDecay(_GradientTerm):
  """`inner` applied to g + lambda * w; see `build_weight_decay`."""

  key = WEIGHT_DECAY_KEY

  def next(self, state, weights, gradients):
    decay = state[self.key]
    gradients = tf.nest.map_structure(
        lambda g, w: g + tf.cast(decay, g.dtype) * w, gradients, weights)
    return self._step(state, weights, gradients)


def build_proximal(inner: tff.learning.optimizers.Optimizer,
                   proximal_strength: float
                   ) -> tff.learning.optimizers.Optimizer:
  """A client optimizer that steps `inner` along g + mu (w - w^t).

  Args:
    inner: a `tff.learning.optimizers.Optimizer` (e.g. `build_sgdm`).
    proximal_strength: mu >= 0; 0 gives exactly `inner`'s steps.

  Returns:
    A `tff.learning.optimizers.Optimizer` for one local update: w^t is the
    weights passed to its first `next` after `initialize`.
  """
  if proximal_strength < 0:
    raise ValueError(
        f"proximal_strength must be >= 0; got {proximal_strength}.")
  return _Proximal(inner, proximal_strength)


def build_weight_decay(inner: tff.learning.optimizers.Optimizer,
                       weight_decay: float
                       ) -> tff.learning.optimizers.Optimizer:
  """A client optimizer that steps `inner` along g + lambda * w.

  Args:
    inner: a `tff.learning.optimizers.Optimizer` (e.g. `build_sgdm`).
    weight_decay: lambda >= 0 (NIID-Bench: 1e-5).

  Returns:
    A `tff.learning.optimizers.Optimizer`.
  """
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0; got {weight_decay}.")
  return _WeightDecay(inner, weight_decay)


def first_round_update_norm(process: Any, client_datasets: Any) -> float:
  """||w^1 - w^0||: how far one round of `process` (a TFF LearningProcess)
  moves the global model from its initial weights on `client_datasets`
  (on a loopback-only worker unless a context was chosen, as
  `algorithms.build_process`)."""
  runtime.ensure_local_worker()
  state = process.initialize()
  before = process.get_model_weights(state).trainable
  state = process.next(state, client_datasets).state
  after = process.get_model_weights(state).trainable
  return float(np.sqrt(sum(np.sum((np.asarray(a) - np.asarray(b)) ** 2)
                           for a, b in zip(after, before))))

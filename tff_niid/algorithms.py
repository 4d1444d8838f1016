"""The FedAvg family as TFF learning processes, chosen by name.

Every algorithm is one call into `tff.learning.algorithms` with optimizers
from `tff.learning.optimizers` and, for DP, an aggregator from
`tff.aggregators`; this module only maps names and hyperparameters onto them
and validates combinations.

  fedavg       weighted FedAvg, McMahan et al. 2017
  fedsgd       FedSGD (one gradient per client over its data), McMahan et al.
  fedprox      FedProx, Li et al. 2020 ("Federated Optimization in
               Heterogeneous Networks"), `proximal_strength` = mu: weighted
               FedAvg with the client optimizer of `tff_niid.proximal`
               (TFF's build_weighted_fed_prox has the proximal term's sign
               reversed, see that module)
  fedavgm      FedAvg with server momentum, Hsu et al. 2019
  fedadam      FedAdam, Reddi et al. 2021 ("Adaptive Federated Optimization")
  fedyogi      FedYogi, Reddi et al. 2021
  dp_fedavg    DP-FedAvg with fixed clipping and Gaussian noise, McMahan et
               al. 2018 ("Learning Differentially Private Recurrent Language
               Models"); unweighted, fixed clients per round
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import dataclasses
from typing import Any, Callable, Optional

import tensorflow_federated as tff

from tff_niid import flag_use
from tff_niid import proximal

# The names, kept TF-free in `flag_use` with the hyperparameters each uses.
ALGORITHMS = flag_use.ALGORITHMS


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
  """What the algorithms need besides the model. Unused fields are ignored."""
  client_lr: float = 0.05
  client_momentum: float = 0.0
  server_lr: float = 1.0
  server_momentum: float = 0.9  # fedavgm
  adaptive_beta1: float = 0.9  # fedadam / fedyogi
  adaptive_beta2: float = 0.99
  adaptive_epsilon: float = 1e-3  # "tau" of Reddi et al.
  proximal_strength: float = 0.01  # fedprox
  client_weight_decay: float = 0.0  # coupled L2 on clients (NIID-Bench --reg)
  client_weighting: str = "num_examples"  # or "uniform"
  dp_noise_multiplier: Optional[float] = None
  dp_clip: Optional[float] = None
  clients_per_round: int = 10


def default_client_weighting(algorithm: str) -> str:
  """"uniform" for dp_fedavg (whose privacy analysis bounds each client's
  contribution), else "num_examples"."""
  return "uniform" if algorithm == "dp_fedavg" else "num_examples"


def validate(algorithm: str, hp: Hyperparameters) -> None:
  """Raises ValueError for unknown names and incompatible combinations."""
  if algorithm not in ALGORITHMS:
    raise ValueError(
        f"unknown algorithm {algorithm!r}; choose one of {list(ALGORITHMS)}.")
  if hp.client_weighting not in ("num_examples", "uniform"):
    raise ValueError("client_weighting must be 'num_examples' or 'uniform'; "
                     f"got {hp.client_weighting!r}.")
  dp_flags = hp.dp_noise_multiplier is not None or hp.dp_clip is not None
  if algorithm == "dp_fedavg":
    if hp.dp_noise_multiplier is None or hp.dp_clip is None:
      raise ValueError("dp_fedavg needs --dp_noise_multiplier and --dp_clip.")
    if hp.dp_noise_multiplier < 0 or hp.dp_clip <= 0:
      raise ValueError("dp_noise_multiplier must be >= 0 and dp_clip > 0.")
    if hp.client_weighting != "uniform":
      raise ValueError(
          "dp_fedavg aggregates client updates unweighted (each client's "
          "contribution is clipped to dp_clip); weighting by num_examples would "
          "break the privacy analysis. Use --client_weighting=uniform.")
  elif dp_flags:
    raise ValueError(
        f"--dp_noise_multiplier/--dp_clip only apply to --algorithm=dp_fedavg, "
        f"not {algorithm!r}.")
  # Momentum 1 never forgets a step: the velocity sums every update.
  for name, users in flag_use.HYPERPARAMETER_USERS.items():
    if name.endswith("momentum") and algorithm in users and not (
        0 <= getattr(hp, name) < 1):
      raise ValueError(f"{name} must be in [0, 1); got {getattr(hp, name)}.")
  if algorithm == "fedprox" and hp.proximal_strength < 0:
    raise ValueError("proximal_strength must be >= 0.")
  if hp.client_weight_decay < 0:
    raise ValueError("client_weight_decay must be >= 0.")
  if algorithm == "fedsgd" and hp.client_weight_decay:
    raise ValueError("fedsgd has no client optimizer: client_weight_decay "
                     "must be 0.")
  if algorithm == "fedsgd" and hp.client_weighting != "num_examples":
    raise ValueError("fedsgd averages gradients weighted by num_examples.")


def _server_optimizer(algorithm: str, hp: Hyperparameters) -> Any:
  opt = tff.learning.optimizers
  if algorithm == "fedavgm":
    return opt.build_sgdm(learning_rate=hp.server_lr,
                          momentum=hp.server_momentum)
  if algorithm == "fedadam":
    return opt.build_adam(learning_rate=hp.server_lr, beta_1=hp.adaptive_beta1,
                          beta_2=hp.adaptive_beta2,
                          epsilon=hp.adaptive_epsilon)
  if algorithm == "fedyogi":
    return opt.build_yogi(learning_rate=hp.server_lr, beta_1=hp.adaptive_beta1,
                          beta_2=hp.adaptive_beta2,
                          epsilon=hp.adaptive_epsilon)
  return opt.build_sgdm(learning_rate=hp.server_lr)


def build_process(algorithm: str, model_fn: Callable[[], Any],
                  hp: Hyperparameters) -> Any:
  """The `tff.learning.templates.LearningProcess` for `algorithm`."""
  validate(algorithm, hp)
  # The iterator loop was measured faster than TFF's default DATASET_REDUCE
  # on CPU (BUILD_NOTES.md).
  loop = tff.learning.LoopImplementation.DATASET_ITERATOR
  server_optimizer = _server_optimizer(algorithm, hp)
  if algorithm == "fedsgd":
    return tff.learning.algorithms.build_fed_sgd(
        model_fn, server_optimizer_fn=server_optimizer,
        loop_implementation=loop)
  client_optimizer = tff.learning.optimizers.build_sgdm(
      learning_rate=hp.client_lr, momentum=hp.client_momentum or None)
  if hp.client_weight_decay:
    client_optimizer = proximal.build_weight_decay(client_optimizer,
                                                   hp.client_weight_decay)
  if algorithm == "dp_fedavg":
    aggregator = tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed(
        noise_multiplier=hp.dp_noise_multiplier,
        clients_per_round=hp.clients_per_round, clip=hp.dp_clip)
    return tff.learning.algorithms.build_unweighted_fed_avg(
        model_fn, client_optimizer_fn=client_optimizer,
        server_optimizer_fn=server_optimizer, model_aggregator=aggregator,
        loop_implementation=loop)
  weighting = (tff.learning.ClientWeighting.NUM_EXAMPLES
               if hp.client_weighting == "num_examples"
               else tff.learning.ClientWeighting.UNIFORM)
  if algorithm == "fedprox":
    client_optimizer = proximal.build_proximal(client_optimizer,
                                               hp.proximal_strength)
  return tff.learning.algorithms.build_weighted_fed_avg(
      model_fn, client_optimizer_fn=client_optimizer,
      server_optimizer_fn=server_optimizer, client_weighting=weighting,
      loop_implementation=loop)


class PrivacyAccountant:
  """(epsilon, delta) of DP-FedAvg after each round, by RDP accounting.

  Each round samples `clients_per_round` of `num_clients` clients without
  replacement and adds Gaussian noise of std noise_multiplier * clip to the sum
  of clipped updates: a `SampledWithoutReplacementDpEvent` over a
  `GaussianDpEvent`, composed once per round, under the replace-one
  neighbouring relation (user-level DP), accounted with
  `dp_accounting.rdp.RdpAccountant`.
  """

  def __init__(self, noise_multiplier: float, num_clients: int,
               clients_per_round: int, delta: float):
    import dp_accounting  # pylint: disable=g-import-not-at-top
    self._dp = dp_accounting
    self._event = dp_accounting.SampledWithoutReplacementDpEvent(
        num_clients, clients_per_round,
        dp_accounting.GaussianDpEvent(noise_multiplier))
    self.delta = delta

  def epsilon(self, rounds: int) -> float:
    accountant = self._dp.rdp.RdpAccountant(
        neighboring_relation=self._dp.NeighboringRelation.REPLACE_ONE)
    accountant.compose(self._event, rounds)
    return accountant.get_epsilon(self.delta)

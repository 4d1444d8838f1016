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
  scaffold     SCAFFOLD, Karimireddy et al. 2020, with NIID-Bench's client
               step (`tff_niid.scaffold`): not a TFF learning process, as
               its clients keep state; needs `num_clients`
  fednova      FedNova, Wang et al. 2020 ("Tackling the Objective
               Inconsistency Problem in Heterogeneous Federated
               Optimization"), as NIID-Bench runs it (`tff_niid.fednova`)

scaffold and fednova are built here, not by TFF (which has neither), from
the client steps of `tff_niid.local_training`.

fedadam and fedyogi are TFF's `build_adam` / `build_yogi` on the server,
which differ from Reddi et al.'s Algorithm 2 in two ways: the step carries
Adam's bias correction, lr * sqrt(1 - beta2^t) / (1 - beta1^t) at round t,
and the second moment starts at 0 (Adam) or 1e-6 (Yogi) rather than tau^2.
As in the paper, `adaptive_epsilon` (tau) is added outside the square root.

Adding an algorithm (each step is checked by a test):
  1. its name in `flag_use.ALGORITHMS`, and in `flag_use.
     HYPERPARAMETER_USERS` for each hyperparameter only some algorithms use
     (train.py then warns when another algorithm is given it);
  2. its server optimizer in `_SERVER_OPTIMIZERS` below (a name without one
     is refused, never trained as FedAvg); a client-side change (another
     local objective or optimizer) in `_client_optimizer`; other
     aggregation than weighted FedAvg's, its branch in `build_process`;
     state kept per client (as scaffold's): a `client_state.
     ClientStateProcess` from that branch, which the training loop passes
     each round's client positions;
  3. a new hyperparameter: a `Hyperparameters` field and a train.py flag of
     the same name (`experiment.ExperimentConfig.from_flag_values` matches
     them by name), its range in `validate` and in the flag's bounds or
     validator (a decay in [0, 1): `flag_use.DECAYS`, whose validator
     train.py registers); the algorithms that use it in `flag_use.
     HYPERPARAMETER_USERS`, unless all do;
  4. its settings in tests/test_algorithms.py (`SETTINGS`: two rounds must
     lower the loss), its line in this docstring's list above, and the list
     of algorithms in README's "Training binary".
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import dataclasses
from typing import Any, Callable, Optional

import tensorflow_federated as tff

from tff_niid import fednova
from tff_niid import flag_use
from tff_niid import proximal
from tff_niid import runtime
from tff_niid import scaffold

# The names, kept TF-free in `flag_use` with the hyperparameters each uses.
ALGORITHMS = flag_use.ALGORITHMS


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
  """What the algorithms need besides the model. Unused fields are ignored."""
  client_lr: float = 0.05
  client_momentum: float = 0.0
  server_lr: float = 1.0
  server_momentum: float = 0.9  # fedavgm
  adaptive_beta1: float = 0.9  # fedadam / fedyogi: first-moment decay
  adaptive_beta2: float = 0.99  # second-moment decay
  adaptive_epsilon: float = 1e-3  # "tau" of Reddi et al.
  proximal_strength: float = 0.01  # fedprox
  client_weight_decay: float = 0.0  # coupled L2 on clients (NIID-Bench --reg)
  client_weighting: str = "num_examples"  # or "uniform"
  dp_noise_multiplier: Optional[float] = None
  dp_clip: Optional[float] = None
  # dp_fedavg: the clients per round its noise is scaled for; set it to the
  # loop's `LoopConfig.clients_per_round` (the binaries do).
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
  # Momentum (or a moment's decay) 1 never forgets a step: the velocity
  # sums every update.
  for name in flag_use.DECAYS:
    if algorithm in flag_use.HYPERPARAMETER_USERS[name] and not (
        0 <= getattr(hp, name) < 1):
      raise ValueError(f"{name} must be in [0, 1); got {getattr(hp, name)}.")
  if algorithm == "scaffold" and hp.client_lr <= 0:
    raise ValueError("scaffold divides by client_lr: it must be > 0.")
  if algorithm == "fedprox" and hp.proximal_strength < 0:
    raise ValueError("proximal_strength must be >= 0.")
  if hp.client_weight_decay < 0:
    raise ValueError("client_weight_decay must be >= 0.")
  if algorithm == "fedsgd" and hp.client_weight_decay:
    raise ValueError("fedsgd has no client optimizer: client_weight_decay "
                     "must be 0.")
  if algorithm == "fedsgd" and hp.client_weighting != "num_examples":
    raise ValueError("fedsgd averages gradients weighted by num_examples.")


def _server_sgd(hp: Hyperparameters) -> Any:
  return tff.learning.optimizers.build_sgdm(learning_rate=hp.server_lr)


# Each algorithm's server optimizer, by name: every name of ALGORITHMS has
# one (tests/test_algorithms.py), so a new name cannot fall back to FedAvg's.
_SERVER_OPTIMIZERS: dict[str, Callable[[Hyperparameters], Any]] = {
    "fedavg": _server_sgd,
    "fedsgd": _server_sgd,
    "fedprox": _server_sgd,
    "dp_fedavg": _server_sgd,
    "scaffold": _server_sgd,
    "fednova": _server_sgd,
    "fedavgm": lambda hp: tff.learning.optimizers.build_sgdm(
        learning_rate=hp.server_lr, momentum=hp.server_momentum),
    "fedadam": lambda hp: tff.learning.optimizers.build_adam(
        learning_rate=hp.server_lr, beta_1=hp.adaptive_beta1,
        beta_2=hp.adaptive_beta2, epsilon=hp.adaptive_epsilon),
    "fedyogi": lambda hp: tff.learning.optimizers.build_yogi(
        learning_rate=hp.server_lr, beta_1=hp.adaptive_beta1,
        beta_2=hp.adaptive_beta2, epsilon=hp.adaptive_epsilon),
}


def _server_optimizer(algorithm: str, hp: Hyperparameters) -> Any:
  if algorithm not in _SERVER_OPTIMIZERS:
    raise ValueError(
        f"algorithm {algorithm!r} is listed in flag_use.ALGORITHMS but has "
        "no server optimizer in algorithms._SERVER_OPTIMIZERS.")
  return _SERVER_OPTIMIZERS[algorithm](hp)


def _client_optimizer(algorithm: str, hp: Hyperparameters) -> Any:
  """The clients' local optimizer: SGD (`client_lr`, `client_momentum`),
  with coupled weight decay (`client_weight_decay`) and, for fedprox, the
  proximal term (`proximal.build_proximal`). A client-side variant of an
  algorithm wraps it here."""
  client_optimizer = tff.learning.optimizers.build_sgdm(
      learning_rate=hp.client_lr, momentum=hp.client_momentum or None)
  if hp.client_weight_decay:
    client_optimizer = proximal.build_weight_decay(client_optimizer,
                                                   hp.client_weight_decay)
  if algorithm == "fedprox":
    client_optimizer = proximal.build_proximal(client_optimizer,
                                               hp.proximal_strength)
  return client_optimizer


def build_process(algorithm: str, model_fn: Callable[[], Any],
                  hp: Hyperparameters, *,
                  num_clients: Optional[int] = None) -> Any:
  """The `tff.learning.templates.LearningProcess` for `algorithm`; for
  scaffold, a `scaffold.ScaffoldProcess` keeping the control variates of
  `num_clients` clients (`training.train` runs either).

  Unless a context was chosen (`runtime.use_local_worker`,
  `workers.use_workers`, one of your own), makes the process's computations
  (`initialize()` and `next()` too, called outside `training.train`) run on
  a loopback-only worker: TFF's own default context would start one
  listening on every interface (`runtime.ensure_local_worker`). Choose a
  context before building: one chosen after leaves that worker idle until
  the process ends.
  """
  validate(algorithm, hp)
  runtime.ensure_local_worker()
  # The iterator loop was measured faster than TFF's default DATASET_REDUCE
  # on CPU (BUILD_NOTES.md).
  loop = tff.learning.LoopImplementation.DATASET_ITERATOR
  server_optimizer = _server_optimizer(algorithm, hp)
  if algorithm == "fedsgd":
    return tff.learning.algorithms.build_fed_sgd(
        model_fn, server_optimizer_fn=server_optimizer,
        loop_implementation=loop)
  client_optimizer = _client_optimizer(algorithm, hp)
  if algorithm == "scaffold":
    if num_clients is None or num_clients < 1:
      raise ValueError("scaffold keeps a control variate per client: give "
                       f"num_clients >= 1 (got {num_clients}).")
    return scaffold.ScaffoldProcess(
        scaffold.build_scaffold_iterative_process(
            model_fn, client_optimizer=client_optimizer,
            server_optimizer=server_optimizer, client_lr=hp.client_lr,
            num_clients=num_clients,
            uniform_weighting=hp.client_weighting == "uniform"),
        num_clients, server_optimizer)
  if algorithm == "fednova":
    return fednova.build_fednova(
        model_fn, client_optimizer=client_optimizer,
        server_optimizer=server_optimizer,
        client_momentum=hp.client_momentum,
        uniform_weighting=hp.client_weighting == "uniform")
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

"""Every algorithm trains on a small real non-IID MNIST partition."""

import dataclasses
import pathlib
import re
from typing import Any

import dp_accounting
import numpy as np
import pytest

from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import flag_use
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import results
from tff_niid import training

# Any: each algorithm's values are of several types (Hyperparameters').
SETTINGS: dict[str, dict[str, Any]] = {
    "fedavg": dict(client_lr=0.05),
    "fedsgd": dict(server_lr=0.5),
    "fedprox": dict(client_lr=0.05, proximal_strength=0.1),
    "fedavgm": dict(client_lr=0.05, server_lr=0.5, server_momentum=0.9),
    "fedadam": dict(client_lr=0.05, server_lr=0.01),
    "fedyogi": dict(client_lr=0.05, server_lr=0.01),
    "dp_fedavg": dict(client_lr=0.05, client_weighting="uniform",
                      dp_noise_multiplier=0.1, dp_clip=5.0),
    "scaffold": dict(client_lr=0.05),
    "fednova": dict(client_lr=0.05, client_momentum=0.9),
}


@pytest.fixture(scope="module")
def client_data(mnist):
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=1.0, seed=0)
  return clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)


@pytest.mark.parametrize("algorithm", algorithms.ALGORITHMS)
def test_two_rounds_decrease_loss(algorithm, client_data, tmp_path):
  hp = algorithms.Hyperparameters(clients_per_round=10, **SETTINGS[algorithm])
  process = algorithms.build_process(
      algorithm, models.build_model_fn("2nn", clientdata.BATCH_SPEC), hp,
      num_clients=len(client_data.client_ids))
  config = training.LoopConfig(rounds=3, clients_per_round=10, batch_size=20,
                               max_examples_per_client=200, seed=1)
  training.train(process, client_data, config, output_dir=str(tmp_path),
                 log=lambda line: None)
  losses = [r["train_loss"] for r in results.read_metrics(str(tmp_path))]
  assert len(losses) == 3 and losses[2] < losses[0], losses


@pytest.mark.parametrize("algorithm,changes,message", [
    ("dp_fedavg", dict(client_weighting="num_examples", dp_noise_multiplier=1.0,
                       dp_clip=1.0), "unweighted"),
    ("dp_fedavg", dict(client_weighting="uniform"), "dp_noise_multiplier"),
    ("fedavg", dict(dp_noise_multiplier=1.0), "only apply"),
    ("fedprox", dict(proximal_strength=-1.0), "proximal_strength"),
    ("fedavgm", dict(server_momentum=1.0),
     r"server_momentum must be in \[0, 1\)"),
    ("fedprox", dict(client_momentum=-0.1), "client_momentum must be in"),
    ("fedadam", dict(adaptive_beta1=1.0), r"adaptive_beta1 must be in \[0, 1\)"),
    ("fedyogi", dict(adaptive_beta2=1.5), r"adaptive_beta2 must be in \[0, 1\)"),
    ("scaffold", dict(client_lr=0.0), "client_lr"),
    ("sgd", dict(), "unknown algorithm"),
])
def test_incompatible_settings_are_rejected(algorithm, changes, message):
  with pytest.raises(ValueError, match=message):
    algorithms.validate(algorithm, algorithms.Hyperparameters(**changes))


def test_dp_epsilon_grows_and_matches_dp_accounting():
  accountant = algorithms.PrivacyAccountant(1.1, 1000, 50, 1e-5)
  eps = [accountant.epsilon(r) for r in (1, 2, 5, 10, 50)]
  assert all(a < b for a, b in zip(eps, eps[1:]))
  reference = dp_accounting.rdp.RdpAccountant(
      neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
  reference.compose(dp_accounting.SampledWithoutReplacementDpEvent(
      1000, 50, dp_accounting.GaussianDpEvent(1.1)), 10)
  assert eps[3] == pytest.approx(reference.get_epsilon(1e-5), rel=1e-12)
  assert np.isfinite(eps).all()


# The Hyperparameters fields train.py need not warn about: those every
# algorithm uses or refuses (`validate`: fedsgd's client_weight_decay), and
# dp_fedavg's (refused with another algorithm); the others are in
# flag_use.HYPERPARAMETER_USERS.
USED_OR_REFUSED_FIELDS = {"server_lr", "client_weight_decay",
                          "client_weighting"}
DP_FIELDS = {"dp_noise_multiplier", "dp_clip", "clients_per_round"}


def test_the_hyperparameters_only_some_algorithms_use_are_fields():
  # flag_use (TF-free, read by train.py and grid.py) names them by field.
  fields = {f.name for f in dataclasses.fields(algorithms.Hyperparameters)}
  assert set(flag_use.HYPERPARAMETER_USERS) <= fields
  for users in flag_use.HYPERPARAMETER_USERS.values():
    assert set(users) <= set(algorithms.ALGORITHMS)
  unsorted = (fields - set(flag_use.HYPERPARAMETER_USERS) -
              USED_OR_REFUSED_FIELDS - DP_FIELDS)
  assert not unsorted, (
      f"say which algorithms use {sorted(unsorted)}: in flag_use."
      "HYPERPARAMETER_USERS (train.py then warns when another algorithm is "
      "given it), or, if every algorithm uses it or refuses it, in this "
      "file's USED_OR_REFUSED_FIELDS")


def test_every_algorithm_is_built_by_name_and_trained_in_these_tests():
  # A name added to flag_use.ALGORITHMS alone is refused, not trained as
  # FedAvg; SETTINGS above must train it too.
  names = set(algorithms.ALGORITHMS)
  built = set(algorithms._SERVER_OPTIMIZERS)  # pylint: disable=protected-access
  assert built == names, (
      f"algorithms._SERVER_OPTIMIZERS lacks {sorted(names - built)} / has "
      f"{sorted(built - names)} not in flag_use.ALGORITHMS")
  assert set(SETTINGS) == names, (
      f"give {sorted(names - set(SETTINGS))} settings in this file's SETTINGS"
      f" (or drop {sorted(set(SETTINGS) - names)})")
  assert set(flag_use.DECAYS) <= set(flag_use.HYPERPARAMETER_USERS)


def test_every_hyperparameter_some_algorithms_use_has_a_train_flag():
  source = (pathlib.Path(__file__).parent.parent / "experiments" /
            "train.py").read_text()
  defined = set(re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', source))
  assert set(flag_use.HYPERPARAMETER_USERS) <= defined

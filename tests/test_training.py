"""Models and a short real FedAvg run through TFF."""

import csv

import numpy as np
import pytest

from tff_niid import clientdata
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training


@pytest.mark.parametrize("name,params", [("cnn", 1_663_370), ("2nn", 199_210),
                                         ("logreg", 7_850)])
def test_parameter_counts(name, params):
  assert models.create_keras_model(name).count_params() == params


def test_fedavg_two_rounds_loss_decreases(mnist, tmp_path):
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=1.0, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC), client_lr=0.05)
  evaluator = training.CentralEvaluator("2nn", mnist.test_images,
                                        mnist.test_labels)
  lines = []
  summary = training.train(
      process, cd, rounds=2, clients_per_round=10, batch_size=20,
      local_epochs=1, seed=0, output_dir=str(tmp_path), evaluator=evaluator,
      max_examples_per_client=300, log=lines.append)
  with open(tmp_path / "metrics.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["round"] for r in rows] == ["1", "2"]
  losses = [float(r["train_loss"]) for r in rows]
  test_losses = [float(r["test_loss"]) for r in rows]
  print(rows)
  assert losses[1] < losses[0] and test_losses[1] < test_losses[0]
  assert summary["final_test_accuracy"] > 0.6
  assert len(lines) == 2 and lines[1].startswith("round 2/2")
  assert np.isfinite(summary["mean_round_seconds"])


def test_rejects_too_many_clients_per_round(mnist, tmp_path):
  part = partition_lib.iid(mnist.train_labels, 5, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  process = training.build_fedavg(
      models.build_model_fn("logreg", clientdata.BATCH_SPEC), client_lr=0.1)
  with pytest.raises(ValueError, match="clients_per_round"):
    training.train(process, cd, rounds=1, clients_per_round=6, batch_size=10,
                   local_epochs=1, seed=0, output_dir=str(tmp_path))

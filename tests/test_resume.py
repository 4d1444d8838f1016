"""Checkpoint fallback at library level (SIGKILL + resume: test_train_binary)."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

import files
from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import experiment
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import results
from tff_niid import rundir
from tff_niid import training

def _final_weights(out, process):
  version, state = training.load_checkpoint(out, process)
  return version, [np.asarray(w) for w in
                   process.get_model_weights(state).trainable]


def _rows_without_timing(out):
  return [{k: v for k, v in row.items() if k != "round_seconds"}
          for row in results.read_metrics(out)]


def resumed_as_straight(tmp_path, spec, *, num_clients, clients_per_round):
  """Runs a small logreg experiment on `spec` for 2 rounds straight, and in
  another directory 1 round then resumed to 2; asserts both give the same
  metrics and final weights. Returns (straight run directory, the process
  that loads its checkpoints)."""
  def run(run_dir, rounds):
    experiment.run(experiment.ExperimentConfig(
        output_dir=str(run_dir), num_clients=num_clients, model="logreg",
        partition_spec=spec,
        loop=training.LoopConfig(rounds=rounds,
                                 clients_per_round=clients_per_round,
                                 batch_size=10, max_examples_per_client=50)),
                   flagfile=f"--rounds={rounds}\n", log=lambda line: None)
  straight, resumed = tmp_path / "straight", tmp_path / "resumed"
  run(straight, 2)
  run(resumed, 1)
  run(resumed, 2)
  assert _rows_without_timing(str(resumed)) == _rows_without_timing(
      str(straight))
  process = algorithms.build_process(
      "fedavg", models.build_model_fn("logreg", clientdata.BATCH_SPEC, seed=0),
      algorithms.Hyperparameters())
  _, straight_weights = _final_weights(str(straight), process)
  _, resumed_weights = _final_weights(str(resumed), process)
  assert all(np.array_equal(a, b)
             for a, b in zip(straight_weights, resumed_weights))
  return straight, process


@pytest.fixture(scope="module")
def setup(mnist):
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=0.5, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  make_process = lambda: training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC, seed=0),
      client_lr=0.05)
  return cd, make_process


def _run(setup, out, rounds, log=lambda line: None):
  cd, make_process = setup
  config = training.LoopConfig(rounds=rounds, clients_per_round=5,
                               batch_size=20, max_examples_per_client=100,
                               seed=0)
  return training.train(make_process(), cd, config, output_dir=out, log=log)


def test_corrupt_latest_checkpoint_falls_back(setup, tmp_path):
  reference, damaged = str(tmp_path / "ref"), str(tmp_path / "dmg")
  _run(setup, reference, 4)
  _run(setup, damaged, 3)
  # Damage round 3's checkpoint the way a kill during saving would.
  ckpt = os.path.join(damaged, rundir.CHECKPOINT_DIR, "round_3")
  for root, _, files in os.walk(ckpt):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"\0garbage")
  lines: list[str] = []
  _run(setup, damaged, 4, log=lines.append)
  assert any("WARNING: checkpoint of round 3 is unreadable" in l for l in lines)
  assert any("resuming after round 2" in l for l in lines)
  assert _rows_without_timing(damaged) == _rows_without_timing(reference)
  _, make_process = setup
  _, w_ref = _final_weights(reference, make_process())
  _, w_dmg = _final_weights(damaged, make_process())
  assert all(np.array_equal(a, b) for a, b in zip(w_ref, w_dmg))


def test_all_checkpoints_unreadable_is_an_error(setup, tmp_path):
  out = str(tmp_path / "run")
  _run(setup, out, 2)
  for name in os.listdir(os.path.join(out, rundir.CHECKPOINT_DIR)):
    shutil.rmtree(os.path.join(out, rundir.CHECKPOINT_DIR, name))
    os.makedirs(os.path.join(out, rundir.CHECKPOINT_DIR, name))
  with pytest.raises(RuntimeError, match="can be read"):
    _run(setup, out, 3)


def test_another_process_moves_no_checkpoint_aside(setup, tmp_path):
  # Resuming with another model once renamed every good checkpoint
  # "unreadable", and the right process then started over from round 0.
  cd, _ = setup
  out = str(tmp_path / "run")
  _run(setup, out, 2)
  checkpoints = sorted(os.listdir(os.path.join(out, rundir.CHECKPOINT_DIR)))
  cnn = training.build_fedavg(
      models.build_model_fn("cnn", clientdata.BATCH_SPEC, seed=0),
      client_lr=0.05)
  config = training.LoopConfig(rounds=3, clients_per_round=5, batch_size=20,
                               max_examples_per_client=100, seed=0)
  with pytest.raises(RuntimeError, match=r"none of the checkpoints \(rounds "
                     r"\[1, 2\]\) .* can be read by this process .* resume "
                     "it with that one"):
    training.train(cnn, cd, config, output_dir=out)
  assert sorted(os.listdir(os.path.join(out, rundir.CHECKPOINT_DIR))) == (
      checkpoints)
  lines: list[str] = []
  _run(setup, out, 3, log=lines.append)
  assert any("resuming after round 2" in line for line in lines)


def test_a_run_with_other_settings_is_not_resumed(setup, mnist, tmp_path):
  # train() resumed any run it found: another learning rate, batch size or
  # partition went on from its checkpoint into the same metrics.csv.
  cd, make_process = setup
  out = str(tmp_path / "run")
  _run(setup, out, 1)
  with open(os.path.join(out, rundir.TRAINING_IDENTITY_FILE)) as f:
    assert json.load(f)["loop"]["batch_size"] == 20
  config = training.LoopConfig(rounds=2, clients_per_round=5, batch_size=20,
                               max_examples_per_client=100, seed=0)
  other_lr = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC, seed=0),
      client_lr=0.1)
  other_part = partition_lib.iid(mnist.train_labels, 20, seed=1)
  other_cd = clientdata.to_client_data(other_part, mnist.train_images,
                                       mnist.train_labels)
  before = files.snapshot(tmp_path)
  for process, client_data, loop, unlike in (
      (other_lr, cd, config,
       "hyperparameters.client_work/learning_rate 0.05->0.1"),
      (make_process(), other_cd, config, "client_data.partition_sha256 "),
      (make_process(), cd, dataclasses.replace(config, batch_size=10),
       "loop.batch_size 20->10"),
      (make_process(), cd, dataclasses.replace(config, seed=1),
       "loop.seed 0->1")):
    with pytest.raises(training.RunMismatchError) as e:
      training.train(process, client_data, loop, output_dir=out)
    assert str(e.value).startswith(
        f"{out} holds checkpoints of a run with other settings ({unlike}")
    assert str(e.value).endswith(
        "resuming would mix two runs. Use another output_dir, or delete this "
        "one to start over.")
    assert files.snapshot(tmp_path) == before
  # What may change: more rounds, evaluation and saving. A run from before
  # the identity file (the grids' cells) resumes, and has it recorded; a
  # numpy seed is its value.
  identity = json.loads(open(os.path.join(
      out, rundir.TRAINING_IDENTITY_FILE)).read())
  os.remove(os.path.join(out, rundir.TRAINING_IDENTITY_FILE))
  lines: list[str] = []
  training.train(make_process(), cd, dataclasses.replace(
      config, eval_every=2, checkpoint_every=2, seed=np.int64(0)),
                 output_dir=out, log=lines.append)
  assert any("resuming after round 1" in line for line in lines)
  assert json.loads(open(os.path.join(
      out, rundir.TRAINING_IDENTITY_FILE)).read()) == identity

"""experiments/niid_bench_torch.py (NIID-Bench's FedAvg loop in PyTorch) on
real MNIST: its output reads as a train.py run, a second process is kept out
of a live run's directory, a run killed after a round resumes to the same
numbers, and experiments/client_update_check.py finds TFF's local update
equal to its `local_train`'s, for FedAvg's, FedProx's and SCAFFOLD's
clients, and TFF's FedNova and SCAFFOLD rounds of two clients equal to
NIID-Bench's. Runs under .venv-torch's Python (`make torch-env`, which
`make test` runs; TFF_NIID_TORCH_PYTHON chooses another); skipped where
there is none."""

import csv
import os
import signal
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from tff_niid import results

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PYTHON = os.environ.get("TFF_NIID_TORCH_PYTHON",
                         os.path.join(_REPO, ".venv-torch", "bin", "python"))
_SCRIPT = os.path.join(_REPO, "experiments", "niid_bench_torch.py")


# A Python that is there but lacks torch fails the tests rather than skip them.
pytestmark = pytest.mark.skipif(
    not os.path.exists(_PYTHON),
    reason=f"no {_PYTHON}: `make torch-env` builds it")


def _command(root, name, local_epochs=1):
  return [_PYTHON, _SCRIPT, "--partition_spec=classes(k=1)", "--seed=3",
          "--rounds=2", f"--local_epochs={local_epochs}",
          f"--root_output_dir={root}", f"--experiment_name={name}"]


def _kill_after_round_1(command, env):
  """Runs `command` until round 1 is saved, checks that a second start in the
  same directory is refused meanwhile, then SIGKILLs the first."""
  process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
  assert process.stdout is not None  # stdout=PIPE
  for line in process.stdout:
    if line.startswith("round 1/2"):  # printed once round 1 is saved
      second = subprocess.run(command, env=env, capture_output=True,
                              text=True, check=False)
      assert second.returncode != 0
      assert f"in use by another process (pid {process.pid})" in second.stderr
      process.send_signal(signal.SIGKILL)
      break
  process.wait()
  assert process.returncode == -signal.SIGKILL


def _accuracies(run_dir):
  with open(os.path.join(run_dir, "metrics.csv")) as f:
    return [(row["round"], row["test_accuracy"], row["test_loss"])
            for row in csv.DictReader(f)]


def test_output_reads_as_a_run_and_a_killed_run_resumes_identically(
    tmp_path):
  env = dict(os.environ, PYTHONPATH=_REPO)
  whole = subprocess.run(_command(tmp_path, "whole"), env=env,
                         capture_output=True, text=True, check=False)
  assert whole.returncode == 0, whole.stderr[-3000:]
  run = results.read_run(str(tmp_path / "whole"))
  assert results.finished(run)
  assert [int(r["round"]) for r in run["metrics"]] == [1, 2]
  assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in run["metrics"])

  _kill_after_round_1(_command(tmp_path, "killed"), env)
  other = subprocess.run(_command(tmp_path, "killed", local_epochs=2),
                         env=env, capture_output=True, text=True, check=False)
  assert other.returncode != 0
  assert "holds a run with other flags" in other.stderr
  again = subprocess.run(_command(tmp_path, "killed"), env=env,
                         capture_output=True, text=True, check=False)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "resumed after round 1" in again.stdout
  assert _accuracies(tmp_path / "killed") == _accuracies(tmp_path / "whole")


def _client_update_check(*extra_flags):
  """client_update_check.py on 300 random samples of a #C=2 client (of
  each of a round's two clients of the partition `extra_flags` may give),
  two epochs (10 steps): {(row name, steps): (relative distance,
  rounding)}."""
  check = subprocess.run(
      [sys.executable, os.path.join(_REPO, "experiments",
                                    "client_update_check.py"),
       "--partition_spec=classes(k=2)", "--max_examples=300",
       "--local_epochs=2", f"--torch_python={_PYTHON}", *extra_flags],
      capture_output=True, text=True, check=False)
  assert check.returncode == 0, check.stderr[-3000:]
  assert "(300 samples" in check.stdout
  rows = {}
  for line in check.stdout.splitlines():
    cells = [c.strip() for c in line.strip("|").split("|")]
    if line.startswith("| ") and cells[1].isdigit():  # a comparison row
      rows[(cells[0], int(cells[1]))] = (float(cells[4]), cells[5])
  return rows


def _assert_same_update_to_float_rounding(rows):
  same = {steps: values for (name, steps), values in rows.items()
          if name == "TFF vs PyTorch, same batches"}
  assert list(same) == [1, 5, 10]
  # TFF against PyTorch; PyTorch in float32 against float64 (rounding of
  # the float32 weights themselves, relative to a small update: larger).
  assert all(relative < 1e-5 and float(rounding) < 1e-4
             for relative, rounding in same.values())
  assert rows[("TFF vs TFF, another shuffle", 10)][0] > 1e-4


def test_tff_and_pytorch_compute_the_same_client_update():
  """From the same weights over the same batches, TFF's FedAvg client and
  NIID-Bench's `train_net` agree to float rounding at every horizon, while
  another shuffle of the same round moves the weights measurably: the check
  tells the two apart."""
  rows = _client_update_check()
  _assert_same_update_to_float_rounding(rows)
  assert not any("proximal" in name for name, _ in rows)


def test_tff_fedprox_and_pytorch_compute_the_same_client_update():
  """tff_niid's FedProx client (its own proximal optimizer) and NIID-Bench's
  `train_net_fedprox` agree to float rounding, while the same PyTorch client
  without the proximal term is measurably elsewhere: the term is there, with
  NIID-Bench's sign and strength."""
  rows = _client_update_check("--fedprox_mu=1")
  _assert_same_update_to_float_rounding(rows)
  assert rows[("PyTorch without the proximal term (FedAvg's client) vs TFF, "
               "same batches", 10)][0] > 1e-3


def test_tff_scaffold_and_pytorch_compute_the_same_client_update():
  """tff_niid's SCAFFOLD client, from random control variates, and
  NIID-Bench's `train_net_scaffold` agree to float rounding, on the new
  weights and on the new client and server controls, while the same PyTorch
  client without the correction is measurably elsewhere."""
  rows = _client_update_check("--algorithm=scaffold")
  _assert_same_update_to_float_rounding(rows)
  assert rows[("PyTorch without the correction (FedAvg's client) vs TFF, "
               "same batches", 10)][0] > 1e-3
  controls = {name: values for (name, steps), values in rows.items()
              if "new control" in name}
  assert len(controls) == 2
  assert all(relative < 1e-5 and float(rounding) < 1e-4
             for relative, rounding in controls.values())


def _round_of_two(*flags):
  """`_client_update_check` of a round of two clients of different sizes
  (300 and 16 samples: 10 and 2 steps) of a quantity-skew partition, after
  asserting that TFF's and PyTorch's new global models agree to float
  rounding."""
  rows = _client_update_check(
      *flags, "--partition_spec=quantity(alpha=0.5, min_size=10, "
      "min_size_policy=resample)")
  relative, rounding = rows[("TFF vs PyTorch, same batches", 10)]
  assert relative < 1e-5 and float(rounding) < 1e-4
  return rows


def test_tff_fednova_and_pytorch_compute_the_same_round():
  """A FedNova round of two clients: tff_niid's FedNova and NIID-Bench's
  `train_net_fednova` with its server step give the same new global model
  to float rounding, while FedAvg's server step over the same PyTorch
  clients is measurably elsewhere: the normalisation is there."""
  rows = _round_of_two("--algorithm=fednova")
  assert rows[("PyTorch with FedAvg's server step (the models' mean by "
               "samples) vs TFF, same batches", 10)][0] > 1e-3


def test_tff_scaffold_and_pytorch_compute_the_same_round_of_two():
  """A SCAFFOLD round of two clients, each from its own random c_i:
  tff_niid's SCAFFOLD and NIID-Bench's `train_net_scaffold` with its server
  step give the same new global model and the same new controls (both
  clients' c_i, and c from both their updates) to float rounding, while the
  same PyTorch round without the correction is measurably elsewhere."""
  # The round's clients in the other order than their positions: each
  # client's c_i must be set and read at its own position.
  rows = _round_of_two("--algorithm=scaffold", "--client=1",
                       "--second_client=0")
  assert rows[("PyTorch without the correction (FedAvg's round) vs TFF, "
               "same batches", 10)][0] > 1e-3
  controls = {name: values for (name, steps), values in rows.items()
              if "new control" in name}
  assert sorted(controls) == [
      "client 0's new control c_i, TFF vs PyTorch (update column: from its "
      "start)",
      "client 1's new control c_i, TFF vs PyTorch (update column: from its "
      "start)",
      "the server's new control c, TFF vs PyTorch (update column: from its "
      "start)"]
  assert all(relative < 1e-5 and float(rounding) < 1e-4
             for relative, rounding in controls.values())


@pytest.mark.parametrize("flags, message", [
    (["--algorithm=scaffold", "--fedprox_mu=0.01"], "leave --fedprox_mu at 0"),
    (["--algorithm=fednova", "--fedprox_mu=0.01"], "leave --fedprox_mu at 0"),
    (["--second_client=3"], "give it with --algorithm=scaffold or fednova"),
])
def test_flags_of_another_algorithm_are_refused(flags, message):
  check = subprocess.run(
      [sys.executable, os.path.join(_REPO, "experiments",
                                    "client_update_check.py"), *flags],
      capture_output=True, text=True, check=False)
  assert check.returncode != 0
  assert message in check.stderr


def test_a_python_without_torch_is_refused_before_training():
  check = subprocess.run(
      [sys.executable, os.path.join(_REPO, "experiments",
                                    "client_update_check.py"),
       f"--torch_python={sys.executable}"],
      capture_output=True, text=True, check=False)
  assert check.returncode != 0
  assert "cannot import torch and absl" in check.stderr


@pytest.mark.parametrize("script,python,flag", [
    ("niid_bench_torch.py", _PYTHON, "--root_output_dir={tmp}"),
    ("client_update_check.py", sys.executable, f"--torch_python={_PYTHON}"),
])
def test_rotated_clients_are_refused(script, python, flag, tmp_path):
  # Neither loop rotates images: it would check another experiment.
  run = subprocess.run(
      [python, os.path.join(_REPO, "experiments", script),
       "--partition_spec=iid+rotate", flag.format(tmp=tmp_path)],
      env=dict(os.environ, PYTHONPATH=_REPO), capture_output=True, text=True,
      check=False)
  assert run.returncode != 0
  assert "rotations are not supported here" in run.stderr, run.stderr


@pytest.mark.parametrize("algorithm, controls, message", [
    ("fedsgd", False, "'fedsgd': not one of"),
    ("scaffold", True, "SCAFFOLD needs c and every client's c_i"),
])
def test_the_replay_refuses_what_it_would_not_compute(algorithm, controls,
                                                      message, tmp_path):
  """An algorithm the replay has no server step for, or SCAFFOLD without
  a client's control (c given, c_i not), is refused, not replayed as
  FedAvg."""
  weights = [np.zeros((2, 2), np.float32)]
  # Typed Any: numpy's stub reads a **dict[str, ndarray] as possibly holding
  # savez's `allow_pickle`.
  arrays: dict[str, Any] = {
      "weights_0": weights[0], "x_0": np.zeros((1, 28, 28, 1), np.float32),
      "labels_0": np.zeros(1, np.int64), "order_0": np.zeros(1, np.int64),
      "batch_sizes_0": np.ones(1, np.int64), "algorithm": np.array(algorithm),
      "horizons": np.array([1]), "precisions": np.array(["float32"]),
      "epochs": 1, "batch_size": 1, "lr": 0.01, "momentum": 0.0,
      "weight_decay": 0.0, "fedprox_mu": 0.0}
  if controls:
    arrays["server_control_0"] = weights[0]
  np.savez(tmp_path / "in.npz", **arrays)
  run = subprocess.run(
      [_PYTHON, os.path.join(_REPO, "experiments",
                             "niid_bench_torch_replay.py"),
       f"--input={tmp_path / 'in.npz'}", f"--output={tmp_path / 'out.npz'}"],
      env=dict(os.environ, PYTHONPATH=_REPO), capture_output=True, text=True,
      check=False)
  assert run.returncode != 0
  assert message in run.stderr, run.stderr
  assert not (tmp_path / "out.npz").exists()

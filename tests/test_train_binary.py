"""experiments/train.py end to end: errors, SIGKILL + resume, Ctrl-C.

Every case runs the binary in a subprocess with stdout on a pipe and an
environment marker; no process carrying the marker (TFF's worker_binary
inherits it) may survive.
"""

import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest

import processes

from tff_niid import partition as partition_lib
from tff_niid import results
from tff_niid import rundir
from tff_niid import training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "experiments", "train.py")
QUICK = ["--num_clients=20", "--clients_per_round=4", "--model=2nn",
         "--max_examples_per_client=60", "--batch_size=20", "--seed=3"]


class Run:
  """The binary in a subprocess, with a marker to find its children."""

  def __init__(self, args, cwd):
    env, self.marker = processes.marked_env()
    self.proc = subprocess.Popen([sys.executable, TRAIN] + args,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                 text=True)
    self.lines = []

  def wait_for(self, prefix):
    assert self.proc.stdout is not None  # stdout=PIPE
    for line in self.proc.stdout:
      self.lines.append(line)
      if line.startswith(prefix):
        return
    raise AssertionError(f"no line {prefix!r}:\n{''.join(self.lines)}")

  def finish(self, timeout=300):
    out, _ = self.proc.communicate(timeout=timeout)
    self.lines.append(out)
    return self.proc.returncode, "".join(self.lines)

  def kill_orphans(self):
    """A SIGKILLed Python runs no cleanup; its worker must be reaped here."""
    for proc in processes.marked_processes(self.marker):
      proc.kill()


def _run(args, cwd, timeout=300):
  run = Run(args, cwd)
  code, out = run.finish(timeout)
  assert not processes.survivors(run.marker), out
  return code, out


@pytest.mark.parametrize("args,message", [
    (["--clients_per_round=30"], "exceeds --num_clients"),
    (["--algorithm=fedsgd", "--local_epochs=2"], "--local_epochs=1"),
    (["--algorithm=dp_fedavg", "--dp_noise_multiplier=1", "--dp_clip=1",
      "--client_weighting=num_examples"], "unweighted"),
    (["--algorithm=fedavg", "--dp_clip=1"], "only apply"),
    (["--partition=dirichlet", "--alpha=-1"], "alpha"),
    (["--stop_at_target"], "--target_accuracy"),
    (["--target_accuracy=0"], "--target_accuracy=0.0: must be in (0, 1]"),
    (["--seed=4294967296"], "--seed=4294967296"),
    (["--data_dir=/nonexistent", "--dataset=fashion_mnist"], None),
    (["--max_examples_per_client=0"],
     "--max_examples_per_client=0: 0 is not a positive integer"),
    (["--client_lr=-0.1"], "--client_lr=-0.1: must be > 0"),
    (["--client_momentum=1.0"], "--client_momentum must be in [0, 1)."),
])
def test_bad_flags_give_one_clear_line(args, message, tmp_path):
  if message is None:  # a --data_dir without the files
    message = "train-images-idx3-ubyte.gz"
  code, out = _run(QUICK + [f"--root_output_dir={tmp_path}"] + args, tmp_path)
  assert code != 0
  assert message in out
  assert "Traceback" not in out
  assert "\nflags:\n" not in out  # no absl usage text burying the line
  assert not os.path.exists(tmp_path / "fedavg")  # the run directory


def test_flags_the_run_ignores_are_warned_about(mnist, tmp_path):
  code, out = _run(QUICK + [f"--root_output_dir={tmp_path}", "--check_only",
                            "--algorithm=fedprox", "--proximal_strength=0",
                            "--server_momentum=1.0", "--partition_spec=iid",
                            "--alpha=0.1"], tmp_path)
  assert code == 0, out
  assert ("WARNING: --server_momentum is not used by --algorithm=fedprox "
          "(only by fedavgm).") in out
  assert ("WARNING: --proximal_strength=0: FedProx without its proximal term "
          "is FedAvg.") in out
  assert ("WARNING: --alpha is not used with --partition_spec or "
          "--partition_file (it is a shortcut for a spec).") in out
  # A partition file holds its clients: --num_clients was silently ignored.
  partition_lib.iid(mnist.train_labels, 20, seed=0).save(
      str(tmp_path / "part"))
  code, out = _run(QUICK + [f"--root_output_dir={tmp_path}", "--check_only",
                            f"--partition_file={tmp_path / 'part'}",
                            "--num_clients=7"], tmp_path)
  assert code == 0, out
  assert ("WARNING: --num_clients is not used with --partition_file (the "
          "file holds the clients).") in out


def test_check_only_draws_the_partition_and_writes_nothing(tmp_path):
  spec = "classes(k=2)+noise(rate=0.2)"
  code, out = _run(QUICK + [f"--root_output_dir={tmp_path}", "--check_only",
                            f"--partition_spec={spec}"], tmp_path)
  assert code == 0, out
  assert ("checked, not trained: mnist: Partition(scheme='label_quantity', "
          "num_clients=20, num_samples=60000") in out
  assert os.listdir(tmp_path) == []
  code, out = _run(QUICK + [f"--root_output_dir={tmp_path}", "--check_only",
                            "--partition_spec=classes(k=11)"], tmp_path)
  assert code == 1 and "Traceback" not in out
  assert "\nERROR: `classes_per_client`=11 exceeds the 10 classes" in out
  assert os.listdir(tmp_path) == []


def test_partition_file_of_another_dataset(fashion_mnist, tmp_path):
  part = partition_lib.iid(fashion_mnist.train_labels, 20, seed=0)
  part.save(str(tmp_path / "fmnist_part"))
  code, out = _run(QUICK + [f"--root_output_dir={tmp_path}",
                            f"--partition_file={tmp_path / 'fmnist_part'}",
                            "--dataset=mnist"], tmp_path)
  assert code != 0 and "Traceback" not in out
  assert (f"ERROR: --partition_file={tmp_path / 'fmnist_part'} was made from "
          "fashion_mnist's training labels, not mnist's: pass "
          "--dataset=fashion_mnist.") in out


def test_unwritable_output_dir(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  code, out = _run(QUICK + [f"--root_output_dir={blocker}"], tmp_path)
  assert code != 0 and "cannot write to output directory" in out


def test_other_runs_directory_is_refused(tmp_path):
  args = QUICK + [f"--root_output_dir={tmp_path}", "--rounds=1",
                  "--experiment_name=x"]
  code, out = _run(args, tmp_path)
  assert code == 0, out
  code, out = _run(args + ["--client_lr=0.2"], tmp_path)
  assert code != 0 and "client_lr" in out and "other flags" in out
  # Its hparams.txt, which records every flag, reruns it without warnings;
  # a flag the run ignores is warned about and does not block the resume.
  hparams = tmp_path / "x" / "hparams.txt"
  code, out = _run([f"--flagfile={hparams}"], tmp_path)
  assert code == 0 and "WARNING" not in out, out
  code, out = _run(args + ["--server_momentum=0.5"], tmp_path)
  assert code == 0, out
  assert "WARNING: --server_momentum is not used by --algorithm=fedavg" in out

  # A run recorded before a flag existed (no --nosmoke line) and with a
  # resumable bool flipped (--quiet) still resumes.
  hparams.write_text(hparams.read_text().replace("--nosmoke\n", "").replace(
      "--noquiet", "--quiet"))
  code, out = _run(args, tmp_path)
  assert code == 0, out


def test_second_process_on_a_run_is_refused(tmp_path):
  # Checkpoints only at the Ctrl-C: one landing while a round's checkpoint is
  # saved makes the handler save that round again and fail
  # (ProgramStateExistsError), which is not what this test is about.
  args = QUICK + [f"--root_output_dir={tmp_path}", "--rounds=1000",
                  "--checkpoint_every=1000", "--model=logreg",
                  "--eval_every=1000", "--experiment_name=r"]
  first = Run(args, tmp_path)
  first.wait_for("round 1/")
  code, out = _run(args, tmp_path)
  assert code != 0 and "Traceback" not in out
  assert (f"ERROR: {tmp_path / 'r'} is in use by another process (pid "
          f"{first.proc.pid}); wait for it to finish or stop it" in out), out
  first.wait_for("round ")  # still training
  first.proc.send_signal(signal.SIGINT)
  code, out = first.finish()
  assert not processes.survivors(first.marker), out
  assert code == 130, out
  rounds = [int(row["round"]) for row in results.read_metrics(
      str(tmp_path / "r"))]
  assert rounds == list(range(1, len(rounds) + 1)) and len(rounds) >= 2


def _final(out_dir):
  """Final model weights (newest checkpoint) and metrics rows sans timing."""
  from tff_niid import clientdata, models  # pylint: disable=g-import-not-at-top
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC), client_lr=0.05)
  version, state = training.load_checkpoint(out_dir, process)
  weights = [np.asarray(w) for w in process.get_model_weights(state).trainable]
  rows = [{k: v for k, v in r.items() if k != "round_seconds"}
          for r in results.read_metrics(out_dir)]
  return version, weights, rows


def test_sigkill_then_resume_is_bit_identical(tmp_path):
  rounds = 6
  args = QUICK + [f"--root_output_dir={tmp_path}", f"--rounds={rounds}"]
  code, out = _run(args + ["--experiment_name=straight"], tmp_path)
  assert code == 0, out

  kill_after = random.Random().randint(1, rounds - 2)
  run = Run(args + ["--experiment_name=killed"], tmp_path)
  run.wait_for(f"round {kill_after}/")
  run.proc.send_signal(signal.SIGKILL)
  run.proc.wait()
  run.kill_orphans()  # before reading: the orphan would hold the pipe open
  run.finish()
  code, out = _run(args + ["--experiment_name=killed"], tmp_path)
  assert code == 0, out
  assert "resuming after round" in out

  v1, w1, rows1 = _final(str(tmp_path / "straight"))
  v2, w2, rows2 = _final(str(tmp_path / "killed"))
  assert v1 == v2 == rounds
  assert all(np.array_equal(a, b) for a, b in zip(w1, w2)), kill_after
  assert rows1 == rows2 and len(rows1) == rounds


def test_a_parked_copy_resumes_elsewhere_bit_identically(tmp_path):
  """`rundir.copy_resumable` (tools/park_unfinished.sh) keeps what a fresh
  machine needs: a run stopped after round 2 of 4, copied without its
  partition and TensorBoard events into another root, resumes there to the
  weights and metrics of a run that went straight through."""
  args = QUICK + ["--rounds=4"]
  code, out = _run(args + [f"--root_output_dir={tmp_path}",
                           "--experiment_name=straight"], tmp_path)
  assert code == 0, out
  code, out = _run(QUICK + ["--rounds=2", f"--root_output_dir={tmp_path}",
                            "--experiment_name=stopped"], tmp_path)
  assert code == 0, out
  straight, parked = tmp_path / "straight", tmp_path / "elsewhere" / "stopped"
  assert rundir.copy_resumable(str(tmp_path / "stopped"), str(parked)) == 2
  assert sorted(os.listdir(parked)) == sorted([
      rundir.CHECKPOINT_DIR, rundir.HPARAMS_FILE, results.METRICS_FILE,
      rundir.IDENTITY_FILE, rundir.TRAINING_IDENTITY_FILE,
      rundir.MACHINE_FILE])
  assert os.listdir(parked / rundir.CHECKPOINT_DIR) == [
      f"{rundir.CHECKPOINT_PREFIX}2"]
  code, out = _run(args + [f"--root_output_dir={tmp_path / 'elsewhere'}",
                           "--experiment_name=stopped"], tmp_path)
  assert code == 0 and "resuming after round 2" in out, out
  # The partition and its report are written again, as at the first start.
  assert len({rundir.partition_checksum(partition_lib.load(
      str(run / rundir.PARTITION_DIR))) for run in (parked, straight)}) == 1
  assert ((parked / "partition_summary.txt").read_text() ==
          (straight / "partition_summary.txt").read_text())
  # Each start records the machine and threads it ran on (a round's bits
  # depend on them).
  starts = (parked / rundir.MACHINE_FILE).read_text().splitlines()
  assert [line.split(": cpu ")[0].split(" ", 1)[1] for line in starts] == [
      "start after round 0", "start after round 2"], starts
  assert all(f"{os.cpu_count()} cores; TF_NUM_INTRAOP_THREADS=" in line
             for line in starts), starts
  # And the code it ran (a run outside a grid has no code.txt).
  assert all(line.endswith(f"; code {rundir.code_version()}")
             for line in starts), starts
  v1, w1, rows1 = _final(str(straight))
  v2, w2, rows2 = _final(str(parked))
  assert v1 == v2 == 4
  assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
  assert rows1 == rows2 and len(rows1) == 4
  assert rundir.copy_resumable(str(tmp_path / "nowhere"), str(parked)) is None
  os.remove(tmp_path / "stopped" / rundir.IDENTITY_FILE)
  with pytest.raises(rundir.RunDirError, match="resume it where it is"):
    rundir.copy_resumable(str(tmp_path / "stopped"), str(tmp_path / "x"))


def test_ctrl_c_saves_state_and_resumes(tmp_path):
  args = QUICK + [f"--root_output_dir={tmp_path}", "--rounds=200",
                  "--checkpoint_every=100", "--experiment_name=c"]
  # Before the rounds (building the process): it exited 130 saying nothing.
  run = Run(args, tmp_path)
  run.wait_for("mnist: Partition(")
  run.proc.send_signal(signal.SIGINT)
  code, out = run.finish()
  assert not processes.survivors(run.marker), out
  assert code == 130 and out.endswith(
      "interrupted before the rounds: nothing trained; rerun the same "
      "command to start (or resume) the run.\n"), out
  run = Run(args, tmp_path)
  run.wait_for("round 2/")
  run.proc.send_signal(signal.SIGINT)
  code, out = run.finish()
  assert not processes.survivors(run.marker), out
  assert code == 130 and "state of round" in out, out
  saved = os.listdir(tmp_path / "c" / rundir.CHECKPOINT_DIR)
  assert saved and all(name.startswith(rundir.CHECKPOINT_PREFIX)
                       for name in saved)
  code, out = _run(args[:-3] + ["--rounds=4", "--checkpoint_every=100",
                                "--experiment_name=c"], tmp_path)
  assert code == 0 and "resuming after round" in out, out


def test_partition_spec_with_noise(tmp_path):
  spec = "classes(k=2)+key(width)+noise(rate=0.2)+feature_noise(sigma=0.3)"
  code, out = _run(QUICK + [f"--root_output_dir={tmp_path}", "--rounds=1",
                            f"--partition_spec={spec}", "--client_eval",
                            "--experiment_name=s"], tmp_path)
  assert code == 0, out
  saved = partition_lib.load(str(tmp_path / "s" / "partition"))
  assert saved.spec.startswith(
      "label_quantity(classes_per_client=2)+key(name=width)")
  assert saved.noisy_labels is not None and saved.feature_noise is not None
  assert "client acc mean" in out
  assert os.path.exists(tmp_path / "s" / "partition_label_mix.png")
  with open(tmp_path / "s" / "partition_summary.txt") as f:
    assert "key_dispersion" in f.read()

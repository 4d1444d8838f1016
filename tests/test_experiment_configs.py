"""Every experiment config in experiments/configs runs: each grid
in --smoke mode end to end, with its report, and no TFF process left over."""

import glob
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

import processes

from tff_niid import grids
from tff_niid import results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID = os.path.join(REPO, "experiments", "grid.py")
GRID_CONFIGS = sorted(
    path for path in glob.glob(os.path.join(REPO, "experiments", "configs",
                                            "*.cfg"))
    if "--grid_name=" in open(path).read())


def _grid(args, timeout=1800):
  env, marker = processes.marked_env()
  run = subprocess.run([sys.executable, GRID] + args, cwd=REPO, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout, check=False)
  assert not processes.survivors(marker), run.stdout
  return run


def _flag(path, name):
  with open(path) as f:
    for line in f:
      if line.startswith(f"--{name}="):
        return line.strip().split("=", 1)[1]
  raise AssertionError(f"{path} has no --{name}")


def test_the_paper_experiments_have_configs():
  names = {os.path.basename(p) for p in GRID_CONFIGS}
  assert {"mcmahan2017.cfg", "niid_bench.cfg", "key_rules.cfg",
          "label_noise.cfg"} <= names


@pytest.mark.parametrize("queue", sorted(glob.glob(os.path.join(
    REPO, "experiments", "configs", "queue_*.txt"))), ids=os.path.basename)
def test_every_queue_step_names_a_grid_config(queue):
  # tools/run_queue.sh: each line not blank or `#` is CONFIG [grid.py flags],
  # quotes grouping words.
  with open(queue) as f:
    steps = [shlex.split(line) for line in f
             if line.strip() and not line.lstrip().startswith("#")]
  assert steps
  for config, *flags in steps:
    assert os.path.join(REPO, config) in GRID_CONFIGS, config
    assert all(flag.startswith("--") for flag in flags), flags


def _smoke(config, root, jobs=2):
  run = _grid([f"--flagfile={config}", "--smoke", f"--root_output_dir={root}",
               f"--jobs={jobs}"])
  assert run.returncode == 0, run.stdout[-5000:]
  return run


def _smoke_names(flags, partition):
  """The cell names the smoke diagonal may give `partition` of a config
  (`flags`: its `grids.read_flagfile`)."""
  seeds = grids.flag_list(flags, "seeds")
  datasets = grids.flag_list(flags, "datasets")
  algorithms = grids.flag_list(flags, "algorithms")
  assert datasets is not None and algorithms is not None  # in every grid
  suffix = grids.sweep_variants(flags.get("sweep", []))[0][0]
  return {grids.cell_name(d, partition, a + suffix,
                            None if seeds is None else int(seeds[0]))
          for d in datasets
          for a in algorithms}


@pytest.mark.parametrize("config", GRID_CONFIGS, ids=os.path.basename)
def test_config_runs_in_smoke_mode(config, tmp_path):
  run = _smoke(config, tmp_path)
  # Apart from the grid's own cells, which it must never count as results.
  grid_dir = tmp_path / (_flag(config, "grid_name") + "_smoke")
  assert not (tmp_path / _flag(config, "grid_name")).exists()
  cells = [d for d in grid_dir.iterdir() if (d / "metrics.csv").exists()]
  checked = re.findall(r"^\[(\S+), checked\] checked, not trained: ",
                       run.stdout, re.M)
  # The smoke diagonal trains or checks every partition the config runs.
  flags = grids.read_flagfile(config, REPO)
  partitions = grids.grid_partitions(
      flags["partition"], grids.flag_list(flags, "only_partitions"))
  ran = {c.name for c in cells} | set(checked)
  assert cells
  for partition, _ in partitions:
    assert _smoke_names(flags, partition) & ran, partition
  for cell in cells:
    summary = json.loads((cell / "summary.json").read_text())
    assert summary["rounds_run"] == 2, cell
    assert (cell / "hparams.txt").read_text().count("--smoke") == 1
  # A row per cell + header (a seeded grid adds a progress table after).
  report = (grid_dir / "results.md").read_text().split("## Progress")[0]
  assert report.count("\n| ") - 1 == len(cells)
  assert (grid_dir / "accuracy_curves.png").stat().st_size > 10_000
  with open(config) as f:
    text = f.read()
  if "\n--seeds=" in text and re.search(r"^--(paper|reference|reference_best)=",
                                        text, re.M):
    assert (grid_dir / "references.png").stat().st_size > 10_000
  if len(re.findall(r"^--sweep=", text, re.M)) == 1:
    assert (grid_dir / "sweep.png").stat().st_size > 10_000


def test_smoke_run_again_skips_its_cells_and_checks_again(tmp_path):
  # mcmahan2017_2nn.cfg: one dataset, one algorithm, two partitions: one
  # cell trained, the other partition checked; run again, the cell is
  # skipped and the check runs again (it writes nothing).
  config = os.path.join(REPO, "experiments", "configs", "mcmahan2017_2nn.cfg")
  for skipped in (0, 1):
    run = _smoke(config, tmp_path)
    assert re.search(r"^1 cells, .*; 1 more partitions to check without "
                     "training", run.stdout, re.M)
    assert run.stdout.count("finished earlier, skipped") == skipped
    assert run.stdout.count(
        "[mnist_shards_2nn_E1_B10_s0, checked] checked, not trained: mnist: "
        "Partition(scheme='shards', num_clients=100, ") == 1
  smoke_dir = tmp_path / "mcmahan2017_2nn_smoke"
  assert sorted(p.name for p in smoke_dir.iterdir()) == [
      "accuracy_curves.png", "grid_flags.txt", "logs", "mnist_iid_2nn_E1_B10_s0",
      "results.md"]


def test_a_diverged_cell_is_its_outcome_not_a_failure(tmp_path):
  # mcmahan2017_2nn.cfg at a client rate of 1e6: the trained cell's update
  # is NaN in round 1. The grid records that and succeeds; run again, it
  # skips the cell; the report counts the seed and has no accuracy for it.
  config = os.path.join(REPO, "experiments", "configs", "mcmahan2017_2nn.cfg")
  args = [f"--flagfile={config}", "--smoke", f"--root_output_dir={tmp_path}",
          "--algorithm_flags=2nn_E1_B10=--client_lr=1e6"]
  cell = "mnist_iid_2nn_E1_B10_s0"
  run = _grid(args)
  assert run.returncode == 0, run.stdout[-5000:]
  assert (f"[{cell}] diverged at round 1: recorded as the cell's outcome"
          in run.stdout)
  summary = json.loads(
      (tmp_path / "mcmahan2017_2nn_smoke" / cell / "summary.json").read_text())
  assert summary["stopped"] == "diverged at round 1"
  assert summary["rounds_run"] == 0
  run = _grid(args)
  assert run.returncode == 0, run.stdout[-5000:]
  assert f"[{cell}] diverged at round 1 earlier, skipped" in run.stdout
  report = (tmp_path / "mcmahan2017_2nn_smoke" / "results.md").read_text()
  assert "| mnist | iid | 2nn_E1_B10 | 0 + 1 diverged (round 1) | — |" in report
  assert "| mnist | iid | 2nn_E1_B10 | 0 (diverged at round 1) | — | — |" in (
      report)


def test_smoke_check_refuses_an_infeasible_partition(tmp_path):
  # key_rules.cfg: 6 partitions and 5 algorithms, one more partition here,
  # the last two checked (the 7th with the 2nd algorithm).
  config = os.path.join(REPO, "experiments", "configs", "key_rules.cfg")
  run = _grid([f"--flagfile={config}", "--smoke",
               "--partition=too_many=classes(k=11)",
               f"--root_output_dir={tmp_path}", "--jobs=2"])
  assert run.returncode == 1
  assert "[mnist_too_many_fedprox, checked] ERROR: " in run.stdout
  assert "failed checks, nothing trained: mnist_too_many_fedprox" in run.stdout
  assert "round 1/" not in run.stdout


@pytest.mark.parametrize("bad_flag, message", [
    ("--partition=nospec", "expected NAME=SPEC"),
    ("--reference=mnist/iid=99", "expected DATASET/PARTITION/ALGORITHM"),
    ("--algorithm_flags=fedavgm=server_lr", "expected ALGORITHM=--flag"),
    ("--only_partitions=missing", "not in the grid's partitions"),
    ("--sweep=client_lr", "expected FLAG=V1,V2"),
    ("--reference_best=mnist/iid/fedavg=99±1", "--reference_best needs --seeds"),
])
def test_malformed_grid_flags_are_one_line_errors(bad_flag, message, tmp_path):
  run = _grid([f"--flagfile={GRID_CONFIGS[0]}", bad_flag,
               f"--root_output_dir={tmp_path}"], timeout=120)
  assert run.returncode == 1
  assert message in run.stdout
  assert "Traceback" not in run.stdout
  assert run.stdout.startswith("ERROR: ") and run.stdout.count("\n") == 1


@pytest.mark.parametrize("phase", ["checks", "training"])
def test_sigterm_to_the_grid_stops_its_cells(phase, tmp_path):
  env, marker = processes.marked_env()
  # One partition: no check runs before the cells train; all of them: the
  # diagonal leaves one to check first.
  only = ["--only_partitions=mix"] if phase == "training" else []
  grid = subprocess.Popen(
      [sys.executable, GRID, f"--flagfile={GRID_CONFIGS[0]}", "--smoke",
       f"--root_output_dir={tmp_path}", "--jobs=2"] + only,
      cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  assert grid.stdout is not None  # stdout=PIPE
  for line in grid.stdout:
    if phase == "checks" and "to check without training" in line:
      time.sleep(2)  # the check has started (its TF import alone takes ~10 s)
      break
    if phase == "training" and line.startswith("[") and "round " in line:
      break
  grid.terminate()
  out, _ = grid.communicate(timeout=180)
  assert grid.returncode == 143, out
  assert not processes.survivors(marker), out
  if phase == "checks":
    assert "checked, not trained" not in out and "round " not in out, out


def test_ctrl_c_to_the_grid_is_one_line(tmp_path):
  # Ctrl-C reaches the terminal's whole process group: the grid and its
  # cells. The grid waits for the cells to save, then says how to resume.
  env, marker = processes.marked_env()
  grid = subprocess.Popen(
      # As a background job or a pytest-xdist worker: SIGINT ignored.
      processes.SIGINT_IGNORED +
      [sys.executable, GRID, f"--flagfile={GRID_CONFIGS[0]}", "--smoke",
       f"--root_output_dir={tmp_path}", "--only_partitions=mix"],
      cwd=REPO, env=env, start_new_session=True,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  assert grid.stdout is not None  # stdout=PIPE
  for line in grid.stdout:
    if line.startswith("[") and "round " in line:
      break
  os.killpg(grid.pid, signal.SIGINT)
  out, _ = grid.communicate(timeout=180)
  assert grid.returncode == 130, out
  assert "Traceback" not in out, out
  assert out.rstrip().endswith("stopped: each cell keeps its last checkpoint; "
                               "rerun the same command to resume.")
  assert not processes.survivors(marker), out


def test_a_second_grid_py_on_a_running_grid_is_refused(tmp_path):
  env, marker = processes.marked_env()
  args = [sys.executable, GRID, f"--flagfile={GRID_CONFIGS[0]}", "--smoke",
          f"--root_output_dir={tmp_path}", "--only_partitions=mix"]
  first = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
  assert first.stdout is not None  # stdout=PIPE
  for line in first.stdout:
    if "cells, " in line:  # past the lock, before its cells
      break
  second = subprocess.run(args, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
  first.stdout.read()
  assert first.wait(timeout=600) == 0
  assert second.returncode == 1
  assert second.stderr.startswith("ERROR: ") and (
      "is in use by another grid.py" in second.stderr), second.stderr
  assert not processes.survivors(marker)

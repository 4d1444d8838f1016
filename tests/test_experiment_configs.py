"""Every experiment config in experiments/configs runs (issue 6): each grid
in --smoke mode end to end, with its report, and no TFF process left over."""

import glob
import json
import os
import subprocess
import sys

import pytest

import processes
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
  assert not processes.marked_processes(marker), run.stdout
  return run


def _flag(path, name):
  with open(path) as f:
    for line in f:
      if line.startswith(f"--{name}="):
        return line.strip().split("=", 1)[1]
  raise AssertionError(f"{path} has no --{name}")


def test_the_issue_experiments_have_configs():
  names = {os.path.basename(p) for p in GRID_CONFIGS}
  assert {"mcmahan2017.cfg", "niid_bench.cfg", "key_rules.cfg",
          "label_noise.cfg"} <= names


@pytest.mark.parametrize("config", GRID_CONFIGS, ids=os.path.basename)
def test_config_runs_in_smoke_mode(config, tmp_path):
  run = _grid([f"--flagfile={config}", "--smoke",
               f"--root_output_dir={tmp_path}", "--jobs=2"])
  assert run.returncode == 0, run.stdout[-5000:]
  grid_dir = tmp_path / _flag(config, "grid_name")
  cells = [d for d in grid_dir.iterdir() if (d / "metrics.csv").exists()]
  with open(config) as f:
    partitions = sum(line.startswith("--partition=") for line in f)
  assert len(cells) >= partitions  # the smoke diagonal covers every partition
  for cell in cells:
    summary = json.loads((cell / "summary.json").read_text())
    assert summary["rounds_run"] == 2, cell
    assert (cell / "hparams.txt").read_text().count("--smoke") == 1
  # A row per cell + header (a seeded grid adds a progress table after).
  report = (grid_dir / "results.md").read_text().split("## Progress")[0]
  assert report.count("\n| ") - 1 == len(cells)
  assert (grid_dir / "accuracy_curves.png").stat().st_size > 10_000

  again = _grid([f"--flagfile={config}", "--smoke",
                 f"--root_output_dir={tmp_path}"])
  assert again.returncode == 0, again.stdout[-3000:]
  assert again.stdout.count("finished earlier, skipped") == len(cells)


@pytest.mark.parametrize("bad_flag, message", [
    ("--partition=nospec", "expected NAME=SPEC"),
    ("--reference=mnist/iid=99", "expected DATASET/PARTITION/ALGORITHM"),
    ("--algorithm_flags=fedavgm=server_lr", "expected ALGORITHM=--flag"),
    ("--only_partitions=missing", "not in the grid's partitions"),
])
def test_malformed_grid_flags_are_one_line_errors(bad_flag, message, tmp_path):
  run = _grid([f"--flagfile={GRID_CONFIGS[0]}", bad_flag,
               f"--root_output_dir={tmp_path}"], timeout=120)
  assert run.returncode == 1
  assert message in run.stdout
  assert "Traceback" not in run.stdout


def test_markdown_table_compares_with_references():
  metrics = [{"round": 1.0, "test_accuracy": 0.5},
             {"round": 2.0, "test_accuracy": 0.97}]
  summary = {"target_accuracy": 0.95, "rounds_to_target": 2}
  cells = [
      dict(dataset="mnist", partition="iid", algorithm="fedavg",
           run={"metrics": metrics, "summary": summary}),
      dict(dataset="mnist", partition="c1", algorithm="fedavg",
           run={"metrics": [], "summary": None}),
  ]
  table = results.markdown_table(
      cells, references={("mnist", "iid", "fedavg"): 0.99},
      reference_rounds={("mnist", "iid", "fedavg"): 3}).splitlines()
  assert table[2] == ("| mnist | iid | fedavg | 2 | 97.0 | 97.0 | 99.0 | -2.0 "
                      "| 2 (to 95.0) | 3 |")
  assert table[3] == ("| mnist | c1 | fedavg | not run | — | — | — | — | — "
                      "| — |")


def test_sigterm_to_the_grid_stops_its_cells(tmp_path):
  env, marker = processes.marked_env()
  grid = subprocess.Popen(
      [sys.executable, GRID, f"--flagfile={GRID_CONFIGS[0]}", "--smoke",
       f"--root_output_dir={tmp_path}", "--jobs=2"], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  for line in grid.stdout:  # a cell has started training
    if line.startswith("[") and "round " in line:
      break
  grid.terminate()
  out, _ = grid.communicate(timeout=180)
  assert grid.returncode == 143, out
  assert not processes.marked_processes(marker), out


def _run(finals, requested=10, seconds=3600.0):
  metrics = [{"round": float(r), "test_accuracy": a}
             for r, a in enumerate(finals, 1)]
  return {"metrics": metrics,
          "summary": {"rounds_run": len(finals), "rounds_requested": requested,
                      "stopped": "completed", "train_seconds": seconds}}


def test_seed_table_gives_mean_std_paper_difference_and_progress():
  key = dict(dataset="mnist", partition="iid", algorithm="fedavg")
  cells = [dict(key, seed=0, run=_run([0.5] * 6 + [0.97, 0.98, 0.99, 0.98],
                                      seconds=1800)),
           dict(key, seed=1, run=_run([0.5] * 6 + [0.95, 0.96, 0.97, 0.96],
                                      seconds=5400)),
           dict(key, seed=2, run=_run([0.5] * 3)),  # unfinished: left out
           dict(key, partition="c1", seed=0, run=_run([], requested=10))]
  table, progress = results.seed_table(
      cells, paper={("mnist", "iid", "fedavg"): (98.0, 1.0)},
      rerun={("mnist", "iid", "fedavg"): 0.991}, last=4)
  rows = table.splitlines()
  assert len(rows) == 3  # header, rule, the one finished group
  # final: 98 and 96 -> 97.0 ± 1.414; last 4: 98 and 96 -> 97.0 ± 1.414;
  # (97 - 98) / hypot(1.414, 1.0) = -0.577.
  assert rows[2] == ("| mnist | iid | fedavg | 2 | 97.0 ± 1.4 | 97.0 ± 1.4 | "
                     "98.0 ± 1.0 | -0.6 | 99.1 |")
  assert progress.splitlines()[2:] == [
      "| mnist | iid | fedavg | 2 | 2 | 1.00 |",
      "| mnist | c1 | fedavg | 0 | 0 | — |"]


def test_mean_std_parses_paper_notation():
  assert results.parse_mean_std("98.9%±0.1%") == (98.9, 0.1)
  assert results.parse_mean_std("81.2+-1.5") == (81.2, 1.5)
  assert results.parse_mean_std("10.0") == (10.0, None)

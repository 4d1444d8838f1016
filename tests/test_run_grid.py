"""tools/run_grid.sh on finished grids (nothing trains): grids started at
once from one commit, as a queue's step beside a grid, share one frozen copy
of the code; a grid already running in a grid directory keeps others out:
a start in the background is refused, a queue's step waits.
tools/run_queue.sh passes a step's quoted words whole, and refuses a queue
with unbalanced quotes before it starts."""

import fcntl
import os
import re
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_GRID = os.path.join(REPO, "tools", "run_grid.sh")
RUN_QUEUE = os.path.join(REPO, "tools", "run_queue.sh")
# Every cell committed as finished: the grids only rewrite their reports.
FINISHED = ("niid_bench_glorot", "mcmahan2017_2nn_init")


def test_grids_started_at_once_share_one_code_copy(tmp_path):
  env = dict(os.environ, GRID_ROOT=str(tmp_path), GRID_WAIT="1")
  starts = [subprocess.Popen(
      ["bash", RUN_GRID, f"experiments/configs/{grid}.cfg"], cwd=REPO, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for grid in FINISHED]
  outputs = [start.communicate(timeout=600)[0] for start in starts]
  assert [start.returncode for start in starts] == [0, 0], outputs
  commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"],
                          cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
  assert sorted(os.listdir(tmp_path)) == sorted(
      [f"code-{commit}", *FINISHED])
  assert os.path.isfile(tmp_path / f"code-{commit}" / "experiments" /
                        "grid.py")
  for grid in FINISHED:
    log = (tmp_path / grid / "grid.log").read_text()
    assert "finished earlier, skipped" in log, log
    assert not re.search(r"^\[\S+\] round \d", log, re.M), log


def test_a_second_grid_on_a_running_grids_directory_is_refused(tmp_path):
  grid = FINISHED[0]
  env = dict(os.environ, GRID_ROOT=str(tmp_path))
  start = ["bash", RUN_GRID, f"experiments/configs/{grid}.cfg"]
  (tmp_path / grid).mkdir()
  with open(tmp_path / grid / "grid.lock", "a") as running:
    fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running grid
    refused = subprocess.run(start, cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=600)
  assert refused.returncode == 1, refused
  assert f"grid {grid} is already running" in refused.stderr
  assert not (tmp_path / grid / "grid.log").exists()


def test_a_queue_step_waits_for_the_grid_running_in_its_directory(tmp_path):
  # GRID_WAIT=1 (tools/run_queue.sh's steps): the start waits, then runs.
  grid = FINISHED[0]
  env = dict(os.environ, GRID_ROOT=str(tmp_path), GRID_WAIT="1")
  (tmp_path / grid).mkdir()
  with open(tmp_path / grid / "grid.lock", "a") as running:
    fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running grid
    step = subprocess.Popen(
        ["bash", RUN_GRID, f"experiments/configs/{grid}.cfg"], cwd=REPO,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
      step.wait(timeout=5)
    except subprocess.TimeoutExpired:
      pass
    assert step.returncode is None  # still waiting
    assert not (tmp_path / grid / "grid.log").exists()
  output = step.communicate(timeout=600)[0]
  assert step.returncode == 0, output
  assert f"grid {grid} is running from" in output
  log = (tmp_path / grid / "grid.log").read_text()
  assert "finished earlier, skipped" in log, log


def test_a_config_not_committed_as_it_is_is_refused(tmp_path):
  # The grid runs `git archive HEAD`: an uncommitted config (or an edited
  # one) failed only inside grid.log, after "grid ... started".
  clone = tmp_path / "clone"
  subprocess.run(["git", "clone", "-q", REPO, str(clone)], check=True)
  config = clone / "experiments" / "configs" / "mine.cfg"
  config.write_text((clone / "experiments" / "configs" /
                     f"{FINISHED[0]}.cfg").read_text())
  edited = clone / "experiments" / "configs" / f"{FINISHED[1]}.cfg"
  edited.write_text(edited.read_text() + "--rounds=1\n")
  env = dict(os.environ, GRID_ROOT=str(tmp_path / "runs"))
  for path in (config, edited):
    start = subprocess.run(
        ["bash", str(clone / "tools" / "run_grid.sh"),
         os.path.relpath(path, clone)], cwd=clone, env=env,
        capture_output=True, text=True, check=False)
    assert start.returncode == 1
    assert start.stderr == (
        f"ERROR: {os.path.relpath(path, clone)} is not committed as it is; "
        "the grid runs the committed code (git archive HEAD): commit it "
        "first\n")
  assert not (tmp_path / "runs").exists()


def _run_queue(tmp_path, steps):
  """tools/run_queue.sh on a queue file of `steps` (outside the repository,
  named by its path from it), results in tmp_path/runs."""
  queue = tmp_path / "queue.txt"
  queue.write_text(steps)
  env = dict(os.environ, GRID_ROOT=str(tmp_path / "runs"))
  return subprocess.run(["bash", RUN_QUEUE, os.path.relpath(queue, REPO)],
                        cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=600)


def test_a_queue_step_passes_quoted_words_whole(tmp_path):
  grid = FINISHED[0]
  start = _run_queue(tmp_path, f"experiments/configs/{grid}.cfg "
                     "--title='A title, with spaces'\n")
  assert start.returncode == 0, start
  log = tmp_path / "runs" / "queue-queue.log"
  deadline = time.monotonic() + 600
  while "queue done" not in log.read_text():
    assert time.monotonic() < deadline, log.read_text()
    time.sleep(1)
  assert "step ended, exit status 0" in log.read_text()
  assert "--title=A title, with spaces\n" in (
      tmp_path / "runs" / grid / "grid.log").read_text()


def test_a_queue_with_unbalanced_quotes_is_refused_before_it_starts(
    tmp_path):
  refused = _run_queue(tmp_path, f"experiments/configs/{FINISHED[0]}.cfg "
                       "--title='A title\n")
  assert refused.returncode == 1
  assert "unbalanced quotes in the step: " in refused.stderr
  assert not list((tmp_path / "runs").glob("queue-*.log"))

"""tools/run_grid.sh on finished grids (nothing trains): grids started at
once from one commit, as a queue's step beside a grid, share one frozen copy
of the code."""

import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_GRID = os.path.join(REPO, "tools", "run_grid.sh")
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

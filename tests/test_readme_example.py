"""README.md's "Using the library" example runs as written, end to end
(partition, ClientData, FedAvg process, three rounds of training)."""

import json
import os
import pathlib
import re
import subprocess
import sys

_REPO = pathlib.Path(__file__).resolve().parent.parent


def _library_example():
  readme = (_REPO / "README.md").read_text()
  section = readme.split("\n## Using the library\n", 1)[1]
  example = re.search(r"```python\n(.*?)```", section, re.DOTALL)
  assert example is not None
  return example.group(1)


def test_the_library_example_runs_as_written(tmp_path):
  example = _library_example()
  assert "training.train(" in example  # the example shows a whole run
  # As a researcher's shell has it (the tests' conftest silences TF).
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  # Twice: as its comment says, the second run finds this run and resumes
  # it (it refused to save the partition again, then).
  for start in ("first", "again"):
    out = subprocess.run([sys.executable, "-c", example], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600,
                         check=False, env=env)
    assert out.returncode == 0, (start, out.stderr[-3000:])
    assert "Exception ignored" not in out.stderr  # install_cleanup's teardown
    assert " I tensorflow/" not in out.stderr  # TF's info lines silenced
    summary = json.loads(
        (tmp_path / "runs" / "lib_dir05" / "summary.json").read_text())
    assert summary["rounds_run"] == 3
    assert str(summary["final_test_accuracy"]) in out.stdout.splitlines()
    assert 0.5 < summary["final_test_accuracy"] <= 1
    assert "| mnist | dir0.5 | fedavg |" in out.stdout
    assert (tmp_path / "runs" / "lib_dir05" / "accuracy.png").stat(
        ).st_size > 5_000
  assert "resuming after round 3" in out.stdout

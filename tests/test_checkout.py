"""A binary refuses to run another checkout's library (tff_niid.checkout)."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from tff_niid import checkout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_binaries_of_this_checkout_run_its_library(tmp_path):
  assert checkout.other_checkout(
      os.path.join(REPO, "experiments", "train.py")) is None
  # Another clone's binary, with this checkout's library: refused; with an
  # installed copy (site-packages) as well.
  clone_binary = str(tmp_path / "clone" / "experiments" / "train.py")
  (tmp_path / "clone" / "tff_niid").mkdir(parents=True)
  assert checkout.other_checkout(clone_binary, REPO) == REPO
  site_packages = str(tmp_path / "site-packages")
  assert checkout.other_checkout(clone_binary, site_packages) == site_packages
  # Binaries copied without a library of their own run the imported one.
  assert checkout.other_checkout(
      str(tmp_path / "copy" / "experiments" / "grid.py"), REPO) is None


def _run_in_a_clone(tmp_path, name, *args):
  """(clone, binary, run) of experiments/`name` copied into a clone with a
  tff_niid of its own, run with this checkout's library."""
  clone = tmp_path / "clone"
  (clone / "experiments").mkdir(parents=True)
  (clone / "tff_niid").mkdir()
  shutil.copy(os.path.join(REPO, "experiments", name), clone / "experiments")
  binary = str(clone / "experiments" / name)
  run = subprocess.run([sys.executable, binary, *args], cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=REPO),
                       capture_output=True, text=True, timeout=300,
                       check=False)
  return clone, binary, run


def test_a_clones_binary_run_with_this_library_says_how_to_run_its_own(
    tmp_path):
  clone, binary, run = _run_in_a_clone(tmp_path, "report.py", "--check")
  assert run.returncode == 1
  assert run.stderr == (
      f"ERROR: {binary} is in the checkout {clone} but imports tff_niid from "
      f"{REPO}, so it would run that code. Run it with PYTHONPATH={clone} "
      "(the same environment serves), or install this checkout into the "
      f"environment: pip install --no-deps -e {clone}\n")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_federated") is None,
                    reason="train.py imports TFF")
def test_a_clones_train_binary_refuses_without_a_traceback(tmp_path):
  # train.py imports TFF, whose worker manager's destructor printed a
  # traceback at exit unless the cleanup was installed before the guard.
  clone, binary, run = _run_in_a_clone(tmp_path, "train.py")
  assert run.returncode == 1
  assert run.stderr.splitlines()[-1].startswith(
      f"ERROR: {binary} is in the checkout {clone} but imports tff_niid from "
      f"{REPO}"), run.stderr[-2000:]
  assert "Exception ignored" not in run.stderr

"""A binary refuses to run another checkout's library (tff_niid.checkout)."""

import os
import shutil
import subprocess
import sys

from tff_niid import checkout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_binaries_of_this_checkout_run_its_library(tmp_path):
  assert checkout.other_checkout(
      os.path.join(REPO, "experiments", "train.py")) is None
  # Another clone's binary, with this checkout's library: refused.
  clone_binary = str(tmp_path / "clone" / "experiments" / "train.py")
  (tmp_path / "clone" / "tff_niid").mkdir(parents=True)
  assert checkout.other_checkout(clone_binary) == REPO
  # Binaries copied without a library of their own run this one's.
  assert checkout.other_checkout(
      str(tmp_path / "copy" / "experiments" / "grid.py")) is None
  # An installed copy (no experiments/ beside it) is the environment's
  # choice.
  site_packages = tmp_path / "site-packages"
  (site_packages / "tff_niid").mkdir(parents=True)
  assert checkout.other_checkout(clone_binary, str(site_packages)) is None


def test_a_clones_binary_run_with_this_library_says_how_to_run_its_own(
    tmp_path):
  clone = tmp_path / "clone"
  (clone / "experiments").mkdir(parents=True)
  (clone / "tff_niid").mkdir()
  shutil.copy(os.path.join(REPO, "experiments", "report.py"),
              clone / "experiments")
  binary = str(clone / "experiments" / "report.py")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  run = subprocess.run([sys.executable, binary, "--check"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120,
                       check=False)
  assert run.returncode == 1
  assert run.stderr == (
      f"ERROR: {binary} is in the checkout {clone} but imports tff_niid from "
      f"the checkout {REPO}, so it would run that code. Run it with "
      f"PYTHONPATH={clone} (the same environment serves), or install this "
      f"checkout into the environment: pip install --no-deps -e {clone}\n")

"""Shared fixtures: the real MNIST / Fashion-MNIST arrays (loaded once).

A test that takes them is skipped, saying where the files were looked for,
when they are not there (corrupt files still fail). The numpy core's tests
run on synthetic labels (tests/partition/conftest.py).
"""

import os
import subprocess
import sys

# Quiet TensorFlow's C++ logs here and in TFF's worker_binary (inherits env).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top

from tff_niid import datasets  # pylint: disable=g-import-not-at-top


def _load(name):
  try:
    datasets.find_dir(name)
  except datasets.DatasetError as e:
    pytest.skip(f"needs the real {name} files: {e}")
  return datasets.load(name)


@pytest.fixture(scope="session")
def mnist():
  return _load("mnist")


@pytest.fixture(scope="session")
def fashion_mnist():
  return _load("fashion_mnist")


def pytest_sessionstart(session):
  """Stops at once if the interpreter's installed tff_niid is another
  checkout's (a venv shared between clones): `python -m pytest` imports this
  checkout, but the binaries the tests start import the installed one, so
  the tests would check two versions of the code at once."""
  del session
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  installed = subprocess.run(
      [sys.executable, "-c", "import os, tff_niid; "
       "print(os.path.dirname(os.path.dirname(tff_niid.__file__)))"],
      cwd=os.path.dirname(sys.executable), capture_output=True, text=True,
      check=False).stdout.strip()
  if installed and os.path.realpath(installed) != os.path.realpath(here):
    pytest.exit(f"{sys.executable} imports tff_niid from {installed}, not "
                f"from this checkout {here}: the binaries the tests run "
                "would test that code. Use this checkout's own venv (make "
                "env), install this checkout into it (pip install "
                "--no-deps -e .), or, to leave that venv as it is, set "
                f"PYTHONPATH={here} (the binaries inherit it)",
                returncode=4)


def pytest_collection_finish(session):
  """TFF tests run on a loopback-only worker that dies with pytest (the
  library changes nothing at import; programs set this up explicitly)."""
  del session
  if "tensorflow_federated" in sys.modules:
    from tff_niid import runtime  # pylint: disable=g-import-not-at-top
    runtime.use_local_worker()


def pytest_sessionfinish(session, exitstatus):
  """Stops the TFF workers tests started."""
  del session, exitstatus
  if "tff_niid.runtime" in sys.modules:
    sys.modules["tff_niid.runtime"].shutdown()

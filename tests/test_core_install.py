"""The numpy core installs and imports without TensorFlow; the TFF layer says
clearly what it needs. Run in the TFF-free venv too (`make test-core`)."""

import importlib.util
import subprocess
import sys
import tarfile
import zipfile

import pytest

REPO_ROOT = __file__.rsplit("/tests/", 1)[0]
HAS_TFF = importlib.util.find_spec("tensorflow_federated") is not None


@pytest.mark.skipif(HAS_TFF, reason="TFF is installed here")
def test_tff_layer_without_tff_is_one_clear_error():
  for module in ("clientdata", "training", "models", "runtime"):
    out = subprocess.run([sys.executable, "-c", f"import tff_niid.{module}"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 1
    assert ("requirements/py311-lock.txt" in out.stderr and
            "3.9-3.11" in out.stderr), out.stderr


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
  """The source archive, built outside the checkout (its egg-info too)."""
  out = tmp_path_factory.mktemp("sdist")
  build = subprocess.run(
      [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(out),
       "sdist", "-d", str(out)],
      cwd=REPO_ROOT, capture_output=True, text=True, check=False)
  assert build.returncode == 0, build.stderr[-2000:]
  (archive,) = out.glob("tff_niid-*.tar.gz")
  return archive


def test_wheel_admits_new_pythons_and_keeps_tensorflow_optional(sdist,
                                                               tmp_path):
  # Built from the sdist, as a user holding it would: pip unpacks it
  # elsewhere, so nothing is written into the checkout.
  build = subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
       "--disable-pip-version-check", "-w", str(tmp_path), str(sdist)],
      capture_output=True, text=True, check=False)
  assert build.returncode == 0, build.stderr[-2000:]
  (wheel,) = tmp_path.glob("tff_niid-*.whl")
  with zipfile.ZipFile(wheel) as z:
    metadata = z.read(next(n for n in z.namelist()
                           if n.endswith("METADATA"))).decode()
    # The worker's shim source and set-up script, run from the package.
    assert {"tff_niid/loopback_bind.c",
            "tff_niid/worker_exec.py"} <= set(z.namelist())
    # (setuptools >= 77 puts it under .dist-info/licenses/.)
    assert any(".dist-info/" in n and n.endswith("/LICENSE")
               for n in z.namelist()), z.namelist()
    entry_points = z.read(next(n for n in z.namelist()
                               if n.endswith("entry_points.txt"))).decode()
  assert "tff-niid-partition = tff_niid.partition_cli:run" in entry_points
  fields = [line.split(": ", 1) for line in metadata.splitlines()
            if ": " in line]
  assert ("License", "Apache-2.0") in [tuple(f) for f in fields]
  (requires_python,) = [v for k, v in fields if k == "Requires-Python"]
  assert requires_python == ">=3.9"  # admits 3.12 and 3.13
  requires = [v for k, v in fields if k == "Requires-Dist"]
  assert "Programming Language :: Python :: 3.13" in metadata
  # TensorFlow and TFF come from the lock (no extra can install TFF 0.87).
  assert not [d for d in requires if d.startswith("tensorflow")], requires
  assert any(d.startswith("numpy>=1.25") for d in requires), requires


def test_sdist_carries_the_lock_for_the_tff_layer(sdist):
  # The TFF layer installs only over the lock (TFF 0.87's own pins name a
  # jaxlib PyPI lacks), so a source archive without it could not get there.
  with tarfile.open(sdist) as tar:
    names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
  assert {"requirements/py311-lock.txt", "BUILD_NOTES.md", "README.md",
          "LICENSE", "tff_niid/loopback_bind.c"} <= names
  assert not [name for name in names if name.startswith("tests/")]

"""Importing any tff_niid module leaves the host process as it was: no signal
handlers, atexit callbacks or threads of ours (a notebook's or another
program's setup is not ours to change), and the binaries set up what they
need explicitly."""

import ast
import os
import subprocess
import sys
import textwrap

_REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def test_importing_every_module_changes_nothing():
  script = textwrap.dedent("""
      import atexit, importlib, pkgutil, signal, threading
      # TensorFlow's and TFF's own import-time effects are the baseline.
      import tensorflow, tensorflow_federated
      def state():
        return ([signal.getsignal(s) for s in signal.valid_signals()
                 if s not in (signal.SIGKILL, signal.SIGSTOP)],
                atexit._ncallbacks(), threading.active_count())
      before = state()
      import tff_niid
      names = [m.name for m in pkgutil.walk_packages(tff_niid.__path__,
                                                      "tff_niid.")]
      for name in names:
        importlib.import_module(name)
      assert state() == before, (before, state())
      print(len(names), "modules")
  """)
  out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                       text=True, timeout=300, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "modules" in out.stdout


def _tff_layer_modules():
  package = os.path.join(_REPO, "tff_niid")
  return {name[:-3] for name in os.listdir(package)
          if name.endswith(".py") and
          "_requires_tff" in open(os.path.join(package, name)).read()}


def _imported_tff_niid_modules(tree):
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module == "tff_niid":
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
        "tff_niid."):
      assert node.module is not None  # as the condition says
      yield node.module.split(".")[1]
    elif isinstance(node, ast.Import):
      yield from (alias.name.split(".")[1] for alias in node.names
                  if alias.name.startswith("tff_niid."))


def test_every_binary_of_the_tff_layer_sets_up_its_cleanup():
  # The binaries set up explicitly what importing does not: without
  # runtime.install_cleanup(), TFF's import-time worker manager is left to
  # interpreter exit and prints "Exception ignored ... ServiceManager.__del__".
  tff_layer = _tff_layer_modules()
  assert {"training", "clientdata", "runtime"} <= tff_layer
  missing = []
  for folder in ("experiments", "benchmarks"):
    for name in sorted(os.listdir(os.path.join(_REPO, folder))):
      path = os.path.join(_REPO, folder, name)
      if not name.endswith(".py"):
        continue
      source = open(path).read()
      if "app.run(" not in source:
        continue
      if (tff_layer & set(_imported_tff_niid_modules(ast.parse(source))) and
          "runtime.install_cleanup()" not in source):
        missing.append(f"{folder}/{name}")
  assert not missing, missing

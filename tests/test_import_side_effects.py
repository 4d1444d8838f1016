"""Importing any tff_niid module leaves the host process as it was: no signal
handlers, atexit callbacks or threads of ours (a notebook's or another
program's setup is not ours to change)."""

import subprocess
import sys
import textwrap


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

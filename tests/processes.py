"""Finding the processes a test started, including TFF's worker_binary.

A test gives its subprocess an environment with a unique marker
(`marked_env`); every descendant, worker_binary included, inherits it, so
`marked_processes` finds whatever survived.
"""

import os
import uuid

import psutil

MARKER_VARIABLE = "TFF_NIID_TEST_MARKER"
# Prefix for a command that must start with SIGINT ignored, as a shell's
# background job does. Not a preexec_fn: that forks a test process whose
# gRPC threads can make the child abort (tff_niid/worker_exec.py).
SIGINT_IGNORED = ["sh", "-c", 'trap "" INT; exec "$@"', "sh"]


def marked_env():
  """(environment for a subprocess, its marker)."""
  marker = uuid.uuid4().hex
  return dict(os.environ, **{MARKER_VARIABLE: marker},
              TF_CPP_MIN_LOG_LEVEL="2"), marker


def marked_processes(marker):
  """The live processes whose environment carries `marker`."""
  found = []
  for proc in psutil.process_iter(["name"]):
    try:
      if proc.environ().get(MARKER_VARIABLE) == marker:
        found.append(proc)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
      pass
  return found


def survivors(marker, grace=10.0):
  """The marked processes still alive `grace` seconds from now (none: returns
  at once). A process that has closed its pipes, or been sent a signal by
  the kernel when its parent died, can still be exiting for a moment on a
  busy machine; one that outlives the grace was left behind."""
  _, alive = psutil.wait_procs(marked_processes(marker), timeout=grace)
  return alive

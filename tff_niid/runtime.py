"""TFF execution-context lifecycle: never leave a `worker_binary` behind.

`import tensorflow_federated` installs a local C++ execution context whose first
computation starts a `worker_binary` subprocess sharing our stdout/stderr. TFF
only stops it from `ServiceManager.__del__`, which does not run reliably at
interpreter exit, so the orphan keeps pipes open (`python x | tail`, CI) until
killed. `install_cleanup()` (called when `tff_niid.training` or
`tff_niid.clientdata` is imported) registers `shutdown()` at exit and turns
SIGTERM into a normal exit so the hook also runs then; Ctrl-C already raises
KeyboardInterrupt, which unwinds through the hook. It also undoes an inherited
"ignore SIGINT" (background jobs of a shell), which would make the worker
immune to TFF's SIGINT and hang the exit.
"""

import atexit
import gc
import os
import signal
import subprocess
import threading

import tensorflow_federated as tff

_installed = False


def shutdown():
  """Stops TFF's worker processes by dropping the default context.

  Dropping the context releases its executor factory; `gc.collect()` then runs
  `ServiceManager.__del__`, which sends SIGINT to the worker and waits for it.
  Call `restart()` to run computations again in the same process.
  """
  tff.test.set_no_default_context()
  gc.collect()
  _stop_surviving_workers()


def _stop_surviving_workers():
  """Stops worker_binary processes that `ServiceManager.__del__` missed.

  When SIGTERM arrives while a round is running, the computation still in
  flight keeps the ServiceManager referenced, `gc.collect()` cannot free it,
  and the worker outlived train.py (seen with a 190 s round). Its Popen
  object is still reachable, so we send it what TFF would: SIGINT, then
  SIGKILL if it does not exit.
  """
  for obj in gc.get_objects():
    if (isinstance(obj, subprocess.Popen) and obj.poll() is None and
        os.path.basename(str(obj.args[0])) == "worker_binary"):
      obj.send_signal(signal.SIGINT)
      try:
        obj.wait(timeout=10)
      except subprocess.TimeoutExpired:
        obj.kill()
        obj.wait()


def restart():
  """Installs a fresh local C++ context (TFF's import-time default)."""
  tff.backends.native.set_sync_local_cpp_execution_context()


def _exit_on_sigterm(signum, frame):
  del frame
  raise SystemExit(128 + signum)


def install_cleanup():
  """Registers `shutdown` at exit and makes SIGTERM exit normally. Idempotent."""
  global _installed
  if _installed:
    return
  _installed = True
  atexit.register(shutdown)
  if threading.current_thread() is not threading.main_thread():
    return
  if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
  if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    # A shell starts background jobs (`cmd &`) with SIGINT ignored, and an
    # ignored signal stays ignored across exec: TFF's worker would ignore the
    # SIGINT TFF stops it with, and the exit hook would wait forever. With a
    # handler installed, exec'd children get the default disposition.
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
import signal
import subprocess
import threading

import tensorflow_federated as tff

_installed = False
# TFF 0.87 `executor_factory.local_cpp_executor_factory`'s worker owner.
_SERVICE_MANAGER = "local_cpp_executor_factory.<locals>.ServiceManager"


def shutdown():
  """Stops TFF's worker processes and drops the default context.

  Call `restart()` to run computations again in the same process.
  """
  _stop_local_workers()
  tff.test.set_no_default_context()
  gc.collect()


def stop_process(process, timeout=10):
  """SIGINT (how TFF stops a worker), then SIGKILL after `timeout` seconds."""
  if process.poll() is None:
    process.send_signal(signal.SIGINT)
    try:
      process.wait(timeout)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def _refuse_to_start_worker():
  raise RuntimeError("TFF's local worker was stopped by "
                     "tff_niid.runtime.shutdown(); call runtime.restart() to "
                     "run computations again.")


def _stop_local_workers():
  """Stops the worker of every TFF local context and keeps it from restarting.

  Normally dropping the context lets `gc.collect()` run TFF's
  `ServiceManager.__del__`, which stops the worker. A signal that lands while
  a round runs breaks that in two ways (both seen, BUILD_NOTES.md): the
  computation in flight keeps the ServiceManager alive, so its worker outlives
  us; and once the worker is stopped, TFF retries the invocation
  (`RetryableError`) and the ServiceManager starts a new worker -- after this
  hook, orphaned, holding our stdout. So each ServiceManager first loses the
  ability to start a worker, then we stop its running one with a timeout
  (`__del__` waits without one; SIGTERMed mid-round, train.py often exited
  only ~11 s later here, i.e. after the SIGKILL).
  """
  for obj in gc.get_objects():
    if type(obj).__qualname__ == _SERVICE_MANAGER:
      obj.get_stub = _refuse_to_start_worker
      process, obj._process = obj._process, None  # pylint: disable=protected-access
      if isinstance(process, subprocess.Popen):
        stop_process(process)


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

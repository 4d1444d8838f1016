"""TFF's C++ worker, run safely: loopback only, dies with us, never restarted.

TFF executes computations in a C++ `worker_binary` that serves plain,
unauthenticated gRPC. TFF's import-time default context starts one lazily
that (measured, BUILD_NOTES.md) listens on all interfaces, inherits our
stdout, survives a SIGKILL of its parent, and is restarted by TFF's retry
loop when stopped mid-round. `use_local_worker()` replaces that context with
one whose worker

- binds to loopback: the worker has no bind flag, so it is started with an
  `LD_PRELOAD` shim (`loopback_bind.c`, compiled once with the system C
  compiler into a per-user cache) that rewrites a bind to the any-address
  into a bind to 127.0.0.1; its listening sockets are then read back from
  the kernel, and if any is reachable beyond this machine (no compiler, a
  static binary, ...) a loud warning says so, for each such worker;
- dies with us: `PR_SET_PDEATHSIG=SIGKILL` (set by `worker_exec.py`, which
  becomes the worker), so SIGKILL of the Python process ends it too; it
  runs in its own session (a Ctrl-C to the terminal's process group reaches
  Python only, which then stops it) with no stdin/stdout of ours (it cannot
  hold a pipe open);
- is never restarted: when it has stopped, a computation fails with a clear
  error instead of starting a new process.

Importing this module changes nothing in the host process. The training
binaries call `install_cleanup()` and `use_local_worker()`;
`tff_niid.algorithms.build_process` (so `training.build_fedavg` too),
`tff_niid.training.train` and `proximal.first_round_update_norm` call
`ensure_local_worker()`, which installs the safe context in place of TFF's
default if nobody chose another one. A process built with TFF alone, run
before any of these: call `use_local_worker()` first.
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import atexit
import functools
import gc
import hashlib
import ipaddress
import logging
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable, Optional
import weakref

import grpc
import portpicker
import psutil
import tensorflow_federated as tff

from tff_niid import compilation
from tff_niid import datasets
from tff_niid import worker_exec

WORKER_BINARY = os.path.join(os.path.dirname(tff.__file__), "data",
                             "worker_binary")
GRPC_OPTIONS = [("grpc.max_message_length", 2_000_000_000),
                ("grpc.max_receive_message_length", 2_000_000_000),
                ("grpc.max_send_message_length", 2_000_000_000)]
_SHIM_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "loopback_bind.c")
# TFF 0.87 `executor_factory.local_cpp_executor_factory`'s pieces.
_SERVICE_MANAGER = "local_cpp_executor_factory.<locals>.ServiceManager"
_TFF_LOCAL_STACK_FN = "local_cpp_executor_factory.<locals>.stack_fn"

_installed = False
_workers: weakref.WeakSet[LocalWorker] = weakref.WeakSet()  # LocalWorkers of this process, for shutdown()
_contexts: weakref.WeakSet[Any] = weakref.WeakSet()  # contexts made here (safe by construction)


class WorkerStoppedError(RuntimeError):
  """A computation needed a TFF worker that has stopped."""


def _private(path: str) -> bool:
  """Whether `path` (not a symlink) belongs to this user and no one else may
  write it: then no other user can have put what is there."""
  st = os.lstat(path)
  return (not stat.S_ISLNK(st.st_mode) and st.st_uid == os.getuid() and
          not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _private_directory(directory: str) -> bool:
  """Makes `directory` (mode 0700) if it is not there, or takes it back to
  0700 if it is this user's (a umask of 002 makes directories group-writable);
  then whether it is `_private`."""
  try:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.lstat(directory).st_uid == os.getuid():
      os.chmod(directory, 0o700)
    return _private(directory)
  except OSError:
    return False


@functools.lru_cache(maxsize=None)
def loopback_shim() -> tuple[Optional[str], Optional[str]]:
  """(path of the compiled bind shim, None) or (None, why it is unavailable).

  Compiled once per source version into a directory of its own in the
  package's cache (`datasets.cache_dir("bind_shim")`, 0700), atomically, so
  concurrent runs share it. The worker runs whatever library is there, so a
  compiled shim is used only where no other user could have written it: the
  directory and the file this user's and writable by no one else. Where
  the cache cannot give such a directory (another owner, a filesystem
  without Unix ownership), the shim is compiled into a new private
  temporary directory of this process instead (left there for the
  process's later workers), never into a shared one under a name others
  could guess.
  """
  compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
  with open(_SHIM_SOURCE, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()[:16]
  directory = datasets.cache_dir("bind_shim")
  cached = _private_directory(directory)
  path = os.path.join(directory, f"loopback_bind-{digest}.so")
  if cached and os.path.isfile(path) and _private(path):
    return path, None
  if compiler is None:
    return None, "no C compiler (cc/gcc) to build the loopback bind shim"
  try:
    if not cached:
      directory = tempfile.mkdtemp(prefix="tff_niid_shim-")
      path = os.path.join(directory, f"loopback_bind-{digest}.so")
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
  except OSError as e:
    return None, f"no private directory for the loopback bind shim ({e})"
  build = subprocess.run(
      [compiler, "-shared", "-fPIC", "-O2", "-o", tmp, _SHIM_SOURCE, "-ldl"],
      capture_output=True, text=True, check=False)
  if build.returncode:
    os.unlink(tmp)
    if not cached:
      shutil.rmtree(directory, ignore_errors=True)
    return None, f"compiling the loopback bind shim failed: {build.stderr}"
  os.chmod(tmp, 0o755)
  os.replace(tmp, path)
  return path, None


def listening_addresses(pid: int) -> list[str]:
  """The local IP addresses on which process `pid` has listening TCP sockets."""
  return sorted({c.laddr.ip for c in psutil.Process(pid).net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN})


def is_loopback(address: str) -> bool:
  """Whether `address` (IPv4, IPv6 or IPv4-mapped IPv6) is a loopback one."""
  ip = ipaddress.ip_address(address.split("%")[0])
  mapped = getattr(ip, "ipv4_mapped", None)
  return (mapped or ip).is_loopback


class LocalWorker:
  """A `worker_binary` on this machine that dies with the calling thread.

  Start it from a thread that lives as long as the worker should (normally
  the main thread): Linux delivers the parent-death signal when the thread
  that started the child exits.

  Attributes:
    address: "127.0.0.1:<port>".
    process: its `subprocess.Popen`.
    listening: the local addresses it listens on (read from the kernel).
    exposed: whether any of them is reachable from other machines.

  Args:
    loopback: keep the worker on 127.0.0.1 with the LD_PRELOAD bind shim.
    log_path: append the worker's output there (default: discarded).
    max_concurrent_computation_calls: client computations the worker runs at
      once; None: one per core; -1: worker_binary's default (4 x cores).
    ready_timeout: seconds to wait for the worker to answer.
  """

  def __init__(self, *, loopback: bool = True, log_path: Optional[str] = None,
               max_concurrent_computation_calls: Optional[int] = None,
               ready_timeout: float = 60.0):
    if max_concurrent_computation_calls is None:
      # worker_binary's own default (-1) runs 4 x cores computations at
      # once; on one TensorFlow thread per process (grid.py --cell_threads=1)
      # that made a NIID-Bench round 4x slower than with one call per core,
      # with bit-identical weights (docs/benchmarks.md).
      max_concurrent_computation_calls = os.cpu_count() or 1
    if not os.access(WORKER_BINARY, os.X_OK):
      raise FileNotFoundError(
          f"TFF's worker_binary is missing or not executable: "
          f"{WORKER_BINARY} (reinstall tensorflow-federated from the lock).")
    self.port = portpicker.pick_unused_port()
    self.address = f"127.0.0.1:{self.port}"
    env = dict(os.environ)
    self.shim_problem: Optional[str] = None
    shim = None
    if loopback:
      shim, self.shim_problem = loopback_shim()
    if shim:
      env["LD_PRELOAD"] = " ".join(filter(None, [shim, env.get("LD_PRELOAD")]))
    log: Any = open(log_path, "ab") if log_path else subprocess.DEVNULL  # pylint: disable=consider-using-with
    try:
      # worker_exec.py sets up the child and execs the worker in it (not a
      # preexec_fn: see its docstring).
      self.process = subprocess.Popen(
          worker_exec.command([
              WORKER_BINARY, f"--port={self.port}",
              f"--max_concurrent_computation_calls="
              f"{max_concurrent_computation_calls}"]),
          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
          env=env, start_new_session=True)
    finally:
      if log_path:
        log.close()
    _workers.add(self)
    atexit.register(self.stop)
    self.stub = wait_until_ready(self.address, ready_timeout, self.process)
    self.listening = listening_addresses(self.process.pid)
    self.exposed = not all(is_loopback(a) for a in self.listening)
    if self.exposed:
      _warn_exposed(self)

  def alive(self) -> bool:
    return self.process.poll() is None

  def stop(self, timeout: float = 10) -> None:
    stop_process(self.process, timeout)


def wait_until_ready(address: str, timeout: float,
                     process: Optional[subprocess.Popen] = None) -> Any:
  """A gRPC stub for the worker at `address`, once it answers."""
  channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
  stub = tff.framework.RemoteExecutorGrpcStub(channel)
  deadline = time.monotonic() + timeout
  while not stub.is_ready:
    if process is not None and process.poll() is not None:
      raise WorkerStoppedError(f"TFF worker_binary exited with code "
                               f"{process.returncode} before it was ready.")
    if time.monotonic() > deadline:
      raise ConnectionError(
          f"TFF worker at {address} is not ready after {timeout:.0f} s; "
          "is worker_binary running there with --port set to that port?")
    time.sleep(0.05)
  return stub


def executor_factory(stub: Any,
                     check_alive: Optional[Callable[[], None]] = None) -> Any:
  """TFF's executor factory over one worker's stub (what TFF's local context
  builds, minus starting and restarting the process)."""

  def stack_fn(cardinalities):
    if check_alive is not None:
      check_alive()
    # The merge step of a mergeable context has no CLIENTS cardinality;
    # without a default the worker answers "No cardinality provided".
    cardinalities.setdefault(tff.CLIENTS, 0)
    executor = tff.framework.RemoteExecutor(stub)
    executor.set_cardinalities(cardinalities)
    return executor

  return tff.framework.ResourceManagingExecutorFactory(stack_fn)


def _context_args(factory: Any) -> dict[str, Any]:
  # TFF's compiler plus grappler's CPU fusions: the same weights, faster
  # CNN steps (tff_niid.compilation).
  return dict(executor_fn=factory,
              compiler_fn=compilation.desugar_and_transform_to_native,
              transform_args=tff.tensorflow.transform_args,
              transform_result=tff.tensorflow.transform_result)


def async_context(stub: Any) -> Any:
  """An asynchronous TFF context over one worker's stub."""
  return tff.framework.AsyncExecutionContext(
      **_context_args(executor_factory(stub)))


def _warn_exposed(worker: LocalWorker) -> None:
  # Every exposed worker, each its own port (--workers=local:N starts N).
  logging.warning(
      "\n%s\nSECURITY: TFF's worker_binary (pid %d) listens on %s, which is "
      "reachable from other machines: anyone who can reach port %d can run "
      "TensorFlow code as this user for the length of the run. Keeping it on "
      "loopback needs the LD_PRELOAD bind shim, which did not take effect "
      "here (%s). Run on a trusted network, firewall the port, or run the "
      "whole job in a private network namespace (`unshare -n`, BUILD_NOTES.md)."
      "\n%s", "=" * 78, worker.process.pid, ", ".join(worker.listening),
      worker.port, worker.shim_problem or "the worker bound anyway",
      "=" * 78)


def use_local_worker(**worker_args: Any) -> LocalWorker:
  """Starts a `LocalWorker` and makes it TFF's default context.

  Args:
    **worker_args: passed to `LocalWorker`.

  Returns:
    The worker. A computation run after it stopped raises
    `WorkerStoppedError`; call this again to start a new one.
  """
  worker = LocalWorker(**worker_args)

  def check_alive() -> None:
    if not worker.alive():
      raise WorkerStoppedError(
          f"TFF's local worker (pid {worker.process.pid}) has stopped (exit "
          f"code {worker.process.returncode}); tff_niid does not restart it. "
          "Call runtime.use_local_worker() to run computations again.")

  context = tff.framework.SyncExecutionContext(
      **_context_args(executor_factory(worker.stub, check_alive)))
  _contexts.add(context)
  tff.framework.set_default_context(context)
  return worker


def mark_safe(context: Any) -> Any:
  """Records that `context` was chosen on purpose (see ensure_local_worker)."""
  _contexts.add(context)
  return context


def _is_tff_default(context: Any) -> bool:
  factory = getattr(context, "executor_factory", None)
  stack_fn = getattr(factory, "_executor_stack_fn", None)
  return getattr(stack_fn, "__qualname__", "") == _TFF_LOCAL_STACK_FN


def _no_context(context: Any) -> bool:
  """Whether `context` is TFF's stand-in for none, which `shutdown` leaves
  (it fails every computation with advice to install TFF's own)."""
  return type(context).__name__ == "RuntimeErrorContext"


def ensure_local_worker() -> Optional[LocalWorker]:
  """Installs `use_local_worker()` unless the current context is one made by
  tff_niid or set by the user: replaces only TFF's own import-time local
  context (whose worker listens on all interfaces) and the no-context that
  `shutdown` leaves."""
  current = tff.framework.get_context_stack().current
  if current in _contexts or not (_is_tff_default(current) or
                                  _no_context(current)):
    return None
  return use_local_worker()


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
  """SIGINT (how TFF stops a worker), then SIGKILL after `timeout` seconds."""
  if process.poll() is None:
    process.send_signal(signal.SIGINT)
    try:
      process.wait(timeout)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def shutdown() -> None:
  """Stops every TFF worker of this process and drops the default context.

  `algorithms.build_process` and `training.train` start a worker again
  (`ensure_local_worker`); elsewhere call `use_local_worker()` to run
  computations again in the same process.
  """
  for worker in list(_workers):
    worker.stop()
  _stop_tff_default_workers()
  tff.test.set_no_default_context()
  gc.collect()


def _refuse_to_start_worker() -> Any:
  raise WorkerStoppedError("TFF's local worker was stopped by "
                           "tff_niid.runtime.shutdown(); call "
                           "runtime.use_local_worker() to run computations "
                           "again.")


def _stop_tff_default_workers() -> None:
  """Stops the worker of TFF's own local context, if anything used it, and
  keeps it from restarting.

  TFF stops that worker only in `ServiceManager.__del__`. A signal that lands
  while a round runs breaks that twice (both seen, BUILD_NOTES.md): the
  computation in flight keeps the ServiceManager alive, and once the worker
  is stopped TFF retries the invocation (`RetryableError`) and the
  ServiceManager starts a new, orphaned worker. So each ServiceManager first
  loses the ability to start a worker, then its worker is stopped.
  """
  for obj in gc.get_objects():
    if type(obj).__qualname__ == _SERVICE_MANAGER:
      obj.get_stub = _refuse_to_start_worker
      process, obj._process = obj._process, None  # pylint: disable=protected-access
      if isinstance(process, subprocess.Popen):
        stop_process(process)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
  del frame
  raise SystemExit(128 + signum)


def install_cleanup() -> None:
  """For programs (not imported by the library): registers `shutdown` at exit
  and makes SIGTERM exit normally, so checkpoints and logs close. Idempotent.

  It also undoes an inherited "ignore SIGINT": a shell starts background jobs
  (`cmd &`) with SIGINT ignored, which exec'd children inherit, and TFF's own
  worker, made immune to the SIGINT TFF stops it with, hung the exit.
  """
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
    signal.signal(signal.SIGINT, signal.default_int_handler)


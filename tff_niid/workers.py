"""Running TFF computations on several C++ workers (TFF's remote stack).

A worker is TFF's own `worker_binary` (the executor service the local
context also uses). `remote_execution_context` builds, from `tff.framework`
pieces, one remote context per worker and joins them with TFF's mergeable
context: each round the sampled clients are split across the workers and
their results merged — the same FedAvg, on more processes or hosts.

  --workers=local:2                   start two workers on this machine
  --workers=10.0.0.5:8000,10.0.0.6:8000   use workers already running

Local workers are started with PR_SET_PDEATHSIG, so they die with the Python
process even when it is SIGKILLed, and are stopped at exit otherwise.
`worker_binary` listens on all interfaces (it has no bind-address flag): on a
shared network, firewall the ports (BUILD_NOTES.md, "Several workers").
"""

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import time

import grpc
import portpicker
import tensorflow_federated as tff

from tff_niid import runtime

runtime.install_cleanup()

WORKER_BINARY = os.path.join(os.path.dirname(tff.__file__), "data",
                             "worker_binary")
_GRPC_OPTIONS = [("grpc.max_message_length", 2_000_000_000),
                 ("grpc.max_receive_message_length", 2_000_000_000),
                 ("grpc.max_send_message_length", 2_000_000_000)]
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
  """Runs in the child before exec: SIGKILL it when the parent dies, and let
  SIGINT (how it is stopped) through even if our parent ignored it."""
  ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG,
                                                   signal.SIGKILL)
  signal.signal(signal.SIGINT, signal.SIG_DFL)


class LocalWorker:
  """A `worker_binary` subprocess on this machine."""

  def __init__(self, log_path=None):
    self.port = portpicker.pick_unused_port()
    self.address = f"127.0.0.1:{self.port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # pylint: disable=consider-using-with
    self.process = subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
        [WORKER_BINARY, f"--port={self.port}"], stdout=log,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent)
    if log_path:
      log.close()
    atexit.register(self.stop)

  def stop(self, timeout=10):
    runtime.stop_process(self.process, timeout)


def start_local_workers(num_workers, *, log_dir=None):
  """Starts `num_workers` local workers; their output goes to log_dir/ or
  nowhere (never to our stdout, which they would otherwise hold open)."""
  if num_workers < 1:
    raise ValueError(f"num_workers must be >= 1; got {num_workers}.")
  if log_dir:
    os.makedirs(log_dir, exist_ok=True)
  return [LocalWorker(os.path.join(log_dir, f"worker_{i}.log")
                      if log_dir else None) for i in range(num_workers)]


def _remote_context(address, ready_timeout):
  channel = grpc.insecure_channel(address, options=_GRPC_OPTIONS)
  stub = tff.framework.RemoteExecutorGrpcStub(channel)
  deadline = time.monotonic() + ready_timeout
  while not stub.is_ready:
    if time.monotonic() > deadline:
      raise ConnectionError(
          f"TFF worker at {address} is not ready after {ready_timeout:.0f} s; "
          "is worker_binary running there with --port set to that port?")
    time.sleep(0.2)

  def executor_fn(cardinalities):
    # The merge step runs with no CLIENTS cardinality; without a default the
    # worker answers NOT_FOUND "No cardinality provided for clients".
    cardinalities.setdefault(tff.CLIENTS, 0)
    executor = tff.framework.RemoteExecutor(stub)
    executor.set_cardinalities(cardinalities)
    return executor

  return tff.framework.AsyncExecutionContext(
      executor_fn=tff.framework.ResourceManagingExecutorFactory(executor_fn),
      compiler_fn=tff.backends.native.desugar_and_transform_to_native,
      transform_args=tff.tensorflow.transform_args,
      transform_result=tff.tensorflow.transform_result)


def remote_execution_context(addresses, *, ready_timeout=60.0):
  """A mergeable execution context over workers at "host:port" addresses."""
  if not addresses:
    raise ValueError("need at least one worker address.")
  return tff.backends.native.create_mergeable_comp_execution_context(
      [_remote_context(a, ready_timeout) for a in addresses])


@contextlib.contextmanager
def use_workers(addresses):
  """Runs TFF computations on `addresses` inside the block.

  Afterwards TFF's local context is installed again (its worker starts on
  the next computation).
  """
  tff.framework.set_default_context(remote_execution_context(addresses))
  try:
    yield
  finally:
    runtime.shutdown()
    runtime.restart()


def parse_workers_flag(value, *, log_dir=None):
  """`local:N` or `host:port,host:port` -> (addresses, started LocalWorkers)."""
  value = (value or "").strip()
  if value.startswith("local:"):
    count = value.split(":", 1)[1]
    if not count.isdigit() or int(count) < 1:
      raise ValueError(f"--workers=local:N needs N >= 1; got {value!r}.")
    started = start_local_workers(int(count), log_dir=log_dir)
    return [w.address for w in started], started
  addresses = [a.strip() for a in value.split(",") if a.strip()]
  for address in addresses:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
      raise ValueError(f"worker address {address!r} is not host:port.")
  if not addresses:
    raise ValueError("--workers needs local:N or host:port[,host:port...].")
  return addresses, []

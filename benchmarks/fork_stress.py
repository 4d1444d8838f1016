"""Children that die before exec, started beside busy gRPC threads.

  .venv/bin/python -m benchmarks.fork_stress [--children=2000] [--threads=4]

`--threads` threads keep calling a local TFF worker over gRPC (TFF's stub
readiness and a readiness check on a fresh channel, in a loop) while the
main thread starts `--children` short-lived children (`/bin/true`),
alternating two ways:

- `preexec_fn`: how `runtime.LocalWorker` started its worker before, with
  the set-up done by a Python function in the forked child;
- `worker_exec.py`: how it starts it now, `python -I -S worker_exec.py`
  doing the set-up and then the exec.

Printed per way: the children's exit codes (-6 is SIGABRT, a gRPC check
failure in the child before its exec; "hung" a child still running after
`--hang_seconds`, then killed: a forked child can stall before its exec,
inside `Popen`) and the seconds from starting the children to their exits
(hung ones left out), set-up and exec included.
"""

import collections
import functools
import os
import subprocess
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import grpc
import psutil
import tensorflow_federated as tff

from tff_niid import runtime
from tff_niid import worker_exec

_CHILDREN = flags.DEFINE_integer("children", 2000, "Children per way.",
                                 lower_bound=1)
_HANG_SECONDS = flags.DEFINE_float(
    "hang_seconds", 30, "A child running this long has hung.", lower_bound=1)
_THREADS = flags.DEFINE_integer("threads", 4, "Threads calling the worker.",
                                lower_bound=1)


def _busy(address: str, stop: threading.Event) -> None:
  stub = tff.framework.RemoteExecutorGrpcStub(grpc.insecure_channel(address))
  while not stop.is_set():
    stub.is_ready  # pylint: disable=pointless-statement
    with grpc.insecure_channel(address) as channel:
      try:
        grpc.channel_ready_future(channel).result(timeout=1)
      except grpc.FutureTimeoutError:
        pass


def _kill_hung_children(spare: int, killed: set[int],
                        stop: threading.Event) -> None:
  """SIGKILLs our children (but `spare`) older than --hang_seconds."""
  while not stop.wait(1):
    for child in psutil.Process().children():
      try:
        if (child.pid != spare and
            time.time() - child.create_time() > _HANG_SECONDS.value):
          killed.add(child.pid)
          child.kill()
      except psutil.NoSuchProcess:
        pass


def _start(way: str) -> subprocess.Popen:
  if way == "preexec_fn":
    args = ["/bin/true"]
    preexec_fn = functools.partial(worker_exec.prepare, os.getpid())
  else:
    args = worker_exec.command(["/bin/true"])
    preexec_fn = None
  return subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
      args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL, start_new_session=True,
      preexec_fn=preexec_fn)


def main(argv: list[str]) -> None:
  del argv
  runtime.install_cleanup()
  worker = runtime.LocalWorker()
  stop = threading.Event()
  threads = [threading.Thread(target=_busy, args=(worker.address, stop),
                              daemon=True) for _ in range(_THREADS.value)]
  killed: set[int] = set()
  threads.append(threading.Thread(
      target=_kill_hung_children, args=(worker.process.pid, killed, stop),
      daemon=True))
  for thread in threads:
    thread.start()
  ways = ("preexec_fn", "worker_exec.py")
  codes: dict[str, collections.Counter] = {way: collections.Counter()
                                           for way in ways}
  seconds = dict.fromkeys(ways, 0.0)
  try:
    for _ in range(_CHILDREN.value):
      for way in ways:
        start = time.perf_counter()
        child = _start(way)
        code = child.wait()
        if child.pid in killed:
          codes[way]["hung"] += 1
        else:
          codes[way][code] += 1
          seconds[way] += time.perf_counter() - start
  finally:
    stop.set()
    worker.stop()
  print(f"{_CHILDREN.value} children per way, {_THREADS.value} threads "
        "calling a worker over gRPC meanwhile")
  for way in ways:
    print(f"{way:>15}: exit codes {dict(sorted(codes[way].items(), key=str))}, "
          f"{seconds[way]:.1f} s from start to exit")


if __name__ == "__main__":
  app.run(main)

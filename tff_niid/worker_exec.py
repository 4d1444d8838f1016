"""Sets up a TFF worker process, then becomes the worker (stdlib only).

`runtime.LocalWorker` runs this file as a script (`command`),

    python -I -S worker_exec.py PARENT_PID WORKER_BINARY [ARGS...]

and it execs WORKER_BINARY in its own process, so the worker keeps this
pid. Before the exec it does what Python's `preexec_fn` used to do in the
forked child:

- asks for SIGKILL when its parent (thread) dies, and exits at once if the
  parent (PARENT_PID) is already gone; the request survives the exec;
- restores SIGINT's default (how `runtime.stop_process` stops a worker),
  which a parent run as a background job passes on ignored, and SIGPIPE's
  and SIGXFSZ's, which Python ignores and an exec would pass on (what
  `subprocess`'s `restore_signals` does for a program it starts itself);
- gives its session's scheduler autogroup its own nice, so that a niced
  caller's worker is niced too (a new session is a new autogroup, whose
  nice, 0, is the one that counts between autogroups on Linux).

Why a separate process and not `preexec_fn`: with `preexec_fn`, Python must
`fork()` (not `vfork()`) and run code in the child, and in a process whose
other threads are inside gRPC calls the child sometimes aborts or stalls
before the exec ("Check failed: next_worker->state == KICKED" in gRPC's
poller; CI failed on it once). `benchmarks/fork_stress.py` measures it
(docs/benchmarks.md). Without `preexec_fn`, `subprocess` (Python >= 3.10) starts
this script with `vfork()`, which runs no fork handlers and no Python code
in the child; Python 3.9 forks, but still runs no Python code there.
"""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_USAGE = "usage: worker_exec.py PARENT_PID WORKER_BINARY [ARGS...]"


def command(argv: list[str]) -> list[str]:
  """The command that runs `argv` (a program and its arguments) as a child
  of this process, set up by this script."""
  if not sys.executable:
    raise RuntimeError("cannot start a TFF worker: this Python does not "
                       "know its interpreter (sys.executable is empty), "
                       "which runs worker_exec.py.")
  return [sys.executable, "-I", "-S", os.path.abspath(__file__),
          str(os.getpid()), *argv]


def prepare(parent_pid: int) -> None:
  """Everything before the exec (this process becomes the worker)."""
  ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG,
                                                   signal.SIGKILL)
  if os.getppid() != parent_pid:
    sys.exit(1)  # the parent died before the request: nobody to serve
  for name in ("SIGINT", "SIGPIPE", "SIGXFSZ"):
    if hasattr(signal, name):
      signal.signal(getattr(signal, name), signal.SIG_DFL)
  # Lowering the priority is always allowed; where the kernel has no
  # autogroups, or the write is refused, nothing changes.
  try:
    with open("/proc/self/autogroup", "w", encoding="ascii") as autogroup:
      autogroup.write(str(os.nice(0)))
  except OSError:
    pass


def main(argv: list[str]) -> None:
  if len(argv) < 3 or not argv[1].isdecimal():
    sys.exit(_USAGE)
  prepare(int(argv[1]))
  try:
    os.execv(argv[2], argv[2:])
  except OSError as e:
    # One line where the worker's output goes (a log, or nowhere);
    # runtime.LocalWorker checks the binary before it starts us.
    print(f"worker_exec.py: cannot run {argv[2]}: {e}", file=sys.stderr)
    os._exit(127)  # pylint: disable=protected-access


if __name__ == "__main__":
  main(sys.argv)

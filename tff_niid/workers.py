"""Running TFF computations on several C++ workers (TFF's remote stack).

A worker is TFF's own `worker_binary` (the executor service the local
context also uses). `remote_execution_context` builds, from `tff.framework`
pieces, one remote context per worker and joins them with TFF's mergeable
context: each round the sampled clients are split across the workers and
their results merged — the same FedAvg, on more processes or hosts.

  --workers=local:2                   start two workers on this machine
  --workers=10.0.0.5:8000,10.0.0.6:8000   use workers already running

Local workers are `runtime.LocalWorker`s: loopback only, and they die with
the Python process even when it is SIGKILLed. A worker on another host is
started there by hand and listens on all its interfaces (worker_binary has no
bind-address flag): run such workers on a private network or firewall their
ports (BUILD_NOTES.md, "Several workers").
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import contextlib
import os
from typing import Any, Iterator, Optional, Sequence

import tensorflow_federated as tff

from tff_niid import runtime


def start_local_workers(num_workers: int, *, log_dir: Optional[str] = None
                        ) -> list[runtime.LocalWorker]:
  """Starts `num_workers` loopback-only `runtime.LocalWorker`s; their output
  goes to log_dir/ or nowhere (never to our stdout, which they would
  otherwise hold open)."""
  if num_workers < 1:
    raise ValueError(f"num_workers must be >= 1; got {num_workers}.")
  if log_dir:
    os.makedirs(log_dir, exist_ok=True)
  return [runtime.LocalWorker(log_path=os.path.join(log_dir, f"worker_{i}.log")
                              if log_dir else None)
          for i in range(num_workers)]


def remote_execution_context(addresses: Sequence[str], *,
                             ready_timeout: float = 60.0) -> Any:
  """A mergeable execution context over workers at "host:port" addresses."""
  if not addresses:
    raise ValueError("need at least one worker address.")
  return tff.backends.native.create_mergeable_comp_execution_context(
      [runtime.async_context(runtime.wait_until_ready(a, ready_timeout))
       for a in addresses])


@contextlib.contextmanager
def use_workers(addresses: Sequence[str]) -> Iterator[None]:
  """Runs TFF computations on `addresses` inside the block.

  Afterwards the previous default context is current again. Workers started
  by `start_local_workers` keep running until stopped (or until we exit).
  """
  previous = tff.framework.get_context_stack().current
  tff.framework.set_default_context(
      runtime.mark_safe(remote_execution_context(addresses)))
  try:
    yield
  finally:
    tff.framework.set_default_context(previous)


def read_workers_flag(value: Optional[str]) -> tuple[int, list[str]]:
  """`local:N` -> (N, []); `host:port,host:port` -> (0, the addresses).
  Starts nothing: checks the syntax only (ValueError)."""
  value = (value or "").strip()
  if value.startswith("local:"):
    count = value.split(":", 1)[1]
    if not count.isdigit() or int(count) < 1:
      raise ValueError(f"--workers=local:N needs N >= 1; got {value!r}.")
    return int(count), []
  addresses = [a.strip() for a in value.split(",") if a.strip()]
  for address in addresses:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
      raise ValueError(f"worker address {address!r} is not host:port.")
  if not addresses:
    raise ValueError("--workers needs local:N or host:port[,host:port...].")
  return 0, addresses


def parse_workers_flag(value: Optional[str], *, log_dir: Optional[str] = None
                       ) -> tuple[list[str], list[runtime.LocalWorker]]:
  """`local:N` or `host:port,host:port` -> (addresses, started LocalWorkers)."""
  count, addresses = read_workers_flag(value)
  if count:
    started = start_local_workers(count, log_dir=log_dir)
    return [w.address for w in started], started
  return addresses, []

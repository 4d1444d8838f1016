"""Where a TFF worker's CPU goes in a CNN round, per compiler: a perf profile.

  .venv/bin/python -m benchmarks.worker_profile [--rounds=3] [--epochs=2]

One client of the NIID-Bench shape (simple CNN `niid_cnn`, MNIST IID over 10
clients: 6,000 examples, B=64, SGD 0.05) trains on one local worker, the
round compiled by TFF's own compiler or by tff_niid's
(`tff_niid.compilation`). For each, after a warm-up round, Linux `perf
record` samples the worker process (`-F 499`, no call graphs) during
`--rounds` rounds; printed: the worker's CPU seconds per round (median) and
the `--top` symbols by share of the worker's samples, each with its share
under the other compiler, and the contraction, bias and activation op types
in the round's compiled graphs.
Needs `perf` on the PATH and permission to attach to the worker.
"""

import collections
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import psutil
import tensorflow_federated as tff

from tff_niid import clientdata
from tff_niid import compilation
from tff_niid import datasets
from tff_niid import models
from tff_niid import partition
from tff_niid import runtime
from tff_niid import training
from tensorflow_federated.python.tensorflow_libs import serialization_utils

_ROUNDS = flags.DEFINE_integer("rounds", 3, "Profiled rounds per compiler.")
_EPOCHS = flags.DEFINE_integer("epochs", 2, "Local epochs of the client.")
_TOP = flags.DEFINE_integer("top", 12, "Symbols shown per compiler.")
_COMPILERS = {
    "TFF's compiler": tff.backends.native.desugar_and_transform_to_native,
    "tff_niid's compiler": compilation.desugar_and_transform_to_native}
_OPS = ("Conv2D", "_FusedConv2D", "MatMul", "_FusedMatMul", "BiasAdd", "Relu")
_SAMPLE = re.compile(r"^\s*([0-9.]+)%\s+\[[.k]\]\s+(.*?)\s*$")
# The parts of an Eigen kernel's symbol that say what it computes: BiasAdd is
# a sum with a broadcast, Relu a max, ReluGrad a product with a comparison.
_EIGEN_PARTS = re.compile(r"scalar_\w+?_op|TensorBroadcastingOp|"
                          r"TensorReductionOp|TensorConversionOp|\w+Generator")


def _label(symbol: str) -> str:
  """`symbol`, an Eigen element-wise kernel as the operations it applies."""
  if "TensorExecutor<" not in symbol:
    return symbol[:100].rstrip()
  parts = dict.fromkeys(_EIGEN_PARTS.findall(symbol))  # ordered, unique
  return f"Eigen kernel: {', '.join(parts)}"


def _profile(pid: int, run: Callable[[], None], path: str) -> None:
  """Runs `run` while perf samples process `pid` into `path`."""
  perf = subprocess.Popen(  # pylint: disable=consider-using-with
      ["perf", "record", "-q", "-F", "499", "-o", path, "-p", str(pid)],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  time.sleep(1)  # perf attaches
  try:
    run()
  finally:
    perf.send_signal(signal.SIGINT)
    perf.wait()


def _symbol_shares(path: str) -> dict[str, float]:
  """{symbol (`_label`): % of samples} from a perf data file."""
  report = subprocess.run(
      ["perf", "report", "-i", path, "--no-children", "--sort", "symbol",
       "--stdio"], capture_output=True, text=True, check=True).stdout
  shares: dict[str, float] = collections.defaultdict(float)
  for line in report.splitlines():
    match = _SAMPLE.match(line)
    if match:
      shares[_label(match.group(2))] += float(match.group(1))
  return shares


def _client_graph_ops(native: Any) -> collections.Counter:
  """How many nodes of each of `_OPS` the graphs of a compiled computation
  hold."""
  ops: collections.Counter = collections.Counter()

  def count(block):
    if (isinstance(block, tff.framework.CompiledComputation) and
        block.proto.WhichOneof("computation") == "tensorflow"):
      graph_def = serialization_utils.unpack_graph_def(
          block.proto.tensorflow.graph_def)
      ops.update(n.op for n in graph_def.node if n.op in _OPS)
    return block, False

  tff.framework.transform_postorder(native.to_building_block(), count)
  return ops


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  runtime.install_cleanup()
  worker = runtime.use_local_worker()
  mnist = datasets.load("mnist")
  client_data = clientdata.to_client_data(
      partition.iid(mnist.train_labels, 10, seed=0), mnist.train_images,
      mnist.train_labels, worker_data_dir=tempfile.mkdtemp(prefix="profile_"))
  rounds = clientdata.RoundInputs(
      training.build_fedavg(models.build_model_fn(
          "niid_cnn", clientdata.BATCH_SPEC), client_lr=0.05),
      client_data, batch_size=64, local_epochs=_EPOCHS.value)
  factory = tff.framework.get_context_stack().current.executor_factory
  worker_process = psutil.Process(worker.process.pid)
  shares, cpu = {}, {}
  for name, compiler_fn in _COMPILERS.items():
    context = tff.framework.SyncExecutionContext(
        executor_fn=factory, compiler_fn=compiler_fn,
        transform_args=tff.tensorflow.transform_args,
        transform_result=tff.tensorflow.transform_result)
    print(f"{name}: client graph ops "
          f"{dict(_client_graph_ops(compiler_fn(rounds.process.next)))}")
    with tff.framework.get_context_stack().install(context):
      state = rounds.process.initialize()
      rounds.process.next(state, rounds(["0"], [0]))
      seconds = []

      def run():
        for r in range(1, _ROUNDS.value + 1):
          start = sum(worker_process.cpu_times()[:2])
          rounds.process.next(state, rounds(["0"], [r]))  # pylint: disable=cell-var-from-loop
          seconds.append(sum(worker_process.cpu_times()[:2]) - start)

      with tempfile.TemporaryDirectory() as tmp:
        _profile(worker.process.pid, run, os.path.join(tmp, "perf.data"))
        shares[name] = _symbol_shares(os.path.join(tmp, "perf.data"))
      cpu[name] = statistics.median(seconds)
  (first, second) = _COMPILERS
  print(f"\nworker CPU s per round (median of {_ROUNDS.value}, 1 client x "
        f"6,000 examples, B=64, E={_EPOCHS.value}): {first} "
        f"{cpu[first]:.2f}, {second} {cpu[second]:.2f}")
  for name, other in ((first, second), (second, first)):
    print(f"\n## Top symbols of the worker, {name} (% of samples; under "
          f"{other})\n")
    print(f"| symbol | {name} | {other} |")
    print("|---|---:|---:|")
    for symbol, share in sorted(shares[name].items(),
                                key=lambda item: -item[1])[:_TOP.value]:
      print(f"| `{symbol}` | {share:.2f} | "
            f"{shares[other].get(symbol, 0.0):.2f} |")


if __name__ == "__main__":
  app.run(main)

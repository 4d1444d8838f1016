"""TFF FedAvg rounds (tff_niid) vs the same work in plain TensorFlow.

  .venv/bin/python -m benchmarks.training_bench [--repeats=3]

Every comparison is measured side by side in one run: the variants of a round
shape take turns (A, B, C, A, B, C, ...) after one untimed warm-up round
each, and medians are reported, so background load hits all alike. All
variants train the same clients on the same batches (same shuffle seeds),
with SGD at learning rate 0.05 on the clients:

- plain TF: `plain_fedavg.PlainFedAvg`, FedAvg written out in plain
  TensorFlow (local SGD per client, average weighted by example count), the
  floor of a FedAvg round on this machine;
- TFF (tff_niid): a round as `training.train` runs it: client datasets built
  on the worker from ids (`clientdata.RoundInputs`);
- TFF, datasets sent: the same process fed datasets built here, which TFF
  serializes with their data into the round's request (what tff_niid did
  before its rounds sent ids).

A timed round includes making its inputs: datasets for plain TF and for
TFF with datasets sent, ids for tff_niid (whose worker then makes the
datasets). Sections (`--sections`): (1) `rounds`: round time per round
shape; (2) `bytes`: bytes sent to the worker per round against cohort size;
(3) `workers`: one vs two local workers; (4) `settings`: the settings of the
TFF worker: how many client computations it runs at once
(`--max_concurrent_computation_calls`: worker_binary's default 4 x cores
against tff_niid's one per core) and TensorFlow's
threads (as `grid.py --cell_threads=1` sets them); (5) `compiler`: CNN rounds
compiled by TFF's own compiler against tff_niid's (`tff_niid.compilation`,
which adds grappler's CPU fusions), with plain TF, in wall seconds and in CPU
seconds of this process and its workers together (less sensitive than wall
time to other processes' load); (6) `algorithms`: rounds of the algorithms
tff_niid builds itself (scaffold, fednova: `tff_niid.local_training`)
against TFF's FedAvg builder, on the same clients and batches, with plain
TF. The last line is machine-readable:
`tff/plain throughput: 10=.. 50=.. 100=.. 500=..` (2NN, B=10, E=1), printed
when `rounds` is among the sections.
"""

import dataclasses
import os
import statistics
import tempfile
import time
from typing import Any, Callable
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import psutil
import tensorflow_federated as tff

from benchmarks import plain_fedavg
from benchmarks import wire
from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import models
from tff_niid import partition
from tff_niid import runtime
from tff_niid import training
from tff_niid import workers

_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats per variant.")
_ALL_SECTIONS = ["rounds", "bytes", "workers", "settings", "compiler",
                 "algorithms"]
# The algorithms tff_niid builds itself, timed against TFF's FedAvg.
_OWN_ALGORITHMS = ("scaffold", "fednova")
_SECTIONS = flags.DEFINE_multi_enum(
    "sections", _ALL_SECTIONS, _ALL_SECTIONS,
    "Sections to run (see the module docstring); repeat the flag for several.")
_LR = 0.05
_COHORTS = (10, 50, 100, 500)  # 2NN, B=10, E=1: the machine-readable line
_ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
# name: (runtime.LocalWorker arguments, environment of the worker)
_WORKER_SETTINGS = {
    "worker_binary default (4 x cores calls)": (
        {"max_concurrent_computation_calls": -1}, {}),
    "1 call per core (tff_niid default)": ({}, {}),
    "1 TF thread, 4 x cores calls": (
        {"max_concurrent_computation_calls": -1}, _ONE_THREAD),
    "1 TF thread, 1 call per core": ({}, _ONE_THREAD),
}


@dataclasses.dataclass(frozen=True)
class Shape:
  """A round: `model` on the first `clients` clients of `client_data`."""
  name: str
  model: str
  client_data: clientdata.PartitionClientData
  clients: int
  batch_size: int
  local_epochs: int = 1

  @property
  def client_ids(self) -> list[str]:
    return self.client_data.client_ids[:self.clients]

  def seeds(self, repeat: int) -> list[int]:
    return [training._shuffle_seed(0, repeat, int(c))  # pylint: disable=protected-access
            for c in self.client_ids]

  @property
  def examples(self) -> int:
    return sum(len(self.client_data.client_input(c, 0)["indices"])
               for c in self.client_ids)

  def datasets(self, repeat: int) -> list[Any]:
    return [clientdata.local_training_batches(
        self.client_data.create_tf_dataset_for_client(c),
        batch_size=self.batch_size, local_epochs=self.local_epochs, seed=s)
            for c, s in zip(self.client_ids, self.seeds(repeat))]


# A variant runs the round of repeat number r, inputs included.
Variant = Callable[[int], None]


def _tff_variant(shape: Shape, client_data: Any,
                 algorithm: str = "fedavg") -> Variant:
  """Rounds of `algorithm` as `training.train` runs them on `client_data`:
  ids for a PartitionClientData, datasets for any other ClientData."""
  rounds = clientdata.RoundInputs(
      algorithms.build_process(
          algorithm, models.build_model_fn(shape.model, clientdata.BATCH_SPEC),
          algorithms.Hyperparameters(client_lr=_LR),
          num_clients=len(client_data.client_ids)),
      client_data, batch_size=shape.batch_size,
      local_epochs=shape.local_epochs)
  state = [rounds.process.initialize()]

  def run(repeat):
    state[0] = rounds.next(
        state[0], rounds(shape.client_ids, shape.seeds(repeat)),
        range(shape.clients)).state

  return run


def _sent_as_values(client_data: clientdata.PartitionClientData) -> Any:
  """The same clients as a generic ClientData: their datasets are sent."""
  return tff.simulation.datasets.ClientData.from_clients_and_tf_fn(
      client_data.client_ids, client_data.serializable_dataset_fn)


def _plain_variant(shape: Shape) -> Variant:
  fedavg = plain_fedavg.PlainFedAvg(shape.model, client_lr=_LR)
  return lambda r: fedavg.round(shape.datasets(r))


def _cpu_seconds() -> float:
  """User + system CPU seconds so far of this process and its live children
  (the TFF workers)."""
  me = psutil.Process()
  return sum(sum(p.cpu_times()[:2]) for p in [me] + me.children(recursive=True))


def _interleaved_runs(variants: dict[str, Variant], repeats: int
                      ) -> dict[str, tuple[float, float]]:
  """{name: (median wall seconds, median CPU seconds of this process and its
  workers)}: one warm-up each, then the variants in turn."""
  wall: dict[str, list[float]] = {name: [] for name in variants}
  cpu: dict[str, list[float]] = {name: [] for name in variants}
  for variant in variants.values():
    variant(0)
  for r in range(1, repeats + 1):
    for name, variant in variants.items():
      cpu_start, start = _cpu_seconds(), time.perf_counter()
      variant(r)
      wall[name].append(time.perf_counter() - start)
      cpu[name].append(_cpu_seconds() - cpu_start)
  return {name: (statistics.median(wall[name]), statistics.median(cpu[name]))
          for name in variants}


def _interleaved_medians(variants: dict[str, Variant],
                         repeats: int) -> dict[str, float]:
  """{name: median wall seconds} of `_interleaved_runs`."""
  return {name: wall for name, (wall, _) in
          _interleaved_runs(variants, repeats).items()}


def _in_context(variant: Variant, context: Any) -> Variant:
  """`variant` run in the TFF execution context `context`."""

  def in_context(repeat):
    with tff.framework.get_context_stack().install(context):
      variant(repeat)

  return in_context


def _bytes_sent(variant: Variant) -> dict[str, int]:
  with wire.recorded_requests() as requests:
    variant(0)
  return wire.sent_bytes(requests)


def _local_worker_context(worker_args: dict[str, Any],
                          environment: dict[str, str]) -> tuple[Any, Any]:
  """(LocalWorker, its execution context), the default context unchanged;
  the worker starts with `environment` added to ours (TensorFlow reads its
  thread counts there)."""
  default = tff.framework.get_context_stack().current
  with mock.patch.dict(os.environ, environment):
    worker = runtime.use_local_worker(**worker_args)
  context = tff.framework.get_context_stack().current
  tff.framework.set_default_context(default)
  return worker, context


def _print_round_table(variants: dict[Shape, dict[str, Variant]]
                       ) -> dict[int, float]:
  """Section 1; returns {2NN clients per round: TFF / plain throughput}."""
  print(f"## FedAvg rounds on MNIST, Dirichlet(0.5) clients (100 clients; "
        f"1,000 for 500 per round; NIID-Bench: IID, 10 clients), SGD "
        f"{_LR}; median of {_REPEATS.value} interleaved repeats\n")
  print("| round shape | examples | plain TF (s) | TFF, tff_niid (s) | "
        "TFF / plain throughput | TFF, datasets sent (s) | sent / plain |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  ratios = {}
  for shape, fns in variants.items():
    med = _interleaved_medians(fns, _REPEATS.value)
    ratio = med["plain"] / med["tff"]
    if shape.model == "2nn":
      ratios[shape.clients] = ratio
    print(f"| {shape.name} | {shape.examples:,} | {med['plain']:.2f} | "
          f"{med['tff']:.2f} | {ratio:.2f} | {med['sent']:.2f} | "
          f"{med['plain'] / med['sent']:.2f} |", flush=True)
  return ratios


def _print_bytes_table(variants: dict[Shape, dict[str, Variant]]) -> None:
  print("\n## Bytes sent to the worker per round: computation + values "
        "(MB)\n")
  print("| round shape | examples | ids (tff_niid) | datasets sent |")
  print("|---|---:|---:|---:|")
  mb = lambda sizes: (f"{sizes['computation'] / 1e6:.2f} + "
                      f"{sizes['values'] / 1e6:.2f}")
  for shape, fns in variants.items():
    print(f"| {shape.name} | {shape.examples:,} | "
          f"{mb(_bytes_sent(fns['tff']))} | {mb(_bytes_sent(fns['sent']))} |",
          flush=True)


def _print_settings_table(title: str, variants: dict[str, Variant],
                          against: str = "plain") -> None:
  """Interleaved medians of `variants`, and each one's speed relative to
  the variant named `against` (>1: faster)."""
  med = _interleaved_medians(variants, _REPEATS.value)
  print(f"\n## {title}\n")
  print(f"| variant | s/round | {against} / this |")
  print("|---|---:|---:|")
  for name, seconds in med.items():
    print(f"| {name} | {seconds:.2f} | {med[against] / seconds:.2f} |",
          flush=True)


def _tff_compiler_context() -> Any:
  """A context on the default context's worker that compiles with TFF's own
  compiler (tff_niid's before `tff_niid.compilation`)."""
  return tff.framework.SyncExecutionContext(
      executor_fn=tff.framework.get_context_stack().current.executor_factory,
      compiler_fn=tff.backends.native.desugar_and_transform_to_native,
      transform_args=tff.tensorflow.transform_args,
      transform_result=tff.tensorflow.transform_result)


def _print_compiler_table(variants: dict[Shape, dict[str, Variant]]) -> None:
  """Section 5: per shape, TFF's compiler vs tff_niid's vs plain TF."""
  print(f"\n## CNN rounds compiled by TFF's compiler vs tff_niid's "
        f"(tff_niid.compilation), ids-only rounds; median of "
        f"{_REPEATS.value} interleaved repeats; CPU = this process and its "
        f"workers\n")
  print("| round shape | variant | wall (s) | CPU (s) | plain / this, wall "
        "| plain / this, CPU |")
  print("|---|---|---:|---:|---:|---:|")
  for shape, fns in variants.items():
    runs = _interleaved_runs(fns, _REPEATS.value)
    plain_wall, plain_cpu = runs["plain"]
    for name, (wall, cpu) in runs.items():
      print(f"| {shape.name} | {name} | {wall:.2f} | {cpu:.2f} | "
            f"{plain_wall / wall:.2f} | {plain_cpu / cpu:.2f} |", flush=True)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  runtime.install_cleanup()
  runtime.use_local_worker()
  sections = set(_SECTIONS.value)
  mnist = datasets.load("mnist")
  labels = mnist.train_labels
  worker_data_dir = tempfile.mkdtemp(prefix="training_bench_")
  client_data = lambda part: clientdata.to_client_data(
      part, mnist.train_images, labels, worker_data_dir=worker_data_dir)
  dir100 = client_data(partition.dirichlet(labels, 100, alpha=0.5, seed=0))
  dir1000 = client_data(partition.dirichlet(labels, 1000, alpha=0.5, seed=0))
  iid10 = client_data(partition.iid(labels, 10, seed=0))
  shapes = [Shape(f"2NN, B=10, E=1, {k} clients", "2nn",
                  dir1000 if k > 100 else dir100, k, 10) for k in _COHORTS]
  shapes += [Shape(f"CNN, B=10, E=1, {k} clients", "cnn", dir100, k, 10)
             for k in (10, 100)]
  shapes.append(Shape("NIID-Bench CNN, B=64, E=10, 2 clients x 6,000",
                      "niid_cnn", iid10, 2, 64, 10))
  two_nn = {shape.clients: shape for shape in shapes[:len(_COHORTS)]}
  cnn_10 = shapes[len(_COHORTS)]

  # Every TFF process first: TFF builds Keras models inside a tf.compat.v1
  # Graph, which invalidates Keras models created before (BUILD_NOTES.md).
  variants = {shape: {"tff": _tff_variant(shape, shape.client_data),
                      "sent": _tff_variant(shape,
                                           _sent_as_values(shape.client_data))}
              for shape in shapes
              if sections & {"rounds", "bytes"}}
  started = []
  worker_variants: dict[str, Variant] = {}
  if "workers" in sections:
    for count in (1, 2):
      addresses, new_workers = workers.parse_workers_flag(f"local:{count}")
      started += new_workers
      worker_variants[f"{count} worker(s)"] = _in_context(
          _tff_variant(two_nn[100], two_nn[100].client_data),
          workers.remote_execution_context(addresses))
  settings_variants: dict[Shape, dict[str, Variant]] = {}
  if "settings" in sections:
    settings_variants = {two_nn[10]: {}, two_nn[100]: {}, cnn_10: {}}
    for name, (worker_args, environment) in _WORKER_SETTINGS.items():
      worker, context = _local_worker_context(worker_args, environment)
      started.append(worker)
      for shape, by_name in settings_variants.items():
        by_name[name] = _in_context(_tff_variant(shape, shape.client_data),
                                    context)
  compiler_variants: dict[Shape, dict[str, Variant]] = {}
  if "compiler" in sections:
    tff_compiler = _tff_compiler_context()
    compiler_variants = {shape: {
        "TFF's compiler": _in_context(_tff_variant(shape, shape.client_data),
                                      tff_compiler),
        "tff_niid's compiler": _tff_variant(shape, shape.client_data)}
                         for shape in (cnn_10, shapes[-1])}
  algorithm_variants: dict[Shape, dict[str, Variant]] = {}
  if "algorithms" in sections:
    algorithm_variants = {shape: {
        name: _tff_variant(shape, shape.client_data, name)
        for name in ("fedavg",) + _OWN_ALGORITHMS}
                          for shape in (two_nn[10], shapes[-1])}
  for shape, fns in variants.items():
    fns["plain"] = _plain_variant(shape)
  if worker_variants:
    worker_variants["plain"] = _plain_variant(two_nn[100])
  for by_shape in (settings_variants, compiler_variants, algorithm_variants):
    for shape, by_name in by_shape.items():
      by_name["plain"] = _plain_variant(shape)

  ratios = _print_round_table(variants) if "rounds" in sections else None
  if "bytes" in sections:
    _print_bytes_table({shape: variants[shape] for shape in two_nn.values()})
  if worker_variants:
    _print_settings_table(f"1 vs 2 local TFF workers ({two_nn[100].name}, "
                          "ids-only rounds)", worker_variants)
  for shape, by_name in settings_variants.items():
    _print_settings_table(f"TFF worker settings ({shape.name}, ids-only "
                          "rounds)", by_name)
  if compiler_variants:
    _print_compiler_table(compiler_variants)
  for shape, by_name in algorithm_variants.items():
    _print_settings_table(f"Algorithms ({shape.name}, ids-only rounds; "
                          "fedavg is TFF's builder)", by_name,
                          against="fedavg")
  for worker in started:
    worker.stop()
  if ratios is not None:
    print("\ntff/plain throughput: " + " ".join(
        f"{k}={ratios[k]:.2f}" for k in _COHORTS))


if __name__ == "__main__":
  app.run(main)

"""TFF FedAvg round vs the same work in plain TensorFlow, side by side.

  python benchmarks/training_bench.py

Same client datasets (tff_niid.clientdata), model, batch size, epochs and SGD
learning rate. The plain loop trains each sampled client from the global
weights with a `tf.function` SGD loop and averages the client weights by
example count: the compute floor of a FedAvg round on this machine. Repeats
are interleaved (A, B, A, B, ...) after one untimed warm-up round each, and
medians reported, so background load hits both sides alike.

Sections: (1) TFF (iterator loop) vs TFF (TFF's default reduce loop) vs plain
TF, per model; (2) TFF round time vs clients per round; (3) 1 vs 2 local
TFF workers.
"""

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import models
from tff_niid import partition
from tff_niid import runtime
from tff_niid import workers

_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats per variant.")
_CLIENTS = flags.DEFINE_integer("clients_per_round", 10, "Clients per round.")
_BATCH = flags.DEFINE_integer("batch_size", 10, "Batch size.")
_LR = 0.05


def _client_datasets(client_data, ids, seed):
  return [clientdata.preprocess(client_data.create_tf_dataset_for_client(c),
                                batch_size=_BATCH.value, seed=seed)
          for c in ids]


def _tff_round_fn(model_name, loop):
  """A callable running one TFF FedAvg round on given datasets."""
  process = tff.learning.algorithms.build_weighted_fed_avg(
      models.build_model_fn(model_name, clientdata.BATCH_SPEC),
      client_optimizer_fn=tff.learning.optimizers.build_sgdm(_LR),
      server_optimizer_fn=tff.learning.optimizers.build_sgdm(1.0),
      loop_implementation=loop)
  state = [process.initialize()]

  def run(data):
    state[0] = process.next(state[0], data).state
  return run


def _plain_round_fn(model_name):
  """One FedAvg round in plain TF: local SGD per client, weighted average."""
  model = models.create_keras_model(model_name)
  loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  global_weights = [v.numpy() for v in model.trainable_variables]

  @tf.function
  def train_client(dataset):
    count = tf.constant(0, tf.int64)
    for batch in dataset:
      with tf.GradientTape() as tape:
        loss = loss_fn(batch["y"], model(batch["x"], training=True))
      grads = tape.gradient(loss, model.trainable_variables)
      for var, grad in zip(model.trainable_variables, grads):
        var.assign_sub(_LR * grad)
      count += tf.shape(batch["y"], out_type=tf.int64)[0]
    return count

  def run(data):
    total, weighted = 0, [np.zeros_like(w) for w in global_weights]
    for dataset in data:
      for var, w in zip(model.trainable_variables, global_weights):
        var.assign(w)
      n = int(train_client(dataset))
      total += n
      for acc, var in zip(weighted, model.trainable_variables):
        acc += n * var.numpy()
    global_weights[:] = [w / total for w in weighted]
  return run


def _interleaved_medians(variants, make_data, repeats):
  """{name: median seconds}: warm-up once each, then alternate variants."""
  times = {name: [] for name in variants}
  for name, fn in variants.items():
    fn(make_data(0))
  for r in range(1, repeats + 1):
    for name, fn in variants.items():
      data = make_data(r)
      start = time.perf_counter()
      fn(data)
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  runtime.install_cleanup()
  runtime.use_local_worker()
  mnist = datasets.load("mnist")
  part = partition.dirichlet(mnist.train_labels, 100, alpha=0.5, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  ids = cd.client_ids[:_CLIENTS.value]
  examples = int(part.sizes[:_CLIENTS.value].sum())
  make_data = lambda r: _client_datasets(cd, ids, seed=r)
  loops = tff.learning.LoopImplementation

  print(f"## FedAvg round: {_CLIENTS.value} clients ({examples} examples), "
        f"B={_BATCH.value}, E=1, Dirichlet(0.5) MNIST\n")
  print("| model | plain TF (s) | TFF iterator (s) | TFF reduce (s) | "
        "TFF iterator throughput / plain | reduce / plain |")
  print("|---|---:|---:|---:|---:|---:|")
  # All TFF processes first: TFF builds Keras models inside a tf.compat.v1
  # Graph, which invalidates Keras models created before (BUILD_NOTES.md).
  variants = {name: {"iterator": _tff_round_fn(name, loops.DATASET_ITERATOR),
                     "reduce": _tff_round_fn(name, loops.DATASET_REDUCE)}
              for name in ("2nn", "cnn")}
  for model_name, fns in variants.items():
    fns["plain"] = _plain_round_fn(model_name)
  for model_name, fns in variants.items():
    med = _interleaved_medians(fns, make_data, _REPEATS.value)
    print(f"| {model_name} | {med['plain']:.2f} | {med['iterator']:.2f} | "
          f"{med['reduce']:.2f} | {med['plain'] / med['iterator']:.2f} | "
          f"{med['plain'] / med['reduce']:.2f} |", flush=True)

  print("\n## TFF round time vs clients per round (2nn, iterator loop)\n")
  print("| clients per round | s/round | s/client |")
  print("|---:|---:|---:|")
  for k in (10, 50, 100):
    run = _tff_round_fn("2nn", loops.DATASET_ITERATOR)
    med = _interleaved_medians(
        {"tff": run},
        lambda r: _client_datasets(cd, cd.client_ids[:k], seed=r),  # pylint: disable=cell-var-from-loop
        _REPEATS.value)["tff"]
    print(f"| {k} | {med:.2f} | {med / k:.3f} |", flush=True)

  print("\n## 1 vs 2 local TFF workers (2nn, same clients)\n")
  hp = algorithms.Hyperparameters(client_lr=_LR)
  results = {}
  for label, count in (("1 worker", 1), ("2 workers", 2)):
    addresses, started = workers.parse_workers_flag(f"local:{count}")
    with workers.use_workers(addresses):
      process = algorithms.build_process(
          "fedavg", models.build_model_fn("2nn", clientdata.BATCH_SPEC), hp)
      state = [process.initialize()]

      def run(data, process=process, state=state):
        state[0] = process.next(state[0], data).state
      results[label] = _interleaved_medians({label: run}, make_data,
                                            _REPEATS.value)[label]
    for worker in started:
      worker.stop()
  print("| workers | s/round |")
  print("|---|---:|")
  for label, seconds in results.items():
    print(f"| {label} | {seconds:.2f} |")


if __name__ == "__main__":
  app.run(main)

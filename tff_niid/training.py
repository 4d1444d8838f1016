"""FedAvg-family training on a ClientData with TFF iterative processes.

The learning process comes from `tff.learning.algorithms`; client sampling
from `tff.simulation.build_uniform_sampling_fn` (a function of the round
number, so a resumed run samples the same clients); metrics rows go through
`tff.program.CSVFileReleaseManager` (which drops rows at or beyond a released
round, so a resumed run never duplicates rows). This module adds only the
glue: per-round client datasets, centralized evaluation and progress lines.
"""

import asyncio
import collections
import math
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import clientdata
from tff_niid import models
from tff_niid import runtime

runtime.install_cleanup()

METRICS_FILE = "metrics.csv"


def build_fedavg(model_fn, *, client_lr, server_lr=1.0, client_momentum=0.0):
  """Weighted FedAvg (McMahan et al. 2017) with SGD on clients and server.

  Uses TFF's iterator loop (`LoopImplementation.DATASET_ITERATOR`), measured
  faster on CPU than the default `DATASET_REDUCE` (BUILD_NOTES.md).
  """
  return tff.learning.algorithms.build_weighted_fed_avg(
      model_fn,
      client_optimizer_fn=tff.learning.optimizers.build_sgdm(
          learning_rate=client_lr, momentum=client_momentum or None),
      server_optimizer_fn=tff.learning.optimizers.build_sgdm(
          learning_rate=server_lr),
      loop_implementation=tff.learning.LoopImplementation.DATASET_ITERATOR)


class CentralEvaluator:
  """Evaluates model weights on a full (test) set with a plain Keras model."""

  def __init__(self, model_name, images, labels, batch_size=1000):
    self._model = models.create_keras_model(model_name)
    self._model.compile(
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy()])
    self._data = clientdata.test_dataset(images, labels, batch_size).map(
        lambda e: (e["x"], e["y"])).cache()

  def __call__(self, model_weights):
    model_weights.assign_weights_to(self._model)
    loss, accuracy = self._model.evaluate(self._data, verbose=0)
    return collections.OrderedDict(loss=loss, accuracy=accuracy)


def _shuffle_seed(seed, round_num, client_position):
  """A per (run seed, round, client) shuffle seed, stable across resumes."""
  return int(np.random.SeedSequence(
      [seed, round_num, client_position]).generate_state(1)[0])


def _format_eta(seconds):
  seconds = int(round(seconds))
  return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def train(process, client_data, *, rounds, clients_per_round, batch_size,
          local_epochs, seed, output_dir, evaluator=None, eval_every=1,
          max_examples_per_client=None, log=print):
  """Runs `rounds` rounds of `process` and writes `<output_dir>/metrics.csv`.

  Each round samples `clients_per_round` clients uniformly without replacement
  (seeded by `seed` and the round number), trains, and every `eval_every`
  rounds (and at the last round) evaluates the global model with `evaluator`.

  Returns:
    A dict summary: rounds, final/best test accuracy, mean seconds per round.
  """
  client_ids = list(client_data.client_ids)
  if not 1 <= clients_per_round <= len(client_ids):
    raise ValueError(
        f"clients_per_round must be between 1 and the number of clients "
        f"({len(client_ids)}); got {clients_per_round}.")
  position = {cid: i for i, cid in enumerate(client_ids)}
  sample_clients = tff.simulation.build_uniform_sampling_fn(
      client_ids, replace=False, random_seed=seed)
  os.makedirs(output_dir, exist_ok=True)
  csv_manager = tff.program.CSVFileReleaseManager(
      os.path.join(output_dir, METRICS_FILE), key_fieldname="round")
  loop = asyncio.new_event_loop()

  state = process.initialize()
  round_times, accuracies = [], []
  for round_num in range(1, rounds + 1):
    sampled = sample_clients(round_num, clients_per_round)
    datasets = [
        clientdata.preprocess(
            client_data.create_tf_dataset_for_client(cid),
            batch_size=batch_size, local_epochs=local_epochs,
            seed=_shuffle_seed(seed, round_num, position[cid]),
            max_examples=max_examples_per_client)
        for cid in sampled]
    start = time.perf_counter()
    output = process.next(state, datasets)
    state = output.state
    seconds = time.perf_counter() - start
    round_times.append(seconds)
    train_metrics = output.metrics["client_work"]["train"]
    row = collections.OrderedDict(
        train_loss=float(train_metrics["loss"]),
        train_accuracy=float(train_metrics["sparse_categorical_accuracy"]),
        test_loss=math.nan, test_accuracy=math.nan,
        round_seconds=seconds)
    if evaluator is not None and (round_num % eval_every == 0 or
                                  round_num == rounds):
      test = evaluator(process.get_model_weights(state))
      row["test_loss"], row["test_accuracy"] = test["loss"], test["accuracy"]
      accuracies.append(test["accuracy"])
    loop.run_until_complete(csv_manager.release(row, key=round_num))
    eta = np.mean(round_times) * (rounds - round_num)
    test_part = ("" if math.isnan(row["test_accuracy"]) else
                 f" | test loss {row['test_loss']:.4f} acc "
                 f"{row['test_accuracy']:.4f}")
    log(f"round {round_num}/{rounds} | train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.4f}{test_part} | {seconds:.2f} s/round "
        f"| ETA {_format_eta(eta)}")
  loop.close()
  return collections.OrderedDict(
      rounds=rounds,
      final_test_accuracy=accuracies[-1] if accuracies else None,
      best_test_accuracy=max(accuracies) if accuracies else None,
      mean_round_seconds=float(np.mean(round_times)),
      metrics_csv=os.path.join(output_dir, METRICS_FILE))

"""One client's local training in TFF and in NIID-Bench's PyTorch loop, from
the same weights over the same batches.

  .venv/bin/python experiments/client_update_check.py   # needs /usr/bin/python3
                                                         # with torch and absl

The cross-framework check of experiments/results/README.md, section 2.1
(MNIST #C=1): do tff_niid's FedAvg process (`algorithms.build_process`,
the niid_cnn model with PyTorch's initialisation) and NIID-Bench's
`train_net` (experiments/niid_bench_torch.py's `local_train`) compute the
same local update? One client of the partition (`--partition_spec`,
`--client`) trains with NIID-Bench's settings (SGD lr 0.01, momentum 0.9,
weight decay 1e-5, B=64, E=10) from the model tff_niid initialises for
`--seed`, over batches drawn as NIID-Bench's DataLoader draws them (per
epoch a shuffle cut into batches, the last smaller). TFF runs a FedAvg
round with this one client and server rate 1, so the new global model is
the client's; PyTorch replays the same batches from the same weights
(experiments/niid_bench_torch_replay.py, run by `--torch_python`).

Printed, per horizon (the first step, the first epoch, the whole round):
how far TFF's update moved the weights, how far PyTorch's weights are from
TFF's (max |difference| and the L2 norm relative to the update), and the
share of test images both models classify alike. For scale, the last row
compares TFF with itself on another draw of the batches: what a different
shuffle does to the same round.
"""

import collections
import dataclasses
import os
import subprocess
import tempfile

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from experiments import niid_bench_flags
from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import runtime

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CLIENT = flags.DEFINE_integer("client", 0, "The client that trains.",
                               lower_bound=0)
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", None, "Only the "
                                     "client's first this many samples.",
                                     lower_bound=1)
_TORCH_PYTHON = flags.DEFINE_string("torch_python", "/usr/bin/python3",
                                    "A Python with torch and absl.")

_MODEL = "niid_cnn"
_INITIALIZER = "pytorch_default"


def _epoch_orders(num_samples: int, epochs: int,
                  rng: np.random.Generator) -> np.ndarray:
  """A shuffle of the client's samples per epoch: (epochs, samples)."""
  return np.stack([rng.permutation(num_samples) for _ in range(epochs)])


def _batches(x: np.ndarray, y: np.ndarray, orders: np.ndarray,
             batch_size: int, steps: int) -> tf.data.Dataset:
  """The first `steps` batches NIID-Bench's DataLoader yields for these
  epoch orders: each epoch's order cut into batches of `batch_size`, the
  last smaller."""
  x, y = tf.constant(x), tf.constant(y)
  return (tf.data.Dataset.from_tensor_slices(orders)
          .flat_map(lambda order: tf.data.Dataset.from_tensor_slices(
              order).batch(batch_size))
          .take(steps)
          .map(lambda batch: collections.OrderedDict(
              x=tf.gather(x, batch), y=tf.gather(y, batch))))


def _distance(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float]:
  """(max |a - b|, ||a - b||_2) over all weights."""
  diffs = [np.abs(x - y) for x, y in zip(a, b)]
  return (max(float(d.max()) for d in diffs),
          float(np.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2))
                            for d in diffs))))


def _predictions(model: tf.keras.Model, weights: list[np.ndarray],
                 images: np.ndarray) -> np.ndarray:
  model.set_weights(weights)
  return np.argmax(model.predict(images, batch_size=2000, verbose=0),
                   axis=1)


def _replay_in_torch(initial: list[np.ndarray], images: np.ndarray,
                     labels: np.ndarray, orders: np.ndarray,
                     horizons: list[int],
                     training: niid_bench_flags.ClientTraining
                     ) -> dict[int, list[np.ndarray]]:
  """{horizon: weights} of niid_bench_torch_replay.py, run by --torch_python:
  NIID-Bench's `train_net` from `initial` over the first `horizon` batches."""
  with tempfile.TemporaryDirectory() as tmp:
    given, replayed = (os.path.join(tmp, name) for name in ("in.npz",
                                                            "out.npz"))
    np.savez(given, images=images, labels=labels, orders=orders,
             horizons=np.array(horizons),
             training=np.array(dataclasses.astuple(training)),
             **{f"weights_{i}": w for i, w in enumerate(initial)})
    subprocess.run(
        [_TORCH_PYTHON.value,
         os.path.join(_REPO, "experiments", "niid_bench_torch_replay.py"),
         f"--input={given}", f"--output={replayed}"],
        env=dict(os.environ, PYTHONPATH=_REPO), check=True)
    with np.load(replayed) as out:
      return {h: [out[f"horizon{h}_weights_{i}"] for i in range(len(initial))]
              for h in horizons}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # TFF logs every model build at INFO
  runtime.install_cleanup()
  runtime.use_local_worker()
  training = niid_bench_flags.client_training()
  seed = niid_bench_flags.SEED.value
  spec = niid_bench_flags.PARTITION_SPEC.value
  try:
    data = datasets.load(niid_bench_flags.DATASET.value,
                         niid_bench_flags.DATA_DIR.value)
    part = partition_lib.spec.resolve(spec, data.train_labels,
                                      niid_bench_flags.NUM_CLIENTS.value,
                                      seed=seed, images=data.train_images)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if _CLIENT.value >= len(part):
    raise app.UsageError(f"--client={_CLIENT.value}: the partition has "
                         f"{len(part)} clients.")
  if part.feature_noise is not None or part.noisy_labels is not None:
    raise app.UsageError("feature or label noise is not supported here.")
  indices = part[_CLIENT.value][:_MAX_EXAMPLES.value]
  images, labels = data.train_images[indices], data.train_labels[indices]

  # The model's inputs as clientdata makes them (pixels / 255 in float32,
  # the same values in numpy and TensorFlow), and PyTorch's in the replay.
  x = (images.astype(np.float32) / 255.0)[..., np.newaxis]
  y = labels.astype(np.int64)
  rng = np.random.default_rng(seed)
  orders, other_orders = (_epoch_orders(len(labels), training.epochs, rng)
                          for _ in range(2))
  steps_per_epoch = -(-len(labels) // training.batch_size)
  steps = steps_per_epoch * training.epochs
  horizons = sorted({1, steps_per_epoch, steps})

  hp = algorithms.Hyperparameters(
      client_lr=training.lr, client_momentum=training.momentum,
      client_weight_decay=training.weight_decay, server_lr=1.0)
  process = algorithms.build_process(
      "fedavg", models.build_model_fn(_MODEL, clientdata.BATCH_SPEC, seed=seed,
                                      initializer=_INITIALIZER), hp)
  state = process.initialize()

  def tff_round(orders: np.ndarray, steps: int) -> list[np.ndarray]:
    batches = _batches(x, y, orders, training.batch_size, steps)
    new_state = process.next(state, [batches]).state
    return [np.asarray(w) for w in
            process.get_model_weights(new_state).trainable]

  initial = [np.asarray(w) for w in process.get_model_weights(state).trainable]
  tff_weights = {h: tff_round(orders, h) for h in horizons}
  other_shuffle = tff_round(other_orders, steps)

  torch_weights = _replay_in_torch(initial, images, labels, orders, horizons,
                                   training)
  keras_model = models.create_keras_model(_MODEL, seed, _INITIALIZER)
  test_x = (data.test_images.astype(np.float32) / 255.0)[..., np.newaxis]
  print(f"One client's round, TFF vs PyTorch from the same weights over the "
        f"same batches: {niid_bench_flags.DATASET.value} {spec!r}, client "
        f"{_CLIENT.value} ({len(labels)} samples), seed {seed}, {_MODEL} "
        f"({_INITIALIZER} initialisation), SGD {training.lr:g} momentum "
        f"{training.momentum:g} weight decay {training.weight_decay:g}, "
        f"B={training.batch_size}, E={training.epochs}\n")
  print("| compared | steps | TFF update: \\|\\|w - w0\\|\\| "
        "| max \\|difference\\| "
        "| \\|\\|difference\\|\\| / \\|\\|update\\|\\| "
        "| test images classified alike |")
  print("|---|---:|---:|---:|---:|---:|")

  def row(name, steps, a, b):
    update = _distance(a, initial)[1]
    max_diff, norm_diff = _distance(a, b)
    alike = np.mean(_predictions(keras_model, a, test_x) ==
                    _predictions(keras_model, b, test_x))
    print(f"| {name} | {steps} | {update:.4g} | {max_diff:.2e} | "
          f"{norm_diff / update:.2e} | {100 * alike:.2f}% |", flush=True)

  for h in horizons:
    row("TFF vs PyTorch, same batches", h, tff_weights[h], torch_weights[h])
  row("TFF vs TFF, another shuffle", steps, tff_weights[steps],
      other_shuffle)


if __name__ == "__main__":
  app.run(main)

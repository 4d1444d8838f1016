"""One client's local training (or a FedNova or SCAFFOLD round of two) in
TFF and in NIID-Bench's PyTorch loop, from the same weights over the same
batches.

  make torch-env   # .venv-torch: CPU PyTorch (requirements/torch-lock.txt)
  .venv/bin/python experiments/client_update_check.py

The cross-framework check of experiments/results/README.md, section 2.1
(MNIST #C=1): do tff_niid's FedAvg process (`algorithms.build_process`,
the niid_cnn model with PyTorch's initialisation) and NIID-Bench's
`train_net` (experiments/niid_bench_torch.py's `local_train`) compute the
same local update? With --fedprox_mu > 0, tff_niid's FedProx process (its
own proximal client optimizer, `tff_niid.proximal`) against NIID-Bench's
`train_net_fedprox`; with --algorithm=scaffold, tff_niid's SCAFFOLD
(`tff_niid.scaffold`) against NIID-Bench's `train_net_scaffold` and its
server's control update, from control variates drawn at random (in a run
they start equal, where the correction vanishes), with --second_client a
round of two clients, each from its own c_i, whose new global model (the
clients' models averaged by data size) and new c (from both clients'
control updates) are compared too; with --algorithm=fednova,
a round of tff_niid's FedNova (`tff_niid.fednova`) with two clients
against NIID-Bench's `train_net_fednova` (a_i, d_i) and the server step of
its fednova branch (niid_bench_torch.py's `fednova_normalised_update` and
`fednova_server`), where the new global model depends on each client's
step count (pick two clients of different sizes). One client of the
partition (`--partition_spec`, `--client`) trains with NIID-Bench's
settings (SGD lr 0.01, momentum 0.9, weight decay 1e-5, B=64, E=10) from
the model tff_niid initialises for `--seed`, over the batches tff_niid's
input pipeline makes with --per_epoch_batches
(`clientdata.local_training_batches`: per epoch a shuffle cut into batches,
the last smaller, as NIID-Bench's DataLoader).
TFF runs a FedAvg (FedProx, SCAFFOLD) round with this one client and server
rate 1, so the new global model is the client's (FedNova, or SCAFFOLD with
--second_client: a round of the two clients, whose new global model is
compared); PyTorch replays the
same batches, sample for sample, from the same weights
(experiments/niid_bench_torch_replay.py, run by `--torch_python`).

Printed, per horizon (the first step, the first epoch, the whole round):
how far TFF's update moved the weights, how far PyTorch's weights are from
TFF's (max |difference| and the L2 norm relative to the update), the same
ratio for PyTorch in float32 against PyTorch in float64 (what float
rounding alone does over those steps), and the share of test images both
models classify alike. For scale, a last row compares TFF with itself on
another draw of the batches (what a different shuffle does), and with
mu > 0 (or SCAFFOLD) one more compares PyTorch's `train_net` (FedAvg's
client, its update in the update column; with --second_client, FedAvg's
round) with TFF's FedProx (SCAFFOLD) client over the same batches (what
the proximal term, or the correction, does); for FedNova, FedAvg's server
step over the same PyTorch clients (their models' mean by samples) with
TFF's FedNova round (what the normalisation does). A round of two clients
is compared over the whole round alone: TFF weights each client by the
samples its round saw, E n_i over a whole round, NIID-Bench by its data's
size n_i; proportional over a whole round, not over a cut one. SCAFFOLD's
last rows compare each client's and the server's new control variates
(the update column: how far each moved from its start).

Not covered: tff_niid's default, streamed batching (the same pipeline
without --per_epoch_batches), FedAvg's averaging over several clients
(TFF's aggregator; SCAFFOLD's, the same weighted mean computed by
`local_training.weighted_mean`, is checked, and so is FedNova's), and the
evaluation; and the PyTorch side is
niid_bench_torch.py's transcription of NIID-Bench's `train_net`,
`train_net_fedprox`, `train_net_scaffold` and `train_net_fednova`, not
NIID-Bench's own file.
"""

import collections
import dataclasses
import os
import subprocess
import tempfile
from typing import Any, NamedTuple, Optional

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from experiments import niid_bench_flags
from tff_niid import algorithms
from tff_niid import checkout
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import runtime
from tff_niid import scaffold

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CLIENT = flags.DEFINE_integer("client", 0, "The client that trains.",
                               lower_bound=0)
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", None, "Only this many "
                                     "of the client's samples, drawn at "
                                     "random (seeded by --seed).",
                                     lower_bound=1)
_ALGORITHM = flags.DEFINE_enum(
    "algorithm", "fedavg", ["fedavg", "scaffold", "fednova"],
    "fedavg: FedAvg's client against `train_net` (FedProx's against "
    "`train_net_fedprox` with --fedprox_mu > 0); scaffold: SCAFFOLD's "
    "(`algorithms.build_process('scaffold')`) against `train_net_scaffold`, "
    "from random control variates (seeded by --seed), comparing the new "
    "controls too (with --second_client, a round of two clients and "
    "NIID-Bench's server step); fednova: a FedNova round of two clients "
    "(--client and --second_client) against `train_net_fednova` and "
    "NIID-Bench's FedNova server step, comparing the new global model.")
_SECOND_CLIENT = flags.DEFINE_integer(
    "second_client", None, "--algorithm=scaffold or fednova: the round's "
    "other client (fednova's default: the one after --client). FedNova's "
    "normalisation shows when the two take different numbers of steps; "
    "SCAFFOLD's server sums both clients' control updates.", lower_bound=0)
_TORCH_PYTHON = flags.DEFINE_string(
    "torch_python",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                 ".venv-torch", "bin", "python"),
    "A Python with torch and absl (default: .venv-torch, `make torch-env`).")

_SERVER_CONTROL, _CLIENT_CONTROL = niid_bench_flags.CONTROL_ARRAYS
_MODEL = "niid_cnn"
_INITIALIZER = "pytorch_default"
# The random control variates' std: about a NIID-Bench client's average
# gradient per weight (its update over the steps and the learning rate), so
# the correction lr * (c - c_i) moves a round about as far as the SGD steps.
_CONTROL_STD = 1e-3

flags.register_multi_flags_validator(
    ["algorithm", "fedprox_mu"],
    lambda given: given["algorithm"] == "fedavg" or not given["fedprox_mu"],
    "--algorithm=scaffold and fednova train their own clients, without "
    "FedProx's term: leave --fedprox_mu at 0.")
flags.register_multi_flags_validator(
    ["algorithm", "second_client"],
    lambda given: (given["algorithm"] in ("scaffold", "fednova") or
                   given["second_client"] is None),
    "--second_client makes a round of two clients: give it with "
    "--algorithm=scaffold or fednova.")


class ClientRound(NamedTuple):
  """A client of the round: its number in the partition, its model inputs
  and labels, and the sample indices of its batches (tff_niid's pipeline
  with --per_epoch_batches)."""
  number: int
  x: np.ndarray
  y: np.ndarray
  batches: list[np.ndarray]


class Controls(NamedTuple):
  """SCAFFOLD's control variates the round starts from, in Keras' layout:
  the server's c, each of the round's clients' c_i, and the number of
  clients c's update is divided by."""
  server: list[np.ndarray]
  clients: list[list[np.ndarray]]
  num_clients: int


def _client_batches(x: np.ndarray, y: np.ndarray,
                    training: niid_bench_flags.ClientTraining,
                    seed: int) -> tf.data.Dataset:
  """The client's round as tff_niid's pipeline batches it with
  --per_epoch_batches (`clientdata.local_training_batches`), each batch
  also carrying its samples' `index`, for the PyTorch replay."""
  elements = tf.data.Dataset.from_tensor_slices(collections.OrderedDict(
      x=x, y=y, index=np.arange(len(y))))
  return clientdata.local_training_batches(
      elements, batch_size=training.batch_size, local_epochs=training.epochs,
      seed=seed, per_epoch_batches=True)


def _client_round(data: datasets.Dataset, indices: np.ndarray, client: int,
                  seed: int, training: niid_bench_flags.ClientTraining
                  ) -> ClientRound:
  """Partition client `client`, its samples `indices` (or --max_examples of
  them, drawn at random), batched as its round in TFF."""
  if _MAX_EXAMPLES.value is not None:
    # A random subset: a client's indices are grouped by class.
    indices = np.sort(np.random.default_rng([seed, 1]).choice(
        indices, min(_MAX_EXAMPLES.value, len(indices)), replace=False))
  x = _model_inputs(data.train_images[indices])
  y = data.train_labels[indices].astype(np.int64)
  return ClientRound(client, x, y, [
      batch["index"].numpy() for batch in _client_batches(x, y, training,
                                                          seed)])


def _model_batches(batches: tf.data.Dataset) -> tf.data.Dataset:
  """`batches` as the model takes them (x and y only)."""
  return batches.map(lambda batch: collections.OrderedDict(x=batch["x"],
                                                           y=batch["y"]))


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


def _arrays(values: Any) -> list[np.ndarray]:
  return [np.asarray(v) for v in values]


def _random_controls(weights: list[np.ndarray], seed: int,
                     num_round_clients: int, num_clients: int) -> Controls:
  """Control variates c and, for each of the round's clients, c_i, drawn
  afresh (N(0, _CONTROL_STD^2) per weight, in that order), shaped as
  `weights`."""
  rng = np.random.default_rng([seed, 2])
  server, *clients = ([rng.normal(0.0, _CONTROL_STD, w.shape).astype(w.dtype)
                       for w in weights] for _ in range(1 + num_round_clients))
  return Controls(server, clients, num_clients)


def _with_controls(state: dict[str, Any], controls: Controls,
                   round_clients: list[int]) -> dict[str, Any]:
  """A `scaffold.ScaffoldProcess` state whose server control is
  `controls.server` and whose `round_clients[k]`'s is
  `controls.clients[k]`."""
  server = collections.OrderedDict(state[scaffold.SERVER])
  server["control"] = tuple(controls.server)
  client_controls = [c.copy() for c in state[scaffold.CLIENT_CONTROLS]]
  for client, values in zip(round_clients, controls.clients):
    for rows, value in zip(client_controls, values):
      rows[client] = value
  return {scaffold.SERVER: server, scaffold.CLIENT_CONTROLS: client_controls}


def _check_torch_python() -> None:
  """UsageError unless --torch_python imports torch and absl."""
  try:
    found = subprocess.run([_TORCH_PYTHON.value, "-c", "import torch, absl"],
                           capture_output=True, check=False).returncode == 0
  except OSError:
    found = False
  if not found:
    raise app.UsageError(
        f"--torch_python={_TORCH_PYTHON.value} cannot import torch and absl "
        "(`make torch-env` builds .venv-torch, the default).")


def _model_inputs(images: np.ndarray) -> np.ndarray:
  """`images` as tff_niid's client datasets feed them to the model."""
  dataset = clientdata.test_dataset(images, np.zeros(len(images), np.int64),
                                    batch_size=len(images))
  return next(iter(dataset))["x"].numpy()


def _replay_in_torch(initial: list[np.ndarray], clients: list[ClientRound],
                     horizons: list[int],
                     training: niid_bench_flags.ClientTraining,
                     algorithm: str,
                     precisions: tuple[str, ...] = ("float32", "float64"),
                     controls: Optional[Controls] = None
                     ) -> dict[str, dict[int, dict[str, list[np.ndarray]]]]:
  """niid_bench_torch_replay.py, run by --torch_python: {precision ("float32",
  "float64"): {horizon: {"weights": the round's new global model after each
  of `clients` trained from `initial` over its first `horizon` batches with
  NIID-Bench's `train_net` (with `training.fedprox_mu` > 0,
  `train_net_fedprox`; for "scaffold", `train_net_scaffold` from
  `controls`): one client's weights, or several clients' mean by data size,
  or for "fednova" FedNova's server step; for "scaffold" also
  "server_control" and "client_control_{k}", the new c and each client's
  c_i; for "fednova" also "fedavg_weights", FedAvg's}}}."""
  if (algorithm == "scaffold") != (controls is not None):
    raise ValueError(
        "controls go with algorithm 'scaffold', and it with them (got "
        f"{algorithm!r}, controls {controls is not None})")
  with tempfile.TemporaryDirectory() as tmp:
    input_path, output_path = (os.path.join(tmp, name)
                               for name in ("in.npz", "out.npz"))
    arrays: dict[str, list[np.ndarray]] = {
        "weights": initial,
        "x": [client.x for client in clients],
        "labels": [client.y for client in clients],
        "order": [np.concatenate(client.batches) for client in clients],
        "batch_sizes": [np.array([len(b) for b in client.batches])
                        for client in clients]}
    returned = ["weights"]
    if controls is not None:
      client_names = [f"{_CLIENT_CONTROL}_{k}" for k in range(len(clients))]
      arrays[_SERVER_CONTROL] = controls.server
      arrays.update(zip(client_names, controls.clients))
      returned += [_SERVER_CONTROL, *client_names]
    if algorithm == "fednova":
      returned.append("fedavg_weights")
    # Typed Any: numpy's stub reads a **dict[str, ndarray] as possibly
    # holding savez's `allow_pickle`.
    named: dict[str, Any] = {
        **dataclasses.asdict(training),
        **{f"{name}_{i}": w for name, values in arrays.items()
           for i, w in enumerate(values)}}
    if controls is not None:
      named["num_parties"] = controls.num_clients
    np.savez(input_path, algorithm=np.array(algorithm),
             horizons=np.array(horizons), precisions=np.array(precisions),
             **named)
    subprocess.run(
        [_TORCH_PYTHON.value,
         os.path.join(_REPO, "experiments", "niid_bench_torch_replay.py"),
         f"--input={input_path}", f"--output={output_path}"],
        env=dict(os.environ, PYTHONPATH=_REPO), check=True)
    with np.load(output_path) as out:
      return {precision: {h: {name: [out[f"{precision}_horizon{h}_{name}_{i}"]
                                     for i in range(len(initial))]
                              for name in returned}
                          for h in horizons}
              for precision in precisions}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # TFF logs every model build at INFO
  _check_torch_python()
  runtime.use_local_worker()
  training = niid_bench_flags.client_training()
  seed = niid_bench_flags.SEED.value
  spec = niid_bench_flags.PARTITION_SPEC.value
  try:
    data = datasets.load(niid_bench_flags.DATASET.value,
                         niid_bench_flags.DATA_DIR.value)
    part = partition_lib.spec.resolve(
        spec, data.train_labels,
        partition_lib.spec.num_clients_for(
            spec, niid_bench_flags.NUM_CLIENTS.value),
        seed=seed, images=data.train_images)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  is_scaffold = _ALGORITHM.value == "scaffold"
  is_fednova = _ALGORITHM.value == "fednova"
  round_clients = [_CLIENT.value]
  if _SECOND_CLIENT.value is not None:
    round_clients.append(_SECOND_CLIENT.value)
  elif is_fednova:
    round_clients.append((_CLIENT.value + 1) % len(part))
  for name, client in zip(("client", "second_client"), round_clients):
    if client >= len(part):
      raise app.UsageError(f"--{name}={client}: the partition has "
                           f"{len(part)} clients.")
  if len(set(round_clients)) < len(round_clients):
    raise app.UsageError(
        "A round of two clients: give --second_client other than --client"
        if len(part) > 1 else
        f"A round of two clients needs two; {spec!r} has one.")
  if (part.feature_noise is not None or part.noisy_labels is not None or
      part.rotation is not None):
    raise app.UsageError("feature or label noise and rotations are not "
                         "supported here.")
  clients = [_client_round(data, part[client], client, seed, training)
             for client in round_clients]
  steps = max(len(client.batches) for client in clients)
  # A round of two clients over the whole round alone: TFF weights a client
  # by the samples its round saw, NIID-Bench by its data's size;
  # proportional over whole rounds only.
  horizons = ([steps] if len(clients) > 1 else sorted(
      {1, -(-len(clients[0].y) // training.batch_size), steps}))

  hp = algorithms.Hyperparameters(
      client_lr=training.lr, client_momentum=training.momentum,
      client_weight_decay=training.weight_decay,
      proximal_strength=training.fedprox_mu, server_lr=1.0)
  algorithm = "fedprox" if training.fedprox_mu else _ALGORITHM.value
  process = algorithms.build_process(
      algorithm, models.build_model_fn(_MODEL, clientdata.BATCH_SPEC,
                                       seed=seed, initializer=_INITIALIZER),
      hp, num_clients=len(part))
  state = process.initialize()
  initial = _arrays(process.get_model_weights(state).trainable)
  controls = None
  if is_scaffold:
    controls = _random_controls(initial, seed, len(clients), len(part))
    state = _with_controls(state, controls, round_clients)

  def tff_round(shuffle_seed: int, steps: int) -> dict[str, list[np.ndarray]]:
    """{"weights": the new model; for SCAFFOLD, also the new controls}."""
    # A new dataset each time: a seeded pipeline yields the same batches on
    # every first iteration (as the worker makes it), not on re-iterations.
    batches = [_model_batches(_client_batches(
        client.x, client.y, training, shuffle_seed).take(steps))
               for client in clients]
    if not is_scaffold:
      new_state = process.next(state, batches).state
      return {"weights": _arrays(
          process.get_model_weights(new_state).trainable)}
    new_state = process.next(state, batches, round_clients).state
    return {"weights": _arrays(process.get_model_weights(new_state).trainable),
            _SERVER_CONTROL: _arrays(new_state[scaffold.SERVER]["control"]),
            **{f"{_CLIENT_CONTROL}_{k}": [c[client] for c in
                                         new_state[scaffold.CLIENT_CONTROLS]]
               for k, client in enumerate(round_clients)}}

  tff_round_of = {h: tff_round(seed, h) for h in horizons}
  tff_weights = {h: out["weights"] for h, out in tff_round_of.items()}
  other_shuffle = tff_round(seed + 1, steps)["weights"]

  torch_round_of = _replay_in_torch(initial, clients, horizons, training,
                                    _ALGORITHM.value, controls=controls)
  torch_weights = {precision: {h: out["weights"] for h, out in rounds.items()}
                   for precision, rounds in torch_round_of.items()}
  if training.fedprox_mu or is_scaffold:
    # The same clients without the proximal term or the correction.
    fedavg_round = _replay_in_torch(
        initial, clients, [steps],
        dataclasses.replace(training, fedprox_mu=0.0), "fedavg",
        precisions=("float32",))["float32"][steps]["weights"]
  keras_model = models.create_keras_model(_MODEL, seed, _INITIALIZER)
  test_x = _model_inputs(data.test_images)
  if training.fedprox_mu:
    variant = (f", FedProx mu {training.fedprox_mu:g} (PyTorch: "
                "`train_net_fedprox`)")
  elif is_scaffold:
    variant = (f", SCAFFOLD from random control variates (std "
                f"{_CONTROL_STD:g}; c averaged over {len(part)} clients; "
                "PyTorch: `train_net_scaffold`)")
  elif is_fednova:
    variant = ", FedNova (PyTorch: `train_net_fednova` and its server step)"
  else:
    variant = ""
  several = len(clients) > 1
  who = " and ".join(
      f"{client.number} ({len(client.y)} samples"
      f"{f', {len(client.batches)} steps' if several else ''})"
      for client in clients)
  whose_round = ("One client's round" if not several else
                 "A FedNova round" if is_fednova else
                 "A SCAFFOLD round of two clients")
  print(f"{whose_round}, TFF vs "
        "PyTorch from the same weights over the same batches: "
        f"{niid_bench_flags.DATASET.value} {spec!r}, "
        f"client{'s' if several else ''} {who}, seed {seed}, {_MODEL} "
        f"({_INITIALIZER} initialisation), SGD {training.lr:g} momentum "
        f"{training.momentum:g} weight decay {training.weight_decay:g}"
        f"{variant}, B={training.batch_size}, E={training.epochs}\n")
  print("| a vs b | steps | update \\|\\|a - w0\\|\\| | max \\|a - b\\| "
        "| \\|\\|a - b\\|\\| / \\|\\|a - w0\\|\\| "
        "| float rounding alone: PyTorch float32 vs float64, same ratio "
        "| test images classified alike |")
  print("|---|---:|---:|---:|---:|---:|---:|")

  def relative(a, b, start=initial):
    return _distance(a, b)[1] / _distance(a, start)[1]

  def print_row(name, steps, a, b, rounding, start=None):
    """A row of weights, also compared on the test images; or, given the
    `start` they moved from, of control variates."""
    alike = "—"
    if start is None:
      start = initial
      same = np.mean(_predictions(keras_model, a, test_x) ==
                     _predictions(keras_model, b, test_x))
      alike = f"{100 * same:.2f}%"
    print(f"| {name} | {steps} | {_distance(a, start)[1]:.4g} | "
          f"{_distance(a, b)[0]:.2e} | {relative(a, b, start):.2e} | "
          f"{rounding} | {alike} |", flush=True)

  for h in horizons:
    in_float32, in_float64 = (torch_weights[p][h]
                              for p in ("float32", "float64"))
    print_row("TFF vs PyTorch, same batches", h, tff_weights[h], in_float32,
              f"{relative(in_float32, in_float64):.2e}")
  print_row("TFF vs TFF, another shuffle", steps, tff_weights[steps],
            other_shuffle, "—")
  if training.fedprox_mu:
    print_row("PyTorch without the proximal term (FedAvg's client) vs TFF, "
              "same batches", steps, fedavg_round, tff_weights[steps], "—")
  if is_fednova:
    print_row("PyTorch with FedAvg's server step (the models' mean by "
              "samples) vs TFF, same batches", steps,
              torch_round_of["float32"][steps]["fedavg_weights"],
              tff_weights[steps], "—")
  if controls is not None:
    print_row(f"PyTorch without the correction (FedAvg's "
              f"{'round' if several else 'client'}) vs TFF, same batches",
              steps, fedavg_round, tff_weights[steps], "—")
    # The new controls, each against the one it started from.
    for name, label, start in (
        *((f"{_CLIENT_CONTROL}_{k}",
           f"client {client.number}'s new control c_i" if several else
           "the client's new control c_i", controls.clients[k])
          for k, client in enumerate(clients)),
        (_SERVER_CONTROL, "the server's new control c", controls.server)):
      in_float32, in_float64 = (torch_round_of[p][steps][name]
                                for p in ("float32", "float64"))
      print_row(f"{label}, TFF vs PyTorch (update column: from its start)",
                steps, tff_round_of[steps][name], in_float32,
                f"{relative(in_float32, in_float64, start):.2e}", start)


if __name__ == "__main__":
  runtime.install_cleanup()  # first: as train.py
  checkout.require_own_checkout(__file__)
  app.run(main)

"""The federated training loop: resumable, observable, reproducible.

Building blocks are TFF's: the learning process (`tff_niid.algorithms`),
client sampling (`tff.simulation.build_uniform_sampling_fn`, a function of the
round number), program state (`tff.program.FileProgramStateManager`) and
metrics release (`tff.program.CSVFileReleaseManager`, which drops rows at or
after a released round, and `TensorBoardReleaseManager`). This module is the
glue: per-round client datasets, evaluation, progress lines, and the failure
paths (NaN loss, Ctrl-C, unreadable checkpoints).

Reproducibility: the clients of round r and their shuffle seeds depend only
on (`LoopConfig.seed`, r), and the initial model only on the seed its
`model_fn` was built with (`models.build_model_fn(..., seed=)`, 0 unless
given: the binaries pass their --seed; from Python, pass the loop's seed
there too, or every seed starts from one model), so a run resumed from the
checkpoint of round k reproduces rounds k+1.. of an uninterrupted run bit
for bit (`tests/test_resume.py`), DP noise excepted.
"""

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import asyncio
import collections
import collections.abc
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from typing import Any, Callable, Coroutine, Optional, Protocol, Sequence

import numpy as np
import tensorflow_federated as tff

from tff_niid import algorithms
from tff_niid import client_state
from tff_niid import clientdata
from tff_niid import results
from tff_niid import rundir
from tff_niid import runtime

TENSORBOARD_DIR = "tensorboard"


# TFF's program-state and release managers are coroutines. Jupyter already runs
# an event loop in the main thread, where `run_until_complete` fails, so they
# run to completion on a private thread instead (made at first use: importing
# this module starts no thread).
@functools.lru_cache(maxsize=None)
def _async_thread() -> concurrent.futures.ThreadPoolExecutor:
  return concurrent.futures.ThreadPoolExecutor(
      max_workers=1, thread_name_prefix="tff_niid_async")


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
  """Runs a coroutine to completion from synchronous code (also in Jupyter)."""
  return _async_thread().submit(asyncio.run, coroutine).result()


class RoundEvaluator(Protocol):
  """What `train` calls to evaluate a round's model (e.g.
  `evaluation.Evaluator`)."""

  @property
  def metric_names(self) -> Sequence[str]:
    """The keys of every returned dict, in column order."""

  def __call__(self, model_weights: Any) -> dict[str, float]:
    """Metrics of `tff.learning.models.ModelWeights`."""


class RunMismatchError(ValueError):
  """The output directory holds checkpoints of a run with other settings."""


class Interrupted(KeyboardInterrupt):
  """Ctrl-C during the rounds, after the last completed round's state was
  saved and a line said so."""


class TrainingDivergedError(RuntimeError):
  """The training loss became NaN or infinite."""


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """How to run the rounds (the algorithm itself is in the process)."""
  rounds: int
  clients_per_round: int
  batch_size: int
  local_epochs: int = 1
  seed: int = 0
  eval_every: int = 1
  checkpoint_every: int = 1
  checkpoints_to_keep: int = 3
  max_examples_per_client: Optional[int] = None
  per_epoch_batches: bool = False
  target_accuracy: Optional[float] = None
  stop_at_target: bool = False

  def __post_init__(self):
    # Checked here, not deep in a TFF computation ("Batch size must be
    # greater than zero ... while evaluating local [_qgy101]").
    at_least_one = ["rounds", "clients_per_round", "batch_size",
                    "local_epochs", "eval_every", "checkpoint_every",
                    "checkpoints_to_keep"]
    if self.max_examples_per_client is not None:
      at_least_one.append("max_examples_per_client")
    for name in at_least_one:
      value = getattr(self, name)
      if not isinstance(value, (int, np.integer)) or isinstance(
          value, bool) or value < 1:
        raise ValueError(f"LoopConfig.{name} must be an integer >= 1; got "
                         f"{value!r}.")
    if (not isinstance(self.seed, (int, np.integer)) or
        isinstance(self.seed, bool) or not 0 <= self.seed < 2**32):
      # Below 2**32: the client sampler's numpy RandomState takes no more.
      raise ValueError(f"LoopConfig.seed must be an integer in [0, 2**32); "
                       f"got {self.seed!r}.")
    # A plain int: TFF's sampler seeds itself only from an `int`, and draws
    # unseeded clients for a numpy integer.
    object.__setattr__(self, "seed", int(self.seed))
    if self.target_accuracy is not None and not (
        0 < self.target_accuracy <= 1):
      raise ValueError(f"LoopConfig.target_accuracy is a fraction in (0, 1]; "
                       f"got {self.target_accuracy!r}.")
    if self.stop_at_target and self.target_accuracy is None:
      raise ValueError("LoopConfig.stop_at_target needs a target_accuracy.")

  def smoke(self) -> "LoopConfig":
    """This loop cut to seconds (at most 2 rounds of 1 epoch on at most 32
    examples per client): checks that a command runs, not what it learns."""
    return dataclasses.replace(
        self, rounds=min(self.rounds, 2), local_epochs=1,
        max_examples_per_client=min(self.max_examples_per_client or 32, 32))


def build_fedavg(model_fn: Callable[[], Any], *, client_lr: float,
                 server_lr: float = 1.0, client_momentum: float = 0.0) -> Any:
  """Weighted FedAvg with SGD: `algorithms.build_process("fedavg", ...)`."""
  return algorithms.build_process(
      "fedavg", model_fn, algorithms.Hyperparameters(
          client_lr=client_lr, server_lr=server_lr,
          client_momentum=client_momentum))


# The LoopConfig fields that decide what a round computes. The others (how
# many rounds, how often to evaluate and save, the target) may change when a
# run resumes.
_IDENTITY_FIELDS = ("clients_per_round", "batch_size", "local_epochs", "seed",
                    "max_examples_per_client", "per_epoch_batches")


def _identity(client_data: Any, config: LoopConfig) -> dict[str, Any]:
  """The loop settings and client data a run's checkpoints belong to (as
  JSON values): `PartitionClientData.identity`, else the client ids."""
  if isinstance(client_data, clientdata.PartitionClientData):
    clients = client_data.identity()
  else:
    clients = {"client_ids_sha256": hashlib.sha256(
        json.dumps(list(client_data.client_ids)).encode()).hexdigest()}
  # As JSON values: a numpy int or bool (LoopConfig takes them) is its value.
  loop = {name: getattr(config, name) for name in _IDENTITY_FIELDS}
  return json.loads(json.dumps({"loop": loop, "client_data": clients},
                               default=lambda value: value.item()))


def _hyperparameters(process: Any, state: Any) -> dict[str, Any]:
  """The hyperparameters `state` carries (learning rates, momentum, mu...),
  by path ("client_work/learning_rate"), as floats (or lists of them); {}
  for a process without `get_hparams`."""
  if not hasattr(process, "get_hparams"):
    return {}
  flat = {}

  def walk(values, path):
    if isinstance(values, collections.abc.Mapping):
      for name, value in values.items():
        walk(value, f"{path}/{name}" if path else str(name))
    else:
      flat[path] = np.asarray(values).tolist()

  walk(process.get_hparams(state), "")
  return flat


def _differences(recorded: dict[str, Any], current: dict[str, Any],
                 prefix: str = "") -> list[str]:
  """`key recorded->current` for the leaves of two identities that differ."""
  found = []
  for key in sorted(set(recorded) | set(current)):
    old, new = recorded.get(key), current.get(key)
    if isinstance(old, dict) and isinstance(new, dict):
      found += _differences(old, new, f"{prefix}{key}.")
    elif old != new:
      found.append(f"{prefix}{key} {_shown(old)}->{_shown(new)}")
  return found


def _shown(value: Any) -> Any:
  """A value of an identity as a message shows it: a float32 learning rate
  as 0.05, a SHA-256 by its first 12 digits."""
  if isinstance(value, float):
    return f"{value:.7g}"
  if isinstance(value, str) and len(value) == 64:
    return value[:12]
  return value


def _check_resume(output_dir: str, identity: dict[str, Any],
                  saved: dict[str, Any], given: dict[str, Any]) -> None:
  """RunMismatchError unless the run in `output_dir` is this one: the same
  hyperparameters (`saved` from its checkpoint, `given` by this process) and
  the same recorded identity (a run from before identities has none)."""
  path = os.path.join(output_dir, rundir.TRAINING_IDENTITY_FILE)
  recorded = None
  if os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
  unlike = _differences({"hyperparameters": saved},
                        {"hyperparameters": given})
  if recorded is not None:
    unlike += _differences(recorded, identity)
  if unlike:
    raise RunMismatchError(
        f"{output_dir} holds checkpoints of a run with other settings "
        f"({'; '.join(unlike)}): resuming would mix two runs. Use another "
        "output_dir, or delete this one to start over.")


def _shuffle_seed(seed: int, round_num: int, client_position: int) -> int:
  """A per (run seed, round, client) shuffle seed, stable across resumes."""
  return int(np.random.SeedSequence(
      [seed, round_num, client_position]).generate_state(1)[0])


def _format_duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  return f"{seconds // 60}m{seconds % 60:02d}s"


def _load_latest_valid(manager: Any, structure: Any, log: Callable[[str], Any],
                       where: str) -> tuple[Any, int]:
  """(state, round) of the newest readable checkpoint, or (None, 0).

  A checkpoint cut short (e.g. the process was killed while saving) or
  corrupted is moved aside with a warning once an older one loads, and that
  one is used. If checkpoints exist but none can be read, raise and move
  nothing: the likelier cause is a process other than the one that wrote
  them (another model or algorithm), and the run must stay resumable with
  the right one.
  """
  versions = _run(manager.get_versions()) or []
  failures = []
  for version in reversed(versions):
    try:
      state = _run(manager.load(version, structure))
    except Exception as e:  # pylint: disable=broad-except
      first_line = (str(e).splitlines() or [""])[0]
      failures.append((version, f"{type(e).__name__}: {first_line[:200]}"))
      continue
    for bad_version, error in failures:
      # Kept for inspection, out of the way of the round's new save.
      path = os.path.join(where, f"{rundir.CHECKPOINT_PREFIX}{bad_version}")
      os.replace(path, os.path.join(where, f"unreadable_"
                                    f"{rundir.CHECKPOINT_PREFIX}{bad_version}_"
                                    f"{int(time.time())}"))
      log(f"WARNING: checkpoint of round {bad_version} is unreadable "
          f"({error}); moved it aside and resuming from round {version}.")
    return state, version
  if versions:
    raise RuntimeError(
        f"none of the checkpoints (rounds {versions}) in {where} can be read "
        f"by this process (round {failures[0][0]}: {failures[0][1]}). If the "
        "run was started with another model or algorithm, resume it with "
        "that one (nothing was moved); if the files are damaged, remove that "
        "directory to restart from round 0.")
  return None, 0


def load_checkpoint(output_dir: str, process: Any) -> tuple[int, Any]:
  """(round, state) of the newest checkpoint of a run, e.g. to get its final
  model with `process.get_model_weights(state)`; (0, None) if none."""
  manager = tff.program.FileProgramStateManager(
      os.path.join(output_dir, rundir.CHECKPOINT_DIR),
      prefix=rundir.CHECKPOINT_PREFIX)
  state, version = _run(manager.load_latest(process.initialize()))
  return (version, state) if state is not None else (0, None)


# With quiet=True, a round's line at least this often.
_QUIET_HEARTBEAT_SECONDS = 600

# summary.json's "stopped" of a run that stopped at its target.
_REACHED = "reached target accuracy {}"


def _summary(output_dir: str, config: LoopConfig, stopped_reason: str,
             epsilon_delta: Optional[float]) -> dict[str, Any]:
  rows = results.read_metrics(output_dir)
  rounds, accuracies = results.accuracy_curve(rows)
  summary = collections.OrderedDict(
      rounds_run=len(rows),
      rounds_requested=config.rounds,
      stopped=stopped_reason,
      train_seconds=sum(r["round_seconds"] for r in rows),
      final_test_accuracy=accuracies[-1] if accuracies else None,
      best_test_accuracy=max(accuracies) if accuracies else None,
      target_accuracy=config.target_accuracy,
      rounds_to_target=None)
  if config.target_accuracy is not None:
    reached = [r for r, a in zip(rounds, accuracies)
               if a >= config.target_accuracy]
    summary["rounds_to_target"] = reached[0] if reached else None
  if epsilon_delta is not None and rows:
    summary["dp_epsilon"] = rows[-1]["dp_epsilon"]
    summary["dp_delta"] = epsilon_delta
  # Atomically: grid.py reads it as soon as a cell's process has ended.
  rundir.write_json(os.path.join(output_dir, results.SUMMARY_FILE), summary,
                    sort_keys=False)
  return summary


def train(process: Any, client_data: Any, config: LoopConfig, *,
          output_dir: str,
          evaluator: Optional[RoundEvaluator] = None,
          accountant: Optional[algorithms.PrivacyAccountant] = None,
          log: Callable[[str], Any] = print,
          quiet: bool = False) -> dict[str, Any]:
  """Runs (or resumes) training and writes metrics, checkpoints and summary.

  Args:
    process: a `tff.learning.templates.LearningProcess`, or a
      `client_state.ClientStateProcess` such as SCAFFOLD's (its clients
      named by their position in `client_data.client_ids`).
    client_data: a `tff.simulation.datasets.ClientData` (see `clientdata`).
    config: a `LoopConfig`.
    output_dir: experiment directory; holds `metrics.csv`, `summary.json`,
      `checkpoints/`, `tensorboard/` and `training_identity.json` (the
      settings of `config` that decide a round, and the client data). If it
      holds checkpoints of this run, training resumes after the newest
      readable one; of a run with other hyperparameters in its state
      (`process.get_hparams`: learning rates, momentum, the proximal
      strength, weight decay), loop settings or client data, it raises
      RunMismatchError and changes nothing. Not checked here: what the state
      does not carry (DP noise and clipping, client weighting, the model's
      initialisation), which experiments/train.py compares as flags.
    evaluator: optional `RoundEvaluator` (e.g. `evaluation.Evaluator`), run
      every `eval_every` rounds and at the last round; must return
      `test_accuracy` for targets.
    accountant: optional `algorithms.PrivacyAccountant`: adds `dp_epsilon`.
    log: callable for progress lines.
    quiet: only log resume/stop events, the first and last round, the
      first round at the target, and a round at least every
      `_QUIET_HEARTBEAT_SECONDS` (a long run shows it is alive).

  Returns:
    The summary dict also written to `summary.json`.

  Raises:
    RunMismatchError: `output_dir` holds checkpoints of another run.
    TrainingDivergedError: NaN/inf training loss or update, after writing
      `summary.json` with "stopped": "diverged at round <r>" (the run's
      outcome: `results.ended`) over the rounds before it; the checkpoint of
      the last good round, if one was saved, is kept.
    Interrupted (a KeyboardInterrupt): after saving the last completed
      round's state. A Ctrl-C before the rounds raises KeyboardInterrupt.
  """
  # Unless a context was chosen (e.g. `workers.use_workers`), computations run
  # on a loopback-only worker that dies with this process.
  runtime.ensure_local_worker()
  client_ids = list(client_data.client_ids)
  if not 1 <= config.clients_per_round <= len(client_ids):
    raise ValueError(
        f"clients_per_round must be between 1 and the number of clients "
        f"({len(client_ids)}); got {config.clients_per_round}.")
  if (isinstance(process, client_state.ClientStateProcess) and
      process.num_clients != len(client_ids)):
    raise ValueError(f"the process keeps control variates of "
                     f"{process.num_clients} clients; the client data has "
                     f"{len(client_ids)}.")
  position = {cid: i for i, cid in enumerate(client_ids)}
  sample_clients = tff.simulation.build_uniform_sampling_fn(
      client_ids, replace=False, random_seed=config.seed)
  os.makedirs(output_dir, exist_ok=True)
  checkpoint_dir = os.path.join(output_dir, rundir.CHECKPOINT_DIR)
  state_manager = tff.program.FileProgramStateManager(
      checkpoint_dir, prefix=rundir.CHECKPOINT_PREFIX,
      keep_total=config.checkpoints_to_keep, keep_first=False)
  initial_state = process.initialize()
  state, saved_round = _load_latest_valid(state_manager, initial_state, log,
                                          checkpoint_dir)
  identity = _identity(client_data, config)
  if state is None:
    state = initial_state
  else:
    _check_resume(output_dir, identity, _hyperparameters(process, state),
                  _hyperparameters(process, initial_state))
    log(f"resuming after round {saved_round} from {checkpoint_dir}")
  rundir.write_json(os.path.join(output_dir, rundir.TRAINING_IDENTITY_FILE),
                    identity)
  at_target = _round_at_target(output_dir, config, saved_round)
  if at_target is not None:
    # It stopped there: rerun, it would train on past the target.
    log(f"round {at_target} reached the target accuracy "
        f"{config.target_accuracy}: nothing to train.")
    return _summary(output_dir, config,
                    _REACHED.format(config.target_accuracy),
                    accountant.delta if accountant is not None else None)
  # An earlier start's summary is stale from here until this start writes
  # its own (a run resumed with more --rounds is not finished meanwhile).
  summary_path = os.path.join(output_dir, results.SUMMARY_FILE)
  if os.path.exists(summary_path):
    os.remove(summary_path)
  release_managers = [
      tff.program.CSVFileReleaseManager(
          os.path.join(output_dir, results.METRICS_FILE),
          key_fieldname="round"),
      tff.program.TensorBoardReleaseManager(
          os.path.join(output_dir, TENSORBOARD_DIR)),
  ]
  metric_names = ["train_loss", "train_accuracy"]
  if evaluator is not None:
    metric_names += list(evaluator.metric_names)
  if accountant is not None:
    metric_names.append("dp_epsilon")

  completed_round = saved_round
  # The round whose save was started last: a Ctrl-C while `_run` waits for a
  # save interrupts the wait, not the save, which goes on in the async thread.
  save_started = saved_round
  # Wall seconds of each round of this start, training, evaluation and
  # saving included: the ETA's (the first also compiles, and is left out
  # once there are others).
  round_walls: list[float] = []
  last_end = last_logged = time.perf_counter()
  target_logged = False
  stopped = "completed"
  # Rounds run `round_inputs.process`: for tff_niid's ClientData it builds the
  # client datasets on the workers, from per-client indices and seeds.
  round_inputs = clientdata.RoundInputs(
      process, client_data, batch_size=config.batch_size,
      local_epochs=config.local_epochs,
      max_examples=config.max_examples_per_client,
      per_epoch_batches=config.per_epoch_batches)
  try:
    for round_num in range(saved_round + 1, config.rounds + 1):
      sampled = sample_clients(round_num, config.clients_per_round)
      positions = [position[cid] for cid in sampled]
      inputs = round_inputs(sampled, [
          _shuffle_seed(config.seed, round_num, p) for p in positions])
      start = time.perf_counter()
      output = round_inputs.next(state, inputs, positions)
      seconds = time.perf_counter() - start
      train_metrics = output.metrics["client_work"]["train"]
      row = collections.OrderedDict((name, math.nan) for name in metric_names)
      row["train_loss"] = float(train_metrics["loss"])
      # A model of one's own may name its metrics otherwise: no accuracy.
      row["train_accuracy"] = float(
          train_metrics.get("sparse_categorical_accuracy", math.nan))
      # TFF zeroes non-finite client updates and their metrics instead of
      # failing: the round then reports loss 0 over 0 examples.
      non_finite = output.metrics.get("finalizer", {}).get(
          "update_non_finite", 0)
      # A round of clients without examples looks like one whose updates
      # TFF zeroed (0 examples, the flag set by the mean of nothing): an
      # error of the client data, not the run's outcome.
      if train_metrics["num_examples"] == 0 and _all_empty(client_data,
                                                            sampled):
        raise ValueError(
            f"round {round_num}: the sampled clients ({', '.join(sampled)}) "
            "hold no examples; give every client of the ClientData at least "
            "one.")
      if (not math.isfinite(row["train_loss"]) or non_finite or
          train_metrics["num_examples"] == 0):
        kept = (f"The last saved state (round {saved_round}) is kept in "
                f"{checkpoint_dir}" if saved_round else
                "No checkpoint had been saved yet")
        # Rows an earlier start released past this round's state (a
        # checkpoint older than its last row) are not this run's: TFF drops
        # them on the next release, which a diverged round never makes.
        _run(release_managers[0]._remove_values_greater_than_key(  # pylint: disable=protected-access
            round_num - 1))
        # The run's outcome, for grids and reports: rerun with the same code
        # on the same kind of CPU, it diverges here again (a resumed run
        # repeats the uninterrupted one).
        _summary(output_dir, config, f"{results.DIVERGED}{round_num}",
                 accountant.delta if accountant is not None else None)
        raise TrainingDivergedError(
            f"round {round_num}: the model update is NaN/inf (train loss "
            f"{row['train_loss']}, non-finite update flag {int(non_finite)}); "
            f"stopped, recorded in {results.SUMMARY_FILE} as "
            f"\"{results.DIVERGED}{round_num}\". {kept}; try a lower "
            "learning rate.")
      if evaluator is not None and (round_num % config.eval_every == 0 or
                                    round_num == config.rounds):
        row.update(evaluator(process.get_model_weights(output.state)))
      if accountant is not None:
        row["dp_epsilon"] = accountant.epsilon(round_num)
      row["round_seconds"] = seconds
      for manager in release_managers:
        _run(manager.release(row, key=round_num))
      # Only now is the round complete: an interrupt before this point saves
      # the previous state, so a checkpoint never lacks its metrics row.
      state, completed_round = output.state, round_num
      if (round_num % config.checkpoint_every == 0 or
          round_num == config.rounds):
        save_started = round_num
        _run(state_manager.save(state, round_num))
        saved_round = round_num
      reached = (config.target_accuracy is not None and
                 row.get("test_accuracy", math.nan) >= config.target_accuracy)
      now = time.perf_counter()
      round_walls.append(now - last_end)
      last_end = now
      if (not quiet or round_num in (1, config.rounds) or
          (reached and not target_logged) or
          now - last_logged >= _QUIET_HEARTBEAT_SECONDS):
        log(_progress_line(row, round_num, config.rounds, round_walls))
        last_logged = now
      target_logged = target_logged or reached
      if reached and config.stop_at_target:
        stopped = _REACHED.format(config.target_accuracy)
        log(f"round {round_num}: test accuracy {row['test_accuracy']:.4f} >= "
            f"target {config.target_accuracy}; stopping.")
        if saved_round != round_num:
          save_started = round_num
          _run(state_manager.save(state, round_num))
        break
  except KeyboardInterrupt:
    if save_started == completed_round > saved_round:
      # Its save is under way: let it finish rather than write the round
      # twice (TFF refuses an existing version).
      _async_thread().submit(lambda: None).result()
    elif completed_round > saved_round:
      _run(state_manager.save(state, completed_round))
    log(f"interrupted: state of round {completed_round} saved; rerun the same "
        "command to resume.")
    raise Interrupted() from None
  return _summary(output_dir, config, stopped,
                  accountant.delta if accountant is not None else None)


def _round_at_target(output_dir: str, config: LoopConfig,
                     saved_round: int) -> Optional[int]:
  """With `stop_at_target`, the saved round if it is the first whose test
  accuracy reached the target (metrics.csv): the round the run stopped at;
  else None (a run that went past its target without stopping trains on,
  and stops at the next round at the target)."""
  target = config.target_accuracy
  if not (config.stop_at_target and saved_round) or target is None:
    return None
  first = next((int(row["round"]) for row in results.read_metrics(output_dir)
                if row["round"] <= saved_round and
                row.get("test_accuracy", math.nan) >= target), None)
  return first if first == saved_round else None


def _all_empty(client_data: Any, client_ids: Sequence[str]) -> bool:
  """Whether each of these clients' datasets is empty."""
  return not any(
      any(True for _ in client_data.create_tf_dataset_for_client(cid).take(1))
      for cid in client_ids)


def _progress_line(row: dict[str, float], round_num: int, rounds: int,
                   round_walls: list[float]) -> str:
  """The round's line: its metrics, its training seconds, and the ETA of the
  rounds left at this start's wall seconds per round (after the first,
  which compiles, where there are others)."""
  parts = [f"round {round_num}/{rounds}",
           f"train loss {row['train_loss']:.4f} "
           f"acc {row['train_accuracy']:.4f}"]
  if not math.isnan(row.get("test_accuracy", math.nan)):
    parts.append(f"test loss {row['test_loss']:.4f} acc "
                 f"{row['test_accuracy']:.4f}")
  if not math.isnan(row.get("client_accuracy_mean", math.nan)):
    parts.append(f"client acc mean {row['client_accuracy_mean']:.4f} "
                 f"p10 {row['client_accuracy_p10']:.4f}")
  if "dp_epsilon" in row:
    parts.append(f"eps {row['dp_epsilon']:.3f}")
  eta = np.mean(round_walls[1:] or round_walls) * (rounds - round_num)
  parts.append(f"{row['round_seconds']:.2f} s/round | "
               f"ETA {_format_duration(eta)}")
  return " | ".join(parts)

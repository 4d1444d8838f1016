"""Federated training with TFF on a non-IID partition of MNIST/Fashion-MNIST.

Example (the README's main job):
  python experiments/train.py --partition=dirichlet --alpha=0.5 \
      --num_clients=100 --clients_per_round=10 --rounds=15 --model=cnn \
      --root_output_dir=runs --experiment_name=demo

The partition comes from a composition spec (--partition_spec, see
tff_niid.partition.spec) or a saved partition (--partition_file, checked
against the dataset's labels); --partition with --alpha/--min_size is a
shortcut for the spec they stand for (e.g. --partition=dirichlet --alpha=0.5
--min_size=1 is dirichlet(alpha=0.5, min_size=1)).

Writes <root_output_dir>/<experiment_name>/: hparams.txt (a flagfile that
reruns the experiment), partition/ (+ partition summary and plots),
run_identity.json, metrics.csv, tensorboard/, checkpoints/, summary.json.
Re-running the same command resumes after the last checkpoint, provided the
flags, data and partition are the run's (tff_niid.rundir); one process at a
time holds the directory (run.lock).
"""

import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow must be imported before app.run(): imported inside main(), Keras
# fails to build Sequential models (BUILD_NOTES.md, "Known pitfalls").
from tff_niid import algorithms  # pylint: disable=g-import-not-at-top
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import evaluation
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import rundir
from tff_niid import runtime
from tff_niid import training
from tff_niid import workers

# Data and partition.
_DATASET = flags.DEFINE_enum("dataset", "mnist", ["mnist", "fashion_mnist"],
                             "Dataset.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Directory with the idx .gz files (default: "
    "$TFF_NIID_DATA, then ../shared/data/<dataset>).")
_PARTITION = flags.DEFINE_enum(
    "partition", "dirichlet", list(partition_lib.registry.SCHEMES),
    "Shortcut for --partition_spec: this scheme, with --alpha and --min_size "
    "where it takes them (ignored with --partition_spec / --partition_file).")
_ALPHA = flags.DEFINE_float("alpha", 0.5, "Dirichlet concentration.")
_MIN_SIZE = flags.DEFINE_integer("min_size", 1,
                                 "Minimum samples per client (dirichlet).")
_PARTITION_SPEC = flags.DEFINE_string(
    "partition_spec", None, "Composition spec, e.g. "
    "'dirichlet(alpha=0.1)+key(slant)+noise(rate=0.2)'.")
_PARTITION_FILE = flags.DEFINE_string(
    "partition_file", None, "A partition saved by tff_niid (directory).")
_NUM_CLIENTS = flags.DEFINE_integer("num_clients", 100, "Number of clients.",
                                    lower_bound=1)
_CLIENT_EVAL = flags.DEFINE_bool(
    "client_eval", False, "Also evaluate on per-client test splits whose label "
    "mix matches each client's (partition.match_test): mean and 10th "
    "percentile client accuracy.")

# Algorithm.
_ALGORITHM = flags.DEFINE_enum("algorithm", "fedavg",
                               list(algorithms.ALGORITHMS), "Algorithm.")
_MODEL = flags.DEFINE_enum("model", "cnn", list(models.MODELS), "Model.")
_CLIENTS_PER_ROUND = flags.DEFINE_integer("clients_per_round", 10,
                                          "Clients sampled per round.",
                                          lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 10, "Training rounds.", lower_bound=1)
_LOCAL_EPOCHS = flags.DEFINE_integer("local_epochs", 1, "Local epochs (E).",
                                     lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 10, "Client batch size (B).",
                                   lower_bound=1)
_MAX_EXAMPLES = flags.DEFINE_integer(
    "max_examples_per_client", None, "Use at most this many (random) "
    "examples per client per round (quick runs).", lower_bound=1)
_CLIENT_LR = flags.DEFINE_float("client_lr", 0.05, "Client SGD learning rate.")
_CLIENT_MOMENTUM = flags.DEFINE_float("client_momentum", 0.0,
                                      "Client SGD momentum.", lower_bound=0.0,
                                      upper_bound=1.0)
_SERVER_LR = flags.DEFINE_float("server_lr", 1.0, "Server learning rate.")
_SERVER_MOMENTUM = flags.DEFINE_float("server_momentum", 0.9,
                                      "Server momentum (fedavgm).",
                                      lower_bound=0.0, upper_bound=1.0)
_ADAPTIVE_EPSILON = flags.DEFINE_float(
    "adaptive_epsilon", 1e-3, "Adaptivity tau of fedadam/fedyogi.",
    lower_bound=0.0)
_PROXIMAL_STRENGTH = flags.DEFINE_float("proximal_strength", 0.01,
                                        "FedProx mu.", lower_bound=0.0)
_CLIENT_WEIGHT_DECAY = flags.DEFINE_float(
    "client_weight_decay", 0.0, "Client weight decay lambda: SGD steps along "
    "g + lambda * w (PyTorch's coupled weight_decay; NIID-Bench --reg 1e-5).",
    lower_bound=0.0)
_CLIENT_WEIGHTING = flags.DEFINE_enum(
    "client_weighting", None, ["num_examples", "uniform"],
    "Aggregation weights (default: uniform for dp_fedavg, else num_examples).")
_DP_NOISE = flags.DEFINE_float("dp_noise_multiplier", None,
                               "DP-FedAvg noise multiplier z.", lower_bound=0.0)
_DP_CLIP = flags.DEFINE_float("dp_clip", None, "DP-FedAvg L2 clip norm.")
_DP_DELTA = flags.DEFINE_float("dp_delta", None,
                               "DP delta (default 1/num_clients).")

# Evaluation, outputs, execution.
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 1,
                                   "Evaluate on the test set every N rounds.",
                                   lower_bound=1)
_TARGET_ACCURACY = flags.DEFINE_float(
    "target_accuracy", None, "Record the first round reaching this test "
    "accuracy (rounds-to-target).", lower_bound=0.0, upper_bound=1.0)
_STOP_AT_TARGET = flags.DEFINE_bool("stop_at_target", False,
                                    "Stop once --target_accuracy is reached.")
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", 1,
                                         "Save program state every N rounds.",
                                         lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of partition, model "
                             "initialisation, client sampling and shuffling.",
                             lower_bound=0)
_ROOT_OUTPUT_DIR = flags.DEFINE_string("root_output_dir", "runs",
                                       "Root of experiment directories.")
_EXPERIMENT_NAME = flags.DEFINE_string("experiment_name", "fedavg",
                                       "Experiment directory name.")
_WORKERS = flags.DEFINE_string(
    "workers", None, "Run on TFF C++ workers: 'local:N' starts N on this "
    "machine; 'host:port,host:port' uses running ones (BUILD_NOTES.md).")
_SMOKE = flags.DEFINE_bool(
    "smoke", False, "Check the command end to end in seconds: at most 2 "
    "rounds of 1 local epoch on at most 32 examples per client, tested on "
    "1,000 test images (the numbers mean nothing; CI runs every experiment "
    "config this way).")
_QUIET = flags.DEFINE_bool("quiet", False, "Log only first/last rounds and "
                           "events (for log files).")

# absl's bounds are inclusive; these must be positive (validated, like the
# bounds, when the flags are parsed: before anything is written).
for _name in ("client_lr", "server_lr", "dp_clip"):
  flags.register_validator(_name, lambda value: value is None or value > 0,
                           message="must be > 0")
flags.register_validator("dp_delta", lambda value: value is None or
                         0 < value < 1, message="must be in (0, 1)")

# Flags that may change when a run is resumed.
_RESUMABLE_CHANGES = ("rounds", "quiet", "stop_at_target", "target_accuracy",
                      "eval_every", "data_dir", "workers")


def _check_flags():
  """Combinations that cannot work, as one readable UsageError."""
  if _CLIENTS_PER_ROUND.value > _NUM_CLIENTS.value and not (
      _PARTITION_FILE.value or _PARTITION_SPEC.value):
    raise app.UsageError(
        f"--clients_per_round={_CLIENTS_PER_ROUND.value} exceeds "
        f"--num_clients={_NUM_CLIENTS.value}.")
  if _PARTITION_FILE.value and _PARTITION_SPEC.value:
    raise app.UsageError("give --partition_file or --partition_spec, not both.")
  if _ALGORITHM.value == "fedsgd" and _LOCAL_EPOCHS.value != 1:
    raise app.UsageError("fedsgd takes one gradient step per round: use "
                         "--local_epochs=1.")
  if _STOP_AT_TARGET.value and _TARGET_ACCURACY.value is None:
    raise app.UsageError("--stop_at_target needs --target_accuracy.")


def _build_partition(data):
  labels = data.train_labels
  if _PARTITION_FILE.value:
    return partition_lib.load(_PARTITION_FILE.value, labels=labels)
  spec_text = _PARTITION_SPEC.value or partition_lib.spec.shortcut(
      _PARTITION.value, alpha=_ALPHA.value, min_size=_MIN_SIZE.value)
  return partition_lib.spec.resolve(spec_text, labels, _NUM_CLIENTS.value,
                                    seed=_SEED.value, images=data.train_images)


def _describe_partition(part, data, output_dir):
  """Saves the partition, its summary table and plots into output_dir."""
  from tff_niid.partition import metrics  # pylint: disable=g-import-not-at-top
  from tff_niid.partition import plots
  labels = data.train_labels
  # A partition saved there already (by a run from before identities) was
  # checked by rundir.check_resume to be this one.
  part.save(os.path.join(output_dir, rundir.PARTITION_DIR), overwrite=True)
  key_name = part.spec and partition_lib.spec.attribute_key(part.spec)
  key = (partition_lib.attributes.attribute(key_name, data.train_images)
         if key_name else None)
  table = metrics.format_table(metrics.summary(part, labels, key=key))
  with open(os.path.join(output_dir, "partition_summary.txt"), "w") as f:
    f.write(table + "\n")
  plots.plot_all(part, labels, output_dir, prefix="partition_")
  return table


def _train(data, part, hp, output_dir):
  """Trains on `part` of `data` in `output_dir` (locked by the caller)."""
  client_data = clientdata.to_client_data(part, data.train_images,
                                          data.train_labels,
                                          feature_noise_seed=_SEED.value)
  process = algorithms.build_process(
      _ALGORITHM.value,
      models.build_model_fn(_MODEL.value, clientdata.BATCH_SPEC,
                            seed=_SEED.value), hp)
  # A smoke run only checks the path: the first 1,000 test images will do.
  test_count = 1000 if _SMOKE.value else len(data.test_labels)
  test_images = data.test_images[:test_count]
  test_labels = data.test_labels[:test_count]
  client_test = None
  if _CLIENT_EVAL.value:
    client_test = partition_lib.match_test(part, data.train_labels,
                                           test_labels, seed=_SEED.value)
  evaluator = evaluation.Evaluator(_MODEL.value, test_images, test_labels,
                                   client_test_partition=client_test)
  accountant = None
  if _ALGORITHM.value == "dp_fedavg":
    accountant = algorithms.PrivacyAccountant(
        _DP_NOISE.value, len(part), _CLIENTS_PER_ROUND.value,
        _DP_DELTA.value or 1.0 / len(part))
  config = training.LoopConfig(
      rounds=_ROUNDS.value, clients_per_round=_CLIENTS_PER_ROUND.value,
      batch_size=_BATCH_SIZE.value, local_epochs=_LOCAL_EPOCHS.value,
      seed=_SEED.value, eval_every=_EVAL_EVERY.value,
      checkpoint_every=_CHECKPOINT_EVERY.value,
      max_examples_per_client=_MAX_EXAMPLES.value,
      target_accuracy=_TARGET_ACCURACY.value,
      stop_at_target=_STOP_AT_TARGET.value)
  if _SMOKE.value:
    config = config.smoke()
  log = lambda line: print(line, flush=True)
  execution = contextlib.nullcontext()
  if not _WORKERS.value:
    runtime.use_local_worker()
  else:
    try:
      addresses, _ = workers.parse_workers_flag(
          _WORKERS.value, log_dir=os.path.join(output_dir, "worker_logs"))
    except ValueError as e:
      raise app.UsageError(str(e)) from None
    log(f"running on TFF workers {', '.join(addresses)}")
    execution = workers.use_workers(addresses)
  try:
    with execution:
      summary = training.train(process, client_data, config,
                               output_dir=output_dir, evaluator=evaluator,
                               accountant=accountant, log=log,
                               quiet=_QUIET.value)
  except training.TrainingDivergedError as e:
    log(f"ERROR: {e}")
    sys.exit(1)
  except KeyboardInterrupt:
    sys.exit(130)
  final = summary["final_test_accuracy"]
  log(f"done ({summary['stopped']}): {summary['rounds_run']} rounds, final "
      f"test accuracy {final if final is None else round(final, 4)}"
      + (f", rounds to {config.target_accuracy}: {summary['rounds_to_target']}"
         if config.target_accuracy is not None else "")
      + (f", epsilon {summary['dp_epsilon']:.3f} at delta "
         f"{summary['dp_delta']:.2g}" if "dp_epsilon" in summary else "")
      + f". Results in {os.path.abspath(output_dir)}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # TFF logs every model build at INFO
  _check_flags()
  output_dir = os.path.join(_ROOT_OUTPUT_DIR.value, _EXPERIMENT_NAME.value)
  try:
    data = datasets.load(_DATASET.value, _DATA_DIR.value)
    part = _build_partition(data)
    hp = algorithms.Hyperparameters(
        client_lr=_CLIENT_LR.value, client_momentum=_CLIENT_MOMENTUM.value,
        server_lr=_SERVER_LR.value, server_momentum=_SERVER_MOMENTUM.value,
        adaptive_epsilon=_ADAPTIVE_EPSILON.value,
        proximal_strength=_PROXIMAL_STRENGTH.value,
        client_weight_decay=_CLIENT_WEIGHT_DECAY.value,
        client_weighting=_CLIENT_WEIGHTING.value or (
            "uniform" if _ALGORITHM.value == "dp_fedavg" else "num_examples"),
        dp_noise_multiplier=_DP_NOISE.value, dp_clip=_DP_CLIP.value,
        clients_per_round=_CLIENTS_PER_ROUND.value)
    algorithms.validate(_ALGORITHM.value, hp)
    if _CLIENTS_PER_ROUND.value > len(part):
      raise ValueError(f"--clients_per_round={_CLIENTS_PER_ROUND.value} "
                       f"exceeds the partition's {len(part)} clients.")
  except ValueError as e:  # bad data, partition or flag values: one line
    raise app.UsageError(str(e)) from None
  flagfile = flags.FLAGS.flags_into_string()
  # Nothing is written into output_dir before it is locked and its run, if
  # any, checked to be this one.
  try:
    with rundir.lock(output_dir):
      rundir.check_resume(output_dir, flagfile, data, part,
                          resumable=_RESUMABLE_CHANGES)
      rundir.write_hparams(output_dir, flagfile)
      print(f"{data.name}: {part}", flush=True)
      if not rundir.has_identity(output_dir):  # first start, or an older run
        print(_describe_partition(part, data, output_dir), flush=True)
        rundir.record_identity(output_dir, data, part)
      _train(data, part, hp, output_dir)
  except rundir.RunDirError as e:
    sys.exit(f"ERROR: {e}")


if __name__ == "__main__":
  # Before flags are parsed: importing TFF made a worker manager whose
  # destructor, left to interpreter exit, prints a traceback on every early
  # exit (a rejected flag, a refused run directory).
  runtime.install_cleanup()
  app.run(main)

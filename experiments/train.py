"""Federated training with TFF on a non-IID partition of MNIST/Fashion-MNIST.

Example (the README's main job):
  python experiments/train.py --partition=dirichlet --alpha=0.5 \
      --num_clients=100 --clients_per_round=10 --rounds=15 --model=cnn \
      --root_output_dir=runs --experiment_name=demo

The flags are one `tff_niid.experiment.ExperimentConfig`, which
`experiment.run` runs, or resumes, in <root_output_dir>/<experiment_name>/.
--partition with --alpha/--min_size is a shortcut for the spec they stand for
(e.g. dirichlet(alpha=0.5, min_size=1)).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

# TensorFlow must be imported before app.run(): imported inside main(), Keras
# fails to build Sequential models (BUILD_NOTES.md, "Known pitfalls").
from tff_niid import algorithms  # pylint: disable=g-import-not-at-top
from tff_niid import checkout
from tff_niid import experiment
from tff_niid import flag_use
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import rundir
from tff_niid import runtime
from tff_niid import training

# Data and partition.
flags.DEFINE_enum("dataset", "mnist", ["mnist", "fashion_mnist"], "Dataset.")
flags.DEFINE_string("data_dir", None, "Directory with the idx .gz files "
                    "(default: $TFF_NIID_DATA, else ../shared/data beside a "
                    "clone, then ~/.cache/tff_niid/data).")
flags.DEFINE_bool(
    "download", False, "If the dataset is not found, download it (each file "
    "checked against its published SHA-256) into --data_dir, else "
    "$TFF_NIID_DATA, else ~/.cache/tff_niid/data (tff_niid.datasets).")
flags.DEFINE_enum(
    "partition", "dirichlet", list(partition_lib.registry.SCHEMES),
    "Shortcut for --partition_spec: this scheme, with --alpha and --min_size "
    "where it takes them (ignored with --partition_spec / --partition_file).")
flags.DEFINE_float("alpha", 0.5, "Dirichlet concentration.")
flags.DEFINE_integer("min_size", 1, "Minimum samples per client (dirichlet).")
flags.DEFINE_string("partition_spec", None, "Composition spec, e.g. "
                    "'dirichlet(alpha=0.1)+key(slant)+noise(rate=0.2)'.")
flags.DEFINE_string("partition_file", None,
                    "A partition saved by tff_niid (directory).")
flags.DEFINE_integer("num_clients", 100, "Number of clients (not used by a "
                     "natural spec, which makes its own).", lower_bound=1)
flags.DEFINE_bool(
    "client_eval", False, "Also evaluate on per-client test splits whose label "
    "mix matches each client's (partition.match_test): mean and 10th "
    "percentile client accuracy.")

# Algorithm.
flags.DEFINE_enum("algorithm", flag_use.DEFAULT_ALGORITHM,
                  list(algorithms.ALGORITHMS),
                  "The federated algorithm; what each is and the flags it "
                  "takes: README.md, 'Training binary', and "
                  "tff_niid/algorithms.py.")
flags.DEFINE_enum("model", "cnn", list(models.MODELS), "Model.")
flags.DEFINE_enum("initializer", models.DEFAULT_INITIALIZER,
                  list(models.INITIALIZERS),
                  "Weight initialisation (models.INITIALIZERS): "
                  "glorot_uniform_per_layer is Keras' default; glorot_uniform "
                  "and truncated_normal_0.1 draw every layer from one seed "
                  "(correlated layers: kept for the committed runs).")
flags.DEFINE_integer("clients_per_round", 10, "Clients sampled per round.",
                     lower_bound=1)
flags.DEFINE_integer("rounds", 10, "Training rounds.", lower_bound=1)
flags.DEFINE_integer("local_epochs", 1, "Local epochs (E).", lower_bound=1)
flags.DEFINE_integer("batch_size", 10, "Client batch size (B).", lower_bound=1)
flags.DEFINE_integer(
    "max_examples_per_client", None, "Use at most this many (random) "
    "examples per client per round (quick runs).", lower_bound=1)
flags.DEFINE_bool(
    "per_epoch_batches", False, "Batch each local epoch on its own, a short "
    "batch ending every epoch, as PyTorch's DataLoader and NIID-Bench do "
    "(default: the E epochs are streamed into batches, only the round's last "
    "batch short).")


def _used_by(name):
  """The algorithms using hyperparameter `name`, for its help text."""
  return "/".join(flag_use.HYPERPARAMETER_USERS[name])


flags.DEFINE_float("client_lr", 0.05, "Client SGD learning rate.")
flags.DEFINE_float("client_momentum", 0.0, "Client SGD momentum, in [0, 1).")
flags.DEFINE_float("server_lr", 1.0, "Server learning rate.")
flags.DEFINE_float("server_momentum", 0.9, f"Server momentum "
                   f"({_used_by('server_momentum')}), in [0, 1).")
flags.DEFINE_float("adaptive_beta1", 0.9, "First-moment decay of "
                   f"{_used_by('adaptive_beta1')}, in [0, 1).")
flags.DEFINE_float("adaptive_beta2", 0.99, "Second-moment decay of "
                   f"{_used_by('adaptive_beta2')}, in [0, 1).")
flags.DEFINE_float("adaptive_epsilon", 1e-3, "Adaptivity tau of "
                   f"{_used_by('adaptive_epsilon')} (added outside the "
                   "square root, as in Reddi et al. 2021).", lower_bound=0.0)
flags.DEFINE_float("proximal_strength", 0.01,
                   f"Proximal term's mu ({_used_by('proximal_strength')}).",
                   lower_bound=0.0)
flags.DEFINE_float(
    "client_weight_decay", 0.0, "Client weight decay lambda: SGD steps along "
    "g + lambda * w (PyTorch's coupled weight_decay; NIID-Bench --reg 1e-5).",
    lower_bound=0.0)
flags.DEFINE_enum(
    "client_weighting", None, ["num_examples", "uniform"],
    "Aggregation weights (default: uniform for dp_fedavg, else num_examples).")
flags.DEFINE_float("dp_noise_multiplier", None,
                   "DP-FedAvg noise multiplier z.", lower_bound=0.0)
flags.DEFINE_float("dp_clip", None, "DP-FedAvg L2 clip norm.")
flags.DEFINE_float("dp_delta", None, "DP delta (default 1/num_clients, a "
                   "weak guarantee: give one well below 1/num_clients).")

# Evaluation, outputs, execution.
flags.DEFINE_integer("eval_every", 1, "Evaluate on the test set every N "
                     "rounds.", lower_bound=1)
flags.DEFINE_float(
    "target_accuracy", None, "Record the first round reaching this test "
    "accuracy (rounds-to-target), a fraction in (0, 1].")
flags.DEFINE_bool("stop_at_target", False,
                  "Stop once --target_accuracy is reached.")
flags.DEFINE_integer("checkpoint_every", 1,
                     "Save program state every N rounds.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of partition, model initialisation, "
                     "client sampling and shuffling.", lower_bound=0,
                     upper_bound=2**32 - 1)
flags.DEFINE_string("root_output_dir", "runs",
                    "Root of experiment directories.")
flags.DEFINE_string("experiment_name", "fedavg", "Experiment directory name.")
flags.DEFINE_string(
    "workers", None, "Run on TFF C++ workers: 'local:N' starts N on this "
    "machine; 'host:port,host:port' uses running ones (BUILD_NOTES.md).")
flags.DEFINE_bool(
    "smoke", False, "Check the command end to end in seconds: at most 2 "
    "rounds of 1 local epoch on at most 32 examples per client, tested on "
    "1,000 test images (the numbers mean nothing; CI runs every experiment "
    "config this way).")
flags.DEFINE_bool(
    "check_only", False, "Check the command without training: load the "
    "data, build the partition and check the hyperparameters, print the "
    "partition; nothing is written.")
flags.DEFINE_bool("quiet", False,
                  "Log only the first and last rounds, the first at the "
                  "target, one every 10 minutes and events (for log files).")

# Checked when the flags are parsed, before anything is read or written.
flags.mark_flags_as_mutual_exclusive(["partition_spec", "partition_file"])
for _name in ("client_lr", "server_lr", "dp_clip"):  # absl's bounds include 0
  flags.register_validator(_name, lambda value: value is None or value > 0,
                           message="must be > 0")
# Momentum 1 never forgets a step; checked where --algorithm uses it (the
# others ignore it, with a warning).
for _name in flag_use.DECAYS:
  flags.register_multi_flags_validator(
      ["algorithm", _name],
      lambda f, name=_name: (
          0 <= f[name] < 1 or
          f["algorithm"] not in flag_use.HYPERPARAMETER_USERS[name]),
      message=f"--{_name} must be in [0, 1).")
flags.register_validator("dp_delta", lambda value: value is None or
                         0 < value < 1, message="must be in (0, 1)")
flags.register_validator("target_accuracy", lambda value: value is None or
                         0 < value <= 1, message="must be in (0, 1]")
flags.register_multi_flags_validator(
    ["algorithm", "local_epochs"],
    lambda f: f["algorithm"] != "fedsgd" or f["local_epochs"] == 1,
    message="fedsgd takes one gradient step per round: use --local_epochs=1.")
flags.register_multi_flags_validator(
    ["stop_at_target", "target_accuracy"],
    lambda f: not f["stop_at_target"] or f["target_accuracy"] is not None,
    message="--stop_at_target needs --target_accuracy.")
# A spec or a saved partition may make other client counts (checked once
# built).
flags.register_multi_flags_validator(
    ["clients_per_round", "num_clients", "partition_spec", "partition_file"],
    lambda f: (f["partition_spec"] or f["partition_file"] or
               f["clients_per_round"] <= f["num_clients"]),
    message="--clients_per_round exceeds --num_clients.")


@flags.multi_flags_validator(["partition", "alpha", "min_size",
                              "partition_spec", "partition_file"])
def _shortcut_is_a_spec(values):
  try:
    experiment.partition_spec_of_flags(values)
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  return True


def _warn_about_unused_flags(flag_values, unused):
  """A line for each flag of `unused` given another value than its default
  (on the command line or in a flagfile). Warned, not refused: shared train
  flagfiles set them for every algorithm of a grid; and a run's hparams.txt
  records every flag, at its default if not given."""
  for name, why in unused.items():
    flag = flag_values[name]
    if flag.present and flag.value != flag.default:
      print(f"WARNING: --{name} is not {why}.", flush=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # TFF logs every model build at INFO
  unused = flag_use.unused_flags(flags.FLAGS.flag_values_dict())
  _warn_about_unused_flags(flags.FLAGS, unused)
  if flags.FLAGS.algorithm == "fedprox" and flags.FLAGS.proximal_strength == 0:
    print("WARNING: --proximal_strength=0: FedProx without its proximal term "
          "is FedAvg.", flush=True)
  try:
    config = experiment.ExperimentConfig.from_flag_values(
        flags.FLAGS.flag_values_dict())
    if flags.FLAGS.check_only:
      print(f"checked, not trained: {experiment.check(config)}", flush=True)
    else:
      experiment.run(config, flagfile=rundir.binary_flagfile(),
                     unused_flags=tuple(unused))
  except (experiment.ConfigError, rundir.RunDirError,
          training.RunMismatchError, training.TrainingDivergedError) as e:
    # One line, not absl's usage text: the flags parsed, their values or the
    # data do not fit.
    sys.exit(f"ERROR: {e}")
  except training.Interrupted:  # it said which round's state it saved
    sys.exit(130)
  except KeyboardInterrupt:
    print("interrupted before the rounds: nothing trained; rerun the same "
          "command to start (or resume) the run.", flush=True)
    sys.exit(130)


if __name__ == "__main__":
  # Before anything can exit: importing TFF made a worker manager whose
  # destructor, left to interpreter exit, prints a traceback on every early
  # exit (another checkout's library, a rejected flag, a refused run
  # directory).
  runtime.install_cleanup()
  checkout.require_own_checkout(__file__)
  app.run(main)

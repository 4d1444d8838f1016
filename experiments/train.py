"""Trains a FedAvg model with TFF on a non-IID partition of MNIST/FMNIST.

Example (the README's main job):
  python experiments/train.py --partition=dirichlet --alpha=0.5 \
      --num_clients=100 --clients_per_round=10 --rounds=10 --model=cnn \
      --root_output_dir=runs --experiment_name=demo

Writes <root_output_dir>/<experiment_name>/{hparams.txt, metrics.csv,
partition/} and prints one progress line per round. hparams.txt is a flagfile:
`--flagfile=.../hparams.txt` reruns the experiment.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow must be imported before app.run(): imported inside main(), Keras
# fails to build Sequential models (BUILD_NOTES.md, "Known pitfalls").
from tff_niid import clientdata  # pylint: disable=g-import-not-at-top
from tff_niid import datasets
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training

_DATASET = flags.DEFINE_enum("dataset", "mnist", ["mnist", "fashion_mnist"],
                             "Dataset.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Directory with the idx .gz files (default: "
    "$TFF_NIID_DATA, then ../shared/data/<dataset>).")
_PARTITION = flags.DEFINE_enum("partition", "dirichlet", ["iid", "dirichlet"],
                               "Partition scheme.")
_ALPHA = flags.DEFINE_float("alpha", 0.5, "Dirichlet concentration.")
_MIN_SIZE = flags.DEFINE_integer("min_size", 1,
                                 "Minimum samples per client (dirichlet).")
_NUM_CLIENTS = flags.DEFINE_integer("num_clients", 100, "Number of clients.")
_CLIENTS_PER_ROUND = flags.DEFINE_integer("clients_per_round", 10,
                                          "Clients sampled per round.")
_ROUNDS = flags.DEFINE_integer("rounds", 10, "Training rounds.")
_LOCAL_EPOCHS = flags.DEFINE_integer("local_epochs", 1, "Local epochs (E).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 10, "Client batch size (B).")
_CLIENT_LR = flags.DEFINE_float("client_lr", 0.05, "Client SGD learning rate.")
_SERVER_LR = flags.DEFINE_float("server_lr", 1.0, "Server learning rate.")
_MODEL = flags.DEFINE_enum("model", "cnn", ["cnn", "2nn", "niid_cnn", "logreg"],
                           "Model.")
_MAX_EXAMPLES = flags.DEFINE_integer(
    "max_examples_per_client", None, "Cap on examples per client per round "
    "(quick runs).")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 1,
                                   "Evaluate on the test set every N rounds.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of partition, sampling, shuffle.")
_ROOT_OUTPUT_DIR = flags.DEFINE_string("root_output_dir", "runs",
                                       "Root of experiment directories.")
_EXPERIMENT_NAME = flags.DEFINE_string("experiment_name", "fedavg",
                                       "Experiment directory name.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # TFF logs every model build at INFO
  try:
    data = datasets.load(_DATASET.value, _DATA_DIR.value)
    if _PARTITION.value == "iid":
      part = partition_lib.iid(data.train_labels, _NUM_CLIENTS.value,
                               seed=_SEED.value)
    else:
      part = partition_lib.dirichlet(
          data.train_labels, _NUM_CLIENTS.value, alpha=_ALPHA.value,
          min_size=_MIN_SIZE.value, seed=_SEED.value)
  except ValueError as e:  # bad data or partition flags: one clear line
    raise app.UsageError(str(e)) from None
  output_dir = os.path.join(_ROOT_OUTPUT_DIR.value, _EXPERIMENT_NAME.value)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, "hparams.txt"), "w") as f:
    f.write(flags.FLAGS.flags_into_string())
  part.save(os.path.join(output_dir, "partition"))
  print(f"{data.name}: {part}", flush=True)

  client_data = clientdata.to_client_data(part, data.train_images,
                                          data.train_labels)
  model_fn = models.build_model_fn(_MODEL.value, clientdata.BATCH_SPEC,
                                   seed=_SEED.value)
  process = training.build_fedavg(model_fn, client_lr=_CLIENT_LR.value,
                                  server_lr=_SERVER_LR.value)
  evaluator = training.CentralEvaluator(_MODEL.value, data.test_images,
                                        data.test_labels)
  summary = training.train(
      process, client_data, rounds=_ROUNDS.value,
      clients_per_round=_CLIENTS_PER_ROUND.value, batch_size=_BATCH_SIZE.value,
      local_epochs=_LOCAL_EPOCHS.value, seed=_SEED.value,
      output_dir=output_dir, evaluator=evaluator, eval_every=_EVAL_EVERY.value,
      max_examples_per_client=_MAX_EXAMPLES.value,
      log=lambda line: print(line, flush=True))
  print(f"final test accuracy {summary['final_test_accuracy']:.4f}; "
        f"results in {os.path.abspath(output_dir)} (metrics.csv, hparams.txt, "
        "partition/)", flush=True)


if __name__ == "__main__":
  app.run(main)

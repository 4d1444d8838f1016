"""How far one FedProx round moves the model, TFF's builder vs tff_niid.

  .venv/bin/python experiments/fedprox_sign.py

One client holding the first --num_samples MNIST training samples trains one
round from the same initial model; the table gives ||w^1 - w^0|| for each mu.
FedProx's proximal term pulls local models towards w^0, so the norm must
shrink as mu grows (tff_niid's `fedprox`); TFF 0.87's
`build_weighted_fed_prox` grows instead (BUILD_NOTES.md, "Known pitfalls").
"""

from absl import app
from absl import flags
from absl import logging
import tensorflow_federated as tff

from tff_niid import algorithms
from tff_niid import checkout
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import models
from tff_niid import proximal
from tff_niid import runtime

_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Directory with the MNIST idx .gz files.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 600,
                                    "Training samples of the one client.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 20, "Batch size.")
_CLIENT_LR = flags.DEFINE_float("client_lr", 0.01, "Client SGD rate.")
_CLIENT_MOMENTUM = flags.DEFINE_float("client_momentum", 0.9,
                                      "Client SGD momentum.")
_MODEL = flags.DEFINE_enum("model", "2nn", models.MODELS, "Model.")
# What the committed output (experiments/results/fedprox_sign/) ran with,
# the default then.
_INITIALIZER = flags.DEFINE_enum("initializer", "glorot_uniform",
                                 list(models.INITIALIZERS),
                                 "Weight initialisation (models.INITIALIZERS).")
_MUS = flags.DEFINE_list("mus", ["0.1", "1", "3"], "Proximal strengths > 0.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.WARNING)  # TFF logs every model build at INFO
  runtime.use_local_worker()
  try:
    mus = [float(mu) for mu in _MUS.value]
    data = datasets.load("mnist", _DATA_DIR.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if not mus or min(mus) <= 0:
    raise app.UsageError("--mus must be positive numbers.")
  n = _NUM_SAMPLES.value
  client = clientdata.test_dataset(data.train_images[:n],
                                   data.train_labels[:n],
                                   batch_size=_BATCH_SIZE.value)
  model_fn = models.build_model_fn(_MODEL.value, clientdata.BATCH_SPEC,
                                   initializer=_INITIALIZER.value)

  def tff_norm(mu):
    return proximal.first_round_update_norm(
        tff.learning.algorithms.build_weighted_fed_prox(
            model_fn, mu, tff.learning.optimizers.build_sgdm(
                _CLIENT_LR.value, momentum=_CLIENT_MOMENTUM.value or None)),
        [client])

  def our_norm(algorithm, mu=0.0):
    hp = algorithms.Hyperparameters(
        client_lr=_CLIENT_LR.value, client_momentum=_CLIENT_MOMENTUM.value,
        proximal_strength=mu)
    return proximal.first_round_update_norm(
        algorithms.build_process(algorithm, model_fn, hp), [client])

  print(f"One round, one client ({n} MNIST samples, B={_BATCH_SIZE.value}, "
        f"{_MODEL.value}, SGD {_CLIENT_LR.value} momentum "
        f"{_CLIENT_MOMENTUM.value}): ||w^1 - w^0||\n")
  print("| mu | TFF build_weighted_fed_prox | tff_niid fedprox |")
  print("|---:|---:|---:|")
  print(f"| 0 (FedAvg) | — | {our_norm('fedavg'):.4f} |")
  for mu in mus:
    print(f"| {mu:g} | {tff_norm(mu):.4f} | {our_norm('fedprox', mu):.4f} |",
          flush=True)


if __name__ == "__main__":
  runtime.install_cleanup()  # first: as train.py
  checkout.require_own_checkout(__file__)
  app.run(main)

"""Models, evaluation and the training loop on real MNIST."""

import asyncio
import dataclasses
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import clientdata
from tff_niid import evaluation
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import results
from tff_niid import rundir
from tff_niid import training


@pytest.mark.parametrize("name,params", [("cnn", 1_663_370), ("2nn", 199_210),
                                         ("logreg", 7_850)])
def test_parameter_counts(name, params):
  assert models.create_keras_model(name).count_params() == params


@pytest.fixture(scope="module")
def small_run(mnist, tmp_path_factory):
  """2 FedAvg rounds with centralized and per-client evaluation."""
  out = str(tmp_path_factory.mktemp("run"))
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=1.0, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC), client_lr=0.05)
  client_test = partition_lib.core.make_partition(
      mnist.test_labels, np.arange(10000), np.linspace(0, 10000, 21).astype(int),
      scheme="test_split", params={}, seed=0)
  evaluator = evaluation.Evaluator("2nn", mnist.test_images, mnist.test_labels,
                                   client_test_partition=client_test)
  lines: list[str] = []
  config = training.LoopConfig(rounds=2, clients_per_round=10, batch_size=20,
                               max_examples_per_client=300, seed=0,
                               target_accuracy=0.5)
  summary = training.train(process, cd, config, output_dir=out,
                           evaluator=evaluator, log=lines.append)
  return out, summary, lines


def test_fedavg_two_rounds_loss_decreases(small_run):
  out, summary, lines = small_run
  rows = results.read_metrics(out)
  assert [r["round"] for r in rows] == [1, 2]
  assert rows[1]["train_loss"] < rows[0]["train_loss"]
  assert rows[1]["test_loss"] < rows[0]["test_loss"]
  assert summary["final_test_accuracy"] > 0.6
  assert len(lines) == 2 and lines[1].startswith("round 2/2")
  assert "client acc mean" in lines[1] and "ETA" in lines[1]


def test_summary_and_outputs(small_run):
  out, summary, _ = small_run
  with open(f"{out}/{results.SUMMARY_FILE}") as f:
    assert json.load(f) == json.loads(json.dumps(summary))
  rows = results.read_metrics(out)
  first = next(r["round"] for r in rows if r["test_accuracy"] >= 0.5)
  assert summary["rounds_to_target"] == first
  assert summary["rounds_run"] == 2 and summary["stopped"] == "completed"
  # Per-client accuracies of an even split of the test set average to the
  # centralized accuracy.
  assert rows[1]["client_accuracy_mean"] == pytest.approx(
      rows[1]["test_accuracy"], abs=1e-9)
  assert rows[1]["client_accuracy_p10"] <= rows[1]["client_accuracy_mean"]
  assert os.listdir(f"{out}/{training.TENSORBOARD_DIR}")
  assert sorted(os.listdir(f"{out}/{rundir.CHECKPOINT_DIR}")) == [
      "round_1", "round_2"]


def test_rejects_too_many_clients_per_round(mnist, tmp_path):
  part = partition_lib.iid(mnist.train_labels, 5, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  process = training.build_fedavg(
      models.build_model_fn("logreg", clientdata.BATCH_SPEC), client_lr=0.1)
  config = training.LoopConfig(rounds=1, clients_per_round=6, batch_size=10)
  with pytest.raises(ValueError, match="clients_per_round"):
    training.train(process, cd, config, output_dir=str(tmp_path))


def test_a_numpy_seed_is_a_plain_int():
  # TFF's client sampler seeds itself only from an `int`: with a numpy
  # integer it drew other clients on every call.
  config = training.LoopConfig(rounds=1, clients_per_round=2, batch_size=1,
                               seed=np.int64(7))
  assert type(config.seed) is int and config.seed == 7
  ids = [str(i) for i in range(100)]
  sample = tff.simulation.build_uniform_sampling_fn(
      ids, replace=False, random_seed=config.seed)
  assert sample(3, 5) == sample(3, 5)


@pytest.mark.parametrize("change,message", [
    (dict(batch_size=0), "LoopConfig.batch_size must be an integer >= 1; "
     "got 0."),
    (dict(local_epochs=0), "LoopConfig.local_epochs must be an integer >= 1; "
     "got 0."),
    (dict(rounds=0), "LoopConfig.rounds must be an integer >= 1; got 0."),
    (dict(rounds=2.5), "LoopConfig.rounds must be an integer >= 1; got 2.5."),
    (dict(max_examples_per_client=0), "LoopConfig.max_examples_per_client "
     "must be an integer >= 1; got 0."),
    (dict(seed=-1), "LoopConfig.seed must be an integer in [0, 2**32); got "
     "-1."),
    (dict(seed=2**32), "LoopConfig.seed must be an integer in [0, 2**32); "
     "got 4294967296."),
    (dict(seed=True), "LoopConfig.seed must be an integer in [0, 2**32); "
     "got True."),
    (dict(target_accuracy=97), "LoopConfig.target_accuracy is a fraction in "
     "(0, 1]; got 97."),
    (dict(stop_at_target=True), "LoopConfig.stop_at_target needs a "
     "target_accuracy."),
])
def test_loop_config_is_checked_when_made(change, message):
  # batch_size=0 failed deep in a TFF computation; rounds=0 "trained".
  with pytest.raises(ValueError) as e:
    training.LoopConfig(**dict(dict(rounds=1, clients_per_round=1,
                                    batch_size=1), **change))
  assert str(e.value) == message


def test_evaluator_of_an_unknown_model():
  with pytest.raises(ValueError, match=r"unknown model 'resnet'; choose one "
                     r"of \['cnn', '2nn', 'niid_cnn', 'logreg'\]"):
    evaluation.Evaluator("resnet", np.zeros((2, 28, 28)), np.zeros(2, int))


def test_evaluator_of_another_model_than_the_weights(mnist):
  # It failed deep in TF (assign_weights_to pairs arrays with zip).
  evaluator = evaluation.Evaluator("cnn", mnist.test_images[:10],
                                   mnist.test_labels[:10])
  weights = tff.learning.models.ModelWeights.from_model(
      models.create_keras_model("2nn"))
  with pytest.raises(ValueError, match=r"this Evaluator tests the model "
                     r"'cnn' \(trainable shapes \[\(5, 5, 1, 32\), .*\]\), "
                     r"but the weights given are another model's \(\[\(784, "
                     r"200\), .*make the Evaluator with the model the process "
                     r"trains\."):
    evaluator(weights)


def test_a_model_of_ones_own_with_other_metric_names_trains(mnist, tmp_path):
  # The loop read "sparse_categorical_accuracy" and failed after round 1.
  def model_fn():
    return tff.learning.models.from_keras_model(
        models.create_keras_model("logreg"),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        input_spec=clientdata.BATCH_SPEC,
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="acc")])
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  config = training.LoopConfig(rounds=1, clients_per_round=2, batch_size=20,
                               max_examples_per_client=100)
  training.train(training.build_fedavg(model_fn, client_lr=0.05), cd, config,
                 output_dir=str(tmp_path), log=lambda line: None)
  [row] = results.read_metrics(str(tmp_path))
  assert math.isnan(row["train_accuracy"]) and row["train_loss"] > 0


def _two_nn_on_ten_iid_clients(mnist):
  """(client data, FedAvg process, evaluator on 1,000 test images) of the
  2NN on 10 IID MNIST clients: a loop's parts, for a few short rounds."""
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC), client_lr=0.05)
  evaluator = evaluation.Evaluator("2nn", mnist.test_images[:1000],
                                   mnist.test_labels[:1000])
  return cd, process, evaluator


def test_a_run_stopped_at_its_target_is_not_trained_again(mnist, tmp_path):
  # Rerun (as the README says to resume), it once trained on past its
  # target, changing its summary.
  cd, process, evaluator = _two_nn_on_ten_iid_clients(mnist)
  config = training.LoopConfig(rounds=5, clients_per_round=2, batch_size=20,
                               max_examples_per_client=200, seed=0,
                               target_accuracy=0.3, stop_at_target=True)
  first = training.train(process, cd, config, output_dir=str(tmp_path),
                         evaluator=evaluator, log=lambda line: None)
  assert first["stopped"] == "reached target accuracy 0.3"
  assert first["rounds_run"] < 5
  rows = results.read_metrics(str(tmp_path))
  lines: list[str] = []
  again = training.train(process, cd, config, output_dir=str(tmp_path),
                         evaluator=evaluator, log=lines.append)
  assert again == first and results.read_metrics(str(tmp_path)) == rows
  assert lines[-1] == (f"round {first['rounds_to_target']} reached the target "
                       "accuracy 0.3: nothing to train.")


class _AccuracyByCall:
  """An evaluator whose test accuracy is the next of `accuracies` at each
  call: rounds that reach a target where a test needs them to."""

  metric_names = ("test_loss", "test_accuracy")

  def __init__(self, accuracies):
    self._accuracies = iter(accuracies)

  def __call__(self, model_weights):
    del model_weights
    return {"test_loss": 1.0, "test_accuracy": next(self._accuracies)}


def test_quiet_logs_the_first_last_and_target_rounds_and_a_heartbeat(
    mnist, tmp_path, monkeypatch):
  cd, process, _ = _two_nn_on_ten_iid_clients(mnist)
  config = training.LoopConfig(rounds=5, clients_per_round=2, batch_size=20,
                               max_examples_per_client=100, seed=0,
                               target_accuracy=0.5)

  def logged_rounds(output_dir):
    lines: list[str] = []
    # The target is first reached in round 3, and again in round 4.
    training.train(process, cd, config, output_dir=str(output_dir),
                   evaluator=_AccuracyByCall([0.1, 0.2, 0.6, 0.7, 0.4]),
                   log=lines.append, quiet=True)
    return [line.split("/")[0] for line in lines]

  assert logged_rounds(tmp_path / "a") == ["round 1", "round 3", "round 5"]
  monkeypatch.setattr(training, "_QUIET_HEARTBEAT_SECONDS", 0)
  assert logged_rounds(tmp_path / "b") == [f"round {r}" for r in range(1, 6)]


def test_a_run_past_its_target_resumed_with_stop_at_target_trains_on(
    mnist, tmp_path):
  # Only a run that stopped at its target has nothing left to train.
  cd, process, _ = _two_nn_on_ten_iid_clients(mnist)
  config = training.LoopConfig(rounds=3, clients_per_round=2, batch_size=20,
                               max_examples_per_client=100, seed=0,
                               target_accuracy=0.5)
  training.train(process, cd, config, output_dir=str(tmp_path),
                 evaluator=_AccuracyByCall([0.1, 0.6, 0.7]),
                 log=lambda line: None)
  summary = training.train(
      process, cd, dataclasses.replace(config, rounds=6, stop_at_target=True),
      output_dir=str(tmp_path), evaluator=_AccuracyByCall([0.8, 0.9]),
      log=lambda line: None)
  assert (summary["rounds_run"], summary["rounds_to_target"]) == (4, 2)
  assert summary["stopped"] == "reached target accuracy 0.5"


def _diverging_run(mnist, output_dir, client_lr):
  """FedAvg of the 2NN on 10 IID clients at a client rate too large: the
  TrainingDivergedError of `training.train` into `output_dir`."""
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  # The rates below were found for this initialisation.
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC,
                            initializer="glorot_uniform"),
      client_lr=client_lr)
  config = training.LoopConfig(rounds=6, clients_per_round=5, batch_size=10,
                               max_examples_per_client=100)
  with pytest.raises(training.TrainingDivergedError) as e:
    training.train(process, cd, config, output_dir=str(output_dir),
                   log=lambda line: None)
  return e.value


def test_nan_loss_in_round_1_stops_without_a_checkpoint_and_is_recorded(
    mnist, tmp_path):
  error = _diverging_run(mnist, tmp_path, client_lr=1e6)
  rows = results.read_metrics(str(tmp_path))
  # It diverges in round 1, before any checkpoint: the message says so rather
  # than pointing at a "round 0" state that was never saved.
  assert not rows and not os.listdir(tmp_path / rundir.CHECKPOINT_DIR)
  assert str(error).startswith("round 1: the model update is NaN/inf")
  assert str(error).endswith(
      "stopped, recorded in summary.json as \"diverged at round 1\". No "
      "checkpoint had been saved yet; try a lower learning rate.")
  # The outcome is recorded: the run has ended (grids skip it, reports count
  # it) without being finished (it has no accuracy to average).
  run = results.read_run(str(tmp_path))
  assert run["summary"]["stopped"] == "diverged at round 1"
  assert run["summary"]["rounds_run"] == 0
  assert results.diverged_round(run) == 1
  assert results.ended(run) and not results.finished(run)


def test_a_later_divergence_keeps_the_rounds_before_it_and_only_those(
    mnist, tmp_path):
  # FedAvg at client rate 160 diverges after a few good rounds. Rows an
  # earlier start wrote past the last checkpoint (here: appended by hand, as
  # another machine's start would have left them) are dropped when the
  # rerun diverges: the summary and metrics.csv end before the round.
  def diverge():
    _diverging_run(mnist, tmp_path, client_lr=160.0)
    return results.read_run(str(tmp_path))

  run = diverge()
  stop = results.diverged_round(run)
  assert stop is not None and stop >= 2
  assert run["summary"]["rounds_run"] == stop - 1
  assert [r["round"] for r in run["metrics"]] == list(range(1, stop))
  metrics_path = tmp_path / results.METRICS_FILE
  last = metrics_path.read_text().splitlines()[-1].split(",")
  with open(metrics_path, "a") as f:
    for r in (stop, stop + 1):
      f.write(",".join([str(r)] + last[1:]) + "\n")
  run = diverge()
  assert results.diverged_round(run) == stop
  assert [r["round"] for r in run["metrics"]] == list(range(1, stop))
  assert run["summary"]["rounds_run"] == stop - 1


def test_a_round_of_clients_without_examples_is_refused_not_diverged(
    tmp_path):
  # A ClientData of tff_niid's partitions never has an empty client; any
  # other may. Such a round trains nothing: an error, not a divergence.
  def empty_dataset(client_id):
    del client_id
    return tf.data.Dataset.from_tensor_slices(
        {"x": np.zeros((0, 28, 28, 1), np.float32),
         "y": np.zeros((0,), np.int64)})

  cd = tff.simulation.datasets.ClientData.from_clients_and_tf_fn(
      ["a", "b"], empty_dataset)
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC), client_lr=0.1)
  config = training.LoopConfig(rounds=2, clients_per_round=2, batch_size=10)
  with pytest.raises(ValueError, match=r"^round 1: the sampled clients "
                     r"\((a, b|b, a)\) hold no examples"):
    training.train(process, cd, config, output_dir=str(tmp_path),
                   log=lambda line: None)
  assert not (tmp_path / results.SUMMARY_FILE).exists()


def test_interrupt_during_a_save_keeps_that_round(mnist, tmp_path,
                                                  monkeypatch):
  # Ctrl-C while the main thread waits for round 2's checkpoint: the save goes
  # on in training's async thread; the interrupt must neither write round 2
  # again (TFF refuses an existing version) nor lose it.
  part = partition_lib.iid(mnist.train_labels, 4, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  process = training.build_fedavg(
      models.build_model_fn("logreg", clientdata.BATCH_SPEC), client_lr=0.1)
  config = training.LoopConfig(rounds=3, clients_per_round=2, batch_size=10,
                               max_examples_per_client=20)
  run = training._run  # pylint: disable=protected-access
  saves = []

  def interrupted_on_second_save(coroutine):
    if coroutine.__qualname__.endswith("save"):
      saves.append(coroutine)
      if len(saves) == 2:  # round 2: started, then Ctrl-C while waiting
        training._async_thread().submit(  # pylint: disable=protected-access
            asyncio.run, coroutine)
        raise KeyboardInterrupt
    return run(coroutine)

  monkeypatch.setattr(training, "_run", interrupted_on_second_save)
  lines: list[str] = []
  with pytest.raises(KeyboardInterrupt):
    training.train(process, cd, config, output_dir=str(tmp_path),
                   log=lines.append)
  assert lines[-1].startswith("interrupted: state of round 2 saved")
  assert sorted(os.listdir(tmp_path / rundir.CHECKPOINT_DIR)) == [
      "round_1", "round_2"]
  assert training.load_checkpoint(str(tmp_path), process)[0] == 2


def _keras_2nn(kernel_seeds):
  """The 2NN as plain Keras builds it: Glorot uniform kernels from the given
  seeds, one per layer, and zero biases."""
  return tf.keras.Sequential(
      [tf.keras.layers.InputLayer(input_shape=models.INPUT_SHAPE),
       tf.keras.layers.Flatten()] +
      [tf.keras.layers.Dense(units, activation=activation,
                             kernel_initializer=tf.keras.initializers
                             .GlorotUniform(seed=seed))
       for (units, activation), seed in zip(
           ((200, "relu"), (200, "relu"), (10, None)), kernel_seeds)])


def _second_kernel_against_the_first(model):
  """Correlation of the 2NN's second kernel with its first's first rows."""
  first, second = model.get_weights()[0], model.get_weights()[2]
  return np.corrcoef(first[:200].ravel(), second.ravel())[0, 1]


def test_initializers():
  # The default is Keras' own: Glorot uniform kernels, zero biases, each
  # layer from a seed of its own.
  default = models.create_keras_model("2nn", seed=3)
  layer_seeds = [int(np.random.SeedSequence([3, layer]).generate_state(2)[0])
                 for layer in range(3)]
  for a, b in zip(default.get_weights(), _keras_2nn(layer_seeds).get_weights()):
    np.testing.assert_array_equal(a, b)
  assert abs(_second_kernel_against_the_first(default)) < 0.05
  # The former default, kept for the committed runs: one seed in every
  # layer, so the second kernel is the first's first rows rescaled.
  shared = models.create_keras_model("2nn", seed=3,
                                     initializer="glorot_uniform")
  for a, b in zip(shared.get_weights(), _keras_2nn([3, 3, 3]).get_weights()):
    np.testing.assert_array_equal(a, b)
  assert _second_kernel_against_the_first(shared) > 0.9999
  for name in ("truncated_normal_0.1", "truncated_normal_0.1_per_layer"):
    tutorial = models.create_keras_model("2nn", seed=3, initializer=name)
    kernels = np.concatenate([w.ravel() for w in tutorial.get_weights()[0::2]])
    biases = np.concatenate([w.ravel() for w in tutorial.get_weights()[1::2]])
    assert np.abs(kernels).max() <= 0.2
    # A normal of std 0.1 truncated at 2 std has std 0.1 * 0.880.
    assert kernels.std() == pytest.approx(0.0880, rel=0.02)
    assert np.all(biases == np.float32(0.1))
    assert (abs(_second_kernel_against_the_first(tutorial)) < 0.05) == (
        name.endswith("_per_layer"))
  # PyTorch's nn.Conv2d / nn.Linear default: kernels and biases uniform on
  # +-1/sqrt(fan_in) (niid_cnn: fan-ins 1*5*5, 6*5*5, 16*4*4, 120, 84).
  torch_like = models.create_keras_model("niid_cnn", seed=3,
                                         initializer="pytorch_default")
  weights = torch_like.get_weights()
  for fan_in, kernel, bias in zip((25, 150, 256, 120, 84), weights[0::2],
                                  weights[1::2]):
    bound = 1 / np.sqrt(fan_in)
    assert np.prod(kernel.shape[:-1]) == fan_in
    for values in (kernel, bias):
      assert np.abs(values).max() <= bound
    assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)
  with pytest.raises(ValueError, match="unknown initializer 'he'"):
    models.build_model_fn("2nn", clientdata.BATCH_SPEC, initializer="he")

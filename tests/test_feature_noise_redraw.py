"""Feature noise redrawn at every read, as NIID-Bench applies it.

NIID-Bench (Li et al. 2022; utils.py `AddGaussianNoise`, experiments.py
`test_dl_global` when noise > 0) adds `torch.randn(size) * std` to the
ToTensor image (pixels in [0, 1], no clipping) every time a sample is read,
and evaluates on one noisy copy of the test set per party. Checked here on
real MNIST: the noise statistics against a numpy re-implementation of that
transform, fresh noise per epoch and round, the same batches on the driver
and the worker, bit-identical resume, and the evaluation copies.
"""

import collections
import json
import os

import numpy as np
import pytest
from scipy import stats
import tensorflow as tf

from test_resume import _rows_without_timing
from test_resume import resumed_as_straight
from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import evaluation
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training

SPEC = "iid+feature_noise(sigma=0.1, redraw=true)"
NUM_CLIENTS = 100
# A significance level no deterministic draw below should come near.
ALPHA = 1e-3


def _niid_bench_add_gaussian_noise(images, std, rng):
  """NIID-Bench's ToTensor + AddGaussianNoise(0., std) in numpy: uint8
  images scaled to [0, 1], plus standard normal noise times std."""
  tensor = images.astype(np.float32)[:, np.newaxis] / 255.0
  return tensor + rng.standard_normal(tensor.shape) * std + 0.0


@pytest.fixture(name="part", scope="module")
def fixture_part(mnist):
  return partition_lib.spec.resolve(SPEC, mnist.train_labels, NUM_CLIENTS,
                                    seed=0)


@pytest.fixture(name="client_data", scope="module")
def fixture_client_data(mnist, part, tmp_path_factory):
  return clientdata.to_client_data(
      part, mnist.train_images, mnist.train_labels,
      worker_data_dir=str(tmp_path_factory.mktemp("arrays")))


def _read(client_data, client_id, seed, local_epochs=1):
  """(sample position in the client, noisy image) of every read of one
  client's samples in local training with shuffle seed `seed`."""
  numbered = client_data.create_tf_dataset_for_client(client_id).enumerate()
  dataset = numbered.map(lambda i, e: collections.OrderedDict(x=e["x"], y=i))
  batches = clientdata.local_training_batches(
      dataset, batch_size=64, local_epochs=local_epochs, seed=seed,
      feature_noise_std=client_data.per_read_noise_std(client_id))
  reads = list(batches.as_numpy_iterator())
  return (np.concatenate([b["y"] for b in reads]),
          np.concatenate([b["x"] for b in reads])[..., 0])


def _residuals(mnist, part, client, positions, noisy):
  clean = mnist.train_images[part[client][positions]].astype(np.float32)
  return noisy - clean / np.float32(255.0)


def test_spec_records_the_mode_and_older_partitions_load(mnist, part,
                                                         tmp_path):
  assert part.spec == "iid+feature_noise(redraw=true, sigma=0.1)"
  assert part.feature_noise_redraw
  np.testing.assert_allclose(part.feature_noise,
                             partition_lib.feature_noise_levels(100, 0.1))
  default = partition_lib.spec.resolve("iid+feature_noise(sigma=0.1)",
                                       mnist.train_labels, 10, seed=0)
  assert not default.feature_noise_redraw
  path = part.save(str(tmp_path / "p"))
  assert partition_lib.load(path, labels=mnist.train_labels
                            ).feature_noise_redraw
  # A manifest written before the mode existed has no such field.
  manifest_path = os.path.join(path, "manifest.json")
  manifest = json.load(open(manifest_path))
  del manifest["feature_noise_redraw"]
  json.dump(manifest, open(manifest_path, "w"))
  assert not partition_lib.load(path).feature_noise_redraw
  with pytest.raises(ValueError, match="redraw must be true or false; got 1"):
    partition_lib.spec.parse("iid+feature_noise(sigma=0.1, redraw=1)")
  with pytest.raises(ValueError, match="needs feature_noise"):
    default.replace(feature_noise=None, feature_noise_redraw=True)


@pytest.mark.parametrize("client", [50, 99])
def test_noise_is_niid_bench_gaussian_noise(mnist, part, client_data, client):
  level = part.feature_noise[client]
  positions, noisy = _read(client_data, str(client), seed=client)
  assert sorted(positions) == list(range(part.sizes[client]))
  residuals = _residuals(mnist, part, client, positions, noisy).ravel()
  n = residuals.size
  assert abs(residuals.mean()) < 4 * level / np.sqrt(n)
  chi2 = np.sum(residuals.astype(np.float64) ** 2) / np.float32(level) ** 2
  assert 2 * min(stats.chi2.cdf(chi2, n), stats.chi2.sf(chi2, n)) > ALPHA
  assert stats.kstest(residuals, "norm", args=(0, level)).pvalue > ALPHA
  # Against the transform itself, on the same images: same distribution of
  # noisy pixel values (not clipped to [0, 1]); a 5% larger std is told apart.
  images = mnist.train_images[part[client]]
  rng = np.random.default_rng(client)
  reference = _niid_bench_add_gaussian_noise(images, level, rng).ravel()
  assert noisy.min() < 0 and noisy.max() > 1
  assert stats.ks_2samp(noisy.ravel(), reference).pvalue > ALPHA
  wider = _niid_bench_add_gaussian_noise(images, 1.05 * level, rng).ravel()
  assert stats.ks_2samp(noisy.ravel(), wider).pvalue < ALPHA


def test_noise_is_redrawn_every_epoch_and_round(mnist, part, client_data):
  client = 99

  def noise_of_each_read(seed):
    positions, noisy = _read(client_data, str(client), seed, local_epochs=2)
    residuals = _residuals(mnist, part, client, positions, noisy)
    order = np.argsort(positions, kind="stable")  # epoch 1 before epoch 2
    return residuals[order].reshape(part.sizes[client], 2, -1)

  round_1, round_2 = noise_of_each_read(11), noise_of_each_read(12)
  np.testing.assert_array_equal(noise_of_each_read(11), round_1)
  for a, b in ((round_1[:, 0], round_1[:, 1]), (round_1[:, 0], round_2[:, 0])):
    assert np.mean(a == b) < 1e-3
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01
  # The default mode draws each sample's noise once: the same every epoch.
  fixed = clientdata.to_client_data(
      part.replace(feature_noise_redraw=False), mnist.train_images,
      mnist.train_labels)
  assert fixed.per_read_noise_std(str(client)) is None
  positions, noisy = _read(fixed, str(client), 11, local_epochs=2)
  order = np.argsort(positions, kind="stable")
  epochs = _residuals(mnist, part, client, positions, noisy)[order].reshape(
      part.sizes[client], 2, -1)
  np.testing.assert_array_equal(epochs[:, 0], epochs[:, 1])
  assert np.std(epochs) == pytest.approx(part.feature_noise[client], rel=0.01)


def test_worker_builds_the_driver_batches(client_data):
  on_worker = client_data.training_dataset_computation(
      batch_size=20, local_epochs=2, max_examples=100)
  for client in (0, 37, 99):
    cid = str(client)
    # The shuffle seed of (run seed 3, round 5, this client).
    seed = training._shuffle_seed(  # pylint: disable=protected-access
        3, 5, client)
    sent = client_data.client_input(cid, seed)
    assert set(sent) == {"indices", "shuffle_seed", "noise_std"}
    driver = list(clientdata.local_training_batches(
        client_data.create_tf_dataset_for_client(cid), batch_size=20,
        local_epochs=2, max_examples=100, seed=seed,
        feature_noise_std=client_data.per_read_noise_std(cid)))
    worker = list(on_worker(sent))
    assert len(driver) == len(worker) == 10
    for a, b in zip(driver, worker):
      np.testing.assert_array_equal(a["x"], b["x"])
      np.testing.assert_array_equal(a["y"], b["y"])
    on_grid = np.isclose(driver[0]["x"] * 255, np.round(driver[0]["x"] * 255))
    assert on_grid.all() == (client == 0)  # client 0's std is 0: clean


def test_noise_needs_a_seed(client_data):
  with pytest.raises(ValueError, match="feature_noise_std needs a seed"):
    clientdata.local_training_batches(
        client_data.create_tf_dataset_for_client("1"), batch_size=10,
        feature_noise_std=0.1)


def test_evaluation_copies(mnist, part):
  levels = np.array([0.0, 0.05, 0.1], np.float32)
  images = mnist.test_images[:1000]
  inputs = clientdata.test_dataset(images, mnist.test_labels[:1000],
                                   batch_size=300).map(lambda e: e["x"])
  copies = np.concatenate(list(evaluation.noisy_test_copies(
      inputs, levels, seed=(0, 1)).as_numpy_iterator()))[..., 0]
  clean = images / np.float32(255.0)
  assert copies.shape == (3000, 28, 28)
  residuals = copies.reshape(3, 1000, 28, 28) - clean
  np.testing.assert_array_equal(residuals[0], 0.0)
  for level, noise in zip(levels[1:], residuals[1:]):
    assert np.std(noise) == pytest.approx(level, rel=0.01)
    assert abs(np.mean(noise)) < 4 * level / np.sqrt(noise.size)
  again = np.concatenate(list(evaluation.noisy_test_copies(
      inputs, levels, seed=(0, 1)).as_numpy_iterator()))[..., 0]
  other = np.concatenate(list(evaluation.noisy_test_copies(
      inputs, levels, seed=(0, 2)).as_numpy_iterator()))[..., 0]
  np.testing.assert_array_equal(again, copies)
  assert np.mean(other[1000:] == copies[1000:]) < 1e-3

  # Evaluator: n clean copies give the clean metrics, each client's split
  # read from its own copy; noisy copies give the same metrics for the same
  # weights.
  labels = mnist.test_labels[:1000]
  process = algorithms.build_process(
      "fedavg", models.build_model_fn("logreg", clientdata.BATCH_SPEC, seed=0),
      algorithms.Hyperparameters())
  weights = process.get_model_weights(process.initialize())
  splits = partition_lib.match_test(part, mnist.train_labels, labels, seed=0)
  clean_metrics = evaluation.Evaluator(
      "logreg", images, labels, client_test_partition=splits)(weights)
  zero_copies = evaluation.Evaluator(
      "logreg", images, labels, client_test_partition=splits,
      noisy_copy_stds=np.zeros(NUM_CLIENTS))(weights)
  assert zero_copies == pytest.approx(clean_metrics, rel=1e-6)
  noisy = evaluation.Evaluator("logreg", images, labels,
                               noisy_copy_stds=part.feature_noise)
  assert noisy(weights) == noisy(weights) != pytest.approx(
      {k: clean_metrics[k] for k in ("test_loss", "test_accuracy")})
  with pytest.raises(ValueError, match="100 clients but noisy_copy_stds 3"):
    evaluation.Evaluator("logreg", images, labels,
                         client_test_partition=splits, noisy_copy_stds=levels)


def test_resumed_run_repeats_rounds_and_evaluates_on_noisy_copies(
    mnist, tmp_path):
  straight, process = resumed_as_straight(tmp_path, SPEC, num_clients=10,
                                          clients_per_round=3)
  # The run's test metrics are those of the 10 noisy copies of the test set.
  _, state = training.load_checkpoint(str(straight), process)
  levels = partition_lib.feature_noise_levels(10, 0.1)
  copies = evaluation.Evaluator("logreg", mnist.test_images,
                                mnist.test_labels, noisy_copy_stds=levels,
                                noise_seed=0)(process.get_model_weights(state))
  last = _rows_without_timing(str(straight))[-1]
  assert last["test_accuracy"] == pytest.approx(copies["test_accuracy"])
  assert last["test_loss"] == pytest.approx(copies["test_loss"])
  clean = evaluation.Evaluator("logreg", mnist.test_images,
                               mnist.test_labels)(
                                   process.get_model_weights(state))
  assert last["test_loss"] != pytest.approx(clean["test_loss"], rel=1e-6)

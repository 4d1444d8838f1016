"""Rotated clients (spec `rotate(...)`, rotated MNIST) on real MNIST: their
datasets, on the driver and on the workers, and their evaluation."""

import numpy as np
import pytest

from test_resume import _rows_without_timing
from test_resume import resumed_as_straight
from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import evaluation
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training

SPEC = "iid+rotate"


@pytest.fixture(name="part", scope="module")
def fixture_part(mnist):
  return partition_lib.spec.resolve(SPEC, mnist.train_labels[:4000], 8,
                                    seed=0)


@pytest.fixture(name="client_data", scope="module")
def fixture_client_data(mnist, part, tmp_path_factory):
  return clientdata.to_client_data(
      part, mnist.train_images[:4000], mnist.train_labels[:4000],
      worker_data_dir=str(tmp_path_factory.mktemp("arrays")))


def test_each_clients_images_are_rotated_by_its_angle(mnist, part,
                                                      client_data):
  assert sorted(set(part.rotation.tolist())) == [0, 90, 180, 270]
  for client in range(8):
    batch = next(iter(client_data.create_tf_dataset_for_client(
        str(client)).batch(10**5)))
    images = mnist.train_images[part[client]] / np.float32(255.0)
    np.testing.assert_array_equal(
        batch["x"].numpy()[..., 0],
        np.rot90(images, part.rotation[client] // 90, axes=(1, 2)))
    np.testing.assert_array_equal(batch["y"].numpy(),
                                  mnist.train_labels[part[client]])


@pytest.mark.parametrize("spec", [
    SPEC, "iid+feature_noise(sigma=0.1)+rotate",
    "iid+feature_noise(sigma=0.1, redraw=true)+rotate+noise(rate=0.2)",
    "natural(ids=writer)+rotate(degrees=(0, 180))"])
def test_worker_builds_the_driver_batches(mnist, spec, tmp_path):
  x, y = mnist.train_images[:4000], mnist.train_labels[:4000]
  part = partition_lib.spec.resolve(spec, y, 8, seed=0,
                                    keys={"writer": np.arange(4000) % 8})
  client_data = clientdata.to_client_data(part, x, y,
                                          worker_data_dir=str(tmp_path))
  on_worker = client_data.training_dataset_computation(
      batch_size=20, local_epochs=2, max_examples=100)
  for cid in client_data.client_ids:
    sent = client_data.client_input(cid, 7)
    assert "quarter_turns" in sent
    driver = list(clientdata.local_training_batches(
        client_data.create_tf_dataset_for_client(cid), batch_size=20,
        local_epochs=2, max_examples=100, seed=7,
        feature_noise_std=client_data.per_read_noise_std(cid)))
    worker = list(on_worker(sent))
    assert len(driver) == len(worker) == 10
    for a, b in zip(driver, worker):
      np.testing.assert_array_equal(a["x"], b["x"])
      np.testing.assert_array_equal(a["y"], b["y"])


def test_rotations_need_square_images(part):
  x = np.zeros((4000, 28 * 28), np.float32)
  y = np.arange(4000) % 10
  part = partition_lib.spec.resolve(SPEC, y, 8, seed=0)
  with pytest.raises(ValueError, match="needs square images"):
    clientdata.to_client_data(part, x, y)


@pytest.fixture(name="weights", scope="module")
def fixture_weights():
  process = algorithms.build_process(
      "fedavg", models.build_model_fn("logreg", clientdata.BATCH_SPEC, seed=0),
      algorithms.Hyperparameters())
  return process.get_model_weights(process.initialize())


def test_evaluation_is_one_rotated_copy_per_client(mnist, weights):
  images, labels = mnist.test_images[:500], mnist.test_labels[:500]
  by_angle = {angle: evaluation.Evaluator(
      "logreg", np.rot90(images, angle // 90, axes=(1, 2)), labels)(weights)
              for angle in (0, 90, 180)}
  rotations = np.array([90, 0, 90, 180, 90])
  got = evaluation.Evaluator("logreg", images, labels,
                             rotations=rotations)(weights)
  for metric in ("test_accuracy", "test_loss"):
    expected = np.mean([by_angle[a][metric] for a in rotations])
    assert got[metric] == pytest.approx(expected, rel=1e-6)
  # Each client's split is read from its own angle's copy.
  train_labels = np.arange(1000) % 10
  part = partition_lib.iid(train_labels, 5, seed=0).replace(
      rotation=rotations)
  splits = partition_lib.match_test(part, train_labels, labels, seed=0)
  got = evaluation.Evaluator(
      "logreg", images, labels, client_test_partition=splits,
      rotations=rotations)(weights)
  model = models.create_keras_model("logreg")
  weights.assign_weights_to(model)
  correct = {a: np.argmax(model.predict(
      np.rot90(images, a // 90, axes=(1, 2))[..., np.newaxis] /
      np.float32(255.0), verbose=0), axis=1) == labels for a in (0, 90, 180)}
  per_client = [correct[a][splits[i]].mean() for i, a in enumerate(rotations)]
  assert got["client_accuracy_mean"] == pytest.approx(np.mean(per_client))
  # With noise of std 0, the copies are one per client: the same metrics.
  noise_free = evaluation.Evaluator(
      "logreg", images, labels, client_test_partition=splits,
      noisy_copy_stds=np.zeros(5), rotations=rotations)(weights)
  assert noise_free == pytest.approx(got, rel=1e-6)
  with pytest.raises(ValueError, match="5 clients but rotations 3"):
    evaluation.Evaluator("logreg", images, labels,
                         client_test_partition=splits,
                         rotations=rotations[:3])
  with pytest.raises(ValueError, match="angles must be among"):
    evaluation.Evaluator("logreg", images, labels, rotations=[45])


def test_a_run_trains_on_rotated_clients_and_evaluates_their_angles(
    mnist, tmp_path):
  straight, process = resumed_as_straight(tmp_path, SPEC, num_clients=8,
                                          clients_per_round=4)
  saved = partition_lib.load(str(straight / "partition"))
  assert saved.spec == SPEC and saved.rotation is not None
  _, state = training.load_checkpoint(str(straight), process)
  model_weights = process.get_model_weights(state)
  last = _rows_without_timing(str(straight))[-1]
  rotated = evaluation.Evaluator("logreg", mnist.test_images,
                                 mnist.test_labels,
                                 rotations=saved.rotation)(model_weights)
  assert last["test_accuracy"] == pytest.approx(rotated["test_accuracy"])
  assert last["test_loss"] == pytest.approx(rotated["test_loss"])

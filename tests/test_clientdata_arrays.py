"""ClientData from any arrays: shapes, dtypes, and the same datasets on the
driver and on a worker."""

import collections
import os

import numpy as np
import pytest
import tensorflow as tf

from tff_niid import clientdata
from tff_niid import models
from tff_niid import partition as partition_lib

N = 120


def _client_batch(client_data, client_id):
  return next(iter(client_data.create_tf_dataset_for_client(client_id)
                   .batch(N)))


@pytest.fixture(name="labels")
def fixture_labels():
  return np.arange(N) % 3


@pytest.mark.parametrize("x,spec,expected", [
    (np.arange(N * 12, dtype=np.uint8).reshape(N, 3, 4),
     tf.TensorSpec((3, 4, 1), tf.float32),
     lambda x: x[..., np.newaxis] / np.float32(255)),
    (np.arange(N * 24, dtype=np.uint8).reshape(N, 2, 4, 3),
     tf.TensorSpec((2, 4, 3), tf.float32),
     lambda x: x / np.float32(255)),
    (np.linspace(-1, 1, N * 5).reshape(N, 5),
     tf.TensorSpec((5,), tf.float64), lambda x: x),
    (np.linspace(-1, 1, N * 5, dtype=np.float32).reshape(N, 5),
     tf.TensorSpec((5,), tf.float32), lambda x: x),
    (np.arange(N * 2, dtype=np.int16).reshape(N, 2) - 100,
     tf.TensorSpec((2,), tf.float32), lambda x: x.astype(np.float32)),
], ids=["grayscale", "colour", "float64_features", "float32_features",
        "int16_features"])
def test_element_spec_follows_the_arrays(labels, x, spec, expected):
  part = partition_lib.iid(labels, 4, seed=0)
  cd = clientdata.to_client_data(part, x, labels.astype(np.uint16))
  assert cd.element_type_structure == collections.OrderedDict(
      x=spec, y=tf.TensorSpec((), tf.int64))
  batch = _client_batch(cd, "2")
  np.testing.assert_array_equal(batch["x"].numpy(), expected(x[part[2]]))
  np.testing.assert_array_equal(batch["y"].numpy(), labels[part[2]])
  assert batch["y"].dtype == tf.int64


@pytest.mark.parametrize("labels_dtype", [np.int8, np.uint8, np.int32,
                                          np.uint64])
def test_labels_of_any_integer_type(labels, labels_dtype):
  part = partition_lib.iid(labels, 2, seed=0)
  cd = clientdata.to_client_data(part, np.zeros((N, 2), np.float32),
                                 labels.astype(labels_dtype))
  np.testing.assert_array_equal(_client_batch(cd, "1")["y"].numpy(),
                                labels[part[1]])


@pytest.mark.parametrize("x,y,message", [
    (np.zeros((N, 2), bool), None, "integers or floats"),
    (np.zeros((N + 1, 2)), None, r"shape \(120, \.\.\.\)"),
    (np.zeros((N, 2)), np.arange(N) / 2, "1-D integer"),
])
def test_rejects_arrays_that_do_not_fit(labels, x, y, message):
  part = partition_lib.iid(labels, 2, seed=0)
  with pytest.raises(ValueError, match=message):
    clientdata.to_client_data(part, x, labels if y is None else y)


def test_fashion_mnist(fashion_mnist):
  part = partition_lib.dirichlet(fashion_mnist.train_labels, 10, alpha=0.5,
                                 seed=1)
  cd = clientdata.to_client_data(part, fashion_mnist.train_images,
                                 fashion_mnist.train_labels)
  assert cd.element_type_structure == clientdata.ELEMENT_SPEC
  batch = next(iter(cd.create_tf_dataset_for_client("4").batch(10**5)))
  np.testing.assert_array_equal(batch["y"].numpy(),
                                fashion_mnist.train_labels[part[4]])
  np.testing.assert_allclose(batch["x"].numpy()[..., 0],
                             fashion_mnist.train_images[part[4]] / 255.0,
                             atol=1e-6)


@pytest.mark.parametrize("shape,dtype", [((N, 2, 4, 3), np.uint8),
                                         ((N, 5), np.float64)])
def test_a_worker_builds_the_driver_batches(labels, tmp_path, shape, dtype):
  x = (np.arange(np.prod(shape)) % 200).astype(dtype).reshape(shape)
  part = partition_lib.iid(labels, 3, seed=0).replace(
      feature_noise=np.array([0.0, 0.1, 0.2]))
  cd = clientdata.to_client_data(part, x, labels, feature_noise_seed=5,
                                 worker_data_dir=str(tmp_path))
  on_worker = cd.training_dataset_computation(batch_size=7, local_epochs=2)
  for cid in cd.client_ids:
    driver = clientdata.local_training_batches(
        cd.create_tf_dataset_for_client(cid), batch_size=7, local_epochs=2,
        seed=11)
    worker = on_worker(cd.client_input(cid, 11))
    pairs = list(zip(driver, worker, strict=True))
    assert all(np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"])
               for a, b in pairs)


def test_test_dataset_scales_like_clients(mnist):
  (batch,) = list(clientdata.test_dataset(mnist.test_images[:50],
                                          mnist.test_labels[:50], 50))
  np.testing.assert_array_equal(
      batch["x"].numpy(),
      mnist.test_images[:50].astype(np.float32)[..., np.newaxis] / 255.0)


@pytest.mark.parametrize("x,message", [
    (np.zeros((N, 5), np.float32), r"shape \(None, 28, 28, 1\).*\(None, 5\)"),
    (np.zeros((N, 28, 28, 3), np.uint8), r"\(None, 28, 28, 3\)"),
    (np.zeros((N, 28, 28), np.float64), r"float32 batches.*float64"),
], ids=["features", "colour", "float64_images"])
def test_models_check_their_input(labels, x, message):
  part = partition_lib.iid(labels, 4, seed=0)
  spec = clientdata.batch_spec(clientdata.to_client_data(
      part, x, labels).element_type_structure)
  with pytest.raises(ValueError, match=message):
    models.build_model_fn("cnn", spec)


def test_models_take_28x28_grayscale(labels):
  part = partition_lib.iid(labels, 4, seed=0)
  x = np.zeros((N, 28, 28), np.uint8)
  spec = clientdata.batch_spec(clientdata.to_client_data(
      part, x, labels).element_type_structure)
  assert callable(models.build_model_fn("2nn", spec))
  with pytest.raises(ValueError, match="unknown model 'resnet'"):
    models.build_model_fn("resnet", spec)


def test_an_exported_file_of_other_bytes_is_replaced_not_mapped(labels,
                                                                 tmp_path):
  # Arrays are named by their digest; a file of that name and size holding
  # other bytes (an interrupted copy, one put there by hand) is rewritten.
  x = (np.arange(N * 6) % 200).astype(np.uint8).reshape(N, 2, 3)
  x_path, y_path = clientdata.export_arrays(x, labels, str(tmp_path))
  with open(x_path, "wb") as f:
    f.write(b"\xff" * x.nbytes)
  assert clientdata.export_arrays(x, labels, str(tmp_path)) == (x_path,
                                                                 y_path)
  np.testing.assert_array_equal(np.fromfile(x_path, np.uint8), x.ravel())
  # Written through private temporary files, none left behind.
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
      os.path.basename(p) for p in (x_path, y_path))

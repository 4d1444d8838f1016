"""Partition -> TFF ClientData on real MNIST."""

import os
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_niid import clientdata
from tff_niid import partition as partition_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_elements_match_partition(mnist):
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=0.5, seed=3)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  assert cd.client_ids == [str(i) for i in range(20)]
  assert cd.element_type_structure == clientdata.ELEMENT_SPEC
  for cid in ("0", "7", "19"):
    i = int(cid)
    batch = next(iter(cd.create_tf_dataset_for_client(cid).batch(100000)))
    assert batch["x"].shape == (part.sizes[i], 28, 28, 1)
    assert batch["x"].dtype == tf.float32 and batch["y"].dtype == tf.int64
    np.testing.assert_array_equal(batch["y"].numpy(),
                                  mnist.train_labels[part[i]])
    np.testing.assert_allclose(batch["x"].numpy()[..., 0],
                               mnist.train_images[part[i]] / 255.0, atol=1e-6)


def test_ten_thousand_clients_are_lazy(mnist):
  part = partition_lib.dirichlet(mnist.train_labels, 10000, alpha=0.1,
                                 min_size=2, seed=0)
  start = time.perf_counter()
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  build_seconds = time.perf_counter() - start
  assert len(cd.client_ids) == 10000
  n = sum(1 for _ in cd.create_tf_dataset_for_client("9999"))
  assert n == part.sizes[9999]
  print(f"built ClientData for 10,000 clients in {build_seconds:.3f} s")


def test_noisy_labels_and_feature_noise(mnist):
  part = partition_lib.iid(mnist.train_labels, 4, seed=0)
  noisy = (mnist.train_labels + 1) % 10
  part = part.replace(noisy_labels=noisy,
                      feature_noise=np.array([0.0, 0.0, 0.0, 0.5]))
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  first = lambda cid: next(iter(cd.create_tf_dataset_for_client(cid).batch(10**5)))
  clean, noisy_batch = first("0"), first("3")
  np.testing.assert_array_equal(clean["y"].numpy(), noisy[part[0]])
  np.testing.assert_allclose(clean["x"].numpy()[..., 0],
                             mnist.train_images[part[0]] / 255.0, atol=1e-6)
  residual = noisy_batch["x"].numpy()[..., 0] - mnist.train_images[part[3]] / 255.0
  assert abs(residual.std() - 0.5) < 0.01
  # Deterministic per client and seed.
  np.testing.assert_array_equal(first("3")["x"].numpy(), noisy_batch["x"].numpy())


def test_named_clients(mnist):
  part = partition_lib.iid(mnist.train_labels[:1000], 2, seed=0).replace(
      client_names=["high", "low"])
  cd = clientdata.to_client_data(part, mnist.train_images[:1000],
                                 mnist.train_labels[:1000])
  assert sum(1 for _ in cd.create_tf_dataset_for_client("low")) == part.sizes[1]


def test_rejects_labels_of_another_dataset(mnist, fashion_mnist):
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  try:
    clientdata.to_client_data(part, fashion_mnist.train_images,
                              fashion_mnist.train_labels)
  except ValueError as e:
    assert "fingerprint" in str(e)
  else:
    raise AssertionError("expected ValueError")


def test_local_training_batches_are_deterministic(mnist):
  part = partition_lib.iid(mnist.train_labels, 100, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  ds = cd.create_tf_dataset_for_client("5")
  run = lambda: [b["y"].numpy() for b in clientdata.local_training_batches(
      ds, batch_size=32, local_epochs=2, seed=7)]
  a, b = run(), run()
  assert sum(len(x) for x in a) == 2 * part.sizes[5]
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert a[0].shape == (32,)


def test_local_steps_counts_the_batches_of_streamed_epochs():
  # NIID-Bench's DataLoader would take 10 * ceil(n / 64) steps: more for every
  # size not a multiple of 64 (for 16 samples, 10 against 3);
  # experiments/batching_steps.py sets the two counts side by side.
  for size in (1, 16, 63, 64, 65, 130, 5958):
    batches = list(clientdata.local_training_batches(
        tf.data.Dataset.range(size), batch_size=64, local_epochs=10, seed=3))
    assert len(batches) == clientdata.local_steps(
        size, batch_size=64, local_epochs=10), size
    assert all(len(b) == 64 for b in batches[:-1])
    assert sum(len(b) for b in batches) == 10 * size


def test_per_epoch_batches_cut_each_epoch_as_niid_benchs_dataloader():
  for size in (1, 16, 63, 64, 65, 130):
    batches = [b.numpy() for b in clientdata.local_training_batches(
        tf.data.Dataset.range(size), batch_size=64, local_epochs=3, seed=3,
        per_epoch_batches=True)]
    per_epoch = -(-size // 64)
    assert len(batches) == 3 * per_epoch == clientdata.local_steps(
        size, batch_size=64, local_epochs=3, per_epoch_batches=True), size
    epochs = [batches[e * per_epoch:(e + 1) * per_epoch] for e in range(3)]
    for epoch in epochs:  # every sample once per epoch; only the last short
      assert sorted(np.concatenate(epoch)) == list(range(size))
      assert all(len(b) == 64 for b in epoch[:-1])
  # Reshuffled every epoch.
  assert not np.array_equal(np.concatenate(epochs[0]),
                            np.concatenate(epochs[1]))


def test_batching_steps_csv_is_what_its_command_writes(tmp_path):
  # The report's batching table reads this CSV; the command draws the
  # NIID-Bench grid's partitions from the real datasets and counts steps.
  output = tmp_path / "steps.csv"
  run = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "batching_steps.py"),
       f"--output={output}"], cwd=REPO, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
  assert run.returncode == 0, run.stdout[-5000:]
  committed = os.path.join(REPO, "experiments", "results", "batching_steps",
                           "steps.csv")
  with open(committed) as f:
    assert output.read_text() == f.read()


def test_sql_export_round_trip(mnist, tmp_path):
  part = partition_lib.dirichlet(mnist.train_labels[:600], 3, alpha=1.0, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images[:600],
                                 mnist.train_labels[:600])
  path = str(tmp_path / "mnist.sqlite")
  clientdata.export_sql(cd, path)
  back = tff.simulation.datasets.load_and_parse_sql_client_data(
      path, clientdata.ELEMENT_SPEC)
  assert sorted(back.client_ids) == cd.client_ids
  got = next(iter(back.create_tf_dataset_for_client("2").batch(1000)))
  np.testing.assert_array_equal(np.sort(got["y"].numpy()),
                                np.sort(mnist.train_labels[part[2]]))


def test_capped_client_sees_all_its_classes(mnist):
  # Client samples are stored grouped by class; a cap must still draw from all.
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  ds = clientdata.local_training_batches(cd.create_tf_dataset_for_client("0"),
                                         batch_size=100, seed=1,
                                         max_examples=100)
  (batch,) = list(ds)
  assert len(np.unique(batch["y"].numpy())) == 10

"""Several hosts on loopback: two workers, each with its own copy of the data
directory, run ids-only rounds to the single-worker result."""

import os
import shutil

import numpy as np
import psutil

from tff_niid import clientdata
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training
from tff_niid import workers


def _train(client_data, output_dir):
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC, seed=0),
      client_lr=0.05)
  config = training.LoopConfig(rounds=2, clients_per_round=6, batch_size=20,
                               max_examples_per_client=100, seed=0)
  training.train(process, client_data, config, output_dir=output_dir,
                 log=lambda line: None)
  _, state = training.load_checkpoint(output_dir, process)
  return [np.asarray(w) for w in process.get_model_weights(state).trainable]


def test_two_workers_read_their_own_copies(mnist, tmp_path, monkeypatch):
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=0.5, seed=0)
  arrays = tmp_path / "arrays"
  single = _train(clientdata.to_client_data(
      part, mnist.train_images, mnist.train_labels,
      worker_data_dir=str(arrays)), str(tmp_path / "single"))
  hosts = [tmp_path / "host_a", tmp_path / "host_b"]
  started = []
  for host in hosts:
    shutil.copytree(arrays, host / "arrays")
    # A worker resolves a relative data directory against its working
    # directory, which it inherits from us when it starts.
    monkeypatch.chdir(host)
    started += workers.start_local_workers(1)
  shutil.rmtree(arrays)
  os.makedirs(tmp_path / "driver")
  monkeypatch.chdir(tmp_path / "driver")
  relative = clientdata.to_client_data(
      part, mnist.train_images, mnist.train_labels, worker_data_dir="arrays")
  try:
    assert [psutil.Process(w.process.pid).cwd() for w in started] == [
        str(h) for h in hosts]
    with workers.use_workers([w.address for w in started]):
      distributed = _train(relative, str(tmp_path / "two_workers"))
  finally:
    for worker in started:
      worker.stop()
  # Two workers merge the clients' updates in another order: equal up to
  # float rounding.
  diff = max(float(np.abs(a - b).max()) for a, b in zip(single, distributed))
  assert diff < 1e-5

"""Two local TFF workers on loopback give the single-process result."""

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

from tff_niid import clientdata
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import training
from tff_niid import workers


def _two_rounds(client_data):
  process = training.build_fedavg(
      models.build_model_fn("2nn", clientdata.BATCH_SPEC, seed=0),
      client_lr=0.05)
  state = process.initialize()
  for round_num in range(2):
    data = [clientdata.local_training_batches(
        client_data.create_tf_dataset_for_client(str(c)), batch_size=20,
        seed=round_num, max_examples=100)
            for c in range(round_num, round_num + 6)]
    state = process.next(state, data).state
  return [np.asarray(w) for w in process.get_model_weights(state).trainable]


def test_two_workers_match_single_process(mnist):
  part = partition_lib.dirichlet(mnist.train_labels, 20, alpha=0.5, seed=0)
  cd = clientdata.to_client_data(part, mnist.train_images, mnist.train_labels)
  single = _two_rounds(cd)
  addresses, started = workers.parse_workers_flag("local:2")
  assert len(addresses) == 2 and all(a.startswith("127.0.0.1:")
                                     for a in addresses)
  with workers.use_workers(addresses):
    distributed = _two_rounds(cd)
  for w in started:
    w.stop()
    assert w.process.returncode is not None
  diff = max(float(np.abs(a - b).max()) for a, b in zip(single, distributed))
  assert diff < 1e-5


def test_workers_die_with_a_sigkilled_parent(tmp_path):
  script = textwrap.dedent("""
      import sys, time
      from tff_niid import workers
      started = workers.start_local_workers(2)
      print(*[w.process.pid for w in started], flush=True)
      time.sleep(600)
  """)
  parent = subprocess.Popen([sys.executable, "-c", script],
                            stdout=subprocess.PIPE, text=True, cwd=tmp_path)
  assert parent.stdout is not None  # stdout=PIPE
  pids = [int(p) for p in parent.stdout.readline().split()]
  assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
  parent.send_signal(signal.SIGKILL)
  parent.wait()
  deadline = time.time() + 20
  while time.time() < deadline and any(
      psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
      for p in pids):
    time.sleep(0.2)
  alive = [p for p in pids if psutil.pid_exists(p) and
           psutil.Process(p).status() != "zombie"]
  assert not alive


@pytest.mark.parametrize("value,message", [
    ("local:0", "N >= 1"), ("nohost", "host:port"), ("", "needs local:N")])
def test_bad_workers_flag(value, message):
  with pytest.raises(ValueError, match=message):
    workers.parse_workers_flag(value)


def test_unreachable_worker_is_a_clear_error():
  with pytest.raises(ConnectionError, match="127.0.0.1:1"):
    workers.remote_execution_context(["127.0.0.1:1"], ready_timeout=1)

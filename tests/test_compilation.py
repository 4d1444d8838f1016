"""tff_niid's compiler (grappler's CPU fusions added to TFF's): the same
weights bit for bit as TFF's own compiler, fused contractions on the wire
with no device of ours left, and FedAvg's weights as in plain TensorFlow."""

import numpy as np
import pytest
import tensorflow_federated as tff

from benchmarks import plain_fedavg
from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import compilation
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import runtime
from tff_niid import training
from tensorflow_federated.python.tensorflow_libs import serialization_utils

H = algorithms.Hyperparameters
# (model, algorithm, hyperparameters, batch size, local epochs): the NIID-Bench
# grid's client optimizer (momentum, weight decay, FedProx) and McMahan et
# al.'s models with plain SGD.
CASES = [
    ("niid_cnn", "fedavg",
     H(client_lr=0.01, client_momentum=0.9, client_weight_decay=1e-5), 64, 2),
    ("niid_cnn", "fedprox",
     H(client_lr=0.01, client_momentum=0.9, client_weight_decay=1e-5,
       proximal_strength=0.01), 64, 2),
    ("cnn", "fedavg", H(client_lr=0.05), 10, 1),
    ("2nn", "fedadam", H(client_lr=0.05, server_lr=0.01), 10, 1),
]
CLIENTS = ["0", "1", "2"]


@pytest.fixture(scope="module", name="client_data")
def fixture_client_data(mnist, tmp_path_factory):
  part = partition_lib.dirichlet(mnist.train_labels, 100, alpha=0.5, seed=0)
  return clientdata.to_client_data(
      part, mnist.train_images, mnist.train_labels,
      worker_data_dir=str(tmp_path_factory.mktemp("arrays")))


@pytest.fixture(scope="module", name="contexts")
def fixture_contexts():
  """{"tff": TFF's compiler, "tff_niid": ours}, both on one local worker."""
  worker = runtime.LocalWorker()
  args = runtime._context_args(runtime.executor_factory(worker.stub))  # pylint: disable=protected-access
  yield {name: tff.framework.SyncExecutionContext(
      **dict(args, compiler_fn=compiler_fn)) for name, compiler_fn in (
          ("tff", tff.backends.native.desugar_and_transform_to_native),
          ("tff_niid", compilation.desugar_and_transform_to_native))}
  worker.stop()


def _weights(rounds, state):
  return [np.asarray(w) for w in
          rounds.process.get_model_weights(state).trainable]


def _two_rounds(rounds, context):
  with tff.framework.get_context_stack().install(context):
    state = rounds.process.initialize()
    for round_num in (1, 2):
      seeds = [training._shuffle_seed(0, round_num, int(c)) for c in CLIENTS]  # pylint: disable=protected-access
      output = rounds.process.next(state, rounds(CLIENTS, seeds))
      state = output.state
    return _weights(rounds, state), output.metrics["client_work"]


@pytest.mark.parametrize("model, algorithm, hp, batch_size, epochs", CASES)
def test_same_weights_bit_for_bit_as_tffs_compiler(
    client_data, contexts, model, algorithm, hp, batch_size, epochs):
  rounds = clientdata.RoundInputs(
      algorithms.build_process(algorithm, models.build_model_fn(
          model, clientdata.BATCH_SPEC), hp), client_data,
      batch_size=batch_size, local_epochs=epochs)
  weights_tff, metrics_tff = _two_rounds(rounds, contexts["tff"])
  weights_ours, metrics_ours = _two_rounds(rounds, contexts["tff_niid"])
  assert metrics_ours == metrics_tff
  assert all(np.array_equal(a, b) for a, b in zip(weights_ours, weights_tff))


def _graph_nodes(native):
  """Every node of every TensorFlow graph of a compiled computation."""
  nodes = []

  def collect(block):
    if (isinstance(block, tff.framework.CompiledComputation) and
        block.proto.WhichOneof("computation") == "tensorflow"):
      graph_def = serialization_utils.unpack_graph_def(
          block.proto.tensorflow.graph_def)
      nodes.extend(graph_def.node)
      nodes.extend(n for f in graph_def.library.function for n in f.node_def)
    return block, False

  tff.framework.transform_postorder(native.to_building_block(), collect)
  return nodes


def test_contractions_are_fused_and_placed_by_the_worker(client_data):
  rounds = clientdata.RoundInputs(training.build_fedavg(
      models.build_model_fn("niid_cnn", clientdata.BATCH_SPEC),
      client_lr=0.05), client_data, batch_size=64)
  ops = lambda nodes: {n.op for n in nodes}
  tffs = _graph_nodes(
      tff.backends.native.desugar_and_transform_to_native(rounds.process.next))
  ours = _graph_nodes(
      compilation.desugar_and_transform_to_native(rounds.process.next))
  assert {"Conv2D", "BiasAdd"} <= ops(tffs)
  assert not {"_FusedConv2D", "_FusedMatMul"} & ops(tffs)
  assert {"_FusedConv2D", "_FusedMatMul"} <= ops(ours)
  assert "Conv2D" not in ops(ours)
  assert not any(n.device == compilation._CPU for n in ours)  # pylint: disable=protected-access


def test_cnn_weights_as_fedavg_in_plain_tensorflow(client_data, contexts):
  rounds = clientdata.RoundInputs(training.build_fedavg(
      models.build_model_fn("niid_cnn", clientdata.BATCH_SPEC),
      client_lr=0.05), client_data, batch_size=10)
  seeds = [5, 6, 7]
  plain = plain_fedavg.PlainFedAvg("niid_cnn", client_lr=0.05)
  with tff.framework.get_context_stack().install(contexts["tff_niid"]):
    state = rounds.process.initialize()
    plain.weights = _weights(rounds, state)
    state = rounds.process.next(state, rounds(CLIENTS, seeds)).state
  plain.round([clientdata.local_training_batches(
      client_data.create_tf_dataset_for_client(c), batch_size=10, seed=s)
               for c, s in zip(CLIENTS, seeds)])
  # The tolerance of tests/test_round_inputs.py (float rounding only).
  assert max(float(np.abs(a - b).max()) for a, b in
             zip(_weights(rounds, state), plain.weights)) < 1e-6

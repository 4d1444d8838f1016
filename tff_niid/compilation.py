"""How tff_niid's execution contexts compile TFF computations for CPU workers.

TFF 0.87 compiles every TensorFlow computation once on the driver
(`tff.backends.native.desugar_and_transform_to_native`): grappler inlines
every function call (the client's training loop included), and the calls
that remain and the worker's sessions run without grappler
(`session_provider.cc`: `disable_meta_optimizer`, opt level L0). That static
grappler run sees no devices, so its remapper, which fuses a contraction with
its bias and activation only on nodes placed on a CPU, fuses nothing: the
worker runs Conv2D, MatMul, BiasAdd and Relu as separate kernels, the
BiasAdds as Eigen broadcasts. Plain TF's `tf.function` is optimized at run
time with devices known, so its Conv2D/MatMul + BiasAdd + Relu are single
oneDNN kernels (docs/benchmarks.md, "Training").

`desugar_and_transform_to_native` is TFF's compiler with one step added:
before grappler runs, the nodes that those fusions are made of (`_FUSABLE_OPS`)
get a CPU device, so the remapper fuses them as at run time; after it, the
device is removed again, so a worker places the (fused) ops itself, as it
does every other node. Nothing else changes: the same grappler
configuration, the same other passes, and on TFF 0.87's worker the same
weights bit for bit (`tests/test_compilation.py`); only these ops get a
device, because placing every node on the CPU also changed how the worker
lowers MaxPool's gradient, which was slower.
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

from typing import Any

import tensorflow_federated as tff
# TFF has no public API for the graph of a compiled computation or for its
# cache key (which must change with the graph).
from tensorflow_federated.proto.v0 import computation_pb2
from tensorflow_federated.python.core.environments.tensorflow_backend import compiled_computation_transformations
from tensorflow_federated.python.tensorflow_libs import serialization_utils

# Grappler's remapper fuses Conv2D / MatMul + BiasAdd (+ Relu) into
# _FusedConv2D / _FusedMatMul when these nodes are on a CPU.
_FUSABLE_OPS = frozenset({"Conv2D", "MatMul", "BiasAdd", "Relu"})
_FUSED_OPS = frozenset({"_FusedConv2D", "_FusedMatMul"})
# The device given for grappler and removed afterwards: spelled out in full so
# that a placement written in the model code ("/device:CPU:0", "/cpu:0") is
# never mistaken for ours.
_CPU = "/job:localhost/replica:0/task:0/device:CPU:0"


def _graph_nodes(graph_def: Any) -> list[Any]:
  """The nodes of `graph_def` and of the functions of its library."""
  return list(graph_def.node) + [node for function in graph_def.library.function
                                 for node in function.node_def]


def _rewrite_graphs(comp: Any, rewrite: Any) -> Any:
  """`comp` with `rewrite` (which edits a GraphDef in place) applied to a copy
  of the graph of each of its TensorFlow computations; cache keys are left
  as they were."""

  def transform(block):
    if not (isinstance(block, tff.framework.CompiledComputation) and
            block.proto.WhichOneof("computation") == "tensorflow"):
      return block, False
    proto = computation_pb2.Computation()
    proto.CopyFrom(block.proto)
    graph_def = serialization_utils.unpack_graph_def(proto.tensorflow.graph_def)
    rewrite(graph_def)
    proto.tensorflow.graph_def.CopyFrom(
        serialization_utils.pack_graph_def(graph_def))
    return tff.framework.CompiledComputation(
        proto, type_signature=block.type_signature), True

  return tff.framework.transform_postorder(comp, transform)[0]


def _place_fusable_ops(graph_def: Any) -> None:
  for node in _graph_nodes(graph_def):
    if node.op in _FUSABLE_OPS and not node.device:
      node.device = _CPU


def _unplace(graph_def: Any) -> None:
  for node in _graph_nodes(graph_def):
    if node.op in _FUSABLE_OPS | _FUSED_OPS and node.device == _CPU:
      node.device = ""


def desugar_and_transform_to_native(comp: Any) -> Any:
  """`tff.backends.native.desugar_and_transform_to_native` with grappler's
  CPU fusions (module docstring): a compiler_fn for TFF execution contexts.

  Args:
    comp: a `tff.framework.ConcreteComputation`.

  Returns:
    The computation in TFF's native form, as TFF's compiler returns it, with
    Conv2D / MatMul + BiasAdd (+ Relu) fused.
  """
  placed = _rewrite_graphs(comp.to_building_block(), _place_fusable_ops)
  native = tff.backends.native.desugar_and_transform_to_native(
      tff.framework.ConcreteComputation.from_building_block(placed))
  unplaced = _rewrite_graphs(native.to_building_block(), _unplace)
  # The worker caches computations by this key, a hash of the graph.
  with_ids, _ = compiled_computation_transformations.transform_tf_add_ids(
      unplaced)
  return tff.framework.ConcreteComputation.from_building_block(with_ids)

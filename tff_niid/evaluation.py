"""Evaluation of the global model: centralized and per client.

The global model is the same for every client, so evaluating it on each
client's test split (federated evaluation) equals slicing one set of
predictions on the full test set by the clients' test indices. We predict once
per evaluation with a plain Keras model and derive both the centralized and
the per-client metrics from it.
"""

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import collections
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tff_niid import clientdata
from tff_niid import models
from tff_niid.partition import Partition


class Evaluator:
  """Evaluates `tff.learning.models.ModelWeights` on a test set.

  Returns `test_loss`, `test_accuracy` and, when `client_test_partition` (a
  `tff_niid.partition.Partition` over the test labels, e.g. from
  `partition.match_test`) is given, the mean and 10th percentile of the
  per-client accuracies (`client_accuracy_mean`, `client_accuracy_p10`).
  """

  def __init__(self, model_name: str, images: np.ndarray, labels: np.ndarray,
               *, client_test_partition: Optional[Partition] = None,
               batch_size: int = 1000):
    # Built at the first call: TFF builds its models in a tf.compat.v1 Graph,
    # which invalidates Keras models created before (BUILD_NOTES.md).
    self._model_name = model_name
    self._model: Optional[tf.keras.Model] = None
    self._labels = np.asarray(labels, dtype=np.int64)
    self._inputs = clientdata.test_dataset(images, labels, batch_size).map(
        lambda e: e["x"]).cache()
    self._clients = client_test_partition
    if client_test_partition is not None:
      client_test_partition.check_labels(labels)

  @property
  def metric_names(self) -> list[str]:
    names = ["test_loss", "test_accuracy"]
    if self._clients is not None:
      names += ["client_accuracy_mean", "client_accuracy_p10"]
    return names

  def __call__(self, model_weights: Any) -> dict[str, float]:
    if self._model is None:
      self._model = models.create_keras_model(self._model_name)
    model_weights.assign_weights_to(self._model)
    logits = self._model.predict(self._inputs, verbose=0)
    loss = tf.keras.losses.sparse_categorical_crossentropy(
        self._labels, logits, from_logits=True)
    correct = (np.argmax(logits, axis=1) == self._labels).astype(np.float64)
    out = collections.OrderedDict(test_loss=float(np.mean(loss)),
                                  test_accuracy=float(np.mean(correct)))
    if self._clients is not None:
      sizes = self._clients.sizes
      per_client = (np.bincount(self._clients.client_of_position(),
                                weights=correct[self._clients.indices],
                                minlength=sizes.shape[0]) /
                    np.maximum(sizes, 1))
      out["client_accuracy_mean"] = float(np.mean(per_client))
      out["client_accuracy_p10"] = float(np.percentile(per_client, 10))
    return out

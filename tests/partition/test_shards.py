"""shards: McMahan et al. pathological non-IID."""

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_rejects_bad_labels
from partition_contract import assert_rejects_bad_num_clients
from partition_contract import assert_seeded
from partition_contract import within_class_std_ratio
from tff_niid import partition


def test_mcmahan_setting(mnist_labels):
  part = partition.shards(mnist_labels, 100, shards_per_client=2, seed=0)
  assert_exact_cover(part, 60000)
  assert (part.sizes == 600).all()  # 2 shards of 300
  classes = (partition.metrics.label_counts(part, mnist_labels) > 0).sum(1)
  assert classes.max() <= 4 and np.median(classes) == 2


@pytest.mark.parametrize("num_clients,spc", [(1, 1), (7, 3), (1000, 2),
                                             (10000, 5)])
def test_sweep(fashion_mnist, num_clients, spc):
  part = partition.shards(fashion_mnist.train_labels, num_clients,
                          shards_per_client=spc, seed=1)
  assert_exact_cover(part, 60000)
  shard = 60000 / (num_clients * spc)
  assert part.sizes.min() >= spc * np.floor(shard)
  assert part.sizes.max() <= spc * np.ceil(shard)


def test_seeded_and_bad_input(mnist_labels):
  assert_seeded(lambda s: partition.shards(mnist_labels, 50, seed=s))
  assert_rejects_bad_labels(lambda y: partition.shards(y, 1, seed=0))
  assert_rejects_bad_num_clients(lambda y, n: partition.shards(y, n, seed=0),
                                 mnist_labels)
  with pytest.raises(ValueError, match="shards"):
    partition.shards(mnist_labels, 60000, shards_per_client=2, seed=0)
  with pytest.raises(ValueError, match="shards_per_client"):
    partition.shards(mnist_labels, 10, shards_per_client=0, seed=0)


def test_key_makes_shards_style_ranges(mnist):
  width = partition.attributes.width(mnist.train_images)
  keyed = partition.shards(mnist.train_labels, 100, seed=0, key=width)
  plain = partition.shards(mnist.train_labels, 100, seed=0)
  assert (within_class_std_ratio(keyed, mnist.train_labels, width) <
          0.5 * within_class_std_ratio(plain, mnist.train_labels, width))

"""match_test: per-client test splits following the training label mix."""

import numpy as np

from tff_niid import partition


def test_proportions_follow_training(labels, held_out_labels):
  part = partition.dirichlet(labels, 50, alpha=0.2, seed=0)
  test = partition.match_test(part, labels, held_out_labels, seed=0)
  assert len(test) == 50 and not test.disjoint
  test.check_labels(held_out_labels)
  train_mix = partition.metrics.label_counts(part, labels)
  test_mix = partition.metrics.label_counts(test, held_out_labels)
  # Exact rounding of size_i * p_i(c): within one sample per class.
  expected = train_mix * (test.sizes / part.sizes)[:, None]
  assert np.abs(test_mix - expected).max() <= 1
  assert (train_mix > 0).sum() >= (test_mix > 0).sum()
  for i in range(50):  # no duplicates within a client
    assert len(np.unique(test[i])) == test.sizes[i]


def test_fixed_size_and_seed(labels, held_out_labels):
  part = partition.shards(labels, 100, seed=0)
  a = partition.match_test(part, labels, held_out_labels, seed=1, size=30)
  b = partition.match_test(part, labels, held_out_labels, seed=1, size=30)
  assert (a.sizes == 30).all() and np.array_equal(a.indices, b.indices)

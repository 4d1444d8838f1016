"""Synthetic data for the numpy core: its contract holds for any labels, so
these tests need no dataset files. MNIST's class counts keep the numbers of
the tests (sizes, shares) those of the real data; the tests whose figures
depend on the real images or labels take the `mnist` / `fashion_mnist`
fixtures of tests/conftest.py, skipped without the files."""

import numpy as np
import pytest

# Samples per class of MNIST's training and test splits.
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                      5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


def _shuffled_classes(counts, seed):
  return np.random.default_rng(seed).permutation(
      np.repeat(np.arange(len(counts)), counts))


@pytest.fixture(scope="session")
def labels():
  """60,000 int64 labels of 10 classes, as many per class as MNIST's."""
  return _shuffled_classes(MNIST_TRAIN_COUNTS, 0)


@pytest.fixture(scope="session")
def balanced_labels():
  """60,000 other labels, 6,000 per class (as Fashion-MNIST's)."""
  return _shuffled_classes((6000,) * 10, 1)


@pytest.fixture(scope="session")
def held_out_labels():
  """10,000 labels of the same classes (a test split, as MNIST's)."""
  return _shuffled_classes(MNIST_TEST_COUNTS, 2)


@pytest.fixture(scope="session")
def key(labels):
  """A continuous per-sample key (e.g. an image attribute), unrelated to the
  labels."""
  return np.random.default_rng(3).random(labels.shape[0])


@pytest.fixture(scope="session")
def images(labels):
  """Random 28x28 uint8 images, one per label: what `key(ink|slant|width)`
  and k-means read."""
  return np.random.default_rng(4).integers(
      0, 256, size=(labels.shape[0], 28, 28), dtype=np.uint8)

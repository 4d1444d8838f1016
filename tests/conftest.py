"""Shared fixtures: the real MNIST / Fashion-MNIST arrays (loaded once)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tff_niid import datasets  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope="session")
def mnist():
  return datasets.load("mnist")


@pytest.fixture(scope="session")
def fashion_mnist():
  return datasets.load("fashion_mnist")


@pytest.fixture(scope="session")
def mnist_labels(mnist):
  return mnist.train_labels

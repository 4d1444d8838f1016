"""Shared fixtures: the real MNIST / Fashion-MNIST arrays (loaded once)."""

import os
import sys

# Quiet TensorFlow's C++ logs here and in TFF's worker_binary (inherits env).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top

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


def pytest_sessionfinish(session, exitstatus):
  """Stops TFF's worker_binary if any test started one (it would otherwise
  outlive pytest and hold CI's output pipe open)."""
  del session, exitstatus
  if "tff_niid.runtime" in sys.modules:
    sys.modules["tff_niid.runtime"].shutdown()

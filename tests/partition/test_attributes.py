"""Image style attributes (their meaning: on real MNIST)."""

import numpy as np
import pytest

from tff_niid.partition import attributes


def test_attributes_are_sensible(mnist):
  x, y = mnist.train_images, mnist.train_labels
  ink, slant, width = (attributes.attribute(n, x)
                       for n in ("ink", "slant", "width"))
  for values in (ink, slant, width):
    assert values.shape == (60000,) and np.isfinite(values).all()
  assert 0 < ink.min() and ink.max() < 1
  # A "1" is narrow and light, a "0" wide and inky.
  assert width[y == 1].mean() < 0.6 * width[y == 0].mean()
  assert ink[y == 1].mean() < 0.6 * ink[y == 0].mean()
  # Slants vary: handwriting leans both ways.
  assert slant.std() > 0.1 and (slant > 0).mean() > 0.05


def test_blank_and_bad_images():
  blank = np.zeros((2, 28, 28), dtype=np.uint8)
  assert attributes.slant(blank).tolist() == [0.0, 0.0]
  assert attributes.width(blank).tolist() == [0.0, 0.0]
  with pytest.raises(ValueError, match="unknown image attribute"):
    attributes.attribute("height", blank)
  with pytest.raises(ValueError, match="images"):
    attributes.ink(np.zeros((28, 28)))


def test_kmeans_deterministic(images):
  x = images[:3000]
  a = attributes.kmeans_clusters(x, 10, seed=0)
  b = attributes.kmeans_clusters(x, 10, seed=0)
  assert np.array_equal(a, b) and set(a.tolist()) <= set(range(10))
  with pytest.raises(ValueError, match="k"):
    attributes.kmeans_clusters(x, 0, seed=0)

"""Per-image style attributes (numpy), used as `key=` for within-class rules.

On MNIST-like 28x28 uint8 images:
  ink    mean intensity in [0, 1] (stroke thickness / amount of ink);
  slant  the shear mu11 / mu02 of the intensity-weighted pixel coordinates
         (x = column, y = row, centred): the classic MNIST deskewing
         coefficient; positive when the top of the digit leans left ('\\')
         in image coordinates where y grows downwards;
  width  bounding-box width in pixels of the pixels above `threshold`.
  kmeans_clusters  ids of a plain k-means on 7x7 average-pooled images, a
         categorical "style cluster" key (or ids for `natural`).
All are vectorised and processed in chunks to bound memory.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 10000


def _check_images(images):
  images = np.asarray(images)
  if images.ndim != 3 or images.shape[0] == 0:
    raise ValueError(f"images must be a non-empty (N, H, W) array; got shape "
                     f"{images.shape}.")
  return images


def _chunks(images):
  for start in range(0, images.shape[0], _CHUNK):
    yield images[start:start + _CHUNK].astype(np.float32)


def ink(images: np.ndarray) -> np.ndarray:
  """Mean pixel intensity of each image, in [0, 1]."""
  images = _check_images(images)
  return np.concatenate([c.mean(axis=(1, 2)) / 255.0 for c in _chunks(images)])


def slant(images: np.ndarray) -> np.ndarray:
  """Second-moment shear mu11 / mu02 of each image (0 for blank images)."""
  images = _check_images(images)
  h, w = images.shape[1:]
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  out = []
  for c in _chunks(images):
    mass = c.sum(axis=(1, 2))
    safe = np.where(mass > 0, mass, 1.0)
    mx = (c * xs).sum(axis=(1, 2)) / safe
    my = (c * ys).sum(axis=(1, 2)) / safe
    dx = xs[None] - mx[:, None, None]
    dy = ys[None] - my[:, None, None]
    mu11 = (c * dx * dy).sum(axis=(1, 2)) / safe
    mu02 = (c * dy * dy).sum(axis=(1, 2)) / safe
    out.append(np.where(mu02 > 0, mu11 / np.where(mu02 > 0, mu02, 1.0), 0.0))
  return np.concatenate(out).astype(np.float64)


def width(images: np.ndarray, threshold: int = 128) -> np.ndarray:
  """Bounding-box width (pixels) of pixels >= threshold (0 if none)."""
  images = _check_images(images)
  cols = np.any(images >= threshold, axis=1)  # (N, W)
  has_ink = np.any(cols, axis=1)
  first = np.argmax(cols, axis=1)
  last = cols.shape[1] - 1 - np.argmax(cols[:, ::-1], axis=1)
  return np.where(has_ink, last - first + 1, 0).astype(np.float64)


def _pooled(images):
  n, h, w = images.shape
  ph, pw = h // 4, w // 4
  cropped = images[:, :ph * 4, :pw * 4].astype(np.float32) / 255.0
  return cropped.reshape(n, ph, 4, pw, 4).mean(axis=(2, 4)).reshape(n, -1)


def kmeans_clusters(images: np.ndarray, k: int, *, seed: int,
                    iters: int = 20) -> np.ndarray:
  """Cluster ids (0..k-1) of k-means on 7x7 pooled images; deterministic."""
  images = _check_images(images)
  if not isinstance(k, (int, np.integer)) or not 1 <= k <= images.shape[0]:
    raise ValueError(f"`k` must be an integer in [1, {images.shape[0]}]; "
                     f"got {k!r}.")
  x = _pooled(images)
  rng = np.random.default_rng(seed)
  centers = x[rng.choice(x.shape[0], size=k, replace=False)]
  sq = (x * x).sum(axis=1)
  for _ in range(iters):
    dist = sq[:, None] - 2 * x @ centers.T + (centers * centers).sum(axis=1)
    assign = dist.argmin(axis=1)
    counts = np.bincount(assign, minlength=k)
    sums = np.zeros_like(centers)
    np.add.at(sums, assign, x)
    # An emptied cluster keeps its centre rather than becoming NaN.
    centers = np.where(counts[:, None] > 0,
                       sums / np.maximum(counts, 1)[:, None], centers)
  return assign.astype(np.int64)


ATTRIBUTES = {"ink": ink, "slant": slant, "width": width}


def attribute(name: str, images: np.ndarray) -> np.ndarray:
  """The built-in attribute `name` of each image."""
  if name not in ATTRIBUTES:
    raise ValueError(f"unknown image attribute {name!r}; choose one of "
                     f"{sorted(ATTRIBUTES)}.")
  return ATTRIBUTES[name](images)

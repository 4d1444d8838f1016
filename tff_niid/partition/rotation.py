"""Rotated inputs per client: the feature skew of rotated MNIST."""

from __future__ import annotations

import collections.abc
from typing import Sequence

import numpy as np

from tff_niid.partition import _checks

# The rotations that move every pixel of a square image onto another pixel
# (no interpolation), counterclockwise, in degrees.
QUARTER_TURNS = (0, 90, 180, 270)


def check_rotation(rotation: np.ndarray, num_clients: int) -> np.ndarray:
  """`rotation` as int64 degrees, one of QUARTER_TURNS per client, or
  ValueError (`Partition.validate` checks its `rotation` here)."""
  values = np.asarray(rotation)
  if values.shape != (num_clients,) or values.dtype.kind not in "iu":
    raise ValueError(f"rotation must give one integer angle per client "
                     f"({num_clients}); got dtype {values.dtype}, shape "
                     f"{values.shape}.")
  if not np.isin(values, QUARTER_TURNS).all():
    raise ValueError(f"rotation angles must be among {QUARTER_TURNS} "
                     f"degrees; got {sorted(set(values.tolist()))}.")
  return values.astype(np.int64)


def check_degrees(degrees: Sequence[int] | int) -> list[int]:
  """The groups' angles as a list, or ValueError unless they are distinct
  quarter turns (the spec grammar checks `rotate(degrees=...)` here before
  any data is read)."""
  angles = (list(degrees) if isinstance(
      degrees, (collections.abc.Sequence, np.ndarray)) else [degrees])
  if not angles or not all(
      isinstance(a, (int, np.integer)) and not isinstance(a, bool) and
      a in QUARTER_TURNS for a in angles):
    raise ValueError(f"rotate(degrees=...) takes distinct angles among "
                     f"{QUARTER_TURNS}; got {degrees!r}.")
  if len(set(angles)) != len(angles):
    raise ValueError(f"rotate(degrees=...): {degrees!r} gives an angle "
                     "twice; each angle is one group of clients.")
  return [int(a) for a in angles]


def client_rotations(num_clients: int, *,
                     degrees: Sequence[int] = QUARTER_TURNS,
                     seed: int) -> np.ndarray:
  """Each client's inputs rotated by one of `degrees`: the clients split at
  random into len(degrees) groups of equal size (±1), group g rotated by
  degrees[g].

  Rotated MNIST of Ghosh et al. 2020 ("An Efficient Framework for Clustered
  Federated Learning", NeurIPS; IFCA): clients in 4 clusters whose images are
  rotated by 0, 90, 180 and 270 degrees (2 clusters, 0 and 180, for
  CIFAR-10). A feature skew with a cluster structure: the same labels mean
  other pixels in each group. Only quarter turns are offered: they move
  pixels exactly, with no interpolation to tell the groups apart by.

  Guarantees: group sizes differ by at most one; every angle of `degrees` is
  some client's; the same seed gives the same angles.

  Args:
    num_clients: number of clients, >= len(degrees).
    degrees: the groups' distinct angles, counterclockwise, each one of
      QUARTER_TURNS = (0, 90, 180, 270).
    seed: non-negative integer seed.

  Returns:
    int64 array (num_clients,): client i's angle in degrees (what
    `Partition.rotation` holds; `tff_niid.clientdata` and
    `tff_niid.evaluation` apply it).

  Raises:
    ValueError: an angle not a quarter turn, an angle twice, no angle, or
      fewer clients than angles.
  """
  num_clients = _checks.check_positive("num_clients", num_clients,
                                       integer=True)
  seed = _checks.check_seed(seed)
  angles = check_degrees(degrees)
  if num_clients < len(angles):
    raise ValueError(f"{num_clients} client(s) cannot form {len(angles)} "
                     f"rotation groups ({angles}); give at least "
                     f"{len(angles)} clients or fewer angles.")
  rng = np.random.default_rng(seed)
  groups = rng.permutation(num_clients) % len(angles)
  return np.asarray(angles, dtype=np.int64)[groups]

"""Input checks every scheme shares (`_checks`, `_allocate.check_key`)."""

import time
from typing import Callable

import numpy as np
import pytest

from partition_contract import example_scheme
from tff_niid import partition
from tff_niid.partition import _checks
from tff_niid.partition import registry

LABELS = np.arange(200) % 10

# Every entry point that takes class labels, called on `labels`: every
# registered scheme, and the functions of partitions. `...`: the schemes'
# lambdas also take their name (a default), which mypy will not match to
# a one-argument Callable.
TAKES_LABELS: dict[str, Callable[..., object]] = {
    **{name: lambda y, name=name: example_scheme(name)(y, 4)
       for name in registry.SCHEMES},
    "label_noise": lambda y: partition.label_noise(
        y, partition.iid(LABELS, 4, seed=0), rate=0.1, seed=0),
    "label_counts": lambda y: partition.metrics.label_counts(
        partition.iid(LABELS, 4, seed=0), y),
    "match_test": lambda y: partition.match_test(
        partition.iid(LABELS, 4, seed=0), LABELS, y, seed=0),
}

# The schemes that take key= and key_noise=.
KEYED = {name: lambda name=name, **kw: example_scheme(name)(LABELS, 10, **kw)
         for name, scheme in registry.SCHEMES.items() if scheme.takes_key}


@pytest.mark.parametrize("name", sorted(TAKES_LABELS))
@pytest.mark.parametrize("huge_id", [10**6, 10**9, 10**12])
def test_a_stray_huge_class_id_is_refused_fast(name, huge_id):
  # Such ids made schemes loop per class id, or allocate up to 7 TiB.
  labels = np.append(LABELS, huge_id)
  start = time.monotonic()
  with pytest.raises(ValueError) as e:
    TAKES_LABELS[name](labels)
  assert time.monotonic() - start < 1
  name = "test_labels" if name == "match_test" else "labels"
  assert str(e.value) == (
      f"`{name}` has class id {huge_id} but only 201 samples; class ids must "
      "be below max(number of samples, 1024) = 1024 (work grows with the "
      "largest id). Map your classes to ids 0..K-1 first (np.unique(y, "
      "return_inverse=True)[1]).")


def test_ids_up_to_the_limit_are_accepted():
  # A short slice of a many-class dataset: ids may exceed the sample count.
  part = partition.dirichlet(np.array([0, 5, 1023, 7]), 2, alpha=1.0, seed=0)
  assert sorted(part.indices) == [0, 1, 2, 3]


@pytest.mark.parametrize("name", sorted(KEYED))
def test_key_noise_without_a_key(name):
  # key_noise was silently ignored.
  with pytest.raises(ValueError) as e:
    KEYED[name](key_noise=0.5)
  assert str(e.value) == (
      "`key_noise`=0.5 needs a `key`: it mixes key order with random order "
      "within classes, and without a key the order is random already.")
  assert KEYED[name](key_noise=0).params["key_noise"] == 0


@pytest.mark.parametrize("name", sorted(KEYED))
@pytest.mark.parametrize("key", [[None] * 200, [1.0] * 199 + [None],
                                 [1] * 199 + [object()]])
def test_key_of_no_single_type(name, key):
  # These raised TypeError from inside numpy's sort.
  with pytest.raises(ValueError) as e:
    KEYED[name](key=np.array(key, dtype=object))
  assert str(e.value) == ("`key` must hold numbers or strings; got dtype "
                          "object (None, or values of mixed types).")


@pytest.mark.parametrize("name", sorted(KEYED))
def test_the_key_is_fingerprinted(name, tmp_path):
  # A saved partition named no key ("key": true), so nobody could tell
  # which array ordered its classes.
  key = np.random.default_rng(0).random(200)
  part = KEYED[name](key=key)
  assert part.params["key"] == partition.fingerprint(key)
  back = partition.load(part.save(str(tmp_path / "p")))
  back.check_key(key)
  back.check_key(list(key))  # the same values, another container
  with pytest.raises(ValueError) as e:
    back.check_key(key[::-1])
  assert str(e.value) == (
      f"this partition's classes were ordered by a key with fingerprint "
      f"{partition.fingerprint(key)}, but the given key has "
      f"{partition.fingerprint(key[::-1])}: it is another key, or another "
      "version of it.")
  unkeyed = KEYED[name]()
  assert unkeyed.params["key"] is False
  with pytest.raises(ValueError, match="made without a key"):
    unkeyed.check_key(key)
  # Saved before keys were fingerprinted ("key": true): nothing to check
  # against, and equal to the partition drawn again.
  legacy = part.replace(params=dict(part.params, key=True))
  legacy.check_key(key)
  assert legacy == part and part == legacy and legacy != unkeyed
  assert part != part.replace(params=dict(part.params, key="sha256:0"))


@pytest.mark.parametrize("name", ["label_quantity", "extended_dirichlet"])
@pytest.mark.parametrize("labels,empty", [
    (np.repeat([3, 7], 100), "0, 1, 2, 4, 5, 6"),  # a subset of the classes
    (np.arange(200) % 10 + 1, "0"),                 # 1-based ids
])
def test_class_ids_without_samples_are_named(name, labels, empty):
  # Each client's classes are dealt among 0..K-1: fewer clients, the advice
  # of a shortage, could never fill an empty id.
  scheme = getattr(partition, name)
  extra = {"alpha": 0.5} if name == "extended_dirichlet" else {}
  with pytest.raises(ValueError) as e:
    scheme(labels, 4, classes_per_client=1, seed=0, **extra)
  assert str(e.value) == (
      f"{name} deals each client classes among the ids "
      f"0..{labels.max()}, but class id(s) {empty} have no samples; map your "
      "classes to ids 0..K-1 first (np.unique(y, return_inverse=True)[1]).")


def test_long_id_lists_are_cut():
  assert _checks.id_list(range(3)) == "0, 1, 2"
  assert _checks.id_list(range(330)) == (
      "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (330 in all)")

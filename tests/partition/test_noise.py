"""label_noise and feature_noise_levels."""

from typing import Any

import numpy as np
import pytest

from tff_niid import partition


@pytest.fixture(scope="module")
def part(labels):
  return partition.dirichlet(labels, 40, alpha=0.5, seed=0)


@pytest.mark.parametrize("mode", ["symmetric", "pair"])
def test_exact_rates_and_modes(labels, part, mode):
  noisy, flipped = partition.label_noise(labels, part, rate=0.2,
                                         mode=mode, seed=0)
  assert noisy is not labels and (labels >= 0).all()
  assert np.array_equal(noisy != labels, flipped)
  for i in range(len(part)):
    assert flipped[part[i]].sum() == round(0.2 * part.sizes[i])
  if mode == "pair":
    assert ((labels[flipped] + 1) % 10 == noisy[flipped]).all()
  else:  # symmetric: every other class is a target
    assert len(np.unique(noisy[flipped & (labels == 3)])) == 9


def test_ramp_and_per_client_rates(labels, part):
  _, flipped = partition.label_noise(labels, part, ramp=(0.0, 0.4),
                                     seed=0)
  rates = [flipped[part[i]].mean() for i in range(len(part))]
  assert rates[0] == 0 and abs(rates[-1] - 0.4) < 0.01
  per_client = np.where(np.arange(40) < 20, 0.0, 0.5)
  _, flipped = partition.label_noise(labels, part, rates=per_client,
                                     seed=0)
  assert flipped[np.concatenate(part[:20])].sum() == 0


def test_noisy_clients_keep_their_rate_and_the_rest_stay_clean(labels,
                                                                part):
  _, everyone = partition.label_noise(labels, part, rate=0.4, seed=0)
  _, flipped = partition.label_noise(labels, part, rate=0.4,
                                     noisy_clients=0.25, seed=0)
  noisy = [i for i in range(len(part)) if flipped[part[i]].any()]
  assert len(noisy) == 10
  for i in noisy:  # the same flips as when every client is noisy
    assert np.array_equal(flipped[part[i]], everyone[part[i]])
  _, other_seed = partition.label_noise(labels, part, rate=0.4,
                                        noisy_clients=0.25, seed=1)
  assert noisy != [i for i in range(len(part)) if other_seed[part[i]].any()]


def test_noisy_clients_rounding_to_none_is_said(labels):
  part = partition.iid(labels, 10, seed=0)
  with pytest.warns(UserWarning, match=r"label_noise\(noisy_clients=0.04\) "
                    "of 10 clients rounds to 0 noisy clients: no label is "
                    "flipped."):
    noisy, flipped = partition.label_noise(labels, part, rate=0.3,
                                           noisy_clients=0.04, seed=0)
  assert not flipped.any() and np.array_equal(noisy, labels)


def test_bad_arguments(labels, part):
  # Any: the values are of several types, some wrong on purpose.
  cases: list[tuple[dict[str, Any], str]] = [
      (dict(), "exactly one"),
      (dict(rate=0.1, ramp=(0, 1)), "exactly one"),
      (dict(rate=1.5), "rate"),
      (dict(rates=[0.1] * 3), "one rate per client"),
      (dict(rate=0.1, mode="flip"), "mode"),
      (dict(rate=0.1, noisy_clients=2), "noisy_clients")]
  for kwargs, message in cases:
    with pytest.raises(ValueError, match=message):
      partition.label_noise(labels, part, seed=0, **kwargs)


@pytest.mark.parametrize("num_classes", [5, 20, 2.5, True])
def test_num_classes_must_match_the_labels(labels, part, num_classes):
  # 5 folded classes together, 20 made labels 10..19, 2.5 drew from [1, 2.5).
  with pytest.raises(ValueError) as e:
    partition.label_noise(labels, part, rate=0.1, seed=0,
                          num_classes=num_classes)
  assert str(e.value) == (
      f"`num_classes`={num_classes!r} does not match `labels`, whose class "
      "ids run 0..9 (10 classes): flips choose among those; omit num_classes.")
  # Any: mypy would match an int value against every keyword parameter.
  with_and_without: tuple[dict[str, Any], ...] = (dict(num_classes=10), {})
  given, default = (partition.label_noise(labels, part, rate=0.1, seed=0,
                                          **kw)[0]
                    for kw in with_and_without)
  assert np.array_equal(given, default)


@pytest.mark.parametrize("ramp", [0.3, (0.1,), (0.1, 0.2, 0.3), "ab"])
def test_ramp_must_be_a_pair(labels, part, ramp):
  with pytest.raises(ValueError) as e:
    partition.label_noise(labels, part, ramp=ramp, seed=0)
  assert str(e.value) == ("`ramp` must be a pair (low, high) of rates in "
                          f"[0, 1]; got {ramp!r}.")


def test_feature_noise_levels():
  np.testing.assert_allclose(partition.feature_noise_levels(5, 0.4),
                             [0, 0.1, 0.2, 0.3, 0.4])
  assert partition.feature_noise_levels(1, 0.4).tolist() == [0.0]
  with pytest.raises(ValueError):
    partition.feature_noise_levels(3, -1)

"""split_clients: each client's own stratified train/test split."""

import numpy as np
import pytest
from scipy import stats

from tff_niid import partition
from tff_niid.partition import metrics

LABELS = np.repeat(np.arange(10), 300)[np.random.default_rng(7).permutation(
    3000)]


def _label_skewed():
  return partition.dirichlet(LABELS, 20, alpha=0.3, seed=1)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
def test_every_client_is_split_exactly_and_by_label(fraction):
  part = _label_skewed()
  train, test = partition.split_clients(part, LABELS, test_fraction=fraction,
                                        seed=0)
  assert len(train) == len(test) == len(part)
  for i in range(len(part)):
    assert not np.intersect1d(train[i], test[i]).size
    assert np.array_equal(np.sort(np.concatenate([train[i], test[i]])),
                          np.sort(part[i]))
  sizes = part.sizes
  assert np.array_equal(test.sizes, np.floor(fraction * sizes + 0.5))
  counts, test_counts = (metrics.label_counts(p, LABELS, 10)
                         for p in (part, test))
  share = (test.sizes / sizes)[:, None] * counts
  assert np.all((np.floor(share) <= test_counts) &
                (test_counts <= np.ceil(share)))


def test_a_client_has_its_samples_in_random_order():
  part = _label_skewed()
  train, test = partition.split_clients(part, LABELS, test_fraction=0.5,
                                        seed=0)
  big = int(np.argmax(part.sizes))
  # The scheme lists the client class by class; the split does not.
  assert np.all(np.diff(LABELS[part[big]]) >= 0)
  for half in (train, test):
    assert np.count_nonzero(np.diff(LABELS[half[big]]) < 0) > 10


def test_the_rounding_favours_no_class():
  # 2,000 clients of about 10 samples: each client's rounding leaves a class
  # a sample more or less; over the clients every class is held out at f.
  labels = np.arange(20_000) % 10
  part = partition.iid(labels, 2000, seed=0)
  _, test = partition.split_clients(part, labels, test_fraction=0.3, seed=0)
  held_out = np.bincount(labels[test.indices], minlength=10) / 2000
  assert np.all(np.abs(held_out - 0.3) < 0.03), held_out


def test_each_sample_is_held_out_with_the_same_chance():
  # Within a (client, class) cell the test samples are a uniform subset: over
  # seeds, every sample of a cell is chosen about equally often.
  labels = np.repeat(np.arange(2), 20)
  part = partition.iid(labels, 2, seed=0)
  chosen = np.zeros(labels.shape[0])
  runs = 2000
  for seed in range(runs):
    _, test = partition.split_clients(part, labels, test_fraction=0.3,
                                      seed=seed)
    chosen[test.indices] += 1
  for i in range(len(part)):
    for c in range(2):
      counts = chosen[part[i][labels[part[i]] == c]]
      assert stats.chisquare(counts).pvalue > 1e-3, (i, c)


def test_seeded_and_carries_the_partition_extras(tmp_path):
  part = _label_skewed().replace(
      noisy_labels=(LABELS + 1) % 10, feature_noise=np.linspace(0, 1, 20),
      client_names=[f"c{i}" for i in range(20)], spec="dirichlet(alpha=0.3)")
  first = partition.split_clients(part, LABELS, test_fraction=0.2, seed=3)
  again = partition.split_clients(part, LABELS, test_fraction=0.2, seed=3)
  other = partition.split_clients(part, LABELS, test_fraction=0.2, seed=4)
  assert first == again and first[1] != other[1]
  train, test = first
  for half, name in ((train, "train"), (test, "test")):
    assert half.scheme == "split_clients"
    assert half.params == {"part": name, "test_fraction": 0.2,
                           "scheme": "dirichlet", "params": part.params,
                           "spec": "dirichlet(alpha=0.3)", "seed": 1}
    assert half.client_names == part.client_names
    assert half.noisy_labels is not None
    assert half.feature_noise is not None
    assert np.array_equal(half.noisy_labels, part.noisy_labels)
    assert np.array_equal(half.feature_noise, part.feature_noise)
    assert half.feature_noise_redraw is False
    back = partition.load(half.save(str(tmp_path / name)), labels=LABELS)
    assert back == half


def test_small_clients_may_end_up_on_one_side():
  labels = np.arange(10) % 10
  part = partition.iid(labels, 10, seed=0)  # one sample each
  train, test = partition.split_clients(part, labels, test_fraction=0.4,
                                        seed=0)
  assert train.sizes.tolist() == [1] * 10 and test.sizes.tolist() == [0] * 10


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, True, "0.2",
                                      float("nan")])
def test_bad_fraction(fraction):
  with pytest.raises(ValueError, match="strictly between 0 and 1"):
    partition.split_clients(_label_skewed(), LABELS, test_fraction=fraction,
                            seed=0)


def test_labels_of_another_dataset():
  with pytest.raises(ValueError, match="another dataset"):
    partition.split_clients(_label_skewed(), LABELS[::-1],
                            test_fraction=0.2, seed=0)


def test_redrawn_feature_noise_is_kept():
  part = _label_skewed().replace(feature_noise=np.linspace(0, 1, 20),
                                 feature_noise_redraw=True)
  for half in partition.split_clients(part, LABELS, test_fraction=0.2,
                                      seed=0):
    assert half.feature_noise_redraw is True


def test_a_client_holding_a_sample_twice_is_refused():
  # match_test draws with replacement where a class is short: client 0
  # needs 5 samples of a class that has 2.
  test_labels = np.repeat(np.arange(10), 2)
  train = partition.label_quantity(LABELS, 10, classes_per_client=1, seed=0)
  matched = partition.match_test(train, LABELS, test_labels, seed=0, size=5)
  with pytest.raises(ValueError, match="holds a sample twice"):
    partition.split_clients(matched, test_labels, test_fraction=0.4, seed=0)
  # Without repeats inside a client, a non-disjoint partition splits.
  once = partition.match_test(train, LABELS, test_labels, seed=0, size=2)
  train_part, test_part = partition.split_clients(once, test_labels,
                                                  test_fraction=0.5, seed=0)
  assert not train_part.disjoint and test_part.sizes.tolist() == [1] * 10

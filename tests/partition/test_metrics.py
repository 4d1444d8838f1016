"""Heterogeneity metrics against hand computations and whole partitions."""

import math
import warnings

import numpy as np
import pytest

from tff_niid import partition
from tff_niid.partition import core
from tff_niid.partition import metrics


def _part(labels, clients):
  idx = np.concatenate(clients)
  offsets = np.concatenate([[0], np.cumsum([len(c) for c in clients])])
  return core.make_partition(labels, idx, offsets, scheme="hand", params={},
                             seed=0)


def test_hand_computed_two_clients():
  labels = np.array([0, 0, 1, 1])
  h = metrics.client_heterogeneity(_part(labels, [[0, 1], [2, 3]]), labels)
  # p_i = (1, 0), p = (1/2, 1/2), m = (3/4, 1/4).
  js = 0.5 * (math.log2(4 / 3)) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * 1)
  assert h["js"] == pytest.approx([js, js])
  assert h["hellinger"] == pytest.approx([math.sqrt(1 - math.sqrt(0.5))] * 2)
  assert h["emd"].tolist() == [1.0, 1.0]  # |1 - .5| + |0 - .5|
  assert h["tv"].tolist() == [0.5, 0.5]
  assert h["effective_classes"].tolist() == [1.0, 1.0]
  assert h["classes_present"].tolist() == [1, 1]


def test_emd_three_classes_by_hand():
  # Client 0: classes (0, 0, 1); global over 6 samples: (3, 2, 1) / 6.
  labels = np.array([0, 0, 1, 0, 1, 2])
  h = metrics.client_heterogeneity(_part(labels, [[0, 1, 2], [3, 4, 5]]),
                                   labels)
  assert h["emd"][0] == pytest.approx(abs(2 / 3 - 1 / 2) + abs(1 / 3 - 1 / 3)
                                      + abs(0 - 1 / 6))
  assert h["effective_classes"][1] == pytest.approx(3.0)


def test_identical_mix_is_zero(labels):
  part = partition.iid(labels, 2, seed=0)
  h = metrics.client_heterogeneity(part, labels)
  assert h["js"].max() < 1e-3 and h["emd"].max() < 0.02


def test_gini_and_summary(labels):
  assert metrics.gini([1, 1, 1, 1]) == 0
  assert metrics.gini([0, 0, 0, 4]) == pytest.approx(0.75)
  summary = metrics.summary(
      partition.dirichlet(labels, 100, alpha=0.1, seed=0), labels,
      key=np.arange(60000, dtype=float))
  assert 0 < summary["js_mean"] <= summary["js_max"] <= 1
  assert summary["num_assigned"] == 60000 and "key_dispersion" in summary
  table = metrics.format_table(summary)
  assert "js_mean" in table and len(table.splitlines()) == len(summary)


def test_key_dispersion_hand_case():
  labels = np.zeros(4, dtype=int)
  key = np.array([0.0, 1.0, 10.0, 11.0])
  ordered = _part(labels, [[0, 1], [2, 3]])
  mixed = _part(labels, [[0, 2], [1, 3]])
  # Global std = sqrt(mean((k - 5.5)^2)) = sqrt(25.25); clients: 0.5 / 5.0.
  # (Cells of two samples: whether a shuffled key reads below 0.9, and so
  # warns, depends on the shuffle.)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    assert metrics.key_dispersion(ordered, labels, key) == pytest.approx(
        0.5 / math.sqrt(25.25))
    assert metrics.key_dispersion(mixed, labels, key) == pytest.approx(
        5.0 / math.sqrt(25.25))
  with pytest.raises(ValueError, match="numeric"):
    metrics.key_dispersion(ordered, labels, np.array(list("abcd")))


def test_key_dispersion_of_small_cells_says_what_a_random_draw_reads(
    labels, recwarn):
  key = np.random.default_rng(0).random(labels.shape[0])
  # About 60 samples per client and class: a random draw reads about 1.
  assert metrics.key_dispersion(partition.iid(labels, 100, seed=0), labels,
                                key) == pytest.approx(1, abs=0.03)
  assert not recwarn
  # 3 samples per client: cells of 0 or 1 sample, which read 0.
  small = partition.iid(labels, 20000, seed=0)
  with pytest.warns(UserWarning) as caught:
    value = metrics.key_dispersion(small, labels, key)
  message = str(caught[0].message)
  assert message.startswith(
      "key_dispersion: clients hold few samples of each class (median 1 per "
      "client and class), so even a random draw of these sizes reads ")
  assert message.endswith(" here (the key shuffled within each class), not "
                          "1: compare with that.")
  stated = float(message.split("sizes reads ")[1].split(" ")[0])
  # The partition is a random draw itself: it reads what the shuffle reads.
  assert value < 0.5 and value == pytest.approx(stated, abs=0.02)
  # 20 samples per client, 2 per class: a random draw reads about 0.55;
  # ordered by the key, far less.
  mid = partition.iid(labels, 3000, seed=0)
  with pytest.warns(UserWarning) as caught:
    value = metrics.key_dispersion(mid, labels, key)
  stated = float(str(caught[0].message).split("sizes reads ")[1].split()[0])
  assert value == pytest.approx(stated, abs=0.02)
  keyed = partition.dirichlet(labels, 3000, alpha=1000, key=key, seed=0)
  with pytest.warns(UserWarning):
    assert metrics.key_dispersion(keyed, labels, key) < stated / 5


def test_label_counts_sum(balanced_labels):
  labels = balanced_labels
  part = partition.label_quantity(labels, 30, classes_per_client=2, seed=0)
  counts = metrics.label_counts(part, labels)
  assert counts.shape == (30, 10)
  assert np.array_equal(counts.sum(axis=0), np.bincount(labels))


@pytest.mark.parametrize("measure", [
    lambda part, y: metrics.label_counts(part, y),
    lambda part, y: metrics.summary(part, y),
    lambda part, y: metrics.key_dispersion(part, y, np.zeros(len(y))),
])
def test_labels_of_another_dataset_or_split_are_refused(
    labels, balanced_labels, held_out_labels, measure):
  part = partition.dirichlet(labels, 20, alpha=0.5, seed=0)
  # Other labels of the same length gave wrong figures, and a shorter split
  # an IndexError.
  for other in (balanced_labels, held_out_labels):
    with pytest.raises(ValueError, match="this partition was made from "
                       r"labels with fingerprint .* it belongs to another "
                       "dataset or split."):
      measure(part, other)


def test_num_classes_may_add_classes_but_not_drop_them(labels):
  part = partition.iid(labels, 4, seed=0)
  assert metrics.label_counts(part, labels, 12)[:, 10:].sum() == 0
  with pytest.raises(ValueError) as e:
    metrics.label_counts(part, labels, num_classes=5)
  assert str(e.value) == ("`num_classes`=5 is fewer than the classes of "
                          "`labels`, whose ids run 0..9; omit it, or give an "
                          "integer >= 10.")


def test_client_heterogeneity_in_blocks_is_the_same(labels, monkeypatch):
  # Blocks of clients bound the memory (clients x classes floats); each
  # client's figures depend on its own counts and the global mix alone.
  part = partition.dirichlet(labels, 1000, alpha=0.3, seed=0)
  whole = metrics.client_heterogeneity(part, labels)
  monkeypatch.setattr(metrics, "_BLOCK_CELLS", 70)  # 7 clients a block
  blocks = metrics.client_heterogeneity(part, labels)
  assert list(blocks) == list(whole)
  for name in whole:
    np.testing.assert_array_equal(blocks[name], whole[name])

"""partition.report.write: the report both binaries write."""

import csv
import os

import numpy as np
import pytest

import files

from tff_niid import partition
from tff_niid import results
from tff_niid.partition import report
from tff_niid.partition import spec

KEYED = "dirichlet(alpha=0.5)+key(slant)+noise(rate=0.1)"


def test_writes_the_partition_its_table_and_plots(labels, images, tmp_path):
  part = spec.resolve(KEYED, labels, 20, seed=0, images=images)
  written = report.write(part, labels, str(tmp_path), images=images)
  assert sorted(os.listdir(tmp_path)) == [
      "partition", "partition_divergence.png", "partition_label_counts.csv",
      "partition_label_mix.png", "partition_sizes.png",
      "partition_summary.txt"]
  with open(tmp_path / "partition_label_counts.csv", newline="") as f:
    rows = list(csv.reader(f))
  counts = partition.metrics.label_counts(part, labels)
  assert rows[0] == ["client", "size"] + [f"class_{k}" for k in range(10)]
  assert [[int(v) for v in row] for row in rows[1:]] == [
      [i, int(c.sum()), *c.tolist()] for i, c in enumerate(counts)]
  assert written.partition_dir == str(tmp_path / "partition")
  assert partition.load(written.partition_dir, labels=labels).spec == part.spec
  assert written.plots == [str(tmp_path / f"partition_{name}.png")
                           for name in ("label_mix", "sizes", "divergence")]
  assert (tmp_path / "partition_summary.txt").read_text() == (
      written.table + "\n")
  # The table is what the results tooling reads back from committed runs.
  summary = partition.metrics.summary(
      part, labels, key=partition.attributes.slant(images))
  read = results.read_partition_summary(str(tmp_path))
  assert list(read) == list(summary)
  assert read["key_dispersion"] == pytest.approx(summary["key_dispersion"],
                                                 abs=1e-4)


def test_key_dispersion_needs_a_key_and_its_values(labels, images,
                                                   tmp_path):
  keyed = spec.resolve(KEYED, labels, 20, seed=0, images=images)
  plain = spec.resolve("dirichlet(alpha=0.5)", labels, 20, seed=0)
  region = {"region": np.arange(labels.shape[0]) % 13}
  user = spec.resolve("dirichlet(alpha=0.5)+key(region)", labels, 20, seed=0,
                      keys=region)
  # A categorical key orders the classes, but has no dispersion to measure.
  names = {"region": np.array(["north", "south", "east"])[region["region"] %
                                                          3]}
  named = spec.resolve("dirichlet(alpha=0.5)+key(region)", labels, 20,
                       seed=0, keys=names)
  for part, given, keys, reported in ((keyed, None, None, False),
                                      (plain, images, None, False),
                                      (keyed, images, None, True),
                                      (user, images, None, False),
                                      (user, None, region, True),
                                      (named, None, names, False)):
    table = report.write(part, labels, str(tmp_path), images=given,
                         keys=keys).table
    assert ("key_dispersion" in table) == reported


def test_an_image_attribute_key_is_recorded_by_name(labels, images):
  # Its float values, recomputed on another machine, may differ in the last
  # bit: a fingerprint of them would make the same partition another one.
  part = spec.resolve(KEYED, labels, 20, seed=0, images=images)
  assert part.params["key"] == spec.key_name(KEYED)
  part.check_key(np.zeros(labels.shape[0]))  # nothing to check


def test_a_user_key_must_be_the_one_the_partition_was_made_with(labels,
                                                                 tmp_path):
  # The dispersion was measured with whatever array was passed.
  region = np.arange(labels.shape[0]) % 13
  part = spec.resolve("dirichlet(alpha=0.5)+key(region)", labels, 20, seed=0,
                      keys={"region": region})
  with pytest.raises(ValueError, match="ordered by a key with fingerprint"):
    report.write(part, labels, str(tmp_path / "r"),
                 keys={"region": region[::-1]})
  assert not (tmp_path / "r").exists()


def test_a_rerun_replaces_its_report_and_nothing_else(labels, tmp_path):
  first, second = (partition.iid(labels, n, seed=0) for n in (4, 5))
  report.write(first, labels, str(tmp_path))
  report.write(second, labels, str(tmp_path))
  assert len(partition.load(str(tmp_path / "partition"))) == 5
  (tmp_path / "partition" / "notes.txt").write_text("mine")
  before = files.snapshot(tmp_path)
  with pytest.raises(ValueError, match="not a saved partition"):
    report.write(first, labels, str(tmp_path))
  assert files.snapshot(tmp_path) == before


def test_a_failed_measurement_writes_nothing(labels, tmp_path):
  part = partition.iid(labels, 5, seed=0)
  with pytest.raises(ValueError, match="another dataset"):
    report.write(part, labels[::-1], str(tmp_path / "r"))
  assert not (tmp_path / "r").exists()


def test_label_counts_name_the_clients_by_their_ids(tmp_path):
  labels = np.array([0, 1, 1, 2, 0, 2])
  regions = np.array(["Oslo", "Lyon, FR", "Oslo", "Lyon, FR", "Kyiv", "Kyiv"])
  part = partition.natural(labels, regions)
  report.write(part, labels, str(tmp_path), plots=False)
  with open(tmp_path / "partition_label_counts.csv", newline="") as f:
    rows = list(csv.reader(f))
  assert rows == [["client", "size", "class_0", "class_1", "class_2"],
                  ["Kyiv", "2", "1", "0", "1"],
                  ["Lyon, FR", "2", "0", "1", "1"],
                  ["Oslo", "2", "1", "1", "0"]]


def test_warnings_reach_the_callback_each_time(labels):
  emitted: list[str] = []
  for _ in range(2):
    with report.warnings_to(emitted.append):
      partition.label_quantity(labels, 3, classes_per_client=2, seed=0,
                               class_assignment="deterministic")
  assert len(emitted) == 2 and emitted[0] == emitted[1]
  assert emitted[0].startswith("label_quantity(class_assignment="
                               "deterministic): no client holds label(s) ")


def test_warnings_reach_the_callback_when_the_block_fails(labels):
  emitted: list[str] = []
  with pytest.raises(RuntimeError):
    with report.warnings_to(emitted.append):
      partition.label_quantity(labels, 3, classes_per_client=2, seed=0,
                               class_assignment="deterministic")
      raise RuntimeError("a later step failed")
  assert len(emitted) == 1 and "no client holds label(s)" in emitted[0]

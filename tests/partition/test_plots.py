"""Plots are written, stay readable for 10,000 clients, and leave the host's
matplotlib as it was."""

import os
import re
import subprocess
import sys
from typing import Any, cast

import matplotlib
import numpy as np
import pytest

from tff_niid import partition


def test_plot_all_many_clients(labels, tmp_path):
  part = partition.dirichlet(labels, 10000, alpha=0.1, min_size=2,
                             seed=0)
  paths = partition.plots.plot_all(part, labels, str(tmp_path),
                                   prefix="p_")
  assert [os.path.basename(p) for p in paths] == [
      "p_label_mix.png", "p_sizes.png", "p_divergence.png"]
  for path in paths:
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 10_000


def test_each_plot_returns_the_file_it_wrote(labels, tmp_path):
  # Without an extension matplotlib writes name.png: that is what is
  # returned. A path object works as a string does; a .pdf is a PDF.
  part = partition.iid(labels, 10, seed=0)
  plots = partition.plots
  written = [plots.plot_label_counts(part, labels, str(tmp_path / "mix")),
             plots.plot_sizes(part, tmp_path / "sizes"),
             plots.plot_divergence(part, labels, str(tmp_path / "js.pdf"))]
  assert written == [str(tmp_path / name)
                     for name in ("mix.png", "sizes.png", "js.pdf")]
  assert sorted(os.listdir(tmp_path)) == ["js.pdf", "mix.png", "sizes.png"]
  with open(written[2], "rb") as f:
    assert f.read(5) == b"%PDF-"


def test_plots_leave_pyplot_alone(tmp_path):
  # A notebook's inline backend and open figures survive drawing the plots
  # (they once switched the process to Agg, so plt.show() drew nothing).
  script = f"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import numpy as np
from tff_niid import partition
plt.figure()
labels = np.arange(1000) % 10
partition.plots.plot_all(partition.iid(labels, 5, seed=0), labels,
                         {str(tmp_path)!r})
print(matplotlib.get_backend(), plt.get_fignums())
"""
  out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                       text=True, check=True)
  assert out.stdout == "svg [1]\n"


def test_stacked_bars_show_each_clients_counts_at_its_index(labels):
  # Flower's plot_label_distributions(plot_type="bar"): client i's bar at
  # x = i, its segments the client's count of each class.
  part = partition.dirichlet(labels, 30, alpha=0.3, seed=0)
  ax = partition.plots.new_figure().subplots()
  assert partition.plots.plot_label_counts(
      part, labels, kind="bar", unit="count", order="client", ax=ax) is ax
  counts = partition.metrics.label_counts(part, labels)
  drawn = np.zeros_like(counts, dtype=float)
  for c, bars in enumerate(ax.containers):
    for bar in bars:
      drawn[round(bar.get_x() + bar.get_width() / 2), c] = bar.get_height()
  np.testing.assert_array_equal(drawn, counts)
  assert [t.get_text() for t in ax.get_xticklabels()] == [
      str(i) for i in range(30)]
  assert [t.get_text() for t in ax.get_legend().get_texts()] == [
      str(c) for c in range(10)]
  # Each legend entry in its class's colour, drawn or not (client 0 alone
  # holds only some classes).
  ax = partition.plots.new_figure().subplots()
  partition.plots.plot_label_counts(part, labels, kind="bar", order="client",
                                    max_clients=1, ax=ax)
  legend = [handle.get_facecolor() for handle in ax.get_legend().legend_handles]
  # Any: tab10 is a ListedColormap of RGB triples; the stubs type it as a
  # Colormap (no .colors), a ListedColormap's colors as any array-like.
  assert legend == [matplotlib.colors.to_rgba(c)
                    for c in cast(Any, matplotlib.colormaps["tab10"]).colors]


def test_client_order_shows_the_first_clients_and_says_so(labels, tmp_path):
  part = partition.label_quantity(labels, 1000, classes_per_client=2, seed=0)
  ax = partition.plots.new_figure().subplots()
  path = str(tmp_path / "mix.png")
  assert partition.plots.plot_label_counts(
      part, labels, path, kind="heatmap", unit="count", order="client",
      max_clients=100, class_names=list("abcdefghij"), ax=ax) == path
  np.testing.assert_array_equal(
      ax.get_images()[0].get_array(),
      partition.metrics.label_counts(part, labels)[:100])
  assert "clients 0-99 of 1000" in ax.get_title()
  assert [t.get_text() for t in ax.get_xticklabels()] == list("abcdefghij")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("options, message", [
    (dict(kind="pie"), "`kind` must be one of ['heatmap', 'bar']"),
    (dict(unit="percent"), "`unit` must be one of ['fraction', 'count']"),
    (dict(order="size"), "`order` must be one of ['dominant', 'client']"),
    (dict(class_names=["a"]), "`class_names` has 1 names for 10 classes"),
    (dict(path=None), "give `path`"),
    (dict(max_clients=0), "`max_clients` must be finite and > 0"),
])
def test_plot_label_counts_refuses_unknown_options(labels, tmp_path, options,
                                                   message):
  part = partition.iid(labels, 5, seed=0)
  options = {"path": str(tmp_path / "x.png"), **options}
  with pytest.raises(ValueError, match=re.escape(message)):
    partition.plots.plot_label_counts(part, labels, **options)
  assert not os.listdir(tmp_path)


def test_bars_name_natural_clients_and_scale_many_classes():
  labels = np.arange(3000) % 30
  groups = partition.natural(labels, np.arange(3000) % 6, group_size=2)
  ax = partition.plots.new_figure().subplots()
  partition.plots.plot_label_counts(groups, labels, kind="bar",
                                    order="client", ax=ax)
  assert [t.get_text() for t in ax.get_xticklabels()] == [
      "0+1", "2+3", "4+5"]
  # 30 classes: no legend of 30 entries, a colour bar of class ids instead.
  assert ax.get_legend() is None
  assert [a.get_ylabel() for a in ax.figure.axes[1:]] == ["class id"]

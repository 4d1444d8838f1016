"""Plots are written and stay readable for 10,000 clients."""

import os

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

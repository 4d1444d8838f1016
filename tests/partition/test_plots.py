"""Plots are written, stay readable for 10,000 clients, and leave the host's
matplotlib as it was."""

import os
import subprocess
import sys

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

"""Regenerates the paper-results report from the committed run directories.

  .venv/bin/python experiments/report.py          # rewrite the reports
  .venv/bin/python experiments/report.py --check  # exit 1 if one is stale

1. For every grid config in experiments/configs/ (a flagfile that sets
   --grid_name) with a committed results directory
   experiments/results/<grid_name>/ (made by tools/collect_results.sh),
   `experiments/grid.py --flagfile=<config>
   --root_output_dir=experiments/results --report_only` rewrites its
   results.md and plots (accuracy_curves.png; references.png for a seeded
   grid with references; paired.png for a seeded grid with FedAvg and
   another algorithm; sweep.png for a grid sweeping one numeric flag)
   from the committed cells (a cell not
   committed is listed as not run, or as to do in a seeded grid's progress
   table).
2. Every block of experiments/results/README.md and superseded.md (each
   block on one of them) between the lines
   `<!-- generated:NAME -->` and `<!-- end generated:NAME -->` is rewritten
   from the committed files (the runs under experiments/results/, the cells
   parked in experiments/unfinished/) by `tff_niid.reports.readme.blocks`;
   the prose around them is kept.
3. The plots drawn across grids (`readme.CROSS_GRID_PLOTS`: FedProx's μ
   beside FedAvg and the paper grid's μ, niid_bench_fedprox_mu/mu.png) are
   redrawn from the committed cells.

A grid made by an earlier version of a config keeps its committed report
(experiments/results/niid_bench/ came from the niid_bench.cfg that now writes
niid_bench_paper/); its README blocks read its cells and the grid_flags.txt it
ran with.

--check regenerates into a temporary copy of experiments/ and exits 1, naming
the stale files, if README.md or a results.md would change or a plot is
missing (plots are not compared byte for byte). Nothing here imports
TensorFlow.
"""

from concurrent import futures
import os
import shutil
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

from tff_niid import checkout
from tff_niid.reports import readme
from tff_niid.reports import tree

_CHECK = flags.DEFINE_bool(
    "check", False, "Write nothing; exit 1 if the committed README.md or a "
    "results.md is not what this command would write.")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GRID = os.path.join("experiments", "grid.py")


def _write_grid_reports(root):
  """Runs grid.py --report_only from `root` for every grid config."""
  def report(config):
    return subprocess.run(
        [sys.executable, _GRID, f"--flagfile={config}",
         f"--root_output_dir={tree.RESULTS}", "--report_only"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False)
  configs = tree.grid_configs(root)
  with futures.ThreadPoolExecutor(len(configs)) as pool:
    runs = list(pool.map(report, [config for config, _ in configs]))
  for (_, grid), run in zip(configs, runs):
    if run.returncode:
      sys.exit(f"{' '.join(run.args)} failed:\n{run.stdout}")
    logs = os.path.join(root, tree.RESULTS, grid, "logs")
    if not os.listdir(logs):  # grid.py makes it even when it runs nothing
      os.rmdir(logs)


def _regenerate(root):
  """Rewrites the grid reports and README blocks under `root`."""
  _write_grid_reports(root)
  try:
    readme.rewrite(root)
    readme.write_plots(root)
  except ValueError as e:  # committed files that do not fit together
    sys.exit(f"ERROR: {e}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _CHECK.value:
    _regenerate(_REPO)
    print(f"rewrote {', '.join(tree.PAGES)} and the reports of "
          f"{', '.join(grid for _, grid in tree.grid_configs(_REPO))}")
    return
  with tempfile.TemporaryDirectory() as copy:
    for directory in (tree.CONFIGS, tree.RESULTS, tree.UNFINISHED):
      if os.path.isdir(os.path.join(_REPO, directory)):
        shutil.copytree(os.path.join(_REPO, directory),
                        os.path.join(copy, directory))
    shutil.copy(os.path.join(_REPO, _GRID), os.path.join(copy, _GRID))
    _regenerate(copy)
    stale = readme.stale(copy, _REPO)
  for diff in stale.values():
    print("\n".join(diff[:40]))
  if stale:
    sys.exit(f"stale (run .venv/bin/python experiments/report.py): "
             f"{', '.join(stale)}")
  print(f"{', '.join(tree.PAGES)} and the grid reports are up to date")


if __name__ == "__main__":
  checkout.require_own_checkout(__file__)
  app.run(main)

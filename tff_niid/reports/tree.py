"""The committed results tree that experiments/report.py reads: its paths,
the cells of a grid config, and the formatting its tables share.

Every function takes `root`, the repository (or a copy of its experiments/
tree, as `report.py --check` makes), and reads only committed files:
experiments/configs/, experiments/results/ and experiments/unfinished/.
Nothing here imports TensorFlow.
"""

import os
from typing import Callable, Optional

from absl import logging

from tff_niid import grids
from tff_niid import results


CONFIGS = os.path.join("experiments", "configs")

RESULTS = os.path.join("experiments", "results")

UNFINISHED = os.path.join("experiments", "unfinished")

README = os.path.join(RESULTS, "README.md")

# Runs the report no longer leans on, kept with their tables (and the
# README's section numbers) so that what they showed can still be checked.
SUPERSEDED = os.path.join(RESULTS, "superseded.md")

# The pages whose generated blocks experiments/report.py fills.
PAGES = (README, SUPERSEDED)


def points(difference: Optional[float]) -> str:
  return "—" if difference is None else results.signed(100 * difference)


def minus(a: Optional[float], b: Optional[float]) -> Optional[float]:
  return None if a is None or b is None else a - b


def final(run: results.Run) -> Optional[float]:
  accuracies = results.accuracy_curve(run["metrics"])[1]
  return accuracies[-1] if accuracies else None


def best(run: results.Run) -> str:
  """'acc (round)' of the first round with the highest test accuracy."""
  rounds, accuracies = results.accuracy_curve(run["metrics"])
  if not rounds:
    return "—"
  best = max(accuracies)
  return f"{results.percent(best)} ({rounds[accuracies.index(best)]})"


def fall(run: results.Run) -> str:
  fall, at = results.largest_drop(run["metrics"])
  return "none" if at is None else f"{100 * fall:.2f} ({at})"


def falls_over(run: results.Run, points: float) -> str:
  """The rounds after which test accuracy fell by more than `points`."""
  rounds = [str(at) for _, at in results.drops(run["metrics"], points / 100)]
  return ", ".join(rounds) or "none"


def grid_configs(root: str) -> list[tuple[str, str]]:
  """[(config path relative to root, grid name)] of the grid configs with a
  results directory."""
  configs = []
  for name in sorted(os.listdir(os.path.join(root, CONFIGS))):
    path = os.path.join(CONFIGS, name)
    if not name.endswith(".cfg"):
      continue
    grid = grids.read_flagfile(os.path.join(root, path),
                                 root).get("grid_name")
    if grid and os.path.isdir(os.path.join(root, RESULTS, grid[-1])):
      configs.append((path, grid[-1]))
  return configs


def config_cells(root: str, config_name: str
                 ) -> tuple[dict[str, list[str]], list[results.Cell]]:
  """(config flags, every cell of its grid under experiments/results): of the
  partitions the config's own --only_partitions keeps, if it sets one."""
  config = grids.read_flagfile(os.path.join(root, CONFIGS, config_name),
                                 root)
  grid_dir = os.path.join(root, RESULTS, config["grid_name"][-1])
  kept = {name for name, _ in grids.grid_partitions(
      config["partition"], grids.flag_list(config, "only_partitions"))}
  cells = grids.grid_cells(grid_dir, config)
  # A command-line --only_partitions replaces the config's own: cells of
  # other partitions may have run into this grid, under other flags.
  stray = [os.path.basename(c["run_dir"]) for c in cells
           if c["partition"] not in kept and c["run"]["metrics"]]
  if stray:
    logging.warning("%s does not run %s; not reported", config_name,
                    ", ".join(stray))
  return config, [c for c in cells if c["partition"] in kept]


def timing(root: str) -> str:
  """Seconds per round of every committed run, per results directory."""
  rows = []
  results_dir = os.path.join(root, RESULTS)
  for grid in sorted(os.listdir(results_dir)):
    grid_dir = os.path.join(results_dir, grid)
    if not os.path.isdir(grid_dir):
      continue
    cell_dirs = [os.path.join(grid_dir, name)
                 for name in sorted(os.listdir(grid_dir))]
    times = results.round_times([results.read_run(cell_dir)
                                 for cell_dir in cell_dirs
                                 if os.path.isdir(cell_dir)])
    if times:
      rows.append([f"[{grid}/]({grid}/)", str(times["runs"]),
                   str(times["rounds"]), f"{times['median']:.1f}",
                   f"{times['p10']:.1f}–{times['p90']:.1f}",
                   f"{times['hours']:.1f}"])
  return results.table(["directory", "runs", "rounds", "median s/round",
                        "10th–90th percentile s/round", "hours, all rounds"],
                       rows)


def parked(root: str, grid: str, cell: str) -> Optional[str]:
  """"<cell> (round r of R)" of a cell parked in experiments/unfinished/
  (tools/park_unfinished.sh), or None."""
  parked = os.path.join(root, UNFINISHED, grid, cell)
  if not os.path.isdir(parked):
    return None
  rounds = grids.read_flagfile(os.path.join(parked, "hparams.txt"),
                                 root).get("rounds")
  reached = max((int(row["round"]) for row in results.read_metrics(parked)),
                default=0)
  horizon = f" of {rounds[-1]}" if rounds else ""
  return f"{cell} (round {reached}{horizon})"


def grid_link(root: str, grid: str) -> str:
  """A markdown link to a grid's committed directory, or its name and
  "(none finished)" when no cell of it is committed yet."""
  if os.path.isdir(os.path.join(root, RESULTS, grid)):
    return f"[{grid}/]({grid}/)"
  return f"{grid}/ (none finished)"


def grid_report(grid: str) -> Callable[[str], str]:
  """The body of a grid's results.md (no title or command line), headings
  two levels down."""
  def block(root):
    with open(os.path.join(root, RESULTS, grid, "results.md")) as f:
      lines = f.read().splitlines()
    return "\n".join("##" + line if line.startswith("#") else line
                     for line in lines
                     if not line.startswith(("# ", "Written by `")))
  return block


def command_output(directory: str) -> Callable[[str], str]:
  """A builder of `directory`/output.txt (a command's stdout, each run
  headed by a "$ command   # at commit" line) without the command lines."""
  def build(root):
    with open(os.path.join(root, RESULTS, directory, "output.txt")) as f:
      lines = f.read().strip().splitlines()
    # Without the command lines, and one blank line between paragraphs.
    kept = [line for line in lines if not line.startswith("$ ")]
    return "\n".join(line for i, line in enumerate(kept)
                     if line or (i and kept[i - 1]))
  return build


def pivot(values, rows, columns, corner, fmt):
  """A table of fmt(values.get((row, column)))."""
  return results.table([corner] + list(columns),
                       [[row] + [fmt(values.get((row, column)))
                                 for column in columns] for row in rows])

"""Reading runs back: metrics, summary tables and accuracy curves.

No TensorFlow here: reports and grids read results without loading TFF. A run
is an experiment directory written by `training.train` (`metrics.csv`,
`summary.json`, `hparams.txt`). A grid (see `experiments/grid.py`) is a
directory of runs named `<dataset>_<partition>_<algorithm>`.
"""

import csv
import json
import math
import os
import textwrap

METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"


def read_metrics(output_dir):
  """The rows of `metrics.csv` as a list of {column: float}."""
  path = os.path.join(output_dir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_run(output_dir):
  """{'metrics': rows of metrics.csv, 'summary': summary.json or None}."""
  summary_path = os.path.join(output_dir, SUMMARY_FILE)
  summary = None
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
  return {"metrics": read_metrics(output_dir), "summary": summary}


def accuracy_curve(rows):
  """(rounds, test accuracies) of the evaluated rounds."""
  evaluated = [r for r in rows
               if not math.isnan(r.get("test_accuracy", math.nan))]
  return ([int(r["round"]) for r in evaluated],
          [r["test_accuracy"] for r in evaluated])


def _percent(value):
  return "—" if value is None else f"{100 * value:.1f}"


def markdown_table(cells, references=None, reference_rounds=None):
  """A markdown table with one row per cell.

  Args:
    cells: list of dicts with keys dataset, partition, algorithm and run (a
      `read_run` result; runs without metrics are shown as not run).
    references: optional {(dataset, partition, algorithm): accuracy in [0, 1]}
      shown next to the measured final accuracy with the difference.
    reference_rounds: optional {(dataset, partition, algorithm): rounds} to
      the target accuracy, shown next to the measured rounds to target.
  """
  references = references or {}
  reference_rounds = reference_rounds or {}
  header = ["dataset", "partition", "algorithm", "rounds", "final acc %",
            "best acc %"]
  if references:
    header += ["reference %", "final − ref"]
  with_target = any((c["run"]["summary"] or {}).get("target_accuracy")
                    is not None for c in cells)
  if with_target:
    header.append("rounds to target")
  if reference_rounds:
    header.append("reference rounds")
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < 3 else "---:"
                          for i in range(len(header))) + "|"]
  for cell in cells:
    summary = cell["run"]["summary"] or {}
    rounds, accuracies = accuracy_curve(cell["run"]["metrics"])
    final = accuracies[-1] if accuracies else None
    key = (cell["dataset"], cell["partition"], cell["algorithm"])
    row = [cell["dataset"], cell["partition"], cell["algorithm"],
           str(rounds[-1]) if rounds else "not run", _percent(final),
           _percent(max(accuracies) if accuracies else None)]
    if references:
      ref = references.get(key)
      row.append(_percent(ref))
      row.append("—" if ref is None or final is None
                 else f"{100 * (final - ref):+.1f}")
    if with_target:
      target = summary.get("target_accuracy")
      reached = summary.get("rounds_to_target")
      row.append("—" if target is None else
                 f"{reached} (to {_percent(target)})" if reached is not None
                 else f"not reached (to {_percent(target)})")
    if reference_rounds:
      ref = reference_rounds.get(key)
      row.append("—" if ref is None else f"{ref:g}")
    lines.append("| " + " | ".join(row) + " |")
  return "\n".join(lines)


def plot_curves(cells, path, title=None):
  """Test accuracy vs round: one panel per (dataset, partition), one line per
  algorithm. Writes a PNG to `path`."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  panels = {}
  for cell in cells:
    panels.setdefault((cell["dataset"], cell["partition"]), []).append(cell)
  columns = min(4, len(panels)) or 1
  rows = math.ceil(len(panels) / columns) or 1
  fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows),
                           squeeze=False, sharey=True)
  # One colour per algorithm across panels, one legend entry each.
  algorithms = list(dict.fromkeys(cell["algorithm"] for cell in cells))
  legend = {}
  for ax, ((dataset, partition), members) in zip(axes.flat, panels.items()):
    for cell in members:
      rounds, accuracies = accuracy_curve(cell["run"]["metrics"])
      if rounds:
        (line,) = ax.plot(rounds, [100 * a for a in accuracies],
                          color=f"C{algorithms.index(cell['algorithm']) % 10}",
                          marker="." if len(rounds) < 30 else None)
        legend.setdefault(cell["algorithm"], line)
    ax.set_title(f"{dataset} · {partition}", fontsize=9)
    ax.set_xlabel("round")
    ax.grid(alpha=0.3)
  for ax in axes[:, 0]:
    ax.set_ylabel("test accuracy %")
  for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
  if legend:
    handles, labels = list(legend.values()), list(legend)
    if rows * columns > len(panels):  # an empty slot holds the legend
      fig.legend(handles, labels, loc="lower right", fontsize=8)
    else:
      axes.flat[len(panels) - 1].legend(handles, labels, loc="best",
                                        fontsize=8)
  if title:
    # About 12 characters of a 10 pt title per inch of figure width.
    fig.suptitle(textwrap.fill(title, int(12 * fig.get_figwidth())),
                 fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)

"""Plots of runs and grids: accuracy curves, references, sweeps, settings.

The pictures `experiments/grid.py` writes beside a grid's results.md (and
the report's across grids, `tff_niid.reports.readme.CROSS_GRID_PLOTS`), drawn
from what `tff_niid.results` reads back (no TensorFlow). matplotlib is
imported when a plot is drawn; figures are drawn outside pyplot.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any, Mapping, Optional, Sequence

from tff_niid import results
from tff_niid.partition import plots as partition_plots


def _subplots(rows: int, columns: int, *, figsize: tuple[float, float],
              **options: Any) -> tuple[Any, Any]:
  """A figure and its rows x columns array of axes, drawn outside pyplot
  (`partition.plots.new_figure`)."""
  fig = partition_plots.new_figure(figsize=figsize)
  return fig, fig.subplots(rows, columns, squeeze=False, **options)


def _save_figure(fig: Any, path: str, title: Optional[str]) -> None:
  """Titles (wrapped to the width), lays out and writes a PNG."""
  if title:
    # About 12 characters of a 10 pt title per inch of figure width.
    fig.suptitle(textwrap.fill(title, int(12 * fig.get_figwidth())),
                 fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def _shared_legend(axes: Sequence[Any], **options: Any) -> None:
  """One legend on the first of `axes` with each label of any of them once
  (panels holding different series)."""
  legend: dict[str, Any] = {}
  for ax in axes:
    for handle, label in zip(*ax.get_legend_handles_labels()):
      legend.setdefault(label, handle)
  axes[0].legend(list(legend.values()), list(legend), **options)


def plot_curves(cells: Sequence[results.Cell], path: str,
                title: Optional[str] = None) -> None:
  """Test accuracy vs round: one panel per (dataset, partition), one colour
  per algorithm, one line style per seed (when cells have seeds), a cross
  at the round a run diverged at, and a grey dotted line at a cell's target
  accuracy, if its run had one. Writes a PNG to `path`."""
  from matplotlib import lines  # pylint: disable=g-import-not-at-top
  panels: dict[tuple[str, str], list[results.Cell]] = {}
  for cell in cells:
    panels.setdefault((cell["dataset"], cell["partition"]), []).append(cell)
  columns = min(4, len(panels)) or 1
  rows = math.ceil(len(panels) / columns) or 1
  fig, axes = _subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows),
                        sharey=True)
  # One colour per algorithm and one style per seed across panels, one legend
  # entry each.
  algorithms = list(dict.fromkeys(cell["algorithm"] for cell in cells))
  seeds = sorted({cell["seed"] for cell in cells
                  if cell.get("seed") is not None})
  styles: list[Any] = ["-", "--", ":", "-."]  # matplotlib line styles
  legend: dict[str, Any] = {}
  for ax, ((dataset, partition), members) in zip(axes.flat, panels.items()):
    targets = {float(target) for cell in members
               if (target := (cell["run"]["summary"] or {}).get(
                   "target_accuracy")) is not None}
    for target in sorted(targets):
      ax.axhline(100 * target, color="0.5", linestyle=":", linewidth=0.8)
    for cell in members:
      rounds, accuracies = results.accuracy_curve(cell["run"]["metrics"])
      colour = f"C{algorithms.index(cell['algorithm']) % 10}"
      if rounds:
        seed = cell.get("seed")
        style = "-" if seed is None else styles[seeds.index(seed) % 4]
        (line,) = ax.plot(rounds, [100 * a for a in accuracies],
                          color=colour, linestyle=style,
                          marker="." if len(rounds) < 30 else None)
        legend.setdefault(cell["algorithm"], line)
      stop = results.diverged_round(cell["run"])
      if stop is not None:  # at its last accuracy, or at 0 without one
        ax.plot([stop], [100 * accuracies[-1] if accuracies else 0.0],
                color=colour, marker="x", markersize=8, linestyle="none")
        legend.setdefault("diverged (×: its round)", lines.Line2D(
            [], [], color="0.3", marker="x", linestyle="none"))
    ax.set_title(f"{dataset} · {partition}", fontsize=9)
    ax.set_xlabel("round")
    ax.grid(alpha=0.3)
  if len(seeds) > 1:
    for seed in seeds:
      legend[f"seed {seed}"] = lines.Line2D(
          [], [], color="0.3", linestyle=styles[seeds.index(seed) % 4])
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
  _save_figure(fig, path, title)


def plot_references(cells: Sequence[results.Cell],
                    references: Sequence[results.Reference],
                    path: str, title: Optional[str] = None,
                    last: int = results.LAST_ROUNDS) -> None:
  """Ours against published references, one panel per (dataset, algorithm):
  per partition, our final and best round (mean ± sample std over finished
  seeds, filled markers) beside each reference's value (hollow markers, in
  the colour of the statistic it reports). Writes a PNG to `path`; panels
  without any value are left out."""
  groups: dict[results.CellKey, list[results.Run]] = {}
  for cell in cells:
    groups.setdefault((cell["dataset"], cell["partition"], cell["algorithm"]),
                      []).append(cell["run"])
  ours = {key: stats for key, runs in groups.items()
          if (stats := results.seed_summary(runs, last)) is not None}
  colours = {"final": "C0", "best": "C1"}
  # (label, statistic, marker or None for ours, {key: (mean %, std % or
  # None)}) per series; each reference has a marker of its own.
  series: list[tuple[str, str, Optional[str],
                    dict[results.CellKey, results.MeanStd]]] = [
      (f"ours, {statistic} (seeds: n)", statistic, None,
       {key: (100 * stats[statistic][0], None if stats[statistic][1] is None
              else 100 * stats[statistic][1])
        for key, stats in ours.items()})
      for statistic in ("final", "best")]
  series += [(f"{r.name} (vs our {r.statistic})", r.statistic, marker,
              r.values) for r, marker in zip(references, "s^Dv")]
  partitions = list(dict.fromkeys(key[1] for key in groups))
  with_values = {(d, a) for _, _, _, values in series for d, _, a in values}
  panels = [panel for panel in dict.fromkeys((k[0], k[2]) for k in groups)
            if panel in with_values]
  if not panels:
    return
  fig, axes = _subplots(len(panels), 1, sharey=True,
                        figsize=(max(6.0, 1.1 * len(partitions) + 2),
                                 2.8 * len(panels)))
  width = 0.8 / len(series)
  for ax, (dataset, algorithm) in zip(axes[:, 0], panels):
    for i, (label, statistic, marker, values) in enumerate(series):
      keys = [(x - 0.4 + width * (i + 0.5), (dataset, p, algorithm))
              for x, p in enumerate(partitions)
              if (dataset, p, algorithm) in values]
      if not keys:
        continue
      ax.errorbar([x for x, _ in keys], [values[k][0] for _, k in keys],
                  yerr=[values[k][1] or 0.0 for _, k in keys],
                  fmt=marker or "o", color=colours[statistic],
                  capsize=3, label=label,
                  markerfacecolor=colours[statistic] if marker is None
                  else "white")
      if marker is None:
        for x, key in keys:
          ax.annotate(str(ours[key]["n"]), (x, values[key][0]),
                      textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xticks(range(len(partitions)), partitions)
    ax.set_xlim(-0.5, len(partitions) - 0.5)
    ax.set_title(f"{dataset} · {algorithm}", fontsize=9)
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3, axis="y")
  _shared_legend(axes[:, 0], fontsize=7, loc="lower left")
  _save_figure(fig, path, title)


def plot_sweep(cells: Sequence[results.Cell], path: str,
               title: Optional[str] = None) -> bool:
  """Test error vs the swept value, for a grid sweeping one numeric flag
  (`results.sweep_lines`): one panel per (dataset, partition), one colour
  per variant (and line style per seed), error as 100 − the best evaluated
  accuracy, each point labelled with its first round at the target where
  reached, and the value `results.select_rate` picks ringed once a line is
  complete (`SweepLine.chosen`). Axes are logarithmic where the values
  allow: a panel's x where its values are positive and span a factor of
  10, every panel's (shared) y where no error is 0. Writes a PNG to `path`
  and returns True; False (no file) where the cells sweep several flags or
  values that are not distinct numbers, or none has finished."""
  try:
    lines = results.sweep_lines(cells)
  except ValueError:
    return False
  if not lines:
    return False
  panels: dict[tuple[str, str], list[results.SweepLine]] = {}
  for line in lines:
    panels.setdefault((line.dataset, line.partition), []).append(line)
  columns = min(3, len(panels))
  rows = math.ceil(len(panels) / columns)
  fig, axes = _subplots(rows, columns, figsize=(4.4 * columns, 4.2 * rows),
                        sharey=True)
  variants = list(dict.fromkeys(line.variant for line in lines))
  seeds = sorted({line.seed for line in lines if line.seed is not None})
  styles: list[Any] = ["-", "--", ":", "-."]  # matplotlib line styles
  log_error = all(not b >= 1 for line in lines for b in line.best)  # NaN: no
  for ax, ((dataset, partition), members) in zip(axes.flat, panels.items()):
    for target in sorted({member.target for member in members
                          if member.target is not None and
                          (member.target < 1 or not log_error)}):
      ax.axhline(100 * (1 - target), color="0.5", linestyle=":",
                 linewidth=0.8)
    for line in members:
      colour = f"C{variants.index(line.variant) % 10}"
      errors = [100 * (1 - b) for b in line.best]
      label = (f"{line.variant}, "
               + (f"{line.horizon} rounds" if line.horizon is not None
                  else "mixed horizons")
               + (f", seed {line.seed}" if line.seed is not None else "")
               + (f" ({line.unfinished} unfinished)" if line.unfinished
                  else "")
               + (f" ({', '.join(f'{v:g}' for v in line.diverged)} "
                  "diverged)" if line.diverged else ""))
      ax.plot(line.values, errors, color=colour, marker="o",
              linestyle="-" if line.seed is None
              else styles[seeds.index(line.seed) % 4], label=label)
      for value, error, reached in zip(line.values, errors, line.reached):
        if reached is not None:
          ax.annotate(f"r{reached}", (value, error), textcoords="offset "
                      "points", xytext=(3, 4), fontsize=7, color=colour)
      if line.chosen is not None:
        ax.plot([line.chosen], [errors[line.values.index(line.chosen)]],
                marker="o", markersize=13, markerfacecolor="none",
                markeredgecolor=colour, linestyle="none")
    values = [v for line in members for v in line.values]
    if min(values) > 0 and max(values) >= 10 * min(values):
      ax.set_xscale("log")
    if log_error:
      ax.set_yscale("log")
    ax.set_title(f"{dataset} · {partition}", fontsize=9)
    ax.set_xlabel(members[0].flag)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
  for ax in axes[:, 0]:
    ax.set_ylabel("test error % (100 − best accuracy)")
  for ax in list(axes.flat)[len(panels):]:
    ax.axis("off")
  # The key says only what the panels show, wrapped to the figure's width.
  key = []
  if any(r is not None for line in lines for r in line.reached):
    key.append("rN: first round at the target (dotted line)")
  if any(line.chosen is not None for line in lines):
    key.append("ringed: the value chosen (fewest rounds to the target, else "
               "the best accuracy)")
  if key:
    fig.supxlabel(textwrap.fill("; ".join(key), 70 * columns), fontsize=8)
  _save_figure(fig, path, title)
  return True


def plot_paired(cells: Sequence[results.Cell], path: str,
                title: Optional[str] = None) -> bool:
  """Each algorithm's final test accuracy minus FedAvg's of the same seed
  (`results.paired_with_fedavg`), one panel per dataset: a row per
  partition, a colour per algorithm, a small dot per seed and a bar at their
  mean, a line at 0. Writes a PNG to `path` and returns True; False (no
  file) where the cells hold no FedAvg or no seed finished by FedAvg and
  another algorithm.

  Raises:
    ValueError: a pair evaluated different numbers of rounds.
  """
  if not any(c["algorithm"] == "fedavg" for c in cells):
    return False
  paired = results.paired_with_fedavg(cells)
  if not paired:
    return False
  datasets = list(dict.fromkeys(key[0] for key in paired))
  partitions = list(dict.fromkeys(c["partition"] for c in cells))
  # Each algorithm in the colour plot_curves gives it (its place in the
  # grid's order); FedAvg's own is not drawn here.
  colours = {algorithm: f"C{i % 10}" for i, algorithm in enumerate(
      dict.fromkeys(c["algorithm"] for c in cells))}
  algorithms = [a for a in colours if a != "fedavg"]
  fig, axes = _subplots(1, len(datasets), sharey=True,
                        figsize=(4.2 * len(datasets) + 1,
                                 0.45 * len(partitions) + 1.6))
  height = 0.8 / len(algorithms)
  for ax, dataset in zip(axes[0], datasets):
    ax.axvline(0, color="0.4", linewidth=0.8)
    for i, algorithm in enumerate(algorithms):
      colour = colours[algorithm]
      for row, partition in enumerate(partitions):
        by_seed = paired.get((dataset, partition, algorithm))
        if not by_seed:
          continue
        y = row - 0.4 + height * (i + 0.5)
        finals = [100 * d["final"] for d in by_seed.values()]
        ax.plot(finals, [y] * len(finals), "o", color=colour, markersize=4,
                alpha=0.8, label=algorithm)
        mean = sum(finals) / len(finals)
        ax.plot([mean, mean], [y - height / 2, y + height / 2], "-",
                color=colour, linewidth=2.5)
    ax.set_yticks(range(len(partitions)), partitions)
    ax.set_ylim(len(partitions) - 0.5, -0.5)
    ax.set_title(dataset, fontsize=9)
    ax.set_xlabel("final test accuracy − FedAvg's, same seed (points)")
    ax.grid(alpha=0.3, axis="x")
  _shared_legend(axes[0], fontsize=7, loc="lower left",
                 title="dot: a seed; bar: mean", title_fontsize=7)
  _save_figure(fig, path, title)
  return True


def plot_settings(groups: Mapping[str, Sequence[results.Cell]], path: str, *,
                  xlabel: str, title: Optional[str] = None,
                  caption: Optional[str] = None) -> bool:
  """Test accuracy of one cell's settings side by side (e.g. FedProx's μ,
  with FedAvg as μ 0), seed by seed: `groups` maps a setting's label to its
  cells, in the x order. Two panels, the final round and the mean of the
  last `results.LAST_ROUNDS` evaluated rounds; in each, a line per seed
  through its finished cells (`results.settings_by_seed`; the settings of
  one seed share a partition and initial model), broken where the seed has
  no finished cell, and a bar at each setting's mean over its finished
  seeds, whose number is under the setting's label. `caption` goes under the
  panels. Writes a PNG to `path` and returns True; False (no file) where no
  cell has finished."""
  by_seed = results.settings_by_seed(groups)
  if not by_seed:
    return False
  labels = list(groups)
  fig, axes = _subplots(1, 2, figsize=(2.2 + 2.2 * len(labels), 4.4),
                        sharey=True)
  panels = ("final round", f"mean of last {results.LAST_ROUNDS} rounds")
  ticks = [f"{label}\nn={sum(v[x] is not None for v in by_seed.values())}"
           for x, label in enumerate(labels)]
  for i, (ax, panel) in enumerate(zip(axes[0], panels)):
    for j, (seed, values) in enumerate(by_seed.items()):
      # NaN where the seed has no finished cell: the line breaks there.
      ys = [math.nan if v is None else 100 * v[i] for v in values]
      ax.plot(range(len(labels)), ys, "o-", color=f"C{j}", alpha=0.8,
              markersize=5, linewidth=1, label=f"seed {seed}")
    for x in range(len(labels)):
      at_x = [v[x] for v in by_seed.values()]
      ys = [100 * pair[i] for pair in at_x if pair is not None]
      if ys:
        mean = sum(ys) / len(ys)
        ax.plot([x - 0.25, x + 0.25], [mean, mean], "-", color="black",
                linewidth=2.5, label="mean over the finished seeds (n)")
    ax.set_xticks(range(len(labels)), ticks)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_xlabel(xlabel)
    ax.set_title(panel, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
  axes[0, 0].set_ylabel("test accuracy %")
  _shared_legend(axes[0], fontsize=7, loc="upper right")
  if caption:
    fig.supxlabel(textwrap.fill(caption, 150), fontsize=8)
  _save_figure(fig, path, title)
  return True

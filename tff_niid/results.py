"""Reading runs back: metrics, summary tables, seeds and sweeps.

No TensorFlow here: reports and grids read results without loading TFF. A run
is an experiment directory written by `training.train` (`metrics.csv`,
`summary.json`, `hparams.txt`). A grid (see `experiments/grid.py`) is a
directory of runs named `<dataset>_<partition>_<algorithm>`, laid out as
`tff_niid.grids` reads it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import statistics
from typing import Any, Mapping, Optional, Sequence

from tff_niid.partition import report as partition_report

# A `read_run` result; a grid cell is a dict with dataset, partition,
# algorithm (and seed; in a grid: variant and sweep, see
# `grids.grid_cells`) next to its "run".
Run = dict[str, Any]
Cell = dict[str, Any]
CellKey = tuple[str, str, str]
MeanStd = tuple[float, Optional[float]]
# A progress table's row: (cells done, cells to do, training hours per cell
# or None where none is known).
Progress = tuple[int, int, Optional[float]]

METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"


def read_metrics(output_dir: str) -> list[dict[str, float]]:
  """The rows of `metrics.csv` as a list of {column: float}."""
  path = os.path.join(output_dir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_run(output_dir: str, *, missing_ok: bool = False) -> Run:
  """{'metrics': rows of metrics.csv, 'summary': summary.json or None}.

  A run directory without them (a run not started yet) reads as a run with
  no rounds. A directory that does not exist raises FileNotFoundError (a
  mistyped path would otherwise read as a run not run), unless `missing_ok`
  (the cells of a grid not yet run).
  """
  if not missing_ok and not os.path.isdir(output_dir):
    raise FileNotFoundError(
        f"no run directory {output_dir!r} (pass missing_ok=True to read a "
        "run not started yet as one without rounds)")
  summary_path = os.path.join(output_dir, SUMMARY_FILE)
  summary = None
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
  return {"metrics": read_metrics(output_dir), "summary": summary}


def accuracy_curve(
    rows: Sequence[dict[str, float]]) -> tuple[list[int], list[float]]:
  """(rounds, test accuracies) of the evaluated rounds."""
  evaluated = [r for r in rows
               if not math.isnan(r.get("test_accuracy", math.nan))]
  return ([int(r["round"]) for r in evaluated],
          [r["test_accuracy"] for r in evaluated])


def percent(value: Optional[float]) -> str:
  """An accuracy in [0, 1] as a table's percent with one decimal; "—" for
  none."""
  return "—" if value is None else f"{100 * value:.1f}"


def markdown_table(
    cells: Sequence[Cell],
    references: Optional[dict[CellKey, float]] = None,
    reference_rounds: Optional[dict[CellKey, float]] = None) -> str:
  """A markdown table with one row per cell.

  Args:
    cells: list of dicts with keys dataset, partition, algorithm and run (a
      `read_run` result; runs without metrics are shown as not run, diverged
      ones as "diverged at round r", without accuracies).
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
  rows = []
  for cell in cells:
    summary = cell["run"]["summary"] or {}
    stop = diverged_round(cell["run"])
    # A diverged run's curve stops before its last round: no accuracy of
    # it stands for the run.
    rounds, accuracies = (([], []) if stop is not None else
                          accuracy_curve(cell["run"]["metrics"]))
    final = accuracies[-1] if accuracies else None
    key = (cell["dataset"], cell["partition"], cell["algorithm"])
    row = [cell["dataset"], cell["partition"], cell["algorithm"],
           f"diverged at round {stop}" if stop is not None else
           str(rounds[-1]) if rounds else "not run", percent(final),
           percent(max(accuracies) if accuracies else None)]
    if references:
      ref = references.get(key)
      row.append(percent(ref))
      row.append("—" if ref is None or final is None
                 else signed(100 * (final - ref)))
    if with_target:
      target = summary.get("target_accuracy")
      reached = summary.get("rounds_to_target")
      row.append("—" if target is None else
                 f"{reached} (to {percent(target)})" if reached is not None
                 else f"not reached (to {percent(target)})")
    if reference_rounds:
      ref = reference_rounds.get(key)
      row.append("—" if ref is None else f"{ref:g}")
    rows.append(row)
  return table(header, rows, left=3)


# How `training.train` records a run it stopped on a NaN/inf update:
# summary.json's "stopped" is this followed by the round's number.
DIVERGED = "diverged at round "


def finished(run: Run, rounds: Optional[int] = None) -> bool:
  """Whether a run is complete for `rounds` (None: the rounds it requested):
  its accuracy curve is whole. A diverged run is not finished (`ended`)."""
  summary = run["summary"]
  if summary is None or diverged_round(run) is not None:
    return False
  return (summary["stopped"].startswith("reached target") or
          summary["rounds_run"] >= (rounds or summary["rounds_requested"]))


def diverged_round(run: Run) -> Optional[int]:
  """The round whose update was NaN/inf, for a run stopped there; else
  None."""
  stopped = (run["summary"] or {}).get("stopped", "")
  return int(stopped[len(DIVERGED):]) if stopped.startswith(DIVERGED) else None


def ended(run: Run, rounds: Optional[int] = None) -> bool:
  """Whether training more would not change the run: `finished` for
  `rounds`, or diverged, whatever `rounds` (rerun with the same code on the
  same kind of CPU, it diverges at the same round again: a resumed run
  repeats the uninterrupted one bit for bit). Grids skip ended cells and
  count them done; accuracy statistics take the finished ones."""
  return finished(run, rounds) or diverged_round(run) is not None


def parse_mean_std(text: str) -> MeanStd:
  """"98.9±0.1" (or "98.9+-0.1", or "98.9") -> (98.9, 0.1 or None)."""
  mean, _, std = text.replace("+-", "±").partition("±")
  return float(mean.strip().rstrip("%")), (
      float(std.strip().rstrip("%")) if std.strip() else None)


def mean_std(values: Sequence[float]) -> MeanStd:
  """(mean, sample std or None for one value) of a non-empty list."""
  return (statistics.fmean(values),
          statistics.stdev(values) if len(values) > 1 else None)


def signed(value: float, digits: int = 1) -> str:
  """`value` with its sign to `digits` decimals; one that rounds to zero is
  +0.0, not -0.0 (adding 0.0 turns -0.0 into 0.0; the `z` format option that
  does this needs Python 3.11)."""
  return f"{round(value, digits) + 0.0:+.{digits}f}"


def format_mean_std(mean: Optional[float], std: Optional[float],
                    scale: float = 100) -> str:
  """"m ± s" of scale × each, one decimal; "m" without std; "—" without
  mean."""
  if mean is None:
    return "—"
  return (f"{scale * mean:.1f}" if std is None
          else f"{scale * mean:.1f} ± {scale * std:.1f}")


def _difference(mean: float, std: Optional[float], ref: MeanStd) -> str:
  """"ours − ref" in points, followed in parentheses by that difference over
  sqrt(std² + ref std²) when both sides have a std: ours from two seeds or
  more (std None for one), the reference from several runs (a reference
  without std is one run, whose spread is unknown)."""
  ref_mean, ref_std = ref
  points = signed(mean - ref_mean)
  if std is None or ref_std is None or math.hypot(std, ref_std) == 0:
    return points
  return f"{points} ({signed((mean - ref_mean) / math.hypot(std, ref_std))})"


@dataclasses.dataclass(frozen=True)
class Reference:
  """Published accuracies set beside a seeded grid's cells (`seed_table`).

  Attributes:
    name: its column, e.g. "paper".
    statistic: which accuracy of ours it is compared with: "final" (after the
      last round) or "best" (the best evaluated round), as the source reports.
    values: {(dataset, partition, algorithm): (mean %, std % or None)}; None
      for a single run.
  """
  name: str
  statistic: str
  values: dict[CellKey, MeanStd]

  def __post_init__(self):
    if self.statistic not in ("final", "best"):
      raise ValueError(f"statistic must be 'final' or 'best'; got "
                       f"{self.statistic!r}.")


# The rounds of a seed's "mean of the last rounds" in the seeded tables.
LAST_ROUNDS = 5


def seed_summary(runs: Sequence[Run],
                 last: int = LAST_ROUNDS) -> Optional[dict[str, Any]]:
  """Test accuracy of finished runs over seeds: final, mean of the last
  `last` evaluated rounds, and best evaluated round.

  Returns {"n": seeds, "final": (mean, std), "last": (mean, std), "best":
  (mean, std), "hours": mean training hours}, std None for one seed; None
  when no run is finished.
  """
  finals: list[float] = []
  lasts: list[float] = []
  bests: list[float] = []
  hours: list[float] = []
  for run in runs:
    if not finished(run):
      continue
    _, accuracies = accuracy_curve(run["metrics"])
    finals.append(accuracies[-1])
    lasts.append(statistics.fmean(accuracies[-last:]))
    bests.append(max(accuracies))
    hours.append(run["summary"].get("train_seconds", math.nan) / 3600)
  if not finals:
    return None
  return {"n": len(finals), "final": mean_std(finals),
          "last": mean_std(lasts), "best": mean_std(bests),
          "hours": statistics.fmean(hours)}


def diverged_rounds(runs: Sequence[Run]) -> list[int]:
  """The rounds at which the diverged ones of `runs` stopped, ascending."""
  return sorted(r for run in runs if (r := diverged_round(run)) is not None)


def seed_label(cell: Cell) -> str:
  """A cell's seed as progress tables list it: "1", or "1 (diverged at
  round 7)"."""
  stop = diverged_round(cell["run"])
  return str(cell["seed"]) + ("" if stop is None
                              else f" (diverged at round {stop})")


def seeds_column(finished_seeds: int, diverged: Sequence[int]) -> str:
  """A seeded table's "seeds" cell: the finished seeds, then those diverged
  with their rounds ("2 + 1 diverged (round 17)")."""
  if not diverged:
    return str(finished_seeds)
  rounds = ", ".join(map(str, diverged))
  return (f"{finished_seeds} + {len(diverged)} diverged "
          f"(round{'s' if len(diverged) > 1 else ''} {rounds})")


def settings_by_seed(groups: Mapping[str, Sequence[Cell]],
                     last: int = LAST_ROUNDS
                     ) -> dict[int, list[Optional[tuple[float, float]]]]:
  """Per seed, in the order of `groups` (a setting's label -> its cells),
  (final test accuracy, mean of the last `last` evaluated rounds) of its
  finished cell at each setting, None where it has none; seeds sorted."""
  found: dict[int, dict[str, tuple[float, float]]] = {}
  for label, cells in groups.items():
    for c in cells:
      summary = seed_summary([c["run"]], last)  # None: not finished
      if summary is not None:
        found.setdefault(c["seed"], {})[label] = (summary["final"][0],
                                                  summary["last"][0])
  return {seed: [values.get(label) for label in groups]
          for seed, values in sorted(found.items())}


def paired_with_fedavg(cells: Sequence[Cell], last: int = LAST_ROUNDS
                       ) -> dict[CellKey, dict[int, dict[str, float]]]:
  """Each algorithm of a seeded grid minus FedAvg, seed by seed: {(dataset,
  partition, algorithm): {seed: {"final", "last", "best": difference in test
  accuracy}}} over the seeds where both cells finished ("last": the means of
  the last `last` evaluated rounds), groups in the cells' order, a group
  without such a seed left out.

  Raises:
    ValueError: the cells hold no "fedavg", or a pair evaluated different
      numbers of rounds.
  """
  runs = {(c["dataset"], c["partition"], c["algorithm"], c["seed"]): c["run"]
          for c in cells}
  if not any(c["algorithm"] == "fedavg" for c in cells):
    raise ValueError("no fedavg cells to compare the other algorithms with.")
  seeds = dict.fromkeys(c["seed"] for c in cells)
  paired: dict[CellKey, dict[int, dict[str, float]]] = {}
  for dataset, partition, algorithm in dict.fromkeys(
      (c["dataset"], c["partition"], c["algorithm"]) for c in cells):
    if algorithm == "fedavg":
      continue
    for seed in seeds:
      pair = [run for a in (algorithm, "fedavg")
              if (run := runs.get((dataset, partition, a, seed))) is not None
              and finished(run)]
      if len(pair) < 2:  # one of them not run, or not finished
        continue
      ours, fedavg = (accuracy_curve(run["metrics"])[1] for run in pair)
      if len(ours) != len(fedavg):
        raise ValueError(f"{dataset} {partition} seed {seed}: {algorithm} "
                         f"and fedavg evaluated {len(ours)} and "
                         f"{len(fedavg)} rounds.")
      paired.setdefault((dataset, partition, algorithm), {})[seed] = dict(
          final=ours[-1] - fedavg[-1],
          last=statistics.fmean(ours[-last:]) - statistics.fmean(
              fedavg[-last:]),
          best=max(ours) - max(fedavg))
  return paired


def seed_table(cells: Sequence[Cell], *, references: Sequence[Reference] = (),
               last: int = LAST_ROUNDS) -> tuple[str, str]:
  """Mean ± std over seeds per (dataset, partition, algorithm), beside
  published references.

  Args:
    cells: dicts with dataset, partition, algorithm, seed and run (`read_run`).
    references: each adds its value and a difference column: ours − its
      mean in points, ours being the statistic it reports (final or best
      round), followed in parentheses by the difference in units of the
      combined std sqrt(std_ours² + std_ref²) where both sides have a std.
    last: rounds averaged for the "last rounds" column.

  Returns:
    (markdown table of the groups with an ended cell: statistics over the
    finished seeds, the diverged ones counted and their rounds named in the
    "seeds" column (a diverged run has no final accuracy: it is left out of
    the mean rather than counted at a NaN model's accuracy); markdown
    progress table of all cells, diverged ones done, followed by a line of
    totals: cells done, and the training cell-hours the rest need).
  """
  groups = _groups(cells)
  statistics_shown = ["final", "last"] + (
      ["best"] if any(r.statistic == "best" for r in references) else [])
  titles = {"final": "final acc %", "last": f"mean of last {last} rounds %",
            "best": "best round acc %"}
  header = ["dataset", "partition", "algorithm", "seeds"] + [
      titles[s] for s in statistics_shown]
  for reference in references:
    header += [f"{reference.name} %",
               f"{reference.statistic} − {reference.name}: points (combined "
               "stds)"]
  rows, progress = [], []
  for key, members in groups.items():
    runs = [c["run"] for c in members]
    stats = seed_summary(runs, last)
    diverged = diverged_rounds(runs)
    done: list[str] = []
    to_do: list[str] = []
    for cell in members:
      (done if ended(cell["run"]) else to_do).append(seed_label(cell))
    progress.append(list(key) + [", ".join(done) or "—",
                                 ", ".join(to_do) or "—",
                                 f"{stats['hours']:.2f}" if stats else "—"])
    if not stats and not diverged:
      continue
    row = list(key) + [seeds_column(stats["n"] if stats else 0, diverged)]
    if not stats:  # every ended seed diverged
      rows.append(row + ["—"] * (len(statistics_shown) + 2 * len(references)))
      continue
    row += [format_mean_std(*stats[s]) for s in statistics_shown]
    for reference in references:
      ref = reference.values.get(key)
      mean, std = stats[reference.statistic]
      row += (["—", "—"] if ref is None else [
          format_mean_std(*ref, scale=1),
          _difference(100 * mean, None if std is None else 100 * std, ref)])
    rows.append(row)
  return table(header, rows, left=3), table(
      ["dataset", "partition", "algorithm", "seeds done", "seeds to do",
       "hours per cell"], progress, left=3) + "\n\n" + progress_total(
           group_progress(cells))


def _groups(cells: Sequence[Cell]) -> dict[CellKey, list[Cell]]:
  """`cells` by (dataset, partition, algorithm), in their order."""
  groups: dict[CellKey, list[Cell]] = {}
  for cell in cells:
    key = (cell["dataset"], cell["partition"], cell["algorithm"])
    groups.setdefault(key, []).append(cell)
  return groups


def group_progress(cells: Sequence[Cell]) -> list[Progress]:
  """Per (dataset, partition, algorithm) group of `cells`, as `seed_table`'s
  progress table shows it: its ended cells (finished or diverged), its
  others, and the mean training hours of the finished ones."""
  remaining = []
  for members in _groups(cells).values():
    stats = seed_summary([c["run"] for c in members])
    done = sum(ended(c["run"]) for c in members)
    remaining.append((done, len(members) - done,
                      stats["hours"] if stats else None))
  return remaining


def hours_to_do(remaining: Sequence[Progress]
                ) -> tuple[Optional[float], Optional[float]]:
  """(training hours the cells to do need, the hours per cell assumed where
  a row has none): each cell to do costs its row's hours per cell, or the
  median over the rows that have one. (None, None) when no row has hours;
  (0.0, None) when nothing is to do."""
  if not sum(t for _, t, _ in remaining):
    return 0.0, None
  known = [hours for _, _, hours in remaining
           if hours is not None and math.isfinite(hours)]
  if not known:
    return None, None
  fallback = statistics.median(known)
  return sum(t * (h if h is not None and math.isfinite(h) else fallback)
             for _, t, h in remaining), fallback


def progress_total(remaining: Sequence[Progress]) -> str:
  """A progress table's total line from its rows (`hours_to_do`)."""
  done = sum(d for d, _, _ in remaining)
  to_do = sum(t for _, t, _ in remaining)
  head = f"{done} of {done + to_do} cells done"
  hours, fallback = hours_to_do(remaining)
  if not to_do or hours is None:
    return head + "."
  return (f"{head}; the {to_do} to do need about {hours:.0f} training "
          "cell-hours (each its group's hours per cell above, or their median, "
          f"{fallback:.2f}, where none has finished; contended times).")


@dataclasses.dataclass(frozen=True)
class SweepLine:
  """One variant's finished runs over a swept flag's values, in one
  (dataset, partition) and seed: a line of `result_plots.plot_sweep`.

  Attributes:
    dataset, partition, variant, seed: the cells' (variant: the algorithm
      without the sweep suffix; seed None in a grid without seeds).
    flag: the swept train.py flag.
    values: the finished cells' values, ascending.
    best: per value, the best test accuracy over the evaluated rounds (as
      McMahan et al. 2017 make curves monotone; about the target for a run
      that stopped on reaching it), NaN for a run without any.
    reached: per value, the first evaluated round at `target`, None where
      not reached or without a target.
    horizon: the rounds the finished cells requested; None if they differ.
    target: the accuracy `reached` and `selected` count to, or None.
    unfinished: how many of the line's cells have not ended.
    diverged: the values whose cells diverged, ascending (ended, out of
      `values`, never selected).
    selected: `select_rate`'s value over the finished cells (the best so
      far while some are unfinished).
  """
  dataset: str
  partition: str
  variant: str
  seed: Optional[int]
  flag: str
  values: list[float]
  best: list[float]
  reached: list[Optional[int]]
  horizon: Optional[int]
  target: Optional[float]
  unfinished: int
  diverged: list[float]
  selected: float

  @property
  def chosen(self) -> Optional[float]:
    """`selected` once every cell has ended on one horizon, else None."""
    return (self.selected if not self.unfinished and self.horizon is not None
            else None)


def sweep_lines(cells: Sequence[Cell],
                target: Optional[float] = None) -> list[SweepLine]:
  """The cells of a grid with one numeric --sweep, as `SweepLine`s.

  Args:
    cells: dicts with dataset, partition, variant, sweep ({flag: value}, one
      flag), seed and run (`read_run`), as `grids.grid_cells` and grid.py make
      them.
    target: the accuracy to count rounds to; None: each line's runs' own
      `target_accuracy` (summary.json), if they agree, else none.

  Returns:
    One line per (dataset, partition, variant, seed) in the cells' order,
    for those with a finished cell (none for no cells). Raises ValueError if
    the cells do not sweep exactly one flag, or a line's values are not
    distinct numbers.
  """
  if not cells:
    return []
  flags_swept = {flag for cell in cells for flag in cell["sweep"]}
  if len(flags_swept) != 1 or any(len(c["sweep"]) != 1 for c in cells):
    raise ValueError(f"expected cells sweeping one flag; got "
                     f"{sorted(flags_swept) or 'none'}.")
  (flag,) = flags_swept
  groups: dict[tuple[str, str, str, Optional[int]], list[Cell]] = {}
  for cell in cells:
    groups.setdefault((cell["dataset"], cell["partition"], cell["variant"],
                       cell["seed"]), []).append(cell)
  lines = []
  for (dataset, partition, variant, seed), members in groups.items():
    values = [c["sweep"][flag] for c in members]
    try:
      runs = {float(value): c["run"] for value, c in zip(values, members)}
    except ValueError:
      raise ValueError(f"--sweep={flag}: {values} are not all numbers."
                       ) from None
    if len(runs) < len(members):
      raise ValueError(f"--sweep={flag}: {values} repeat a number.")
    done = {value: run for value, run in sorted(runs.items())
            if finished(run)}
    if not done:
      continue
    targets = {run["summary"].get("target_accuracy") for run in done.values()}
    line_target = (target if target is not None else
                   targets.pop() if len(targets) == 1 else None)
    horizons = {run["summary"]["rounds_requested"] for run in done.values()}
    curves = {value: run["metrics"] for value, run in done.items()}
    lines.append(SweepLine(
        dataset=dataset, partition=partition, variant=variant, seed=seed,
        flag=flag, values=list(done),
        best=[max(accuracy_curve(rows)[1], default=math.nan)
              for rows in curves.values()],
        reached=[None if line_target is None else
                 first_round_at(rows, line_target) for rows in curves.values()],
        horizon=horizons.pop() if len(horizons) == 1 else None,
        target=line_target,
        unfinished=sum(not ended(run) for run in runs.values()),
        diverged=[value for value, run in sorted(runs.items())
                  if diverged_round(run) is not None],
        selected=select_rate(
            curves, math.inf if line_target is None else line_target)))
  return lines


def read_partition_summary(run_dir: str) -> dict[str, float]:
  """{metric: value} of a run's partition_summary.txt (its `name value`
  lines; {} without the file)."""
  path = os.path.join(run_dir, partition_report.SUMMARY_FILE)
  if not os.path.exists(path):
    return {}
  metrics = {}
  with open(path) as f:
    for line in f:
      fields = line.split()
      if len(fields) == 2:
        try:
          metrics[fields[0]] = float(fields[1])
        except ValueError:
          continue
  return metrics


def accuracy_at(rows: Sequence[dict[str, float]],
                round_number: int) -> Optional[float]:
  """Test accuracy after `round_number`, or None if it was not evaluated."""
  return dict(zip(*accuracy_curve(rows))).get(round_number)


def first_round_at(rows: Sequence[dict[str, float]], accuracy: float, *,
                   sustained: int = 1) -> Optional[int]:
  """The first evaluated round with test accuracy >= `accuracy`, or None.

  With `sustained` > 1, the first evaluated round that begins `sustained`
  evaluated rounds in a row at or above `accuracy` (a run that touches the
  level for one round and falls back has not left what lies below it)."""
  rounds, accuracies = accuracy_curve(rows)
  return next((rounds[i] for i in range(len(rounds) - sustained + 1)
               if min(accuracies[i:i + sustained]) >= accuracy), None)


def first_rounds_below(rows: Sequence[dict[str, float]], target: float,
                       points: Sequence[float]) -> list[Optional[int]]:
  """`first_round_at` at `target` minus each of `points` percentage points
  (0 for the target itself); None where the run never gets there."""
  # Rounded, so that a level such as 0.18 is the float an accuracy of 0.18
  # reads as (0.2 - 0.02 is a hair above it).
  return [first_round_at(rows, round(target - p / 100, 6)) for p in points]


def crossing_round(rows: Sequence[dict[str, float]], accuracy: float, *,
                   every: int = 1) -> Optional[float]:
  """Rounds to `accuracy` counted as McMahan et al. 2017 count them (Sec. 3):
  the test-accuracy curve made monotone (best accuracy so far), and the round
  where it crosses `accuracy` interpolated linearly between the evaluated
  rounds on either side. `every` keeps only the rounds that are multiples of
  it, as if the run were evaluated that often. The first kept round when it
  is already at `accuracy` (an upper bound: runs are not evaluated before
  round 1); None if the curve never gets there."""
  if every < 1:
    raise ValueError(f"every must be >= 1; got {every}.")
  previous: Optional[tuple[int, float]] = None
  best = -math.inf
  for r, a in zip(*accuracy_curve(rows)):
    if r % every:
      continue
    best = max(best, a)
    if best >= accuracy:
      if previous is None:
        return float(r)
      r0, a0 = previous
      return r0 + (accuracy - a0) / (best - a0) * (r - r0)
    previous = (r, best)
  return None


def select_rate(curves: dict[float, Sequence[dict[str, float]]],
                target: float) -> float:
  """The learning rate McMahan et al. 2017's tuning would report, from
  {rate: metrics rows} of runs on a common horizon: of the rates whose test
  accuracy reaches `target`, the one in the fewest rounds (first evaluated
  round at it; a tie goes to the smaller rate); if none does, the highest
  best-so-far accuracy (the paper makes curves monotone). ValueError
  without curves."""
  if not curves:
    raise ValueError("no runs to select a rate from.")
  def rank(rate: float) -> tuple[int, float, float]:
    reached = first_round_at(curves[rate], target)
    if reached is not None:
      return (0, reached, rate)
    return (1, -max(accuracy_curve(curves[rate])[1], default=-math.inf),
            rate)
  return min(curves, key=rank)


def drops(rows: Sequence[dict[str, float]],
          larger_than: float = 0.0) -> list[tuple[float, int]]:
  """[(fall, round)] of every fall of test accuracy from one evaluated round
  to the next by more than `larger_than` (round: the lower one), in order."""
  rounds, accuracies = accuracy_curve(rows)
  return [(accuracies[i - 1] - accuracies[i], rounds[i])
          for i in range(1, len(rounds))
          if accuracies[i - 1] - accuracies[i] > larger_than]


def largest_drop(
    rows: Sequence[dict[str, float]]) -> tuple[float, Optional[int]]:
  """(fall, round) of the largest fall of test accuracy from one evaluated
  round to the next (round: the lower one; the first if tied); (0.0, None)
  if it never falls."""
  return max(drops(rows), key=lambda drop: drop[0], default=(0.0, None))


def round_times(runs: Sequence[Run]) -> Optional[dict[str, Any]]:
  """Wall-clock time per round of `runs` (their metrics.csv round_seconds).

  Returns {"runs": runs with a round, "rounds": their rounds, "median",
  "p10", "p90": seconds per round (median; 10th and 90th percentiles, nearest
  rank below), "hours": the sum over all rounds}, or None without rounds.
  """
  seconds = sorted(row["round_seconds"] for run in runs
                   for row in run["metrics"])
  if not seconds:
    return None
  def percentile(q: float) -> float:
    return seconds[min(len(seconds) - 1, int(q * len(seconds)))]
  return {"runs": sum(1 for run in runs if run["metrics"]),
          "rounds": len(seconds), "median": statistics.median(seconds),
          "p10": percentile(0.1), "p90": percentile(0.9),
          "hours": sum(seconds) / 3600}


def table(header: Sequence[str], rows: Sequence[Sequence[str]],
          left: int = 1) -> str:
  """A markdown table of strings: the first `left` columns left-aligned, the
  others right-aligned."""
  return "\n".join(
      ["| " + " | ".join(header) + " |",
       "|" + "|".join("---" if i < left else "---:"
                      for i in range(len(header))) + "|"] +
      ["| " + " | ".join(row) + " |" for row in rows])


def _opened_block(line: str) -> Optional[str]:
  """NAME if `line` is a block's opening marker `<!-- generated:NAME -->`."""
  marker = line.strip()
  if marker.startswith("<!-- generated:") and marker.endswith("-->"):
    return marker[len("<!-- generated:"):-len("-->")].strip()
  return None


def generated_names(text: str) -> list[str]:
  """The names of `text`'s generated blocks (see `fill_generated`), in
  order."""
  return [name for name in map(_opened_block, text.splitlines())
          if name is not None]


def fill_generated(text: str, blocks: dict[str, str]) -> str:
  """`text` with each generated block replaced by blocks[NAME].

  A block is the lines between a line `<!-- generated:NAME -->` and the next
  line `<!-- end generated:NAME -->`; the new content is put between them
  with one blank line on either side. Everything outside the blocks is kept.

  Raises:
    ValueError: a marker without its partner, a block name with no entry in
      `blocks`, or an entry of `blocks` with no block in `text`.
  """
  out = []
  open_name = None
  seen = []
  for line in text.splitlines(keepends=True):
    marker = line.strip()
    if open_name is None:
      out.append(line)
      open_name = _opened_block(line)
      if open_name is not None:
        if open_name not in blocks:
          raise ValueError(f"generated block {open_name!r} is not known; "
                           f"known: {sorted(blocks)}")
        if open_name in seen:
          raise ValueError(f"generated block {open_name!r} appears twice")
        seen.append(open_name)
        out.append("\n" + blocks[open_name].strip("\n") + "\n\n")
      elif marker.startswith("<!-- end generated:"):
        raise ValueError(f"{marker} without its opening marker")
    elif marker == f"<!-- end generated:{open_name} -->":
      out.append(line)
      open_name = None
  if open_name is not None:
    raise ValueError(f"generated block {open_name!r} is not closed")
  missing = sorted(set(blocks) - set(seen))
  if missing:
    raise ValueError(f"no generated block for {missing}")
  return "".join(out)

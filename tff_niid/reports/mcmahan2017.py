"""The results README's blocks on McMahan et al. 2017 (arXiv 1602.05629):
the first runs, the learning-rate selections, the like-for-like rows over
seeds, the paper's rounds-to-target count replayed on our curves, and the
progress of those grids.

Each public function maps `root` (`tree`) to one block's markdown.
"""

import os
from typing import Optional

from tff_niid import grids
from tff_niid import results
from tff_niid.reports import tree


# The 2NN rows of McMahan et al. were run as two train.py runs, into their own
# directory (<partition>/), before the grid had the 2nn_E1_B10 variant.
_SEPARATE_RUNS = {"2nn_E1_B10": "mcmahan2017_2nn_E1_B10"}

_ROUNDS = (1, 10, 20, 30, 40, 60, 100, 200, 500, 900)

_RATIOS = (  # label, numerator (partition, variant), denominator
    ("2NN: pathological / IID", ("shards", "2nn_E1_B10"),
     ("iid", "2nn_E1_B10")),
    ("CNN, IID: E=1 / E=5", ("iid", "cnn_E1_B10"), ("iid", "cnn_E5_B10")),
    ("CNN, IID: FedSGD / FedAvg E=1", ("iid", "cnn_fedsgd"),
     ("iid", "cnn_E1_B10")),
)

# Per McMahan variant: its rate-selection grid, the rate flag it sweeps, and
# the grids running the selected rates over seeds (the one whose cells hold
# a partition runs its row).
_CNN_SEEDS = ("mcmahan2017_cnn.cfg", "mcmahan2017_cnn_shards.cfg")

_SELECTION = {
    "2nn_E1_B10": ("mcmahan2017_lr.cfg", "client_lr",
                   ("mcmahan2017_2nn.cfg",)),
    "cnn_E5_B10": ("mcmahan2017_lr.cfg", "client_lr", _CNN_SEEDS),
    "cnn_E1_B10": ("mcmahan2017_lr.cfg", "client_lr", _CNN_SEEDS),
    "cnn_fedsgd": ("mcmahan2017_fedsgd_lr.cfg", "server_lr",
                   ("mcmahan2017_fedsgd.cfg",)),
}

# Evaluation intervals at which the paper's count is replayed on our curves.
_CROSSING_EVERY = (1, 10, 50, 100)

# Points below a row's target at which `approach` gives each seed's first
# round, up to the target itself.
_BELOW_TARGET = (1.0, 0.5, 0.2, 0.1, 0.0)

# The grids of the McMahan rows run as the paper ran them (sections 1.1-1.3),
# and the 2NN rows again with each layer initialised from its own seed.
LIKE_FOR_LIKE = ("mcmahan2017_lr.cfg", "mcmahan2017_fedsgd_lr.cfg",
                 "mcmahan2017_2nn.cfg", "mcmahan2017_2nn_layer_seeds.cfg",
                 "mcmahan2017_fedsgd.cfg", *_CNN_SEEDS)


def _first_runs(root):
  """(cells of mcmahan2017.cfg with the separate 2NN runs, their targets,
  the paper's rounds to target as quoted in the config)."""
  config, cells = tree.config_cells(root, "mcmahan2017.cfg")
  for cell in cells:
    if cell["algorithm"] in _SEPARATE_RUNS:
      cell["run_dir"] = os.path.join(root, tree.RESULTS,
                                     _SEPARATE_RUNS[cell["algorithm"]],
                                     cell["partition"])
      cell["run"] = results.read_run(cell["run_dir"], missing_ok=True)
  targets = {}
  for item in config["algorithm_flags"]:
    variant, _, flag = item.partition("=")
    name, _, value = flag.partition("=")
    if name == "--target_accuracy":
      targets[variant] = float(value)
  return cells, targets, grids.keyed_values(config["reference_rounds"], int)


def _rounds_to_target(cell, targets):
  """(rounds to the variant's target or None, last evaluated round or None
  if not run)."""
  rounds = results.accuracy_curve(cell["run"]["metrics"])[0]
  if not rounds:
    return None, None
  return (results.first_round_at(cell["run"]["metrics"],
                                 targets[cell["algorithm"]]), rounds[-1])


def rounds(root: str) -> str:
  cells, targets, paper = _first_runs(root)
  rows = []
  for cell in cells:
    reached, run = _rounds_to_target(cell, targets)
    stop = results.diverged_round(cell["run"])
    ours = (f"diverged at round {stop}" if stop is not None else
            "not run" if run is None else
            f"not reached in {run}" if reached is None else str(reached))
    reference = paper.get(("mnist", cell["partition"], cell["algorithm"]))
    rows.append([cell["algorithm"], cell["partition"],
                 results.percent(targets[cell["algorithm"]]),
                 "—" if reference is None else str(reference), ours,
                 "—" if reached is None or reference is None
                 else f"{reached / reference:.2f}",
                 results.percent(tree.final(cell["run"])), tree.best(cell["run"])])
  return results.table(
      ["variant", "partition", "target %", "paper: rounds (quoted)",
       "here: rounds", "here / paper", "final acc %", "best acc % (round)"],
      rows, left=2)


def ratios(root: str) -> str:
  cells, targets, paper = _first_runs(root)
  by_key = {(c["partition"], c["algorithm"]): c for c in cells}
  rows = []
  for label, numerator, denominator in _RATIOS:
    top = paper[("mnist",) + numerator]
    bottom = paper[("mnist",) + denominator]
    reached, run = _rounds_to_target(by_key[numerator], targets)
    below, _ = _rounds_to_target(by_key[denominator], targets)
    stops = [results.diverged_round(by_key[k]["run"])
             for k in (numerator, denominator)]
    if any(stop is not None for stop in stops):
      ours = "a run diverged"
    elif run is None or below is None:
      ours = "not run"
    elif reached is None:
      ours = f"> {run} / {below} = > {run / below:.1f}"
    else:
      ours = f"{reached} / {below} = {reached / below:.1f}"
    rows.append([label, f"{top} / {bottom} = {top / bottom:.1f}", ours])
  return results.table(["rounds to target", "paper (quoted)", "here"], rows)


def curves(root: str) -> str:
  cells, _, _ = _first_runs(root)
  rows = []
  for cell in cells:
    metrics = cell["run"]["metrics"]
    if not metrics:
      continue
    first = results.first_round_at(metrics, 0.97)
    rows.append([cell["algorithm"], cell["partition"]] +
                [results.percent(results.accuracy_at(metrics, r))
                 for r in _ROUNDS] +
                ["—" if first is None else str(first), tree.best(cell["run"]),
                 tree.fall(cell["run"]), tree.falls_over(cell["run"], 5)])
  return results.table(
      ["variant", "partition"] + [f"round {r}" for r in _ROUNDS] +
      ["first round ≥ 97%", "best % (round)",
       "largest fall, points (round)",
       "rounds ending a fall of more than 5 points"], rows, left=2)


def _mean_std_values(values, digits=0):
  """"mean ± std (v1, v2, ...)" of numbers; "not reached (n of m)" if some
  are None."""
  missing = sum(v is None for v in values)
  if missing:
    return f"not reached ({missing} of {len(values)})"
  listed = ", ".join(f"{v:.{digits}f}" for v in values)
  return (f"{results.format_mean_std(*results.mean_std(values), scale=1)} "
          f"({listed})")


def _hours_per_round(runs):
  """Training hours per round over the finished `runs`, or None."""
  done = [r["summary"] for r in runs if results.finished(r)]
  rounds = sum(d["rounds_run"] for d in done)
  return (sum(d.get("train_seconds", 0.0) for d in done) / 3600 / rounds
          if rounds else None)


def _progress_rows(root):
  """Per like-for-like grid, partition and variant: {"grid", "columns": the
  progress table's cells, "progress": `results.Progress`}. Hours per cell:
  the mean training hours of the row's finished cells; where it has none,
  an estimate:
  - in a grid that runs each cell until its target (not a rate selection,
    whose horizon is short; not --nostop_at_target), hours per round times
    the grid's --reference_rounds, the paper's count, where it is below
    --rounds; else --rounds, an upper bound. Hours per round: the variant's
    finished cells in this grid, else in the other grids;
  - else the mean hours of the variant's cells on the grid's other
    partitions; else --rounds at the other grids' hours per round."""
  configs = [tree.config_cells(root, name) for name in LIKE_FOR_LIKE]
  rows = []
  for config, cells in configs:
    grid = config["grid_name"][-1]
    quoted_rounds = grids.keyed_values(config.get("reference_rounds", []),
                                       int)
    # A rate selection's horizon is given on its command line.
    bound = int(config["rounds"][-1]) if "rounds" in config else None
    for variant in config["algorithms"][-1].split(","):
      to_target = (bound is not None and "sweep" not in config and
                   f"{variant}=--nostop_at_target"
                   not in config["algorithm_flags"])
      by_partition: dict[str, list[results.Cell]] = {}
      for cell in cells:
        if cell["variant"] == variant:
          by_partition.setdefault(cell["partition"], []).append(cell)
      here = _hours_per_round([c["run"] for cs in by_partition.values()
                               for c in cs])
      elsewhere = _hours_per_round([
          c["run"] for other, other_cells in configs if other is not config
          for c in other_cells if c["variant"] == variant])
      per_round, basis = (
          (here, "this grid") if here is not None else (elsewhere,
                                                        "the other grids"))
      for partition, members in by_partition.items():
        # seed_summary: the finished runs' mean training hours.
        own = results.seed_summary([c["run"] for c in members])
        others = results.seed_summary([
            c["run"] for p, cs in by_partition.items() if p != partition
            for c in cs])
        quoted = quoted_rounds.get((members[0]["dataset"], partition, variant))
        done = sum(results.ended(c["run"]) for c in members)
        if own:
          mean_hours = own["hours"]
          shown = f"{mean_hours:.2f}"
        elif to_target and per_round is not None:
          per_hour = f"at the variant's hours per round in {basis}"
          if quoted is not None and quoted < bound:
            mean_hours = per_round * quoted
            shown = (f"~{mean_hours:.1f} (the paper's {quoted} rounds, an "
                     f"estimate; ≤ {per_round * bound:.1f} in {bound}; "
                     f"{per_hour})")
          else:
            mean_hours = per_round * bound
            shown = f"≤ {mean_hours:.1f} ({bound} rounds {per_hour})"
        elif others:
          mean_hours = others["hours"]
          shown = f"{mean_hours:.2f} (other partitions')"
        elif elsewhere is not None and bound is not None:
          mean_hours = elsewhere * bound
          shown = (f"≤ {mean_hours:.1f} ({bound} rounds at the variant's "
                   "hours per round in the other grids)")
        else:
          mean_hours, shown = None, "—"
        rows.append(dict(
            grid=grid,
            columns=[tree.grid_link(root, grid), partition, variant,
                     str(done), str(len(members) - done), shown],
            progress=(done, len(members) - done, mean_hours)))
  return rows


def progress(root: str) -> str:
  """Cells done and to do of the like-for-like McMahan grids, per grid,
  partition and variant, with hours per cell (`_progress_rows`); then the
  total (`results.progress_total`)."""
  rows = _progress_rows(root)
  return results.table(
      ["grid", "partition", "variant", "cells done", "cells to do",
       "hours per cell"], [row["columns"] for row in rows],
      left=3) + "\n\n" + results.progress_total(
          [row["progress"] for row in rows])


def grid_progress(root: str) -> dict[str, list[results.Progress]]:
  """{like-for-like grid: its rows of `progress`'s table}."""
  by_grid: dict[str, list[results.Progress]] = {}
  for row in _progress_rows(root):
    by_grid.setdefault(row["grid"], []).append(row["progress"])
  return by_grid


def _selected_rate(cells, rate_flag, target):
  """(selected rate or None, its status) among a row's selection cells,
  sweeping `rate_flag` (`results.SweepLine.chosen` with rounds counted to
  `target`: `results.select_rate`, ties to the smaller rate, once all are
  finished on one horizon); "bracketed" when a lower and a higher rate were
  run."""
  lines = results.sweep_lines(cells, target)
  if not lines:
    return None, f"0 of {len(cells)} rates run"
  if len(lines) > 1 or lines[0].flag != rate_flag:
    raise ValueError(
        f"expected one selection line sweeping --{rate_flag}; got "
        f"{[(line.dataset, line.seed, line.flag) for line in lines]}")
  line = lines[0]
  if line.unfinished:
    return None, (f"{len(line.values) + len(line.diverged)} of {len(cells)} "
                  f"rates run; best so far {line.selected:g}")
  if line.chosen is None:
    return None, "not selected: the rates ran different horizons"
  # A diverged rate was tried too: a choice below it is not at the edge.
  tried = sorted(line.values + line.diverged)
  edge = line.chosen in (tried[0], tried[-1])
  diverged = (f"; {', '.join(f'{v:g}' for v in line.diverged)} diverged"
              if line.diverged else "")
  return line.chosen, (f"{line.chosen:g} "
                       f"({'at the grid edge' if edge else 'bracketed'}"
                       f"{diverged})")


def _run_rate(config, variant, rate_flag):
  """The rate a grid config runs `variant` at: the last value of its
  --algorithm_flags for it wins, as in absl (a config's own over those of
  the config it nests)."""
  flag = f"{variant}=--{rate_flag}="
  values = [f[len(flag):] for f in config["algorithm_flags"]
            if f.startswith(flag)]
  if not values:
    raise ValueError(
        f"{config['grid_name'][-1]}: no --algorithm_flags={flag}...")
  return float(values[-1])


_LIKE_FOR_LIKE_COLUMNS = (
    "variant", "partition", "target %",
    "paper: rounds (quoted; 2NN Table 1, CNN and FedSGD Table 2)",
    "selected rate", "runs over seeds",
    "first round at target: mean ± std (per seed)",
    "paper's count on our evaluated rounds",
    "here (paper's count) / paper: mean ± std over seeds")


def _like_for_like_rows(root):
  """Per row of the paper's tables: {"columns": the like-for-like table's
  cells, "ratio": the paper's count on our curves over the paper's, (mean,
  sample std or None) over the finished seeds, None unless each reached the target (none
  diverged), "complete": every seed of the row ended (finished or
  diverged), "target", "seeds": [(seed, metrics)] of the finished seeds}."""
  cells, targets, paper = _first_runs(root)
  configs = {name: tree.config_cells(root, name) for name in
             {n for selection, _, seeds_configs in _SELECTION.values()
              for n in (selection, *seeds_configs)}}
  rows = []
  for cell in cells:
    variant, partition = cell["algorithm"], cell["partition"]
    target = targets[variant]
    reference = paper[("mnist", partition, variant)]
    selection_config, rate_flag, seeds_configs = _SELECTION[variant]
    rate, status = _selected_rate(
        [c for c in configs[selection_config][1]
         if c["partition"] == partition and c["variant"] == variant],
        rate_flag, target)
    runs, first, crossing, ratio = "not configured yet", "—", "—", None
    complete, seeds = False, []
    # The grid that runs this row.
    holding = [(configs[name][0], row_cells) for name in seeds_configs
               if (row_cells := [c for c in configs[name][1]
                                 if c["partition"] == partition and
                                 c["variant"] == variant])]
    if len(holding) > 1:
      raise ValueError(f"{variant} on {partition}: run by more than one of "
                       f"{seeds_configs}")
    if holding:
      config, row_cells = holding[0]
      run_rate = _run_rate(config, variant, rate_flag)
      seeds = [(c["seed"], c["run"]["metrics"]) for c in row_cells
               if results.finished(c["run"])]
      metrics = [m for _, m in seeds]
      diverged = results.diverged_rounds([c["run"] for c in row_cells])
      done = len(metrics) + len(diverged)
      runs = (f"rate {run_rate:g}: {done} of {len(row_cells)} seeds done" +
              (f", {results.seeds_column(len(metrics), diverged)}"
               if diverged else ""))
      if rate is None:
        runs += " (its selection is unfinished)"
      elif run_rate != rate:
        runs += f" (not the selected {rate:g})"
      if metrics:
        counts = [results.first_round_at(m, target) for m in metrics]
        first = _mean_std_values(counts)
        crossing = _crossing_rounds(metrics, target, 1)
        # Like for like: the paper's count on our curves over the paper's.
        crossings = [results.crossing_round(m, target) for m in metrics]
        reached = [c for c in crossings if c is not None]
        # A diverged seed never reaches the target: no ratio, as for one
        # that ran out of rounds.
        if len(reached) == len(crossings) and not diverged:
          ratio = results.mean_std([c / reference for c in reached])
      complete = done == len(row_cells)
    rows.append(dict(
        variant=variant, partition=partition, ratio=ratio, complete=complete,
        target=target, seeds=seeds,
        columns=[variant, partition, results.percent(target), str(reference),
                 status, runs, first, crossing,
                 "—" if ratio is None else _ratio_text(*ratio)]))
  return rows


def like_for_like(root: str) -> str:
  """Per row of the paper's tables: its rate selection's state, and the
  selected rate's runs over seeds (first round at the target, as ours
  counts, and the paper's count on the evaluated rounds: every 5th for
  FedSGD)."""
  return results.table(list(_LIKE_FOR_LIKE_COLUMNS),
                       [row["columns"] for row in _like_for_like_rows(root)],
                       left=2)


def approach(root: str) -> str:
  """Per like-for-like row and finished seed, the first evaluated round at
  the target and at a few levels just below it (`_BELOW_TARGET`): where a
  curve flattens near the target, the count to it depends on the last
  stretch of the climb."""
  rows = []
  for row in _like_for_like_rows(root):
    for seed, metrics in row["seeds"]:
      firsts = results.first_rounds_below(metrics, row["target"],
                                          _BELOW_TARGET)
      rows.append([row["variant"], row["partition"], results.percent(
          row["target"]), str(seed)] + ["—" if first is None else str(first)
                                        for first in firsts])
  return results.table(
      ["variant", "partition", "target %", "seed"] +
      [f"first round ≥ target − {points:g} point{'' if points == 1 else 's'}"
       if points else "first round ≥ target" for points in _BELOW_TARGET],
      rows, left=2)


def _ratio_text(mean: float, std: Optional[float]) -> str:
  """A ratio over seeds, "mean ± std" to 2 decimals (the mean alone for one
  seed)."""
  return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def headline(root: str) -> list[str]:
  """The at-a-glance row of the like-for-like rows: [rows with every seed
  finished, the ratio of each, the other rows]."""
  rows = _like_for_like_rows(root)
  done = [r for r in rows if r["complete"] and r["ratio"] is not None]
  running = [f"{r['variant']} {r['partition']}" for r in rows
             if r not in done]
  return [f"{len(done)} of {len(rows)} rows",
          "; ".join(f"{r['variant']} {r['partition']} "
                    f"{_ratio_text(*r['ratio'])}"
                    for r in done) or "—",
          ", ".join(running) or "—"]


def _crossing_rounds(metrics, target, every):
  """The paper's count over seeds (`_mean_std_values`), unless a seed's curve
  is already at `target` at its first round kept at this interval: that count
  is only an upper bound, "≤ round" per such seed, and no mean is taken."""
  counts = [results.crossing_round(m, target, every=every) for m in metrics]
  first_kept = [next((r for r in results.accuracy_curve(m)[0]
                      if r % every == 0), None) for m in metrics]
  censored = [c is not None and c == f for c, f in zip(counts, first_kept)]
  if not any(censored):
    return _mean_std_values(counts, digits=1)
  return ", ".join(
      f"≤ {f}" if bound else "not reached" if c is None else f"{c:.1f}"
      for c, f, bound in zip(counts, first_kept, censored)) + (
          f" (≤: at {100 * target:g}% when first kept)")


# The 2NN grids at the selected rate, by how their kernels were seeded.
_TWONN_GRIDS = (
    ("mcmahan2017_2nn.cfg", "one seed, every layer"),
    ("mcmahan2017_2nn_layer_seeds.cfg", "each layer its own seed"),
)


def twonn_seeds(root: str) -> str:
  """Rounds to 97% of the 2NN rows over seeds, for each initialisation's
  grid (`_TWONN_GRIDS`): our first round at the target and the paper's
  count (monotone curve, interpolated crossing) replayed at several
  evaluation intervals (upper bounds where the first kept round is already
  at the target), beside the paper's two tables."""
  _, targets, table1 = _first_runs(root)
  target = targets["2nn_E1_B10"]
  rows = []
  for config_name, seeding in _TWONN_GRIDS:
    config, cells = tree.config_cells(root, config_name)
    # Its --reference_rounds: Table 1's (from mcmahan2017.cfg), then
    # Table 4's.
    table4 = grids.keyed_values(config["reference_rounds"], int)
    for partition in dict.fromkeys(c["partition"] for c in cells):
      key = ("mnist", partition, "2nn_E1_B10")
      metrics = [c["run"]["metrics"] for c in cells
                 if c["partition"] == partition and results.finished(c["run"])]
      counts = ([_mean_std_values([results.first_round_at(m, target)
                                   for m in metrics])] +
                [_crossing_rounds(metrics, target, e) for e in _CROSSING_EVERY]
                if metrics else ["—"] * (1 + len(_CROSSING_EVERY)))
      diverged = results.diverged_rounds([
          c["run"] for c in cells if c["partition"] == partition])
      rows.append([partition, seeding,
                   results.seeds_column(len(metrics), diverged)] + counts +
                  [str(table1[key]), str(table4[key])])
  return results.table(
      ["partition", "kernels drawn from", "seeds done",
       "first round ≥ 97%: mean ± std (per seed)"] +
      ["paper's count, evaluated every " +
       ("round" if every == 1 else f"{every} rounds")
       for every in _CROSSING_EVERY] +
      ["paper, Table 1 (quoted)", "paper, Table 4 (quoted)"], rows, left=2)

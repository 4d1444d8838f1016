"""Regenerates the paper-results report from the committed run directories.

  .venv/bin/python experiments/report.py          # rewrite the reports
  .venv/bin/python experiments/report.py --check  # exit 1 if one is stale

1. For every grid config in experiments/configs/ (a flagfile that sets
   --grid_name) with a committed results directory
   experiments/results/<grid_name>/ (made by tools/collect_results.sh),
   `experiments/grid.py --flagfile=<config>
   --root_output_dir=experiments/results --report_only` rewrites its
   results.md and plots (accuracy_curves.png; references.png for a seeded
   grid with references; sweep.png for a grid sweeping one numeric flag)
   from the committed cells (a cell not
   committed is listed as not run, or as to do in a seeded grid's progress
   table).
2. Every block of experiments/results/README.md between the lines
   `<!-- generated:NAME -->` and `<!-- end generated:NAME -->` is rewritten
   from the committed files `_blocks` names (the runs under
   experiments/results/, the cells parked in experiments/unfinished/); the
   prose around them is kept.

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
import csv
import difflib
import os
import shutil
import subprocess
import sys
import tempfile

from absl import app
from absl import flags

from tff_niid import results

_CHECK = flags.DEFINE_bool(
    "check", False, "Write nothing; exit 1 if the committed README.md or a "
    "results.md is not what this command would write.")

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIGS = os.path.join("experiments", "configs")
_RESULTS = os.path.join("experiments", "results")
_GRID = os.path.join("experiments", "grid.py")
_UNFINISHED = os.path.join("experiments", "unfinished")
_README = os.path.join(_RESULTS, "README.md")
_TEXT_OUTPUTS = ("README.md", "results.md")
_PLOTS = ("accuracy_curves.png", "references.png", "sweep.png")

# The 2NN rows of McMahan et al. were run as two train.py runs, into their own
# directory (<partition>/), before the grid had the 2nn_E1_B10 variant.
_SEPARATE_RUNS = {"2nn_E1_B10": "mcmahan2017_2nn_E1_B10"}
_MCMAHAN_ROUNDS = (1, 10, 20, 30, 40, 60, 100, 200, 500, 900)
_MCMAHAN_RATIOS = (  # label, numerator (partition, variant), denominator
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
_MCMAHAN_SELECTION = {
    "2nn_E1_B10": ("mcmahan2017_lr.cfg", "client_lr",
                   ("mcmahan2017_2nn.cfg",)),
    "cnn_E5_B10": ("mcmahan2017_lr.cfg", "client_lr", _CNN_SEEDS),
    "cnn_E1_B10": ("mcmahan2017_lr.cfg", "client_lr", _CNN_SEEDS),
    "cnn_fedsgd": ("mcmahan2017_fedsgd_lr.cfg", "server_lr",
                   ("mcmahan2017_fedsgd.cfg",)),
}
# Evaluation intervals at which the paper's count is replayed on our curves.
_CROSSING_EVERY = (1, 10, 50, 100)
_NIID_BENCH_ROUNDS = 50  # NIID-Bench's protocol, that of its references
# The grids of the McMahan rows run as the paper ran them (section 1.1-1.3).
_MCMAHAN_LIKE_FOR_LIKE = ("mcmahan2017_lr.cfg", "mcmahan2017_fedsgd_lr.cfg",
                          "mcmahan2017_2nn.cfg", "mcmahan2017_fedsgd.cfg",
                          *_CNN_SEEDS)
# The grids of issue 12's reproductions, in the order the report shows them.
_REPRODUCTIONS = (*_MCMAHAN_LIKE_FOR_LIKE, "niid_bench.cfg",
                  "niid_bench_per_epoch.cfg")
# The algorithms of the superseded 10-round NIID-Bench grid: its
# grid_flags.txt records only its last invocation's --algorithms=fedprox.
_NIID_BENCH_ALGORITHMS = "fedavg,fedprox,fedavgm"
# The FedProx cell run with TFF's build_weighted_fed_prox (its sign error).
_TFF_FEDPROX = ("niid_bench_tff_fedprox", "mnist_c2_fedprox")


def _percent(accuracy):
  return "—" if accuracy is None else f"{100 * accuracy:.1f}"


def _points(difference):
  return "—" if difference is None else f"{100 * difference:+.1f}"


def _minus(a, b):
  return None if a is None or b is None else a - b


def _final(run):
  accuracies = results.accuracy_curve(run["metrics"])[1]
  return accuracies[-1] if accuracies else None


def _best(run):
  """'acc (round)' of the first round with the highest test accuracy."""
  rounds, accuracies = results.accuracy_curve(run["metrics"])
  if not rounds:
    return "—"
  best = max(accuracies)
  return f"{_percent(best)} ({rounds[accuracies.index(best)]})"


def _fall(run):
  fall, at = results.largest_drop(run["metrics"])
  return "none" if at is None else f"{100 * fall:.2f} ({at})"


def _falls_over(run, points):
  """The rounds after which test accuracy fell by more than `points`."""
  rounds = [str(at) for _, at in results.drops(run["metrics"], points / 100)]
  return ", ".join(rounds) or "none"


def _grid_configs(root):
  """[(config path relative to root, grid name)] of the grid configs with a
  results directory."""
  configs = []
  for name in sorted(os.listdir(os.path.join(root, _CONFIGS))):
    path = os.path.join(_CONFIGS, name)
    if not name.endswith(".cfg"):
      continue
    grid = results.read_flagfile(os.path.join(root, path),
                                 root).get("grid_name")
    if grid and os.path.isdir(os.path.join(root, _RESULTS, grid[-1])):
      configs.append((path, grid[-1]))
  return configs


def _write_grid_reports(root):
  """Runs grid.py --report_only from `root` for every grid config."""
  def report(config):
    return subprocess.run(
        [sys.executable, _GRID, f"--flagfile={config}",
         f"--root_output_dir={_RESULTS}", "--report_only"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False)
  configs = _grid_configs(root)
  with futures.ThreadPoolExecutor(len(configs)) as pool:
    runs = list(pool.map(report, [config for config, _ in configs]))
  for (_, grid), run in zip(configs, runs):
    if run.returncode:
      sys.exit(f"{' '.join(run.args)} failed:\n{run.stdout}")
    logs = os.path.join(root, _RESULTS, grid, "logs")
    if not os.listdir(logs):  # grid.py makes it even when it runs nothing
      os.rmdir(logs)


def _config_cells(root, config_name):
  """(config flags, every cell of its grid under experiments/results): of the
  partitions the config's own --only_partitions keeps, if it sets one."""
  config = results.read_flagfile(os.path.join(root, _CONFIGS, config_name),
                                 root)
  grid_dir = os.path.join(root, _RESULTS, config["grid_name"][-1])
  kept = {name for name, _ in results.grid_partitions(
      config["partition"], results.flag_list(config, "only_partitions"))}
  cells = results.grid_cells(grid_dir, config)
  # A command-line --only_partitions replaces the config's own: cells of
  # other partitions may have run into this grid, under other flags.
  stray = [os.path.basename(c["run_dir"]) for c in cells
           if c["partition"] not in kept and c["run"]["metrics"]]
  if stray:
    print(f"warning: {config_name} does not run {', '.join(stray)}; "
          "not reported", file=sys.stderr)
  return config, [c for c in cells if c["partition"] in kept]


def _timing(root):
  """Seconds per round of every committed run, per results directory."""
  rows = []
  results_dir = os.path.join(root, _RESULTS)
  for grid in sorted(os.listdir(results_dir)):
    grid_dir = os.path.join(results_dir, grid)
    if not os.path.isdir(grid_dir):
      continue
    times = results.round_times(
        [results.read_run(os.path.join(grid_dir, cell))
         for cell in sorted(os.listdir(grid_dir))])
    if times:
      rows.append([f"[{grid}/]({grid}/)", str(times["runs"]),
                   str(times["rounds"]), f"{times['median']:.1f}",
                   f"{times['p10']:.1f}–{times['p90']:.1f}",
                   f"{times['hours']:.1f}"])
  return results.table(["directory", "runs", "rounds", "median s/round",
                        "10th–90th percentile s/round", "hours, all rounds"],
                       rows)


def _mcmahan(root):
  """(cells of mcmahan2017.cfg with the separate 2NN runs, their targets,
  the paper's rounds to target as quoted in the config)."""
  config, cells = _config_cells(root, "mcmahan2017.cfg")
  for cell in cells:
    if cell["algorithm"] in _SEPARATE_RUNS:
      cell["run_dir"] = os.path.join(root, _RESULTS,
                                     _SEPARATE_RUNS[cell["algorithm"]],
                                     cell["partition"])
      cell["run"] = results.read_run(cell["run_dir"])
  targets = {}
  for item in config["algorithm_flags"]:
    variant, _, flag = item.partition("=")
    name, _, value = flag.partition("=")
    if name == "--target_accuracy":
      targets[variant] = float(value)
  return cells, targets, results.keyed_values(config["reference_rounds"], int)


def _rounds_to_target(cell, targets):
  """(rounds to the variant's target or None, last evaluated round or None
  if not run)."""
  rounds = results.accuracy_curve(cell["run"]["metrics"])[0]
  if not rounds:
    return None, None
  return (results.first_round_at(cell["run"]["metrics"],
                                 targets[cell["algorithm"]]), rounds[-1])


def _mcmahan_rounds(root):
  cells, targets, paper = _mcmahan(root)
  rows = []
  for cell in cells:
    reached, run = _rounds_to_target(cell, targets)
    ours = ("not run" if run is None else
            f"not reached in {run}" if reached is None else str(reached))
    reference = paper.get(("mnist", cell["partition"], cell["algorithm"]))
    rows.append([cell["algorithm"], cell["partition"],
                 _percent(targets[cell["algorithm"]]),
                 "—" if reference is None else str(reference), ours,
                 "—" if reached is None or reference is None
                 else f"{reached / reference:.2f}",
                 _percent(_final(cell["run"])), _best(cell["run"])])
  return results.table(
      ["variant", "partition", "target %", "paper: rounds (quoted)",
       "here: rounds", "here / paper", "final acc %", "best acc % (round)"],
      rows, left=2)


def _mcmahan_ratios(root):
  cells, targets, paper = _mcmahan(root)
  by_key = {(c["partition"], c["algorithm"]): c for c in cells}
  rows = []
  for label, numerator, denominator in _MCMAHAN_RATIOS:
    top = paper[("mnist",) + numerator]
    bottom = paper[("mnist",) + denominator]
    reached, run = _rounds_to_target(by_key[numerator], targets)
    below, _ = _rounds_to_target(by_key[denominator], targets)
    if run is None or below is None:
      ours = "not run"
    elif reached is None:
      ours = f"> {run} / {below} = > {run / below:.1f}"
    else:
      ours = f"{reached} / {below} = {reached / below:.1f}"
    rows.append([label, f"{top} / {bottom} = {top / bottom:.1f}", ours])
  return results.table(["rounds to target", "paper (quoted)", "here"], rows)


def _mcmahan_curves(root):
  cells, _, _ = _mcmahan(root)
  rows = []
  for cell in cells:
    metrics = cell["run"]["metrics"]
    if not metrics:
      continue
    first = results.first_round_at(metrics, 0.97)
    rows.append([cell["algorithm"], cell["partition"]] +
                [_percent(results.accuracy_at(metrics, r))
                 for r in _MCMAHAN_ROUNDS] +
                ["—" if first is None else str(first), _best(cell["run"]),
                 _fall(cell["run"]), _falls_over(cell["run"], 5)])
  return results.table(
      ["variant", "partition"] + [f"round {r}" for r in _MCMAHAN_ROUNDS] +
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


def _mcmahan_progress(root):
  """Cells done and to do of the like-for-like McMahan grids, per grid,
  partition and variant, with the mean training hours of the finished ones.
  Where a row has none, an estimate:
  - in a grid that runs each cell until its target (not a rate selection,
    whose horizon is short; not --nostop_at_target), hours per round times
    the grid's --reference_rounds, the paper's count, where it is below
    --rounds; else --rounds, an upper bound. Hours per round: the variant's
    finished cells in this grid, else in the other grids;
  - else the mean hours of the variant's cells on the grid's other
    partitions; else --rounds at the other grids' hours per round.
  Then the total (`results.progress_total`)."""
  grids = [_config_cells(root, name) for name in _MCMAHAN_LIKE_FOR_LIKE]
  rows, remaining = [], []
  for config, cells in grids:
    grid = config["grid_name"][-1]
    quoted_rounds = results.keyed_values(config.get("reference_rounds", []),
                                         int)
    # A rate selection's horizon is given on its command line.
    bound = int(config["rounds"][-1]) if "rounds" in config else None
    for variant in config["algorithms"][-1].split(","):
      to_target = (bound is not None and "sweep" not in config and
                   f"{variant}=--nostop_at_target"
                   not in config["algorithm_flags"])
      by_partition = {}
      for cell in cells:
        if cell["variant"] == variant:
          by_partition.setdefault(cell["partition"], []).append(cell)
      here = _hours_per_round([c["run"] for cs in by_partition.values()
                               for c in cs])
      elsewhere = _hours_per_round([
          c["run"] for other, other_cells in grids if other is not config
          for c in other_cells if c["variant"] == variant])
      per_round, basis = (
          (here, "this grid") if here is not None else (elsewhere,
                                                        "the other grids"))
      for partition, members in by_partition.items():
        # seed_summary: the finished runs' count and mean training hours.
        own = results.seed_summary([c["run"] for c in members])
        others = results.seed_summary([
            c["run"] for p, cs in by_partition.items() if p != partition
            for c in cs])
        quoted = quoted_rounds.get((members[0]["dataset"], partition, variant))
        done = own["n"] if own else 0
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
        link = (f"[{grid}/]({grid}/)"
                if os.path.isdir(os.path.join(root, _RESULTS, grid))
                else f"{grid}/ (none finished)")
        rows.append([link, partition, variant, str(done),
                     str(len(members) - done), shown])
        remaining.append((done, len(members) - done, mean_hours))
  return results.table(
      ["grid", "partition", "variant", "cells done", "cells to do",
       "hours per cell"], rows, left=3) + "\n\n" + results.progress_total(
           remaining)


def _parked(root, grid, cell):
  """"<cell> (round r of R)" of a cell parked in experiments/unfinished/
  (tools/park_unfinished.sh), or None."""
  parked = os.path.join(root, _UNFINISHED, grid, cell)
  if not os.path.isdir(parked):
    return None
  rounds = results.read_flagfile(os.path.join(parked, "hparams.txt"),
                                 root).get("rounds")
  reached = max((int(row["round"]) for row in results.read_metrics(parked)),
                default=0)
  horizon = f" of {rounds[-1]}" if rounds else ""
  return f"{cell} (round {reached}{horizon})"


def _reproduction_progress(root):
  """Per reproduction grid: its cells done and to do (from its config and
  the committed cells), and those of its unfinished cells that are parked
  in experiments/unfinished/ with the round they reached."""
  rows = []
  for name in _REPRODUCTIONS:
    config, cells = _config_cells(root, name)
    grid = config["grid_name"][-1]
    done = sum(results.finished(c["run"]) for c in cells)
    parked = [p for p in (_parked(root, grid, os.path.basename(c["run_dir"]))
                          for c in cells if not results.finished(c["run"]))
              if p]
    link = (f"[{grid}/]({grid}/)"
            if os.path.isdir(os.path.join(root, _RESULTS, grid))
            else f"{grid}/ (none finished)")
    rows.append([link, f"`configs/{name}`", "; ".join(parked) or "—",
                 str(done), str(len(cells) - done)])
  return results.table(["grid", "config", "parked, unfinished (round reached)",
                        "cells done", "cells to do"], rows, left=3)


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
    sys.exit(f"expected one selection line sweeping --{rate_flag}; got "
             f"{[(line.dataset, line.seed, line.flag) for line in lines]}")
  line = lines[0]
  if line.unfinished:
    return None, (f"{len(line.values)} of {len(cells)} rates run; best so "
                  f"far {line.selected:g}")
  if line.chosen is None:
    return None, "not selected: the rates ran different horizons"
  edge = line.chosen in (line.values[0], line.values[-1])
  return line.chosen, (f"{line.chosen:g} "
                       f"({'at the grid edge' if edge else 'bracketed'})")


def _run_rate(config, variant, rate_flag):
  """The rate a grid config runs `variant` at: the last value of its
  --algorithm_flags for it wins, as in absl (a config's own over those of
  the config it nests)."""
  flag = f"{variant}=--{rate_flag}="
  values = [f[len(flag):] for f in config["algorithm_flags"]
            if f.startswith(flag)]
  if not values:
    sys.exit(f"{config['grid_name'][-1]}: no --algorithm_flags={flag}...")
  return float(values[-1])


def _mcmahan_like_for_like(root):
  """Per row of the paper's tables: its rate selection's state, and the
  selected rate's runs over seeds (first round at the target, as ours
  counts, and the paper's count on the evaluated rounds: every 5th for
  FedSGD)."""
  cells, targets, paper = _mcmahan(root)
  grids = {name: _config_cells(root, name) for name in
           {n for selection, _, seeds_configs in _MCMAHAN_SELECTION.values()
            for n in (selection, *seeds_configs)}}
  rows = []
  for cell in cells:
    variant, partition = cell["algorithm"], cell["partition"]
    target = targets[variant]
    reference = paper[("mnist", partition, variant)]
    selection_config, rate_flag, seeds_configs = _MCMAHAN_SELECTION[variant]
    rate, status = _selected_rate(
        [c for c in grids[selection_config][1]
         if c["partition"] == partition and c["variant"] == variant],
        rate_flag, target)
    runs, first, crossing, ratio = "not configured yet", "—", "—", "—"
    # The grid that runs this row.
    holding = [(grids[name][0], row_cells) for name in seeds_configs
               if (row_cells := [c for c in grids[name][1]
                                 if c["partition"] == partition and
                                 c["variant"] == variant])]
    if len(holding) > 1:
      sys.exit(f"{variant} on {partition}: run by more than one of "
               f"{seeds_configs}")
    if holding:
      config, row_cells = holding[0]
      run_rate = _run_rate(config, variant, rate_flag)
      metrics = [c["run"]["metrics"] for c in row_cells
                 if results.finished(c["run"])]
      runs = (f"rate {run_rate:g}: {len(metrics)} of {len(row_cells)} seeds "
              "done")
      if rate is None:
        runs += " (its selection is unfinished)"
      elif run_rate != rate:
        runs += f" (not the selected {rate:g})"
      if metrics:
        counts = [results.first_round_at(m, target) for m in metrics]
        first = _mean_std_values(counts)
        crossing = _crossing_rounds(metrics, target, 1)
        if None not in counts:
          ratio = f"{sum(counts) / len(counts) / reference:.2f}"
    rows.append([variant, partition, _percent(target), str(reference), status,
                 runs, first, crossing, ratio])
  return results.table(
      ["variant", "partition", "target %",
       "paper: rounds (quoted; 2NN Table 1, CNN and FedSGD Table 2)",
       "selected rate", "runs over seeds",
       "first round at target: mean ± std (per seed)",
       "paper's count on our evaluated rounds",
       "here (first round, mean) / paper"], rows, left=2)


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


def _mcmahan_2nn_seeds(root):
  """Rounds to 97% of the 2NN rows over seeds: our first round at the target
  and the paper's count (monotone curve, interpolated crossing) replayed at
  several evaluation intervals (upper bounds where the first kept round is
  already at the target), beside the paper's two tables."""
  config, cells = _config_cells(root, "mcmahan2017_2nn.cfg")
  # Its --reference_rounds: Table 1's (from mcmahan2017.cfg), then Table 4's.
  table4 = results.keyed_values(config["reference_rounds"], int)
  _, targets, table1 = _mcmahan(root)
  target = targets["2nn_E1_B10"]
  rows = []
  for partition in dict.fromkeys(c["partition"] for c in cells):
    key = ("mnist", partition, "2nn_E1_B10")
    metrics = [c["run"]["metrics"] for c in cells
               if c["partition"] == partition and results.finished(c["run"])]
    counts = ([_mean_std_values([results.first_round_at(m, target)
                                 for m in metrics])] +
              [_crossing_rounds(metrics, target, e) for e in _CROSSING_EVERY]
              if metrics else ["—"] * (1 + len(_CROSSING_EVERY)))
    rows.append([partition, str(len(metrics))] + counts +
                [str(table1[key]), str(table4[key])])
  return results.table(
      ["partition", "seeds done", "first round ≥ 97%: mean ± std (per seed)"] +
      ["paper's count, evaluated every " +
       ("round" if every == 1 else f"{every} rounds")
       for every in _CROSSING_EVERY] +
      ["paper, Table 1 (quoted)", "paper, Table 4 (quoted)"], rows, left=1)


def _niid_bench(root):
  """(cells run, FedAvg references) of the superseded 10-round grid."""
  grid_dir = os.path.join(root, _RESULTS, "niid_bench")
  grid_flags = results.read_flagfile(os.path.join(grid_dir, "grid_flags.txt"))
  grid_flags["algorithms"] = [_NIID_BENCH_ALGORITHMS]
  cells = [c for c in results.grid_cells(grid_dir, grid_flags)
           if c["run"]["metrics"]]
  return cells, results.keyed_values(grid_flags["reference"],
                                     lambda v: float(v) / 100)


def _niid_bench_table(root):
  """The superseded grid's table; the 50-round references only beside the
  cells that ran 50 rounds."""
  cells, references = _niid_bench(root)
  full = {(c["dataset"], c["partition"], c["algorithm"]) for c in cells
          if len(c["run"]["metrics"]) >= _NIID_BENCH_ROUNDS}
  return results.markdown_table(
      cells, {k: v for k, v in references.items() if k in full})


def _niid_bench_curves(root):
  cells, _ = _niid_bench(root)
  tff = dict(dataset="mnist", partition="c2",
             algorithm="fedprox, TFF's builder",
             run=results.read_run(os.path.join(root, _RESULTS, *_TFF_FEDPROX)))
  fedavg_10 = {(c["dataset"], c["partition"]):
               results.accuracy_at(c["run"]["metrics"], 10)
               for c in cells if c["algorithm"] == "fedavg"}
  rows = []
  for cell in cells + [tff]:
    rounds, accuracies = results.accuracy_curve(cell["run"]["metrics"])
    at = dict(zip(rounds, accuracies))
    later = [a for r, a in at.items() if r > 10]
    last = [at[r] for r in range(41, 51) if r in at]
    rows.append([cell["dataset"], cell["partition"], cell["algorithm"],
                 str(rounds[-1])] +
                [_percent(at.get(r)) for r in (1, 3, 10)] +
                [_points(_minus(at.get(10), fedavg_10.get(
                    (cell["dataset"], cell["partition"])))),
                 _percent(at.get(50)), _best(cell["run"]),
                 _percent(min(later) if later else None), _fall(cell["run"]),
                 _percent(sum(last) / len(last) if len(last) == 10 else None)])
  return results.table(
      ["dataset", "partition", "algorithm", "rounds", "round 1", "round 3",
       "round 10", "round 10 − FedAvg's", "round 50", "best % (round)",
       "lowest after round 10", "largest fall, points (round)",
       "mean of rounds 41–50"], rows, left=3)


def _grid_report(grid):
  """The body of a grid's results.md (no title or command line), headings
  two levels down."""
  def block(root):
    with open(os.path.join(root, _RESULTS, grid, "results.md")) as f:
      lines = f.read().splitlines()
    return "\n".join("##" + line if line.startswith("#") else line
                     for line in lines
                     if not line.startswith(("# ", "Written by `")))
  return block


def _check_torch_run(run_dir, run, train, expected):
  """Raises ValueError unless the PyTorch run in `run_dir` ran the grid's
  cell: the train flagfile's settings (`train`) and `expected` flags."""
  if run["summary"] is None:
    return
  ran = {k: v[-1] for k, v in results.read_flagfile(
      os.path.join(run_dir, "hparams.txt")).items()}
  expected = dict(expected, **{k: train[k][-1] for k in (
      "num_clients", "rounds", "local_epochs", "batch_size", "client_lr",
      "client_momentum", "client_weight_decay")})
  for name, value in expected.items():
    same = (ran.get(name) == value if name in ("dataset", "partition_spec")
            else ran.get(name) is not None and
            float(ran[name]) == float(value))
    if not same:
      raise ValueError(f"{run_dir}: --{name}={ran.get(name)}, but the grid's "
                       f"cell has {value}")


def _niid_bench_torch(root):
  """MNIST #C=1 FedAvg: our TFF cells (niid_bench_paper; and with
  NIID-Bench's per-epoch batching, niid_bench_per_epoch) beside NIID-Bench's
  loop in PyTorch (experiments/niid_bench_torch.py, niid_bench_torch/), per
  seed and as mean ± std of the finished seeds, and Flower's multi-run best."""
  config, cells = _config_cells(root, "niid_bench.cfg")
  tff_runs = {c["seed"]: c["run"] for c in cells
              if (c["dataset"], c["partition"], c["algorithm"]) ==
              ("mnist", "c1", "fedavg")}
  torch_dir = os.path.join(root, _RESULTS, "niid_bench_torch")
  torch_runs = {seed: results.read_run(
      os.path.join(torch_dir, f"mnist_c1_s{seed}")) for seed in tff_runs}
  train = results.read_flagfile(
      os.path.join(root, config["train_flagfile"][-1]), root)
  c1_spec = next(spec for name, _, spec in (
      p.partition("=") for p in config["partition"]) if name == "c1")
  for seed, run in torch_runs.items():
    _check_torch_run(os.path.join(torch_dir, f"mnist_c1_s{seed}"), run, train,
                     dict(dataset="mnist", partition_spec=c1_spec,
                          seed=str(seed)))
  per_epoch_runs = {c["seed"]: c["run"] for c in _config_cells(
      root, "niid_bench_per_epoch.cfg")[1]}
  rows = []
  for name, runs in (
      ("TFF (tff_niid), streamed batches, `niid_bench_paper/`", tff_runs),
      ("TFF, NIID-Bench's per-epoch batches, `niid_bench_per_epoch/`",
       per_epoch_runs),
      ("PyTorch (NIID-Bench's loop), `niid_bench_torch/`", torch_runs)):
    done = {seed: run for seed, run in runs.items() if results.finished(run)}
    per_seed = []
    for seed, run in done.items():
      _, accuracies = results.accuracy_curve(run["metrics"])
      above = results.first_round_at(run["metrics"], 0.2)
      per_seed.append(f"s{seed}: {100 * accuracies[-1]:.1f} / "
                      f"{100 * max(accuracies):.1f} / "
                      f"{above if above is not None else 'never'}")
    stats = results.seed_summary(list(done.values()))
    rows.append([name, str(len(done))] + (
        [results.format_mean_std(*stats["final"]),
         results.format_mean_std(*stats["best"])] if stats else ["—", "—"]) +
                ["; ".join(per_seed) or "—"])
  flower = dict(results.keyed_values(config["reference_best"],
                                     results.parse_mean_std))
  mean, std = flower[("mnist", "c1", "fedavg")]
  rows.append(["Flower's re-run (quoted, `--reference_best`)",
               "runs: not stated", "—",
               results.format_mean_std(mean, std, scale=1), "—"])
  return results.table(
      ["implementation", "seeds finished", "final acc %", "best round acc %",
       "per seed: final % / best % / first round ≥ 20%"], rows, left=1)


def _torch_versions(root):
  """Round 1 of MNIST #C=1 seed 0 in PyTorch: the committed 50-round run
  (niid_bench_torch/) beside a one-round run of the same command under
  another PyTorch (niid_bench_torch_versions/), with whether the two give
  the same test accuracy and loss (as metrics.csv holds them)."""
  runs = [os.path.join(root, _RESULTS, grid, "mnist_c1_s0")
          for grid in ("niid_bench_torch", "niid_bench_torch_versions")]
  ran = [{k: v for k, v in results.read_flagfile(
      os.path.join(run_dir, "hparams.txt")).items() if k != "rounds"}
         for run_dir in runs]
  if ran[0] != ran[1]:
    raise ValueError(f"{runs[1]} ran other flags than {runs[0]}: {ran}")
  rows, firsts = [], []
  for run_dir in runs:
    run = results.read_run(run_dir)
    first = run["metrics"][0]
    firsts.append((first["test_accuracy"], first["test_loss"]))
    rows.append([run["summary"]["framework"],
                 f"`{os.path.relpath(run_dir, os.path.join(root, _RESULTS))}/`",
                 str(run["summary"]["rounds_run"]),
                 repr(first["test_accuracy"]), repr(first["test_loss"])])
  same = "the same" if firsts[0] == firsts[1] else "not the same"
  return (results.table(["PyTorch", "run", "rounds run",
                         "round 1 test accuracy", "round 1 test loss"], rows,
                        left=2)
          + f"\n\nRound 1's test accuracy and loss are {same} under both.")


def _niid_bench_batching(root):
  """Local steps per round of each NIID-Bench partition, ours against
  NIID-Bench's per-epoch batching (batching_steps/steps.csv), after checking
  that its partitions are the committed cells' (smallest and largest
  client against their partition_summary.txt)."""
  path = os.path.join(root, _RESULTS, "batching_steps", "steps.csv")
  rerun = "rerun experiments/batching_steps.py (its docstring)"
  if not os.path.exists(path):
    sys.exit(f"{path} is missing: {rerun}.")
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  setups = {(r["local_epochs"], r["batch_size"], r["clients"]) for r in rows}
  if len(setups) != 1:
    sys.exit(f"{path}: expected one (E, B, clients) setup, got {setups}: "
             f"{rerun}.")
  by_key = {(r["dataset"], r["partition"], int(r["seed"])): r for r in rows}
  _, cells = _config_cells(root, "niid_bench.cfg")
  checked = 0
  for cell in cells:
    summary = results.read_partition_summary(cell["run_dir"])
    if not summary:
      continue
    row = by_key.get((cell["dataset"], cell["partition"], cell["seed"]))
    if row is None or (int(row["size_min"]), int(row["size_max"])) != (
        summary["size_min"], summary["size_max"]):
      sys.exit(f"{path} does not match {cell['run_dir']}'s partition: "
               f"{rerun}.")
    checked += 1
  groups = {}
  for row in rows:
    groups.setdefault((row["dataset"], row["partition"]), []).append(row)
  table_rows = []
  for (dataset, partition), members in groups.items():
    smallest = min(members, key=lambda r: float(r["smallest_step_ratio"]))
    total = int(smallest["samples"])
    table_rows.append([
        dataset, partition, ", ".join(r["seed"] for r in members),
        ", ".join(f"{r['steps_ours']} / {r['steps_niid_bench']}"
                  for r in members),
        f"{100 * min(float(r['weighted_step_ratio']) for r in members):.1f}",
        f"{100 * float(smallest['smallest_step_ratio']):.1f} "
        f"({smallest['smallest_ratio_client_size']} samples, "
        f"{100 * int(smallest['smallest_ratio_client_size']) / total:.2f}%)"])
  (epochs, batch_size, clients), = setups
  return results.table(
      ["dataset", "partition", "seeds", "steps per round, ours / NIID-Bench "
       "(per seed)", "ours as % of NIID-Bench's, client-weighted (lowest "
       "seed)", "lowest client's %, its size and share of the samples (lowest "
       "seed)"], table_rows, left=3) + (
           f"\n\nE={epochs}, B={batch_size}, {clients} clients. The "
           "partitions are drawn as the grid's cells draw them: where a "
           "committed cell exists, its smallest and largest client agree "
           f"with its `partition_summary.txt` ({checked} cells of "
           "`niid_bench_paper/`).")


def _command_output(directory):
  """A builder of `directory`/output.txt (a command's stdout, each run
  headed by a "$ command   # at commit" line) without the command lines."""
  def build(root):
    with open(os.path.join(root, _RESULTS, directory, "output.txt")) as f:
      lines = f.read().strip().splitlines()
    # Without the command lines, and one blank line between paragraphs.
    kept = [line for line in lines if not line.startswith("$ ")]
    return "\n".join(line for i, line in enumerate(kept)
                     if line or (i and kept[i - 1]))
  return build


def _partitions(cells, metrics):
  """One row per partition: its spec and `metrics` ((name, header) pairs)
  from its cells' partition_summary.txt files, which must agree."""
  rows = []
  for partition, spec in dict((c["partition"], c["spec"])
                              for c in cells).items():
    values = {}
    for cell in cells:
      if cell["partition"] != partition:
        continue
      for name, value in results.read_partition_summary(
          cell["run_dir"]).items():
        if values.setdefault(name, value) != value:
          raise ValueError(f"{cell['run_dir']}: {name} {value} differs from "
                           f"{values[name]} in another cell of {partition}")
    rows.append([partition, f"`{spec}`"] +
                [f"{values[name]:.4f}" if name in values else "—"
                 for name, _ in metrics])
  return results.table(["partition", "spec"] + [h for _, h in metrics], rows,
                       left=2)


def _pivot(values, rows, columns, corner, fmt):
  """A table of fmt(values.get((row, column)))."""
  return results.table([corner] + list(columns),
                       [[row] + [fmt(values.get((row, column)))
                                 for column in columns] for row in rows])


def _key_rules(root):
  """(partitions, algorithms, {(partition, algorithm): final accuracy})."""
  _, cells = _config_cells(root, "key_rules.cfg")
  finals = {(c["partition"], c["algorithm"]): _final(c["run"]) for c in cells}
  return (list(dict.fromkeys(c["partition"] for c in cells)),
          list(dict.fromkeys(c["algorithm"] for c in cells)), finals)


def _key_rules_partitions(root):
  return _partitions(_config_cells(root, "key_rules.cfg")[1],
                     [("js_mean", "mean JS divergence to the global label mix"),
                      ("key_dispersion", "key dispersion")])


def _key_rules_accuracy(root):
  partitions, algorithms, finals = _key_rules(root)
  return _pivot(finals, partitions, algorithms, "partition", _percent)


def _key_rules_key_cost(root):
  """Final accuracy with the key rule minus without it, per algorithm."""
  partitions, algorithms, finals = _key_rules(root)
  keyed = [p for p in partitions if "_" in p]
  differences = {}
  for partition in keyed:
    base = partition.partition("_")[0]
    for algorithm in algorithms:
      differences[(f"{partition} − {base}", algorithm)] = _minus(
          finals.get((partition, algorithm)), finals.get((base, algorithm)))
  return _pivot(differences, [f"{p} − {p.partition('_')[0]}" for p in keyed],
                algorithms, "points", _points)


def _key_rules_vs_fedavg(root):
  partitions, algorithms, finals = _key_rules(root)
  others = [a for a in algorithms if a != "fedavg"]
  differences = {(p, f"{a} − fedavg"): _minus(finals.get((p, a)),
                                              finals.get((p, "fedavg")))
                 for p in partitions for a in others}
  return _pivot(differences, partitions, [f"{a} − fedavg" for a in others],
                "partition", _points)


def _label_noise(root):
  """(bases, noise settings, {(base, setting): final accuracy}); partition
  BASE_SETTING, or BASE for the clean one."""
  _, cells = _config_cells(root, "label_noise.cfg")
  finals = {}
  for cell in cells:
    base, _, setting = cell["partition"].partition("_")
    finals[(base, setting or "clean")] = _final(cell["run"])
  return (list(dict.fromkeys(b for b, _ in finals)),
          list(dict.fromkeys(s for _, s in finals)), finals)


def _label_noise_accuracy(root):
  bases, settings, finals = _label_noise(root)
  return _pivot(finals, bases, settings, "base partition", _percent)


def _label_noise_differences(root):
  """Each setting minus clean per base, and each base minus the first."""
  bases, settings, finals = _label_noise(root)
  differences = {}
  labels = []
  for base in bases:
    labels.append(f"{base}: setting − clean")
    for setting in settings:
      differences[(labels[-1], setting)] = _minus(
          finals.get((base, setting)), finals.get((base, "clean")))
  for base in bases[1:]:
    labels.append(f"{base} − {bases[0]}")
    for setting in settings:
      differences[(labels[-1], setting)] = _minus(
          finals.get((base, setting)), finals.get((bases[0], setting)))
  return _pivot(differences, labels, settings, "points", _points)


def _blocks(root):
  """{README block name: markdown} from the committed files under `root`."""
  builders = {
      "timing": _timing,
      "reproduction_progress": _reproduction_progress,
      "mcmahan_like_for_like": _mcmahan_like_for_like,
      "mcmahan_rounds": _mcmahan_rounds,
      "mcmahan_ratios": _mcmahan_ratios,
      "mcmahan_curves": _mcmahan_curves,
      "mcmahan_lr": _grid_report("mcmahan2017_lr"),
      "mcmahan_fedsgd_lr": _grid_report("mcmahan2017_fedsgd_lr"),
      "mcmahan_progress": _mcmahan_progress,
      "mcmahan_2nn_init": _grid_report("mcmahan2017_2nn_init"),
      "mcmahan_2nn_seeds": _mcmahan_2nn_seeds,
      "mcmahan_2nn_grid": _grid_report("mcmahan2017_2nn"),
      "niid_bench_paper": _grid_report("niid_bench_paper"),
      "niid_bench_glorot": _grid_report("niid_bench_glorot"),
      "niid_bench_torch": _niid_bench_torch,
      "torch_versions": _torch_versions,
      "client_update_check": _command_output("client_update_check"),
      "niid_bench_batching": _niid_bench_batching,
      "niid_bench_table": _niid_bench_table,
      "niid_bench_curves": _niid_bench_curves,
      "fedprox_sign": _command_output("fedprox_sign"),
      "key_rules_partitions": _key_rules_partitions,
      "key_rules_accuracy": _key_rules_accuracy,
      "key_rules_key_cost": _key_rules_key_cost,
      "key_rules_vs_fedavg": _key_rules_vs_fedavg,
      "label_noise_accuracy": _label_noise_accuracy,
      "label_noise_differences": _label_noise_differences,
  }
  return {name: build(root) for name, build in builders.items()}


def _regenerate(root):
  """Rewrites the grid reports and README blocks under `root`."""
  _write_grid_reports(root)
  readme = os.path.join(root, _README)
  with open(readme) as f:
    text = f.read()
  text = results.fill_generated(text, _blocks(root))
  with open(readme, "w") as f:
    f.write(text)


def _stale(copy):
  """Outputs regenerated under `copy` that differ from the repository's:
  text outputs by content (printing a diff), plots by existence."""
  stale = []
  for directory, _, names in os.walk(os.path.join(copy, _RESULTS)):
    for name in names:
      if name not in _TEXT_OUTPUTS + _PLOTS:
        continue
      relative = os.path.relpath(os.path.join(directory, name), copy)
      committed = os.path.join(_REPO, relative)
      if not os.path.exists(committed):
        stale.append(relative)
      elif name in _TEXT_OUTPUTS:
        with open(committed) as f, open(os.path.join(copy, relative)) as g:
          diff = list(difflib.unified_diff(
              f.read().splitlines(), g.read().splitlines(),
              f"{relative} (now)", f"{relative} (regenerated)",
              lineterm=""))
        if diff:
          stale.append(relative)
          print("\n".join(diff[:40]))
  return stale


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not _CHECK.value:
    _regenerate(_REPO)
    print(f"rewrote {_README} and the reports of "
          f"{', '.join(grid for _, grid in _grid_configs(_REPO))}")
    return
  with tempfile.TemporaryDirectory() as copy:
    shutil.copytree(os.path.join(_REPO, _CONFIGS), os.path.join(copy, _CONFIGS))
    shutil.copytree(os.path.join(_REPO, _RESULTS), os.path.join(copy, _RESULTS))
    if os.path.isdir(os.path.join(_REPO, _UNFINISHED)):
      shutil.copytree(os.path.join(_REPO, _UNFINISHED),
                      os.path.join(copy, _UNFINISHED))
    shutil.copy(os.path.join(_REPO, _GRID), os.path.join(copy, _GRID))
    _regenerate(copy)
    stale = _stale(copy)
  if stale:
    sys.exit(f"stale (run .venv/bin/python experiments/report.py): "
             f"{', '.join(stale)}")
  print(f"{_README} and the grid reports are up to date")


if __name__ == "__main__":
  app.run(main)

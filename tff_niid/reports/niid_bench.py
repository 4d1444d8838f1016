"""The results README's blocks on NIID-Bench (Li et al., ICDE 2022, arXiv
2102.02079): the other algorithms against FedAvg on the same seeds, the
superseded 10-round grid, MNIST #C=1 against NIID-Bench's loop in PyTorch,
the PyTorch versions, and NIID-Bench's per-epoch batching.

Each public function maps `root` (`tree`) to one block's markdown.
"""

from __future__ import annotations

from collections.abc import Mapping
import csv
import math
import os
import statistics

from tff_niid import grids
from tff_niid import result_plots
from tff_niid import results
from tff_niid.reports import tree


_ROUNDS = 50  # NIID-Bench's protocol, that of its references

# The algorithms of the superseded 10-round NIID-Bench grid: its
# grid_flags.txt records only its last invocation's --algorithms=fedprox.
_FIRST_GRID_ALGORITHMS = "fedavg,fedprox,fedavgm"

# MNIST #C=1: a run has left chance (10%) at its first round at or above
# CHANCE_LEFT; a single such round may fall back, so the table also gives
# the first of SUSTAINED rounds in a row there.
CHANCE_LEFT = 0.2
SUSTAINED = 3
# How far one round moves a run's test accuracy near the end: the changes
# from round to round over its last SWING_ROUNDS rounds.
SWING_ROUNDS = 10

# The FedProx cell run with TFF's build_weighted_fed_prox (its sign error).
_TFF_FEDPROX = ("niid_bench_tff_fedprox", "mnist_c2_fedprox")


def _first_grid(root):
  """(cells run, FedAvg references) of the superseded 10-round grid."""
  grid_dir = os.path.join(root, tree.RESULTS, "niid_bench")
  grid_flags = grids.read_flagfile(os.path.join(grid_dir, "grid_flags.txt"))
  grid_flags["algorithms"] = [_FIRST_GRID_ALGORITHMS]
  cells = [c for c in grids.grid_cells(grid_dir, grid_flags)
           if c["run"]["metrics"]]
  return cells, grids.keyed_values(grid_flags["reference"],
                                     lambda v: float(v) / 100)


def first_grid(root: str) -> str:
  """The superseded grid's table; the 50-round references only beside the
  cells that ran 50 rounds."""
  cells, references = _first_grid(root)
  full = {(c["dataset"], c["partition"], c["algorithm"]) for c in cells
          if len(c["run"]["metrics"]) >= _ROUNDS}
  return results.markdown_table(
      cells, {k: v for k, v in references.items() if k in full})


def first_grid_curves(root: str) -> str:
  cells, _ = _first_grid(root)
  tff = dict(dataset="mnist", partition="c2",
             algorithm="fedprox, TFF's builder",
             run=results.read_run(
                 os.path.join(root, tree.RESULTS, *_TFF_FEDPROX)))
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
                [results.percent(at.get(r)) for r in (1, 3, 10)] +
                [tree.points(tree.minus(at.get(10), fedavg_10.get(
                    (cell["dataset"], cell["partition"])))),
                 results.percent(at.get(50)), tree.best(cell["run"]),
                 results.percent(min(later) if later else None),
                 tree.fall(cell["run"]),
                 results.percent(sum(last) / len(last) if len(last) == 10
                              else None)])
  return results.table(
      ["dataset", "partition", "algorithm", "rounds", "round 1", "round 3",
       "round 10", "round 10 − FedAvg's", "round 50", "best % (round)",
       "lowest after round 10", "largest fall, points (round)",
       "mean of rounds 41–50"], rows, left=3)


def _check_torch_run(run_dir, run, train, expected):
  """Raises ValueError unless the PyTorch run in `run_dir` ran the grid's
  FedAvg cell: the train flagfile's settings (`train`), `expected` flags and
  FedAvg's clients (no proximal term)."""
  if run["summary"] is None:
    return
  ran = {k: v[-1] for k, v in grids.read_flagfile(
      os.path.join(run_dir, "hparams.txt")).items()}
  # Runs from before --fedprox_mu existed trained FedAvg's clients.
  ran.setdefault("fedprox_mu", "0")
  expected = dict(expected, fedprox_mu="0", **{
      k: train[k][-1] for k in (
          "num_clients", "rounds", "local_epochs", "batch_size", "client_lr",
          "client_momentum", "client_weight_decay")})
  for name, value in expected.items():
    same = (ran.get(name) == value if name in ("dataset", "partition_spec")
            else ran.get(name) is not None and
            float(ran[name]) == float(value))
    if not same:
      raise ValueError(f"{run_dir}: --{name}={ran.get(name)}, but the grid's "
                       f"cell has {value}")


def torch_runs(root: str) -> str:
  """MNIST #C=1 FedAvg: our TFF cells (niid_bench_paper; and with
  NIID-Bench's per-epoch batching, niid_bench_per_epoch) beside NIID-Bench's
  loop in PyTorch (experiments/niid_bench_torch.py, niid_bench_torch/), per
  seed and as mean ± std of the finished seeds (those diverged counted
  beside them, `results.seeds_column`), and Flower's multi-run best."""
  config, cells = tree.config_cells(root, "niid_bench.cfg")
  tff_runs = {c["seed"]: c["run"] for c in cells
              if (c["dataset"], c["partition"], c["algorithm"]) ==
              ("mnist", "c1", "fedavg")}
  torch_dir = os.path.join(root, tree.RESULTS, "niid_bench_torch")
  torch_runs = {seed: results.read_run(
      os.path.join(torch_dir, f"mnist_c1_s{seed}"), missing_ok=True)
                for seed in tff_runs}
  train = grids.read_flagfile(
      os.path.join(root, config["train_flagfile"][-1]), root)
  c1_spec = next(spec for name, _, spec in (
      p.partition("=") for p in config["partition"]) if name == "c1")
  for seed, run in torch_runs.items():
    _check_torch_run(os.path.join(torch_dir, f"mnist_c1_s{seed}"), run, train,
                     dict(dataset="mnist", partition_spec=c1_spec,
                          seed=str(seed)))
  per_epoch_runs = {c["seed"]: c["run"] for c in tree.config_cells(
      root, "niid_bench_per_epoch.cfg")[1]}
  rows = []
  for name, runs in (
      ("TFF (tff_niid), streamed batches, `niid_bench_paper/`", tff_runs),
      ("TFF, NIID-Bench's per-epoch batches, `niid_bench_per_epoch/`",
       per_epoch_runs),
      ("PyTorch (NIID-Bench's loop), `niid_bench_torch/`", torch_runs)):
    done = {seed: run for seed, run in runs.items() if results.finished(run)}
    last = results.LAST_ROUNDS
    per_seed = []
    for seed, run in done.items():
      _, accuracies = results.accuracy_curve(run["metrics"])
      left = [results.first_round_at(run["metrics"], CHANCE_LEFT,
                                     sustained=n) for n in (1, SUSTAINED)]
      per_seed.append(
          f"s{seed}: {100 * accuracies[-1]:.1f} / "
          f"{100 * statistics.fmean(accuracies[-last:]):.1f} / "
          f"{100 * max(accuracies):.1f} / " +
          " / ".join("never" if r is None else str(r) for r in left))
    stats = results.seed_summary(list(done.values()))
    summary = ([results.format_mean_std(*stats[k])
                for k in ("final", "last", "best")] if stats
               else ["—"] * 3)
    seeds = results.seeds_column(
        len(done), results.diverged_rounds(list(runs.values())))
    rows.append([name, seeds] + summary +
                ["; ".join(per_seed) or "—",
                 "; ".join(_swing(seed, run) for seed, run in done.items())
                 or "—"])
  flower = dict(grids.keyed_values(config["reference_best"],
                                     results.parse_mean_std))
  for algorithm, label in (("fedavg", "FedAvg"), ("fedprox", "FedProx")):
    mean, std = flower[("mnist", "c1", algorithm)]
    rows.append([f"Flower's re-run, {label} (quoted, `--reference_best`)",
                 "runs: not stated", "—", "—",
                 results.format_mean_std(mean, std, scale=1), "—", "—"])
  return results.table(
      ["implementation", "seeds", "final acc %",
       "mean of last 5 rounds %", "best round acc %",
       f"per seed: final % / last 5 % / best % / first round ≥ "
       f"{100 * CHANCE_LEFT:.0f}% / first of {SUSTAINED} in a row ≥ "
       f"{100 * CHANCE_LEFT:.0f}%",
       f"per seed: change from round to round over the last {SWING_ROUNDS} "
       "rounds, points: mean \\|Δ\\| / largest \\|Δ\\|"], rows, left=1)


def _swing(seed: int, run: results.Run) -> str:
  """"s<seed>: mean / largest" of the absolute changes in test accuracy from
  round to round over the run's last SWING_ROUNDS evaluated rounds."""
  _, accuracies = results.accuracy_curve(run["metrics"])
  tail = accuracies[-SWING_ROUNDS - 1:]
  changes = [abs(b - a) for a, b in zip(tail, tail[1:])]
  return (f"s{seed}: {100 * statistics.fmean(changes):.1f} / "
          f"{100 * max(changes):.1f}")


def headlines(root: str) -> list[list[str]]:
  """At-a-glance rows of NIID-Bench as published (niid_bench.cfg), one per
  algorithm it runs: [groups (dataset, partition) with every seed ended
  (finished or diverged) and one finished, their best round against
  Flower's multi-run best (`--reference_best`) in points, how many cells of
  the incomplete groups have ended]."""
  config, cells = tree.config_cells(root, "niid_bench.cfg")
  flower = grids.keyed_values(config["reference_best"],
                                results.parse_mean_std)
  rows = []
  for algorithm in dict.fromkeys(cell["algorithm"] for cell in cells):
    groups: dict[tuple[str, str], list[results.Run]] = {}
    for cell in cells:
      if cell["algorithm"] == algorithm:
        groups.setdefault((cell["dataset"], cell["partition"]),
                          []).append(cell["run"])
    complete = {}  # groups whose seeds have all ended: their statistics
    done_in_left = []
    diverged = 0
    for key, runs in groups.items():
      if all(map(results.ended, runs)):
        complete[key] = results.seed_summary(runs)  # None: all diverged
        diverged += len(results.diverged_rounds(runs))
      else:
        done_in_left.append(sum(map(results.ended, runs)))
    differences = sorted(
        (100 * stats["best"][0] - flower[key + (algorithm,)][0], key)
        for key, stats in complete.items()
        if stats and key + (algorithm,) in flower)
    all_diverged = [" ".join(key) for key, stats in complete.items()
                    if stats is None]
    left_out = "; ".join(
        ([f"{diverged} diverged seeds left out"] if diverged else []) +
        ([f"every seed diverged: {', '.join(all_diverged)}"]
         if all_diverged else []))
    if differences:
      close = sum(abs(d) <= 1 for d, _ in differences)
      (low, low_key), (high, high_key) = differences[0], differences[-1]
      spread = (f"{results.signed(low)} ({' '.join(low_key)})"
                if len(differences) == 1
                else f"from {results.signed(low)} ({' '.join(low_key)}) to "
                     f"{results.signed(high)} ({' '.join(high_key)})")
      compared = (f"within ±1 point in {close} of {len(differences)} groups; "
                  f"{spread}")
    elif any(key[2] == algorithm for key in flower):
      compared = "—"
    else:
      compared = "no reference quoted"
    if left_out:
      compared = left_out if compared == "—" else f"{compared}; {left_out}"
    if done_in_left:
      seeds = len(next(iter(groups.values())))
      cells_left = len(done_in_left) * seeds
      done = sum(done_in_left)
      if done == 0:
        left = (f"not started ({cells_left} cells; section 2.1's progress "
                "table)")
      else:
        left = (f"{done} of {cells_left} cells done in the "
                f"{len(done_in_left)} incomplete groups (section 2.1's "
                "progress table)")
    else:
      left = "—"
    rows.append([f"NIID-Bench as published, {algorithm} (section 2.1)",
                 f"{len(complete)} of {len(groups)} groups",
                 "best round − Flower's multi-run best, points", compared,
                 left])
  return rows


def _points(difference: float) -> float:
  """An accuracy difference in points, to 0.01: one test sample in 10,000,
  so two finals' difference shows exactly and a tie shows as 0."""
  return round(100 * difference, 2)


def _signed_points(values: list[float]) -> str:
  """"+m ± s (v1, v2, ...)" in points of accuracy differences, to 0.01; no ±
  for one."""
  mean, std = results.mean_std(values)
  spread = "" if std is None else f" ± {100 * std:.2f}"
  listed = ", ".join(results.signed(100 * v, 2) for v in values)
  return f"{results.signed(100 * mean, 2)}{spread} ({listed})"


def _below_level_above(differences: list[float], unit: str) -> str:
  """How many of the differences are below, level with and above FedAvg's."""
  points = [_points(d) for d in differences]
  below, above = sum(p < 0 for p in points), sum(p > 0 for p in points)
  return (f"below FedAvg's on {below}, level on "
          f"{len(points) - below - above} and above on {above} of "
          f"{len(points)} {unit}")


def paired_differences(
    cells: list[results.Cell],
    reference_best: Mapping[results.CellKey, results.MeanStd] | None = None,
) -> str:
  """Each algorithm of a seeded grid minus FedAvg, seed by seed: per group
  (dataset, partition, algorithm), over the seeds finished by both, the
  difference in final test accuracy, in the mean of the last
  `results.LAST_ROUNDS` evaluated rounds and in the best round, in points,
  mean ± std with the per-seed values, to 0.01 points; beside them, where
  `reference_best` (percent mean and std per (dataset, partition,
  algorithm), as `--reference_best` quotes Flower's re-run) has the group
  and its FedAvg, the same difference of the reference's means (and over
  sqrt(std² + std_FedAvg²), where both have a std). Then, per
  algorithm, on how many seed pairs of the #C=k partitions (spec
  `classes(k=...)`) its final and its best accuracy are below, level with
  (equal to 0.01 points) and above FedAvg's, the same count of the
  reference's groups, and its largest final difference on the other
  partitions.

  Raises:
    ValueError: the grid runs no "fedavg", or a pair ran different numbers
      of evaluated rounds.
  """
  by_classes = {c["partition"]: c["spec"].startswith("classes(")
                for c in cells}
  rows = []
  # Per algorithm, on the #C=k partitions: the final and best differences
  # and the reference's; on the others, the final differences.
  kinds = ("final", "best", "reference", "others")
  by_kind: dict[str, dict[str, list[float]]] = {}
  for (dataset, partition, algorithm), by_seed in (
      results.paired_with_fedavg(cells).items()):
    finals, lasts, bests = ([differences[k] for differences in
                             by_seed.values()]
                            for k in ("final", "last", "best"))
    mine, its_fedavg = ((reference_best or {}).get((dataset, partition, a))
                        for a in (algorithm, "fedavg"))
    reference, shown = None, "—"
    if mine and its_fedavg:
      points = mine[0] - its_fedavg[0]
      reference, shown = points / 100, results.signed(points, 2)
      if mine[1] and its_fedavg[1]:  # both from several runs
        combined = math.hypot(mine[1], its_fedavg[1])
        shown += f" ({results.signed(points / combined, 1)})"
    rows.append([dataset, partition, algorithm,
                 ", ".join(map(str, by_seed)),
                 _signed_points(finals), _signed_points(lasts),
                 _signed_points(bests), shown])
    kind = by_kind.setdefault(algorithm, {k: [] for k in kinds})
    if by_classes[partition]:
      kind["final"] += finals
      kind["best"] += bests
      if reference is not None:
        kind["reference"].append(reference)
    else:
      kind["others"] += finals
  if not rows:
    return "No seed finished by FedAvg and another algorithm yet."
  counts = []
  for algorithm, kind in by_kind.items():
    finals, bests, references, others = (kind[k] for k in kinds)
    if finals:
      on_classes = (f"final accuracy {_below_level_above(finals, 'seed pairs')}"
                    f"; best round {_below_level_above(bests, 'seed pairs')}")
      if references:
        on_classes += ("; the reference's best rounds (its means) "
                       f"{_below_level_above(references, 'groups')}")
    else:
      on_classes = "no seed pair finished yet"
    on_others = "no seed pair finished yet"
    if others:
      pairs = ("the one seed pair" if len(others) == 1 else
               f"all {len(others)} seed pairs")
      on_others = (f"final accuracy within "
                   f"{max(abs(_points(d)) for d in others):.2f} points of "
                   f"FedAvg's on {pairs}")
    counts.append(f"{algorithm}: on the #C=k partitions, {on_classes}. On "
                  f"the other partitions, {on_others}.")
  return "\n\n".join([results.table(
      ["dataset", "partition", "algorithm", "seeds",
       "final acc − FedAvg's, points: mean ± std (per seed)",
       f"mean of last {results.LAST_ROUNDS} rounds − FedAvg's, points: mean "
       "± std (per seed)",
       "best round − FedAvg's, points: mean ± std (per seed)",
       "reference best (`--reference_best`) − its FedAvg's, points (its "
       "means; in parentheses, over the combined std of its two groups)"],
      rows, left=3)] + counts)


def against_fedavg(root: str) -> str:
  """`paired_differences` of NIID-Bench as published (niid_bench.cfg), beside
  Flower's re-run (`--reference_best`)."""
  config, cells = tree.config_cells(root, "niid_bench.cfg")
  return paired_differences(cells, grids.keyed_values(
      config["reference_best"], results.parse_mean_std))


# FedProx's μ grid and the plot of it beside FedAvg and the paper grid's μ.
MU_GRID = "niid_bench_fedprox_mu"
MU_PLOT = "mu.png"


def mu_groups(root: str) -> tuple[
    dict[tuple[str, str, float], tuple[str, list[results.Cell]]],
    list[results.Cell]]:
  """FedProx's μ grid (niid_bench_fedprox_mu.cfg) with niid_bench_paper's
  FedProx at its μ and FedAvg as μ 0, of the same dataset, partition and
  seeds: ({(dataset, partition, μ): (grid, cells)}, all those cells).

  Raises:
    ValueError: the grids' partitions differ, or the μ grid repeats the
      paper grid's μ.
  """
  config, sweep = tree.config_cells(root, "niid_bench_fedprox_mu.cfg")
  _, paper = tree.config_cells(root, "niid_bench.cfg")
  train = grids.read_flagfile(
      os.path.join(root, config["train_flagfile"][-1]), root)
  groups = {(c["dataset"], c["partition"]) for c in sweep}
  seeds = {c["seed"] for c in sweep}
  paper_mu = {"fedavg": 0.0,
              "fedprox": float(train["proximal_strength"][-1])}
  cells = sweep + [c for c in paper if (c["dataset"], c["partition"]) in groups
                   and c["seed"] in seeds and c["algorithm"] in paper_mu]
  specs: dict[tuple[str, str], set[str]] = {}
  for c in cells:
    specs.setdefault((c["dataset"], c["partition"]), set()).add(c["spec"])
  if any(len(found) > 1 for found in specs.values()):
    raise ValueError(f"the mu grid's partitions are not niid_bench.cfg's: "
                     f"{specs}")
  swept = {float(c["sweep"]["proximal_strength"]) for c in sweep}
  if swept & set(paper_mu.values()):
    raise ValueError(f"the mu grid sweeps {sorted(swept)}, which repeats "
                     f"niid_bench.cfg's {sorted(paper_mu.values())}")
  members: dict[tuple[str, str, float], tuple[str, list[results.Cell]]] = {}
  for c in cells:
    mu = (float(c["sweep"]["proximal_strength"]) if c["sweep"]
          else paper_mu[c["algorithm"]])
    members.setdefault((c["dataset"], c["partition"], mu), (
        os.path.basename(os.path.dirname(c["run_dir"])), []))[1].append(c)
  return dict(sorted(members.items())), cells


def mu_label(mu: float) -> str:
  """A μ as the table and plot name it (μ 0 is FedAvg)."""
  return f"{mu:g} (FedAvg)" if mu == 0 else f"{mu:g}"


def fedprox_mu(root: str) -> str:
  """FedProx's μ on #C=1 (niid_bench_fedprox_mu.cfg) beside niid_bench_paper's
  FedProx at its μ and FedAvg (μ 0) of the same dataset, partition and
  seeds (`mu_groups`): per μ, the seeds done (finished or diverged, as the
  progress tables list them), mean ± std of the finished ones' final,
  last-5 and best test accuracy, and the final difference to FedAvg seed by
  seed (`results.paired_with_fedavg`)."""
  members, cells = mu_groups(root)
  paired = results.paired_with_fedavg(cells)
  rows = []
  for (dataset, partition, mu), (grid, group) in members.items():
    stats = results.seed_summary([c["run"] for c in group])
    differences = paired.get((dataset, partition, group[0]["algorithm"]), {})
    rows.append([dataset, partition, mu_label(mu), grid,
                 ", ".join(results.seed_label(c) for c in group
                           if results.ended(c["run"])) or "—",
                 *([results.format_mean_std(*stats[k])
                    for k in ("final", "last", "best")] if stats
                   else ["—"] * 3),
                 _signed_points([d["final"] for d in differences.values()])
                 if differences else "—"])
  return results.table(
      ["dataset", "partition", "μ", "grid", "seeds done", "final acc %",
       f"mean of last {results.LAST_ROUNDS} rounds %", "best round acc %",
       "final − FedAvg's, points: mean ± std (per seed)"], rows, left=4)


def fedprox_mu_plot(root: str, path: str) -> bool:
  """`result_plots.plot_settings` of the μ groups (`mu_groups`; one
  dataset and partition) into `path`; False (no file) before a cell has
  finished.

  Raises:
    ValueError: the μ grid covers several datasets or partitions.
  """
  members, _ = mu_groups(root)
  shown = {(dataset, partition) for dataset, partition, _ in members}
  if len(shown) != 1:
    raise ValueError(f"the mu plot shows one dataset and partition; the mu "
                     f"grid has {sorted(shown)}")
  (dataset, partition), = shown
  by_grid: dict[str, list[str]] = {}
  for (_, _, mu), (grid, _) in members.items():
    by_grid.setdefault(grid, []).append(f"{mu:g}")
  return result_plots.plot_settings(
      {mu_label(mu): group for (_, _, mu), (_, group) in members.items()},
      path, xlabel="FedProx μ",
      title=f"FedProx's μ on {dataset} {partition}, seed by seed (μ 0: "
            "FedAvg)",
      caption="; ".join(f"μ {', '.join(mus)}: {grid}/"
                        for grid, mus in by_grid.items()))


def torch_versions(root: str) -> str:
  """Round 1 of MNIST #C=1 seed 0 in PyTorch: the committed 50-round run
  (niid_bench_torch/) beside a one-round run of the same command under
  another PyTorch (niid_bench_torch_versions/), with whether the two give
  the same test accuracy and loss (as metrics.csv holds them)."""
  runs = [os.path.join(root, tree.RESULTS, grid, "mnist_c1_s0")
          for grid in ("niid_bench_torch", "niid_bench_torch_versions")]
  ran = [{k: v for k, v in grids.read_flagfile(
      os.path.join(run_dir, "hparams.txt")).items() if k != "rounds"}
         for run_dir in runs]
  if ran[0] != ran[1]:
    raise ValueError(f"{runs[1]} ran other flags than {runs[0]}: {ran}")
  rows, firsts = [], []
  results_dir = os.path.join(root, tree.RESULTS)
  for run_dir in runs:
    run = results.read_run(run_dir)
    first = run["metrics"][0]
    firsts.append((first["test_accuracy"], first["test_loss"]))
    rows.append([run["summary"]["framework"],
                 f"`{os.path.relpath(run_dir, results_dir)}/`",
                 str(run["summary"]["rounds_run"]),
                 repr(first["test_accuracy"]), repr(first["test_loss"])])
  same = "the same" if firsts[0] == firsts[1] else "not the same"
  return (results.table(["PyTorch", "run", "rounds run",
                         "round 1 test accuracy", "round 1 test loss"], rows,
                        left=2)
          + f"\n\nRound 1's test accuracy and loss are {same} under both.")


def batching(root: str) -> str:
  """Local steps per round of each NIID-Bench partition, ours against
  NIID-Bench's per-epoch batching (batching_steps/steps.csv), after checking
  that its partitions are the committed cells' (smallest and largest
  client against their partition_summary.txt)."""
  path = os.path.join(root, tree.RESULTS, "batching_steps", "steps.csv")
  rerun = "rerun experiments/batching_steps.py (its docstring)"
  if not os.path.exists(path):
    raise ValueError(f"{path} is missing: {rerun}.")
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  setups = {(r["local_epochs"], r["batch_size"], r["clients"]) for r in rows}
  if len(setups) != 1:
    raise ValueError(f"{path}: expected one (E, B, clients) setup, got "
                     f"{setups}: {rerun}.")
  by_key = {(r["dataset"], r["partition"], int(r["seed"])): r for r in rows}
  _, cells = tree.config_cells(root, "niid_bench.cfg")
  checked = 0
  for cell in cells:
    summary = results.read_partition_summary(cell["run_dir"])
    if not summary:
      continue
    row = by_key.get((cell["dataset"], cell["partition"], cell["seed"]))
    if row is None or (int(row["size_min"]), int(row["size_max"])) != (
        summary["size_min"], summary["size_max"]):
      raise ValueError(f"{path} does not match {cell['run_dir']}'s "
                       f"partition: {rerun}.")
    checked += 1
  groups: dict[tuple[str, str], list[dict[str, str]]] = {}
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

"""Reports from run directories (numpy-free: runs without TensorFlow)."""

import os
import statistics

import pytest

from tff_niid import result_plots
from tff_niid import grids
from tff_niid import results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_markdown_table_compares_with_references():
  metrics = [{"round": 1.0, "test_accuracy": 0.5},
             {"round": 2.0, "test_accuracy": 0.97}]
  summary = {"target_accuracy": 0.95, "rounds_to_target": 2}
  cells = [
      dict(dataset="mnist", partition="iid", algorithm="fedavg",
           run={"metrics": metrics, "summary": summary}),
      dict(dataset="mnist", partition="c1", algorithm="fedavg",
           run={"metrics": [], "summary": None}),
  ]
  table = results.markdown_table(
      cells, references={("mnist", "iid", "fedavg"): 0.99},
      reference_rounds={("mnist", "iid", "fedavg"): 3}).splitlines()
  assert table[2] == ("| mnist | iid | fedavg | 2 | 97.0 | 97.0 | 99.0 | -2.0 "
                      "| 2 (to 95.0) | 3 |")
  assert table[3] == ("| mnist | c1 | fedavg | not run | — | — | — | — | — "
                      "| — |")


def test_markdown_table_shows_a_diverged_run_without_accuracies():
  cells = [dict(dataset="mnist", partition="c1", algorithm="fedavg",
                run=_diverged(4))]
  assert results.markdown_table(cells).splitlines()[2] == (
      "| mnist | c1 | fedavg | diverged at round 4 | — | — |")


def _run(finals, requested=10, seconds=3600.0):
  metrics = [{"round": float(r), "test_accuracy": a}
             for r, a in enumerate(finals, 1)]
  return {"metrics": metrics,
          "summary": {"rounds_run": len(finals), "rounds_requested": requested,
                      "stopped": "completed", "train_seconds": seconds}}


def test_seed_table_sets_references_beside_mean_std_and_progress():
  key = dict(dataset="mnist", partition="iid", algorithm="fedavg")
  cells = [dict(key, seed=0, run=_run([0.5] * 6 + [0.97, 0.98, 0.99, 0.98],
                                      seconds=1800)),
           dict(key, seed=1, run=_run([0.5] * 6 + [0.95, 0.96, 0.97, 0.96],
                                      seconds=5400)),
           dict(key, seed=2, run=_run([0.5] * 3)),  # unfinished: left out
           dict(key, partition="c1", seed=0, run=_run([], requested=10)),
           dict(key, partition="c2", seed=0, run=_run([0.9] * 10,
                                                      seconds=10800))]
  table, progress = results.seed_table(cells, references=[
      results.Reference("paper", "final",
                        {("mnist", "iid", "fedavg"): (98.0, 1.0),
                         ("mnist", "c2", "fedavg"): (91.0, 0.5)}),
      results.Reference("re-run", "final",
                        {("mnist", "iid", "fedavg"): (99.1, None)}),
      results.Reference("re-run best", "best",
                        {("mnist", "iid", "fedavg"): (99.5, 0.5)})], last=4)
  rows = table.splitlines()
  assert len(rows) == 4  # header, rule, the two finished groups
  assert rows[0] == (
      "| dataset | partition | algorithm | seeds | final acc % | mean of last "
      "4 rounds % | best round acc % | paper % | final − paper: points "
      "(combined stds) | re-run % | final − re-run: points (combined stds) | "
      "re-run best % | best − re-run best: points (combined stds) |")
  # final: 98 and 96 -> 97.0 ± 1.414; last 4: 98 and 96 -> 97.0 ± 1.414;
  # best: 99 and 97 -> 98.0 ± 1.414.
  # (97 - 98) / hypot(1.414, 1.0) = -0.577; 97 - 99.1 = -2.1 points, no
  # std units (a single run's spread is unknown); (98 - 99.5) /
  # hypot(1.414, 0.5) = -1.00.
  assert rows[2] == ("| mnist | iid | fedavg | 2 | 97.0 ± 1.4 | 97.0 ± 1.4 | "
                     "98.0 ± 1.4 | 98.0 ± 1.0 | -1.0 (-0.6) | 99.1 | -2.1 | "
                     "99.5 ± 0.5 | -1.5 (-1.0) |")
  # One seed of ours: the difference in points only.
  assert rows[3] == ("| mnist | c2 | fedavg | 1 | 90.0 | 90.0 | 90.0 | "
                     "91.0 ± 0.5 | -1.0 | — | — | — | — |")
  assert progress.splitlines()[2:] == [
      "| mnist | iid | fedavg | 0, 1 | 2 | 1.00 |",
      "| mnist | c1 | fedavg | — | 0 | — |",
      "| mnist | c2 | fedavg | 0 | — | 3.00 |",
      "",
      # iid's cell to do at its own 1.00 h, c1's at the median of 1.00, 3.00.
      "3 of 5 cells done; the 2 to do need about 3 training cell-hours "
      "(each its group's hours per cell above, or their median, 2.00, where "
      "none has finished; contended times)."]


def _diverged(at_round, requested=10):
  run = _run([0.5] * (at_round - 1), requested=requested, seconds=60.0)
  run["summary"]["stopped"] = f"diverged at round {at_round}"
  return run


def test_a_diverged_seed_is_done_and_left_out_of_the_statistics():
  key = dict(dataset="fashion_mnist", partition="c2", algorithm="scaffold")
  cells = [dict(key, seed=0, run=_run([0.8] * 10, seconds=1800)),
           dict(key, seed=1, run=_diverged(7)),
           dict(key, seed=2, run=_run([0.9] * 10, seconds=5400)),
           dict(key, partition="c3", seed=0, run=_diverged(3)),
           dict(key, partition="c3", seed=1, run=_diverged(12)),
           dict(key, partition="c3", seed=2, run=_run([0.5] * 4))]
  for cell in cells[:5]:
    assert results.ended(cell["run"])
  assert [results.finished(c["run"]) for c in cells] == [
      True, False, True, False, False, False]
  assert results.diverged_round(cells[1]["run"]) == 7
  assert results.diverged_round(cells[0]["run"]) is None
  assert [results.seed_label(c) for c in cells[:2]] == [
      "0", "1 (diverged at round 7)"]
  table, progress = results.seed_table(cells, references=[
      results.Reference("re-run", "final",
                        {("fashion_mnist", "c2", "scaffold"): (10.0, None)})])
  assert table.splitlines()[2:] == [
      "| fashion_mnist | c2 | scaffold | 2 + 1 diverged (round 7) | "
      "85.0 ± 7.1 | 85.0 ± 7.1 | 10.0 | +75.0 |",
      "| fashion_mnist | c3 | scaffold | 0 + 2 diverged (rounds 3, 12) | — | "
      "— | — | — |"]
  assert progress.splitlines()[2:] == [
      "| fashion_mnist | c2 | scaffold | 0, 1 (diverged at round 7), 2 | — | "
      "1.00 |",
      "| fashion_mnist | c3 | scaffold | 0 (diverged at round 3), 1 (diverged "
      "at round 12) | 2 | — |",
      "",
      # The one cell to do at the median hours of the groups that have
      # finished cells (the diverged runs' minutes are not a cell's cost).
      "5 of 6 cells done; the 1 to do need about 1 training cell-hours (each "
      "its group's hours per cell above, or their median, 1.00, where none "
      "has finished; contended times)."]


def test_the_curves_mark_where_a_run_diverged(tmp_path):
  key = dict(dataset="mnist", partition="c1")
  result_plots.plot_curves(
      [dict(key, algorithm="fedavg", seed=0, run=_run([0.5] * 10)),
       dict(key, algorithm="scaffold", seed=0, run=_diverged(4)),
       dict(key, algorithm="scaffold", seed=1, run=_diverged(1))],
      str(tmp_path / "curves.png"))
  assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_progress_total_when_all_or_none_are_done():
  key = dict(dataset="mnist", partition="iid", algorithm="fedavg")
  _, progress = results.seed_table([dict(key, seed=0, run=_run([0.9] * 10))])
  assert progress.splitlines()[-1] == "1 of 1 cells done."
  _, progress = results.seed_table([dict(key, seed=0, run=_run([0.9] * 3))])
  assert progress.splitlines()[-1] == "0 of 1 cells done."


def test_hours_to_do_costs_a_row_without_hours_at_the_median_of_the_others():
  # Rows (done, to do, hours per cell): 2 cells at 1.0 h, 1 at 3.0 h, and
  # 4 of a row with none at the median of 1.0, 3.0 and 5.0.
  assert results.hours_to_do([(1, 2, 1.0), (0, 4, None), (1, 1, 3.0),
                              (2, 0, 5.0)]) == (2 + 3 + 4 * 3.0, 3.0)
  assert results.hours_to_do([(3, 0, 1.0), (1, 0, None)]) == (0.0, None)
  assert results.hours_to_do([(0, 2, None)]) == (None, None)


def test_mean_std_parses_paper_notation():
  assert results.parse_mean_std("98.9%±0.1%") == (98.9, 0.1)
  assert results.parse_mean_std("81.2+-1.5") == (81.2, 1.5)
  assert results.parse_mean_std("10.0") == (10.0, None)


def test_select_rate_follows_the_papers_tuning():
  def curve(*accuracies):
    return [{"round": float(r), "test_accuracy": a}
            for r, a in enumerate(accuracies, 1)]
  # Reaching the target first wins, whatever the final accuracy; a tie goes
  # to the smaller rate.
  assert results.select_rate({0.1: curve(0.5, 0.97, 0.99),
                              0.2: curve(0.97, 0.2, 0.1),
                              0.4: curve(0.97, 0.3)}, 0.97) == 0.2
  # None reaches it: the highest best-so-far accuracy, not the final one.
  assert results.select_rate({0.1: curve(0.90, 0.95),
                              0.2: curve(0.96, 0.50)}, 0.97) == 0.2
  with pytest.raises(ValueError, match="no runs"):
    results.select_rate({}, 0.97)


def _committed_grid(config, grid):
  flags = grids.read_flagfile(
      os.path.join(REPO, "experiments", "configs", config), REPO)
  return grids.grid_cells(
      os.path.join(REPO, "experiments", "results", grid), flags)


def test_sweep_lines_select_the_papers_way_on_the_committed_rate_grid(
    tmp_path):
  cells = _committed_grid("mcmahan2017_lr.cfg", "mcmahan2017_lr")
  lines = {(line.partition, line.variant): line
           for line in results.sweep_lines(cells)}
  two_nn = lines[("iid", "2nn_E1_B10")]
  assert two_nn.flag == "client_lr" and two_nn.unfinished == 0
  assert two_nn.values == sorted(two_nn.values) and len(two_nn.values) == 6
  assert two_nn.target == pytest.approx(0.97)
  # Each line's choice is select_rate over its cells' curves, and each point
  # is its run's best evaluated accuracy and first round at the target.
  for line in lines.values():
    assert line.target is not None  # the grid's runs set one
    members = {float(c["sweep"]["client_lr"]): c["run"] for c in cells
               if (c["partition"], c["variant"]) == (line.partition,
                                                     line.variant)}
    for value, best, reached in zip(line.values, line.best, line.reached):
      rows = members[value]["metrics"]
      assert best == max(results.accuracy_curve(rows)[1])
      assert reached == results.first_round_at(rows, line.target)
    finished = {v: run["metrics"] for v, run in members.items()
                if results.finished(run)}
    assert line.selected == results.select_rate(finished, line.target)
    assert line.chosen == (None if line.unfinished else line.selected)
  assert lines[("iid", "cnn_E5_B10")].chosen == 0.215
  assert result_plots.plot_sweep(cells, str(tmp_path / "sweep.png"))
  assert (tmp_path / "sweep.png").stat().st_size > 10_000


def test_a_sweep_that_is_not_one_numeric_flag_is_not_plotted(tmp_path):
  cells = _committed_grid("mcmahan2017_lr.cfg", "mcmahan2017_lr")
  renamed = [dict(c, sweep={"model": "cnn"}) for c in cells]
  with pytest.raises(ValueError, match="not all numbers"):
    results.sweep_lines(renamed)
  two_flags = [dict(c, sweep=dict(c["sweep"], seed="1")) for c in cells]
  with pytest.raises(ValueError, match="sweeping one flag"):
    results.sweep_lines(two_flags)
  assert not result_plots.plot_sweep(two_flags, str(tmp_path / "sweep.png"))
  assert not (tmp_path / "sweep.png").exists()


def _sweep_cell(value, accuracies, *, rounds=None, target=0.97, seed=None):
  """A grid cell sweeping client_lr; finished unless `rounds` > its rounds
  run; `accuracies` None: never run."""
  if accuracies is None:
    return dict(dataset="mnist", partition="iid", variant="cnn", seed=seed,
                sweep={"client_lr": value},
                run={"metrics": [], "summary": None})
  rows = [{"round": float(r), "test_accuracy": a}
          for r, a in enumerate(accuracies, 1)]
  summary = {"rounds_run": len(rows),
             "rounds_requested": rounds or len(rows), "stopped": "completed"}
  if target is not None:
    summary["target_accuracy"] = target
  return dict(dataset="mnist", partition="iid", variant="cnn", seed=seed,
              sweep={"client_lr": value},
              run={"metrics": rows, "summary": summary})


def test_sweep_lines_wait_for_every_value_and_one_horizon():
  (line,) = results.sweep_lines([_sweep_cell("0.1", [0.5, 0.98]),
                                 _sweep_cell("0.2", [0.98, 0.99]),
                                 _sweep_cell("0.4", None)])
  assert (line.values, line.reached, line.unfinished) == ([0.1, 0.2],
                                                          [2, 1], 1)
  assert line.selected == 0.2 and line.chosen is None  # 0.4 not run yet
  (line,) = results.sweep_lines([_sweep_cell("0.1", [0.5, 0.98]),
                                 _sweep_cell("0.2", [0.98, 0.99, 0.99])])
  assert line.horizon is None and line.chosen is None  # 2 and 3 rounds
  assert results.sweep_lines([]) == []


def test_a_diverged_rate_ends_a_sweep_cell_without_a_point():
  # The largest rate diverged at round 2 of 2: the line has ended, its
  # choice stands, and the diverged rate is no value of the line.
  diverged = _sweep_cell("0.4", [0.3], rounds=2)
  diverged["run"]["summary"]["stopped"] = "diverged at round 2"
  (line,) = results.sweep_lines([_sweep_cell("0.1", [0.5, 0.98]),
                                 _sweep_cell("0.2", [0.98, 0.99]), diverged])
  assert (line.values, line.unfinished, line.chosen) == ([0.1, 0.2], 0, 0.2)
  assert line.diverged == [0.4]


def test_sweep_lines_count_to_the_given_target_over_the_runs_own():
  cells = [_sweep_cell("0.1", [0.90, 0.96], target=None),
           _sweep_cell("0.2", [0.95, 0.95], target=None)]
  (line,) = results.sweep_lines(cells)
  assert line.target is None and line.selected == 0.1  # best accuracy
  (line,) = results.sweep_lines(cells, 0.95)
  assert line.reached == [2, 1] and line.chosen == 0.2  # fewest rounds


def test_sweep_values_must_be_distinct_numbers():
  with pytest.raises(ValueError, match="repeat a number"):
    results.sweep_lines([_sweep_cell("0.1", [0.9]),
                         _sweep_cell("0.10", [0.8])])


def test_sweep_plot_draws_a_perfect_run_and_seeds(tmp_path):
  cells = [_sweep_cell(v, a, seed=s) for s in (0, 1)
           for v, a in (("0.1", [0.5, 1.0]), ("0.2", [0.9, 0.95]))]
  assert len(results.sweep_lines(cells)) == 2  # a line per seed
  assert result_plots.plot_sweep(cells, str(tmp_path / "sweep.png"))
  assert (tmp_path / "sweep.png").stat().st_size > 10_000


def test_the_paired_plot_draws_the_committed_pairs(tmp_path):
  cells = _committed_grid("niid_bench.cfg", "niid_bench_paper")
  paired = results.paired_with_fedavg(cells)
  # Each pair is a seed both cells finished; its final difference is theirs.
  assert paired
  for (dataset, partition, algorithm), by_seed in paired.items():
    for seed, differences in by_seed.items():
      ours, fedavg = ([results.accuracy_curve(c["run"]["metrics"])[1][-1]
                       for c in cells
                       if (c["dataset"], c["partition"], c["algorithm"],
                           c["seed"]) == (dataset, partition, name, seed)]
                      for name in (algorithm, "fedavg"))
      assert differences["final"] == ours[0] - fedavg[0]
  assert result_plots.plot_paired(cells, str(tmp_path / "paired.png"))
  assert (tmp_path / "paired.png").stat().st_size > 10_000
  # Without FedAvg, or before any pair finished, there is nothing to draw.
  others = [c for c in cells if c["algorithm"] != "fedavg"]
  assert not result_plots.plot_paired(others, str(tmp_path / "none.png"))
  unfinished = [dict(c, run=dict(c["run"], summary=None)) for c in cells]
  assert not result_plots.plot_paired(unfinished, str(tmp_path / "none.png"))
  assert not (tmp_path / "none.png").exists()


def test_the_settings_plot_pairs_finished_cells_by_seed(tmp_path):
  def cell(seed, finals, requested=4):
    return dict(dataset="mnist", partition="c1", algorithm="fedprox",
                seed=seed, run=_run(finals, requested=requested))
  groups = {"0 (FedAvg)": [cell(0, [0.5] * 4), cell(1, [0.6] * 4)],
            "0.01": [cell(1, [0.1, 0.2, 0.3, 0.4])],  # no seed 0
            "0.1": [cell(0, [0.3] * 4), cell(1, [0.2] * 2)]}  # s1 unfinished
  assert results.settings_by_seed(groups, last=2) == {
      0: [(0.5, 0.5), None, (0.3, 0.3)],
      1: [(0.6, 0.6), (0.4, statistics.fmean([0.3, 0.4])), None]}
  assert result_plots.plot_settings(groups, str(tmp_path / "mu.png"),
                                    xlabel="FedProx μ", caption="a caption")
  assert (tmp_path / "mu.png").stat().st_size > 10_000
  unfinished = {"0.1": [cell(1, [0.2] * 2)]}
  assert not result_plots.plot_settings(unfinished, str(tmp_path / "no.png"),
                                        xlabel="FedProx μ")
  assert not (tmp_path / "no.png").exists()


def test_signed_never_prints_minus_zero():
  assert results.signed(-0.04) == "+0.0"
  assert results.signed(-0.06) == "-0.1"
  assert results.signed(0.0) == "+0.0"
  assert results.signed(1.234, 2) == "+1.23"
  assert results.signed(-0.004, 2) == "+0.00"


def test_a_mistyped_run_directory_is_an_error_not_an_empty_run(tmp_path):
  with pytest.raises(FileNotFoundError, match="no run directory .*runz"):
    results.read_run(str(tmp_path / "runz"))
  # A grid's cell not yet run, and a run not started yet, have no rounds.
  assert results.read_run(str(tmp_path / "runz"), missing_ok=True) == {
      "metrics": [], "summary": None}
  assert results.read_run(str(tmp_path)) == {"metrics": [], "summary": None}

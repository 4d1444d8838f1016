"""experiments/report.py: the committed results README and grid reports are
what the report command writes from the committed runs; without TensorFlow."""

import logging
import os
import re
import shutil
import subprocess
import sys

import pytest

import files
from tff_niid import grids
from tff_niid import results
from tff_niid.reports import niid_bench
from tff_niid.reports import readme
from tff_niid.reports import tree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(REPO, "experiments", "report.py")


def test_committed_report_is_up_to_date(tmp_path):
  # A tensorflow that cannot be imported: report.py and the grid.py it runs
  # must not need it.
  (tmp_path / "tensorflow").mkdir()
  (tmp_path / "tensorflow" / "__init__.py").write_text(
      "raise ImportError('the report must not import TensorFlow')\n")
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(tmp_path)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
  run = subprocess.run([sys.executable, REPORT, "--check"], cwd=REPO, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300, check=False)
  assert run.returncode == 0, (
      "experiments/results is stale: run .venv/bin/python "
      f"experiments/report.py\n{run.stdout[-5000:]}")


def _readme_block(name):
  """The committed results README's generated block `name`."""
  with open(os.path.join(REPO, "experiments", "results", "README.md")) as f:
    text = f.read()
  start = text.index(f"<!-- generated:{name} -->")
  return text[start:text.index(f"<!-- end generated:{name} -->", start)]


def test_every_mcmahan_row_runs_at_its_selected_rate():
  # The like-for-like table (kept up to date by the test above) flags a row
  # whose seeds grid runs another rate than its selection chose, or that no
  # seeds grid holds.
  rows = _table_rows(_readme_block("mcmahan_like_for_like"))
  assert len(rows) == 8  # 2NN, CNN E=5 and E=1, FedSGD; IID and shards
  for row in rows:
    assert not any("not the selected" in cell or "not configured" in cell
                   for cell in row), row


def _table_rows(block):
  """The cells of a markdown table's body rows in `block`."""
  return [[cell.strip() for cell in line.strip("|").split("|")]
          for line in block.splitlines()
          if line.startswith("| ") and "---" not in line][1:]


def test_each_seeds_approach_ends_at_its_like_for_like_count():
  # The approach table's last column is each seed's first round at the
  # target, which the like-for-like table lists per seed; the levels below
  # the target are passed no later than the target itself.
  # (Rows whose every finished seed reached the target list their counts.)
  counts = {tuple(row[:2]): listed.group(1)
            for row in _table_rows(_readme_block("mcmahan_like_for_like"))
            if (listed := re.search(r"\(([\d, ]+)\)$", row[6]))}
  approach: dict[tuple[str, ...], list[str]] = {}
  for row in _table_rows(_readme_block("mcmahan_approach")):
    if tuple(row[:2]) not in counts:
      continue
    approach.setdefault(tuple(row[:2]), []).append(row[-1])
    firsts = [int(cell) for cell in row[4:]]
    assert firsts == sorted(firsts), row
  assert counts
  assert {row: ", ".join(seeds) for row, seeds in approach.items()} == counts


def _cell(partition, algorithm, seed, accuracies, finished=True):
  """A synthetic finished (or unfinished) cell of a seeded grid."""
  rounds = len(accuracies)
  return dict(
      dataset="mnist", partition=partition,
      spec="classes(k=1)" if partition == "c1" else "iid",
      algorithm=algorithm, seed=seed,
      run=dict(metrics=[{"round": float(r), "test_accuracy": a}
                        for r, a in enumerate(accuracies, 1)],
               summary=dict(stopped="completed", rounds_run=rounds,
                            rounds_requested=rounds if finished else 50)))


def test_paired_differences_are_seed_by_seed_and_counted_by_kind():
  flat = [0.5] * 6
  cells = [
      _cell("iid", "fedavg", 0, flat), _cell("iid", "fedprox", 0,
                                             [0.5] * 5 + [0.504]),
      _cell("c1", "fedavg", 0, flat), _cell("c1", "fedprox", 0, [0.2] * 6),
      _cell("c1", "fedavg", 1, flat), _cell("c1", "fedprox", 1, [0.6] * 6),
      # Seed 2's FedProx cell is unfinished: its pair is left out.
      _cell("c1", "fedavg", 2, flat),
      _cell("c1", "fedprox", 2, [0.9] * 6, finished=False),
      # Seed 3 ends level, but for float noise: +0.00, not -0.00.
      _cell("c1", "fedavg", 3, flat),
      _cell("c1", "fedprox", 3, [0.5] * 5 + [0.5 - 1e-12]),
      # FedAvgM has finished only on #C=k so far.
      _cell("c1", "fedavgm", 0, [0.4] * 6)]
  # Flower-like references (percent): c1 quoted for both, iid for FedProx
  # only (no difference to give).
  quoted = {("mnist", "c1", "fedprox"): (52.0, 27.0),
            ("mnist", "c1", "fedavg"): (19.0, 12.0),
            ("mnist", "iid", "fedprox"): (99.2, None)}
  text = niid_bench.paired_differences(cells, quoted)
  rows = {tuple(row[:3]): row[3:] for row in _table_rows(text)}
  # The last 5 rounds: 0.5 four times and 0.504 once, 0.0008 above FedAvg.
  assert rows[("mnist", "iid", "fedprox")] == [
      "0", "+0.40 (+0.40)", "+0.08 (+0.08)", "+0.40 (+0.40)", "—"]
  assert rows[("mnist", "c1", "fedprox")] == [
      "0, 1, 3", *["-6.67 ± 20.82 (-30.00, +10.00, +0.00)"] * 3,
      "+33.00 (+1.1)"]  # 33 / hypot(27, 12) = 1.11
  assert rows[("mnist", "c1", "fedavgm")] == ["0", *["-10.00 (-10.00)"] * 3,
                                              "—"]
  assert ("fedprox: on the #C=k partitions, final accuracy below FedAvg's "
          "on 1, level on 1 and above on 1 of 3 seed pairs; best round "
          "below FedAvg's on 1, level on 1 and above on 1 of 3 seed pairs; "
          "the reference's best rounds (its means) below FedAvg's on 0, "
          "level on 0 and above on 1 of 1 groups. On the other partitions, "
          "final accuracy within 0.40 points of FedAvg's on the one seed "
          "pair.") in text
  assert ("fedavgm: on the #C=k partitions, final accuracy below FedAvg's "
          "on 1, level on 0 and above on 0 of 1 seed pairs; best round "
          "below FedAvg's on 1, level on 0 and above on 0 of 1 seed pairs. "
          "On the other partitions, no seed pair finished yet.") in text
  # Without references, the last column is empty and no count is given.
  text = niid_bench.paired_differences(cells)
  assert {row[-1] for row in _table_rows(text)} == {"—"}
  assert "reference's" not in text
  assert niid_bench.paired_differences(cells[6:8]) == (
      "No seed finished by FedAvg and another algorithm yet.")
  with pytest.raises(ValueError, match="no fedavg"):
    niid_bench.paired_differences(cells[1:2])
  with pytest.raises(ValueError, match="evaluated 6 and 5 rounds"):
    niid_bench.paired_differences([_cell("iid", "fedavg", 0, flat[:5]),
                                   _cell("iid", "fedprox", 0, flat)])


def test_the_paired_comparison_uses_the_seeds_both_algorithms_finished():
  paper = _readme_block("niid_bench_paper")
  # Seeds done and not diverged ("1 (diverged at round 7)" is done).
  done = {tuple(row[:3]): {s for s in row[3].split(", ")
                           if s != "—" and "diverged" not in s}
          for row in _table_rows(paper[paper.index("#### Progress"):])}
  paired = _table_rows(_readme_block("niid_bench_against_fedavg"))
  assert paired
  for row in paired:
    both = done[tuple(row[:3])] & done[(row[0], row[1], "fedavg")]
    assert set(row[3].split(", ")) == both, row
  listed = {tuple(row[:3]) for row in paired}
  assert all(key in listed for key, seeds in done.items()
             if key[2] != "fedavg" and
             seeds & done[(key[0], key[1], "fedavg")])
  # The pair shares the seed's partition.
  grid = os.path.join(REPO, "experiments", "results", "niid_bench_paper")
  for dataset, partition, algorithm, seeds, *_ in paired:
    for seed in seeds.split(", "):
      summaries = []
      for name in (algorithm, "fedavg"):
        with open(os.path.join(grid, f"{dataset}_{partition}_{name}_s{seed}",
                               "partition_summary.txt")) as f:
          summaries.append(f.read())
      assert summaries[0] == summaries[1], (dataset, partition, seed)


def test_the_mu_table_agrees_with_the_grid_it_extends():
  # Its μ 0 and μ 0.01 rows are niid_bench_paper's FedAvg and FedProx:
  # the same seeds and statistics as the results table, and the same paired
  # differences as the paired table; the other μ are the sweep's cells.
  paper = _readme_block("niid_bench_paper")
  table = {tuple(row[:3]): row for row in _table_rows(
      paper[:paper.index("#### Progress")])}
  done = {tuple(row[:3]): row[3] for row in _table_rows(
      paper[paper.index("#### Progress"):])}
  paired = {tuple(row[:3]): row for row in _table_rows(
      _readme_block("niid_bench_against_fedavg"))}
  rows = _table_rows(_readme_block("niid_bench_fedprox_mu"))
  assert [row[2] for row in rows] == ["0 (FedAvg)", "0.001", "0.01", "0.1",
                                      "1"]
  for row in rows:
    dataset, partition, mu, grid, seeds, *stats, difference = row
    if grid != "niid_bench_paper":
      assert grid == "niid_bench_fedprox_mu", row
      continue
    key = (dataset, partition, "fedavg" if mu == "0 (FedAvg)" else "fedprox")
    assert seeds == done[key], row
    assert stats == table[key][4:7], row
    if key[2] == "fedprox" and seeds == paired[key][3]:
      assert difference == paired[key][4], row


def test_the_mu_plot_draws_the_mu_tables_groups(tmp_path):
  members, _ = niid_bench.mu_groups(REPO)
  labels = [row[2] for row in _table_rows(
      _readme_block("niid_bench_fedprox_mu"))]
  assert [niid_bench.mu_label(mu) for _, _, mu in members] == labels
  assert niid_bench.fedprox_mu_plot(REPO, str(tmp_path / "mu.png"))
  assert (tmp_path / "mu.png").stat().st_size > 10_000


def test_the_glance_agrees_with_the_sections_tables():
  # The summary at the top of the committed README says what the detailed
  # tables below it say: each McMahan ratio is its like-for-like row's, and
  # NIID-Bench's finished groups are those of its progress table with no
  # seed to do.
  glance = _table_rows(_readme_block("at_a_glance"))
  ratios = {tuple(row[:2]): row[-1]
            for row in _table_rows(_readme_block("mcmahan_like_for_like"))}
  mcmahan = glance[0]
  for item in mcmahan[3].split("; "):
    variant, partition, ratio = item.split(maxsplit=2)  # "1.06 ± 0.25"
    assert ratios[(variant, partition)] == ratio, item
  assert mcmahan[1] == (f"{len(mcmahan[3].split('; '))} of {len(ratios)} "
                        "rows")
  paper = _readme_block("niid_bench_paper")
  progress = _table_rows(paper[paper.index("#### Progress"):])
  for row in glance[1:]:
    algorithm = row[0].split(", ")[1].split()[0]
    groups = [p for p in progress if p[2] == algorithm]
    complete = sum(p[4] == "—" for p in groups)
    assert row[1] == f"{complete} of {len(groups)} groups", row
    # The groups left, with how many of their cells have ended.
    left = [p for p in groups if p[4] != "—"]
    done = sum(len(p[3].split(", ")) for p in left if p[3] != "—")
    if not left:
      assert row[4] == "—", row
    elif done == 0:
      assert row[4].startswith(f"not started ({3 * len(left)} cells"), row
    else:
      assert row[4].startswith(f"{done} of {3 * len(left)} cells done in "
                               f"the {len(left)} incomplete groups"), row


def test_fill_generated_rewrites_blocks_and_keeps_prose():
  text = ("prose 1\n<!-- generated:a -->\nold\n<!-- end generated:a -->\n"
          "prose 2\n<!-- generated:b -->\n<!-- end generated:b -->\n")
  assert results.fill_generated(text, {"a": "| x |", "b": "new\n"}) == (
      "prose 1\n<!-- generated:a -->\n\n| x |\n\n<!-- end generated:a -->\n"
      "prose 2\n<!-- generated:b -->\n\nnew\n\n<!-- end generated:b -->\n")


@pytest.mark.parametrize("text, blocks, message", [
    ("<!-- generated:a -->\n", {"a": ""}, "not closed"),
    ("<!-- end generated:a -->\n", {}, "without its opening"),
    ("<!-- generated:a -->\n<!-- end generated:a -->\n", {}, "not known"),
    ("", {"a": ""}, "no generated block"),
    ("<!-- generated:a -->\n<!-- end generated:a -->\n" * 2, {"a": ""},
     "twice"),
])
def test_fill_generated_rejects_unmatched_blocks(text, blocks, message):
  with pytest.raises(ValueError, match=message):
    results.fill_generated(text, blocks)


def test_report_warns_of_run_cells_its_config_does_not_run(tmp_path,
                                                           caplog):
  # A command-line --only_partitions replaces the config's own, so a grid's
  # directory can hold cells its config does not run; the report leaves them
  # out, and says so.
  configs = tmp_path / "experiments" / "configs"
  configs.mkdir(parents=True)
  (configs / "g.cfg").write_text(
      "--grid_name=g\n--datasets=mnist\n--partition=a=iid\n"
      "--partition=b=shards\n--algorithms=fedavg\n--only_partitions=a\n")
  grid_dir = tmp_path / "experiments" / "results" / "g"
  files.write_run(grid_dir / "mnist_b_fedavg", [0.5])
  files.write_run(grid_dir / "mnist_a_fedavg", [0.6])
  with caplog.at_level(logging.WARNING):
    _, cells = tree.config_cells(str(tmp_path), "g.cfg")
  assert [c["partition"] for c in cells] == ["a"]
  assert "g.cfg does not run mnist_b_fedavg; not reported" in caplog.text


def test_curve_statistics():
  rows = [{"round": float(r), "test_accuracy": a}
          for r, a in enumerate([0.5, 0.9, 0.7, float("nan"), 0.95], 1)]
  assert results.accuracy_at(rows, 2) == 0.9
  assert results.accuracy_at(rows, 4) is None
  assert results.first_round_at(rows, 0.9) == 2
  assert results.first_round_at(rows, 0.99) is None
  # In a row over the evaluated rounds: round 2 touches 0.9 and falls back.
  assert results.first_round_at(rows, 0.9, sustained=2) is None
  assert results.first_round_at(rows, 0.7, sustained=2) == 2
  assert results.first_round_at(rows, 0.7, sustained=3) == 2
  assert results.first_round_at(rows, 0.5, sustained=5) is None
  assert results.first_rounds_below(rows, 0.95, (5, 0.5, 0)) == [2, 5, 5]
  # 0.2 - 2/100 is a hair above 0.18 as a float: an accuracy of 0.18 is at
  # the level 2 points below 20%.
  assert results.first_rounds_below(
      [{"round": 1.0, "test_accuracy": 0.18}], 0.2, (2,)) == [1]
  assert results.first_rounds_below(rows, 0.99, (0.1, 0)) == [None, None]
  drop, at = results.largest_drop(rows)
  assert (round(drop, 6), at) == (0.2, 3)
  assert results.largest_drop(rows[:2]) == (0.0, None)
  assert results.drops(rows) == [(pytest.approx(0.2), 3)]
  assert results.drops(rows, larger_than=0.25) == []


def test_crossing_round_counts_as_mcmahan_et_al():
  rows = [{"round": float(r), "test_accuracy": a}
          for r, a in enumerate([0.90, 0.96, 0.95, 0.98, 0.97], 1)]
  # Monotone curve 0.90, 0.96, 0.96, 0.98: crosses 0.97 halfway between
  # rounds 3 and 4; evaluated every 2nd round, halfway between 2 and 4.
  assert results.crossing_round(rows, 0.97) == pytest.approx(3.5)
  assert results.crossing_round(rows, 0.97, every=2) == pytest.approx(3.0)
  assert results.crossing_round(rows, 0.90) == 1.0
  assert results.crossing_round(rows, 0.99) is None
  with pytest.raises(ValueError, match="every"):
    results.crossing_round(rows, 0.97, every=0)


def test_round_times_and_partition_summary(tmp_path):
  files.write_run(tmp_path / "a", [0.1] * 9, seconds=1.0)
  files.write_run(tmp_path / "b", [0.1], seconds=3600.0)
  times = results.round_times(
      [results.read_run(str(tmp_path / n), missing_ok=True)
       for n in ("a", "b", "missing")])
  assert times == {"runs": 2, "rounds": 10, "median": 1.0, "p10": 1.0,
                   "p90": 3600.0, "hours": (9 + 3600) / 3600}
  assert results.round_times([]) is None
  (tmp_path / "a" / "partition_summary.txt").write_text(
      "mnist: Partition(scheme='iid')\njs_mean                 0.0027\n"
      "key_dispersion          0.0442\n")
  assert results.read_partition_summary(str(tmp_path / "a")) == {
      "js_mean": 0.0027, "key_dispersion": 0.0442}
  assert results.read_partition_summary(str(tmp_path / "b")) == {}


def test_a_parked_cell_is_named_with_the_round_it_reached(tmp_path):
  parked = tmp_path / "experiments" / "unfinished" / "g" / "mnist_a_fedavg_s2"
  files.write_run(parked, [0.5, 0.6, 0.7])
  (parked / "hparams.txt").write_text("--rounds=50\n--seed=2\n")
  assert tree.parked(str(tmp_path), "g", "mnist_a_fedavg_s2") == (
      "mnist_a_fedavg_s2 (round 3 of 50)")
  assert tree.parked(str(tmp_path), "g", "mnist_a_fedavg_s1") is None


def test_a_grid_is_linked_once_a_cell_of_it_is_committed(tmp_path):
  assert tree.grid_link(str(tmp_path), "g") == "g/ (none finished)"
  (tmp_path / "experiments" / "results" / "g").mkdir(parents=True)
  assert tree.grid_link(str(tmp_path), "g") == "[g/](g/)"


def test_every_parked_cell_of_a_reproduction_is_in_the_report():
  # The committed README (kept up to date by the first test) lists each cell
  # parked in experiments/unfinished/ in its grid's row.
  block = _readme_block("reproduction_progress")
  grid_names = {grids.read_flagfile(
      os.path.join(REPO, "experiments", "configs", name), REPO)[
          "grid_name"][-1] for name in readme.REPRODUCTIONS}
  unfinished = os.path.join(REPO, "experiments", "unfinished")
  for grid in sorted(grid_names & set(os.listdir(unfinished))):
    row = next(line for line in block.splitlines()
               if line.startswith(f"| [{grid}/]"))
    for cell in os.listdir(os.path.join(unfinished, grid)):
      assert f"{cell} (round " in row, (grid, cell)


def test_the_top_progress_table_estimates_each_grid_as_its_section_does():
  # The committed README: a grid's hours to do at the top are the total
  # under its own section's progress table, when it has one.
  top = {row[0]: row for row in _table_rows(
      _readme_block("reproduction_progress"))}
  sections = {"niid_bench_paper": _readme_block("niid_bench_paper"),
              "mcmahan2017_": _readme_block("mcmahan_progress")}
  for grid, block in sections.items():
    total = re.search(r"need about (\d+) training cell-hours", block)
    if total is None:  # nothing left to do there
      continue
    # A grid with no finished cell is named, not linked.
    hours = sum(float(row[-1]) for link, row in top.items()
                if link.lstrip("[").startswith(grid))
    assert abs(hours - int(total.group(1))) < 1, grid


def _write_torch_run(run_dir, seed, loss, framework):
  os.makedirs(run_dir)
  (run_dir / "hparams.txt").write_text(
      f"--dataset=mnist\n--rounds=1\n--seed={seed}\n")
  (run_dir / "metrics.csv").write_text(
      f"round,round_seconds,test_accuracy,test_loss\n1,9.0,0.101,{loss}\n")
  (run_dir / "summary.json").write_text(
      f'{{"rounds_run": 1, "framework": "{framework}"}}')


def test_torch_versions_compare_round_one_of_the_same_command(tmp_path):
  committed = tmp_path / tree.RESULTS / "niid_bench_torch" / "mnist_c1_s0"
  other = tmp_path / tree.RESULTS / "niid_bench_torch_versions" / "mnist_c1_s0"
  _write_torch_run(committed, 0, 3.0234386920928955, "torch 1.13")
  _write_torch_run(other, 0, 3.0234386920928955, "torch 2.13")
  assert "are the same under both" in niid_bench.torch_versions(
      str(tmp_path))
  (other / "metrics.csv").write_text(
      "round,round_seconds,test_accuracy,test_loss\n1,9.0,0.101,3.0234387\n")
  assert "are not the same under both" in niid_bench.torch_versions(
      str(tmp_path))
  (other / "hparams.txt").write_text("--dataset=mnist\n--rounds=1\n--seed=1\n")
  with pytest.raises(ValueError, match="ran other flags"):
    niid_bench.torch_versions(str(tmp_path))


def test_a_torch_run_of_fedprox_clients_is_not_taken_for_fedavg(tmp_path):
  # niid_bench_torch.py runs from before --fedprox_mu trained FedAvg's
  # clients; one with mu > 0 is not the grid's FedAvg cell.
  settings = dict(num_clients="10", rounds="50", local_epochs="10",
                  batch_size="64", client_lr="0.01", client_momentum="0.9",
                  client_weight_decay="1e-05")
  hparams = "".join(f"--{k}={v}\n" for k, v in
                    dict(settings, dataset="mnist").items())
  (tmp_path / "hparams.txt").write_text(hparams)
  train = {k: [v] for k, v in settings.items()}
  run = {"metrics": [], "summary": {"rounds_run": 50}}
  check = niid_bench._check_torch_run  # pylint: disable=protected-access
  check(str(tmp_path), run, train, dict(dataset="mnist"))
  (tmp_path / "hparams.txt").write_text(hparams + "--fedprox_mu=0\n")
  check(str(tmp_path), run, train, dict(dataset="mnist"))
  (tmp_path / "hparams.txt").write_text(hparams + "--fedprox_mu=0.01\n")
  with pytest.raises(ValueError, match="--fedprox_mu=0.01"):
    check(str(tmp_path), run, train, dict(dataset="mnist"))


def test_stale_names_changed_and_missing_outputs(tmp_path):
  repo, copy = tmp_path / "repo", tmp_path / "copy"
  for root, readme_text in ((repo, "old\n"), (copy, "new\n")):
    grid = root / tree.RESULTS / "g"
    grid.mkdir(parents=True)
    (root / tree.README).write_text(readme_text)
    (grid / "results.md").write_text("same\n")
  (copy / tree.RESULTS / "g" / "accuracy_curves.png").write_bytes(b"png")
  stale = readme.stale(str(copy), str(repo))
  assert sorted(stale) == [tree.README,
                           os.path.join(tree.RESULTS, "g",
                                        "accuracy_curves.png")]
  assert "-old" in stale[tree.README] and "+new" in stale[tree.README]
  assert stale[os.path.join(tree.RESULTS, "g", "accuracy_curves.png")] == []


def test_each_block_is_on_exactly_one_page(tmp_path):
  for directory in (tree.CONFIGS, tree.RESULTS, tree.UNFINISHED):
    shutil.copytree(os.path.join(REPO, directory), tmp_path / directory)
  readme.rewrite(str(tmp_path))  # as committed: each block on one page
  superseded = tmp_path / tree.SUPERSEDED
  text = superseded.read_text()
  superseded.write_text(text + "\n<!-- generated:timing -->\n"
                        "<!-- end generated:timing -->\n")
  with pytest.raises(ValueError, match=r"on two: \['timing'\]"):
    readme.rewrite(str(tmp_path))
  superseded.write_text(text.replace("generated:mcmahan_rounds", "x"))
  with pytest.raises(ValueError, match=r"on no page .*\['mcmahan_rounds'\]"):
    readme.rewrite(str(tmp_path))

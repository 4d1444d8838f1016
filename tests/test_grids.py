"""tff_niid.grids: a grid's flags, cells, names and grid.log, as
experiments/grid.py and tools/run_grid.sh write them (without TensorFlow)."""

import os

import pytest

import files
from tff_niid import grids


def test_grid_cells_follow_grid_py_names(tmp_path):
  flagfile = tmp_path / "grid.cfg"
  flagfile.write_text(
      "# a grid\n--grid_name=g\n--datasets=mnist\n--partition=iid=iid\n"
      "--partition=dir=dirichlet(alpha=0.5)\n--algorithms=fedavg\n"
      "--algorithms=fedavg,fedprox\n--seeds=0,1\n--nosmoke\n")
  flags = grids.read_flagfile(flagfile)
  assert flags["partition"] == ["iid=iid", "dir=dirichlet(alpha=0.5)"]
  assert "nosmoke" not in flags
  files.write_run(tmp_path / "g" / "mnist_dir_fedprox_s1", [0.5, 0.6])
  cells = grids.grid_cells(str(tmp_path / "g"), flags)
  assert [os.path.basename(c["run_dir"]) for c in cells] == [
      f"mnist_{p}_{a}_s{s}" for s in (0, 1) for p in ("iid", "dir")
      for a in ("fedavg", "fedprox")]
  assert cells[-1]["spec"] == "dirichlet(alpha=0.5)"
  assert [c for c in cells if c["run"]["metrics"]] == [cells[-1]]
  swept = grids.grid_cells(str(tmp_path / "g"), dict(
      flags, seeds=["0"], partition=["iid=iid"],
      sweep=["client_lr=0.1,0.2", "local_epochs=1"]))
  assert [os.path.basename(c["run_dir"]) for c in swept] == [
      f"mnist_iid_{a}_client_lr{lr}_local_epochs1_s0"
      for a in ("fedavg", "fedprox") for lr in ("0.1", "0.2")]
  assert [c["sweep"] for c in swept[:2]] == [
      {"client_lr": "0.1", "local_epochs": "1"},
      {"client_lr": "0.2", "local_epochs": "1"}]
  assert grids.sweep_variants([]) == [("", {})]
  with pytest.raises(ValueError, match="expected FLAG=V1,V2"):
    grids.sweep_variants(["client_lr"])


def test_grid_partitions_keep_only_and_refuse_malformed_items():
  items = ["iid=iid", " dir = dirichlet(alpha=0.5)"]
  assert grids.grid_partitions(items) == [
      ("iid", "iid"), ("dir", "dirichlet(alpha=0.5)")]
  assert grids.grid_partitions(items, ["dir"]) == [
      ("dir", "dirichlet(alpha=0.5)")]
  for bad, message in [(["iid"], "expected NAME=SPEC"),
                       (["=iid"], "expected NAME=SPEC"),
                       (["a=iid", "a=shards"], "repeat"),
                       ([], "at least one")]:
    with pytest.raises(ValueError, match=message):
      grids.grid_partitions(bad)
  with pytest.raises(ValueError, match=r"\['c'\] not in the grid's"):
    grids.grid_partitions(items, ["iid", "c"])
  flags = {"only_partitions": ["a", "b, c"], "seeds": ["0,1"]}
  assert grids.flag_list(flags, "only_partitions") == ["b", "c"]
  assert grids.flag_list(flags, "datasets") is None
  with pytest.raises(ValueError, match="without --datasets"):
    grids.grid_cells("unused", {"partition": items, "algorithms": ["a"]})


def test_read_flagfile_reads_nested_flagfiles_in_place(tmp_path):
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "base.cfg").write_text(
      "--grid_name=base\n--seeds=0\n--reference=a/b/c=1\n")
  (tmp_path / "configs" / "variant.cfg").write_text(
      "--reference=a/b/c=0\n--flagfile=configs/base.cfg\n"
      "--grid_name=variant\n")
  flags = grids.read_flagfile(tmp_path / "configs" / "variant.cfg",
                                str(tmp_path))
  # absl's order: the nested file's flags where its --flagfile line is.
  assert flags == {"reference": ["a/b/c=0", "a/b/c=1"],
                   "grid_name": ["base", "variant"], "seeds": ["0"]}


def test_rounds_by_code_follows_the_grid_log_headers():
  log = "\n".join([
      "=== 2026-11-30T11:00:00Z grid.py --flagfile=g.cfg",
      "[a_s0] round 1/5 | test acc 0.1",
      "=== 2026-11-30T12:00:00Z code aaa111: grid.py --flagfile=g.cfg",
      "[a_s0] round 2/5 | test acc 0.2",
      "[a_s0] round 3/5 | test acc 0.3",
      "[a_s0_x] round 4/5 | test acc 0.3",
      "=== 2026-11-30T13:00:00Z code bbb222: grid.py --flagfile=g.cfg",
      "[a_s0] resuming after round 2 from ...",
      "[a_s0] round 3/5 | test acc 0.3",  # round 3 again: replaces aaa111's
      "[a_s0] round 4/5 | test acc 0.4",
      "[a_s0] round 5/5 | test acc 0.5"])
  assert grids.rounds_by_code(log, "a_s0") == [
      (1, 1, None), (2, 2, "aaa111"), (3, 5, "bbb222")]
  assert grids.rounds_by_code(log, "b_s0") == []
  # A finished cell run again under its name, resumed from rounds the log
  # did not see: those rounds are not attributed.
  again = log + "\n" + "\n".join([
      "[a_s0] done (completed): 5 rounds",
      "=== 2026-11-30T14:00:00Z code ccc333: grid.py --flagfile=g.cfg",
      "[a_s0] resuming after round 2 from ...",
      "[a_s0] round 3/5 | test acc 0.3",
      "[a_s0] round 4/5 | test acc 0.4"])
  assert grids.rounds_by_code(again, "a_s0") == [(1, 2, None),
                                                   (3, 4, "ccc333")]
  # The round a cell diverged at ran under its header's code; a later
  # "diverged ... earlier, skipped" line is no event.
  diverged = log + "\n" + "\n".join([
      "[a_s0] done (completed): 5 rounds",
      "=== 2026-11-30T15:00:00Z code ddd444: grid.py --flagfile=g.cfg",
      "[b_s0] round 1/5 | test acc 0.1",
      "[b_s0] ERROR: round 2: the model update is NaN/inf ...",
      "[b_s0] diverged at round 2: recorded as the cell's outcome",
      "=== 2026-11-30T16:00:00Z code eee555: grid.py --flagfile=g.cfg",
      "[b_s0] diverged at round 2 earlier, skipped"])
  assert grids.rounds_by_code(diverged, "b_s0") == [(1, 2, "ddd444")]


def test_a_cells_grid_log_lines_keep_its_spans_in_another_log():
  """A parked cell's lines (tools/park_unfinished.sh), appended to a fresh
  machine's grid.log before it resumes, attribute its rounds as the whole
  log would."""
  log = "\n".join([
      "=== 2026-11-30T11:00:00Z code aaa111: grid.py --flagfile=g.cfg",
      "[a_s0] round 1/5 | test acc 0.1",
      "[b_s0] round 1/5 | test acc 0.1",
      "[a_s0] round 2/5 | test acc 0.2",
      "=== 2026-11-30T12:00:00Z code bbb222: grid.py --flagfile=g.cfg",
      "[b_s0] round 2/5 | test acc 0.2",
      "=== 2026-11-30T13:00:00Z code ccc333: grid.py --flagfile=g.cfg",
      "[a_s0] resuming after round 2 from ...",
      "[a_s0] round 3/5 | test acc 0.3",
      "[a_s0_x] round 4/5 | test acc 0.3"])
  kept = grids.grid_log_of_cell(log, "a_s0")
  assert kept.splitlines() == [log.splitlines()[i] for i in (0, 1, 3, 6, 7, 8)]
  fresh = kept + "\n".join([
      "=== 2026-12-01T09:00:00Z code ddd444: grid.py --flagfile=g.cfg",
      "[a_s0] resuming after round 3 from ...",
      "[a_s0] round 4/5 | test acc 0.4",
      "[a_s0] round 5/5 | test acc 0.5"])
  assert grids.rounds_by_code(fresh, "a_s0") == [
      (1, 2, "aaa111"), (3, 3, "ccc333"), (4, 5, "ddd444")]
  assert grids.grid_log_of_cell(log, "c_s0") == ""
  # Lines from before any header stay unattributed in the other log.
  headless = "\n".join([
      "[a_s0] round 1/5 | test acc 0.1",
      "=== 2026-11-30T11:00:00Z code aaa111: grid.py --flagfile=g.cfg",
      "[a_s0] round 2/5 | test acc 0.2"])
  fresh = ("=== 2026-12-01T09:00:00Z code ddd444: grid.py --flagfile=g.cfg\n" +
           grids.grid_log_of_cell(headless, "a_s0"))
  assert grids.rounds_by_code(fresh, "a_s0") == [(1, 1, None),
                                                   (2, 2, "aaa111")]


def test_keyed_values():
  assert grids.keyed_values(["mnist/iid/fedavg=99.1"], float) == {
      ("mnist", "iid", "fedavg"): 99.1}
  with pytest.raises(ValueError, match="DATASET/PARTITION/ALGORITHM"):
    grids.keyed_values(["mnist/iid=99.1"], float)

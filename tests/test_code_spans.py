"""experiments/code_spans.py: a cell resumed under a later commit is checked
against its committed first rounds, on real MNIST training runs."""

import csv
import math
import os
import subprocess
import sys

import pytest

import processes

from tff_niid import results
from tff_niid.reports import code_spans

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# An older commit whose training code differs from today's only in
# tff_niid/runtime.py (the worker's nice), so it computes what HEAD computes;
# should a later commit change the numerics on purpose, move this forward.
OLDER = "c30d134"
# An initialisation OLDER knows too (its train.py reruns the cell's flags).
QUICK = ["--num_clients=20", "--clients_per_round=4", "--model=2nn",
         "--max_examples_per_client=60", "--batch_size=20", "--seed=3",
         "--initializer=glorot_uniform"]


def _git(*args):
  return subprocess.run(["git", "-C", REPO, *args], check=True,
                        capture_output=True, text=True).stdout.strip()


def test_spans_read_a_committed_code_file():
  cell = os.path.join(REPO, "experiments", "results", "niid_bench_paper",
                      "mnist_c1_fedavg_s0")
  assert code_spans.spans(cell) == [
      code_spans.Span(1, 20, None), code_spans.Span(21, 50, "65c2e0c654e1")]
  assert code_spans.spans(os.path.join(REPO, "experiments")) == []


def test_same_round_compares_what_both_computed_bit_for_bit():
  committed = {"round": 1.0, "round_seconds": 9.0, "train_loss": 0.25,
               "test_accuracy": math.nan}
  rerun = dict(committed, round_seconds=3.0, test_accuracy=0.5)
  assert code_spans.same_round(committed, rerun)
  assert not code_spans.same_round(
      committed, dict(rerun, train_loss=math.nextafter(0.25, 1)))
  with pytest.raises(ValueError, match="train_loss"):
    code_spans.same_round({"round": 1.0}, {"round": 1.0})


def test_the_audit_reruns_to_the_first_evaluated_round_after_round_1():
  def rows(evaluated, rounds=12):
    return [{"round": float(r), "train_loss": 0.1,
             "test_accuracy": 0.5 if r in evaluated else math.nan}
            for r in range(1, rounds + 1)]
  assert code_spans.audit_rounds(rows(range(1, 13))) == 2
  assert code_spans.audit_rounds(rows({5, 10, 12})) == 5  # FedSGD's grids
  # None evaluated within MAX_AUDIT_ROUNDS: round 2, its train metrics
  # taken after round 1's server step.
  assert code_spans.audit_rounds(rows({1}, rounds=3)) == 2
  assert code_spans.audit_rounds(rows({12})) == 2
  assert code_spans.audit_rounds(rows({1}, rounds=1)) == 1


_AS_THE_CELL = ("the later commit resuming from the preceding commit's "
                "checkpoint of round 1")


@pytest.mark.parametrize("first, preceding, committed_train_loss, reruns, "
                         "outcome", [
    # The committed rounds reproduced, bbb resuming from aaa's round 1.
    (code_spans.Span(1, 5, "aaa"), None, 0.5, {("aaa", "bbb"): 0.5},
     f"rounds 1-2 reproduced, {_AS_THE_CELL}"),
    # A third span: bbb resumes from ccc's round 1, as it did in the cell.
    (code_spans.Span(1, 5, "aaa"), code_spans.Span(6, 9, "ccc"), 0.5,
     {("ccc", "bbb"): 0.5}, f"rounds 1-2 reproduced, {_AS_THE_CELL}"),
    # Not reproduced, alike under the first commit: the machine's doing.
    (code_spans.Span(1, 5, "aaa"), None, 0.5,
     {("aaa", "bbb"): 0.6, ("aaa", "aaa"): 0.6},
     f"rounds 1-2 alike under both commits, {_AS_THE_CELL}; the committed "
     "ones differ"),
    # The first commit computed round 1 only: aaa reruns rounds 1-2 alone.
    (code_spans.Span(1, 1, "aaa"), None, 0.5,
     {("aaa", "bbb"): 0.5, ("aaa", "aaa"): 0.5},
     f"rounds 1-2 alike under both commits, {_AS_THE_CELL}"),
    (code_spans.Span(1, 1, "aaa"), None, 0.5,
     {("aaa", "bbb"): 0.5, ("aaa", "aaa"): 0.6},
     f"rounds 1-2 differ between the commits, {_AS_THE_CELL}"),
    # No first commit: bbb runs both starts; rounds other than the committed
    # ones are unsettled.
    (code_spans.Span(1, 5, None), None, 0.5, {("bbb", "bbb"): 0.6},
     code_spans.UNSETTLED),
    (code_spans.Span(1, 5, None), None, 0.5, {("bbb", "bbb"): 0.5},
     "rounds 1-2 reproduced, resumed after round 1"),
    # ... and its span computed round 1 only: nothing reruns round 2.
    (code_spans.Span(1, 1, None), None, 0.5, {("bbb", "bbb"): 0.5},
     "rounds 1-2 rerun, resumed after round 1; the first span's round 1 "
     "(its commit not recorded) reproduced; no more compared"),
    # A third span whose preceding commit's round 1 already differs from the
    # first commit's: not put on the later commit.
    (code_spans.Span(1, 5, "aaa"), code_spans.Span(6, 9, "ccc"), 0.5,
     {("ccc", "bbb"): 0.6, ("aaa", "aaa"): 0.5},
     f"rounds 1-2 rerun, {_AS_THE_CELL}; round 1 under the preceding commit "
     "differs from the first commit's: see the preceding commit's row"),
])
def test_each_branch_of_the_audit_names_what_it_compared(
    monkeypatch, tmp_path, first, preceding, committed_train_loss, reruns,
    outcome):
  code_spans_binary = pytest.importorskip("experiments.code_spans")
  committed = [{"round": float(r), "train_loss": committed_train_loss,
                "test_accuracy": 0.5} for r in (1, 2, 3)]
  with open(tmp_path / results.METRICS_FILE, "w", newline="") as f:
    writer = csv.DictWriter(f, list(committed[0]))
    writer.writeheader()
    writer.writerows(committed)
  monkeypatch.setattr(code_spans_binary, "_numerics_files",
                      lambda *commits: ["tff_niid/training.py"])
  # Each start leaves out a flag its commit "does not know".
  monkeypatch.setattr(
      code_spans_binary, "_rerun",
      lambda cell_dir, start, resume, work_dir, rounds: (
          [dict(r, train_loss=reruns[start, resume])
           for r in committed[:rounds]],
          [(start, f"flag_{start}"), (resume, f"flag_{resume}")]))
  fields, _ = code_spans_binary._audit_one(  # pylint: disable=protected-access
      str(tmp_path), first, preceding or first, "bbb", str(tmp_path))
  assert fields["outcome"] == outcome
  # Per commit, each flag once, in the order the starts ran (`reruns`'s).
  expected: dict[str, str] = {}
  for start, resume in reruns:
    for commit in (start, resume):
      expected.setdefault(commit, f"{commit}: flag_{commit}")
  assert fields["dropped_flags"] == "; ".join(expected.values())
  # --deepen redoes a row unless it is of the audit's present form.
  assert code_spans.shallower({"outcome": outcome, "first_commit": "aaa"}) == (
      "resumed after round 1" in outcome)


def test_deepen_redoes_the_rows_of_the_audits_earlier_forms():
  assert code_spans.reproduced(1) == code_spans.ROUND_ONE_REPRODUCED
  for outcome, first_commit, redone in [
      (code_spans.ROUND_ONE_REPRODUCED, "aaa", True),
      (code_spans.ROUND_ONE_MACHINE, "aaa", True),
      (code_spans.ROUND_ONE_CODE_DIFFERS, "aaa", True),
      (code_spans.reproduced(2), "aaa", True),
      (code_spans.differ(2), "aaa", True),
      (code_spans.alike(2, False), "aaa", True),
      (code_spans.reproduced(2), "", False),  # no first commit to restore
      (code_spans.first_span_reproduced(2, 1, False), "", False),
      (code_spans.reproduced(2, restored=True), "aaa", False),
      (code_spans.differ(2, restored=True), "aaa", False),
      (code_spans.alike(5, False, restored=True), "aaa", False),
      (code_spans.UNSETTLED, "", False),
      (code_spans.SAME_CODE, "aaa", False)]:
    assert code_spans.shallower(
        {"outcome": outcome, "first_commit": first_commit}) == redone, outcome


def _audit(results_dir, tmp_path):
  env, marker = processes.marked_env()
  output = tmp_path / "audit.csv"
  run = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "code_spans.py"),
       f"--results_dir={results_dir}", f"--output={output}",
       f"--code_root={tmp_path / 'code'}"],
      capture_output=True, text=True, env=env, timeout=900, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  assert not processes.survivors(marker)
  with open(output) as f:
    return {row["commit"]: row for row in csv.DictReader(f)}


def test_the_audit_says_what_its_outcomes_add_up_to_once_all_are_in(
    tmp_path):
  results_dir = tmp_path / "experiments" / "results"
  for cell in ("a", "b"):
    (results_dir / "grid" / cell).mkdir(parents=True)
    (results_dir / "grid" / cell / code_spans.CODE_FILE).write_text(
        "rounds 1-5: 1111111\nrounds 6-9: 2222222\n")
  audit_csv = results_dir / code_spans.AUDIT
  audit_csv.parent.mkdir()

  def report(outcomes):
    with open(audit_csv, "w", newline="") as f:
      writer = csv.DictWriter(f, code_spans.FIELDS)
      writer.writeheader()
      for cell, outcome in outcomes.items():
        writer.writerow(dict(cell=f"grid/{cell}", rounds="6-9",
                             first_commit="1111111", commit="2222222",
                             numerics_files="", dropped_flags="",
                             outcome=outcome))
    return code_spans.audit(str(tmp_path)).rsplit("\n", 1)[-1]

  assert report({"a": code_spans.reproduced(2)}) == (
      "2 later commits of cells: not audited yet: 1; rounds 1-2 reproduced, "
      "resumed after round 1: 1.")
  assert report({"a": code_spans.reproduced(2), "b": code_spans.FAILED}) == (
      "2 later commits of cells: rerun failed: 1; rounds 1-2 reproduced, "
      "resumed after round 1: 1.")
  assert report({"a": code_spans.ROUND_ONE_REPRODUCED,
                 "b": code_spans.alike(5, committed_reproduced=False)}
                ).endswith(
      " Every later commit computed what its cell's first commit did, over "
      "the rounds its row reran. Rows by what they compared: rounds 1 to the "
      "first evaluated round after round 1, the later commit resuming from "
      "the preceding commit's checkpoint of round 1 (as the cell resumed): "
      "0; the same rounds, the later commit resuming from its own checkpoint "
      "(audited before the audit restored the preceding commit's; no first "
      "commit recorded): 1; round 1 alone (audited before the audit resumed: the "
      "restore, state that is zero in round 1 and, where round 1 was not "
      "evaluated, the server step not compared): 1; the same code: 0.")
  assert ("the preceding commit's checkpoint of round 1 (as the cell "
          "resumed): 1; ") in (
      report({"a": code_spans.reproduced(2, restored=True),
              "b": code_spans.SAME_CODE}))
  # Rows that compared none of the later commit's rounds withhold it.
  for partial in (code_spans.first_span_reproduced(2, 1, False),
                  code_spans.preceding_differs(2)):
    assert "Every later commit" not in report(
        {"a": partial, "b": code_spans.SAME_CODE})
  for differs in (code_spans.ROUND_ONE_CODE_DIFFERS, code_spans.differ(2)):
    assert report({"a": code_spans.SAME_CODE, "b": differs}).endswith(
        "from their cell's first commit: 1; those cells' rounds mix two "
        "computations.")


def test_the_committed_rounds_put_down_to_the_machine_have_no_machine_record():
  # The results README (section 5) reads a round 1 that differs from the
  # committed one but is alike under both commits as the machine's doing,
  # and says every such cell predates machine.txt, so its CPU is unknown.
  # Once a cell with a machine record has that outcome, the reading must
  # be revisited.
  with open(os.path.join(REPO, "experiments", "results", "code_spans",
                         "audit.csv")) as f:
    alike = {row["cell"] for row in csv.DictReader(f)
             if code_spans.put_down_to_the_machine(row["outcome"])}
  for cell in alike:
    assert not os.path.exists(os.path.join(
        REPO, "experiments", "results", cell, "machine.txt")), cell


def test_a_cell_resumed_under_a_later_commit_is_checked(tmp_path):
  # A cell whose rounds 1-2 HEAD computed, said to have resumed under HEAD
  # again (same code: nothing rerun) and under an older commit whose code
  # differs (HEAD reruns round 1, the older commit resumes from its
  # checkpoint to round 2: both rounds come out bit for bit).
  head, older = _git("rev-parse", "--short=12", "HEAD"), _git(
      "rev-parse", "--short=12", OLDER)
  cell = tmp_path / "results" / "grid" / "cell"
  env, marker = processes.marked_env()
  train = subprocess.run(
      [sys.executable, os.path.join(REPO, "experiments", "train.py"), *QUICK,
       "--rounds=2", f"--root_output_dir={cell.parent}",
       "--experiment_name=cell"],
      capture_output=True, text=True, env=env, timeout=600, check=False)
  assert train.returncode == 0, train.stderr[-3000:]
  assert not processes.survivors(marker)
  (cell / code_spans.CODE_FILE).write_text(
      "Code that ran this cell's rounds:\n"
      f"rounds 1-2: {head}\nrounds 3-5: {head}\nrounds 6-9: {older}\n")
  rows = _audit(tmp_path / "results", tmp_path)
  assert rows[head]["outcome"] == code_spans.SAME_CODE
  assert rows[older]["outcome"] == code_spans.reproduced(
      2, restored=True), rows[older]
  assert "tff_niid/runtime.py" in rows[older]["numerics_files"].split(";")
  # Flags of hparams.txt the older commit does not define: left out of its
  # start (the resume) alone, and named with it.
  assert rows[older]["dropped_flags"].startswith(f"{older}: "), rows[older]
  assert head not in rows[older]["dropped_flags"]

  # The committed round 2 altered: the later commit no longer reproduces
  # it, and the first commit's rerun, alike, says it is not the code.
  metrics = results.read_metrics(str(cell))
  metrics[1]["train_loss"] += 1e-3
  with open(cell / results.METRICS_FILE, "w", newline="") as f:
    writer = csv.DictWriter(f, list(metrics[0]))
    writer.writeheader()
    writer.writerows(metrics)
  (tmp_path / "audit.csv").unlink()
  rows = _audit(tmp_path / "results", tmp_path)
  assert rows[older]["outcome"] == code_spans.alike(
      2, committed_reproduced=False, restored=True), rows[older]
  assert code_spans.put_down_to_the_machine(rows[older]["outcome"])

"""Cells whose rounds ran under several commits: did the later commits
compute what the first did?

tools/run_grid.sh runs a grid from a git archive of one commit, and a cell
stopped at the end of a session resumes under the commit of the grid's next
start; its `code.txt` names the commit of each span of rounds. A resume is
refused when the flags, the data or the partition differ
(`tff_niid.rundir.check_resume`), but nothing there compares the training
code. `experiments/code_spans.py` does, per cell and later commit: where no
file that can change a run's numbers (`NUMERICS_PATHS`) differs between the
first commit and the later one, the code is the same; otherwise it reruns
the cell's first rounds under the later commit and compares them with the
committed ones. It reruns rounds 1 to r, r being the cell's first evaluated
round after round 1 (`audit_rounds`), as the cell crossed into the later
commit: round 1 under the commit that ran the cell's span before the later
one's (the first commit, for the second span), then the later commit
resumes from that checkpoint to round r. So the later commit's part covers
a restore of that commit's checkpoint (as the cell's), the data pipeline
and partition it rebuilds, client steps, aggregation, server step and
evaluation with state no longer zero (server momentum, SCAFFOLD's control
variates), and a round after a server step (evaluated, where the cell
evaluated one within `MAX_AUDIT_ROUNDS`). The committed rounds 1 to r that
the first commit computed must come out bit for bit; where they do not, or
where the first commit computed fewer of them, both starts are rerun under
the first commit too, to tell a code change from a machine's difference.
Rows of the audit's earlier forms: the later commit ran both starts,
resuming from its own checkpoint (`RESUMED_ITSELF`; also where no first
commit is recorded, the only commit then not recorded); round 1 alone
(`ROUND_ONE_*` outcomes), which leaves out the restore, state that is no
longer zero and, where round 1 is not evaluated, the server step.

This module reads the `code.txt` files and renders the audit's CSV; it
imports no TensorFlow.
"""

import collections
import csv
import math
import os
import re
from typing import NamedTuple, Optional

from tff_niid import results
from tff_niid.reports import tree

CODE_FILE = "code.txt"

# The files of a commit that can change what a run computes: the package
# but its report builders, and the training binary. Configs and grid.py
# only choose flags, which a resume checks against hparams.txt.
NUMERICS_PATHS = ("tff_niid", os.path.join("experiments", "train.py"))
NOT_NUMERICS = (os.path.join("tff_niid", "reports") + os.sep,)

AUDIT = os.path.join("code_spans", "audit.csv")

FIELDS = ("cell", "rounds", "first_commit", "commit", "numerics_files",
          "dropped_flags", "outcome")

# Outcomes, as written to the CSV.
SAME_CODE = "same code"
FAILED = "rerun failed"
NOT_AUDITED = "not audited yet"  # in the report, not the CSV
# Of rows audited by rerunning round 1 alone, as the audit first did.
ROUND_ONE_REPRODUCED = "round 1 reproduced"
ROUND_ONE_MACHINE = ("round 1 differs from the committed one, alike under "
                     "both commits")
ROUND_ONE_CODE_DIFFERS = "round 1 differs between the commits"
# Suffix of an outcome whose committed rounds the rerun did not repeat, the
# two commits being alike: the machine's doing, not the code's.
COMMITTED_DIFFER = "the committed ones differ"


# Of a row whose first commit is not recorded and whose committed rounds
# the later commit did not repeat: nothing tells the code from the machine.
UNSETTLED = ("differs from the committed rounds; the first commit is not "
             "recorded, so code and machine cannot be told apart")
# The most rounds an audit reruns of a cell.
MAX_AUDIT_ROUNDS = 10


# How a rerun of rounds 1 to r > 1 went on after round 1: the later commit
# resuming from its own checkpoint, or, as the cell did at its boundary,
# from the checkpoint of the commit that ran the cell's span before the
# later one's (the first commit, for the second span).
RESUMED_ITSELF = "resumed after round 1"
RESUMED_AS_THE_CELL = ("the later commit resuming from the preceding "
                       "commit's checkpoint of round 1")


def _rounds(rounds: int, restored: bool) -> str:
  """"rounds 1-r ..., <how it resumed>", or "round 1 ..." for one."""
  if rounds == 1:
    return "round 1 {}"
  return (f"rounds 1-{rounds} {{}}, " +
          (RESUMED_AS_THE_CELL if restored else RESUMED_ITSELF))


def reproduced(rounds: int, restored: bool = False) -> str:
  """The outcome: the committed rounds 1 to `rounds`, all the first
  commit's, came out bit for bit, rounds 2 to `rounds` computed by the later
  commit (`restored`: from the preceding commit's checkpoint of round 1;
  else from its own, after its own round 1)."""
  return _rounds(rounds, restored).format("reproduced")


# Suffix of an outcome that reproduced the first span's committed rounds
# only, the first commit not being recorded: the later commit's rounds were
# compared with nothing (no verdict).
FIRST_SPAN_ONLY = "(its commit not recorded) reproduced; no more compared"
# Of a rerun whose round 1 (run by the commit of the span before the later
# one's, not the first) already differs from the first commit's: that
# commit's own row settles it (no verdict on the later commit).
PRECEDING_DIFFERS = ("round 1 under the preceding commit differs from the "
                     "first commit's: see the preceding commit's row")


def first_span_reproduced(rounds: int, firsts: int, restored: bool) -> str:
  """The outcome of a rerun of rounds 1 to `rounds` (as in `reproduced`)
  that reproduced the committed rounds of the first span, 1 to `firsts` <
  `rounds`, whose commit is not recorded: the rest were not the first
  commit's, and nothing reruns it."""
  span = "round 1" if firsts == 1 else f"rounds 1-{firsts}"
  return (_rounds(rounds, restored).format("rerun") +
          f"; the first span's {span} {FIRST_SPAN_ONLY}")


def preceding_differs(rounds: int) -> str:
  """The outcome: `PRECEDING_DIFFERS`, of a rerun of rounds 1 to `rounds`
  with the later commit resuming from the preceding commit's checkpoint."""
  return _rounds(rounds, True).format("rerun") + f"; {PRECEDING_DIFFERS}"


def alike(rounds: int, committed_reproduced: bool,
          restored: bool = False) -> str:
  """The outcome: the rerun with the later commit (as in `reproduced`) and
  the first commit's own rerun alike (the committed rounds, where the first
  commit computed them, reproduced or not)."""
  return (_rounds(rounds, restored).format("alike under both commits") +
          ("" if committed_reproduced else f"; {COMMITTED_DIFFER}"))


def differ(rounds: int, restored: bool = False) -> str:
  """The outcome: the rerun with the later commit and the first commit's
  own rerun differ."""
  return _rounds(rounds, restored).format("differ between the commits")


def put_down_to_the_machine(outcome: str) -> bool:
  """Whether an outcome reads a committed round that the rerun did not
  repeat as the machine's doing (both commits alike)."""
  return outcome == ROUND_ONE_MACHINE or outcome.endswith(COMMITTED_DIFFER)


def _form(outcome: str) -> Optional[str]:
  """What a rerun outcome's rerun covered: "restored" (rounds 1 to r, the
  later commit resuming as the cell did), "rounds" (the later commit
  resuming from its own checkpoint), "round 1" (round 1 alone); None for
  an outcome without a rerun (same code, failed, unsettled, not audited)."""
  if outcome.startswith("round 1 "):
    return "round 1"
  if RESUMED_AS_THE_CELL in outcome:
    return "restored"
  return "rounds" if RESUMED_ITSELF in outcome else None


def _kind(outcome: str) -> str:
  """An outcome's kind, as the verdict counts it: "same code", "differ",
  "unsettled", "failed", "not audited", or else its `_form`."""
  if outcome in (SAME_CODE, NOT_AUDITED):
    return outcome
  if outcome == UNSETTLED or outcome.endswith((FIRST_SPAN_ONLY,
                                               PRECEDING_DIFFERS)):
    return "unsettled"
  if outcome.startswith(FAILED):
    return "failed"
  if outcome.startswith(ROUND_ONE_CODE_DIFFERS) or (
      " differ between " in outcome):
    return "differ"
  return _form(outcome) or "unsettled"


def shallower(row: dict[str, str]) -> bool:
  """Whether an audit CSV row's rerun covered less than the audit's does now
  (whatever its verdict): round 1 alone, or, its first commit recorded, the
  later commit resuming from its own checkpoint rather than the preceding
  commit's (`experiments/code_spans.py --deepen` redoes these)."""
  form = _form(row["outcome"])
  return form == "round 1" or form == "rounds" and bool(row["first_commit"])


def audit_rounds(rows: list[dict[str, float]]) -> int:
  """The rounds the audit reruns of a cell with these committed metrics
  rows: to its first evaluated round after round 1 (round 2 for a cell
  evaluated every round; round 2, whose train metrics follow round 1's
  server step, where none is evaluated within MAX_AUDIT_ROUNDS), at most
  its rounds."""
  evaluated = [int(r["round"]) for r in rows[1:MAX_AUDIT_ROUNDS]
               if not math.isnan(r.get("test_accuracy", math.nan))]
  return min(evaluated[0] if evaluated else 2, len(rows))


# Columns of metrics.csv that are not computed by the model: wall time.
_NOT_COMPUTED = ("round_seconds",)

_SPAN = re.compile(r"^rounds (\d+)-(\d+): (\S+)")


class Span(NamedTuple):
  first: int
  last: int
  commit: Optional[str]  # None: not recorded in grid.log


def spans(cell_dir: str) -> list[Span]:
  """The spans of rounds of a committed cell and the commit that ran each,
  from its code.txt; [] when it has none (run before run_grid.sh recorded
  the code, or not by run_grid.sh)."""
  path = os.path.join(cell_dir, CODE_FILE)
  if not os.path.exists(path):
    return []
  found = []
  with open(path) as f:
    for line in f:
      match = _SPAN.match(line)
      if match:
        commit = match.group(3)
        found.append(Span(int(match.group(1)), int(match.group(2)),
                          commit if re.fullmatch(r"[0-9a-f]{7,40}", commit)
                          else None))
  return found


def cells_with_several_commits(results_dir: str) -> list[str]:
  """The committed cells (paths, sorted) whose code.txt names more than one
  span of rounds."""
  cells = []
  for grid in sorted(os.listdir(results_dir)):
    grid_dir = os.path.join(results_dir, grid)
    if not os.path.isdir(grid_dir):
      continue
    for cell in sorted(os.listdir(grid_dir)):
      if len(spans(os.path.join(grid_dir, cell))) > 1:
        cells.append(os.path.join(grid_dir, cell))
  return cells


def same_round(committed: dict[str, float], rerun: dict[str, float]) -> bool:
  """Whether two metrics.csv rows of one round hold the same computed values
  bit for bit, over the columns both computed (not NaN: a rerun of one round
  evaluates it as its last, where the run may not have)."""
  columns = [c for c in set(committed) & set(rerun)
             if c not in _NOT_COMPUTED
             and not (math.isnan(committed[c]) or math.isnan(rerun[c]))]
  if "train_loss" not in columns:
    raise ValueError("metrics rows without train_loss to compare: "
                     f"{committed} and {rerun}")
  return all(committed[c] == rerun[c] for c in columns)


def read_audit(path: str) -> list[dict[str, str]]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return list(csv.DictReader(f))


def audit(root: str) -> str:
  """Per committed cell with several commits and each later commit: the
  numerics files changed since the cell's first commit and the audit's
  outcome (from its CSV), or that it is not audited yet; then the count of
  each outcome, and, once every pair is audited, whether each later commit
  computed what its cell's first commit did."""
  results_dir = os.path.join(root, tree.RESULTS)
  audited = {(row["cell"], row["commit"]): row
             for row in read_audit(os.path.join(results_dir, AUDIT))}
  rows = []
  counts: collections.Counter[str] = collections.Counter()
  for cell_dir in cells_with_several_commits(results_dir):
    cell = os.path.relpath(cell_dir, results_dir)
    cell_spans = spans(cell_dir)
    for span in cell_spans[1:]:
      row = audited.get((cell, span.commit or ""))
      outcome = row["outcome"] if row else NOT_AUDITED
      counts[outcome] += 1
      if row and row["dropped_flags"]:
        outcome += (" (flags of hparams.txt a commit does not know, left "
                    "out of its start: "
                    f"{row['dropped_flags']})")
      # Without the first commit there is nothing to compare files with.
      files = ((row["numerics_files"].replace(";", ", ") or "none")
               if row and row["first_commit"] else "—")
      rows.append([cell, f"{span.first}-{span.last}",
                   cell_spans[0].commit or "not recorded", span.commit or
                   "not recorded", files, outcome])
  table = results.table(["cell", "rounds", "first commit", "later commit",
                         "numerics files changed", "outcome"], rows, left=6)
  summary = "; ".join(f"{outcome}: {n}" for outcome, n in
                      sorted(counts.items()))
  return (f"{table}\n\n{len(rows)} later commits of cells: "
          f"{summary or 'none'}.{_verdict(counts)}")


def _verdict(counts: collections.Counter[str]) -> str:
  """What the outcomes add up to, once none is missing or failed: whether
  every later commit computed what its cell's first commit did, over the
  rounds its row reran (the same code; the committed rounds reproduced; or,
  where the machine differs, alike when both commits rerun them)."""
  kinds: collections.Counter[str] = collections.Counter()
  for outcome, n in counts.items():
    kinds[_kind(outcome)] += n
  if not kinds or any(kinds[k] for k in (NOT_AUDITED, "failed",
                                          "unsettled")):
    return ""
  if kinds["differ"]:
    return (" Later commits that computed a rerun round differently from "
            f"their cell's first commit: {kinds['differ']}; those cells' "
            "rounds mix two computations.")
  return (" Every later commit computed what its cell's first commit did, "
          "over the rounds its row reran. Rows by what they compared: rounds "
          "1 to the first evaluated round after round 1, the later commit "
          "resuming from the preceding commit's checkpoint of round 1 (as "
          f"the cell resumed): {kinds['restored']}; the same rounds, the "
          "later commit resuming from its own checkpoint (audited before the "
          "audit restored the preceding commit's; no first commit "
          "recorded): "
          f"{kinds['rounds']}; round 1 alone (audited before the audit "
          "resumed: the restore, state that is zero in round 1 and, where "
          f"round 1 was not evaluated, the server step not compared): "
          f"{kinds['round 1']}; the same code: {kinds[SAME_CODE]}.")

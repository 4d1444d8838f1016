"""Audits the committed cells whose rounds ran under several commits.

  .venv/bin/python experiments/code_spans.py \
      --output=experiments/results/code_spans/audit.csv

For every committed cell whose code.txt names more than one commit, and each
later commit: if no file of `code_spans.NUMERICS_PATHS` differs between the
cell's first commit and it, the row says "same code"; otherwise the cell's
rounds 1 to r (`code_spans.audit_rounds`: to its first evaluated round after
round 1) are rerun (git archives of the commits, as tools/run_grid.sh runs
them, with the cell's hparams.txt) as the cell crossed into the later
commit: to round 1 under the commit of the cell's span before the later
one's (the first commit, for the second span), then resumed from that
checkpoint to round r under the later commit (where that commit is not
recorded, the later commit runs both starts). They are compared bit for bit
with the committed rounds the first commit computed. Where they differ, or
where the first commit computed fewer than r rounds of the cell, both
starts are rerun under the first commit too, to tell a code change from a
machine's difference (tff_niid/reports/code_spans.py says what the rerun
covers).

Writes one CSV row per (cell, later commit) as it goes (one audited again
replaces its old row then) and skips those already in --output, so a
stopped audit resumes; --deepen audits again the rows of the audit's
earlier forms (round 1 alone; the later commit resuming from its own
checkpoint), and --cells limits either to the cells a regular expression
matches. A flag of the cell's hparams.txt that a commit does not define is
left out of that commit's start and named in the row: the cell's start
under that commit ran without it (rundir.check_resume lets a later start add
a flag at its default only).
A rerun takes r rounds of the cell (at most code_spans.MAX_AUDIT_ROUNDS) and
two starts of train.py (a NIID-Bench cell: about two minutes), twice where
the first commit is rerun too. One audit writes a CSV at a time (a lock
beside it).
"""

import csv
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

from tff_niid import checkout
from tff_niid import grids
from tff_niid import results
from tff_niid.reports import code_spans

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", os.path.join(_REPO, "experiments", "results"),
    "The committed results tree.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "The audit's CSV (experiments/results/code_spans/"
    "audit.csv for the report); rows already in it are not redone.",
    required=True)
_CODE_ROOT = flags.DEFINE_string(
    "code_root", os.path.join(os.path.dirname(_REPO), "runs", "paper"),
    "Where the commits' archives are (code-<commit>, as tools/run_grid.sh "
    "extracts them; missing ones are extracted there).")
_MAX_RERUNS = flags.DEFINE_integer(
    "max_reruns", None, "Stop after this many reruns (None: all).",
    lower_bound=1)
_CELLS = flags.DEFINE_string(
    "cells", None, "Only the cells whose path under --results_dir (e.g. "
    "niid_bench_paper/mnist_c1_fedavgm_s1) matches this regular expression.")
_DEEPEN = flags.DEFINE_bool(
    "deepen", False, "Audit again the rows of --output that compared less "
    "than the audit now does (round 1 alone; the later commit resuming from "
    "its own checkpoint, not the preceding commit's).")

# The datasets where tools/run_grid.sh finds them, unless set.
_DATA_ENV = {"TFF_NIID_DATA": os.path.join(os.path.dirname(_REPO), "shared",
                                           "data")}

_UNKNOWN_FLAG = re.compile(r"Unknown command line flag '([^']+)'")


def _git(*args):
  return subprocess.run(["git", "-C", _REPO, *args], check=True,
                        capture_output=True, text=True).stdout


def _numerics_files(first, later):
  changed = _git("diff", "--name-only", first, later, "--",
                 *code_spans.NUMERICS_PATHS).split()
  return [f for f in changed if not f.startswith(code_spans.NOT_NUMERICS)]


def _archive(commit):
  """The directory holding `commit`'s code, extracted if missing."""
  code = os.path.join(_CODE_ROOT.value, f"code-{commit}")
  if not os.path.isdir(code):
    os.makedirs(_CODE_ROOT.value, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"code-{commit}.", dir=_CODE_ROOT.value)
    archive = subprocess.run(["git", "-C", _REPO, "archive", commit],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    os.rename(tmp, code)
  return code


def _thread_env(cell_dir):
  """The TF thread variables the cell's grid ran it with: grid.py's
  --cell_threads from the grid's grid_flags.txt (none: TF's default). The
  number of threads changes a round's bits (the order of reductions)."""
  grid_flags = os.path.join(os.path.dirname(cell_dir), "grid_flags.txt")
  threads = (grids.read_flagfile(grid_flags).get("cell_threads", [])
             if os.path.exists(grid_flags) else [])
  if not threads:
    return {}
  return {"TF_NUM_INTRAOP_THREADS": threads[-1],
          "TF_NUM_INTEROP_THREADS": threads[-1]}


def _rerun(cell_dir, start, resume, work_dir, rounds):
  """(the metrics rows of rounds 1 to `rounds`, [(commit, flag left out of
  its start)]), run in two starts: to round 1 under commit `start`, then
  resumed from its checkpoint to `rounds` under commit `resume`; or (None,
  error) when a start failed. A flag of the cell's hparams.txt that a
  commit does not define is left out of that commit's start."""
  assert rounds > 1 or start == resume, (start, resume, rounds)
  with open(os.path.join(cell_dir, "hparams.txt")) as f:
    lines = f.read().splitlines()
  dropped: list[tuple[str, str]] = []
  name = f"{os.path.basename(cell_dir)}@{start}-{resume}"
  run_dir = os.path.join(work_dir, name)
  shutil.rmtree(run_dir, ignore_errors=True)
  flagfile = os.path.join(work_dir, f"{name}.flags")
  for last, commit in [(1, start), (rounds, resume)][:2 if rounds > 1 else 1]:
    code = _archive(commit)
    env = {**_DATA_ENV, **os.environ, **_thread_env(cell_dir),
           "PYTHONPATH": code}
    left_out: list[str] = []
    while True:
      with open(flagfile, "w") as f:
        f.write("\n".join(line for line in lines
                          if not any(line.startswith(f"--{d}=")
                                     or line in (f"--{d}", f"--no{d}")
                                     for d in left_out))
                + "\n")
      command = [sys.executable, os.path.join(code, "experiments",
                                              "train.py"),
                 f"--flagfile={flagfile}", f"--rounds={last}",
                 f"--root_output_dir={work_dir}", f"--experiment_name={name}"]
      logging.info("rerun: %s", " ".join(command))
      run = subprocess.run(command, cwd=code, env=env, capture_output=True,
                           text=True, check=False)
      # Refused at flag parsing, before it wrote anything: the first start
      # leaves nothing, the resume the first start's checkpoint.
      unknown = _UNKNOWN_FLAG.search(run.stderr)
      if run.returncode and unknown and unknown.group(1) not in left_out:
        left_out.append(unknown.group(1))
        continue
      break
    if run.returncode:
      tail = run.stderr.strip().splitlines()[-1:] or ["no output"]
      return None, f"exit {run.returncode}: {tail[0]}"
    dropped += [(commit, flag) for flag in left_out]
  rows = results.read_metrics(run_dir)
  shutil.rmtree(run_dir, ignore_errors=True)
  if len(rows) != rounds:
    return None, f"{len(rows)} rounds written, {rounds} expected"
  return rows, dropped


def _dropped_note(dropped):
  """The CSV's dropped_flags: "commit: flag;flag; commit: flag" over the
  reruns' [(commit, flag)], each once."""
  by_commit: dict[str, dict[str, None]] = {}  # dicts: ordered sets
  for commit, flag in dropped:
    by_commit.setdefault(commit, {})[flag] = None
  return "; ".join(f"{commit}: {';'.join(flags)}"
                   for commit, flags in by_commit.items())


def _same_rounds(a, b):
  return len(a) == len(b) and all(map(code_spans.same_round, a, b))


def _audit_one(cell_dir, first, preceding, later, work_dir):
  """The CSV fields of one (cell, later commit) but cell and rounds; and how
  many reruns it took. `first` and `preceding`: the cell's first span and
  the span before the later commit's (`code_spans.Span`s)."""
  files = _numerics_files(first.commit, later) if first.commit else None
  fields = {"first_commit": first.commit or "", "commit": later,
            "numerics_files": ";".join(files or []), "dropped_flags": ""}
  if files == []:
    return dict(fields, outcome=code_spans.SAME_CODE), 0
  committed = results.read_metrics(cell_dir)
  rounds = code_spans.audit_rounds(committed)
  # As the cell did: the later commit resumes from the checkpoint of the
  # commit that ran the span before its own (round 1's here); where that
  # commit (then the first) is not recorded, from its own.
  restored = bool(preceding.commit) and rounds > 1
  rerun, dropped = _rerun(cell_dir, preceding.commit if restored else later,
                          later, work_dir, rounds)
  if rerun is None:
    return dict(fields, outcome=f"{code_spans.FAILED} ({dropped})"), 1
  fields["dropped_flags"] = _dropped_note(dropped)
  # The committed rounds the first commit computed (its span's).
  firsts = min(rounds, first.last)
  committed_reproduced = _same_rounds(committed[:firsts], rerun[:firsts])
  if committed_reproduced and firsts == rounds:
    return dict(fields, outcome=code_spans.reproduced(rounds, restored)), 1
  if not first.commit:  # nothing to rerun the first commit's rounds with
    return dict(fields, outcome=code_spans.first_span_reproduced(
        rounds, firsts, restored)
                if committed_reproduced else code_spans.UNSETTLED), 1
  rerun_first, first_dropped = _rerun(cell_dir, first.commit, first.commit,
                                      work_dir, rounds)
  if rerun_first is None:
    return dict(fields, outcome=f"{code_spans.FAILED} ({first_dropped})"), 2
  fields["dropped_flags"] = _dropped_note(dropped + first_dropped)
  if _same_rounds(rerun_first, rerun):
    outcome = code_spans.alike(rounds, committed_reproduced, restored)
  elif (restored and preceding.commit != first.commit and
        not code_spans.same_round(rerun_first[0], rerun[0])):
    # Round 1 was the preceding commit's, not the later one's.
    outcome = code_spans.preceding_differs(rounds)
  else:
    outcome = code_spans.differ(rounds, restored)
  return dict(fields, outcome=outcome), 2


def _selected(cell):
  """Whether --cells selects `cell` (its path under --results_dir)."""
  return _CELLS.value is None or re.search(_CELLS.value, cell) is not None


def _write(path, rows):
  """Writes the audit's rows to `path` atomically (a stop leaves the old
  file or the new one)."""
  with open(path + ".tmp", "w", newline="") as out:
    writer = csv.DictWriter(out, code_spans.FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  os.replace(path + ".tmp", path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  results_dir = os.path.abspath(_RESULTS_DIR.value)
  # Rows of failed reruns (e.g. stopped) are audited again, and with
  # --deepen those that compared less than the audit now does; each keeps
  # its place in the CSV until its new row replaces it, so a stopped audit
  # loses nothing.
  rows = {(row["cell"], row["commit"]): row
          for row in code_spans.read_audit(_OUTPUT.value)}
  done = {key for key, row in rows.items()
          if not (row["outcome"].startswith(code_spans.FAILED) or
                  _DEEPEN.value and code_spans.shallower(row))}
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  # One audit per CSV: each rewrites the whole file from what it read.
  lock = open(_OUTPUT.value + ".lock", "a")  # pylint: disable=consider-using-with
  try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    raise app.UsageError(f"another audit is writing {_OUTPUT.value}; wait "
                         "for it to end.") from None
  reruns = 0
  with tempfile.TemporaryDirectory(prefix="code_spans.") as work_dir:
    for cell_dir in code_spans.cells_with_several_commits(results_dir):
      cell = os.path.relpath(cell_dir, results_dir)
      if not _selected(cell):
        continue
      spans = code_spans.spans(cell_dir)
      for i, span in enumerate(spans[1:], 1):
        # A later span's commit is always recorded: grid.log names the
        # code before the rounds it runs (only a cell's first span, from
        # before that header existed, can lack it).
        if span.commit is None or (cell, span.commit) in done:
          continue
        if _MAX_RERUNS.value is not None and reruns >= _MAX_RERUNS.value:
          return
        fields, ran = _audit_one(cell_dir, spans[0], spans[i - 1],
                                 span.commit, work_dir)
        reruns += ran
        old = rows.get((cell, span.commit))
        if fields["outcome"].startswith(code_spans.FAILED) and old and not (
            old["outcome"].startswith(code_spans.FAILED)):
          # A failed --deepen keeps the row it was to replace.
          print(f"{cell} {span.commit}: {fields['outcome']}; kept: "
                f"{old['outcome']}", flush=True)
          continue
        rows[(cell, span.commit)] = dict(fields, cell=cell,
                                         rounds=f"{span.first}-{span.last}")
        _write(_OUTPUT.value, list(rows.values()))
        print(f"{cell} {span.commit}: {fields['outcome']}", flush=True)


if __name__ == "__main__":
  checkout.require_own_checkout(__file__)
  app.run(main)

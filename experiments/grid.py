"""Runs a grid of training runs (datasets × partitions × algorithms) and reports.

Each experiment in experiments/configs/ is one flagfile for this binary, run
from the repository root, e.g.

  .venv/bin/python experiments/grid.py \
      --flagfile=experiments/configs/niid_bench.cfg

Every cell is one `experiments/train.py` process with the grid's common train
flagfile plus --dataset, --partition_spec and --algorithm; its log goes to
<root_output_dir>/<grid_name>/logs/. A cell that diverges (a NaN/inf
update) has that recorded as its outcome, not as a failure of the grid. A
finished or diverged cell is skipped (with a
warning naming any flag of its command that the cell uses and its
hparams.txt records otherwise: a config edited since) and an interrupted
one resumes from its checkpoint (train.py refuses other flags), so
re-running the command continues the grid; a second grid.py on the same
grid directory is refused while one runs (logs/grid.py.lock). At the end
the grid directory gets results.md (a table,
with reference accuracies when given), accuracy_curves.png, for a seeded
grid with references references.png, for a seeded grid with FedAvg and
another algorithm paired.png (each algorithm's final accuracy minus
FedAvg's of the same seed, `result_plots.plot_paired`), and for a grid
sweeping one numeric flag sweep.png (`result_plots.plot_sweep`).

--smoke trains each algorithm and dataset at least once (not the full
product) for 2 tiny rounds, and checks the partitions it did not train on with
`train.py --check_only` (data, partition and hyperparameters, no training):
the check CI runs on every config. Its cells go to <grid_name>_smoke/, never
among the grid's results.
"""

from concurrent import futures
import fcntl
import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags

from tff_niid import checkout
from tff_niid import result_plots
from tff_niid import grids
from tff_niid import results
from tff_niid import rundir

_TRAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train.py")

_GRID_NAME = flags.DEFINE_string("grid_name", None, "Name of the grid "
                                 "(its directory under --root_output_dir).",
                                 required=True)
_TITLE = flags.DEFINE_string("title", None, "Title of the report.")
_TRAIN_FLAGFILE = flags.DEFINE_string(
    "train_flagfile", None, "train.py flagfile shared by every cell.",
    required=True)
_DATASETS = flags.DEFINE_list("datasets", ["mnist"], "Datasets.")
_PARTITIONS = flags.DEFINE_multi_string(
    "partition", [], "A partition as NAME=SPEC (repeat the flag), e.g. "
    "--partition='dir0.5=dirichlet(alpha=0.5)'.")
_ALGORITHMS = flags.DEFINE_list(
    "algorithms", ["fedavg"], "train.py algorithms, or variant names whose "
    "--algorithm_flags include --algorithm=...")
_ALGORITHM_FLAGS = flags.DEFINE_multi_string(
    "algorithm_flags", [], "Extra train.py flags for one algorithm or variant, "
    "as NAME=--flag=value (repeat the flag), e.g. "
    "--algorithm_flags=fedavgm=--server_lr=0.1 or "
    "--algorithm_flags=fedavg_E5=--algorithm=fedavg.")
_ONLY_PARTITIONS = flags.DEFINE_list(
    "only_partitions", None, "Run only these partition names of the grid.")
_REFERENCE = flags.DEFINE_multi_string(
    "reference", [], "A published accuracy shown next to a cell, as "
    "DATASET/PARTITION/ALGORITHM=PERCENT (repeat the flag).")
_PAPER = flags.DEFINE_multi_string(
    "paper", [], "The paper's own accuracy, mean ± std over its runs, shown "
    "next to a cell's mean ± std over --seeds, as "
    "DATASET/PARTITION/ALGORITHM=MEAN±STD in percent (repeat the flag).")
_REFERENCE_BEST = flags.DEFINE_multi_string(
    "reference_best", [], "A published accuracy of the best round, mean ± "
    "std over its runs (as some re-runs report it), shown next to the best "
    "round of a cell's seeds, as DATASET/PARTITION/ALGORITHM=MEAN±STD in "
    "percent (repeat the flag; needs --seeds).")
_REFERENCE_ROUNDS = flags.DEFINE_multi_string(
    "reference_rounds", [], "A published number of rounds to the target "
    "accuracy, as DATASET/PARTITION/ALGORITHM=ROUNDS (repeat the flag).")
_SEEDS = flags.DEFINE_list(
    "seeds", None, "Seeds (train.py --seed): each cell is run once per seed, "
    "as <cell>_s<seed>; the report gives mean ± std over seeds. Unset: the "
    "train flagfile's seed, cell names without suffix.")
_SWEEP = flags.DEFINE_multi_string(
    "sweep", [], "A train.py flag swept over values, as FLAG=V1,V2,... "
    "(repeat the flag for a product), e.g. --sweep=client_lr=0.05,0.1: each "
    "value is its own cell, <algorithm>_<FLAG><V>, its flag given after the "
    "variant's --algorithm_flags (so it wins).")
_CELL_THREADS = flags.DEFINE_integer(
    "cell_threads", None, "TensorFlow intra- and inter-op threads of each "
    "cell (TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, which TFF's "
    "worker inherits), e.g. 1 with --jobs=2 on 2 cores. Unset: TF's default.",
    lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", None, "Overrides the train "
                               "flagfile's --rounds for every cell.")
_ROOT_OUTPUT_DIR = flags.DEFINE_string("root_output_dir", "runs/paper",
                                       "Where grids are written.")
_JOBS = flags.DEFINE_integer("jobs", 1, "Cells run at the same time.")
_REPORT_ONLY = flags.DEFINE_bool(
    "report_only", False, "Run nothing; write the report from the cells' "
    "results so far (e.g. of a grid cut short).")
_SMOKE = flags.DEFINE_bool(
    "smoke", False, "Each algorithm and dataset once, 2 tiny rounds each "
    "(train.py --smoke); the partitions left over checked without training "
    "(train.py --check_only).")


def _partitions():
  try:
    return grids.grid_partitions(_PARTITIONS.value, _ONLY_PARTITIONS.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def _algorithm_flags() -> dict[str, list[str]]:
  extra: dict[str, list[str]] = {}
  for item in _ALGORITHM_FLAGS.value:
    algorithm, sep, flag = item.partition("=")
    if not sep or not flag.startswith("--"):
      raise app.UsageError(f"--algorithm_flags={item!r}: expected "
                           "ALGORITHM=--flag=value.")
    extra.setdefault(algorithm, []).append(flag)
  # Warned, not refused: --algorithms may narrow a config's list, leaving
  # its other algorithms' flags unused; a misspelt name is caught here.
  for unused in sorted(set(extra) - set(_ALGORITHMS.value)):
    print(f"WARNING: --algorithm_flags for {unused}, which --algorithms="
          f"{','.join(_ALGORITHMS.value)} does not run: not used.",
          flush=True)
  return extra


def _references(flag, parse):
  """{(dataset, partition, algorithm): parse(value)} from a reference flag."""
  try:
    return grids.keyed_values(flag.value, parse)
  except ValueError as e:
    raise app.UsageError(f"--{flag.name}: {e}.") from None


def _seeds():
  if _SEEDS.value is None:
    return [None]
  try:
    seeds = [int(s) for s in _SEEDS.value]
  except ValueError:
    raise app.UsageError(f"--seeds={','.join(_SEEDS.value)}: expected "
                         "integers.") from None
  if len(set(seeds)) != len(seeds) or min(seeds) < 0:
    raise app.UsageError(f"--seeds: {seeds} must be distinct and >= 0.")
  return seeds


def _sweeps():
  """[(algorithm-name suffix, {train.py flag: value})] over the product of
  --sweep."""
  try:
    return grids.sweep_variants(_SWEEP.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def _cells(grid_dir, partitions):
  """(cells to train, cells to check only), each a `grids.cell`. In smoke
  mode a diagonal covering every dataset, partition and algorithm: trained
  as far as it takes to cover every dataset and algorithm, checked beyond:
  what a config adds is its specs, and the check draws them on the data (the
  training paths of label noise, keys and feature noise are trained in
  tests/test_train_binary.py, redrawn feature noise in
  tests/test_feature_noise_redraw.py, rotations in
  tests/test_rotation_training.py)."""
  if not _SMOKE.value:
    return grids.cells(grid_dir, _DATASETS.value, partitions,
                       _ALGORITHMS.value, _sweeps(), _seeds()), []
  trained = max(len(_DATASETS.value), len(_ALGORITHMS.value))
  diagonal = [grids.cell(grid_dir, _DATASETS.value[i % len(_DATASETS.value)],
                         partitions[i % len(partitions)],
                         _ALGORITHMS.value[i % len(_ALGORITHMS.value)],
                         _sweeps()[0], _seeds()[0])
              for i in range(max(trained, len(partitions)))]
  return diagonal[:trained], diagonal[trained:]


def _command(cell, extra_flags):
  """(name, train.py command) of one cell of `_cells`; `extra_flags`:
  `_algorithm_flags`."""
  grid_dir, name = os.path.split(cell["run_dir"])
  variant_flags = extra_flags.get(cell["variant"], [])
  command = [sys.executable, _TRAIN, f"--flagfile={_TRAIN_FLAGFILE.value}",
             f"--dataset={cell['dataset']}",
             f"--partition_spec={cell['spec']}",
             f"--root_output_dir={grid_dir}", f"--experiment_name={name}"]
  if not any(f.startswith("--algorithm=") for f in variant_flags):
    command.append(f"--algorithm={cell['variant']}")
  command += variant_flags + [f"--{f}={v}" for f, v in cell["sweep"].items()]
  if cell["seed"] is not None:
    command.append(f"--seed={cell['seed']}")
  if _ROUNDS.value is not None:
    command.append(f"--rounds={_ROUNDS.value}")
  if _SMOKE.value:
    command.append("--smoke")
  return name, command


def _hold(grid_dir):
  """An open file whose flock keeps a second grid.py off `grid_dir` while
  this one runs (the kernel drops it however we exit). The cells would be
  safe without it (train.py locks each run), but two grids would report
  each other's cells as failed and write into the same logs."""
  lock = open(os.path.join(grid_dir, "logs", "grid.py.lock"), "a+")
  try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    raise app.UsageError(
        f"{grid_dir} is in use by another grid.py; wait for it to end or "
        "stop it (--report_only may run beside it).") from None
  return lock


def _given_flags(command):
  """{name: [values]} of a `_command`'s `--name=value` arguments, its
  --flagfile read in place (relative to the repository root, where grids
  run)."""
  given: dict[str, list[str]] = {}
  for arg in command[2:]:
    name, sep, value = arg[2:].partition("=")
    if not arg.startswith("--") or not sep:
      continue
    if name == "flagfile":
      for nested, values in grids.read_flagfile(value).items():
        given.setdefault(nested, []).extend(values)
    else:
      given.setdefault(name, []).append(value)
  return given


def _run_cell(command, log_path, label, run_dir, failures, live):
  """Runs one train.py process, teeing its round lines to our stdout. A
  cell that exits on a NaN/inf update has its outcome recorded
  (`results.diverged_round`): it is not a failure of the grid."""
  env = dict(os.environ)
  if _CELL_THREADS.value:
    env["TF_NUM_INTRAOP_THREADS"] = env["TF_NUM_INTEROP_THREADS"] = str(
        _CELL_THREADS.value)
  with open(log_path, "a") as log, subprocess.Popen(
      command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      bufsize=1, env=env) as process:
    live.add(process)
    assert process.stdout is not None  # stdout=PIPE
    for line in process.stdout:
      log.write(line)
      log.flush()
      if line.startswith(("round ", "done", "checked", "ERROR", "FATAL",
                          "resum")):
        print(f"[{label}] {line.rstrip()}", flush=True)
  live.discard(process)
  stop = (results.diverged_round(results.read_run(run_dir, missing_ok=True))
          if process.returncode and run_dir else None)
  if stop is not None:
    print(f"[{label}] diverged at round {stop}: recorded as the cell's "
          "outcome", flush=True)
  elif process.returncode:
    failures.append(f"{label} (exit {process.returncode}, see {log_path})")


def _run_all(jobs, done_what):
  """Runs the (command, log path, label, run directory or None) jobs,
  --jobs at a time; returns the failures. On SIGTERM (SystemExit) or
  Ctrl-C, stops them and re-raises."""
  failures: list[str] = []
  live: set[subprocess.Popen] = set()
  start = time.monotonic()
  pool = futures.ThreadPoolExecutor(_JOBS.value)
  try:
    runs = [pool.submit(_run_cell, command, log_path, label, run_dir,
                        failures, live)
            for command, log_path, label, run_dir in jobs]
    for done, _ in enumerate(futures.as_completed(runs), 1):
      print(f"{done}/{len(jobs)} {done_what}, "
            f"{(time.monotonic() - start) / 60:.1f} min", flush=True)
  except (KeyboardInterrupt, SystemExit) as stop:
    pool.shutdown(wait=False, cancel_futures=True)
    _stop_cells(list(live), forward_sigterm=isinstance(stop, SystemExit))
    raise
  pool.shutdown()
  return failures


def _stop_cells(processes, forward_sigterm):
  if forward_sigterm:
    for process in processes:
      process.terminate()
  for process in processes:
    try:
      process.wait(timeout=60)
    except subprocess.TimeoutExpired:
      process.terminate()
      process.wait()


def main(argv):
  try:
    _run_grid(argv)
  except app.UsageError as e:  # one line, not absl's ~100 lines of usage
    sys.exit(f"ERROR: {e}")


def _run_grid(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not os.path.isfile(_TRAIN_FLAGFILE.value):
    raise app.UsageError(f"--train_flagfile={_TRAIN_FLAGFILE.value} does not "
                         "exist (run from the repository root).")
  if _JOBS.value < 1:
    raise app.UsageError("--jobs must be >= 1.")
  if _REFERENCE_BEST.value and _SEEDS.value is None:
    raise app.UsageError("--reference_best needs --seeds (it is compared "
                         "with the mean ± std of the seeds' best rounds).")
  partitions = _partitions()
  references = _references(_REFERENCE, lambda v: float(v) / 100)
  reference_rounds = _references(_REFERENCE_ROUNDS, float)
  # The single-run --reference in the seed tables' units (%, no std).
  reference_runs: dict[results.CellKey, results.MeanStd] = {
      k: (100 * v, None) for k, v in references.items()}
  seed_references = [
      results.Reference(name, statistic, values)
      for name, statistic, values in (
          ("paper", "final", _references(_PAPER, results.parse_mean_std)),
          ("reference", "final", reference_runs),
          ("reference best", "best",
           _references(_REFERENCE_BEST, results.parse_mean_std)))
      if values]
  extra_flags = _algorithm_flags()
  # A smoke run's cells (tiny rounds, a cut test set) have a grid directory
  # of their own: in the grid's, they would count as finished results.
  grid_dir = os.path.join(_ROOT_OUTPUT_DIR.value, _GRID_NAME.value +
                          ("_smoke" if _SMOKE.value else ""))
  # Checks --seeds and --sweep before anything is written.
  cells, to_check = _cells(grid_dir, partitions)
  os.makedirs(os.path.join(grid_dir, "logs"), exist_ok=True)
  if not _REPORT_ONLY.value:
    lock = _hold(grid_dir)  # pylint: disable=unused-variable
    with open(os.path.join(grid_dir, "grid_flags.txt"), "w") as f:
      f.write(rundir.binary_flagfile())

  # Run first: a config they refuse fails before any training.
  checks = []
  for cell in [] if _REPORT_ONLY.value else to_check:
    name, command = _command(cell, extra_flags)
    checks.append((command + ["--check_only"],
                   os.path.join(grid_dir, "logs", name + ".check.log"),
                   f"{name}, checked", None))
  pending = []
  for cell in [] if _REPORT_ONLY.value else cells:
    name, command = _command(cell, extra_flags)
    run_dir = cell["run_dir"]
    # A smoke run cuts every run to its own few rounds, whatever --rounds.
    rounds = None if _SMOKE.value else _ROUNDS.value
    run = results.read_run(run_dir, missing_ok=True)
    if results.ended(run, rounds):
      unlike = rundir.unlike_flags(run_dir, _given_flags(command))
      if unlike:
        print(f"WARNING: [{name}] ended earlier with other flags "
              f"({', '.join(unlike)}): its results are not this command's; "
              "delete the cell to rerun it, or use another --grid_name.",
              flush=True)
      stop = results.diverged_round(run)
      print(f"[{name}] " + ("finished earlier" if stop is None else
                            f"diverged at round {stop} earlier") +
            ", skipped", flush=True)
      continue
    pending.append((command, os.path.join(grid_dir, "logs", name + ".log"),
                    name, run_dir))

  checked_only = (f"; {len(checks)} more partitions to check without "
                  "training" if checks else "")
  print(f"{len(cells)} cells, {len(pending)} to run{checked_only}, "
        f"{_JOBS.value} at a time; results in {os.path.abspath(grid_dir)}",
        flush=True)
  # Killing the grid stops its cells too (they keep their last checkpoint):
  # SIGTERM is forwarded; after Ctrl-C, which the cells get from the
  # terminal, they are given a minute to save and exit.
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
  # As train.py (runtime.install_cleanup): a SIGINT ignored by inheritance
  # (a background job's, a test runner's worker) would leave the grid
  # running on after Ctrl-C stopped its cells.
  if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    failures = _run_all(checks, "partitions checked")
    if failures:
      sys.exit("failed checks, nothing trained: " + "; ".join(failures))
    failures = _run_all(pending, "cells run")
  except KeyboardInterrupt:
    print("stopped: each cell keeps its last checkpoint; rerun the same "
          "command to resume.", file=sys.stderr, flush=True)
    sys.exit(130)

  for cell in cells:
    cell["run"] = results.read_run(cell["run_dir"], missing_ok=True)
  # A run diverged in round 1 has a summary and no metrics.
  ran = [c for c in cells if c["run"]["metrics"] or c["run"]["summary"]]
  not_run = [os.path.basename(c["run_dir"]) for c in cells if c not in ran]
  if _SEEDS.value is None:
    table = results.markdown_table(ran, references, reference_rounds)
    if not_run:
      table += f"\n\nNot run: {', '.join(not_run)}."
  else:
    table, progress = results.seed_table(cells, references=seed_references)
    note = (" Each difference is ours − the reference in points; in "
            "parentheses, divided by the combined std sqrt(s_ours² + "
            "s_ref²), shown only where both sides have a std: two seeds of "
            "ours or more (with two, a std of one degree of freedom: an "
            "effect size, not a test), and a reference with ± (without, it "
            "is one run of unknown spread)." if seed_references else "")
    if any(results.diverged_round(c["run"]) is not None for c in cells):
      note += (" A diverged seed (a NaN/inf update at the round named; "
               "training stops there) is counted in `seeds` and left out of "
               "the statistics: it has no final accuracy.")
    table = ("Finished cells only: mean ± sample std over the `seeds` "
             "finished seeds; \"mean of last 5 rounds\" is per seed the mean "
             "test accuracy of its last 5 evaluated rounds, then mean ± std "
             f"over seeds.{note}"
             f"\n\n{table}\n\n"
             f"## Progress\n\n{progress}")
  title = _TITLE.value or _GRID_NAME.value
  if _SEEDS.value is not None and seed_references:
    result_plots.plot_references(cells, seed_references,
                                 os.path.join(grid_dir, "references.png"),
                                 title=title)
  # From every cell, run or not (a sweep line counts its values not run
  # yet); a plot an earlier run of this grid drew and this one does not
  # would be stale, so it is removed.
  for name, drawn in (
      ("sweep.png", lambda path: len(_SWEEP.value) == 1 and
       result_plots.plot_sweep(cells, path, title=f"{title}: the sweep")),
      ("paired.png", lambda path: _SEEDS.value is not None and
       result_plots.plot_paired(cells, path, title=f"{title}: each "
                                "algorithm against FedAvg, seed by seed"))):
    plot = os.path.join(grid_dir, name)
    if not drawn(plot) and os.path.exists(plot):
      os.remove(plot)
  cells = [c for c in cells if c["run"]["metrics"]]
  with open(os.path.join(grid_dir, "results.md"), "w") as f:
    command = " ".join(sys.argv)
    f.write(f"# {title}\n\nWritten by `{command}` (each cell's hparams.txt "
            "is its exact train.py flagfile; cells run by tools/run_grid.sh "
            f"name their code in code.txt)\n\n{table}\n")
  result_plots.plot_curves(cells,
                           os.path.join(grid_dir, "accuracy_curves.png"),
                           title=title)
  print(table, flush=True)
  if failures:
    sys.exit("failed cells: " + "; ".join(failures))


if __name__ == "__main__":
  checkout.require_own_checkout(__file__)
  app.run(main)

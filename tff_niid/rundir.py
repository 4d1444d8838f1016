"""A training run's directory: one process at a time, and only its own run.

`experiments/train.py` writes a run into one directory and resumes it when
started again. This module keeps that safe; it imports no TensorFlow.

  lock(run_dir)       an exclusive `fcntl.flock` on `run_dir/run.lock`, held
                      while the process lives: the kernel drops it on any
                      death, SIGKILL included. A second process is refused
                      with the holder's pid.
  check_resume(...)   reads what the directory holds and refuses a start that
                      would continue its run with other flags, other data or
                      another partition. Changes nothing on disk.
  write_hparams, record_identity, record_machine
                      what a start writes once the checks passed.
  is_run(path)        whether a directory holds a training run, which other
                      tools must not write into.
  copy_resumable(run_dir, dest)
                      what a start needs to resume a stopped run elsewhere
                      (e.g. on a fresh machine): its newest checkpoint and
                      records, without the partition or TensorBoard events.

The run identity (`run_identity.json`, written at the first start) records
the dataset's name, the fingerprint of its training labels, the SHA-256 of
its files' content and the checksum of the partition. Runs from before the
identity existed have none: their saved `partition/` is still compared, and
their identity is recorded when they resume.

Every refusal is a `RunDirError` whose message is one line saying what
differs and what to do.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Optional

from absl import flags
import numpy as np

from tff_niid import checkout
from tff_niid import flag_use
from tff_niid import partition as partition_lib
from tff_niid import grids
from tff_niid import results

HPARAMS_FILE = "hparams.txt"
IDENTITY_FILE = "run_identity.json"
LOCK_FILE = "run.lock"
MACHINE_FILE = "machine.txt"
# CPU flags naming the SIMD extensions oneDNN chooses kernels by.
_SIMD_PREFIXES = ("sse4", "avx", "fma", "amx")
_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
# Written by `training.train`: one `round_<n>` directory per kept round.
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "round_"
# Also written by `training.train`: the loop settings and client data its
# checkpoints belong to.
TRAINING_IDENTITY_FILE = "training_identity.json"
# The files of a checkpoint's SavedModel, the fingerprint written last.
_SAVED_MODEL_FILES = ("saved_model.pb", os.path.join("variables",
                                                     "variables.index"),
                      "fingerprint.pb")
PARTITION_DIR = partition_lib.report.PARTITION_DIR

_START_OVER = ("use another --experiment_name, or delete the directory to "
               "start over.")


class RunDirError(ValueError):
  """The directory cannot take this run; the one-line message says why."""


class RunLockedError(RunDirError):
  """Another live process holds the run directory's lock (its pid: `pid`,
  None if it could not be read)."""

  def __init__(self, run_dir, pid):
    self.pid = pid
    super().__init__(
        f"{run_dir} is in use by another process (pid "
        f"{'unknown' if pid is None else pid}); wait for it to finish or stop "
        "it, or use another --experiment_name.")


class RunLock:
  """An exclusive lock on a run directory, created if missing.

  Held until `release()`, the end of a `with` block or the death of the
  process. The lock file is never deleted: a process that opened it just
  before a deletion would lock a file nobody else sees.

  Raises:
    RunLockedError: another process holds the lock.
    RunDirError: the directory cannot be created or written.
  """

  def __init__(self, run_dir):
    # Unix only, unlike the rest of this module (the partition CLI, which runs
    # anywhere numpy does, calls `is_run`).
    import fcntl  # pylint: disable=g-import-not-at-top
    self.path = os.path.join(run_dir, LOCK_FILE)
    self._fd: int | None = None
    try:
      os.makedirs(run_dir, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise RunDirError(f"cannot write to output directory {run_dir}: "
                        f"{e.strerror}.") from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
      os.close(fd)
      raise RunLockedError(run_dir,
                           int(holder) if holder.isdigit() else None) from None
    # The holder's pid, for the refusal of the next process.
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    self._fd = fd

  def release(self):
    if self._fd is not None:
      os.close(self._fd)  # closing the only descriptor drops the flock
      self._fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.release()


def lock(run_dir):
  """`RunLock(run_dir)`: use as `with rundir.lock(run_dir): ...`."""
  return RunLock(run_dir)


def is_run(path):
  """Whether `path` holds a training run: its lock file (every run started
  since runs are locked) or identity, or the metrics of an older run."""
  return any(os.path.exists(os.path.join(path, name))
             for name in (LOCK_FILE, IDENTITY_FILE, results.METRICS_FILE))


def parse_flagfile(text, known_flags=None):
  """{name: value string} of a flagfile, `--noname` read as name=false for
  the booleans of `known_flags` (an absl `FlagValues`, default flags.FLAGS)."""
  known_flags = flags.FLAGS if known_flags is None else known_flags
  values = {}
  for line in text.splitlines():
    if not line.startswith("--"):
      continue
    name, has_value, value = line[2:].partition("=")
    if not has_value:
      negated = name.startswith("no") and name[2:] in known_flags
      name, value = (name[2:], "false") if negated else (name, "true")
    values[name] = value
  return values


# The flags of experiments/train.py that a resumed run may change: they
# change how far and how verbosely it runs, or where from (a run directory
# moved to another root, e.g. parked on another machine, included), not what
# it computes. The data and a saved partition are checked by content
# (run_identity.json), so they may be read from another path.
RESUMABLE_FLAGS = ("rounds", "quiet", "stop_at_target", "target_accuracy",
                   "eval_every", "data_dir", "download", "partition_file",
                   "workers", "root_output_dir")


def binary_flagfile(flag_values=None, binary=None):
  """The flags the running binary defines, with their values, as a flagfile
  sorted by name: what its hparams.txt records. Flags of the libraries it
  loads (absl's logging and testing flags, TensorFlow's) are left out: they
  do not change what it computes.

  Args:
    flag_values: an absl `FlagValues` (default flags.FLAGS), parsed.
    binary: the module defining the binary's flags; absl's name for the
      running script (sys.argv[0]) by default.
  """
  flag_values = flags.FLAGS if flag_values is None else flag_values
  own = flag_values.get_flags_for_module(binary or sys.argv[0])
  # As absl's flags_into_string, flags without a value are left out; and
  # unlike it, a multi flag left empty (absl writes a blank line).
  lines = (flag.serialize() for flag in sorted(own, key=lambda flag: flag.name)
           if flag.value is not None)
  return "".join(f"{line}\n" for line in lines if line)


def changed_flags(previous, current, *, resumable=(), known_flags=None):
  """`--name=old->new` for the flags of two flagfiles that differ, except
  the `resumable` ones. `current` is this start's (`binary_flagfile`). A
  flag absent from one side (None, or defined after the run started) counts
  as its default in `known_flags` (an absl `FlagValues`, default
  flags.FLAGS). Flags of `previous` that the binary does not define (the
  library flags older hparams.txt files recorded, or flags since removed)
  are not compared: the binary's are those of the modules defining
  `current`'s."""
  known_flags = flags.FLAGS if known_flags is None else known_flags
  before = parse_flagfile(previous, known_flags)
  after = parse_flagfile(current, known_flags)
  binary = {known_flags.find_module_defining_flag(name)
            for name in after if name in known_flags}
  changed = []
  for name in sorted(set(after) | {
      name for name in before if name in known_flags and
      known_flags.find_module_defining_flag(name) in binary}):
    if name in resumable:
      continue
    default = None
    if name in known_flags and known_flags[name].default is not None:
      default = known_flags[name].default
      default = str(default).lower() if isinstance(default, bool) else str(
          default)
    old = before.get(name, default)
    new = after.get(name, default)
    if old != new:
      changed.append(f"--{name}={old}->{new}")
  return changed


def partition_checksum(part):
  """SHA-256 of what a partition assigns: every client's indices and name,
  its label and feature noise and whether that noise is redrawn per read,
  its rotation (not how it was made)."""
  digest = hashlib.sha256()
  for field, dtype in (("offsets", "<i8"), ("indices", "<i8"),
                       ("noisy_labels", "<i8"), ("feature_noise", "<f8"),
                       ("rotation", "<i8")):
    values = getattr(part, field)
    if values is not None:
      digest.update(field.encode())
      digest.update(np.ascontiguousarray(values, dtype=dtype).tobytes())
  if part.client_names is not None:
    digest.update(json.dumps(part.client_names).encode())
  if part.feature_noise_redraw:  # only then: older checksums stay valid
    digest.update(b"feature_noise_redraw")
  return digest.hexdigest()


def _data_identity(data):
  return {
      "dataset": data.name,
      "train_labels_fingerprint": partition_lib.fingerprint(data.train_labels),
      "content_sha256": dict(data.content_sha256),
  }


def _read_identity(run_dir):
  """The recorded identity, or None for a new run or one from before it."""
  path = os.path.join(run_dir, IDENTITY_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise RunDirError(f"cannot read {path} ({e}); restore it, or "
                      f"{_START_OVER}") from None


def has_identity(run_dir):
  """False for a new run, or one started before identities were recorded."""
  return os.path.exists(os.path.join(run_dir, IDENTITY_FILE))


def _check_flags(run_dir, flagfile, resumable, known_flags):
  path = os.path.join(run_dir, HPARAMS_FILE)
  if not os.path.exists(path):
    return
  with open(path) as f:
    changed = changed_flags(f.read(), flagfile, resumable=resumable,
                            known_flags=known_flags)
  if changed:
    raise RunDirError(f"{run_dir} holds a run with other flags "
                      f"({', '.join(changed)}); {_START_OVER}")


def _check_data(run_dir, recorded, data):
  now = _data_identity(data)
  differences = [f"{key} {recorded.get(key)} then, {now[key]} now"
                 for key in ("dataset", "train_labels_fingerprint")
                 if recorded.get(key) != now[key]]
  recorded_sums = recorded.get("content_sha256", {})
  other_files = sorted(name for name, digest in now["content_sha256"].items()
                       if recorded_sums.get(name) != digest)
  if other_files:
    differences.append(f"other content in {', '.join(other_files)}")
  if differences:
    raise RunDirError(
        f"{run_dir} holds a run on other data ({'; '.join(differences)}); "
        "resume it with the data it started with, or use another "
        "--experiment_name.")


def _describe(part, checksum):
  return f"{part.scheme}, {len(part)} clients, checksum {checksum[:16]}"


def _check_partition(run_dir, recorded_checksum, data, part):
  checksum = partition_checksum(part)
  if recorded_checksum is not None and recorded_checksum != checksum:
    raise RunDirError(
        f"{run_dir} holds a run on another partition (it started on "
        f"checksum {recorded_checksum[:16]}, this start has "
        f"{_describe(part, checksum)}); "
        "resume it with the partition it started with, or use another "
        "--experiment_name.")
  path = os.path.join(run_dir, PARTITION_DIR)
  if not os.path.isdir(path):
    return
  try:
    saved = partition_lib.load(path, labels=data.train_labels)
  except ValueError as e:
    raise RunDirError(f"{run_dir} holds a run whose saved partition does not "
                      f"fit: {str(e).rstrip('.')}; {_START_OVER}") from None
  saved_checksum = partition_checksum(saved)
  if saved_checksum != checksum:
    raise RunDirError(
        f"{run_dir} holds a run on another partition (saved in {path}: "
        f"{_describe(saved, saved_checksum)}; this start: "
        f"{_describe(part, checksum)}); resume it with the partition it "
        "started with, or use another --experiment_name.")


def unlike_flags(run_dir, given, *, resumable=RESUMABLE_FLAGS):
  """`--name=recorded->given` for the flags of `given` ({name: [values]}, as
  `grids.read_flagfile` reads them; the last value counts, as in absl)
  whose value the run's hparams.txt records otherwise, `resumable` ones
  left out; numbers compare by value (0.05 is 5e-2). For a command about
  to be skipped because its run finished: flags it does not give are not
  compared (their defaults are train.py's, which this does not import), nor
  flags it gives that its run ignores (`flag_use.unused_flags`: e.g. a shared
  flagfile's --server_momentum in a FedAvg cell), nor, for the same reason,
  flags train.py gained after the run started (its hparams.txt lacks them:
  a grid giving a new flag a value other than its default must rerun such
  cells itself)."""
  recorded = grids.read_flagfile(os.path.join(run_dir, HPARAMS_FILE))
  ignored = flag_use.unused_flags(
      {name: values[-1] for name, values in given.items()})
  unlike = []
  for name, values in sorted(given.items()):
    if name in resumable or name in ignored or name not in recorded:
      continue
    old, new = recorded[name][-1], values[-1]
    if old != new and _number(old) != _number(new):
      unlike.append(f"--{name}={old}->{new}")
  return unlike


def _number(text):
  try:
    return float(text)
  except ValueError:
    return text


def check_resume(run_dir, flagfile, data, part, *, resumable=(),
                 known_flags=None, rounds=None):
  """Raises RunDirError unless a start with these inputs continues `run_dir`.

  A new or empty directory passes. Otherwise each record it holds must agree:
  `hparams.txt` may differ from `flagfile` only in `resumable` flags; the run
  identity's dataset name, training-label fingerprint, content checksums and
  partition checksum must be this start's; the saved `partition/` must fit
  `data`'s labels and assign what `part` assigns; and the run must not have
  run more rounds than `rounds` (its records would then disagree: hparams.txt
  asking for fewer than metrics.csv holds). Reads only: nothing on disk
  changes, whatever the outcome.

  Args:
    run_dir: the run directory.
    flagfile: this start's flags (`binary_flagfile()`).
    data: this start's `datasets.Dataset`.
    part: the `partition.Partition` this start trains on.
    resumable: names of the flags that may change on resume.
    known_flags: the absl `FlagValues` defining the flags (default
      flags.FLAGS); see `changed_flags`.
    rounds: the rounds this start asks for (None: not checked).
  """
  _check_flags(run_dir, flagfile, resumable, known_flags)
  rounds_run = max((int(row["round"]) for row in
                    results.read_metrics(run_dir)), default=0)
  if rounds is not None and rounds < rounds_run:
    raise RunDirError(
        f"{run_dir} holds a run that has run {rounds_run} rounds, more than "
        f"--rounds={rounds}; resume it with --rounds >= {rounds_run}, or use "
        "another --experiment_name.")
  recorded = _read_identity(run_dir) or {}
  if recorded:
    _check_data(run_dir, recorded, data)
  _check_partition(run_dir, recorded.get("partition_sha256"), data, part)


def write_hparams(run_dir, flagfile):
  """Records this start's flags: a flagfile that reruns the run."""
  with open(os.path.join(run_dir, HPARAMS_FILE), "w") as f:
    f.write(flagfile)


def write_json(path, value, sort_keys=True):
  """Writes `value` to `path` as indented JSON (keys sorted unless
  `sort_keys` is False), atomically: a kill, or a reader, sees the old file
  or the new one."""
  with open(path + ".tmp", "w") as f:
    json.dump(value, f, indent=2, sort_keys=sort_keys)
    f.write("\n")
  os.replace(path + ".tmp", path)


def record_identity(run_dir, data, part):
  """Writes the run identity of `data` and `part` (atomically)."""
  write_json(os.path.join(run_dir, IDENTITY_FILE),
             dict(_data_identity(data),
                  partition_sha256=partition_checksum(part)))


def complete_checkpoints(run_dir: str) -> list[int]:
  """The rounds of `run_dir`'s checkpoints whose SavedModel files are all
  there (a save cut short by a kill is not), in order."""
  where = os.path.join(run_dir, CHECKPOINT_DIR)
  pattern = re.compile(rf"{re.escape(CHECKPOINT_PREFIX)}(\d+)$")
  saved = sorted(int(m.group(1)) for m in map(
      pattern.match, os.listdir(where) if os.path.isdir(where) else []) if m)
  return [r for r in saved if all(
      os.path.exists(os.path.join(where, f"{CHECKPOINT_PREFIX}{r}", name))
      for name in _SAVED_MODEL_FILES)]


def _cpu():
  """(model name, SIMD extensions) of this machine's CPU, from
  /proc/cpuinfo where there is one."""
  model, flags_seen = platform.processor() or "unknown", []
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
          model = value.strip()
        elif key.strip() == "flags":
          flags_seen = value.split()
          break
  except OSError:
    pass
  return model, [f for f in flags_seen if f.startswith(_SIMD_PREFIXES)]


def code_version(root: Optional[str] = None) -> str:
  """The code a start runs: tff_niid's version and, where `root` (default:
  the directory holding the imported tff_niid, `checkout.imported_root`) is
  a git checkout's top, its commit and whether tff_niid/ or experiments/
  differ from it (a grid's code archive is no checkout: its grid.log names
  the commit)."""
  from tff_niid import __version__  # pylint: disable=g-import-not-at-top
  root = root if root is not None else checkout.imported_root()
  def git(*args):
    return subprocess.run(["git", "-C", root, *args], capture_output=True,
                          text=True, check=True, timeout=30).stdout.splitlines()
  try:
    top, commit = git("rev-parse", "--show-toplevel", "--short=12", "HEAD")
    if os.path.realpath(top) != os.path.realpath(root):
      raise ValueError(top)  # a directory inside another repository
    changed = git("status", "--porcelain", "--", "tff_niid", "experiments")
  except (OSError, ValueError, subprocess.SubprocessError):
    return f"tff_niid {__version__} (not a git checkout)"
  return (f"tff_niid {__version__}, git {commit}" +
          (" with uncommitted changes to tff_niid/ or experiments/"
           if changed else ""))


def record_machine(run_dir: str) -> str:
  """Appends to `run_dir`'s machine.txt one line for this start: the time,
  the round it resumes after, the CPU and its SIMD extensions, the cores,
  TensorFlow's thread variables and the code (`code_version`). Returns the
  line.

  A round's bits depend on them: oneDNN picks its kernels by the CPU's
  instruction set, and the number of threads changes the order of
  reductions. So a run resumed elsewhere, or rerun from its hparams.txt,
  repeats its bits only where these match (and the code: a run outside a
  grid has no code.txt)."""
  model, simd = _cpu()
  resumed = (complete_checkpoints(run_dir) or [0])[-1]
  threads = " ".join(f"{name}={os.environ.get(name, 'unset')}"
                     for name in _THREAD_VARIABLES)
  line = (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
          f" start after round {resumed}: cpu {model}; "
          f"{' '.join(simd) or 'no SIMD flags read'}; {os.cpu_count()} cores; "
          f"{threads}; code {code_version()}")
  with open(os.path.join(run_dir, MACHINE_FILE), "a") as f:
    f.write(line + "\n")
  return line


def copy_resumable(run_dir: str, dest: str) -> Optional[int]:
  """Copies into `dest` (replaced) what a start needs to resume the stopped
  run in `run_dir` where it stopped, e.g. on another machine: the newest
  checkpoint, `metrics.csv`'s rows up to that round, `hparams.txt` and the
  run and training identities. Not the partition (the start rebuilds it
  from its flags and `check_resume` compares its checksum with the
  identity's) nor the TensorBoard events. The run must not be running: the run's lock is taken
  while copying (`RunLockedError` otherwise).

  Returns the checkpoint's round, or None (and `dest` untouched) when
  `run_dir` holds no complete checkpoint. Stop the run with SIGTERM, which
  lets a save in progress finish; a checkpoint cut short by a kill (its
  SavedModel files not all there) is passed over for the one before.
  """
  where = os.path.join(run_dir, CHECKPOINT_DIR)
  complete = complete_checkpoints(run_dir)
  if not complete:
    return None
  if not has_identity(run_dir):  # without it, nothing would check the
    # partition the copy is resumed on
    raise RunDirError(f"{run_dir} has no {IDENTITY_FILE} (a run from before "
                      "identities): resume it where it is first.")
  newest = complete[-1]
  checkpoint = f"{CHECKPOINT_PREFIX}{newest}"
  with lock(run_dir):
    if os.path.exists(dest):
      shutil.rmtree(dest)
    shutil.copytree(os.path.join(where, checkpoint),
                    os.path.join(dest, CHECKPOINT_DIR, checkpoint))
    for name in (HPARAMS_FILE, IDENTITY_FILE, TRAINING_IDENTITY_FILE,
                 MACHINE_FILE):
      if os.path.exists(os.path.join(run_dir, name)):
        shutil.copy2(os.path.join(run_dir, name), dest)
    with open(os.path.join(run_dir, results.METRICS_FILE), newline="") as f:
      reader = csv.DictReader(f)
      rows = [row for row in reader if int(row["round"]) <= newest]
      fieldnames = reader.fieldnames or ["round"]
    with open(os.path.join(dest, results.METRICS_FILE), "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=fieldnames)
      writer.writeheader()
      writer.writerows(rows)
  return newest

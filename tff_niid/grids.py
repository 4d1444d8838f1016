"""A grid's layout: the flags it runs (flagfiles, partitions, sweeps,
references), its cells' names and run directories, and the code each round
of a cell ran under (its grid.log).

`experiments/grid.py` lays grids out this way and the reports read them back
(`tff_niid.reports`); the runs themselves are read with `tff_niid.results`.
No TensorFlow here.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any, Callable, Optional, Sequence

from tff_niid import results


def read_flagfile(path: str, root: str = ".") -> dict[str, list[str]]:
  """{flag name: [values]} of the `--name=value` lines of an absl flagfile.

  Comment (#) and blank lines, and flags without a value (--flag, --noflag),
  are skipped; a repeated flag keeps its values in order. A nested
  `--flagfile=PATH` is read in its place, as absl reads it, with PATH taken
  relative to `root` (absl's: the current directory).
  """
  values: dict[str, list[str]] = {}
  with open(path) as f:
    for line in f:
      line = line.strip()
      if line.startswith("--") and "=" in line:
        name, _, value = line[2:].partition("=")
        if name == "flagfile":
          for nested, nested_values in read_flagfile(
              os.path.join(root, value), root).items():
            values.setdefault(nested, []).extend(nested_values)
        else:
          values.setdefault(name, []).append(value)
  return values


def flag_list(flags: dict[str, list[str]], name: str) -> Optional[list[str]]:
  """The comma-separated items of a list flag in `read_flagfile`'s result
  (its last value wins, as in absl), or None if it is not set."""
  if name not in flags:
    return None
  return [item.strip() for item in flags[name][-1].split(",") if item.strip()]


def grid_partitions(items: Sequence[str],
                    only: Optional[Sequence[str]] = None
                    ) -> list[tuple[str, str]]:
  """The (name, spec) pairs a grid runs, in its order.

  Args:
    items: grid.py's --partition=NAME=SPEC values.
    only: grid.py's --only_partitions: if given, the names kept.

  Raises:
    ValueError: an item not NAME=SPEC, a repeated or missing name, or a name
      in `only` that no item has.
  """
  parsed = []
  for item in items:
    name, sep, spec = item.partition("=")
    if not sep or not name.strip() or not spec.strip():
      raise ValueError(f"--partition={item!r}: expected NAME=SPEC.")
    parsed.append((name.strip(), spec.strip()))
  names = [name for name, _ in parsed]
  if len(set(names)) != len(names):
    raise ValueError(f"partition names repeat: {names}.")
  if not parsed:
    raise ValueError("give at least one --partition=NAME=SPEC.")
  if only is None:
    return parsed
  unknown = set(only) - set(names)
  if unknown:
    raise ValueError(f"--only_partitions: {sorted(unknown)} not in the "
                     f"grid's partitions {names}.")
  return [(name, spec) for name, spec in parsed if name in only]


def cell_name(dataset: str, partition: str, algorithm: str,
              seed: Optional[int] = None) -> str:
  """A grid cell's run directory name (`algorithm` includes any sweep
  suffix): <dataset>_<partition>_<algorithm>[_s<seed>]."""
  name = f"{dataset}_{partition}_{algorithm}"
  return name if seed is None else f"{name}_s{seed}"


def sweep_variants(items: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
  """[(algorithm-name suffix, {train.py flag: value})] over the product of
  grid.py --sweep items FLAG=V1,V2,... ([("", {})] without any). Raises
  ValueError on another form."""
  axes = []
  for item in items:
    flag, sep, values = item.partition("=")
    flag = flag.strip()
    listed = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not flag or flag.startswith("-") or not listed:
      raise ValueError(f"--sweep={item!r}: expected FLAG=V1,V2,...")
    axes.append([(flag, v) for v in listed])
  return [("".join(f"_{flag}{v}" for flag, v in combo), dict(combo))
          for combo in itertools.product(*axes)]


def cell(grid_dir: str, dataset: str, partition: tuple[str, str],
         algorithm: str, sweep: tuple[str, dict[str, str]],
         seed: Optional[int]) -> results.Cell:
  """One cell of a grid, not read: a dict with dataset, partition, spec,
  algorithm (the variant and its sweep suffix), variant, sweep ({flag:
  value}), seed and run_dir.

  Args:
    grid_dir: the grid's directory, `<root_output_dir>/<grid_name>`.
    dataset: its dataset.
    partition: its (name, spec), of `grid_partitions`.
    algorithm: its algorithm or variant name.
    sweep: its (suffix, {flag: value}), of `sweep_variants`.
    seed: its seed, or None in a grid without --seeds.
  """
  (name, spec), (suffix, swept) = partition, sweep
  return dict(dataset=dataset, partition=name, spec=spec,
              algorithm=algorithm + suffix, variant=algorithm, sweep=swept,
              seed=seed, run_dir=os.path.join(grid_dir, cell_name(
                  dataset, name, algorithm + suffix, seed)))


def cells(grid_dir: str, datasets: Sequence[str],
          partitions: Sequence[tuple[str, str]], algorithms: Sequence[str],
          sweeps: Sequence[tuple[str, dict[str, str]]],
          seeds: Sequence[Optional[int]]) -> list[results.Cell]:
  """Every `cell` of the product, in grid.py's order: seed, dataset,
  partition, algorithm, sweep (the last varies fastest)."""
  return [cell(grid_dir, dataset, partition, algorithm, sweep, seed)
          for seed, dataset, partition, algorithm, sweep in itertools.product(
              seeds, datasets, partitions, algorithms, sweeps)]


def grid_cells(grid_dir: str,
               grid_flags: dict[str, list[str]]) -> list[results.Cell]:
  """Every cell of a grid, named as experiments/grid.py names them.

  Args:
    grid_dir: the grid's directory, `<root_output_dir>/<grid_name>`.
    grid_flags: `read_flagfile` of the grid's flags (its config, or the
      grid_flags.txt it wrote): --datasets, --partition=NAME=SPEC (repeated),
      --algorithms and, if seeded, --seeds; --only_partitions is ignored
      (every cell is listed, run or not); --sweep items multiply the
      algorithms.

  Returns:
    The `cells` of the grid, each with its run (`read_run`: no metrics for a
    cell not run).

  Raises:
    ValueError: --datasets or --algorithms not set (grid.py's defaults are
      not known here), or a malformed --partition (`grid_partitions`).
  """
  datasets = flag_list(grid_flags, "datasets")
  algorithms = flag_list(grid_flags, "algorithms")
  if datasets is None or algorithms is None:
    raise ValueError("grid flags without --datasets or --algorithms.")
  seeds = flag_list(grid_flags, "seeds")
  listed = cells(grid_dir, datasets,
                 grid_partitions(grid_flags.get("partition", [])), algorithms,
                 sweep_variants(grid_flags.get("sweep", [])),
                 [None] if seeds is None else [int(s) for s in seeds])
  for each in listed:
    each["run"] = results.read_run(each["run_dir"], missing_ok=True)
  return listed


def rounds_by_code(grid_log: str,
                   cell: str) -> list[tuple[int, int, Optional[str]]]:
  """[(first round, last round, code commit)] of the rounds `cell` ran, in
  order, from the grid.log that tools/run_grid.sh appends to: each
  invocation's header (`=== <time> code <commit>: ...`) names the commit its
  frozen copy of the code was archived from. The commit is None for rounds
  the log does not attribute: under a header that names none, or done
  before the run the log resumes (e.g. by a run outside the grid). Rounds run
  again after a resume replace the earlier ones; the round a cell diverged
  at (grid.py's "diverged at round r:" line) is its last; a cell that
  finished (`done`, or diverged) and appears again is a new run of that
  name, and starts afresh."""
  header = re.compile(r"=== \S+ code (\w+):")
  event = re.compile(
      rf"\[{re.escape(cell)}\] (?:round (\d+)/|resuming after round (\d+)"
      r"|(done) |diverged at round (\d+):)")
  spans: list[tuple[int, int, Optional[str]]] = []
  code: Optional[str] = None
  done = False

  def keep_until(r: int) -> None:
    nonlocal spans
    spans = [(first, min(last, r), c) for first, last, c in spans
             if first <= r]

  for line in grid_log.splitlines():
    if line.startswith("=== "):
      match = header.match(line)
      code = match.group(1) if match else None
      continue
    match = event.match(line)
    if not match:
      continue
    ran, resumed, finished, diverged = match.groups()
    if finished:
      done = True
      continue
    if done:
      spans, done = [], False
    if diverged:
      ran, done = diverged, True
    if resumed:
      r = int(resumed)
      keep_until(r)
      covered = spans[-1][1] if spans else 0
      if covered < r:
        spans.append((covered + 1, r, None))
      continue
    r = int(ran)
    if spans and spans[-1][2] == code and r == spans[-1][1] + 1:
      spans[-1] = (spans[-1][0], r, code)
    else:
      keep_until(r - 1)
      spans.append((r, r, code))
  return spans


def grid_log_of_cell(grid_log: str, cell: str) -> str:
  """The lines of a grid.log (as `rounds_by_code` reads it) about `cell`:
  its own lines, each run of them under the invocation header it followed.
  Appended to another grid.log, they give `rounds_by_code` there the same
  spans for `cell` (tools/park_unfinished.sh keeps them with a parked
  cell)."""
  prefix = f"[{cell}] "
  # Lines before any header ran from code the log does not name; a header
  # naming none keeps them unattributed where they are appended.
  kept: list[str] = []
  header: Optional[str] = "=== (no header in the original grid.log)"
  for line in grid_log.splitlines():
    if line.startswith("=== "):
      header = line
    elif line.startswith(prefix):
      if header is not None:
        kept.append(header)
        header = None
      kept.append(line)
  return "".join(line + "\n" for line in kept)


def keyed_values(items: Sequence[str],
                 parse: Callable[[str], Any]) -> dict[results.CellKey, Any]:
  """{(dataset, partition, algorithm): parse(VALUE)} of items
  DATASET/PARTITION/ALGORITHM=VALUE (grid.py's --reference, --paper and
  --reference_rounds). Raises ValueError on another form."""
  values: dict[results.CellKey, Any] = {}
  for item in items:
    key, sep, value = item.partition("=")
    parts = key.split("/")
    if not sep or len(parts) != 3:
      raise ValueError(f"{item!r}: expected DATASET/PARTITION/ALGORITHM=VALUE")
    values[(parts[0], parts[1], parts[2])] = parse(value)
  return values

"""Files in tests: whether a test left a directory as it was, editing a
JSON file in place, and a run directory's metrics.csv."""

import json
import os


def snapshot(root):
  """{path under root: (mtime_ns, bytes), or None for a directory}: equal
  snapshots mean no file or directory was added, removed or written."""
  found: dict[str, tuple[int, bytes] | None] = {}
  for directory, subdirs, names in os.walk(root):
    for name in subdirs:
      found[os.path.relpath(os.path.join(directory, name), root)] = None
    for name in names:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, root)] = (os.stat(path).st_mtime_ns,
                                              f.read())
  return found


def rewrite_json(path, edit):
  """Replaces the JSON file at `path` with `edit(its content)`: bytes as
  they are (to write malformed files), or a value dumped as JSON."""
  with open(path) as f:
    content = edit(json.load(f))
  if not isinstance(content, bytes):
    content = json.dumps(content).encode()
  with open(path, "wb") as f:
    f.write(content)


def write_run(run_dir, accuracies, seconds=2.0):
  """A run directory with only a metrics.csv: one round per accuracy, each
  taking `seconds` (no summary.json, so the run counts as unfinished)."""
  os.makedirs(run_dir)
  with open(os.path.join(run_dir, "metrics.csv"), "w") as f:
    f.write("round,round_seconds,test_accuracy\n")
    for r, a in enumerate(accuracies, 1):
      f.write(f"{r},{seconds},{a}\n")

"""Writing a file so that no one sees half of it (no TensorFlow)."""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable


def write(path: str, fill: Callable[[BinaryIO], object]) -> None:
  """Writes `path` with `fill(file)` through a temporary file beside it,
  renamed over it: a reader, or a kill, sees the old file or the whole new
  one. The temporary file's name is one no one else can have claimed first
  (`mkstemp`, readable by this user alone, as the new file then is), and it
  is removed if `fill` fails."""
  fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.",
                             dir=os.path.dirname(path) or ".")
  try:
    with os.fdopen(fd, "wb") as f:
      fill(f)
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise

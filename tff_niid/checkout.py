"""Which checkout a binary's code runs from (no TensorFlow).

A binary of `experiments/` imports `tff_niid` from wherever the Python
environment finds it: a venv installed editable from one clone, or a
`pip install .` copy, runs another clone's `experiments/train.py` with
another library, so a rerun under a checked-out commit (docs/reproducing.md)
would silently run other code. The binaries refuse that at start
(`require_own_checkout`).
"""

from __future__ import annotations

import os
import sys
from typing import Optional


def _checkout_of(script: str) -> str:
  """`<checkout>` of a binary `<checkout>/<experiments or tools>/<name>.py`."""
  return os.path.dirname(os.path.dirname(os.path.abspath(script)))


def imported_root() -> str:
  """The directory holding the `tff_niid` package Python imported (its
  `__init__`: with an editable install, a submodule missing from an older
  tree on PYTHONPATH may come from elsewhere, so this module's own path
  would not say)."""
  package = sys.modules["tff_niid"].__file__
  assert package is not None
  return os.path.dirname(os.path.dirname(os.path.abspath(package)))


def other_checkout(script: str,
                   root: Optional[str] = None) -> Optional[str]:
  """Where `tff_niid` is imported from, if not from `script`'s checkout.

  Args:
    script: a binary's path, `<checkout>/experiments/<name>.py`.
    root: the directory holding the imported `tff_niid` (default:
      `imported_root()`).

  Returns:
    `root` where the script's checkout has a `tff_niid` of its own that
    would go unused (another clone's, or an installed copy); else None: the
    same checkout, or binaries copied without a library (as
    `report.py --check` copies grid.py to run on a copy of the results).
  """
  root = root if root is not None else imported_root()
  own = _checkout_of(script)
  if (os.path.realpath(own) == os.path.realpath(root) or
      not os.path.isdir(os.path.join(own, "tff_niid"))):
    return None
  return root


def require_own_checkout(script: str) -> None:
  """Exits with one line where `script` would run another library than its
  checkout's (`other_checkout`), naming the way to run its own."""
  other = other_checkout(script)
  if other is not None:
    own = _checkout_of(script)
    sys.exit(f"ERROR: {script} is in the checkout {own} but imports tff_niid "
             f"from {other}, so it would run that code. Run it with "
             f"PYTHONPATH={own} (the same environment serves), or install "
             f"this checkout into the environment: pip install --no-deps -e "
             f"{own}")

"""Which checkout a binary's code runs from (no TensorFlow).

A binary of `experiments/` imports `tff_niid` from wherever the Python
environment finds it: a venv installed editable from one clone runs another
clone's `experiments/train.py` with the first clone's library, so a rerun
under a checked-out commit (docs/reproducing.md) would silently run other
code. The binaries refuse that at start (`require_own_checkout`).
"""

from __future__ import annotations

import os
import sys
from typing import Optional

# The directory holding the imported tff_niid package.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def other_checkout(script: str,
                   package_root: str = _PACKAGE_ROOT) -> Optional[str]:
  """The checkout `tff_niid` is imported from, if it is not `script`'s.

  Args:
    script: a binary's path, `<checkout>/experiments/<name>.py`.
    package_root: the directory holding the imported `tff_niid`.

  Returns:
    `package_root` where it is another checkout (it has an `experiments/`
    directory) than the script's, and the script's has a `tff_niid` of its
    own that would go unused; else None: the same checkout, an installed
    copy of `tff_niid` (site-packages, which the environment's owner
    chose), or binaries copied without a library (as `report.py --check`
    copies grid.py to run on a copy of the results).
  """
  script_root = os.path.dirname(os.path.dirname(os.path.abspath(script)))
  if (os.path.realpath(script_root) == os.path.realpath(package_root) or
      not os.path.isdir(os.path.join(script_root, "tff_niid")) or
      not os.path.isdir(os.path.join(package_root, "experiments"))):
    return None
  return package_root


def require_own_checkout(script: str) -> None:
  """Exits with one line where `script` would run another checkout's
  library (`other_checkout`), naming the way to run its own."""
  other = other_checkout(script)
  if other is not None:
    own = os.path.dirname(os.path.dirname(os.path.abspath(script)))
    sys.exit(f"ERROR: {script} is in the checkout {own} but imports tff_niid "
             f"from the checkout {other}, so it would run that code. Run it "
             f"with PYTHONPATH={own} (the same environment serves), or "
             f"install this checkout into the environment: pip install "
             f"--no-deps -e {own}")

"""Writes the registry's scheme table into README.md (or the file given).

The table under the README's `<!-- scheme table: python -m tff_niid.partition
--markdown -->` line is `registry.markdown_table()`, which a test keeps
equal to the registry: after adding or changing a scheme, run
`python tools/update_scheme_table.py`.
"""

from __future__ import annotations

import os
import sys

from tff_niid import checkout
from tff_niid.partition import registry

MARKER = "<!-- scheme table: python -m tff_niid.partition --markdown -->\n"
README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "README.md")


def main(argv: list[str]) -> None:
  if len(argv) > 2:
    sys.exit("usage: python tools/update_scheme_table.py [README.md]")
  path = argv[1] if len(argv) == 2 else README
  with open(path, encoding="utf-8") as f:
    text = f.read()
  if MARKER not in text:
    sys.exit(f"ERROR: {path} has no line {MARKER.strip()!r} above its "
             "scheme table.")
  head, rest = text.split(MARKER, 1)
  # The table is the run of `|` lines under the marker (none yet: empty).
  lines = rest.splitlines(keepends=True)
  table_end = next((i for i, line in enumerate(lines)
                   if not line.startswith("|")), len(lines))
  updated = (head + MARKER + registry.markdown_table() + "\n" +
             "".join(lines[table_end:]))
  if updated == text:
    print(f"{path}: the scheme table is the registry's already.")
    return
  with open(path, "w", encoding="utf-8") as f:
    f.write(updated)
  print(f"{path}: scheme table written from the registry.")


if __name__ == "__main__":
  checkout.require_own_checkout(__file__)
  main(sys.argv)

"""`python -m tff_niid.partition`: the registered schemes, as
`tff-niid-partition --list_schemes` prints them; with `--markdown`, the
README's scheme table."""

from __future__ import annotations

import sys

from tff_niid.partition import registry


def main(argv: list[str]) -> None:
  if argv[1:] not in ([], ["--markdown"]):
    sys.exit("usage: python -m tff_niid.partition [--markdown] (lists the "
             "schemes); to partition a dataset, run tff-niid-partition "
             "(python -m tff_niid.partition_cli) with these flags.")
  print(registry.markdown_table() if argv[1:] else registry.describe())


if __name__ == "__main__":
  main(sys.argv)

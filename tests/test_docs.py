"""The documentation's relative links point at files that exist."""

import pathlib
import re
import subprocess

_REPO = pathlib.Path(__file__).resolve().parent.parent
# [text](target): a relative target, i.e. no scheme and no in-page anchor.
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(markdown: pathlib.Path):
  for match in _LINK.finditer(markdown.read_text()):
    target = match.group(1)
    if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
      yield target


def test_every_relative_link_in_the_docs_resolves():
  tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=_REPO, check=True,
                           capture_output=True, text=True).stdout.split()
  assert "docs/reproducing.md" in tracked
  broken = [f"{name}: {target}" for name in tracked
            for target in _relative_links(_REPO / name)
            if not (_REPO / name).parent.joinpath(
                target.split("#")[0]).exists()]
  assert not broken, broken

"""The documentation's relative links point at files that exist, and its
in-page links at headings of their page."""

import pathlib
import re
import subprocess

from tff_niid.reports import readme

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


def test_every_in_page_link_in_the_docs_names_a_heading():
  tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=_REPO, check=True,
                           capture_output=True, text=True).stdout.split()
  broken = []
  for name in tracked:
    text = (_REPO / name).read_text()
    anchors = {target for _, _, target, _ in readme.headings(text)}
    broken += [f"{name}: {target}" for target in _LINK.findall(text)
               if target.startswith("#") and target[1:] not in anchors]
  assert not broken, broken


def test_every_link_to_a_heading_of_another_page_names_one():
  tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=_REPO, check=True,
                           capture_output=True, text=True).stdout.split()
  broken = []
  for name in tracked:
    for target in _relative_links(_REPO / name):
      page, _, anchor = target.partition("#")
      path = (_REPO / name).parent / page
      if anchor and page.endswith(".md") and path.exists():
        anchors = {a for _, _, a, _ in readme.headings(path.read_text())}
        if anchor not in anchors:
          broken.append(f"{name}: {target}")
  assert not broken, broken


def test_anchors_follow_githubs_rule():
  assert readme.anchor("2.1 As published: `grid` (seeds 0–2; more)") == (
      "21-as-published-grid-seeds-02-more")
  assert readme.anchor("FedProx's μ on MNIST #C=1") == "fedproxs-μ-on-mnist-c1"
  assert [target for *_, target, _ in readme.headings(
      "## Progress\n```\n## not a heading\n```\n#### Progress\n")] == [
          "progress", "progress-1"]


# `test_file.py` or `test_file.py::test_name`, as docs/other_packages.md
# names the test behind each "tested" claim.
_TEST_REFERENCE = re.compile(r"`(test_\w+\.py)(?:::(\w+))?`")


def test_the_tests_named_by_other_packages_exist():
  text = (_REPO / "docs" / "other_packages.md").read_text()
  references = _TEST_REFERENCE.findall(text)
  assert len(references) >= 6
  for filename, test in references:
    path = _REPO / "tests" / "partition" / filename
    assert path.exists(), filename
    if test:
      assert re.search(rf"^def {test}\(", path.read_text(), re.M), (
          f"{filename}::{test}")

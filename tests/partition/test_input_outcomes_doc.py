"""docs/input_outcomes.md's partition-library messages are the library's.

The doc quotes each refusal of `tff_niid.partition` word for word. Here each
quoted message's example input is run and its message compared with the
doc's: a reworded error fails this test until the doc says what the code
says. The doc writes paths as under /w (saving) or `dir` (loading), `…` for
a hash, `<...>` for a part that varies (e.g. `<the schemes that take key>`,
so that the doc lists no scheme by hand) and `...` for a cut message; those
match anything."""

import json
import os
import re

import numpy as np
import pytest

import files
from tff_niid import partition
from tff_niid.partition import core
from tff_niid.partition import spec

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                   "input_outcomes.md")
# Code spans: ``...`` (which may hold a backtick) or `...`.
_CODE_SPAN = re.compile(r"``\s(.+?)\s``|`([^`]+)`")
_WILDCARD = re.compile(r"…|\.\.\.|<[a-z ]+>")

LABELS = np.arange(1000) % 10


def _doc_messages():
  """The exception messages quoted in the doc's partition-library part."""
  with open(DOC, encoding="utf-8") as f:
    library_part = f.read().split("\n## ")[1]
  assert library_part.startswith("Partition library")
  spans = (m.group(1) or m.group(2) for m in _CODE_SPAN.finditer(library_part))
  return [s for s in spans if re.match(r"\w+Error: ", s)]


def _pattern(doc_message):
  parts = _WILDCARD.split(doc_message)
  return re.compile(".*?".join(map(re.escape, parts)) + r"\Z", re.DOTALL)


def _saved(path, edit=None):
  """A saved 10-client partition at `path`, its manifest `edit`ed."""
  partition.iid(LABELS, 10, seed=0).save(path)
  if edit is not None:
    files.rewrite_json(os.path.join(path, "manifest.json"), edit)
  return path


def _save_in_non_empty_dir():
  os.makedirs("results/run1")
  partition.iid(LABELS, 10, seed=0).save("results")


def _save_over_file():
  open("p", "w").close()
  partition.iid(LABELS, 10, seed=0).save("p")


def _save_over_saved():
  _saved("p")
  partition.iid(LABELS, 10, seed=1).save("p")


def _save_under_file():
  open("f", "w").close()
  partition.iid(LABELS, 10, seed=0).save("f/sub")


def _load_report_directory():
  partition.report.write(partition.iid(LABELS, 10, seed=0), LABELS, "dir",
                         plots=False)
  return partition.load("dir")


def _split_repeated_samples():
  test_labels = np.repeat(np.arange(10), 2)
  train = partition.label_quantity(LABELS, 10, classes_per_client=1, seed=0)
  matched = partition.match_test(train, LABELS, test_labels, seed=0, size=5)
  return partition.split_clients(matched, test_labels, test_fraction=0.4,
                                 seed=0)


def _load_edited(edit):
  return lambda: partition.load(_saved("dir", edit))


def _load_with_other_labels():
  partition.load(_saved("dir", lambda m: {**m, "num_samples": 10**12}),
                 labels=np.arange(1000) % 10)


def _natural_by_slant():
  # Any images give fractional slants; these need no dataset files.
  images = np.random.default_rng(0).integers(0, 256, (1000, 28, 28),
                                             dtype=np.uint8)
  spec.resolve("natural(ids=slant)", LABELS, None, seed=0, images=images)


def _report_with_another_key():
  region = np.arange(1000) % 7
  part = partition.dirichlet(LABELS, 10, alpha=0.5, key=region, seed=0)
  partition.report.write(part.replace(spec="dirichlet(alpha=0.5)+key(region)"),
                         LABELS, "dir", keys={"region": region[::-1]},
                         plots=False)


def _json_spec(**base):
  return json.dumps({"base": {"scheme": "dirichlet", **base}})


# The example input of each message the doc quotes, in the doc's order.
EXAMPLES = {
    "save('')": lambda: partition.iid(LABELS, 10, seed=0).save(""),
    "save into a non-empty directory": _save_in_non_empty_dir,
    "save over a file": _save_over_file,
    "save over a saved partition": _save_over_saved,
    "save under a file": _save_under_file,
    "manifest not an object": _load_edited(lambda m: b"[1, 2]"),
    "manifest binary": _load_edited(lambda m: b"\xff\xfe\x00 not text"),
    "manifest lacks a field": _load_edited(
        lambda m: {k: v for k, v in m.items() if k != "scheme"}),
    "manifest field of the wrong type": _load_edited(
        lambda m: {**m, "num_samples": "1000"}),
    "manifest num_clients disagrees": _load_edited(
        lambda m: {**m, "num_clients": 11}),
    "manifest has_noisy_labels disagrees": _load_edited(
        lambda m: {**m, "has_noisy_labels": True}),
    "manifest num_samples 1e12": _load_with_other_labels,
    "load a report directory": _load_report_directory,
    "sigma=800": lambda: partition.quantity_skew(LABELS, 10, sigma=800,
                                                 seed=0),
    "alpha=5e-324": lambda: partition.dirichlet(LABELS, 10, alpha=5e-324,
                                                seed=0),
    "alpha of 400 digits": lambda: partition.dirichlet(
        LABELS, 10, alpha=10**400, seed=0),
    "resample out of reach": lambda: partition.quantity_skew(
        LABELS, 10, alpha=1e-12, min_size_policy="resample", seed=0),
    "exponential profile, 100 clients": lambda: partition.quantity_skew(
        np.arange(60000) % 10, 100, profile="exponential", seed=0),
    "profile and resample": lambda: partition.quantity_skew(
        LABELS, 10, profile="linear", min_size_policy="resample", seed=0),
    "by_sample with one-hot mixes": lambda: partition.balanced_dirichlet(
        np.arange(60000) % 10, 100, alpha=1e-3, fill="by_sample", seed=0),
    "class_assignment with sizes": lambda: partition.label_quantity(
        LABELS, 10, classes_per_client=2, class_assignment="random",
        sizes=np.full(10, 100), seed=0),
    "invalid partition": lambda: core.make_partition(
        np.arange(4) % 2, [0, 1, 1, 3], [0, 2, 4], scheme="iid", params={},
        seed=0),
    "stray huge class id": lambda: partition.iid(
        np.append(LABELS, 10**12), 10, seed=0),
    "class ids without samples": lambda: partition.label_quantity(
        np.repeat([3, 7], 100), 4, classes_per_client=1, seed=0),
    "object key": lambda: partition.dirichlet(
        LABELS, 10, alpha=0.5, key=np.array([None] * 1000), seed=0),
    "metrics with another split's labels": lambda: partition.metrics.summary(
        partition.iid(np.arange(60000) % 10, 10, seed=0),
        np.arange(10000) % 10),
    "report with another key array": _report_with_another_key,
    "label_counts num_classes=5": lambda: partition.metrics.label_counts(
        partition.iid(LABELS, 10, seed=0), LABELS, num_classes=5),
    "natural with fractional ids": _natural_by_slant,
    "natural with another client count": lambda: spec.resolve(
        "natural(ids=writer)", LABELS, 10, seed=0,
        keys={"writer": np.arange(1000) % 7}),
    "key_noise without key": lambda: partition.dirichlet(
        LABELS, 10, alpha=0.5, key_noise=0.5, seed=0),
    "num_classes=5": lambda: partition.label_noise(
        LABELS, partition.iid(LABELS, 10, seed=0), rate=0.1, num_classes=5,
        seed=0),
    "ramp=0.3": lambda: partition.label_noise(
        LABELS, partition.iid(LABELS, 10, seed=0),
        # The ignore: the outcome shown is a float's, where a pair belongs.
        ramp=0.3, seed=0),  # type: ignore[arg-type]
    "split with test_fraction=0": lambda: partition.split_clients(
        partition.iid(LABELS, 10, seed=0), LABELS, test_fraction=0, seed=0),
    "split a client holding a sample twice": _split_repeated_samples,
    "an empty client": lambda: partition.from_client_indices(
        LABELS, {0: [0, 1], 1: []}),
    "an index out of range": lambda: partition.from_client_indices(
        LABELS, [[0, 1], [1000]]),
    "a sample held twice": lambda: partition.from_client_indices(
        LABELS, {"a": [0, 7], "b": [3, 7]}),
    "client ids alike as text": lambda: partition.from_client_indices(
        LABELS, {1: [0], "1": [1]}),
    "spec value with text": lambda: spec.parse(
        _json_spec(alpha="0.1)+noise(rate=0.9")),
    "unknown component": lambda: spec.parse(json.dumps(
        {"base": {"scheme": "dirichlet", "alpha": 0.5}, "nosie": {}})),
    "unknown parameter": lambda: spec.parse(_json_spec(alpha=0.5, beta=1)),
    "key twice": lambda: spec.parse(
        '{"base": {"scheme": "dirichlet", "alpha": 0.1, "alpha": 0.5}}'),
    "no base": lambda: spec.parse(json.dumps({"noise": {"rate": 0.1}})),
    "parameter twice": lambda: spec.parse("dirichlet(alpha=0.1, alpha=0.5)"),
    "key on iid": lambda: spec.parse("iid+key(ink)"),
    "given sizes with min_size": lambda: spec.parse(
        "classes(k=2)+quantity(sizes=(30000, 30000), min_size=10)"),
    "a size law's draw below the base's floor": lambda: spec.resolve(
        "classes(k=2)+quantity(sigma=2)", np.arange(60000) % 10, 1000,
        seed=0),
    "given sizes, another client count": lambda: spec.resolve(
        "classes(k=2)+quantity(sizes=(30000, 30000))",
        np.arange(60000) % 10, 3, seed=0),
    "an angle twice": lambda: spec.parse("iid+rotate(degrees=(90, 90))"),
    "not a quarter turn": lambda: spec.parse("iid+rotate(degrees=(0, 45))"),
    "fewer clients than angles": lambda: spec.resolve("iid+rotate", LABELS, 3,
                                                      seed=0),
}


def _raised(example):
  with pytest.raises(Exception) as e:
    example()
  return f"{type(e.value).__name__}: {e.value}"


def test_every_quoted_message_has_an_example():
  assert len(EXAMPLES) == len(_doc_messages()), (
      "docs/input_outcomes.md's partition part quotes "
      f"{len(_doc_messages())} messages and this test runs {len(EXAMPLES)} "
      "examples: give each quoted message its example here, in order.")


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_doc_quotes_what_the_library_says(name, tmp_path, monkeypatch):
  # Examples and quoted messages pair up in order.
  messages = _doc_messages()
  position = list(EXAMPLES).index(name)
  monkeypatch.chdir(tmp_path)
  message = _raised(EXAMPLES[name]).replace(str(tmp_path), "/w")
  quoted_elsewhere = [i + 1 for i, quoted in enumerate(messages)
                      if i != position and _pattern(quoted).match(message)]
  assert _pattern(messages[position]).match(message), (
      f"docs/input_outcomes.md quotes\n  {messages[position]}\nfor '{name}' "
      f"(its message {position + 1} of {len(messages)}), but the library "
      f"says\n  {message}" + (
          f"\nwhich the doc quotes as its message(s) {quoted_elsewhere}: "
          "give EXAMPLES the doc's order" if quoted_elsewhere else ""))

"""The scheme registry: read from the signatures, and what the spec grammar,
the binaries and the README take from it."""

import importlib
import inspect
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from partition_contract import assert_refused
from partition_contract import assert_rejects_bad_labels
from partition_contract import assert_rejects_bad_num_clients
from partition_contract import assert_seeded
from partition_contract import example_scheme
from tff_niid import partition
from tff_niid.partition import registry
from tff_niid.partition import spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 300))
KEYS = {"region": np.arange(LABELS.shape[0]) % 7}

# The example spec of every registered scheme.
EXAMPLES = {name: scheme.example for name, scheme in registry.SCHEMES.items()}


def test_every_example_names_its_scheme():
  for name, example in EXAMPLES.items():
    assert spec.parse(example)["base"]["scheme"] == name, example


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_scheme_keeps_the_contract(name):
  own = spec.makes_own_clients(EXAMPLES[name])  # natural: one per id
  make = lambda seed, labels=LABELS: spec.resolve(
      EXAMPLES[name], labels, None if own else 20, seed=seed, keys=KEYS)
  part = make(0)
  assert part.scheme == name
  assert_exact_cover(part, LABELS.shape[0])
  call = example_scheme(name)
  assert_rejects_bad_labels(lambda y: call(y, 1))
  if not own:  # natural is deterministic
    assert_seeded(make)
    assert_rejects_bad_num_clients(call, LABELS)
    for seed in (-1, 1.5, None, True):
      assert_refused(lambda: call(LABELS, 20, seed=seed),
                     "`seed` must be a non-negative integer", "check_seed")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("num_clients", [1, 30])
def test_every_scheme_at_the_client_count_extremes(name, num_clients):
  """One client, and one client per sample: a partition of every sample, or
  a ValueError saying why not (e.g. a minimum size), never an internal error
  (a division by n - 1, an empty client)."""
  labels = np.repeat(np.arange(10), 3)
  try:
    part = spec.resolve(EXAMPLES[name], labels,
                        None if spec.makes_own_clients(EXAMPLES[name])
                        else num_clients, seed=0,
                        keys={"region": np.arange(30) % 7})
  except ValueError:
    return
  assert_exact_cover(part, 30)


@pytest.mark.parametrize("name", sorted(registry.SCHEMES))
def test_every_scheme_has_its_test_file(name):
  assert os.path.exists(os.path.join(REPO, "tests", "partition",
                                     f"test_{name}.py")), (
      f"give {name} its own test file, tests/partition/test_{name}.py")


@pytest.mark.parametrize("name", sorted(registry.SCHEMES))
def test_every_scheme_has_its_source(name):
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    sources = f.read().split("\nSources: ")[1].split("\n\n")[0]
  assert f"`{name}`" in sources, (
      f"name {name}'s paper or project in README.md's \"Sources:\" paragraph "
      "below the scheme table")


# natural's ids are an array `params` cannot hold (its spec names them).
@pytest.mark.parametrize("name", sorted(set(registry.SCHEMES) - {"natural"}))
def test_a_partition_is_drawn_again_from_its_params(name):
  """`params` and the seed hold all a scheme drew from: the function given
  them makes the same partition (with quantity(...), a sized scheme records
  the sizes it was given in full)."""
  scheme = registry.SCHEMES[name]
  texts = [EXAMPLES[name]]
  if scheme.sized == name:
    texts.append(f"{EXAMPLES[name]}+quantity(sigma=1)")
  for text in texts:
    part = spec.resolve(text, LABELS, 20, seed=3)
    params = {k: v for k, v in part.params.items()
              if k not in ("num_clients", "key", "key_noise")}
    again = scheme.function(LABELS, 20, seed=3, **params)
    assert (np.array_equal(again.indices, part.indices) and
            np.array_equal(again.offsets, part.offsets)), (
        f"{name}(labels, 20, seed=3, **params) differs from {text!r} at "
        "seed 3: record in `params` every value the draw depends on "
        "(given sizes in full)")


def test_every_scheme_module_is_registered():
  # A module of the package with a function of its own name shaped as a
  # scheme, `(labels, num_clients, *, ..., seed)`, is one.
  here = os.path.join(REPO, "tff_niid", "partition")
  for file in sorted(os.listdir(here)):
    name = file[:-len(".py")]
    if not file.endswith(".py") or name.startswith("_"):
      continue
    function = getattr(importlib.import_module(f"tff_niid.partition.{name}"),
                       name, None)
    if not callable(function):
      continue
    parameters = list(inspect.signature(function).parameters)
    if parameters[:2] == ["labels", "num_clients"] and "seed" in parameters:
      assert name in registry.SCHEMES, (
          f"tff_niid/partition/{file} holds the scheme {name}: give it an "
          "entry in registry.SCHEMES (registry.py's docstring lists the "
          "steps)")


def test_params_are_read_from_the_signature():
  dirichlet = registry.SCHEMES["dirichlet"]
  assert [(p.name, p.default) for p in dirichlet.params] == [
      ("alpha", registry.REQUIRED), ("min_size", 1),
      ("self_balancing", False), ("min_size_policy", "repair")]
  assert dirichlet.params[0].required and not dirichlet.params[1].required
  assert dirichlet.takes_key and dirichlet.sized == "balanced_dirichlet"
  doc = inspect.getdoc(partition.dirichlet)
  assert doc is not None
  assert dirichlet.summary == doc.splitlines()[0]
  assert registry.SCHEMES["iid"].params == ()
  assert not registry.SCHEMES["iid"].takes_key
  assert registry.SCHEMES["iid"].sized is None
  # A scheme takes quantity(...) by taking `sizes=`.
  for name in ("shards", "label_quantity", "balanced_dirichlet"):
    assert registry.SCHEMES[name].sized == name


@pytest.mark.parametrize("name", sorted(registry.SCHEMES))
def test_a_spec_names_exactly_the_function_and_its_parameters(name):
  scheme = registry.SCHEMES[name]
  assert scheme.function.__name__ == name
  assert getattr(partition, name, None) is scheme.function, (
      f"export {name} from tff_niid/partition/__init__.py: `from "
      f"{scheme.function.__module__} import {name}`")
  supplied = {"labels", "num_clients", "seed", "key", "key_noise", "sizes"}
  if scheme.sized is None:  # its sizes=, if any, is one of its size laws
    supplied.discard("sizes")
  if name != "natural":  # its ids are named, or k-means clusters
    assert set(scheme.param_names) == (
        set(inspect.signature(scheme.function).parameters) - supplied)
  # Every parameter under its own name, in a string and a dict (a size law
  # takes one of alpha, sigma, profile and sizes, natural one of kmeans and
  # ids, whose value is a name, not the 1 given here).
  values = {p.name: "1" for p in scheme.params}
  for first, *others in (("alpha", "sigma", "profile", "sizes"),
                         ("kmeans", "ids")):
    if {first, *others} <= set(values):
      for other in others:
        del values[other]
  text = f"{name}({', '.join(f'{k}={v}' for k, v in values.items())})"
  expected = {"scheme": name, **{k: 1 for k in values}}
  assert spec.parse(text)["base"] == expected
  assert spec.parse({"base": {"scheme": name, **values}})["base"] == expected


@pytest.mark.parametrize("short,canonical", [
    ("classes(k=2)", "label_quantity(classes_per_client=2)"),
    ("classes(2)", "label_quantity(classes_per_client=2)"),
    ("shards(per_client=2)", "shards(shards_per_client=2)"),
    ("quantity(alpha=0.5, min_size=10, min_size_policy=resample)",
     "quantity_skew(alpha=0.5, min_size=10, min_size_policy=resample)"),
    ("classes(k=2)+key(width)+quantity(sigma=2)",
     "label_quantity(classes_per_client=2)+quantity(sigma=2)"
     "+key(name=width)"),
])
def test_short_forms_are_aliases(short, canonical):
  assert spec.to_string(spec.parse(short)) == canonical
  assert spec.parse(short) == spec.parse(canonical)
  a = spec.resolve(short, LABELS, 20, seed=3, keys={"width": LABELS * 0.5})
  b = spec.resolve(canonical, LABELS, 20, seed=3, keys={"width": LABELS * 0.5})
  assert np.array_equal(a.indices, b.indices)
  assert np.array_equal(a.offsets, b.offsets)
  assert a.spec == b.spec == canonical


def test_lookup_and_names():
  assert registry.lookup("classes") is registry.SCHEMES["label_quantity"]
  assert registry.lookup("quantity") is registry.SCHEMES["quantity_skew"]
  assert registry.lookup("dirchlet") is None
  assert registry.names() == sorted(
      list(registry.SCHEMES) + ["classes", "quantity"])


def test_describe_lists_every_scheme():
  text = registry.describe()
  for s in registry.SCHEMES.values():
    assert s.signature_text() in text and s.summary in text
  assert ("dirichlet(alpha, min_size=1, self_balancing=false, "
          "min_size_policy=repair)") in text
  assert "short form: classes(k=)" in text
  assert "+quantity(...) as balanced_dirichlet" in text


def test_markdown_table_has_a_row_per_scheme():
  rows = registry.markdown_table().splitlines()
  assert len(rows) == 2 + len(registry.SCHEMES)
  assert rows[3].startswith("| `shards(shards_per_client=2)` | "
                            "`shards(per_client=)` | yes | yes |")


_TABLE = re.compile(r"<!-- scheme table: python -m tff_niid\.partition "
                    r"--markdown -->\n(.*?)\n\n", re.S)


def test_readme_scheme_table_is_the_registry():
  with open(os.path.join(REPO, "README.md")) as f:
    found = _TABLE.search(f.read())
  assert found is not None, "README.md has lost its scheme table's marker"
  assert found.group(1) == registry.markdown_table(), (
      "README.md's scheme table differs from the registry: run `python "
      "tools/update_scheme_table.py`.")


def test_the_tool_writes_the_registrys_table(tmp_path):
  stale = tmp_path / "README.md"
  stale.write_text("# x\n\n<!-- scheme table: python -m tff_niid.partition "
                   "--markdown -->\n| old | table |\n|---|---|\n\nafter\n")
  tool = os.path.join(REPO, "tools", "update_scheme_table.py")
  for says in ("written from the registry", "the registry's already"):
    out = subprocess.run([sys.executable, tool, str(stale)],
                         capture_output=True, text=True, check=True)
    assert says in out.stdout
    table = _TABLE.search(stale.read_text())
    assert table is not None
    assert table.group(1) == registry.markdown_table()
  assert stale.read_text().endswith("\n\nafter\n")
  # No table yet under the marker: the paragraph below it stays.
  stale.write_text("<!-- scheme table: python -m tff_niid.partition "
                   "--markdown -->\n\nnext paragraph\n")
  subprocess.run([sys.executable, tool, str(stale)], check=True,
                 capture_output=True)
  assert stale.read_text().endswith(
      registry.markdown_table() + "\n\nnext paragraph\n")


@pytest.mark.parametrize("args,shows", [
    ([], registry.describe()), (["--markdown"], registry.markdown_table())])
def test_command_prints_the_registry(args, shows):
  out = subprocess.run([sys.executable, "-m", "tff_niid.partition", *args],
                       capture_output=True, text=True, check=True)
  assert out.stdout == shows + "\n" and not out.stderr


def test_command_with_partition_flags_points_to_the_partition_binary():
  out = subprocess.run([sys.executable, "-m", "tff_niid.partition",
                        "--scheme=dirichlet"], capture_output=True, text=True,
                       check=False)
  assert out.returncode == 1 and "run tff-niid-partition" in out.stderr

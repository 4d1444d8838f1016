"""Every partition scheme by name: the one table the spec grammar, the binaries
and the docs read.

A scheme is a function `scheme(labels, num_clients, *, <params>, seed) ->
Partition`. `Scheme.of` reads from its signature what a spec may set: every
parameter except those the spec machinery supplies itself (`labels`,
`num_clients`, `seed`, and the arrays of the modifiers: `key`/`key_noise` from
key(...), `sizes` from quantity(...)), with its default (none: required);
whether the scheme takes `key=` (then key(...) applies) and `sizes=` (then
quantity(...) applies); and its summary, the docstring's first line.

Adding a scheme (`pytest tests/partition/test_registry.py`, seconds, names
each step still missing):
  1. its module, `tff_niid/partition/<name>.py`, with the function `<name>`;
  2. its import at the top of this file and one entry in `SCHEMES` below,
     with an example spec (which `describe` prints and the shared contract
     tests run; the entries' order is the README table's: label-skew
     schemes before `quantity_skew` and `natural`);
  3. its import in `tff_niid/partition/__init__.py`;
  4. its own test file, `tests/partition/test_<name>.py`;
  5. its source (paper, project) in the README's "Sources:" paragraph below
     the scheme table, and the table itself rewritten by `python
     tools/update_scheme_table.py` (`markdown_table`, `python -m
     tff_niid.partition --markdown`).
The spec grammar, its error messages and `tff-niid-partition
--list_schemes` (`describe`; also `python -m tff_niid.partition`) follow by
themselves.

The contract the shared tests hold every scheme to: the same seed gives the
same partition and another seed another one (a scheme that draws nothing
uses the seed for the order of each client's samples; only `natural`, one
client per id, is exempt); `params` records every value the draw depends
on, given client sizes in full, so the function given them and the seed
draws the partition again; bad labels, client counts and seeds are refused
with a ValueError.

The module: `iid.py` is the shortest scheme; `dirichlet.py` one that decides
how many samples of each class each client gets. The pieces they share:
`_checks` (the input checks and their messages: `check_labels`,
`check_num_clients`, `check_seed`, `check_min_size`, ...); for a scheme that
decides a clients x classes count matrix, `_allocate.assign_by_counts`,
which turns it into each client's indices (and orders each class by a key:
`_allocate.check_key` checks `key`/`key_noise`, `core.key_param` records the
key in `params`), `_allocate.split_total` (an exact integer split of one
total by weights) and `_allocate.enforce_min_size` (moves samples from the
largest clients so none has fewer than a minimum: every scheme promises no
empty client); `core.make_partition`, which builds the `Partition` and
checks it covers every sample once and every client holds `min_size`.

Its test file holds what is its own (its distribution, its parameters'
checks): the contract (bad labels, client counts and seeds refused; exact
cover; seeding; one client and one client per sample give a partition or a
ValueError) and the key checks run on every registered scheme from its
example (tests/partition/test_registry.py, test_shared_checks.py). The
partition binary's flags for scheme parameters (--alpha, --fill, ...) are
written in `tff_niid/partition_cli.py`; a parameter without a flag is set
through --spec (`--scheme=X --<flag X does not take>` says so, naming X's
spec signature).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

from tff_niid.partition.balanced_dirichlet import balanced_dirichlet
from tff_niid.partition.consecutive_classes import consecutive_classes
from tff_niid.partition.dirichlet import dirichlet
from tff_niid.partition.extended_dirichlet import extended_dirichlet
from tff_niid.partition.iid import iid
from tff_niid.partition.label_quantity import label_quantity
from tff_niid.partition.natural import natural
from tff_niid.partition.quantity_skew import quantity_skew
from tff_niid.partition.shards import shards

# The default of a required parameter.
REQUIRED = inspect.Parameter.empty

# Signature parameters a spec does not name: the data and client count, the
# seed (arguments of `spec.resolve`) and the arrays the modifiers supply.
_SUPPLIED = ("labels", "num_clients", "seed", "key", "key_noise", "sizes")


@dataclasses.dataclass(frozen=True)
class Param:
  """A parameter a spec may set: its name and default (REQUIRED if none)."""
  name: str
  default: Any = REQUIRED

  @property
  def required(self) -> bool:
    return self.default is REQUIRED


def format_value(value: Any) -> str:
  """A value as spec text: true/false, bare words, (a, b) for sequences."""
  if isinstance(value, (list, tuple)):
    return f"({', '.join(format_value(v) for v in value)})"
  return str(value).lower() if isinstance(value, bool) else str(value)


def spec_params(function: Callable[..., Any],
                supplied: tuple[str, ...] = _SUPPLIED) -> tuple[Param, ...]:
  """The parameters of `function` a spec sets by name (all but `supplied`)."""
  return tuple(Param(p.name, p.default)
               for p in inspect.signature(function).parameters.values()
               if p.name not in supplied)


@dataclasses.dataclass(frozen=True)
class Scheme:
  """A registered scheme (build with `Scheme.of`).

  Attributes:
    name: the function's name, which specs use.
    function: the scheme.
    params: what a spec may set (read from the signature).
    summary: the docstring's first line.
    takes_key: the function takes `key=`/`key_noise=` (key(...) applies).
    sized: the scheme a spec with quantity(...) calls with `sizes=`: this one
      if it takes `sizes=`, else None (quantity(...) does not apply) or the
      name given to `Scheme.of`.
    example: a spec of it, which `describe` prints and the shared contract
      tests (tests/partition/test_registry.py) run.
    aliases: other names a spec may use (short forms kept for old specs).
    param_aliases: {short name: parameter name} a spec may use.
  """
  name: str
  function: Callable[..., Any]
  params: tuple[Param, ...]
  summary: str
  takes_key: bool
  sized: str | None
  example: str
  aliases: tuple[str, ...] = ()
  param_aliases: dict[str, str] = dataclasses.field(default_factory=dict)

  @classmethod
  def of(cls, function: Callable[..., Any], *, example: str,
         aliases: tuple[str, ...] = (),
         param_aliases: dict[str, str] | None = None, sized: str | None = None,
         own_sizes: bool = False,
         params: tuple[Param, ...] | None = None) -> Scheme:
    """The registry entry of `function`, read from its signature.

    Args:
      function: the scheme function.
      example: a spec of it (`Scheme.example`).
      aliases, param_aliases: short forms a spec may use.
      sized: for a scheme without `sizes=`, the registered scheme that draws
        it with given client sizes (quantity(...)).
      own_sizes: the scheme's `sizes=` is one of its own size laws (a spec
        parameter), so quantity(...) does not combine with it.
      params: overrides the spec parameters read from the signature (for a
        scheme whose arguments are not spec values).
    """
    signature = inspect.signature(function).parameters
    supplied: tuple[str, ...] = _SUPPLIED
    if own_sizes:
      supplied = tuple(name for name in _SUPPLIED if name != "sizes")
    elif "sizes" in signature:
      sized = function.__name__
    return cls(name=function.__name__, function=function,
               params=(spec_params(function, supplied) if params is None
                       else params),
               summary=(inspect.getdoc(function)
                        or function.__name__).splitlines()[0],
               takes_key="key" in signature, sized=sized, example=example,
               aliases=aliases, param_aliases=dict(param_aliases or {}))

  @property
  def param_names(self) -> tuple[str, ...]:
    return tuple(p.name for p in self.params)

  def signature_text(self) -> str:
    """`name(param, param=default, ...)` as a spec writes it."""
    args = [p.name if p.required else f"{p.name}={format_value(p.default)}"
            for p in self.params]
    return f"{self.name}({', '.join(args)})" if args else self.name

  def short_forms(self) -> str:
    """The aliases and parameter aliases, e.g. `classes(k=)`."""
    renames = ", ".join(f"{short}=" for short in self.param_aliases)
    names = self.aliases or ((self.name,) if renames else ())
    return ", ".join(f"{name}({renames})" if renames else name
                     for name in names)


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme.of(iid, example="iid"),
    Scheme.of(shards, example="shards(shards_per_client=3)",
              param_aliases={"per_client": "shards_per_client"}),
    Scheme.of(label_quantity, example="label_quantity(classes_per_client=2)",
              aliases=("classes",), param_aliases={"k": "classes_per_client"}),
    # With client sizes, the Dirichlet label mix is drawn per client.
    Scheme.of(dirichlet, example="dirichlet(alpha=0.5, min_size=5)",
              sized="balanced_dirichlet"),
    Scheme.of(balanced_dirichlet, example="balanced_dirichlet(alpha=0.5)"),
    Scheme.of(extended_dirichlet,
              example="extended_dirichlet(classes_per_client=2, alpha=1)"),
    Scheme.of(consecutive_classes,
              example="consecutive_classes(classes_per_client=2, sigma=2.0)"),
    Scheme.of(quantity_skew, example="quantity_skew(sigma=1.0, min_size=5)",
              aliases=("quantity",), own_sizes=True),
    # A spec names the ids by key name (`keys=` of spec.resolve), or asks
    # for k-means clusters of the images; exactly one, checked on resolve.
    Scheme.of(natural, example="natural(ids=region)",
              params=(Param("ids", None), Param("kmeans", None),
                      *spec_params(natural, ("labels", "ids")))),
)}

_BY_ALIAS = {alias: s for s in SCHEMES.values() for alias in s.aliases}


def lookup(name: str) -> Scheme | None:
  """The scheme a spec calls `name` (its name or an alias), or None."""
  return SCHEMES.get(name) or _BY_ALIAS.get(name)


def names() -> list[str]:
  """Every name a spec may give a scheme (names and aliases), sorted."""
  return sorted(set(SCHEMES) | set(_BY_ALIAS))


def describe() -> str:
  """One block per scheme: signature, summary, short forms, modifiers (what
  `tff-niid-partition --list_schemes` prints)."""
  blocks = []
  for s in SCHEMES.values():
    extras = []
    if s.short_forms():
      extras.append(f"short form: {s.short_forms()}")
    if s.takes_key:
      extras.append("+key(...)")
    if s.sized:
      extras.append("+quantity(...)" + (f" as {s.sized}" if s.sized != s.name
                                        else ""))
    blocks.append(f"{s.signature_text()}\n    {s.summary}" +
                  (f"\n    {'; '.join(extras)}" if extras else "") +
                  f"\n    e.g. {s.example}")
  return "\n".join(blocks)


def markdown_table() -> str:
  """The README's scheme table, generated from the registry."""
  rows = ["| scheme (spec) | short form | +key | +quantity | what |",
          "|---|---|:-:|:-:|---|"]
  for s in SCHEMES.values():
    sized = "" if s.sized is None else (
        "yes" if s.sized == s.name else f"as `{s.sized}`")
    short = f"`{s.short_forms()}`" if s.short_forms() else ""
    rows.append(f"| `{s.signature_text()}` | {short} | "
                f"{'yes' if s.takes_key else ''} | {sized} | "
                f"{s.summary.replace('|', '/')} |")
  return "\n".join(rows)


"""Composition specs: one string (or dict) -> one Partition.

A spec is components joined by `+`:

    dirichlet(alpha=0.1)+quantity(sigma=1.0)+key(slant, noise=0.2)
        +noise(rate=0.2, mode=pair)+feature_noise(sigma=0.5)

Exactly one *base*: a scheme of `registry.SCHEMES`, written with its function
name and parameter names, e.g. `label_quantity(classes_per_client=2)`
(`python -m tff_niid.partition` prints them all with their defaults); one
without parameters is written bare (`iid`; `iid()` is read alike). The
first argument may go without its name when the scheme has a required
parameter (`dirichlet(0.5)`). Short forms of older specs are kept as
aliases and mean the same partition:
  classes(k=2)            label_quantity(classes_per_client=2)
  shards(per_client=2)    shards(shards_per_client=2)
  quantity(alpha=0.5)     quantity_skew(alpha=0.5)
`natural(ids=NAME | kmeans=K)` names its per-sample ids by key name (`keys=`
or an image attribute) or asks for k-means clusters of the images; it
makes its own clients, so `resolve` takes num_clients=None for it (or the
number it makes: another is refused); `group_size=k` makes one client of
every k of them
(`mode=allow_smaller | allow_bigger | strict` for the remainder).

Optional *modifiers*, each at most once, parameters read from the functions
they call:
  quantity(alpha= | sigma= | profile=linear|square|exponential, min_size=1,
           min_size_policy=reserve)
                             client sizes from `quantity_sizes`, or given:
                             quantity(sizes=(s_1, ..., s_n)), n sizes
                             summing to the samples; for a base
                             that takes `sizes=` (shards, label_quantity,
                             balanced_dirichlet; dirichlet is then drawn as
                             balanced_dirichlet, its client-side label mix)
  key(NAME, noise=0)         within-class order by an image attribute (ink,
                             slant, width) or a user array in `keys`; for
                             the bases that take `key=`
  noise(rate= | ramp=(lo,hi), mode=symmetric|pair, noisy_clients=1)
                             per-client label noise (`label_noise`), on a
                             random fraction `noisy_clients` of the clients
  feature_noise(sigma=, redraw=false)
                             NIID-Bench feature-noise levels: client i of n
                             gets Gaussian input noise of std
                             sigma * i / (n - 1); with redraw=true it is
                             drawn afresh at every read and the test set is
                             evaluated as n noisy copies, as NIID-Bench does
                             (`Partition.feature_noise_redraw`); by default
                             it is drawn once per sample and the test set
                             is clean, a different distribution
  rotate(degrees=(0, 90, 180, 270))
                             rotated MNIST (Ghosh et al. 2020, IFCA): the
                             clients in len(degrees) random groups of equal
                             size, group g's inputs rotated by degrees[g]
                             (quarter turns, counterclockwise); the test set
                             is evaluated once per client's angle
                             (`rotation.client_rotations`,
                             `Partition.rotation`)

Values are numbers, `true`/`false`, bare words (names, modes) or `(a, b)`
tuples; each parameter at most once. NIID-Bench's schemes (Li et al. 2022,
utils.py `partition_data`; beta=0.5, noise=0.1) have the same distribution as:
  noniid-labeldir    dirichlet(alpha=0.5, min_size=10, self_balancing=true,
                               min_size_policy=resample)
  noniid-#label1..3  label_quantity(classes_per_client=1 .. 3)
                     (num_clients >= K)
  iid-diff-quantity  quantity_skew(alpha=0.5, min_size=10,
                                   min_size_policy=resample)
  homo, --noise=0.1  iid+feature_noise(sigma=0.1, redraw=true)
                     (noise_type="level"; its "space" type, noise on one
                     image patch per party, is not reproduced)
Flower Datasets' Linear-, Square- and ExponentialPartitioner (a shuffled
dataset, client i of 1..n sized ~ i, i^2, e^i) as
`quantity_skew(profile=linear | square | exponential)`, its
InnerDirichletPartitioner (FedDyn's, equal sizes) as
`balanced_dirichlet(alpha=..., fill=by_sample)`, its
GroupedNaturalIdPartitioner as `natural(ids=NAME, group_size=k)`, and the
extended Dirichlet strategy of Li & Lyu 2023 (ExDir, C=2, alpha=0.5) as
`extended_dirichlet(classes_per_client=2, alpha=0.5, min_size=10,
min_size_policy=resample)`.

The dict form is what `parse` returns, e.g.
  {"base": {"scheme": "dirichlet", "alpha": 0.1},
   "quantity": {"sigma": 1.0}, "key": {"name": "slant", "noise": 0.2},
   "noise": {"rate": 0.2, "mode": "pair"}, "feature_noise": {"sigma": 0.5}}
and `to_string` turns it back into the canonical string recorded in the
partition's manifest (function and parameter names, sorted parameters). A
dict or JSON spec is checked as strictly as a string: unknown components or
parameters, a key given twice and values other than numbers, booleans, bare
words (or spec text for one, e.g. "0.5") and lists are refused.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Callable, Collection, Mapping, Union

import numpy as np

from tff_niid.partition import _checks
from tff_niid.partition import attributes
from tff_niid.partition import core
from tff_niid.partition import noise as noise_lib
from tff_niid.partition import registry
from tff_niid.partition import rotation as rotation_lib
from tff_niid.partition.quantity_skew import quantity_sizes

Spec = Union[str, dict]


@dataclasses.dataclass(frozen=True)
class _Modifier:
  """A modifier component: its spec parameters, as `registry.Scheme`'s."""
  name: str
  params: tuple[registry.Param, ...]
  param_aliases: dict[str, str] = dataclasses.field(default_factory=dict)

  @property
  def param_names(self) -> tuple[str, ...]:
    return tuple(p.name for p in self.params)


# In canonical order. quantity(...) and noise(...) forward their parameters to
# the functions they call; key(...) names a per-sample array.
_MODIFIERS = {m.name: m for m in (
    _Modifier("quantity", registry.spec_params(
        quantity_sizes, supplied=("num_samples", "num_clients", "rng"))),
    _Modifier("key", (registry.Param("name"), registry.Param("noise", 0.0))),
    _Modifier("noise", registry.spec_params(
        noise_lib.label_noise,
        supplied=("labels", "partition", "rates", "num_classes", "seed"))),
    _Modifier("feature_noise", registry.spec_params(
        noise_lib.feature_noise_levels, supplied=("num_clients",)) +
              (registry.Param("redraw", False),)),
    _Modifier("rotate", registry.spec_params(
        rotation_lib.client_rotations, supplied=("num_clients", "seed"))),
)}
# Flower Datasets' partitioner arguments, and what they are here
# (docs/other_packages.md maps the partitioners).
_OTHER_PACKAGES_NAMES = {
    "min_partition_size": "here min_size",
    "num_classes_per_partition": "here classes_per_client",
    "class_assignment_mode": "here class_assignment (first_deterministic, "
                             "random or deterministic)",
    "num_partitions": "the number of clients is not part of a spec: give it "
                      "to resolve() or as --num_clients",
    "partition_sizes": "client sizes come from quantity(...): "
                       "quantity(sizes=(...)) gives them",
    "partition_by": "a spec partitions the labels it is given",
    "shuffle": "every scheme here draws its assignment at random from the "
               "seed",
}
# A component with both draws client sizes from one law: exactly one.
# quantity(...) also takes the sizes themselves, `_GIVEN_SIZES`.
_SIZE_LAWS = ("alpha", "sigma", "profile")
_GIVEN_SIZES = "sizes"
_COMPONENT = re.compile(r"\s*([a-z_]+)\s*(?:\((.*?)\))?\s*$", re.S)


def _value(text):
  text = text.strip()
  if text.startswith("(") and text.endswith(")"):
    return [_value(t) for t in text[1:-1].split(",")]
  if text.lower() in ("true", "false"):
    return text.lower() == "true"
  if re.fullmatch(r"[-+]?\d+", text):
    return int(text)  # exact, however many digits
  try:
    return float(text)
  except ValueError:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text):
      raise ValueError(f"cannot read value {text!r}") from None
    return text


def _json_value(value):
  """A value of the dict/JSON form, read by the rules of the string form:
  numbers, booleans, strings as spec text (a bare word, or e.g. "0.1"), lists
  (or, from Python, tuples and 1-D numpy arrays) for tuples; anything else
  (null, objects, spec text such as "0.1)+noise(rate=0.9") is refused."""
  if isinstance(value, np.generic):  # a numpy scalar: its Python value
    value = value.item()
  if isinstance(value, str):
    return _value(value)
  if isinstance(value, (bool, int, float)):
    return value
  if isinstance(value, (list, tuple, np.ndarray)) and not any(
      isinstance(v, (list, tuple, dict, np.ndarray)) for v in value):
    return [_json_value(v) for v in value]
  raise ValueError(f"cannot read value {value!r}")


def _split_top(text, sep):
  """Splits on `sep` outside parentheses."""
  parts, depth, current = [], 0, ""
  for ch in text:
    depth += (ch == "(") - (ch == ")")
    if ch == sep and depth == 0:
      parts.append(current)
      current = ""
    else:
      current += ch
  parts.append(current)
  return parts


def _valid_text(component):
  """The parameter names of a component, for error messages."""
  short = "".join(f"; {alias} for {name}"
                  for alias, name in component.param_aliases.items())
  return f"{list(component.param_names) or 'none'}{short}"


def _checked_params(written, component, raw_params, read):
  """`component`'s parameters (short forms renamed) with values read by
  `read`; ValueError for an unknown, repeated or missing parameter or an
  unreadable value. `written` is the component's name as the spec gave it."""
  params = {}
  for given, value in raw_params:
    name = component.param_aliases.get(given, given)
    if name not in component.param_names:
      hint = _OTHER_PACKAGES_NAMES.get(given, "")
      raise ValueError(f"{written}(...) has no parameter {given!r}; valid: "
                       f"{_valid_text(component)}."
                       + (f" ({given} is Flower Datasets' name; {hint}.)"
                          if hint else ""))
    if name in params:
      raise ValueError(f"{written}(...) gives {name} twice; give each "
                       "parameter once.")
    try:
      params[name] = read(value)
    except ValueError as e:
      raise ValueError(f"{written}(...): {e}") from None
  missing = [p.name for p in component.params
             if p.required and p.name not in params]
  if missing:
    raise ValueError(f"{written}(...) needs {', '.join(missing)}.")
  return params


def _parse_component(text, component, where):
  match = _COMPONENT.match(text)
  if not match:
    raise ValueError(f"spec component {where} {text.strip()!r} is not "
                     "'name' or 'name(arg=value, ...)'.")
  written, body = match.group(1), match.group(2) or ""
  # The first argument may be unnamed: the first required parameter.
  positional = next((p.name for p in component.params if p.required), None)
  raw_params = []
  for i, arg in enumerate(a for a in _split_top(body, ",") if a.strip()):
    if "=" in arg:
      name, value = arg.split("=", 1)
      raw_params.append((name.strip(), value))
    elif i == 0 and positional:
      raw_params.append((positional, arg))
    else:
      raise ValueError(f"{written}(...): argument {arg.strip()!r} needs a "
                       f"name (one of {list(component.param_names)}).")
  return _checked_params(written, component, raw_params, _value)


def _parse_string(spec):
  parts = _split_top(spec, "+")
  if any(p.count("(") != p.count(")") for p in parts):
    raise ValueError(f"unbalanced parentheses in spec {spec!r}.")
  result = {}
  for position, text in enumerate(parts, 1):
    match = _COMPONENT.match(text)
    name = match.group(1) if match else text.strip()
    scheme = registry.lookup(name)
    # A name that is also a modifier's (quantity) is the base only first.
    if scheme and "base" not in result and not (name in _MODIFIERS and
                                                position > 1):
      result["base"] = {"scheme": scheme.name, **_parse_component(
          text, scheme, f"#{position}")}
    elif name in _MODIFIERS:
      if name in result:
        raise ValueError(f"spec has {name}(...) twice.")
      result[name] = _parse_component(text, _MODIFIERS[name], f"#{position}")
    elif scheme:
      raise ValueError(
          f"spec has a second base scheme, {name}(...) (#{position}), after "
          f"{result['base']['scheme']}(...): a spec has one base; the others "
          f"are modifiers {sorted(_MODIFIERS)}.")
    else:
      valid = sorted(set(registry.names()) | set(_MODIFIERS))
      raise ValueError(f"unknown spec component {name!r} (#{position}); "
                       f"valid: {valid}.")
  if "base" not in result:
    raise ValueError(f"spec {spec!r} has no base scheme; start with one of "
                     f"{registry.names()}.")
  return result


def _parse_dict(spec):
  """The dict/JSON form, checked as strictly as a string spec."""
  unknown = sorted(set(spec) - {"base"} - set(_MODIFIERS))
  if unknown:
    raise ValueError(f"spec has unknown component(s) {unknown}; valid: "
                     f"{['base'] + sorted(_MODIFIERS)}.")
  if "base" not in spec:
    raise ValueError(
        "spec has no 'base', e.g. {\"base\": {\"scheme\": \"dirichlet\", "
        f"\"alpha\": 0.5}}}}; schemes: {registry.names()}.")
  result = {}
  for name, raw_params in spec.items():
    if not isinstance(raw_params, dict):
      raise ValueError(f"spec component {name!r} must be an object of "
                       f"parameters; got {raw_params!r}.")
    raw_params = dict(raw_params)
    if name == "base":
      written = raw_params.pop("scheme", None)
      scheme = registry.lookup(written) if isinstance(written, str) else None
      if scheme is None:
        raise ValueError(f"spec base 'scheme' must be one of "
                         f"{registry.names()}; got {written!r}.")
      result["base"] = {"scheme": scheme.name, **_checked_params(
          written, scheme, raw_params.items(), _json_value)}
    else:
      result[name] = _checked_params(name, _MODIFIERS[name],
                                     raw_params.items(), _json_value)
  return result


def _unique_keys(pairs):
  """A JSON object's dict; ValueError if it has a key twice (json.loads
  would keep the last silently)."""
  keys = [k for k, _ in pairs]
  twice = sorted({k for k in keys if keys.count(k) > 1})
  if twice:
    raise ValueError(f"JSON spec gives {twice} twice; give each key once.")
  return dict(pairs)


def _drawn_scheme(canonical):
  """The registered scheme the spec calls: its base, or with quantity(...)
  the scheme that draws the base with given client sizes."""
  scheme = registry.SCHEMES[canonical["base"]["scheme"]]
  if "quantity" in canonical and scheme.sized is not None:
    return registry.SCHEMES[scheme.sized]
  return scheme


def _check_combination(canonical):
  """ValueError for components that do not combine."""
  base = canonical["base"]
  scheme = registry.SCHEMES[base["scheme"]]
  if "quantity" in canonical:
    sized = [s.name for s in registry.SCHEMES.values() if s.sized]
    if scheme.sized is None:
      raise ValueError(
          f"quantity(...) gives client sizes, so it combines only with the "
          f"schemes that take them, {sized}, not {scheme.name}; for "
          f"quantity skew with IID labels, use "
          f"{_call('quantity', canonical['quantity'])} alone as the base.")
    drawn = registry.SCHEMES[scheme.sized]
    dropped = sorted(set(base) - {"scheme"} - set(drawn.param_names))
    if dropped:
      raise ValueError(
          f"with quantity(...), {scheme.name} is drawn as {drawn.name} with "
          f"the given client sizes (a client-side label mix), which has no "
          f"{dropped}; drop them or the quantity(...).")
  if scheme.name == "natural" and ("ids" in base) == ("kmeans" in base):
    raise ValueError("natural(...) needs exactly one of ids=NAME or kmeans=K, "
                     "e.g. natural(kmeans=10).")
  for written, named in (("key", canonical.get("key", {}).get("name")),
                         ("natural(ids=...)", base.get("ids"))):
    if named is not None and not isinstance(named, str):
      # A name reads as a word (like an image attribute's): `key(2020)` or
      # `key(true)` read as a number or a boolean, never the array's name.
      raise ValueError(
          f"{written} names an array by a word (a letter or _ first, then "
          f"letters, digits, _ . -); {registry.format_value(named)} reads "
          "as a value, not a name: rename the array (e.g. "
          f"k{registry.format_value(named)}).")
  if "key" in canonical and not _drawn_scheme(canonical).takes_key:
    keyed = [s.name for s in registry.SCHEMES.values() if s.takes_key]
    raise ValueError(
        f"key(...) orders samples within each class; of the schemes, only "
        f"{keyed} take a key, and {scheme.name} does not.")
  for name, params in [("base", base)] + [(m, canonical[m]) for m in
                                          _MODIFIERS if m in canonical]:
    component = scheme if name == "base" else _MODIFIERS[name]
    laws = [law for law in (*_SIZE_LAWS, _GIVEN_SIZES)
            if law in component.param_names]
    written = scheme.name if name == "base" else name
    if set(_SIZE_LAWS) <= set(laws) and sum(law in params
                                             for law in laws) != 1:
      choices = [f"{law}=" for law in laws]
      raise ValueError(f"{written}(...) needs exactly one of "
                       f"{', '.join(choices[:-1])} or {choices[-1]}.")
    if _GIVEN_SIZES in params and {"min_size", "min_size_policy"} & set(
        params):
      raise ValueError(f"{written}(sizes=...) gives every client's size, so "
                       "min_size and min_size_policy do not apply; drop "
                       "them.")
  redraw = canonical.get("feature_noise", {}).get("redraw", False)
  if not isinstance(redraw, bool):
    raise ValueError(f"feature_noise(...): redraw must be true or false; got "
                     f"{registry.format_value(redraw)}.")
  if "rotate" in canonical:
    rotation_lib.check_degrees(canonical["rotate"].get(
        "degrees", rotation_lib.QUARTER_TURNS))


def parse(spec: Spec) -> dict:
  """Canonical dict form of a spec string, dict or JSON string.

  Raises:
    ValueError: naming the first mistake: an unknown component or parameter,
      a parameter given twice, a missing required one, an unreadable value,
      or components that do not combine.
  """
  if isinstance(spec, str) and spec.strip().startswith("{"):
    try:
      spec = json.loads(spec, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
      raise ValueError(f"spec is not valid JSON: {e}") from None
  if isinstance(spec, dict):
    canonical = _parse_dict(spec)
  elif isinstance(spec, str) and spec.strip():
    canonical = _parse_string(spec)
  else:
    raise ValueError("a partition spec must be a non-empty string or dict.")
  _check_combination(canonical)
  return canonical


def key_name(spec: Spec) -> str | None:
  """The name a spec's key(...) orders classes by (an image attribute or a
  user key), or None."""
  return parse(spec).get("key", {}).get("name")


def makes_own_clients(spec: Spec) -> bool:
  """Whether a spec's base sets the number of clients itself (`natural`:
  one client per id, group or cluster), so `resolve` takes no
  `num_clients`."""
  return parse(spec)["base"]["scheme"] == "natural"


def num_clients_for(spec: Spec, num_clients: int) -> int | None:
  """The `num_clients` of `resolve` for a count a binary's flag gives: None
  where the spec makes its own clients (`makes_own_clients`; the binaries
  warn where such a flag is set), else the count."""
  return None if makes_own_clients(spec) else num_clients


def key_values(name: str, *, images: np.ndarray | None = None,
               keys: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
  """The per-sample values a key or id name stands for: `keys[name]`, else
  the image attribute `name` of `images`; ValueError if neither is given."""
  keys = keys or {}
  if name in keys:
    return np.asarray(keys[name])
  if name in attributes.ATTRIBUTES:
    if images is None:
      raise ValueError(f"key({name}) needs the images (images=...).")
    return attributes.attribute(name, images)
  raise ValueError(f"unknown key {name!r}: not an image attribute "
                   f"{sorted(attributes.ATTRIBUTES)} nor in keys "
                   f"{sorted(keys)}; pass its per-sample values as "
                   f"keys={{{name!r}: array}} (tff-niid-partition: "
                   f"--key_file={name}=PATH.npy).")


def _call(name, params):
  args = ", ".join(f"{k}={registry.format_value(v)}"
                   for k, v in sorted(params.items()))
  return f"{name}({args})" if args else name


def to_string(canonical: dict) -> str:
  """The spec string of a canonical dict (stable: sorted parameters)."""
  base = dict(canonical["base"])
  parts = [_call(base.pop("scheme"), base)]
  parts += [_call(name, canonical[name]) for name in _MODIFIERS
            if name in canonical]
  return "+".join(parts)


def shortcut(scheme: str, *, given: Collection[str] = (),
             **values: Any) -> str:
  """The canonical spec a binary's per-scheme flags stand for.

  E.g. `shortcut("dirichlet", alpha=0.5, min_size=1, shards_per_client=2)` is
  "dirichlet(alpha=0.5, min_size=1)": `values` are flag values named after
  scheme parameters; those `scheme` does not take, and None, are left out
  (a binary's flags hold every scheme's defaults). `key`/`key_noise` become
  key(...) (refused by schemes without a key).

  Args:
    scheme: a scheme name or alias of `registry.SCHEMES`.
    given: the names of `values` the user set (not left at their flag
      defaults): one that `scheme` does not take is refused, not dropped.
    **values: flag values by parameter name, plus `key` and `key_noise`.

  Raises:
    ValueError: an unknown scheme, a given value the scheme does not take
      (`key_noise` without `key` included), or values that do not make a
      valid spec.
  """
  found = registry.lookup(scheme)
  if found is None:
    raise ValueError(f"unknown scheme {scheme!r}; valid: "
                     f"{registry.names()}.")
  unused = [name for name in values if name in given and
            name not in (*found.param_names, "key", "key_noise")]
  if unused:
    # A parameter without a flag of its own is still set through a spec.
    takes = (f"; a spec sets each of its parameters: {found.signature_text()}"
             if found.params else " (it has no parameters)")
    raise ValueError(f"{found.name} takes no {', '.join(unused)}{takes}.")
  if "key_noise" in given and values.get("key") is None:
    raise ValueError("key_noise mixes key order with random order within "
                     "classes, so it needs a key.")
  canonical = {"base": {"scheme": found.name, **{
      k: v for k, v in values.items()
      if k in found.param_names and v is not None}}}
  if values.get("key") is not None:
    canonical["key"] = {"name": values["key"]}
    if values.get("key_noise"):
      canonical["key"]["noise"] = values["key_noise"]
  return to_string(parse(canonical))


def _sub_seed(seed, stream):
  return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def resolve(spec: Spec, labels: np.ndarray, num_clients: int | None, *,
            seed: int,
            images: np.ndarray | None = None,
            keys: dict[str, np.ndarray] | None = None) -> core.Partition:
  """Builds the Partition a spec describes.

  Args:
    spec: spec string, dict or JSON (see module docstring).
    labels: 1-D integer labels.
    num_clients: number of clients; for a `natural` base
      (`makes_own_clients`), None or the number it makes.
    seed: non-negative integer seed (client sizes, label noise and
      rotations use seeds derived from it; a natural base, which draws
      nothing, records it when k-means or a modifier draws from it).
    images: (N, 28, 28) images, needed by `key(ink|slant|width)` and
      `natural(kmeans=K)`.
    keys: optional {name: per-sample array} for `key(NAME)` /
      `natural(ids=NAME)`.

  Returns:
    A `Partition` with `spec` set to the canonical string, and
    `noisy_labels` / `feature_noise` (and `feature_noise_redraw`) /
    `rotation` when the spec asks for them.
  """
  canonical = parse(spec)

  def named_array(name):
    return key_values(name, images=images, keys=keys)

  params = dict(canonical["base"])
  scheme = registry.SCHEMES[params.pop("scheme")]
  if scheme.name == "natural":
    part = _resolve_natural(labels, params, named_array, images, seed)
    if num_clients is not None and num_clients != len(part):
      base = {k: v for k, v in canonical["base"].items() if k != "scheme"}
      each = ("group of ids" if "group_size" in base else
              "cluster" if "kmeans" in base else "id")
      raise ValueError(
          f"{_call('natural', base)} makes one client per {each}: "
          f"{len(part)} here, not num_clients={num_clients}. Pass "
          f"num_clients=None (or {len(part)}).")
  else:
    if num_clients is None:
      raise ValueError(f"{scheme.name} needs num_clients (only a natural "
                       "base makes its own clients).")
    if "key" in canonical:
      params["key"] = named_array(canonical["key"]["name"])
      params["key_noise"] = canonical["key"].get("noise", 0.0)
    quantity = canonical.get("quantity")
    if quantity is not None and _GIVEN_SIZES in quantity:
      params["sizes"] = np.asarray(quantity[_GIVEN_SIZES])  # the scheme checks
    elif quantity is not None:
      params["sizes"] = quantity_sizes(
          np.asarray(labels).shape[0], num_clients,
          rng=np.random.default_rng(_sub_seed(seed, 3)), **quantity)
    try:
      part = _drawn_scheme(canonical).function(labels, num_clients,
                                               seed=seed, **params)
    except _checks.SizeBelowMinimum as e:
      if quantity is None or _GIVEN_SIZES in quantity:
        raise
      raise ValueError(
          f"{e} The sizes are {_call('quantity', quantity)}'s draw; "
          f"raise its floor: quantity(..., min_size={e.minimum}).") from None
  changes: dict[str, object] = {"spec": to_string(canonical)}
  ordered_by = canonical.get("key", {}).get("name")
  if ordered_by is not None and ordered_by not in (keys or {}):
    # An image attribute, recorded by name: recomputed from the images on
    # another machine, its float values may differ in the last bit.
    changes["params"] = dict(part.params, key=ordered_by)
  if "noise" in canonical:
    changes["noisy_labels"], _ = noise_lib.label_noise(
        labels, part, seed=_sub_seed(seed, 1), **canonical["noise"])
  if "feature_noise" in canonical:
    changes["feature_noise"] = noise_lib.feature_noise_levels(
        len(part), canonical["feature_noise"]["sigma"])
    changes["feature_noise_redraw"] = canonical["feature_noise"].get(
        "redraw", False)
  if "rotate" in canonical:
    changes["rotation"] = rotation_lib.client_rotations(
        len(part), seed=_sub_seed(seed, 4), **canonical["rotate"])
  if part.seed is None and ("noise" in canonical or "rotate" in canonical or
                            "kmeans" in canonical["base"]):
    # natural() itself draws nothing and records no seed; but k-means' first
    # centres and the random modifiers draw from the partition's seed,
    # recorded so that the partition can be drawn again.
    changes["seed"] = _checks.check_seed(seed)
  return part.replace(**changes)


def _resolve_natural(labels, params, named_array: Callable, images, seed):
  """natural(ids=NAME | kmeans=K, ...): one client per id of a named array
  or per k-means cluster of the images (or per group of them: `params` holds
  the rest of natural's parameters)."""
  ids, kmeans = params.pop("ids", None), params.pop("kmeans", None)  # one
  if ids is not None:
    return registry.SCHEMES["natural"].function(labels, named_array(ids),
                                                **params)
  if images is None:
    raise ValueError("natural(kmeans=K) needs the images (images=...).")
  clusters = attributes.kmeans_clusters(images, kmeans, seed=seed)
  found = np.unique(clusters).size
  if found < kmeans:
    raise ValueError(
        f"natural(kmeans={kmeans}) found only {found} non-empty clusters "
        f"(k-means with seed {seed} emptied {kmeans - found}; the images may "
        "hold fewer distinct ones): ask for fewer clusters.")
  return registry.SCHEMES["natural"].function(labels, clusters, **params)

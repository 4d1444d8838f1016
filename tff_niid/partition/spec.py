"""Composition specs: one string (or dict) -> one Partition.

A spec is components joined by `+`:

    dirichlet(alpha=0.1)+quantity(sigma=1.0)+key(slant, noise=0.2)
        +noise(rate=0.2, mode=pair)+feature_noise(sigma=0.5)

Exactly one *base* label scheme:
  iid                        uniform split
  shards(per_client=2)       McMahan et al. pathological shards
  classes(k=2)               NIID-Bench #C=k (`label_quantity`)
  dirichlet(alpha, min_size=1, self_balancing=false, min_size_policy=repair)
                             min_size_policy=repair|resample
  balanced_dirichlet(alpha)
  quantity(alpha= | sigma=, min_size=1, min_size_policy=reserve)
                             quantity skew alone (IID labels);
                             min_size_policy=reserve|resample
  natural(ids=NAME | kmeans=K)            one client per id; ignores
                                          num_clients
and optional *modifiers* (each at most once):
  quantity(alpha= | sigma=, min_size=1, min_size_policy=reserve)
                             with dirichlet/balanced_dirichlet: client sizes
                             from quantity skew, client-side Dirichlet label
                             mix (`balanced_dirichlet(sizes=...)`)
  key(NAME, noise=0)         within-class order by an image attribute (ink,
                             slant, width) or a user array in `keys`; only
                             with shards, classes, dirichlet or
                             balanced_dirichlet (the others take no key)
  noise(rate= | ramp=(lo,hi), mode=symmetric|pair, noisy_clients=1)
                             per-client label noise, on a random fraction
                             `noisy_clients` of the clients
  feature_noise(sigma=)      NIID-Bench feature-noise levels

Values are numbers, `true`/`false`, bare words (names, modes) or `(a, b)`
tuples; each parameter at most once. NIID-Bench's schemes (Li et al. 2022,
utils.py `partition_data`; beta=0.5, noise=0.1) have the same distribution as:
  noniid-labeldir    dirichlet(alpha=0.5, min_size=10, self_balancing=true,
                               min_size_policy=resample)
  noniid-#label1..3  classes(k=1) .. classes(k=3)   (num_clients >= K)
  iid-diff-quantity  quantity(alpha=0.5, min_size=10, min_size_policy=resample)
  homo, --noise=0.1  iid+feature_noise(sigma=0.1)   (same partition and
                     per-client stds; NIID-Bench redraws the noise at every
                     read and evaluates on noisy test copies, while
                     `clientdata` fixes each client's noise and keeps the
                     test set clean)

The dict form is what `parse` returns, e.g.
  {"base": {"scheme": "dirichlet", "alpha": 0.1},
   "quantity": {"sigma": 1.0}, "key": {"name": "slant", "noise": 0.2},
   "noise": {"rate": 0.2, "mode": "pair"}, "feature_noise": {"sigma": 0.5}}
and `to_string` turns it back into the canonical string recorded in the
partition's manifest. A dict or JSON spec is checked as strictly as a string:
unknown components or parameters, a key given twice and values other than
numbers, booleans, bare words (or spec text for one, e.g. "0.5") and lists
are refused.
"""

import json
import re

import numpy as np

from tff_niid.partition import attributes
from tff_niid.partition import noise as noise_lib
from tff_niid.partition.balanced_dirichlet import balanced_dirichlet
from tff_niid.partition.dirichlet import dirichlet
from tff_niid.partition.iid import iid
from tff_niid.partition.label_quantity import label_quantity
from tff_niid.partition.natural import natural
from tff_niid.partition.quantity_skew import quantity_sizes
from tff_niid.partition.quantity_skew import quantity_skew
from tff_niid.partition.shards import shards

# Component -> (allowed parameters, required parameters, positional name).
_BASES = {
    "iid": ((), (), None),
    "shards": (("per_client",), (), None),
    "classes": (("k",), ("k",), "k"),
    "dirichlet": (("alpha", "min_size", "self_balancing", "min_size_policy"),
                  ("alpha",), "alpha"),
    "balanced_dirichlet": (("alpha",), ("alpha",), "alpha"),
    "quantity": (("alpha", "sigma", "min_size", "min_size_policy"), (), None),
    "natural": (("ids", "kmeans"), (), None),
}
_MODIFIERS = {
    "quantity": (("alpha", "sigma", "min_size", "min_size_policy"), (), None),
    "key": (("name", "noise"), ("name",), "name"),
    "noise": (("rate", "ramp", "mode", "noisy_clients"), (), None),
    "feature_noise": (("sigma",), ("sigma",), "sigma"),
}
# The bases that take `key=` (the label-skew schemes).
_KEYED_BASES = ("shards", "classes", "dirichlet", "balanced_dirichlet")
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
  for tuples; anything else (null, objects, spec text such as
  "0.1)+noise(rate=0.9") is refused."""
  if isinstance(value, str):
    return _value(value)
  if isinstance(value, (bool, int, float)):
    return value
  if isinstance(value, list) and not any(isinstance(v, (list, dict))
                                         for v in value):
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


def _checked_params(name, raw_params, table, read):
  """`name`'s parameters with values read by `read`, or ValueError for an
  unknown or missing parameter or an unreadable value."""
  allowed, required, _ = table[name]
  params = {}
  for k, v in raw_params.items():
    if k not in allowed:
      raise ValueError(f"{name}(...) has no parameter {k!r}; valid: "
                       f"{list(allowed) or 'none'}.")
    try:
      params[k] = read(v)
    except ValueError as e:
      raise ValueError(f"{name}(...): {e}") from None
  missing = [k for k in required if k not in params]
  if missing:
    raise ValueError(f"{name}(...) needs {', '.join(missing)}.")
  return params


def _parse_component(text, table, where):
  match = _COMPONENT.match(text)
  if not match:
    raise ValueError(f"spec component {where} {text.strip()!r} is not "
                     "'name' or 'name(arg=value, ...)'.")
  name, body = match.group(1), match.group(2) or ""
  allowed, _, positional = table[name]
  raw_params = {}
  for i, arg in enumerate(a for a in _split_top(body, ",") if a.strip()):
    if "=" in arg:
      k, v = arg.split("=", 1)
      k = k.strip()
    elif i == 0 and positional:
      k, v = positional, arg
    else:
      raise ValueError(f"{name}(...): argument {arg.strip()!r} needs a name "
                       f"(one of {list(allowed)}).")
    if k in raw_params:
      raise ValueError(f"{name}(...) gives {k} twice; give each parameter "
                       "once.")
    raw_params[k] = v
  return name, _checked_params(name, raw_params, table, _value)


def _parse_string(spec):
  parts = _split_top(spec, "+")
  if any(p.count("(") != p.count(")") for p in parts):
    raise ValueError(f"unbalanced parentheses in spec {spec!r}.")
  result = {}
  for position, text in enumerate(parts, 1):
    match = _COMPONENT.match(text)
    name = match.group(1) if match else text.strip()
    is_base = name in _BASES and "base" not in result and not (
        name == "quantity" and position > 1)
    if is_base:
      name, params = _parse_component(text, _BASES, f"#{position}")
      result["base"] = {"scheme": name, **params}
    elif name in _MODIFIERS:
      name, params = _parse_component(text, _MODIFIERS, f"#{position}")
      if name in result:
        raise ValueError(f"spec has {name}(...) twice.")
      result[name] = params
    else:
      valid = sorted(set(_BASES) | set(_MODIFIERS))
      raise ValueError(f"unknown spec component {name!r} (#{position}); "
                       f"valid: {valid}.")
  if "base" not in result:
    raise ValueError(f"spec {spec!r} has no base scheme; start with one of "
                     f"{sorted(_BASES)}.")
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
        f"\"alpha\": 0.5}}}}; schemes: {sorted(_BASES)}.")
  result = {}
  for component, raw_params in spec.items():
    if not isinstance(raw_params, dict):
      raise ValueError(f"spec component {component!r} must be an object of "
                       f"parameters; got {raw_params!r}.")
    if component == "base":
      raw_params = dict(raw_params)
      scheme = raw_params.pop("scheme", None)
      if not isinstance(scheme, str) or scheme not in _BASES:
        raise ValueError(f"spec base 'scheme' must be one of "
                         f"{sorted(_BASES)}; got {scheme!r}.")
      result["base"] = {"scheme": scheme, **_checked_params(
          scheme, raw_params, _BASES, _json_value)}
    else:
      result[component] = _checked_params(component, raw_params, _MODIFIERS,
                                           _json_value)
  return result


def _unique_keys(pairs):
  """A JSON object's dict; ValueError if it has a key twice (json.loads
  would keep the last silently)."""
  keys = [k for k, _ in pairs]
  twice = sorted({k for k in keys if keys.count(k) > 1})
  if twice:
    raise ValueError(f"JSON spec gives {twice} twice; give each key once.")
  return dict(pairs)


def parse(spec):
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
    result = _parse_dict(spec)
  elif isinstance(spec, str) and spec.strip():
    result = _parse_string(spec)
  else:
    raise ValueError("a partition spec must be a non-empty string or dict.")
  scheme = result["base"]["scheme"]
  if "key" in result and scheme not in _KEYED_BASES:
    raise ValueError(
        f"key(...) orders samples within each class, which only the "
        f"label-skew bases {list(_KEYED_BASES)} take; {scheme} does not.")
  if "quantity" in result and scheme not in (
      "dirichlet", "balanced_dirichlet"):
    raise ValueError(
        "quantity(...) combines only with dirichlet or balanced_dirichlet "
        f"(not {scheme}); use quantity(...) alone as the base for quantity "
        "skew with IID labels.")
  per_class = {"self_balancing", "min_size_policy"} & set(result["base"])
  if "quantity" in result and per_class:
    raise ValueError(
        f"dirichlet's {sorted(per_class)} apply to its per-class draw, which "
        "quantity(...) replaces by a client-side label mix; drop them or the "
        "quantity(...).")
  quantities = [result["base"]] if scheme == "quantity" else []
  quantities += [result["quantity"]] if "quantity" in result else []
  if any(("alpha" in q) == ("sigma" in q) for q in quantities):
    raise ValueError("quantity(...) needs exactly one of alpha= or sigma=.")
  return result


def attribute_key(spec):
  """The image attribute a spec's key(...) orders classes by, or None (no key,
  or a user key array) -- what `metrics.summary(key=...)` needs to report the
  within-class key dispersion."""
  name = parse(spec).get("key", {}).get("name")
  return name if name in attributes.ATTRIBUTES else None


def _args(params):
  def fmt(v):
    if isinstance(v, list):
      return f"({', '.join(fmt(x) for x in v)})"
    return str(v).lower() if isinstance(v, bool) else str(v)
  return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(params.items()))


def to_string(canonical):
  """The spec string of a canonical dict (stable: sorted parameters)."""
  base = dict(canonical["base"])
  parts = [f"{base.pop('scheme')}({_args(base)})"]
  for name in ("quantity", "key", "noise", "feature_noise"):
    if name in canonical:
      parts.append(f"{name}({_args(canonical[name])})")
  return "+".join(parts)


def _sub_seed(seed, stream):
  return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def resolve(spec, labels, num_clients, *, seed, images=None, keys=None):
  """Builds the Partition a spec describes.

  Args:
    spec: spec string, dict or JSON (see module docstring).
    labels: 1-D integer labels.
    num_clients: number of clients (ignored by `natural`).
    seed: non-negative integer seed (label/feature noise use seeds derived
      from it).
    images: (N, 28, 28) images, needed by `key(ink|slant|width)` and
      `natural(kmeans=K)`.
    keys: optional {name: per-sample array} for `key(NAME)` / `natural(ids=NAME)`.

  Returns:
    A `Partition` with `spec` set to the canonical string, and
    `noisy_labels` / `feature_noise` when the spec asks for them.
  """
  canonical = parse(spec)
  keys = keys or {}

  def named_array(name):
    if name in keys:
      return np.asarray(keys[name])
    if name in attributes.ATTRIBUTES:
      if images is None:
        raise ValueError(f"key({name}) needs the images (images=...).")
      return attributes.attribute(name, images)
    raise ValueError(f"unknown key {name!r}: not an image attribute "
                     f"{sorted(attributes.ATTRIBUTES)} nor in keys "
                     f"{sorted(keys)}.")

  base = dict(canonical["base"])
  scheme = base.pop("scheme")
  key_args = {}
  if "key" in canonical:
    key_args = {"key": named_array(canonical["key"]["name"]),
                "key_noise": canonical["key"].get("noise", 0.0)}
  if scheme == "iid":
    part = iid(labels, num_clients, seed=seed)
  elif scheme == "shards":
    part = shards(labels, num_clients, shards_per_client=base.get(
        "per_client", 2), seed=seed, **key_args)
  elif scheme == "classes":
    part = label_quantity(labels, num_clients, classes_per_client=base["k"],
                          seed=seed, **key_args)
  elif scheme == "quantity":
    part = quantity_skew(labels, num_clients, seed=seed, **base)
  elif scheme == "natural":
    if ("ids" in base) == ("kmeans" in base):
      raise ValueError("natural(...) needs exactly one of ids=NAME or kmeans=K.")
    if "ids" in base:
      ids = named_array(base["ids"])
    else:
      if images is None:
        raise ValueError("natural(kmeans=K) needs the images (images=...).")
      ids = attributes.kmeans_clusters(images, base["kmeans"], seed=seed)
    part = natural(labels, ids)
  elif "quantity" in canonical:  # dirichlet-family label mix + quantity sizes
    sizes = quantity_sizes(np.asarray(labels).shape[0], num_clients,
                           rng=np.random.default_rng(_sub_seed(seed, 3)),
                           **canonical["quantity"])
    part = balanced_dirichlet(labels, num_clients, alpha=base["alpha"],
                              sizes=sizes, seed=seed, **key_args)
  elif scheme == "dirichlet":
    part = dirichlet(labels, num_clients, seed=seed, **base, **key_args)
  else:
    part = balanced_dirichlet(labels, num_clients, alpha=base["alpha"],
                              seed=seed, **key_args)
  changes = {"spec": to_string(canonical)}
  if "noise" in canonical:
    changes["noisy_labels"], _ = noise_lib.label_noise(
        labels, part, seed=_sub_seed(seed, 1), **canonical["noise"])
  if "feature_noise" in canonical:
    changes["feature_noise"] = noise_lib.feature_noise_levels(
        len(part), canonical["feature_noise"]["sigma"])
  return part.replace(**changes)

"""Composition specs: grammar, canonical forms, resolution."""

import json
import re
from typing import Any

import numpy as np
import pytest

from partition_contract import assert_exact_cover
from tff_niid import partition
from tff_niid.partition import registry
from tff_niid.partition import spec

# Every name a spec may give a scheme (names and short forms), and the
# schemes that take key(...) and quantity(...): read from the registry, so a
# new scheme needs no edit here.
NAMES = str(registry.names())
KEYED = [s.name for s in registry.SCHEMES.values() if s.takes_key]
SIZED = [s.name for s in registry.SCHEMES.values() if s.sized]
FULL = ("dirichlet(alpha=0.1)+quantity(sigma=1.0)+key(slant, noise=0.2)"
        "+noise(rate=0.2, mode=pair)+feature_noise(sigma=0.5)")


def test_full_composition(labels, images, tmp_path):
  part = spec.resolve(FULL, labels, 50, seed=0, images=images)
  assert_exact_cover(part, 60000)
  assert part.spec == spec.to_string(spec.parse(FULL))
  assert part.noisy_labels is not None and part.feature_noise is not None
  assert abs((part.noisy_labels != labels).mean() - 0.2) < 0.001
  np.testing.assert_allclose(part.feature_noise,
                             partition.feature_noise_levels(50, 0.5))
  assert part.sizes.max() > 5 * part.sizes.min()  # quantity skew
  back = partition.load(part.save(str(tmp_path / "p")),
                        labels=labels)
  assert back.spec == part.spec
  assert np.array_equal(back.noisy_labels, part.noisy_labels)
  assert np.array_equal(back.feature_noise, part.feature_noise)
  again = spec.resolve(part.spec, labels, 50, seed=0, images=images)
  assert np.array_equal(again.indices, part.indices)


@pytest.mark.parametrize("text,scheme", [
    ("iid", "iid"), ("shards(per_client=3)", "shards"),
    ("shards(shards_per_client=3)+quantity(sigma=1, min_size=3)", "shards"),
    ("classes(2)+key(ink)", "label_quantity"),
    ("label_quantity(2)+quantity(alpha=1, min_size=2)", "label_quantity"),
    ("dirichlet(0.5)", "dirichlet"),
    ("balanced_dirichlet(alpha=1)", "balanced_dirichlet"),
    ("extended_dirichlet(2, alpha=0.5)+key(slant)", "extended_dirichlet"),
    ("quantity(alpha=0.5)", "quantity_skew"),
    ("quantity_skew(sigma=1)", "quantity_skew"),
    ("natural(ids=region)", "natural"),
])
def test_every_base(labels, images, text, scheme):
  keys = {"region": np.arange(60000) % 7}
  num_clients = 7 if scheme == "natural" else 30  # natural: one per region
  part = spec.resolve(text, labels, num_clients, seed=0, images=images,
                      keys=keys)
  assert part.scheme == scheme
  assert len(part) == num_clients
  assert_exact_cover(part, 60000)


def test_noise_on_a_fraction_of_clients(labels):
  part = spec.resolve("iid+noise(rate=0.4, noisy_clients=0.5)",
                      labels, 10, seed=0)
  assert part.noisy_labels is not None
  rates = [np.mean(part.noisy_labels[c] != labels[c])
           for c in part]
  assert sorted(np.round(rates, 3)) == [0.0] * 5 + [0.4] * 5
  assert "noisy_clients=0.5" in part.spec


NIID_BENCH_DIR = ("dirichlet(alpha=0.5, min_size=10, self_balancing=true, "
                  "min_size_policy=resample)")


def test_niid_bench_dirichlet_and_quantity(labels):
  canonical = spec.parse(NIID_BENCH_DIR)
  assert canonical["base"] == {
      "scheme": "dirichlet", "alpha": 0.5, "min_size": 10,
      "self_balancing": True, "min_size_policy": "resample"}
  assert spec.parse(spec.to_string(canonical)) == canonical
  part = spec.resolve(NIID_BENCH_DIR, labels, 10, seed=0)
  direct = partition.dirichlet(labels, 10, alpha=0.5, min_size=10, seed=0,
                               self_balancing=True, min_size_policy="resample")
  assert np.array_equal(part.indices, direct.indices)
  assert np.array_equal(part.offsets, direct.offsets)
  assert part.params == direct.params
  assert part.spec == spec.to_string(canonical)
  quantity = spec.resolve(
      "quantity(alpha=0.5, min_size=10, min_size_policy=resample)", labels,
      10, seed=0)
  assert quantity.params["min_size_policy"] == "resample"
  assert quantity.sizes.min() >= 10
  mixed = spec.resolve("dirichlet(alpha=0.5)+quantity(alpha=0.5, min_size=10, "
                       "min_size_policy=resample)", labels, 10, seed=0)
  assert_exact_cover(mixed, 60000)
  assert mixed.sizes.min() >= 10


def test_boolean_values():
  for text, value in (("true", True), ("True", True), ("false", False),
                      ("FALSE", False)):
    canonical = spec.parse(f"dirichlet(1, self_balancing={text})")
    assert canonical["base"]["self_balancing"] is value
    assert f"self_balancing={str(value).lower()}" in spec.to_string(canonical)
  # Specs without the new parameters keep their canonical strings.
  assert (spec.to_string(spec.parse("dirichlet(alpha=0.5, min_size=10)")) ==
          "dirichlet(alpha=0.5, min_size=10)")


def test_dict_and_json_forms():
  canonical = spec.parse(FULL)
  assert spec.parse(canonical) == canonical
  assert spec.parse(json.dumps(canonical)) == canonical
  assert spec.parse(spec.to_string(canonical)) == canonical


@pytest.mark.parametrize("text,name", [
    ("dirichlet(alpha=1)+key(slant, noise=0.2)", "slant"),
    ("classes(k=2)+key(name=ink)", "ink"),
    ("classes(k=2)+key(region)", "region"),  # a user array
    ("iid", None),
])
def test_key_name(text, name):
  assert spec.key_name(text) == name


@pytest.mark.parametrize("text,message", [
    ("dirichlet", "needs alpha"), ("foo(1)", "unknown spec component"),
    ("iid+quantity(sigma=1)", "combines only"),
    ("dirichlet(1)+key(ink)+key(width)", "twice"),
    ("dirichlet(beta=1)", "no parameter 'beta'"),
    ("key(ink)", "no base scheme"), ("dirichlet(alpha=1", "unbalanced"),
    ("quantity(alpha=1, sigma=2)", "quantity_skew.*exactly one"),
    ("dirichlet(1)+quantity(min_size=2)", r"^quantity\(...\) needs exactly"),
    ("", "non-empty"),
    ("dirichlet(0.5, self_balancing=true)+quantity(alpha=1)",
     r"drawn as balanced_dirichlet .* no \['self_balancing'\]"),
    ("dirichlet(0.5, min_size=10)+quantity(alpha=1)", r"no \['min_size'\]"),
    ("dirichlet(0.5, balance=true)", "no parameter 'balance'"),
    ("dirichlet(alpha=0.5, min_partition_size=10)",
     r"no parameter 'min_partition_size'.*\(min_partition_size is Flower "
     r"Datasets' name; here min_size\.\)"),
    ("dirichlet(alpha=0.5)+dirichlet(alpha=1)",
     r"second base scheme, dirichlet\(...\) \(#2\), after dirichlet"),
    ("classes(k=2)+quantity(sizes=(5, 5), sigma=1)",
     r"quantity\(...\) needs exactly one of alpha=, sigma=, profile= or "
     r"sizes=\."),
    ("classes(k=2)+quantity(sizes=(5, 5), min_size=2)",
     r"quantity\(sizes=...\) gives every client's size, so min_size"),
    ("quantity(sizes=(5, 5), sigma=1)",
     r"quantity_skew\(...\) needs exactly one of alpha=, sigma=, "
     r"profile= or sizes=\."),
    # A name that reads as a value could never be found among the keys.
    ("dirichlet(0.5)+key(2020)",
     r"key names an array by a word .*; 2020 reads as a value, not a name: "
     r"rename the array \(e.g. k2020\)"),
    ('{"base": {"scheme": "dirichlet", "alpha": 0.5}, "key": {"name": "true"}}',
     r"key names an array by a word .*; true reads as a value"),
    ("natural(ids=7)", r"natural\(ids=...\) names an array by a word"),
])
def test_parse_errors(text, message):
  with pytest.raises(ValueError, match=message):
    spec.parse(text)


@pytest.mark.parametrize("base,call", [
    ("shards(shards_per_client=2)",
     lambda labels, sizes: partition.shards(labels, 5, shards_per_client=2,
                                            sizes=sizes, seed=0)),
    ("classes(k=3)",
     lambda labels, sizes: partition.label_quantity(
         labels, 5, classes_per_client=3, sizes=sizes, seed=0)),
    ("balanced_dirichlet(alpha=0.5, fill=by_sample)",
     lambda labels, sizes: partition.balanced_dirichlet(
         labels, 5, alpha=0.5, fill="by_sample", sizes=sizes, seed=0)),
])
def test_given_sizes(labels, base, call):
  # Flower's partition_sizes: the base's partition with these sizes, as
  # from Python.
  sizes = [18000, 16000, 12000, 9000, 5000]
  text = f"{base}+quantity(sizes=({', '.join(map(str, sizes))}))"
  part = spec.resolve(text, labels, 5, seed=0)
  assert part.spec == spec.to_string(spec.parse(text))
  assert "+quantity(sizes=(18000, 16000, 12000, 9000, 5000))" in part.spec
  expected = call(labels, np.array(sizes))
  assert np.array_equal(part.indices, expected.indices)
  assert np.array_equal(part.offsets, expected.offsets)
  with pytest.raises(ValueError, match=r"`sizes` must be 4 integers summing "
                     r"to 60000 \(one size per client\); got shape \(5,\)"):
    spec.resolve(text, labels, 4, seed=0)


def test_kmeans_records_the_seed_it_draws_from(labels, images, tmp_path):
  # k-means' first centres are drawn from the seed: the saved partition must
  # name it, or its spec could not draw it again.
  drawn = [spec.resolve("natural(kmeans=5)", labels[:2000], None, seed=s,
                        images=images[:2000]) for s in (0, 1)]
  assert [p.seed for p in drawn] == [0, 1]
  assert not np.array_equal(drawn[0].indices, drawn[1].indices)
  back = partition.load(drawn[1].save(str(tmp_path / "p")),
                        labels=labels[:2000])
  again = spec.resolve(back.spec, labels[:2000], None, seed=back.seed,
                       images=images[:2000])
  assert np.array_equal(again.indices, drawn[1].indices)
  # natural(ids=...) draws nothing and records no seed.
  ids = {"region": np.arange(2000) % 7}
  assert spec.resolve("natural(ids=region)", labels[:2000], None, seed=3,
                      keys=ids).seed is None


def test_kmeans_refuses_to_make_fewer_clients_than_asked(labels, images):
  five_distinct = np.repeat(images[:5], 4, axis=0)
  with pytest.raises(ValueError, match=r"natural\(kmeans=10\) found only 5 "
                     "non-empty clusters"):
    spec.resolve("natural(kmeans=10)", labels[:20], None, seed=0,
                 images=five_distinct)


def test_resolve_errors(labels, images):
  with pytest.raises(ValueError, match="needs the images"):
    spec.resolve("dirichlet(1)+key(ink)", labels, 10, seed=0)
  with pytest.raises(ValueError, match="unknown key"):
    spec.resolve("dirichlet(1)+key(zip)", labels, 10, seed=0)
  with pytest.raises(ValueError, match="take a key"):
    spec.resolve("iid+key(ink)", labels, 10, seed=0, images=images)
  with pytest.raises(ValueError, match="min_size_policy.*'repair', 'resample'"):
    spec.resolve("dirichlet(0.5, min_size_policy=redraw)", labels, 10, seed=0)
  with pytest.raises(ValueError, match="self_balancing.*true/false"):
    spec.resolve("dirichlet(0.5, self_balancing=yes)", labels, 10, seed=0)
  with pytest.raises(ValueError, match="min_size_policy.*'reserve'"):
    spec.resolve("quantity(alpha=0.5, min_size_policy=repair)", labels, 10,
                 seed=0)


@pytest.mark.parametrize("text,message", [
    # Values were spliced into the spec string: this became 90% label noise.
    ('{"base": {"scheme": "dirichlet", "alpha": "0.1)+noise(rate=0.9"}}',
     "dirichlet(...): cannot read value '0.1)+noise(rate=0.9'"),
    # Unknown keys were dropped.
    ('{"base": {"scheme": "dirichlet", "alpha": 0.1}, "nosie": {"rate": 0.2}}',
     "spec has unknown component(s) ['nosie']; valid: ['base', "
     "'feature_noise', 'key', 'noise', 'quantity', 'rotate']."),
    ('{"base": {"scheme": "dirichlet", "alpha": 0.1, "beta": 2}}',
     "dirichlet(...) has no parameter 'beta'; valid: ['alpha', 'min_size', "
     "'self_balancing', 'min_size_policy']."),
    ('{"base": {"scheme": "dirichlet", "alpha": 0.1, "alpha": 0.5}}',
     "JSON spec gives ['alpha'] twice; give each key once."),
    ('{"base": {"scheme": "dirichlet", "alpha": null}}',
     "dirichlet(...): cannot read value None"),
    ('{"base": {"scheme": "dirichlet"}}', "dirichlet(...) needs alpha."),
    ('{"base": {"scheme": "dirchlet", "alpha": 1}}',
     f"spec base 'scheme' must be one of {NAMES}; got 'dirchlet'."),
    ('{"base": "iid"}', "spec component 'base' must be an object of "
     "parameters; got 'iid'."),
    # A missing base raised KeyError.
    ('{"noise": {"rate": 0.1}}', "spec has no 'base', e.g. {\"base\": "
     "{\"scheme\": \"dirichlet\", \"alpha\": 0.5}}; schemes: "
     f"{NAMES}."),
    ('{"base": ', "spec is not valid JSON: Expecting value"),
])
def test_json_spec_is_checked_like_a_string(text, message):
  with pytest.raises(ValueError) as e:
    spec.parse(text)
  assert message in str(e.value)


@pytest.mark.parametrize("canonical,message", [
    ({"base": {"scheme": "iid"}, "noise": {"rate": "0.1)+feature_noise(1"}},
     "noise(...): cannot read value '0.1)+feature_noise(1'"),
    ({"base": {"scheme": "iid"}, "noise": {"rate": 0.1, "rat": 0.2}},
     "noise(...) has no parameter 'rat'"),
    ({"noise": {"rate": 0.1}}, "spec has no 'base'"),
])
def test_dict_spec_is_checked_like_a_string(canonical, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    spec.parse(canonical)


def test_json_values_read_as_in_a_string():
  text = ('{"base": {"scheme": "dirichlet", "alpha": "0.5"}, "key": '
          '{"name": "ink"}, "noise": {"ramp": [0, "0.4"], "mode": "pair"}}')
  assert spec.parse(text) == spec.parse(
      "dirichlet(0.5)+key(ink)+noise(ramp=(0, 0.4), mode=pair)")


@pytest.mark.parametrize("text", [
    "dirichlet(alpha=0.1, alpha=0.5)", "dirichlet(0.1, alpha=0.5)",
])
def test_a_parameter_given_twice(text):
  # The last one silently won.
  with pytest.raises(ValueError) as e:
    spec.parse(text)
  assert str(e.value) == ("dirichlet(...) gives alpha twice; give each "
                          "parameter once.")


@pytest.mark.parametrize("base,scheme", [
    ("iid", "iid"), ("quantity(sigma=1)", "quantity_skew"),
    ("natural(ids=region)", "natural")])
def test_key_with_a_base_that_ignores_it(base, scheme):
  with pytest.raises(ValueError) as e:
    spec.parse(f"{base}+key(ink)")
  assert str(e.value) == (
      "key(...) orders samples within each class; of the schemes, only "
      f"{KEYED} take a key, and {scheme} does not.")


def test_400_digit_alpha():
  # int(float('1' + 400 zeros)) raised OverflowError while parsing.
  huge = "1" + "0" * 400
  assert spec.parse(f"dirichlet({huge})")["base"]["alpha"] == 10**400
  with pytest.raises(ValueError, match=r"`alpha` is too large for a float; "
                     r"got 1000000000000000000000000000000000000000\.\.\. "
                     r"\(401 characters\)\."):
    spec.resolve(f"dirichlet({huge})", np.arange(100) % 10, 10, seed=0)


@pytest.mark.parametrize("text", [
    "shards(per_client=2)+quantity(sigma=1.5, min_size=2)",
    "classes(k=2)+quantity(alpha=0.5, min_size=4)",
])
def test_quantity_gives_the_sizes(labels, text):
  # quantity(...) draws the sizes from seed stream 3, then the base takes
  # them as `sizes=`.
  part = spec.resolve(text, labels, 100, seed=5)
  canonical = spec.parse(text)
  base = dict(canonical["base"])
  scheme = partition.registry.SCHEMES[base.pop("scheme")]
  stream = np.random.SeedSequence([5, 3]).generate_state(1)[0]
  sizes = partition.quantity_sizes(
      60000, 100, rng=np.random.default_rng(int(stream)),
      **canonical["quantity"])
  direct = scheme.function(labels, 100, seed=5, sizes=sizes, **base)
  assert np.array_equal(part.indices, direct.indices)
  assert np.array_equal(part.offsets, direct.offsets)


@pytest.mark.parametrize("scheme,values,expected", [
    ("dirichlet", dict(alpha=0.5, min_size=1, shards_per_client=2,
                       sigma=None), "dirichlet(alpha=0.5, min_size=1)"),
    ("iid", dict(alpha=0.5, min_size=1), "iid"),
    ("shards", dict(shards_per_client=3, key="width", key_noise=0.0),
     "shards(shards_per_client=3)+key(name=width)"),
    ("classes", dict(classes_per_client=2, key="ink", key_noise=0.5),
     "label_quantity(classes_per_client=2)+key(name=ink, noise=0.5)"),
    ("quantity_skew", dict(alpha=None, sigma=1.0, min_size=5),
     "quantity_skew(min_size=5, sigma=1.0)"),
    ("quantity_skew", dict(alpha=None, profile="square"),
     "quantity_skew(profile=square)"),
])
def test_shortcut(scheme, values, expected):
  assert spec.shortcut(scheme, **values) == expected


@pytest.mark.parametrize("scheme,values,message", [
    ("dirchlet", {}, "unknown scheme 'dirchlet'"),
    ("dirichlet", {}, "dirichlet(...) needs alpha."),
    ("iid", dict(key="ink"), "key(...) orders samples within each class"),
    ("quantity_skew", dict(alpha=0.5, sigma=1.0),
     "quantity_skew(...) needs exactly one of alpha=, sigma=, profile= or "
     "sizes=."),
    ("quantity_skew", dict(sigma=1.0, profile="linear"),
     "quantity_skew(...) needs exactly one of alpha=, sigma=, profile= or "
     "sizes=."),
])
def test_shortcut_errors(scheme, values, message):
  with pytest.raises(ValueError) as e:
    spec.shortcut(scheme, **values)
  assert str(e.value).startswith(message)


@pytest.mark.parametrize("scheme,given,message", [
    ("iid", ["alpha"], "iid takes no alpha (it has no parameters)."),
    ("shards", ["classes_per_client", "min_size"], "shards takes no "
     "min_size, classes_per_client; a spec sets each of its parameters: "
     "shards(shards_per_client=2)."),
    ("dirichlet", ["key_noise"], "key_noise mixes key order with random "
     "order within classes, so it needs a key."),
])
def test_shortcut_refuses_given_values_the_scheme_does_not_use(scheme, given,
                                                                message):
  # Any: mypy would match these values against `given` too.
  values: dict[str, Any] = dict(alpha=0.5, min_size=1, shards_per_client=2,
                                classes_per_client=2, key=None, key_noise=0.5)
  assert spec.shortcut(scheme, **values)  # defaults are dropped silently
  with pytest.raises(ValueError) as e:
    spec.shortcut(scheme, given=given, **values)
  assert str(e.value) == message


def test_schemes_without_sizes_refuse_quantity():
  with pytest.raises(ValueError) as e:
    spec.parse("extended_dirichlet(2, alpha=1)+quantity(sigma=1)")
  assert str(e.value) == (
      "quantity(...) gives client sizes, so it combines only with the schemes "
      f"that take them, {SIZED}, not extended_dirichlet; for quantity skew "
      "with IID labels, use quantity(sigma=1) alone as the base.")
  # Given sizes too: that base is Flower's SizePartitioner.
  with pytest.raises(ValueError, match=r"use quantity\(sizes=\(10, 20\)\) "
                     "alone as the base"):
    spec.parse("iid+quantity(sizes=(10, 20))")


@pytest.mark.parametrize("text,message", [
    ("classes(k=2, classes_per_client=3)",
     "classes(...) gives classes_per_client twice; give each parameter once."),
    ("shards(foo=1)", "shards(...) has no parameter 'foo'; valid: "
     "['shards_per_client']; per_client for shards_per_client."),
    ("classes()", "classes(...) needs classes_per_client."),
    ('{"base": {"scheme": "classes", "kk": 2}}',
     "classes(...) has no parameter 'kk'; valid: ['classes_per_client', "
     "'class_assignment']; k for classes_per_client."),
])
def test_short_form_errors(text, message):
  with pytest.raises(ValueError) as e:
    spec.parse(text)
  assert str(e.value) == message


def test_dict_form_takes_short_forms():
  assert spec.parse({"base": {"scheme": "classes", "k": 2}}) == {
      "base": {"scheme": "label_quantity", "classes_per_client": 2}}


def test_a_dict_spec_takes_python_and_numpy_values():
  # Tuples and numpy values, as a Python caller holds them, were refused
  # ("cannot read value (100, 900)").
  labels = np.arange(1000) % 10
  for sizes in ([100, 900], (100, np.int64(900)), np.array([100, 900])):
    part = spec.resolve({"base": {"scheme": "quantity_skew", "sizes": sizes}},
                        labels, 2, seed=0)
    assert part.spec == "quantity_skew(sizes=(100, 900))"
  assert spec.parse({"base": {"scheme": "dirichlet", "alpha": np.float64(
      0.5)}}) == spec.parse("dirichlet(alpha=0.5)")

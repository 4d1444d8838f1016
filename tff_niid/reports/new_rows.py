"""The results README's blocks on the rows no paper has: within-class key
rules (section 3) and label noise (section 4), one seed each.

Each public function maps `root` (`tree`) to one block's markdown.
"""

from tff_niid import results
from tff_niid.reports import tree


def _partitions(cells, metrics):
  """One row per partition: its spec and `metrics` ((name, header) pairs)
  from its cells' partition_summary.txt files, which must agree."""
  rows = []
  for partition, spec in dict((c["partition"], c["spec"])
                              for c in cells).items():
    values: dict[str, float] = {}
    for cell in cells:
      if cell["partition"] != partition:
        continue
      for name, value in results.read_partition_summary(
          cell["run_dir"]).items():
        if values.setdefault(name, value) != value:
          raise ValueError(f"{cell['run_dir']}: {name} {value} differs from "
                           f"{values[name]} in another cell of {partition}")
    rows.append([partition, f"`{spec}`"] +
                [f"{values[name]:.4f}" if name in values else "—"
                 for name, _ in metrics])
  return results.table(["partition", "spec"] + [h for _, h in metrics], rows,
                       left=2)


def _key_rules(root):
  """(partitions, algorithms, {(partition, algorithm): final accuracy})."""
  _, cells = tree.config_cells(root, "key_rules.cfg")
  finals = {(c["partition"], c["algorithm"]): tree.final(c["run"])
            for c in cells}
  return (list(dict.fromkeys(c["partition"] for c in cells)),
          list(dict.fromkeys(c["algorithm"] for c in cells)), finals)


def key_rules_partitions(root: str) -> str:
  return _partitions(tree.config_cells(root, "key_rules.cfg")[1],
                     [("js_mean", "mean JS divergence to the global label mix"),
                      ("key_dispersion", "key dispersion")])


def key_rules_accuracy(root: str) -> str:
  partitions, algorithms, finals = _key_rules(root)
  return tree.pivot(finals, partitions, algorithms, "partition", results.percent)


def key_rules_key_cost(root: str) -> str:
  """Final accuracy with the key rule minus without it, per algorithm."""
  partitions, algorithms, finals = _key_rules(root)
  keyed = [p for p in partitions if "_" in p]
  differences = {}
  for partition in keyed:
    base = partition.partition("_")[0]
    for algorithm in algorithms:
      differences[(f"{partition} − {base}", algorithm)] = tree.minus(
          finals.get((partition, algorithm)), finals.get((base, algorithm)))
  return tree.pivot(differences,
                    [f"{p} − {p.partition('_')[0]}" for p in keyed],
                    algorithms, "points", tree.points)


def key_rules_vs_fedavg(root: str) -> str:
  partitions, algorithms, finals = _key_rules(root)
  others = [a for a in algorithms if a != "fedavg"]
  differences = {(p, f"{a} − fedavg"): tree.minus(finals.get((p, a)),
                                              finals.get((p, "fedavg")))
                 for p in partitions for a in others}
  return tree.pivot(differences, partitions,
                    [f"{a} − fedavg" for a in others], "partition",
                    tree.points)


def _label_noise(root):
  """(bases, noise settings, {(base, setting): final accuracy}); partition
  BASE_SETTING, or BASE for the clean one."""
  _, cells = tree.config_cells(root, "label_noise.cfg")
  finals = {}
  for cell in cells:
    base, _, setting = cell["partition"].partition("_")
    finals[(base, setting or "clean")] = tree.final(cell["run"])
  return (list(dict.fromkeys(b for b, _ in finals)),
          list(dict.fromkeys(s for _, s in finals)), finals)


def label_noise_accuracy(root: str) -> str:
  bases, settings, finals = _label_noise(root)
  return tree.pivot(finals, bases, settings, "base partition", results.percent)


def label_noise_differences(root: str) -> str:
  """Each setting minus clean per base, and each base minus the first."""
  bases, settings, finals = _label_noise(root)
  differences = {}
  labels = []
  for base in bases:
    labels.append(f"{base}: setting − clean")
    for setting in settings:
      differences[(labels[-1], setting)] = tree.minus(
          finals.get((base, setting)), finals.get((base, "clean")))
  for base in bases[1:]:
    labels.append(f"{base} − {bases[0]}")
    for setting in settings:
      differences[(labels[-1], setting)] = tree.minus(
          finals.get((base, setting)), finals.get((bases[0], setting)))
  return tree.pivot(differences, labels, settings, "points", tree.points)

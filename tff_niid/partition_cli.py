"""The partition binary: builds a non-IID partition of MNIST/Fashion-MNIST,
or of your own labels (--labels_file), measures and plots it.

Installed with the numpy core as the console script `tff-niid-partition`
(`pip install .`); in a clone also `python experiments/partition.py`, which
runs this. Importing this module defines its absl flags: only the scripts
that run it import it.

Examples:
  tff-niid-partition --spec='dirichlet(alpha=0.1)+key(slant)' \
      --num_clients=100 --output_dir=runs/part_dir01_slant
  tff-niid-partition --scheme=shards --num_clients=100 \
      --output_dir=runs/part_shards
  tff-niid-partition --scheme=dirichlet --self_balancing \
      --min_size_policy=resample --min_size=10 --num_clients=10 \
      --output_dir=runs/part_niid_bench_dir05
  tff-niid-partition --labels_file=cifar10_train_labels.npy \
      --spec='dirichlet(alpha=0.5)' --num_clients=100 --output_dir=runs/c10
  tff-niid-partition --list_schemes

--spec is the way in; --scheme and its flags are a shortcut for the spec they
stand for (`partition.spec.shortcut`), and --list_schemes prints the schemes
of `partition.registry` with their parameters and defaults.

Writes into <output_dir> the partition report that experiments/train.py
writes into a run (`tff_niid.partition.report`): partition/ (load it with
tff_niid.partition.load or pass it to train.py --partition_file),
partition_summary.txt (the table printed) and the plots
partition_{label_mix,sizes,divergence}.png; and hparams.txt. Refuses an
--output_dir holding a training run, whose hparams.txt and partition/ it
would replace, and one holding another partition, or files of this report
without a partition beside them (someone else's), unless --overwrite. Needs
only numpy, and matplotlib for the plots (without it, they are left out and
the output says so): TensorFlow is not imported.
"""

import os
import sys
from typing import NamedTuple

from absl import app
from absl import flags
import numpy as np

from tff_niid import datasets
from tff_niid import download
from tff_niid import partition as partition_lib
from tff_niid import rundir
from tff_niid.partition.balanced_dirichlet import FILLS
from tff_niid.partition.label_quantity import CLASS_ASSIGNMENTS
from tff_niid.partition.quantity_skew import PROFILES

_DATASET = flags.DEFINE_enum("dataset", "mnist", ["mnist", "fashion_mnist"],
                             "Dataset.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Directory with the idx .gz files (default: "
    "$TFF_NIID_DATA, else ../shared/data beside a clone, then "
    "~/.cache/tff_niid/data).")
_DOWNLOAD = flags.DEFINE_bool(
    "download", False, "If the dataset is not found, download it (each file "
    "checked against its published SHA-256) into --data_dir, else "
    "$TFF_NIID_DATA, else ~/.cache/tff_niid/data (tff_niid.datasets).")
_SPEC = flags.DEFINE_string(
    "spec", None, "Composition spec (see tff_niid.partition.spec); overrides "
    "--scheme and its flags.")
_LIST_SCHEMES = flags.DEFINE_bool(
    "list_schemes", False, "Print the schemes (name, parameters, defaults, "
    "summary) and exit.")
_SCHEME = flags.DEFINE_enum(
    "scheme", "dirichlet", list(partition_lib.registry.SCHEMES),
    "Scheme when no --spec is given; the flags below named after its "
    "parameters set them.")
_ALPHA = flags.DEFINE_float("alpha", 0.5, "Dirichlet concentration.")
_SIGMA = flags.DEFINE_float("sigma", None,
                            "Lognormal sigma (quantity_skew; replaces "
                            "--alpha).")
_PROFILE = flags.DEFINE_enum(
    "profile", None, list(PROFILES),
    "Flower's deterministic client sizes, client i of 1..n ~ i, i^2 or e^i "
    "(quantity_skew; replaces --alpha).")
_SIZES = flags.DEFINE_list(
    "sizes", None, "Every client's size, comma-separated, summing to the "
    "training samples (quantity_skew: Flower's SizePartitioner; replaces "
    "--alpha).")
flags.register_validator(
    "sizes", lambda sizes: sizes is None or bool(sizes) and all(
        size.strip().isdecimal() for size in sizes),
    message="--sizes must be whole numbers separated by commas, e.g. "
    "--sizes=30000,20000,10000.")
_SHARDS_PER_CLIENT = flags.DEFINE_integer("shards_per_client", 2, "Shards.")
_CLASSES_PER_CLIENT = flags.DEFINE_integer("classes_per_client", 2, "#C=k.")
_CLASS_ASSIGNMENT = flags.DEFINE_enum(
    "class_assignment", None, list(CLASS_ASSIGNMENTS),
    "How label_quantity's clients draw their classes: NIID-Bench's rule "
    "(first_deterministic), or Flower's PathologicalPartitioner's random or "
    "deterministic mode. Default: the scheme's.")
_MIN_SIZE = flags.DEFINE_integer("min_size", 1, "Minimum client size.")
# Its values depend on the scheme, which checks them.
_MIN_SIZE_POLICY = flags.DEFINE_string(
    "min_size_policy", None,
    "How every client reaches --min_size (dirichlet: repair or resample; "
    "extended_dirichlet, quantity_skew: reserve or resample); resample "
    "redraws the whole partition, as NIID-Bench and FedLab do. Default: the "
    "scheme's.")
_SELF_BALANCING = flags.DEFINE_bool(
    "self_balancing", None, "Zero the Dirichlet share of a client already "
    "holding N/n samples (NIID-Bench, FedLab, Flower; dirichlet and "
    "extended_dirichlet). Default: the scheme's.")
_FILL = flags.DEFINE_enum(
    "fill", None, list(FILLS),
    "How balanced_dirichlet fills its clients: by_class, or by_sample as "
    "Flower's InnerDirichletPartitioner. Default: the scheme's.")
_KEY = flags.DEFINE_enum("key", None, ["ink", "slant", "width"],
                         "Order each class by this image attribute.")
_KEY_NOISE = flags.DEFINE_float("key_noise", 0.0,
                                "0 = ordered by key, 1 = random.")
_LABELS_FILE = flags.DEFINE_string(
    "labels_file", None, "A .npy array of your own dataset's training labels "
    "(1-D integers), partitioned in place of --dataset's; the image "
    "attributes (key(slant), natural(kmeans=K)) need MNIST/Fashion-MNIST's "
    "images and are not available.")
# What --labels_file replaces.
_DATASET_FLAGS = (_DATASET, _DATA_DIR, _DOWNLOAD)
_KEY_FILE = flags.DEFINE_multi_string(
    "key_file", [], "NAME=PATH of a .npy array with one value per training "
    "sample (e.g. writer ids), which the spec names as natural(ids=NAME) or "
    "key(NAME); repeat the flag for more.")
_NUM_CLIENTS = flags.DEFINE_integer(
    "num_clients", 100, "Number of clients (not used by a natural spec, which "
    "makes its own).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output directory.")
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace another partition saved in --output_dir "
    "(without it, that is refused; rerunning the same partition there is not).")

flags.register_multi_flags_validator(
    ["output_dir", "list_schemes"],
    lambda f: f["output_dir"] or f["list_schemes"],
    message="--output_dir is required (or --list_schemes).")


# --scheme and the flags that set its parameters.
_SCHEME_FLAGS = (_SCHEME, _ALPHA, _SIGMA, _PROFILE, _SIZES, _SHARDS_PER_CLIENT,
                 _CLASSES_PER_CLIENT, _CLASS_ASSIGNMENT, _MIN_SIZE,
                 _MIN_SIZE_POLICY, _SELF_BALANCING, _FILL, _KEY, _KEY_NOISE)


# Where a scheme flag's value goes in a spec (the others are parameters of
# the base scheme).
_SPEC_FORMS = {"scheme": "{}(...)", "sigma": "quantity(sigma={})",
               "profile": "quantity(profile={})",
               "sizes": "quantity(sizes=({}))", "key": "key({})",
               "key_noise": "key(..., noise={})"}


def _spec_form(flag):
  """How a given scheme flag is written in a spec, e.g. key(..., noise=0.3)."""
  value = flag.value
  if isinstance(value, bool):
    value = str(value).lower()
  elif isinstance(value, list):
    value = ", ".join(value)
  return _SPEC_FORMS.get(flag.name, f"...({flag.name}={{}})").format(value)


def _spec_text():
  """--spec, or the spec --scheme and its flags stand for. A flag given on
  the command line that the spec does not use is refused, not dropped."""
  given = [f.name for f in _SCHEME_FLAGS if flags.FLAGS[f.name].present]
  if _SPEC.value:
    if given:
      forms = "; ".join(f"--{name} is {_spec_form(flags.FLAGS[name])}"
                        for name in given)
      were, them = ("was", "it") if len(given) == 1 else ("were", "them")
      raise ValueError(
          f"--spec replaces --scheme and its flags, but --{', --'.join(given)} "
          f"{were} given too; write {them} into the spec ({forms}), or leave "
          "--spec out.")
    return _SPEC.value
  # --sigma, --profile or --sizes replaces --alpha's default for a size law
  # (quantity_skew); an --alpha given beside them is passed on, and refused.
  sizes = None if _SIZES.value is None else [int(s) for s in _SIZES.value]
  other_law = any(law is not None for law in (_SIGMA.value, _PROFILE.value,
                                              sizes))
  alpha = None if other_law and "alpha" not in given else _ALPHA.value
  # Given sizes have no floor to meet: --min_size's default is left out.
  given_sizes = sizes is not None and "min_size" not in given
  min_size = None if given_sizes else _MIN_SIZE.value
  try:
    return partition_lib.spec.shortcut(
        _SCHEME.value, given=given, alpha=alpha, sigma=_SIGMA.value,
        profile=_PROFILE.value, sizes=sizes,
        shards_per_client=_SHARDS_PER_CLIENT.value,
        classes_per_client=_CLASSES_PER_CLIENT.value,
        class_assignment=_CLASS_ASSIGNMENT.value,
        min_size=min_size, min_size_policy=_MIN_SIZE_POLICY.value,
        self_balancing=_SELF_BALANCING.value, fill=_FILL.value,
        key=_KEY.value, key_noise=_KEY_NOISE.value)
  except ValueError as e:
    raise ValueError(f"--scheme={_SCHEME.value}: {e}") from None


def _key_file_paths():
  """{NAME: PATH} of --key_file; ValueError naming a bad entry."""
  paths = {}
  for entry in _KEY_FILE.value:
    name, sep, path = entry.partition("=")
    if not sep or not name or not path:
      raise ValueError(f"--key_file={entry}: write it as NAME=PATH.npy.")
    if name in paths:
      raise ValueError(f"--key_file gives {name} twice.")
    paths[name] = path
  return paths


def _key_files():
  """{NAME: array} of --key_file; ValueError naming a bad entry."""
  keys = {}
  for name, path in _key_file_paths().items():
    try:
      keys[name] = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
      raise ValueError(f"--key_file={name}={path}: cannot read {path} as a "
                       f".npy array: {e}") from None
  return keys


def _hparams(spec_text):
  """A flagfile that reruns this partition: this module's flags (however it
  was started, module or script), the partition as its --spec in place of
  --scheme and the flags that set it (their defaults beside a --spec would
  be refused on the rerun), --key_file, --labels_file and --data_dir with
  absolute paths (the rerun may start in another directory); not
  --overwrite, which the rerun must give itself, nor beside --labels_file
  the dataset's flags, which it does not use."""
  unused = _DATASET_FLAGS if _LABELS_FILE.value is not None else ()
  names = [flag.name for flag in (*_SCHEME_FLAGS, _SPEC, _KEY_FILE,
                                  _LABELS_FILE, _DATA_DIR, _OVERWRITE,
                                  *unused)]
  # A bool flag is written --name or --noname, the others --name=value.
  written = (*(f"--{name}=" for name in names),
             *(f"--{prefix}{name}\n" for name in names
               for prefix in ("", "no")))
  recorded = rundir.binary_flagfile(
      binary=flags.FLAGS.find_module_defining_flag(_SPEC.name))
  kept = [line for line in recorded.splitlines(keepends=True)
          if not line.startswith(written)]
  files = [f"--key_file={name}={os.path.abspath(path)}\n"
           for name, path in _key_file_paths().items()]
  if _LABELS_FILE.value is not None:
    files.append(f"--labels_file={os.path.abspath(_LABELS_FILE.value)}\n")
  elif _DATA_DIR.value:  # "" is no directory: the defaults
    data_dir = os.path.abspath(os.path.expanduser(_DATA_DIR.value))
    files.append(f"--data_dir={data_dir}\n")
  return "".join(sorted(kept + files + [f"--spec={spec_text}\n"]))


def _print_warning(message):
  print(f"WARNING: {message}", file=sys.stderr)


def _image_inputs(spec_text):
  """What of the spec needs images (an image attribute --key_file does not
  give, or k-means clusters), or None."""
  canonical = partition_lib.spec.parse(spec_text)
  if "kmeans" in canonical["base"]:
    return "natural(kmeans=K)"
  for name in (canonical.get("key", {}).get("name"),
               canonical["base"].get("ids")):
    if (name in partition_lib.attributes.ATTRIBUTES and
        name not in _key_file_paths()):
      return f"the image attribute {name}"
  return None


class _OwnLabels(NamedTuple):
  """--labels_file's labels, in the fields of `datasets.Dataset` used here."""
  name: str
  train_labels: np.ndarray
  train_images: None = None


def _data():
  """--dataset's data, or --labels_file's labels; ValueError, DownloadError
  or DatasetError naming what is wrong."""
  if _LABELS_FILE.value is None:
    return datasets.load(_DATASET.value, _DATA_DIR.value,
                         download=_DOWNLOAD.value)
  # Only when set to another value: an hparams.txt written before these flags
  # were left out of it sets them to their defaults.
  for flag in _DATASET_FLAGS:
    if flag.value != flag.default:
      print(f"WARNING: --{flag.name} is not used with --labels_file.",
            file=sys.stderr)
  path = _LABELS_FILE.value
  needed = _image_inputs(_spec_text())
  if needed:
    raise ValueError(
        f"--labels_file gives labels only, and {needed} is computed from "
        "MNIST/Fashion-MNIST's images: order or group by values of your own "
        "with --key_file=NAME=PATH.npy (one per sample), or use --dataset.")
  try:
    labels = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ValueError(f"--labels_file={path}: cannot read {path} as a .npy "
                     f"array: {e}") from None
  if not isinstance(labels, np.ndarray):  # an .npz archive of arrays
    labels.close()
    raise ValueError(f"--labels_file={path} is an .npz archive; give one "
                     "array saved with np.save.")
  return _OwnLabels(os.path.basename(path), labels)


def _other_partition(out, part):
  """What <out>/partition holds if it is a saved partition other than `part`
  (None if it is `part`, or holds none)."""
  saved = os.path.join(out, partition_lib.report.PARTITION_DIR)
  if not os.path.isfile(os.path.join(saved, "manifest.json")):
    return None
  try:
    previous = partition_lib.load(saved)
  except ValueError:
    return "a partition that no longer loads"
  if previous == part:
    return None
  describe = lambda p: (f"{p.spec or p.scheme} over {len(p)} clients, seed "
                        f"{p.seed}")
  if describe(previous) != describe(part):
    return describe(previous)
  # Described alike: say what differs.
  if previous.labels_fingerprint != part.labels_fingerprint:
    return f"{describe(previous)}, of other labels"
  if not partition_lib.core.keys_alike(previous.params.get("key"),
                                       part.params.get("key")):
    return f"{describe(previous)}, ordered by another key"
  return f"{describe(previous)}, with other samples"


def _files_of_no_partition(out):
  """The files this binary writes that <out> holds without a saved partition
  (<out>/partition/manifest.json) they could be the report of: someone
  else's, which writing would replace."""
  if os.path.isfile(os.path.join(out, partition_lib.report.PARTITION_DIR,
                                 "manifest.json")):
    return []
  written = partition_lib.report.files(out)[1:] + [
      os.path.join(out, rundir.HPARAMS_FILE)]
  return [os.path.basename(path) for path in written if os.path.lexists(path)]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _LIST_SCHEMES.value:
    print(partition_lib.registry.describe())
    return
  out = _OUTPUT_DIR.value
  if out is None:  # the flags' validator lets it be left out only here
    raise app.UsageError("--output_dir is required (or --list_schemes).")
  if os.path.exists(out) and not os.path.isdir(out):
    sys.exit(f"ERROR: --output_dir={out} is a file, not a directory; choose "
             "another path.")
  if rundir.is_run(out):
    sys.exit(f"ERROR: {out} holds a training run; writing a partition there "
             "would replace its hparams.txt and partition/, and the run could "
             "no longer be resumed. Choose another --output_dir.")
  try:
    spec_text = _spec_text()
    # Parses it: a bad spec fails before the data is read.
    own_clients = partition_lib.spec.makes_own_clients(spec_text)
    if own_clients and _NUM_CLIENTS.value != _NUM_CLIENTS.default:
      print("WARNING: --num_clients is not used: a natural spec makes its "
            "own clients (one per id, cluster or group).", file=sys.stderr)
    data = _data()
    keys = _key_files()
    with partition_lib.report.warnings_to(_print_warning):
      try:
        part = partition_lib.spec.resolve(
            spec_text, data.train_labels,
            partition_lib.spec.num_clients_for(spec_text,
                                               _NUM_CLIENTS.value),
            seed=_SEED.value, images=data.train_images, keys=keys)
      except ValueError as e:  # a value the scheme refuses, e.g. a policy
        if _SPEC.value:
          raise
        raise ValueError(f"--scheme={_SCHEME.value}: {e}") from None
  except (ValueError, download.DownloadError) as e:  # one line, no usage text
    sys.exit(f"ERROR: {e}")
  other = _other_partition(out, part)
  if other and not _OVERWRITE.value:
    sys.exit(f"ERROR: {out} holds another partition ({other}); pass "
             "--overwrite to replace it and its report, or choose another "
             "--output_dir.")
  strangers = _files_of_no_partition(out)
  if strangers and not _OVERWRITE.value:
    sys.exit(f"ERROR: {out} holds {', '.join(strangers)} but no saved "
             "partition they could report; pass --overwrite to replace "
             "them, or choose another --output_dir.")
  try:
    # Replaces the earlier partition and report (the same partition, or
    # --overwrite); anything other than a saved partition at
    # <output_dir>/partition is refused.
    with partition_lib.report.warnings_to(_print_warning):
      report = partition_lib.report.write(
          part, data.train_labels, out, images=data.train_images, keys=keys,
          plots=partition_lib.plots.available())
  except OSError as e:
    sys.exit(f"ERROR: cannot write to {out}: {e.strerror}")
  except ValueError as e:
    sys.exit(f"ERROR: {e}")
  with open(os.path.join(out, rundir.HPARAMS_FILE), "w") as f:
    f.write(_hparams(spec_text))
  print(f"{data.name}: {part}")
  print(f"spec: {part.spec}")
  print(report.table)
  print(f"partition: {report.partition_dir}")
  print("plots: " + (", ".join(report.plots) or "none (they need matplotlib: "
                     f"{partition_lib.plots.INSTALL_HINT})"))


def run() -> None:
  """The entry point of the console script and of experiments/partition.py.

  Their main module is not this one, whose flags absl's --help would then
  leave out: they are declared key flags of the running script first.
  """
  for flag in flags.FLAGS.get_flags_for_module(__name__):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main)


if __name__ == "__main__":
  run()

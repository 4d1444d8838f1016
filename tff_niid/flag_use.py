"""Which of experiments/train.py's flags a run ignores (no TensorFlow).

train.py warns when such a flag is set and leaves it out of the flags compared
on resume; grid.py leaves it out when it checks a finished cell's recorded
flags against the command it would run. Both read it here, so the two agree,
and grid.py need not import TensorFlow.
"""

from __future__ import annotations

from typing import Any, Mapping

from tff_niid import partition

ALGORITHMS = ("fedavg", "fedsgd", "fedprox", "fedavgm", "fedadam", "fedyogi",
              "dp_fedavg", "scaffold", "fednova")
# train.py's --algorithm default.
DEFAULT_ALGORITHM = "fedavg"

# The hyperparameters only some algorithms use; the others ignore them.
HYPERPARAMETER_USERS: dict[str, tuple[str, ...]] = {
    "client_lr": tuple(a for a in ALGORITHMS if a != "fedsgd"),
    "client_momentum": tuple(a for a in ALGORITHMS if a != "fedsgd"),
    "server_momentum": ("fedavgm",),
    "adaptive_beta1": ("fedadam", "fedyogi"),
    "adaptive_beta2": ("fedadam", "fedyogi"),
    "adaptive_epsilon": ("fedadam", "fedyogi"),
    "proximal_strength": ("fedprox",),
}
# Those of them that are a decay in [0, 1): at 1 a momentum (or moment)
# never forgets a step.
DECAYS = ("client_momentum", "server_momentum", "adaptive_beta1",
          "adaptive_beta2")

# The shortcut for a spec: --partition with --alpha and --min_size.
_SHORTCUT = ("partition", "alpha", "min_size")


def unused_flags(values: Mapping[str, Any]) -> dict[str, str]:
  """{flag: why the run ignores it} among the flags named in `values`.

  Args:
    values: {train.py flag name: value} of one run: its parsed flags, or the
      flags a command gives (then a flag not given counts as unset, and the
      algorithm as train.py's default, DEFAULT_ALGORITHM).

  Returns:
    The hyperparameters of other algorithms than --algorithm's; with
    --partition_spec or --partition_file, the shortcut --partition, --alpha
    and --min_size, and else those of --alpha and --min_size that
    --partition's scheme does not take (iid: both); with --partition_file
    or a natural --partition_spec, also --num_clients (the file holds the
    clients; natural makes its own).
  """
  algorithm = values.get("algorithm") or DEFAULT_ALGORITHM
  unused = {name: f"used by --algorithm={algorithm} (only by "
                  f"{', '.join(users)})"
            for name, users in HYPERPARAMETER_USERS.items()
            if name in values and algorithm not in users}
  if values.get("partition_spec") or values.get("partition_file"):
    unused.update({name: "used with --partition_spec or --partition_file (it "
                         "is a shortcut for a spec)"
                   for name in _SHORTCUT if name in values})
  elif (scheme := partition.registry.lookup(values.get("partition") or "")):
    unused.update({name: f"used by --partition={values['partition']} (it "
                         f"takes no {name})"
                   for name in _SHORTCUT if name != "partition" and
                   name in values and name not in scheme.param_names})
  if values.get("partition_file") and "num_clients" in values:
    unused["num_clients"] = ("used with --partition_file (the file holds the "
                             "clients)")
  elif (values.get("partition_spec") and "num_clients" in values and
        _makes_own_clients(values["partition_spec"])):
    unused["num_clients"] = ("used with a natural partition spec (it makes "
                             "its own clients: one per id, cluster or group)")
  return unused


def _makes_own_clients(spec: str) -> bool:
  try:
    return partition.spec.makes_own_clients(spec)
  except ValueError:  # a bad spec: refused where the partition is made
    return False

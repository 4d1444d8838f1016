"""Which of train.py's flags a run ignores (`flag_use`): train.py warns
about them and grid.py leaves them out of a finished cell's comparison."""

from tff_niid import flag_use


def test_hyperparameters_of_other_algorithms_are_unused():
  unused = flag_use.unused_flags({"algorithm": "fedavg", "client_lr": 0.1,
                                  "server_momentum": 0.9})
  assert unused == {"server_momentum": "used by --algorithm=fedavg (only by "
                                       "fedavgm)"}


def test_num_clients_is_unused_where_the_partition_has_its_clients():
  assert set(flag_use.unused_flags({"partition_file": "runs/p",
                                    "num_clients": 7})) == {"num_clients"}
  assert flag_use.unused_flags(
      {"partition_spec": "natural(ids=writer)+rotate", "num_clients": 7}) == {
          "num_clients": "used with a natural partition spec (it makes its "
                         "own clients: one per id, cluster or group)"}
  assert flag_use.unused_flags({"partition_spec": "dirichlet(alpha=0.5)",
                                "num_clients": 7}) == {}
  # A bad spec is refused where the partition is made, not here.
  assert flag_use.unused_flags({"partition_spec": "natural(",
                                "num_clients": 7}) == {}


def test_shortcut_values_its_scheme_does_not_take_are_unused():
  # --partition=iid --alpha=0.1 once trained IID with no word of the alpha.
  assert flag_use.unused_flags({"partition": "iid", "alpha": 0.1,
                                "min_size": 5}) == {
      "alpha": "used by --partition=iid (it takes no alpha)",
      "min_size": "used by --partition=iid (it takes no min_size)"}
  assert set(flag_use.unused_flags({"partition": "balanced_dirichlet",
                                    "alpha": 0.1, "min_size": 5})) == {
                                        "min_size"}
  assert flag_use.unused_flags({"partition": "dirichlet", "alpha": 0.1,
                                "min_size": 5}) == {}

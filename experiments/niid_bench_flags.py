"""The flags of NIID-Bench's client training, for the binaries that run it
outside train.py: niid_bench_torch.py (its FedAvg loop in PyTorch) and
client_update_check.py (one client's update, or a FedNova round of two,
in TFF and in that loop).

The defaults are NIID-Bench's published setting (Li et al. 2022, "Federated
Learning on Non-IID Data Silos: An Experimental Study", ICDE; as
configs/niid_bench_train.cfg): 10 parties, E=10, B=64, SGD lr 0.01,
momentum 0.9, weight decay 1e-5, FedAvg's clients (NIID-Bench's
`train_net`; --fedprox_mu > 0: FedProx's, its `train_net_fedprox`);
the partition is the one train.py draws for the same spec and seed.
"""

import dataclasses

from absl import flags

DATASET = flags.DEFINE_enum("dataset", "mnist", ["mnist", "fashion_mnist"],
                            "Dataset.")
DATA_DIR = flags.DEFINE_string("data_dir", None, "Directory with the idx "
                               "files (default as train.py's).")
PARTITION_SPEC = flags.DEFINE_string("partition_spec", "classes(k=1)",
                                     "Partition spec (as train.py's).")
NUM_CLIENTS = flags.DEFINE_integer("num_clients", 10, "Clients of the "
                                   "partition, all in every round.",
                                   lower_bound=1)
LOCAL_EPOCHS = flags.DEFINE_integer("local_epochs", 10, "Local epochs.",
                                    lower_bound=1)
BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Client batch size.",
                                  lower_bound=1)
CLIENT_LR = flags.DEFINE_float("client_lr", 0.01, "Client SGD learning rate.")
CLIENT_MOMENTUM = flags.DEFINE_float("client_momentum", 0.9,
                                     "Client SGD momentum.")
CLIENT_WEIGHT_DECAY = flags.DEFINE_float("client_weight_decay", 1e-5,
                                         "Client SGD weight decay.")
# Not train.py's --proximal_strength, which every train.py run carries (0.01
# by default) and only --algorithm=fedprox reads: here mu alone chooses.
FEDPROX_MU = flags.DEFINE_float(
    "fedprox_mu", 0.0, "FedProx's mu: > 0 trains every client as "
    "NIID-Bench's `train_net_fedprox`, adding (mu/2) ||w - w_global||^2 to "
    "each batch's loss; 0 (the default) as its `train_net`, FedAvg's.",
    lower_bound=0.0)
SEED = flags.DEFINE_integer("seed", 0, "Seed of the partition, the "
                            "initialisation and the shuffles.")


@dataclasses.dataclass(frozen=True)
class ClientTraining:
  """NIID-Bench's `train_net` settings: E epochs of SGD with momentum and
  weight decay, in batches of `batch_size`; with `fedprox_mu` > 0, its
  `train_net_fedprox`."""
  epochs: int
  batch_size: int
  lr: float
  momentum: float
  weight_decay: float
  fedprox_mu: float


# The .npz names of SCAFFOLD's control variates c and c_i, which
# client_update_check.py and niid_bench_torch_replay.py exchange: c's
# numbered per weight, as "weights" (`server_control_{i}`); c_i's per client
# k of the round, then per weight (`client_control_{k}_{i}`).
CONTROL_ARRAYS = ("server_control", "client_control")


def client_training() -> ClientTraining:
  """The client training the flags set."""
  return ClientTraining(LOCAL_EPOCHS.value, BATCH_SIZE.value, CLIENT_LR.value,
                        CLIENT_MOMENTUM.value, CLIENT_WEIGHT_DECAY.value,
                        FEDPROX_MU.value)

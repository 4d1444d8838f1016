"""NIID-Bench's FedAvg (or FedProx) as its own PyTorch code runs it, on a
tff_niid partition.

  make torch-env   # .venv-torch: CPU PyTorch (requirements/torch-lock.txt)
  PYTHONPATH=. .venv-torch/bin/python experiments/niid_bench_torch.py \
      --partition_spec='classes(k=1)' --seed=0 --experiment_name=mnist_c1_s0

The cross-framework check of the NIID-Bench grid (experiments/results/
README.md, section 2.1): the same cell as `configs/niid_bench_train.cfg`, but
trained the way Xtra-Computing/NIID-Bench's `experiments.py` trains it
(its `train_net`, `local_train_net` and FedAvg loop), in PyTorch instead of
TFF, so a gap between our TFF cells and PyTorch re-runs of NIID-Bench can be
told apart from a gap between frameworks:

- model: NIID-Bench's `SimpleCNNMNIST` (conv 6@5x5, max-pool, conv 16@5x5,
  max-pool, fc 120, 84, 10), PyTorch's default initialisation, seeded by
  `torch.manual_seed(--seed)`;
- clients: every round each of the partition's clients starts from the
  global model and runs `--local_epochs` epochs of `torch.optim.SGD(lr,
  momentum, weight_decay)` (a new optimizer each round, so momentum starts
  at zero) over its samples, reshuffled every epoch, in batches of
  `--batch_size` with a smaller last batch (DataLoader(shuffle=True,
  drop_last=False)); with `--fedprox_mu` > 0, FedProx's clients
  (`train_net_fedprox`: the loss plus (mu/2) ||w - w_global||^2);
- server: the new global model is the clients' models averaged with weights
  proportional to their sample counts; it is tested on the whole test set
  after every round.

Inputs are the pixels scaled to [0, 1] (NIID-Bench's `ToTensor()`); the
partition is `tff_niid.partition.spec.resolve(--partition_spec, ...,
seed=--seed)`, the one train.py draws for the same spec and seed (feature
noise, label noise and rotations are refused). `--seed` seeds the partition, the
initialisation and the shuffles: the same distribution as NIID-Bench's
`--init_seed`, not the same draws (NIID-Bench draws its clients' nets and
shuffles from one global stream). One thread (`--threads`). The output
directory holds metrics.csv and summary.json in train.py's format (so
`tff_niid.results` reads it) and a checkpoint after every round, from which
a killed run resumes where it stopped, to the same numbers on the same torch
build and thread count (a resume on another torch version is refused; the
thread count is a flag, compared with the rest). One process at a time per
output directory (`tff_niid.rundir.lock`, as train.py).
"""

import json
import os
import time
from typing import Any, NamedTuple, Optional

from absl import app
from absl import flags
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from experiments import niid_bench_flags
from tff_niid import checkout
from tff_niid import datasets
from tff_niid import partition as partition_lib
from tff_niid import rundir

_ROUNDS = flags.DEFINE_integer("rounds", 50, "Rounds.", lower_bound=1)
_THREADS = flags.DEFINE_integer("threads", 1, "torch threads.", lower_bound=1)
_ROOT_OUTPUT_DIR = flags.DEFINE_string("root_output_dir", "runs/torch",
                                       "Root of the output directories.")
_EXPERIMENT_NAME = flags.DEFINE_string("experiment_name", "niid_bench_torch",
                                       "Output directory name.")

_CHECKPOINT = "checkpoint.pt"


class Controls(NamedTuple):
  """SCAFFOLD's control variates, one tensor per model parameter: the
  server's c and a client's c_i."""
  server: list[torch.Tensor]
  client: list[torch.Tensor]


class SimpleCNNMNIST(nn.Module):
  """NIID-Bench's `SimpleCNNMNIST(input_dim=256, hidden_dims=[120, 84])`."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(1, 6, 5)
    self.pool = nn.MaxPool2d(2, 2)
    self.conv2 = nn.Conv2d(6, 16, 5)
    self.fc1 = nn.Linear(16 * 4 * 4, 120)
    self.fc2 = nn.Linear(120, 84)
    self.fc3 = nn.Linear(84, 10)

  def forward(self, x):
    x = self.pool(F.relu(self.conv1(x)))
    x = self.pool(F.relu(self.conv2(x)))
    x = x.view(-1, 16 * 4 * 4)
    x = F.relu(self.fc1(x))
    x = F.relu(self.fc2(x))
    return self.fc3(x)


def pixels(images: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


def epoch_batches(num_samples: int,
                  training: niid_bench_flags.ClientTraining,
                  generator: torch.Generator) -> list[torch.Tensor]:
  """The sample indices of a client's batches in one round, as NIID-Bench's
  DataLoader(shuffle=True, drop_last=False) draws them: per epoch a fresh
  shuffle cut into batches of `batch_size`, the last smaller."""
  return [batch for _ in range(training.epochs)
          for batch in torch.split(torch.randperm(num_samples,
                                                  generator=generator),
                                   training.batch_size)]


def local_train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                training: niid_bench_flags.ClientTraining,
                batches: list[torch.Tensor],
                controls: Optional[Controls] = None) -> None:
  """NIID-Bench's `train_net` for one client on the given batches, from the
  global model `model` holds: a new optimizer (momentum from zero), then one
  SGD step per batch. With `training.fedprox_mu` = mu > 0, its
  `train_net_fedprox`: each batch's loss also has (mu/2) ||w - w_global||^2,
  summed over the parameters as NIID-Bench writes it (the squared
  `torch.norm` of each parameter's difference). With `controls`, the client
  step of its `train_net_scaffold`: after each optimizer step, every
  parameter w <- w - lr * (c - c_i), outside the optimizer (its momentum
  and weight decay do not see it)."""
  optimizer = torch.optim.SGD(model.parameters(), lr=training.lr,
                              momentum=training.momentum,
                              weight_decay=training.weight_decay)
  mu = training.fedprox_mu
  global_weights = ([p.detach().clone() for p in model.parameters()] if mu
                    else [])
  model.train()
  for batch in batches:
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images[batch]), labels[batch])
    if mu:
      loss = loss + sum((mu / 2) * torch.norm(p - g) ** 2
                        for p, g in zip(model.parameters(), global_weights))
    loss.backward()
    optimizer.step()
    if controls is not None:
      with torch.no_grad():
        for p, c, c_i in zip(model.parameters(), controls.server,
                             controls.client):
          p.copy_(p - training.lr * (c - c_i))


def scaffold_controls(server: list[torch.Tensor],
                      clients: list[list[torch.Tensor]],
                      global_weights: list[torch.Tensor],
                      trained: list[list[torch.Tensor]], steps: list[int],
                      lr: float, num_parties: int
                      ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
  """NIID-Bench's SCAFFOLD controls after a round whose clients, starting
  from control variates `clients` (c_i each) and the server's `server` (c),
  each trained (`local_train` with their controls) `steps[i]` steps from
  `global_weights` to `trained[i]`: (the server's new c, each client's new
  c_i), with c_i_new = c_i - c + (x - y_i) / (steps_i * lr)
  (`train_net_scaffold`) and c_new = c + (sum_i (c_i_new - c_i)) /
  num_parties, the deltas summed from zero as `local_train_net_scaffold`
  sums them."""
  new_clients = [
      [c_i - c + (x - y) / (n * lr)
       for c_i, c, x, y in zip(client, server, global_weights, weights)]
      for client, weights, n in zip(clients, trained, steps)]
  new_server = []
  for key, c in enumerate(server):
    total_delta = torch.zeros_like(c)
    for new, old in zip(new_clients, clients):
      total_delta += new[key] - old[key]
    new_server.append(c + total_delta / num_parties)
  return new_server, new_clients


def fednova_normalised_update(global_weights: list[torch.Tensor],
                              weights: list[torch.Tensor], steps: int,
                              rho: float) -> tuple[float, list[torch.Tensor]]:
  """The end of NIID-Bench's `train_net_fednova`, after `steps` steps of SGD
  with momentum `rho` (`local_train`: its loop is `train_net`'s) from
  `global_weights` to `weights`: (a_i, d_i) with a_i = (tau - rho (1 -
  rho^tau) / (1 - rho)) / (1 - rho), a Python float, and d_i = (x - y) / a_i
  per parameter."""
  a = (steps - rho * (1 - pow(rho, steps)) / (1 - rho)) / (1 - rho)
  return a, [torch.true_divide(x - y, a)
             for x, y in zip(global_weights, weights)]


def fednova_server(global_weights: list[torch.Tensor], a_list: list[float],
                   d_list: list[list[torch.Tensor]],
                   n_list: list[int]) -> list[torch.Tensor]:
  """The server step of NIID-Bench's fednova branch, from the clients' a_i
  and d_i (`fednova_normalised_update`) and data sizes n_i:
  d = sum_i d_i n_i / n, coeff = sum_i a_i n_i / n, x <- x - coeff d, in
  NIID-Bench's order of operations."""
  total_n = sum(n_list)
  coeff = 0.0
  for a, n in zip(a_list, n_list):
    coeff = coeff + a * n / total_n
  new_weights = []
  for key, x in enumerate(global_weights):
    d_total = sum(d[key] * n / total_n for d, n in zip(d_list, n_list))
    new_weights.append(x - coeff * d_total)
  return new_weights


def _fedavg_round(global_model: nn.Module, local_model: nn.Module,
                  clients: list[tuple[torch.Tensor, torch.Tensor, float]],
                  training: niid_bench_flags.ClientTraining,
                  generator: torch.Generator) -> None:
  """One round over every client: each trains from the global model
  (`local_train`: FedAvg's client, or FedProx's); the global model becomes
  their average weighted by sample share."""
  global_state = {k: v.clone() for k, v in global_model.state_dict().items()}
  average = {k: torch.zeros_like(v) for k, v in global_state.items()}
  for images, labels, weight in clients:
    local_model.load_state_dict(global_state)
    local_train(local_model, images, labels, training,
                epoch_batches(len(labels), training, generator))
    for k, v in local_model.state_dict().items():
      average[k] += weight * v
  global_model.load_state_dict(average)


def _test(model: nn.Module, images: torch.Tensor,
          labels: torch.Tensor) -> tuple[float, float]:
  """(accuracy, mean cross-entropy) on the whole test set."""
  model.eval()
  with torch.no_grad():
    logits = torch.cat([model(x) for x in torch.split(images, 2000)])
  return ((logits.argmax(1) == labels).double().mean().item(),
          F.cross_entropy(logits, labels).item())


def _write_atomically(path: str, text: str) -> None:
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)


def _metrics_csv(rows: list[dict[str, Any]]) -> str:
  lines = [",".join(rows[0])]
  lines += [",".join(str(row[k]) for k in rows[0]) for row in rows]
  return "\n".join(lines) + "\n"


def _clients(data: datasets.Dataset, spec: str, num_clients: int, seed: int
             ) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
  """(images, labels, sample share) per client of the partition train.py
  draws for `spec` and `seed`; ValueError for noise or rotations, which
  this loop lacks."""
  part = partition_lib.spec.resolve(
      spec, data.train_labels,
      partition_lib.spec.num_clients_for(spec, num_clients), seed=seed,
      images=data.train_images)
  if (part.feature_noise is not None or part.noisy_labels is not None or
      part.rotation is not None):
    raise ValueError(f"{spec!r}: feature or label noise and rotations are "
                     "not supported here.")
  images = pixels(data.train_images)
  labels = torch.from_numpy(data.train_labels.astype(np.int64))
  total = sum(len(part[i]) for i in range(len(part)))
  return [(images[torch.from_numpy(part[i])],
           labels[torch.from_numpy(part[i])], len(part[i]) / total)
          for i in range(len(part))]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  torch.set_num_threads(_THREADS.value)
  out_dir = os.path.join(_ROOT_OUTPUT_DIR.value, _EXPERIMENT_NAME.value)
  try:
    run_lock = rundir.lock(out_dir)
  except rundir.RunDirError as e:
    raise app.UsageError(str(e)) from None
  with run_lock:
    _run(out_dir)


def _run(out_dir: str) -> None:
  """Trains (or resumes) the run in `out_dir`, whose lock the caller holds."""
  data = datasets.load(niid_bench_flags.DATASET.value,
                       niid_bench_flags.DATA_DIR.value)
  try:
    clients = _clients(data, niid_bench_flags.PARTITION_SPEC.value,
                       niid_bench_flags.NUM_CLIENTS.value,
                       niid_bench_flags.SEED.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  test_x = pixels(data.test_images)
  test_y = torch.from_numpy(data.test_labels.astype(np.int64))
  training = niid_bench_flags.client_training()

  torch.manual_seed(niid_bench_flags.SEED.value)
  global_model = SimpleCNNMNIST()
  generator = torch.Generator().manual_seed(niid_bench_flags.SEED.value)
  rows: list[dict[str, Any]] = []
  train_seconds = 0.0
  checkpoint_path = os.path.join(out_dir, _CHECKPOINT)
  hparams = {name: flags.FLAGS[name].value for name in (
      "dataset", "partition_spec", "num_clients", "rounds", "local_epochs",
      "batch_size", "client_lr", "client_momentum", "client_weight_decay",
      "fedprox_mu", "seed", "threads")}
  if os.path.exists(checkpoint_path):
    saved = torch.load(checkpoint_path)
    # Checkpoints from before the version was stored: the runs of this
    # machine's Debian torch, the only build they were made with.
    saved_torch = saved.get("torch", "1.13.0a0")
    if saved_torch != str(torch.__version__):
      raise app.UsageError(f"{out_dir} was trained with torch {saved_torch}, "
                           f"this is torch {torch.__version__}: a resume "
                           "would mix two builds' numerics; start over in "
                           "another --experiment_name.")
    # Checkpoints from before --fedprox_mu: FedAvg's clients.
    if dict({"fedprox_mu": 0.0}, **saved["hparams"]) != hparams:
      raise app.UsageError(f"{out_dir} holds a run with other flags: "
                           f"{saved['hparams']}")
    global_model.load_state_dict(saved["model"])
    generator.set_state(saved["generator"])
    rows, train_seconds = saved["rows"], saved["train_seconds"]
    print(f"resumed after round {len(rows)}", flush=True)
  _write_atomically(os.path.join(out_dir, "hparams.txt"),
                    "".join(f"--{k}={v}\n" for k, v in hparams.items()))

  local_model = SimpleCNNMNIST()
  for round_num in range(len(rows) + 1, _ROUNDS.value + 1):
    start = time.monotonic()
    _fedavg_round(global_model, local_model, clients, training, generator)
    seconds = time.monotonic() - start
    train_seconds += seconds
    accuracy, loss = _test(global_model, test_x, test_y)
    rows.append({"round": round_num, "round_seconds": seconds,
                 "test_accuracy": accuracy, "test_loss": loss})
    # metrics.csv first: a kill between the two leaves it a row ahead of the
    # checkpoint, and the resumed run rewrites that row with the same values.
    _write_atomically(os.path.join(out_dir, "metrics.csv"), _metrics_csv(rows))
    torch.save({"hparams": hparams, "torch": str(torch.__version__),
                "model": global_model.state_dict(),
                "generator": generator.get_state(), "rows": rows,
                "train_seconds": train_seconds}, checkpoint_path + ".tmp")
    os.replace(checkpoint_path + ".tmp", checkpoint_path)
    print(f"round {round_num}/{_ROUNDS.value} | test loss {loss:.4f} "
          f"acc {accuracy:.4f} | {seconds:.1f} s", flush=True)
  accuracies = [r["test_accuracy"] for r in rows]
  _write_atomically(os.path.join(out_dir, "summary.json"), json.dumps({
      "rounds_requested": _ROUNDS.value, "rounds_run": len(rows),
      "stopped": "completed", "train_seconds": train_seconds,
      "final_test_accuracy": accuracies[-1],
      "best_test_accuracy": max(accuracies),
      "framework": f"torch {torch.__version__}"}, indent=2))
  print("done", flush=True)


if __name__ == "__main__":
  checkout.require_own_checkout(__file__)
  app.run(main)

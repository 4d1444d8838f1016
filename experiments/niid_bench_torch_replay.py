"""Replays one client's local training (or a round of several clients) in
PyTorch, as niid_bench_torch.py.

  PYTHONPATH=. .venv-torch/bin/python experiments/niid_bench_torch_replay.py \
      --input=replay_in.npz --output=replay_out.npz

The PyTorch half of experiments/client_update_check.py, which writes the
input and reads the output: from the given initial weights, each client of
the round trains with NIID-Bench's `train_net` (`train_net_fedprox` with
`fedprox_mu` > 0; `train_net_scaffold` when given control variates;
`train_net_fednova`'s loop is `train_net`'s) as niid_bench_torch.py
transcribes it (`local_train`) over its given batches, once per horizon
(its first `horizons[i]` batches), each time from the initial weights, in
float32 and (if asked) again in float64, to show what float rounding alone
does. The round's new global model: one client's weights; with several,
their mean weighted by data size (FedAvg's and SCAFFOLD's server step in
NIID-Bench), or with `algorithm` "fednova" the server step of NIID-Bench's
fednova branch (`niid_bench_torch.fednova_normalised_update`,
`fednova_server`). SCAFFOLD's controls after the round are NIID-Bench's
(`niid_bench_torch.scaffold_controls`).

The weights are exchanged in Keras' layout (the order and shapes of
`tff_niid.models`' niid_cnn trainable variables) and converted here:
convolution kernels (h, w, in, out) <-> (out, in, h, w), dense kernels
transposed, and the first dense layer's inputs reordered, since Keras
flattens the (4, 4, 16) feature map height-width-channel and PyTorch
channel-height-width.

Input arrays: `weights_0`, `weights_1`, ... (Keras' layout); per client k
of the round, `x_{k}` (its model inputs, (samples, 28, 28, 1) float32, as
tff_niid makes them), `labels_{k}`, `order_{k}` and `batch_sizes_{k}` (its
batches' sample indices, concatenated, and their lengths); `algorithm`
("fedavg", "scaffold" or "fednova"), `horizons`, `precisions` (of
"float32" and "float64", trained in that order), and the fields of
`niid_bench_flags.ClientTraining` by name; for SCAFFOLD
(`train_net_scaffold`), also `server_control_{i}` (c) and per client k
`client_control_{k}_{i}` (its c_i), in Keras' layout, and `num_parties`.
Output, per precision and horizon, in Keras' layout:
`<precision>_horizon{h}_weights_{i}`, the round's new global model; for
SCAFFOLD also `..._server_control_{i}` and `..._client_control_{k}_{i}`, the
controls after the round; for FedNova also `..._fedavg_weights_{i}`,
FedAvg's server step over the same clients' models.
"""

import dataclasses
import re
from typing import Any, Optional

from absl import app
from absl import flags
import numpy as np
import torch

from experiments import niid_bench_flags
from experiments import niid_bench_torch
from tff_niid import checkout

_INPUT = flags.DEFINE_string("input", None, "The .npz to replay.",
                             required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the weights.",
                              required=True)

# SimpleCNNMNIST's first dense layer reads 16 channels of 4 x 4; its kernel
# is the fifth weight (after two convolutions' kernels and biases).
_FLAT_SHAPE = (4, 4, 16)
_FIRST_DENSE = 4

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_ALGORITHMS = ("fedavg", "scaffold", "fednova")


def _to_torch(weights: list[np.ndarray]) -> list[torch.Tensor]:
  """Keras-layout niid_cnn weights as SimpleCNNMNIST's parameters, in order."""
  out = []
  for i, w in enumerate(weights):
    if w.ndim == 4:  # convolution kernel
      w = w.transpose(3, 2, 0, 1)
    elif i == _FIRST_DENSE:  # reorder its inputs
      w = w.reshape(_FLAT_SHAPE + (-1,)).transpose(3, 2, 0, 1).reshape(
          w.shape[1], -1)
    elif w.ndim == 2:
      w = w.T
    out.append(torch.from_numpy(np.ascontiguousarray(w)))
  return out


def _as_torch(weights: list[np.ndarray], dtype: torch.dtype
              ) -> list[torch.Tensor]:
  """`_to_torch`, in `dtype`."""
  return [w.to(dtype) for w in _to_torch(weights)]


def _to_keras(params: list[torch.Tensor]) -> list[np.ndarray]:
  """The inverse of `_to_torch`."""
  out = []
  for i, p in enumerate(params):
    w = p.detach().numpy()
    if w.ndim == 4:
      w = w.transpose(2, 3, 1, 0)
    elif i == _FIRST_DENSE:
      h, wd, c = _FLAT_SHAPE
      w = w.reshape(-1, c, h, wd).transpose(2, 3, 1, 0).reshape(h * wd * c, -1)
    elif w.ndim == 2:
      w = w.T
    out.append(np.array(w))  # a copy: w may share the parameter's memory
  return out


def _train(model: torch.nn.Module, initial: list[torch.Tensor],
           x: torch.Tensor, labels: torch.Tensor,
           training: niid_bench_flags.ClientTraining,
           batches: list[torch.Tensor],
           controls: Optional[niid_bench_torch.Controls]
           ) -> list[torch.Tensor]:
  """`local_train` from `initial` over `batches`; the parameters after."""
  with torch.no_grad():
    for param, value in zip(model.parameters(), initial):
      param.copy_(value)
  niid_bench_torch.local_train(model, x, labels, training, batches, controls)
  return [p.detach().clone() for p in model.parameters()]


def _mean_by_data_size(trained: list[list[torch.Tensor]],
                       sizes: list[int]) -> list[torch.Tensor]:
  """The clients' models averaged by their data sizes: FedAvg's server step
  (niid_bench_torch's `_fedavg_round`), which SCAFFOLD's branch takes
  too."""
  total = sum(sizes)
  mean = [torch.zeros_like(w) for w in trained[0]]
  for weights, share in zip(trained, (n / total for n in sizes)):
    for m, w in zip(mean, weights):
      m += share * w
  return mean


def _fednova_server(start: list[torch.Tensor],
                    trained: list[list[torch.Tensor]], sizes: list[int],
                    steps: list[int], training: niid_bench_flags.ClientTraining
                    ) -> list[torch.Tensor]:
  """FedNova's new global model from `start` after the clients trained
  `steps[i]` steps to `trained[i]`."""
  normalised = [niid_bench_torch.fednova_normalised_update(
      start, weights, n, training.momentum)
                for weights, n in zip(trained, steps)]
  return niid_bench_torch.fednova_server(
      start, [a for a, _ in normalised], [d for _, d in normalised], sizes)


def _numbered(given: Any, name: str) -> list[np.ndarray]:
  """The arrays `name`_0, `name`_1, ... of an .npz."""
  return [given[f"{name}_{i}"] for i in
          range(sum(re.fullmatch(rf"{name}_\d+", f) is not None
                    for f in given.files))]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  torch.set_num_threads(1)
  given = np.load(_INPUT.value)
  initial = _numbered(given, "weights")
  training = niid_bench_flags.ClientTraining(**{
      field.name: given[field.name].item()
      for field in dataclasses.fields(niid_bench_flags.ClientTraining)})
  # (N, 28, 28, 1) to (N, 1, 28, 28) with a new axis, as niid_bench_torch's
  # `pixels`: a transposed array would keep channels-last strides, which
  # torch carries through the convolutions to SimpleCNNMNIST's `view`.
  clients = [
      (torch.from_numpy(np.ascontiguousarray(x[..., 0])).unsqueeze(1),
       torch.from_numpy(labels.astype(np.int64)),
       torch.split(torch.from_numpy(order), batch_sizes.tolist()))
      for x, labels, order, batch_sizes in zip(*(
          _numbered(given, name)
          for name in ("x", "labels", "order", "batch_sizes")))]
  # Typed Any: numpy's stub reads a **dict[str, ndarray] as possibly holding
  # savez's `allow_pickle`.
  out: dict[str, Any] = {}
  model = niid_bench_torch.SimpleCNNMNIST()
  # Per precision, the start and, for SCAFFOLD, the server's control and
  # each client's; in float64, _to_torch's float32 values converted: the
  # same start.
  algorithm = given["algorithm"].item()
  if algorithm not in _ALGORITHMS:
    raise app.UsageError(f"algorithm {algorithm!r}: not one of {_ALGORITHMS}")
  server_control, client_control = niid_bench_flags.CONTROL_ARRAYS
  given_controls = []  # c, then each client's c_i
  if algorithm == "scaffold":
    given_controls = [_numbered(given, server_control), *(
        _numbered(given, f"{client_control}_{k}")
        for k in range(len(clients)))]
    if any(len(values) != len(initial) for values in given_controls):
      raise app.UsageError("SCAFFOLD needs c and every client's c_i, each "
                           f"of {len(initial)} arrays.")
  starts = {}
  for precision in given["precisions"].tolist():
    dtype = _DTYPES[precision]
    starts[precision] = (
        _as_torch(initial, dtype),
        (_as_torch(given_controls[0], dtype),
         [_as_torch(values, dtype) for values in given_controls[1:]])
        if given_controls else None)
  sizes = [len(labels) for _, labels, _ in clients]
  for horizon in given["horizons"].tolist():
    steps = [min(horizon, len(batches)) for _, _, batches in clients]
    for precision, (start, controls) in starts.items():
      dtype = _DTYPES[precision]
      trained = [_train(model.to(dtype), start, x.to(dtype), labels, training,
                        batches[:horizon],
                        None if controls is None else
                        niid_bench_torch.Controls(controls[0], controls[1][k]))
                 for k, (x, labels, batches) in enumerate(clients)]
      named = {"weights": (trained[0] if len(clients) == 1 else
                           _mean_by_data_size(trained, sizes))}
      if algorithm == "fednova":
        named = {"weights": _fednova_server(start, trained, sizes, steps,
                                            training),
                 "fedavg_weights": named["weights"]}
      if controls is not None:
        new_server, new_clients = niid_bench_torch.scaffold_controls(
            controls[0], controls[1], start, trained, steps, training.lr,
            int(given["num_parties"]))
        named[server_control] = new_server
        named.update((f"{client_control}_{k}", values)
                     for k, values in enumerate(new_clients))
      for name, values in named.items():
        for i, w in enumerate(_to_keras(values)):
          out[f"{precision}_horizon{horizon}_{name}_{i}"] = w
  np.savez(_OUTPUT.value, **out)


if __name__ == "__main__":
  checkout.require_own_checkout(__file__)
  app.run(main)

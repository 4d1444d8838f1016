"""The interface of a process whose clients keep state between rounds.

A TFF learning process takes a round's client data alone, so its clients
cannot remember anything from one round to the next. An algorithm whose
clients do (SCAFFOLD's control variates, `tff_niid.scaffold`) keeps every
client's state in the process state and needs to know which clients a
round's data belongs to. `ClientStateProcess` is that contract: the training
loop (`training.train`) and the round inputs (`clientdata.RoundInputs`) run
any subclass as they run a learning process, passing it the round's client
positions (0..num_clients-1, the order of the ClientData's `client_ids`)
besides their data. A new algorithm with per-client state subclasses it and
returns an instance from its branch of `algorithms.build_process`.
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import abc
from typing import Any, Sequence

import tensorflow_federated as tff


class ClientStateProcess(abc.ABC):
  """A process whose state holds every client's state besides the server's.

  The state is whatever the subclass keeps, in values that
  `tff.program.FileProgramStateManager` saves and loads (numpy arrays and
  nested structures of them), so a run resumes from its checkpoints.
  """

  num_clients: int
  """How many clients the state holds: the ClientData's clients."""

  @abc.abstractmethod
  def initialize(self) -> Any:
    """The state before round 1."""

  @abc.abstractmethod
  def next(self, state: Any, client_data: Sequence[Any],
           client_positions: Sequence[int]
           ) -> tff.learning.templates.LearningProcessOutput:
    """One round on `client_data` of the clients at `client_positions`
    (distinct, in [0, num_clients)); `state` is left unchanged. The metrics
    are those of a TFF learning process (`client_work/train`,
    `finalizer/update_non_finite`)."""

  @abc.abstractmethod
  def with_dataset_computation(self, dataset_computation: Any
                               ) -> ClientStateProcess:
    """This process with its client datasets built by `dataset_computation`
    from its arguments, on the workers (as
    `tff.simulation.compose_dataset_computation_with_learning_process`
    composes a learning process)."""

  @abc.abstractmethod
  def get_model_weights(self, state: Any
                        ) -> tff.learning.models.ModelWeights:
    """The server model of `state`."""

  @abc.abstractmethod
  def get_hparams(self, state: Any) -> Any:
    """The hyperparameters `state` records (as a TFF learning process's
    `get_hparams` names them), which a resume compares."""

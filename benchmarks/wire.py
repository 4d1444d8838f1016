"""What a TFF program sends its workers: the values it creates on them.

Every value a round needs -- the computation, the server state, the clients'
data or ids -- reaches a worker as a `CreateValueRequest` of TFF's remote
executor stub, on one or several workers alike. `recorded_requests()` keeps
those requests for inspection and byte counts.
"""

import contextlib
from typing import Any, Iterator

import tensorflow_federated as tff

_STUB = tff.framework.RemoteExecutorGrpcStub


@contextlib.contextmanager
def recorded_requests() -> Iterator[list[Any]]:
  """Within the block, every `CreateValueRequest` sent is appended to the
  yielded list (before it is sent)."""
  requests: list[Any] = []
  create_value = _STUB.create_value

  def recording(stub, request):
    requests.append(request)
    return create_value(stub, request)

  _STUB.create_value = recording
  try:
    yield requests
  finally:
    _STUB.create_value = create_value


def value_kinds(value: Any) -> Iterator[str]:
  """The kinds (`tensor`, `sequence`, `struct`, ...) of a serialized value
  and of every value nested in it."""
  kind = value.WhichOneof("value")
  yield kind
  if kind == "federated":
    for member in value.federated.value:
      yield from value_kinds(member)
  elif kind == "struct":
    for element in value.struct.element:
      yield from value_kinds(element.value)


def sent_bytes(requests: list[Any]) -> dict[str, int]:
  """Serialized bytes of `requests` by kind of value: `computation` (the
  program, sent every round) and `values` (state, client data or ids)."""
  sizes = {"computation": 0, "values": 0}
  for request in requests:
    kind = request.value.WhichOneof("value")
    sizes["computation" if kind == "computation" else "values"] += (
        request.ByteSize())
  return sizes

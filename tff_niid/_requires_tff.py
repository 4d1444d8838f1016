"""Imported first by every module of the TFF layer, so that without TensorFlow
Federated the import fails with one clear message instead of a traceback into
a missing module. The numpy core (`tff_niid.partition`, `tff_niid.datasets`,
`tff_niid.results`) never imports this."""

try:
  import tensorflow_federated  # pylint: disable=unused-import
except ModuleNotFoundError as error:
  raise ModuleNotFoundError(
      f"This part of tff_niid (the TFF layer: clientdata, models, algorithms, "
      f"training, ...) needs TensorFlow Federated ({error.name!r} is not "
      "installed). TFF 0.87, its last release, installs only on Python "
      "3.9-3.11, and only from the project's lock (its own pins name a "
      "jaxlib that PyPI does not have): `make env` in a clone, or on Python "
      "3.11 `pip install --no-deps -r requirements/py311-lock.txt` then "
      "`pip install --no-deps tff_niid` (BUILD_NOTES.md). tff_niid.partition, "
      "tff_niid.datasets and tff_niid.results work without it.",
      name=error.name) from error

"""One training experiment: from its configuration to its run directory.

`run(config, flagfile=...)` is everything experiments/train.py does after
parsing its flags:

  1. load the dataset and build the partition (a spec, or a saved partition
     checked against the dataset's labels), check the algorithm's
     hyperparameters: `ConfigError` before anything is written;
  2. lock the run directory and check that it holds nothing or this run
     (`tff_niid.rundir`: `RunDirError`, and nothing is changed);
  3. record the flags (hparams.txt) and, at the run's first start, the
     partition report (`partition.report`) and the run identity;
  4. build the process, evaluator and loop, and train or resume
     (`training.train`), locally or on `workers`.
"""

from __future__ import annotations

from tff_niid import _requires_tff  # pylint: disable=g-bad-import-order,unused-import

import contextlib
import dataclasses
import functools
import os
from typing import Any, Callable, Optional, Sequence

from tff_niid import algorithms
from tff_niid import clientdata
from tff_niid import datasets
from tff_niid import download
from tff_niid import evaluation
from tff_niid import models
from tff_niid import partition as partition_lib
from tff_niid import rundir
from tff_niid import training
from tff_niid import workers

# Test images a smoke run evaluates on: it checks the path, not the model.
_SMOKE_TEST_IMAGES = 1000


class ConfigError(ValueError):
  """The configuration cannot run (bad data, partition or values); nothing
  was written. The message is one line."""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """One experiment (experiments/train.py's flags, by the same names).

  The partition is `partition_spec` (`partition.spec`, resolved with
  `num_clients`, which a natural spec does not use, and `loop.seed`) or
  `partition_file` (a saved partition):
  exactly one is given. `loop.seed` also seeds the model initialisation and
  the feature noise; with redrawn feature noise
  (`Partition.feature_noise_redraw`) the test set is evaluated as one noisy
  copy per client, as NIID-Bench does, and with rotations
  (`Partition.rotation`) once per client's angle (`evaluation.Evaluator`).
  `smoke` cuts the loop to `LoopConfig.smoke()` and the test set to its
  first 1,000 images.
  """
  output_dir: str
  loop: training.LoopConfig
  hparams: algorithms.Hyperparameters = algorithms.Hyperparameters()
  algorithm: str = "fedavg"
  model: str = "cnn"
  initializer: str = models.DEFAULT_INITIALIZER  # `models.INITIALIZERS`
  dataset: str = "mnist"
  data_dir: Optional[str] = None
  download: bool = False
  partition_spec: Optional[str] = None
  partition_file: Optional[str] = None
  num_clients: int = 100
  client_eval: bool = False
  dp_delta: Optional[float] = None  # default 1 / number of clients
  workers: Optional[str] = None  # `workers.parse_workers_flag`
  smoke: bool = False
  quiet: bool = False

  def __post_init__(self):
    if (self.partition_spec is None) == (self.partition_file is None):
      raise ValueError("give exactly one of partition_spec and "
                       "partition_file.")
    if self.workers:  # its syntax, before a run directory is written
      try:
        workers.read_workers_flag(self.workers)
      except ValueError as e:
        raise ConfigError(str(e)) from None

  @property
  def seed(self) -> int:
    return self.loop.seed

  @classmethod
  def from_flag_values(cls, values: dict[str, Any]) -> ExperimentConfig:
    """The experiment experiments/train.py's flag values describe.

    Fields take the flag of their name; the output directory is
    <root_output_dir>/<experiment_name>; without --partition_spec or
    --partition_file, the partition is the spec --partition, --alpha and
    --min_size stand for (`partition_spec_of_flags`); the client weighting
    defaults to the algorithm's (`algorithms.default_client_weighting`).
    """
    return _from_values(
        cls, values,
        output_dir=os.path.join(values["root_output_dir"],
                                values["experiment_name"]),
        partition_spec=partition_spec_of_flags(values),
        hparams=_from_values(
            algorithms.Hyperparameters, values, client_weighting=(
                values["client_weighting"] or
                algorithms.default_client_weighting(values["algorithm"]))),
        loop=_from_values(training.LoopConfig, values))


def partition_spec_of_flags(values: dict[str, Any]) -> Optional[str]:
  """--partition_spec, else (without --partition_file) the spec of the
  shortcut --partition with --alpha and --min_size; ValueError if that
  scheme cannot take them."""
  if values.get("partition_spec") or values.get("partition_file"):
    return values.get("partition_spec")
  try:
    return partition_lib.spec.shortcut(
        values["partition"], alpha=values["alpha"],
        min_size=values["min_size"])
  except ValueError as e:
    scheme = partition_lib.registry.lookup(values["partition"])
    hint = (f" Give its parameters with --partition_spec, e.g. "
            f"--partition_spec='{scheme.example}'." if scheme else "")
    raise ValueError(f"--partition={values['partition']}: {e}{hint}"
                     ) from None


def _from_values(cls: Any, values: dict[str, Any], **others: Any) -> Any:
  """A `cls` dataclass whose fields named in `values` take those values
  (the rest: `others`, else their defaults)."""
  named = {f.name: values[f.name] for f in dataclasses.fields(cls)
           if f.name in values}
  return cls(**dict(named, **others))


def _saved_partition(config: ExperimentConfig,
                     data: datasets.Dataset) -> partition_lib.Partition:
  """The partition at `config.partition_file`, made from `data`'s training
  labels; else ConfigError naming the flag, and where it can tell, the fix:
  the partition/ of a partition report, or the dataset it was made from."""
  path = str(config.partition_file)
  where = f"--partition_file={path}"
  report = os.path.join(path, partition_lib.report.PARTITION_DIR)
  try:
    part = partition_lib.load(path)
  except ValueError as e:
    if os.path.isfile(os.path.join(report, "manifest.json")):
      raise ConfigError(f"{where} holds a partition report, whose partition "
                        f"is in its partition/: pass --partition_file="
                        f"{report}.") from None
    raise ConfigError(f"{where}: {e}") from None
  try:
    part.check_labels(data.train_labels)
  except ValueError as e:
    for other in sorted(set(datasets.DIRNAMES) - {data.name}):
      try:
        labels = datasets.load(other, config.data_dir).train_labels
      except datasets.DatasetError:
        continue  # not at hand: the message cannot tell
      if partition_lib.fingerprint(labels) == part.labels_fingerprint:
        raise ConfigError(f"{where} was made from {other}'s training labels, "
                          f"not {data.name}'s: pass --dataset={other}."
                          ) from None
    raise ConfigError(f"{where}: {e}") from None
  return part


def _inputs(config: ExperimentConfig) -> tuple[datasets.Dataset,
                                               partition_lib.Partition]:
  """The dataset and partition to train on, or ConfigError."""
  try:
    algorithms.validate(config.algorithm, config.hparams)
    data = datasets.load(config.dataset, config.data_dir,
                         download=config.download)
    if config.partition_spec is None:
      part = _saved_partition(config, data)
    else:
      part = partition_lib.spec.resolve(
          config.partition_spec, data.train_labels,
          partition_lib.spec.num_clients_for(config.partition_spec,
                                             config.num_clients),
          seed=config.seed, images=data.train_images)
  except (ValueError, download.DownloadError) as e:
    raise ConfigError(str(e)) from None
  if config.loop.clients_per_round > len(part):
    raise ConfigError(f"--clients_per_round={config.loop.clients_per_round} "
                      f"exceeds the partition's {len(part)} clients.")
  return data, part


def _execution(config: ExperimentConfig,
               log: Callable[[str], None]) -> contextlib.AbstractContextManager:
  """Where TFF computations run: `config.workers`, else a local worker
  (started by `algorithms.build_process`, built inside this context)."""
  if not config.workers:
    return contextlib.nullcontext()
  try:
    addresses, _ = workers.parse_workers_flag(
        config.workers, log_dir=os.path.join(config.output_dir, "worker_logs"))
  except ValueError as e:
    raise ConfigError(str(e)) from None
  log(f"running on TFF workers {', '.join(addresses)}")
  return workers.use_workers(addresses)


def _train(config: ExperimentConfig, data: datasets.Dataset,
           part: partition_lib.Partition,
           log: Callable[[str], None]) -> dict[str, Any]:
  """Trains on `part` of `data` in `config.output_dir` (locked by the
  caller); returns `training.train`'s summary."""
  client_data = clientdata.to_client_data(part, data.train_images,
                                          data.train_labels,
                                          feature_noise_seed=config.seed)
  test_count = (_SMOKE_TEST_IMAGES if config.smoke else
                len(data.test_labels))
  test_images = data.test_images[:test_count]
  test_labels = data.test_labels[:test_count]
  client_test = (partition_lib.match_test(part, data.train_labels,
                                          test_labels, seed=config.seed)
                 if config.client_eval else None)
  # Redrawn feature noise: NIID-Bench's test set, one noisy copy per client;
  # rotations: one rotated copy per client's angle.
  evaluator = evaluation.Evaluator(
      config.model, test_images, test_labels,
      client_test_partition=client_test,
      noisy_copy_stds=(part.feature_noise if part.feature_noise_redraw else
                       None),
      noise_seed=config.seed, rotations=part.rotation)
  accountant = None
  if config.algorithm == "dp_fedavg":
    noise_multiplier = config.hparams.dp_noise_multiplier
    assert noise_multiplier is not None  # algorithms.validate checked it
    accountant = algorithms.PrivacyAccountant(
        noise_multiplier, len(part), config.loop.clients_per_round,
        config.dp_delta or 1.0 / len(part))
  loop = config.loop.smoke() if config.smoke else config.loop
  with _execution(config, log):
    # Built in the chosen context, so that no local worker is started for
    # it (`algorithms.build_process`).
    process = algorithms.build_process(
        config.algorithm,
        models.build_model_fn(config.model, clientdata.BATCH_SPEC,
                              seed=config.seed,
                              initializer=config.initializer), config.hparams,
        num_clients=len(part))
    summary = training.train(process, client_data, loop,
                             output_dir=config.output_dir,
                             evaluator=evaluator, accountant=accountant,
                             log=log, quiet=config.quiet)
  final = summary["final_test_accuracy"]
  log(f"done ({summary['stopped']}): {summary['rounds_run']} rounds, final "
      f"test accuracy {final if final is None else round(final, 4)}"
      + (f", rounds to {loop.target_accuracy}: "
         f"{summary['rounds_to_target'] or 'not reached'}"
         if loop.target_accuracy is not None else "")
      + (f", epsilon {summary['dp_epsilon']:.3f} at delta "
         f"{summary['dp_delta']:.2g}" if "dp_epsilon" in summary else "")
      + f". Results in {os.path.abspath(config.output_dir)}")
  return summary


def check(config: ExperimentConfig) -> str:
  """Step 1 of `run` alone: loads the data, builds the partition and checks
  the hyperparameters; writes nothing and trains nothing.

  Returns:
    `run`'s line on the data and partition ("mnist: Partition(...)").

  Raises:
    ConfigError: as `run`, except that `workers` is not checked.
  """
  data, part = _inputs(config)
  return f"{data.name}: {part}"


def run(config: ExperimentConfig, *, flagfile: str,
        unused_flags: Sequence[str] = (),
        log: Callable[[str], None] = functools.partial(print, flush=True)
        ) -> dict[str, Any]:
  """Runs the experiment, or resumes it from its run directory.

  Args:
    config: the experiment.
    flagfile: the command that made `config`, as a flagfile
      (`rundir.binary_flagfile()`): recorded as the run's hparams.txt,
      and compared with the one recorded when resuming, which may differ
      only in `rundir.RESUMABLE_FLAGS` and `unused_flags`.
    unused_flags: flags of `flagfile` that `config` does not use (another
      algorithm's hyperparameters, the shortcut of a spec given).
    log: callable for the progress lines.

  Returns:
    The run's summary (`training.train`, also in summary.json).

  Raises:
    ConfigError: bad data, partition, hyperparameters or workers (before
      anything is written, except for a bad `workers`).
    rundir.RunDirError: the run directory is locked by another process, or
      holds a run with other flags, data or partition; nothing was changed.
    training.TrainingDivergedError, KeyboardInterrupt: as `training.train`
      (the last good round's state is kept).
  """
  warned = lambda message: log(f"WARNING: {message}")
  with partition_lib.report.warnings_to(warned):
    data, part = _inputs(config)
  # Nothing is written into output_dir before it is locked and its run, if
  # any, checked to be this one.
  with rundir.lock(config.output_dir):
    rundir.check_resume(config.output_dir, flagfile, data, part,
                        resumable=(*rundir.RESUMABLE_FLAGS,
                                   *unused_flags),
                        rounds=config.loop.rounds)
    rundir.write_hparams(config.output_dir, flagfile)
    rundir.record_machine(config.output_dir)
    log(f"{data.name}: {part}")
    # The first start; a run from before identities (a partition saved
    # there was checked by check_resume to be this one); or a run moved
    # without its partition (`rundir.copy_resumable`; check_resume compared
    # the partition with the identity's checksum).
    if not (rundir.has_identity(config.output_dir) and os.path.isdir(
        os.path.join(config.output_dir, rundir.PARTITION_DIR))):
      with partition_lib.report.warnings_to(warned):
        log(partition_lib.report.write(part, data.train_labels,
                                       config.output_dir,
                                       images=data.train_images).table)
      rundir.record_identity(config.output_dir, data, part)
    return _train(config, data, part, log)

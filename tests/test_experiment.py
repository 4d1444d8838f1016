"""tff_niid.experiment.run in process: what experiments/train.py does once
its flags are parsed (the binary itself: test_train_binary)."""

import os
import shutil

import pytest

import files
from tff_niid import experiment
from tff_niid import partition as partition_lib
from tff_niid import results
from tff_niid import rundir
from tff_niid import training

# What train.py records as hparams.txt; rounds may change on resume.
FLAGFILE = "--client_lr=0.05\n--rounds={rounds}\n"


def _config(run_dir, rounds=2, **changes):
  return experiment.ExperimentConfig(**dict(
      dict(output_dir=str(run_dir), num_clients=10, model="logreg",
           partition_spec="classes(k=2)",
           loop=training.LoopConfig(rounds=rounds, clients_per_round=3,
                                    batch_size=10,
                                    max_examples_per_client=50)),
      **changes))


def _run(run_dir, rounds=2, flagfile=None, **changes):
  """(summary, logged lines) of experiment.run."""
  lines: list[str] = []
  summary = experiment.run(
      _config(run_dir, rounds, **changes),
      flagfile=flagfile or FLAGFILE.format(rounds=rounds), log=lines.append)
  return summary, lines


def _without_lock(snapshot):
  # Every start takes the lock, writing its pid, before it checks anything.
  return {k: v for k, v in snapshot.items() if k != rundir.LOCK_FILE}


def test_first_start_writes_the_run_and_a_resume_continues_it(mnist,
                                                              tmp_path):
  run_dir = tmp_path / "run"
  summary, lines = _run(run_dir)
  assert summary["rounds_run"] == 2 and summary["stopped"] == "completed"
  assert lines[0].startswith("mnist: Partition(scheme='label_quantity'")
  report = (run_dir / "partition_summary.txt").read_text()
  assert lines[1] + "\n" == report and "js_mean" in report
  assert lines[-1].startswith("done (completed): 2 rounds, final test "
                              "accuracy ")
  assert (run_dir / "hparams.txt").read_text() == FLAGFILE.format(rounds=2)
  assert rundir.has_identity(str(run_dir))
  saved = partition_lib.load(str(run_dir / "partition"),
                             labels=mnist.train_labels)
  assert saved.spec == "label_quantity(classes_per_client=2)"
  for name in ("label_mix", "sizes", "divergence"):
    assert (run_dir / f"partition_{name}.png").exists()

  report_written = os.stat(run_dir / "partition_summary.txt").st_mtime_ns
  summary, lines = _run(run_dir, rounds=3)
  assert f"resuming after round 2 from {run_dir / 'checkpoints'}" in lines
  assert "js_mean" not in "".join(lines)  # the report is the first start's
  assert os.stat(run_dir / "partition_summary.txt").st_mtime_ns == (
      report_written)
  assert [row["round"] for row in results.read_metrics(str(run_dir))] == [
      1, 2, 3]
  assert summary["rounds_run"] == 3


def test_the_partitions_caveats_are_logged_as_lines(mnist, tmp_path,
                                                   recwarn):
  del mnist  # run reads the files
  _, lines = _run(tmp_path / "run", rounds=1, num_clients=3, partition_spec=(
      "label_quantity(class_assignment=deterministic, classes_per_client=2)"))
  warned = [line for line in lines if line.startswith("WARNING: ")]
  assert len(warned) == 1 and warned[0].startswith(
      "WARNING: label_quantity(class_assignment=deterministic): no client "
      "holds label(s) 4, 5, 6, 7, 8, 9; their ")
  assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_partition_report_points_at_its_partition(mnist, tmp_path):
  # What tff-niid-partition --output_dir=DIR writes: the partition is in
  # DIR/partition.
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  partition_lib.report.write(part, mnist.train_labels, str(tmp_path / "out"),
                             plots=False)
  with pytest.raises(experiment.ConfigError) as e:
    _run(tmp_path / "run", partition_spec=None,
         partition_file=str(tmp_path / "out"))
  assert str(e.value) == (
      f"--partition_file={tmp_path / 'out'} holds a partition report, whose "
      f"partition is in its partition/: pass --partition_file="
      f"{tmp_path / 'out' / 'partition'}.")


def test_a_saved_partition_resumes_from_another_path(mnist, tmp_path):
  # Identified by content, as the data is: a copy elsewhere resumes the run,
  # other content at the same path does not.
  part = partition_lib.spec.resolve("classes(k=2)", mnist.train_labels, 10,
                                    seed=0)
  first, moved = str(tmp_path / "a"), str(tmp_path / "b")
  part.save(first)
  shutil.copytree(first, moved)
  run_dir = tmp_path / "run"
  _run(run_dir, rounds=1, partition_spec=None, partition_file=first,
       flagfile=f"--partition_file={first}\n--rounds=1\n")
  _, lines = _run(run_dir, rounds=2, partition_spec=None,
                  partition_file=moved,
                  flagfile=f"--partition_file={moved}\n--rounds=2\n")
  assert f"resuming after round 1 from {run_dir / 'checkpoints'}" in lines
  partition_lib.iid(mnist.train_labels, 10, seed=0).save(first,
                                                         overwrite=True)
  with pytest.raises(rundir.RunDirError, match="another partition"):
    _run(run_dir, rounds=3, partition_spec=None, partition_file=first,
         flagfile=f"--partition_file={first}\n--rounds=3\n")


def test_a_start_that_is_not_the_run_changes_nothing(mnist, tmp_path):
  del mnist  # run reads the files
  run_dir = tmp_path / "run"
  _run(run_dir, rounds=1)
  before = _without_lock(files.snapshot(run_dir))
  with pytest.raises(rundir.RunDirError, match=r"other flags "
                     r"\(--client_lr=0.05->0.1\)"):
    _run(run_dir, rounds=1, flagfile="--client_lr=0.1\n--rounds=1\n")
  with pytest.raises(rundir.RunDirError, match="another partition"):
    _run(run_dir, rounds=1, partition_spec="classes(k=3)")
  _run(run_dir, rounds=2)
  before = _without_lock(files.snapshot(run_dir))
  # Fewer rounds than run: once accepted, leaving hparams.txt asking for 1
  # beside 2 rows of metrics.
  with pytest.raises(rundir.RunDirError) as e:
    _run(run_dir, rounds=1)
  assert str(e.value) == (
      f"{run_dir} holds a run that has run 2 rounds, more than --rounds=1; "
      "resume it with --rounds >= 2, or use another --experiment_name.")
  assert _without_lock(files.snapshot(run_dir)) == before


@pytest.mark.parametrize("changes,message", [
    (dict(partition_spec="classes(kk=2)"), "no parameter 'kk'"),
    (dict(num_clients=2, partition_spec="iid"), "--clients_per_round=3 "
     "exceeds the partition's 2 clients."),
    (dict(dataset="fashion_mnist", data_dir="/nonexistent"),
     "fashion_mnist not found"),
    (dict(partition_spec=None, partition_file="/nonexistent"),
     "--partition_file=/nonexistent: not a saved partition"),
])
def test_a_config_that_cannot_run_writes_nothing(mnist, tmp_path, changes,
                                                 message):
  del mnist  # run reads the files
  with pytest.raises(experiment.ConfigError, match=message):
    _run(tmp_path / "run", **changes)
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("value", ["local:0", "foo", "local:x"])
def test_a_bad_workers_value_is_refused_with_the_config(tmp_path, value):
  # Once found only after the run directory was written, which then
  # refused a corrected command as "a run with other flags".
  with pytest.raises(experiment.ConfigError, match="--workers|host:port"):
    _config(tmp_path, workers=value)


def test_exactly_one_partition_source(tmp_path):
  with pytest.raises(ValueError, match="exactly one of partition_spec and "
                     "partition_file"):
    _config(tmp_path, partition_file="p")


def _flag_values(**changes):
  """experiments/train.py's flag values with its defaults (those read by
  ExperimentConfig.from_flag_values)."""
  return dict(dict(
      dataset="mnist", data_dir=None, partition="dirichlet", alpha=0.5,
      min_size=1, partition_spec=None, partition_file=None, num_clients=100,
      client_eval=False, algorithm="fedavg", model="cnn",
      clients_per_round=10, rounds=10, local_epochs=1, batch_size=10,
      max_examples_per_client=None, client_lr=0.05, client_momentum=0.0,
      server_lr=1.0, server_momentum=0.9, adaptive_epsilon=1e-3,
      proximal_strength=0.01, client_weight_decay=0.0, client_weighting=None,
      dp_noise_multiplier=None, dp_clip=None, dp_delta=None, eval_every=1,
      target_accuracy=None, stop_at_target=False, checkpoint_every=1, seed=0,
      root_output_dir="runs", experiment_name="fedavg", workers=None,
      smoke=False, quiet=False), **changes)


def test_config_from_flag_values():
  config = experiment.ExperimentConfig.from_flag_values(_flag_values(
      rounds=7, seed=3, client_lr=0.1, experiment_name="x"))
  assert config.output_dir == os.path.join("runs", "x")
  assert config.partition_spec == "dirichlet(alpha=0.5, min_size=1)"
  assert (config.loop.rounds, config.seed) == (7, 3)
  assert config.hparams.client_lr == 0.1
  assert config.hparams.client_weighting == "num_examples"
  dp = experiment.ExperimentConfig.from_flag_values(_flag_values(
      algorithm="dp_fedavg", partition="classes", partition_spec="iid"))
  assert dp.partition_spec == "iid"  # the spec wins over the shortcut
  assert dp.hparams.client_weighting == "uniform"
  saved = experiment.ExperimentConfig.from_flag_values(_flag_values(
      partition_file="p"))
  assert (saved.partition_spec, saved.partition_file) == (None, "p")


def test_shortcut_a_scheme_cannot_take_is_refused():
  with pytest.raises(ValueError, match="unknown scheme"):
    experiment.partition_spec_of_flags(_flag_values(partition="nope"))
  with pytest.raises(ValueError) as e:
    experiment.partition_spec_of_flags(_flag_values(partition="natural"))
  assert str(e.value) == (
      "--partition=natural: natural(...) needs exactly one of ids=NAME or "
      "kmeans=K, e.g. natural(kmeans=10). Give its parameters with "
      "--partition_spec, e.g. --partition_spec='natural(ids=region)'.")


def test_a_natural_spec_makes_its_own_clients(mnist, tmp_path):
  # train.py always has a --num_clients (default 100): a natural spec's
  # clients are its clusters, whatever that count.
  del mnist  # check reads the files
  described = experiment.check(_config(
      tmp_path, partition_spec="natural(kmeans=5)", num_clients=100))
  assert described.startswith("mnist: Partition(scheme='natural', "
                              "num_clients=5, ")
  assert not os.listdir(tmp_path)

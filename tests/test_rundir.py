"""tff_niid.rundir on real data: the run lock, and what a resume must match.

Every refusal must be one line and leave the run directory as it was (same
files, bytes and modification times).
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap

from absl import flags
import pytest

import files
from tff_niid import checkout
from tff_niid import datasets
from tff_niid import partition as partition_lib
from tff_niid import results
from tff_niid import rundir


def _known_flags():
  known = flags.FlagValues()
  flags.DEFINE_float("client_lr", 0.05, "", flag_values=known)
  flags.DEFINE_integer("rounds", 10, "", flag_values=known)
  flags.DEFINE_bool("quiet", False, "", flag_values=known)
  flags.DEFINE_string("data_dir", None, "", flag_values=known)
  return known


KNOWN_FLAGS = _known_flags()
FLAGFILE = "--client_lr=0.05\n--rounds=10\n--noquiet\n"
RESUMABLE = ("rounds", "quiet", "data_dir")


def _check_resume(run_dir, data, part, flagfile=FLAGFILE):
  rundir.check_resume(run_dir, flagfile, data, part, resumable=RESUMABLE,
                      known_flags=KNOWN_FLAGS)


def _refusal(run_dir, data, part, flagfile=FLAGFILE):
  """The one-line message refusing to resume; asserts nothing changed."""
  before = files.snapshot(run_dir)
  with pytest.raises(rundir.RunDirError) as e:
    _check_resume(run_dir, data, part, flagfile)
  assert files.snapshot(run_dir) == before
  assert "\n" not in str(e.value)
  return str(e.value)


def _start(run_dir, data, part):
  """What experiments/train.py does at a run's first start."""
  with rundir.lock(run_dir):
    _check_resume(run_dir, data, part)
    rundir.write_hparams(run_dir, FLAGFILE)
    part.save(os.path.join(run_dir, rundir.PARTITION_DIR))
    rundir.record_identity(run_dir, data, part)


@pytest.fixture
def run(mnist, tmp_path):
  """(run directory started on MNIST, its partition)."""
  run_dir = str(tmp_path / "run")
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  _start(run_dir, mnist, part)
  return run_dir, part


def test_lock_refuses_a_second_holder_naming_its_pid(tmp_path):
  run_dir = str(tmp_path / "run")
  with rundir.lock(run_dir):
    before = files.snapshot(run_dir)
    with pytest.raises(rundir.RunLockedError) as e:
      rundir.lock(run_dir)
    assert files.snapshot(run_dir) == before
  assert e.value.pid == os.getpid()
  assert str(e.value) == (
      f"{run_dir} is in use by another process (pid {os.getpid()}); wait for "
      "it to finish or stop it, or use another --experiment_name.")
  with rundir.lock(run_dir):  # released at the end of the with block
    pass


def test_lock_dies_with_its_holder(tmp_path):
  run_dir = str(tmp_path / "run")
  holder = subprocess.Popen(
      [sys.executable, "-c", textwrap.dedent(f"""
          import time
          from tff_niid import rundir
          held = rundir.lock({run_dir!r})
          print("locked", flush=True)
          time.sleep(600)
      """)], stdout=subprocess.PIPE, text=True)
  assert holder.stdout is not None  # stdout=PIPE
  try:
    assert holder.stdout.readline() == "locked\n"
    with pytest.raises(rundir.RunLockedError, match=f"pid {holder.pid}"):
      rundir.lock(run_dir)
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
  with rundir.lock(run_dir):  # the kernel released the killed holder's lock
    pass


def test_lock_on_an_unusable_path(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(rundir.RunDirError,
                     match="cannot write to output directory"):
    rundir.lock(str(blocker / "run"))


def test_new_directory_passes_untouched(mnist, tmp_path):
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  _check_resume(str(tmp_path / "new"), mnist, part)
  assert not os.path.exists(tmp_path / "new")


def test_same_run_resumes_with_resumable_changes_and_a_copy_of_the_data(
    run, tmp_path):
  run_dir, _ = run
  copy = shutil.copytree(datasets.find_dir("mnist"), tmp_path / "mnist_copy")
  data = datasets.load("mnist", str(copy))
  assert data.directory != datasets.find_dir("mnist")
  before = files.snapshot(run_dir)
  _check_resume(run_dir, data, partition_lib.iid(data.train_labels, 10, seed=0),
                flagfile="--client_lr=0.05\n--rounds=20\n--quiet\n"
                f"--data_dir={copy}\n")
  assert files.snapshot(run_dir) == before


def test_changed_flag_is_refused(run, mnist):
  run_dir, part = run
  assert _refusal(run_dir, mnist, part, "--client_lr=0.1\n--rounds=10\n") == (
      f"{run_dir} holds a run with other flags (--client_lr=0.05->0.1); use "
      "another --experiment_name, or delete the directory to start over.")


def test_other_dataset_is_refused(run, mnist, fashion_mnist):
  run_dir, _ = run
  part = partition_lib.iid(fashion_mnist.train_labels, 10, seed=0)
  message = _refusal(run_dir, fashion_mnist, part)
  assert message.startswith(
      f"{run_dir} holds a run on other data (dataset mnist then, fashion_mnist "
      f"now; train_labels_fingerprint "
      f"{partition_lib.fingerprint(mnist.train_labels)} then, "
      f"{partition_lib.fingerprint(fashion_mnist.train_labels)} now; other "
      "content in t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, "
      "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz)")
  assert message.endswith("resume it with the data it started with, or use "
                          "another --experiment_name.")


def test_other_partition_is_refused(run, mnist):
  run_dir, _ = run
  # As after a change to the contents of --partition_file.
  other = partition_lib.iid(mnist.train_labels, 10, seed=1)
  message = _refusal(run_dir, mnist, other)
  assert message.startswith(f"{run_dir} holds a run on another partition "
                            "(it started on checksum ")
  assert ", this start has iid, 10 clients, checksum " in message
  assert message.endswith("resume it with the partition it started with, or "
                          "use another --experiment_name.")


def test_replaced_saved_partition_is_refused(run, mnist):
  run_dir, part = run
  saved = os.path.join(run_dir, rundir.PARTITION_DIR)
  partition_lib.iid(mnist.train_labels, 12, seed=0).save(saved,
                                                         overwrite=True)
  message = _refusal(run_dir, mnist, part)
  assert f"(saved in {saved}: iid, 12 clients, checksum " in message
  assert "; this start: iid, 10 clients, checksum " in message


def test_run_without_identity_is_compared_then_recorded(run, mnist,
                                                        fashion_mnist):
  run_dir, part = run
  os.remove(os.path.join(run_dir, rundir.IDENTITY_FILE))  # an older run
  assert not rundir.has_identity(run_dir)

  message = _refusal(run_dir, mnist,
                     partition_lib.iid(mnist.train_labels, 10, seed=1))
  assert f"another partition (saved in {run_dir}/partition" in message
  message = _refusal(run_dir, fashion_mnist,
                     partition_lib.iid(fashion_mnist.train_labels, 10, seed=0))
  assert message.startswith(f"{run_dir} holds a run whose saved partition "
                            "does not fit: this partition was made from labels "
                            "with fingerprint")

  _check_resume(run_dir, mnist, part)
  rundir.record_identity(run_dir, mnist, part)
  assert rundir.has_identity(run_dir)
  _check_resume(run_dir, mnist, part)


def test_changed_flags_reads_defaults_and_negated_booleans():
  previous = "--client_lr=0.05\n--noquiet\n"
  assert not rundir.changed_flags(previous, "--rounds=10\n--noquiet\n",
                                  known_flags=KNOWN_FLAGS)
  quiet = rundir.changed_flags(previous, "--quiet\n", known_flags=KNOWN_FLAGS)
  assert quiet == ["--quiet=false->true"]
  assert not rundir.changed_flags(previous, "--quiet\n", resumable=("quiet",),
                                  known_flags=KNOWN_FLAGS)
  assert rundir.changed_flags(previous, "--client_lr=0.1\n--rounds=5\n",
                              known_flags=KNOWN_FLAGS) == [
                                  "--client_lr=0.05->0.1", "--rounds=10->5"]


def test_is_run(run, tmp_path):
  run_dir, _ = run
  assert rundir.is_run(run_dir)
  assert not rundir.is_run(str(tmp_path / "new"))
  older_run = tmp_path / "older"  # no lock file: from before runs were locked
  older_run.mkdir()
  (older_run / rundir.HPARAMS_FILE).write_text(FLAGFILE)
  assert not rundir.is_run(str(older_run))
  (older_run / results.METRICS_FILE).write_text("round\n1\n")
  assert rundir.is_run(str(older_run))


def test_partition_checksum_is_what_the_partition_assigns(mnist, tmp_path):
  part = partition_lib.iid(mnist.train_labels, 10, seed=0)
  saved = partition_lib.load(part.save(str(tmp_path / "p")))
  assert rundir.partition_checksum(saved) == rundir.partition_checksum(part)
  noisy, _ = partition_lib.label_noise(mnist.train_labels, part, rate=0.1,
                                       seed=0)
  assert rundir.partition_checksum(part.replace(noisy_labels=noisy)) != (
      rundir.partition_checksum(part))
  fixed = part.replace(feature_noise=partition_lib.feature_noise_levels(
      10, 0.1))
  redrawn = fixed.replace(feature_noise_redraw=True)
  assert len({rundir.partition_checksum(p)
              for p in (part, fixed, redrawn)}) == 3


def test_hparams_hold_the_binarys_flags_and_old_ones_still_resume(tmp_path):
  # train.py records only its own flags; a run whose hparams.txt also holds
  # absl's and TensorFlow's (as before) resumes with the same train flags.
  script = tmp_path / "binary.py"
  script.write_text(
      "import sys\n"
      "from absl import app, flags, logging\n"
      "from tff_niid import rundir\n"
      "flags.DEFINE_float('client_lr', 0.1, 'rate')\n"
      "flags.DEFINE_string('partition_file', None, 'file')\n"
      "def main(argv):\n"
      "  logging.set_verbosity(logging.WARNING)\n"
      "  own = rundir.binary_flagfile()\n"
      "  print(own, end='')\n"
      "  old = flags.FLAGS.flags_into_string()\n"
      "  assert len(old) > len(own) and own in old\n"
      "  assert not rundir.changed_flags(old, own)\n"
      "  print(rundir.changed_flags(old.replace('client_lr=0.1', "
      "'client_lr=0.2') + '--partition_file=x\\n', own))\n"
      "app.run(main)\n")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  run = subprocess.run([sys.executable, str(script), "--client_lr=0.1"],
                       env=dict(os.environ, PYTHONPATH=repo),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120, check=False)
  assert run.returncode == 0, run.stdout
  assert run.stdout.splitlines() == [
      "--client_lr=0.1",
      "['--client_lr=0.2->0.1', '--partition_file=x->None']"]


def test_unlike_flags_of_a_finished_run(tmp_path):
  # What grid.py warns about before skipping a finished cell.
  (tmp_path / "hparams.txt").write_text(
      "--client_lr=0.05\n--rounds=50\n--partition_spec=classes(k=2)\n"
      "--seed=0\n--nosmoke\n")
  given = {"client_lr": ["0.1", "5e-2"], "rounds": ["10"], "seed": ["0"],
           "partition_spec": ["classes(k=3)"], "batch_size": ["64"]}
  # The last value counts and numbers compare by value; --rounds may
  # differ; a flag hparams.txt does not record is not compared.
  assert rundir.unlike_flags(str(tmp_path), given) == [
      "--partition_spec=classes(k=2)->classes(k=3)"]
  given["client_lr"].append("0.2")
  assert rundir.unlike_flags(str(tmp_path), given) == [
      "--client_lr=0.05->0.2", "--partition_spec=classes(k=2)->classes(k=3)"]


def test_unlike_flags_leave_out_what_the_cell_ignores(tmp_path):
  # A shared flagfile changed since a FedAvg cell finished: the flags the
  # cell ignores are no reason to warn; those it uses are.
  (tmp_path / "hparams.txt").write_text(
      "--algorithm=fedavg\n--server_momentum=0.9\n--proximal_strength=0.01"
      "\n--partition_spec=iid\n--alpha=0.5\n--num_clients=10\n")
  given = {"algorithm": ["fedavg"], "server_momentum": ["0.5"],
           "proximal_strength": ["0.1"], "partition_spec": ["iid"],
           "alpha": ["0.1"], "num_clients": ["20"]}
  assert rundir.unlike_flags(str(tmp_path), given) == [
      "--num_clients=10->20"]
  given["algorithm"].append("fedavgm")  # as a variant's --algorithm_flags
  assert rundir.unlike_flags(str(tmp_path), given) == [
      "--algorithm=fedavg->fedavgm", "--num_clients=10->20",
      "--server_momentum=0.9->0.5"]
  # A natural spec makes its own clients: its --num_clients is ignored.
  (tmp_path / "hparams.txt").write_text(
      "--partition_spec=natural(kmeans=10)\n--num_clients=10\n")
  assert rundir.unlike_flags(str(tmp_path), {
      "partition_spec": ["natural(kmeans=10)"], "num_clients": ["20"]}) == []


def test_code_version_names_the_commit_and_uncommitted_changes(tmp_path):
  def git(*args):
    return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t",
                           "-c", "user.email=t@t", *args], check=True,
                          capture_output=True, text=True).stdout.strip()
  (tmp_path / "tff_niid").mkdir()
  (tmp_path / "tff_niid" / "x.py").write_text("a = 1\n")
  assert rundir.code_version(str(tmp_path)).endswith("(not a git checkout)")
  git("init", "-q")
  git("add", "-A")
  git("commit", "-q", "-m", "x")
  commit = git("rev-parse", "--short=12", "HEAD")
  assert rundir.code_version(str(tmp_path)).endswith(f", git {commit}")
  (tmp_path / "tff_niid" / "x.py").write_text("a = 2\n")
  assert rundir.code_version(str(tmp_path)).endswith(
      f", git {commit} with uncommitted changes to tff_niid/ or experiments/")
  # A directory inside a repository (a grid's code archive placed there) is
  # not that repository's code.
  assert rundir.code_version(str(tmp_path / "tff_niid")).endswith(
      "(not a git checkout)")
  # By default: the checkout of the tff_niid this process imported.
  head = subprocess.run(
      ["git", "-C", checkout.imported_root(), "rev-parse", "--short=12",
       "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
  assert f", git {head}" in rundir.code_version()

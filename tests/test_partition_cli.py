"""The partition binary (experiments/partition.py, installed as
tff-niid-partition) without TensorFlow (on real MNIST where it reads the
data)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import files
from tff_niid import partition
from tff_niid import results
from tff_niid import rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(REPO, "experiments", "partition.py")
# Runs the binary and reports whether TensorFlow got imported on the way.
WRAPPER = ("import runpy, sys\nsys.argv = sys.argv[1:]\n"
           "try:\n  runpy.run_path(sys.argv[0], run_name='__main__')\n"
           "finally:\n  print('TF_IMPORTED', 'tensorflow' in sys.modules)")


def _run(*args, without_matplotlib=False, cwd=None):
  wrapper = WRAPPER
  if without_matplotlib:  # as after a plain `pip install .`
    wrapper = "import sys\nsys.modules['matplotlib'] = None\n" + wrapper
  return subprocess.run([sys.executable, "-c", wrapper, CLI, *args],
                        capture_output=True, text=True, check=False, cwd=cwd)


def _assert_refused(args, directory, message):
  """The binary run with `args` fails with the one-line `message` and leaves
  `directory` as it was."""
  before = files.snapshot(directory)
  result = _run(*args)
  assert result.returncode != 0
  assert result.stderr == message + "\n"
  assert files.snapshot(directory) == before


def test_spec_run_writes_everything(mnist, tmp_path):
  out = tmp_path / "p"
  result = _run("--spec=dirichlet(alpha=0.1)+key(slant)+noise(rate=0.1)",
                "--num_clients=50", f"--output_dir={out}")
  assert result.returncode == 0, result.stderr
  assert "TF_IMPORTED False" in result.stdout
  assert "key_dispersion" in result.stdout and "js_mean" in result.stdout
  for name in ("partition_summary.txt", "hparams.txt",
               "partition_label_mix.png", "partition_sizes.png",
               "partition_divergence.png"):
    assert os.path.getsize(out / name) > 0
  assert (out / "partition_summary.txt").read_text() in result.stdout
  hparams = (out / "hparams.txt").read_text()
  assert "--num_clients=50\n" in hparams and "--spec=dirichlet" in hparams
  part = partition.load(str(out / "partition"), labels=mnist.train_labels)
  assert len(part) == 50 and part.noisy_labels is not None
  assert part.spec.startswith("dirichlet(alpha=0.1")


def test_scheme_flags(mnist, tmp_path):
  del mnist  # the binary reads the files
  result = _run("--scheme=label_quantity", "--classes_per_client=3",
                "--num_clients=20", f"--output_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  assert "label_quantity" in result.stdout


@pytest.mark.parametrize("law,clients,expected", [
    ("--profile=linear", 10, "quantity_skew(min_size=1, profile=linear)"),
    # Flower's SizePartitioner: no floor to meet, so no min_size.
    ("--sizes=30000,20000,10000", 3,
     "quantity_skew(sizes=(30000, 20000, 10000))"),
])
def test_size_law_flags(mnist, tmp_path, law, clients, expected):
  # --profile and --sizes replace --alpha's default, as --sigma does.
  result = _run("--scheme=quantity_skew", law, f"--num_clients={clients}",
                f"--output_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  part = partition.load(str(tmp_path / "partition"),
                        labels=mnist.train_labels)
  assert part.spec == expected
  assert part == partition.spec.resolve(expected, mnist.train_labels,
                                        clients, seed=0)
  assert f"--spec={expected}\n" in (tmp_path / "hparams.txt").read_text()


def test_anchor_flags_are_the_spec(mnist, tmp_path):
  # NIID-Bench's Dirichlet and Flower's InnerDirichlet from --scheme flags:
  # the spec they stand for, and the partition of that spec.
  for args, spec_text in [
      (["--scheme=dirichlet", "--self_balancing", "--min_size=10",
        "--min_size_policy=resample"],
       "dirichlet(alpha=0.5, min_size=10, min_size_policy=resample, "
       "self_balancing=true)"),
      (["--scheme=balanced_dirichlet", "--fill=by_sample"],
       "balanced_dirichlet(alpha=0.5, fill=by_sample)")]:
    out = tmp_path / args[0].split("=")[1]
    result = _run(*args, "--num_clients=10", "--seed=1",
                  f"--output_dir={out}")
    assert result.returncode == 0, result.stderr
    part = partition.load(str(out / "partition"), labels=mnist.train_labels)
    assert part.spec == spec_text
    expected = partition.spec.resolve(spec_text, mnist.train_labels, 10,
                                      seed=1)
    assert np.array_equal(part.indices, expected.indices)
  # A value the scheme refuses is named with the flags' scheme.
  bogus = _run("--scheme=dirichlet", "--min_size_policy=bogus",
               f"--output_dir={tmp_path / 'bogus'}")
  assert bogus.stderr == ("ERROR: --scheme=dirichlet: `min_size_policy` must "
                          "be one of ['repair', 'resample']; got 'bogus'.\n")


def test_flowers_pathological_modes_warn_of_unassigned_samples(mnist,
                                                               tmp_path):
  result = _run("--scheme=label_quantity", "--class_assignment=deterministic",
                "--num_clients=3", f"--output_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  assert result.stderr.startswith(
      "WARNING: label_quantity(class_assignment=deterministic): no client "
      "holds label(s) 4, 5, 6, 7, 8, 9; their ")
  part = partition.load(str(tmp_path / "partition"),
                        labels=mnist.train_labels)
  assert part.spec == ("label_quantity(class_assignment=deterministic, "
                       "classes_per_client=2)")
  assert set(mnist.train_labels[part.indices]) == {0, 1, 2, 3}


@pytest.mark.parametrize("args", [
    ["--scheme=quantity_skew", "--profile=linear"],
    ["--spec=dirichlet(alpha=0.5, min_size=10)", "--seed=3"],
    ["--scheme=dirichlet", "--noself_balancing"],
])
def test_hparams_reruns_the_partition(mnist, tmp_path, args):
  # It once recorded every scheme flag at its default beside --spec, which
  # the rerun then refused.
  first = _run(*args, "--num_clients=10", f"--output_dir={tmp_path / 'a'}")
  assert first.returncode == 0, first.stderr
  again = _run(f"--flagfile={tmp_path / 'a' / 'hparams.txt'}",
               f"--output_dir={tmp_path / 'b'}")
  assert again.returncode == 0, again.stderr
  # One flag a line (an empty --key_file once wrote a blank one).
  assert "" not in (tmp_path / "a" / "hparams.txt").read_text().split("\n")[:-1]
  a, b = (partition.load(str(tmp_path / d / "partition"),
                         labels=mnist.train_labels) for d in "ab")
  assert a.spec == b.spec and np.array_equal(a.indices, b.indices)


def test_a_relative_data_dir_is_rerun_from_anywhere(mnist, tmp_path):
  (tmp_path / "mydata").symlink_to(mnist.directory)
  (tmp_path / "elsewhere").mkdir()
  first = _run("--data_dir=mydata", "--scheme=iid", "--num_clients=10",
               "--output_dir=a", cwd=tmp_path)
  assert first.returncode == 0, first.stderr
  assert (f"--data_dir={tmp_path / 'mydata'}\n" in
          (tmp_path / "a" / "hparams.txt").read_text())
  again = _run(f"--flagfile={tmp_path / 'a' / 'hparams.txt'}",
               "--output_dir=b", cwd=tmp_path / "elsewhere")
  assert again.returncode == 0, again.stderr
  assert partition.load(str(tmp_path / "elsewhere" / "b" / "partition")) == (
      partition.load(str(tmp_path / "a" / "partition")))


def test_a_key_file_names_ids_for_the_spec(mnist, tmp_path):
  writers = np.arange(mnist.train_labels.shape[0]) % 7
  np.save(tmp_path / "writers.npy", writers)
  result = _run("--spec=natural(ids=writer)",
                f"--key_file=writer={tmp_path / 'writers.npy'}",
                f"--output_dir={tmp_path / 'p'}")
  assert result.returncode == 0, result.stderr
  part = partition.load(str(tmp_path / "p" / "partition"),
                        labels=mnist.train_labels)
  assert len(part) == 7 and (writers[part[3]] == 3).all()
  assert "WARNING" not in result.stderr
  counted = _run("--spec=natural(ids=writer)", "--num_clients=10",
                 f"--key_file=writer={tmp_path / 'writers.npy'}",
                 f"--output_dir={tmp_path / 'n'}")
  assert counted.returncode == 0, counted.stderr
  assert ("WARNING: --num_clients is not used: a natural spec makes its own "
          "clients (one per id, cluster or group).") in counted.stderr
  assert len(partition.load(str(tmp_path / "n" / "partition"),
                            labels=mnist.train_labels)) == 7
  missing = _run("--spec=natural(ids=writer)", "--key_file=writer=nope.npy",
                 f"--output_dir={tmp_path / 'q'}")
  assert missing.stderr.startswith(
      "ERROR: --key_file=writer=nope.npy: cannot read nope.npy as a .npy "
      "array: ")


def test_a_key_file_is_measured_and_rerun_from_anywhere(mnist, tmp_path):
  # A relative --key_file, then the rerun of hparams.txt from elsewhere.
  (tmp_path / "data").mkdir()
  np.save(tmp_path / "data" / "region.npy",
          np.arange(mnist.train_labels.shape[0]) % 13)
  first = _run("--spec=dirichlet(alpha=0.5)+key(region)",
               "--key_file=region=data/region.npy", "--num_clients=10",
               f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
  assert first.returncode == 0, first.stderr
  assert "key_dispersion" in first.stdout
  assert (f"--key_file=region={tmp_path / 'data' / 'region.npy'}\n" in
          (tmp_path / "a" / "hparams.txt").read_text())
  again = _run(f"--flagfile={tmp_path / 'a' / 'hparams.txt'}",
               f"--output_dir={tmp_path / 'b'}")
  assert again.returncode == 0, again.stderr
  a, b = (partition.load(str(tmp_path / d / "partition")) for d in "ab")
  assert a == b
  # Another key file into the same place: what differs is said.
  np.save(tmp_path / "data" / "region.npy",
          np.arange(mnist.train_labels.shape[0]) % 7)
  _assert_refused(("--spec=dirichlet(alpha=0.5)+key(region)",
                   f"--key_file=region={tmp_path / 'data' / 'region.npy'}",
                   "--num_clients=10", f"--output_dir={tmp_path / 'a'}"),
                  tmp_path / "a", (
      f"ERROR: {tmp_path / 'a'} holds another partition (dirichlet(alpha="
      "0.5)+key(name=region) over 10 clients, seed 0, ordered by another "
      "key); pass --overwrite to replace it and its report, or choose "
      "another --output_dir."))


def test_labels_of_your_own_are_partitioned_and_rerun_from_anywhere(
    tmp_path):
  # No dataset files needed: CIFAR-10-like labels and writer ids of one's own.
  (tmp_path / "data").mkdir()
  labels = np.random.default_rng(0).integers(0, 10, 5000)
  np.save(tmp_path / "data" / "labels.npy", labels)
  np.save(tmp_path / "data" / "writer.npy", np.arange(5000) % 40)
  first = _run("--labels_file=data/labels.npy", "--dataset=fashion_mnist",
               "--spec=dirichlet(alpha=0.5)+key(writer)",
               "--key_file=writer=data/writer.npy", "--num_clients=20",
               f"--output_dir={tmp_path / 'a'}", cwd=tmp_path)
  assert first.returncode == 0, first.stderr
  assert first.stderr == ("WARNING: --dataset is not used with "
                          "--labels_file.\n")
  assert first.stdout.startswith(
      "labels.npy: Partition(scheme='dirichlet', num_clients=20, "
      "num_samples=5000, ")
  assert "key_dispersion" in first.stdout
  a = partition.load(str(tmp_path / "a" / "partition"), labels=labels)
  assert (f"--labels_file={tmp_path / 'data' / 'labels.npy'}\n" in
          (tmp_path / "a" / "hparams.txt").read_text())
  assert "--dataset" not in (tmp_path / "a" / "hparams.txt").read_text()
  again = _run(f"--flagfile={tmp_path / 'a' / 'hparams.txt'}",
               f"--output_dir={tmp_path / 'b'}")
  assert (again.returncode, again.stderr) == (0, "")
  assert partition.load(str(tmp_path / "b" / "partition"), labels=labels) == a
  # An image attribute needs MNIST's images, which own labels come without.
  _assert_refused((f"--labels_file={tmp_path / 'data' / 'labels.npy'}",
                   "--spec=dirichlet(alpha=0.5)+key(slant)",
                   f"--output_dir={tmp_path / 'c'}"), tmp_path, (
      "ERROR: --labels_file gives labels only, and the image attribute "
      "slant is computed from MNIST/Fashion-MNIST's images: order or group "
      "by values of your own with --key_file=NAME=PATH.npy (one per "
      "sample), or use --dataset."))
  np.savez(tmp_path / "data" / "both.npz", train=labels, test=labels)
  _assert_refused((f"--labels_file={tmp_path / 'data' / 'both.npz'}",
                   "--spec=iid", f"--output_dir={tmp_path / 'c'}"), tmp_path,
                  f"ERROR: --labels_file={tmp_path / 'data' / 'both.npz'} is "
                  "an .npz archive; give one array saved with np.save.")
  # Many small clients: the key dispersion's caveat as one line.
  small = _run(f"--labels_file={tmp_path / 'data' / 'labels.npy'}",
               "--spec=balanced_dirichlet(alpha=1000)+key(writer)",
               f"--key_file=writer={tmp_path / 'data' / 'writer.npy'}",
               "--num_clients=1000", f"--output_dir={tmp_path / 'd'}")
  assert small.returncode == 0, small.stderr
  assert small.stderr.startswith("WARNING: key_dispersion: clients hold few "
                                 "samples of each class (median 1 per client")
  assert len(small.stderr.splitlines()) == 1
  _assert_refused((f"--labels_file={tmp_path / 'nope.npy'}", "--spec=iid",
                   f"--output_dir={tmp_path / 'c'}"), tmp_path, (
      f"ERROR: --labels_file={tmp_path / 'nope.npy'}: cannot read "
      f"{tmp_path / 'nope.npy'} as a .npy array: [Errno 2] No such file or "
      f"directory: '{tmp_path / 'nope.npy'}'"))


def test_another_partition_is_replaced_only_with_overwrite(
    mnist, fashion_mnist, tmp_path):
  del mnist, fashion_mnist  # the binary reads the files
  first = ("--scheme=shards", "--num_clients=10", f"--output_dir={tmp_path}")
  assert _run(*first).returncode == 0
  saved = partition.load(str(tmp_path / "partition"))
  assert _run(*first).returncode == 0  # the same partition again
  other = ("--scheme=iid", "--num_clients=10", f"--output_dir={tmp_path}")
  _assert_refused(other, tmp_path, (
      f"ERROR: {tmp_path} holds another partition ({saved.spec} over 10 "
      "clients, seed 0); pass --overwrite to replace it and its report, or "
      "choose another --output_dir."))
  # The same spec of the other dataset: what differs is said.
  fashion = ("--dataset=fashion_mnist", *first)
  _assert_refused(fashion, tmp_path, (
      f"ERROR: {tmp_path} holds another partition ({saved.spec} over 10 "
      "clients, seed 0, of other labels); pass --overwrite to replace it and "
      "its report, or choose another --output_dir."))
  assert _run(*other, "--overwrite").returncode == 0
  assert partition.load(str(tmp_path / "partition")).scheme == "iid"
  # A rerun of hparams.txt elsewhere gives --overwrite itself, or not.
  assert "overwrite" not in (tmp_path / "hparams.txt").read_text()


def test_files_of_no_partition_are_replaced_only_with_overwrite(mnist,
                                                                tmp_path):
  del mnist  # the binary reads the files
  (tmp_path / "hparams.txt").write_text("a project's own notes\n")
  (tmp_path / "partition_summary.txt").write_text("results\n")
  run = ("--scheme=iid", "--num_clients=10", f"--output_dir={tmp_path}")
  _assert_refused(run, tmp_path, (
      f"ERROR: {tmp_path} holds partition_summary.txt, hparams.txt but no "
      "saved partition they could report; pass --overwrite to replace them, "
      "or choose another --output_dir."))
  assert _run(*run, "--overwrite").returncode == 0
  assert _run(*run).returncode == 0  # now its own report, rerun


def test_bad_spec_is_one_line(tmp_path):
  result = _run("--spec=dirichlet(beta=2)", f"--output_dir={tmp_path}")
  assert result.returncode != 0
  assert result.stderr.startswith("ERROR: ") and "no parameter 'beta'" in (
      result.stderr)
  assert result.stderr.count("\n") == 1  # one line, no usage text


@pytest.mark.parametrize("marker", [rundir.LOCK_FILE, results.METRICS_FILE],
                         ids=["run", "run_from_before_locks"])
def test_refuses_a_training_runs_directory(tmp_path, marker):
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / "hparams.txt").write_text("--experiment_name=run\n")
  (run_dir / marker).write_text("")
  partition.iid(np.arange(100) % 10, 10, seed=0).save(
      str(run_dir / "partition"))
  _assert_refused(("--num_clients=20", f"--output_dir={run_dir}"), run_dir, (
      f"ERROR: {run_dir} holds a training run; writing a partition there "
      "would replace its hparams.txt and partition/, and the run could no "
      "longer be resumed. Choose another --output_dir."))


def test_without_matplotlib_the_plots_are_left_out_and_said_so(mnist,
                                                                tmp_path):
  del mnist  # the binary reads the files
  result = _run("--spec=classes(k=2)", "--num_clients=20",
                f"--output_dir={tmp_path}", without_matplotlib=True)
  assert result.returncode == 0, result.stderr
  assert ("plots: none (they need matplotlib: pip install "
          "'tff_niid[plots]')") in result.stdout
  assert sorted(os.listdir(tmp_path)) == [
      "hparams.txt", "partition", "partition_label_counts.csv",
      "partition_summary.txt"]


@pytest.mark.parametrize("args,message", [
    (["--spec=dirichlet(alpha=0.1)", "--key=slant"], "ERROR: --spec replaces "
     "--scheme and its flags, but --key was given too; write it into the "
     "spec (--key is key(slant)), or leave --spec out."),
    (["--spec=dirichlet(alpha=0.1)+key(slant)", "--key_noise=0.3",
      "--self_balancing"], "ERROR: --spec replaces --scheme and its flags, "
     "but --self_balancing, --key_noise were given too; write them into the "
     "spec (--self_balancing is ...(self_balancing=true); --key_noise is "
     "key(..., noise=0.3)), or leave --spec out."),
    (["--scheme=iid", "--alpha=0.1"], "ERROR: --scheme=iid: iid takes no "
     "alpha (it has no parameters)."),
    (["--scheme=dirichlet", "--key_noise=0.5"], "ERROR: --scheme=dirichlet: "
     "key_noise mixes key order with random order within classes, so it "
     "needs a key."),
    (["--scheme=shards", "--fill=by_sample"], "ERROR: --scheme=shards: "
     "shards takes no fill; a spec sets each of its parameters: "
     "shards(shards_per_client=2)."),
    (["--scheme=quantity_skew", "--sigma=1", "--alpha=0.5"], "ERROR: "
     "--scheme=quantity_skew: quantity_skew(...) needs exactly one of alpha=, "
     "sigma=, profile= or sizes=."),
    (["--scheme=quantity_skew", "--sizes=30000,30000", "--min_size=3"],
     "ERROR: --scheme=quantity_skew: quantity_skew(sizes=...) gives every "
     "client's size, so min_size and min_size_policy do not apply; drop "
     "them."),
    (["--spec=iid", "--sizes=1,2"], "ERROR: --spec replaces --scheme and its "
     "flags, but --sizes was given too; write it into the spec (--sizes is "
     "quantity(sizes=(1, 2))), or leave --spec out."),
])
def test_a_flag_the_spec_does_not_use_is_refused(tmp_path, args, message):
  result = _run(*args, f"--output_dir={tmp_path / 'p'}")
  assert result.returncode != 0
  assert result.stderr == message + "\n"
  assert not (tmp_path / "p").exists()


def test_an_output_dir_that_is_a_file(tmp_path):
  (tmp_path / "f").write_text("")
  result = _run(f"--output_dir={tmp_path / 'f'}")
  assert result.stderr == (f"ERROR: --output_dir={tmp_path / 'f'} is a file, "
                           "not a directory; choose another path.\n")


def test_the_installed_console_script(tmp_path):
  # pip installs it beside the interpreter (both venvs install tff_niid).
  script = os.path.join(os.path.dirname(sys.executable), "tff-niid-partition")
  for command in ([script], [sys.executable, CLI]):
    usage = subprocess.run([*command, "--help"], capture_output=True,
                           text=True, check=False).stdout
    assert "  --spec: Composition spec" in usage  # its flags, not only absl's
  listing = subprocess.run([script, "--list_schemes"], capture_output=True,
                           text=True, check=False)
  assert listing.returncode == 0, listing.stderr
  assert listing.stdout == partition.registry.describe() + "\n"
  result = subprocess.run([script, "--spec=iid", "--num_clients=10",
                           f"--output_dir={tmp_path}"], capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert "--spec=iid\n" in (tmp_path / "hparams.txt").read_text()


def test_download_reaches_the_mirrors(tmp_path):
  # No server listens on port 1: the one-line error shows the flag asked
  # the downloader for the files, into --data_dir.
  env = dict(os.environ, TFF_NIID_MIRRORS="http://127.0.0.1:1/")
  result = subprocess.run(
      [sys.executable, CLI, "--spec=iid", f"--data_dir={tmp_path / 'data'}",
       "--download", f"--output_dir={tmp_path / 'p'}"],
      capture_output=True, text=True, check=False, env=env)
  assert result.returncode != 0
  # After the downloader's progress line ("downloading <url>"), one line.
  assert result.stderr.splitlines()[-1].startswith(
      "ERROR: could not download train-images-idx3-ubyte.gz; tried "
      "http://127.0.0.1:1/train-images-idx3-ubyte.gz: ")
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "data").exists()

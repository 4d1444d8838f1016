"""datasets.load(download=True) against a local HTTP server on 127.0.0.1 that
serves good, truncated, corrupt, cut-off and missing files: the first mirror
with a verified copy wins, errors name every attempt, and the cache never
holds a half-written or unverified file."""

import functools
import http.server
import os
import pathlib
import threading

import pytest

from tff_niid import datasets
from tff_niid import download

FILES = list(datasets.FILES.values())


class _Handler(http.server.SimpleHTTPRequestHandler):
  """Serves a directory; a file named CUT_<name> is sent cut off mid-body
  (its Content-Length promises the whole file)."""

  def do_GET(self):  # pylint: disable=invalid-name
    name = os.path.basename(self.path)
    cut = os.path.join(self.directory, "CUT_" + name)
    if not os.path.exists(cut):
      return super().do_GET()
    with open(cut, "rb") as f:
      data = f.read()
    self.send_response(200)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data[:len(data) // 2])
    self.wfile.flush()
    self.close_connection = True

  def log_message(self, *args):
    del args


@pytest.fixture
def server(tmp_path):
  root = tmp_path / "www"
  root.mkdir()
  httpd = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
  httpd.shutdown()
  httpd.server_close()


def _mirror(root, name, source_dir, *, truncate=(), corrupt=(), cut=(),
            missing=()):
  """A mirror directory serving the real files, with the given defects."""
  mirror = root / name
  mirror.mkdir()
  for fname in FILES:
    data = (source_dir / fname).read_bytes()
    if fname in missing:
      continue
    if fname in truncate:
      data = data[:len(data) // 3]
    if fname in corrupt:
      data = data[:100] + bytes(b ^ 0xFF for b in data[100:110]) + data[110:]
    target = mirror / (("CUT_" + fname) if fname in cut else fname)
    target.write_bytes(data)
  return mirror


def _left_in(cache):
  return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_bad_mirror_then_good_one(server, mnist, tmp_path):
  root, url = server
  source = pathlib.Path(mnist.directory)
  _mirror(root, "bad", source, truncate=[FILES[0]], corrupt=[FILES[1]],
          cut=[FILES[2]], missing=[FILES[3]])
  _mirror(root, "good", source)
  cache = tmp_path / "cache"
  data = datasets.load("mnist", str(cache), download=True,
                       mirrors=[f"{url}/bad", f"{url}/good"])
  assert data.train_labels.shape == (60000,)
  assert (data.train_labels == mnist.train_labels).all()
  assert data.directory == str(cache / "mnist")
  assert _left_in(cache / "mnist") == sorted(FILES)  # no temporary files


def test_both_datasets_download_under_one_root(server, mnist, fashion_mnist,
                                               tmp_path, monkeypatch):
  root, url = server
  _mirror(root, "mnist", pathlib.Path(mnist.directory))
  _mirror(root, "fashion", pathlib.Path(fashion_mnist.directory))
  monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "data"))
  datasets.load("mnist", download=True, mirrors=[f"{url}/mnist"])
  data = datasets.load("fashion_mnist", download=True,
                       mirrors=[f"{url}/fashion"])
  assert (data.train_labels == fashion_mnist.train_labels).all()
  assert _left_in(tmp_path / "data") == ["fashion-mnist", "mnist"]
  # Found again without downloading; a root named after the dataset is
  # filled directly.
  assert datasets.load("mnist").directory == str(tmp_path / "data" / "mnist")
  named = tmp_path / "elsewhere" / "mnist"
  datasets.load("mnist", str(named), download=True, mirrors=[f"{url}/mnist"])
  assert _left_in(named) == sorted(FILES)


def test_the_default_download_is_found_again(server, mnist, tmp_path,
                                             monkeypatch):
  root, url = server
  _mirror(root, "mnist", pathlib.Path(mnist.directory))
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  monkeypatch.setattr(datasets, "_repo_shared_dir", lambda: None)
  with pytest.raises(datasets.DatasetError) as error:
    datasets.load("mnist")
  assert str(tmp_path / "cache" / "tff_niid" / "data") in str(error.value)
  datasets.load("mnist", download=True, mirrors=[f"{url}/mnist"])
  assert datasets.load("mnist").directory == str(
      tmp_path / "cache" / "tff_niid" / "data" / "mnist")


def test_a_leading_tilde_is_the_home_directory(server, mnist, tmp_path,
                                              monkeypatch):
  # The shell leaves the ~ of `--data_dir=~/data` as it is: read literally,
  # the download would make a directory named "~" where the binary runs.
  root, url = server
  _mirror(root, "mnist", pathlib.Path(mnist.directory))
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.chdir(tmp_path)
  data = datasets.load("mnist", "~/data", download=True,
                       mirrors=[f"{url}/mnist"])
  assert data.directory == str(tmp_path / "home" / "data" / "mnist")
  assert not (tmp_path / "~").exists()
  monkeypatch.setenv(datasets.ENV_VAR, "~/data")
  assert datasets.load("mnist").directory == data.directory


def test_no_good_mirror_is_one_clear_error_and_leaves_nothing(server, mnist,
                                                               tmp_path):
  root, url = server
  source = pathlib.Path(mnist.directory)
  _mirror(root, "bad", source, truncate=[FILES[0]], missing=FILES[1:])
  _mirror(root, "fashion", pathlib.Path(
      datasets.find_dir("fashion_mnist")))
  cache = tmp_path / "cache"
  with pytest.raises(download.DownloadError) as error:
    datasets.load("mnist", str(cache), download=True,
                  mirrors=[f"{url}/bad", f"{url}/fashion", f"{url}/none"])
  message = str(error.value)
  assert f"could not download {FILES[0]}" in message
  assert f"{url}/bad/{FILES[0]}" in message
  assert "fashion_mnist" in message  # the other dataset's file is named
  assert "HTTP 404" in message
  assert message.endswith(
      f"or put the original file in {cache / 'mnist'} yourself.")
  assert _left_in(cache) == []


def test_download_is_off_by_default(tmp_path):
  with pytest.raises(datasets.DatasetError, match="download=True"):
    datasets.load("mnist", str(tmp_path / "empty"))


def test_mirrors_from_the_environment(monkeypatch):
  monkeypatch.setenv(download.MIRRORS_VARIABLE, "http://a/x, http://b/y/")
  assert download.mirrors_for("mnist") == ["http://a/x/", "http://b/y/"]
  monkeypatch.delenv(download.MIRRORS_VARIABLE)
  assert download.mirrors_for("mnist") == list(download.MIRRORS["mnist"])

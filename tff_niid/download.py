"""Fetching the original dataset files from mirrors, verified, into a cache.

Only `tff_niid.datasets.load(..., download=True)` calls this: nothing is ever
downloaded silently. Each file is taken from the first mirror whose copy
passes the caller's check (the dataset's published SHA-256), written to a
temporary file beside its destination and renamed into place, so the cache
never holds a half-written or unverified file, whatever fails.
Standard library only.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Sequence
import urllib.error
import urllib.request

from tff_niid import atomic

_LOG = logging.getLogger(__name__)

# The original idx .gz files; others can be given with `mirrors=` or
# $TFF_NIID_MIRRORS (comma-separated base URLs).
MIRRORS = {
    "mnist": ("https://storage.googleapis.com/cvdf-datasets/mnist/",
              "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion_mnist": (
        "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
}
MIRRORS_VARIABLE = "TFF_NIID_MIRRORS"


class DownloadError(OSError):
  """No mirror served a file that passed its check."""


def mirrors_for(name: str, mirrors: Sequence[str] | None = None) -> list[str]:
  """The base URLs to try for dataset `name`, in order."""
  if mirrors is None:
    from_env = os.environ.get(MIRRORS_VARIABLE, "")
    mirrors = [m.strip() for m in from_env.split(",") if m.strip()] or list(
        MIRRORS[name])
  return [m if m.endswith("/") else m + "/" for m in mirrors]


def _get(url: str, timeout: float) -> bytes:
  with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec: https mirrors, content checked
    data = response.read()
    length = response.headers.get("Content-Length")
  if length is not None and len(data) != int(length):
    raise DownloadError(f"truncated: {len(data)} of {length} bytes")
  return data


def fetch(file_names: Sequence[str], mirrors: Sequence[str], destination: str,
          check: Callable[[str, bytes], None], *,
          timeout: float = 60.0) -> None:
  """Downloads every file of `file_names` missing from `destination`.

  Args:
    file_names: file names, appended to each mirror's base URL.
    mirrors: base URLs, tried in order for each file.
    destination: directory to write into (created with the first file).
    check: `check(file_name, data)` raises (any Exception) if `data` is not
      the right content; a mirror whose copy fails it is skipped.
    timeout: seconds per request.

  Raises:
    DownloadError: a file no mirror served correctly; names every attempt.
      Files already verified stay; nothing unverified is left behind.
  """
  for file_name in file_names:
    path = os.path.join(destination, file_name)
    if os.path.exists(path):
      continue
    attempts = []
    for base in mirrors:
      url = base + file_name
      _LOG.warning("downloading %s", url)
      try:
        data = _get(url, timeout)
        check(file_name, data)
      except Exception as error:  # pylint: disable=broad-except
        reason = (f"HTTP {error.code}" if isinstance(error, urllib.error.HTTPError)
                  else str(error).splitlines()[0] if str(error) else
                  type(error).__name__)
        attempts.append(f"{url}: {reason}")
        continue
      # Created with its first verified file: a failed download leaves no
      # empty directory for the lookup to name.
      os.makedirs(destination, exist_ok=True)
      atomic.write(path, lambda f: f.write(data))
      break
    else:
      raise DownloadError(
          f"could not download {file_name}; tried " + "; ".join(attempts) +
          f". Give working mirrors with mirrors=[...] or ${MIRRORS_VARIABLE}, "
          f"or put the original file in {destination} yourself.")

#!/usr/bin/env bash
# Creates ./.venv-torch from requirements/torch-lock.txt: CPU PyTorch, absl and
# numpy, for the NIID-Bench cross-checks in PyTorch (experiments/
# niid_bench_torch.py and the update check). No TensorFlow: the two
# frameworks run in separate processes. A stamp with the lock's hash makes a
# second run a no-op. PYTHON chooses the interpreter (default python3).
# PyPI has no `+cpu` builds: they come from PyTorch's CPU index
# (TORCH_INDEX_URL), or from a local wheel directory pip is configured with
# (find-links). An index host that does not resolve is left out, so that an
# offline machine does not wait out pip's retries on every package.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/torch-lock.txt
VENV=.venv-torch
STAMP=$VENV/.tff_niid-torch-installed
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" && -x $VENV/bin/python ]]; then
  exit 0
fi
start=$(date +%s)
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
index=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
extra=(--extra-index-url "$index")
if ! "$VENV/bin/python" - "$index" <<'EOF'
import socket, sys, urllib.parse
socket.setdefaulttimeout(5)
url = urllib.parse.urlsplit(sys.argv[1])
if url.scheme in ("http", "https"):
  try:
    socket.getaddrinfo(url.hostname, url.port or 443)
  except OSError:
    sys.exit(1)
EOF
then
  echo "[install] $index does not resolve: installing from pip's configured sources only"
  extra=()
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
  "${extra[@]}" -r "$LOCK"
"$VENV/bin/python" -c 'import torch, absl, numpy'
echo "$want" > "$STAMP"
echo "[install] $VENV: torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') in $(( $(date +%s) - start )) s"

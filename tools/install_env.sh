#!/usr/bin/env bash
# Creates ./.venv from requirements/py311-lock.txt and installs tff_niid into it
# (editable). Idempotent: a stamp with the hash of the lock and setup.py makes a
# second run a no-op. Picks a Python 3.9-3.11 (TFF 0.87 needs <3.12); set
# PYTHON=/path/to/python3.11 to choose one.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/py311-lock.txt
VENV=.venv
STAMP=$VENV/.tff_niid-installed
want=$(cat "$LOCK" setup.py | sha256sum | cut -d' ' -f1)

if [[ -f $STAMP && $(cat "$STAMP") == "$want" && -x $VENV/bin/python ]]; then
  echo "[install] .venv is up to date with $LOCK"
  exit 0
fi

supported() {  # prints "3.11" etc. if $1 is a Python 3.9-3.11
  "$1" -c 'import sys; v=sys.version_info[:2]; print("%d.%d" % v) if (3, 9) <= v <= (3, 11) else sys.exit(1)' 2>/dev/null
}
py=""
for cand in ${PYTHON:-} python3.11 python3.10 python3.9 python3 python; do
  if command -v "$cand" >/dev/null && ver=$(supported "$cand"); then py=$cand; break; fi
done
if [[ -z $py ]]; then
  echo "[install] ERROR: no Python 3.9-3.11 found (tried: ${PYTHON:-} python3.11 python3.10 python3.9 python3 python)." >&2
  echo "[install] TensorFlow Federated 0.87 requires Python < 3.12. Install Python 3.11 (e.g. 'pyenv install 3.11'," >&2
  echo "[install] 'apt-get install python3.11-venv', or 'uv python install 3.11') and rerun, or set PYTHON=/path/to/python3.11." >&2
  echo "[install] See BUILD_NOTES.md." >&2
  exit 1
fi
[[ $ver == 3.11 ]] || echo "[install] WARNING: $LOCK was verified on Python 3.11; using $ver."

start=$(date +%s)
if [[ ! -x $VENV/bin/python ]] || ! supported "$VENV/bin/python" >/dev/null; then
  rm -rf "$VENV"
  echo "[install] creating $VENV with $py ($ver)"
  "$py" -m venv "$VENV"
fi
# --no-deps: the lock is complete, and it overrides TFF's unavailable
# jax/jaxlib==0.4.14 pins with 0.4.13, which pip's resolver would reject.
echo "[install] installing pinned packages from $LOCK"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$LOCK"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "$want" > "$STAMP"
echo "[install] done in $(( $(date +%s) - start )) s"

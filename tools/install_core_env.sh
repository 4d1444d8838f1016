#!/usr/bin/env bash
# Creates ./.venv-core: the numpy core of tff_niid (no TensorFlow) with the
# NEWEST numpy and matplotlib from the registry, to prove the partition
# library works outside TFF's pins (numpy 2.x). Rebuilt when setup.py changes.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-core
STAMP=$VENV/.tff_niid-core-installed
want=$(sha256sum setup.py | cut -d' ' -f1)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" && -x $VENV/bin/python ]]; then
  exit 0
fi
py=${PYTHON:-python3}
rm -rf "$VENV"
"$py" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[plots,test]"
"$VENV/bin/python" -c 'import numpy, sys; print(f"[install] {sys.argv[1]}: numpy {numpy.__version__}, Python {sys.version.split()[0]}")' "$VENV"
echo "$want" > "$STAMP"

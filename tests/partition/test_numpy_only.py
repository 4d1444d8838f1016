"""The numpy core never imports TensorFlow, TFF or (until a plot is drawn)
matplotlib."""

import subprocess
import sys

import pytest

NUMPY_CORE = ("tff_niid.partition", "tff_niid.datasets", "tff_niid.download",
              "tff_niid.results", "tff_niid.grids", "tff_niid.result_plots",
              "tff_niid.rundir")


@pytest.mark.parametrize("module", NUMPY_CORE)
def test_no_tensorflow_or_matplotlib_import(module):
  code = (f"import sys; import {module}; "
          "bad = [m for m in ('tensorflow', 'tensorflow_federated', "
          "'matplotlib') if m in sys.modules]; print(bad); "
          "sys.exit(1 if bad else 0)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=False)
  assert out.returncode == 0, out.stdout + out.stderr

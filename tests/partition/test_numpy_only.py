"""tff_niid.partition and tff_niid.datasets never import TensorFlow."""

import subprocess
import sys


def test_no_tensorflow_or_matplotlib_import():
  code = ("import sys; import tff_niid.partition, tff_niid.datasets; "
          "bad = [m for m in ('tensorflow', 'tensorflow_federated', "
          "'matplotlib') if m in sys.modules]; print(bad); "
          "sys.exit(1 if bad else 0)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=False)
  assert out.returncode == 0, out.stdout + out.stderr

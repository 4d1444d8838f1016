"""Builds a non-IID partition of MNIST/Fashion-MNIST, measures and plots it.

Runs tff_niid.partition_cli (installed as `tff-niid-partition`), whose
docstring has the examples and what is written; the flags are below.
"""

from tff_niid import checkout
from tff_niid import partition_cli

if __name__ == "__main__":
  checkout.require_own_checkout(__file__)
  partition_cli.run()

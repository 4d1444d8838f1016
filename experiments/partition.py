"""Builds a non-IID partition of MNIST/Fashion-MNIST, measures and plots it:
`tff_niid.partition_cli` (installed as `tff-niid-partition`), run from a
clone. Its flags and examples: `python experiments/partition.py --help`.
"""

from tff_niid import partition_cli

if __name__ == "__main__":
  partition_cli.run()

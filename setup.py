"""tff_niid: non-IID federated datasets for TensorFlow Federated.

`pip install .` installs the numpy core (tff_niid.partition, tff_niid.datasets,
tff_niid.results, the partition CLI `tff-niid-partition`) on any Python >= 3.9 with numpy 1.25+ or
2.x. The TFF layer needs the lock first, on Python 3.9-3.11:
`pip install --no-deps -r requirements/py311-lock.txt`, then
`pip install --no-deps .` (TFF 0.87's own pins name a jaxlib that PyPI does
not have, so no extra here can install it: BUILD_NOTES.md). The lock is in
the repository and the sdist.
"""

import re

import setuptools

with open("tff_niid/__init__.py") as f:
  VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)
with open("README.md", encoding="utf-8") as f:
  README = f.read()

setuptools.setup(
    name="tff_niid",
    version=VERSION,
    description=("Non-IID partitions of MNIST / Fashion-MNIST (label skew and "
                 "rule-based within-class dependence) as TFF ClientData, and "
                 "FedAvg-family training with TensorFlow Federated."),
    packages=setuptools.find_packages(include=["tff_niid", "tff_niid.*"]),
    # The loopback bind shim for TFF's worker, compiled at first use.
    package_data={"tff_niid": ["loopback_bind.c"]},
    # The partition binary (numpy core; experiments/partition.py in a clone).
    entry_points={"console_scripts": [
        "tff-niid-partition = tff_niid.partition_cli:run"]},
    long_description=README,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    install_requires=["numpy>=1.25", "absl-py>=1.0"],
    extras_require={
        "plots": ["matplotlib>=3.5"],
        "test": ["pytest", "pytest-xdist", "scipy", "nbclient", "nbformat",
                 "ipykernel", "mypy", "vermin"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
)

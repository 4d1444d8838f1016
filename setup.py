"""tff_niid: non-IID federated datasets for TensorFlow Federated."""

import re

import setuptools

with open("tff_niid/__init__.py") as f:
  VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setuptools.setup(
    name="tff_niid",
    version=VERSION,
    description=("Non-IID partitions of MNIST / Fashion-MNIST (label skew and "
                 "rule-based within-class dependence) as TFF ClientData, and "
                 "FedAvg-family training with TensorFlow Federated."),
    packages=setuptools.find_packages(include=["tff_niid", "tff_niid.*"]),
    # The loopback bind shim for TFF's worker, compiled at first use.
    package_data={"tff_niid": ["loopback_bind.c"]},
    python_requires=">=3.9,<3.12",
    # Exact versions: requirements/py311-lock.txt (see BUILD_NOTES.md).
    install_requires=[
        "tensorflow-federated==0.87.0",
        "tensorflow==2.14.*",
        "numpy~=1.25",
        "absl-py>=1.0",
    ],
    extras_require={"plots": ["matplotlib>=3.5"], "test": ["pytest"]},
)

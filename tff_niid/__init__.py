"""tff_niid: non-IID federated datasets (label skew and rule-based within-class
dependence) for TensorFlow Federated.

Import `tff_niid.partition` and `tff_niid.datasets` without TensorFlow; the TFF
layer lives in `tff_niid.clientdata`, `tff_niid.models` and `tff_niid.training`.
"""

__version__ = "0.1.0"

"""Non-IID partitions of a labelled dataset into clients (numpy only).

Every scheme is a pure function
`scheme(labels, num_clients, *, <params>, seed) -> Partition`.
Importing this package never imports TensorFlow (matplotlib is imported only
inside `plots` functions).
"""

from tff_niid.partition import metrics
from tff_niid.partition import plots
from tff_niid.partition.core import fingerprint
from tff_niid.partition.core import load
from tff_niid.partition.core import Partition
from tff_niid.partition.dirichlet import dirichlet
from tff_niid.partition.iid import iid
from tff_niid.partition.match_test import match_test
from tff_niid.partition.noise import feature_noise_levels
from tff_niid.partition.noise import label_noise

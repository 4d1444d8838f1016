"""Non-IID partitions of a labelled dataset into clients (numpy only).

Every scheme is a pure function
`scheme(labels, num_clients, *, <params>, seed) -> Partition`.
Importing this package never imports TensorFlow.
"""

from tff_niid.partition.core import fingerprint
from tff_niid.partition.core import load
from tff_niid.partition.core import Partition
from tff_niid.partition.dirichlet import dirichlet
from tff_niid.partition.iid import iid

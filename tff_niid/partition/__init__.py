"""Non-IID partitions of a labelled dataset into clients (numpy only).

Every scheme is a pure function
`scheme(labels, num_clients, *, <params>, seed) -> Partition` (`natural`
takes per-sample ids instead of a client count), listed by name in
`registry.SCHEMES`, which the spec grammar (`spec`) reads. Importing this
package never imports TensorFlow; matplotlib is imported only inside `plots`
functions.
"""

from tff_niid.partition import attributes
from tff_niid.partition import metrics
from tff_niid.partition import plots
from tff_niid.partition import registry
from tff_niid.partition import report
from tff_niid.partition import spec
from tff_niid.partition.balanced_dirichlet import balanced_dirichlet
from tff_niid.partition.consecutive_classes import consecutive_classes
from tff_niid.partition.core import fingerprint
from tff_niid.partition.core import load
from tff_niid.partition.core import Partition
from tff_niid.partition.dirichlet import dirichlet
from tff_niid.partition.extended_dirichlet import extended_dirichlet
from tff_niid.partition.external import from_client_indices
from tff_niid.partition.iid import iid
from tff_niid.partition.label_quantity import label_quantity
from tff_niid.partition.matched_test_split import match_test
from tff_niid.partition.natural import natural
from tff_niid.partition.noise import feature_noise_levels
from tff_niid.partition.noise import label_noise
from tff_niid.partition.quantity_skew import quantity_sizes
from tff_niid.partition.quantity_skew import quantity_skew
from tff_niid.partition.rotation import client_rotations
from tff_niid.partition.shards import shards
from tff_niid.partition.split_clients import split_clients

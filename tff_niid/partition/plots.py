"""PNG plots of a partition (matplotlib, imported lazily so that
`tff_niid.partition` itself needs only numpy; figures are drawn outside
pyplot, `new_figure`).

For many clients the client x class matrix is unreadable row by row, so
clients are sorted by their dominant class (then by its share) and, above
`max_clients`, consecutive sorted clients are averaged into `max_clients` rows
(the title says so).
"""

import os

import numpy as np

from tff_niid.partition import metrics

INSTALL_HINT = "pip install 'tff_niid[plots]'"


def available() -> bool:
  """Whether matplotlib can be imported (the plots need it; nothing else
  of the numpy core does)."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def new_figure(**options):
  """A matplotlib `Figure(**options)` outside pyplot: drawing and saving it
  neither switches the process's backend nor adds to pyplot's figures, so a
  notebook's own inline plots are left as they were."""
  if not available():
    raise ModuleNotFoundError(
        f"tff_niid's plots need matplotlib: {INSTALL_HINT}.",
        name="matplotlib")
  from matplotlib import figure  # pylint: disable=g-import-not-at-top
  return figure.Figure(**options)


# Up to this many clients, the plots name each client by its index.
_LABELLED_CLIENTS = 50


def plot_label_counts(partition, labels, path, *, num_classes=None,
                      max_clients=100):
  """Heatmap of each client's label mix (fractions), clients sorted."""
  counts = metrics.label_counts(partition, labels, num_classes).astype(float)
  fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  dominant = fractions.argmax(axis=1)
  order = np.lexsort((-fractions.max(axis=1), dominant))
  rows = fractions[order]
  n = rows.shape[0]
  title = f"label mix of {n} clients ({partition.scheme})"
  if n > max_clients:
    groups = np.array_split(np.arange(n), max_clients)
    rows = np.stack([rows[g].mean(axis=0) for g in groups])
    title += f"\nsorted by dominant class; rows average ~{n // max_clients} clients"
  else:
    title += "\nsorted by dominant class"
  fig = new_figure(figsize=(6, 6))
  ax = fig.subplots()
  image = ax.imshow(rows, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                    interpolation="nearest")
  ax.set_xlabel("class")
  ax.set_ylabel("client (sorted)" if n <= max_clients else "client group (sorted)")
  ax.set_xticks(range(rows.shape[1]))
  if n <= _LABELLED_CLIENTS:  # each row named by its client's index
    ax.set_yticks(range(n), [str(i) for i in order], fontsize=7)
  ax.set_title(title, fontsize=10)
  fig.colorbar(image, ax=ax, label="fraction of client's samples")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def plot_sizes(partition, path):
  """Client sizes: one bar per client up to _LABELLED_CLIENTS clients (a
  histogram of so few is mostly empty bins), else a histogram."""
  sizes = partition.sizes
  fig = new_figure(figsize=(6, 4))
  ax = fig.subplots()
  if len(sizes) <= _LABELLED_CLIENTS:
    ax.bar(range(len(sizes)), sizes, color="tab:blue")
    ax.set_xlabel("client")
    ax.set_ylabel("samples")
  else:
    ax.hist(sizes, bins=min(50, max(10, len(sizes) // 10)), color="tab:blue")
    ax.set_xlabel("samples per client")
    ax.set_ylabel("clients")
  ax.set_title(f"client sizes ({len(sizes)} clients): min {sizes.min()}, "
               f"median {int(np.median(sizes))}, max {sizes.max()}", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def plot_divergence(partition, labels, path, *, num_classes=None):
  """Jensen-Shannon divergence of each client to the global mix, sorted."""
  js = np.sort(metrics.client_heterogeneity(partition, labels,
                                            num_classes)["js"])[::-1]
  fig = new_figure(figsize=(6, 4))
  ax = fig.subplots()
  ax.plot(np.arange(1, js.shape[0] + 1), js, color="tab:red")
  ax.set_xlabel("client rank")
  ax.set_ylabel("JS divergence to global label mix")
  ax.set_ylim(0, 1)
  ax.set_title(f"label skew per client: mean JS {js.mean():.3f}", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  return path


def plot_all(partition, labels, out_dir, *, prefix=""):
  """All plots into `out_dir`; returns the file paths."""
  os.makedirs(out_dir, exist_ok=True)
  at = lambda name: os.path.join(out_dir, f"{prefix}{name}.png")
  return [plot_label_counts(partition, labels, at("label_mix")),
          plot_sizes(partition, at("sizes")),
          plot_divergence(partition, labels, at("divergence"))]

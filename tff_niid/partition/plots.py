"""PNG plots of a partition (matplotlib, imported lazily so that
`tff_niid.partition` itself needs only numpy; figures are drawn outside
pyplot, `new_figure`).

For many clients the client x class matrix is unreadable row by row, so by
default clients are sorted by their dominant class (then by its share) and,
above `max_clients`, consecutive sorted clients are averaged into
`max_clients` rows (the title says so); `plot_label_counts(order="client")`
keeps clients at their index instead.
"""

import os

import numpy as np

from tff_niid.partition import _checks
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


_KINDS = ("heatmap", "bar")
_UNITS = ("fraction", "count")
_ORDERS = ("dominant", "client")


def plot_label_counts(partition, labels, path=None, *, num_classes=None,
                      max_clients=100, kind="heatmap", unit="fraction",
                      order="dominant", class_names=None, ax=None):
  """Each client's label mix, as a heatmap or as stacked bars.

  The bars (`kind="bar"`, `unit="count"`, `order="client"`) are Flower
  Datasets' `plot_label_distributions(plot_type="bar")`; the heatmap with
  `order="dominant"` (the default) stays readable for thousands of clients.

  Args:
    partition: a `Partition` of `labels`.
    labels: the labels it was made from (checked by fingerprint).
    path: the PNG to write; may be None when `ax` is given.
    num_classes: classes shown (default: the largest label + 1).
    max_clients: above this many clients, `order="dominant"` averages
      consecutive sorted clients into `max_clients` rows (or bars) and
      `order="client"` shows clients 0 to max_clients - 1; the title says
      which.
    kind: "heatmap" (clients x classes, clients as rows) or "bar" (a stacked
      bar per client, a colour per class).
    unit: "fraction" of each client's samples, or "count" of samples.
    order: "dominant": clients sorted by their dominant class, then its
      share; "client": by index, so client i is at position i. Up to 50
      clients are named (`Partition.client_ids`: natural's ids).
    class_names: a name per class for the axis or legend (default: ids).
    ax: a matplotlib Axes to draw into (a notebook's, say) instead of a new
      figure; it is saved only where `path` is given.

  Returns:
    `path` where given, else `ax`.

  Raises:
    ValueError: an unknown kind, unit or order, max_clients < 1,
      class_names of another length than the classes, or neither path nor
      ax.
  """
  for name, value, allowed in (("kind", kind, _KINDS), ("unit", unit, _UNITS),
                               ("order", order, _ORDERS)):
    if value not in allowed:
      raise ValueError(f"`{name}` must be one of {list(allowed)}; got "
                       f"{value!r}.")
  max_clients = _checks.check_positive("max_clients", max_clients,
                                       integer=True)
  if path is None and ax is None:
    raise ValueError("give `path` (a PNG to write), `ax` (an Axes to draw "
                     "into), or both.")
  counts = metrics.label_counts(partition, labels, num_classes).astype(float)
  num_classes = counts.shape[1]
  if class_names is None:
    class_names = [str(c) for c in range(num_classes)]
  elif len(class_names) != num_classes:
    raise ValueError(f"`class_names` has {len(class_names)} names for "
                     f"{num_classes} classes (ids 0..{num_classes - 1}): give "
                     "one per class, and num_classes= for classes above the "
                     "labels' largest id.")
  class_names = [str(name) for name in class_names]
  fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  n = counts.shape[0]
  if order == "dominant":
    clients = np.lexsort((-fractions.max(axis=1), fractions.argmax(axis=1)))
  else:
    clients = np.arange(min(n, max_clients))
  rows = (fractions if unit == "fraction" else counts)[clients]
  title = f"label mix of {n} clients ({partition.scheme})"
  if order == "client":
    client_axis = "client"
    if n > max_clients:
      title += f"\nclients 0-{max_clients - 1} of {n}"
  elif n > max_clients:
    rows = np.stack([rows[g].mean(axis=0)
                     for g in np.array_split(np.arange(n), max_clients)])
    client_axis = "client group (sorted)"
    title += (f"\nsorted by dominant class; each "
              f"{'row' if kind == 'heatmap' else 'bar'} averages "
              f"~{n // max_clients} clients")
  else:
    client_axis = "client (sorted)"
    title += "\nsorted by dominant class"
  value_axis = ("fraction of client's samples" if unit == "fraction" else
                "samples" if rows.shape[0] == len(clients) else
                "samples (mean of the group)")
  ids = partition.client_ids
  tick_names = ([ids[i] for i in clients]
                if rows.shape[0] == len(clients) and
                len(clients) <= _LABELLED_CLIENTS else None)
  figure = None
  if ax is None:
    figure = new_figure(figsize=(8, 5) if kind == "bar" else (6, 6))
    ax = figure.subplots()
  if kind == "heatmap":
    image = ax.imshow(rows, aspect="auto", cmap="viridis", vmin=0,
                      vmax=1 if unit == "fraction" else None,
                      interpolation="nearest")
    ax.set_xlabel("class")
    ax.set_ylabel(client_axis)
    if num_classes <= _NAMED_CLASSES:  # above, matplotlib's own ticks
      ax.set_xticks(range(num_classes), class_names,
                    rotation=90 if max(map(len, class_names)) > 3 else 0)
    if tick_names is not None:
      ax.set_yticks(range(len(tick_names)), tick_names, fontsize=7)
    ax.figure.colorbar(image, ax=ax, label=value_axis)
  else:
    positions = np.arange(rows.shape[0])
    colours = _class_colours(num_classes)
    bottom = np.zeros(rows.shape[0])
    for c in range(num_classes):
      drawn = rows[:, c] > 0  # no empty segments: 1,000 classes stay fast
      ax.bar(positions[drawn], rows[drawn, c], bottom=bottom[drawn],
             width=0.9, color=colours[c])
      bottom += rows[:, c]
    ax.set_xlabel(client_axis)
    ax.set_ylabel(value_axis)
    ax.set_xlim(-0.5, rows.shape[0] - 0.5)
    if tick_names is not None:
      ax.set_xticks(positions, tick_names, fontsize=7,
                    rotation=90 if len(tick_names) > 20 else 0)
    if num_classes <= _LEGEND_CLASSES:
      # Patches of the classes' colours: a class without a segment drawn
      # has no bar to take its colour from.
      from matplotlib import patches  # pylint: disable=g-import-not-at-top
      ax.legend(handles=[patches.Patch(color=colours[c], label=class_names[c])
                         for c in range(num_classes)],
                title="class", fontsize=7, bbox_to_anchor=(1.01, 1),
                loc="upper left")
    else:  # too many for a legend: the colours' scale of class ids
      from matplotlib import cm, colors  # pylint: disable=g-import-not-at-top
      ax.figure.colorbar(
          cm.ScalarMappable(colors.Normalize(0, num_classes - 1), "viridis"),
          ax=ax, label="class id")
  ax.set_title(title, fontsize=10)
  if figure is not None:
    figure.tight_layout()
  if path is None:
    return ax
  return _save(ax.figure, path, bbox_inches="tight")


# Up to this many classes the stacked bars name each class in a legend
# (above: a colour bar of class ids), and the heatmap each class's column.
_LEGEND_CLASSES = 20
_NAMED_CLASSES = 30


def _class_colours(num_classes):
  """One colour per class: matplotlib's qualitative tab10 / tab20 where
  they have enough, else evenly spaced along viridis."""
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  if num_classes <= 20:
    table = colormaps["tab10" if num_classes <= 10 else "tab20"]
    return [table(c) for c in range(num_classes)]
  return [colormaps["viridis"](c / (num_classes - 1))
          for c in range(num_classes)]


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
  return _save(fig, path)


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
  return _save(fig, path)


def _save(fig, path, **options):
  """Saves `fig` at `path`; returns the file written (matplotlib writes a
  PNG, and adds .png to a path without an extension)."""
  path = os.fspath(path)
  if not os.path.splitext(path)[1]:
    path += ".png"
  fig.savefig(path, dpi=100, **options)
  return path


def plot_files(out_dir, *, prefix=""):
  """The paths `plot_all` writes: the label mix, the sizes, the divergence."""
  return [os.path.join(out_dir, f"{prefix}{name}.png")
          for name in ("label_mix", "sizes", "divergence")]


def plot_all(partition, labels, out_dir, *, prefix=""):
  """All plots into `out_dir`; returns the file paths (`plot_files`)."""
  os.makedirs(out_dir, exist_ok=True)
  label_mix, sizes, divergence = plot_files(out_dir, prefix=prefix)
  return [plot_label_counts(partition, labels, label_mix),
          plot_sizes(partition, sizes),
          plot_divergence(partition, labels, divergence)]

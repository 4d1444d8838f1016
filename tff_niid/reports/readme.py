"""The generated blocks of experiments/results/README.md and superseded.md:
which function writes each, rewriting them, and finding regenerated outputs
that differ from the committed ones (`report.py --check`).
"""

import collections
import difflib
import os
import re

from tff_niid import results
from tff_niid.reports import code_spans
from tff_niid.reports import mcmahan2017
from tff_niid.reports import new_rows
from tff_niid.reports import niid_bench
from tff_niid.reports import tree


TEXT_OUTPUTS = (*(os.path.basename(page) for page in tree.PAGES),
                "results.md")

PLOTS = ("accuracy_curves.png", "references.png", "sweep.png", "paired.png",
         niid_bench.MU_PLOT)

# The plots drawn across grids, by path under experiments/results/, and
# their builders `(root, path) -> drawn`; a grid's own plots are grid.py's.
CROSS_GRID_PLOTS = {
    os.path.join(niid_bench.MU_GRID, niid_bench.MU_PLOT):
        niid_bench.fedprox_mu_plot,
}

# The grids of issue 12's reproductions, in the order the report shows them.
REPRODUCTIONS = (*mcmahan2017.LIKE_FOR_LIKE, "niid_bench.cfg",
                 "niid_bench_fedprox_mu.cfg", "niid_bench_per_epoch.cfg")


def reproduction_progress(root: str) -> str:
  """Per reproduction grid: its cells done and to do (from its config and
  the committed cells), those of its unfinished cells that are parked in
  experiments/unfinished/ with the round they reached, and the training
  cell-hours the cells to do need, estimated as its section's progress
  table does (`mcmahan2017.progress`, `results.seed_table`); then the
  totals."""
  mcmahan_progress = mcmahan2017.grid_progress(root)
  rows, to_do_hours, unestimated = [], [], []
  done_total = to_do_total = 0
  for name in REPRODUCTIONS:
    config, cells = tree.config_cells(root, name)
    grid = config["grid_name"][-1]
    unfinished = [os.path.basename(c["run_dir"]) for c in cells
                  if not results.ended(c["run"])]
    parked = [p for p in (tree.parked(root, grid, cell) for cell in unfinished)
              if p]
    hours, _ = results.hours_to_do(
        mcmahan_progress[grid] if name in mcmahan2017.LIKE_FOR_LIKE
        else results.group_progress(cells))
    if hours is None:
      unestimated.append(grid)
    else:
      to_do_hours.append(hours)
    done_total += len(cells) - len(unfinished)
    to_do_total += len(unfinished)
    rows.append([tree.grid_link(root, grid), f"`configs/{name}`",
                 "; ".join(parked) or "—", str(len(cells) - len(unfinished)),
                 str(len(unfinished)), "—" if hours is None else f"{hours:.1f}"])
  total = (f"{done_total} of {done_total + to_do_total} cells done; the "
           f"{to_do_total} to do need about {sum(to_do_hours):.0f} training "
           "cell-hours (contended times)")
  if unestimated:
    total += f", and those of {', '.join(unestimated)} (no estimate yet)"
  return results.table(["grid", "config", "parked, unfinished (round reached)",
                        "cells done", "cells to do",
                        "training cell-hours to do (estimate)"], rows,
                       left=3) + "\n\n" + total + "."


def at_a_glance(root: str) -> str:
  """The reproductions in one table: per reproduction, its rows (groups)
  with every seed done, what is compared with the reference, the
  result, and what is left."""
  like_for_like = mcmahan2017.headline(root)
  rows = [["McMahan et al. 2017, Tables 1–2 (section 1)",
           like_for_like[0],
           "rounds to target: the paper's count on our curves / the paper's",
           like_for_like[1], like_for_like[2]],
          *niid_bench.headlines(root)]
  return results.table(["reproduction",
                        "rows with every seed done (finished or diverged)",
                        "compared", "result (over seeds)",
                        "not done"], rows, left=5)


def anchor(heading: str) -> str:
  """The in-page anchor GitHub gives a markdown heading's text: lower case,
  punctuation dropped (letters, digits, `_`, `-` and spaces kept), spaces
  as `-`. For plain headings: markup GitHub renders first (links,
  emphasis) is not resolved here."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(markdown: str) -> list[tuple[int, str, str, bool]]:
  """(level, text, in-page anchor, whether inside a generated block) of every
  heading of a markdown page, code fences skipped; a repeated anchor is
  numbered as GitHub numbers it: name, name-1, name-2, ..."""
  seen: dict[str, int] = {}
  found = []
  generated = fenced = False
  for line in markdown.splitlines():
    if line.startswith("<!-- generated:"):
      generated = True
    elif line.startswith("<!-- end generated:"):
      generated = False
    elif line.startswith("```"):
      fenced = not fenced
    heading = None if fenced else re.match(r"(#+) (.+)$", line)
    if heading:
      slug = anchor(heading.group(2))
      count = seen.get(slug, 0)
      seen[slug] = count + 1
      found.append((len(heading.group(1)), heading.group(2),
                    f"{slug}-{count}" if count else slug, generated))
  return found


def contents(root: str) -> str:
  """The results README's headings from `##` to `####`, those written in its
  prose (not the generated blocks'), as a nested list of in-page links."""
  with open(os.path.join(root, tree.README)) as f:
    text = f.read()
  return "\n".join(
      f"{'  ' * (level - 2)}- [{heading.replace('`', '')}](#{target})"
      for level, heading, target, generated in headings(text)
      if not generated and 2 <= level <= 4)


def blocks(root):
  """{block name: markdown} for the results pages (`tree.PAGES`), from the
  committed files under `root`."""
  builders = {
      "contents": contents,
      "at_a_glance": at_a_glance,
      "timing": tree.timing,
      "reproduction_progress": reproduction_progress,
      "mcmahan_like_for_like": mcmahan2017.like_for_like,
      "mcmahan_approach": mcmahan2017.approach,
      "mcmahan_rounds": mcmahan2017.rounds,
      "mcmahan_ratios": mcmahan2017.ratios,
      "mcmahan_curves": mcmahan2017.curves,
      "mcmahan_lr": tree.grid_report("mcmahan2017_lr"),
      "mcmahan_fedsgd_lr": tree.grid_report("mcmahan2017_fedsgd_lr"),
      "mcmahan_progress": mcmahan2017.progress,
      "mcmahan_2nn_init": tree.grid_report("mcmahan2017_2nn_init"),
      "mcmahan_2nn_seeds": mcmahan2017.twonn_seeds,
      "mcmahan_2nn_grid": tree.grid_report("mcmahan2017_2nn"),
      "mcmahan_2nn_layer_seeds_grid": tree.grid_report(
          "mcmahan2017_2nn_layer_seeds"),
      "niid_bench_paper": tree.grid_report("niid_bench_paper"),
      "niid_bench_against_fedavg": niid_bench.against_fedavg,
      "niid_bench_fedprox_mu": niid_bench.fedprox_mu,
      "niid_bench_glorot": tree.grid_report("niid_bench_glorot"),
      "niid_bench_torch": niid_bench.torch_runs,
      "torch_versions": niid_bench.torch_versions,
      "client_update_check": tree.command_output("client_update_check"),
      "niid_bench_batching": niid_bench.batching,
      "niid_bench_table": niid_bench.first_grid,
      "niid_bench_curves": niid_bench.first_grid_curves,
      "fedprox_sign": tree.command_output("fedprox_sign"),
      "key_rules_partitions": new_rows.key_rules_partitions,
      "key_rules_accuracy": new_rows.key_rules_accuracy,
      "key_rules_key_cost": new_rows.key_rules_key_cost,
      "key_rules_vs_fedavg": new_rows.key_rules_vs_fedavg,
      "label_noise_accuracy": new_rows.label_noise_accuracy,
      "label_noise_differences": new_rows.label_noise_differences,
      "code_spans": code_spans.audit,
  }
  return {name: build(root) for name, build in builders.items()}


def rewrite(root):
  """Rewrites the generated blocks of `root`'s results pages (`tree.PAGES`:
  the README and the superseded runs' page) from `blocks`, keeping the
  prose around them.

  Raises:
    ValueError: a block on no page, or on two.
  """
  texts = {}
  for page in tree.PAGES:
    with open(os.path.join(root, page)) as f:
      texts[page] = f.read()
  on_page = {page: results.generated_names(text)
             for page, text in texts.items()}
  built = blocks(root)
  placed = collections.Counter(name for names in on_page.values()
                               for name in names)
  missing = sorted(set(built) - set(placed))
  twice = sorted(name for name, count in placed.items() if count > 1)
  if missing or twice:
    raise ValueError(f"generated blocks on no page of {list(tree.PAGES)}: "
                     f"{missing}; on two: {twice}")
  # Every page is filled before any is written: a page that fails leaves
  # all as they were. A name `blocks` does not know is left for
  # fill_generated to refuse.
  filled = {page: results.fill_generated(text, {
      name: built[name] for name in on_page[page] if name in built})
            for page, text in texts.items()}
  for page, text in filled.items():
    with open(os.path.join(root, page), "w") as f:
      f.write(text)


def write_plots(root):
  """Draws `CROSS_GRID_PLOTS` under `root`'s results from its committed
  files, each where its grid's directory exists."""
  for relative, draw in CROSS_GRID_PLOTS.items():
    path = os.path.join(root, tree.RESULTS, relative)
    if os.path.isdir(os.path.dirname(path)):
      draw(root, path)


def stale(copy, repo):
  """The outputs regenerated under `copy` (the results pages, the grids'
  results.md and plots) that differ from `repo`'s, as {path relative to
  both: the unified diff's lines}: a text output by content, a plot by
  existence (its diff empty)."""
  found: dict[str, list[str]] = {}
  for directory, _, names in os.walk(os.path.join(copy, tree.RESULTS)):
    for name in names:
      if name not in TEXT_OUTPUTS + PLOTS:
        continue
      relative = os.path.relpath(os.path.join(directory, name), copy)
      committed = os.path.join(repo, relative)
      if not os.path.exists(committed):
        found[relative] = []
      elif name in TEXT_OUTPUTS:
        with open(committed) as f, open(os.path.join(copy, relative)) as g:
          diff = list(difflib.unified_diff(
              f.read().splitlines(), g.read().splitlines(),
              f"{relative} (now)", f"{relative} (regenerated)",
              lineterm=""))
        if diff:
          found[relative] = diff
  return found

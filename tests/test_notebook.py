"""notebooks/quickstart.ipynb runs end to end in this environment."""

import os

import nbclient
import nbformat

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "quickstart.ipynb")


def test_committed_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None


def test_runs_end_to_end(tmp_path):
  nb = nbformat.read(NOTEBOOK, as_version=4)
  # "python3" resolves to this interpreter's ipykernel (the project's venv).
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
  assert "ordered by slant" in text and "key dispersion" in text
  assert (tmp_path / "quickstart_run" / "metrics.csv").exists()
  assert (tmp_path / "quickstart_plots" / "dirichlet_label_mix.png").exists()

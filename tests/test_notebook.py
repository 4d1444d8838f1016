"""notebooks/quickstart.ipynb runs end to end: all cells where TFF is
installed, the numpy cells with the TFF cells skipped (and saying so) where it
is not (`make test-core`)."""

import importlib.util
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
  assert (tmp_path / "quickstart_plots" / "dirichlet_label_mix.png").exists()
  assert (tmp_path / "quickstart_plots" /
          "same_digit_by_client.png").stat().st_size > 5_000
  if importlib.util.find_spec("tensorflow_federated"):
    assert (tmp_path / "quickstart_run" / "metrics.csv").exists()
    assert "'final_test_accuracy': " in text  # the summary is shown
  else:
    assert text.count("Skipped: the TFF cells need TensorFlow Federated") == 3
    assert not (tmp_path / "quickstart_run").exists()

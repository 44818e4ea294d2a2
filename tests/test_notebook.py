"""experiments/notebooks/quickstart.ipynb runs without error (a ~100-update quick run) and is
stored without outputs."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "experiments", "notebooks", "quickstart.ipynb")


def _execute(nb, cwd, monkeypatch):
  # The kernel inherits this environment: quick training, and no PYTHONPATH, so the notebook
  # must find the (uninstalled) package itself.
  monkeypatch.setenv("CAUSAL_META_QUICK", "1")
  monkeypatch.delenv("PYTHONPATH", raising=False)
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": cwd}})
  client.execute()  # raises CellExecutionError on the first failing cell
  return nb


def test_stored_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None


def test_runs_from_its_folder(monkeypatch):
  nb = _execute(nbformat.read(NOTEBOOK, as_version=4), os.path.dirname(NOTEBOOK), monkeypatch)
  text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/markdown", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)
  assert "0.4913" in text                                   # the conditional oracle
  assert "counterfactual: 100 updates" in text and "demonstration: 100 updates" in text
  assert "| LSTM, counterfactual |" in text and "| interventional oracle |" in text
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
  assert len(images) >= 2 + 2 * 3  # the oracle bars, the KL curves, 3 PNGs per run


def test_setup_cell_runs_from_the_repo_root(monkeypatch):
  nb = nbformat.read(NOTEBOOK, as_version=4)
  first = next(c for c in nb.cells if c.cell_type == "code")
  nb.cells = [first, nbformat.v4.new_code_cell("import causal_meta; print(causal_meta.__file__)")]
  nb = _execute(nb, ROOT, monkeypatch)
  assert os.path.join(ROOT, "causal_meta") in nb.cells[1].outputs[0]["text"]

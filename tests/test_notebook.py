"""The notebooks in experiments/notebooks run without error (~100-update quick runs), show what
they say, and are stored without outputs."""

import os
import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "experiments", "notebooks", "quickstart.ipynb")
YOUR_OWN = os.path.join(ROOT, "experiments", "notebooks", "your_own_task.ipynb")


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


def _text(nb) -> str:
  """Every code cell's printed text and displayed markdown."""
  return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/markdown", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.parametrize("path", [NOTEBOOK, YOUR_OWN])
def test_stored_without_outputs(path):
  nb = nbformat.read(path, as_version=4)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None


def test_runs_from_its_folder(monkeypatch):
  nb = _execute(nbformat.read(NOTEBOOK, as_version=4), os.path.dirname(NOTEBOOK), monkeypatch)
  text = _text(nb)
  assert "0.4913" in text                                   # the conditional oracle
  assert "counterfactual: 100 updates" in text and "demonstration: 100 updates" in text
  assert "| LSTM, counterfactual |" in text and "| interventional oracle |" in text
  assert "held-out log-likelihood by K̂" in text and "from the log alone: KL(int" in text
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
  assert len(images) >= 2 + 2 * 3  # the oracle bars, the KL curves, 3 PNGs per run


def test_your_own_task(monkeypatch):
  """A task in plain JAX and one from tables, an MLP agent of the notebook's own, both trained
  through their registered names: the counterfactual agent is the closer one to the
  interventional oracle, the demonstration agent to the conditional one, and load_run's
  parameters give the summary's KL again."""
  nb = _execute(nbformat.read(YOUR_OWN, as_version=4), os.path.dirname(YOUR_OWN), monkeypatch)
  text = _text(nb)
  # The exact oracle on the notebook's task: after door 0 came up empty once, P(θ = 0) is
  # 2/3 conditioning (0.8·0.5 against 0.2) and 1/3 intervening (0.5 against 1), so door 0
  # next has probability 2/3·0.8 + 1/3·0.2 = 0.6 against 1/3·0.8 + 2/3·0.2 = 0.4.
  assert "conditional [0.6000 0.4000], interventional [0.4000 0.6000]" in text
  gap = float(re.search(r"largest \|acting - learning\| logit difference: (\S+)", text)[1])
  assert gap < 1e-5
  kl = {(task, teaching): (float(a), float(b)) for task, teaching, a, b in re.findall(
      r"\| (which_door|umbrella) \| (counterfactual|demonstration) \| ([\d.]+) \| ([\d.]+) \|",
      text)}
  assert len(kl) == 4
  for task in ("which_door", "umbrella"):
    cf, demo = kl[task, "counterfactual"], kl[task, "demonstration"]
    assert cf[0] < demo[0] and demo[1] < cf[1], (task, cf, demo)
  again, stored = map(float, re.search(r"re-evaluated ([\d.]+), summary.json ([\d.]+)", text)
                      .groups())
  assert again == pytest.approx(stored, rel=1e-5, abs=1e-7)
  assert "checkpoint at update 100" in text
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
  assert len(images) == 2


@pytest.mark.parametrize("path", [NOTEBOOK, YOUR_OWN])
def test_setup_cell_runs_from_the_repo_root(path, monkeypatch):
  nb = nbformat.read(path, as_version=4)
  first = next(c for c in nb.cells if c.cell_type == "code")
  nb.cells = [first, nbformat.v4.new_code_cell("import causal_meta; print(causal_meta.__file__)")]
  nb = _execute(nb, ROOT, monkeypatch)
  assert os.path.join(ROOT, "causal_meta") in nb.cells[1].outputs[0]["text"]

"""[O] Remarks 14-15 through the real CLI, in its --quick form: the LSTM taught three ways,
scored on pasts where the expert acts with probability q."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_mixed_authors(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "launch.reproduce", "mixed_authors",
                         f"--workdir={tmp_path}", "--quick"], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "results.json") as f:
    results = json.load(f)
  assert results["qs"] == [0.0, 0.25, 0.5, 0.75, 1.0]
  kl = {name.split(", ")[1]: np.array(row["kl_action"]["mean"])
        for name, row in results["table"].items()}
  assert sorted(kl) == ["counterfactual", "demonstration", "mixed"]
  # Each single-author teaching is right on its own authors and wrong on the other's.
  assert kl["counterfactual"][0] < 0.02 < 0.1 < kl["counterfactual"][-1]
  assert kl["demonstration"][-1] < 0.02 < 0.1 < kl["demonstration"][0]
  # Mixed teaching answers for every mixture.
  assert kl["mixed"].max() < 0.05
  for row in results["table"].values():
    assert len(row["kl_observation"]["mean"]) == 5
  for what in ("kl_action", "kl_observation"):
    assert os.path.exists(tmp_path / "figures" / f"{what}_vs_q.png")
  assert "| LSTM, mixed |" in proc.stdout

"""[O] §3 with a moving latent through the real CLI, in its --quick form: counterfactual teaching
and demonstrations on the piecewise-stationary bandit at three hazards."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_changing_latent(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "launch.reproduce", "changing_latent",
                         f"--workdir={tmp_path}", "--quick"], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "results.json") as f:
    results = json.load(f)
  assert results["hazards"] == [0.0, 0.05, 0.2]
  table = {h: {name: {k: v["mean"] for k, v in row.items()} for name, row in rows.items()}
           for h, rows in results["table"].items()}
  for rows in table.values():
    # Each oracle, deployed, is its own filter: KL 0 to itself, positive to the other.
    assert rows["interventional oracle"]["kl_action_interventional"] < 1e-5
    assert rows["conditional oracle"]["kl_action_conditional"] < 1e-5
    assert rows["interventional oracle"]["kl_action_conditional"] > 0.02
    # Counterfactual teaching learns the interventional oracle, demonstrations the other.
    cf, demo = rows["LSTM, counterfactual"], rows["LSTM, demonstrations"]
    assert cf["kl_action_interventional"] < 0.02 < 0.05 < demo["kl_action_interventional"]
    assert demo["kl_action_conditional"] < 0.02 < 0.04 < cf["kl_action_conditional"]
  # A moving best arm makes an old self-chosen action weaker evidence: the delusion (the
  # conditional oracle's distance from the interventional one) shrinks as h grows.
  gap = [table[h]["conditional oracle"]["kl_action_interventional"] for h in ("0.0", "0.05", "0.2")]
  assert gap[0] > gap[1] > gap[2] > 0.02
  assert table["0.0"]["interventional oracle"]["mean_reward"] > \
      table["0.0"]["conditional oracle"]["mean_reward"] + 0.02
  assert os.path.exists(tmp_path / "figures" / "kl_interventional_vs_hazard.png")
  assert "| 0.05 | LSTM, counterfactual |" in proc.stdout

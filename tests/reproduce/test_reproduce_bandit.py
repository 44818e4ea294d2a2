"""The main job, [O] Remark 11 on the bandit, through the real CLI, in its --quick form."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def reproduce(name, workdir):
  proc = subprocess.run([sys.executable, "-m", "launch.reproduce", name, f"--workdir={workdir}",
                         "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f), proc.stdout


def test_bandit_main_job(tmp_path):
  results, stdout = reproduce("bandit", tmp_path)
  table = results["table"]
  cf, demo = table["LSTM, counterfactual teaching"], table["LSTM, demonstrations (naive)"]
  assert cf["kl_action_interventional"] < cf["kl_action_conditional"]
  assert demo["kl_action_conditional"] < demo["kl_action_interventional"]
  oracles = table["interventional oracle"], table["conditional oracle"]
  assert oracles[0]["best_action_rate"] > oracles[1]["best_action_rate"]
  for name in results["raster"]:  # three 20-step episodes per agent, best arm = arm 1
    assert np.array(results["raster"][name]["actions"]).shape == (3, 20)
  assert os.path.exists(tmp_path / "figures" / "remark11_raster.png")
  assert "| interventional oracle |" in stdout

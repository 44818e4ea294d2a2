"""[O]'s learned results through the real CLI, in their --quick form: prize or frog ([O] §2)
and the main job, Remark 11 on the bandit."""

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


def test_prize_or_frog(tmp_path):
  results, stdout = reproduce("prize_or_frog", tmp_path)
  np.testing.assert_allclose(results["exact"]["conditioning"], [1.0, 1.0], atol=1e-6)
  np.testing.assert_allclose(results["exact"]["intervening"], [0.5, 0.5], atol=1e-6)
  # Counterfactual teaching learns P(prize | do(a)) = 1/2; demonstrations learn P(prize | a) = 1.
  np.testing.assert_allclose(results["learned"]["counterfactual"]["p_prize_given_action"],
                             [0.5, 0.5], atol=0.1)
  assert min(results["learned"]["demonstration"]["p_prize_given_action"]) > 0.9
  assert "P(o|do(a))" in stdout

"""`python -m launch.reproduce offline --quick` ([O] §4.2): teaching from a log alone on the
bandit, through the real CLI; the numbers are checked to be sane, not pinned."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_offline_quick(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "launch.reproduce", "offline",
                         f"--workdir={tmp_path}", "--quick"], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((tmp_path / "results.json").read_text())
  assert results["log_sizes"] == [100, 1000] and results["seeds"] == [0]
  summary = results["summary"]

  def kl(method, n, which="kl_action_interventional"):
    return summary[method][str(n)][which]["mean"]

  for n in (100, 1000):
    # Taught counterfactually in the fitted model, the agent is far closer to the true
    # interventional oracle than a behaviour clone of the same log.
    assert kl("offline counterfactual", n) < 0.5 * kl("behaviour cloning", n)
    # Behaviour cloning learns the conditional oracle (the delusion), not the interventional.
    assert kl("behaviour cloning", n, "kl_action_conditional") < 0.1
    assert kl("behaviour cloning", n) > 0.1
  assert kl("behaviour cloning", 1000, "kl_action_conditional") < 0.03
  # More data, a better model: the fitted oracle's gap shrinks, and the offline agent nears
  # the online ceiling.
  assert kl("fitted model's oracle", 1000) < 0.5 * kl("fitted model's oracle", 100)
  assert kl("fitted model's oracle", 1000) < 0.005
  assert kl("offline counterfactual", 1000) < kl("online counterfactual", 1000) + 0.01
  assert (tmp_path / "figures" / "offline_kl.png").exists()
  assert "| offline counterfactual |" in proc.stdout

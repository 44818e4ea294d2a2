"""The tabular results ([K] Example 1, [D] Examples 1-2, [H]):
`python -m launch.reproduce NAME --workdir=DIR --quick` end to end, checked against the papers."""

import json
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def reproduce(name, workdir):
  proc = subprocess.run([sys.executable, "-m", "launch.reproduce", name, f"--workdir={workdir}",
                         "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300)
  return proc


def run_ok(name, tmp_path):
  workdir = tmp_path / name
  proc = reproduce(name, workdir)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip()
  results = json.loads((workdir / "results.json").read_text())
  assert list((workdir / "figures").glob("*.png"))
  return results


def check_sequence(rows, k_max=10):
  assert [r["iteration"] for r in rows] == list(range(k_max + 1))
  for r in rows:
    assert set(r) >= {"iteration", "policy_at_start", "return", "incoherence"}
    assert sum(r["policy_at_start"]) == pytest.approx(1.0)
  returns = [r["return"] for r in rows]
  assert all(b >= a - 1e-12 for a, b in zip(returns, returns[1:]))  # [K] Prop 5.4


def test_mountain_race(tmp_path):
  res = run_ok("mountain_race", tmp_path)
  for key in ("iterations", "temperature", "folded", "folded_cumulative"):
    check_sequence(res[key])
  it = res["iterations"]
  assert it[0]["policy_at_start"] == pytest.approx([0.5, 0.5])
  assert it[0]["return"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.75)
  assert it[1]["policy_at_start"] == pytest.approx([0.4, 0.6])  # [K] Example 1: ½ : ¾
  assert res["optimal_action_at_start"] == "↗" and res["optimal_return"] == pytest.approx(1.0)
  for k in range(1, 11):  # by hand: π_k(↗|∅) = 1/(1 + 2(¾)^k)
    assert it[k]["policy_at_start"][0] == pytest.approx(1 / (1 + 2 * 0.75 ** k))
  # Deterministic dynamics: temperature α = k and folding coincide with retraining ([K] Thm 5.9).
  for key in ("temperature", "folded"):
    for a, b in zip(it, res[key]):
      assert a["policy_at_start"] == pytest.approx(b["policy_at_start"], abs=1e-10)
  for k in range(4):  # π^H_{k+1} = π_{α=2^k} = π^G_{2^k}, within k ≤ 10
    assert (res["folded_cumulative"][k + 1]["policy_at_start"]
            == pytest.approx(it[2 ** k]["policy_at_start"], abs=1e-10))
  assert it[-1]["incoherence"] < it[0]["incoherence"]


def test_card_game(tmp_path):
  res = run_ok("card_game", tmp_path)
  for key in ("iterations", "temperature", "folded", "folded_cumulative"):
    check_sequence(res[key])
  it = res["iterations"]
  assert it[0]["policy_at_start"] == pytest.approx([0.5, 0.5])
  assert it[0]["return"] == pytest.approx(0.375)  # ½·¼ + ½·½
  assert it[1]["policy_at_start"] == pytest.approx([1 / 3, 2 / 3])  # [D] Example 2
  assert res["optimal_action_at_start"] == "♦"
  assert it[-1]["policy_at_start"][0] == pytest.approx(1 / (1 + 4 * 2.0 ** -10))
  assert it[-1]["incoherence"] < it[0]["incoherence"]


def test_stock_trader(tmp_path):
  res = run_ok("stock_trader", tmp_path)
  assert res["delusion"] == pytest.approx(math.log(2))  # [D] Def 3.8, one-hot vs (½, ½)
  assert res["expert_return"] == pytest.approx(1.0)
  assert res["simulated_return"] == pytest.approx(0.5)
  assert res["predicted_profit_before"] == pytest.approx([1.0, 1.0])
  assert res["true_profit"] == pytest.approx([0.5, 0.5])
  assert res["prediction_kl_before"] == pytest.approx(math.log(2))
  assert res["prediction_kl_after"] == pytest.approx(0.0)
  assert res["sampled"]["predicted_profit_before"] == pytest.approx([1.0, 1.0])
  assert res["sampled"]["predicted_profit_after"] == pytest.approx([0.5, 0.5], abs=0.1)


def test_planning(tmp_path):
  res = run_ok("planning", tmp_path)
  episodes = res["episodes"]
  assert res["myopia"]["STH"]["episodes_with_planned_investment"] == 0
  assert res["myopia"]["FP"]["episodes_with_planned_investment"] == episodes
  assert res["shortest_horizon_that_invests"] > res["sth_lookahead"]
  learning = res["learning"]
  assert learning["FP"]["final_model_error_base_invest"] == 1.0
  assert learning["FP"]["record_base_invest"] == 0
  assert learning["FPX"]["final_model_error_base_invest"] == 0.0
  assert learning["FPX"]["final_model_error_max"] < learning["FP"]["final_model_error_max"]
  assert learning["STHX"]["episodes_with_planned_investment"] == 0
  assert learning["FPX"]["mean_return_last"] > learning["FP"]["mean_return_last"]


def test_padlock_exact(tmp_path):
  """[D] Table 1 at the paper's size for perfect models (exact; --quick: horizon 12)."""
  results = run_ok("padlock_exact", tmp_path)
  rows = {name.split(",")[0].split(" (")[0]: row for name, row in results["rows"].items()}
  pre = rows["perfect pretrained model"]["by_horizon"]["12"]
  tuned = results["rows"]["fine-tuned to perfection, round 1"]["by_horizon"]["12"]
  ideal = rows["ideal: P(S) of the interventional oracle"]["accuracy"]["12"]
  assert ideal == pytest.approx(0.25)  # (1 + 12 − E[d]) / 32, d ~ Binomial(10, ½)
  assert 0.24 < pre["accuracy"] <= ideal
  assert tuned["delusion_app_c"] < pre["delusion_app_c"]
  assert math.isinf(pre["delusion_steps"])  # sure of S where the ideal is not
  assert results["rows"]["fine-tuned to perfection, round 1"]["paper"]["delusion"] == 0.1773

"""`python -m launch.reproduce dice|boltzmann` end to end ([H]'s dice worlds, [K] §4.1), each
printed number checked against the paper or a closed form derived by hand in the comments."""

import json
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_ok(name, tmp_path):
  workdir = tmp_path / name
  proc = subprocess.run([sys.executable, "-m", "launch.reproduce", name, f"--workdir={workdir}",
                         "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f"== {name} (" in proc.stdout
  assert list((workdir / "figures").glob("*.png"))
  return json.loads((workdir / "results.json").read_text()), proc.stdout


def test_dice(tmp_path):
  res, out = run_ok("dice", tmp_path)
  assert res["p_s_12"] == pytest.approx(1 / 36, abs=1e-15) and res["p_s_12_fraction"] == "1/36"
  assert res["expected_s"] == pytest.approx(7.0, abs=1e-14)
  assert res["distribution_s"]["7"] == pytest.approx(6 / 36, abs=1e-15)
  assert res["shared_nodes"] == ["X"]  # the green die is one throw in both worlds
  assert res["p_sc_greater_sf"] == pytest.approx(5 / 6, abs=1e-15)  # [H]
  assert res["p_sc_greater_sf_fraction"] == res["paper_claims"]["p_sc_greater_sf"] == "5/6"
  assert res["p_sc_equal_sf"] == pytest.approx(1 / 6, abs=1e-15)
  assert res["expected_sc"] == pytest.approx(9.5, abs=1e-14)
  # Independent worlds: #{x' + 6 > x + y} = 160 of 216.
  assert res["independent_worlds_p_sc_greater_sf"] == pytest.approx(160 / 216, abs=1e-15)
  assert "P(S_c > S_f) = 0.8333 (5/6; paper 5/6)" in out


def test_boltzmann(tmp_path):
  res, out = run_ok("boltzmann", tmp_path)
  it = res["iterated_delta_1"]
  assert it[0]["policy_at_start"] == pytest.approx([0.5, 0.5])
  assert it[1]["policy_at_start"] == pytest.approx([0.4, 0.6])  # softmax(log ½, log ¾)
  # The uniform prior plays ↘ at the ↗ fork, where Q = log 0: κ_1 = ∞.
  assert it[0]["boltzmann_incoherence"] == "inf"
  assert it[1]["boltzmann_incoherence"] == pytest.approx(0.4 * math.log(0.4 / (4 / 7))
                                                         + 0.6 * math.log(0.6 / (3 / 7)))
  for r in it[2:]:
    assert r["policy_at_start"] == pytest.approx([4 / 7, 3 / 7], abs=1e-15)  # 1 : ¾
    assert r["boltzmann_incoherence"] == pytest.approx(0.0, abs=1e-15)
  assert res["fixpoint_reached_at"] == 2  # T = 2 ([K] Prop 4.10, Example 2)
  assert res["fixpoint_forks"] == {"up": [1.0, 0.0], "down": [0.5, 0.5]}
  assert res["fixpoint_return"] == pytest.approx(4 / 7 + 3 / 7 * 0.75, abs=1e-15)
  for r in res["coherent_by_delta"]:
    assert r["policy_at_start"][0] == pytest.approx(r["closed_form_up"], abs=1e-14)
    assert r["closed_form_up"] == pytest.approx(1 / (1 + 0.75 ** (1 / r["delta"])), abs=1e-15)
    assert r["return"] == pytest.approx(r["closed_form_up"] + 0.75 * (1 - r["closed_form_up"]))
  assert res["uniform_q_at_start"] == pytest.approx([0.5, 0.75])
  assert res["uniform_boltzmann_at_start"]["0.1"][0] == pytest.approx(1 / (1 + 1.5 ** 10))
  assert res["uniform_limit_at_start"] == [0.0, 1.0]  # Prop 4.13: argmax of (log ½, log ¾)
  assert res["limit_return_optimal_prior"] == pytest.approx(1.0)  # Cor 4.14
  assert res["limit_return_uniform_prior"] == pytest.approx(0.75)
  assert res["kappa_limit"] == {"optimal": 0.0, "uniform": "inf", "down_first": 0.0}
  assert res["down_first_return"] == pytest.approx(0.75)  # Cor 4.15 is not sufficient
  one = res["one_step"]
  w = [p * s for p, s in zip(one["prior"], one["success"])]  # Prop 4.16: p·e^r
  assert one["kl_optimum"] == pytest.approx([x / sum(w) for x in w], abs=1e-15)
  assert one["kl_value"] == pytest.approx(math.log(sum(w)), abs=1e-15)
  assert one["kappa_1_of_kl_optimum"] > 0.05
  assert one["boltzmann_coherent"] == pytest.approx([0.2 / 1.6, 0.5 / 1.6, 0.9 / 1.6])
  assert one["kappa_1_of_boltzmann_coherent"] == pytest.approx(0.0, abs=1e-15)
  for r in res["retraining_kappa"]:  # Cor 5.11: π^G_i(↘|∅) > 0 with ↗ greedy: δ → 0 gives ∞
    assert r["limit_delta_to_0"] == "inf"
  assert res["retraining_kappa"][0]["kappa"] == pytest.approx(sorted(
      res["retraining_kappa"][0]["kappa"]))
  # i → ∞ first: κ_δ(π^G_∞) = log(1 + (¾)^{1/δ}).
  for d, k in zip(res["retraining_deltas"], res["retraining_limit_kappa"]):
    assert k == pytest.approx(math.log1p(0.75 ** (1 / d)), rel=1e-9, abs=1e-15)
  assert "fixpoint from i = 2" in out
  # Cor 5.11 along δ_i = (¾)^i: κ grows towards 2·log(4/3) instead of vanishing.
  path = [r["kappa"] for r in res["retraining_path_kappa"]]
  assert path == sorted(path) and res["retraining_path_limit"] == pytest.approx(2 * math.log(4 / 3))
  assert path[-1] == pytest.approx(res["retraining_path_limit"], rel=0.03)
  # Cor 5.10, J = E Σ r: π^G_k(↘|∅) = q = 2c/(1 + 2c), c = (¾)^k, so J = q·log ¾ and the stated
  # term is k·Var = k·q(1 − q)·log²¾; the uniform prior reaches r = −∞, so ΔJ_1 = ∞.
  lg = math.log(0.75)
  q = lambda k: 2 * 0.75 ** k / (1 + 2 * 0.75 ** k)  # noqa: E731
  rate = res["return_rate"]
  assert rate[0]["improvement"] == "inf" and rate[0]["proof_term"] == "inf"
  for r in rate:
    k = r["k"]
    assert r["return"] == pytest.approx(q(k) * lg, rel=1e-12)
    assert r["variance"] == pytest.approx(q(k) * (1 - q(k)) * lg ** 2, rel=1e-12)
    assert r["stated"] == pytest.approx(k * r["variance"], rel=1e-12)
    if k > 1:
      assert r["improvement"] == pytest.approx((q(k) - q(k - 1)) * lg, rel=1e-9)
      assert r["proof_term"] == pytest.approx(k / (k - 1) * r["variance"], rel=1e-12)
  assert rate[-1]["stated"] / rate[-1]["improvement"] > 30  # ≈ 3k·log(4/3) at k = 40
  assert "Cor 5.10" in out and "stated/ΔJ 34.52" in out

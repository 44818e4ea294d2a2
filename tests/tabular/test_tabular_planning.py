"""Counterfactual planning agents ([H]): STH's myopia and FPX's exploration."""

import numpy as np
import pytest

from causal_meta.tabular import planning

WORLD = planning.investment_world(build_steps=4, success=0.8, harvest=0.1, payoff=1.0,
                                  episode_length=30)
BASE = WORLD.initial_state


def test_investment_pays_only_beyond_the_short_horizon():
  """By hand: from base, investing reaches the factory after ≥ K + 1 = 5 steps and earns nothing
  before, so with h ≤ 5 steps left harvesting (0.1 per step) is strictly better; with the whole
  episode (30 steps) investing earns about 30 − 1 − 4/0.8 = 24 ≫ 3."""
  values, actions = planning.plan(WORLD.transitions, WORLD.reward, 30)
  for h in range(1, 6):
    assert actions[h, BASE] == planning.HARVEST
    assert values[h, BASE] == pytest.approx(0.1 * h)
  assert actions[30, BASE] == planning.INVEST
  assert values[30, BASE] > 20


def test_sth_never_starts_the_investment_that_fp_takes():
  """Same learner, same (simulator) record O_0: FP invests in every episode, STH (N = 5) never."""
  record = planning.exhaustive_record(WORLD, samples=20, seed=1)
  fp = planning.run(WORLD, planning.fp(), 40, seed=0, initial_record=record)
  sth = planning.run(WORLD, planning.sth(5), 40, seed=0, initial_record=record)
  assert np.all(fp["planned_investments"] >= 1)
  assert sth["planned_investments"].sum() == 0
  assert np.all(sth["returns"] == pytest.approx(3.0))  # harvests all 30 steps
  assert fp["returns"].mean() > 20


def test_sth_stays_myopic_even_with_a_learned_model():
  """With exploration STH's learner converges too, yet its planner never starts the investment."""
  out = planning.run(WORLD, planning.sth(5, explore=0.1), 200, seed=4)
  assert out["planned_investments"].sum() == 0
  assert planning.model_error(WORLD, planning.learn(out["counts"]))[BASE, planning.INVEST] == 0


def test_fpx_exploration_makes_the_learner_converge_where_fp_stays_wrong():
  """From an empty record L predicts "nothing happens" for unseen (s, a), so FP believes investing
  does nothing, never invests, and its record never corrects that belief (TV error 1 forever).
  FPX's random actions put every (s, a) in the record: L → S and FPX then invests."""
  episodes = 300
  fp = planning.run(WORLD, planning.fp(), episodes, seed=3)
  fpx = planning.run(WORLD, planning.fpx(0.1), episodes, seed=3)
  assert fp["counts"][BASE, planning.INVEST].sum() == 0
  assert np.all(fp["model_error"] == 1.0)
  assert np.all(fp["returns"] == pytest.approx(3.0))
  assert fpx["model_error"][-1] < 0.15
  assert fpx["model_error"][-1] < fpx["model_error"][episodes // 10]
  assert fpx["returns"][-episodes // 3:].mean() > 20
  assert np.all(fpx["planned_investments"][-episodes // 3:] >= 1)


def test_learner_and_world_validation():
  counts = np.zeros((2, 1, 2))
  counts[0, 0] = [1, 3]
  np.testing.assert_allclose(planning.learn(counts), [[[0.25, 0.75]], [[0.0, 1.0]]])
  with pytest.raises(ValueError):
    planning.investment_world(success=0.0)
  with pytest.raises(ValueError):
    planning.LearningWorld(np.ones((2, 1, 2)), np.zeros((2, 1)), 0, 5, ("a", "b"), ("x",))

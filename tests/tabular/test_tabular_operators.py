"""The goal-conditioning operator and its sequences, checked against brute force and the papers.

[D] = Douglas et al., "Limitations of agents simulated by predictive models";
[K] = Karwowski & Douglas, "Incoherence in goal-conditioned autoregressive models".
Reference values come from trajectory enumeration written here (independent of the package) or
from closed forms derived by hand in the docstrings — never from the package's own output.
"""

import itertools
import math

import numpy as np
import pytest

from causal_meta import tabular as tb

SEEDS = range(6)


# --------------------------------------------------------------------------- brute force

def trajectories(mdp, policy):
  """All (states, actions, probability, success) with positive probability, by plain recursion.

  success = Π_t p(O_t = 1 | s_t, a_t), i.e. p(R = 1 | ξ) for a terminal reward.
  """
  pi = np.broadcast_to(policy, (mdp.horizon,) + mdp.log_reward.shape)
  out = []

  def walk(states, actions, prob, success):
    t = len(actions)
    if t == mdp.horizon:
      out.append((tuple(states), tuple(actions), prob, success))
      return
    s = states[-1]
    for a in range(mdp.num_actions):
      pa = prob * pi[t][s][a]
      if pa == 0:
        continue
      sa = success * math.exp(mdp.log_reward[s][a])
      if t == mdp.horizon - 1:
        walk(states, actions + [a], pa, sa)
      else:
        for s2 in range(mdp.num_states):
          if mdp.transitions[s][a][s2] > 0:
            walk(states + [s2], actions + [a], pa * mdp.transitions[s][a][s2], sa)

  for s0 in range(mdp.num_states):
    if mdp.initial[s0] > 0:
      walk([s0], [], mdp.initial[s0], 1.0)
  return out


def brute_force_conditioning(mdp, policy):
  """p_π(a_t = a | s_t = s, R = 1) for every (t, s) with p_π(s_t = s, R = 1) > 0; [D] Def 3.4
  conditions on the whole outcome, not only on the future."""
  num = {}
  den = {}
  for states, actions, prob, success in trajectories(mdp, policy):
    for t, (s, a) in enumerate(zip(states, actions)):
      w = prob * success
      num[t, s, a] = num.get((t, s, a), 0.0) + w
      den[t, s] = den.get((t, s), 0.0) + w
  return {(t, s, a): num.get((t, s, a), 0.0) / d
          for (t, s), d in den.items() if d > 0 for a in range(mdp.num_actions)}


def brute_force_return(mdp, policy):
  return sum(p * r for _, _, p, r in trajectories(mdp, policy))


def brute_force_optimal_q(mdp):
  """{(t, s, a): max_π p_π(O_{t:T} = 1 | s, a)} by plain recursion (Bellman, written here)."""
  memo = {}

  def q(t, s, a):
    if (t, s, a) not in memo:
      v = math.exp(mdp.log_reward[s][a])
      if t < mdp.horizon - 1:
        v *= sum(mdp.transitions[s][a][s2] * max(q(t + 1, s2, b) for b in range(mdp.num_actions))
                 for s2 in range(mdp.num_states) if mdp.transitions[s][a][s2] > 0)
      memo[t, s, a] = v
    return memo[t, s, a]

  for t in range(mdp.horizon):
    for s in range(mdp.num_states):
      for a in range(mdp.num_actions):
        q(t, s, a)
  return memo


def brute_force_optimum(mdp):
  q = brute_force_optimal_q(mdp)
  return sum(mdp.initial[s] * max(q[0, s, a] for a in range(mdp.num_actions))
             for s in range(mdp.num_states) if mdp.initial[s] > 0)


def small_mdps():
  """(name, mdp, prior) triples: random trees and general MDPs, both dynamics and reward kinds."""
  cases = []
  for seed in SEEDS:
    for outcomes in (1, 2):
      for per_step in (False, True):
        m = tb.random_tree_mdp(seed, depth=3, num_actions=2, num_outcomes=outcomes,
                               per_step_reward=per_step)
        cases.append((f"tree{seed}-o{outcomes}-ps{per_step}", m, tb.random_policy(seed + 100, m)))
    for det in (True, False):
      m = tb.random_mdp(seed, num_states=4, num_actions=3, horizon=3, deterministic=det)
      cases.append((f"graph{seed}-det{det}", m,
                    tb.random_policy(seed + 200, m, time_indexed=True)))
  return cases


CASES = small_mdps()
IDS = [c[0] for c in CASES]
_LATE = {}


def late_policy(name, mdp, prior, k=1000):
  """π_k = G^k(π_0) for a large k, computed once per case."""
  if name not in _LATE:
    _LATE[name] = tb.retrain(mdp, prior, k)[-1]
  return _LATE[name]


# --------------------------------------------------------------------------- G, J, soft values

@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
def test_goal_conditioning_matches_trajectory_enumeration(name, mdp, prior):
  g = tb.goal_condition(mdp, prior)
  ref = brute_force_conditioning(mdp, prior)
  assert ref, "some (t, s) must have positive success probability"
  for (t, s, a), p in ref.items():
    assert g[t, s, a] == pytest.approx(p, abs=1e-12), (t, s, a)
  assert tb.policy_return(mdp, prior) == pytest.approx(brute_force_return(mdp, prior), abs=1e-12)


@pytest.mark.parametrize("name,mdp,prior", CASES[:8], ids=IDS[:8])
def test_soft_values_are_log_success_probabilities(name, mdp, prior):
  """[K] Prop 4.2: V^π_0(s_0) = log p_π(O_{0:T} = 1 | s_0)."""
  _, v = tb.soft_values(mdp, prior)
  for s0 in np.flatnonzero(mdp.initial):
    start = np.zeros(mdp.num_states)
    start[s0] = 1.0
    m = tb.TabularMDP(mdp.transitions, mdp.log_reward, start, mdp.horizon)
    assert math.exp(v[0, s0]) == pytest.approx(brute_force_return(m, prior), abs=1e-12)


@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
def test_occupancy_form_of_trajectory_kl(name, mdp, prior):
  """[K] Prop 4.7: the trajectory KL equals the occupancy-weighted per-state KL."""
  other = 0.5 * tb.goal_condition(mdp, prior) + 0.5 / mdp.num_actions  # full support
  law = {(s, a): p for s, a, p, _ in trajectories(mdp, prior)}
  law_other = {(s, a): p for s, a, p, _ in trajectories(mdp, other)}
  ref = sum(p * math.log(p / law_other[k]) for k, p in law.items())
  assert tb.trajectory_kl(mdp, prior, other) == pytest.approx(ref, abs=1e-10)


# --------------------------------------------------------------------------- [K] Thm 5.9

DETERMINISTIC = [c for c in CASES if c[1].deterministic]
STOCHASTIC = [c for c in CASES if not c[1].deterministic]


@pytest.mark.parametrize("name,mdp,prior", DETERMINISTIC, ids=[c[0] for c in DETERMINISTIC])
def test_theorem_5_9_deterministic(name, mdp, prior):
  """π_{α=2^k} = π^G_{2^k} = π^F_{2^k} = π^H_{k+1} (π^H indexed as in [K] Def 5.8: π^H_0 = p)."""
  k_max = 5
  g = tb.retrain(mdp, prior, 2 ** k_max)
  f = tb.folded_sequence(mdp, prior, 2 ** k_max)
  h = tb.folded_cumulative_sequence(mdp, prior, k_max + 1)
  for k in range(k_max + 1):
    temp = tb.temperature_policy(mdp, prior, 2.0 ** k)
    np.testing.assert_allclose(g[2 ** k], temp, atol=1e-10, rtol=0)
    np.testing.assert_allclose(f[2 ** k], temp, atol=1e-10, rtol=0)
    np.testing.assert_allclose(h[k + 1], temp, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name,mdp,prior", DETERMINISTIC, ids=[c[0] for c in DETERMINISTIC])
def test_retraining_is_linear_temperature_deterministic(name, mdp, prior):
  """[K] Lemma A.10 with A.9: deterministic dynamics give π^G_k = π_{α=k} for every k ≥ 0."""
  g = tb.retrain(mdp, prior, 10)
  for k in range(11):
    np.testing.assert_allclose(g[k], tb.temperature_policy(mdp, prior, k), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name,mdp,prior", STOCHASTIC, ids=[c[0] for c in STOCHASTIC])
def test_folded_equals_retrained_stochastic(name, mdp, prior):
  """[K] Thm 5.9, second part: π^F_k = π^G_k for any dynamics."""
  np.testing.assert_allclose(tb.folded_sequence(mdp, prior, 12), tb.retrain(mdp, prior, 12),
                             atol=1e-10, rtol=0)


def test_example_3_temperature_differs_under_stochastic_dynamics():
  """[K] Example 3: 25/61 = π^F(a1|∅) ≠ π_{α=2}(a1|∅) = 7/17 (two conditionings vs α = 2).

  By hand: E[e^r | a1] = ¾·⅓ + ¼·⅔ = 5/12 and E[e^r | a2] = ½; two rounds of conditioning give
  (5/12)² : (1/2)² = 25 : 36, while α = 2 gives ¾·1/9 + ¼·4/9 = 7/36 : 10/36.
  """
  m = tb.example3()
  u = tb.uniform_policy(m)
  assert tb.retrain(m, u, 2)[2, 0, 0, 0] == pytest.approx(25 / 61, abs=1e-14)
  assert tb.folded_sequence(m, u, 2)[2, 0, 0, 0] == pytest.approx(25 / 61, abs=1e-14)
  assert tb.temperature_policy(m, u, 2)[0, 0, 0] == pytest.approx(7 / 17, abs=1e-14)
  assert tb.retrain(m, u, 1)[1, 0, 0, 0] == pytest.approx(5 / 11, abs=1e-14)  # (5/12):(1/2)


# --------------------------------------------------------------------------- improvement, limit

@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
def test_return_never_decreases(name, mdp, prior):
  """[K] Prop 5.4, in the proof's stronger form: V^{π_{k+1}}_t(s) ≥ V^{π_k}_t(s) everywhere."""
  seq = tb.retrain(mdp, prior, 30)
  returns = [brute_force_return(mdp, p) for p in seq[:4]]
  assert all(b >= a - 1e-12 for a, b in zip(returns, returns[1:]))
  prev = None
  for pi in seq:
    _, v = tb.soft_values(mdp, pi)
    if prev is not None:
      assert np.all(np.exp(v) >= np.exp(prev) - 1e-12)
    prev = v


@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
def test_retraining_converges_to_optimal_and_coherent(name, mdp, prior):
  """[D] Thm 3.6 and Cor 3.7 with a full-support prior: J(π_k) → max_π J, the mass π_k puts on
  suboptimal actions → 0, and κ(π_k) → 0.

  The rate at a state is set by its optimality gap (random trees have near-ties), so the action
  check is made where the best action beats the second by ≥ 5% (relative); J converges anyway.
  """
  pi_k = late_policy(name, mdp, prior)
  assert brute_force_return(mdp, pi_k) == pytest.approx(brute_force_optimum(mdp), abs=1e-6)
  q = brute_force_optimal_q(mdp)
  mask = tb.reachable(mdp)
  checked = 0
  for t, s in zip(*np.nonzero(mask)):
    values = np.array([q[t, s, a] for a in range(mdp.num_actions)])
    best = values.max()
    second = np.max(values[values < best], initial=0.0)
    if best > 0 and second <= 0.95 * best:
      checked += 1
      assert pi_k[t, s][values < best].sum() < 1e-6, (t, s)
  assert checked > 0
  assert tb.incoherence(mdp, pi_k) < 1e-6 < tb.incoherence(mdp, prior)


@pytest.mark.parametrize("name,mdp,prior", DETERMINISTIC, ids=[c[0] for c in DETERMINISTIC])
def test_limit_policy_is_the_infinite_temperature_limit(name, mdp, prior):
  """Deterministic dynamics: π^G_k = π_{α=k} (tested above) → π_0 conditioned on optimal play.
  Random trees have near-ties, so the limit is approached through α = 10^5 (exact in log space);
  its support is the set of brute-force optimal actions."""
  limit = tb.limit_policy(mdp, prior)
  mask = tb.reachable(mdp)
  np.testing.assert_allclose(limit[mask], tb.temperature_policy(mdp, prior, 1e5)[mask],
                             atol=1e-9, rtol=0)
  q = brute_force_optimal_q(mdp)
  for t, s in zip(*np.nonzero(mask)):
    values = np.array([q[t, s, a] for a in range(mdp.num_actions)])
    np.testing.assert_array_equal(limit[t, s] > 0, np.isclose(values, values.max(), rtol=1e-12))


def test_tied_optimal_actions_keep_the_prior_odds_of_optimal_play():
  """A tie [D] App. A gets wrong for T > 1. From ∅ both actions can reach R = 1 surely: after a0,
  state X pays (1, 0) and the prior there is (¼, ¾); after a1, state Y pays (1, 0.9) with prior
  (½, ½). Deterministic dynamics make π_k = π_{α=k} ∝ π_0·E_{π_0}[e^{k r}], so the odds
  a0 : a1 at ∅ tend to ½·¼ : ½·½ = 1 : 2, not π_0's 1 : 1."""
  children = [[[(1, 1.0)], [(2, 1.0)]], [[], []], [[], []]]
  with np.errstate(divide="ignore"):
    r = np.log(np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.9]]))
  m = tb.tree_mdp(children, r, horizon=2)
  prior = np.array([[0.5, 0.5], [0.25, 0.75], [0.5, 0.5], [0.5, 0.5]])
  pi_k = tb.retrain(m, prior, 2000)[-1]
  np.testing.assert_allclose(pi_k[0, 0], [1 / 3, 2 / 3], atol=1e-12)
  np.testing.assert_allclose(tb.limit_policy(m, prior)[0, 0], [1 / 3, 2 / 3], atol=1e-12)


def test_iterated_f_coherence_reaches_fixpoint_in_T_steps():
  """[K] Prop 4.10: T rounds of π ← π^{Q,f} give an f-coherent policy (κ_f = 0)."""
  for name, mdp, prior in CASES[:8]:
    f = tb.softmax_f(0.5)
    pi = tb.as_time_indexed(mdp, prior)
    for _ in range(mdp.horizon):
      pi = tb.f_soft_policy(mdp, pi, f)
    assert tb.f_incoherence(mdp, pi, f) == pytest.approx(0.0, abs=1e-12), name
    assert tb.boltzmann_incoherence(mdp, prior, 0.5) > 0


# --------------------------------------------------------------------------- the papers' examples

def test_card_game_random_play_prefers_hearts():
  """[D] Example 2: under random play P(♦ first | R) = 1/3; the optimal first card is ♦."""
  m = tb.card_game()
  u = tb.uniform_policy(m)
  g = tb.goal_condition(m, u)
  assert g[0, 0, tb.examples.DIAMOND] == pytest.approx(1 / 3, abs=1e-15)
  assert brute_force_return(m, u) == pytest.approx(0.5 * 0.5 + 0.5 * 0.25, abs=1e-15)
  assert tb.optimal_return(m) == pytest.approx(1.0)
  q, _ = tb.optimal_values(m)
  assert q[0, 0, tb.examples.DIAMOND] > q[0, 0, tb.examples.HEART]


def test_card_game_retraining_closed_form():
  """By hand: π_k plays ♦ after ♦ surely for k ≥ 1, so p_{k}(R | ♦ first) = 1 while
  p(R | ♥ first) = ½, and the odds ♦:♥ double each round from ½ at k = 1:
  π_k(♦ first) = 1 / (1 + 4·2^{-k})."""
  m = tb.card_game()
  seq = tb.retrain(m, tb.uniform_policy(m), 10)
  assert seq[0, 0, 0, 0] == 0.5
  for k in range(1, 11):
    assert seq[k, 0, 0, 0] == pytest.approx(1 / (1 + 4 * 2.0 ** -k), abs=1e-14)


def test_mountain_race_conditioning_prefers_the_safe_trail():
  """[K] Example 1: π(↗|∅) ∝ p(R | ↗) = ½ and π(↘|∅) ∝ ¾ under the uniform prior, so the
  conditioned policy prefers ↘ although ↗ is optimal (return 1 vs ¾)."""
  m = tb.mountain_race()
  u = tb.uniform_policy(m)
  g = tb.goal_condition(m, u)
  np.testing.assert_allclose(g[0, 0], [0.4, 0.6], atol=1e-15)
  assert g[0, 0, tb.examples.DOWN] > g[0, 0, tb.examples.UP]
  q, _ = tb.optimal_values(m)
  assert np.exp(q[0, 0]) == pytest.approx([1.0, 0.75])
  assert tb.optimal_return(m) == pytest.approx(1.0)


def test_mountain_race_retraining_closed_form():
  """By hand: π_k(↗|up) = 1 for k ≥ 1, so the odds ↗:↘ at ∅ are ⅔ at k = 1 and grow by 1/(¾)
  per round: π_k(↗|∅) = 1/(1 + 2(¾)^k), J(π_k) = π_k(↗|∅) + ¾·π_k(↘|∅) for k ≥ 1, J(π_0) = 5/8."""
  m = tb.mountain_race()
  seq = tb.retrain(m, tb.uniform_policy(m), 10)
  assert tb.policy_return(m, seq[0]) == pytest.approx(5 / 8, abs=1e-15)
  for k in range(1, 11):
    up = 1 / (1 + 2 * 0.75 ** k)
    assert seq[k, 0, 0, 0] == pytest.approx(up, abs=1e-14)
    assert tb.policy_return(m, seq[k]) == pytest.approx(up + 0.75 * (1 - up), abs=1e-14)


def test_stock_trader_delusion():
  """[D] Example 1 / Def 3.8: the expert's p(a|s) is one-hot, the model's p(a) = (½, ½), so
  λ = log 2; the model predicts profit after either action (1) while the truth is ½."""
  task = tb.stock_trader()
  q_a, q_o = task.observational()
  np.testing.assert_allclose(q_a, [0.5, 0.5])
  np.testing.assert_allclose(q_o[:, 0], [1.0, 1.0])
  np.testing.assert_allclose(task.interventional()[:, 0], [0.5, 0.5])
  assert tb.delusion(task.expert, q_a, task.latent_prior) == pytest.approx(math.log(2))
  assert tb.delusion(task.expert) == pytest.approx(math.log(2))
  assert tb.delusion(np.full((2, 2), 0.5)) == pytest.approx(0.0)


# --------------------------------------------------------------------------- shapes and errors

def test_stationary_view_of_tree_policies():
  m = tb.mountain_race()
  g = tb.goal_condition(m, tb.uniform_policy(m))
  s = tb.stationary(m, g)
  assert s.shape == (m.num_states, m.num_actions)
  np.testing.assert_allclose(s[m.state("up")], [1.0, 0.0])


def test_bad_inputs_raise_value_error():
  m = tb.mountain_race()
  with pytest.raises(ValueError, match="sum to 1"):
    tb.goal_condition(m, np.full((m.num_states, 2), 0.4))
  with pytest.raises(ValueError, match="shape"):
    tb.goal_condition(m, np.full((3, 3), 1 / 3))
  with pytest.raises(ValueError, match="non-negative"):
    tb.goal_condition(m, np.tile([1.5, -0.5], (m.num_states, 1)))
  with pytest.raises(ValueError, match="non-positive"):
    tb.TabularMDP(m.transitions, np.abs(m.log_reward) + 0.1, m.initial, 2)
  with pytest.raises(ValueError, match="sum to 1"):
    tb.TabularMDP(m.transitions * 0.5, m.log_reward, m.initial, 2)
  with pytest.raises(ValueError, match="alpha"):
    tb.temperature_policy(m, tb.uniform_policy(m), -1.0)
  with pytest.raises(ValueError):
    tb.delusion(np.array([[0.7, 0.7]]))

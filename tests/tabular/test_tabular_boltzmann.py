"""Boltzmann coherence ([K] §4.1: Defs 4.9–4.12, Props 4.10, 4.13, 4.16, Cors 4.14–4.15, 5.11),
checked against a probability-space recursion written here, closed forms derived by hand in the
docstrings, and the paper's examples."""

import math

import numpy as np
import pytest

from causal_meta import tabular as tb
from causal_meta.tabular import boltzmann as bz

UP, DOWN = tb.examples.UP, tb.examples.DOWN
ROOT, FORK_UP, FORK_DOWN = 0, 1, 2  # mountain race states ∅, ↗ fork, ↘ fork


def cases():
  out = []
  for seed in range(4):
    for outcomes in (1, 2):
      m = tb.random_tree_mdp(seed, depth=3, num_actions=3, num_outcomes=outcomes,
                             per_step_reward=True)
      out.append((f"tree{seed}-o{outcomes}", m, tb.random_policy(seed + 10, m)))
    for det in (True, False):
      m = tb.random_mdp(seed, num_states=4, num_actions=3, horizon=3, deterministic=det)
      out.append((f"graph{seed}-det{det}", m, tb.random_policy(seed + 20, m, time_indexed=True)))
  return out


CASES = cases()
IDS = [c[0] for c in CASES]


def brute_force_q(mdp, policy):
  """[T, S, A] p_π(O_{t:T} = 1 | s_t = s, a_t = a), by a plain probability-space recursion."""
  pi = np.broadcast_to(policy, (mdp.horizon, mdp.num_states, mdp.num_actions))
  t_max, s_n, a_n = pi.shape
  q = np.zeros((t_max, s_n, a_n))
  for t in reversed(range(t_max)):
    for s in range(s_n):
      for a in range(a_n):
        future = 1.0
        if t < t_max - 1:
          future = sum(mdp.transitions[s, a, x] * sum(pi[t + 1, x, b] * q[t + 1, x, b]
                                                      for b in range(a_n))
                       for x in range(s_n))
        q[t, s, a] = math.exp(mdp.log_reward[s, a]) * future
  return q


def softmax_rows(q_prob, delta):
  """softmax(log q / δ) from success probabilities, rows with all zeros uniform."""
  with np.errstate(divide="ignore"):
    z = np.log(q_prob) / delta
  m = z.max(-1, keepdims=True)
  e = np.where(np.isfinite(m), np.exp(z - np.where(np.isfinite(m), m, 0)), 1.0)
  return e / e.sum(-1, keepdims=True)


# --------------------------------------------------------------------------- Defs 4.9–4.12


@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_boltzmann_policy_is_softmax_of_own_q(name, mdp, prior, delta):
  """Def 4.11: π^δ ∝ exp(Q^π/δ) with Q^π = log p_π(O_{t:T} = 1 | s, a) (Prop 4.2)."""
  got = bz.boltzmann_policy(mdp, prior, delta)
  np.testing.assert_allclose(got, softmax_rows(brute_force_q(mdp, prior), delta), atol=1e-12)


@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
@pytest.mark.parametrize("f_name", ["softmax1", "softmax0.2", "argmax"])
def test_iterated_f_coherence_settles_at_T(name, mdp, prior, f_name):
  """Def 4.9, Prop 4.10: π^B_T is f-coherent, π^B_T(·|s) = f(Q^{π^B_T}(s, ·)) with Q by brute
  force, and π^B_i = π^B_T for i ≥ T."""
  f = {"softmax1": tb.softmax_f(1.0), "softmax0.2": tb.softmax_f(0.2),
       "argmax": bz.argmax_f()}[f_name]
  seq = bz.iterated_f_coherence(mdp, prior, f, iterations=mdp.horizon + 2)
  fix = seq[mdp.horizon]
  for later in seq[mdp.horizon + 1:]:
    np.testing.assert_allclose(later, fix, atol=1e-13)
  assert tb.f_incoherence(mdp, fix, f) == pytest.approx(0.0, abs=1e-12)
  with np.errstate(divide="ignore"):
    want = f(np.log(brute_force_q(mdp, fix)))
  np.testing.assert_allclose(fix, want / want.sum(-1, keepdims=True), atol=1e-12)
  if f_name == "softmax1":
    np.testing.assert_allclose(bz.boltzmann_coherent(mdp, 1.0), fix, atol=1e-13)
    assert tb.boltzmann_incoherence(mdp, seq[mdp.horizon - 1], 1.0) > 0


@pytest.mark.parametrize("name,mdp,prior", [c for c in CASES if c[1].deterministic],
                         ids=[c[0] for c in CASES if c[1].deterministic])
def test_argmax_coherent_policy_is_optimal(name, mdp, prior):
  """Prop 4.8 with f = uniform argmax: the f-coherent fixpoint is greedy w.r.t. its own soft Q,
  and (backward induction) optimal."""
  fix = bz.iterated_f_coherence(mdp, prior, bz.argmax_f())[-1]
  assert tb.policy_return(mdp, fix) == pytest.approx(tb.optimal_return(mdp), rel=1e-12)


def test_mountain_race_boltzmann_fixpoint():
  """[K] Examples 2 and 4. By hand with δ: at the ↗ fork Q = (log 1, log 0), so π(↗) = 1; at the
  ↘ fork Q = (log ¾, log ¾), so π = (½, ½); then at ∅, Q = (log 1, log ¾) and
  π(↗|∅) = 1/(1 + (¾)^{1/δ}): 4/7 for δ = 1, reached after T = 2 iterations from the uniform
  prior (π^B_1(·|∅) = softmax(log ½, log ¾) = (0.4, 0.6))."""
  m = tb.mountain_race()
  u = tb.uniform_policy(m)
  seq = bz.iterated_f_coherence(m, u, tb.softmax_f(1.0), iterations=4)
  np.testing.assert_allclose(seq[1, 0, ROOT], [0.4, 0.6], atol=1e-15)
  for i in (2, 3, 4):
    np.testing.assert_allclose(seq[i, 0, ROOT], [4 / 7, 3 / 7], atol=1e-15)
  np.testing.assert_allclose(seq[2, 1, FORK_UP], [1.0, 0.0], atol=1e-15)
  np.testing.assert_allclose(seq[2, 1, FORK_DOWN], [0.5, 0.5], atol=1e-15)
  assert tb.boltzmann_incoherence(m, seq[1], 1.0) > 0
  assert tb.boltzmann_incoherence(m, seq[2], 1.0) == pytest.approx(0.0, abs=1e-15)
  for delta in (2.0, 0.5, 0.1):
    up = bz.boltzmann_coherent(m, delta)[0, ROOT, UP]
    assert up == pytest.approx(1 / (1 + 0.75 ** (1 / delta)), abs=1e-14)


# --------------------------------------------------------------------------- Prop 4.13, Cors


@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
def test_boltzmann_limit_is_uniform_over_greedy_actions(name, mdp, prior):
  """Prop 4.13: |π^δ − π*| ≤ A·e^{−gap/δ}, gap the smallest positive Q gap to the maximum (the
  exact rate of the proof), π* uniform over A* = argmax Q^π."""
  with np.errstate(divide="ignore"):
    q = np.log(brute_force_q(mdp, prior))
  star = bz.boltzmann_limit_policy(mdp, prior)
  m = q.max(-1, keepdims=True)
  greedy = np.isclose(q, m, rtol=0, atol=1e-12) | ~np.isfinite(m)
  np.testing.assert_allclose(star, greedy / greedy.sum(-1, keepdims=True), atol=1e-15)
  gaps = np.where(np.isfinite(m), m - q, np.inf)
  gap = gaps[gaps > 1e-12].min()
  for delta in (0.3, 0.1, 0.03, 0.01):
    err = np.abs(bz.boltzmann_policy(mdp, prior, delta) - star).max()
    assert err <= mdp.num_actions * math.exp(-gap / delta) + 1e-12


@pytest.mark.parametrize("name,mdp,prior", CASES, ids=IDS)
def test_corollary_4_14_and_4_15_for_optimal_priors(name, mdp, prior):
  """Cor 4.14: an optimal prior's limit π* is optimal. Cor 4.15: optimal ⇒ lim κ_δ < ∞; the
  limit is Σ_t E_{d^t} KL(π ‖ π*), approached as δ → 0."""
  del prior
  best = tb.optimal_return(mdp)
  for opt in (bz.greedy_optimal_policy(mdp), deterministic_optimal(mdp)):
    assert tb.policy_return(mdp, opt) == pytest.approx(best, rel=1e-12)
    star = bz.boltzmann_limit_policy(mdp, opt)
    assert tb.policy_return(mdp, star) == pytest.approx(best, rel=1e-12)
    limit = bz.boltzmann_incoherence_limit(mdp, opt)
    assert math.isfinite(limit)
    q, _ = tb.soft_values(mdp, opt)
    gaps = q.max(-1, keepdims=True) - q
    delta = gaps[np.isfinite(gaps) & (gaps > 1e-12)].min() / 50  # e^{-gap/δ} < 1e-21
    assert tb.boltzmann_incoherence(mdp, opt, delta) == pytest.approx(limit, abs=1e-12)


def deterministic_optimal(mdp):
  """[T, S, A] one-hot on the first optimal action (ties: lowest index)."""
  q, _ = tb.optimal_values(mdp)
  return np.eye(mdp.num_actions)[np.argmax(q, -1)]


def test_corollary_4_14_fails_for_the_uniform_prior():
  """Cor 4.14's "not necessarily for non-optimal priors": in the mountain race the uniform
  prior's Q(·|∅) = (log ½, log ¾), so π* plays ↘ and earns ¾ < 1."""
  m = tb.mountain_race()
  star = bz.boltzmann_limit_policy(m, tb.uniform_policy(m))
  np.testing.assert_allclose(star[0, ROOT], [0.0, 1.0])
  assert tb.policy_return(m, star) == pytest.approx(0.75, abs=1e-15)
  assert tb.optimal_return(m) == 1.0


def test_corollary_4_15_is_not_sufficient():
  """[K] after Cor 4.15: π puts zero weight on ↗ at ∅ (and plays the fork it never visits at
  random), so ↘ is greedy for its own Q(·|∅) = (log ½, log ¾) and lim κ_δ = 0, yet J = ¾ < 1."""
  m = tb.mountain_race()
  pi = tb.uniform_policy(m)
  pi[ROOT] = [0.0, 1.0]
  assert bz.boltzmann_incoherence_limit(m, pi) == pytest.approx(0.0, abs=1e-15)
  assert tb.boltzmann_incoherence(m, pi, 1e-2) < 1e-10
  assert tb.policy_return(m, pi) == pytest.approx(0.75, abs=1e-15)
  assert tb.optimal_return(m) == 1.0


def test_corollary_4_15_support_condition_direction():
  """The limit is finite iff supp π ⊆ A* (not A* ⊆ supp π as the proof writes): one state, two
  tied optimal actions and a worse one. Picking one optimal action: optimal, limit log 2; putting
  any mass on the worse action: κ_δ ≥ c/δ → ∞."""
  m = tb.TabularMDP(np.ones((1, 3, 1)), np.log([[0.9, 0.9, 0.5]]), np.ones(1), 1)
  pick = np.array([[1.0, 0.0, 0.0]])
  assert tb.policy_return(m, pick) == pytest.approx(tb.optimal_return(m))
  assert bz.boltzmann_incoherence_limit(m, pick) == pytest.approx(math.log(2), abs=1e-15)
  mixed = np.array([[0.5, 0.4, 0.1]])
  assert bz.boltzmann_incoherence_limit(m, mixed) == math.inf
  gap = math.log(0.9) - math.log(0.5)
  for delta in (0.1, 0.01, 0.001):  # the worse action's term: 0.1·(gap/δ + O(1))
    assert tb.boltzmann_incoherence(m, mixed, delta) >= 0.1 * gap / delta - 1.0


# --------------------------------------------------------------------------- Prop 4.16


def one_step_mdp(seed, num_states=3, num_actions=4):
  rng = np.random.default_rng(seed)
  prob = rng.uniform(0.05, 1.0, size=(num_states, num_actions))
  return tb.TabularMDP(np.ones((num_states, num_actions, num_states)) / num_states, np.log(prob),
                       rng.dirichlet(np.ones(num_states)), 1)


@pytest.mark.parametrize("seed", range(5))
def test_proposition_4_16_kl_regularised_optimum(seed):
  """T = 1: p·e^r maximises E r − KL(π ‖ p) (value E_μ log Σ_a p e^r), equals G(p), and is
  Boltzmann-coherent (κ_1 = 0) for a uniform prior but not for a non-uniform one, whose
  Boltzmann-coherent policy is softmax(r)."""
  m = one_step_mdp(seed)
  rng = np.random.default_rng(50 + seed)
  for prior in (tb.uniform_policy(m), tb.random_policy(seed, m)):
    pi, value = bz.kl_regularised_optimum(m, prior)
    expected = prior * np.exp(m.log_reward)
    np.testing.assert_allclose(pi, expected / expected.sum(-1, keepdims=True), atol=1e-15)
    assert value == pytest.approx(m.initial @ np.log(expected.sum(-1)), abs=1e-14)
    assert bz.kl_regularised_return(m, pi, prior) == pytest.approx(value, abs=1e-13)
    for _ in range(20):
      other = rng.dirichlet(np.ones(m.num_actions), size=m.num_states)
      assert bz.kl_regularised_return(m, other, prior) < value
    np.testing.assert_allclose(pi, tb.goal_condition(m, prior)[0], atol=1e-14)
  uniform_opt, _ = bz.kl_regularised_optimum(m, tb.uniform_policy(m))
  assert tb.boltzmann_incoherence(m, uniform_opt, 1.0) == pytest.approx(0.0, abs=1e-14)
  skewed_opt, _ = bz.kl_regularised_optimum(m, tb.random_policy(seed, m))
  assert tb.boltzmann_incoherence(m, skewed_opt, 1.0) > 1e-3
  np.testing.assert_allclose(bz.boltzmann_coherent(m, 1.0)[0],
                             np.exp(m.log_reward) / np.exp(m.log_reward).sum(-1, keepdims=True),
                             atol=1e-15)


# --------------------------------------------------------------------------- Cor 5.11


def test_corollary_5_11_holds_as_iterated_limit_only():
  """Mountain race, π_i = G^i(uniform): π_i(↘|∅) = 2(¾)^i/(1 + 2(¾)^i) > 0 for every i while ↗
  is the only greedy action (i ≥ 1), so lim_{δ→0} κ_δ(π_i) = ∞; letting i → ∞ first leaves
  κ_δ(π_∞) = log(1 + (¾)^{1/δ}) → 0."""
  m = tb.mountain_race()
  seq = tb.retrain(m, tb.uniform_policy(m), 200)
  for i in (1, 10, 200):
    assert bz.boltzmann_incoherence_limit(m, seq[i]) == math.inf
  for i in (1, 10):  # (at i = 200 the blow-up needs δ < 1e-25: π_i(↘|∅) ≈ 2(¾)^200)
    kappas = [tb.boltzmann_incoherence(m, seq[i], d) for d in (0.1, 0.01, 0.001)]
    assert kappas[0] < kappas[1] < kappas[2]
  for delta in (1.0, 0.1, 0.05):
    assert tb.boltzmann_incoherence(m, seq[200], delta) == pytest.approx(
        math.log(1 + 0.75 ** (1 / delta)), rel=1e-6, abs=1e-20)


def test_corollary_5_11_fails_with_tied_optimal_actions():
  """T = 1, two tied optimal actions, prior odds 1 : 4: retraining keeps the odds, π^δ splits
  the ties evenly, so with i → ∞ first κ_δ(π_∞) ≥ KL((⅕, ⅘) ‖ (½, ½)) > 0 for every δ (and for
  every finite i, π_i keeps mass on the worse action: lim_{δ→0} κ_δ(π_i) = ∞)."""
  m = tb.TabularMDP(np.ones((1, 3, 1)), np.log([[0.9, 0.9, 0.5]]), np.ones(1), 1)
  prior = np.array([[0.16, 0.64, 0.2]])
  pi_inf = tb.limit_policy(m, prior)
  np.testing.assert_allclose(pi_inf[0, 0], [0.2, 0.8, 0.0], atol=1e-15)
  np.testing.assert_allclose(tb.retrain(m, prior, 300)[-1], pi_inf, atol=1e-12)
  assert bz.boltzmann_incoherence_limit(m, tb.retrain(m, prior, 300)[-1]) == math.inf
  floor = 0.2 * math.log(0.4) + 0.8 * math.log(1.6)
  for delta in (1.0, 0.1, 0.01):
    assert tb.boltzmann_incoherence(m, pi_inf, delta) >= floor - 1e-12
  assert tb.boltzmann_incoherence(m, pi_inf, 0.01) == pytest.approx(floor, abs=1e-12)
  assert bz.boltzmann_incoherence_limit(m, pi_inf) == pytest.approx(floor, abs=1e-15)


def test_limit_policy_separates_tiny_success_probabilities():
  """Q = (−800, −801) (success e^{−800} vs e^{−801}) is a strict order, not a tie."""
  m = tb.TabularMDP(np.ones((1, 2, 1)), [[-800.0, -801.0]], np.ones(1), 1)
  np.testing.assert_allclose(bz.boltzmann_limit_policy(m, tb.uniform_policy(m))[0, 0], [1, 0])


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_kl_regularised_optimum_with_other_weights(beta):
  """p·e^{r/β} maximises E r − β KL(π ‖ p), with value β·E log Σ p e^{r/β}."""
  m = one_step_mdp(7)
  prior = tb.random_policy(8, m)
  pi, value = bz.kl_regularised_optimum(m, prior, beta)
  assert bz.kl_regularised_return(m, pi, prior, beta) == pytest.approx(value, abs=1e-13)
  w = prior * np.exp(m.log_reward / beta)
  assert value == pytest.approx(m.initial @ (beta * np.log(w.sum(-1))), abs=1e-14)
  rng = np.random.default_rng(9)
  for _ in range(20):
    other = rng.dirichlet(np.ones(m.num_actions), size=m.num_states)
    assert bz.kl_regularised_return(m, other, prior, beta) < value


def test_bad_inputs_raise_value_error():
  m = tb.mountain_race()
  one = one_step_mdp(0)
  with pytest.raises(ValueError, match="beta"):
    bz.kl_regularised_optimum(one, tb.uniform_policy(one), beta=0.0)
  with pytest.raises(ValueError, match="horizon T = 1"):
    bz.kl_regularised_optimum(m, tb.uniform_policy(m))
  with pytest.raises(ValueError, match="iterations"):
    bz.iterated_f_coherence(m, tb.uniform_policy(m), tb.softmax_f(1.0), iterations=-1)
  with pytest.raises(ValueError, match="delta"):
    bz.boltzmann_policy(m, tb.uniform_policy(m), 0.0)


# --------------------------------------------------------------------------- Cor 5.10


def det_cases():
  out = []
  for seed in range(4):
    m = tb.random_tree_mdp(seed, depth=3, num_actions=3, num_outcomes=1, per_step_reward=True)
    out.append((f"tree{seed}", m, tb.random_policy(seed + 30, m)))
    m = tb.random_mdp(seed, num_states=4, num_actions=3, horizon=3, deterministic=True)
    out.append((f"graph{seed}", m, tb.random_policy(seed + 40, m, time_indexed=True)))
  return out


DET_CASES = det_cases()
DET_IDS = [c[0] for c in DET_CASES]


def trajectories(mdp, prior):
  """Every trajectory the prior can take from each initial state, by enumeration:
  [(μ(s_0), log p(ξ | s_0) array, R(ξ) = Σ_t r array)] (R = −∞ allowed)."""
  pi = np.broadcast_to(prior, (mdp.horizon, mdp.num_states, mdp.num_actions))
  nxt = mdp.transitions.argmax(-1)
  out = []
  for s0 in np.flatnonzero(mdp.initial):
    paths = [(s0, 0.0, 0.0)]
    for t in range(mdp.horizon):
      paths = [(nxt[s, a], lp + math.log(pi[t, s, a]), ret + mdp.log_reward[s, a])
               for s, lp, ret in paths for a in range(mdp.num_actions) if pi[t, s, a] > 0]
    out.append((mdp.initial[s0], np.array([p[1] for p in paths]), np.array([p[2] for p in paths])))
  return out


def gibbs_moments(paths, alpha):
  """Under p(ξ)·e^{αR(ξ)} per initial state, averaged over μ: (E R, Var R, κ_3 R, −KL(· ‖ p))."""
  total = np.zeros(4)
  for mu, lp, ret in paths:
    live = np.isfinite(ret)
    w = np.exp(lp[live] + alpha * ret[live])
    w /= w.sum()
    x = ret[live]
    mean = w @ x
    kl = w @ (np.log(w) - lp[live])
    total += mu * np.array([mean, w @ (x - mean) ** 2, w @ (x - mean) ** 3, -kl])
  return total


@pytest.mark.parametrize("name,mdp,prior", DET_CASES, ids=DET_IDS)
def test_corollary_5_10_terms_by_enumeration(name, mdp, prior):
  """Cor 5.10's ingredients on deterministic MDPs: π^G_k = π_{α=k} (Thm 5.9) has the Gibbs
  trajectory law p(ξ)e^{kR(ξ)}, so J(π^G_k) = E R, J' = Var R, J'' = κ_3(R), Ĥ = −KL to the prior
  (enumerated here); the corollary's leading term is k·Var R."""
  paths = trajectories(mdp, prior)
  seq = tb.retrain(mdp, prior, 6)
  for k in range(1, 7):
    res = bz.return_improvement_rate(mdp, prior, k)
    d = res.derivatives
    mean, var, k3, ent = gibbs_moments(paths, k)
    assert bz.reward_return(mdp, seq[k]) == pytest.approx(mean, rel=1e-11, abs=1e-13)
    assert d.j == pytest.approx(mean, rel=1e-11, abs=1e-13)
    assert d.dj == pytest.approx(var, rel=1e-9, abs=1e-15)
    assert d.d2j == pytest.approx(k3, rel=1e-8, abs=1e-14)
    assert d.entropy == pytest.approx(ent, rel=1e-10, abs=1e-13)
    assert d.entropy == pytest.approx(-tb.trajectory_kl(mdp, seq[k], prior), rel=1e-10,
                                      abs=1e-13)
    assert var > 1e-6  # a non-degenerate case
    assert res.stated == pytest.approx(k * var, rel=1e-8)
    if k > 1:
      assert res.proof_term == pytest.approx(k / (k - 1) * var, rel=1e-8)
    before = bz.reward_return(mdp, seq[k - 1])
    want = mean - before if math.isfinite(before) else math.inf
    assert res.improvement == pytest.approx(want, rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("name,mdp,prior", DET_CASES[:4], ids=DET_IDS[:4])
def test_corollary_5_10_maxent_stationarity(name, mdp, prior):
  """The proof's characterisation: π_α maximises J + Ĥ/α, so dJ/dα + (1/α)·dĤ/dα = 0, with J and
  Ĥ = −KL(π_α ‖ p) taken from `temperature_policy` and differentiated numerically."""
  def j_h(alpha):
    pi = tb.temperature_policy(mdp, prior, alpha)
    return bz.reward_return(mdp, pi), -tb.trajectory_kl(mdp, pi, prior)
  eps = 1e-4
  for alpha in (1.0, 2.5, 4.0):
    (j_lo, h_lo), (j_mid, h_mid), (j_hi, h_hi) = (j_h(alpha - eps), j_h(alpha), j_h(alpha + eps))
    dj, dh = (j_hi - j_lo) / (2 * eps), (h_hi - h_lo) / (2 * eps)
    d2j, d2h = (j_hi - 2 * j_mid + j_lo) / eps ** 2, (h_hi - 2 * h_mid + h_lo) / eps ** 2
    d = bz.tempered_derivatives(mdp, prior, alpha)
    assert d.dj == pytest.approx(dj, rel=1e-6)
    assert d.d_entropy == pytest.approx(dh, rel=1e-6)
    assert dj + dh / alpha == pytest.approx(0.0, abs=1e-8 * abs(dj))
    assert d.d2j == pytest.approx(d2j, rel=1e-3, abs=1e-6)
    assert d.d2_entropy == pytest.approx(d2h, rel=1e-3, abs=1e-6)


def return_gap(paths):
  """Δ: the smallest gap, over initial states, between the best and second-best finite return."""
  gaps = []
  for _, _, ret in paths:
    levels = np.unique(np.round(ret[np.isfinite(ret)], 12))
    gaps.append(levels[-1] - levels[-2])
  return min(gaps)


@pytest.mark.parametrize("name,mdp,prior", DET_CASES, ids=DET_IDS)
def test_corollary_5_10_exact_rate_and_remainder(name, mdp, prior):
  """The exact improvement is ∫_{k−1}^k Var_{π_α}(R) dα (Gauss–Legendre, 30 nodes). The stated
  leading term k·Var_{π^G_k} overshoots it by a factor → kΔ/(e^Δ − 1) (Δ = `return_gap`): at
  k = 10/Δ within 5%. The remainder still vanishes faster than 1/k², as both sides decay like
  e^{−kΔ}: k²·|remainder| drops by 10³ from k = 5/Δ to k = 20/Δ."""
  nodes, weights = np.polynomial.legendre.leggauss(30)
  for k in range(2, 13):
    res = bz.return_improvement_rate(mdp, prior, k)
    alphas = k - 0.5 + 0.5 * nodes
    integral = 0.5 * sum(w * bz.tempered_derivatives(mdp, prior, a).dj
                         for a, w in zip(alphas, weights))
    assert res.improvement == pytest.approx(integral, rel=1e-7, abs=1e-14)
    assert res.improvement > 0  # Prop 5.4 for this J
  gap = return_gap(trajectories(mdp, prior))
  k5, k10, k20 = (max(2, int(c / gap)) for c in (5, 10, 20))
  res = bz.return_improvement_rate(mdp, prior, k10)
  assert res.stated / res.improvement == pytest.approx(k10 * gap / math.expm1(gap), rel=0.05)
  assert res.stated / res.improvement > 10
  scaled = [k ** 2 * abs(bz.return_improvement_rate(mdp, prior, k).remainder) for k in (k5, k20)]
  assert scaled[1] < 1e-3 * scaled[0]


def test_corollary_5_10_mountain_race_closed_form():
  """Mountain race, uniform prior, [K]'s J = E Σ r: π^G_k(↘|∅) = q_k = 2c/(1 + 2c), c = (¾)^k,
  π^G_k(↗|↗ fork) = 1, so J(π^G_k) = q_k·log ¾ and Var = q_k(1 − q_k)·log²¾. The prior plays
  ↘ at the ↗ fork (r = −∞), so J(π^G_0) = −∞ and the k = 1 improvement is +∞. For large k the
  improvement is ≈ ⅔·|log ¾|·2c and the stated term ≈ k·log²¾·2c: ratio → 3k·log(4/3) = kΔ/(e^Δ − 1)
  with Δ = log(4/3); the proof's term is k/(k − 1)·Var, ratio → k/(k − 1)·3·log(4/3) ≠ 1."""
  m = tb.mountain_race()
  u = tb.uniform_policy(m)
  lg = math.log(0.75)
  q = lambda k: 2 * 0.75 ** k / (1 + 2 * 0.75 ** k)  # noqa: E731
  assert bz.reward_return(m, u) == -math.inf
  first = bz.return_improvement_rate(m, u, 1)
  assert first.improvement == math.inf and first.proof_term == math.inf
  assert first.stated == pytest.approx(q(1) * (1 - q(1)) * lg ** 2, rel=1e-13)
  for k in (2, 3, 5, 10, 20, 40):
    res = bz.return_improvement_rate(m, u, k)
    var = q(k) * (1 - q(k)) * lg ** 2
    assert res.derivatives.j == pytest.approx(q(k) * lg, rel=1e-13)
    assert res.improvement == pytest.approx((q(k) - q(k - 1)) * lg, rel=1e-9)
    assert res.stated == pytest.approx(k * var, rel=1e-12)
    assert res.proof_term == pytest.approx(k / (k - 1) * var, rel=1e-12)
  res = bz.return_improvement_rate(m, u, 40)
  assert res.stated / res.improvement == pytest.approx(3 * 40 * math.log(4 / 3), rel=1e-3)
  assert res.proof_term / res.improvement == pytest.approx(40 / 39 * 3 * math.log(4 / 3), rel=1e-3)


def test_corollary_5_10_needs_deterministic_dynamics():
  """[K] Example 3 (stochastic): retraining and temperature part ways (π^G_2 ≠ π_{α=2}), so the
  tempered family no longer gives J(π^G_k); the function refuses such MDPs."""
  m = tb.example3()
  u = tb.uniform_policy(m)
  g2 = tb.retrain(m, u, 2)[2]
  t2 = tb.temperature_policy(m, u, 2.0)
  np.testing.assert_allclose(g2[0, 0], [25 / 61, 36 / 61], atol=1e-15)  # [K] Example 3
  np.testing.assert_allclose(t2[0, 0], [7 / 17, 10 / 17], atol=1e-15)
  assert abs(bz.reward_return(m, g2) - bz.reward_return(m, t2)) > 3e-4
  with pytest.raises(ValueError, match="mdp: .*deterministic"):
    bz.return_improvement_rate(m, u, 2)
  with pytest.raises(ValueError, match="mdp: .*deterministic"):
    bz.tempered_derivatives(m, u, 2.0)


def test_corollary_5_10_bad_inputs():
  m = tb.mountain_race()
  u = tb.uniform_policy(m)
  for k in (0, -1, 1.5, True):
    with pytest.raises(ValueError, match="k must be a positive integer"):
      bz.return_improvement_rate(m, u, k)
  with pytest.raises(ValueError, match="alpha must be positive"):
    bz.tempered_derivatives(m, u, 0.0)
  doomed = tb.TabularMDP(np.ones((1, 2, 1)), [[-np.inf, -np.inf]], np.ones(1), 1)
  with pytest.raises(ValueError, match="prior: .*r = −∞"):
    bz.return_improvement_rate(doomed, tb.uniform_policy(doomed), 1)


def test_corollary_5_10_constant_return_is_degenerate():
  """Every trajectory has the same return: J is flat, Var = 0, and the 0/0 leading term is 0."""
  m = tb.TabularMDP(np.ones((1, 2, 1)), np.log([[0.5, 0.5]]), np.ones(1), 2)
  res = bz.return_improvement_rate(m, tb.uniform_policy(m), 3)
  assert res.improvement == 0.0
  assert res.stated == pytest.approx(0.0, abs=1e-25)
  assert res.derivatives.dj == pytest.approx(0.0, abs=1e-25)


def test_corollary_5_11_joint_limit_depends_on_the_path():
  """Mountain race: κ_δ(π^G_i) = KL((1 − q, q) ‖ (1 − b, b)) at ∅ (the forks contribute 0), with
  q = π^G_i(↘|∅) = 2(¾)^i/(1 + 2(¾)^i) and b = π^δ(↘|∅) = (¾)^{1/δ}/(1 + (¾)^{1/δ}). Along
  δ_i = c·(¾)^i it tends to 2·log(4/3)/c, not 0; along δ_i = 1/i it tends to 0."""
  m = tb.mountain_race()
  seq = tb.retrain(m, tb.uniform_policy(m), 24)

  def kappa(i, delta):
    q = 2 * 0.75 ** i / (1 + 2 * 0.75 ** i)
    b = 0.75 ** (1 / delta) / (1 + 0.75 ** (1 / delta))
    return q * math.log(q / b) + (1 - q) * math.log((1 - q) / (1 - b))

  for c in (1.0, 0.5):
    limit = 2 * math.log(4 / 3) / c
    errs = []
    for i in (8, 16, 24):
      delta = c * 0.75 ** i
      got = tb.boltzmann_incoherence(m, seq[i], delta)
      assert got == pytest.approx(kappa(i, delta), rel=1e-9)
      errs.append(abs(got - limit))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.03 * limit
  slow = [tb.boltzmann_incoherence(m, seq[i], 1 / i) for i in (8, 16, 24)]
  assert slow[0] > slow[1] > slow[2] and slow[2] < 0.01

"""Boltzmann coherence and the retraining rate, exactly, on tabular MDPs ([K] §4.1, Defs 4.9–4.12
to Prop 4.16; §5.1, Cors 5.10–5.11).

Builds on `operators`: the soft Q under a policy (Def 4.1), the f-soft-Q policy π^{Q,f} (Def 4.5),
f-incoherence κ_f (Def 4.6, in the occupancy form of Prop 4.7) and softmax f (Def 4.11). Adds

* `boltzmann_policy` — the Boltzmann-rational policy π^δ ∝ exp(Q^π/δ) (Def 4.11);
* `iterated_f_coherence` / `boltzmann_coherent` — π^B_{i+1} = π^{Q,f}(π^B_i) (Def 4.9), which is
  f-coherent from i = T on (Prop 4.10);
* `boltzmann_limit_policy` — π* = lim_{δ→0} π^δ, uniform over argmax_a Q^π(s, a) (Prop 4.13);
* `boltzmann_incoherence_limit` — lim_{δ→0} κ_δ(π) (Cor 4.15);
* `argmax_f` — the order-respecting f that is uniform over the maximisers (Prop 4.8);
* `kl_regularised_return` / `kl_regularised_optimum` — Prop 4.16 (T = 1);
* `reward_return`, `tempered_derivatives`, `return_improvement_rate` — Cor 5.10, the return
  improvement J(π^G_k) − J(π^G_{k−1}) of one retraining round on deterministic MDPs, next to the
  corollary's leading term.

Shapes: S states, A actions, T horizon; policies [S, A] or [T, S, A] in, [T, S, A] out. Float64.

Where the text and the mathematics differ (tests/tabular/test_tabular_boltzmann.py checks each):
* Cor 4.15's proof asks supp(π*) ⊆ supp(π); the limit is finite iff supp(π) ⊆ supp(π*) = A* at
  every visited state, i.e. π plays only its own Q-greedy actions. A deterministic optimal policy
  that picks one of two tied optimal actions has the finite limit log 2.
* Prop 4.16's policy p(a|s)·e^{r(s,a)} maximises E r − KL(π ‖ p) and equals G(p), but it is
  Boltzmann-coherent (κ_1 = 0) only where p is uniform: π^δ of Def 4.11 is a softmax of Q alone,
  so the T = 1 Boltzmann-coherent policy is softmax(r/δ), the maximiser of E r + δ·H(π).
* Cor 5.11, lim_{(δ,i)→(0,∞)} κ_δ(π^G_i) = 0, holds on the mountain race as the iterated limit
  (i → ∞ first). For every fixed i, κ_δ(π^G_i) → ∞ as δ → 0 wherever π^G_i still puts mass on a
  non-greedy action, and tied optimal actions with unequal prior odds leave
  κ_δ(π^G_∞) = KL(π^G_∞ ‖ uniform on the ties) > 0. The joint limit does not exist: along
  δ_i = c·(¾)^i the mountain race gives κ_{δ_i}(π^G_i) → 2·log(4/3)/c, and 0 only along paths
  with (¾)^i/δ_i → 0.
* Cor 5.10's leading term (1/k)·J'Ĥ'/(J'' + Ĥ''/k) is k·Var_{π^G_k}(Σ_t r), whichever
  temperature the derivatives are taken in (α or 1/α: the ratio is invariant at a maximiser of
  J + Ĥ/α). The exact improvement is ∫_{k−1}^k Var_{π_α}(Σ_t r) dα, of the order of Var_{π^G_k},
  not k·Var: leading term / improvement → kΔ/(e^Δ − 1) → ∞, Δ the smallest gap (over initial
  states) between the best and second-best return the prior can reach. The proof's own step
  η = 1/(k(k−1)) in place of 1/k gives k/(k−1)·Var, ratio → k/(k−1)·Δ/(e^Δ − 1) ≠ 1: u(x) =
  J(π_{1/x}) varies like e^{−Δ/x}, so the Taylor remainder is as large as the first-order term.
  The stated equation holds only because both sides decay like e^{−kΔ}, which is O(1/k²). At
  k = 1 the improvement is +∞ when the prior reaches r = −∞. J is [K] §3's E Σ_t r
  (`reward_return`), not `operators.policy_return`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from causal_meta.tabular.mdp import TabularMDP, as_time_indexed, occupancy
from causal_meta.tabular.operators import (f_soft_policy, kl_divergence, optimal_values, retrain,
                                           softmax_f, trajectory_kl)

_RTOL = 1e-9  # relative tolerance, in probability, for "Q equals its maximum"


def boltzmann_policy(mdp: TabularMDP, policy: np.ndarray, delta: float = 1.0) -> np.ndarray:
  """π^δ(a|s) ∝ exp(Q^π(s, a)/δ) ([K] Def 4.11), Q^π the soft Q under π; [T, S, A].

  Rows where every Q is −∞ (success impossible) are uniform.
  """
  return f_soft_policy(mdp, policy, softmax_f(delta))


def iterated_f_coherence(mdp: TabularMDP, prior: np.ndarray, f: Callable[[np.ndarray], np.ndarray],
                         iterations: int | None = None) -> np.ndarray:
  """π^B_0 = prior, π^B_{i+1} = π^{Q,f} of π^B_i ([K] Def 4.9).

  Row t of π^B_i depends on π^B_{i−1} only at times > t, so the rows settle from the last
  decision backwards and π^B_i = π^B_T for i ≥ T (Prop 4.10).

  Args:
    mdp: the MDP.
    prior: [S, A] or [T, S, A].
    f: order-respecting, [..., A] Q values -> [..., A] non-negative weights (`softmax_f`,
      `argmax_f`).
    iterations: K, default T.

  Returns:
    [K + 1, T, S, A] with the prior at index 0.
  """
  k = mdp.horizon if iterations is None else int(iterations)
  if k < 0:
    raise ValueError(f"iterations must be non-negative, got {iterations}")
  pi = as_time_indexed(mdp, prior)
  out = [pi]
  for _ in range(k):
    pi = f_soft_policy(mdp, pi, f)
    out.append(pi)
  return np.stack(out)


def boltzmann_coherent(mdp: TabularMDP, delta: float = 1.0) -> np.ndarray:
  """The Boltzmann-coherent policy (κ_δ = 0): T rounds of Def 4.9 with softmax(·/δ); [T, S, A].

  It does not depend on the prior: the last decision's row is softmax(r/δ) whatever π^B_0 is,
  and each earlier row is fixed by the later ones.
  """
  prior = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
  return iterated_f_coherence(mdp, prior, softmax_f(delta))[-1]


def _greedy_mask(q: np.ndarray, rtol: float) -> np.ndarray:
  """[..., A] bool: a ∈ A* = argmax_a q (relative `rtol` in probability); all-−∞ rows: all."""
  m = q.max(-1, keepdims=True)
  # Compared in log space, so tiny success probabilities (e^{-800}) do not underflow to ties.
  best = q >= np.where(np.isfinite(m), m, 0.0) + np.log1p(-rtol)
  return np.where(np.isfinite(m), best, True)


def argmax_f(rtol: float = _RTOL) -> Callable[[np.ndarray], np.ndarray]:
  """The order-respecting f that is uniform over argmax_a Q ([K] Def 4.4; Prop 4.8's f)."""

  def f(q: np.ndarray) -> np.ndarray:
    mask = _greedy_mask(q, rtol).astype(np.float64)
    return mask / mask.sum(-1, keepdims=True)
  return f


def boltzmann_limit_policy(mdp: TabularMDP, policy: np.ndarray, rtol: float = _RTOL) -> np.ndarray:
  """π* = lim_{δ→0} π^δ: uniform over A*_t(s) = argmax_a Q^π_t(s, a) ([K] Prop 4.13); [T, S, A].

  Q values within `rtol` (relative, in probability e^Q) of the maximum count as tied.
  """
  return f_soft_policy(mdp, policy, argmax_f(rtol))


def boltzmann_incoherence_limit(mdp: TabularMDP, policy: np.ndarray, rtol: float = _RTOL) -> float:
  """lim_{δ→0} κ_δ(π) = Σ_t E_{s~d^t_π} KL(π_t(·|s) ‖ π*_t(·|s)) ([K] Cor 4.15's proof).

  Finite iff π plays only actions in A*_t(s) at every state it visits; +∞ otherwise.
  """
  pi = as_time_indexed(mdp, policy)
  return trajectory_kl(mdp, pi, boltzmann_limit_policy(mdp, pi, rtol))


def greedy_optimal_policy(mdp: TabularMDP, rtol: float = _RTOL) -> np.ndarray:
  """[T, S, A] uniform over the optimal actions argmax_a Q*_t(s, a) at every (t, s)."""
  q, _ = optimal_values(mdp)
  return argmax_f(rtol)(q)


# --------------------------------------------------------------------------- Prop 4.16 (T = 1)


def _one_step(mdp: TabularMDP, beta: float) -> None:
  if mdp.horizon != 1:
    raise ValueError(f"Prop 4.16 is for horizon T = 1, got horizon {mdp.horizon}")
  if not beta > 0:
    raise ValueError(f"beta must be positive, got {beta}")


def _expect_initial(mdp: TabularMDP, x: np.ndarray) -> float:
  """E_{s~μ} x(s), skipping states with μ(s) = 0 (where x may be −∞)."""
  return float(np.sum(np.where(mdp.initial > 0, mdp.initial * x, 0.0)))


def kl_regularised_return(mdp: TabularMDP, policy: np.ndarray, prior: np.ndarray,
                          beta: float = 1.0) -> float:
  """E_{s~μ, a~π}[r(s, a)] − β·E_{s~μ} KL(π(·|s) ‖ p(·|s)) for T = 1 ([K] Prop 4.16).

  −∞ when π puts mass on an action with r = −∞ or outside the prior's support.

  Args:
    mdp: a horizon-1 MDP.
    policy, prior: [S, A] (or [1, S, A]).
    beta: the KL weight (Prop 4.16 has β = 1).
  """
  _one_step(mdp, beta)
  pi = as_time_indexed(mdp, policy)[0]
  p = as_time_indexed(mdp, prior)[0]
  with np.errstate(invalid="ignore"):
    reward = np.where(pi > 0, pi * mdp.log_reward, 0.0).sum(-1)
  with np.errstate(invalid="ignore"):
    return _expect_initial(mdp, reward - beta * kl_divergence(pi, p))


def kl_regularised_optimum(mdp: TabularMDP, prior: np.ndarray,
                           beta: float = 1.0) -> tuple[np.ndarray, float]:
  """The maximiser π(a|s) ∝ p(a|s)·e^{r(s,a)/β} of `kl_regularised_return` and its value
  β·E_μ log Σ_a p(a|s) e^{r(s,a)/β} ([K] Prop 4.16, β = 1). States where every prior action has
  r = −∞ keep the prior (the value is −∞ there).

  Returns:
    ([S, A] policy, value).
  """
  _one_step(mdp, beta)
  p = as_time_indexed(mdp, prior)[0]
  w = p * np.exp(mdp.log_reward / beta)
  z = w.sum(-1, keepdims=True)
  pi = np.where(z > 0, w / np.where(z > 0, z, 1.0), p)
  with np.errstate(divide="ignore"):
    value = _expect_initial(mdp, beta * np.log(z[:, 0]))
  return pi, value



# --------------------------------------------------------------------------- Cor 5.10


def reward_return(mdp: TabularMDP, policy: np.ndarray) -> float:
  """[K] §3's return J(π) = E_π[Σ_t r(s_t, a_t)], the expected log-probability of optimality.

  Not `operators.policy_return` (p_π(O_{1:T} = 1)): Cor 5.10's proof needs this J, the one that
  π_α maximises with the causal-entropy bonus. −∞ when π plays an action with r = −∞ at a state
  it visits.

  Args:
    mdp: the MDP.
    policy: [S, A] or [T, S, A].
  """
  pi = as_time_indexed(mdp, policy)
  d = occupancy(mdp, pi)
  with np.errstate(invalid="ignore"):
    per_state = np.where(pi > 0, pi * mdp.log_reward, 0.0).sum(-1)  # [T, S]
    return float(np.sum(np.where(d > 0, d * per_state, 0.0)))


@dataclasses.dataclass(frozen=True)
class TemperedDerivatives:
  """J and Ĥ of π_α ([K] Def 5.6) and their first two derivatives in the inverse temperature α.

  Ĥ(π) = −KL(p_π(ξ) ‖ p_prior(ξ)) = Σ_t E_{d^t_π} −KL(π_t(·|s) ‖ p_t(·|s)), the causal entropy
  relative to the prior (for a uniform prior: the causal entropy minus T·log A, so the same
  derivatives). π_α maximises J(π) + Ĥ(π)/α, hence J' + Ĥ'/α = 0.
  """

  alpha: float
  j: float
  dj: float  # = Var_{π_α}(Σ_t r) ≥ 0
  d2j: float  # = the third cumulant of Σ_t r under π_α
  entropy: float
  d_entropy: float  # = −α·dj
  d2_entropy: float  # = −dj − α·d2j


def _deterministic_next(mdp: TabularMDP) -> np.ndarray:
  """[S, A] the successor state; rejects stochastic dynamics (Cor 5.10's assumption)."""
  if not mdp.deterministic:
    raise ValueError("mdp: [K] Cor 5.10 needs deterministic dynamics (every τ(·|s, a) a point "
                     "mass); under stochastic ones retraining and temperature part ways (Thm 5.9)")
  return mdp.transitions.argmax(-1)


def tempered_derivatives(mdp: TabularMDP, prior: np.ndarray, alpha: float) -> TemperedDerivatives:
  """J, Ĥ and their α-derivatives along π_α ∝ p·e^{α r} ([K] Def 5.6), deterministic dynamics.

  On deterministic dynamics π_α's trajectory law is the Gibbs posterior p(ξ)·e^{α R(ξ)}/Z_α(s_0),
  R = Σ_t r, Z_α = e^{V_α(s_0)} (Prop 4.3), so J = E_μ ∂_α V_α, J' = E_μ ∂²_α V_α (the variance of
  R), J'' = E_μ ∂³_α V_α (its third cumulant) and Ĥ = E_μ[V_α − α·∂_α V_α]. The derivatives of
  V_α go backwards with it: V_t(s) = log Σ_a p_t(a|s) e^{X(s,a)}, X = α r + V_{t+1}(s'), gives
  V' = E_π X', V'' = E_π X'' + Var_π X', V''' = E_π X''' + 3 Cov_π(X', X'') + κ_3,π(X').

  Args:
    mdp: a deterministic MDP.
    prior: [S, A] or [T, S, A], π_0 = p.
    alpha: α > 0.

  Raises:
    ValueError: stochastic dynamics, α ≤ 0, or an initial state from which every trajectory the
      prior can take has r = −∞ (then J(π_α) = −∞ for every α).
  """
  nxt = _deterministic_next(mdp)
  if not alpha > 0:
    raise ValueError(f"alpha must be positive, got {alpha}")
  p = as_time_indexed(mdp, prior)
  r = mdp.log_reward
  v = np.zeros(mdp.num_states)
  v1, v2, v3 = np.zeros_like(v), np.zeros_like(v), np.zeros_like(v)
  with np.errstate(divide="ignore", invalid="ignore"):
    log_p = np.log(p)
    for t in reversed(range(mdp.horizon)):
      x = log_p[t] + alpha * r + v[nxt]  # [S, A] log weights, −∞ where p = 0 or r = −∞
      m = x.max(-1)
      live = np.isfinite(m)
      v = np.where(live, np.log(np.exp(x - np.where(live, m, 0.0)[:, None]).sum(-1)) + m,
                   -np.inf)
      pi = np.where(np.isfinite(x), np.exp(x - np.where(live, v, 0.0)[:, None]), 0.0)
      on = pi > 0
      y1 = np.where(on, r + v1[nxt], 0.0)
      y2 = np.where(on, v2[nxt], 0.0)
      y3 = np.where(on, v3[nxt], 0.0)
      mean1 = (pi * y1).sum(-1)
      mean2 = (pi * y2).sum(-1)
      c1 = np.where(on, y1 - mean1[:, None], 0.0)
      c2 = np.where(on, y2 - mean2[:, None], 0.0)
      v1 = mean1
      v2 = mean2 + (pi * c1 ** 2).sum(-1)
      v3 = (pi * y3).sum(-1) + 3 * (pi * c1 * c2).sum(-1) + (pi * c1 ** 3).sum(-1)
  start = mdp.initial > 0
  if not np.all(np.isfinite(v[start])):
    raise ValueError("prior: from some initial state every trajectory it can take has r = −∞, "
                     "so J(π_α) = −∞ for every α")
  mu = mdp.initial[start]
  j, dj, d2j = float(mu @ v1[start]), float(mu @ v2[start]), float(mu @ v3[start])
  entropy = float(mu @ (v[start] - alpha * v1[start]))
  return TemperedDerivatives(alpha, j, dj, d2j, entropy, -alpha * dj, -dj - alpha * d2j)


@dataclasses.dataclass(frozen=True)
class ReturnImprovement:
  """One retraining round k of [K] Cor 5.10, exactly.

  Attributes:
    k: the round, π^G_k = G(π^G_{k−1}).
    improvement: J(π^G_k) − J(π^G_{k−1}), J = `reward_return`, π^G from `operators.retrain`
      (+∞ at k = 1 when the prior reaches r = −∞).
    stated: the corollary's leading term (1/k)·J'Ĥ'/(J'' + Ĥ''/k) at π^G_k = π_{α=k}; equals
      k·Var_{π^G_k}(Σ_t r).
    proof_term: the leading term with its proof's step η = 1/(k(k−1)) in place of 1/k,
      η·J'Ĥ'/(J'' + Ĥ''/k) = k/(k−1)·Var_{π^G_k}(Σ_t r); +∞ at k = 1.
    remainder: improvement − stated, the corollary's O(1/k²).
    derivatives: J, Ĥ and their α-derivatives at α = k.
  """

  k: int
  improvement: float
  stated: float
  proof_term: float
  remainder: float
  derivatives: TemperedDerivatives


def return_improvement_rate(mdp: TabularMDP, prior: np.ndarray, k: int) -> ReturnImprovement:
  """[K] Cor 5.10 (return improvement rate): with deterministic dynamics τ, for k ∈ N_+,

      J(π^G_k) − J(π^G_{k−1}) = (1/k)·J'(π^G_k)·Ĥ'(π^G_k) / (J''(π^G_k) + Ĥ''(π^G_k)/k) + O(1/k²),

  Ĥ the causal entropy, derivatives in the temperature. Its proof: π^G_k = π_{α=k} (Thm 5.9,
  Lemma A.10), π_α maximises J + Ĥ/α, and Lemma A.11 differentiates u(x) = J(π_{1/x}). Whether
  the derivatives are in α or in x = 1/α, the fraction is −u'(1/k) = k²·J'(α = k) =
  k²·Var_{π^G_k}(Σ_t r) (`TemperedDerivatives` documents J, Ĥ and the causal-entropy reading).
  The exact improvement is ∫_{k−1}^k Var_{π_α}(Σ_t r) dα; the module docstring compares the two.

  Args:
    mdp: a deterministic MDP.
    prior: [S, A] or [T, S, A], π^G_0.
    k: the retraining round, a positive integer.

  Returns:
    `ReturnImprovement`.

  Raises:
    ValueError: stochastic dynamics, k not a positive integer, or success impossible from an
      initial state under the prior.
  """
  if isinstance(k, bool) or int(k) != k or k < 1:
    raise ValueError(f"k must be a positive integer ([K] Cor 5.10: k ∈ N_+), got {k!r}")
  k = int(k)
  der = tempered_derivatives(mdp, prior, float(k))
  seq = retrain(mdp, prior, k)
  j_now, j_before = reward_return(mdp, seq[k]), reward_return(mdp, seq[k - 1])
  improvement = j_now - j_before if math.isfinite(j_before) else math.inf
  denominator = der.d2j + der.d2_entropy / k  # = −J'/k ≤ 0: π_α is a maximiser
  # J' = 0 (every trajectory the prior can take has the same return): J is constant in α.
  fraction = der.dj * der.d_entropy / denominator if denominator != 0 else 0.0
  stated = fraction / k
  proof_term = fraction / (k * (k - 1)) if k > 1 else math.inf
  return ReturnImprovement(k, improvement, stated, proof_term, improvement - stated, der)

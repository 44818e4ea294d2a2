"""Boltzmann coherence, exactly, on tabular MDPs ([K] §4.1, Defs 4.9–4.12 to Prop 4.16).

Builds on `operators`: the soft Q under a policy (Def 4.1), the f-soft-Q policy π^{Q,f} (Def 4.5),
f-incoherence κ_f (Def 4.6, in the occupancy form of Prop 4.7) and softmax f (Def 4.11). Adds

* `boltzmann_policy` — the Boltzmann-rational policy π^δ ∝ exp(Q^π/δ) (Def 4.11);
* `iterated_f_coherence` / `boltzmann_coherent` — π^B_{i+1} = π^{Q,f}(π^B_i) (Def 4.9), which is
  f-coherent from i = T on (Prop 4.10);
* `boltzmann_limit_policy` — π* = lim_{δ→0} π^δ, uniform over argmax_a Q^π(s, a) (Prop 4.13);
* `boltzmann_incoherence_limit` — lim_{δ→0} κ_δ(π) (Cor 4.15);
* `argmax_f` — the order-respecting f that is uniform over the maximisers (Prop 4.8);
* `kl_regularised_return` / `kl_regularised_optimum` — Prop 4.16 (T = 1).

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
  κ_δ(π^G_∞) = KL(π^G_∞ ‖ uniform on the ties) > 0.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from causal_meta.tabular.mdp import TabularMDP, as_time_indexed
from causal_meta.tabular.operators import (f_soft_policy, kl_divergence, optimal_values,
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


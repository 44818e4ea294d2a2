"""Goal-conditioning, retraining, temperature and folded sequences, incoherence ([D] §3, [K] §4–5).

Everything is exact backward recursion in log space (float64), so rewards of −∞ and policies
sharpened by α = 2^10 stay representable. Shapes: S states, A actions, T horizon, K iterations;
policies are [S, A] or [T, S, A] on input and [T, S, A] on output (see `mdp.py`).

Conventions where the papers are silent:
* G(π)(·|s) at a state from which success is impossible under π (V^π_t(s) = −∞) is π(·|s)
  unchanged: the condition R = 1 has probability zero there, and retraining has no data for it.
* The return J(π) is the probability of optimality p_π(O_{1:T} = 1) = Σ_s μ(s) e^{V^π_0(s)}: for
  a binary terminal reward it is [D] Def 3.2, J(π) = p_π(R = 1), and it is the quantity [K]
  Prop 5.4's proof shows increasing.
* Folded sequences ([K] Defs 5.7–5.8) use the prior p as base measure and fold the log-ratio
  log(π/p) into the reward. For a uniform prior this is the definition verbatim up to an additive
  constant per step (which leaves every policy unchanged, [K] Lemma A.8); for other priors it is
  the "fold the prior into the reward" reading that [K]'s proofs (Lemmas A.8, A.9) assume.
  Indexing follows Defs 5.7–5.8 literally: π_0 = p and π_{k+1} = p(a | s, O^{(k)}). Under it
  [K] Thm 5.9 reads π_{α=2^k} = π^G_{2^k} = π^F_{2^k} = π^H_{k+1}; the proof of Lemma A.8 indexes
  π^H by the reward it conditions on, which shifts k by one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from causal_meta.tabular.mdp import TabularMDP, as_time_indexed, occupancy, reachable


# --------------------------------------------------------------------------- numerics

def _log(x: np.ndarray) -> np.ndarray:
  with np.errstate(divide="ignore"):
    return np.log(x)


def log_expect(log_x: np.ndarray, weights: np.ndarray, axis: int = -1) -> np.ndarray:
  """log Σ w·e^{log_x} along `axis`, exact with −∞ entries and zero weights."""
  z = np.where(weights > 0, log_x + _log(weights), -np.inf)
  m = np.max(z, axis=axis, keepdims=True)
  m = np.where(np.isfinite(m), m, 0.0)
  with np.errstate(divide="ignore"):
    out = np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True)) + m
  return np.squeeze(out, axis=axis)


def kl_divergence(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
  """KL(p ‖ q) along `axis` with 0·log 0 = 0 and +∞ where p > 0 = q."""
  p = np.asarray(p, np.float64)
  q = np.asarray(q, np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    terms = np.where(p > 0, p * (_log(p) - _log(q)), 0.0)
  return np.sum(terms, axis=axis)


def _reward(mdp: TabularMDP, log_reward: np.ndarray | None) -> np.ndarray:
  """[T, S, A] reward, from the MDP's or from an override of shape [S, A] or [T, S, A]."""
  r = mdp.log_reward if log_reward is None else np.asarray(log_reward, np.float64)
  return np.broadcast_to(r, (mdp.horizon, mdp.num_states, mdp.num_actions))


# --------------------------------------------------------------------------- soft values

def soft_values(mdp: TabularMDP, policy: np.ndarray,
                log_reward: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Soft Q and V under the policy ([K] Def 4.1), by backward recursion.

      Q_t(s, a) = r(s, a) + log E_{s'~τ(s,a)} e^{V_{t+1}(s')},   V_t(s) = log E_{a~π_t(s)} e^{Q_t(s, a)}

  with V_T = 0, so Q_t(s, a) = log p_π(O_{t:T} = 1 | s, a) and V_t(s) = log p_π(O_{t:T} = 1 | s)
  ([K] Prop 4.2).

  Args:
    mdp: the MDP.
    policy: [S, A] or [T, S, A].
    log_reward: optional [S, A] or [T, S, A] reward replacing the MDP's (any sign; used by the
      temperature and folded sequences).

  Returns:
    Q: [T, S, A] and V: [T + 1, S], in log space (−∞ where success is impossible).
  """
  pi = as_time_indexed(mdp, policy)
  return _soft_values(mdp.transitions, _reward(mdp, log_reward), pi)


def _soft_values(p: np.ndarray, r: np.ndarray, pi: np.ndarray):
  t_max, s, a = pi.shape
  q = np.empty((t_max, s, a))
  v = np.zeros((t_max + 1, s))
  for t in reversed(range(t_max)):
    q[t] = r[t] + log_expect(v[t + 1][None, None, :], p)
    v[t] = log_expect(q[t], pi[t])
  return q, v


def _condition(p: np.ndarray, r: np.ndarray, pi: np.ndarray) -> np.ndarray:
  """p_π(a_t | s_t, O_{t:T} = 1) for reward r; rows with V = −∞ keep π."""
  q, v = _soft_values(p, r, pi)
  logits = _log(pi) + q - np.where(np.isfinite(v[:-1]), v[:-1], 0.0)[..., None]
  post = np.exp(logits)
  post = np.where(np.isfinite(v[:-1])[..., None], post, pi)
  return post / post.sum(-1, keepdims=True)


# --------------------------------------------------------------------------- G and sequences

def goal_condition(mdp: TabularMDP, policy: np.ndarray,
                   log_reward: np.ndarray | None = None) -> np.ndarray:
  """The goal-conditioning operator G(π)(a|s) = p_π(a_t | s_t, O_{t:T} = 1) ([D] Def 3.4,
  [K] Def 5.3).

  By Bayes, G(π)_t(a|s) = π_t(a|s) e^{Q^π_t(s, a) − V^π_t(s)}. The dynamics are not conditioned:
  this is the policy a model retrained on the successful rollouts of π would output.

  Args:
    mdp: the MDP.
    policy: [S, A] or [T, S, A], the policy whose rollouts are conditioned on success.
    log_reward: optional reward override, [S, A] or [T, S, A].

  Returns:
    [T, S, A] the conditioned policy.
  """
  pi = as_time_indexed(mdp, policy)
  return _condition(mdp.transitions, _reward(mdp, log_reward), pi)


def retrain(mdp: TabularMDP, prior: np.ndarray, iterations: int) -> np.ndarray:
  """Iterated retraining π_k = G^k(π_0) ([D] after Def 3.4; π^G_k of [K] Def 5.3).

  Returns:
    [K + 1, T, S, A] with π_0 = prior at index 0.
  """
  pi = as_time_indexed(mdp, prior)
  out = [pi]
  for _ in range(iterations):
    pi = _condition(mdp.transitions, _reward(mdp, None), pi)
    out.append(pi)
  return np.stack(out)


def temperature_policy(mdp: TabularMDP, prior: np.ndarray, alpha: float) -> np.ndarray:
  """π_α(a|s) = p(a_t | s_t, O^α_{t:T} = 1) with p(O^α_t = 1 | s, a) = e^{α r(s, a)} ([K] Def 5.6).

  The prior is not raised to α. α = 0 gives the prior (every O^0 = 1, also where r = −∞).

  Returns:
    [T, S, A].
  """
  if alpha < 0:
    raise ValueError(f"alpha must be non-negative, got {alpha}")
  pi = as_time_indexed(mdp, prior)
  if alpha == 0:
    return pi
  return _condition(mdp.transitions, alpha * _reward(mdp, None), pi)


def _fold(prior: np.ndarray, posterior: np.ndarray) -> np.ndarray:
  """log(π/p), with 0 where the prior excludes the action (the base measure never takes it)."""
  with np.errstate(divide="ignore"):
    return np.where(prior > 0, _log(posterior) - _log(np.where(prior > 0, prior, 1.0)), 0.0)


def folded_sequence(mdp: TabularMDP, prior: np.ndarray, iterations: int) -> np.ndarray:
  """The folded sequence π^F_k ([K] Def 5.7).

      r_0 = r,  π^F_0 = p,  π^F_{k+1} = p(a | s, O^{(k)} = 1) with e^{r_k},  r_{k+1} = r + log(π^F_{k+1}/p)

  (the posterior replaces the prior inside the reward; see the module docstring).

  Returns:
    [K + 1, T, S, A].
  """
  return _folded(mdp, prior, iterations, cumulative=False)


def folded_cumulative_sequence(mdp: TabularMDP, prior: np.ndarray, iterations: int) -> np.ndarray:
  """The cumulative folded sequence π^H_k ([K] Def 5.8): as `folded_sequence` but
  r_{k+1} = r_k + log(π^H_{k+1}/p), so the reward keeps accumulating (it doubles for
  deterministic dynamics: π^H_{k+1} = π_{α=2^k}).

  Returns:
    [K + 1, T, S, A] with π^H_0 = p.
  """
  return _folded(mdp, prior, iterations, cumulative=True)


def _folded(mdp: TabularMDP, prior: np.ndarray, iterations: int, cumulative: bool) -> np.ndarray:
  """r_{k+1} = (r_k if cumulative else r) + log(π_{k+1}/p); returns [K + 1, T, S, A]."""
  p = as_time_indexed(mdp, prior)
  r0 = r_k = _reward(mdp, None)
  out = [p]
  for _ in range(iterations):
    pi = _condition(mdp.transitions, r_k, p)
    out.append(pi)
    r_k = (r_k if cumulative else r0) + _fold(p, pi)
  return np.stack(out)


# --------------------------------------------------------------------------- measures

def policy_return(mdp: TabularMDP, policy: np.ndarray) -> float:
  """J(π) = p_π(O_{1:T} = 1) = E_μ e^{V^π_0(s_0)} ([D] Def 3.2: p_π(R = 1) for terminal R)."""
  _, v = soft_values(mdp, policy)
  return float(np.sum(mdp.initial * np.exp(v[0])))


def optimal_values(mdp: TabularMDP) -> tuple[np.ndarray, np.ndarray]:
  """Optimal log success probabilities: Q*_t(s, a) [T, S, A] and V*_t(s) = max_a Q*_t [T + 1, S]."""
  r = _reward(mdp, None)
  t_max = mdp.horizon
  q = np.empty_like(r)
  v = np.zeros((t_max + 1, mdp.num_states))
  for t in reversed(range(t_max)):
    q[t] = r[t] + log_expect(v[t + 1][None, None, :], mdp.transitions)
    v[t] = q[t].max(-1)
  return q, v


def optimal_return(mdp: TabularMDP) -> float:
  """max_π J(π)."""
  _, v = optimal_values(mdp)
  return float(np.sum(mdp.initial * np.exp(v[0])))


def limit_policy(mdp: TabularMDP, prior: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
  """The limit of retraining G^k(π_0) for a full-support prior ([D] Thm 3.6), deterministic
  dynamics.

  π* is π_0 conditioned on every action being optimal (Q*_t(s, a) within `rtol` of V*_t(s),
  relative, in probability): π*(a|s) ∝ π_0(a|s)·1[a optimal]·p_{π_0}(later actions optimal | s, a).
  With deterministic dynamics π^G_k = π_{α=k} ([K] Thm 5.9), whose α → ∞ limit is this policy.
  Its support (the optimal actions) is [D] App. A's; [D] also states that tied optimal actions
  keep π_0's odds, π* ∝ 1[a optimal]·π_0, which holds for T = 1 but not when tied actions lead to
  subtrees where π_0 puts different mass on optimal play (tests/tabular has an example). For
  stochastic dynamics the support is right but the odds between tied actions may differ.
  At states where success is impossible every action counts as optimal.

  Returns:
    [T, S, A].
  """
  pi = as_time_indexed(mdp, prior)
  q, v = optimal_values(mdp)
  best = np.exp(q) >= np.exp(v[:-1])[..., None] * (1 - rtol)
  mask = np.where(np.isfinite(v[:-1])[..., None], best, True)
  return _condition(mdp.transitions, np.where(mask, 0.0, -np.inf), pi)


def incoherence(mdp: TabularMDP, policy: np.ndarray) -> float:
  """κ(π) = Σ_s KL(G(π)(·|s) ‖ π(·|s)) ([D] Def 3.5), summed over reachable (t, s).

  Finite whenever π has full support (supp G(π) ⊆ supp π always holds).
  """
  pi = as_time_indexed(mdp, policy)
  kl = kl_divergence(goal_condition(mdp, pi), pi)
  return float(np.sum(kl[reachable(mdp)]))


def softmax_f(delta: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
  """The order-respecting f(x) = softmax(x/δ) of [K] Def 4.11 (rows of all −∞ give uniform)."""
  if delta <= 0:
    raise ValueError(f"delta must be positive, got {delta}")

  def f(q: np.ndarray) -> np.ndarray:
    z = q / delta
    m = np.max(z, axis=-1, keepdims=True)
    e = np.where(np.isfinite(m), np.exp(z - np.where(np.isfinite(m), m, 0.0)), 1.0)
    return e / e.sum(-1, keepdims=True)
  return f


def f_soft_policy(mdp: TabularMDP, policy: np.ndarray,
                  f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
  """π^{Q,f}(·|s) ∝ f(Q^π(s, ·)) ([K] Def 4.5); [T, S, A]."""
  q, _ = soft_values(mdp, policy)
  out = f(q)
  return out / out.sum(-1, keepdims=True)


def f_incoherence(mdp: TabularMDP, policy: np.ndarray,
                  f: Callable[[np.ndarray], np.ndarray]) -> float:
  """κ_f(π) = KL over trajectories of π ‖ π^{Q,f} ([K] Def 4.6), in the occupancy form of [K]
  Prop 4.7: Σ_t E_{s~d^t_π} KL(π(·|s_t) ‖ π^{Q,f}(·|s_t)). +∞ when π puts mass on an action that
  π^{Q,f} excludes (e.g. Q = −∞) at a visited state."""
  pi = as_time_indexed(mdp, policy)
  return trajectory_kl(mdp, pi, f_soft_policy(mdp, pi, f))


def boltzmann_incoherence(mdp: TabularMDP, policy: np.ndarray, delta: float = 1.0) -> float:
  """κ_δ(π) = κ_f(π) with f = softmax(·/δ) ([K] Def 4.12)."""
  return f_incoherence(mdp, policy, softmax_f(delta))


def trajectory_kl(mdp: TabularMDP, policy: np.ndarray, other: np.ndarray) -> float:
  """KL(p_π(ξ) ‖ p_π'(ξ)) between the trajectory laws of two policies in the same MDP,
  = Σ_t E_{s~d^t_π} KL(π_t(·|s) ‖ π'_t(·|s)) ([K] Prop 4.7)."""
  pi = as_time_indexed(mdp, policy)
  other = as_time_indexed(mdp, other)
  d = occupancy(mdp, pi)
  kl = kl_divergence(pi, other)
  return float(np.sum(d * np.where(d > 0, kl, 0.0)))


def delusion(conditional: np.ndarray, marginal: np.ndarray | None = None,
             weights: np.ndarray | None = None) -> float:
  """Delusion λ = KL(p(a|s) ‖ p(a)) ([D] Def 3.8), averaged over the hidden state s.

  Args:
    conditional: [S, A] p(a|s), the unconfounded policy that sees the hidden state s.
    marginal: [A] p(a), the policy of a model that never sees s; default Σ_s w(s) p(a|s), the
      policy a predictor trained on the data learns (λ is then the mutual information I(S; A)).
    weights: [S] p(s); default uniform.

  Returns:
    E_{s~w} KL(p(·|s) ‖ p(·)).
  """
  cond = np.asarray(conditional, np.float64)
  if cond.ndim != 2:
    raise ValueError(f"conditional must have shape [S, A], got {cond.shape}")
  w = (np.full(cond.shape[0], 1.0 / cond.shape[0]) if weights is None
       else np.asarray(weights, np.float64))
  for arr, what in ((cond, "conditional"), (w, "weights")):
    if np.any(arr < 0) or not np.allclose(arr.sum(-1), 1.0):
      raise ValueError(f"{what} must be non-negative with rows summing to 1")
  marg = w @ cond if marginal is None else np.asarray(marginal, np.float64)
  if np.any(marg < 0) or not np.isclose(marg.sum(), 1.0):
    raise ValueError("marginal must be a distribution")
  return float(w @ kl_divergence(cond, marg[None, :]))

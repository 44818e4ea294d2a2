"""Finite-horizon tabular MDPs and policies on them ([D] §3.3, [K] §3).

Shapes used throughout: S states, A actions, T the horizon (number of decisions, t = 0…T−1).

* An MDP is stationary: `transitions` [S, A, S] τ(s'|s, a) and `log_reward` [S, A] r(s, a) ≤ 0,
  read as optimality variables p(O_t = 1 | s, a) = e^{r(s, a)} ([K] Prop 4.2); r = −∞ is allowed
  (O_t = 1 impossible). A binary terminal reward R ([D] Def 3.1) is the special case r = 0 before
  the last decision and r(s, a) = log p(R = 1 | s, a) at it — tree MDPs, whose states encode
  time, express it exactly.
* A policy is either stationary, [S, A], or time-indexed, [T, S, A] (row t is π_t(a | s)). Every
  operator accepts both and returns time-indexed [T, S, A] arrays, because goal-conditioning a
  stationary policy on a general (non-tree) MDP gives a time-dependent one.

All arithmetic is NumPy float64.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

_ATOL = 1e-9  # tolerance on "sums to one"


@dataclasses.dataclass(frozen=True, eq=False)
class TabularMDP:
  """A finite-horizon MDP.

  Attributes:
    transitions: [S, A, S] float64, τ(s' | s, a); every row sums to 1.
    log_reward: [S, A] float64 in [−∞, 0], r(s, a) = log p(O_t = 1 | s, a).
    initial: [S] float64, μ(s_0).
    horizon: T ≥ 1, the number of decisions.
    state_names: S strings (for plots and tables).
    action_names: A strings.
  """

  transitions: np.ndarray
  log_reward: np.ndarray
  initial: np.ndarray
  horizon: int
  state_names: tuple[str, ...] = ()
  action_names: tuple[str, ...] = ()

  def __post_init__(self):
    p = np.array(self.transitions, dtype=np.float64)
    r = np.array(self.log_reward, dtype=np.float64)
    mu = np.array(self.initial, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] != p.shape[2]:
      raise ValueError(f"transitions must have shape [S, A, S], got {p.shape}")
    s, a, _ = p.shape
    if r.shape != (s, a):
      raise ValueError(f"log_reward must have shape [S, A] = {(s, a)}, got {r.shape}")
    if mu.shape != (s,):
      raise ValueError(f"initial must have shape [S] = {(s,)}, got {mu.shape}")
    _check_distribution(p, "transitions")
    _check_distribution(mu, "initial")
    if np.any(np.isnan(r)) or np.any(r > 0):
      raise ValueError("log_reward must be non-positive (r = log p(O=1|s,a) ≤ 0; −inf allowed)")
    if int(self.horizon) != self.horizon or self.horizon < 1:
      raise ValueError(f"horizon must be a positive integer, got {self.horizon}")
    names = tuple(self.state_names) or tuple(f"s{i}" for i in range(s))
    actions = tuple(self.action_names) or tuple(f"a{i}" for i in range(a))
    if len(names) != s or len(actions) != a:
      raise ValueError("state_names / action_names must have S / A entries")
    for arr in (p, r, mu):
      arr.setflags(write=False)
    object.__setattr__(self, "transitions", p)
    object.__setattr__(self, "log_reward", r)
    object.__setattr__(self, "initial", mu)
    object.__setattr__(self, "horizon", int(self.horizon))
    object.__setattr__(self, "state_names", names)
    object.__setattr__(self, "action_names", actions)

  @property
  def num_states(self) -> int:
    return self.transitions.shape[0]

  @property
  def num_actions(self) -> int:
    return self.transitions.shape[1]

  @property
  def deterministic(self) -> bool:
    """True when every τ(·|s, a) is a point mass."""
    return bool(np.all(np.isclose(self.transitions.max(-1), 1.0)))

  def state(self, name: str) -> int:
    return self.state_names.index(name)


def _check_distribution(x: np.ndarray, what: str) -> None:
  if np.any(~np.isfinite(x)) or np.any(x < 0):
    raise ValueError(f"{what} must be finite and non-negative")
  if not np.allclose(x.sum(-1), 1.0, atol=_ATOL, rtol=0):
    raise ValueError(f"{what}: rows must sum to 1 (got sums {np.unique(x.sum(-1))[:5]})")


def as_time_indexed(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
  """Validates a policy and broadcasts it to [T, S, A] float64.

  Args:
    mdp: the MDP the policy acts in.
    policy: [S, A] (stationary) or [T, S, A]; every row a distribution over actions.

  Raises:
    ValueError: on a wrong shape, negative or non-finite entries, or rows not summing to 1.
  """
  pi = np.asarray(policy, dtype=np.float64)
  t, s, a = mdp.horizon, mdp.num_states, mdp.num_actions
  if pi.shape == (s, a):
    pi = np.broadcast_to(pi, (t, s, a))
  elif pi.shape != (t, s, a):
    raise ValueError(f"policy must have shape [S, A] = {(s, a)} or [T, S, A] = {(t, s, a)}, "
                     f"got {pi.shape}")
  _check_distribution(pi, "policy")
  return np.array(pi)


def uniform_policy(mdp: TabularMDP) -> np.ndarray:
  """[S, A] the uniform prior policy."""
  return np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)


def occupancy(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
  """[T, S] the marginal state distribution d^t_π(s) = p_π(S_t = s) ([K] Prop 4.7)."""
  pi = as_time_indexed(mdp, policy)
  d = np.zeros((mdp.horizon, mdp.num_states))
  d[0] = mdp.initial
  for t in range(mdp.horizon - 1):
    d[t + 1] = np.einsum("s,sa,sax->x", d[t], pi[t], mdp.transitions)
  return d


def reachable(mdp: TabularMDP) -> np.ndarray:
  """[T, S] bool: states that some policy reaches at time t (positive prob. under uniform play).

  In a tree MDP each state is reachable at exactly one t, so summing over reachable (t, s)
  pairs is [D]'s sum over states.
  """
  return occupancy(mdp, uniform_policy(mdp)) > 0


def stationary(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
  """[S, A] the rows of a [T, S, A] policy at the times each state is reachable.

  Meant for MDPs whose states encode time (trees): a state reachable at several times must have
  the same row at all of them. Unreachable states keep their t = 0 row.

  Raises:
    ValueError: if a state's rows differ between the times it is reachable.
  """
  pi = as_time_indexed(mdp, policy)
  mask = reachable(mdp)
  out = pi[0].copy()
  for s in range(mdp.num_states):
    times = np.flatnonzero(mask[:, s])
    if times.size:
      rows = pi[times, s]
      if not np.allclose(rows, rows[0], atol=1e-12):
        raise ValueError(f"state {mdp.state_names[s]} has time-dependent rows; keep [T, S, A]")
      out[s] = rows[0]
  return out


def tree_mdp(children: Sequence[Sequence[Sequence[tuple[int, float]]]],
             log_reward: np.ndarray, horizon: int,
             state_names: Sequence[str] = (), action_names: Sequence[str] = ()) -> TabularMDP:
  """Builds a tree MDP rooted at state 0, with an absorbing end state appended as state S.

  Args:
    children: for each internal state s and action a, a list of (child, probability); an empty
      list means the decision ends the episode (moves to the absorbing end state).
    log_reward: [S, A] r(s, a) for the internal states.
    horizon: T, the depth of the tree in decisions.
    state_names, action_names: optional labels (the end state is named "end").
  """
  s = len(children)
  a = len(children[0])
  p = np.zeros((s + 1, a, s + 1))
  for i, row in enumerate(children):
    if len(row) != a:
      raise ValueError("every state needs one children list per action")
    for j, kids in enumerate(row):
      if not kids:
        p[i, j, s] = 1.0
      for child, prob in kids:
        p[i, j, child] += prob
  p[s, :, s] = 1.0
  r = np.concatenate([np.asarray(log_reward, np.float64), np.zeros((1, a))])
  mu = np.zeros(s + 1)
  mu[0] = 1.0
  names = tuple(state_names) + ("end",) if state_names else ()
  return TabularMDP(p, r, mu, horizon, names, tuple(action_names))

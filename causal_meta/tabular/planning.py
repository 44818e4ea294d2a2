"""Counterfactual planning agents in a tabular learning world ([H]; docs/papers.md).

The *learning world* is a stationary MDP with a known reward R(s, a) and unknown dynamics S,
played in episodes of H steps. The agent keeps an *observational record* of every transition
(s_{t-1}, a_{t-1}, s_t), as counts [S, A, S] (plus an optional initial record O_0). The learner
L turns the record into a predictive model L ≈ S: empirical frequencies, and, for a pair (s, a)
the record has never seen, "nothing happens" (s' = s). Before each step the agent builds a
*planning world* from L and R and acts optimally in it:

* FP plans over the rest of the episode (the full horizon);
* FPX is FP that, with probability X, takes a uniformly random action instead;
* STH plans only N steps ahead (a counterfactual planning world cut off after N steps), so it
  never starts an investment that pays off after more than N steps.

`investment_world` is the delayed-payoff MDP of the experiment: harvesting pays a little now;
investing goes through `build_steps` unpaid build states to a factory that pays every step.
"""

from __future__ import annotations

import dataclasses

import numpy as np

HARVEST, INVEST = 0, 1


@dataclasses.dataclass(frozen=True, eq=False)
class LearningWorld:
  """A stationary MDP the agent acts in.

  Attributes:
    transitions: [S, A, S] the true dynamics S(s' | s, a) (hidden from the agent).
    reward: [S, A] R(s, a), known to the agent (its planning worlds use it).
    initial_state: s_0 of every episode.
    episode_length: H steps per episode.
    state_names, action_names: labels.
  """

  transitions: np.ndarray
  reward: np.ndarray
  initial_state: int
  episode_length: int
  state_names: tuple[str, ...]
  action_names: tuple[str, ...]

  def __post_init__(self):
    p = np.asarray(self.transitions, np.float64)
    if p.ndim != 3 or p.shape[0] != p.shape[2] or np.any(p < 0) or not np.allclose(p.sum(-1), 1):
      raise ValueError("transitions must be [S, A, S] with rows summing to 1")
    if np.shape(self.reward) != p.shape[:2]:
      raise ValueError(f"reward must have shape {p.shape[:2]}")
    if self.episode_length < 1:
      raise ValueError("episode_length must be positive")


def investment_world(build_steps: int = 4, success: float = 0.8, harvest: float = 0.1,
                     payoff: float = 1.0, episode_length: int = 30) -> LearningWorld:
  """A delayed-payoff world. States: 0 base, 1…K build_k, K+1 factory (K = build_steps).

  * base: HARVEST earns `harvest` and stays; INVEST (earning 0) moves to build_1.
  * build_k: the project, once started, runs to completion: either action moves on to the next
    state w.p. `success` (else the step is lost) and earns nothing.
  * factory: both actions earn `payoff` and stay.

  Investing from base earns nothing for its first K + 1 steps, so a planner that looks N ≤ K + 1
  steps ahead always prefers harvesting.
  """
  if not 0 < success <= 1:
    raise ValueError("success must be in (0, 1]")
  k = build_steps
  s = k + 2
  p = np.zeros((s, 2, s))
  r = np.zeros((s, 2))
  p[0, HARVEST, 0] = 1.0
  r[0, HARVEST] = harvest
  p[0, INVEST, 1] = 1.0
  for i in range(1, k + 1):
    p[i, :, i + 1] = success
    p[i, :, i] += 1 - success
  p[k + 1, :, k + 1] = 1.0
  r[k + 1, :] = payoff
  names = ("base",) + tuple(f"build{i}" for i in range(1, k + 1)) + ("factory",)
  return LearningWorld(p, r, 0, episode_length, names, ("harvest", "invest"))


def learn(counts: np.ndarray) -> np.ndarray:
  """The learner L: [S, A, S] record counts → [S, A, S] model; unseen (s, a) predict s' = s."""
  counts = np.asarray(counts, np.float64)
  total = counts.sum(-1, keepdims=True)
  stay = np.broadcast_to(np.eye(counts.shape[0])[:, None, :], counts.shape)
  return np.where(total > 0, counts / np.maximum(total, 1), stay)


def plan(model: np.ndarray, reward: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
  """Optimal finite-horizon planning in the planning world (model, reward).

  Returns:
    values: [horizon + 1, S], values[h](s) the best expected reward over h remaining steps.
    actions: [horizon + 1, S] int, actions[h](s) the optimal first action with h ≥ 1 steps to go
      (ties go to the lowest action index, i.e. HARVEST); row 0 is unused (zeros).
  """
  s = model.shape[0]
  values = np.zeros((horizon + 1, s))
  actions = np.zeros((horizon + 1, s), dtype=np.int64)
  for h in range(1, horizon + 1):
    q = reward + model @ values[h - 1]
    actions[h] = np.argmax(q, axis=-1)
    values[h] = q.max(-1)
  return values, actions


@dataclasses.dataclass(frozen=True)
class Agent:
  """An agent definition: FP (lookahead=None, explore=0), FPX (explore=X), STH (lookahead=N)."""

  name: str
  lookahead: int | None = None
  explore: float = 0.0


def fp() -> Agent:
  return Agent("FP")


def fpx(explore: float = 0.1) -> Agent:
  return Agent("FPX", explore=explore)


def sth(lookahead: int, explore: float = 0.0) -> Agent:
  return Agent("STH" if explore == 0 else "STHX", lookahead=lookahead, explore=explore)


def model_error(world: LearningWorld, model: np.ndarray) -> np.ndarray:
  """[S, A] total-variation distance between L(·|s, a) and S(·|s, a)."""
  return 0.5 * np.abs(model - world.transitions).sum(-1)


def run(world: LearningWorld, agent: Agent, episodes: int, seed: int,
        initial_record: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """Runs an agent for `episodes` episodes of the learning world, replanning at every step.

  At each step the agent builds its planning world from L(record) and R, takes the action that is
  optimal over its lookahead (ties broken uniformly at random), or a uniformly random action with
  probability X, and appends the transition to the record.

  Args:
    world: the learning world.
    agent: FP, FPX or STH.
    episodes: number of episodes; the record persists across them.
    seed: numpy seed (exploration and transitions).
    initial_record: optional [S, A, S] counts O_0 (e.g. from earlier runs or a simulator).

  Returns:
    dict with
      returns [E]: total reward per episode;
      planned_investments [E]: times the planner chose INVEST in the initial state (exploration
        moves excluded) — "starting the investment";
      model_error [E]: max_{s,a} TV(L, S) after each episode;
      counts [S, A, S]: the final record.
  """
  rng = np.random.default_rng(seed)
  s_count, a_count, _ = world.transitions.shape
  counts = (np.zeros((s_count, a_count, s_count)) if initial_record is None
            else np.array(initial_record, np.float64))
  h_max = world.episode_length
  out = {k: np.zeros(episodes) for k in ("returns", "planned_investments", "model_error")}
  for e in range(episodes):
    state = world.initial_state
    for t in range(h_max):
      remaining = h_max - t
      look = remaining if agent.lookahead is None else min(agent.lookahead, remaining)
      model = learn(counts)
      values, _ = plan(model, world.reward, look - 1)
      q = world.reward[state] + model[state] @ values[look - 1]
      action = int(rng.choice(np.flatnonzero(q >= q.max() - 1e-12)))  # ties: uniformly
      if state == world.initial_state and action == INVEST:
        out["planned_investments"][e] += 1
      if agent.explore > 0 and rng.uniform() < agent.explore:
        action = int(rng.integers(a_count))
      nxt = int(rng.choice(s_count, p=world.transitions[state, action]))
      out["returns"][e] += world.reward[state, action]
      counts[state, action, nxt] += 1
      state = nxt
    out["model_error"][e] = model_error(world, learn(counts)).max()
  out["counts"] = counts
  return out


def exhaustive_record(world: LearningWorld, samples: int, seed: int) -> np.ndarray:
  """[S, A, S] an initial record O_0 with `samples` draws of every (s, a) — a simulator run."""
  rng = np.random.default_rng(seed)
  s, a, _ = world.transitions.shape
  counts = np.zeros((s, a, s))
  for i in range(s):
    for j in range(a):
      counts[i, j] = rng.multinomial(samples, world.transitions[i, j])
  return counts

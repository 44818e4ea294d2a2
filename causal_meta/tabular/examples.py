"""The papers' worked examples as tabular MDPs, and seeded random MDPs.

* `mountain_race` — [K] Example 1 (deterministic, T = 2, uniform prior).
* `card_game` — [D] Example 2, the three cards game (deterministic, T = 3).
* `example3` — [K] Example 3, where temperature and retraining part ways under stochastic dynamics.
* `stock_trader` — [D] Example 1, a confounded one-step task (hidden state, expert, outcome).
* `random_tree_mdp`, `random_mdp`, `random_policy` — seeded generators for tests.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from causal_meta.tabular.mdp import TabularMDP, tree_mdp

UP, DOWN = 0, 1  # mountain race actions ↗, ↘
DIAMOND, HEART = 0, 1  # card game actions ♦, ♥


def _log(x) -> np.ndarray:
  with np.errstate(divide="ignore"):
    return np.log(np.asarray(x, np.float64))


def mountain_race() -> TabularMDP:
  """[K] Example 1. From ∅, ↗ leads to a fork whose branches reach the finish line (R = 1 surely,
  taken here as ↗ again) or a chasm (R = 0); ↘ leads to a fork whose both branches finish with
  R = 1 w.p. ¾. States: 0 "∅", 1 "up" (the ↗ fork), 2 "down" (the ↘ fork), 3 the end.
  Actions: 0 "↗", 1 "↘". Use with the uniform prior."""
  children = [[[(1, 1.0)], [(2, 1.0)]],  # ∅
              [[], []],  # up fork: the race ends
              [[], []]]  # down fork
  r = _log([[1.0, 1.0], [1.0, 0.0], [0.75, 0.75]])
  return tree_mdp(children, r, horizon=2, state_names=("∅", "up", "down"),
                  action_names=("↗", "↘"))


def card_game() -> TabularMDP:
  """[D] Example 2. Three rounds of ♦ (action 0) or ♥ (action 1); ♦♦♦ pays 1, any game starting
  with ♥ pays 1 w.p. ½, everything else 0. States are the card prefixes ("", "♦", "♥", "♦♦", …)."""
  prefixes = [""] + ["".join(c) for n in (1, 2) for c in itertools.product("♦♥", repeat=n)]
  index = {p: i for i, p in enumerate(prefixes)}
  children, rewards = [], []
  for p in prefixes:
    if len(p) < 2:
      children.append([[(index[p + c], 1.0)] for c in "♦♥"])
      rewards.append([1.0, 1.0])
    else:
      children.append([[], []])
      rewards.append([_card_payoff(p + c) for c in "♦♥"])
  return tree_mdp(children, _log(rewards), horizon=3, state_names=prefixes,
                  action_names=("♦", "♥"))


def _card_payoff(cards: str) -> float:
  if cards == "♦♦♦":
    return 1.0
  return 0.5 if cards.startswith("♥") else 0.0


def example3() -> TabularMDP:
  """[K] Example 3: from ∅, a_1 reaches s_1 w.p. ¾ (s_2 w.p. ¼), a_2 reaches each w.p. ½; then
  r(s_1) = log ⅓, r(s_2) = log ⅔. The paper's diagram is not in our copy of the text; these
  dynamics are the ones (among "a_1, a_2 each split between s_1 and s_2") that give both of its
  numbers, π^F(a_1|∅) = 25/61 after two conditionings and π_{α=2}(a_1|∅) = 7/17."""
  children = [[[(1, 0.75), (2, 0.25)], [(1, 0.5), (2, 0.5)]], [[], []], [[], []]]
  r = _log([[1.0, 1.0], [1 / 3, 1 / 3], [2 / 3, 2 / 3]])
  return tree_mdp(children, r, horizon=2, state_names=("∅", "s1", "s2"),
                  action_names=("a1", "a2"))


# --------------------------------------------------------------------------- stock trader

@dataclasses.dataclass(frozen=True)
class ConfoundedTask:
  """A one-step task with a hidden state θ that the expert sees and the model does not.

  Attributes:
    latent_prior: [Θ] P(θ).
    expert: [Θ, A] π(a | θ), the expert's policy.
    outcome: [Θ, A, O] τ(o | θ, a).
    latent_names, action_names, outcome_names: labels.
  """

  latent_prior: np.ndarray
  expert: np.ndarray
  outcome: np.ndarray
  latent_names: tuple[str, ...]
  action_names: tuple[str, ...]
  outcome_names: tuple[str, ...]

  def observational(self) -> tuple[np.ndarray, np.ndarray]:
    """What a predictor trained on the expert's (a, o) records learns ([D] App. D):
    Q(a) [A] and Q(o | a) = Σ_θ τ(o|θ,a) P(θ) π(a|θ) / P(a) [A, O]."""
    joint = self.latent_prior[:, None] * self.expert  # [Θ, A]
    q_a = joint.sum(0)
    q_o = np.einsum("ta,tao->ao", joint, self.outcome) / q_a[:, None]
    return q_a, q_o

  def interventional(self) -> np.ndarray:
    """Q(o | do(a)) = Σ_θ τ(o|θ,a) P(θ) [A, O]: what the model's own actions actually produce,
    and what it learns once retrained on its own rollouts ([D] App. D)."""
    return np.einsum("t,tao->ao", self.latent_prior, self.outcome)


def stock_trader() -> ConfoundedTask:
  """[D] Example 1. θ ∈ {up, down} equally likely; the expert buys iff up, sells iff down; buying
  when up or selling when down gives profit, otherwise loss. The model sees only o_before."""
  expert = np.array([[1.0, 0.0], [0.0, 1.0]])  # rows θ = up, down; columns buy, sell
  outcome = np.zeros((2, 2, 2))  # [θ, a, o], o = profit, loss
  outcome[0, 0, 0] = outcome[1, 1, 0] = 1.0
  outcome[0, 1, 1] = outcome[1, 0, 1] = 1.0
  return ConfoundedTask(np.array([0.5, 0.5]), expert, outcome, ("up", "down"),
                        ("buy", "sell"), ("profit", "loss"))


# --------------------------------------------------------------------------- random MDPs

def random_tree_mdp(seed: int, depth: int = 3, num_actions: int = 2, num_outcomes: int = 1,
                    per_step_reward: bool = False, zero_reward_prob: float = 0.2) -> TabularMDP:
  """A random tree MDP (states encode time), seeded.

  Args:
    seed: numpy seed.
    depth: T, the number of decisions.
    num_actions: A.
    num_outcomes: children per (state, action); 1 gives deterministic dynamics, more gives
      stochastic ones with Dirichlet(1) probabilities.
    per_step_reward: False: binary terminal reward, p(R = 1 | s_T, a_T) ~ U(0, 1) at the last
      decision and r = 0 before. True: p(O_t = 1 | s, a) ~ U(0.05, 1) at every decision.
    zero_reward_prob: probability that a reward probability is exactly 0 (r = −∞); one action
      per state is always spared, so success stays possible from every state.
  """
  rng = np.random.default_rng(seed)
  layers = [[0]]
  children, probs = [], []
  n = 1
  for t in range(depth):
    nxt = []
    for _ in layers[t]:
      row = []
      for _ in range(num_actions):
        if t == depth - 1:
          row.append([])
        else:
          w = rng.dirichlet(np.ones(num_outcomes))
          row.append([(n + i, float(w[i])) for i in range(num_outcomes)])
          nxt.extend(range(n, n + num_outcomes))
          n += num_outcomes
      children.append(row)
      last = t == depth - 1
      if per_step_reward:
        p = rng.uniform(0.05, 1.0, num_actions)
      else:
        p = rng.uniform(0.0, 1.0, num_actions) if last else np.ones(num_actions)
      if per_step_reward or last:
        zero = rng.uniform(size=num_actions) < zero_reward_prob
        zero[rng.integers(num_actions)] = False  # keep success possible from every state
        p = np.where(zero, 0.0, p)
      probs.append(p)
    layers.append(nxt)
  return tree_mdp(children, _log(np.array(probs)), horizon=depth)


def random_mdp(seed: int, num_states: int = 4, num_actions: int = 2, horizon: int = 3,
               deterministic: bool = True, zero_reward_prob: float = 0.1) -> TabularMDP:
  """A random stationary MDP on a general graph (states do not encode time), seeded.

  Per-step rewards p(O_t = 1 | s, a) ~ U(0.05, 1) (exactly 0 w.p. `zero_reward_prob`); the
  initial distribution is random with full support.
  """
  rng = np.random.default_rng(seed)
  s, a = num_states, num_actions
  if deterministic:
    p = np.eye(s)[rng.integers(0, s, size=(s, a))]
  else:
    p = rng.dirichlet(np.full(s, 0.5), size=(s, a))
  prob = rng.uniform(0.05, 1.0, size=(s, a))
  prob = np.where(rng.uniform(size=(s, a)) < zero_reward_prob, 0.0, prob)
  return TabularMDP(p, _log(prob), rng.dirichlet(np.ones(s)), horizon)


def random_policy(seed: int, mdp: TabularMDP, concentration: float = 1.0,
                  time_indexed: bool = False) -> np.ndarray:
  """A random full-support policy, Dirichlet(concentration) rows; [S, A] or [T, S, A]."""
  rng = np.random.default_rng(seed)
  shape = ((mdp.horizon,) if time_indexed else ()) + (mdp.num_states,)
  return rng.dirichlet(np.full(mdp.num_actions, concentration), size=shape)

"""Tasks defined by probability tables: a new task without writing JAX.

`TabularTask` holds a prior over L latents, an expert table Q(ā | θ, s), an observation table
Q(o | θ, s, a), an optional deterministic state machine over S public states and an optional
Markov chain P(θ' | θ) that moves the latent during the episode ([O] §3). The bandit of [O]
Remark 11, its piecewise-stationary variant and prize-or-frog ([O] §2) are built on it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from causal_meta.tasks import base


@dataclasses.dataclass(frozen=True)
class TabularTask(base.Task):
  """A task from arrays. Shapes: L latents, S states, A actions, O observations.

  Attributes:
    prior: [L] Q(θ).
    expert: [L, S, A] Q(ā | θ, s).
    observation: [L, S, A, O] Q(o | θ, s, a).
    transitions: [S, A, O] int next state f(s, a, o), or None when S = 1.
    terminal: [S] bool done(s), or None (never done).
    rewards: [O] r(o), or None (the observation's index).
    horizon: T >= 1.
    initial: the initial state index.
    latent_transition: [L, L] P(θ' | θ) (rows θ), or None (θ is drawn once per episode).
  Construct with `make_tabular` (validates) rather than directly.
  """
  prior: tuple
  expert: tuple
  observation: tuple
  horizon: int
  transitions: tuple | None = None
  terminal: tuple | None = None
  rewards: tuple | None = None
  initial: int = 0
  name: str = "tabular"
  latent_transition: tuple | None = None

  # Tables as arrays, built once per instance (cached_property bypasses the frozen setattr).
  @functools.cached_property
  def _log_expert(self):
    return np.asarray(base.safe_log(np.asarray(self.expert)), np.float32)

  @functools.cached_property
  def _log_observation(self):
    return np.asarray(base.safe_log(np.asarray(self.observation)), np.float32)

  @property
  def changes_latent(self) -> bool:
    return self.latent_transition is not None

  def log_latent_transition(self):
    if self.latent_transition is None:
      return super().log_latent_transition()
    return jnp.asarray(base.safe_log(np.asarray(self.latent_transition)), jnp.float32)

  @property
  def num_latents(self) -> int:
    return len(self.prior)

  @property
  def num_states(self) -> int:
    return len(self.expert[0])

  @property
  def num_actions(self) -> int:
    return len(self.expert[0][0])

  @property
  def num_observations(self) -> int:
    return len(self.observation[0][0][0])

  def log_prior(self):
    return jnp.log(jnp.asarray(self.prior, jnp.float32))

  def initial_state(self):
    return jnp.asarray(self.initial, jnp.int32)

  def expert_logits(self, theta, state):
    return jnp.asarray(self._log_expert)[theta, state]

  def observation_logits(self, theta, state, action):
    return jnp.asarray(self._log_observation)[theta, state, action]

  def next_state(self, state, action, observation):
    if self.transitions is None:
      return state
    return jnp.asarray(self.transitions, jnp.int32)[state, action, observation]

  def done(self, state):
    if self.terminal is None:
      return jnp.zeros((), bool)
    return jnp.asarray(self.terminal, bool)[state]

  def reward(self, observation):
    if self.rewards is None:
      return jnp.asarray(observation, jnp.float32)
    return jnp.asarray(self.rewards, jnp.float32)[observation]


def make_tabular(prior: Any, expert: Any, observation: Any, horizon: int = 1,
                 transitions: Any = None, terminal: Any = None, rewards: Any = None,
                 initial: int = 0, name: str = "tabular",
                 latent_transition: Any = None) -> TabularTask:
  """Validates the tables (see `TabularTask`) and builds the task.

  `expert` may be [L, A] and `observation` [L, A, O] for a stateless task (S = 1).
  `latent_transition` [L, L] (rows θ_t, distributions over θ_{t+1}) makes θ move during the
  episode; None (the default) draws it once.
  """
  prior = base.check_distribution(name, "prior", prior)
  num_latents = prior.shape[0]
  expert = base.check_distribution(name, "expert", expert)
  if expert.ndim == 2:
    expert = expert[:, None, :]
  if expert.ndim != 3 or expert.shape[0] != num_latents:
    raise ValueError(f"{name}: parameter 'expert' must have shape [L={num_latents}, S, A] "
                     f"or [L, A], got {expert.shape}")
  _, num_states, num_actions = expert.shape
  observation = base.check_distribution(name, "observation", observation)
  if observation.ndim == 3:
    observation = observation[:, None]
  if (observation.ndim != 4
      or observation.shape[:3] != (num_latents, num_states, num_actions)):
    raise ValueError(f"{name}: parameter 'observation' must have shape "
                     f"[L={num_latents}, S={num_states}, A={num_actions}, O], "
                     f"got {observation.shape}")
  num_obs = observation.shape[-1]
  horizon = base.check_int(name, "horizon", horizon, 1)
  initial = base.check_int(name, "initial", initial, 0, num_states - 1)
  if transitions is None:
    if num_states != 1:
      raise ValueError(f"{name}: parameter 'transitions' ([S, A, O] next-state indices) is "
                       f"required when there are S={num_states} > 1 states")
  else:
    transitions = np.asarray(transitions)
    if transitions.shape != (num_states, num_actions, num_obs):
      raise ValueError(f"{name}: parameter 'transitions' must have shape "
                       f"[S={num_states}, A={num_actions}, O={num_obs}], "
                       f"got {transitions.shape}")
    if (not np.issubdtype(transitions.dtype, np.integer) or transitions.min() < 0
        or transitions.max() >= num_states):
      raise ValueError(f"{name}: parameter 'transitions' must hold state indices in "
                       f"[0, {num_states - 1}]")
    transitions = base.to_tuple(transitions.astype(np.int64))
  if terminal is not None:
    terminal = np.asarray(terminal)
    if terminal.shape != (num_states,) or terminal.dtype != bool:
      raise ValueError(f"{name}: parameter 'terminal' must be a bool array of shape "
                       f"[S={num_states}], got {terminal.dtype} {terminal.shape}")
    terminal = base.to_tuple(terminal)
  if rewards is not None:
    rewards = np.asarray(rewards, np.float64)
    if rewards.shape != (num_obs,) or not np.all(np.isfinite(rewards)):
      raise ValueError(f"{name}: parameter 'rewards' must be {num_obs} finite numbers, "
                       f"got shape {rewards.shape}")
    rewards = base.to_tuple(rewards)
  if latent_transition is not None:
    latent_transition = base.to_tuple(base.check_distribution(
        name, "latent_transition", latent_transition, shape=(num_latents, num_latents)))
  return TabularTask(prior=base.to_tuple(prior), expert=base.to_tuple(expert),
                     observation=base.to_tuple(observation), horizon=horizon,
                     transitions=transitions, terminal=terminal, rewards=rewards,
                     initial=initial, name=name, latent_transition=latent_transition)


def bandit(num_arms: int = 5, best_arm_prob: float = 0.6, reward_prob_best: float = 0.75,
           reward_prob_other: float = 0.25, horizon: int = 20,
           prior: Sequence[float] | None = None) -> TabularTask:
  """The Bernoulli bandit of [O] Remark 11; θ = the best arm (0-indexed).

  The expert pulls arm θ with probability `best_arm_prob` and each other arm with
  (1 - best_arm_prob) / (num_arms - 1), independently of the past. Arm θ pays 1 with
  probability `reward_prob_best`, every other arm with `reward_prob_other`. Observation = reward.
  """
  num_arms = base.check_int("bandit", "num_arms", num_arms, 2)
  best = base.check_probability("bandit", "best_arm_prob", best_arm_prob)
  p_best = base.check_probability("bandit", "reward_prob_best", reward_prob_best)
  p_other = base.check_probability("bandit", "reward_prob_other", reward_prob_other)
  horizon = base.check_int("bandit", "horizon", horizon, 1)
  if prior is None:
    prior = np.full(num_arms, 1.0 / num_arms)
  prior = base.check_distribution("bandit", "prior", prior, shape=(num_arms,))
  eye = np.eye(num_arms)
  expert = best * eye + (1 - best) / (num_arms - 1) * (1 - eye)  # [θ, a]
  p_win = p_best * eye + p_other * (1 - eye)  # [θ, a]
  observation = np.stack([1 - p_win, p_win], axis=-1)  # [θ, a, o]
  return make_tabular(prior, expert, observation, horizon=horizon, name="bandit")


def piecewise_bandit(num_arms: int = 5, best_arm_prob: float = 0.6,
                     reward_prob_best: float = 0.75, reward_prob_other: float = 0.25,
                     horizon: int = 20, hazard: float = 0.05,
                     prior: Sequence[float] | None = None) -> TabularTask:
  """[O] Remark 11's bandit whose best arm moves ([O] §3's Θ_t): after each step, with
  probability `hazard`, θ is re-drawn from the prior (possibly the same arm), i.e.
  P(θ' | θ) = (1 - h)·1[θ' = θ] + h·Q(θ'). With a uniform prior the best arm changes with
  probability h(1 - 1/num_arms) per step. hazard = 0 gives exactly `bandit`'s numbers.
  """
  hazard = base.check_probability("piecewise_bandit", "hazard", hazard)
  try:
    stationary = bandit(num_arms, best_arm_prob, reward_prob_best, reward_prob_other, horizon,
                        prior)
  except ValueError as e:  # the same parameters, named for this task
    raise ValueError(str(e).replace("bandit:", "piecewise_bandit:", 1)) from None
  prior = np.asarray(stationary.prior)
  transition = (1 - hazard) * np.eye(len(prior)) + hazard * prior[None, :]
  return dataclasses.replace(
      stationary, name="piecewise_bandit",
      latent_transition=base.to_tuple(base.check_distribution(
          "piecewise_bandit", "hazard", transition)))


def prize_or_frog() -> TabularTask:
  """[O] §2: two boxes, the expert opens box θ; the prize (o=1, reward +1) is in box θ,
  the frog (o=0, reward -1) in the other. θ uniform, one step."""
  eye = np.eye(2)
  observation = np.stack([1 - eye, eye], axis=-1)  # o=1 iff a = θ
  return make_tabular([0.5, 0.5], eye, observation, horizon=1, rewards=[-1.0, 1.0],
                      name="prize_or_frog")

"""The task interface: static sizes plus pure JAX functions of (θ, state).

A task is a frozen (hence hashable) dataclass, so it can be closed over or passed as a
static argument to `jax.jit`. The latent θ is always an int32 index in `[0, num_latents)`:
every built-in task has an enumerable latent, and the exact oracle (`causal_meta.oracle`)
evaluates the same functions for every θ at once with `vmap`. One source of truth per task.

The task state `s` is the task's sufficient statistic of the public history. It is updated
deterministically by `next_state(s, a, o)` and never depends on θ, so one state serves every
hypothesis in the oracle.

The latent may move during the episode ([O] §3: Θ_1, A_1, O_1, Θ_2, A_2, O_2, ...): a task
with `changes_latent` draws θ_{t+1} ~ P(· | θ_t) from `log_latent_transition()` (a Markov chain
over the same L values, independent of the actions and observations) after the world has
answered step t; the expert acts on θ_t and the world answers with θ_t. A task without it (the
default) draws θ once per episode, and neither the engine nor the oracle computes anything for
the chain.

Per-episode shapes (the engine vmaps over the batch):
  theta: int32 []            state: int32 [*state_shape]
  expert_logits(theta, s) -> [A]   observation_logits(theta, s, a) -> [O]
Logits are log-probabilities; impossible events are -inf.
"""

from __future__ import annotations

import abc
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class Task(abc.ABC):
  """Abstract task. Subclasses are frozen dataclasses with these fields/properties."""

  name: str
  horizon: int

  # --- static sizes -------------------------------------------------------------------------
  @property
  @abc.abstractmethod
  def num_actions(self) -> int:
    """|A|."""

  @property
  @abc.abstractmethod
  def num_observations(self) -> int:
    """|O|."""

  @property
  @abc.abstractmethod
  def num_latents(self) -> int:
    """Number of values of θ."""

  # --- pure functions -------------------------------------------------------------------------
  @abc.abstractmethod
  def log_prior(self) -> Array:
    """log Q(θ) for every θ: float32 [L]."""

  @abc.abstractmethod
  def initial_state(self) -> Array:
    """The state before the first action: int32 [*state_shape]."""

  @abc.abstractmethod
  def expert_logits(self, theta: Array, state: Array) -> Array:
    """log Q(ā | θ, s): float32 [A]."""

  @abc.abstractmethod
  def observation_logits(self, theta: Array, state: Array, action: Array) -> Array:
    """log Q(o | θ, s, a): float32 [O]."""

  @abc.abstractmethod
  def next_state(self, state: Array, action: Array, observation: Array) -> Array:
    """s' = f(s, a, o), deterministic and θ-free."""

  @property
  def changes_latent(self) -> bool:
    """θ moves during the episode (θ_{t+1} ~ P(· | θ_t), `log_latent_transition`). Default:
    False, θ is drawn once per episode."""
    return False

  def log_latent_transition(self) -> Array:
    """log P(θ' | θ): float32 [L, L], a row per θ. Read only when `changes_latent`; default:
    the identity chain (0 on the diagonal, -inf elsewhere)."""
    return jnp.log(jnp.eye(self.num_latents, dtype=jnp.float32))

  def done(self, state: Array) -> Array:
    """bool []: the episode has ended; later steps are masked. Default: never."""
    del state
    return jnp.zeros((), bool)

  def reward(self, observation: Array) -> Array:
    """r(o): float32 []. Default: the observation's index."""
    return jnp.asarray(observation, jnp.float32)

  # --- derived ---------------------------------------------------------------------------------
  def sample_latent(self, key: Array) -> Array:
    """θ ~ Q: int32 []."""
    return jax.random.categorical(key, self.log_prior()).astype(jnp.int32)

  def latents(self) -> tuple[Array, Array]:
    """All θ with their log-prior: (int32 [L], float32 [L]) (for a changing latent, the prior
    of θ_1)."""
    return jnp.arange(self.num_latents, dtype=jnp.int32), self.log_prior()

  def best_action(self, theta: Array, state: Array) -> Array:
    """The expert's most likely action: int32 [] (the bandit's best arm, padlock's next flip)."""
    return jnp.argmax(self.expert_logits(theta, state)).astype(jnp.int32)

  def summary(self) -> dict[str, Any]:
    """JSON-friendly description for logs."""
    return dict(name=self.name, num_actions=self.num_actions,
                num_observations=self.num_observations, num_latents=self.num_latents,
                horizon=self.horizon)


# ------------------------------------------------------------------------------------------------
# Validation helpers: every error names the task, the parameter and what is allowed.

def check_int(task: str, name: str, value: Any, low: int, high: int | None = None) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{task}: parameter '{name}' must be an integer, got {value!r}")
  if value < low or (high is not None and value > high):
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    raise ValueError(f"{task}: parameter '{name}' must be an integer {allowed}, got {value}")
  return int(value)


def check_probability(task: str, name: str, value: Any) -> float:
  try:
    p = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{task}: parameter '{name}' must be a probability in [0, 1], "
                     f"got {value!r}") from None
  if not 0.0 <= p <= 1.0 or math.isnan(p):
    raise ValueError(f"{task}: parameter '{name}' must be a probability in [0, 1], got {p}")
  return p


def check_distribution(task: str, name: str, value: Any, shape: Sequence[int] | None = None,
                       atol: float = 1e-5) -> np.ndarray:
  """A float64 array whose last axis holds probability vectors (entries in [0,1], sum 1)."""
  try:
    arr = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise ValueError(f"{task}: parameter '{name}' must be an array of probabilities, "
                     f"got {value!r}") from None
  if shape is not None and arr.shape != tuple(shape):
    raise ValueError(f"{task}: parameter '{name}' must have shape {tuple(shape)}, "
                     f"got {arr.shape}")
  if arr.ndim == 0 or arr.shape[-1] == 0:
    raise ValueError(f"{task}: parameter '{name}' must be a non-empty array of probabilities")
  if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
    raise ValueError(f"{task}: parameter '{name}' must hold probabilities in [0, 1]")
  sums = arr.sum(-1)
  if not np.allclose(sums, 1.0, atol=atol):
    bad = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
    raise ValueError(f"{task}: parameter '{name}' must have rows summing to 1; "
                     f"row {tuple(int(i) for i in bad)} sums to {float(sums[bad]):.6g}")
  return arr


def to_tuple(arr: np.ndarray) -> tuple:
  """Nested tuple of Python floats/ints: hashable storage for a frozen dataclass."""
  return tuple(map(to_tuple, arr)) if arr.ndim else arr.item()


def safe_log(p: np.ndarray) -> np.ndarray:
  with np.errstate(divide="ignore"):
    return np.log(p)

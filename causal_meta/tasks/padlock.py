"""Padlock ([D] §4.1, App. C; its concrete form: docs/papers.md).

`n` switches start at 0. The code θ ∈ {0,1}^n: the first n − m bits are a public pattern
(default 1,0,1,0,…), the last m bits are uniform (θ indexes them: bit j of the index is switch
n − m + j). Action i flips switch i. The observation after a flip is 1 iff the switches now equal
the code; the lock then opens and the episode is done. The expert flips the lowest-index switch
that differs from the code; with `epsilon` > 0 it flips a uniformly random switch with
probability epsilon (full support).

State: int32 [n + 1] = the n switches and the opened flag.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from causal_meta.tasks import base


@dataclasses.dataclass(frozen=True)
class Padlock(base.Task):
  """See the module docstring. Build with `padlock(...)`, which validates."""
  num_switches: int = 6
  num_secret: int = 3
  public_pattern: tuple = (1, 0, 1)
  epsilon: float = 0.0
  horizon: int = 14
  name: str = "padlock"

  @property
  def num_actions(self) -> int:
    return self.num_switches

  @property
  def num_observations(self) -> int:
    return 2

  @property
  def num_latents(self) -> int:
    return 2 ** self.num_secret

  def log_prior(self):
    return jnp.full((self.num_latents,), -np.log(self.num_latents), jnp.float32)

  def code(self, theta):
    """θ → the full code: int32 [n]."""
    secret = (theta >> jnp.arange(self.num_secret)) & 1
    return jnp.concatenate([jnp.asarray(self.public_pattern, jnp.int32),
                            secret.astype(jnp.int32)])

  def initial_state(self):
    return jnp.zeros((self.num_switches + 1,), jnp.int32)

  def expert_logits(self, theta, state):
    differs = state[:-1] != self.code(theta)
    # Lowest differing switch; if none differs the lock is open and the step is masked.
    target = jnp.argmax(differs)
    probs = ((1.0 - self.epsilon) * (jnp.arange(self.num_switches) == target)
             + self.epsilon / self.num_switches)
    return jnp.log(probs.astype(jnp.float32))

  def observation_logits(self, theta, state, action):
    switches = state[:-1].at[action].set(1 - state[action])
    opens = jnp.all(switches == self.code(theta))
    return jnp.log(jnp.stack([~opens, opens]).astype(jnp.float32))

  def next_state(self, state, action, observation):
    state = state.at[action].set(1 - state[action])
    return state.at[-1].set(jnp.maximum(state[-1], observation))

  def done(self, state):
    return state[-1] == 1


def padlock(num_switches: int = 6, num_secret: int = 3,
            public_pattern: Sequence[int] | None = None, epsilon: float = 0.0,
            horizon: int | None = None) -> Padlock:
  """Validated padlock. Defaults n = 6, m = 3, T = n + 2^m; the paper's size is n=15, m=5."""
  n = base.check_int("padlock", "num_switches", num_switches, 1, 30)
  m = base.check_int("padlock", "num_secret", num_secret, 0, min(n - 1, 16))
  if public_pattern is None:
    public_pattern = [(i + 1) % 2 for i in range(n - m)]  # 1, 0, 1, 0, ...
  public_pattern = tuple(int(b) for b in public_pattern)
  if len(public_pattern) != n - m or any(b not in (0, 1) for b in public_pattern):
    raise ValueError(f"padlock: parameter 'public_pattern' must be {n - m} bits (0 or 1), "
                     f"got {public_pattern}")
  if not any(public_pattern):
    # Otherwise the all-zero code would be possible and the lock would start open.
    raise ValueError(f"padlock: parameter 'public_pattern' must contain a 1 (needs "
                     f"num_switches > num_secret), got {public_pattern}")
  epsilon = base.check_probability("padlock", "epsilon", epsilon)
  if horizon is None:
    horizon = n + 2 ** m
  horizon = base.check_int("padlock", "horizon", horizon, 1)
  return Padlock(num_switches=n, num_secret=m, public_pattern=public_pattern,
                 epsilon=epsilon, horizon=horizon)

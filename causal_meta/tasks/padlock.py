"""Padlock ([D] §4.1, App. C; its concrete form: docs/papers.md).

`n` switches start at 0. The code θ ∈ {0,1}^n: the first n − m bits are a public pattern
(default 1,0,1,0,…), the last m bits are uniform (θ indexes them: bit j of the index is switch
n − m + j). Action i flips switch i. The observation after a flip is 1 iff the switches now equal
the code; the lock then opens and the episode is done. The expert flips the lowest-index switch
that differs from the code; with `epsilon` > 0 it flips a uniformly random switch with
probability epsilon (full support).

State: int32 [n + 1] = the n switches and the opened flag.

`random_start=True` is [D]'s own game: the switches start uniformly at random and the model is
shown them first, as [D]'s sequences begin with the initial switch states. The episode opens
with n reading steps and one test step, in which everyone takes the extra action n ("read"):
reading step k shows switch k's start (observation 2 + bit); the test step shows whether the
start already opens the lock (observation 1, the success token, or 0). Flips follow; the read
action then does nothing. Observations 0/1 keep their meaning (closed/open, the reward), so the
oracles, agents and metrics need nothing new. State: int32 [n + 2] = the switches, the opened
flag, and the phase (k < n reading switch k, n testing, n + 1 flipping). `horizon` counts every
step, the n + 1 opening ones included.
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
  random_start: bool = False
  name: str = "padlock"

  @property
  def num_actions(self) -> int:
    return self.num_switches + self.random_start  # random_start: the read action n

  @property
  def num_observations(self) -> int:
    return 4 if self.random_start else 2  # random_start: 2 + the bit read

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
    return jnp.zeros((self.num_switches + 1 + self.random_start,), jnp.int32)

  def _flipping(self, state):
    """bool []: the flips have begun (always, without a random start)."""
    return state[-1] == self.num_switches + 1 if self.random_start else jnp.bool_(True)

  def expert_logits(self, theta, state):
    n = self.num_switches
    differs = state[:n] != self.code(theta)
    # Lowest differing switch; if none differs the lock is open and the step is masked.
    target = jnp.argmax(differs)
    probs = (1.0 - self.epsilon) * (jnp.arange(n) == target) + self.epsilon / n
    if self.random_start:
      flipping = self._flipping(state)
      probs = jnp.where(flipping, jnp.append(probs, 0.0), jnp.arange(n + 1) == n)
    return jnp.log(probs.astype(jnp.float32))

  def _after(self, state, action):
    """The switches after `action`: int32 [n] (the read action, and any action before the
    flips begin, changes nothing)."""
    n = self.num_switches
    moved = (jnp.arange(n) == action) & self._flipping(state)
    return jnp.where(moved, 1 - state[:n], state[:n])

  def observation_logits(self, theta, state, action):
    opens = jnp.all(self._after(state, action) == self.code(theta))
    if not self.random_start:
      return jnp.log(jnp.stack([~opens, opens]).astype(jnp.float32))
    reading = jnp.array([0.0, 0.0, 0.5, 0.5], jnp.float32)  # the start bit: uniform
    lock = jnp.stack([~opens, opens, False, False]).astype(jnp.float32)
    return jnp.log(jnp.where(state[-1] < self.num_switches, reading, lock))

  def next_state(self, state, action, observation):
    if not self.random_start:
      state = state.at[action].set(1 - state[action])
      return state.at[-1].set(jnp.maximum(state[-1], observation))
    n, phase = self.num_switches, state[-1]
    switches = self._after(state, action)
    switches = jnp.where((jnp.arange(n) == phase) & (phase < n), observation - 2, switches)
    is_open = (jnp.asarray(observation) == 1).astype(jnp.int32)
    opened = jnp.where(phase >= n, jnp.maximum(state[n], is_open), 0)
    return jnp.concatenate([switches, jnp.stack([opened, jnp.minimum(phase + 1, n + 1)])])

  def done(self, state):
    return state[self.num_switches] == 1

  def reward(self, observation):
    return jnp.asarray(observation == 1, jnp.float32)


def padlock(num_switches: int = 6, num_secret: int = 3,
            public_pattern: Sequence[int] | None = None, epsilon: float = 0.0,
            horizon: int | None = None, random_start: bool = False) -> Padlock:
  """Validated padlock. Defaults n = 6, m = 3, T = n + 2^m (+ n + 1 opening steps with
  `random_start`); the paper's size is n=15, m=5 with a random start."""
  n = base.check_int("padlock", "num_switches", num_switches, 1, 30)
  m = base.check_int("padlock", "num_secret", num_secret, 0, min(n - 1, 16))
  if public_pattern is None:
    public_pattern = [(i + 1) % 2 for i in range(n - m)]  # 1, 0, 1, 0, ...
  public_pattern = tuple(int(b) for b in public_pattern)
  if len(public_pattern) != n - m or any(b not in (0, 1) for b in public_pattern):
    raise ValueError(f"padlock: parameter 'public_pattern' must be {n - m} bits (0 or 1), "
                     f"got {public_pattern}")
  if not isinstance(random_start, (bool, np.bool_)):
    raise ValueError(f"padlock: parameter 'random_start' must be true or false, got "
                     f"{random_start!r}")
  random_start = bool(random_start)
  if not any(public_pattern) and not random_start:
    # Otherwise the all-zero code would be possible and the lock would start open.
    raise ValueError(f"padlock: parameter 'public_pattern' must contain a 1 (needs "
                     f"num_switches > num_secret), got {public_pattern}")
  epsilon = base.check_probability("padlock", "epsilon", epsilon)
  opening = (n + 1) if random_start else 0  # the reading and test steps
  if horizon is None:
    horizon = opening + n + 2 ** m
  horizon = base.check_int("padlock", "horizon", horizon, opening + 1)
  return Padlock(num_switches=n, num_secret=m, public_pattern=public_pattern,
                 epsilon=epsilon, horizon=horizon, random_start=random_start)

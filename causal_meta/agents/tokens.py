"""The token stream an agent reads: BOS, a_1, o_1, a_2, o_2, …, a_T.

An action token knows its author ([O] Remark 14): the agent's own action do(a) and the expert's
action a are different symbols. The model predicts a_t at the position before it (BOS or
o_{t-1}) and o_t at the position of a_t, so T steps need 2T input positions.

Vocabulary (A actions, O observations): BOS = 0, do(a) = 1 + a, expert a = 1 + A + a,
observation o = 1 + 2A + o.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BOS = 0


def vocab_size(num_actions: int, num_observations: int) -> int:
  return 1 + 2 * num_actions + num_observations


def action_token(action, intervened, num_actions: int):
  """int32, same shape as `action`."""
  return (1 + action + jnp.where(intervened, 0, num_actions)).astype(jnp.int32)


def observation_token(observation, num_actions: int):
  return (1 + 2 * num_actions + observation).astype(jnp.int32)


def encode(actions, intervened, observations, num_actions: int) -> jax.Array:
  """[..., T] actions/authors/observations -> int32 [..., 2T] input tokens (o_T is not input)."""
  a = action_token(actions, intervened, num_actions)
  o = observation_token(observations, num_actions)
  bos = jnp.full(actions.shape[:-1] + (1,), BOS, jnp.int32)
  prev_obs = jnp.concatenate([bos, o[..., :-1]], axis=-1)  # token before a_t
  return jnp.stack([prev_obs, a], axis=-1).reshape(actions.shape[:-1] + (-1,))

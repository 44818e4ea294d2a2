"""The token stream an agent reads: BOS, a_1, o_1, a_2, o_2, …, a_T.

An action token knows its author ([O] Remark 14): the agent's own action do(a) and the expert's
action a are different symbols. The model predicts a_t at the position before it (BOS or
o_{t-1}) and o_t at the position of a_t, so T steps need 2T input positions.

Vocabulary (A actions, O observations): BOS = 0, do(a) = 1 + a, expert a = 1 + A + a,
observation o = 1 + 2A + o.

Goal-conditioned models ([D] App. C) replace BOS by an *outcome* token that says how the
episode ends: outcome k = 1 + 2A + O + k (k = 0 failure, 1 success). Setting it to success
before acting is conditioning on the goal; a model without outcomes never sees these tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BOS = 0


NUM_OUTCOMES = 2  # outcome 0 = failure, 1 = success
FAILURE, SUCCESS = 0, 1


def vocab_size(num_actions: int, num_observations: int, num_outcomes: int = 0) -> int:
  return 1 + 2 * num_actions + num_observations + num_outcomes


def first_token(outcome, num_actions: int, num_observations: int):
  """The token that starts an episode: BOS when `outcome` < 0, else the outcome token."""
  outcome = jnp.asarray(outcome, jnp.int32)
  return jnp.where(outcome < 0, BOS, 1 + 2 * num_actions + num_observations + outcome)


def action_token(action, intervened, num_actions: int):
  """int32, same shape as `action`."""
  return (1 + action + jnp.where(intervened, 0, num_actions)).astype(jnp.int32)


def observation_token(observation, num_actions: int):
  return (1 + 2 * num_actions + observation).astype(jnp.int32)


def encode(actions, intervened, observations, num_actions: int, first=None) -> jax.Array:
  """[..., T] actions/authors/observations -> int32 [..., 2T] input tokens (o_T is not input).

  first: optional int [...] start token per sequence (see `first_token`); default BOS.
  """
  a = action_token(actions, intervened, num_actions)
  o = observation_token(observations, num_actions)
  if first is None:
    first = BOS
  bos = jnp.broadcast_to(jnp.asarray(first, jnp.int32)[..., None], actions.shape[:-1] + (1,))
  prev_obs = jnp.concatenate([bos, o[..., :-1]], axis=-1)  # token before a_t
  return jnp.stack([prev_obs, a], axis=-1).reshape(actions.shape[:-1] + (-1,))

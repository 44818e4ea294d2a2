"""What an agent reads: one input token per interaction ([O] §4.1).

Position t (t = 1 … T) reads the previous interaction, a_{t-1} with its author and o_{t-1},
as one token; position 1 reads a start token. The agent's state at position t gives
  P_A(a_t | past)         from the state alone (the action head), and
  P_O(o_t | past, a_t)    from the state and a_t with its author (the observation head),
so T interactions take T positions.

An action knows its author ([O] Remark 14): the agent's own action do(a) and the expert's
action a are different symbols (Remark 13). A token is the pair (action part, observation
part), stored as one int, token = action_part · (O + 1) + observation_part, with
  action part       do(a) = a, expert a = A + a, BOS = 2A, outcome k = 2A + 1 + k;
  observation part  o, or O for none (start tokens).
Agents embed the two parts separately and add the embeddings (as a linear layer on the two
one-hot codes side by side would).

Goal-conditioned models ([D] App. C) start with an *outcome* token instead of BOS, saying how
the episode ends (k = 0 failure, 1 success). Setting it to success before acting is
conditioning on the goal; a model without outcomes never sees these tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NUM_OUTCOMES = 2  # outcome 0 = failure, 1 = success
FAILURE, SUCCESS = 0, 1


def action_parts(num_actions: int, num_outcomes: int = 0) -> int:
  """How many action parts there are: do(a), expert a, BOS and the outcomes."""
  return 2 * num_actions + 1 + num_outcomes


def vocab_size(num_actions: int, num_observations: int, num_outcomes: int = 0) -> int:
  return action_parts(num_actions, num_outcomes) * (num_observations + 1)


def action_part(action, intervened, num_actions: int):
  """The action with its author: a (intervened, the agent's do(a)) or A + a (the expert's).
  int32, the shape of `action`; also the row of the observation head that reads a_t."""
  return (action + jnp.where(intervened, 0, num_actions)).astype(jnp.int32)


def token(action, intervened, observation, num_actions: int, num_observations: int):
  """The token of one interaction (a with its author, o): int32, the shape of `action`."""
  part = action_part(action, intervened, num_actions)
  return part * (num_observations + 1) + jnp.asarray(observation, jnp.int32)


def start_token(outcome, num_actions: int, num_observations: int):
  """The token at position 1: BOS when `outcome` < 0, else that outcome's token."""
  outcome = jnp.asarray(outcome, jnp.int32)
  part = 2 * num_actions + jnp.where(outcome < 0, 0, 1 + outcome)
  return part * (num_observations + 1) + num_observations


def split(tokens, num_observations: int):
  """int tokens -> (action parts, observation parts), each the shape of `tokens`."""
  return tokens // (num_observations + 1), tokens % (num_observations + 1)


def encode(actions, intervened, observations, num_actions: int, num_observations: int,
           first=None) -> jax.Array:
  """[..., T] actions/authors/observations -> int32 [..., T] input tokens: the start token,
  then the interactions 1 … T-1 (interaction T is read by no prediction).

  first: optional int [...] start token per sequence (see `start_token`); default BOS.
  """
  steps = token(actions[..., :-1], intervened[..., :-1], observations[..., :-1], num_actions,
                num_observations)
  if first is None:
    first = start_token(-1, num_actions, num_observations)
  first = jnp.broadcast_to(jnp.asarray(first, jnp.int32)[..., None], actions.shape[:-1] + (1,))
  return jnp.concatenate([first, steps], axis=-1)

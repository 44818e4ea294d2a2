"""Factual and counterfactual teaching losses ([O] §4.1, Fig. 4; SPEC §4).

counterfactual: −log P_A(ā_t), the expert's action under the agent's action predictor;
factual:        −log P_O(o_t), the task's answer under the agent's observation predictor.
Both are averaged over the steps that happened (mask), and weighted ([O] Remark 18). In
demonstration mode the expert's action is also the action taken, so the same code is
behaviour cloning.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from causal_meta.rollout import Trajectory, mean_over_mask


def token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """−log softmax(logits)[target]: [..., K], int [...] -> [...]."""
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]


def teaching_loss(action_logits: jax.Array, observation_logits: jax.Array, traj: Trajectory,
                  counterfactual_weight: float = 1.0, factual_weight: float = 1.0):
  """(scalar loss, dict of the two parts).

  action_logits [B, T, A] and observation_logits [B, T, O] as returned by `Agent.unroll`.
  """
  chex.assert_equal_shape_prefix([action_logits, observation_logits, traj.actions], 2)
  counterfactual = mean_over_mask(token_nll(action_logits, traj.expert_actions), traj.mask)
  factual = mean_over_mask(token_nll(observation_logits, traj.observations), traj.mask)
  loss = counterfactual_weight * counterfactual + factual_weight * factual
  return loss, dict(counterfactual_loss=counterfactual, factual_loss=factual)

"""Factual and counterfactual teaching losses ([O] §4.1, Fig. 4, App. A).

counterfactual: −log P_A(ā_t), the expert's action under the agent's action predictor;
                or, with `expert_target="policy"`, its expectation over the expert's draw,
                Σ_a Q(a | θ, s_t)(−log P_A(a)): the same gradient in expectation and the same
                minimiser (the oracle), without the noise of sampling ā_t (a Rao-Blackwellised
                loss; the expert is asked for its policy instead of one draw from it);
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


def policy_nll(logits: jax.Array, target_log_probs: jax.Array) -> jax.Array:
  """Σ_k p_k (−log softmax(logits)_k), p = exp(target_log_probs): [..., K], [..., K] -> [...]."""
  return -jnp.sum(jnp.exp(target_log_probs) * jax.nn.log_softmax(logits), -1)


EXPERT_TARGETS = ("action", "policy")


def teaching_loss(action_logits: jax.Array, observation_logits: jax.Array, traj: Trajectory,
                  counterfactual_weight: float = 1.0, factual_weight: float = 1.0,
                  expert_target: str = "action"):
  """(scalar loss, dict of the two parts).

  action_logits [B, T, A] and observation_logits [B, T, O] as returned by `Agent.teacher_force`.
  expert_target: "action" (the expert's sampled action) or "policy" (its whole policy,
  `traj.expert_log_probs` [B, T, A], which `braid(..., expert_policy=True)` keeps).
  """
  chex.assert_equal_shape_prefix([action_logits, observation_logits, traj.actions], 2)
  if expert_target == "action":
    action_nll = token_nll(action_logits, traj.expert_actions)
  elif expert_target == "policy":
    if traj.expert_log_probs is None:
      raise ValueError("expert_target='policy' needs traj.expert_log_probs: roll out with "
                       "braid(..., expert_policy=True)")
    chex.assert_equal_shape([action_logits, traj.expert_log_probs])
    action_nll = policy_nll(action_logits, traj.expert_log_probs)
  else:
    raise ValueError(f"unknown expert_target {expert_target!r}; allowed: "
                     f"{', '.join(EXPERT_TARGETS)}")
  counterfactual = mean_over_mask(action_nll, traj.mask)
  factual = mean_over_mask(token_nll(observation_logits, traj.observations), traj.mask)
  loss = counterfactual_weight * counterfactual + factual_weight * factual
  return loss, dict(counterfactual_loss=counterfactual, factual_loss=factual)

"""The teaching losses against their definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from causal_meta import losses, rollout


def _trajectory(expert_actions, mask, expert_log_probs=None):
  zeros = jnp.zeros_like(expert_actions)
  return rollout.Trajectory(
      theta=zeros[:, 0], actions=expert_actions, expert_actions=expert_actions,
      observations=zeros, intervened=jnp.ones_like(mask), mask=mask,
      done=jnp.zeros_like(mask), rewards=jnp.zeros(mask.shape), best_actions=zeros,
      expert_log_probs=expert_log_probs)


def test_policy_target_is_the_expected_action_loss():
  """The "policy" counterfactual loss and its gradient are the mean of the "action" loss and
  its gradient over the expert's draws (Monte Carlo, 100,000 draws of each step's action)."""
  B, T, A, draws = 2, 3, 4, 100_000
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  logits = jax.random.normal(k1, (B, T, A))
  expert_log_probs = jax.nn.log_softmax(2 * jax.random.normal(k2, (B, T, A)))
  mask = jnp.array([[True, True, True], [True, True, False]])
  obs_logits = jnp.zeros((B, T, 2))

  def loss(logits, traj, target):
    return losses.teaching_loss(logits, obs_logits, traj, factual_weight=0.0,
                                expert_target=target)[0]

  policy = _trajectory(jnp.zeros((B, T), jnp.int32), mask, expert_log_probs)
  want_loss, want_grad = jax.value_and_grad(loss)(logits, policy, "policy")
  samples = jax.random.categorical(k3, expert_log_probs, shape=(draws, B, T))
  sampled = jax.vmap(lambda a: jax.value_and_grad(loss)(logits, _trajectory(a, mask), "action"))
  got_loss, got_grad = jax.tree.map(lambda x: jnp.mean(x, 0), sampled(samples))
  np.testing.assert_allclose(got_loss, want_loss, rtol=5e-3)
  np.testing.assert_allclose(got_grad, want_grad, atol=3e-3)
  assert float(jnp.abs(want_grad[1, 2]).max()) == 0.0  # a masked step teaches nothing


def test_policy_target_needs_the_expert_policy():
  traj = _trajectory(jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2), bool))
  logits = jnp.zeros((1, 2, 3))
  with pytest.raises(ValueError, match="expert_policy=True"):
    losses.teaching_loss(logits, logits, traj, expert_target="policy")
  with pytest.raises(ValueError, match="unknown expert_target 'soft'"):
    losses.teaching_loss(logits, logits, traj, expert_target="soft")
